//! Part 4: allocations per message in steady state, counted by a
//! `#[global_allocator]` wrapper around `System`.
//!
//! Counting is off unless both the global switch is on and the allocating
//! thread has opted in, so the other parts pay one relaxed load per
//! allocation and nothing else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::codec::{Content, Decoder, Encoder, Feed, Input, Lib, DECODERS, ENCODERS};
use crate::echo::{connect, drive, Job, Mode};
use crate::harness::{size_name, Budget, Table};
use crate::servers::{serve, ServerLib};

pub struct Counting;

static ENABLED: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Live bytes allocated by counted threads, and their peak.
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static THIS_THREAD: Cell<bool> = const { Cell::new(false) };
}

#[inline]
fn record(size: usize) {
    if ENABLED.load(Relaxed) && THIS_THREAD.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(size as u64, Relaxed);
        let live = LIVE.fetch_add(size as i64, Relaxed) + size as i64;
        PEAK.fetch_max(live, Relaxed);
    }
}

#[inline]
fn release(size: usize) {
    if ENABLED.load(Relaxed) && THIS_THREAD.try_with(Cell::get).unwrap_or(false) {
        LIVE.fetch_sub(size as i64, Relaxed);
    }
}

// SAFETY: every call forwards to System with the same arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        release(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        release(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Counts this thread's heap from now on (for a server thread whose
/// memory a part measures with [`live`]).
pub fn count_this_thread() {
    THIS_THREAD.with(|t| t.set(true));
}

/// Turns the counting of the threads that opted in on or off.
pub fn counting(on: bool) {
    ENABLED.store(on, Relaxed);
}

/// The heap the counted threads hold, net, since counting began.
pub fn live() -> i64 {
    LIVE.load(Relaxed)
}

/// The peak of the heap the current thread holds during `f`, above what it
/// held before (memory freed during `f` that was allocated before it
/// counts as negative, so keep `f` self-contained).
pub fn peak_here<R>(f: impl FnOnce() -> R) -> (R, u64) {
    LIVE.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    let (r, _, _) = count_here(f);
    (r, PEAK.load(Relaxed).max(0) as u64)
}

/// Counts the allocations (and bytes) of the current thread during `f`.
fn count_here<R>(f: impl FnOnce() -> R) -> (R, u64, u64) {
    let (a, b) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    THIS_THREAD.with(|t| t.set(true));
    ENABLED.store(true, Relaxed);
    let r = f();
    ENABLED.store(false, Relaxed);
    THIS_THREAD.with(|t| t.set(false));
    (r, ALLOCS.load(Relaxed) - a, BYTES.load(Relaxed) - b)
}

fn cell(allocs: u64, bytes: u64, msgs: u64) -> String {
    let per = allocs as f64 / msgs as f64;
    let bytes_per = bytes as f64 / msgs as f64;
    if allocs == 0 {
        "0".into()
    } else if per < 0.01 {
        format!("{allocs} in {msgs} msgs")
    } else {
        format!("{per:.2} ({bytes_per:.0} B)")
    }
}

