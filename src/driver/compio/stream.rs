//! The transport: a compio stream with its read and write in the kernel.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;

use bytes::{Bytes, BytesMut};
use compio::buf::BufResult;
use compio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{Error, Time, WebSocket};
use crate::driver::Clock as _;
use crate::plumbing::Plumbing;
use crate::socket::{self, Transport};
use crate::{Connection, Timestamp};

/// The least room asked for a read: what an idle connection holds while
/// its read waits in the kernel.
const MIN_READ: usize = 2 * 1024;
/// The most room asked for a read, unless a frame that is arriving is
/// missing more.
const MAX_READ: usize = 64 * 1024;

/// The most room a read into the buffer messages are lent from asks
/// for: a message larger than this is gathered in the connection, whose
/// copy of it is shared when it is sent on, where a view of this buffer
/// would be copied.
const LENT_READ: usize = 32 * 1024;

/// The most pieces of output one write takes.
const WRITE_PIECES: usize = 64;

/// A read handed to the kernel: the future owns its buffer until the read
/// completes.
type Reading = Pin<Box<dyn Future<Output = BufResult<usize, BytesMut>>>>;
/// A write handed to the kernel, with the pieces it owns until it
/// completes.
type Writing = Pin<Box<dyn Future<Output = BufResult<(), Vec<Bytes>>>>>;

/// The transport: a compio stream, with the read and the write it has in
/// the kernel. Both stay in flight when the loop stops waiting for them
/// (at the core's deadline, or a `recv` future dropped in a `select!`):
/// the next call picks them up, so no byte is lost.
pub struct Io<S> {
    stream: Rc<S>,
    /// The buffer `for_each_message` reads into (its messages are lent
    /// where they lie), kept from read to read.
    own: BytesMut,
    /// The read in flight, if any.
    reading: Option<Reading>,
    /// The write in flight, if any.
    writing: Option<Writing>,
    /// The stream ended: no read is started again.
    eof: bool,
    /// The room the next read asks for: doubled after a read that filled
    /// its buffer, halved after one that used less than a quarter.
    read_size: usize,
    /// The room the read in flight was given.
    asked: usize,
    /// The vector of pieces of the last write, kept for its capacity.
    pieces: Vec<Bytes>,
}

impl<S> core::fmt::Debug for Io<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Io")
            .field("reading", &self.reading.is_some())
            .field("writing", &self.writing.is_some())
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

/// compio's timers, on the standard library's monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompioClock;

impl socket::Clock for CompioClock {
    fn now(&self) -> Timestamp {
        Time::timestamp()
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        compio::time::sleep_until(Time::at(deadline)).await;
    }
}

impl<S> Io<S> {
    pub(super) fn new(stream: S) -> Self {
        Io {
            stream: Rc::new(stream),
            own: BytesMut::new(),
            reading: None,
            writing: None,
            eof: false,
            read_size: MIN_READ,
            asked: 0,
            pieces: Vec::new(),
        }
    }
}

impl<S> Io<S>
where
    S: 'static,
    for<'a> &'a S: AsyncRead + AsyncWrite,
{
    /// The read in flight, handed to the kernel first if none is: into the
    /// connection's spare receive room, or (`own`) into this transport's
    /// own buffer. The room the next read asks for follows what this one
    /// got.
    async fn next_read(&mut self, conn: &mut Connection, own: bool) -> BufResult<usize, BytesMut> {
        if self.eof {
            return core::future::pending().await;
        }
        if self.reading.is_none() {
            // What a frame that is arriving still misses (nothing between
            // frames), and room for what follows it: a read that stopped
            // at the frame's end would leave the next frame to a round
            // through the kernel of its own.
            let size = conn.read_size_hint(0) + self.read_size;
            let buf = if own {
                let mut buf = core::mem::take(&mut self.own);
                buf.reserve(size.min(LENT_READ));
                buf
            } else {
                conn.read_buffer_owned(size)
            };
            self.asked = buf.capacity();
            let stream = Rc::clone(&self.stream);
            self.reading = Some(Box::pin(async move {
                let mut reader = &*stream;
                reader.read(buf).await
            }));
        }
        let done = self.reading.as_mut().expect("started above").await;
        self.reading = None;
        let filled = done.1.len();
        if filled >= self.asked {
            self.read_size = (self.read_size * 2).min(MAX_READ);
        } else if filled < self.read_size / 4 {
            self.read_size = (self.read_size / 2).max(MIN_READ);
        }
        done
    }
}

