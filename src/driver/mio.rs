//! A server that keeps every connection as a small record in one event
//! loop, on [mio](https://docs.rs/mio) (epoll, kqueue; feature `mio`): no
//! task per connection, for servers that hold hundreds of thousands.
//!
//! The other drivers give each connection a task (or a thread) that waits
//! on its socket; here one thread waits on all of them at once, and a
//! connection is what the protocol needs and no more: its socket, its
//! sans-IO [`Connection`] (boxed), and a few flags. Every socket is read
//! into one buffer of the server's, where the connection decodes whole
//! messages in place and lends them to the handler (as uWebSockets does);
//! only a frame cut by the end of a read is copied into the connection's
//! own buffer. A connection that waits for its peer lends its buffers to
//! the thread's pool, as the tokio driver's do. So an idle connection
//! costs its record, its `Connection`, and the kernel's socket.
//!
//! The application is a [`Handler`]: it decides on each request, and is
//! called for each message with a [`Ctx`], through which it sends to any
//! connection (the sender, or every one: a broadcast). What it queues is
//! written when the callback returns, each connection's output in as few
//! writes as the socket takes.
//!
//! ```no_run
//! use rfc6455::mio::{Ctx, Handler, Id, Server};
//! use rfc6455::{Config, MessageRef};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn message(&mut self, ctx: &mut Ctx<'_>, id: Id, message: MessageRef<'_>) {
//!         let _ = ctx.send(id, message);
//!     }
//! }
//!
//! let mut server = Server::bind("127.0.0.1:9001".parse()?, Config::default())?;
//! server.run(&mut Echo)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The core decides everything about the protocol, as under every driver:
//! the handshake's answer and its deadline, Pongs, the closing handshake,
//! the heartbeat. This loop reads, writes, and tells the core the time
//! when the core's next deadline comes (one heap of deadlines for all the
//! connections).
//!
//! A `Server` is one thread. For more cores, run one per thread, each on
//! a listener of its own bound to the same port with `SO_REUSEPORT` (the
//! kernel deals the connections out; socket2's `set_reuse_port` sets it)
//! and handed over with [`Server::from_std`], as uWebSockets runs an app
//! per thread. A broadcast then publishes from each thread to its own
//! connections.

use alloc::boxed::Box;
use alloc::collections::BinaryHeap;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Reverse;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};

use mio::net::TcpListener;
pub use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::driver::clock::{wait_for, Clock};
use crate::driver::policy;
use crate::driver::pool;
use crate::handshake::{Accept, Progress, Request, ServerHandshake};
use crate::plumbing::{Plumbing, Received, Unread};
pub use crate::socket::{Offered, WhenFull};
use crate::{
    CloseCode, Closed, Config, Connection, Event, MessageRef, PreparedMessage, Timestamp,
    UsageError,
};

/// The server's own read buffer: every socket is read into it. Large, so
/// that a burst is read in few calls (it is one buffer per server).
const READ_BUF: usize = 256 * 1024;
/// While a burst is decoded, its answers are written once this many bytes
/// of them wait.
const WRITE_AT: usize = 16 * 1024;
/// The room of a receive buffer made when the pool has none: what a
/// read leaves of it goes to the pool for the next connection.
const LENT_INPUT: usize = 64 * 1024;
/// Reads of one socket in one turn before the others get theirs: a peer
/// that never stops sending cannot starve the rest.
const READS_PER_TURN: usize = 4;
/// Pieces of output passed to one vectored write.
const WRITE_SLICES: usize = 64;
/// A connection with more output than this waiting is not read until the
/// peer takes some: what it sends cannot make us buffer without bound.
const HIGH_WATER: usize = crate::driver::socket::HIGH_WATER;
/// Readiness events taken per wait.
const EVENTS: usize = 1024;
const LISTENER: Token = Token(usize::MAX);
/// The clock the core's deadlines count on.
type Time = std::time::Instant;

/// A connection's name, for [`Ctx::send`]: never the same for two
/// connections of one server, even after one has gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    index: u32,
    generation: u32,
}

