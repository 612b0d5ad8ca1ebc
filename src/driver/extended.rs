//! What the HTTP/2 and HTTP/3 drivers share, written once: a request on
//! a stream of a multiplexed connection (the extended CONNECT of RFC 8441
//! and RFC 9220), decided by the core and answered on its stream; and the
//! end of such a stream under a WebSocket (ended once, reset if dropped
//! before its end).

use super::socket::{Transport, WebSocket};
use super::{Error, TokioClock};
use crate::handshake::{Accept, ExtendedConnectRequest, ExtendedConnectResponse};

/// How a driver answers on a request's stream: what the HTTP/2 and
/// HTTP/3 drivers' request streams do (`http2::RequestStream`,
/// `http3::RequestStream`); an [`Incoming`] is made only by a driver.
pub trait Respond {
    /// The transport an accepted WebSocket runs on.
    type Io: Transport<Error = Error>;
    /// Sends the 200 (`response`, with what was agreed) and gives the
    /// stream as the WebSocket's transport.
    fn open(self, response: &ExtendedConnectResponse) -> Result<Self::Io, Error>;
    /// Sends `response` and its body, and ends the stream.
    fn answer(self, response: &ExtendedConnectResponse);
}

/// A request on a stream: a WebSocket's extended CONNECT, or anything else
/// (which [`accept`](Incoming::accept) refuses with its status).
pub struct Incoming<R> {
    request: ExtendedConnectRequest,
    stream: R,
}

impl<R> core::fmt::Debug for Incoming<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Incoming")
            .field("request", &self.request)
            .finish()
    }
}

impl<R: Respond> Incoming<R> {
    pub(crate) fn new(request: ExtendedConnectRequest, stream: R) -> Self {
        Incoming { request, stream }
    }

    /// The request: path, Origin, subprotocols, fields.
    pub fn request(&self) -> &ExtendedConnectRequest {
        &self.request
    }

    /// Accepts the WebSocket (checking the request first: a request that
    /// is not a valid extended CONNECT gets its status and reason, and the
    /// call fails with [`Error::Handshake`]).
    pub fn accept(self, options: Accept) -> Result<WebSocket<R::Io, TokioClock>, Error> {
        match self.request.accept(options) {
            Ok(accepted) => Ok(WebSocket::with_protocol(
                self.stream.open(&accepted.response)?,
                TokioClock,
                accepted.connection,
                accepted.protocol,
            )),
            Err(e) => {
                self.stream.answer(&e.extended_connect_response());
                Err(e.into())
            }
        }
    }

    /// Refuses with `status` and `reason` (403 for a foreign Origin, 404
    /// for a path you do not serve).
    pub fn reject(self, status: u16, reason: &str) {
        let response = self.request.reject(status, reason);
        self.stream.answer(&response);
    }

    /// Answers a request that is not a WebSocket (see
    /// [`ExtendedConnectRequest::is_websocket`]) with `response` and its
    /// body, and ends the stream: the page that opens the WebSockets,
    /// served on the same connection.
    pub fn respond(self, response: &ExtendedConnectResponse) {
        self.stream.answer(response);
    }
}

/// The sending side of a stream, as its end needs it.
pub trait Ends {
    /// Ends the stream after what was sent (`END_STREAM`, QUIC's FIN);
    /// `false` if that failed.
    fn finish(&mut self) -> bool;
    /// Resets the stream: RFC 8441's and RFC 9220's abrupt end.
    fn reset(&mut self);
}

/// A stream under a WebSocket: ended at most once, and reset if dropped
/// before its end, so a WebSocket dropped early frees its stream at once.
#[derive(Debug)]
pub(crate) struct StreamEnd<S: Ends> {
    send: S,
    ended: bool,
}

impl<S: Ends> StreamEnd<S> {
    pub(crate) fn new(send: S) -> Self {
        StreamEnd { send, ended: false }
    }

    /// The stream, to send on.
    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.send
    }

    /// Whether our side ended (or was reset).
    pub(crate) fn is_ended(&self) -> bool {
        self.ended
    }

    /// Our orderly end, after everything sent (a reset if it fails), so
    /// the peer reads it after our last frame. What
    /// [`Transport::shutdown`] is for these streams.
    pub(crate) fn shutdown(&mut self) -> bool {
        if !self.ended {
            self.ended = true;
            if !self.send.finish() {
                self.send.reset();
            }
        }
        true
    }

    /// Resets the stream, unless it ended.
    pub(crate) fn reset(&mut self) {
        self.end_with(S::reset);
    }

    /// Ends the stream another way (a reset with a code of the driver's),
    /// unless it ended.
    pub(crate) fn end_with(&mut self, end: impl FnOnce(&mut S)) {
        if !self.ended {
            self.ended = true;
            end(&mut self.send);
        }
    }
}

impl<S: Ends> Drop for StreamEnd<S> {
    fn drop(&mut self) {
        self.reset();
    }
}