impl<S> Transport for Io<S>
where
    S: 'static,
    for<'a> &'a S: AsyncRead + AsyncWrite,
{
    type Error = Error;

    /// Hands the kernel a read into the connection's spare receive room
    /// (unless one is in flight), waits for it, and feeds it to the core.
    async fn read(&mut self, conn: &mut Connection) -> Result<(), Error> {
        let BufResult(read, buf) = self.next_read(conn, false).await;
        conn.handle_read_owned(buf);
        if read? == 0 {
            self.eof = true;
            conn.handle_eof();
        }
        Ok(())
    }

    /// With `lend`: the read goes into a buffer of this transport's own
    /// (kept from read to read), and what arrived is lent there.
    async fn read_lent<L, R>(
        &mut self,
        conn: &mut Connection,
        lend: Option<L>,
    ) -> Result<Option<R>, Error>
    where
        L: FnOnce(&mut Connection, &mut [u8]) -> R,
    {
        let Some(lend) = lend else {
            return self.read(conn).await.map(|()| None);
        };
        let BufResult(read, mut buf) = self.next_read(conn, true).await;
        if read? == 0 {
            self.eof = true;
            conn.handle_eof();
            return Ok(None);
        }
        let lent = lend(conn, &mut buf[..]);
        buf.clear();
        self.own = buf;
        Ok(Some(lent))
    }

    /// Hands the kernel the pending output as owned pieces (up to
    /// 64 a write), until none is left.
    async fn write(&mut self, conn: &mut Connection) -> Result<(), Error> {
        loop {
            if self.writing.is_none() {
                if conn.pending_output_len() == 0 {
                    return Ok(());
                }
                let mut pieces = core::mem::take(&mut self.pieces);
                while pieces.len() < WRITE_PIECES {
                    let piece = conn.take_output(usize::MAX);
                    if piece.is_empty() {
                        break;
                    }
                    pieces.push(piece);
                }
                let stream = Rc::clone(&self.stream);
                self.writing = Some(Box::pin(async move {
                    let mut writer = &*stream;
                    // One piece (an echo of a small message, say) goes as
                    // a plain send, cheaper in the kernel than a vectored
                    // one.
                    if let [piece] = &mut pieces[..] {
                        let BufResult(written, _) = writer.write_all(core::mem::take(piece)).await;
                        return BufResult(written, pieces);
                    }
                    writer.write_vectored_all(pieces).await
                }));
            }
            let BufResult(written, mut pieces) =
                self.writing.as_mut().expect("started above").await;
            self.writing = None;
            pieces.clear();
            self.pieces = pieces;
            written?;
        }
    }

    async fn shutdown(&mut self) -> bool {
        let mut writer = &*self.stream;
        let _ = writer.shutdown().await;
        true
    }

    fn abandon(&mut self) {
        self.writing = None;
    }
}

/// What only this driver has: a WebSocket made from a stream, and the
/// stream.
impl<S> WebSocket<S>
where
    S: 'static,
    for<'a> &'a S: AsyncRead + AsyncWrite,
{
    /// Wraps a stream on which the handshake already happened. The
    /// connection's timers run from now.
    pub fn from_connection(stream: S, conn: Connection) -> Self {
        Self::new(Io::new(stream), CompioClock, conn)
    }
}

impl<S> WebSocket<S> {
    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.transport().stream
    }
}
