//! Connections over one serial line. QEMU connects the board's UART0 to a
//! TCP socket on the host, where `bridge.py` turns it into connections:
//! each TCP connection becomes a session on the line, opened and closed
//! by markers, so the firmware can serve one connection after another (a
//! UART has no notion of a connection, nor of its end).
//!
//! On the line, in both directions, `ESC` (0xDB) starts a marker:
//! `ESC 1` opens a session (the host's: a client connected; the board's:
//! connect me to the server), `ESC 2` ends the sender's side of it (as a
//! TCP FIN), and `ESC 3` is a data byte 0xDB. Every other byte is data.

use core::convert::Infallible;
use core::future::poll_fn;
use core::task::Poll;

use crate::board::LINK;

const ESC: u8 = 0xDB;
const OPEN: u8 = 1;
const CLOSE: u8 = 2;
const LITERAL: u8 = 3;

/// How many empty polls of the UART a read waits for the next byte before
/// it returns what it has: the host's bytes come one at a time, and a
/// read of one byte each would cost the driver a turn per byte.
const SPIN: u32 = 2_000;

/// A received byte, or a marker.
enum Received {
    Data(u8),
    Marker(u8),
}

/// One connection on the line: an `embedded-io-async` stream whose read
/// ends (returns 0) at the host's `ESC 2`.
pub struct Session {
    /// An `ESC` was read; its second byte has not come yet.
    escaped: bool,
    /// The host ended its side.
    ended: bool,
    /// We ended ours.
    closed: bool,
}

impl Session {
    fn new() -> Self {
        Session {
            escaped: false,
            ended: false,
            closed: false,
        }
    }

    /// Waits for the host to open a session (a client connected to the
    /// bridge), dropping anything else on the line.
    pub async fn accept() -> Session {
        let mut session = Session::new();
        poll_fn(|_| loop {
            match session.next() {
                Some(Received::Marker(OPEN)) => return Poll::Ready(()),
                Some(_) => continue,
                None => return Poll::Pending,
            }
        })
        .await;
        session.ended = false;
        session
    }

    /// Asks the host for a connection to its server. If the host cannot
    /// connect, the session reads as ended at once.
    pub fn connect() -> Session {
        LINK.put(ESC);
        LINK.put(OPEN);
        Session::new()
    }

    /// Ends the session (as a TCP close: the host closes its connection),
    /// waiting for the host's end of it.
    pub fn close(mut self) {
        self.end();
    }

    /// Ends our side, then waits for the host's end (which it sends once
    /// it has ours, if it had not before), dropping what else comes: the
    /// bytes of this session still on the line must not reach the next.
    fn end(&mut self) {
        if !self.closed {
            LINK.put(ESC);
            LINK.put(CLOSE);
            self.closed = true;
        }
        while !self.ended {
            if let Some(Received::Marker(_)) = self.next() {
                self.ended = true;
            }
        }
    }

    /// The next byte or marker from the line, if one is there.
    fn next(&mut self) -> Option<Received> {
        loop {
            let byte = LINK.get()?;
            match (self.escaped, byte) {
                (false, ESC) => self.escaped = true,
                (false, byte) => return Some(Received::Data(byte)),
                (true, LITERAL) => {
                    self.escaped = false;
                    return Some(Received::Data(ESC));
                }
                (true, marker) => {
                    self.escaped = false;
                    return Some(Received::Marker(marker));
                }
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
    }
}

impl embedded_io::ErrorType for Session {
    type Error = Infallible;
}

impl embedded_io_async::Read for Session {
    /// Cancel-safe: the bytes taken from the UART are in `buf` when the
    /// poll that took them returns.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|_| {
            let mut n = 0;
            let mut idle = 0;
            while n < buf.len() && !self.ended {
                match self.next() {
                    Some(Received::Data(byte)) => {
                        buf[n] = byte;
                        n += 1;
                        idle = 0;
                    }
                    // Any other marker mid-session ends it too.
                    Some(Received::Marker(_)) => self.ended = true,
                    None if n > 0 && idle < SPIN => idle += 1,
                    None => break,
                }
            }
            match n > 0 || self.ended {
                true => Poll::Ready(Ok(n)),
                false => Poll::Pending,
            }
        })
        .await
    }
}

impl embedded_io_async::Write for Session {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &byte in buf {
            LINK.put(byte);
            if byte == ESC {
                LINK.put(LITERAL);
            }
        }
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}
