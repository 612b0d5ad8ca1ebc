//! The small-memory configuration (guide/drivers.md, "Embedded"): for a device with
//! tens of KiB of RAM, the limits bound what a connection may allocate,
//! whatever the peer sends. A counting allocator measures the heap in use
//! at its peak while a server runs the handshake and echoes a stream of
//! messages (fragmented, with Pings between the fragments, read in small
//! pieces), and while it streams a message far larger than its memory.
//! The bounds are memory, never time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
use rfc6455::plumbing::Plumbing;
use rfc6455::{Config, Connection, Event, MaskKeys, MessageKind, Role};

/// Counts the live heap bytes of the current thread, and their peak.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    // `try_with`: the thread may be tearing down its locals.
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

// SAFETY: every call forwards to `System` with the caller's arguments, so
// `System` upholds the contract; the counting touches no memory it returns.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The heap in use at the peak of `f`, above what was in use before it.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    f();
    (PEAK.with(Cell::get) - base) as usize
}

/// The configuration the README recommends for tens of KiB of RAM.
fn small(streaming: bool) -> Config {
    let mut config = Config::default();
    config.max_frame_size = Some(1024);
    config.max_message_size = if streaming { None } else { Some(4096) };
    config.streaming = streaming;
    config.max_header_bytes = 1024;
    config.max_headers = 16;
    config
}

/// What a client sends: its handshake request, then `messages` (each in
/// frames of at most 1 KiB, with a Ping after each message), then a Close.
fn client_wire(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut config = Config::default();
    config.mask_keys = MaskKeys::Fixed([1, 2, 3, 4]);
    let request = ClientRequest::new("device.local", "/ws");
    let handshake = ClientHandshake::new(&request, config.clone());
    let mut wire = handshake.request().to_vec();
    let mut client = Connection::new(Role::Client, config);
    for message in messages {
        client
            .send_fragmented(MessageKind::Binary, message, 1024)
            .unwrap();
        client.ping(b"still there?").unwrap();
    }
    client.close(rfc6455::CloseCode::NORMAL, "done").unwrap();
    let n = client.pending_output_len();
    wire.extend(client.pending_output_pieces().flatten());
    client.consume_output(n);
    wire
}

/// A server in `config` reads `wire` in reads of `read` bytes and echoes
/// every whole message; returns the messages and fragments it saw.
fn serve(config: Config, wire: &[u8], read: usize) -> (usize, usize) {
    let mut handshake = Some(ServerHandshake::new(config));
    let mut conn = None::<Connection>;
    let (mut messages, mut fragments) = (0, 0);
    for chunk in wire.chunks(read) {
        let conn = match conn.as_mut() {
            Some(conn) => {
                conn.handle_read(chunk);
                conn
            }
            None => {
                let progress = handshake.take().unwrap().handle_read(chunk).unwrap();
                match progress {
                    rfc6455::handshake::Progress::Partial(h) => {
                        handshake = Some(h);
                        continue;
                    }
                    rfc6455::handshake::Progress::Done(request) => {
                        let accepted = request.accept(Accept::new()).unwrap();
                        drop(accepted.response);
                        conn.insert(accepted.connection)
                    }
                }
            }
        };
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(message) => {
                    messages += 1;
                    conn.send(&message).unwrap();
                }
                Event::Fragment(_) => fragments += 1,
                Event::Closed(closed) => assert!(closed.is_clean(), "{closed:?}"),
                Event::Ping(_) | Event::Pong(_) => {}
            }
            // The driver writes the output out as it comes.
            let n = conn.pending_output_len();
            conn.consume_output(n);
        }
    }
    (messages, fragments)
}

#[test]
fn echoing_messages_up_to_the_limit_stays_within_9_kib_and_two_reads() {
    // Sizes from empty to the 4 KiB limit, whole and fragmented.
    let messages: Vec<Vec<u8>> = (0..60u32)
        .map(|i| vec![i as u8; ((i * 997) % 4097) as usize])
        .chain([vec![7; 4096]])
        .collect();
    let wire = client_wire(&messages);
    for read in [64, 512, 1536] {
        let mut seen = 0;
        let peak = peak_during(|| seen = serve(small(false), &wire, read).0);
        assert_eq!(seen, messages.len());
        // About 8.5 KiB with small reads: the message being assembled (one
        // allocation of at most the 4 KiB limit), the one before it still
        // being echoed, a frame's room in the receive buffer; a larger
        // read adds what it holds of the following frames. Plus the
        // connection's working part (its buffers' handles, the frame and
        // message under way: 224 bytes on 64-bit), which is on the heap
        // while the connection has work, so that a waiting one is small.
        assert!(
            peak <= (9 << 10) + 256 + 2 * read,
            "reads of {read}: the heap peaked at {peak} bytes"
        );
    }
}

#[test]
fn streaming_a_message_of_a_mebibyte_stays_within_4_kib() {
    let wire = client_wire(&[vec![5; 1 << 20]]);
    for read in [64, 512, 1536] {
        let mut fragments = 0;
        let peak = peak_during(|| fragments = serve(small(true), &wire, read).1);
        assert!(fragments >= 1024, "the message came in pieces");
        // About 1.3 KiB: one frame's room, whatever the message's size.
        assert!(
            peak <= 4 << 10,
            "reads of {read}: the heap peaked at {peak} bytes"
        );
    }
}

#[test]
fn a_message_over_the_limit_is_refused_without_buffering_it() {
    // A 64 KiB message against the 4 KiB limit: closed with 1009 once the
    // limit is passed, never held whole.
    let wire = client_wire(&[vec![9; 64 << 10]]);
    let peak = peak_during(|| {
        let mut handshake = ServerHandshake::new(small(false));
        let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let request = handshake_done(&mut handshake, &wire[..head_end]);
        let mut conn = request.accept(Accept::new()).unwrap().connection;
        let mut code = None;
        for chunk in wire[head_end..].chunks(512) {
            conn.handle_read(chunk);
            while let Some(event) = conn.poll_event() {
                if let Event::Closed(closed) = event {
                    code = closed.sent.map(|frame| frame.code);
                }
            }
            let n = conn.pending_output_len();
            conn.consume_output(n);
        }
        assert_eq!(code, Some(rfc6455::CloseCode::MESSAGE_TOO_BIG));
    });
    // About 5.7 KiB: the limit's worth of message, a frame's room.
    assert!(peak <= 8 << 10, "the heap peaked at {peak} bytes");
}

/// Feeds a whole request head to a server handshake.
fn handshake_done(handshake: &mut ServerHandshake, head: &[u8]) -> rfc6455::handshake::Request {
    let fresh = std::mem::replace(handshake, ServerHandshake::new(Config::default()));
    fresh
        .handle_read(head)
        .unwrap()
        .done()
        .expect("a whole head")
}
