//! Broadcast with a prepared message: the same message on many server
//! connections arrives intact at every client, with and without
//! permessage-deflate, with and without context takeover; connections
//! without context takeover share one compressed frame, the others
//! compress for themselves; and once the buffers are warm, sending a
//! prepared message allocates nothing per connection.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::pair::Pair;
use rfc6455::{Config, Event, Message, PreparedMessage};

/// Counts the current thread's allocations.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call forwards to `System` with the caller's arguments; the
// counting touches no memory it returns.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// The messages broadcast: small, around the sharing threshold, large;
/// text and binary; compressible and not.
fn messages() -> Vec<Message> {
    let noise: Vec<u8> = (0..70_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    vec![
        Message::from("hi"),
        Message::from("a chat line that is long enough to be compressed, a chat line"),
        Message::from(vec![1u8; 1023]),
        Message::from(vec![2u8; 1024]),
        Message::from("\u{1F600} ".repeat(20_000)),
        Message::from(noise),
    ]
}

#[cfg(feature = "deflate")]
fn deflate(server_no_context_takeover: bool) -> (Config, Config) {
    let mut client = Config::default();
    client.deflate = Some(rfc6455::DeflateConfig::default());
    let mut server = Config::default();
    let mut deflate = rfc6455::DeflateConfig::default();
    deflate.server_no_context_takeover = server_no_context_takeover;
    server.deflate = Some(deflate);
    (client, server)
}

/// The configurations: (name, client, server, whether the compressed
/// frame is shared).
fn setups() -> Vec<(&'static str, Config, Config, bool)> {
    #[allow(unused_mut)]
    let mut setups = vec![("plain", Config::default(), Config::default(), false)];
    #[cfg(feature = "deflate")]
    {
        let (client, server) = deflate(true);
        setups.push(("deflate, no context takeover", client, server, true));
        let (client, server) = deflate(false);
        setups.push(("deflate, context takeover", client, server, false));
    }
    setups
}

fn received(pair: &mut Pair) -> Vec<Message> {
    pair.drive();
    pair.client
        .events
        .drain(..)
        .filter_map(|(_, event)| match event {
            Event::Message(message) => Some(message),
            _ => None,
        })
        .collect()
}

#[test]
fn a_prepared_message_arrives_intact_on_every_connection() {
    for (name, client, server, shared) in setups() {
        let mut pairs: Vec<Pair> = (0..4)
            .map(|_| Pair::connect(client.clone(), server.clone()))
            .collect();
        for message in messages() {
            let prepared = PreparedMessage::new(&message);
            // Twice: a connection with context takeover carries state from
            // the first into the second.
            for _ in 0..2 {
                for pair in &mut pairs {
                    pair.server.conn.send_prepared(&prepared).unwrap();
                    assert_eq!(received(pair), vec![message.clone()], "{name}");
                }
            }
            // One shared encoding when the server compresses without
            // context takeover (and the message is large enough), none
            // otherwise.
            let compressed = message.as_bytes().len() >= 32;
            let want = usize::from(shared && compressed);
            assert_eq!(
                prepared.shared_encodings(),
                want,
                "{name}, {} bytes",
                message.as_bytes().len()
            );
        }
    }
}

#[test]
fn a_client_sends_a_prepared_message_masked_with_its_own_keys() {
    let mut pair = Pair::connect(Config::default(), Config::default());
    let message = Message::from(vec![9u8; 5000]);
    pair.client
        .conn
        .send_prepared(&PreparedMessage::new(&message))
        .unwrap();
    pair.drive();
    let got: Vec<&Event> = pair.server.events();
    assert!(matches!(got.as_slice(), [Event::Message(m)] if *m == message));
}

#[test]
fn sending_a_prepared_message_allocates_nothing_per_connection() {
    for (name, client, server, _) in setups() {
        let mut pairs: Vec<Pair> = (0..8)
            .map(|_| Pair::connect(client.clone(), server.clone()))
            .collect();
        // Context takeover compresses per connection, which allocates in
        // the compressor: that path is not the prepared one.
        if name.ends_with("context takeover") && !name.contains("no context") {
            continue;
        }
        for message in messages() {
            let prepared = PreparedMessage::new(&message);
            // Warm: the output buffers grow to size, the shared encoding
            // is made.
            for pair in &mut pairs {
                pair.server.conn.send_prepared(&prepared).unwrap();
                drain(pair);
            }
            let before = allocations();
            for pair in &mut pairs {
                pair.server.conn.send_prepared(&prepared).unwrap();
                drain(pair);
            }
            assert_eq!(
                allocations() - before,
                0,
                "{name}: {} bytes",
                message.as_bytes().len()
            );
        }
    }
}

/// Writes the server's output away, as a socket write would.
fn drain(pair: &mut Pair) {
    let conn = &mut pair.server.conn;
    while conn.pending_output_len() > 0 {
        let n = conn.pending_output().len();
        conn.consume_output(n);
    }
}
