//! Interoperability with real peers: the Python `websockets` library and the
//! Node `ws` library, each as client and as server, against both of our
//! adapters. Run them with `tests/interop/run`, which installs the peers
//! (tests/interop/.venv, tests/interop/node_modules) and then runs
//! `cargo test --all-features --test interop -- --ignored`.
//!
//! Each test is one cell of {our server, our client} x {tokio, blocking} x
//! {Python, Node} x {uncompressed, permessage-deflate}. It starts the peer
//! (tests/interop/peer.py or peer.mjs) as a process on 127.0.0.1, runs our
//! side in this process, and checks both:
//!
//! 0. What the handshake agreed: both sides report the extensions in force
//!    (the peer on its `EXTENSIONS` line, we from
//!    `Connection::deflate_params`), and both must be the cell's
//!    [`Compression::expect`].
//! 1. The peer sends every message of [`messages`] (text, binary, empty,
//!    64 KiB, 1 MiB, and two sent in several frames); we check each and echo
//!    it; the peer checks the echo. The peer pings with [`PEER_PING`]: we see
//!    the Ping, the peer checks that the Pong carries the payload.
//! 2. We send the same messages (the fragmented ones with `send_fragmented`,
//!    or piece by piece with `Connection::send_fragment`) and check each
//!    echo; we ping with [`RUST_PING`] and check the Pong.
//! 3. The closing handshake with 4000 "done here", started by us or by the
//!    peer (we ask with the text "close-me"). The receiving side checks the
//!    code and the reason; the peer prints what it received and sent, and we
//!    check that against what our side says it sent and received.
//! 4. The bytes on the wire, as the peer counted them each way
//!    ([`check_wire`]): uncompressed, each way carries at least two copies
//!    of the messages (sent and echoed); compressed, less than one, so a
//!    side that agrees to compression but sends plainly fails.
//!
//! In the uncompressed cells the peers keep their defaults, so the Python
//! client and the Node client offer permessage-deflate and our server
//! declines it, and the Python server would accept it but our client does
//! not offer it. In the compressed cells (`*_deflate`, which need the
//! `deflate` feature) both sides enable it, and each cell varies the
//! parameters on one side or the other (context takeover, window bits, the
//! compression threshold) so that the negotiation of every parameter of
//! RFC 7692 §7.1 is exercised from both ends.
//!
//! Who closes varies so that every adapter, every peer and every role sees
//! both: we close in the tokio x Python and blocking x Node cells, the peer
//! closes in the others.
//!
//! Every wait is bounded: the peer gives up after 60 s, our side after
//! [`CELL_TIMEOUT`], and the peer process is killed when its test ends,
//! even by a panic. The peers find their interpreters through
//! `INTEROP_PYTHON` and `INTEROP_NODE` (set by the run script); without
//! them, tests/interop/.venv/bin/python and `node` on the PATH.
#![cfg(all(feature = "blocking", feature = "tokio"))]

use rfc6455::Driver;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rfc6455::handshake::{Accept, ClientRequest};
#[cfg(feature = "deflate")]
use rfc6455::DeflateConfig;
use rfc6455::{
    CloseCode, CloseFrame, Closed, Config, Connection, Event, Initiator, Message, MessageKind,
};

/// The most our side of one cell may take, handshake to closed.
const CELL_TIMEOUT: Duration = Duration::from_secs(60);
/// The most a peer may take to start listening, or to exit at the end.
const PEER_TIMEOUT: Duration = Duration::from_secs(20);
/// The read timeout of the blocking adapter's socket: its timer tick.
const TICK: Duration = Duration::from_millis(250);

const CLOSE_CODE: CloseCode = CloseCode(4000);
const CLOSE_REASON: &str = "done here";
const PEER_PING: &str = "ping from peer \u{2713}";
const RUST_PING: &str = "ping from rust \u{2713}";
const PATH: &str = "/interop";

/// One message of the exchange.
struct Sample {
    kind: MessageKind,
    data: Vec<u8>,
    /// Sent in frames of this many bytes.
    fragment: Option<usize>,
    /// We send it piece by piece with `Connection::send_fragment` rather
    /// than with `send_fragmented`. Under compression the two differ:
    /// `send_fragmented` compresses the whole message and cuts the result
    /// (and these samples compress to less than one frame), while
    /// `send_fragment` compresses each piece as it comes, so the message
    /// goes out in several frames, some of them possibly empty.
    pieces: bool,
}

impl Sample {
    fn message(&self) -> Message {
        match self.kind {
            MessageKind::Text => Message::Text(
                String::from_utf8(self.data.clone())
                    .expect("text samples are UTF-8")
                    .into(),
            ),
            MessageKind::Binary => Message::Binary(self.data.clone().into()),
        }
    }

