//! What the chat and ticker examples share: one listener that serves a page
//! over plain HTTP and upgrades `/ws` to WebSocket, optionally behind TLS
//! (where a browser may choose HTTP/2 in ALPN, if the example serves it),
//! and the Origin check at the upgrade.
//!
//! The request head is read with the library's own parser,
//! [`ServerHandshake`]: it parses any HTTP/1.1 request, so the program can
//! look at the path and answer a page, a 404 or an upgrade. Only the
//! upgrade goes on to [`Request::accept`].

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rfc6455::handshake::{Accept, Progress, Request, ServerHandshake};
use rfc6455::tokio::WebSocket;
use rfc6455::Config;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[path = "../../examples/support/accept.rs"]
mod accept;
#[path = "../../examples/support/tls.rs"]
mod tls;

/// A byte stream the site can serve on: plain TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed [`Io`]; the WebSocket adapter takes it like any other stream.
pub type Stream = Box<dyn Io>;

/// How long a client has to finish the TLS handshake and send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The command line both examples take: `[ADDR] [--tls]` and their own flags.
pub struct Args {
    /// Where to listen.
    pub addr: String,
    /// Serve https:// and wss:// with a self-signed certificate.
    pub tls: bool,
    /// Flags the example itself knows, with their values, in order.
    pub rest: Vec<String>,
}

impl Args {
    /// Splits the command line; `default_addr` applies when no address is given.
    pub fn parse(default_addr: &str) -> Args {
        let mut args = Args {
            addr: default_addr.to_string(),
            tls: false,
            rest: Vec::new(),
        };
        let mut all = std::env::args().skip(1);
        while let Some(arg) = all.next() {
            match arg.as_str() {
                "--tls" => args.tls = true,
                flag if flag.starts_with("--") => {
                    args.rest.push(arg.clone());
                    if let Some(value) = all.next() {
                        args.rest.push(value);
                    }
                }
                _ => args.addr = arg,
            }
        }
        args
    }

    /// The value given to `--name`, if any.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.rest
            .chunks(2)
            .find(|pair| pair[0] == name)
            .and_then(|pair| pair.get(1))
            .map(String::as_str)
    }
}

/// What a connection turned out to be once its TLS handshake (if any) is
/// done.
#[allow(dead_code)] // The ticker offers HTTP/1.1 only.
pub enum Opened {
    /// An HTTP/1.1 request head: a page, or a WebSocket's upgrade.
    Http1(Stream, Box<Request>),
    /// The browser chose HTTP/2 in ALPN (only offered with `http2`):
    /// serve the connection with `rfc6455::http2`.
    Http2(Stream),
}

/// The listener, the TLS acceptor when serving https://, and the origins
/// that may open a WebSocket.
pub struct Site {
    /// `None` once an HTTP framework took it ([`Site::take_listener`]).
    listener: Option<TcpListener>,
    tls: Option<TlsAcceptor>,
    origins: Vec<String>,
    config: Config,
}

impl Site {
    /// Binds `addr` (port 0 picks a free port). With `tls`, makes a
    /// self-signed certificate for `localhost` and `127.0.0.1`, and offers
    /// HTTP/2 in ALPN if `http2` (before HTTP/1.1). `config` applies to
    /// request heads and to the WebSocket connections.
    pub async fn bind(
        addr: &str,
        tls: bool,
        http2: bool,
        config: Config,
    ) -> Result<Site, Box<dyn std::error::Error>> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let alpn: &[&[u8]] = if http2 {
            &[tls::H2, tls::HTTP_1_1]
        } else {
            &[tls::HTTP_1_1]
        };
        let tls = if tls {
            Some(tls::self_signed(alpn)?)
        } else {
            None
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        // The page's own origin, as the browser writes it: the scheme, the
        // host it was loaded from and the port (§4.1 item 8, RFC 6454).
        let mut origins = vec![format!("{scheme}://{local}")];
        if local.ip().is_loopback() {
            origins.push(format!("{scheme}://localhost:{}", local.port()));
        }
        Ok(Site {
            listener: Some(listener),
            tls,
            origins,
            config,
        })
    }

    /// Also accepts WebSocket connections from pages of `origin`
    /// (`--origin https://chat.example`).
    pub fn allow_origin(&mut self, origin: &str) {
        self.origins.push(origin.trim_end_matches('/').to_string());
    }

    /// The page's address, `http://127.0.0.1:PORT` or `https://...`.
    pub fn url(&self) -> String {
        self.origins[0].clone()
    }

    /// The WebSocket address for `path`, `ws://...` or `wss://...`.
    pub fn ws_url(&self, path: &str) -> String {
        let url = self.url();
        let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{rest}{path}")
    }

    /// The next TCP connection. Call [`Site::open`] on it in its own task.
    ///
    /// A failed accept that passes (out of file descriptors, say) is
    /// logged and retried after a pause (examples/support/accept.rs): the
    /// server keeps serving the connections it has.
    ///
    /// # Panics
    /// If the listener was handed to an HTTP framework
    /// ([`Site::take_listener`]), or is unusable.
    pub async fn accept(&self) -> (tokio::net::TcpStream, SocketAddr) {
        let listener = self
            .listener
            .as_ref()
            .expect("the listener was handed to an HTTP framework");
        accept::accept(listener)
            .await
            .expect("the listening socket is unusable")
    }

