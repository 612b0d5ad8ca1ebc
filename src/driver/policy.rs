//! What every driver does the same way, whatever its transport: what
//! `recv` makes of an event, the state kept around the core, and the
//! slow-consumer policy of `offer`.

use alloc::boxed::Box;
use alloc::string::String;

use crate::handshake::HandshakeError;
use crate::plumbing::{Plumbing, Received, Unread};
use crate::{
    CloseCode, Closed, Connection, Event, Message, MessageRef, PreparedMessage, ProtocolError,
    Timestamp, UsageError,
};

/// Unsent bytes above which `queue` (and tokio's `Sink::poll_ready`)
/// waits for the transport.
pub const HIGH_WATER: usize = 256 * 1024;

/// What `recv` makes of an event: `Some` of what to return (a message; at
/// the end `Ok(None)`, or the error if the connection failed), or `None`
/// for an event the caller of `recv` does not see (a Ping, a Pong, a
/// fragment of a streamed message).
#[cfg_attr(feature = "std", inline(always))]
pub(crate) fn received<E: From<ProtocolError>>(event: Event) -> Option<Result<Option<Message>, E>> {
    match event {
        Event::Message(message) => Some(Ok(Some(message))),
        Event::Closed(closed) => Some(closed.error.clone().map_or(Ok(None), |e| Err(e.into()))),
        Event::Fragment(_) | Event::Ping(_) | Event::Pong(_) => None,
    }
}

/// What `recv_event` does next.
pub(crate) enum Next {
    /// Hand out this event.
    Event(Event),
    /// The connection just ended: run its end (the last output, our end
    /// of the transport, the peer's end), then hand out this `Closed`.
    End(Event),
    /// Nothing to hand out: write what is queued, and wait for the peer.
    Wait,
}

/// The next step of `recv_event`, with `closed` the driver's record of
/// how the connection ended: after the end, every call hands out the same
/// `Closed` again.
pub(crate) fn next_event(held: &mut Held) -> Next {
    if let Some(closed) = &held.closed {
        return Next::Event(Event::Closed(closed.clone()));
    }
    held.heed_shutdown();
    match held.conn.poll_event() {
        Some(Event::Closed(ended)) => {
            held.closed = Some(ended.clone());
            Next::End(Event::Closed(ended))
        }
        Some(event) => Next::Event(event),
        None => Next::Wait,
    }
}

/// What every driver keeps around the core: the connection, the
/// subprotocol the handshake agreed, and how the connection ended (kept to
/// hand out again).
#[derive(Debug)]
pub struct Held {
    /// The sans-IO connection.
    pub(crate) conn: Connection,
    /// The subprotocol agreed in the handshake.
    pub(crate) protocol: Option<Box<str>>,
    /// How the connection ended, once it has (boxed: a connection that is
    /// open, which is most of them most of the time, holds a pointer).
    pub(crate) closed: Option<Box<Closed>>,
    /// The server's shutdown signal, if the WebSocket watches one.
    pub(crate) shutdown: Watching,
}

impl Held {
    /// A connection just made, by a handshake that agreed on `protocol`.
    pub(crate) fn new(conn: Connection, protocol: Option<String>) -> Self {
        Held {
            conn,
            protocol: protocol.map(String::into_boxed_str),
            closed: None,
            shutdown: Watching::default(),
        }
    }

    /// Queues the Close of a shutdown signal that came, once (see
    /// [`Shutdown`](super::Shutdown)): every loop does this before it
    /// looks for the next event.
    pub(crate) fn heed_shutdown(&mut self) {
        #[cfg(feature = "std")]
        if let Some(watch) = &mut self.shutdown.0 {
            watch.heed(&mut self.conn);
        }
    }
}

/// A frame still missing more than this is read straight into the
/// connection, which gathers it, rather than into the buffer messages are
/// lent from, whose bytes the connection would copy: a large message
/// arriving. A smaller remainder is read with what follows it, and lent.
pub(crate) const GATHER_ABOVE: usize = 16 * 1024;

