//! An echo server: every text and binary message comes back unchanged.
//!
//! ```text
//! cargo run --release --example echo_server -- [ADDR] [--blocking | --embedded | --uring | --mio | --tls]
//! ```
//!
//! ADDR defaults to 127.0.0.1:9001. The default serves with the tokio
//! adapter, a task per connection; `--blocking` serves with the blocking
//! adapter, a thread per connection; `--embedded` with the
//! embedded-io-async adapter (feature `embedded-io-async`) over tokio's
//! sockets, a task per connection; `--uring` with the compio driver
//! (feature `compio`: io_uring on Linux), one thread; `--mio` with the
//! event-loop server (feature `mio`), every connection a record in one
//! thread's loop. With the `http2` feature the tokio mode
//! also takes HTTP/2 with prior knowledge on the same port (RFC 8441, one
//! WebSocket per stream). `--tls` serves wss:// with a self-signed
//! certificate made at start, and with the `http2` feature offers HTTP/2
//! in ALPN (`h2`, then `http/1.1`): a client that chooses it gets RFC 8441
//! on that connection, any other the HTTP/1.1 Upgrade; with the `http3`
//! feature it also serves HTTP/3 (RFC 9220) on the same port number over
//! UDP, with the same certificate, and says so in an `Alt-Svc` field
//! (`h3=":PORT"`) on every TCP response; `--cert-out FILE` writes the
//! certificate for clients to trust. One log line per connection.
//! `--each` echoes from `Driver::for_each_message`, each message lent as a
//! view of the bytes read, instead of `recv` and `queue` (the tokio,
//! compio, HTTP/2 and HTTP/3 modes). `--quickack` acknowledges every read at
//! once; the Autobahn runs use it
//! (see examples/support/autobahn.rs). `--heartbeat MS` pings every
//! client after MS of silence and drops one that stays silent three times
//! as long (the core's `ping_interval` and `idle` timeouts); the soak test
//! uses it.
//!
//! Behind a load balancer: `--proxy-protocol` reads a PROXY protocol
//! header (haproxy's `send-proxy-v2`) before each request, and
//! `--trust-proxy LIST` believes `X-Forwarded-For` from those addresses
//! (nginx); either way the tokio mode's 101 tells the client the address
//! it was taken for (`Client-Address`), and the log says it too.
//!
//! SIGTERM or SIGINT stops it gracefully: it stops accepting, sends every
//! client a Close 1001 (Going Away; `--restart`: 1012, Service Restart),
//! waits for the closing handshakes (at most `stop::GRACE`) and exits.

#[path = "support/accept.rs"]
mod accept;
#[path = "support/autobahn.rs"]
mod autobahn;
#[path = "support/stop.rs"]
mod stop;
#[path = "support/tls.rs"]
mod tls;