    fn describe(&self) -> String {
        let how = match (self.fragment, self.pieces) {
            (Some(size), false) => format!(", in frames of {size} bytes"),
            (Some(size), true) => format!(", in pieces of {size} bytes"),
            (None, _) => String::new(),
        };
        format!("{:?} of {} bytes{how}", self.kind, self.data.len())
    }
}

fn pattern(n: usize, mul: usize, add: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * mul + add) % 251) as u8).collect()
}

/// The messages each side sends, in order. The same list is in peer.py and
/// peer.mjs.
fn messages() -> Vec<Sample> {
    let text = |s: String| Sample {
        kind: MessageKind::Text,
        data: s.into_bytes(),
        fragment: None,
        pieces: false,
    };
    let binary = |data: Vec<u8>| Sample {
        kind: MessageKind::Binary,
        data,
        fragment: None,
        pieces: false,
    };
    let ascii: String = (0..64 * 1024)
        .map(|i| char::from(0x20 + (i * 7 % 95) as u8))
        .collect();
    vec![
        text("hello, interop \u{2713} \u{2014} \u{fc}n\u{ef}c\u{f6}d\u{e9} \u{1F600}".into()),
        binary((0..=255).collect()),
        text(String::new()),
        binary(Vec::new()),
        text(ascii),
        binary(pattern(1 << 20, 31, 7)),
        // 1000-byte frames end inside multi-byte characters on purpose.
        Sample {
            fragment: Some(1000),
            pieces: true,
            ..text("\u{a1}fragmented \u{2713} message \u{1F600}! ".repeat(300))
        },
        Sample {
            fragment: Some(16 * 1024),
            ..binary(pattern(100_000, 13, 1))
        },
    ]
}

/// The bytes of one copy of [`messages`].
fn messages_len() -> usize {
    messages().iter().map(|sample| sample.data.len()).sum()
}

/// Checks that `got` is `want`, without printing a megabyte when it is not.
fn assert_same(got: &Message, want: &Sample, what: &str) {
    assert_eq!(got.kind(), want.kind, "{what}: wrong kind");
    let (got, want_bytes) = (got.as_bytes(), &want.data[..]);
    if got != want_bytes {
        let at = got
            .iter()
            .zip(want_bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want_bytes.len()));
        panic!(
            "{what}: got {} bytes, expected {}, first difference at byte {at}",
            got.len(),
            want_bytes.len()
        );
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Python,
    Node,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Adapter {
    Tokio,
    Blocking,
    /// The compio driver (io_uring), with the `compio` feature.
    Compio,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// We are the server, the peer connects.
    Server,
    /// We are the client, the peer listens.
    Client,
}

/// Who starts the closing handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closer {
    Us,
    Peer,
}

impl Closer {
    fn of(peer: Peer, adapter: Adapter) -> Closer {
        match (peer, adapter) {
            (Peer::Python, Adapter::Tokio | Adapter::Compio) | (Peer::Node, Adapter::Blocking) => {
                Closer::Us
            }
            (Peer::Python, Adapter::Blocking) | (Peer::Node, Adapter::Tokio | Adapter::Compio) => {
                Closer::Peer
            }
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Closer::Us => "us",
            Closer::Peer => "peer",
        }
    }
}

/// Compression in a cell: our configuration, the peer's, and what both
/// must then report as agreed.
struct Compression {
    /// Our side's configuration.
    config: Config,
    /// The peer's `--deflate` argument (see peer.py), or `None` for its
    /// defaults.
    peer: Option<&'static str>,
    /// The extensions in force after the handshake, as both sides print
    /// them (see [`negotiated`]): "none", or permessage-deflate's
    /// parameters.
    expect: &'static str,
}

impl Compression {
    /// We neither offer nor accept permessage-deflate; the peer keeps its
    /// defaults, which offer or accept it.
    fn off() -> Compression {
        Compression {
            config: Config::default(),
            peer: None,
            expect: "none",
        }
    }

    /// Both sides enable permessage-deflate: we with
    /// `DeflateConfig::default()` changed by `ours`, the peer with `peer`.
    #[cfg(feature = "deflate")]
    fn on(
        ours: impl FnOnce(&mut DeflateConfig),
        peer: &'static str,
        expect: &'static str,
    ) -> Compression {
        let mut deflate = DeflateConfig::default();
        ours(&mut deflate);
        let mut config = Config::default();
        config.deflate = Some(deflate);
        Compression {
            config,
            peer: Some(peer),
            expect,
        }
    }
}

/// What our side agreed in the handshake.
struct Agreed {
    /// In the peers' notation: "none", or "permessage-deflate" and its
    /// parameters in the order of RFC 7692 §7.1, window bits only below
    /// their default of 15.
    extensions: String,
    /// With compression, the window bits each side compresses with.
    windows: Option<Windows>,
}

#[derive(Clone, Copy, Debug)]
struct Windows {
    ours: u8,
    peers: u8,
}