/// What the application does with its connections. Only
/// [`message`](Handler::message) must be written.
pub trait Handler {
    /// Decides on a request: accept it with these options (a subprotocol,
    /// headers), or refuse it with a status and a reason. The default
    /// accepts every valid upgrade.
    fn request(&mut self, request: &Request) -> Result<Accept, (u16, String)> {
        let _ = request;
        Ok(Accept::new())
    }

    /// Called before each read of a socket, for a socket option that must
    /// be set again each time (Linux's `TCP_QUICKACK`, say). Most handlers
    /// leave it alone.
    fn before_read(&mut self, stream: &TcpStream) {
        let _ = stream;
    }

    /// A connection opened (its 101 is queued).
    fn open(&mut self, ctx: &mut Ctx<'_>, id: Id) {
        let _ = (ctx, id);
    }

    /// A whole message arrived. It is lent for the call, most often as a
    /// view of the server's read buffer: make it a
    /// [`Message`](crate::Message) with [`MessageRef::to_message`] to keep
    /// it.
    fn message(&mut self, ctx: &mut Ctx<'_>, id: Id, message: MessageRef<'_>);

    /// Any other event but the last: a Ping (already answered unless
    /// `Config::auto_pong` is off), a Pong, a piece of a message in
    /// streaming mode.
    fn event(&mut self, ctx: &mut Ctx<'_>, id: Id, event: Event) {
        let _ = (ctx, id, event);
    }

    /// The connection ended: the closing handshake finished, or it
    /// failed, or the peer went. Its id names nothing from here on.
    fn closed(&mut self, ctx: &mut Ctx<'_>, id: Id, closed: &Closed) {
        let _ = (ctx, id, closed);
    }
}

/// A connection's record.
#[derive(Debug)]
struct Record {
    stream: TcpStream,
    phase: Phase,
    /// The deadline the heap holds for this connection
    /// ([`Timestamp::as_nanos`]), or [`UNARMED`].
    armed: u64,
    /// Registered for writability: output waits for the socket.
    writing: bool,
    /// Queued to by the application: to be written at the end of the turn.
    dirty: bool,
    /// We shut down our sending side.
    shut: bool,
    /// The Closed event was handed to the application.
    reported: bool,
}

/// `Record::armed` when the heap holds no deadline for the connection.
const UNARMED: u64 = u64::MAX;

#[derive(Debug)]
enum Phase {
    /// Reading the request.
    Opening(Box<ServerHandshake>),
    /// A refusal (or a handshake error's answer) being written; then the
    /// socket goes.
    Refusing(Box<Refusal>),
    /// The 101 was queued: the connection, with any of the response still
    /// unwritten before its frames.
    Open(Box<Open>),
    /// Between two phases, within one call (`read_head`).
    Taken,
}

#[derive(Debug)]
struct Refusal {
    response: Vec<u8>,
    sent: usize,
}

#[derive(Debug)]
struct Open {
    conn: Connection,
    /// The 101 response, or its unwritten end, until the writes have taken
    /// it all (boxed: one pointer in every connection's record, where a
    /// `Vec` takes three).
    #[allow(clippy::box_collection)]
    head: Option<Box<Vec<u8>>>,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    record: Option<Record>,
}

/// The records, and what the application queued during a callback.
#[derive(Debug, Default)]
struct Records {
    slots: Vec<Slot>,
    /// Free slots, reused from the next turn on (so that a readiness
    /// event of a gone connection in this turn's batch finds nothing).
    free: Vec<u32>,
    freed: Vec<u32>,
    dirty: Vec<u32>,
    /// The connection the application last queued to: its output is
    /// written as soon as the application turns to another (as
    /// uWebSockets uncorks), so that a broadcast pass over many
    /// connections passes one output buffer from each to the next through
    /// the pool rather than filling one per connection.
    corked: Option<Id>,
}

