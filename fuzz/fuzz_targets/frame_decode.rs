//! Arbitrary bytes after the handshake, fed in arbitrary chunks to a server
//! and to a client connection.
//!
//! Invariants, beyond "never panics":
//! - nothing follows `Event::Closed`, and input after it is dropped;
//! - after draining, the receive buffer holds less than one header or one
//!   frame of at most `max_frame_size` (in streaming mode: less than one
//!   control frame), so memory stays within the configured limits;
//! - everything the connection writes is well-formed for the peer's role
//!   (read back independently, and by a peer `Connection` that finds no
//!   fault), with one Pong per Ping and a Close frame that matches the
//!   `Closed` event;
//! - the events and the output are the same whatever the chunking.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BufMut;
use libfuzzer_sys::fuzz_target;
use rfc6455::frame::{OpCode, MAX_HEADER_LEN};
use rfc6455::plumbing::{Plumbing, Received, Unread};
use rfc6455::{CloseCode, CloseFrame, Config, Connection, Event, Initiator, ProtocolError, Role};
use rfc6455_fuzz::{
    assert_same_story, check_output, chunks, drain, normalize, parse_close_payload,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Bit 0: streaming. Bit 1: end of stream after the data. Bit 2: we
    /// start the closing handshake before any input. Bit 3: auto_pong off.
    /// Bit 4: tiny limits, so that real payloads can break them.
    flags: u8,
    /// The masking key of the client-role connection.
    mask: [u8; 4],
    /// Chunk lengths, cycled.
    sizes: [u8; 8],
    data: &'a [u8],
}

impl Input<'_> {
    fn streaming(&self) -> bool {
        self.flags & 1 != 0
    }
    fn eof(&self) -> bool {
        self.flags & 2 != 0
    }
    fn local_close(&self) -> bool {
        self.flags & 4 != 0
    }
    fn auto_pong(&self) -> bool {
        self.flags & 8 == 0
    }
    fn config(&self) -> Config {
        let mut config = Config::default();
        if self.flags & 16 != 0 {
            config.max_frame_size = Some(300);
            config.max_message_size = Some(1000);
        } else {
            config.max_frame_size = Some(64 << 10);
            config.max_message_size = Some(256 << 10);
        }
        config.streaming = self.streaming();
        config.auto_pong = self.auto_pong();
        config
    }
}

struct Run {
    events: Vec<Event>,
    output: Vec<u8>,
}

fn local_close_frame() -> CloseFrame {
    CloseFrame::new(CloseCode::NORMAL, "bye")
}

/// Drives one connection through `pieces` the way a driver would.
fn run(role: Role, input: &Input<'_>, pieces: &[&[u8]]) -> Run {
    let mut config = input.config();
    config.mask_keys = rfc6455::MaskKeys::Fixed(input.mask);
    let max_frame = config.max_frame_size.expect("set in config()");
    let mut conn = Connection::new(role, config);
    if input.local_close() {
        conn.close(CloseCode::NORMAL, "bye").expect("open");
    }
    let mut events = Vec::new();
    let mut output = Vec::new();
    let mut take_output = |conn: &mut Connection| {
        while !conn.pending_output().is_empty() {
            output.extend_from_slice(conn.pending_output());
            conn.consume_output(conn.pending_output().len());
        }
    };
    for (i, piece) in pieces.iter().enumerate() {
        // The pieces take turns: copied in, read straight into the receive
        // buffer (as the tokio adapter reads), handed over as a buffer of
        // the transport's own (as the HTTP/2 driver does), decoded where
        // it was read (as the mio server does); the events must not
        // depend on the way.
        match i % 4 {
            0 => conn.handle_read(piece),
            1 => conn.read_buffer(piece.len()).put_slice(piece),
            2 => conn.handle_read_bytes(bytes::Bytes::copy_from_slice(piece)),
            _ => {
                let mut read = piece.to_vec();
                let mut unread = Unread::new(&mut read);
                while let Some(received) = conn.poll_event_from(&mut unread) {
                    events.push(match received {
                        Received::Message(message) => Event::Message(message.to_message()),
                        Received::Event(event) => event,
                    });
                }
                assert!(unread.is_empty(), "bytes left untaken");
            }
        }
        drain(&mut conn, &mut events);
        let buffered = conn.buffered_input();
        // Less than one header, or less than the frame in progress.
        assert!(
            buffered < MAX_HEADER_LEN.max(max_frame),
            "{buffered} bytes buffered, limit {max_frame}"
        );
        if input.streaming() {
            // Data is delivered as it arrives; only a header or a control
            // frame's payload waits.
            assert!(
                buffered < MAX_HEADER_LEN.max(125),
                "{buffered} bytes buffered in streaming mode"
            );
        }
        take_output(&mut conn);
    }
    // Our own Close, when no input came.
    take_output(&mut conn);
    if input.eof() {
        conn.handle_eof();
        drain(&mut conn, &mut events);
        assert!(
            matches!(events.last(), Some(Event::Closed(_))),
            "no Closed event after end of stream"
        );
        take_output(&mut conn);
    }
    if let Some(Event::Closed(closed)) = events.last() {
        assert_eq!(conn.buffered_input(), 0, "input kept after Closed");
        // The server closes the transport first (§7.1.1); a client waits for
        // it, unless the connection failed or the transport already ended.
        let should = role == Role::Server || closed.error.is_some() || input.eof();
        assert_eq!(conn.should_close_transport(), should, "{closed:?}");
        // Input after Closed is dropped and produces nothing.
        conn.handle_read(b"\x81\x00\x89\x80\x00\x00\x00\x00");
        conn.handle_eof();
        assert_eq!(conn.poll_event(), None, "an event after Closed");
        assert_eq!(conn.buffered_input(), 0, "input kept after Closed");
        assert!(conn.pending_output().is_empty(), "output after Closed");
        assert!(conn.should_close_transport());
    } else {
        assert!(!conn.should_close_transport());
    }
    Run { events, output }
}