#[cfg(feature = "deflate")]
fn negotiated(conn: &Connection) -> Agreed {
    let Some(params) = conn.deflate_params() else {
        return Agreed {
            extensions: "none".into(),
            windows: None,
        };
    };
    let mut value = String::from("permessage-deflate");
    if params.server_no_context_takeover {
        value.push_str("; server_no_context_takeover");
    }
    if params.client_no_context_takeover {
        value.push_str("; client_no_context_takeover");
    }
    if params.server_max_window_bits < 15 {
        value.push_str(&format!(
            "; server_max_window_bits={}",
            params.server_max_window_bits
        ));
    }
    if params.client_max_window_bits < 15 {
        value.push_str(&format!(
            "; client_max_window_bits={}",
            params.client_max_window_bits
        ));
    }
    let (server, client) = (params.server_max_window_bits, params.client_max_window_bits);
    let windows = match conn.role() {
        rfc6455::Role::Server => Windows {
            ours: server,
            peers: client,
        },
        rfc6455::Role::Client => Windows {
            ours: client,
            peers: server,
        },
    };
    Agreed {
        extensions: value,
        windows: Some(windows),
    }
}

/// Without the `deflate` feature nothing can be agreed.
#[cfg(not(feature = "deflate"))]
fn negotiated(_conn: &Connection) -> Agreed {
    Agreed {
        extensions: "none".into(),
        windows: None,
    }
}

/// What our side of a cell reports.
struct Ours {
    /// [`negotiated`] right after the handshake.
    agreed: Agreed,
    closed: Closed,
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// A peer process. Dropping it kills the process, so a failed test leaves
/// nothing running.
struct PeerProcess {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

/// What a peer printed, and how it ended.
struct PeerReport {
    status: Option<ExitStatus>,
    stdout: Vec<String>,
    stderr: String,
}

impl PeerReport {
    fn show(&self) -> String {
        format!(
            "peer exit status: {:?}\n--- peer stdout ---\n{}\n--- peer stderr ---\n{}",
            self.status,
            self.stdout.join("\n"),
            self.stderr
        )
    }

    /// The rest of the line that starts with `key` and a space.
    fn line(&self, key: &str) -> Option<&str> {
        self.stdout
            .iter()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
    }

    /// The peer's `WIRE <received> <sent>` line.
    fn wire(&self) -> Option<(usize, usize)> {
        let (received, sent) = self.line("WIRE")?.split_once(' ')?;
        Some((received.parse().ok()?, sent.parse().ok()?))
    }

