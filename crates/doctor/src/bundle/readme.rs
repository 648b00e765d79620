//! The bundle's README.txt: what each file is, what could not be collected and why, and what was never
//! collected on purpose (keys, the admin token).

use super::BundleArgs;
use super::archive::Contents;

pub fn render(c: &Contents, args: &BundleArgs) -> String {
    let mut out = String::from(
        "waygate support bundle\n======================\n\n\
         Collected by `waygate doctor bundle`. Secrets are redacted from the config; private keys and the admin\n\
         token are never included (every file was checked for PEM private-key markers before writing).\n\n",
    );
    if let Some(id) = &args.request_id {
        out += &format!("Request id: {id}\n\n");
    }
    out += "Files\n-----\n";
    let width = c.files.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0).max("README.txt".len());
    for (name, bytes, what) in &c.files {
        out += &format!("{name:width$}  {what} ({} bytes)\n", bytes.len());
    }
    out += &format!("{:width$}  this file\n\n", "README.txt");
    out += "Unavailable\n-----------\n";
    if c.unavailable.is_empty() {
        out += "nothing: everything was collected\n";
    }
    for item in &c.unavailable {
        out += &format!("- {item}\n");
    }
    out += "\nReading it: `waygate doctor logs logs/access/` explains the 5xx in the access-log lines; \
            probe/probe.json names each target's failure, if any, with the catalogue's cause and remediation.\n";
    out
}
