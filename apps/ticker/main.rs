//! A server that pushes without being asked: once a second, "Hello!" and
//! a counter go to every connected client, and the page shows them as
//! they arrive.
//!
//! One task publishes: it makes each message once (a [`PreparedMessage`])
//! and offers it to every connection ([`WriteHalf::offer`]), written at
//! once if the socket takes it, queued if not, and never waited for. A
//! client more than [`BACKLOG`] bytes behind (it stopped reading) is
//! closed with 1013, so it holds no more memory than that while the
//! others go on.
//!
//! ```text
//! cargo run --manifest-path apps/Cargo.toml --bin ticker -- [ADDR] [--tls] [--origin URL]
//! ```
//!
//! One tokio listener (ADDR, default 127.0.0.1:8081) serves the page on
//! `GET /` and upgrades `GET /ws` to WebSocket; only pages served from here
//! may connect (403 for another Origin). `--tls` serves https:// and
//! wss:// with a self-signed certificate made at start.

#[path = "../chat/site.rs"]
mod site;
#[path = "../../examples/support/stop.rs"]
mod stop;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rfc6455::handshake::Request;
use rfc6455::tokio::{Offered, WhenFull, WriteHalf};
use rfc6455::Driver;
use rfc6455::{CloseCode, Config, Event, PreparedMessage};
use site::{Opened, Site, Stream};

/// The page: it opens the WebSocket and lists what arrives.
const PAGE: &str = include_str!("index.html");

/// How often the clients get a message.
const PERIOD: Duration = Duration::from_secs(1);

/// How far (in bytes of output) a client may fall behind before it is
/// closed with 1013: at about 16 bytes a message, over an hour of them.
const BACKLOG: usize = 64 * 1024;

/// The connected clients' writing halves, by a number of their own, and
/// the latest message, which a client gets as soon as it connects.
#[derive(Default)]
struct Clients {
    state: Mutex<State>,
}

type State = (HashMap<u64, WriteHalf<Stream>>, Option<PreparedMessage>);

impl Clients {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("no panic while holding it")
    }

    /// Adds a client, offering it the latest message first.
    fn join(&self, id: u64, writer: WriteHalf<Stream>) {
        let mut state = self.lock();
        if let Some(latest) = &state.1 {
            let _ = writer.offer(latest, BACKLOG, WhenFull::Drop);
        }
        state.0.insert(id, writer);
    }
}

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
        let clients = Arc::new(Clients::default());
        tokio::spawn(publish(clients.clone()));
        let mut next_id = 0;
        // SIGTERM or SIGINT: every client gets 1001, the server waits for
        // the closing handshakes and exits.
        stop::on_signals(CloseCode::GOING_AWAY, None);
        while let Some((tcp, peer)) = stop::unless_stopped(site.accept()).await {
            let (site, clients) = (site.clone(), clients.clone());
            next_id += 1;
            let id = next_id;
            tokio::spawn(async move {
                match site.open(tcp).await {
                    Ok(Opened::Http1(stream, request)) => {
                        serve(&site, &clients, id, stream, *request, peer).await
                    }
                    // Not offered in ALPN: the ticker serves HTTP/1.1 only.
                    Ok(Opened::Http2(_)) => println!("{peer}: HTTP/2 is not served here"),
                    Err(err) => println!("{peer}: {err}"),
                }
            });
        }
        let closed = stop::wait_closed().await;
        stop::report(closed);
        Ok(())
    })
}

/// Every second, "Hello! #n" to every client, made once and offered to
/// each; clients that are gone or too far behind leave the list.
async fn publish(clients: Arc<Clients>) {
    let mut tick = tokio::time::interval(PERIOD);
    let mut count: u64 = 0;
    loop {
        tick.tick().await;
        count += 1;
        let message = PreparedMessage::text(&format!("Hello! #{count}"));
        let policy = WhenFull::Close(CloseCode::TRY_AGAIN_LATER, "too far behind");
        let mut state = clients.lock();
        state.1 = Some(message.clone());
        state
            .0
            .retain(|id, writer| match writer.offer(&message, BACKLOG, policy) {
                Ok(Offered::Queued) => true,
                Ok(Offered::Closing) => {
                    println!("client #{id}: more than {BACKLOG} bytes behind, closing with 1013");
                    false
                }
                // Closing already; its reading half reports how it ended.
                Ok(Offered::Closed | Offered::Dropped) | Err(_) => false,
            });
    }
}

/// One HTTP request: the page, the WebSocket, or a 404.
async fn serve(
    site: &Site,
    clients: &Clients,
    id: u64,
    stream: Stream,
    request: Request,
    peer: SocketAddr,
) {
    if let Some(mut ws) = site::page_or_upgrade(site, stream, request, peer, PAGE).await {
        ws.watch(&stop::SHUTDOWN);
        println!("{peer}: connected");
        let (mut reader, writer) = ws.split();
        clients.join(id, writer);
        let outcome = read(&mut reader).await;
        clients.lock().0.remove(&id);
        println!("{peer}: {outcome}");
    }
}

/// Reads until the client leaves: that is where the adapter answers
/// Pings, runs the heartbeat, writes what the publisher queued when the
/// socket could not take it at once, and sees the client's Close.
async fn read(reader: &mut rfc6455::tokio::ReadHalf<Stream>) -> String {
    loop {
        match reader.recv_event().await {
            Ok(Event::Closed(closed)) => return format!("closed with {}", closed.code()),
            Ok(_) => {} // the page sends nothing; Pings and Pongs are handled
            Err(err) => return format!("connection lost: {err}"),
        }
    }
}
