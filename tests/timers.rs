//! The core's timers on a simulated clock, for both roles: the heartbeat
//! Ping, the close of a silent peer (1001), the closing handshake's
//! deadline, the opening handshake's deadline, and how they meet slow
//! output. No test sleeps: time passes in `Pair::advance`, from deadline to
//! deadline, and every figure below is exact.

mod common;

use std::time::Duration;

use common::pair::{at, Pair};
use rfc6455::handshake::{
    Accept, ClientHandshake, ClientRequest, HandshakeError, Progress, ServerHandshake,
};
use rfc6455::plumbing::Plumbing;
use rfc6455::{
    CloseCode, Config, Connection, Event, Initiator, Message, ProtocolError, Role, State, Timestamp,
};

const ROLES: [Role; 2] = [Role::Client, Role::Server];

fn other(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn is_ping(e: &Event) -> bool {
    matches!(e, Event::Ping(_))
}

fn is_pong(e: &Event) -> bool {
    matches!(e, Event::Pong(_))
}

#[test]
fn no_timer_runs_without_the_time() {
    for role in ROLES {
        let mut config = Config::default();
        config.timeouts.ping_interval = Some(secs(1));
        config.timeouts.idle = Some(secs(2));
        let mut conn = Connection::new(role, config);
        assert_eq!(conn.poll_timeout(), None, "{role:?}");
        conn.close(CloseCode::NORMAL, "").unwrap();
        assert_eq!(conn.poll_timeout(), None, "{role:?}");
    }
}

#[test]
fn heartbeat_pings_after_each_interval_of_silence() {
    for role in ROLES {
        let mut pair = Pair::with_timers(role, |t| {
            t.ping_interval = Some(secs(10));
            t.idle = Some(secs(30));
        });
        pair.advance(secs(100));
        // The peer answered every Ping at once, so it is never idle, and
        // the next Ping comes one interval after its Pong.
        let peer = pair.side(other(role));
        let pings: Vec<Timestamp> = peer
            .events
            .iter()
            .filter(|(_, e)| is_ping(e))
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(pings, (1..=10).map(|i| at(10 * i)).collect::<Vec<_>>());
        let timed = pair.side(role);
        assert_eq!(timed.count(is_pong), 10, "{role:?}");
        assert_eq!(timed.conn.state(), State::Open, "{role:?}");
        assert_eq!(timed.conn.poll_timeout(), Some(at(110)), "{role:?}");
    }
}

#[test]
fn a_silent_peer_is_pinged_then_closed_with_1001() {
    for role in ROLES {
        let mut pair = Pair::with_timers(role, |t| {
            t.ping_interval = Some(secs(10));
            t.idle = Some(secs(30));
            t.close = Some(secs(5));
        });
        // The peer is stuck: it reads nothing, so it answers nothing.
        pair.side(other(role)).reading = false;
        pair.advance(secs(100));

        let timed = pair.side(role);
        let (when, closed) = timed.closed().expect("the connection ended");
        // Idle at 30 s: Close 1001; no answer within 5 s: the end.
        assert_eq!(when, at(35), "{role:?}");
        assert_eq!(closed.error, Some(ProtocolError::Timeout), "{role:?}");
        assert_eq!(closed.initiator, Initiator::Local);
        let sent = closed.sent.clone().expect("a Close frame was sent");
        assert_eq!(
            (sent.code, sent.reason.as_str()),
            (CloseCode::GOING_AWAY, "idle timeout")
        );
        assert_eq!(closed.received, None);
        assert_eq!(closed.code(), CloseCode::ABNORMAL);
        assert_eq!(timed.conn.state(), State::Closed);
        assert!(timed.conn.should_close_transport() && timed.conn.is_finished());
        assert_eq!(timed.conn.poll_timeout(), None, "no timer after the end");

        // What the stuck peer finds when it reads at last: two Pings (at
        // 10 s and 20 s; at 30 s idleness wins), then the Close.
        let peer = pair.side(other(role));
        peer.reading = true;
        pair.drive();
        let peer = pair.side(other(role));
        let kinds: Vec<&Event> = peer.events();
        assert_eq!(kinds.len(), 3, "{role:?}: {kinds:?}");
        assert!(is_ping(kinds[0]) && is_ping(kinds[1]), "{kinds:?}");
        let (_, closed) = peer.closed().expect("the peer saw the Close");
        assert_eq!(
            closed.received.as_ref().map(|f| f.code),
            Some(CloseCode::GOING_AWAY)
        );
    }
}

#[test]
fn data_from_the_peer_keeps_it_alive() {
    for role in ROLES {
        let mut pair = Pair::with_timers(role, |t| t.idle = Some(secs(30)));
        for _ in 0..5 {
            pair.side(other(role)).conn.send_text("still here").unwrap();
            pair.advance(secs(20));
        }
        let timed = pair.side(role);
        assert_eq!(
            timed.count(|e| *e == Event::Message(Message::from("still here"))),
            5
        );
        assert_eq!(timed.conn.state(), State::Open, "{role:?}");
        // Silence from now on: idle 30 s after the last message.
        pair.side(other(role)).reading = false;
        pair.advance(secs(60));
        let timed = pair.side(role);
        assert_eq!(timed.conn.state(), State::Closed, "{role:?}");
    }
}

#[test]
fn the_heartbeat_stops_once_closing() {
    for role in ROLES {
        let mut pair = Pair::with_timers(role, |t| {
            t.ping_interval = Some(secs(10));
            t.close = Some(secs(100));
        });
        pair.side(other(role)).reading = false;
        pair.side(role)
            .conn
            .close(CloseCode::NORMAL, "bye")
            .unwrap();
        pair.advance(secs(50));
        let peer = pair.side(other(role));
        peer.reading = true;
        pair.drive();
        // Only the Close: no Ping was sent after it.
        let peer = pair.side(other(role));
        assert_eq!(peer.events().len(), 1, "{role:?}: {:?}", peer.events());
        assert!(peer.closed().is_some());
    }
}

#[test]
fn closing_handshake_times_out_when_the_peer_never_answers() {
    for role in ROLES {
        let mut pair = Pair::with_timers(role, |t| t.close = Some(secs(5)));
        pair.side(other(role)).reading = false;
        pair.side(role)
            .conn
            .close(CloseCode::NORMAL, "bye")
            .unwrap();
        pair.advance(secs(4));
        assert_eq!(pair.side(role).conn.state(), State::Closing, "{role:?}");
        pair.advance(secs(10));
        let timed = pair.side(role);
        let (when, closed) = timed.closed().expect("ended");
        assert_eq!(when, at(5), "{role:?}");
        assert_eq!(closed.error, Some(ProtocolError::Timeout));
        assert_eq!(
            closed.sent.as_ref().map(|f| f.code),
            Some(CloseCode::NORMAL)
        );
        assert!(timed.conn.is_finished());
    }
}

#[test]
fn the_closing_deadline_bounds_slow_output() {
    for role in ROLES {
        let mut pair = Pair::with_timers(role, |t| t.close = Some(secs(5)));
        // Nothing the timed side writes can leave: a full receive window.
        pair.side(role).writing = false;
        pair.side(role).conn.send_binary(&[0; 4096]).unwrap();
        pair.side(role).conn.close(CloseCode::NORMAL, "").unwrap();
        pair.advance(secs(4));
        assert!(!pair.side(role).conn.should_close_transport());
        pair.advance(secs(1));
        let timed = pair.side(role);
        assert_eq!(timed.closed().map(|(t, _)| t), Some(at(5)), "{role:?}");
        // The output is given up: the transport may go with it unsent.
        assert!(timed.conn.pending_output_len() > 4096);
        assert!(timed.conn.should_close_transport() && timed.conn.is_finished());
    }
}

#[test]
fn an_answered_close_ends_before_any_deadline() {
    for role in ROLES {
        let mut pair = Pair::with_timers(role, |t| t.close = Some(secs(5)));
        pair.side(role).conn.close(CloseCode::NORMAL, "").unwrap();
        pair.advance(secs(1));
        for side in ROLES {
            let end = pair.side(side);
            let (when, closed) = end.closed().expect("ended");
            assert_eq!(when, at(0), "{role:?} {side:?}");
            assert!(closed.is_clean(), "{closed:?}");
            // The server closed the transport first (§7.1.1), the client
            // after its end of stream.
            assert!(end.shut && end.conn.is_finished(), "{role:?} {side:?}");
        }
    }
}

#[test]
fn a_client_stops_waiting_for_the_servers_end_of_stream() {
    let mut pair = Pair::with_timers(Role::Client, |t| t.close = Some(secs(5)));
    // A server that never closes its side of the transport.
    pair.server.closes_transport = false;
    pair.client.conn.close(CloseCode::NORMAL, "").unwrap();
    pair.advance(secs(4));
    let (_, closed) = pair
        .client
        .closed()
        .expect("the closing handshake finished");
    assert!(closed.is_clean());
    assert!(
        !pair.client.conn.should_close_transport(),
        "waits for the server"
    );
    pair.advance(secs(1));
    assert!(pair.client.conn.should_close_transport() && pair.client.conn.is_finished());
}

// ----- the opening handshake -----

fn handshake_config(limit: u64) -> Config {
    let mut config = Config::default();
    config.timeouts.handshake = Some(secs(limit));
    config
}

fn request_bytes() -> Vec<u8> {
    ClientHandshake::new(&ClientRequest::new("localhost", "/"), Config::default())
        .request()
        .to_vec()
}

#[test]
fn a_server_handshake_times_out_with_408() {
    let mut hs = ServerHandshake::new(handshake_config(10));
    assert_eq!(
        hs.poll_timeout(),
        None,
        "no countdown before the first time"
    );
    hs.handle_timeout(at(100)).unwrap();
    assert_eq!(hs.poll_timeout(), Some(at(110)));
    let request = request_bytes();
    let Ok(Progress::Partial(mut hs)) = hs.handle_read(&request[..10]) else {
        panic!("ten bytes are not a head");
    };
    hs.handle_timeout(at(109)).unwrap();
    let e = hs.handle_timeout(at(110)).unwrap_err();
    assert_eq!(e, HandshakeError::Timeout);
    assert_eq!(e.status(), 408);
    let response = String::from_utf8(e.response()).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{response}"
    );
}