use rfc6455::Driver;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use rfc6455::forwarded::TrustedProxies;
use rfc6455::handshake::Accept;
use rfc6455::Closed;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:9001".to_string();
    let mut blocking = false;
    let mut embedded = false;
    let mut uring = false;
    let mut events = false;
    let mut quick = false;
    let mut each = false;
    let mut secure = false;
    let mut heartbeat = None;
    let mut stop_code = rfc6455::CloseCode::GOING_AWAY;
    let mut proxy_protocol = false;
    let mut trusted = TrustedProxies::none();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--heartbeat" => {
                let ms: u64 = args
                    .next()
                    .and_then(|ms| ms.parse().ok())
                    .ok_or("--heartbeat takes milliseconds")?;
                heartbeat = Some(Duration::from_millis(ms));
            }
            "--blocking" => blocking = true,
            "--tls" => secure = true,
            "--cert-out" => {
                let path = args.next().ok_or("--cert-out takes a file")?;
                let _ = tls::CERT_OUT.set(path);
            }
            "--embedded" => embedded = true,
            "--uring" => uring = true,
            "--mio" => events = true,
            "--quickack" => quick = true,
            "--each" => each = true,
            "--restart" => stop_code = rfc6455::CloseCode::SERVICE_RESTART,
            "--proxy-protocol" => proxy_protocol = true,
            "--trust-proxy" => {
                let list = args.next().ok_or("--trust-proxy takes addresses")?;
                trusted = TrustedProxies::parse(&list)?;
            }
            "-h" | "--help" => {
                println!(
                    "usage: echo_server [ADDR] [--blocking | --embedded | --uring | --mio | --tls [--cert-out FILE]] [--each] [--quickack] [--heartbeat MS] [--restart] [--proxy-protocol] [--trust-proxy LIST]"
                );
                return Ok(());
            }
            other => addr = other.to_string(),
        }
    }
    HEARTBEAT.get_or_init(|| heartbeat);
    EACH.get_or_init(|| each);
    STOP_CODE.get_or_init(|| stop_code);
    PROXY_PROTOCOL.get_or_init(|| proxy_protocol);
    TRUSTED.get_or_init(|| trusted);
    if secure {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve_tls(&addr))
    } else if blocking {
        serve_blocking(&addr, quick)
    } else if events {
        #[cfg(feature = "mio")]
        return serve_mio(&addr, quick);
        #[cfg(not(feature = "mio"))]
        return Err("--mio needs --features mio".into());
    } else if uring {
        #[cfg(feature = "compio")]
        return rfc6455::compio::runtime()?.block_on(serve_uring(&addr, quick));
        #[cfg(not(feature = "compio"))]
        return Err("--uring needs --features compio".into());
    } else if embedded {
        #[cfg(feature = "embedded-io-async")]
        return tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve_embedded(&addr, quick));
        #[cfg(not(feature = "embedded-io-async"))]
        return Err("--embedded needs --features embedded-io-async".into());
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve_tokio(&addr, quick))
    }
}

/// The Close code every client gets when the server stops: 1001, or
/// 1012 with `--restart`.
static STOP_CODE: OnceLock<rfc6455::CloseCode> = OnceLock::new();

/// Stops the server on SIGTERM and SIGINT (`listening`: a blocking
/// accept loop's address, to wake it).
fn stop_on_signals(listening: Option<SocketAddr>) {
    stop::on_signals(
        STOP_CODE
            .get()
            .copied()
            .unwrap_or(rfc6455::CloseCode::GOING_AWAY),
        listening,
    );
}

/// `--proxy-protocol`: a PROXY header comes before every request.
static PROXY_PROTOCOL: OnceLock<bool> = OnceLock::new();

/// `--trust-proxy`: whose `X-Forwarded-For` is believed.
static TRUSTED: OnceLock<TrustedProxies> = OnceLock::new();

/// `--heartbeat`: the Ping interval, if any.
static HEARTBEAT: OnceLock<Option<Duration>> = OnceLock::new();

/// `--each`: echo from `for_each_message`.
static EACH: OnceLock<bool> = OnceLock::new();

/// Every mode's configuration: the Autobahn one, with the heartbeat if
/// asked for.
fn config() -> rfc6455::Config {
    let mut config = autobahn::config(false);
    config.proxy_protocol = PROXY_PROTOCOL.get().copied().unwrap_or(false);
    if let Some(&Some(every)) = HEARTBEAT.get() {
        config.timeouts.ping_interval = Some(every);
        config.timeouts.idle = Some(every * 3);
    }
    config
}

/// One line per connection: who, what path, how it ended.
fn log(peer: SocketAddr, path: &str, outcome: Result<Option<&Closed>, String>) {
    match outcome {
        Ok(Some(closed)) => println!("{peer} {path}: closed with {}", closed.code()),
        Ok(None) => println!("{peer} {path}: closed"),
        Err(err) => println!("{peer} {path}: {err}"),
    }
}

