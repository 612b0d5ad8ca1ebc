//! An axum app with a WebSocket route, using this crate's extractor in
//! place of axum's own (`rfc6455::axum::WebSocketUpgrade`).
//!
//! ```text
//! cargo run --example axum_echo --features axum,deflate -- [ADDR]
//! ```
//!
//! ADDR defaults to 127.0.0.1:9003. `GET /` answers a line of text;
//! `GET /ws` upgrades and echoes every message (subprotocol `echo` if the
//! client offers it; permessage-deflate with the `deflate` feature);
//! a request to /ws that is not a valid upgrade gets its status and the
//! reason (400, 405, 426).

use axum::response::Response;
use axum::routing::get;
use axum::Router;
use rfc6455::axum::{WebSocket, WebSocketUpgrade};
use rfc6455::Config;
use rfc6455::Driver;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".into());
    let app = Router::new()
        .route(
            "/",
            get(|| async { "an axum app; its WebSocket is at /ws\n" }),
        )
        .route("/ws", get(upgrade));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("axum_echo: listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The route: the same builder calls as with axum's extractor.
async fn upgrade(upgrade: WebSocketUpgrade) -> Response {
    #[allow(unused_mut)]
    let mut config = Config::default();
    #[cfg(feature = "deflate")]
    {
        config.deflate = Some(rfc6455::DeflateConfig::default());
    }
    upgrade
        .config(config)
        .max_message_size(16 << 20)
        .protocols(["echo"])
        .on_upgrade(echo)
}

async fn echo(mut ws: WebSocket) {
    while let Ok(Some(message)) = ws.recv().await {
        if ws.send(&message).await.is_err() {
            break;
        }
    }
}
