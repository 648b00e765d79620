//! A real gRPC peer for the tests: a tonic server with one service of each call shape (unary, server
//! streaming, client streaming, bidirectional) and a tonic client calling it, over plain TCP or TLS. The
//! messages are derived with prost and the service is routed by hand, so no protoc or build script is needed.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio_stream::{Stream, StreamExt};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{
    ClientStreamingService, Grpc, NamedService, ServerStreamingService, StreamingService, UnaryService,
};
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

/// The one message: some text, and how many replies a server-streaming call wants.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Msg {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(uint32, tag = "2")]
    pub count: u32,
}

pub fn msg(text: &str, count: u32) -> Msg {
    Msg { text: text.to_owned(), count }
}

pub const UNARY: &str = "/test.Echo/Unary";
pub const SERVER_STREAM: &str = "/test.Echo/ServerStream";
pub const CLIENT_STREAM: &str = "/test.Echo/ClientStream";
pub const BIDI: &str = "/test.Echo/Bidi";

type MsgStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send>>;

/// `test.Echo`: Unary echoes; ServerStream sends `count` copies; ClientStream joins the texts; Bidi echoes each.
/// A text starting `fail:` makes a unary call fail with that status code (`fail:5` is NOT_FOUND).
#[derive(Clone, Default)]
pub struct Echo;

impl NamedService for Echo {
    const NAME: &'static str = "test.Echo";
}

struct Unary;
impl UnaryService<Msg> for Unary {
    type Response = Msg;
    type Future = BoxFuture<Response<Msg>, Status>;
    fn call(&mut self, req: Request<Msg>) -> Self::Future {
        Box::pin(async move {
            let m = req.into_inner();
            if let Some(code) = m.text.strip_prefix("fail:").and_then(|c| c.parse::<i32>().ok()) {
                return Err(Status::new(tonic::Code::from(code), "the test service failed the call as asked"));
            }
            Ok(Response::new(m))
        })
    }
}

struct ServerStream;
impl ServerStreamingService<Msg> for ServerStream {
    type Response = Msg;
    type ResponseStream = MsgStream;
    type Future = BoxFuture<Response<MsgStream>, Status>;
    fn call(&mut self, req: Request<Msg>) -> Self::Future {
        Box::pin(async move {
            let m = req.into_inner();
            let each = (0..m.count).map(move |i| Ok(msg(&format!("{} {i}", m.text), i)));
            Ok(Response::new(Box::pin(tokio_stream::iter(each)) as MsgStream))
        })
    }
}

struct ClientStream;
impl ClientStreamingService<Msg> for ClientStream {
    type Response = Msg;
    type Future = BoxFuture<Response<Msg>, Status>;
    fn call(&mut self, req: Request<Streaming<Msg>>) -> Self::Future {
        Box::pin(async move {
            let mut stream = req.into_inner();
            let mut texts = Vec::new();
            while let Some(m) = stream.next().await {
                texts.push(m?.text);
            }
            Ok(Response::new(msg(&texts.join(","), texts.len() as u32)))
        })
    }
}

struct Bidi;
impl StreamingService<Msg> for Bidi {
    type Response = Msg;
    type ResponseStream = MsgStream;
    type Future = BoxFuture<Response<MsgStream>, Status>;
    fn call(&mut self, req: Request<Streaming<Msg>>) -> Self::Future {
        Box::pin(async move {
            let stream = req.into_inner().map(|m| m.map(|m| msg(&format!("echo {}", m.text), m.count)));
            Ok(Response::new(Box::pin(stream) as MsgStream))
        })
    }
}

impl Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = Grpc::new(ProstCodec::<Msg, Msg>::default());
            Ok(match req.uri().path() {
                UNARY => grpc.unary(Unary, req).await,
                SERVER_STREAM => grpc.server_streaming(ServerStream, req).await,
                CLIENT_STREAM => grpc.client_streaming(ClientStream, req).await,
                BIDI => grpc.streaming(Bidi, req).await,
                _ => Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

/// Serves `test.Echo` on `listener` (TLS with `tls`: a certificate and key in PEM).
pub fn serve(listener: tokio::net::TcpListener, tls: Option<(&str, &str)>) {
    let mut builder = Server::builder();
    if let Some((cert, key)) = tls {
        let identity = tonic::transport::Identity::from_pem(cert, key);
        builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity)).expect("server TLS");
    }
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(builder.add_service(Echo).serve_with_incoming(incoming));
}

/// A tonic client of `addr` (over TLS trusting `ca`, for the name `localhost`).
pub async fn client(addr: SocketAddr, ca: Option<&str>) -> tonic::client::Grpc<Channel> {
    let endpoint = match ca {
        None => Endpoint::from_shared(format!("http://{addr}")).expect("endpoint"),
        Some(ca) => {
            let tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                .domain_name("localhost");
            Endpoint::from_shared(format!("https://{addr}")).expect("endpoint").tls_config(tls).expect("client TLS")
        }
    };
    tonic::client::Grpc::new(endpoint.connect().await.expect("connect"))
}

pub fn codec() -> ProstCodec<Msg, Msg> {
    ProstCodec::default()
}

pub fn path(p: &'static str) -> http::uri::PathAndQuery {
    http::uri::PathAndQuery::from_static(p)
}