impl Records {
    fn get(&mut self, id: Id) -> Option<&mut Record> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.record.as_mut()
    }

    /// The bytes waiting to be written to the open connection `id` (0 if
    /// it has gone).
    fn backlog(&mut self, id: Id) -> usize {
        match self.get(id).map(|r| &r.phase) {
            Some(Phase::Open(open)) => open.conn.pending_output_len(),
            _ => 0,
        }
    }

    fn id(&self, index: u32) -> Id {
        Id {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    fn insert(&mut self, record: Record) -> Id {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    record: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[index as usize].record = Some(record);
        self.id(index)
    }

    /// Writes what the open connection `id` queued, if its socket takes
    /// all of it at once, and lends its buffers back to the pool. What is
    /// left (a full socket, an error, the end of the connection) is for
    /// [`Server::write`] at the end of the callbacks: `id` stays dirty.
    fn uncork(&mut self, id: Id) {
        let Some(record) = self.get(id) else {
            return;
        };
        let Phase::Open(open) = &mut record.phase else {
            return;
        };
        if record.writing || record.shut || open.conn.should_close_transport() {
            return;
        }
        let written = write_open(&mut record.stream, open);
        if written.is_ok() && open.head.is_none() && open.conn.pending_output_len() == 0 {
            pool::release(&mut open.conn);
        }
    }

    fn remove(&mut self, index: u32) -> Option<Record> {
        let slot = &mut self.slots[index as usize];
        let record = slot.record.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.freed.push(index);
        Some(record)
    }
}

/// The application's hold on the server during a callback: send to any
/// connection, close one, list them.
#[derive(Debug)]
pub struct Ctx<'a> {
    records: &'a mut Records,
}

impl Ctx<'_> {
    /// The open connection `id`'s `Connection`, marked to be written at
    /// the end of the turn; `None` if it has gone.
    fn open(&mut self, id: Id) -> Option<&mut Connection> {
        if let Some(corked) = self.records.corked.replace(id) {
            if corked != id {
                self.records.uncork(corked);
            }
        }
        let slot = self.records.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let record = slot.record.as_mut()?;
        let Phase::Open(open) = &mut record.phase else {
            return None;
        };
        if !record.dirty {
            record.dirty = true;
            self.records.dirty.push(id.index);
        }
        pool::lend(&mut open.conn);
        Some(&mut open.conn)
    }

    /// Queues a message to `id`: a [`MessageRef`] (the one the handler
    /// was lent, say) or a `&`[`Message`](crate::Message).
    pub fn send<'m>(
        &mut self,
        id: Id,
        message: impl Into<MessageRef<'m>>,
    ) -> Result<(), UsageError> {
        // A whole message's bytes are shared, not copied, where they are
        // large (`Connection::send`).
        self.open(id).ok_or(UsageError::Closed)?.send(message)
    }

    /// Queues a prepared message to `id`: encoded once, however many
    /// connections it goes to.
    pub fn send_prepared(&mut self, id: Id, message: &PreparedMessage) -> Result<(), UsageError> {
        self.open(id)
            .ok_or(UsageError::Closed)?
            .send_prepared(message)
    }

    /// Offers a prepared message to `id` without ever waiting for it, as
    /// the other drivers' `offer` does: queued if at most `backlog` bytes
    /// already wait to be written, otherwise `when_full` decides (miss
    /// this message, or close). [`Offered::Closed`] if `id` has gone.
    pub fn offer(
        &mut self,
        id: Id,
        message: &PreparedMessage,
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, UsageError> {
        self.offer_many(id, core::slice::from_ref(message), backlog, when_full)
    }

    /// Offers several prepared messages in order, as
    /// [`offer`](Ctx::offer) offers one, the backlog checked before each:
    /// a broadcaster's pass, one lookup of the connection for all.
    pub fn offer_many(
        &mut self,
        id: Id,
        messages: &[PreparedMessage],
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, UsageError> {
        match self.open(id) {
            Some(conn) => policy::offer(conn, messages, backlog, when_full),
            None => Ok(Offered::Closed),
        }
    }

    /// Starts the closing handshake with `id`.
    pub fn close(&mut self, id: Id, code: CloseCode, reason: &str) -> Result<(), UsageError> {
        self.open(id).ok_or(UsageError::Closed)?.close(code, reason)
    }

    /// The bytes waiting to be written to `id` (0 if it has gone): a
    /// broadcaster skips a connection that is far behind.
    pub fn backlog(&mut self, id: Id) -> usize {
        self.records.backlog(id)
    }

    /// Every open connection.
    pub fn ids(&self) -> impl Iterator<Item = Id> + '_ {
        self.records
            .slots
            .iter()
            .enumerate()
            .filter(
                |(_, slot)| matches!(&slot.record, Some(r) if matches!(r.phase, Phase::Open(_))),
            )
            .map(|(index, slot)| Id {
                index: index as u32,
                generation: slot.generation,
            })
    }
}

