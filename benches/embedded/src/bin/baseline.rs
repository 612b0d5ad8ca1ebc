//! The harness alone: the stream read and written once.
#![no_std]
#![no_main]

use embedded_io_async::{Read, Write};
use rfc6455_embedded_size::{block_on, Wire};

#[no_mangle]
pub extern "C" fn _start() -> ! {
    block_on(async {
        let mut buf = [0; 64];
        let n = Wire.read(&mut buf).await.unwrap();
        Wire.write_all(&buf[..n]).await.unwrap();
    });
    loop {}
}
