//! A chat for browser tabs: every message goes to every open tab, with
//! names, join and leave notices and a "typing..." indicator.
//!
//! ```text
//! cargo run --manifest-path apps/Cargo.toml --bin chat -- [ADDR] [--tls] [--token TOKEN] [--heartbeat SECS] [--origin URL] [--server axum] [--redis URL] [--rate MSGS]
//! ```
//!
//! One tokio listener (ADDR, default 127.0.0.1:8080) serves the page on
//! `GET /` and upgrades `GET /ws` to WebSocket: the request head is read
//! once with the library's parser, then the path decides. Open the address
//! it prints (it carries the token) in two tabs.
//!
//! At the upgrade the server checks, in this order:
//! - Origin: only pages served from here may connect (403 otherwise);
//! - the `token` query parameter, printed at start or set with `--token`
//!   (401 without it or with a wrong one).
//!
//! Once connected, each client may send [`BURST`] messages at once and
//! [`RATE`] a second after that (`--rate` sets another, for load tests);
//! more closes its connection with 1008
//! (policy violation). Messages are limited to [`MAX_MESSAGE`] bytes (1009
//! beyond). The heartbeat pings a silent client every `--heartbeat`
//! seconds (default 15) and drops it after three times that without a
//! sign of life. `--tls` serves https:// and wss:// with a self-signed
//! certificate made at start; with the `http2` feature the browser may
//! then choose HTTP/2 (ALPN `h2`), and the page and every WebSocket (RFC
//! 8441's extended CONNECT) share its one connection. The log says which
//! protocol each tab's WebSocket came over. `--server axum` (feature
//! `axum`, without `--tls`) serves the same chat as an axum app, the
//! WebSocket through this crate's axum extractor.
//!
//! `--redis URL` (`redis://127.0.0.1:6379/`, say) makes this server one of
//! several behind a load balancer: what its tabs say goes to the tabs of
//! the others through a Redis stream, and theirs comes here (see
//! `apps/support/bus.rs`); who is here, on every server, is kept in
//! Redis with an expiry, so the users of a server that crashed leave the
//! list within [`PRESENCE_TTL`]. While Redis is away this server's own
//! chat goes on, and its tabs are told that the others' messages are
//! delayed. Without the flag the chat is one process, as before.
//!
//! SIGTERM or SIGINT stops the server gracefully: it stops accepting,
//! closes every tab with 1001 (Going Away; `--restart`: 1012, Service
//! Restart), waits for the closing handshakes, hands its last events
//! (those users leaving) to Redis, and exits. The page reconnects, with
//! backoff and jitter, through the balancer to another server.
//!
//! Browser to server, JSON text messages: `{"type":"message","text":"..."}`,
//! `{"type":"typing"}`. Server to browser: `welcome` (your id and name, who
//! is here), `join`, `leave` (with why), `message`, `typing`, and with
//! `--redis`, `bus` (`"up"`: whether the other servers' messages arrive
//! in time; also in `welcome`).

#[path = "../support/bus.rs"]
mod bus;
mod site;
#[path = "../../examples/support/stop.rs"]
mod stop;

use rfc6455::Driver;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::{Bus, Replay};
use rfc6455::handshake::Request;
use rfc6455::tokio::Error;
use rfc6455::{CloseCode, Config, Event, Message, PreparedMessage, ProtocolError};
use serde_json::{json, Value};
use site::{Opened, Site, Stream};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// The page: HTML, CSS and the script using the browser's WebSocket API.
const PAGE: &str = include_str!("index.html");