pub fn run(budget: Budget) {
    println!("\n## Part 4: allocations per message, steady state");
    let rows: Vec<(usize, Content, Feed)> = {
        let mut v = Vec::new();
        for size in [16, 1024, 64 << 10, 1 << 20] {
            for feed in Feed::ALL {
                v.push((size, Content::Binary, feed));
            }
        }
        v.push((1024, Content::Mixed, Feed::Many));
        v.push((1024, Content::Mixed, Feed::One));
        v
    };

    let mut recv = Table::new(
        "Receive path, in memory (as part 1's decode): allocations per message (bytes allocated per message)",
        &["size", "content", "feed", "rfc6455", "tungstenite", "tungstenite 4k", "fastwebsockets"],
    );
    for &(size, content, feed) in &rows {
        let frames = if budget.quick { 256 } else { 2048 }.min(crate::codec::frames_per_pass(size));
        let input = Input::new(content, size, frames);
        let mut row = vec![size_name(size), content.name().into(), feed.name().into()];
        for lib in DECODERS {
            let mut decoder = Decoder::new(lib, &input, feed);
            decoder.pass(true);
            decoder.pass(false);
            let (_, allocs, bytes) = count_here(|| decoder.pass(false));
            row.push(cell(allocs, bytes, frames as u64));
        }
        recv.row(row);
    }
    recv.print();

    let mut send = Table::new(
        "Send path, in memory (as part 1's encode): allocations per message (bytes allocated per message)",
        &["size", "content", "rfc6455", "tungstenite", "fastwebsockets"],
    );
    for &(size, content, feed) in &rows {
        if feed != Feed::Many {
            continue;
        }
        let frames = if budget.quick { 256 } else { 2048 }.min(crate::codec::frames_per_pass(size));
        let input = Input::new(content, size, frames);
        let mut row = vec![size_name(size), content.name().into()];
        for lib in ENCODERS {
            let mut encoder = Encoder::new(lib, &input);
            encoder.pass(lib != Lib::Fastwebsockets);
            encoder.pass(false);
            let (_, allocs, bytes) = count_here(|| encoder.pass(false));
            row.push(cell(allocs, bytes, frames as u64));
        }
        send.row(row);
    }
    send.note("rfc6455 and tungstenite as client; the mask is random per frame. fastwebsockets masks a Payload::Borrowed by copying it to an owned Vec.");
    send.print();

    let mut broadcast = Table::new(
        "Broadcast, in memory: allocations per connection per message (100 server connections, the output written away after each round)",
        &["size", "send_prepared", "send (each connection)"],
    );
    for size in [64usize, 4096, 64 << 10] {
        let rounds: u64 = if budget.quick { 20 } else { 200 };
        let mut row = vec![size_name(size)];
        for prepared in [true, false] {
            let (allocs, bytes) = broadcast_allocs(size, prepared, rounds);
            row.push(cell(allocs, bytes, rounds * 100));
        }
        broadcast.row(row);
    }
    broadcast.note("Per round one PreparedMessage is made (one allocation, shared by the 100 connections: 0.01 per connection); send copies payloads under 1 KiB into the output and shares larger ones.");
    broadcast.print();

    let mut adapter = Table::new(
        "Echo server over loopback TCP (each library's echo loop as in part 2, server thread only): allocations per message",
        &["mode", "size", "rfc6455", "tungstenite", "tungstenite4k", "fastwebsockets", "rfc6455-send"],
    );
    let cases = [
        (Mode::PingPong, 16usize),
        (Mode::PingPong, 1024),
        (Mode::PingPong, 64 << 10),
        (Mode::Pipelined, 16),
        (Mode::Pipelined, 1024),
    ];
    let msgs: u64 = if budget.quick { 2000 } else { 20_000 };
    for (mode, size) in cases {
        let mut row = vec![mode.name().to_string(), size_name(size)];
        for lib in ServerLib::MAIN.iter().chain(&[ServerLib::Rfc6455Send]) {
            if *lib == ServerLib::Rfc6455Send && mode == Mode::PingPong {
                row.push("-".into());
                continue;
            }
            let (allocs, bytes) = server_allocs(*lib, mode, size, msgs)
                .unwrap_or_else(|e| panic!("alloc {}: {e}", lib.name()));
            row.push(cell(allocs, bytes, msgs));
        }
        adapter.row(row);
    }
    adapter.note("One connection; the load generator runs on another thread and is not counted. Warm-up of 2,000 messages first.");
    adapter.print();
}

/// Runs `msgs` echoes against an in-process server of `lib` whose thread
/// alone is counted, and returns its allocations.
fn server_allocs(lib: ServerLib, mode: Mode, size: usize, msgs: u64) -> io::Result<(u64, u64)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        THIS_THREAD.with(|t| t.set(true));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            tokio::select! {
                _ = serve(lib, listener) => {}
                _ = stop_rx => {}
            }
        });
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let mut stream = connect(addr).await?;
        let job = |n: u64| Job {
            size,
            window: mode.window(size),
            measure_start: Instant::now(),
            end: Instant::now() + Duration::from_secs(60),
            max_msgs: n,
        };
        let warm = drive(&mut stream, &job(2000), 3).await?;
        assert_eq!(warm.completed, 2000, "warm-up echoes");
        let (a, b) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        ENABLED.store(true, Relaxed);
        let stats = drive(&mut stream, &job(msgs), 3).await;
        ENABLED.store(false, Relaxed);
        let stats = stats?;
        assert_eq!(stats.completed, msgs, "echoes");
        Ok::<_, io::Error>((ALLOCS.load(Relaxed) - a, BYTES.load(Relaxed) - b))
    });
    let _ = stop_tx.send(());
    let _ = server.join();
    result
}

/// Allocations of `rounds` broadcasts of a `size`-byte message to 100
/// server connections made in memory, with `send_prepared` or with
/// `send` on each; the output is written away after each round,
/// as a socket would take it. Two warm-up rounds first.
fn broadcast_allocs(size: usize, prepared: bool, rounds: u64) -> (u64, u64) {
    use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
    use rfc6455::{Config, Message, PreparedMessage};
    let mut servers: Vec<rfc6455::Connection> = (0..100)
        .map(|_| {
            let client = ClientHandshake::new(&ClientRequest::new("h", "/"), Config::default());
            let request = ServerHandshake::new(Config::default())
                .handle_read(client.request())
                .expect("a request")
                .done()
                .expect("complete");
            request.accept(Accept::new()).expect("accepted").connection
        })
        .collect();
    let payload = bytes::Bytes::from(vec![7u8; size]);
    let round = |servers: &mut Vec<rfc6455::Connection>| {
        let message = Message::Binary(payload.clone());
        let shared = PreparedMessage::new(&message);
        for conn in servers.iter_mut() {
            if prepared {
                conn.send_prepared(&shared).expect("open");
            } else {
                conn.send(&message).expect("open");
            }
            while conn.pending_output_len() > 0 {
                let n = conn.pending_output().len();
                conn.consume_output(n);
            }
        }
    };
    round(&mut servers);
    round(&mut servers);
    let ((), allocs, bytes) = count_here(|| {
        for _ in 0..rounds {
            round(&mut servers);
        }
    });
    (allocs, bytes)
}
