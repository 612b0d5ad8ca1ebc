//! A server that pushes without being asked: every client gets "Hello!"
//! and a counter once a second, and the page shows them as they arrive.
//!
//! ```text
//! cargo run --example ticker -- [ADDR] [--tls] [--origin URL]
//! ```
//!
//! One tokio listener (ADDR, default 127.0.0.1:8081) serves the page on
//! `GET /` and upgrades `GET /ws` to WebSocket; only pages served from here
//! may connect (403 for another Origin). `--tls` serves https:// and
//! wss:// with a self-signed certificate made at start.

#[path = "../chat/site.rs"]
mod site;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rfc6455::handshake::Request;
use rfc6455::tokio::Error;
use rfc6455::{Config, Event};
use site::{Opened, Site, Stream};

/// The page: it opens the WebSocket and lists what arrives.
const PAGE: &str = include_str!("index.html");

/// How often each client gets a message.
const PERIOD: Duration = Duration::from_secs(1);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = site::Args::parse("127.0.0.1:8081");
    if args.rest.iter().any(|a| a == "--help") {
        println!("usage: ticker [ADDR] [--tls] [--origin URL]");
        return Ok(());
    }
    let mut config = Config::default();
    // A heartbeat, so a vanished page is noticed: a Ping after 15 s of
    // silence, and a close (1001) after 45 s.
    config.timeouts.ping_interval = Some(Duration::from_secs(15));
    config.timeouts.idle = Some(Duration::from_secs(45));
    // The page sends nothing but the closing handshake.
    config.max_message_size = Some(1024);
    // Browsers offer permessage-deflate; accept it when the feature is on.
    #[cfg(feature = "deflate")]
    {
        config.deflate = Some(rfc6455::DeflateConfig::default());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut site = Site::bind(&args.addr, args.tls, false, config).await?;
        if let Some(origin) = args.flag("--origin") {
            site.allow_origin(origin);
        }
        println!("ticker: listening on {}", site.url());
        println!("ticker: WebSocket at {}", site.ws_url("/ws"));
        println!("ticker: open {}/", site.url());
        let site = Arc::new(site);
        loop {
            let (tcp, peer) = match site.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: wait, do not exit.
                    println!("accept: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let site = site.clone();
            tokio::spawn(async move {
                match site.open(tcp).await {
                    Ok(Opened::Http1(stream, request)) => {
                        serve(&site, stream, *request, peer).await
                    }
                    // Not offered in ALPN: the ticker serves HTTP/1.1 only.
                    Ok(Opened::Http2(_)) => println!("{peer}: HTTP/2 is not served here"),
                    Err(err) => println!("{peer}: {err}"),
                }
            });
        }
    })
}

/// One HTTP request: the page, the WebSocket, or a 404.
async fn serve(site: &Site, mut stream: Stream, request: Request, peer: SocketAddr) {
    let route = site::route(request.path()).to_string();
    match (request.method(), route.as_str()) {
        ("GET", "/") => {
            let page = site::response("200 OK", "", "text/html; charset=utf-8", PAGE);
            site::send(&mut stream, &page).await;
        }
        ("GET", "/ws") => {
            if let Err(why) = site.origin_allowed(request.origin()) {
                println!("{peer} /ws: refused with 403: {why}");
                return site::send(&mut stream, &request.reject(403, &why)).await;
            }
            if !request.is_upgrade() {
                return site::not_upgrade(&mut stream).await;
            }
            match site::upgrade(stream, request).await {
                Ok(ws) => {
                    println!("{peer}: connected");
                    let outcome = push(ws).await;
                    println!("{peer}: {outcome}");
                }
                Err(err) => println!("{peer} /ws: {err}"),
            }
        }
        _ => {
            let body = "not found\n";
            let page = site::response("404 Not Found", "", "text/plain; charset=utf-8", body);
            site::send(&mut stream, &page).await;
        }
    }
}

/// Sends "Hello! #n" every second until the client leaves. Reading goes on
/// at the same time: that is where the adapter answers Pings, runs the
/// heartbeat and sees the client's Close.
async fn push(ws: rfc6455::tokio::WebSocket<Stream>) -> String {
    let (mut reader, mut writer) = ws.split();
    let mut tick = tokio::time::interval(PERIOD);
    let mut count: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                count += 1;
                match writer.send_text(&format!("Hello! #{count}")).await {
                    Ok(()) => {}
                    // The client's Close arrived first; the reader reports it.
                    Err(Error::Usage(_)) => {}
                    Err(err) => return format!("sent {count}, then: {err}"),
                }
            }
            event = reader.recv_event() => match event {
                Ok(Event::Closed(closed)) => {
                    return format!("sent {count}, closed with {}", closed.code());
                }
                Ok(_) => {} // the page sends nothing; Pings and Pongs are handled
                Err(err) => return format!("sent {count}, then: {err}"),
            },
        }
    }
}