async fn serve_tokio(addr: &str, quick: bool) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "echo server (tokio) listening on ws://{}",
        listener.local_addr()?
    );
    stop_on_signals(None);
    while let Some(accepted) = stop::unless_stopped(accept::accept(&listener)).await {
        let (stream, peer) = accepted?;
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if quick {
                // The Autobahn runs: HTTP/1.1 only, acknowledging at once.
                return echo_tokio(autobahn::QuickAck(stream, true), peer).await;
            }
            // HTTP/2 with prior knowledge on the same port (feature http2):
            // told apart by its preface.
            #[cfg(feature = "http2")]
            {
                let sniffed = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    rfc6455::http2::sniff(stream),
                )
                .await;
                match sniffed {
                    Ok(Ok((true, stream))) => serve_http2(stream, peer).await,
                    Ok(Ok((false, stream))) => echo_tokio(stream, peer).await,
                    Ok(Err(err)) => log(peer, "", Err(err.to_string())),
                    Err(_) => log(peer, "", Err("sent nothing for 10 s".into())),
                }
            }
            #[cfg(not(feature = "http2"))]
            echo_tokio(stream, peer).await
        });
    }
    stop::report(stop::wait_closed().await);
    Ok(())
}

/// wss:// on the tokio adapter: TLS first, then HTTP/2 if the client chose
/// it in ALPN (feature http2), HTTP/1.1 otherwise.
async fn serve_tls(addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    let alpn: &[&[u8]] = if cfg!(feature = "http2") {
        &[tls::H2, tls::HTTP_1_1]
    } else {
        &[tls::HTTP_1_1]
    };
    // One certificate for TCP and, with HTTP/3, for QUIC.
    let certified = tls::self_signed_config(alpn)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(certified.clone()));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "echo server (tokio, TLS) listening on wss://{}",
        listener.local_addr()?
    );
    #[cfg(feature = "http3")]
    {
        // The same port number over UDP, announced to TCP clients.
        let local = listener.local_addr()?;
        let _ = ALT_SVC.set(format!("h3=\":{}\"", local.port()));
        let config = rfc6455::http3::server_config(certified)?;
        let endpoint = rfc6455::http3::endpoint(local, Some(config))?;
        println!("echo server (HTTP/3) listening on udp {local}");
        tokio::spawn(serve_http3(endpoint));
    }
    stop_on_signals(None);
    while let Some(accepted) = stop::unless_stopped(accept::accept(&listener)).await {
        let (stream, peer) = accepted?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => return log(peer, "", Err(format!("TLS: {err}"))),
                Err(_) => return log(peer, "", Err("TLS: no handshake in 10 s".into())),
            };
            #[cfg(feature = "http2")]
            if tls::chose_h2(&stream) {
                return serve_http2(stream, peer).await;
            }
            echo_tokio(stream, peer).await
        });
    }
    stop::report(stop::wait_closed().await);
    Ok(())
}

/// `Alt-Svc` for the responses over TCP, once HTTP/3 is served.
static ALT_SVC: OnceLock<String> = OnceLock::new();

/// What every accepted WebSocket's response carries: `Alt-Svc` when the
/// server also speaks HTTP/3.
fn accept_options() -> Accept {
    match ALT_SVC.get() {
        Some(alt_svc) => Accept::new().header("Alt-Svc", alt_svc.as_str()),
        None => Accept::new(),
    }
}

/// WebSockets over HTTP/3 (RFC 9220): each QUIC connection served, each
/// extended CONNECT echoed on its own stream.
#[cfg(feature = "http3")]
async fn serve_http3(endpoint: quinn::Endpoint) {
    while let Some(Some(incoming)) = stop::unless_stopped(endpoint.accept()).await {
        tokio::spawn(async move {
            let peer = incoming.remote_address();
            let conn = match incoming.await {
                Ok(conn) => conn,
                Err(err) => return log(peer, "", Err(format!("QUIC: {err}"))),
            };
            let served =
                rfc6455::http3::serve_connection(conn, config(), move |incoming| async move {
                    let path = incoming.request().path().to_string();
                    match incoming.accept(Accept::new()) {
                        Ok(ws) => echo(ws, peer, &format!("{path} (HTTP/3)")).await,
                        Err(err) => log(peer, &path, Err(err.to_string())),
                    }
                });
            if let Err(err) = served.await {
                println!("{peer}: HTTP/3 connection: {err}");
            }
        });
    }
}

