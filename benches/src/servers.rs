//! The echo servers, one per library, each written the way its docs and
//! examples show, and each run in its own process (`bench serve`) so that
//! its RSS can be read and its CPU pinned.
//!
//! Every server: a tokio current-thread runtime (the process is pinned to
//! one CPU anyway), TCP_NODELAY on every socket, a task per connection,
//! every text or binary message sent back as it came.

use rfc6455::Driver;
use std::io;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerLib {
    /// rfc6455's tokio adapter: `recv`, then `queue` (what
    /// examples/echo_server.rs does): the echo is written when `recv` next
    /// waits for input, so a burst is answered with one write.
    Rfc6455,
    /// rfc6455's tokio adapter: `recv`, then `send`, a write per message.
    /// Informational.
    Rfc6455Send,
    /// rfc6455's tokio adapter lending each message where it was read
    /// (`Driver::for_each_message`), the echo queued in the closure: the
    /// shape of uWebSockets' message handler.
    Rfc6455Each,
    /// rfc6455's compio driver (io_uring), one thread: `recv`, then
    /// `queue`, as the tokio row; the read goes to the kernel with the
    /// echo, in the same submission.
    Rfc6455Uring,
    /// The compio driver lending each message where it was read
    /// (`for_each_message`), as rfc6455-each does on tokio.
    Rfc6455UringEach,
    /// rfc6455's event-loop server (`rfc6455::mio`), one thread, every
    /// connection a record: `ctx.send` of each message in the handler.
    Rfc6455Mio,
    /// The core alone in a read-decode-encode-write loop on a runtime
    /// (no adapter, no timers): what each runtime costs under the same
    /// protocol code. Informational, `bench probe` only.
    CoreTokio,
    /// The same on compio (io_uring).
    CoreCompio,
    /// The same on monoio (io_uring).
    CoreMonoio,
    /// core-compio with a multishot receive into a ring of provided buffers.
    CoreCompioMulti,
    /// tokio-tungstenite with tungstenite's default config: `next`, then `send`.
    Tungstenite,
    /// The same with `read_buffer_size` = 4 KiB.
    Tungstenite4k,
    /// tokio-tungstenite (default config) batching as its `Sink` allows:
    /// `feed` every message already readable, `flush` when none is left.
    /// In the pipelined rows only, where it counts as a peer.
    TungsteniteFeed,
    /// fastwebsockets (simd) with `FragmentCollector`: `read_frame`, then `write_frame`.
    Fastwebsockets,
    /// An axum app whose route takes rfc6455's extractor
    /// (`rfc6455::axum::WebSocketUpgrade`): `recv`, then `send`.
    AxumOurs,
    /// The same app with axum's own extractor (`axum::extract::ws`, on
    /// tokio-tungstenite): `recv`, then `send`.
    AxumOwn,
    /// uWebSockets (C++), built from source by benches/uws/build: `ws->send`
    /// in its message handler, compression off. A process of its own
    /// (benches/uws/target/uws_echo), not `bench serve`.
    UWebSockets,
}

/// Where benches/uws/build puts a uWebSockets server: `uws_echo` (the echo
/// and memory parts) or `uws_broadcast`.
pub fn uws_path(program: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("uws/target")
        .join(program)
}

/// Whether uWebSockets was built; if not, says how to build it, once per
/// part that wanted it.
pub fn uws_built(part: &str) -> bool {
    let built = ["uws_echo", "uws_broadcast"]
        .iter()
        .all(|program| uws_path(program).exists());
    if !built {
        eprintln!(
            "  {part}: uWebSockets skipped: benches/uws/build builds it from its source \
             (github.com/uNetworking/uWebSockets and uSockets; UWS_SRC and USOCKETS_SRC \
             for checkouts you have)"
        );
    }
    built
}

