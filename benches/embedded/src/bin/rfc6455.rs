//! The job with rfc6455: accept a client, echo every message up to 4 KiB,
//! answer Pings, close; on the embedded-io-async driver with timers.
#![no_std]
#![no_main]

use core::hint::black_box;

use embedded_alloc::LlffHeap as Heap;
use rfc6455::embedded::{self, Clock};
use rfc6455::{Config, Driver, Timestamp};
use rfc6455_embedded_size::{block_on, Wire, MAX_MESSAGE};

#[global_allocator]
static HEAP: Heap = Heap::empty();

struct Ticks;

impl Clock for Ticks {
    fn now(&self) -> Timestamp {
        black_box(Timestamp::from_millis(0))
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        black_box(deadline);
    }
}

#[no_mangle]
pub extern "C" fn _start() -> ! {
    static mut MEMORY: [u8; 16 << 10] = [0; 16 << 10];
    // SAFETY: called once, before any allocation; MEMORY is used by no one else.
    unsafe { HEAP.init(core::ptr::addr_of_mut!(MEMORY) as usize, 16 << 10) };
    block_on(async {
        let mut config = Config::default();
        config.max_frame_size = Some(MAX_MESSAGE);
        config.max_message_size = Some(MAX_MESSAGE);
        config.max_header_bytes = 1024;
        config.max_headers = 16;
        let Ok(mut ws) = embedded::accept(Wire, Ticks, config).await else {
            return;
        };
        while let Ok(Some(message)) = ws.recv().await {
            if ws.send(&message).await.is_err() {
                break;
            }
        }
    });
    loop {}
}