/// The messages of one read, decoded where they lie and lent to `answer`
/// with the connection, for [`Driver::for_each_message`](super::Driver::for_each_message)
/// on every driver that reads into a buffer of its own; the Closed event,
/// if it comes, kept in `closed`. The core is told the time (`now`) after
/// the read's input, so that its bytes count as heard, if it keeps a
/// deadline. If `answer` fails, the bytes not yet decoded go to the
/// connection, for the next call: nothing read is lost.
pub(crate) fn lend_read<F>(
    conn: &mut Connection,
    closed: &mut Option<Box<Closed>>,
    read: &mut [u8],
    now: impl FnOnce() -> Timestamp,
    answer: &mut F,
) -> Result<(), UsageError>
where
    F: FnMut(MessageRef<'_>, &mut Connection) -> Result<(), UsageError>,
{
    let mut unread = Unread::new(read);
    let mut now = Some(now);
    loop {
        let answered = match conn.poll_event_from(&mut unread) {
            Some(Received::Message(message)) => answer(message, conn),
            Some(Received::Event(event)) => lend_event(conn, closed, event, answer),
            None => match now.take() {
                Some(now) if conn.poll_timeout().is_some() => {
                    conn.handle_timeout(now());
                    Ok(())
                }
                Some(_) => Ok(()),
                None => return Ok(()),
            },
        };
        if let Err(e) = answered {
            conn.handle_read(unread.rest());
            return Err(e);
        }
    }
}

/// What `for_each_message` returns at the end: `Ok(())` after a clean
/// closing handshake, the peer's fault (or a timeout) otherwise.
pub(crate) fn ended<E: From<ProtocolError>>(closed: &Closed) -> Result<(), E> {
    closed.error.clone().map_or(Ok(()), |e| Err(e.into()))
}

/// An event of the connection's own making (a message it gathered, the
/// end): a message lent to `answer`, the end kept in `closed`, anything
/// else (a Ping, already answered) passed over.
fn lend_event<F>(
    conn: &mut Connection,
    closed: &mut Option<Box<Closed>>,
    event: Event,
    answer: &mut F,
) -> Result<(), UsageError>
where
    F: FnMut(MessageRef<'_>, &mut Connection) -> Result<(), UsageError>,
{
    match event {
        Event::Message(message) => answer(MessageRef::from(&message), conn),
        Event::Closed(ended) => {
            *closed = Some(ended);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// [`Driver::for_each_message`](super::Driver::for_each_message) over the
/// events a connection had already.
impl Held {
    /// An event the connection had already: a message to lend to
    /// `answer`, or the end to keep.
    pub(crate) fn lend<F>(&mut self, event: Event, answer: &mut F) -> Result<(), UsageError>
    where
        F: FnMut(MessageRef<'_>, &mut Connection) -> Result<(), UsageError>,
    {
        lend_event(&mut self.conn, &mut self.closed, event, answer)
    }
}

/// Which of the core's deadlines `e` is, in the words every driver's
/// `Error::Timeout` says it (`Err(e)` when it is not one).
pub(crate) fn opening_timeout(e: HandshakeError) -> Result<&'static str, HandshakeError> {
    match e {
        HandshakeError::Timeout => Ok("opening handshake"),
        e => Err(e),
    }
}

/// As [`opening_timeout`], for the closing handshake's deadline.
pub(crate) fn closing_timeout(e: ProtocolError) -> Result<&'static str, ProtocolError> {
    match e {
        ProtocolError::Timeout => Ok("closing handshake: the peer did not answer"),
        e => Err(e),
    }
}

/// What `offer` does when a connection's backlog is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// The connection misses the message.
    Drop,
    /// The connection is closed with this code and reason: 1008 (policy
    /// violation) or 1013 (try again later), say. The Close frame waits
    /// behind the backlog; if the peer does not read it, the core's
    /// closing timeout ends the connection.
    Close(CloseCode, &'static str),
}

/// What `offer` did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// Queued: it goes out as the peer reads.
    Queued,
    /// The backlog was full and the policy is to drop: not sent.
    Dropped,
    /// The backlog was full and the policy is to close: the closing
    /// handshake started instead.
    Closing,
    /// The connection is closing or closed already: not sent.
    Closed,
}

/// Queues `messages` in order while at most `backlog` bytes wait to be
/// written; at the first that finds more, `when_full` decides. So a peer
/// that stops reading makes its connection hold at most `backlog` bytes,
/// one message and a Close frame.
pub(crate) fn offer(
    conn: &mut Connection,
    messages: &[PreparedMessage],
    backlog: usize,
    when_full: WhenFull,
) -> Result<Offered, UsageError> {
    if !conn.can_send() {
        return Ok(Offered::Closed);
    }
    for prepared in messages {
        if conn.pending_output_len() > backlog {
            return Ok(match when_full {
                WhenFull::Drop => Offered::Dropped,
                WhenFull::Close(code, reason) => {
                    conn.close(code, reason)?;
                    Offered::Closing
                }
            });
        }
        conn.send_prepared(prepared)?;
    }
    Ok(Offered::Queued)
}

/// The shutdown signal a WebSocket watches, if any
/// ([`Driver::watch`](super::Driver::watch)); without `std`, never any.
#[derive(Debug, Default)]
pub(crate) struct Watching(#[cfg(feature = "std")] pub(crate) Option<Box<super::shutdown::Watch>>);

impl Watching {
    /// Ready when a signal came that is not yet heeded; if none did, the
    /// task is woken when it comes. Every async loop races this against
    /// its read of the peer.
    pub(crate) fn poll(&mut self, cx: &mut core::task::Context<'_>) -> core::task::Poll<()> {
        #[cfg(feature = "std")]
        if let Some(watch) = &mut self.0 {
            return watch.poll_signal(cx);
        }
        let _ = cx;
        core::task::Poll::Pending
    }

    /// Whether a signal may still come to heed: the blocking driver then
    /// keeps its reads short.
    #[cfg(feature = "blocking")]
    pub(crate) fn is_pending(&self) -> bool {
        self.0.as_ref().is_some_and(|watch| watch.is_pending())
    }
}
