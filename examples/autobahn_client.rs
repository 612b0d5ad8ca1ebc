//! The standard Autobahn TestSuite client driver.
//!
//! ```text
//! cargo run --release --example autobahn_client -- [URL] [--blocking | --embedded | --uring | --http2 | --http3 --ca FILE] [--agent NAME]
//! ```
//!
//! The default runs the tokio adapter; `--blocking` the blocking one, and
//! `--embedded` the embedded-io-async one (feature `embedded-io-async`)
//! over tokio's sockets; `--uring` the compio driver (feature `compio`:
//! io_uring on Linux); `--http2` the tokio adapter's loop on HTTP/2
//! streams (RFC 8441, feature `http2`), every case a stream of one
//! HTTP/2 connection with prior knowledge (the Autobahn run puts haproxy
//! between it and the HTTP/1.1 fuzzing server); `--http3` the same on
//! HTTP/3 streams (RFC 9220, feature `http3`), trusting the certificate in
//! `--ca FILE` (the Autobahn run puts autobahn/h3bridge.py in between).
//!
//! Asks the fuzzing server at URL (default ws://127.0.0.1:9001) for
//! `/getCaseCount`, runs every case at `/runCase?case=N&agent=NAME` by
//! echoing each message back, then asks for `/updateReports?agent=NAME`.

#[path = "support/autobahn.rs"]
mod autobahn;
#[cfg(feature = "http3")]
#[path = "support/h3.rs"]
mod h3;

use rfc6455::tokio::WsUrl;
use rfc6455::Driver;
use rfc6455::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = "ws://127.0.0.1:9001".to_string();
    let mut blocking = false;
    let mut embedded = false;
    let mut http2 = false;
    let mut http3 = false;
    let mut uring = false;
    let mut agent = None;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--blocking" => blocking = true,
            "--embedded" => embedded = true,
            "--http2" => http2 = true,
            "--http3" => http3 = true,
            "--ca" => {
                let _ca = args.next();
                #[cfg(feature = "http3")]
                http3::CA.get_or_init(|| _ca.unwrap_or_default());
            }
            "--uring" => uring = true,
            "--quickack" => quick = true,
            "--agent" => agent = args.next(),
            other => url = other.trim_end_matches('/').to_string(),
        }
    }
    let agent = agent.unwrap_or_else(|| {
        if blocking {
            "rfc6455-blocking"
        } else if embedded {
            "rfc6455-embedded"
        } else if http2 {
            "rfc6455-http2"
        } else if http3 {
            "rfc6455-http3"
        } else if uring {
            "rfc6455-uring"
        } else {
            "rfc6455-tokio"
        }
        .to_string()
    });
    if blocking {
        run_blocking(&url, &agent, quick)
    } else if embedded {
        #[cfg(feature = "embedded-io-async")]
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(embedded::run(&url, &agent, quick));
        #[cfg(not(feature = "embedded-io-async"))]
        return Err("--embedded needs --features embedded-io-async".into());
    } else if uring {
        #[cfg(feature = "compio")]
        return rfc6455::compio::runtime()?.block_on(uring::run(&url, &agent, quick));
        #[cfg(not(feature = "compio"))]
        return Err("--uring needs --features compio".into());
    } else if http3 {
        #[cfg(feature = "http3")]
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(streams::run::<rfc6455::http3::Client>(&url, &agent));
        #[cfg(not(feature = "http3"))]
        return Err("--http3 needs --features http3".into());
    } else if http2 {
        #[cfg(feature = "http2")]
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(streams::run::<rfc6455::http2::Client>(&url, &agent));
        #[cfg(not(feature = "http2"))]
        return Err("--http2 needs --features http2".into());
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(run_tokio(&url, &agent, quick))
    }
}

fn case_count(message: Option<Message>) -> Result<u32, Box<dyn std::error::Error>> {
    let text = message
        .as_ref()
        .and_then(Message::as_text)
        .ok_or("no case count")?;
    Ok(text.trim().parse()?)
}

/// Connects to one case, with `TCP_QUICKACK` if asked.
async fn connect_tokio(
    url: &str,
    quick: bool,
) -> Result<rfc6455::tokio::WebSocket<autobahn::QuickAck>, rfc6455::tokio::Error> {
    let url = WsUrl::parse(url)?;
    let stream = tokio::net::TcpStream::connect(url.socket_addr()).await?;
    stream.set_nodelay(true)?;
    let stream = autobahn::QuickAck(stream, quick);
    rfc6455::tokio::client_with(stream, &url.request(), autobahn::config(true)).await
}

fn connect_blocking(
    url: &str,
    quick: bool,
) -> Result<rfc6455::blocking::WebSocket<autobahn::BlockingQuickAck>, rfc6455::blocking::Error> {
    let url = WsUrl::parse(url)?;
    let stream = std::net::TcpStream::connect(url.socket_addr())?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(1)))?;
    let stream = autobahn::BlockingQuickAck(stream, quick);
    rfc6455::blocking::client_with(stream, &url.request(), autobahn::config(true))
}

