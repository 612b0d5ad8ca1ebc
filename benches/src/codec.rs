//! Part 1: the in-memory codec on one core, and the physical limits.
//!
//! Decode: the server side turns client-masked frames into complete
//! messages. The input is a buffer of `frames` frames of one message each,
//! each with its own masking key; it reaches the decoder in "reads":
//! - `many`: reads of up to 64 KiB, cut anywhere (many frames per read for
//!   small messages; a large frame spans several reads),
//! - `one`: every read ends at a frame boundary (one frame per read).
//!
//! Each library reads the way it reads a socket: tungstenite and
//! fastwebsockets from a mock stream into their own buffers; rfc6455's core
//! gets each read's bytes through `handle_read`. Each copies every byte
//! once into its buffer, as a socket read would.
//!
//! Encode: the client side turns a message into a masked frame and writes
//! it into a sink that copies it, as a socket write would.
//!
//! The physical limit of one message is measured in the same run as the
//! work no decoder can avoid, done by the fastest kernel this machine has:
//! copy the payload, unmask it, and for text validate it as UTF-8.

use rfc6455::plumbing::Plumbing;
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{BufMut, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::harness::{fmt_gbps, fmt_ratio, gbps, size_name, time_interleaved, Budget, Rng, Table};

pub const SIZES: [usize; 5] = [16, 125, 1024, 64 << 10, 1 << 20];
/// The size of one read in `many` mode.
pub const READ_SIZE: usize = 64 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    Binary,
    Ascii,
    Mixed,
}

impl Content {
    pub const ALL: [Content; 3] = [Content::Binary, Content::Ascii, Content::Mixed];
    pub fn name(self) -> &'static str {
        match self {
            Content::Binary => "binary",
            Content::Ascii => "ascii text",
            Content::Mixed => "mixed text",
        }
    }
    pub fn is_text(self) -> bool {
        self != Content::Binary
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Reads of up to 64 KiB, cut anywhere.
    Many,
    /// One frame per read.
    One,
}

impl Feed {
    pub const ALL: [Feed; 2] = [Feed::Many, Feed::One];
    pub fn name(self) -> &'static str {
        match self {
            Feed::Many => "many/read",
            Feed::One => "one/read",
        }
    }
}

/// A payload of exactly `size` bytes. Text is valid UTF-8; mixed text
/// draws from several scripts (1- to 4-byte characters) and is padded
/// with ASCII spaces to the exact size.
pub fn payload(content: Content, size: usize) -> Vec<u8> {
    let mut rng = Rng::new(size as u64 * 31 + content as u64);
    match content {
        Content::Binary => {
            let mut v = vec![0; size];
            rng.fill(&mut v);
            v
        }
        Content::Ascii => {
            const WORDS: &[&str] = &[
                "lorem",
                "ipsum",
                "dolor",
                "sit",
                "amet",
                "consectetur",
                "adipiscing",
                "elit",
                "sed",
                "do",
                "eiusmod",
                "tempor",
                "{\"id\":",
                "42,",
                "\"ok\":true}",
                "0123456789",
            ];
            let mut s = String::with_capacity(size + 16);
            while s.len() < size {
                s.push_str(WORDS[rng.below(WORDS.len())]);
                s.push(' ');
            }
            s.truncate(size);
            s.into_bytes()
        }
        Content::Mixed => {
            const PIECES: &[&str] = &[
                "Grüße aus Köln. ",
                "Привет, мир! ",
                "γειά σου κόσμε ",
                "你好，世界。",
                "こんにちは、世界 ",
                "안녕하세요 세계 ",
                "مرحبا بالعالم ",
                "नमस्ते दुनिया ",
                "🙂🚀🌍 ",
                "Hello, world. ",
            ];
            let mut s = String::with_capacity(size + 32);
            let mut i = 0;
            loop {
                // The first pieces are not ASCII, so even 16 B is mixed.
                let piece = if i == 0 {
                    PIECES[1]
                } else {
                    PIECES[rng.below(PIECES.len())]
                };
                i += 1;
                let mut added = false;
                for c in piece.chars() {
                    if s.len() + c.len_utf8() > size {
                        break;
                    }
                    s.push(c);
                    added = true;
                }
                if !added || s.len() == size {
                    break;
                }
            }
            while s.len() < size {
                s.push(' ');
            }
            debug_assert_eq!(s.len(), size);
            s.into_bytes()
        }
    }
}

/// The number of messages in one pass: about 4 MiB of payload, at least 4
/// and at most 16,384 messages.
pub fn frames_per_pass(size: usize) -> usize {
    ((4 << 20) / size).clamp(4, 16384)
}

