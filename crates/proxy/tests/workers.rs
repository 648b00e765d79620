//! Thread-per-core workers: client connections spread over the workers, each worker keeps its own pool of
//! upstream connections, and a shutdown drains connections on every worker.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::*;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use waygate_faultlab::Backend;
use waygate_proxy::workers::Workers;
use waygate_proxy::{Drain, Gateway};

#[tokio::test]
async fn connections_spread_over_workers_and_each_worker_pools_its_upstream_connections() {
    let backend = Backend::new("app").spawn(loopback()).await.unwrap();
    let text = simple_config(&[backend.addr()], "");
    let config = waygate_config::parse(&text, Path::new("test.toml")).unwrap();
    let workers = Workers::start(2).unwrap();
    let gw = Gateway::start_with_workers(config, workers.clone()).await.expect("gateway starts");
    let addr = gw.local_addr("public").await.expect("listener public");

    // Four keep-alive client connections, opened one after another: the least-loaded pick puts two on each
    // worker, and they stay open while the requests run.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
        tokio::spawn(conn);
        clients.push(send);
        // Wait until the gateway handed it to a worker, so the next pick sees it.
        let want = clients.len();
        within("the connection to reach a worker", async {
            while workers.open_connections().iter().sum::<usize>() < want {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        })
        .await;
    }
    assert_eq!(workers.open_connections(), vec![2, 2], "two client connections per worker");

    // Requests one at a time, round the clients three times: each worker opens one upstream connection and
    // then reuses it from its own pool slot.
    for round in 0..3 {
        for (i, send) in clients.iter_mut().enumerate() {
            send.ready().await.unwrap();
            let resp = within("a response", send.send_request(request("GET", "/", "app.example", Bytes::new()))).await;
            let resp = resp.unwrap_or_else(|e| panic!("round {round} client {i}: {e}"));
            assert_eq!(resp.status(), 200, "round {round} client {i}");
            http_body_util::BodyExt::collect(resp.into_body()).await.unwrap();
        }
    }
    assert_eq!(backend.stats().connections_accepted(), 2, "one upstream connection per worker, reused from its slot");

    // A shutdown with client connections open on both workers drains them all: the idle keep-alive
    // connections are closed by the gateway while the clients still hold them.
    assert_eq!(gw.shutdown(DEADLINE).await, Drain::Complete);
    drop(clients);
    within("every worker's connections to close", async {
        while workers.open_connections() != vec![0, 0] {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    })
    .await;
}
