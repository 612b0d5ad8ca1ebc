//! Several servers, one audience: what the clients of one server do
//! reaches the clients of the others through Redis (the chat and the
//! scheduler with `--redis URL`). Only the apps use Redis; the library
//! knows nothing of it.
//!
//! Every server appends its events to one Redis stream (`XADD`) and reads
//! everyone's from it (`XREAD BLOCK`), skipping its own: its own clients
//! had those at once, without the hop. A stream rather than pub/sub, so
//! that a server that lost Redis for a while reads on from the last entry
//! it saw and misses nothing published meanwhile. Every event carries its
//! server's id and a sequence number, so an event written twice (a write
//! retried after its reply was lost) is delivered once.
//!
//! Redis down or restarting never stops a server: what it publishes
//! meanwhile waits in a bounded outbox, the reader and the writer
//! reconnect with backoff, and [`Bus::up`] tells the app when events from
//! the other servers may be late.
//!
//! Presence ([`Bus::presence`]): who is connected where, as members of a
//! sorted set scored with their expiry time. Each server refreshes its
//! own members every tick; a crashed server's members expire, so the
//! others see them gone within a bounded time.

// The scheduler publishes and reads; only the chat keeps presence.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, AsyncConnectionConfig, Client, RedisResult};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

/// Writes waiting for Redis beyond this many are dropped (and logged):
/// an outage costs bounded memory.
const OUTBOX: usize = 10_000;
/// The stream keeps about this many entries: enough for a server that
/// reconnects after an outage of minutes at chat rates.
const STREAM_LEN: usize = 10_000;
/// The most writes sent to Redis in one round trip.
const BATCH: usize = 256;
/// How long one `XREAD` waits for new entries before asking again.
const BLOCK: Duration = Duration::from_secs(2);
/// The first and the longest wait between attempts to reach Redis.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

/// One server's end of the bus.
pub struct Bus {
    /// This server's id: random, so a restarted server is a new one.
    server: String,
    client: Client,
    stream: String,
    outbox: mpsc::Sender<Write>,
    next_seq: AtomicU64,
    health: Arc<Health>,
    /// What the reader hands over when it first connects, marked
    /// `"replayed": true` (what came before this server started, for the
    /// app's history).
    replay: Option<Replay>,
}

/// The stream's last `last` events that `keeps` keeps (the chat's
/// messages, not its joins and leaves), handed over when a server starts.
/// Counted among the kept ones only: a storm of joins and leaves after a
/// restart does not push the messages out of the replay.
pub struct Replay {
    /// How many.
    pub last: usize,
    /// Which events count.
    pub keeps: fn(&Value) -> bool,
}

/// What the writer task does, in order.
enum Write {
    /// `XADD` an event.
    Publish { seq: u64, event: String },
    /// `ZADD` members to a presence set, expiring `ttl` from now.
    Present {
        key: String,
        members: Vec<String>,
        ttl: Duration,
    },
    /// `ZREM` a member from a presence set.
    Absent { key: String, member: String },
    /// Nothing to Redis: answered once everything queued before it was
    /// written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl Bus {
    /// Starts the bus of `name` (the stream `NAME:events`) at the Redis of
    /// `url`: returns at once, even when Redis cannot be reached yet, with
    /// the events of the other servers as they arrive.
    ///
    /// `replay`: the stream's last events to hand over first, each marked
    /// `"replayed": true`, then `{"replayed_end": true}` (`None`: none, and
    /// no end marker).
    pub fn start(
        url: &str,
        name: &str,
        replay: Option<Replay>,
    ) -> RedisResult<(Arc<Bus>, mpsc::Receiver<Value>)> {
        let client = Client::open(url)?;
        let (outbox, writes) = mpsc::channel(OUTBOX);
        let (deliver, deliveries) = mpsc::channel(1024);
        let bus = Arc::new(Bus {
            server: format!("{:012x}", rand::random::<u64>() >> 16),
            client,
            stream: format!("{name}:events"),
            outbox,
            next_seq: AtomicU64::new(1),
            health: Arc::new(Health::new()),
            replay,
        });
        tokio::spawn(write(bus.clone(), writes));
        tokio::spawn(read(bus.clone(), deliver));
        Ok((bus, deliveries))
    }