async fn run_tokio(url: &str, agent: &str, quick: bool) -> Result<(), Box<dyn std::error::Error>> {
    let mut ws = rfc6455::tokio::connect(&format!("{url}/getCaseCount")).await?;
    let count = case_count(ws.recv().await?)?;
    while ws.recv().await?.is_some() {}
    println!("{count} cases");
    for case in 1..=count {
        let url = format!("{url}/runCase?case={case}&agent={agent}");
        let mut ws = match connect_tokio(&url, quick).await {
            Ok(ws) => ws,
            Err(err) => {
                println!("case {case}: {err}");
                continue;
            }
        };
        while let Ok(Some(message)) = ws.recv().await {
            if ws.send(&message).await.is_err() {
                break;
            }
        }
    }
    let mut ws = rfc6455::tokio::connect(&format!("{url}/updateReports?agent={agent}")).await?;
    while let Ok(Some(_)) = ws.recv().await {}
    println!("reports updated for {agent}");
    Ok(())
}

fn run_blocking(url: &str, agent: &str, quick: bool) -> Result<(), Box<dyn std::error::Error>> {
    let mut ws = rfc6455::blocking::connect(&format!("{url}/getCaseCount"))?;
    let count = case_count(ws.recv()?)?;
    while ws.recv()?.is_some() {}
    println!("{count} cases");
    for case in 1..=count {
        let mut ws =
            match connect_blocking(&format!("{url}/runCase?case={case}&agent={agent}"), quick) {
                Ok(ws) => ws,
                Err(err) => {
                    println!("case {case}: {err}");
                    continue;
                }
            };
        while let Ok(Some(message)) = ws.recv() {
            if ws.send(&message).is_err() {
                break;
            }
        }
    }
    let mut ws = rfc6455::blocking::connect(&format!("{url}/updateReports?agent={agent}"))?;
    while let Ok(Some(_)) = ws.recv() {}
    println!("reports updated for {agent}");
    Ok(())
}

/// The embedded-io-async adapter, over tokio sockets through
/// embedded-io-adapters' bridge.
#[cfg(feature = "embedded-io-async")]
mod embedded {
    use rfc6455::embedded::{self as driver, WebSocket};
    use rfc6455::tokio::WsUrl;
    use rfc6455::Driver;

    use super::autobahn::embedded::{Stream, TokioClock};
    use super::{autobahn, case_count};

    type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

    async fn connect(url: &str, quick: bool) -> Result<WebSocket<Stream, TokioClock>> {
        let url = WsUrl::parse(url)?;
        let stream = tokio::net::TcpStream::connect(url.socket_addr()).await?;
        stream.set_nodelay(true)?;
        let stream = Stream::new(autobahn::QuickAck(stream, quick));
        let config = autobahn::config(true);
        Ok(driver::client(stream, TokioClock, &url.request(), config).await?)
    }

    pub async fn run(url: &str, agent: &str, quick: bool) -> Result<()> {
        let mut ws = connect(&format!("{url}/getCaseCount"), false).await?;
        let count = case_count(ws.recv().await?)?;
        while ws.recv().await?.is_some() {}
        println!("{count} cases");
        for case in 1..=count {
            let mut ws =
                match connect(&format!("{url}/runCase?case={case}&agent={agent}"), quick).await {
                    Ok(ws) => ws,
                    Err(err) => {
                        println!("case {case}: {err}");
                        continue;
                    }
                };
            while let Ok(Some(message)) = ws.recv().await {
                if ws.send(&message).await.is_err() {
                    break;
                }
            }
        }
        let mut ws = connect(&format!("{url}/updateReports?agent={agent}"), false).await?;
        while let Ok(Some(_)) = ws.recv().await {}
        println!("reports updated for {agent}");
        Ok(())
    }
}

/// Every case a stream of one HTTP/2 or HTTP/3 connection (a new
/// connection only if the last one failed): the same loop for both.
#[cfg(any(feature = "http2", feature = "http3"))]
mod streams {
    use rfc6455::tokio::WsUrl;
    use rfc6455::Driver;

    use super::case_count;

    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

    /// A connection that carries WebSockets on its streams.
    #[allow(async_fn_in_trait)]
    pub trait Streams: Sized {
        /// A WebSocket on one stream.
        type Ws: Driver;
        /// A new connection to `url`'s server.
        async fn dial(url: &WsUrl) -> Result<Self>;
        /// A WebSocket on a new stream, for `url`.
        async fn open(&self, url: &WsUrl) -> Result<Self::Ws>;
    }

    /// A WebSocket on a new stream, dialling again once if the connection
    /// is gone.
    async fn connect<S: Streams>(conn: &mut S, url: &str) -> Result<S::Ws> {
        let url = WsUrl::parse(url)?;
        match conn.open(&url).await {
            Ok(ws) => Ok(ws),
            Err(_) => {
                *conn = S::dial(&url).await?;
                conn.open(&url).await
            }
        }
    }