/// What the output must say, given the events.
fn check_run(role: Role, input: &Input<'_>, run: &Run) {
    let frames = check_output(&run.output, role, &input.sizes);
    let pings: Vec<&[u8]> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Ping(p) => Some(&p[..]),
            _ => None,
        })
        .collect();
    let pongs: Vec<&[u8]> = frames
        .iter()
        .filter(|f| f.opcode == OpCode::Pong)
        .map(|f| &f.payload[..])
        .collect();
    // "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
    // response" (§5.5.2), until it sent its Close.
    if input.auto_pong() && !input.local_close() {
        assert_eq!(pongs, pings, "one Pong per Ping, same payload, same order");
    } else {
        assert!(
            pongs.is_empty(),
            "a Pong without auto_pong, or after our Close"
        );
    }
    assert!(
        frames
            .iter()
            .all(|f| matches!(f.opcode, OpCode::Pong | OpCode::Close)),
        "we sent a frame nobody asked for"
    );
    let close_frames: Vec<CloseFrame> = frames
        .iter()
        .filter(|f| f.opcode == OpCode::Close)
        .map(|f| parse_close_payload(&f.payload))
        .collect();
    assert!(close_frames.len() <= 1, "two Close frames");
    let sent = close_frames.into_iter().next();

    let Some(Event::Closed(closed)) = run.events.last() else {
        let expected = input.local_close().then(local_close_frame);
        assert_eq!(sent, expected);
        return;
    };
    assert_eq!(
        closed.sent, sent,
        "Closed.sent is not the Close frame we wrote"
    );
    if input.local_close() {
        assert_eq!(sent, Some(local_close_frame()));
    }
    match &closed.error {
        Some(ProtocolError::UnexpectedEof { .. }) => {
            assert!(input.eof());
            assert_eq!(closed.initiator, Initiator::Remote);
            assert_eq!(closed.received, None);
            if !input.local_close() {
                assert_eq!(sent, None, "a Close frame for a transport that ended");
            }
        }
        Some(error) => {
            // Every fault can be told to a person (logs, `Error` sources).
            assert!(!error.to_string().is_empty(), "{error:?} says nothing");
            assert_eq!(closed.initiator, Initiator::Local);
            assert_eq!(closed.received, None, "a fault after a Close was received");
            if !input.local_close() {
                // One place maps faults to codes: the frame must carry it.
                let sent = sent.expect("a Close frame for a fault");
                assert_eq!(sent.code, error.close_code());
                assert!(sent.code.is_sendable());
            }
        }
        None => {
            let received = closed
                .received
                .as_ref()
                .expect("a clean close received one");
            assert!(received.code == CloseCode::NO_STATUS || received.code.is_sendable());
            if input.local_close() {
                assert_eq!(closed.initiator, Initiator::Local);
            } else {
                assert_eq!(closed.initiator, Initiator::Remote);
                // "It typically echos the status code it received" (§5.5.1).
                assert_eq!(sent, Some(CloseFrame::new(received.code, "")));
            }
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let pieces = chunks(input.data, &input.sizes);
    let whole: Vec<&[u8]> = if input.data.is_empty() {
        vec![]
    } else {
        vec![input.data]
    };
    for role in [Role::Server, Role::Client] {
        let chunked = run(role, &input, &pieces);
        let at_once = run(role, &input, &whole);
        check_run(role, &input, &chunked);
        assert_same_story(
            &normalize(&chunked.events, input.streaming()),
            &normalize(&at_once.events, input.streaming()),
        );
        assert_eq!(
            chunked.output, at_once.output,
            "the output depends on the chunking"
        );
    }
});