    /// The `<code> <reason>` after `key` on a line of its own, as a frame.
    fn close_line(&self, key: &str) -> Option<CloseFrame> {
        let rest = self.line(key)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code = code.parse().expect("a numeric close code");
        Some(CloseFrame::new(CloseCode(code), reason))
    }
}

impl PeerProcess {
    fn spawn(peer: Peer, args: &[String]) -> PeerProcess {
        let dir = interop_dir();
        let (program, script) = match peer {
            Peer::Python => (
                std::env::var_os("INTEROP_PYTHON")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| dir.join(".venv/bin/python")),
                dir.join("peer.py"),
            ),
            Peer::Node => (
                std::env::var_os("INTEROP_NODE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| "node".into()),
                dir.join("peer.mjs"),
            ),
        };
        let name = format!("{peer:?} peer {}", args.join(" "));
        let mut child = Command::new(&program)
            .arg(&script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} {}: {e}; run tests/interop/run",
                    program.display(),
                    script.display()
                )
            });
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        PeerProcess {
            name,
            child,
            lines,
            stdout: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Waits for the `LISTENING <port>` line of a peer server.
    fn listening_port(&mut self) -> u16 {
        let deadline = Instant::now() + PEER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if let Some(port) = line.strip_prefix("LISTENING ") {
                        return port.trim().parse().expect("a port number");
                    }
                }
                Err(_) => {
                    let report = self.finish(Duration::ZERO);
                    panic!("{} did not start listening\n{}", self.name, report.show());
                }
            }
        }
    }

    /// Waits up to `timeout` for the peer to exit (then kills it), and
    /// collects what it printed.
    fn finish(&mut self, timeout: Duration) -> PeerReport {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) | Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        // The process is gone, so its pipes are closed and the readers end.
        let reader_deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = self
            .lines
            .recv_timeout(reader_deadline.saturating_duration_since(Instant::now()))
        {
            self.stdout.push(line);
        }
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        PeerReport {
            status,
            stdout: self.stdout.clone(),
            stderr,
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one cell of the matrix.
fn run_cell(side: Side, adapter: Adapter, peer: Peer, compression: Compression) {
    let closer = Closer::of(peer, adapter);
    let Compression {
        config,
        peer: peer_deflate,
        expect,
    } = compression;
    let peer_args = |mut args: Vec<String>| {
        args.extend(["--closer".into(), closer.arg().into()]);
        if let Some(spec) = peer_deflate {
            args.extend(["--deflate".into(), spec.into()]);
        }
        args
    };
    type OurSide = Box<dyn FnOnce() -> Ours + Send>;
    let (mut process, ours): (PeerProcess, OurSide) = match side {
        Side::Server => {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
            let addr = listener.local_addr().expect("local address");
            let url = format!("ws://{addr}{PATH}");
            let process = PeerProcess::spawn(peer, &peer_args(vec!["client".into(), url]));
            let ours: OurSide = match adapter {
                Adapter::Blocking => Box::new(move || blocking_server(listener, config, closer)),
                Adapter::Tokio => {
                    Box::new(move || tokio_side(tokio_server(listener, config, closer)))
                }
                Adapter::Compio => Box::new(move || compio_side::server(listener, config, closer)),
            };
            (process, ours)
        }
        Side::Client => {
            let mut process = PeerProcess::spawn(peer, &peer_args(vec!["server".into()]));
            let addr = SocketAddr::from(([127, 0, 0, 1], process.listening_port()));
            let url = format!("ws://{addr}{PATH}");
            let ours: OurSide = match adapter {
                Adapter::Blocking => Box::new(move || blocking_client(addr, config, closer)),
                Adapter::Tokio => Box::new(move || tokio_side(tokio_client(url, config, closer))),
                Adapter::Compio => Box::new(move || compio_side::client(url, config, closer)),
            };
            (process, ours)
        }
    };

    // Our side runs in a thread, so that a hang becomes a failure here:
    // killing the peer then ends its connection and frees the thread.
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let _ = tx.send(ours());
    });
    let ours = match rx.recv_timeout(CELL_TIMEOUT + Duration::from_secs(5)) {
        Ok(ours) => ours,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let report = process.finish(Duration::ZERO);
            panic!("our side did not finish in time\n{}", report.show());
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // Our side panicked: show what the peer saw, then its panic.
            let report = process.finish(Duration::from_secs(2));
            eprintln!("{}", report.show());
            let panic = worker
                .join()
                .expect_err("the worker sent nothing, so it panicked");
            std::panic::resume_unwind(panic);
        }
    };
    let _ = worker.join();

    let report = process.finish(PEER_TIMEOUT);
    assert!(
        report.status.is_some_and(|s| s.success()) && report.stdout.iter().any(|l| l == "PEER OK"),
        "the {peer:?} peer failed\n{}",
        report.show()
    );
    // Both sides agree on the extensions, and they are the ones expected:
    // a silent fallback to no compression fails here.
    assert_eq!(
        ours.agreed.extensions,
        expect,
        "our side agreed to other extensions\n{}",
        report.show()
    );
    assert_eq!(
        report.line("EXTENSIONS"),
        Some(expect),
        "the {peer:?} peer agreed to other extensions\n{}",
        report.show()
    );
    let closed = &ours.closed;
    // What the peer received is what we sent, and the other way round.
    assert_eq!(
        report.close_line("CLOSE-RECEIVED").as_ref(),
        closed.sent.as_ref(),
        "the Close frame the peer received is not the one we sent\n{}",
        report.show()
    );
    if let Some(peer_sent) = report.close_line("CLOSE-SENT") {
        assert_eq!(
            Some(&peer_sent),
            closed.received.as_ref(),
            "the Close frame we received is not the one the peer sent\n{}",
            report.show()
        );
    }
    check_wire(&report, ours.agreed.windows);
}

/// Checks the peer's count of the bytes it received (what we sent) and
/// sent (what we received) after the handshake, `windows` being the window
/// bits each side compresses with, if compression was agreed.
///
/// Uncompressed, each way carries every message twice (sent, then echoed)
/// plus framing. Compressed, each way must carry less than one copy: the
/// messages are repetitive, and a direction that sends either phase without
/// compression (the 1 MiB message above all) breaks that bound. The bound
/// is loose on purpose: a fast level with a small window compresses much
/// less (our level 1 at 10 bits sends about half a copy; zlib behaves the
/// same). At 9 bits a compressor finds no match in the binary samples, which
/// repeat every 251 bytes while zlib never looks more than 2^bits - 262 =
/// 250 bytes back, so a 9-bit direction is not checked.
fn check_wire(report: &PeerReport, windows: Option<Windows>) {
    let (received, sent) = report
        .wire()
        .unwrap_or_else(|| panic!("the peer printed no WIRE line\n{}", report.show()));
    let copy = messages_len();
    eprintln!(
        "wire: the peer received {received} bytes and sent {sent} ({windows:?}); \
         one copy of the messages is {copy}"
    );
    let directions = [
        ("we sent", received, windows.map(|w| w.ours)),
        ("we received", sent, windows.map(|w| w.peers)),
    ];
    for (what, bytes, bits) in directions {
        match bits {
            None => assert!(
                bytes >= 2 * copy,
                "{what} only {bytes} bytes, less than two copies of the messages ({copy})\n{}",
                report.show()
            ),
            Some(bits) if bits >= 10 => assert!(
                bytes < copy,
                "{what} {bytes} bytes with compression, more than one copy of the messages \
                 ({copy})\n{}",
                report.show()
            ),
            Some(_) => {}
        }
    }
}