impl ServerLib {
    pub const MAIN: [ServerLib; 4] = [
        ServerLib::Rfc6455,
        ServerLib::Tungstenite,
        ServerLib::Tungstenite4k,
        ServerLib::Fastwebsockets,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ServerLib::Rfc6455 => "rfc6455",
            ServerLib::Rfc6455Send => "rfc6455-send",
            ServerLib::Rfc6455Each => "rfc6455-each",
            ServerLib::Rfc6455Uring => "rfc6455-uring",
            ServerLib::Rfc6455UringEach => "rfc6455-uring-each",
            ServerLib::Rfc6455Mio => "rfc6455-mio",
            ServerLib::CoreTokio => "core-tokio",
            ServerLib::CoreCompio => "core-compio",
            ServerLib::CoreMonoio => "core-monoio",
            ServerLib::CoreCompioMulti => "core-compio-multi",
            ServerLib::Tungstenite => "tungstenite",
            ServerLib::Tungstenite4k => "tungstenite4k",
            ServerLib::TungsteniteFeed => "tungstenite-feed",
            ServerLib::Fastwebsockets => "fastwebsockets",
            ServerLib::AxumOurs => "axum-rfc6455",
            ServerLib::AxumOwn => "axum-own",
            ServerLib::UWebSockets => "uwebsockets",
        }
    }
    pub fn parse(s: &str) -> Option<ServerLib> {
        [
            ServerLib::Rfc6455,
            ServerLib::Rfc6455Send,
            ServerLib::Rfc6455Each,
            ServerLib::Rfc6455Uring,
            ServerLib::Rfc6455UringEach,
            ServerLib::Rfc6455Mio,
            ServerLib::CoreTokio,
            ServerLib::CoreCompio,
            ServerLib::CoreMonoio,
            ServerLib::CoreCompioMulti,
            ServerLib::Tungstenite,
            ServerLib::Tungstenite4k,
            ServerLib::TungsteniteFeed,
            ServerLib::Fastwebsockets,
            ServerLib::AxumOurs,
            ServerLib::AxumOwn,
            ServerLib::UWebSockets,
        ]
        .into_iter()
        .find(|l| l.name() == s)
    }
}

/// `bench serve --lib LIB [--addr ADDR]`: binds (port 0 by default),
/// prints `ready PORT`, and serves until killed.
pub fn serve_main(lib: ServerLib, addr: &str) -> io::Result<()> {
    match lib {
        ServerLib::UWebSockets => {
            return Err(io::Error::other(
                "uwebsockets runs as its own process (uws_echo)",
            ))
        }
        ServerLib::Rfc6455Uring => {
            return rfc6455::compio::runtime()?.block_on(serve_uring(addr, false))
        }
        ServerLib::Rfc6455UringEach => {
            return rfc6455::compio::runtime()?.block_on(serve_uring(addr, true))
        }
        ServerLib::Rfc6455Mio => return serve_mio(addr),
        ServerLib::CoreCompio => {
            return rfc6455::compio::runtime()?.block_on(core_loop::compio(addr))
        }
        ServerLib::CoreCompioMulti => {
            let mut proactor = compio::driver::ProactorBuilder::new();
            proactor
                .single_issuer(true)
                .defer_taskrun(true)
                .coop_taskrun(true)
                .taskrun_flag(true)
                .buffer_pool_size(std::num::NonZeroU16::new(2048).expect("nonzero"))
                .buffer_pool_buffer_len(4096);
            return compio::runtime::RuntimeBuilder::new()
                .with_proactor(proactor)
                .build()?
                .block_on(core_loop::compio_multi(addr));
        }
        ServerLib::CoreMonoio => {
            return monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .build()?
                .block_on(core_loop::monoio(addr))
        }
        _ => {}
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        println!("ready {}", listener.local_addr()?.port());
        serve(lib, listener).await
    })
}

