//! `waygate check-config FILE`: validate (listener certificates, keys and trust stores read as they will be
//! served) and print every problem as `FILE:LINE:COL: message`.

use std::path::Path;

pub fn check(file: &Path) -> u8 {
    match waygate_config::load_checked(file) {
        Ok(config) => {
            println!(
                "{}: ok ({} listener(s), {} target group(s))",
                file.display(),
                config.listeners.len(),
                config.target_groups.len()
            );
            0
        }
        Err(errors) => {
            eprintln!("{errors}");
            1
        }
    }
}