/// One WebSocket over HTTP/1.1 on the tokio adapter, echoed.
async fn echo_tokio<S>(stream: S, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut path = String::new();
    let accepted = rfc6455::tokio::accept_with(stream, config(), |request| {
        path = request.path().to_string();
        let mut options = accept_options();
        // Behind a balancer: who the client is, as far as we believe.
        if request.proxy_header().is_some() || request.header("X-Forwarded-For").is_some() {
            let trusted = TRUSTED.get_or_init(TrustedProxies::none);
            let client = request.client_addr(peer.ip(), trusted);
            path = format!("{path} (client {client})");
            options = options.header("Client-Address", client.to_string());
        }
        Ok(options)
    })
    .await;
    match accepted {
        Ok(ws) => echo(ws, peer, &path).await,
        Err(err) => log(peer, &path, Err(err.to_string())),
    }
}

/// One WebSocket of an async driver, echoed. Each echo is queued, and
/// written when `recv` next waits for input: a burst of messages is
/// echoed in one write.
async fn echo<W: Driver>(mut ws: W, peer: SocketAddr, what: &str) {
    ws.watch(&stop::SHUTDOWN);
    if EACH.get() == Some(&true) {
        // Each message lent where it was read, its echo queued at once.
        let outcome = ws
            .for_each_message(|message, conn| conn.send(message))
            .await
            .map_err(|err| err.to_string());
        return log(peer, what, outcome.map(|()| ws.closed()));
    }
    let outcome = loop {
        match ws.recv().await {
            Ok(Some(message)) => {
                if let Err(err) = ws.queue(&message).await {
                    break Err(err.to_string());
                }
            }
            Ok(None) => break Ok(()),
            Err(err) => break Err(err.to_string()),
        }
    };
    log(peer, what, outcome.map(|()| ws.closed()));
}

/// WebSockets over one HTTP/2 connection (RFC 8441): each extended
/// CONNECT is echoed on its own stream.
#[cfg(feature = "http2")]
async fn serve_http2<S>(stream: S, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let served = rfc6455::http2::serve_connection(stream, config(), move |incoming| async move {
        let path = incoming.request().path().to_string();
        match incoming.accept(accept_options()) {
            Ok(ws) => echo(ws, peer, &format!("{path} (HTTP/2)")).await,
            Err(err) => log(peer, &path, Err(err.to_string())),
        }
    });
    if let Err(err) = served.await {
        println!("{peer}: HTTP/2 connection: {err}");
    }
}

/// The embedded-io-async adapter, over tokio sockets through
/// embedded-io-adapters' bridge: the driver an embassy firmware would run,
/// on a host.
#[cfg(feature = "embedded-io-async")]
async fn serve_embedded(addr: &str, quick: bool) -> Result<(), Box<dyn std::error::Error>> {
    use autobahn::embedded::{Stream, TokioClock};

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "echo server (embedded-io-async) listening on ws://{}",
        listener.local_addr()?
    );
    stop_on_signals(None);
    while let Some(accepted) = stop::unless_stopped(accept::accept(&listener)).await {
        let (stream, peer) = accepted?;
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let stream = Stream::new(autobahn::QuickAck(stream, quick));
            let mut path = String::new();
            let config = config();
            let accepted = rfc6455::embedded::accept_with(stream, TokioClock, config, |request| {
                path = request.path().to_string();
                Ok(Accept::new())
            })
            .await;
            let mut ws = match accepted {
                Ok(ws) => ws,
                Err(err) => return log(peer, &path, Err(err.to_string())),
            };
            ws.watch(&stop::SHUTDOWN);
            let outcome = loop {
                match ws.recv().await {
                    Ok(Some(message)) => {
                        if let Err(err) = ws.send(&message).await {
                            break Err(err.to_string());
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(err) => break Err(err.to_string()),
                }
            };
            log(peer, &path, outcome.map(|()| ws.closed()));
        });
    }
    stop::report(stop::wait_closed().await);
    Ok(())
}

