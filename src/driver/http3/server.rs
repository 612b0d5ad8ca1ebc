//! The server: every request stream of an HTTP/3 connection, its HEADERS
//! read and decided by the core, handed to the application as an
//! [`Incoming`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::future::Future;

use bytes::{Buf, Bytes, BytesMut};
use quinn::{Connection, RecvStream, SendStream};
use tokio::sync::mpsc;

use super::stream::{data_frame, headers_frame, read_headers, split_fields, HeadError};
use super::{control, varint, Error, Io, Time, TokioClock};
use crate::driver::extended::Respond;
use crate::driver::Clock;
use crate::h3::{code, qpack, Settings};
use crate::handshake::{
    ExtendedConnectRequest, ExtendedConnectResponse, HandshakeError, PseudoHeaders,
};
use crate::socket;
use crate::time::HandshakeTimer;
use crate::Config;

/// Serves one HTTP/3 connection: advertises the extended CONNECT
/// (`SETTINGS_ENABLE_CONNECT_PROTOCOL`) and `config`'s head limit
/// (`SETTINGS_MAX_FIELD_SECTION_SIZE`), reads each request stream's
/// HEADERS (a head over the limit gets 431, one that does not arrive
/// within the handshake timeout 408), and calls `on_request` with each,
/// running the future it returns on a task of its own. Returns when the
/// connection ends.
pub async fn serve_connection<F, Fut>(
    conn: Connection,
    config: Config,
    mut on_request: F,
) -> Result<(), Error>
where
    F: FnMut(Incoming) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ours = Settings {
        enable_connect_protocol: true,
        max_field_section_size: Some(config.max_header_bytes as u64),
    };
    let _peer_settings = control::start(&conn, &ours, true).await?;
    let (heads, mut incoming) = mpsc::unbounded_channel();
    loop {
        tokio::select! {
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    tokio::spawn(read_request(send, recv, config.clone(), heads.clone()));
                }
                Err(e) => return ended(e),
            },
            Some(request) = incoming.recv() => {
                tokio::spawn(on_request(request));
            }
        }
    }
}

/// How the connection ended: closed by either side without an error is
/// `Ok` (`H3_NO_ERROR`, or 0, which some peers send for it).
fn ended(e: quinn::ConnectionError) -> Result<(), Error> {
    match e {
        quinn::ConnectionError::LocallyClosed => Ok(()),
        quinn::ConnectionError::ApplicationClosed(close)
            if matches!(close.error_code.into_inner(), 0 | code::NO_ERROR) =>
        {
            Ok(())
        }
        other => Err(super::connection_error(other)),
    }
}

/// Reads a request stream's HEADERS, and hands the request on (or
/// answers it, if it is refused before the application sees it).
async fn read_request(
    send: SendStream,
    mut recv: RecvStream,
    config: Config,
    heads: mpsc::UnboundedSender<Incoming>,
) {
    let mut inbound = BytesMut::new();
    let max = config.max_header_bytes;
    // The core's handshake countdown starts with the stream: a request
    // whose HEADERS do not arrive in time gets 408.
    let mut timer = HandshakeTimer::new(&config.timeouts);
    timer.handle_timeout(Time::timestamp());
    let read = read_headers(&mut recv, &mut inbound, max);
    let head = match socket::race(read, &TokioClock, timer.poll_timeout()).await {
        Some(head) => head,
        None => return refuse(send, recv, &HandshakeError::Timeout),
    };
    let block = match head {
        Ok(block) => block,
        Err(HeadError::TooLarge) => {
            return refuse(send, recv, &HandshakeError::HeadTooLarge { max })
        }
        Err(HeadError::Frame(code, _)) => return reset(send, recv, code),
        Err(HeadError::Ended(_)) => return,
    };
    let fields = match qpack::decode(&block, max) {
        Ok(fields) => fields,
        Err(qpack::FieldsError::TooLarge) => {
            return refuse(send, recv, &HandshakeError::HeadTooLarge { max })
        }
        Err(qpack::FieldsError::Malformed(_)) => {
            // A field section that does not decode fails the connection
            // (RFC 9204 §2.2.3); resetting the stream is what is ours.
            return reset(send, recv, code::QPACK_DECOMPRESSION_FAILED);
        }
    };
    let Some((pseudo, fields)) =
        split_fields(fields).and_then(|(p, f)| Some((pseudo_headers(p)?, f)))
    else {
        return refuse(
            send,
            recv,
            &HandshakeError::Malformed("a malformed request head"),
        );
    };
    let fields = fields.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
    let mut request = ExtendedConnectRequest::new(config, &pseudo, fields).with_timer(timer);
    // The handshake's countdown goes on; it is over once accepted.
    let _ = request.handle_timeout(Time::timestamp());
    let stream = RequestStream {
        send,
        recv,
        inbound,
    };
    let _ = heads.send(Incoming::new(request, stream));
}

