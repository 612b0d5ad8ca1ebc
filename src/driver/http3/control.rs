//! The connection's unidirectional streams: our control stream with our
//! SETTINGS, and the peer's streams, read on a task of their own for the
//! connection's life: its control stream (SETTINGS first, then GOAWAY and
//! the like), QPACK's streams (read and dropped: with no dynamic table
//! there is nothing on them for us), and anything else (refused).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use bytes::{Buf, BytesMut};
use quinn::{Connection, RecvStream};
use tokio::sync::watch;

use super::{connection_error, varint, write_error, Error};
use crate::h3::{self, code, frame, stream, Frames, Settings};

/// The most a control-stream frame we read may take (SETTINGS, GOAWAY).
const MAX_CONTROL_FRAME: u64 = 16 * 1024;

/// Opens our control stream and sends `ours`; reads the peer's streams
/// from now on. The peer's SETTINGS come out of the receiver once they
/// arrive.
pub(super) async fn start(
    conn: &Connection,
    ours: &Settings,
    server: bool,
) -> Result<watch::Receiver<Option<Settings>>, Error> {
    let mut control = conn.open_uni().await.map_err(connection_error)?;
    let mut first = Vec::new();
    h3::put_varint(&mut first, stream::CONTROL);
    first.extend_from_slice(&ours.frame());
    control.write_all(&first).await.map_err(write_error)?;
    let (settings, received) = watch::channel(None);
    let conn = conn.clone();
    tokio::spawn(async move {
        // Ending our control stream would end the connection (§6.2.1):
        // it is held until the connection ends.
        let _control = control;
        let have_control = Arc::new(AtomicBool::new(false));
        while let Ok(recv) = conn.accept_uni().await {
            let peer = Peer {
                conn: conn.clone(),
                settings: settings.clone(),
                have_control: have_control.clone(),
                server,
            };
            tokio::spawn(peer.stream(recv));
        }
    });
    Ok(received)
}

/// What each of the peer's streams needs.
struct Peer {
    conn: Connection,
    settings: watch::Sender<Option<Settings>>,
    have_control: Arc<AtomicBool>,
    server: bool,
}

impl Peer {
    /// Fails the connection with an HTTP/3 error code.
    fn fail(&self, code: u64, why: &str) {
        self.conn.close(varint(code), why.as_bytes());
    }

    /// One of the peer's unidirectional streams, by its type.
    async fn stream(self, mut recv: RecvStream) {
        let mut buf = BytesMut::new();
        let ty = loop {
            if let Some((ty, n)) = h3::get_varint(&buf) {
                buf.advance(n);
                break ty;
            }
            match recv.read_chunk(64, true).await {
                Ok(Some(chunk)) => buf.extend_from_slice(&chunk.bytes),
                _ => return,
            }
        };
        match ty {
            stream::CONTROL if !self.have_control.swap(true, Ordering::SeqCst) => {
                self.control(recv, buf).await;
            }
            stream::CONTROL => self.fail(code::STREAM_CREATION_ERROR, "a second control stream"),
            stream::QPACK_ENCODER | stream::QPACK_DECODER => {
                while let Ok(Some(_)) = recv.read_chunk(4096, true).await {}
            }
            // We never send MAX_PUSH_ID, so no push is allowed; and only a
            // server pushes.
            stream::PUSH if self.server => {
                self.fail(code::STREAM_CREATION_ERROR, "a push stream from a client")
            }
            stream::PUSH => self.fail(code::ID_ERROR, "a push stream we never allowed"),
            // Streams of types we do not know are refused, not failed (§6.2).
            _ => {
                let _ = recv.stop(varint(code::STREAM_CREATION_ERROR));
            }
        }
    }

    /// The peer's control stream: SETTINGS, then what may follow.
    async fn control(self, mut recv: RecvStream, mut buf: BytesMut) {
        let mut first = true;
        loop {
            let (ty, payload) = match next_frame(&mut recv, &mut buf).await {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    return self.fail(code::CLOSED_CRITICAL_STREAM, "the control stream ended")
                }
                Err(code) => return self.fail(code, "a bad frame on the control stream"),
            };
            if first && ty != frame::SETTINGS {
                return self.fail(
                    code::MISSING_SETTINGS,
                    "the control stream began without SETTINGS",
                );
            }
            match ty {
                frame::SETTINGS if first => match Settings::parse(&payload) {
                    Ok(settings) => {
                        self.settings.send_replace(Some(settings));
                    }
                    Err(code) => return self.fail(code, "bad SETTINGS"),
                },
                // Only a client sends MAX_PUSH_ID; we push nothing, so
                // CANCEL_PUSH and GOAWAY leave our WebSockets as they are
                // (a GOAWAY lets the streams opened before it finish).
                frame::MAX_PUSH_ID if self.server => {}
                frame::CANCEL_PUSH | frame::GOAWAY => {}
                ty if !frame::is_known(ty) => {}
                _ => {
                    return self.fail(
                        code::FRAME_UNEXPECTED,
                        "a frame not allowed on the control stream",
                    )
                }
            }
            first = false;
        }
    }
}

/// The next whole frame of a control stream, its payload in memory (at
/// most [`MAX_CONTROL_FRAME`] bytes; unknown frames of any size are read
/// past); `None` at the stream's end, an error code for a bad frame.
async fn next_frame(
    recv: &mut RecvStream,
    buf: &mut BytesMut,
) -> Result<Option<(u64, bytes::Bytes)>, u64> {
    let mut frames = Frames::default();
    loop {
        if let Some((ty, len, at)) = frames.peek(buf) {
            if len > MAX_CONTROL_FRAME {
                return Err(code::FRAME_ERROR);
            }
            if buf.len() >= at + len as usize {
                buf.advance(at);
                return Ok(Some((ty, buf.split_to(len as usize).freeze())));
            }
        }
        match recv.read_chunk(16 * 1024, true).await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk.bytes),
            Ok(None) if buf.is_empty() && !frames.skipping() => return Ok(None),
            Ok(None) => return Err(code::FRAME_ERROR),
            // The connection ends: nothing more to do here.
            Err(_) => return Ok(None),
        }
    }
}