/// Appends a client frame (FIN, masked) carrying `payload` to `out`.
pub fn push_client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// The frames of one pass and the way they are cut into reads.
pub struct Input {
    pub content: Content,
    pub size: usize,
    pub template: Vec<u8>,
    pub frames: usize,
    pub wire: Vec<u8>,
    /// Where each frame's payload sits in `wire`, and its key.
    pub payloads: Vec<(usize, [u8; 4])>,
    /// The end offset of every read, per feed mode.
    pub many_ends: Vec<usize>,
    pub one_ends: Vec<usize>,
    /// The template repeated once per frame, unmasked (for the validators).
    pub plain: Vec<u8>,
}

impl Input {
    pub fn new(content: Content, size: usize, frames: usize) -> Input {
        let template = payload(content, size);
        if content.is_text() {
            assert!(std::str::from_utf8(&template).is_ok());
        }
        let opcode = if content.is_text() { 1 } else { 2 };
        let mut rng = Rng::new(0xC0FFEE ^ size as u64);
        let mut wire = Vec::with_capacity(frames * (size + 14));
        let mut payloads = Vec::with_capacity(frames);
        let mut one_ends = Vec::with_capacity(frames);
        for _ in 0..frames {
            let key = (rng.next_u64() as u32).to_ne_bytes();
            push_client_frame(&mut wire, opcode, &template, key);
            payloads.push((wire.len() - size, key));
            one_ends.push(wire.len());
        }
        let many_ends = (1..=wire.len().div_ceil(READ_SIZE))
            .map(|i| (i * READ_SIZE).min(wire.len()))
            .collect();
        let plain = template.repeat(frames);
        Input {
            content,
            size,
            template,
            frames,
            wire,
            payloads,
            many_ends,
            one_ends,
            plain,
        }
    }

    pub fn ends(&self, feed: Feed) -> &[usize] {
        match feed {
            Feed::Many => &self.many_ends,
            Feed::One => &self.one_ends,
        }
    }

    pub fn payload_bytes(&self) -> usize {
        self.frames * self.size
    }
}

// ----- mock transports -----

/// A stream that serves `wire` in reads that never cross an entry of `ends`.
pub struct MockRead<'a> {
    wire: &'a [u8],
    ends: &'a [usize],
    pos: usize,
    unit: usize,
}

impl<'a> MockRead<'a> {
    pub fn new(wire: &'a [u8], ends: &'a [usize]) -> Self {
        MockRead {
            wire,
            ends,
            pos: 0,
            unit: 0,
        }
    }
    /// The bytes of the next read of at most `max` bytes. After the last
    /// read it starts again from the beginning: a pass reads exactly one
    /// round, and some decoders do not lend their stream to be rewound.
    fn next_read(&mut self, max: usize) -> &'a [u8] {
        if self.unit == self.ends.len() {
            self.pos = 0;
            self.unit = 0;
        }
        let end = self.ends[self.unit];
        let n = max.min(end - self.pos);
        let out = &self.wire[self.pos..self.pos + n];
        self.pos += n;
        if self.pos == end {
            self.unit += 1;
        }
        out
    }
}

impl Read for MockRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let data = self.next_read(buf.len());
        buf[..data.len()].copy_from_slice(data);
        Ok(data.len())
    }
}

impl Write for MockRead<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for MockRead<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let data = this.next_read(buf.remaining());
        buf.put_slice(data);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MockRead<'_> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A write target that copies what it is given into a reused region, as
/// a socket write copies into the kernel. It keeps a count and the first
/// bytes of the last frame so the benchmark can check the output.
pub struct MockSink {
    region: Vec<u8>,
    pos: usize,
    pub written: usize,
}

impl MockSink {
    pub fn new(size: usize) -> Self {
        MockSink {
            region: vec![0; (64 << 10).max(size + 64)],
            pos: 0,
            written: 0,
        }
    }
    pub fn copy_in(&mut self, data: &[u8]) {
        if self.pos + data.len() > self.region.len() {
            self.pos = 0;
        }
        let n = data.len().min(self.region.len());
        self.region[self.pos..self.pos + n].copy_from_slice(&data[..n]);
        self.pos += n;
        self.written += data.len();
    }
    /// The last `n` bytes written (they must not have wrapped).
    pub fn tail(&self, n: usize) -> &[u8] {
        &self.region[self.pos - n..self.pos]
    }
}

