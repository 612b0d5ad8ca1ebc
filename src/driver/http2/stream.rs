//! One WebSocket on one HTTP/2 stream: the shared loop over its DATA.

use core::future::poll_fn;
use std::io;

use bytes::Bytes;
use h2::{RecvStream, SendStream};

use super::h2_error;
use super::Error;
use super::TokioClock;
use crate::plumbing::Plumbing;
use crate::socket::{self, Transport};
use crate::Connection;

/// A WebSocket on an HTTP/2 stream: the [shared driver loop](crate::socket)
/// over [`Io`], on tokio's timers.
pub type WebSocket = socket::WebSocket<Io, TokioClock>;

/// The transport: one HTTP/2 stream, its DATA both ways.
pub struct Io {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// We ended our side of the stream.
    ended: bool,
}

impl core::fmt::Debug for Io {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Io").field("ended", &self.ended).finish()
    }
}

impl Io {
    pub(super) fn new(send: SendStream<Bytes>, recv: RecvStream) -> Self {
        Io {
            send,
            recv,
            ended: false,
        }
    }

    /// Resets the stream (`RST_STREAM` with `CANCEL`), unless it ended.
    fn reset(&mut self) {
        if !self.ended {
            self.ended = true;
            self.send.send_reset(h2::Reason::CANCEL);
        }
    }
}

impl Transport for Io {
    type Error = Error;

    /// Waits for DATA (or the stream's end, or a reset).
    async fn read(&mut self, conn: &mut Connection) -> Result<(), Error> {
        match self.recv.data().await {
            Some(Ok(data)) => {
                conn.handle_read(&data);
                // The window opens again as the core takes the bytes.
                let _ = self.recv.flow_control().release_capacity(data.len());
            }
            // END_STREAM: the peer's transport ended, as with TCP's FIN.
            None => conn.handle_eof(),
            // RST_STREAM, or the connection failed: the stream is gone.
            Some(Err(e)) => {
                conn.handle_eof();
                return Err(h2_error(e));
            }
        }
        Ok(())
    }

    /// Writes the output as DATA, as fast as the peer's window allows.
    /// After our end (or a reset) what is left is dropped.
    async fn write(&mut self, conn: &mut Connection) -> Result<(), Error> {
        while conn.pending_output_len() > 0 {
            if self.ended {
                conn.consume_output(conn.pending_output_len());
                break;
            }
            self.send.reserve_capacity(conn.pending_output().len());
            match poll_fn(|cx| self.send.poll_capacity(cx)).await {
                Some(Ok(0)) => {}
                Some(Ok(granted)) => {
                    // Owned bytes for h2 to keep until they go out: a
                    // payload the connection shares, without a copy.
                    let chunk = conn.take_output(granted);
                    self.send.send_data(chunk, false).map_err(h2_error)?;
                }
                Some(Err(e)) => return Err(h2_error(e)),
                None => return Err(Error::Io(io::ErrorKind::BrokenPipe.into())),
            }
        }
        Ok(())
    }

    /// Ends our side of the stream (`END_STREAM`), so nothing the peer
    /// still sends makes us reset the stream before it has read our Close
    /// frame (a proxy turns that reset into a TCP reset, which loses it).
    async fn shutdown(&mut self) -> bool {
        if !self.ended {
            self.ended = true;
            if self.send.send_data(Bytes::new(), true).is_err() {
                self.send.send_reset(h2::Reason::CANCEL);
            }
        }
        true
    }

    /// The core gave up on the unsent output: the stream is reset.
    fn abandon(&mut self) {
        self.reset();
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // A WebSocket dropped before its end frees its stream at once.
        self.reset();
    }
}

/// What only this driver has.
impl WebSocket {
    /// Resets the stream at once (`RST_STREAM` with `CANCEL`), without a
    /// closing handshake.
    pub fn reset(mut self) {
        self.transport_mut().reset();
    }
}
