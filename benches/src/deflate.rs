//! Part 5: the compressed echo (permessage-deflate), in memory, one core.
//!
//! A client `Connection` and a server `Connection` with permessage-deflate
//! agreed (context takeover both ways, 15-bit windows, the library's
//! default level). One echo of a message:
//! - the client sends it (compress + frame + mask),
//! - the server decodes it (unmask + inflate + UTF-8 check for text) and
//!   sends it back (compress + frame),
//! - the client decodes the echo (inflate + UTF-8 check for text).
//!
//! The limit, in the same run, is the DEFLATE backend alone (flate2 with
//! zlib-rs, the library's backend and level) doing the work no
//! implementation can avoid: compress with a sync flush and inflate, once
//! per direction, with context takeover, no framing, no masking, no UTF-8
//! check, into buffers allocated once.
//!
//! The messages of a pass all differ (about 4 MiB of payload), so that
//! context takeover helps only as much as it does on real traffic.

use std::hint::black_box;
use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use rfc6455::{Config, Connection, DeflateConfig, DeflateParams, Event, MessageKind, Role};

use crate::harness::{
    fmt_gbps, fmt_rate, fmt_ratio, fmt_us, gbps, size_name, time_interleaved, Budget, Rng, Table,
};

/// GB/s with three decimals below 1 (DEFLATE runs at tens of MB/s to a
/// few hundred).
fn fmt_slow_gbps(v: f64) -> String {
    if v < 1.0 {
        format!("{v:.3}")
    } else {
        fmt_gbps(v)
    }
}

pub const SIZES: [usize; 3] = [1 << 10, 64 << 10, 1 << 20];
/// RSV1, "Per-Message Compressed" (RFC 7692 §6).
const RSV1: u8 = 0x40;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// JSON-like text: records with varying ids, names, numbers.
    Json,
    /// Random-ish binary with some redundancy: incompressible runs, skewed
    /// bytes and short repeats of recent data.
    Binary,
}

impl Content {
    pub const ALL: [Content; 2] = [Content::Json, Content::Binary];
    pub fn name(self) -> &'static str {
        match self {
            Content::Json => "json text",
            Content::Binary => "binary",
        }
    }
    pub fn kind(self) -> MessageKind {
        match self {
            Content::Json => MessageKind::Text,
            Content::Binary => MessageKind::Binary,
        }
    }
}

// ----- the messages -----

const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "maria.k",
    "j_smith", "x.wang", "o'neil", "zoë",
];
const EVENTS: &[&str] = &[
    "order.created",
    "order.paid",
    "order.shipped",
    "cart.updated",
    "user.login",
    "user.logout",
    "price.tick",
    "chat.message",
];
const CURRENCIES: &[&str] = &["EUR", "USD", "GBP", "JPY", "CHF"];
const WORDS: &[&str] = &[
    "fast", "delivery", "please", "thanks", "again", "gift", "wrap", "blue", "large", "door",
    "ring", "twice", "leave", "at", "the", "back",
];

/// One JSON record (an object), appended to `s`.
fn json_record(rng: &mut Rng, ts: &mut u64, id: &mut u64, s: &mut String) {
    use std::fmt::Write as _;
    *id += 1 + rng.below(7) as u64;
    *ts += rng.below(5000) as u64;
    let name = NAMES[rng.below(NAMES.len())];
    let _ = write!(
        s,
        "{{\"id\":{},\"user\":\"{}{}\",\"event\":\"{}\",\"ts\":{},\"amount\":{}.{:02},\"currency\":\"{}\",\"items\":[",
        *id,
        name,
        rng.below(1000),
        EVENTS[rng.below(EVENTS.len())],
        *ts,
        rng.below(100_000),
        rng.below(100),
        CURRENCIES[rng.below(CURRENCIES.len())],
    );
    for i in 0..1 + rng.below(4) {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"sku\":\"SKU-{}\",\"qty\":{},\"price\":{}.{:02}}}",
            rng.below(100_000),
            1 + rng.below(9),
            rng.below(1000),
            rng.below(100)
        );
    }
    let _ = write!(
        s,
        "],\"geo\":{{\"lat\":{}.{:04},\"lon\":{}.{:04}}},\"active\":{},\"note\":\"",
        rng.below(180) as i64 - 90,
        rng.below(10_000),
        rng.below(360) as i64 - 180,
        rng.below(10_000),
        rng.below(2) == 0,
    );
    for i in 0..rng.below(6) {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[rng.below(WORDS.len())]);
    }
    s.push_str("\"}");
}