impl Write for MockSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.copy_in(buf);
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if self.pos + total > self.region.len() {
            self.pos = 0;
        }
        for b in bufs {
            self.copy_in(b);
        }
        Ok(total)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for MockSink {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl AsyncRead for MockSink {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MockSink {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write(b))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write_vectored(bufs))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Polls a future that cannot wait (its I/O is in memory) to completion.
pub fn ready<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("an in-memory future returned Pending"),
    }
}

// ----- decoders -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lib {
    Rfc6455,
    Tungstenite,
    Tungstenite4k,
    Fastwebsockets,
}

pub const DECODERS: [Lib; 4] = [
    Lib::Rfc6455,
    Lib::Tungstenite,
    Lib::Tungstenite4k,
    Lib::Fastwebsockets,
];
pub const ENCODERS: [Lib; 3] = [Lib::Rfc6455, Lib::Tungstenite, Lib::Fastwebsockets];

pub fn tungstenite_config(lib: Lib) -> tungstenite::protocol::WebSocketConfig {
    let config = tungstenite::protocol::WebSocketConfig::default();
    if lib == Lib::Tungstenite4k {
        config.read_buffer_size(4096)
    } else {
        config
    }
}

/// One decoder, kept across passes (steady state). `pass` decodes every
/// frame of the input once and returns the number of payload bytes; with
/// `verify` it checks every message against the template.
#[allow(clippy::large_enum_variant)] // one per benchmark
pub enum Decoder<'a> {
    Rfc6455(rfc6455::Connection, &'a Input, Feed),
    Tungstenite(Box<tungstenite::WebSocket<MockRead<'a>>>, &'a Input),
    Fastwebsockets(
        Box<fastwebsockets::FragmentCollector<MockRead<'a>>>,
        &'a Input,
    ),
}