    /// This server's id on the bus.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Whether both directions reach Redis now; `false` while events to
    /// and from the other servers are held up.
    pub fn up(&self) -> watch::Receiver<bool> {
        self.health.up.subscribe()
    }

    /// Sends `event` to the other servers (not to this one).
    pub fn publish(&self, event: &Value) {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        self.queue(Write::Publish {
            seq,
            event: event.to_string(),
        });
    }

    /// Marks `member` present in the set `key` now (and for `ttl`), ahead
    /// of the next refresh; in order with what is published.
    pub fn present(&self, key: &str, member: String, ttl: Duration) {
        self.queue(Write::Present {
            key: key.to_string(),
            members: vec![member],
            ttl,
        });
    }

    /// Waits until everything published so far is in Redis: before a
    /// server that stops exits, so that its last events (its users
    /// leaving) reach the others. Bound it with a timeout: while Redis is
    /// away it waits.
    pub async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.outbox.send(Write::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Removes `member` from the set `key` now, rather than at its expiry.
    pub fn absent(&self, key: &str, member: String) {
        self.queue(Write::Absent {
            key: key.to_string(),
            member,
        });
    }

    /// Keeps the members `local()` gives present in the sorted set `key`,
    /// refreshed every `ttl / 5`, and sends every live member of it (this
    /// server's too) after each refresh; nothing while Redis is away.
    pub fn presence<F>(
        self: &Arc<Self>,
        key: &str,
        ttl: Duration,
        local: F,
    ) -> mpsc::Receiver<Vec<String>>
    where
        F: Fn() -> Vec<String> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(4);
        let (bus, key) = (self.clone(), key.to_string());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ttl / 5);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut conn = None;
            loop {
                tick.tick().await;
                let members = local();
                if !members.is_empty() {
                    bus.queue(Write::Present {
                        key: key.clone(),
                        members,
                        ttl,
                    });
                }
                match live_members(&bus.client, &mut conn, &key).await {
                    Ok(members) => {
                        if tx.send(members).await.is_err() {
                            return;
                        }
                    }
                    Err(_) => conn = None, // the reader reports the outage
                }
            }
        });
        rx
    }

    fn queue(&self, write: Write) {
        if self.outbox.try_send(write).is_err() {
            eprintln!("bus: {OUTBOX} writes wait for Redis already; one more dropped");
        }
    }
}

/// Every member of the presence set `key` that has not expired; expired
/// ones are removed on the way.
async fn live_members(
    client: &Client,
    conn: &mut Option<MultiplexedConnection>,
    key: &str,
) -> RedisResult<Vec<String>> {
    if conn.is_none() {
        *conn = Some(connect(client).await?);
    }
    let conn = conn.as_mut().expect("connected above");
    let now = unix_ms(Duration::ZERO);
    let (_, members): (i64, Vec<String>) = redis::pipe()
        .zrembyscore(key, "-inf", now)
        .zrangebyscore(key, now, "+inf")
        .query_async(conn)
        .await?;
    Ok(members)
}

/// Milliseconds since 1970 at `ahead` from now: presence expiry times.
/// The servers' clocks are taken to agree within a fraction of the ttl.
fn unix_ms(ahead: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + ahead).as_millis() as u64
}

/// A connection with bounded waits: a Redis that stopped answering is
/// noticed, and an `XREAD` that blocks for [`BLOCK`] is not cut short.
async fn connect(client: &Client) -> RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(BLOCK + Duration::from_secs(3)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Waits that double from [`BACKOFF`]'s first to its longest.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(BACKOFF.0)
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(BACKOFF.1);
    }

    fn reset(&mut self) {
        self.0 = BACKOFF.0;
    }
}

/// Whether the reader and the writer reach Redis; [`Bus::up`] when both do.
struct Health {
    reader: AtomicBool,
    writer: AtomicBool,
    up: watch::Sender<bool>,
}

