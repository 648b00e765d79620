//! Single-threaded parse and count of a file already in memory: the per-core cost of the hot path,
//! without I/O (`cargo run --release -p waygate-doctor --example parse-speed -- FILE`).

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: parse-speed FILE");
        std::process::exit(1);
    };
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let t = std::time::Instant::now();
    let r = waygate_doctor::analyze_bytes(&data, &waygate_doctor::Options::default());
    let s = t.elapsed().as_secs_f64();
    eprintln!(
        "{} requests, {:.1} MB in {:.3} s: {:.0} MB/s on one core",
        r.requests,
        data.len() as f64 / 1e6,
        s,
        data.len() as f64 / 1e6 / s
    );
}
