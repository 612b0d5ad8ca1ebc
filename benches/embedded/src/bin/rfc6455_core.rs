//! The job with rfc6455's core alone, driven by a loop written here (no
//! driver, no clock: the core's timers never run): accept a client, echo
//! every message up to 4 KiB, answer Pings, close. What the core costs;
//! the `rfc6455` binary less this is the driver loop and its timers.
#![no_std]
#![no_main]

use embedded_alloc::LlffHeap as Heap;
use embedded_io_async::{Read, Write};
use rfc6455::handshake::{Accept, Progress, ServerHandshake};
use rfc6455::plumbing::Plumbing;
use rfc6455::{Config, Event};
use rfc6455_embedded_size::{block_on, Wire, MAX_MESSAGE};

#[global_allocator]
static HEAP: Heap = Heap::empty();

#[no_mangle]
pub extern "C" fn _start() -> ! {
    static mut MEMORY: [u8; 16 << 10] = [0; 16 << 10];
    // SAFETY: called once, before any allocation; MEMORY is used by no one else.
    unsafe { HEAP.init(core::ptr::addr_of_mut!(MEMORY) as usize, 16 << 10) };
    block_on(serve());
    loop {}
}

async fn serve() {
    let mut config = Config::default();
    config.max_frame_size = Some(MAX_MESSAGE);
    config.max_message_size = Some(MAX_MESSAGE);
    config.max_header_bytes = 1024;
    config.max_headers = 16;
    let mut wire = Wire;
    let mut handshake = ServerHandshake::new(config);
    let mut buf = [0; 256];
    let accepted = loop {
        let Ok(n) = wire.read(&mut buf).await;
        match handshake.handle_read(&buf[..n]) {
            Ok(Progress::Partial(more)) => handshake = more,
            Ok(Progress::Done(request)) => match request.accept(Accept::new()) {
                Ok(accepted) => break accepted,
                Err(_) => return,
            },
            // The refusal's response is the error's to give; sent here.
            Err(error) => {
                let _ = wire.write_all(&error.response()).await;
                return;
            }
        }
    };
    let _ = wire.write_all(&accepted.response).await;
    let mut conn = accepted.connection;
    loop {
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(message) => {
                    if conn.send(&message).is_err() {
                        return;
                    }
                }
                Event::Closed(_) => return,
                _ => {}
            }
        }
        while conn.pending_output_len() > 0 {
            let Ok(n) = wire.write(conn.pending_output()).await;
            conn.consume_output(n);
        }
        let mut input = conn.read_buffer(1024);
        let Ok(n) = wire.read(input.unfilled()).await;
        input.advance(n);
    }
}
