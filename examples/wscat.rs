//! A small interactive WebSocket client and server, for trying things out
//! and for learning what goes over the wire.
//!
//! ```text
//! cargo run --example wscat -- ws://127.0.0.1:9001/ [OPTIONS]
//! cargo run --example wscat -- --listen 127.0.0.1:9004 [OPTIONS]
//! ```
//!
//! Each line typed (or piped) on stdin goes out as a text message; each
//! message that arrives is printed as `< text` (binary as hex). At the end
//! of stdin the client closes with 1000 and waits for the server's Close.
//! `--listen ADDR` is the server side: it takes one connection at a time.
//!
//! Options:
//! - `--show-frames`: print the opening handshake and every frame both ways
//!   (`>>` ours, `<<` the peer's): FIN, RSV bits, opcode, mask and masking
//!   key, length, the payload in hex (as sent, and unmasked) and as text;
//! - `--subprotocol NAME` (repeatable), `--header "Name: value"`
//!   (repeatable, client only);
//! - `--deflate`: offer (or accept) permessage-deflate (feature `deflate`);
//!   the frames then show RSV1 and the compressed payload;
//! - `--ping SECS`: the core pings after that much silence;
//! - `--http3 --ca FILE`: dial over HTTP/3 (RFC 9220, feature `http3`),
//!   trusting the certificates in FILE (PEM), the URL's host and port
//!   over UDP; the frames are not shown there.
//!
//! ws:// only over TCP: for wss://, put a TLS stream under the adapter
//! (see the README).

#[path = "support/accept.rs"]
mod accept;
#[cfg(feature = "http3")]
#[path = "support/h3.rs"]
mod h3;

use rfc6455::Driver;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rfc6455::frame::{Header, OpCode};
use rfc6455::handshake::Accept;
use rfc6455::tokio::WsUrl;
use rfc6455::{CloseCode, Config, Event, Message};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;

struct Options {
    target: Option<String>,
    listen: Option<String>,
    show_frames: bool,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
    deflate: bool,
    ping: Option<Duration>,
    /// `--http3`: the certificates to trust, from `--ca`.
    http3: Option<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: wscat ws://HOST[:PORT]/PATH | --listen ADDR  [--show-frames] \
         [--subprotocol NAME]... [--header 'Name: value']... [--deflate] [--ping SECS] \
         [--http3 --ca FILE]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut options = Options {
        target: None,
        listen: None,
        show_frames: false,
        protocols: Vec::new(),
        headers: Vec::new(),
        deflate: false,
        ping: None,
        http3: None,
    };
    let mut http3 = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--listen" => options.listen = Some(value()),
            "--show-frames" => options.show_frames = true,
            "--subprotocol" => options.protocols.push(value()),
            "--header" => match value().split_once(':') {
                Some((name, v)) => options.headers.push((name.trim().into(), v.trim().into())),
                None => usage(),
            },
            "--deflate" => options.deflate = true,
            "--http3" => http3 = true,
            "--ca" => options.http3 = Some(value()),
            "--ping" => {
                let secs: f64 = value().parse().unwrap_or_else(|_| usage());
                options.ping = Some(Duration::from_secs_f64(secs));
            }
            "-h" | "--help" => usage(),
            url if !url.starts_with("--") => options.target = Some(url.to_string()),
            _ => usage(),
        }
    }
    if options.target.is_none() == options.listen.is_none() || http3 != options.http3.is_some() {
        usage();
    }
    options
}