#[test]
fn a_client_handshake_times_out() {
    let mut hs = ClientHandshake::new(&ClientRequest::new("h", "/"), handshake_config(10));
    hs.handle_timeout(at(0)).unwrap();
    assert_eq!(hs.poll_timeout(), Some(at(10)));
    let Ok(Progress::Partial(mut hs)) = hs.handle_read(b"HTTP/1.1 101 Switching") else {
        panic!("half a status line is not a head");
    };
    assert_eq!(hs.handle_timeout(at(10)), Err(HandshakeError::Timeout));
}

#[test]
fn without_a_limit_a_handshake_waits_forever() {
    let mut config = Config::default();
    config.timeouts.handshake = None;
    let mut hs = ServerHandshake::new(config);
    hs.handle_timeout(at(0)).unwrap();
    hs.handle_timeout(at(1_000_000)).unwrap();
    assert_eq!(hs.poll_timeout(), None);
}

#[test]
fn the_connection_carries_on_from_the_handshakes_clock() {
    let mut config = handshake_config(10);
    config.timeouts.ping_interval = Some(secs(15));
    let mut hs = ServerHandshake::new(config);
    hs.handle_timeout(at(3)).unwrap();
    let request = hs.handle_read(&request_bytes()).unwrap().done().unwrap();
    // The embedder writes the response by the handshake's deadline.
    assert_eq!(request.deadline(), Some(at(13)));
    let accepted = request.accept(Accept::new()).unwrap();
    assert_eq!(accepted.connection.poll_timeout(), Some(at(18)));
}

#[test]
fn bytes_read_in_place_are_a_sign_of_life_too() {
    use bytes::BufMut;
    // A driver that reads straight into the receive buffer (as the tokio
    // adapter does) is heard the same as one that calls handle_read.
    let mut config = Config::default();
    config.timeouts.idle = Some(secs(30));
    let mut server = Connection::new(Role::Server, config);
    server.handle_timeout(at(0));
    let ping = common::client_frame(common::PING, b"");
    for t in [20, 40, 60] {
        server.read_buffer(ping.len()).put_slice(&ping);
        server.handle_timeout(at(t));
        assert!(matches!(server.poll_event(), Some(Event::Ping(_))));
    }
    assert_eq!(server.state(), State::Open);
    assert_eq!(server.poll_timeout(), Some(at(90)));
    // A read that brings nothing is no sign of life.
    drop(server.read_buffer(4096));
    server.handle_timeout(at(90));
    assert_eq!(server.state(), State::Closing);
}