impl Health {
    fn new() -> Self {
        Health {
            reader: AtomicBool::new(false),
            writer: AtomicBool::new(true),
            up: watch::channel(false).0,
        }
    }

    fn set(&self, side: &AtomicBool, ok: bool, what: &str, error: Option<&redis::RedisError>) {
        side.store(ok, Ordering::Relaxed);
        let up = self.reader.load(Ordering::Relaxed) && self.writer.load(Ordering::Relaxed);
        let changed = self
            .up
            .send_if_modified(|was| std::mem::replace(was, up) != up);
        match (changed, error) {
            (true, Some(error)) => eprintln!("bus: Redis lost ({what}: {error}); retrying"),
            (true, None) if up => eprintln!("bus: connected to Redis"),
            _ => {}
        }
    }
}

/// The writer: everything queued, in order, in batches of up to [`BATCH`]
/// commands sent as one pipeline (one round trip to Redis for all that
/// waited, rather than one each), each batch retried until Redis takes it.
async fn write(bus: Arc<Bus>, mut writes: mpsc::Receiver<Write>) {
    let health = &bus.health;
    let mut conn = None;
    let mut backoff = Backoff::new();
    let mut batch = Vec::with_capacity(BATCH);
    while writes.recv_many(&mut batch, BATCH).await > 0 {
        loop {
            match write_batch(&bus, &mut conn, &batch).await {
                Ok(()) => {
                    backoff.reset();
                    health.set(&health.writer, true, "write", None);
                    for write in batch.drain(..) {
                        if let Write::Flush(done) = write {
                            let _ = done.send(());
                        }
                    }
                    break;
                }
                Err(error) => {
                    conn = None;
                    health.set(&health.writer, false, "write", Some(&error));
                    backoff.wait().await;
                }
            }
        }
        batch.clear();
    }
}

