//! One WebSocket on one HTTP/2 stream: the shared loop over its DATA.

use core::future::poll_fn;
use std::io;

use bytes::Bytes;
use h2::{RecvStream, SendStream};

use super::h2_error;
use super::Error;
use super::TokioClock;
use crate::driver::extended::{Ends, StreamEnd};
use crate::plumbing::Plumbing;
use crate::socket::{self, Transport};
use crate::Connection;

/// A WebSocket on an HTTP/2 stream: the [shared driver loop](crate::socket)
/// over [`Io`], on tokio's timers.
pub type WebSocket = socket::WebSocket<Io, TokioClock>;

/// The transport: one HTTP/2 stream, its DATA both ways.
#[derive(Debug)]
pub struct Io {
    send: StreamEnd<Send>,
    recv: RecvStream,
}

/// h2's sending side, as the stream's end needs it.
#[derive(Debug)]
pub(super) struct Send(SendStream<Bytes>);

impl Ends for Send {
    fn finish(&mut self) -> bool {
        self.0.send_data(Bytes::new(), true).is_ok()
    }

    /// `RST_STREAM` with `CANCEL`.
    fn reset(&mut self) {
        self.0.send_reset(h2::Reason::CANCEL);
    }
}

impl Io {
    pub(super) fn new(send: SendStream<Bytes>, recv: RecvStream) -> Self {
        Io {
            send: StreamEnd::new(Send(send)),
            recv,
        }
    }
}

impl Transport for Io {
    type Error = Error;

    /// Waits for DATA (or the stream's end, or a reset).
    async fn read(&mut self, conn: &mut Connection) -> Result<(), Error> {
        match self.recv.data().await {
            Some(Ok(data)) => {
                let len = data.len();
                // h2's own buffer, handed over: a server unmasks a whole
                // payload in it as it copies it out (one pass, not two).
                conn.handle_read_bytes(data);
                // The window opens again as the core takes the bytes.
                let _ = self.recv.flow_control().release_capacity(len);
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
            if self.send.is_ended() {
                conn.consume_output(conn.pending_output_len());
                break;
            }
            let send = &mut self.send.get_mut().0;
            send.reserve_capacity(conn.pending_output().len());
            match poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(Ok(0)) => {}
                Some(Ok(granted)) => {
                    // Owned bytes for h2 to keep until they go out: a
                    // payload the connection shares, without a copy.
                    let chunk = conn.take_output(granted);
                    send.send_data(chunk, false).map_err(h2_error)?;
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
        self.send.shutdown()
    }

    /// The core gave up on the unsent output: the stream is reset
    /// (`RST_STREAM` with `CANCEL`).
    fn abandon(&mut self) {
        self.send.reset();
    }
}