impl Options {
    fn config(&self) -> Result<Config, Box<dyn std::error::Error>> {
        let mut config = Config::default();
        config.timeouts.ping_interval = self.ping;
        if self.deflate {
            #[cfg(feature = "deflate")]
            {
                config.deflate = Some(rfc6455::DeflateConfig::default());
            }
            #[cfg(not(feature = "deflate"))]
            return Err("--deflate needs --features deflate".into());
        }
        Ok(config)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options();
    let config = options.config()?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    if let Some(target) = &options.target {
        let url = WsUrl::parse(target)?;
        let mut request = url.request();
        for protocol in &options.protocols {
            request = request.protocol(protocol);
        }
        for (name, value) in &options.headers {
            request = request.header(name, value);
        }
        if let Some(_ca) = &options.http3 {
            #[cfg(feature = "http3")]
            {
                let client = h3::dial(&url.socket_addr(), _ca).await?;
                let connect = rfc6455::handshake::ExtendedConnectClient::new(&request, config);
                let mut ws = client.websocket(connect).await?;
                report_agreed(&ws);
                return session(&mut ws, &mut stdin, true).await;
            }
            #[cfg(not(feature = "http3"))]
            return Err("--http3 needs --features http3".into());
        }
        let tcp = TcpStream::connect(url.socket_addr()).await?;
        tcp.set_nodelay(true)?;
        let stream = Tap::new(tcp, options.show_frames);
        let mut ws = rfc6455::tokio::client_with(stream, &request, config).await?;
        report_agreed(&ws);
        session(&mut ws, &mut stdin, true).await
    } else {
        let addr = options.listen.as_deref().unwrap_or_default();
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on ws://{}", listener.local_addr()?);
        loop {
            let (tcp, peer) = accept::accept(&listener).await?;
            println!("connection from {peer}");
            let stream = Tap::new(tcp, options.show_frames);
            let protocols = options.protocols.clone();
            let accepted = rfc6455::tokio::accept_with(stream, config.clone(), move |request| {
                let offered = request.protocols();
                Ok(
                    match protocols.iter().find(|p| offered.contains(&p.as_str())) {
                        Some(protocol) => Accept::new().protocol(protocol.as_str()),
                        None => Accept::new(),
                    },
                )
            })
            .await;
            let mut ws = match accepted {
                Ok(ws) => ws,
                Err(err) => {
                    println!("handshake failed: {err}");
                    continue;
                }
            };
            report_agreed(&ws);
            // The server does not end at the end of stdin: it keeps
            // answering until the client closes.
            session(&mut ws, &mut stdin, false).await?;
        }
    }
}

fn report_agreed(ws: &impl Driver) {
    if let Some(protocol) = ws.protocol() {
        println!("subprotocol: {protocol}");
    }
}

/// Lines from stdin out, messages in, until the closing handshake ends.
async fn session(
    ws: &mut impl Driver<Error = impl std::error::Error + 'static>,
    stdin: &mut tokio::io::Lines<BufReader<tokio::io::Stdin>>,
    close_at_eof: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut stdin_open = true;
    loop {
        tokio::select! {
            event = ws.recv_event() => match event? {
                Event::Message(Message::Text(text)) => println!("< {text}"),
                Event::Message(Message::Binary(data)) => println!("< (binary) {}", hex(&data)),
                Event::Ping(payload) => println!("< (ping) {}", hex(&payload)),
                Event::Pong(payload) => println!("< (pong) {}", hex(&payload)),
                Event::Closed(closed) => {
                    match &closed.received {
                        Some(frame) => println!("closed: {} {}", frame.code, frame.reason),
                        None => println!("closed: {}", closed.code()),
                    }
                    return Ok(());
                }
                Event::Fragment(_) => {}
            },
            line = stdin.next_line(), if stdin_open => match line? {
                Some(line) => ws.send_text(&line).await?,
                None => {
                    stdin_open = false;
                    if close_at_eof {
                        ws.close(CloseCode::NORMAL, "").await?;
                    }
                }
            },
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A stream that prints what crosses it: the HTTP head as text, then
/// every frame, decoded with the library's own header decoder.
struct Tap<S> {
    stream: S,
    ours: Wire,
    theirs: Wire,
}

impl<S> Tap<S> {
    fn new(stream: S, show: bool) -> Self {
        Tap {
            stream,
            ours: Wire::new(">>", show),
            theirs: Wire::new("<<", show),
        }
    }
}

/// One direction of the wire, as it is being read.
struct Wire {
    arrow: &'static str,
    show: bool,
    /// Still in the HTTP head (until its blank line).
    in_head: bool,
    pending: Vec<u8>,
}

impl Wire {
    fn new(arrow: &'static str, show: bool) -> Self {
        Wire {
            arrow,
            show,
            in_head: true,
            pending: Vec::new(),
        }
    }

    fn saw(&mut self, bytes: &[u8]) {
        if !self.show {
            return;
        }
        self.pending.extend_from_slice(bytes);
        if self.in_head {
            let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            for line in head.lines() {
                println!("{} {line}", self.arrow);
            }
            println!("{}", self.arrow);
            self.pending.drain(..end + 4);
            self.in_head = false;
        }
        // Whole frames: header, then payload.
        while let Ok(Some((header, head_len))) = Header::decode(&self.pending) {
            let Ok(len) = usize::try_from(header.len) else {
                return;
            };
            if self.pending.len() < head_len + len {
                return;
            }
            let payload: Vec<u8> = self.pending[head_len..head_len + len].to_vec();
            self.pending.drain(..head_len + len);
            self.print(&header, &payload);
        }
    }

    fn print(&self, header: &Header, payload: &[u8]) {
        let arrow = self.arrow;
        let opcode = match header.opcode {
            OpCode::Continuation => "continuation",
            OpCode::Text => "text",
            OpCode::Binary => "binary",
            OpCode::Close => "close",
            OpCode::Ping => "ping",
            OpCode::Pong => "pong",
        };
        let mask = match header.mask {
            Some(key) => format!("MASK=1 key={}", hex(&key).replace(' ', "")),
            None => "MASK=0".to_string(),
        };
        println!(
            "{arrow} frame FIN={} RSV={:03b} opcode={:#x} ({opcode}) {mask} length={}",
            u8::from(header.fin),
            header.rsv,
            header.opcode.as_u8(),
            header.len
        );
        let mut plain = payload.to_vec();
        if let Some(key) = header.mask {
            println!("{arrow}   payload as sent: {}", hex(payload));
            for (i, b) in plain.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
            println!("{arrow}   unmasked:        {}", hex(&plain));
        } else if !plain.is_empty() {
            println!("{arrow}   payload:         {}", hex(&plain));
        }
        if header.rsv & 0b100 != 0 {
            println!("{arrow}   (RSV1: compressed with permessage-deflate)");
        } else if header.opcode == OpCode::Close && plain.len() >= 2 {
            let code = u16::from_be_bytes([plain[0], plain[1]]);
            let reason = String::from_utf8_lossy(&plain[2..]);
            println!("{arrow}   close code {code}, reason {reason:?}");
        } else if let Ok(text) = std::str::from_utf8(&plain) {
            if !text.is_empty() && header.opcode != OpCode::Binary {
                println!("{arrow}   as text:         {text:?}");
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let new = buf.filled()[before..].to_vec();
            self.theirs.saw(&new);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.ours.saw(&buf[..n]);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
