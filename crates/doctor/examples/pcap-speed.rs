//! Writes a synthetic capture (Ethernet pcap, HTTP keep-alive flows plus refused and TLS-timeout ones) of
//! about SIZE MB, then times `doctor pcap` on it from disk and reports peak memory (VmHWM):
//! `cargo run --release -p waygate-doctor --example pcap-speed -- [SIZE_MB] [FILE]`.

use std::io::{BufWriter, Write};

struct Writer<W: Write> {
    out: W,
    ts_us: u64,
    bytes: u64,
}

impl<W: Write> Writer<W> {
    fn frame(&mut self, src: ([u8; 4], u16), dst: ([u8; 4], u16), flags: &str, seq: u32, payload: &[u8]) {
        let mut b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, seq, 65535);
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'A' => b.ack(1),
                'F' => b.fin(),
                'R' => b.rst(),
                _ => b,
            };
        }
        let mut pkt = Vec::with_capacity(64 + payload.len());
        b.write(&mut pkt, payload).expect("build packet");
        self.ts_us += 37;
        let mut rec = Vec::with_capacity(16);
        rec.extend_from_slice(&((self.ts_us / 1_000_000) as u32 + 1_700_000_000).to_le_bytes());
        rec.extend_from_slice(&((self.ts_us % 1_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        rec.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        self.out.write_all(&rec).and_then(|()| self.out.write_all(&pkt)).expect("write");
        self.bytes += 16 + pkt.len() as u64;
    }
}

fn generate(path: &str, target: u64) -> u64 {
    let file = std::fs::File::create(path).expect("create capture");
    let mut w = Writer { out: BufWriter::new(file), ts_us: 0, bytes: 24 };
    let mut header = Vec::new();
    for v in [0xa1b2_c3d4u32.to_le_bytes().to_vec(), 2u16.to_le_bytes().to_vec(), 4u16.to_le_bytes().to_vec()] {
        header.extend(v);
    }
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&262_144u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    w.out.write_all(&header).expect("write");
    let request = b"GET /items?page=1 HTTP/1.1\r\nhost: api.example\r\nuser-agent: bench\r\n\r\n";
    let body = vec![b'x'; 1400];
    let mut n = 0u32;
    while w.bytes < target {
        n += 1;
        let client = ([10, 0, (n >> 16) as u8, 4], 1024 + (n % 60000) as u16);
        let server = ([10, 0, 0, (n % 8) as u8 + 1], if n.is_multiple_of(10) { 443 } else { 80 });
        w.frame(client, server, "S", 1000, &[]);
        if n.is_multiple_of(50) {
            w.frame(server, client, "RA", 0, &[]);
            continue;
        }
        w.frame(server, client, "SA", 5000, &[]);
        w.frame(client, server, "A", 1001, &[]);
        let (mut cs, mut ss) = (1001u32, 5001u32);
        for _ in 0..4 {
            w.frame(client, server, "A", cs, request);
            cs += request.len() as u32;
            for _ in 0..8 {
                w.frame(server, client, "A", ss, &body);
                ss += body.len() as u32;
            }
            w.frame(client, server, "A", cs, &[]);
        }
        w.frame(client, server, "FA", cs, &[]);
        w.frame(server, client, "FA", ss, &[]);
    }
    w.out.flush().expect("flush");
    w.bytes
}

fn peak_rss_kib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM")).map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let path =
        args.next().unwrap_or_else(|| std::env::temp_dir().join("waygate-pcap-speed.pcap").display().to_string());
    let bytes = generate(&path, mb * 1_000_000);
    eprintln!("wrote {path}: {:.1} MB; peak RSS after writing {} KiB", bytes as f64 / 1e6, peak_rss_kib());
    let t = std::time::Instant::now();
    let file = std::fs::File::open(&path).expect("open");
    let r = waygate_doctor::pcap::analyze_reader(file, &path, None).expect("a capture");
    let s = t.elapsed().as_secs_f64();
    eprintln!(
        "{} frames, {} flows ({} failing) in {:.2} s: {:.0} MB/s, {:.2} M frames/s on one core; peak RSS {} KiB",
        r.frames,
        r.flows.len(),
        r.failing().count(),
        s,
        bytes as f64 / 1e6 / s,
        r.frames as f64 / 1e6 / s,
        peak_rss_kib()
    );
}
