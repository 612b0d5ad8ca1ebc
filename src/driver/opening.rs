//! The opening handshake of the async drivers, written once over [`Head`]:
//! the client's request and the server's answer, each raced against the
//! core's handshake deadline on the driver's [`Clock`].
//!
//! A driver gives the handshake a [`Head`] (read some bytes, write some
//! bytes, end our side) and keeps only its entry points (`accept`,
//! `client`, ...), which wrap the connection the handshake made in the
//! driver's WebSocket.

use alloc::string::String;

use crate::handshake::{
    Accept, ClientHandshake, ClientRequest, HandshakeError, Progress, Request, ServerHandshake,
};
use crate::socket::Clock;
use crate::{Config, Connection, UsageError};

use super::socket::race;

/// The bytes of an opening handshake, as a driver's stream moves them.
#[allow(async_fn_in_trait)]
pub(crate) trait Head {
    /// The driver's error.
    type Error: From<HandshakeError> + From<UsageError>;

    /// Reads what arrives next (at least one byte); the end of the stream
    /// is an error.
    async fn read_head(&mut self) -> Result<&[u8], Self::Error>;

    /// Writes all of `bytes` and flushes.
    async fn write_head(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;

    /// Ends our side after a refusal, ignoring failures (the handshake has
    /// failed already). A stream without a half close does nothing.
    async fn end(&mut self) {}
}

/// What a handshake made: the connection, and the subprotocol agreed.
pub(crate) type Opened = (Connection, Option<String>);

/// The client's handshake: sends `request`, reads the response, within the
/// handshake timeout of `config`.
pub(crate) async fn client<H: Head, C: Clock>(
    io: &mut H,
    clock: &C,
    request: &ClientRequest,
    config: Config,
) -> Result<Opened, H::Error> {
    let mut handshake = ClientHandshake::try_new(request, config)?;
    handshake.handle_timeout(clock.now())?;
    let deadline = handshake.poll_timeout();
    within(race(io.write_head(handshake.request()), clock, deadline).await)?;
    loop {
        handshake.handle_timeout(clock.now())?;
        // Woken by the deadline: the core says what it means, above.
        let Some(read) = race(io.read_head(), clock, handshake.poll_timeout()).await else {
            continue;
        };
        handshake = match handshake.handle_read(read?)? {
            Progress::Partial(handshake) => handshake,
            Progress::Done(connected) => {
                return Ok((connected.connection, connected.response.protocol))
            }
        };
    }
}

/// Reads one request head, within the handshake timeout of `config`; a
/// malformed or late one gets its HTTP error response (400, 426, 431,
/// 408) here, and our side is ended.
pub(crate) async fn read_request<H: Head, C: Clock>(
    io: &mut H,
    clock: &C,
    config: Config,
) -> Result<Request, H::Error> {
    let mut handshake = ServerHandshake::new(config);
    loop {
        if let Err(e) = handshake.handle_timeout(clock.now()) {
            return Err(refuse_with(io, e).await);
        }
        // Woken by the deadline: the core says what it means, above.
        let Some(read) = race(io.read_head(), clock, handshake.poll_timeout()).await else {
            continue;
        };
        handshake = match handshake.handle_read(read?) {
            Ok(Progress::Partial(handshake)) => handshake,
            Ok(Progress::Done(request)) => return Ok(request),
            Err(e) => return Err(refuse_with(io, e).await),
        };
    }
}

/// The server's handshake: reads the request, lets `decide` look at it,
/// and answers (a refusal, or the 101 within what is left of the
/// handshake's time).
pub(crate) async fn accept<H, C, F>(
    io: &mut H,
    clock: &C,
    config: Config,
    decide: F,
) -> Result<Opened, H::Error>
where
    H: Head,
    C: Clock,
    F: FnOnce(&Request) -> Result<Accept, (u16, String)>,
{
    let request = read_request(io, clock, config).await?;
    let options = match decide(&request) {
        Ok(options) => options,
        Err((status, reason)) => {
            refuse(io, &request.reject(status, &reason)).await;
            return Err(HandshakeError::Rejected(status).into());
        }
    };
    accept_request(io, clock, request, options).await
}

/// Finishes the upgrade of a request already read: checks it (answering
/// 400, 405 or 426 if it is not a valid upgrade) and sends the 101 within
/// what is left of the handshake's time.
pub(crate) async fn accept_request<H: Head, C: Clock>(
    io: &mut H,
    clock: &C,
    request: Request,
    options: Accept,
) -> Result<Opened, H::Error> {
    let deadline = request.deadline();
    let accepted = match request.accept(options) {
        Ok(accepted) => accepted,
        Err(e) => return Err(refuse_with(io, e).await),
    };
    within(race(io.write_head(&accepted.response), clock, deadline).await)?;
    Ok((accepted.connection, accepted.protocol))
}

/// Sends a refusal and ends our side, ignoring failures: the handshake
/// has failed already, and why is what the caller reports. The response
/// is a few hundred bytes, which the stream's send buffer takes at once:
/// it is written without a deadline (a 408 is sent after the deadline).
async fn refuse<H: Head>(io: &mut H, response: &[u8]) {
    let _ = io.write_head(response).await;
    io.end().await;
}

/// [`refuse`] with the error's own response; returns the error.
async fn refuse_with<H: Head>(io: &mut H, e: HandshakeError) -> H::Error {
    refuse(io, &e.response()).await;
    e.into()
}

/// A write raced against the handshake's deadline: the deadline first is
/// the handshake's timeout.
fn within<E: From<HandshakeError>>(raced: Option<Result<(), E>>) -> Result<(), E> {
    raced.unwrap_or_else(|| Err(HandshakeError::Timeout.into()))
}