/// A request's pseudo-header fields, or `None` for one a request may not
/// have (RFC 9114 §4.3.1).
fn pseudo_headers(fields: qpack::Fields) -> Option<PseudoHeaders> {
    let mut pseudo = PseudoHeaders::default();
    for (name, value) in fields {
        let value = String::from_utf8(value).ok();
        match name.as_str() {
            ":method" => pseudo.method = value?,
            ":protocol" => pseudo.protocol = Some(value?),
            ":scheme" => pseudo.scheme = Some(value?),
            ":authority" => pseudo.authority = Some(value?),
            ":path" => pseudo.path = Some(value?),
            _ => return None,
        }
    }
    Some(pseudo)
}

/// Resets both directions of a stream with `code`.
fn reset(mut send: SendStream, mut recv: RecvStream, code: u64) {
    let _ = send.reset(varint(code));
    let _ = recv.stop(varint(code));
}

/// Answers with the refusal of `error` (its status and reason).
fn refuse(send: SendStream, recv: RecvStream, error: &HandshakeError) {
    answer(send, recv, &error.extended_connect_response());
}

/// Sends `response` and its body, ends the stream, and asks the client to
/// send no more of its request (`STOP_SENDING` with `H3_NO_ERROR`).
fn answer(mut send: SendStream, mut recv: RecvStream, response: &ExtendedConnectResponse) {
    let mut bytes = response_head(response);
    if !response.body.is_empty() {
        bytes.extend_from_slice(&data_frame(&response.body));
    }
    let _ = recv.stop(varint(code::NO_ERROR));
    tokio::spawn(async move {
        if send.write_all(&bytes).await.is_ok() {
            let _ = send.finish();
        }
    });
}

/// The HEADERS frame of a response.
fn response_head(response: &ExtendedConnectResponse) -> Vec<u8> {
    let status = response.status.to_string();
    let fields = core::iter::once((":status", status.as_bytes())).chain(
        response
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
    );
    headers_frame(fields)
}

/// A request on an HTTP/3 stream: a WebSocket's extended CONNECT, or
/// anything else (which [`accept`](crate::socket::Incoming::accept) refuses with its
/// status). The same type as over HTTP/2, on an HTTP/3 [`RequestStream`];
/// the 200 goes out with the WebSocket's first write.
pub type Incoming = crate::socket::Incoming<RequestStream>;

/// The HTTP/3 stream a request came on, as an [`Incoming`] holds it.
#[derive(Debug)]
pub struct RequestStream {
    send: SendStream,
    recv: RecvStream,
    /// What came after the HEADERS frame.
    inbound: BytesMut,
}

impl Respond for RequestStream {
    type Io = Io;

    /// The response's HEADERS go to quinn at once, as far as it takes them
    /// now, so the client's handshake completes even if the application
    /// does not touch the WebSocket for a while; what quinn does not take
    /// goes out before the first DATA.
    fn open(mut self, accepted: &ExtendedConnectResponse) -> Result<Io, Error> {
        let mut head = Bytes::from(response_head(accepted));
        let taken = {
            let write = core::pin::pin!(self.send.write(&head));
            let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
            match write.poll(&mut cx) {
                core::task::Poll::Ready(Ok(n)) => n,
                _ => 0,
            }
        };
        head.advance(taken);
        Ok(Io::new(self.send, self.recv, self.inbound, head))
    }

    fn answer(self, response: &ExtendedConnectResponse) {
        answer(self.send, self.recv, response);
    }
}
