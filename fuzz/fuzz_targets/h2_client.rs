//! The gateway's own HTTP/2 client toward targets (`waygate_proxy::upstream::h2`) on any frames a target sends
//! after its SETTINGS, over a real loopback socket: the connection never panics, and two requests in flight on it
//! (streams 1 and 3, each with a body to send under the target's flow control) always end, answered or failed,
//! once the target has sent everything and closed.
#![no_main]

use std::future::poll_fn;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use waygate_proxy::body::UpstreamRequestBody;
use waygate_proxy::upstream::h1::BodyState;
use waygate_proxy::upstream::h2::{Request, Shared};
use waygate_proxy::upstream::meter::{ConnCounters, Metered};
use waygate_proxy::upstream::transport::Transport;

/// One loopback listener for the whole run: a listener per input would leave its port held by the connection's
/// TIME_WAIT, and hundreds of inputs a second would soon have taken every ephemeral port.
static LISTENER: OnceLock<std::net::TcpListener> = OnceLock::new();

/// An empty SETTINGS frame: the target's preface.
const SETTINGS: &[u8] = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// One request on `shared`: sent with a body, its response read to the end; every outcome is fine but a hang.
async fn exchange(shared: Arc<Shared>) {
    let Some(mut stream) = Shared::stream(&shared) else { return };
    let req = Request {
        method: Method::POST,
        uri: Uri::from_static("http://target/"),
        headers: HeaderMap::new(),
        head_len: 0,
    };
    let mut body = UpstreamRequestBody::buffered(Bytes::from_static(&[7; 100_000]), Arc::default());
    let Ok(response) = stream.send(&req, &mut body, Duration::from_secs(3600)).await else { return };
    let mut state = BodyState::new(response.head.framing);
    while let Some(Ok(_)) = poll_fn(|cx| stream.poll_body(cx, &mut state)).await {}
}

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    rt.block_on(async {
        let shared = LISTENER.get_or_init(|| std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port"));
        let listener = shared.try_clone().expect("the listener");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let listener = TcpListener::from_std(listener).expect("registered");
        let addr = listener.local_addr().expect("its address");
        let tcp = TcpStream::connect(addr).await.expect("a connection");
        let (mut target, _) = listener.accept().await.expect("accepted");
        let counters = ConnCounters::new(addr, tcp.local_addr().expect("the local address"));
        let transport = Transport::Plain(Metered::new(tcp, counters.clone()));
        let talk = async move {
            let _ = target.write_all(SETTINGS).await;
            let _ = target.write_all(data).await;
            let _ = target.shutdown().await;
            // Everything the gateway writes is read, to its close.
            let mut sink = Vec::new();
            let _ = target.read_to_end(&mut sink).await;
        };
        let client = async move {
            let hour = Duration::from_secs(3600);
            let Ok(shared) = Shared::handshake(transport, counters, None, None, hour, Duration::from_secs(5)).await
            else {
                return;
            };
            tokio::join!(exchange(shared.clone()), exchange(shared));
        };
        let ended = tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(client, talk) }).await;
        assert!(ended.is_ok(), "the exchanges did not end after the target closed");
    });
});