/// The accept loop. Each library's connection task is spawned in its own
/// arm, so that its future (which tokio allocates per connection) has the
/// size of that library's code alone.
pub async fn serve(lib: ServerLib, listener: TcpListener) -> io::Result<()> {
    match lib {
        ServerLib::AxumOurs => return axum_serve(listener, false).await,
        ServerLib::AxumOwn => return axum_serve(listener, true).await,
        _ => {}
    }
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        // A connection that ends in an error (the load generator drops its
        // sockets) just ends.
        match lib {
            ServerLib::Rfc6455 => drop(tokio::spawn(async move {
                let _ = echo_rfc6455(stream).await;
            })),
            ServerLib::Rfc6455Send => drop(tokio::spawn(async move {
                let _ = echo_rfc6455_send(stream).await;
            })),
            ServerLib::Rfc6455Each => drop(tokio::spawn(async move {
                let _ = echo_rfc6455_each(stream).await;
            })),
            ServerLib::Tungstenite => drop(tokio::spawn(async move {
                let _ = echo_tungstenite(stream, None).await;
            })),
            ServerLib::Tungstenite4k => drop(tokio::spawn(async move {
                let _ = echo_tungstenite(stream, Some(tungstenite_4k())).await;
            })),
            ServerLib::TungsteniteFeed => drop(tokio::spawn(async move {
                let _ = echo_tungstenite_feed(stream).await;
            })),
            ServerLib::Fastwebsockets => drop(tokio::spawn(async move {
                let _ = echo_fastwebsockets(stream).await;
            })),
            ServerLib::AxumOurs | ServerLib::AxumOwn => unreachable!("served above"),
            ServerLib::UWebSockets => unreachable!("its own process"),
            ServerLib::Rfc6455Uring
            | ServerLib::Rfc6455UringEach
            | ServerLib::Rfc6455Mio
            | ServerLib::CoreCompio
            | ServerLib::CoreMonoio
            | ServerLib::CoreCompioMulti => {
                unreachable!("served on its own runtime")
            }
            ServerLib::CoreTokio => drop(tokio::spawn(async move {
                let _ = core_loop::tokio(stream).await;
            })),
        }
    }
}

/// An axum app echoing on `/`, with axum's extractor (`own`) or ours.
/// TCP_NODELAY as for every server here.
async fn axum_serve(listener: TcpListener, own: bool) -> io::Result<()> {
    use axum::routing::get;
    let app = if own {
        axum::Router::new().route("/", get(axum_own))
    } else {
        axum::Router::new().route("/", get(axum_ours))
    };
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

async fn axum_ours(upgrade: rfc6455::axum::WebSocketUpgrade) -> axum::response::Response {
    upgrade
        .max_message_size(64 << 20)
        .on_upgrade(|mut ws| async move {
            while let Ok(Some(message)) = ws.recv().await {
                if ws.send(&message).await.is_err() {
                    break;
                }
            }
        })
}

async fn axum_own(upgrade: axum::extract::ws::WebSocketUpgrade) -> axum::response::Response {
    upgrade
        .max_message_size(64 << 20)
        .on_upgrade(|mut ws| async move {
            while let Some(Ok(message)) = ws.recv().await {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
        })
}

fn tungstenite_4k() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096)
}

/// The size of each library's connection future before its first poll
/// (tokio allocates it, with a task header, per connection).
pub async fn task_sizes() -> io::Result<Vec<(ServerLib, usize)>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let _client = TcpStream::connect(addr).await?;
    let (stream, _) = listener.accept().await?;
    let (a, b, c, d) = (
        std::mem::size_of_val(&echo_rfc6455(stream)),
        std::mem::size_of_val(&echo_rfc6455_send(TcpStream::connect(addr).await?)),
        std::mem::size_of_val(&echo_tungstenite(TcpStream::connect(addr).await?, None)),
        std::mem::size_of_val(&echo_fastwebsockets(TcpStream::connect(addr).await?)),
    );
    Ok(vec![
        (ServerLib::Rfc6455, a),
        (ServerLib::Rfc6455Send, b),
        (ServerLib::Tungstenite, c),
        (ServerLib::Tungstenite4k, c),
        (ServerLib::Fastwebsockets, d),
    ])
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn echo_rfc6455(stream: TcpStream) -> Result<(), BoxError> {
    let mut ws = rfc6455::tokio::accept(stream).await?;
    while let Some(message) = ws.recv().await? {
        ws.queue(&message).await?;
    }
    Ok(())
}