/// Messages a client may send at once before the rate applies.
const BURST: f64 = 20.0;
/// Messages a second a client may send, on average, after its burst.
const RATE: f64 = 5.0;
/// The largest message accepted from a browser, in bytes.
const MAX_MESSAGE: usize = 4096;
/// The longest name kept, in characters.
const MAX_NAME: usize = 24;
/// A tab that takes longer than this to accept a message is dropped: it
/// must not hold up the others (its socket buffer is full; it is gone or
/// stuck).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// With `--redis`: a server's users stay in the shared list this long
/// after it last refreshed them (it does five times as often), so those of
/// a server that crashed leave the others' lists within about this time.
const PRESENCE_TTL: Duration = Duration::from_secs(5);
/// Events a tab may fall behind by (a join storm of thousands of tabs
/// after a restart fits). One that falls further is closed with 1013 and
/// comes back for what it missed (`since`): a gap is never silent.
const EVENTS: usize = 8192;
/// The most events written to a tab in one write.
const BATCH: usize = 256;
/// The messages each server keeps for tabs that come back (`since`).
const HISTORY: usize = 2000;
/// The Redis stream is `chat:events` and the presence set `chat:presence`.
const BUS: &str = "chat";
const PRESENCE: &str = "chat:presence";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = site::Args::parse("127.0.0.1:8080");
    if args.rest.iter().any(|a| a == "--help") {
        println!("usage: chat [ADDR] [--tls] [--token TOKEN] [--heartbeat SECS] [--origin URL] [--server axum] [--redis URL] [--rate MSGS] [--restart]");
        return Ok(());
    }
    let token = match args.flag("--token") {
        Some(token) => token.to_string(),
        None => format!("{:016x}", rand::random::<u64>()),
    };
    let heartbeat = match args.flag("--heartbeat") {
        Some(secs) => Duration::from_secs_f64(secs.parse()?),
        None => Duration::from_secs(15),
    };
    let rate = match args.flag("--rate") {
        Some(rate) => rate.parse()?,
        None => RATE,
    };
    let mut config = Config::default();
    // A Ping after `heartbeat` of silence; a browser answers it by itself,
    // even from a background tab. Three times that without any frame and
    // the tab is taken for dead: the connection closes with 1001, waits a
    // little for the answer, and ends.
    config.timeouts.ping_interval = Some(heartbeat);
    config.timeouts.idle = Some(heartbeat * 3);
    config.timeouts.close = Some((heartbeat * 2).min(Duration::from_secs(5)));
    config.max_frame_size = Some(MAX_MESSAGE);
    config.max_message_size = Some(MAX_MESSAGE);
    // Browsers offer permessage-deflate; accept it when the feature is on.
    #[cfg(feature = "deflate")]
    {
        config.deflate = Some(rfc6455::DeflateConfig::default());
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut site = Site::bind(&args.addr, args.tls, cfg!(feature = "http2"), config).await?;
        if let Some(origin) = args.flag("--origin") {
            site.allow_origin(origin);
        }
        println!("chat: listening on {}", site.url());
        println!("chat: WebSocket at {}", site.ws_url("/ws"));
        println!("chat: open {}/?token={token} in two tabs", site.url());
        let chat = match args.flag("--redis") {
            Some(url) => {
                // The last messages before this server started, for tabs
                // that come back to it having missed them.
                let replay = Replay {
                    last: HISTORY,
                    keeps: |event| event["type"] == "message",
                };
                let (bus, deliveries) = Bus::start(url, BUS, Some(replay))?;
                println!("chat: one of several servers, through Redis at {url}");
                let chat = Arc::new(Chat::new(token, rate, Some(bus.clone())));
                tokio::spawn(cluster::run(chat.clone(), bus, deliveries));
                chat
            }
            None => Arc::new(Chat::new(token, rate, None)),
        };
        if args.flag("--server") == Some("axum") {
            #[cfg(feature = "axum")]
            return axum_app::serve(site, chat).await;
            #[cfg(not(feature = "axum"))]
            return Err("--server axum needs the axum feature".into());
        }
        let site = Arc::new(site);
        let code = match args.rest.iter().any(|a| a == "--restart") {
            true => CloseCode::SERVICE_RESTART,
            false => CloseCode::GOING_AWAY,
        };
        stop::on_signals(code, None);
        if chat.bus.is_some() {
            // A tab that comes back here must find what it missed: the
            // history from the stream first (the connections wait in the
            // listen backlog meanwhile), unless Redis cannot be reached.
            let mut ready = chat.ready.subscribe();
            let loaded = tokio::time::timeout(Duration::from_secs(5), ready.wait_for(|r| *r));
            if loaded.await.is_err() {
                println!("chat: serving without the history (Redis not reached in 5 s)");
            }
        }
        while let Some((tcp, peer)) = stop::unless_stopped(site.accept()).await {
            let (site, chat) = (site.clone(), chat.clone());
            tokio::spawn(async move {
                match site.open(tcp).await {
                    Ok(Opened::Http1(stream, request)) => {
                        serve(&site, &chat, stream, *request, peer).await
                    }
                    #[cfg(feature = "http2")]
                    Ok(Opened::Http2(stream)) => http2::serve(site, chat, stream, peer).await,
                    #[cfg(not(feature = "http2"))]
                    Ok(Opened::Http2(_)) => println!("{peer}: HTTP/2 needs the http2 feature"),
                    Err(err) => println!("{peer}: {err}"),
                }
            });
        }
        // Stopped: every tab was sent its Close; wait for the handshakes,
        // then for this server's last events to reach the others.
        let closed = stop::wait_closed().await;
        if let Some(bus) = &chat.bus {
            let _ = tokio::time::timeout(Duration::from_secs(2), bus.flush()).await;
        }
        stop::report(closed);
        Ok(())
    })
}