/// Checks how the connection ended, as our side reports it.
fn check_closed(closed: &Closed, closer: Closer) {
    let wanted = CloseFrame::new(CLOSE_CODE, CLOSE_REASON);
    assert_eq!(closed.error, None, "the connection failed: {closed:?}");
    assert!(
        closed.is_clean(),
        "not a clean closing handshake: {closed:?}"
    );
    match closer {
        Closer::Us => {
            assert_eq!(closed.initiator, Initiator::Local, "{closed:?}");
            assert_eq!(closed.sent.as_ref(), Some(&wanted), "{closed:?}");
            // Both peers echo the code and the reason in their reply.
            assert_eq!(
                closed.received.as_ref(),
                Some(&wanted),
                "the peer's reply: {closed:?}"
            );
        }
        Closer::Peer => {
            assert_eq!(closed.initiator, Initiator::Remote, "{closed:?}");
            assert_eq!(
                closed.received.as_ref(),
                Some(&wanted),
                "the peer's Close frame arrived changed: {closed:?}"
            );
            // "It typically echos the status code it received" (§5.5.1).
            assert_eq!(
                closed.sent.as_ref().map(|f| f.code),
                Some(CLOSE_CODE),
                "our reply: {closed:?}"
            );
        }
    }
    assert_eq!(closed.code(), CLOSE_CODE, "{closed:?}");
}

// ---------------------------------------------------------------------------
// The blocking adapter

fn blocking_server(listener: TcpListener, config: Config, closer: Closer) -> Ours {
    // A nonblocking accept, so that a peer that never connects cannot hang us.
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let deadline = Instant::now() + PEER_TIMEOUT;
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the peer did not connect");
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).expect("blocking stream");
    stream.set_nodelay(true).expect("nodelay");
    stream.set_read_timeout(Some(TICK)).expect("read timeout");
    let mut path = String::new();
    let mut ws = rfc6455::blocking::accept_with(stream, config, |request| {
        path = request.path().to_string();
        Ok(Accept::new())
    })
    .expect("server handshake");
    assert_eq!(path, PATH);
    let ours = blocking_exchange(&mut ws, closer);
    rfc6455::blocking::close_tcp(ws.into_inner(), Duration::from_secs(2));
    ours
}

fn blocking_client(addr: SocketAddr, config: Config, closer: Closer) -> Ours {
    let stream = TcpStream::connect_timeout(&addr, PEER_TIMEOUT).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream.set_read_timeout(Some(TICK)).expect("read timeout");
    let request = ClientRequest::new(addr.to_string(), PATH);
    let mut ws =
        rfc6455::blocking::client_with(stream, &request, config).expect("client handshake");
    blocking_exchange(&mut ws, closer)
}

fn blocking_exchange<S: Read + Write>(
    ws: &mut rfc6455::blocking::WebSocket<S>,
    closer: Closer,
) -> Ours {
    let agreed = negotiated(ws.connection());
    let deadline = Instant::now() + CELL_TIMEOUT;
    let next = |ws: &mut rfc6455::blocking::WebSocket<S>, what: &str| {
        assert!(Instant::now() < deadline, "{what}: out of time");
        ws.recv_event()
            .unwrap_or_else(|e| panic!("{what}: read_event failed: {e}"))
    };

    // Phase 1: the peer sends, we check and echo.
    for sample in messages() {
        let what = format!("phase 1, receiving {}", sample.describe());
        match next(ws, &what) {
            Event::Message(message) => {
                assert_same(&message, &sample, &what);
                ws.send(&message).expect("echo");
            }
            other => panic!("{what}: got {other:?}"),
        }
    }
    match next(ws, "phase 1, the peer's ping") {
        Event::Ping(payload) => assert_eq!(&payload[..], PEER_PING.as_bytes()),
        other => panic!("phase 1: expected the peer's Ping, got {other:?}"),
    }

    // Phase 2: we send, the peer echoes.
    for sample in messages() {
        let what = format!("phase 2, echo of {}", sample.describe());
        match (sample.fragment, sample.pieces) {
            (Some(size), true) => {
                let mut pieces = sample.data.chunks(size).peekable();
                while let Some(piece) = pieces.next() {
                    let last = pieces.peek().is_none();
                    ws.connection_mut()
                        .send_fragment(sample.kind, piece, last)
                        .map_err(rfc6455::blocking::Error::from)
                        .and_then(|()| ws.flush())
                        .unwrap_or_else(|e| panic!("{what}: send failed: {e}"));
                }
            }
            (Some(size), false) => ws
                .send_fragmented(sample.kind, &sample.data, size)
                .unwrap_or_else(|e| panic!("{what}: send failed: {e}")),
            (None, _) => ws
                .send(&sample.message())
                .unwrap_or_else(|e| panic!("{what}: send failed: {e}")),
        }
        match next(ws, &what) {
            Event::Message(message) => assert_same(&message, &sample, &what),
            other => panic!("{what}: got {other:?}"),
        }
    }
    ws.ping(RUST_PING.as_bytes()).expect("ping");
    match next(ws, "phase 2, the Pong") {
        Event::Pong(payload) => assert_eq!(&payload[..], RUST_PING.as_bytes(), "pong payload"),
        other => panic!("phase 2: expected our Pong, got {other:?}"),
    }

    // Phase 3: the closing handshake.
    match closer {
        Closer::Us => ws.close(CLOSE_CODE, CLOSE_REASON).expect("close"),
        Closer::Peer => ws.send_text("close-me").expect("send close-me"),
    }
    let closed = match next(ws, "closing") {
        Event::Closed(closed) => *closed,
        other => panic!("closing: expected Closed, got {other:?}"),
    };
    check_closed(&closed, closer);
    assert_eq!(ws.closed(), Some(&closed));
    assert!(
        matches!(ws.recv(), Ok(None)),
        "read after the closing handshake"
    );
    Ours { agreed, closed }
}