/// Writes a batch as one pipeline. Retried whole after a failure: an
/// event written twice is delivered once (its server and sequence
/// number), and presence commands say the same thing twice.
async fn write_batch(
    bus: &Bus,
    conn: &mut Option<MultiplexedConnection>,
    batch: &[Write],
) -> RedisResult<()> {
    if conn.is_none() {
        *conn = Some(connect(&bus.client).await?);
    }
    let conn = conn.as_mut().expect("connected above");
    if batch.iter().all(|write| matches!(write, Write::Flush(_))) {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for write in batch {
        match write {
            Write::Publish { seq, event } => {
                let fields = [
                    ("server", bus.server.as_str()),
                    ("seq", &seq.to_string()),
                    ("event", event),
                ];
                let maxlen = redis::streams::StreamMaxlen::Approx(STREAM_LEN);
                pipe.xadd_maxlen(&bus.stream, maxlen, "*", &fields).ignore();
            }
            Write::Present { key, members, ttl } => {
                let expiry = unix_ms(*ttl);
                let scored: Vec<(u64, &String)> = members.iter().map(|m| (expiry, m)).collect();
                pipe.zadd_multiple(key, &scored).ignore();
            }
            Write::Absent { key, member } => {
                pipe.zrem(key, member).ignore();
            }
            Write::Flush(_) => {}
        }
    }
    pipe.query_async(conn).await
}

/// The reader: every entry after the last one seen, from the other
/// servers, once each.
async fn read(bus: Arc<Bus>, deliver: mpsc::Sender<Value>) {
    let health = &bus.health;
    // The id of the last entry seen; at the start, the stream's newest
    // (what came before this server started is not its business).
    let mut last: Option<String> = None;
    // The highest sequence number seen from each server.
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut backoff = Backoff::new();
    let mut tries = 0;
    loop {
        let error = match read_some(&bus, &mut last, &mut seen, &deliver, health).await {
            Ok(()) => return, // the app stopped listening
            Err(error) => error,
        };
        tries += 1;
        if tries == 1 && last.is_none() {
            eprintln!("bus: cannot reach Redis yet ({error}); retrying");
        }
        // An attempt that got through (and read until Redis failed) starts
        // the waits over; one that never connected keeps doubling them.
        if health.reader.load(Ordering::Relaxed) {
            backoff.reset();
        }
        health.set(&health.reader, false, "read", Some(&error));
        backoff.wait().await;
    }
}

/// A stream entry's server, sequence number and event, if it has them.
fn fields(entry: &redis::streams::StreamId) -> Option<(String, u64, String)> {
    Some((entry.get("server")?, entry.get("seq")?, entry.get("event")?))
}

/// Reads until Redis fails (the error) or the app stops listening.
async fn read_some(
    bus: &Bus,
    last: &mut Option<String>,
    seen: &mut HashMap<String, u64>,
    deliver: &mpsc::Sender<Value>,
    health: &Health,
) -> RedisResult<()> {
    let mut conn = connect(&bus.client).await?;
    if last.is_none() {
        // Read on from the newest entry; what `replay` asks for before it
        // is handed over first.
        let newest: StreamRangeReply = conn.xrevrange_count(&bus.stream, "+", "-", 1).await?;
        let newest = newest
            .ids
            .first()
            .map_or("0-0".to_string(), |e| e.id.clone());
        if let Some(replay) = &bus.replay {
            for event in replayed(&mut conn, &bus.stream, &newest, replay, seen).await? {
                if deliver.send(event).await.is_err() {
                    return Ok(());
                }
            }
            // The end of the replay: what follows is live.
            let end = serde_json::json!({ "replayed_end": true });
            if deliver.send(end).await.is_err() {
                return Ok(());
            }
        }
        *last = Some(newest);
    }
    health.set(&health.reader, true, "read", None);
    let options = StreamReadOptions::default()
        .block(BLOCK.as_millis() as usize)
        .count(256);
    loop {
        let after = last.clone().expect("set above");
        let reply: StreamReadReply = conn
            .xread_options(&[&bus.stream], &[&after], &options)
            .await?;
        for entry in reply.keys.into_iter().flat_map(|key| key.ids) {
            *last = Some(entry.id.clone());
            let Some((server, seq, event)) = fields(&entry) else {
                continue;
            };
            let newest = seen.entry(server.clone()).or_default();
            if server == bus.server || seq <= *newest {
                continue;
            }
            *newest = seq;
            let Ok(event) = serde_json::from_str(&event) else {
                continue;
            };
            if deliver.send(event).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// The events `replay` asks for, oldest first, each marked `"replayed":
/// true`: read back from `newest` a page at a time until there are enough
/// or the stream's start. Also notes each server's newest sequence number
/// in `seen`.
async fn replayed(
    conn: &mut MultiplexedConnection,
    stream: &str,
    newest: &str,
    replay: &Replay,
    seen: &mut HashMap<String, u64>,
) -> RedisResult<Vec<Value>> {
    const PAGE: usize = 1000;
    let mut kept = Vec::new();
    let mut end = newest.to_string();
    // The stream is trimmed near STREAM_LEN; reading it all back is the
    // most a start can cost.
    for _ in 0..=STREAM_LEN / PAGE + 1 {
        if kept.len() >= replay.last {
            break;
        }
        let page: StreamRangeReply = conn.xrevrange_count(stream, &end, "-", PAGE).await?;
        for entry in &page.ids {
            let Some((server, seq, event)) = fields(entry) else {
                continue;
            };
            seen.entry(server).or_insert(seq);
            let Ok(mut event) = serde_json::from_str::<Value>(&event) else {
                continue;
            };
            if kept.len() < replay.last && (replay.keeps)(&event) {
                if let Value::Object(fields) = &mut event {
                    fields.insert("replayed".to_string(), Value::Bool(true));
                }
                kept.push(event);
            }
        }
        match page.ids.last() {
            // The next page ends just before this one's oldest entry.
            Some(oldest) if page.ids.len() == PAGE => end = format!("({}", oldest.id),
            _ => break,
        }
    }
    kept.reverse();
    Ok(kept)
}