/// `count` distinct JSON arrays of records, each exactly `size` bytes
/// (padded with spaces before the closing bracket).
fn json_messages(size: usize, count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(0x15_0A + size as u64);
    let (mut ts, mut id) = (1_717_171_717_000u64, 1_000_000u64);
    let mut record = String::new();
    (0..count)
        .map(|_| {
            let mut s = String::with_capacity(size);
            s.push('[');
            loop {
                record.clear();
                json_record(&mut rng, &mut ts, &mut id, &mut record);
                let sep = usize::from(s.len() > 1);
                if s.len() + sep + record.len() + 1 > size {
                    break;
                }
                if sep == 1 {
                    s.push(',');
                }
                s.push_str(&record);
            }
            while s.len() < size - 1 {
                s.push(' ');
            }
            s.push(']');
            assert_eq!(s.len(), size);
            s.into_bytes()
        })
        .collect()
}

/// A stream of `total` bytes, random-ish with some redundancy, cut into
/// messages of `size`: incompressible runs, runs of skewed bytes (small
/// integers, as binary encodings are full of), and short copies of data
/// from up to 8 KiB back (across message boundaries, which context
/// takeover can use).
fn binary_messages(size: usize, count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(0xB1_0B + size as u64);
    let total = size * count;
    let mut stream = Vec::with_capacity(total + 256);
    while stream.len() < total {
        let op = rng.below(10);
        if op < 4 || stream.len() < 64 {
            let n = 8 + rng.below(57);
            let at = stream.len();
            stream.resize(at + n, 0);
            rng.fill(&mut stream[at..]);
        } else if op < 7 {
            for _ in 0..8 + rng.below(57) {
                // Mostly small values: each of the 64 bits halves the odds.
                let v = rng.next_u64();
                stream.push((v.trailing_zeros() as u8) ^ ((v >> 60) as u8 & 3));
            }
        } else {
            let back = 1 + rng.below(stream.len().min(8 << 10));
            let n = 4 + rng.below(45);
            let from = stream.len() - back;
            for i in 0..n {
                stream.push(stream[from + i]);
            }
        }
    }
    stream.truncate(total);
    stream.chunks_exact(size).map(<[u8]>::to_vec).collect()
}

fn messages(content: Content, size: usize, count: usize) -> Vec<Vec<u8>> {
    match content {
        Content::Json => json_messages(size, count),
        Content::Binary => binary_messages(size, count),
    }
}

/// Messages in one pass: about 4 MiB of payload (1 MiB with `--quick`),
/// at least 2.
pub fn messages_per_pass(size: usize, quick: bool) -> usize {
    let total = if quick { 1 << 20 } else { 4 << 20 };
    (total / size).max(2)
}

pub struct Input {
    pub content: Content,
    pub size: usize,
    pub messages: Vec<Vec<u8>>,
}

impl Input {
    pub fn new(content: Content, size: usize, count: usize) -> Input {
        let messages = messages(content, size, count);
        if content == Content::Json {
            assert!(messages.iter().all(|m| std::str::from_utf8(m).is_ok()));
        }
        Input {
            content,
            size,
            messages,
        }
    }
    pub fn payload_bytes(&self) -> usize {
        self.messages.len() * self.size
    }
}

// ----- ours: two Connections -----

fn params() -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    }
}

fn deflate_config() -> DeflateConfig {
    DeflateConfig::default()
}

pub struct Ours<'a> {
    client: Connection,
    server: Connection,
    input: &'a Input,
    /// Bytes the client wrote in the last pass (frames, headers included).
    pub wire: usize,
}

