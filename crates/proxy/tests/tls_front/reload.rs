//! Certificates reload (what SIGHUP and `POST /api/v1/reload` both call) under a stream of new handshakes: not
//! one fails, a connection opened before keeps being served, and new ones get the new certificate.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_swaps_certificates_without_a_failed_handshake_or_a_dropped_connection() {
    let mut first = None;
    let front = start(
        "reload",
        |pki| {
            let id = pki.server("live", &["localhost"]);
            let text = certificates(&[&id]);
            first = Some(id);
            text
        },
        "",
    )
    .await;
    let first = first.unwrap();
    let config = client(front.pki.roots(), BOTH, &[b"http/1.1"], None);
    let open = connect(front.addr, config.clone(), "localhost").await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(open)).await.unwrap();
    tokio::spawn(conn);
    echo_on(&mut send, &[]).await.unwrap();

    // New handshakes, one after another, for as long as the reloads go on (bounded in count).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (config, addr, stop) = (config.clone(), front.addr, stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && ok + (failed.len() as u32) < 5_000 {
                match connect(addr, config.clone(), "localhost").await {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        })
    };
    let config_file = front.dir.join("waygate.toml");
    let mut latest = None;
    for round in 0..5 {
        // Renewed in place, as certbot and friends do: written beside, then renamed over the old files.
        let renewed = front.pki.server(&format!("renewed-{round}"), &["localhost"]);
        std::fs::rename(&renewed.cert, &first.cert).unwrap();
        std::fs::rename(&renewed.key, &first.key).unwrap();
        front.gw.reload_file(&config_file, "test").await.unwrap_or_else(|e| panic!("reload {round}: {e:?}"));
        latest = Some(renewed.chain[0].clone());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = common::within("the handshake loop", load).await.unwrap();
    assert!(failed.is_empty(), "{} of {} handshakes failed: {failed:?}", failed.len(), ok as usize + failed.len());
    assert!(ok > 0);

    // The connection opened before the reloads is still served; a new one gets the last certificate.
    echo_on(&mut send, &[]).await.expect("the connection opened before the reloads still works");
    let tls = connect(front.addr, config, "localhost").await.unwrap();
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], latest.unwrap());
    assert!(!conn_lines(&front.dir).iter().any(|l| l.contains("Failed:")), "no handshake failed");
}