// ---------------------------------------------------------------------------
// The tokio adapter

/// Runs our side of a tokio cell on a runtime of its own, bounded by
/// [`CELL_TIMEOUT`].
fn tokio_side(work: impl std::future::Future<Output = Ours>) -> Ours {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        tokio::time::timeout(CELL_TIMEOUT, work)
            .await
            .expect("our side timed out")
    })
}

async fn tokio_server(listener: TcpListener, config: Config, closer: Closer) -> Ours {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let (stream, _) = tokio::time::timeout(PEER_TIMEOUT, listener.accept())
        .await
        .expect("the peer did not connect")
        .expect("accept");
    stream.set_nodelay(true).expect("nodelay");
    let mut path = String::new();
    let mut ws = rfc6455::tokio::accept_with(stream, config, |request| {
        path = request.path().to_string();
        Ok(Accept::new())
    })
    .await
    .expect("server handshake");
    assert_eq!(path, PATH);
    exchange(&mut ws, closer).await
}

async fn tokio_client(url: String, config: Config, closer: Closer) -> Ours {
    let mut ws = rfc6455::tokio::connect_with(&url, config)
        .await
        .expect("client handshake");
    exchange(&mut ws, closer).await
}

async fn exchange<W: Driver>(ws: &mut W, closer: Closer) -> Ours {
    let agreed = negotiated(ws.connection());
    async fn next<W: Driver>(ws: &mut W, what: &str) -> Event {
        ws.recv_event()
            .await
            .unwrap_or_else(|e| panic!("{what}: recv_event failed: {e}"))
    }

    // Phase 1: the peer sends, we check and echo.
    for sample in messages() {
        let what = format!("phase 1, receiving {}", sample.describe());
        match next(ws, &what).await {
            Event::Message(message) => {
                assert_same(&message, &sample, &what);
                ws.send(&message).await.expect("echo");
            }
            other => panic!("{what}: got {other:?}"),
        }
    }
    match next(ws, "phase 1, the peer's ping").await {
        Event::Ping(payload) => assert_eq!(&payload[..], PEER_PING.as_bytes()),
        other => panic!("phase 1: expected the peer's Ping, got {other:?}"),
    }

    // Phase 2: we send, the peer echoes.
    for sample in messages() {
        let what = format!("phase 2, echo of {}", sample.describe());
        match (sample.fragment, sample.pieces) {
            (Some(size), true) => {
                let mut pieces = sample.data.chunks(size).peekable();
                while let Some(piece) = pieces.next() {
                    let last = pieces.peek().is_none();
                    ws.connection_mut()
                        .send_fragment(sample.kind, piece, last)
                        .unwrap_or_else(|e| panic!("{what}: send failed: {e}"));
                    ws.flush()
                        .await
                        .unwrap_or_else(|e| panic!("{what}: send failed: {e}"));
                }
            }
            (Some(size), false) => ws
                .send_fragmented(sample.kind, &sample.data, size)
                .await
                .unwrap_or_else(|e| panic!("{what}: send failed: {e}")),
            (None, _) => ws
                .send(&sample.message())
                .await
                .unwrap_or_else(|e| panic!("{what}: send failed: {e}")),
        }
        match next(ws, &what).await {
            Event::Message(message) => assert_same(&message, &sample, &what),
            other => panic!("{what}: got {other:?}"),
        }
    }
    ws.ping(RUST_PING.as_bytes()).await.expect("ping");
    match next(ws, "phase 2, the Pong").await {
        Event::Pong(payload) => assert_eq!(&payload[..], RUST_PING.as_bytes(), "pong payload"),
        other => panic!("phase 2: expected our Pong, got {other:?}"),
    }

    // Phase 3: the closing handshake.
    match closer {
        Closer::Us => ws.close(CLOSE_CODE, CLOSE_REASON).await.expect("close"),
        Closer::Peer => ws.send_text("close-me").await.expect("send close-me"),
    }
    let closed = match next(ws, "closing").await {
        Event::Closed(closed) => *closed,
        other => panic!("closing: expected Closed, got {other:?}"),
    };
    check_closed(&closed, closer);
    assert_eq!(ws.closed(), Some(&closed));
    assert!(
        matches!(ws.recv().await, Ok(None)),
        "recv after the closing handshake"
    );
    Ours { agreed, closed }
}