impl<'a> Ours<'a> {
    pub fn new(input: &'a Input) -> Ours<'a> {
        let mut config = Config::default();
        config.deflate = Some(deflate_config());
        Ours {
            client: Connection::with_deflate(Role::Client, config.clone(), params()),
            server: Connection::with_deflate(Role::Server, config, params()),
            input,
            wire: 0,
        }
    }

    /// Echoes every message of the input once; returns the payload bytes.
    /// With `verify`, checks that both frames are compressed (RSV1) and
    /// that the server got, and the client got back, every byte sent.
    pub fn pass(&mut self, verify: bool) -> usize {
        let kind = self.input.content.kind();
        let mut bytes = 0;
        self.wire = 0;
        for sent in &self.input.messages {
            self.client.send_data(kind, sent).expect("client send");
            let out = self.client.pending_output();
            if verify {
                assert!(out[0] & RSV1 != 0, "the client's frame is not compressed");
            }
            self.wire += out.len();
            self.server.handle_read(out);
            let n = out.len();
            self.client.consume_output(n);

            let Some(Event::Message(got)) = self.server.poll_event() else {
                panic!("server: no message");
            };
            if verify {
                assert_eq!(got.kind(), kind, "server: message kind");
                assert!(got.as_bytes() == sent.as_slice(), "server: message differs");
            }
            self.server.send(&got).expect("server send");
            drop(got);
            let out = self.server.pending_output();
            if verify {
                assert!(out[0] & RSV1 != 0, "the server's frame is not compressed");
            }
            self.client.handle_read(out);
            let n = out.len();
            self.server.consume_output(n);

            let Some(Event::Message(back)) = self.client.poll_event() else {
                panic!("client: no echo");
            };
            assert_eq!(back.as_bytes().len(), sent.len(), "echo length");
            if verify {
                assert_eq!(back.kind(), kind, "client: echo kind");
                assert!(back.as_bytes() == sent.as_slice(), "echo differs");
            }
            bytes += back.as_bytes().len();
        }
        bytes
    }
}

// ----- the limit: flate2 alone -----

/// One direction's compressor and decompressor.
struct Direction {
    compress: Compress,
    decompress: Decompress,
}

impl Direction {
    fn new(level: u32) -> Direction {
        Direction {
            compress: Compress::new_with_window_bits(Compression::new(level), false, 15),
            decompress: Decompress::new_with_window_bits(false, 15),
        }
    }

    /// Compresses `data` with a sync flush into `wire` (cleared), then
    /// inflates it into `plain` (cleared). Both have room enough.
    fn run(&mut self, data: &[u8], wire: &mut Vec<u8>, plain: &mut Vec<u8>) {
        wire.clear();
        let mut input = data;
        loop {
            let before = self.compress.total_in();
            self.compress
                .compress_vec(input, wire, FlushCompress::Sync)
                .expect("compress");
            input = &input[(self.compress.total_in() - before) as usize..];
            if input.is_empty() && wire.len() < wire.capacity() {
                break;
            }
            wire.reserve(wire.capacity());
        }
        plain.clear();
        let mut input = &wire[..];
        loop {
            let before = self.decompress.total_in();
            self.decompress
                .decompress_vec(input, plain, FlushDecompress::Sync)
                .expect("inflate");
            input = &input[(self.decompress.total_in() - before) as usize..];
            if input.is_empty() && plain.len() < plain.capacity() {
                break;
            }
            plain.reserve(plain.capacity());
        }
    }
}

pub struct Limit<'a> {
    there: Direction,
    back: Direction,
    wire: Vec<u8>,
    at_server: Vec<u8>,
    at_client: Vec<u8>,
    input: &'a Input,
    /// Compressed bytes client to server in the last pass.
    pub wire_bytes: usize,
}

