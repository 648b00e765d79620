//! The connection log as written: ALB's file names, a line per connection (failed handshakes included), the
//! `conn_trace_id` that the connection's access-log lines end with, and lines the doctor reads as ALB
//! connection logs.

use super::*;

#[tokio::test]
async fn connection_log_lines_link_to_the_access_log_and_the_doctor_reads_them() {
    let dir = tempdir("connlog-access");
    let access = dir.join("access");
    let front = start(
        "connlog",
        |pki| certificates(&[&pki.server("srv", &["localhost"])]),
        &format!("[access_log]\ndir = \"{}\"\n", access.display()),
    )
    .await;
    let tls = connect(front.addr, client(front.pki.roots(), BOTH, &[b"http/1.1"], None), "localhost").await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    echo_on(&mut send, &[]).await.unwrap();
    echo_on(&mut send, &[]).await.unwrap();
    drop(send);
    // A failed handshake: plain HTTP to the TLS port.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = TcpStream::connect(front.addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        let _ = common::within("the close", tcp.read_to_end(&mut Vec::new())).await;
    }
    let ok = conn_line(&front.dir, |l| l.contains(" Success ")).await;
    let failed = conn_line(&front.dir, |l| l.contains("Failed:NotTls")).await;
    front.gw.shutdown(DEADLINE).await;

    let fields: Vec<&str> = ok.split(' ').collect();
    assert_eq!(fields.len(), 15, "{ok}");
    assert_eq!(fields[3], front.addr.port().to_string(), "listener_port: {ok}");
    assert!(fields[4] == "TLSv1.3" && fields[5] == "TLS_AES_128_GCM_SHA256", "{ok}");
    assert!(fields[6].parse::<f64>().is_ok_and(|s| s < 30.0), "tls_handshake_latency in seconds: {ok}");
    assert_eq!(&fields[7..11], ["-", "-", "-", "Success"], "no client certificate: {ok}");
    assert_eq!(fields[12], "X25519", "{ok}");
    assert_eq!(fields[13], "app/waygate/public", "{ok}");
    assert_eq!(fields[14], "127.0.0.1", "{ok}");
    let trace = fields[11];
    assert!(trace.starts_with("TID_"), "{ok}");
    // Both requests of the connection end their access-log lines with its conn_trace_id.
    let mut access_lines = Vec::new();
    for entry in std::fs::read_dir(&access).unwrap().flatten() {
        access_lines
            .extend(std::fs::read_to_string(entry.path()).unwrap().lines().map(str::to_owned).collect::<Vec<_>>());
    }
    assert_eq!(access_lines.iter().filter(|l| l.ends_with(&format!(" {trace}"))).count(), 2, "{access_lines:#?}");

    // The files are named like ALB's, and the doctor reads them as ALB connection logs.
    let files: Vec<PathBuf> = std::fs::read_dir(front.dir.join("conn")).unwrap().flatten().map(|e| e.path()).collect();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("conn_log.000000000000_elasticloadbalancing_local_app.waygate."), "{name}");
        assert!(name.ends_with(".log"), "{name}");
    }
    for line in [&ok, &failed] {
        let conn =
            waygate_doctor::connlog::parse_alb_connection(line.as_bytes()).unwrap_or_else(|e| panic!("{e:?}: {line}"));
        assert_eq!(conn.kind, waygate_doctor::connlog::ConnKind::AlbConnection);
        assert_eq!(conn.listener, front.addr.port().to_string().as_bytes());
    }
    let bytes: Vec<u8> = files.iter().flat_map(|f| std::fs::read(f).unwrap()).collect();
    let report = waygate_doctor::analyze_bytes(&bytes, &waygate_doctor::Options::default());
    assert_eq!((report.requests, report.malformed.count), (0, 0), "{:?}", report.malformed.examples);
    let summary =
        report.connection_logs.iter().find(|c| c.kind == "alb_connection").expect("an ALB connection summary");
    assert_eq!((summary.connections, summary.failures), (2, 1));
    assert_eq!(summary.reasons[0].reason, "NotTls");
}

/// Plain bytes to the TLS port: a failed handshake, which the connection log records as `Failed:NotTls`.
async fn not_tls(addr: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let _ = common::within("the close", tcp.read_to_end(&mut Vec::new())).await;
}

/// The connection log on a full disk (a tmpfs filled up): its one file is kept, the lost lines and the write errors
/// are counted in their metrics, and lines are written again by themselves once space returns.
#[tokio::test]
async fn a_full_disk_loses_connection_log_lines_counted_and_recovers() {
    let dir = tempdir("connlog-full");
    let conn = dir.join("conn");
    std::fs::create_dir_all(&conn).unwrap();
    let test = "a_full_disk_loses_connection_log_lines_counted_and_recovers";
    let Some(disk) = waygate_faultlab::Tmpfs::mount(&conn, "256k", test) else { return };
    let pki = Pki::new(&dir, "server");
    let backend = Backend::new("b1").spawn(loopback()).await.unwrap();
    let top = format!("[connection_log]\ndir = \"{}\"\n", conn.display());
    let (gw, addr) =
        gateway(&config_text(backend.addr(), &certificates(&[&pki.server("srv", &["localhost"])]), &top)).await;
    not_tls(addr).await;
    conn_line(&dir, |l| l.contains("Failed:NotTls")).await;
    let filler = conn.join("filler");
    disk.fill(&filler);
    // Past the rest of the log file's last page (a tmpfs allocates by page), so lines must be lost.
    for _ in 0..100 {
        not_tls(addr).await;
    }
    let text = common::within("the lost lines counted", async {
        loop {
            let text = gw.metrics().encode();
            if common::metric(&text, "waygate_connection_log_dropped_total", &[]) >= 50.0 {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await; // polling, bounded by `within`
        }
    })
    .await;
    let errors = common::metric(&text, "waygate_connection_log_write_errors_total", &[]);
    assert!((1.0..50.0).contains(&errors), "each error once, not per line: {errors}\n{text}");
    assert_eq!(std::fs::read_dir(&conn).unwrap().count(), 2, "the log's one file and the filler, no file churn");
    std::fs::remove_file(&filler).unwrap();
    common::within("lines written again", async {
        loop {
            not_tls(addr).await;
            if conn_lines(&dir).iter().filter(|l| l.contains("Failed:NotTls")).count() >= 2 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await; // polling, bounded by `within`
        }
    })
    .await;
    gw.shutdown(DEADLINE).await;
}