    pub async fn run<S: Streams>(url: &str, agent: &str) -> Result<()> {
        let mut conn = S::dial(&WsUrl::parse(url)?).await?;
        let mut ws = connect(&mut conn, &format!("{url}/getCaseCount")).await?;
        let count = case_count(ws.recv().await.map_err(|e| e.to_string())?)?;
        while let Ok(Some(_)) = ws.recv().await {}
        println!("{count} cases");
        for case in 1..=count {
            let case_url = format!("{url}/runCase?case={case}&agent={agent}");
            let mut ws = match connect(&mut conn, &case_url).await {
                Ok(ws) => ws,
                Err(err) => {
                    println!("case {case}: {err}");
                    continue;
                }
            };
            while let Ok(Some(message)) = ws.recv().await {
                if ws.send(&message).await.is_err() {
                    break;
                }
            }
        }
        let mut ws = connect(&mut conn, &format!("{url}/updateReports?agent={agent}")).await?;
        while let Ok(Some(_)) = ws.recv().await {}
        println!("reports updated for {agent}");
        Ok(())
    }
}

/// HTTP/2 with prior knowledge (RFC 8441).
#[cfg(feature = "http2")]
mod http2 {
    use rfc6455::handshake::ExtendedConnectClient;
    use rfc6455::http2::{Client, WebSocket};
    use rfc6455::tokio::WsUrl;

    use super::autobahn;
    use super::streams::{Result, Streams};

    impl Streams for Client {
        type Ws = WebSocket;

        async fn dial(url: &WsUrl) -> Result<Client> {
            let stream = tokio::net::TcpStream::connect(url.socket_addr()).await?;
            stream.set_nodelay(true)?;
            Ok(Client::handshake(stream).await?)
        }

        async fn open(&self, url: &WsUrl) -> Result<WebSocket> {
            let connect =
                ExtendedConnectClient::new(&url.request(), autobahn::config(true)).scheme("http");
            Ok(self.websocket(connect).await?)
        }
    }
}

/// HTTP/3 (RFC 9220), trusting the certificate in `--ca FILE`.
#[cfg(feature = "http3")]
mod http3 {
    use std::sync::OnceLock;

    use rfc6455::handshake::ExtendedConnectClient;
    use rfc6455::http3::{Client, WebSocket};
    use rfc6455::tokio::WsUrl;

    use super::streams::{Result, Streams};
    use super::{autobahn, h3};

    /// The certificate to trust, from `--ca`.
    pub static CA: OnceLock<String> = OnceLock::new();

    impl Streams for Client {
        type Ws = WebSocket;

        async fn dial(url: &WsUrl) -> Result<Client> {
            let ca = CA.get().ok_or("--http3 needs --ca FILE")?;
            h3::dial(&url.socket_addr(), ca).await
        }

        async fn open(&self, url: &WsUrl) -> Result<WebSocket> {
            let connect = ExtendedConnectClient::new(&url.request(), autobahn::config(true));
            Ok(self.websocket(connect).await?)
        }
    }
}

/// The compio driver (io_uring on Linux).
#[cfg(feature = "compio")]
mod uring {
    use rfc6455::compio::{self as driver, WebSocket, WsUrl};
    use rfc6455::Driver;

    use super::autobahn::uring::QuickAck;
    use super::{autobahn, case_count};

    type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

    /// Connects to one case, with `TCP_QUICKACK` if asked.
    async fn connect(
        url: &str,
        quick: bool,
    ) -> std::result::Result<WebSocket<QuickAck>, driver::Error> {
        let url = WsUrl::parse(url)?;
        let stream = compio::net::TcpStream::connect(url.socket_addr()).await?;
        stream.set_nodelay(true)?;
        driver::client_with(
            QuickAck(stream, quick),
            &url.request(),
            autobahn::config(true),
        )
        .await
    }

    pub async fn run(url: &str, agent: &str, quick: bool) -> Result<()> {
        let mut ws = driver::connect(&format!("{url}/getCaseCount")).await?;
        let count = case_count(ws.recv().await?)?;
        while ws.recv().await?.is_some() {}
        println!("{count} cases");
        for case in 1..=count {
            let mut ws =
                match connect(&format!("{url}/runCase?case={case}&agent={agent}"), quick).await {
                    Ok(ws) => ws,
                    Err(err) => {
                        println!("case {case}: {err}");
                        continue;
                    }
                };
            while let Ok(Some(message)) = ws.recv().await {
                if ws.send(&message).await.is_err() {
                    break;
                }
            }
        }
        let mut ws = driver::connect(&format!("{url}/updateReports?agent={agent}")).await?;
        while let Ok(Some(_)) = ws.recv().await {}
        println!("reports updated for {agent}");
        Ok(())
    }
}