impl<'a> Limit<'a> {
    pub fn new(input: &'a Input) -> Limit<'a> {
        let level = deflate_config().level;
        let room = input.size + input.size / 8 + 1024;
        Limit {
            there: Direction::new(level),
            back: Direction::new(level),
            wire: Vec::with_capacity(room),
            at_server: Vec::with_capacity(room),
            at_client: Vec::with_capacity(room),
            input,
            wire_bytes: 0,
        }
    }

    pub fn pass(&mut self, verify: bool) -> usize {
        let mut bytes = 0;
        self.wire_bytes = 0;
        for sent in &self.input.messages {
            self.there.run(sent, &mut self.wire, &mut self.at_server);
            self.wire_bytes += self.wire.len();
            self.back
                .run(&self.at_server, &mut self.wire, &mut self.at_client);
            assert_eq!(self.at_client.len(), sent.len(), "limit: echo length");
            if verify {
                assert!(self.at_server == *sent, "limit: inflated message differs");
                assert!(self.at_client == *sent, "limit: echo differs");
            }
            bytes += self.at_client.len();
        }
        black_box(&self.at_client);
        bytes
    }
}

// ----- the part -----

pub fn run(budget: Budget) {
    println!("\n## Part 5: compressed echo (permessage-deflate), in memory, one core");
    crate::harness::pin_current_thread(Some(&[0]));
    let level = deflate_config().level;
    let mut table = Table::new(
        format!(
            "Echo of a compressed message: client send -> server decode + send -> client decode (context takeover, 15-bit windows, level {level})"
        ),
        &[
            "size",
            "content",
            "rfc6455 msgs/s",
            "rfc6455 GB/s",
            "limit msgs/s",
            "limit GB/s",
            "ours/limit",
            "ours us/msg",
            "limit us/msg",
            "wire ours",
            "wire limit",
        ],
    );
    for &size in &SIZES {
        for content in Content::ALL {
            let input = Input::new(content, size, messages_per_pass(size, budget.quick));
            let mut ours = Ours::new(&input);
            let mut limit = Limit::new(&input);
            // Verified passes first; they also warm the windows.
            ours.pass(true);
            limit.pass(true);
            let (wire_ours, wire_limit) = (ours.wire, limit.wire_bytes);
            let times = {
                let mut l = || limit.pass(false);
                let mut o = || ours.pass(false);
                time_interleaved(budget, &mut [&mut l, &mut o])
            };
            let n = input.messages.len() as f64;
            let (t_limit, t_ours) = (times[0], times[1]);
            let per_msg = |t: Duration| t.as_secs_f64() / n;
            let payload = input.payload_bytes();
            table.row(vec![
                size_name(size),
                content.name().into(),
                fmt_rate(1.0 / per_msg(t_ours)),
                fmt_slow_gbps(gbps(payload, t_ours)),
                fmt_rate(1.0 / per_msg(t_limit)),
                fmt_slow_gbps(gbps(payload, t_limit)),
                fmt_ratio(t_limit.as_secs_f64() / t_ours.as_secs_f64()),
                fmt_us(per_msg(t_ours) * 1e9),
                fmt_us(per_msg(t_limit) * 1e9),
                format!("{:.1}%", 100.0 * wire_ours as f64 / payload as f64),
                format!("{:.1}%", 100.0 * wire_limit as f64 / payload as f64),
            ]);
            eprintln!("  deflate: {} {} done", size_name(size), content.name());
        }
    }
    table.note("One echo = 2 compressions + 2 inflations of the message; GB/s and msgs/s count each message once.");
    table.note("limit = flate2 (zlib-rs, same level) alone: compress with a sync flush + inflate, per direction, context takeover, no framing/masking/UTF-8, buffers reused.");
    table.note("ours/limit < 1: time rfc6455 spends beyond the DEFLATE work. wire = client->server bytes / payload (ours: frames with headers; limit: DEFLATE with the 4-byte sync trailer).");
    table.note("Every echoed message is compared with the one sent before timing (both frames must carry RSV1); timed passes check every length.");
    table.note("No peer: tungstenite and fastwebsockets do not implement permessage-deflate.");
    table.print();
    crate::harness::pin_current_thread(None);
}

/// `bench loop deflate ours|limit SIZE json|binary SECONDS`, for a profiler.
pub fn loop_main(args: &[String]) -> Option<()> {
    let [which, size, content, secs] = args else {
        return None;
    };
    let size: usize = size.parse().ok()?;
    let content = match content.as_str() {
        "json" => Content::Json,
        "binary" => Content::Binary,
        _ => return None,
    };
    let secs: f64 = secs.parse().ok()?;
    let input = Input::new(content, size, messages_per_pass(size, false));
    let start = std::time::Instant::now();
    let mut passes = 0u64;
    match which.as_str() {
        "ours" | "rfc6455" => {
            let mut o = Ours::new(&input);
            o.pass(true);
            while start.elapsed().as_secs_f64() < secs {
                black_box(o.pass(false));
                passes += 1;
            }
        }
        "limit" => {
            let mut l = Limit::new(&input);
            l.pass(true);
            while start.elapsed().as_secs_f64() < secs {
                black_box(l.pass(false));
                passes += 1;
            }
        }
        _ => return None,
    }
    let per_msg =
        start.elapsed().as_secs_f64() * 1e9 / (passes.max(1) * input.messages.len() as u64) as f64;
    println!(
        "{passes} passes of {} echoes, {per_msg:.0} ns/echo (wall clock)",
        input.messages.len()
    );
    Some(())
}