async fn echo_rfc6455_each(stream: TcpStream) -> Result<(), BoxError> {
    let mut ws = rfc6455::tokio::accept(stream).await?;
    ws.for_each_message(|message, conn| conn.send(message))
        .await?;
    Ok(())
}

/// The event-loop server: one thread, every connection a record; the
/// echo queued in the handler is written when it returns.
fn serve_mio(addr: &str) -> io::Result<()> {
    use rfc6455::mio::{Ctx, Handler, Id, Server};

    struct Echo;

    impl Handler for Echo {
        fn message(&mut self, ctx: &mut Ctx<'_>, id: Id, message: rfc6455::MessageRef<'_>) {
            let _ = ctx.send(id, message);
        }
    }

    let addr = addr.parse().map_err(io::Error::other)?;
    let mut server = Server::bind(addr, rfc6455::Config::default())?;
    println!("ready {}", server.local_addr()?.port());
    server.run(&mut Echo)
}

/// The io_uring server: compio's runtime on this thread, a task per
/// connection.
async fn serve_uring(addr: &str, each: bool) -> io::Result<()> {
    let listener = compio::net::TcpListener::bind(addr).await?;
    println!("ready {}", listener.local_addr()?.port());
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        if each {
            compio::runtime::spawn(async move {
                let _ = echo_rfc6455_uring_each(stream).await;
            })
            .detach();
        } else {
            compio::runtime::spawn(async move {
                let _ = echo_rfc6455_uring(stream).await;
            })
            .detach();
        }
    }
}

async fn echo_rfc6455_uring(stream: compio::net::TcpStream) -> Result<(), BoxError> {
    let mut ws = rfc6455::compio::accept(stream).await?;
    while let Some(message) = ws.recv().await? {
        ws.queue(&message).await?;
    }
    Ok(())
}

async fn echo_rfc6455_uring_each(stream: compio::net::TcpStream) -> Result<(), BoxError> {
    let mut ws = rfc6455::compio::accept(stream).await?;
    ws.for_each_message(|message, conn| conn.send(message))
        .await?;
    Ok(())
}

async fn echo_rfc6455_send(stream: TcpStream) -> Result<(), BoxError> {
    let mut ws = rfc6455::tokio::accept(stream).await?;
    while let Some(message) = ws.recv().await? {
        ws.send(&message).await?;
    }
    Ok(())
}

async fn echo_tungstenite(
    stream: TcpStream,
    config: Option<tungstenite::protocol::WebSocketConfig>,
) -> Result<(), BoxError> {
    let mut ws = tokio_tungstenite::accept_async_with_config(stream, config).await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}

async fn echo_tungstenite_feed(stream: TcpStream) -> Result<(), BoxError> {
    use futures_util::FutureExt;
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.feed(message).await?;
        }
        // Take what is already readable, then write it all at once.
        while let Some(next) = ws.next().now_or_never() {
            let Some(message) = next else {
                return Ok(());
            };
            let message = message?;
            if message.is_text() || message.is_binary() {
                ws.feed(message).await?;
            }
        }
        ws.flush().await?;
    }
    Ok(())
}

async fn echo_fastwebsockets(mut stream: TcpStream) -> Result<(), BoxError> {
    handshake_by_hand(&mut stream).await?;
    let mut ws = fastwebsockets::FragmentCollector::new(
        fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Server),
    );
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            fastwebsockets::OpCode::Close => return Ok(()),
            fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                ws.write_frame(frame).await?;
            }
            _ => {}
        }
    }
}

