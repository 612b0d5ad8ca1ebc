//! An axum extractor (feature `axum`): a drop-in for
//! `axum::extract::ws::WebSocketUpgrade` that gives the tokio driver's
//! [`WebSocket`](crate::tokio::WebSocket), with this crate's checks,
//! limits, timers and permessage-deflate.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use axum::response::Response;
//! use rfc6455::axum::{WebSocket, WebSocketUpgrade};
//! use rfc6455::Driver;
//!
//! async fn ws(upgrade: WebSocketUpgrade) -> Response {
//!     upgrade
//!         .protocols(["chat"])
//!         .max_message_size(1 << 20)
//!         .on_upgrade(echo)
//! }
//!
//! async fn echo(mut ws: WebSocket) {
//!     while let Ok(Some(message)) = ws.recv().await {
//!         if ws.send(&message).await.is_err() {
//!             break;
//!         }
//!     }
//! }
//!
//! # async fn run() {
//! let app: Router = Router::new().route("/ws", get(ws));
//! # }
//! ```
//!
//! Where it differs from axum's: the checks are the core's (§4.2.1: a
//! request that is not an upgrade gets 400 with the reason, a wrong
//! version 426 with `Sec-WebSocket-Version: 13`, a method other than GET
//! 405), the rejection's body says what was wrong, limits and timers are
//! one [`Config`] ([`config`](WebSocketUpgrade::config)), and only HTTP/1.1
//! upgrades are taken (HTTP/2 WebSockets: the `http2` feature).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::future::Future;

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;

use crate::handshake::{Accept, HandshakeError, Request};
use crate::Config;

/// The WebSocket a handler gets: the tokio driver over hyper's upgraded
/// connection.
pub type WebSocket = crate::tokio::WebSocket<TokioIo<Upgraded>>;

/// Extracts a WebSocket upgrade request; finish it with
/// [`on_upgrade`](WebSocketUpgrade::on_upgrade), whose response the
/// handler returns.
pub struct WebSocketUpgrade<F = DefaultOnFailedUpgrade> {
    request: Request,
    on_upgrade: OnUpgrade,
    config: Config,
    protocols: Vec<String>,
    on_failed_upgrade: F,
}

impl<F> core::fmt::Debug for WebSocketUpgrade<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("request", &self.request)
            .field("protocols", &self.protocols)
            .finish()
    }
}

/// Why a request is not a WebSocket upgrade; as a response, its status
/// and reason.
#[derive(Debug)]
pub enum WebSocketUpgradeRejection {
    /// The request fails a check of §4.2.1 (400, 405, 426, ...).
    Handshake(HandshakeError),
    /// The connection cannot be upgraded (hyper put no upgrade in the
    /// request: not HTTP/1.1, or served without `with_upgrades`): 426.
    NotUpgradable,
}

impl core::fmt::Display for WebSocketUpgradeRejection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WebSocketUpgradeRejection::Handshake(error) => error.fmt(f),
            WebSocketUpgradeRejection::NotUpgradable => {
                f.write_str("this connection cannot be upgraded to WebSocket")
            }
        }
    }
}

impl core::error::Error for WebSocketUpgradeRejection {}

impl IntoResponse for WebSocketUpgradeRejection {
    fn into_response(self) -> Response {
        let response = match &self {
            WebSocketUpgradeRejection::Handshake(error) => crate::http::error_response(error),
            WebSocketUpgradeRejection::NotUpgradable => {
                let mut response = crate::http::rejection(426, &self.to_string());
                response.headers_mut().insert(
                    http::header::UPGRADE,
                    http::HeaderValue::from_static("websocket"),
                );
                response
            }
        };
        response.map(Body::from)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade<DefaultOnFailedUpgrade> {
    type Rejection = WebSocketUpgradeRejection;

    fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let extracted = extract(parts);
        async move { extracted }
    }
}

/// The checks, then hyper's upgrade handle.
fn extract(parts: &mut Parts) -> Result<WebSocketUpgrade, WebSocketUpgradeRejection> {
    let request = crate::http::request_from_parts(parts, Config::default());
    request
        .validate()
        .map_err(WebSocketUpgradeRejection::Handshake)?;
    let on_upgrade = parts
        .extensions
        .remove::<OnUpgrade>()
        .ok_or(WebSocketUpgradeRejection::NotUpgradable)?;
    Ok(WebSocketUpgrade {
        request,
        on_upgrade,
        config: Config::default(),
        protocols: Vec::new(),
        on_failed_upgrade: DefaultOnFailedUpgrade,
    })
}

impl<F: OnFailedUpgrade> WebSocketUpgrade<F> {
    /// The subprotocols this route speaks, in order of preference: the
    /// first one the client also offered is agreed.
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The subprotocols the client offered, in its order.
    pub fn requested_protocols(&self) -> Vec<&str> {
        self.request.protocols()
    }

    /// The subprotocol that will be agreed, if any.
    pub fn selected_protocol(&self) -> Option<&str> {
        let offered = self.request.protocols();
        self.protocols
            .iter()
            .map(String::as_str)
            .find(|p| offered.contains(p))
    }

    /// The request: path, Origin, fields.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The whole configuration: limits, timers, permessage-deflate.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The largest message, in bytes (1009 beyond).
    pub fn max_message_size(mut self, max: usize) -> Self {
        self.config.max_message_size = Some(max);
        self
    }

    /// The largest frame, in bytes (1009 beyond).
    pub fn max_frame_size(mut self, max: usize) -> Self {
        self.config.max_frame_size = Some(max);
        self
    }

    /// What to do if hyper cannot hand over the connection after the 101
    /// (the client went away): by default nothing.
    pub fn on_failed_upgrade<C: OnFailedUpgrade>(self, callback: C) -> WebSocketUpgrade<C> {
        WebSocketUpgrade {
            request: self.request,
            on_upgrade: self.on_upgrade,
            config: self.config,
            protocols: self.protocols,
            on_failed_upgrade: callback,
        }
    }

    /// Accepts: the response (101, or the refusal if the request fails a
    /// check) for the handler to return, and `callback` with the
    /// WebSocket on a task of its own once hyper hands the connection over.
    #[must_use = "the handler must return this response for the upgrade to happen"]
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut accept = Accept::new();
        if let Some(protocol) = self.selected_protocol() {
            accept = accept.protocol(protocol);
        }
        let accepted = match self.request.with_config(self.config).accept(accept) {
            Ok(accepted) => accepted,
            Err(error) => return WebSocketUpgradeRejection::Handshake(error).into_response(),
        };
        let response = crate::http::response(&accepted).map(|()| Body::empty());
        let (on_upgrade, on_failed) = (self.on_upgrade, self.on_failed_upgrade);
        let connection = accepted.connection;
        ::tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let ws = WebSocket::from_connection(TokioIo::new(upgraded), connection);
                    callback(ws).await;
                }
                Err(error) => on_failed.call(error),
            }
        });
        response
    }
}

/// What to do when hyper cannot hand over an accepted connection.
pub trait OnFailedUpgrade: Send + 'static {
    /// Called with hyper's error.
    fn call(self, error: hyper::Error);
}

impl<F: FnOnce(hyper::Error) + Send + 'static> OnFailedUpgrade for F {
    fn call(self, error: hyper::Error) {
        self(error)
    }
}

/// The default [`OnFailedUpgrade`]: nothing (the client is gone).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultOnFailedUpgrade;

impl OnFailedUpgrade for DefaultOnFailedUpgrade {
    fn call(self, _error: hyper::Error) {}
}
