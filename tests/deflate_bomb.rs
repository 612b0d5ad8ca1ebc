//! A compressed message that inflates far past the limit is stopped while
//! it inflates: 1009, and memory grows by about the limit, not by the
//! inflated size (CVE-2018-1000518 checked the limit only afterwards).
//!
//! This file holds one test, so the counting allocator below sees nothing
//! else of this process.
#![cfg(feature = "deflate")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
use rfc6455::{CloseCode, Config, DeflateConfig, Event};

/// Counts the bytes allocated now and the most ever allocated at once.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the same arguments and
// only adds bookkeeping on atomics, so `System`'s guarantees carry over.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded; `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's arguments.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            let now = if new_size >= layout.size() {
                CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size()
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed)
                    - (layout.size() - new_size)
            };
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_small_message_that_inflates_past_the_limit_is_1009_without_the_memory() {
    const LIMIT: usize = 64 * 1024;
    const INFLATED: usize = 2 << 20;
    let mut client_config = Config::default();
    let mut deflate = DeflateConfig::default();
    deflate.level = 9;
    client_config.deflate = Some(deflate);
    let mut server_config = Config::default();
    server_config.deflate = Some(DeflateConfig::default());
    server_config.max_message_size = Some(LIMIT);

    let hs = ClientHandshake::new(&ClientRequest::new("h", "/"), client_config);
    let request = ServerHandshake::new(server_config)
        .handle_read(hs.request())
        .unwrap()
        .done()
        .unwrap();
    let accepted = request.accept(Accept::new()).unwrap();
    let mut server = accepted.connection;
    let mut client = hs
        .handle_read(&accepted.response)
        .unwrap()
        .done()
        .unwrap()
        .connection;

    // 2 MiB of zeros, compressed by our own client: about 2 KiB on the wire.
    let bomb = vec![0u8; INFLATED];
    client.send_binary(&bomb).unwrap();
    drop(bomb);
    let wire = client.pending_output().to_vec();
    assert!(wire.len() < 4 * 1024, "{} bytes on the wire", wire.len());
    // The first 1 KiB of it already inflates past the limit.
    let first_kib = &wire[..1024];

    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    server.handle_read(first_kib);
    let event = server.poll_event();
    let grew = PEAK.load(Ordering::Relaxed) - before;

    match event {
        Some(Event::Closed(closed)) => assert_eq!(closed.code(), CloseCode::MESSAGE_TOO_BIG),
        other => panic!("expected Closed(1009), got {other:?}"),
    }
    // 1 KiB of input holds about 1 MiB of zeros; we keep at most the limit
    // (plus the decompressor's own state, about 50 KiB).
    assert!(
        grew < LIMIT + 128 * 1024,
        "memory grew by {grew} bytes while inflating (limit {LIMIT})"
    );
    let frames = server.pending_output();
    assert_eq!(&frames[..4], &[0x88, 0x11, 0x03, 0xf1], "Close 1009 queued");
}