/// Our side on the compio driver (io_uring): a runtime of its own,
/// bounded by [`CELL_TIMEOUT`].
mod compio_side {
    use super::*;

    #[cfg(feature = "compio")]
    fn run(work: impl std::future::Future<Output = Ours>) -> Ours {
        let runtime = compio::runtime::Runtime::new().expect("compio runtime");
        runtime.block_on(async {
            compio::time::timeout(CELL_TIMEOUT, work)
                .await
                .expect("our side timed out")
        })
    }

    #[cfg(feature = "compio")]
    pub fn server(listener: TcpListener, config: Config, closer: Closer) -> Ours {
        run(async move {
            let listener = compio::net::TcpListener::from_std(listener).expect("compio listener");
            let (stream, _) = compio::time::timeout(PEER_TIMEOUT, listener.accept())
                .await
                .expect("the peer did not connect")
                .expect("accept");
            stream.set_nodelay(true).expect("nodelay");
            let mut path = String::new();
            let mut ws = rfc6455::compio::accept_with(stream, config, |request| {
                path = request.path().to_string();
                Ok(Accept::new())
            })
            .await
            .expect("server handshake");
            assert_eq!(path, PATH);
            exchange(&mut ws, closer).await
        })
    }

    #[cfg(feature = "compio")]
    pub fn client(url: String, config: Config, closer: Closer) -> Ours {
        run(async move {
            let mut ws = rfc6455::compio::connect_with(&url, config)
                .await
                .expect("client handshake");
            exchange(&mut ws, closer).await
        })
    }

    #[cfg(not(feature = "compio"))]
    pub fn server(_: TcpListener, _: Config, _: Closer) -> Ours {
        panic!("the compio cells need the compio feature")
    }

    #[cfg(not(feature = "compio"))]
    pub fn client(_: String, _: Config, _: Closer) -> Ours {
        panic!("the compio cells need the compio feature")
    }
}

// ---------------------------------------------------------------------------
// The matrix, uncompressed: the peer's offer of permessage-deflate (Python
// client, Node client) is declined, and nothing is compressed.

#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn server_tokio_python() {
    run_cell(
        Side::Server,
        Adapter::Tokio,
        Peer::Python,
        Compression::off(),
    );
}

#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn server_tokio_node() {
    run_cell(Side::Server, Adapter::Tokio, Peer::Node, Compression::off());
}

#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn server_blocking_python() {
    run_cell(
        Side::Server,
        Adapter::Blocking,
        Peer::Python,
        Compression::off(),
    );
}

#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn server_blocking_node() {
    run_cell(
        Side::Server,
        Adapter::Blocking,
        Peer::Node,
        Compression::off(),
    );
}

#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn client_tokio_python() {
    run_cell(
        Side::Client,
        Adapter::Tokio,
        Peer::Python,
        Compression::off(),
    );
}

#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn client_tokio_node() {
    run_cell(Side::Client, Adapter::Tokio, Peer::Node, Compression::off());
}

#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn client_blocking_python() {
    run_cell(
        Side::Client,
        Adapter::Blocking,
        Peer::Python,
        Compression::off(),
    );
}

#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn client_blocking_node() {
    run_cell(
        Side::Client,
        Adapter::Blocking,
        Peer::Node,
        Compression::off(),
    );
}

#[cfg(feature = "compio")]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn server_compio_python() {
    run_cell(
        Side::Server,
        Adapter::Compio,
        Peer::Python,
        Compression::off(),
    );
}

#[cfg(feature = "compio")]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn server_compio_node() {
    run_cell(
        Side::Server,
        Adapter::Compio,
        Peer::Node,
        Compression::off(),
    );
}

#[cfg(feature = "compio")]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn client_compio_python() {
    run_cell(
        Side::Client,
        Adapter::Compio,
        Peer::Python,
        Compression::off(),
    );
}

#[cfg(feature = "compio")]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn client_compio_node() {
    run_cell(
        Side::Client,
        Adapter::Compio,
        Peer::Node,
        Compression::off(),
    );
}

// ---------------------------------------------------------------------------
// The matrix with permessage-deflate: the same exchange, compressed both ways.
// Each cell also varies a parameter, on our side (DeflateConfig) or the
// peer's (its --deflate), and checks what both ends then agreed. Our
// threshold is 0 except in the cells with DeflateConfig::default(), where
// the messages under 32 bytes go out uncompressed among compressed ones.

