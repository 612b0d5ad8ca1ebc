//! The Autobahn client on the board: asks the fuzzing server (through the
//! host's bridge, which connects each session the board opens) for the
//! number of cases, runs each by echoing what it sends, asks for the
//! reports, and ends QEMU.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use core::pin::pin;

use cortex_m_rt::entry;
use rfc6455::handshake::ClientRequest;
use rfc6455::{embedded, Driver, Event, MaskKeys};
use rfc6455_qemu::{
    block_on, board, config, echo, exit, log, memory, report, Session, Ticks, WebSocket,
};

const AGENT: &str = "rfc6455-qemu";

#[entry]
fn main() -> ! {
    memory::start();
    board::start();
    block_on(pin!(async {
        let Some(mut ws) = connect("/getCaseCount").await else {
            exit(1)
        };
        let mut count = 0u32;
        while let Ok(event) = ws.recv_event().await {
            match event {
                Event::Fragment(piece) => {
                    for digit in piece.data.iter().filter(|b| b.is_ascii_digit()) {
                        count = count * 10 + u32::from(digit - b'0');
                    }
                }
                Event::Closed(_) => break,
                _ => {}
            }
        }
        ws.into_inner().close();
        log!("autobahn: {count} cases");
        for case in 1..=count {
            let path = format!("/runCase?case={case}&agent={AGENT}");
            if let Some(mut ws) = connect(&path).await {
                echo(&mut ws).await;
                ws.into_inner().close();
            }
            report(format_args!("case {case}"));
        }
        let path = format!("/updateReports?agent={AGENT}");
        if let Some(mut ws) = connect(&path).await {
            while let Ok(Some(_)) = ws.recv().await {}
            ws.into_inner().close();
        }
        log!("autobahn: reports updated for {AGENT}");
        exit(0)
    }))
}

/// A WebSocket to the fuzzing server at `path`, or `None` (logged).
async fn connect(path: &str) -> Option<WebSocket> {
    let mut config = config();
    config.mask_keys = MaskKeys::With(board::random_key);
    let request = ClientRequest::new("127.0.0.1", path);
    match embedded::client(Session::connect(), Ticks, &request, config).await {
        Ok(ws) => Some(ws),
        Err(error) => {
            log!("{path}: {error}");
            None
        }
    }
}
