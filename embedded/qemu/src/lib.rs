//! What the firmware's two programs share: the board (QEMU's mps2-an386, a
//! Cortex-M4), its UART as the link to the host, its timer as the clock,
//! a fixed heap whose high-water mark is kept, and a poll loop.
//!
//! The WebSocket side is the library's embedded driver, unchanged: the
//! programs hand it a [`Session`] (an `embedded-io-async` stream) and a
//! [`Ticks`] clock, as a firmware on a real chip would hand it an
//! embassy-net socket and embassy's timer.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod board;
pub mod link;
pub mod memory;

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

pub use board::{exit, Ticks};
pub use link::Session;

/// Runs `future` to its end, polling it whenever an interrupt woke the
/// core (a byte on the link, or SysTick's millisecond): the UART and the
/// timer are polled by the futures, the interrupts only end the sleep.
///
/// The future is pinned where it is, in the caller's frame: passed by
/// value it would be copied into this one, and the stack would hold it
/// twice.
pub fn block_on<F: Future>(mut future: Pin<&mut F>) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        board::idle();
    }
}

/// Boots the board (heap, stack paint, UART, clock), logs `what`, and
/// serves the line's connections one after another: `serve` runs each on
/// its session (closed when dropped), then what the heap and the stack
/// reached is logged. Every server program of the firmware is this loop.
pub fn serve_each<F, Fut>(what: &str, mut serve: F) -> !
where
    F: FnMut(Session) -> Fut,
    Fut: Future<Output = ()>,
{
    memory::start();
    board::start();
    log!("{what}");
    block_on(core::pin::pin!(async {
        let mut count = 0u32;
        loop {
            let session = Session::accept().await;
            count += 1;
            serve(session).await;
            report(format_args!("connection {count}"));
        }
    }))
}

/// Writes to the log (the board's second UART, the host's stdout).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::board::Log, $($arg)*);
    }};
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    log!("panic: {info}");
    exit(101)
}

/// A WebSocket over the line, on the board's clock.
pub type WebSocket = rfc6455::embedded::WebSocket<Session, Ticks>;

/// The settings both programs use: messages streamed (delivered and sent
/// back in pieces as they arrive), so no message, however large, is held
/// whole in the board's RAM; handshake heads of at most 2 KiB.
pub fn config() -> rfc6455::Config {
    let mut config = rfc6455::Config::default();
    config.streaming = true;
    config.max_frame_size = None;
    config.max_message_size = None;
    config.max_header_bytes = 2048;
    config.max_headers = 24;
    config
}

/// Sends back every message as it arrives, piece by piece, until the
/// closing handshake ends (or the connection fails).
pub async fn echo(ws: &mut WebSocket) {
    use rfc6455::{Driver, Event};
    loop {
        let sent = match ws.recv_event().await {
            Ok(Event::Fragment(piece)) => ws
                .connection_mut()
                .send_fragment(piece.kind, &piece.data, piece.last)
                .is_ok(),
            Ok(Event::Message(message)) => ws.queue(&message).await.is_ok(),
            Ok(Event::Closed(_)) | Err(_) => return,
            Ok(_) => true,
        };
        if !sent || ws.flush().await.is_err() {
            return;
        }
    }
}

/// Logs what the heap and the stack reached during a connection.
pub fn report(what: core::fmt::Arguments) {
    let (used, peak, stack) = memory::report();
    log!("{what}: heap peak {peak} B (in use after: {used} B), stack peak {stack} B");
    memory::reset_peak();
}

/// The RAM comparison's largest message and largest frame (ram.py).
pub const LARGEST: (usize, usize) = (4096, 1024);
