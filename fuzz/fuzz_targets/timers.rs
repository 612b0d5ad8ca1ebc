//! The core's timers under any schedule: a connection with a heartbeat, an
//! idle timeout and a closing deadline, driven by an arbitrary sequence of
//! reads (of well-formed frames from its peer, or of bytes arbitrary),
//! clock steps, commands and the end of stream.
//!
//! Invariants, beyond "never panics":
//! - after `handle_timeout(now)`, the next deadline is later than `now`
//!   (or there is none): a driver that sleeps until it never spins;
//! - no more Pings leave than the time allows (an interval between two),
//!   and none without a heartbeat;
//! - a peer that stays silent is given up on: with an idle timeout and a
//!   closing deadline, an open connection ends once both have run, and so
//!   does a closing one, and the transport may then be closed;
//! - nothing follows `Event::Closed`.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rfc6455::{CloseCode, Config, Connection, Event, Role, State, Timestamp};
use rfc6455_fuzz::drain;

#[derive(Arbitrary, Debug)]
enum Op<'a> {
    /// The clock moves on this many milliseconds (a wake-up before, at or
    /// after a deadline).
    Advance(u16),
    /// The driver sleeps until the connection's deadline.
    Sleep,
    /// The peer sends a Ping, a Pong or a text message (well-formed).
    Frame(u8),
    /// Arbitrary bytes from the peer.
    Bytes(&'a [u8]),
    /// The application closes.
    Close,
    /// The transport ends.
    Eof,
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    server: bool,
    /// Ping interval, idle and close timeouts in milliseconds (0: none).
    ping: u8,
    idle: u8,
    close: u8,
    ops: Vec<Op<'a>>,
}

fn ms(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_millis(n))
}

/// A well-formed frame from the peer of `role`.
fn frame(role: Role, kind: u8) -> Vec<u8> {
    let opcode = match kind % 3 {
        0 => 0x9,
        1 => 0xA,
        _ => 0x1,
    };
    let payload = b"tick";
    let mut out = vec![0x80 | opcode];
    match role {
        // From a client: masked (with a zero key, the payload is as is).
        Role::Server => out.extend_from_slice(&[0x80 | payload.len() as u8, 0, 0, 0, 0]),
        Role::Client => out.push(payload.len() as u8),
    }
    out.extend_from_slice(payload);
    out
}

fuzz_target!(|input: Input<'_>| {
    let role = if input.server {
        Role::Server
    } else {
        Role::Client
    };
    let mut config = Config::default();
    config.timeouts.ping_interval = ms(input.ping.into());
    config.timeouts.idle = ms(input.idle.into());
    config.timeouts.close = ms(input.close.into());
    config.mask_keys = rfc6455::MaskKeys::Fixed([1, 2, 3, 4]);
    let mut conn = Connection::new(role, config);

    let start = Timestamp::ZERO;
    let mut now = start;
    let mut events = Vec::new();
    let mut output = Vec::new();
    tell(&mut conn, now, &mut events, &mut output);
    for op in input.ops.iter().take(200) {
        match op {
            Op::Advance(step) => now = now + Duration::from_millis((*step).into()),
            Op::Sleep => now = now.max(conn.poll_timeout().unwrap_or(now)),
            Op::Frame(kind) => conn.handle_read(&frame(role, *kind)),
            Op::Bytes(bytes) => conn.handle_read(bytes),
            Op::Close => {
                let _ = conn.close(CloseCode::NORMAL, "");
            }
            Op::Eof => conn.handle_eof(),
        }
        tell(&mut conn, now, &mut events, &mut output);
    }

    // Then silence, until every timer that can end the connection has run
    // out (at most 255 ms each, so a few hundred deadlines at most).
    let was = conn.state();
    let end = now + Duration::from_millis(u64::from(input.idle) + u64::from(input.close) + 2);
    while let Some(deadline) = conn.poll_timeout().filter(|&d| d <= end) {
        now = now.max(deadline);
        tell(&mut conn, now, &mut events, &mut output);
    }
    // At least a millisecond between two Pings, and an interval.
    if input.ping > 0 {
        let elapsed = now.saturating_duration_since(start).as_millis() as u64;
        let pings = count_heartbeats(&output, role);
        assert!(
            pings * u64::from(input.ping) <= elapsed,
            "{pings} Pings in {elapsed} ms at one per {} ms",
            input.ping
        );
    } else {
        assert_eq!(
            count_heartbeats(&output, role),
            0,
            "a Ping without a heartbeat"
        );
    }
    // A silent peer is given up on, and a closing handshake ends, when
    // there is a closing deadline.
    let gives_up = (was == State::Open && input.idle > 0) || was == State::Closing;
    if gives_up && input.close > 0 {
        assert_eq!(
            conn.state(),
            State::Closed,
            "was {was:?}, kept past every deadline"
        );
        assert!(conn.should_close_transport());
    }
    if let Some(at) = events.iter().position(|e| matches!(e, Event::Closed(_))) {
        assert_eq!(at, events.len() - 1, "events after Closed: {events:?}");
    }
});

/// One turn of the driver: the time, the events, the output.
fn tell(conn: &mut Connection, now: Timestamp, events: &mut Vec<Event>, output: &mut Vec<u8>) {
    conn.handle_timeout(now);
    if let Some(deadline) = conn.poll_timeout() {
        assert!(deadline > now, "deadline {deadline:?} not after {now:?}");
    }
    drain(conn, events);
    while !conn.pending_output().is_empty() {
        output.extend_from_slice(conn.pending_output());
        conn.consume_output(conn.pending_output().len());
    }
}

/// How many heartbeat Pings (empty payload) are in `bytes`, our output.
fn count_heartbeats(mut bytes: &[u8], role: Role) -> u64 {
    let mut n = 0;
    while bytes.len() >= 2 {
        let masked = role == Role::Client;
        let len = usize::from(bytes[1] & 0x7F);
        let head = 2 + if masked { 4 } else { 0 };
        let len = match len {
            126 if bytes.len() >= 4 => usize::from(u16::from_be_bytes([bytes[2], bytes[3]])) + 2,
            127 if bytes.len() >= 10 => {
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize + 8
            }
            126 | 127 => return n,
            len => len,
        };
        if bytes[0] == 0x89 && len == 0 {
            n += 1;
        }
        let total = head + len;
        if total > bytes.len() {
            return n;
        }
        bytes = &bytes[total..];
    }
    n
}