/// What every connection shares: who is here, and the channel every tab
/// listens to.
struct Chat {
    token: String,
    /// Every event, encoded once as the frame every tab receives.
    events: broadcast::Sender<PreparedMessage>,
    /// The users connected to this server.
    users: Mutex<BTreeMap<u64, String>>,
    next_id: AtomicU64,
    /// Messages a second a tab may send after its burst.
    rate: f64,
    /// With `--redis`: the other servers, and their users.
    bus: Option<Arc<Bus>>,
    remote: Mutex<cluster::Remote>,
    /// Where this server's messages come from (`origin`), and the number
    /// of its last one (`seq`): each server numbers its own in order, and
    /// every server hears them in that order.
    origin: String,
    last_seq: AtomicU64,
    /// The last [`HISTORY`] messages delivered here, from every server, for
    /// tabs that come back and say what they saw last from each.
    history: Mutex<std::collections::VecDeque<Value>>,
    /// With `--redis`: the history holds what the stream had when this
    /// server started.
    ready: tokio::sync::watch::Sender<bool>,
}

impl Chat {
    fn new(token: String, rate: f64, bus: Option<Arc<Bus>>) -> Self {
        // Ids unique across servers: each starts at a random multiple of
        // 2^32 (within JavaScript's exact integers).
        let first = match bus {
            Some(_) => (rand::random::<u64>() >> 44).max(1) << 32,
            None => 1,
        };
        let origin = match &bus {
            Some(bus) => bus.server().to_string(),
            None => "here".to_string(),
        };
        Chat {
            token,
            events: broadcast::channel(EVENTS).0,
            users: Mutex::default(),
            next_id: AtomicU64::new(first),
            rate,
            bus,
            remote: Mutex::default(),
            origin,
            last_seq: AtomicU64::new(0),
            history: Mutex::default(),
            ready: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Sends `event` to every tab, the sender's included, and on every
    /// other server.
    fn broadcast(&self, event: Value) {
        if let Some(bus) = &self.bus {
            bus.publish(&event);
        }
        self.deliver(&event);
    }

    /// Sends `event` to the tabs of this server, and keeps it if it is a
    /// message. Under the history's lock, so that a tab that comes back
    /// finds in the history every message before the live ones.
    fn deliver(&self, event: &Value) {
        let mut history = self.history.lock().expect("no panic while holding it");
        self.deliver_held(event, &mut history);
    }

    /// [`deliver`](Chat::deliver), the history's lock held.
    fn deliver_held(&self, event: &Value, history: &mut std::collections::VecDeque<Value>) {
        if event["type"] == "message" {
            self.remember(event, history);
        }
        // No receiver is not an error: nobody is connected.
        let _ = self.events.send(PreparedMessage::text(&event.to_string()));
    }

    /// Keeps a message in the history, once.
    fn remember(&self, event: &Value, history: &mut std::collections::VecDeque<Value>) {
        let (origin, seq) = (&event["origin"], event["seq"].as_u64().unwrap_or(0));
        let kept = history
            .iter()
            .rev()
            .find(|e| &e["origin"] == origin)
            .is_some_and(|e| e["seq"].as_u64().unwrap_or(0) >= seq);
        if kept {
            return;
        }
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(event.clone());
    }

    /// Sends a message of this server's everywhere, numbered: the number
    /// is taken, the message published and delivered here under the
    /// history's lock, so every server and every tab gets this server's
    /// messages in the order of their numbers (which is what lets a tab
    /// drop one it has by its number alone).
    fn say(&self, id: u64, name: &str, text: &str) {
        let mut history = self.history.lock().expect("no panic while holding it");
        let seq = self.last_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let event = json!({
            "type": "message", "id": id, "name": name, "text": text,
            "origin": self.origin, "seq": seq
        });
        if let Some(bus) = &self.bus {
            bus.publish(&event);
        }
        self.deliver_held(&event, &mut history);
    }

    /// For a tab that comes back, having seen each origin's messages up to
    /// the number in `since`: the later ones this server has, in order.
    /// And the marks a new tab starts from: the last number of each origin
    /// here (what came before it joined is not missed).
    fn missed(&self, since: Option<&serde_json::Map<String, Value>>) -> (Vec<Value>, Value) {
        let history = self.history.lock().expect("no panic while holding it");
        let mut marks = serde_json::Map::new();
        let mut missed = Vec::new();
        for event in history.iter() {
            let (origin, seq) = (event["origin"].as_str().unwrap_or(""), &event["seq"]);
            marks.insert(origin.to_string(), seq.clone());
            if let Some(since) = since {
                let seen = since.get(origin).and_then(Value::as_u64).unwrap_or(0);
                if seq.as_u64().unwrap_or(0) > seen {
                    missed.push(event.clone());
                }
            }
        }
        marks.insert(
            self.origin.clone(),
            json!(self.last_seq.load(Ordering::Relaxed)),
        );
        (missed, Value::Object(marks))
    }

    /// Everyone here, on this server and (with `--redis`) the others.
    fn users(&self) -> Value {
        let users = self.users.lock().expect("no panic while holding it");
        let remote = self.remote.lock().expect("no panic while holding it");
        let remote = remote.users.iter().map(|(id, user)| (id, &user.name));
        users
            .iter()
            .chain(remote)
            .map(|(id, name)| json!({ "id": id, "name": name }))
            .collect()
    }

    /// A user as a member of the presence set: the same text every time.
    fn member(&self, id: u64, name: &str) -> Option<String> {
        let bus = self.bus.as_ref()?;
        Some(json!({ "id": id, "name": name, "server": bus.server() }).to_string())
    }
}

/// One HTTP request: the page, the WebSocket, or a 404.
async fn serve(
    site: &Site,
    chat: &Arc<Chat>,
    mut stream: Stream,
    request: Request,
    peer: SocketAddr,
) {
    let path = request.path().to_string();
    match (request.method(), site::route(&path)) {
        ("GET", "/") => {
            let page = site::response("200 OK", "", "text/html; charset=utf-8", PAGE);
            site::send(&mut stream, &page).await;
        }
        ("GET", "/ws") => {
            if let Err((status, why)) = admit(site, chat, request.origin(), &path) {
                // The route alone: the query holds the token.
                println!("{peer} /ws: refused with {status}: {why}");
                site::send(&mut stream, &request.reject(status, &why)).await;
                return;
            }
            if !request.is_upgrade() {
                return site::not_upgrade(&mut stream).await;
            }
            // Chromium offers permessage-deflate; the log shows what was
            // offered, the page shows what was agreed (WebSocket.extensions).
            let offered = request.extensions().join(", ");
            match site::upgrade(stream, request).await {
                Ok(ws) => {
                    println!("{peer} /ws: upgraded (HTTP/1.1); extensions offered: {offered:?}");
                    session(chat, Tab::Http1(ws), &path).await;
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

/// The checks at the upgrade (the request's Origin and path), as the
/// status and reason to refuse with. A plain GET of /ws runs them too, so
/// a page can learn why it was refused.
fn admit(site: &Site, chat: &Chat, origin: Option<&str>, path: &str) -> Result<(), (u16, String)> {
    site.origin_allowed(origin).map_err(|why| (403, why))?;
    match query_param(path, "token") {
        None => Err((
            401,
            "a token is required: open the address the server printed, which ends in ?token=..."
                .into(),
        )),
        Some(token) if !same(token.as_bytes(), chat.token.as_bytes()) => {
            Err((401, "wrong token".into()))
        }
        Some(_) => Ok(()),
    }
}

/// The value of `name` in the query string of `path`, percent-decoded.
fn query_param(path: &str, name: &str) -> Option<String> {
    let (_, query) = path.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

/// `%XX` to the byte, `+` to a space; the result read as UTF-8.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A name for the chat: printable, trimmed, not too long.
fn clean_name(name: &str, id: u64) -> String {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    match name.trim() {
        "" => format!("guest-{id}"),
        name => name.to_string(),
    }
}

/// Allows [`BURST`] messages at once (or a second's worth, if more), then
/// `rate` a second.
struct Bucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64) -> Self {
        let burst = BURST.max(rate);
        Bucket {
            tokens: burst,
            burst,
            rate,
            last: Instant::now(),
        }
    }

    /// Takes one message's worth; `false` when the client is over its rate.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// What a tab asks for.
enum Incoming {
    Say(String),
    Typing,
}

fn parse(message: &Message) -> Option<Incoming> {
    let value: Value = serde_json::from_str(message.as_text()?).ok()?;
    match value.get("type")?.as_str()? {
        "message" => Some(Incoming::Say(
            value.get("text")?.as_str()?.trim().to_string(),
        )),
        "typing" => Some(Incoming::Typing),
        _ => None,
    }
}

/// A tab's WebSocket, however it came: the tokio adapter's over HTTP/1.1,
/// or a stream of an HTTP/2 connection. Both drive the same core; the
/// chat needs these three calls, and waits for an event only where it may
/// drop the wait (both adapters' `recv_event` lose nothing when dropped).
/// The HTTP/2 stream's WebSocket is boxed, as the others keep their state
/// behind a pointer already.
enum Tab {
    Http1(rfc6455::tokio::WebSocket<Stream>),
    #[cfg(feature = "axum")]
    Axum(rfc6455::axum::WebSocket),
    #[cfg(feature = "http2")]
    Http2(Box<rfc6455::http2::WebSocket>),
}

impl Tab {
    async fn recv_event(&mut self) -> Result<Event, Error> {
        match self {
            Tab::Http1(ws) => ws.recv_event().await,
            #[cfg(feature = "axum")]
            Tab::Axum(ws) => ws.recv_event().await,
            #[cfg(feature = "http2")]
            Tab::Http2(ws) => ws.recv_event().await,
        }
    }

    async fn queue_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        match self {
            Tab::Http1(ws) => ws.queue_prepared(prepared).await,
            #[cfg(feature = "axum")]
            Tab::Axum(ws) => ws.queue_prepared(prepared).await,
            #[cfg(feature = "http2")]
            Tab::Http2(ws) => ws.queue_prepared(prepared).await,
        }
    }

    async fn flush(&mut self) -> Result<(), Error> {
        match self {
            Tab::Http1(ws) => ws.flush().await,
            #[cfg(feature = "axum")]
            Tab::Axum(ws) => ws.flush().await,
            #[cfg(feature = "http2")]
            Tab::Http2(ws) => ws.flush().await,
        }
    }

    /// Closes with the server's shutdown (1001 or 1012) when it stops.
    fn watch(&mut self, shutdown: &rfc6455::Shutdown) {
        match self {
            Tab::Http1(ws) => ws.watch(shutdown),
            #[cfg(feature = "axum")]
            Tab::Axum(ws) => ws.watch(shutdown),
            #[cfg(feature = "http2")]
            Tab::Http2(ws) => ws.watch(shutdown),
        }
    }

    async fn close(&mut self, code: CloseCode, why: &str) -> Result<(), Error> {
        match self {
            Tab::Http1(ws) => ws.close(code, why).await,
            #[cfg(feature = "axum")]
            Tab::Axum(ws) => ws.close(code, why).await,
            #[cfg(feature = "http2")]
            Tab::Http2(ws) => ws.close(code, why).await,
        }
    }
}

/// One connected tab, from welcome to leave notice.
/// `path`: the request's, whose query names the user (`name`) and, for a
/// tab that comes back, what it saw last (`since`).
async fn session(chat: &Chat, mut tab: Tab, path: &str) {
    tab.watch(&stop::SHUTDOWN);
    let name = query_param(path, "name").unwrap_or_default();
    let since = query_param(path, "since");
    let since = since.as_deref();
    let id = chat.next_id.fetch_add(1, Ordering::Relaxed);
    let name = clean_name(&name, id);
    // Listen before announcing, so this tab sees its own join.
    let mut events = chat.events.subscribe();
    chat.users
        .lock()
        .expect("no panic while holding it")
        .insert(id, name.clone());
    println!("{name} (#{id}) joined");
    let bus_up = chat.bus.as_ref().map(|bus| *bus.up().borrow());
    // A tab that comes back says what it saw last from each server: it
    // gets what it missed (after the welcome, before what comes live;
    // it drops what it has already).
    let since: Option<Value> = since.and_then(|s| serde_json::from_str(s).ok());
    let (missed, marks) = chat.missed(since.as_ref().and_then(Value::as_object));
    let welcome = json!({
        "type": "welcome", "id": id, "name": name, "users": chat.users(), "bus": bus_up,
        "marks": marks, "missed": missed.len()
    });
    // Why we closed this tab, once we did.
    let mut closing: Option<&str> = None;
    // The welcome and what was missed, in one write.
    let first = std::iter::once(&welcome).chain(&missed);
    let first: Vec<_> = first
        .map(|event| PreparedMessage::text(&event.to_string()))
        .collect();
    if let Err(error) = send(&mut tab, &first).await {
        println!("{name} (#{id}): {error}");
    }
    if let (Some(bus), Some(member)) = (&chat.bus, chat.member(id, &name)) {
        // Present before the join is published: a server that hears of
        // the join finds the user in the shared list.
        bus.present(PRESENCE, member, PRESENCE_TTL);
    }
    chat.broadcast(json!({ "type": "join", "id": id, "name": name }));

    let mut bucket = Bucket::new(chat.rate);
    let why = loop {
        tokio::select! {
            event = tab.recv_event() => match event {
                Ok(Event::Message(message)) => {
                    // Once we closed, what still arrives is read and dropped.
                    if closing.is_some() {
                        continue;
                    }
                    let why = if !bucket.take() {
                        Some("rate limit: too many messages")
                    } else {
                        match parse(&message) {
                            Some(Incoming::Say(text)) if text.is_empty() => None,
                            Some(Incoming::Say(text)) => {
                                chat.say(id, &name, &text);
                                None
                            }
                            Some(Incoming::Typing) => {
                                chat.broadcast(json!({ "type": "typing", "id": id, "name": name }));
                                None
                            }
                            None => Some("expected JSON with type message or typing"),
                        }
                    };
                    if let Some(why) = why {
                        println!("{name} (#{id}): closing with 1008: {why}");
                        closing = Some(why);
                        // The reader sees the closing handshake finish.
                        let _ = tab.close(CloseCode::POLICY_VIOLATION, why).await;
                    }
                }
                Ok(Event::Closed(closed)) => {
                    let reason = closed
                        .received
                        .as_ref()
                        .or(closed.sent.as_ref())
                        .map(|frame| frame.reason.clone())
                        .unwrap_or_default();
                    break match (closing, &closed.error) {
                        // We never closed, so the heartbeat did: the tab was
                        // silent for three intervals and did not answer the
                        // Close either.
                        (None, Some(ProtocolError::Timeout)) => {
                            "dropped: no answer to the heartbeat".to_string()
                        }
                        (_, Some(error)) => format!("protocol error: {error}"),
                        (Some(why), None) => format!("closed by the server: {why}"),
                        (None, None) if reason.is_empty() => format!("closed ({})", closed.code()),
                        (None, None) => format!("closed ({}: {reason})", closed.code()),
                    };
                }
                Ok(_) => {} // Pings and Pongs: the connection answers them.
                Err(error) => break format!("connection lost: {error}"),
            },
            event = events.recv() => match event {
                Ok(prepared) if closing.is_none() => {
                    match send_batch(&mut tab, prepared, &mut events).await {
                        Ok(None) => {}
                        Ok(Some(missed)) => {
                            closing = Some(BEHIND);
                            fell_behind(&mut tab, &name, id, missed).await;
                        }
                        Err(error) => break format!("dropped: {error}"),
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) if closing.is_none() => {
                    closing = Some(BEHIND);
                    fell_behind(&mut tab, &name, id, missed).await;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break "server stopped".to_string(),
            },
        }
    };
    chat.users
        .lock()
        .expect("no panic while holding it")
        .remove(&id);
    println!("{name} (#{id}) left: {why}");
    if let (Some(bus), Some(member)) = (&chat.bus, chat.member(id, &name)) {
        bus.absent(PRESENCE, member);
    }
    chat.broadcast(json!({ "type": "leave", "id": id, "name": name, "why": why }));
}

/// Why a tab that fell behind is closed.
const BEHIND: &str = "fell behind: come back for what was missed";

/// A tab that fell more than [`EVENTS`] behind: the events it missed are
/// gone from the channel, so rather than leave a gap it is closed with
/// 1013 (Try Again Later). It comes back saying what it saw last and gets
/// the missed messages from the history, as after a restart.
async fn fell_behind(tab: &mut Tab, name: &str, id: u64, missed: u64) {
    println!("{name} (#{id}): missed {missed} events; closing with 1013");
    // The reader sees the closing handshake finish.
    let _ = tab.close(CloseCode::TRY_AGAIN_LATER, BEHIND).await;
}

/// Sends `first` and every event already waiting after it (up to
/// [`BATCH`]) in one write: a burst of events (a join storm, a busy room)
/// costs a write per burst, not per event. `Ok(Some(n))`: the tab fell
/// `n` events behind on the way (what came before the gap was sent).
async fn send_batch(
    tab: &mut Tab,
    first: PreparedMessage,
    events: &mut broadcast::Receiver<PreparedMessage>,
) -> Result<Option<u64>, String> {
    let mut batch = vec![first];
    let mut behind = None;
    while batch.len() < BATCH {
        match events.try_recv() {
            Ok(prepared) => batch.push(prepared),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                behind = Some(missed);
                break;
            }
            Err(_) => break,
        }
    }
    send(tab, &batch).await.map(|()| behind)
}

/// Sends messages in one write, giving up on a tab that does not take
/// them in time: a tab that stops reading is dropped after
/// [`SEND_TIMEOUT`], and one that falls behind by more than the channel
/// holds is closed ([`fell_behind`]), so no tab holds up
/// the others or the memory.
async fn send(tab: &mut Tab, messages: &[PreparedMessage]) -> Result<(), String> {
    let queued = async {
        for prepared in messages {
            tab.queue_prepared(prepared).await?;
        }
        tab.flush().await
    };
    match tokio::time::timeout(SEND_TIMEOUT, queued).await {
        Ok(Ok(())) => Ok(()),
        // The tab is closing (its Close frame arrived first): the reader
        // will see the end.
        Ok(Err(Error::Usage(_))) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("took more than {SEND_TIMEOUT:?} to take a message")),
    }
}

/// The chat across servers (`--redis`): the events of the others, their
/// users, and whether Redis is reachable.
mod cluster {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use serde_json::{json, Value};
    use tokio::sync::mpsc;
    use tokio::time::Instant;

    use super::{Bus, Chat, PRESENCE, PRESENCE_TTL};

    /// The users of the other servers, as this server knows them.
    #[derive(Default)]
    pub struct Remote {
        pub users: BTreeMap<u64, User>,
        /// Until then, a user missing from the shared list is not taken
        /// for gone: Redis was just (re)started, and the servers have not
        /// all listed their users again yet.
        grace: Option<Instant>,
    }

    pub struct User {
        pub name: String,
        /// Seen in the shared list: from then on, missing from it means
        /// their server stopped refreshing it (crashed, or cut off).
        listed: bool,
    }

    /// Follows the other servers until this one stops.
    pub async fn run(chat: Arc<Chat>, bus: Arc<Bus>, mut deliveries: mpsc::Receiver<Value>) {
        let local = {
            let chat = chat.clone();
            move || {
                let users = chat.users.lock().expect("no panic while holding it");
                users
                    .iter()
                    .filter_map(|(id, name)| chat.member(*id, name))
                    .collect()
            }
        };
        let mut presence = bus.presence(PRESENCE, PRESENCE_TTL, local);
        let mut up = bus.up();
        loop {
            tokio::select! {
                Some(event) = deliveries.recv() => from_server(&chat, event),
                Some(members) = presence.recv() => listed(&chat, &bus, &members),
                Ok(()) = up.changed() => {
                    let up = *up.borrow_and_update();
                    if up {
                        let mut remote = chat.remote.lock().expect("no panic while holding it");
                        remote.grace = Some(Instant::now() + PRESENCE_TTL + PRESENCE_TTL / 5);
                    }
                    chat.deliver(&json!({ "type": "bus", "up": up }));
                }
                else => return,
            }
        }
    }

    /// An event from another server, for the tabs here. Joins and leaves
    /// also come from the shared list; each is shown once.
    fn from_server(chat: &Chat, event: Value) {
        if event["replayed_end"] == true {
            chat.ready.send_replace(true);
            return;
        }
        if event["replayed"] == true {
            // From before this server started: history only.
            if event["type"] == "message" {
                let mut history = chat.history.lock().expect("no panic while holding it");
                chat.remember(&event, &mut history);
            }
            return;
        }
        let id = event["id"].as_u64().unwrap_or(0);
        let mut remote = chat.remote.lock().expect("no panic while holding it");
        let show = match event["type"].as_str() {
            Some("join") => {
                let name = event["name"].as_str().unwrap_or("").to_string();
                let user = User {
                    name,
                    listed: false,
                };
                remote.users.insert(id, user).is_none()
            }
            Some("leave") => remote.users.remove(&id).is_some(),
            Some("message" | "typing") => true,
            _ => false,
        };
        drop(remote);
        if show {
            chat.deliver(&event);
        }
    }

    /// The shared list, as Redis has it now: users of other servers that
    /// are new here join, and those whose server stopped refreshing them
    /// leave.
    fn listed(chat: &Chat, bus: &Bus, members: &[String]) {
        let mut notices = Vec::new();
        let mut remote = chat.remote.lock().expect("no panic while holding it");
        let mut present = BTreeSet::new();
        for member in members {
            let Ok(member) = serde_json::from_str::<Value>(member) else {
                continue;
            };
            let (Some(id), Some(name), Some(server)) = (
                member["id"].as_u64(),
                member["name"].as_str(),
                member["server"].as_str(),
            ) else {
                continue;
            };
            if server == bus.server() {
                continue;
            }
            present.insert(id);
            let user = remote.users.entry(id).or_insert_with(|| {
                notices.push(json!({ "type": "join", "id": id, "name": name }));
                User {
                    name: name.to_string(),
                    listed: true,
                }
            });
            user.listed = true;
        }
        let settled = remote.grace.is_none_or(|until| Instant::now() >= until);
        if settled {
            remote.grace = None;
            let gone: Vec<u64> = remote
                .users
                .iter()
                .filter(|(id, user)| user.listed && !present.contains(id))
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                let user = remote.users.remove(&id).expect("listed above");
                let why = "their server stopped answering";
                notices.push(json!({ "type": "leave", "id": id, "name": user.name, "why": why }));
            }
        }
        drop(remote);
        for notice in notices {
            chat.deliver(&notice);
        }
    }
}

/// The chat over HTTP/2 (feature `http2`, with `--tls` when the browser
/// chooses `h2`): the page and every tab's WebSocket are streams of one
/// connection, each WebSocket an extended CONNECT (RFC 8441).
#[cfg(feature = "http2")]
mod http2 {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use rfc6455::handshake::{Accept, ExtendedConnectResponse};
    use rfc6455::http2::Incoming;

    use super::site::{self, Site, Stream};
    use super::{admit, session, Chat, Tab, PAGE};

    /// One HTTP/2 connection: each request on a task of its own.
    pub async fn serve(site: Arc<Site>, chat: Arc<Chat>, stream: Stream, peer: SocketAddr) {
        let config = site.config().clone();
        let served = rfc6455::http2::serve_connection(stream, config, move |incoming| {
            let (site, chat) = (site.clone(), chat.clone());
            async move { request(&site, &chat, incoming, peer).await }
        });
        if let Err(err) = served.await {
            println!("{peer}: HTTP/2 connection: {err}");
        }
    }

    /// One stream: the page, the WebSocket, or a 404.
    async fn request(site: &Site, chat: &Arc<Chat>, incoming: Incoming, peer: SocketAddr) {
        let request = incoming.request();
        let path = request.path().to_string();
        let method = request.pseudo_headers().method.clone();
        match (request.is_websocket(), method.as_str(), site::route(&path)) {
            (false, "GET", "/") => {
                incoming.respond(&ExtendedConnectResponse::new(
                    200,
                    "text/html; charset=utf-8",
                    PAGE,
                ));
            }
            (true, _, "/ws") => {
                if let Err((status, why)) = admit(site, chat, request.origin(), &path) {
                    println!("{peer} /ws: refused with {status}: {why}");
                    return incoming.reject(status, &why);
                }
                let offered = request.header("sec-websocket-extensions").unwrap_or("");
                let offered = offered.to_string();
                match incoming.accept(Accept::new()) {
                    Ok(ws) => {
                        println!(
                            "{peer} /ws: upgraded (HTTP/2 extended CONNECT); \
                             extensions offered: {offered:?}"
                        );
                        session(chat, Tab::Http2(Box::new(ws)), &path).await;
                    }
                    Err(err) => println!("{peer} /ws: {err}"),
                }
            }
            // The page asks a refused WebSocket's address why (over fetch):
            // the checks, then "WebSocket only".
            (false, "GET", "/ws") => match admit(site, chat, request.origin(), &path) {
                Err((status, why)) => incoming.reject(status, &why),
                Ok(()) => incoming.reject(400, "this address accepts WebSocket connections only"),
            },
            _ => incoming.respond(&ExtendedConnectResponse::new(
                404,
                "text/plain; charset=utf-8",
                "not found\n",
            )),
        }
    }
}

/// The chat as an axum app (`--server axum`): the same page, checks and
/// sessions, the WebSocket through `rfc6455::axum::WebSocketUpgrade`.
#[cfg(feature = "axum")]
mod axum_app {
    use std::sync::Arc;

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::{Html, IntoResponse, Response};
    use axum::routing::get;
    use axum::Router;
    use rfc6455::axum::{WebSocketUpgrade, WebSocketUpgradeRejection};
    use rfc6455::handshake::HandshakeError;

    use super::site::Site;
    use super::{admit, session, Chat, Tab, PAGE};

    type Shared = (Arc<Site>, Arc<Chat>);

    pub async fn serve(mut site: Site, chat: Arc<Chat>) -> Result<(), Box<dyn std::error::Error>> {
        let listener = site.take_listener().ok_or("no listener")?;
        println!("chat: serving with axum");
        let app = Router::new()
            .route("/", get(|| async { Html(PAGE) }))
            .route("/ws", get(ws))
            .with_state((Arc::new(site), chat));
        axum::serve(listener, app).await?;
        Ok(())
    }

    /// The checks first (a plain GET of /ws runs them too, so the page can
    /// learn why it was refused), then the upgrade or its rejection.
    async fn ws(
        State((site, chat)): State<Shared>,
        uri: Uri,
        headers: HeaderMap,
        upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    ) -> Response {
        let path = uri
            .path_and_query()
            .map_or("/ws", |p| p.as_str())
            .to_string();
        let origin = headers.get("origin").and_then(|v| v.to_str().ok());
        if let Err((status, why)) = admit(&site, &chat, origin, &path) {
            println!("/ws: refused with {status}: {why}");
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
            return (status, why).into_response();
        }
        let upgrade = match upgrade {
            Ok(upgrade) => upgrade,
            Err(WebSocketUpgradeRejection::Handshake(HandshakeError::MissingUpgrade)) => {
                let body = "this address accepts WebSocket connections only";
                return (
                    StatusCode::UPGRADE_REQUIRED,
                    [("upgrade", "websocket")],
                    body,
                )
                    .into_response();
            }
            Err(rejection) => return rejection.into_response(),
        };
        let offered = upgrade.request().extensions().join(", ");
        println!("/ws: upgraded (HTTP/1.1, axum); extensions offered: {offered:?}");
        upgrade
            .config(site.config().clone())
            .on_upgrade(move |ws| async move { session(&chat, Tab::Axum(ws), &path).await })
    }
}