    /// Runs the TLS handshake if serving https://, then reads the request
    /// head, unless the client chose HTTP/2. Errors are answered (400, 431
    /// ...) before they are returned.
    pub async fn open(&self, tcp: tokio::net::TcpStream) -> io::Result<Opened> {
        let work = async {
            let mut stream: Stream = match &self.tls {
                Some(acceptor) => {
                    let tls = acceptor.accept(tcp).await?;
                    if tls::chose_h2(&tls) {
                        return Ok(Opened::Http2(Box::new(tls)));
                    }
                    Box::new(tls)
                }
                None => Box::new(tcp),
            };
            let request = read_head(&mut stream, self.config.clone()).await?;
            Ok(Opened::Http1(stream, Box::new(request)))
        };
        tokio::time::timeout(HEAD_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    /// The listener, for an HTTP framework that runs its own accept loop
    /// (the chat's `--server axum`); the site keeps its origins.
    #[allow(dead_code)] // The ticker serves with its own loop.
    pub fn take_listener(&mut self) -> Option<TcpListener> {
        self.listener.take()
    }

    /// The configuration for WebSocket connections.
    #[allow(dead_code)] // The ticker does not serve HTTP/2.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the page that opens this WebSocket (its `Origin` field)
    /// may do so.
    ///
    /// Browsers always send Origin with a WebSocket request (§4.1 item 8),
    /// and a page on any other site can make the browser connect here:
    /// checking it is how a server keeps foreign pages out (§10.2). A
    /// client that is not a browser sends no Origin; it gets no ambient
    /// credentials from a browser either, so it is let through to the
    /// other checks.
    pub fn origin_allowed(&self, origin: Option<&str>) -> Result<(), String> {
        match origin {
            None => Ok(()),
            Some(origin) if self.origins.iter().any(|o| o == origin) => Ok(()),
            Some(origin) => Err(format!(
                "origin {origin} is not allowed; this server serves {}",
                self.origins.join(", ")
            )),
        }
    }
}

/// Serves one request of a site that is a page and its WebSocket: `GET /`
/// gets `page`, `GET /ws` is upgraded once the Origin check passes (a
/// plain GET of it gets 426) and comes back, anything else gets a 404.
#[allow(dead_code)] // The chat checks more (its token) before it upgrades.
pub async fn page_or_upgrade(
    site: &Site,
    mut stream: Stream,
    request: Request,
    peer: SocketAddr,
    page: &str,
) -> Option<WebSocket<Stream>> {
    let route = route(request.path()).to_string();
    match (request.method(), route.as_str()) {
        ("GET", "/") => {
            let page = response("200 OK", "", "text/html; charset=utf-8", page);
            send(&mut stream, &page).await;
        }
        ("GET", "/ws") => {
            if let Err(why) = site.origin_allowed(request.origin()) {
                println!("{peer} /ws: refused with 403: {why}");
                send(&mut stream, &request.reject(403, &why)).await;
            } else if !request.is_upgrade() {
                not_upgrade(&mut stream).await;
            } else {
                match upgrade(stream, request).await {
                    Ok(ws) => return Some(ws),
                    Err(err) => println!("{peer} /ws: {err}"),
                }
            }
        }
        _ => {
            let body = "not found\n";
            let page = response("404 Not Found", "", "text/plain; charset=utf-8", body);
            send(&mut stream, &page).await;
        }
    }
    None
}

/// Reads an HTTP request head with the library's handshake parser.
async fn read_head(stream: &mut Stream, config: Config) -> io::Result<Request> {
    let mut handshake = ServerHandshake::new(config);
    let mut buf = [0; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        handshake = match handshake.handle_read(&buf[..n]) {
            Ok(Progress::Partial(handshake)) => handshake,
            Ok(Progress::Done(request)) => return Ok(request),
            Err(error) => {
                send(stream, &error.response()).await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
        };
    }
}

/// Accepts a WebSocket upgrade: writes the `101` response and hands the
/// stream to the tokio adapter. A request that is not a valid upgrade gets
/// its error response (400, 426 ...) and the error comes back as text.
pub async fn upgrade(mut stream: Stream, request: Request) -> Result<WebSocket<Stream>, String> {
    let accepted = match request.accept(Accept::new()) {
        Ok(accepted) => accepted,
        Err(error) => {
            send(&mut stream, &error.response()).await;
            return Err(format!("{} {error}", error.status()));
        }
    };
    let written = async {
        stream.write_all(&accepted.response).await?;
        stream.flush().await
    };
    written.await.map_err(|e| e.to_string())?;
    Ok(WebSocket::from_connection(stream, accepted.connection))
}

/// Answers a plain (not upgrade) GET of the WebSocket address. A page whose
/// WebSocket failed asks here why: the browser tells a script nothing
/// about a refused upgrade but "closed with 1006", so the page repeats the
/// request over fetch and shows this answer. The checks passed if we got
/// here, so the answer is that this address speaks WebSocket only.
pub async fn not_upgrade(stream: &mut Stream) {
    let body = "this address accepts WebSocket connections only\n";
    let head = "Upgrade: websocket\r\n";
    send(
        stream,
        &response(
            "426 Upgrade Required",
            head,
            "text/plain; charset=utf-8",
            body,
        ),
    )
    .await;
}

/// Writes a whole response and closes our side, ignoring failures: the
/// client may be gone already.
pub async fn send(stream: &mut Stream, response: &[u8]) {
    let _ = stream.write_all(response).await;
    let _ = stream.shutdown().await;
}

/// A complete HTTP/1.1 response that ends the connection. `headers` are
/// extra fields, each ending in CRLF.
pub fn response(status: &str, headers: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: {content_type}\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The path without its query string.
pub fn route(path: &str) -> &str {
    path.split_once('?').map_or(path, |(route, _)| route)
}