/// The server handshake for fastwebsockets, whose own server handshake
/// needs hyper (feature `upgrade`): read the request head, answer 101 with
/// the accept key. The client sends nothing before the 101, so no frame
/// bytes can be lost here. The buffer is on the heap and freed after, so
/// it does not inflate the connection's task.
pub async fn handshake_by_hand(stream: &mut TcpStream) -> Result<(), BoxError> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = vec![0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 16 << 10 {
            return Err("bad handshake".into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = std::str::from_utf8(&head)?;
    let key = text
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim())
        })
        .ok_or("no Sec-WebSocket-Key")?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await?;
    Ok(())
}

/// A server process started by this benchmark; killed (by its own pid) on drop.
pub struct ServerProcess {
    pub lib: ServerLib,
    pub child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `bench serve` pinned to `cpus`, and waits for its port.
    pub fn start(lib: ServerLib, cpus: &[usize]) -> io::Result<ServerProcess> {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let cpus = cpus.to_vec();
        let mut command = match lib {
            ServerLib::UWebSockets => {
                let mut command = Command::new(uws_path("uws_echo"));
                command.arg("0");
                command
            }
            _ => {
                let mut command = Command::new(std::env::current_exe()?);
                command.args(["serve", "--lib", lib.name(), "--addr", "127.0.0.1:0"]);
                command
            }
        };
        command.stdout(Stdio::piped()).stderr(Stdio::inherit());
        // SAFETY: only async-signal-safe calls (sched_setaffinity, prctl)
        // between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                for &cpu in &cpus {
                    libc::CPU_SET(cpu, &mut set);
                }
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                // Die with the benchmark, whatever happens to it.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let port: u16 = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("server {} said {line:?}", lib.name())))?;
        Ok(ServerProcess {
            lib,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The core alone in a loop, on three runtimes.
mod core_loop {
    use std::io;

    use rfc6455::handshake::{Accept, Progress, ServerHandshake};
    use rfc6455::plumbing::Plumbing;
    use rfc6455::{Config, Connection, Event};

    use super::BoxError;

    /// Feeds a request head; `Some` once it is whole.
    fn head(
        handshake: &mut Option<ServerHandshake>,
        bytes: &[u8],
    ) -> Result<Option<(Vec<u8>, Connection)>, BoxError> {
        match handshake.take().expect("reading").handle_read(bytes)? {
            Progress::Partial(more) => {
                *handshake = Some(more);
                Ok(None)
            }
            Progress::Done(request) => {
                let accepted = request.accept(Accept::new())?;
                Ok(Some((accepted.response, accepted.connection)))
            }
        }
    }

    /// Decodes what arrived and queues the echoes; `false` once closed.
    fn step(conn: &mut Connection) -> Result<bool, BoxError> {
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(message) => conn.send(&message)?,
                Event::Closed(_) => return Ok(false),
                _ => {}
            }
        }
        Ok(true)
    }

    pub async fn tokio(mut stream: tokio::net::TcpStream) -> Result<(), BoxError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut handshake = Some(ServerHandshake::new(Config::default()));
        let mut buf = vec![0; 4096];
        let (response, mut conn) = loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            if let Some(done) = head(&mut handshake, &buf[..n])? {
                break done;
            }
        };
        stream.write_all(&response).await?;
        while step(&mut conn)? {
            while conn.pending_output_len() > 0 {
                let n = stream.write(conn.pending_output()).await?;
                conn.consume_output(n);
            }
            let mut input = conn.read_buffer(16 << 10);
            if stream.read_buf(&mut input).await? == 0 {
                drop(input);
                conn.handle_eof();
            }
        }
        Ok(())
    }

    pub async fn compio(addr: &str) -> io::Result<()> {
        let listener = compio::net::TcpListener::bind(addr).await?;
        println!("ready {}", listener.local_addr()?.port());
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            compio::runtime::spawn(async move {
                let _ = compio_echo(stream).await;
            })
            .detach();
        }
    }

    async fn compio_echo(mut stream: compio::net::TcpStream) -> Result<(), BoxError> {
        use compio::io::{AsyncRead, AsyncWriteExt};
        let mut handshake = Some(ServerHandshake::new(Config::default()));
        let mut buf = Vec::with_capacity(4096);
        let (response, mut conn) = loop {
            buf.clear();
            let compio::BufResult(n, b) = stream.read(buf).await;
            buf = b;
            if n? == 0 {
                return Ok(());
            }
            if let Some(done) = head(&mut handshake, &buf)? {
                break done;
            }
        };
        stream.write_all(response).await.0?;
        while step(&mut conn)? {
            while conn.pending_output_len() > 0 {
                let out = conn.take_output(usize::MAX);
                stream.write_all(out).await.0?;
            }
            let input = conn.read_buffer_owned(16 << 10);
            let compio::BufResult(n, input) = stream.read(input).await;
            conn.handle_read_owned(input);
            if n? == 0 {
                conn.handle_eof();
            }
        }
        Ok(())
    }

    pub async fn compio_multi(addr: &str) -> io::Result<()> {
        let listener = compio::net::TcpListener::bind(addr).await?;
        println!("ready {}", listener.local_addr()?.port());
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            compio::runtime::spawn(async move {
                let _ = compio_multi_echo(stream).await;
            })
            .detach();
        }
    }

    async fn compio_multi_echo(stream: compio::net::TcpStream) -> Result<(), BoxError> {
        use compio::io::{AsyncReadMulti, AsyncWriteExt};
        use futures_util::StreamExt;
        let mut handshake = Some(ServerHandshake::new(Config::default()));
        let mut reader = &stream;
        let mut incoming = std::pin::pin!(reader.read_multi(0));
        let mut writer = &stream;
        let mut conn = None;
        loop {
            if let Some(conn) = &mut conn {
                if !step(conn)? {
                    return Ok(());
                }
                while conn.pending_output_len() > 0 {
                    let out = conn.take_output(usize::MAX);
                    writer.write_all(out).await.0?;
                }
            }
            let buf = match incoming.next().await {
                Some(buf) => buf?,
                None => return Ok(()),
            };
            match &mut conn {
                Some(conn) if buf.is_empty() => conn.handle_eof(),
                Some(conn) => conn.handle_read(&buf),
                None if buf.is_empty() => return Ok(()),
                None => {
                    if let Some((response, accepted)) = head(&mut handshake, &buf)? {
                        writer.write_all(response).await.0?;
                        conn = Some(accepted);
                    }
                }
            }
        }
    }

    pub async fn monoio(addr: &str) -> io::Result<()> {
        let listener = monoio::net::TcpListener::bind(addr)?;
        println!("ready {}", listener.local_addr()?.port());
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            monoio::spawn(async move {
                let _ = monoio_echo(stream).await;
            });
        }
    }

    async fn monoio_echo(mut stream: monoio::net::TcpStream) -> Result<(), BoxError> {
        use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
        let mut handshake = Some(ServerHandshake::new(Config::default()));
        let mut buf = Vec::with_capacity(4096);
        let (response, mut conn) = loop {
            buf.clear();
            let (n, b) = stream.read(buf).await;
            buf = b;
            if n? == 0 {
                return Ok(());
            }
            if let Some(done) = head(&mut handshake, &buf)? {
                break done;
            }
        };
        stream.write_all(response).await.0?;
        while step(&mut conn)? {
            while conn.pending_output_len() > 0 {
                let out = conn.take_output(usize::MAX);
                stream.write_all(out).await.0?;
            }
            let input = conn.read_buffer_owned(16 << 10);
            let (n, input) = stream.read(input).await;
            conn.handle_read_owned(input);
            if n? == 0 {
                conn.handle_eof();
            }
        }
        Ok(())
    }
}