impl<'a> Decoder<'a> {
    pub fn new(lib: Lib, input: &'a Input, feed: Feed) -> Decoder<'a> {
        let stream = MockRead::new(&input.wire, input.ends(feed));
        match lib {
            Lib::Rfc6455 => Decoder::Rfc6455(
                rfc6455::Connection::new(rfc6455::Role::Server, rfc6455::Config::default()),
                input,
                feed,
            ),
            Lib::Tungstenite | Lib::Tungstenite4k => Decoder::Tungstenite(
                Box::new(tungstenite::WebSocket::from_raw_socket(
                    stream,
                    tungstenite::protocol::Role::Server,
                    Some(tungstenite_config(lib)),
                )),
                input,
            ),
            Lib::Fastwebsockets => Decoder::Fastwebsockets(
                Box::new(fastwebsockets::FragmentCollector::new(
                    fastwebsockets::WebSocket::after_handshake(
                        stream,
                        fastwebsockets::Role::Server,
                    ),
                )),
                input,
            ),
        }
    }

    pub fn pass(&mut self, verify: bool) -> usize {
        let mut bytes = 0;
        let mut messages = 0;
        let mut check = |data: &[u8], text: bool, input: &Input| {
            if verify {
                assert_eq!(text, input.content.is_text(), "message kind");
                assert!(data == input.template.as_slice(), "decoded payload differs");
            }
            bytes += data.len();
            messages += 1;
        };
        match self {
            Decoder::Rfc6455(conn, input, feed) => {
                // As the tokio adapter reads from a socket: straight into
                // the connection's receive buffer, asking for what
                // `read_size_hint` says; the mock cuts reads where the
                // feeding mode says, as it does for the peers.
                let mut mock = MockRead::new(&input.wire, input.ends(*feed));
                let mut read = 0;
                while read < input.wire.len() {
                    let size = conn.read_size_hint(READ_SIZE);
                    let data = mock.next_read(size);
                    conn.read_buffer(size).put_slice(data);
                    read += data.len();
                    while let Some(event) = conn.poll_event() {
                        match event {
                            rfc6455::Event::Message(m) => {
                                let text = m.kind() == rfc6455::MessageKind::Text;
                                check(m.as_bytes(), text, input)
                            }
                            other => panic!("rfc6455: unexpected event {other:?}"),
                        }
                    }
                }
            }
            Decoder::Tungstenite(ws, input) => {
                for _ in 0..input.frames {
                    match ws.read().expect("tungstenite read") {
                        tungstenite::Message::Binary(b) => check(&b, false, input),
                        tungstenite::Message::Text(t) => check(t.as_bytes(), true, input),
                        other => panic!("tungstenite: unexpected {other:?}"),
                    }
                }
            }
            Decoder::Fastwebsockets(ws, input) => {
                // The collector does not lend its stream: the mock is cyclic.
                for _ in 0..input.frames {
                    let frame = ready(ws.read_frame()).expect("fastwebsockets read");
                    let text = match frame.opcode {
                        fastwebsockets::OpCode::Text => true,
                        fastwebsockets::OpCode::Binary => false,
                        other => panic!("fastwebsockets: unexpected {other:?}"),
                    };
                    check(&frame.payload, text, input);
                }
            }
        }
        let frames = match self {
            Decoder::Rfc6455(_, i, _)
            | Decoder::Tungstenite(_, i)
            | Decoder::Fastwebsockets(_, i) => i.frames,
        };
        assert_eq!(messages, frames, "decoded message count");
        bytes
    }
}

// ----- encoders -----

#[allow(clippy::large_enum_variant)] // one per benchmark
pub enum Encoder<'a> {
    Rfc6455(rfc6455::Connection, MockSink, &'a Input),
    Tungstenite(
        Box<tungstenite::WebSocket<MockSink>>,
        &'a Input,
        tungstenite::Message,
    ),
    Fastwebsockets(Box<fastwebsockets::WebSocket<MockSink>>, &'a Input),
}

impl<'a> Encoder<'a> {
    pub fn new(lib: Lib, input: &'a Input) -> Encoder<'a> {
        let sink = MockSink::new(input.size + 14);
        match lib {
            Lib::Rfc6455 => Encoder::Rfc6455(
                rfc6455::Connection::new(rfc6455::Role::Client, rfc6455::Config::default()),
                sink,
                input,
            ),
            Lib::Tungstenite | Lib::Tungstenite4k => {
                let bytes = Bytes::from(input.template.clone());
                let message = if input.content.is_text() {
                    tungstenite::Message::Text(
                        tungstenite::Utf8Bytes::try_from(bytes).expect("template is UTF-8"),
                    )
                } else {
                    tungstenite::Message::Binary(bytes)
                };
                Encoder::Tungstenite(
                    Box::new(tungstenite::WebSocket::from_raw_socket(
                        sink,
                        tungstenite::protocol::Role::Client,
                        Some(tungstenite_config(lib)),
                    )),
                    input,
                    message,
                )
            }
            Lib::Fastwebsockets => Encoder::Fastwebsockets(
                Box::new(fastwebsockets::WebSocket::after_handshake(
                    sink,
                    fastwebsockets::Role::Client,
                )),
                input,
            ),
        }
    }

    /// Encodes every message of a pass; returns the payload bytes. With
    /// `verify`, unmasks the last frame written and checks it.
    pub fn pass(&mut self, verify: bool) -> usize {
        let (frames, size) = match self {
            Encoder::Rfc6455(_, _, i)
            | Encoder::Tungstenite(_, i, _)
            | Encoder::Fastwebsockets(_, i) => (i.frames, i.size),
        };
        for _ in 0..frames {
            match self {
                Encoder::Rfc6455(conn, sink, input) => {
                    if input.content.is_text() {
                        // SAFETY: the template was checked to be UTF-8 in Input::new.
                        let text = unsafe { std::str::from_utf8_unchecked(&input.template) };
                        conn.send_text(text).expect("rfc6455 send");
                    } else {
                        conn.send_binary(&input.template).expect("rfc6455 send");
                    }
                    let out = conn.pending_output();
                    let n = out.len();
                    sink.copy_in(out);
                    conn.consume_output(n);
                }
                Encoder::Tungstenite(ws, _, message) => {
                    ws.send(message.clone()).expect("tungstenite send");
                }
                Encoder::Fastwebsockets(ws, input) => {
                    let payload = fastwebsockets::Payload::Borrowed(&input.template);
                    let frame = if input.content.is_text() {
                        fastwebsockets::Frame::text(payload)
                    } else {
                        fastwebsockets::Frame::binary(payload)
                    };
                    ready(ws.write_frame(frame)).expect("fastwebsockets write");
                }
            }
        }
        if verify {
            let (sink, input): (&MockSink, &Input) = match self {
                Encoder::Rfc6455(_, sink, input) => (sink, input),
                Encoder::Tungstenite(ws, input, _) => (ws.get_ref(), input),
                // It does not lend its stream: see verify_fastwebsockets_encoder.
                Encoder::Fastwebsockets(..) => return frames * size,
            };
            assert_eq!(
                sink.written % (header_len(size, true) + size),
                0,
                "bytes written"
            );
            verify_client_frame(sink.tail(header_len(size, true) + size), input);
        }
        frames * size
    }
}

pub fn header_len(size: usize, masked: bool) -> usize {
    let ext = if size < 126 {
        0
    } else if size <= 0xFFFF {
        2
    } else {
        8
    };
    2 + ext + if masked { 4 } else { 0 }
}

/// Checks one masked client frame against the template.
pub fn verify_client_frame(frame: &[u8], input: &Input) {
    let opcode = if input.content.is_text() { 1 } else { 2 };
    assert_eq!(frame[0], 0x80 | opcode, "first header byte");
    assert!(frame[1] & 0x80 != 0, "client frames are masked");
    let h = header_len(input.size, true);
    let key: [u8; 4] = frame[h - 4..h].try_into().expect("4 bytes");
    let unmasked: Vec<u8> = frame[h..]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i & 3])
        .collect();
    assert!(unmasked == input.template, "encoded payload differs");
}

// ----- the physical limits -----

/// XOR with a 4-byte key over 8-byte words: what baseline x86-64 code does.
#[inline(never)]
pub fn xor_u64(data: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().expect("8 bytes")) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn xor_avx2_impl(data: &mut [u8], key: [u8; 4]) {
    use std::arch::x86_64::*;
    let k = _mm256_set1_epi32(i32::from_ne_bytes(key));
    let mut chunks = data.chunks_exact_mut(32);
    for c in &mut chunks {
        // SAFETY: `c` is 32 bytes; unaligned loads and stores.
        unsafe {
            let p = c.as_mut_ptr() as *mut __m256i;
            _mm256_storeu_si256(p, _mm256_xor_si256(_mm256_loadu_si256(p), k));
        }
    }
    xor_u64(chunks.into_remainder(), key);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn xor_avx512_impl(data: &mut [u8], key: [u8; 4]) {
    use std::arch::x86_64::*;
    let k = _mm512_set1_epi32(i32::from_ne_bytes(key));
    let mut chunks = data.chunks_exact_mut(64);
    for c in &mut chunks {
        // SAFETY: `c` is 64 bytes; unaligned loads and stores.
        unsafe {
            let p = c.as_mut_ptr() as *mut __m512i;
            _mm512_storeu_si512(p, _mm512_xor_si512(_mm512_loadu_si512(p), k));
        }
    }
    xor_u64(chunks.into_remainder(), key);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Xor {
    U64,
    Avx2,
    Avx512,
    Rfc6455,
}

impl Xor {
    pub fn available() -> Vec<Xor> {
        let mut v = vec![Xor::U64, Xor::Rfc6455];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(Xor::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Xor::Avx512);
            }
        }
        v
    }
    #[inline]
    pub fn apply(self, data: &mut [u8], key: [u8; 4]) {
        match self {
            Xor::U64 => xor_u64(data, key),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: only offered by `available` when the CPU has AVX2.
            Xor::Avx2 => unsafe { xor_avx2_impl(data, key) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: only offered by `available` when the CPU has AVX-512F.
            Xor::Avx512 => unsafe { xor_avx512_impl(data, key) },
            Xor::Rfc6455 => rfc6455::internals::apply_mask(data, key, 0),
            #[allow(unreachable_patterns)]
            _ => unreachable!(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validator {
    Std,
    Simdutf8,
    Rfc6455,
}

impl Validator {
    #[inline]
    pub fn check(self, data: &[u8]) -> bool {
        match self {
            Validator::Std => std::str::from_utf8(data).is_ok(),
            Validator::Simdutf8 => simdutf8::basic::from_utf8(data).is_ok(),
            Validator::Rfc6455 => {
                let mut v = rfc6455::internals::Utf8Validator::new();
                v.feed(data).is_ok() && v.is_complete()
            }
        }
    }
}

/// Copies every payload of the input into one reused buffer (the decode side).
fn copy_in_pass(input: &Input, dst: &mut [u8]) -> usize {
    for &(at, _) in &input.payloads {
        dst.copy_from_slice(&input.wire[at..at + input.size]);
        black_box(&mut *dst);
    }
    input.payload_bytes()
}

/// Unmasks every payload in place in a copy of the wire.
fn xor_pass(input: &Input, wire: &mut [u8], xor: Xor) -> usize {
    for &(at, key) in &input.payloads {
        xor.apply(&mut wire[at..at + input.size], key);
    }
    black_box(wire);
    input.payload_bytes()
}

fn validate_pass(input: &Input, validator: Validator) -> usize {
    for chunk in input.plain.chunks_exact(input.size) {
        assert!(validator.check(black_box(chunk)));
    }
    input.payload_bytes()
}

/// The least work of a decoder, one message at a time: copy the payload
/// out of the read, unmask it, validate it (text).
fn decode_limit_pass(
    input: &Input,
    dst: &mut [u8],
    xor: Xor,
    validator: Option<Validator>,
) -> usize {
    for &(at, key) in &input.payloads {
        dst.copy_from_slice(&input.wire[at..at + input.size]);
        xor.apply(dst, key);
        if let Some(v) = validator {
            assert!(v.check(dst));
        }
    }
    input.payload_bytes()
}

/// The least work of an encoder: copy the payload into the sink region
/// after a header, and mask it there.
pub fn encode_limit_pass(input: &Input, sink: &mut MockSink, xor: Xor, key: [u8; 4]) -> usize {
    let h = header_len(input.size, true);
    let mut head = [0u8; 14];
    head[0] = 0x82;
    for _ in 0..input.frames {
        sink.copy_in(&head[..h]);
        sink.copy_in(&input.template);
        let start = sink.pos - input.size;
        xor.apply(&mut sink.region[start..sink.pos], key);
    }
    input.payload_bytes()
}

// ----- the part -----

pub fn run(budget: Budget) {
    println!("\n## Part 1: in-memory codec, one core");
    crate::harness::pin_current_thread(Some(&[0]));
    let sizes: Vec<usize> = SIZES.to_vec();
    let xors = Xor::available();

    let mut limits = Table::new(
        "Physical limits, GB/s of payload (per message of the given size; same inputs as below)",
        &[
            "size",
            "memcpy",
            "XOR u64",
            "XOR avx2",
            "XOR avx512",
            "rfc6455 apply_mask",
            "std utf8 ascii",
            "std utf8 mixed",
            "simdutf8 ascii",
            "simdutf8 mixed",
            "rfc6455 Utf8Validator mixed",
        ],
    );
    let mut decode = Table::new(
        "Decode (server side: client-masked frames -> complete messages), GB/s of payload",
        &[
            "size",
            "content",
            "feed",
            "rfc6455",
            "tungstenite",
            "tungstenite 4k",
            "fastwebsockets",
            "limit",
            "ours/best peer",
            "ours/limit",
            "ours ns/msg",
            "best peer ns/msg",
        ],
    );
    let mut encode = Table::new(
        "Encode (client side: message -> masked frame copied into a sink), GB/s of payload",
        &[
            "size",
            "content",
            "rfc6455",
            "tungstenite",
            "fastwebsockets",
            "limit",
            "ours/best peer",
            "ours/limit",
            "ours ns/msg",
            "best peer ns/msg",
        ],
    );

    for &size in &sizes {
        let frames = if budget.quick {
            frames_per_pass(size).min(1024)
        } else {
            frames_per_pass(size)
        };
        let inputs: Vec<Input> = Content::ALL
            .iter()
            .map(|&c| Input::new(c, size, frames))
            .collect();
        let bin = &inputs[0];

        // The kernels, sampled in turns.
        let (ascii, mixed) = (&inputs[1], &inputs[2]);
        let mut dst = vec![0u8; size];
        let wire = std::cell::RefCell::new(bin.wire.clone());
        let kernel_times = {
            let mut copy = || copy_in_pass(bin, &mut dst);
            let mut xor_fns: Vec<Box<dyn FnMut() -> usize + '_>> = Vec::new();
            for x in [Xor::U64, Xor::Avx2, Xor::Avx512, Xor::Rfc6455] {
                if xors.contains(&x) {
                    let wire = &wire;
                    xor_fns.push(Box::new(move || xor_pass(bin, &mut wire.borrow_mut(), x)));
                } else {
                    xor_fns.push(Box::new(|| 0));
                }
            }
            let mut v0 = || validate_pass(ascii, Validator::Std);
            let mut v1 = || validate_pass(mixed, Validator::Std);
            let mut v2 = || validate_pass(ascii, Validator::Simdutf8);
            let mut v3 = || validate_pass(mixed, Validator::Simdutf8);
            let mut v4 = || validate_pass(mixed, Validator::Rfc6455);
            let mut all: Vec<&mut dyn FnMut() -> usize> = vec![&mut copy];
            for f in xor_fns.iter_mut() {
                all.push(f.as_mut());
            }
            all.extend([
                &mut v0 as &mut dyn FnMut() -> usize,
                &mut v1,
                &mut v2,
                &mut v3,
                &mut v4,
            ]);
            time_interleaved(budget, &mut all)
        };
        let rate = |t: Duration| gbps(bin.payload_bytes(), t);
        let xor_results: Vec<(Xor, Option<f64>)> = [Xor::U64, Xor::Avx2, Xor::Avx512, Xor::Rfc6455]
            .iter()
            .enumerate()
            .map(|(i, &x)| (x, xors.contains(&x).then(|| rate(kernel_times[1 + i]))))
            .collect();
        let best_xor = xor_results
            .iter()
            .filter(|(x, _)| *x != Xor::Rfc6455)
            .filter_map(|(x, r)| r.map(|r| (*x, r)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("u64 XOR always runs")
            .0;
        let [std_ascii, std_mixed, simd_ascii, simd_mixed, ours_mixed] =
            [5, 6, 7, 8, 9].map(|i| rate(kernel_times[i]));
        let fmt_opt = |r: Option<f64>| r.map_or("-".to_string(), fmt_gbps);
        limits.row(vec![
            size_name(size),
            fmt_gbps(rate(kernel_times[0])),
            fmt_opt(xor_results[0].1),
            fmt_opt(xor_results[1].1),
            fmt_opt(xor_results[2].1),
            fmt_opt(xor_results[3].1),
            fmt_gbps(std_ascii),
            fmt_gbps(std_mixed),
            fmt_gbps(simd_ascii),
            fmt_gbps(simd_mixed),
            fmt_gbps(ours_mixed),
        ]);

        for input in &inputs {
            // Decode: the limit (copy + fastest XOR + fastest validator)
            // and every decoder in both feed modes, sampled in turns.
            let best_validator = if !input.content.is_text() {
                None
            } else if (input.content == Content::Ascii && simd_ascii >= std_ascii)
                || (input.content == Content::Mixed && simd_mixed >= std_mixed)
            {
                Some(Validator::Simdutf8)
            } else {
                Some(Validator::Std)
            };
            let mut limit_pass = || decode_limit_pass(input, &mut dst, best_xor, best_validator);
            let mut decoders: Vec<Decoder> = Feed::ALL
                .iter()
                .flat_map(|&feed| DECODERS.iter().map(move |&lib| (lib, feed)))
                .map(|(lib, feed)| {
                    let mut d = Decoder::new(lib, input, feed);
                    d.pass(true);
                    d
                })
                .collect();
            let mut decoder_fns: Vec<Box<dyn FnMut() -> usize + '_>> = decoders
                .iter_mut()
                .map(|d| Box::new(move || d.pass(false)) as Box<dyn FnMut() -> usize>)
                .collect();
            let mut all: Vec<&mut dyn FnMut() -> usize> = vec![&mut limit_pass];
            for f in decoder_fns.iter_mut() {
                all.push(f.as_mut());
            }
            let times = time_interleaved(budget, &mut all);
            drop(decoder_fns);
            let limit = gbps(input.payload_bytes(), times[0]);
            for (k, feed) in Feed::ALL.iter().enumerate() {
                let rates = &times[1 + k * DECODERS.len()..1 + (k + 1) * DECODERS.len()];
                let ours = rates[0];
                let best_peer = *rates[1..].iter().min().expect("peers");
                let mut row = vec![
                    size_name(size),
                    input.content.name().into(),
                    feed.name().into(),
                ];
                for t in rates {
                    row.push(fmt_gbps(gbps(input.payload_bytes(), *t)));
                }
                row.push(fmt_gbps(limit));
                row.push(fmt_ratio(best_peer.as_secs_f64() / ours.as_secs_f64()));
                row.push(fmt_ratio(gbps(input.payload_bytes(), ours) / limit));
                row.push(format!("{:.0}", per_msg_ns(ours, input.frames)));
                row.push(format!("{:.0}", per_msg_ns(best_peer, input.frames)));
                decode.row(row);
            }

            // Encode, the same way.
            verify_fastwebsockets_encoder(input);
            let mut sink = MockSink::new(size + 14);
            let mut limit_pass = || encode_limit_pass(input, &mut sink, best_xor, [1, 2, 3, 4]);
            let mut encoders: Vec<Encoder> = ENCODERS
                .iter()
                .map(|&lib| {
                    let mut e = Encoder::new(lib, input);
                    e.pass(true);
                    e
                })
                .collect();
            let mut encoder_fns: Vec<Box<dyn FnMut() -> usize + '_>> = encoders
                .iter_mut()
                .map(|e| Box::new(move || e.pass(false)) as Box<dyn FnMut() -> usize>)
                .collect();
            let mut all: Vec<&mut dyn FnMut() -> usize> = vec![&mut limit_pass];
            for f in encoder_fns.iter_mut() {
                all.push(f.as_mut());
            }
            let times = time_interleaved(budget, &mut all);
            drop(encoder_fns);
            let enc_limit = gbps(input.payload_bytes(), times[0]);
            let rates = &times[1..];
            let ours = rates[0];
            let best_peer = *rates[1..].iter().min().expect("peers");
            let mut row = vec![size_name(size), input.content.name().into()];
            for t in rates {
                row.push(fmt_gbps(gbps(input.payload_bytes(), *t)));
            }
            row.push(fmt_gbps(enc_limit));
            row.push(fmt_ratio(best_peer.as_secs_f64() / ours.as_secs_f64()));
            row.push(fmt_ratio(gbps(input.payload_bytes(), ours) / enc_limit));
            row.push(format!("{:.0}", per_msg_ns(ours, input.frames)));
            row.push(format!("{:.0}", per_msg_ns(best_peer, input.frames)));
            encode.row(row);
        }
        eprintln!("  codec: {} done", size_name(size));
    }
    limits.note("memcpy: each payload copied out of the wire buffer into one reused buffer. XOR: unmasking in place, per message.");
    limits.note("avx2/avx512: runtime-detected kernels of this benchmark (the crates are built for baseline x86-64).");
    limits.note("Validators: one call per message over the plain text.");
    decode.note(
        "limit = copy + fastest XOR + (text) fastest validator, per message, measured in this run.",
    );
    decode.note("ours/best peer > 1: rfc6455 is faster. many/read: 64 KiB reads cut anywhere; one/read: one frame per read.");
    decode.note("tungstenite 4k: read_buffer_size = 4 KiB (its default is 128 KiB, zero-filled on every read).");
    encode
        .note("limit = copy into the sink + fastest XOR (no validation: a &str is already UTF-8).");
    encode.note("Every library copies the frame into the sink (a socket write); masks are random per frame (rand).");
    encode.note("fastwebsockets: Frame::binary/text(Payload::Borrowed(..)), as its docs show; masking makes it copy the payload to an owned Vec.");
    limits.print();
    decode.print();
    encode.print();
    crate::harness::pin_current_thread(None);
}

fn per_msg_ns(t: Duration, frames: usize) -> f64 {
    t.as_secs_f64() * 1e9 / frames as f64
}

/// fastwebsockets' WebSocket does not lend its stream, so its output is
/// checked by encoding one pass and taking the stream back.
fn verify_fastwebsockets_encoder(input: &Input) {
    let mut ws = fastwebsockets::WebSocket::after_handshake(
        MockSink::new(input.size + 14),
        fastwebsockets::Role::Client,
    );
    let payload = fastwebsockets::Payload::Borrowed(&input.template);
    let frame = if input.content.is_text() {
        fastwebsockets::Frame::text(payload)
    } else {
        fastwebsockets::Frame::binary(payload)
    };
    ready(ws.write_frame(frame)).expect("fastwebsockets write");
    let sink = ws.into_inner();
    assert_eq!(sink.written, header_len(input.size, true) + input.size);
    verify_client_frame(sink.tail(header_len(input.size, true) + input.size), input);
}

/// `bench loop ...`: one codec benchmark in a loop, for a profiler.
pub fn loop_main(args: &[String]) -> Option<()> {
    let [what, lib, size, content, feed, secs] = args else {
        return None;
    };
    let lib = match lib.as_str() {
        "rfc6455" => Lib::Rfc6455,
        "tungstenite" => Lib::Tungstenite,
        "tungstenite4k" => Lib::Tungstenite4k,
        "fastwebsockets" => Lib::Fastwebsockets,
        _ => return None,
    };
    let size: usize = size.parse().ok()?;
    let content = match content.as_str() {
        "binary" => Content::Binary,
        "ascii" => Content::Ascii,
        "mixed" => Content::Mixed,
        _ => return None,
    };
    let feed = match feed.as_str() {
        "many" => Feed::Many,
        "one" => Feed::One,
        _ => return None,
    };
    let secs: f64 = secs.parse().ok()?;
    let input = Input::new(content, size, frames_per_pass(size));
    let start = std::time::Instant::now();
    let mut passes = 0u64;
    match what.as_str() {
        "decode" => {
            let mut d = Decoder::new(lib, &input, feed);
            d.pass(true);
            while start.elapsed().as_secs_f64() < secs {
                black_box(d.pass(false));
                passes += 1;
            }
        }
        "encode" => {
            let mut e = Encoder::new(lib, &input);
            while start.elapsed().as_secs_f64() < secs {
                black_box(e.pass(false));
                passes += 1;
            }
        }
        _ => return None,
    }
    let per_msg = start.elapsed().as_secs_f64() * 1e9 / (passes * input.frames as u64) as f64;
    println!(
        "{passes} passes of {} messages, {per_msg:.0} ns/msg (wall clock)",
        input.frames
    );
    Some(())
}
