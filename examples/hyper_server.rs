//! A hyper 1 server with a WebSocket route: hyper reads and writes the
//! HTTP, the library decides the handshake and drives the WebSocket.
//!
//! ```text
//! cargo run --example hyper_server --features http,deflate -- [ADDR]
//! ```
//!
//! ADDR defaults to 127.0.0.1:9002. `GET /` answers a line of text;
//! `GET /ws` upgrades and echoes every message (permessage-deflate agreed
//! when the client offers it and the `deflate` feature is on); anything
//! else is a 404. The upgrade is hyper's own (`hyper::upgrade::on`): the
//! request goes to `rfc6455::http::request`, the core checks it and
//! agrees on subprotocol and extensions, the 101 goes back as hyper's
//! response, and once hyper hands over the upgraded stream the tokio
//! adapter runs the connection the core made.

#[path = "support/accept.rs"]
mod accept;

use rfc6455::Driver;
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rfc6455::handshake::Accept;
use rfc6455::Config;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "hyper_server: listening on http://{}",
        listener.local_addr()?
    );
    loop {
        let (tcp, peer) = accept::accept(&listener).await?;
        tokio::spawn(async move {
            let service = service_fn(move |request| route(request, peer));
            let served = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades()
                .await;
            if let Err(err) = served {
                println!("{peer}: {err}");
            }
        });
    }
}

fn config() -> Config {
    #[allow(unused_mut)]
    let mut config = Config::default();
    #[cfg(feature = "deflate")]
    {
        config.deflate = Some(rfc6455::DeflateConfig::default());
    }
    config
}

async fn route(
    mut request: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = |status: u16, body: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = hyper::StatusCode::from_u16(status).expect("a valid status");
        response
    };
    match request.uri().path() {
        "/" => Ok(text(200, "a hyper server; its WebSocket is at /ws\n")),
        "/ws" => {
            // The core checks the request (§4.2.1) and agrees on what the
            // client offered; a bad request gets its status and reason.
            let offered = request
                .headers()
                .get("sec-websocket-extensions")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let accepted = match rfc6455::http::request(&request, config()).accept(Accept::new()) {
                Ok(accepted) => accepted,
                Err(err) => {
                    println!("{peer} /ws: refused: {err}");
                    return Ok(rfc6455::http::error_response(&err).map(Full::new));
                }
            };
            let response = rfc6455::http::response(&accepted).map(|()| Full::new(Bytes::new()));
            let agreed = response
                .headers()
                .get("sec-websocket-extensions")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            println!("{peer} /ws: upgraded; offered {offered:?}, agreed {agreed:?}");
            // hyper sends the 101, then hands over the stream.
            let upgrade = hyper::upgrade::on(&mut request);
            tokio::spawn(async move {
                let stream = match upgrade.await {
                    Ok(upgraded) => TokioIo::new(upgraded),
                    Err(err) => return println!("{peer} /ws: upgrade failed: {err}"),
                };
                let mut ws =
                    rfc6455::tokio::WebSocket::from_connection(stream, accepted.connection);
                let outcome = loop {
                    match ws.recv().await {
                        Ok(Some(message)) => {
                            if let Err(err) = ws.send(&message).await {
                                break err.to_string();
                            }
                        }
                        Ok(None) => match ws.closed() {
                            Some(closed) => break format!("closed with {}", closed.code()),
                            None => break "closed".to_string(),
                        },
                        Err(err) => break err.to_string(),
                    }
                };
                println!("{peer} /ws: {outcome}");
            });
            Ok(response)
        }
        _ => Ok(text(404, "not found\n")),
    }
}
