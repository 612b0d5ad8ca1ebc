//! Two connections, a client and a server, wired together in memory with
//! a simulated clock: every timer of the core runs without a sleep.
//!
//! Each endpoint is driven as a real driver would drive it: bytes that
//! reach it are fed in, the time is reported after every read and at every
//! deadline of `poll_timeout`, events are polled, output is written to the
//! peer, and the transport is shut down when the core says so. The clock
//! moves only in `advance`, from deadline to deadline, so a test says
//! "five minutes pass" and sees exactly what the timers did in them.
#![allow(dead_code)]

use std::time::Duration;

use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
use rfc6455::{Config, Connection, Event, Role, Timestamp};

/// One end of the simulated wire.
#[derive(Debug)]
pub struct Endpoint {
    pub conn: Connection,
    /// Every event polled, with the time it came.
    pub events: Vec<(Timestamp, Event)>,
    /// Bytes the peer wrote that this endpoint has not read yet.
    inbox: Vec<u8>,
    /// The peer shut its sending side: end of stream after `inbox`.
    peer_shut: bool,
    /// Whether this endpoint reads: `false` is a peer that is stuck (or
    /// gone without a word), whose unread bytes pile up.
    pub reading: bool,
    /// Whether the transport takes this endpoint's output: `false` is a
    /// peer whose receive window is full (slow output).
    pub writing: bool,
    /// We shut down our sending side, as `should_close_transport` asked.
    pub shut: bool,
    /// Whether the driver closes the transport when the core says so:
    /// `false` is a peer that never does.
    pub closes_transport: bool,
}

impl Endpoint {
    fn new(conn: Connection) -> Endpoint {
        Endpoint {
            conn,
            events: Vec::new(),
            inbox: Vec::new(),
            peer_shut: false,
            reading: true,
            writing: true,
            shut: false,
            closes_transport: true,
        }
    }

    /// The events polled so far, without their times.
    pub fn events(&self) -> Vec<&Event> {
        self.events.iter().map(|(_, event)| event).collect()
    }

    /// How many events match `f`.
    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    /// The final event and when it came, if it came.
    pub fn closed(&self) -> Option<(Timestamp, &rfc6455::Closed)> {
        self.events.iter().find_map(|(at, event)| match event {
            Event::Closed(closed) => Some((*at, &**closed)),
            _ => None,
        })
    }

    /// One turn of the driver loop at `now`; returns whether anything
    /// happened (bytes read, events, output written, a shutdown).
    fn turn(&mut self, now: Timestamp, peer_inbox: &mut Vec<u8>, peer_eof: &mut bool) -> bool {
        let mut progress = false;
        // 1. Input.
        if self.reading && !self.inbox.is_empty() {
            let bytes = std::mem::take(&mut self.inbox);
            self.conn.handle_read(&bytes);
            progress = true;
        }
        if self.reading && self.peer_shut && self.inbox.is_empty() {
            self.peer_shut = false;
            self.conn.handle_eof();
            progress = true;
        }
        // 2. Time: after every read, and at every deadline.
        if progress || self.conn.poll_timeout().is_some_and(|at| at <= now) {
            self.conn.handle_timeout(now);
        }
        // 3. Events.
        while let Some(event) = self.conn.poll_event() {
            self.events.push((now, event));
            progress = true;
        }
        // 5. Output.
        if self.writing && !self.shut && self.conn.pending_output_len() > 0 {
            while !self.conn.pending_output().is_empty() {
                let piece = self.conn.pending_output();
                peer_inbox.extend_from_slice(piece);
                let n = piece.len();
                self.conn.consume_output(n);
            }
            progress = true;
        }
        // Shutdown.
        if self.closes_transport && !self.shut && self.conn.should_close_transport() {
            self.shut = true;
            *peer_eof = true;
            progress = true;
        }
        progress
    }
}

/// A client and a server, connected, at a simulated time.
#[derive(Debug)]
pub struct Pair {
    pub now: Timestamp,
    pub client: Endpoint,
    pub server: Endpoint,
}

impl Pair {
    /// Runs the opening handshake in memory at time zero and wires the
    /// two connections together.
    pub fn connect(client: Config, server: Config) -> Pair {
        let now = Timestamp::ZERO;
        let mut client_hs = ClientHandshake::new(&ClientRequest::new("localhost", "/"), client);
        let mut server_hs = ServerHandshake::new(server);
        client_hs.handle_timeout(now).unwrap();
        server_hs.handle_timeout(now).unwrap();
        let request = server_hs
            .handle_read(client_hs.request())
            .unwrap()
            .done()
            .expect("the whole request");
        let accepted = request.accept(Accept::new()).unwrap();
        let connected = client_hs
            .handle_read(&accepted.response)
            .unwrap()
            .done()
            .expect("the whole response");
        Pair {
            now,
            client: Endpoint::new(connected.connection),
            server: Endpoint::new(accepted.connection),
        }
    }

    /// A pair where `role` has `timeouts` changed by `f` and its peer has
    /// no timers at all.
    pub fn with_timers(role: Role, f: impl FnOnce(&mut rfc6455::Timeouts)) -> Pair {
        let mut timed = Config::default();
        f(&mut timed.timeouts);
        let mut plain = Config::default();
        plain.timeouts.close = None;
        match role {
            Role::Client => Pair::connect(timed, plain),
            Role::Server => Pair::connect(plain, timed),
        }
    }

    /// The endpoint of `role`.
    pub fn side(&mut self, role: Role) -> &mut Endpoint {
        match role {
            Role::Client => &mut self.client,
            Role::Server => &mut self.server,
        }
    }

    /// Runs both endpoints at the current time until neither does
    /// anything more.
    pub fn drive(&mut self) {
        for _ in 0..10_000 {
            let mut progress =
                self.client
                    .turn(self.now, &mut self.server.inbox, &mut self.server.peer_shut);
            progress |=
                self.server
                    .turn(self.now, &mut self.client.inbox, &mut self.client.peer_shut);
            if !progress {
                return;
            }
        }
        panic!("the endpoints never settled at {:?}", self.now);
    }

    /// Lets `duration` pass: the clock jumps from one deadline of either
    /// endpoint to the next, and both are driven at each.
    pub fn advance(&mut self, duration: Duration) {
        let end = self.now + duration;
        self.drive();
        let mut last = None;
        for _ in 0..100_000 {
            let next = [
                self.client.conn.poll_timeout(),
                self.server.conn.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .filter(|&at| at <= end)
            .min();
            let Some(at) = next else { break };
            assert!(
                last != Some((at, self.now)),
                "a deadline at {at:?} that handle_timeout({:?}) does not move",
                self.now
            );
            last = Some((at, self.now));
            self.now = self.now.max(at);
            self.drive();
        }
        self.now = end;
        self.drive();
    }

    /// Seconds, as a duration.
    pub fn secs(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }
}

/// Seconds after the epoch.
pub fn at(secs: u64) -> Timestamp {
    Timestamp::from_duration(Duration::from_secs(secs))
}
