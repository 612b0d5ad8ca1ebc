//! What every size binary shares: a stream whose bytes the optimizer
//! cannot see through, a clock, a poll loop, the panic handler and the
//! entry point. The `baseline` binary is this alone; a library's size is
//! its binary's size minus the baseline's.
#![no_std]

// The critical section the allocator takes (single core, interrupts off).
use cortex_m as _;

use core::convert::Infallible;
use core::future::Future;
use core::hint::black_box;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

/// A stream whose reads and writes the optimizer must assume do anything.
pub struct Wire;

impl embedded_io::ErrorType for Wire {
    type Error = Infallible;
}

impl embedded_io_async::Read for Wire {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let buf = black_box(buf);
        Ok(black_box(buf.len()))
    }
}

impl embedded_io_async::Write for Wire {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        Ok(black_box(black_box(buf).len()))
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Polls `future` to completion (every future here is always ready).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// The largest message the job handles.
pub const MAX_MESSAGE: usize = 4096;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