/// The compio driver: io_uring on Linux, one thread, a task per
/// connection.
#[cfg(feature = "compio")]
async fn serve_uring(addr: &str, quick: bool) -> Result<(), Box<dyn std::error::Error>> {
    let listener = compio::net::TcpListener::bind(addr).await?;
    println!(
        "echo server (compio, io_uring) listening on ws://{}",
        listener.local_addr()?
    );
    stop_on_signals(None);
    while let Some(accepted) = stop::unless_stopped(accept::accept_uring(&listener)).await {
        let (stream, peer) = accepted?;
        compio::runtime::spawn(echo_uring(autobahn::uring::QuickAck(stream, quick), peer)).detach();
    }
    let closed = compio::time::timeout(stop::GRACE, stop::SHUTDOWN.ended()).await;
    stop::report(closed.is_ok());
    Ok(())
}

#[cfg(feature = "compio")]
async fn echo_uring(stream: autobahn::uring::QuickAck, peer: SocketAddr) {
    let mut path = String::new();
    let accepted = rfc6455::compio::accept_with(stream, config(), |request| {
        path = request.path().to_string();
        Ok(Accept::new())
    })
    .await;
    match accepted {
        Ok(ws) => echo(ws, peer, &path).await,
        Err(err) => log(peer, &path, Err(err.to_string())),
    }
}

/// The event-loop server: one thread, every connection a record.
#[cfg(feature = "mio")]
fn serve_mio(addr: &str, quick: bool) -> Result<(), Box<dyn std::error::Error>> {
    use rfc6455::mio::{Ctx, Handler, Id, Server, TcpStream};
    use rfc6455::MessageRef;

    struct Echo {
        quick: bool,
    }

    impl Handler for Echo {
        fn before_read(&mut self, stream: &TcpStream) {
            if self.quick {
                autobahn::quickack(stream);
            }
        }

        fn message(&mut self, ctx: &mut Ctx<'_>, id: Id, message: MessageRef<'_>) {
            let _ = ctx.send(id, message);
        }

        fn closed(&mut self, _: &mut Ctx<'_>, id: Id, closed: &Closed) {
            println!("{id:?}: closed with {}", closed.code());
        }
    }

    let mut server = Server::bind(addr.parse()?, config())?;
    println!(
        "echo server (mio) listening on ws://{}",
        server.local_addr()?
    );
    server.run(&mut Echo { quick })?;
    Ok(())
}

fn serve_blocking(addr: &str, quick: bool) -> Result<(), Box<dyn std::error::Error>> {
    let listener = std::net::TcpListener::bind(addr)?;
    println!(
        "echo server (blocking) listening on ws://{}",
        listener.local_addr()?
    );
    stop_on_signals(Some(listener.local_addr()?));
    loop {
        let (stream, peer) = accept::accept_blocking(&listener)?;
        if stop::SHUTDOWN.is_begun() {
            break;
        }
        std::thread::spawn(move || {
            // The blocking adapter's timers, and the shutdown signal, are
            // looked at on each tick of the read timeout.
            let _ = stream.set_read_timeout(Some(rfc6455::blocking::SHUTDOWN_TICK));
            let stream = autobahn::BlockingQuickAck(stream, quick);
            let mut path = String::new();
            let accepted = rfc6455::blocking::accept_with(stream, config(), |request| {
                path = request.path().to_string();
                Ok(Accept::new())
            });
            let mut ws = match accepted {
                Ok(ws) => ws,
                Err(err) => return log(peer, &path, Err(err.to_string())),
            };
            ws.watch(&stop::SHUTDOWN);
            let outcome = loop {
                match ws.recv() {
                    Ok(Some(message)) => {
                        if let Err(err) = ws.send(&message) {
                            break Err(err.to_string());
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(err) => break Err(err.to_string()),
                }
            };
            log(peer, &path, outcome.map(|()| ws.closed()));
            rfc6455::blocking::close_tcp(ws.into_inner().0, Duration::from_secs(2));
        });
    }
    stop::report(stop::SHUTDOWN.wait_ended(stop::GRACE));
    Ok(())
}