/// `threshold = 0`: we compress every message, the empty ones included
/// (RFC 7692 §7.2.3.6).
#[cfg(feature = "deflate")]
fn every_message(deflate: &mut DeflateConfig) {
    deflate.threshold = 0;
}

#[cfg(feature = "deflate")]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn server_tokio_python_deflate() {
    // Defaults on both sides: websockets offers client_max_window_bits
    // without a value, and we set no limit.
    let compression = Compression::on(|_| {}, "default", "permessage-deflate");
    run_cell(Side::Server, Adapter::Tokio, Peer::Python, compression);
}

#[cfg(feature = "deflate")]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn server_tokio_node_deflate() {
    // Our server forgets its window after each message, unasked.
    let compression = Compression::on(
        |d| {
            every_message(d);
            d.server_no_context_takeover = true;
        },
        "default",
        "permessage-deflate; server_no_context_takeover",
    );
    run_cell(Side::Server, Adapter::Tokio, Peer::Node, compression);
}

#[cfg(feature = "deflate")]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn server_blocking_python_deflate() {
    // The client offers to forget its window; our server limits its own
    // to 10 bits. websockets compresses at memLevel 9, level 9.
    let compression = Compression::on(
        |d| {
            every_message(d);
            d.server_max_window_bits = Some(10);
        },
        "client_no_context_takeover,mem_level=9,level=9",
        "permessage-deflate; client_no_context_takeover; server_max_window_bits=10",
    );
    run_cell(Side::Server, Adapter::Blocking, Peer::Python, compression);
}

#[cfg(feature = "deflate")]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn server_blocking_node_deflate() {
    // The client asks for an 11-bit server window; our server limits the
    // client to 10 bits, which ws allowed by offering client_max_window_bits.
    let compression = Compression::on(
        |d| {
            every_message(d);
            d.client_max_window_bits = Some(10);
        },
        "server_max_window_bits=11",
        "permessage-deflate; server_max_window_bits=11; client_max_window_bits=10",
    );
    run_cell(Side::Server, Adapter::Blocking, Peer::Node, compression);
}

#[cfg(feature = "deflate")]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn client_tokio_python_deflate() {
    // We offer to forget our window; websockets' server answers with its
    // default limits of 12 bits both ways.
    let compression = Compression::on(
        |d| {
            every_message(d);
            d.client_no_context_takeover = true;
        },
        "default",
        "permessage-deflate; client_no_context_takeover; \
         server_max_window_bits=12; client_max_window_bits=12",
    );
    run_cell(Side::Client, Adapter::Tokio, Peer::Python, compression);
}

#[cfg(feature = "deflate")]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn client_tokio_node_deflate() {
    // We ask for a 10-bit server window, and ws grants it.
    let compression = Compression::on(
        |d| {
            every_message(d);
            d.server_max_window_bits = Some(10);
        },
        "default",
        "permessage-deflate; server_max_window_bits=10",
    );
    run_cell(Side::Client, Adapter::Tokio, Peer::Node, compression);
}

#[cfg(feature = "deflate")]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn client_blocking_python_deflate() {
    // We ask the server to forget its window; websockets' server limits
    // itself to 11 bits and us to 9, zlib's smallest (where our binary
    // messages no longer compress: see check_wire).
    let compression = Compression::on(
        |d| {
            every_message(d);
            d.server_no_context_takeover = true;
        },
        "server_max_window_bits=11,client_max_window_bits=9",
        "permessage-deflate; server_no_context_takeover; \
         server_max_window_bits=11; client_max_window_bits=9",
    );
    run_cell(Side::Client, Adapter::Blocking, Peer::Python, compression);
}

#[cfg(feature = "deflate")]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn client_blocking_node_deflate() {
    // Our defaults; ws's server imposes client_no_context_takeover, which
    // we did not offer but must honour (RFC 7692 §7.1.1.2).
    let compression = Compression::on(
        |_| {},
        "client_no_context_takeover,mem_level=4",
        "permessage-deflate; client_no_context_takeover",
    );
    run_cell(Side::Client, Adapter::Blocking, Peer::Node, compression);
}

#[cfg(all(feature = "deflate", feature = "compio"))]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn server_compio_python_deflate() {
    // Defaults on both sides, through the io_uring driver.
    let compression = Compression::on(|_| {}, "default", "permessage-deflate");
    run_cell(Side::Server, Adapter::Compio, Peer::Python, compression);
}

#[cfg(all(feature = "deflate", feature = "compio"))]
#[test]
#[ignore = "needs the Python and Node peers: run tests/interop/run"]
fn client_compio_node_deflate() {
    // Every message compressed, through the io_uring driver.
    let compression = Compression::on(every_message, "default", "permessage-deflate");
    run_cell(Side::Client, Adapter::Compio, Peer::Node, compression);
}