/// A WebSocket server on one thread: a listener and its connections, as
/// records in one event loop.
#[derive(Debug)]
pub struct Server {
    poll: Poll,
    events: Events,
    listener: TcpListener,
    config: Config,
    records: Records,
    /// The core's deadlines: (when, [`Timestamp::as_nanos`]; slot;
    /// generation).
    deadlines: BinaryHeap<Reverse<(u64, u32, u32)>>,
    buf: Vec<u8>,
    /// Connections that may have more to read than this turn took.
    again: Vec<Id>,
    /// This turn's readiness (slot, readable, writable), kept from turn
    /// to turn so that a turn allocates nothing.
    ready: Vec<(u32, bool, bool)>,
}

impl Server {
    /// Listens on `addr`; every connection gets `config`.
    pub fn bind(addr: SocketAddr, config: Config) -> io::Result<Server> {
        Server::from_listener(TcpListener::bind(addr)?, config)
    }

    /// Serves on a listener already bound (made non-blocking here).
    pub fn from_std(listener: std::net::TcpListener, config: Config) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        Server::from_listener(TcpListener::from_std(listener), config)
    }

    fn from_listener(mut listener: TcpListener, config: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Server {
            poll,
            events: Events::with_capacity(EVENTS),
            listener,
            config,
            records: Records::default(),
            deadlines: BinaryHeap::new(),
            buf: alloc::vec![0; READ_BUF],
            again: Vec::new(),
            ready: Vec::new(),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// How many connections it holds (opening, open or closing).
    pub fn len(&self) -> usize {
        self.records.slots.len() - self.records.free.len() - self.records.freed.len()
    }

    /// Whether it holds no connection.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Serves forever (until an error of the event loop itself).
    pub fn run(&mut self, handler: &mut impl Handler) -> io::Result<()> {
        loop {
            self.turn(handler, None)?;
        }
    }

    /// Lets the application act between turns (a broadcast from a timer
    /// of its own, say); what it queues is written at once.
    pub fn with<R>(&mut self, handler: &mut impl Handler, f: impl FnOnce(&mut Ctx<'_>) -> R) -> R {
        let result = f(&mut Ctx {
            records: &mut self.records,
        });
        self.write_dirty(handler);
        result
    }

    /// The time now, on the clock the core's deadlines count on: for an
    /// application's own deadline in [`turn`](Server::turn).
    pub fn now(&self) -> Timestamp {
        Time::timestamp()
    }

    /// One turn: waits for the sockets (until `until` at the latest, and
    /// never past the core's next deadline), and handles what is ready.
    pub fn turn(&mut self, handler: &mut impl Handler, until: Option<Timestamp>) -> io::Result<()> {
        self.records.free.append(&mut self.records.freed);
        let next = (self.deadlines.peek()).map(|Reverse((at, _, _))| Timestamp::from_nanos(*at));
        // Connections with more to read: no waiting.
        let busy = (!self.again.is_empty()).then_some(Timestamp::ZERO);
        let wait = wait_for([next, until, busy]);
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut ready = core::mem::take(&mut self.ready);
        for event in self.events.iter() {
            if event.token() == LISTENER {
                ready.push((u32::MAX, false, false));
                continue;
            }
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            let writable = event.is_writable() || event.is_write_closed();
            ready.push((event.token().0 as u32, readable, writable));
        }
        let again = core::mem::take(&mut self.again);
        for &(index, readable, writable) in &ready {
            if index == u32::MAX {
                self.accept()?;
                continue;
            }
            let id = self.records.id(index);
            if writable {
                self.write(handler, id);
            }
            if readable {
                self.read(handler, id);
            }
        }
        ready.clear();
        self.ready = ready;
        for id in again {
            self.read(handler, id);
        }
        self.expire(handler);
        Ok(())
    }

    /// Accepts every connection waiting.
    fn accept(&mut self) -> io::Result<()> {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // Out of descriptors, a connection reset before we took
                // it: the listener goes on.
                Err(_) => return Ok(()),
            };
            let _ = stream.set_nodelay(true);
            let mut handshake = ServerHandshake::new(self.config.clone());
            let _ = handshake.handle_timeout(Time::timestamp());
            let index = match self.records.free.last() {
                Some(&index) => index,
                None => self.records.slots.len() as u32,
            };
            if self
                .poll
                .registry()
                .register(&mut stream, Token(index as usize), Interest::READABLE)
                .is_err()
            {
                continue;
            }
            let id = self.records.insert(Record {
                stream,
                phase: Phase::Opening(Box::new(handshake)),
                armed: UNARMED,
                writing: false,
                dirty: false,
                shut: false,
                reported: false,
            });
            debug_assert_eq!(id.index, index);
            self.arm(id);
        }
    }

    /// Reads what the socket has (a few reads at most), and hands it on.
    fn read(&mut self, handler: &mut impl Handler, id: Id) {
        for _ in 0..READS_PER_TURN {
            let Some(record) = self.records.get(id) else {
                return;
            };
            if let Phase::Open(open) = &record.phase {
                if open.conn.pending_output_len() > HIGH_WATER {
                    // Read again once the peer has taken some (`write`).
                    return;
                }
            }
            handler.before_read(&record.stream);
            let n = match record.stream.read(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Phase::Open(open) = &mut record.phase {
                        pool::release(&mut open.conn);
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(n) => n,
                // A broken stream ends as the end of the stream does.
                Err(_) => 0,
            };
            match &mut record.phase {
                Phase::Opening(_) if n == 0 => {
                    self.drop_record(id.index);
                    return;
                }
                Phase::Opening(_) => self.read_head(handler, id, n),
                // Whatever comes after a refusal is not read.
                Phase::Refusing(_) | Phase::Taken => {}
                Phase::Open(open) => {
                    let conn = &mut open.conn;
                    if n == 0 {
                        conn.handle_eof();
                    } else {
                        pool::lend_or_new(conn, LENT_INPUT);
                    }
                    self.deliver(handler, id, n);
                }
            }
            // A read that did not fill the buffer took all there was: new
            // bytes will raise readiness again (what tokio does too), so
            // the read that would only say "would block" is saved.
            if n < self.buf.len() {
                return;
            }
        }
        // More may be waiting: edge-triggered readiness will not say so
        // again, so this connection is read first thing next turn.
        self.again.push(id);
    }

    /// Feeds request bytes to the handshake, and answers once the head
    /// is whole.
    fn read_head(&mut self, handler: &mut impl Handler, id: Id, n: usize) {
        let Some(record) = self.records.get(id) else {
            return;
        };
        if !matches!(record.phase, Phase::Opening(_)) {
            return;
        }
        let Phase::Opening(handshake) = core::mem::replace(&mut record.phase, Phase::Taken) else {
            unreachable!("matched above");
        };
        let request = match (*handshake).handle_read(&self.buf[..n]) {
            Ok(Progress::Partial(handshake)) => {
                record.phase = Phase::Opening(Box::new(handshake));
                return;
            }
            Ok(Progress::Done(request)) => request,
            Err(e) => return self.refuse(handler, id, e.response()),
        };
        let options = match handler.request(&request) {
            Ok(options) => options,
            Err((status, reason)) => {
                return self.refuse(handler, id, request.reject(status, &reason))
            }
        };
        let mut accepted = match request.accept(options) {
            Ok(accepted) => accepted,
            Err(e) => return self.refuse(handler, id, e.response()),
        };
        accepted.connection.copy_below(pool::COPY_BELOW);
        let Some(record) = self.records.get(id) else {
            return;
        };
        record.phase = Phase::Open(Box::new(Open {
            conn: accepted.connection,
            head: (!accepted.response.is_empty()).then(|| Box::new(accepted.response)),
        }));
        handler.open(
            &mut Ctx {
                records: &mut self.records,
            },
            id,
        );
        // Bytes that came after the request are the connection's already.
        self.deliver(handler, id, 0);
    }

    fn refuse(&mut self, handler: &mut impl Handler, id: Id, response: Vec<u8>) {
        if let Some(record) = self.records.get(id) {
            record.phase = Phase::Refusing(Box::new(Refusal { response, sent: 0 }));
        }
        self.write(handler, id);
    }

    /// Hands the connection's events to the application one at a time
    /// (each sees the connection as it was when its event came: a message
    /// before the peer's Close can still be answered), then writes. The
    /// first `read` bytes of the server's buffer are the connection's new
    /// input: its messages are decoded and lent where they lie.
    fn deliver(&mut self, handler: &mut impl Handler, id: Id, read: usize) {
        let mut buf = core::mem::take(&mut self.buf);
        let mut unread = Unread::new(&mut buf[..read]);
        // Told the time after its input, so the bytes count as heard.
        let mut told = read == 0;
        // The application was called since the last write.
        let mut called = false;
        while let Some(Record {
            phase: Phase::Open(open),
            reported,
            ..
        }) = self.records.get(id)
        {
            // Answers to a long burst go out as they pile up, so the peer
            // reads the first while we decode the rest.
            if called && open.conn.pending_output_len() >= WRITE_AT {
                called = false;
                self.write(handler, id);
                continue;
            }
            let received = match open.conn.poll_event_from(&mut unread) {
                Some(received) => received,
                None if !told => {
                    told = true;
                    if open.conn.poll_timeout().is_some() {
                        open.conn.handle_timeout(Time::timestamp());
                    }
                    continue;
                }
                None => break,
            };
            if let Received::Event(Event::Closed(_)) = received {
                *reported = true;
            }
            let mut ctx = Ctx {
                records: &mut self.records,
            };
            match received {
                Received::Message(message) => handler.message(&mut ctx, id, message),
                Received::Event(Event::Message(message)) => {
                    handler.message(&mut ctx, id, MessageRef::from(&message))
                }
                Received::Event(Event::Closed(closed)) => handler.closed(&mut ctx, id, &closed),
                Received::Event(event) => handler.event(&mut ctx, id, event),
            }
            called = true;
        }
        self.buf = buf;
        self.write(handler, id);
        self.write_dirty(handler);
    }

    /// The open connection's next event, if it has one.
    fn next_event(&mut self, id: Id) -> Option<Event> {
        let Some(Record {
            phase: Phase::Open(open),
            reported,
            ..
        }) = self.records.get(id)
        else {
            return None;
        };
        let event = open.conn.poll_event()?;
        if let Event::Closed(_) = event {
            *reported = true;
        }
        Some(event)
    }

    /// Writes what every connection the application queued to has.
    fn write_dirty(&mut self, handler: &mut impl Handler) {
        self.records.corked = None;
        while let Some(index) = self.records.dirty.pop() {
            let id = self.records.id(index);
            if let Some(record) = self.records.get(id) {
                record.dirty = false;
                self.write(handler, id);
            }
        }
    }

    /// Writes as much of the connection's output as the socket takes,
    /// registers for writability if some is left, and ends the
    /// connection when the core says it is finished.
    fn write(&mut self, handler: &mut impl Handler, id: Id) {
        let Some(record) = self.records.get(id) else {
            return;
        };
        let (written, pending) = match &mut record.phase {
            Phase::Opening(_) | Phase::Taken => return,
            Phase::Refusing(refusal) => {
                let result = write_all(&mut record.stream, &refusal.response[refusal.sent..]);
                if let Ok(n) = result {
                    refusal.sent += n;
                }
                let pending = refusal.sent < refusal.response.len();
                if result.is_err() || !pending {
                    let _ = record.stream.shutdown(Shutdown::Write);
                    self.drop_record(id.index);
                    return;
                }
                (result, pending)
            }
            Phase::Open(open) => {
                let result = write_open(&mut record.stream, open);
                let pending = open.head.is_some() || open.conn.pending_output_len() > 0;
                (result, pending)
            }
        };
        if written.is_err() {
            // The peer is gone: the core hears it as the end of the stream.
            if let Phase::Open(open) = &mut record.phase {
                open.conn.handle_eof();
                if !record.reported {
                    return self.fail(handler, id);
                }
            }
            self.drop_record(id.index);
            return;
        }
        if pending != record.writing {
            let interest = match pending {
                true => Interest::READABLE | Interest::WRITABLE,
                false => Interest::READABLE,
            };
            let token = Token(id.index as usize);
            if self
                .poll
                .registry()
                .reregister(&mut record.stream, token, interest)
                .is_ok()
            {
                record.writing = pending;
            }
            if !pending {
                // Reading may have stopped at the high-water mark.
                self.again.push(id);
            }
        }
        let Phase::Open(open) = &mut record.phase else {
            return;
        };
        if open.conn.should_close_transport() && !record.shut && !pending {
            let _ = record.stream.shutdown(Shutdown::Write);
            record.shut = true;
        }
        if open.conn.is_finished() && record.reported {
            self.drop_record(id.index);
            return;
        }
        if !pending {
            pool::release(&mut open.conn);
        }
        self.arm(id);
    }

    /// The transport failed before the connection's end was reported:
    /// hand over its last events (the core has its Closed event), then
    /// let it go.
    fn fail(&mut self, handler: &mut impl Handler, id: Id) {
        while let Some(event) = self.next_event(id) {
            if let Event::Closed(closed) = event {
                let mut ctx = Ctx {
                    records: &mut self.records,
                };
                handler.closed(&mut ctx, id, &closed);
            }
        }
        self.drop_record(id.index);
    }

    fn drop_record(&mut self, index: u32) {
        if let Some(mut record) = self.records.remove(index) {
            let _ = self.poll.registry().deregister(&mut record.stream);
            if let Phase::Open(mut open) = record.phase {
                pool::release(&mut open.conn);
            }
        }
    }

    /// Puts the connection's next deadline in the heap, if it changed.
    fn arm(&mut self, id: Id) {
        let Some(record) = self.records.get(id) else {
            return;
        };
        let next = match &record.phase {
            Phase::Opening(handshake) => handshake.poll_timeout(),
            Phase::Open(open) => open.conn.poll_timeout(),
            Phase::Refusing(_) | Phase::Taken => None,
        };
        let next = next.map_or(UNARMED, |at| at.as_nanos().min(UNARMED - 1));
        if next != record.armed {
            record.armed = next;
            if next != UNARMED {
                self.deadlines
                    .push(Reverse((next, id.index, id.generation)));
            }
        }
    }

    /// Tells every connection whose deadline has come the time.
    fn expire(&mut self, handler: &mut impl Handler) {
        let now = Time::timestamp();
        while let Some(&Reverse((at, index, generation))) = self.deadlines.peek() {
            if at > now.as_nanos() {
                break;
            }
            self.deadlines.pop();
            let id = Id { index, generation };
            let Some(record) = self.records.get(id) else {
                continue;
            };
            if record.armed != at {
                continue;
            }
            record.armed = UNARMED;
            match &mut record.phase {
                Phase::Opening(handshake) => {
                    if let Err(e) = handshake.handle_timeout(now) {
                        self.refuse(handler, id, e.response());
                        continue;
                    }
                    self.arm(id);
                }
                Phase::Open(open) => {
                    open.conn.handle_timeout(now);
                    self.deliver(handler, id, 0);
                }
                Phase::Refusing(_) | Phase::Taken => {}
            }
        }
    }
}

/// Writes the rest of the 101, then the connection's output, until the
/// socket is full; how many bytes went.
fn write_open(stream: &mut TcpStream, open: &mut Open) -> io::Result<usize> {
    let mut total = 0;
    if let Some(head) = &mut open.head {
        let n = write_all(stream, head)?;
        head.drain(..n);
        total += n;
        if !head.is_empty() {
            return Ok(total);
        }
        open.head = None;
    }
    while open.conn.pending_output_len() > 0 {
        let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
        let count = open.conn.pending_output_vectored(&mut slices);
        let written = match count {
            1 => stream.write(&slices[0]),
            _ => stream.write_vectored(&slices[..count]),
        };
        match written {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                open.conn.consume_output(n);
                total += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// Writes `bytes` until done or the socket is full; how many went.
fn write_all(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < bytes.len() {
        match stream.write(&bytes[sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}
