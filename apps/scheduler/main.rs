//! A page of appointment slots that anyone can book or cancel, the same in
//! every open browser: each change is stored in SQLite, then sent to every
//! connected page as one prepared message, and the pages update without a
//! reload.
//!
//! ```text
//! cargo run --manifest-path apps/Cargo.toml --bin scheduler -- [ADDR] [--db PATH] [--tls] [--origin URL] [--redis URL]
//! ```
//!
//! One tokio listener (ADDR, default 127.0.0.1:8082) serves the page on
//! `GET /` and upgrades `GET /ws` to WebSocket (only pages served from
//! here may connect: 403 for another Origin). The bookings live in
//! `scheduler.sqlite3` next to the binary unless `--db` says where, so a
//! restarted server still has them.
//!
//! What the WebSocket carries, as JSON text messages:
//!
//! - to a page that connects: `{"type":"state","slots":[...]}`, every slot
//!   as it is now, before any change (a page that reconnects starts over
//!   from it);
//! - to every page, after each change: `{"type":"slot","slot":{...},
//!   "action":"booked"|"cancelled","by":NAME}`;
//! - from a page: `{"type":"book","slot":ID,"name":NAME}` and
//!   `{"type":"cancel","slot":ID,"name":NAME}`;
//! - to that page alone, when its request cannot be done (the slot was
//!   booked a moment before by someone else, say):
//!   `{"type":"refused","slot":ID,"why":TEXT}`.
//!
//! Two bookings of one slot at once: one lock orders the changes, and the
//! update books only a slot that is still free, so exactly one wins and
//! the other page is told who was first.
//!
//! Several servers (`--redis URL`, all with the same `--db`): the SQLite
//! file stays the one source of truth, shared by the servers of one host
//! (its locks order their changes as the lock here orders this one's, and
//! a busy writer is waited for). After each change a server tells the
//! others through a Redis stream (`apps/support/bus.rs`) which slot
//! changed; each reads that slot back from the database and sends it to
//! its own pages, so a late or repeated notice can only show the slot as
//! it is. Redis away delays the other servers' changes, never a booking;
//! the pages are told, and when Redis is back every page gets the whole
//! state again.
//!
//! A page that stops reading is never waited for: every change is
//! *offered* to each connection ([`WriteHalf::offer`]), written at once if
//! its socket takes it and queued otherwise; a page more than
//! [`BACKLOG`] bytes behind is closed with 1013 (try again later) and
//! catches up from the state when it reconnects.

#[path = "../support/bus.rs"]
mod bus;
#[path = "../chat/site.rs"]
mod site;
#[path = "../../examples/support/stop.rs"]
mod stop;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bus::Bus;
use rfc6455::handshake::Request;
use rfc6455::tokio::{Offered, WhenFull, WriteHalf};
use rfc6455::Driver;
use rfc6455::{CloseCode, Config, Event, Message, PreparedMessage};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde_json::{json, Value};
use site::{Opened, Site, Stream};

/// The page: the slots as buttons, kept up to date over the WebSocket.
const PAGE: &str = include_str!("index.html");

/// How far (in bytes of output) a page may fall behind before it is closed
/// with 1013. A change is about 150 bytes, so this is hundreds of changes.
const BACKLOG: usize = 64 * 1024;

/// The days and times of the slots a new database starts with.
const DAYS: [&str; 3] = ["Mon", "Tue", "Wed"];
const TIMES: [&str; 4] = ["09:00", "10:00", "11:00", "14:00"];

/// The longest name kept; longer ones are cut.
const MAX_NAME: usize = 40;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = site::Args::parse("127.0.0.1:8082");
    if args.rest.iter().any(|a| a == "--help") {
        println!("usage: scheduler [ADDR] [--db PATH] [--tls] [--origin URL] [--redis URL]");
        return Ok(());
    }
    let db = match args.flag("--db") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()?.with_file_name("scheduler.sqlite3"),
    };
    let board = Board::open(&db)?;
    println!("scheduler: bookings in {}", db.display());
    let mut config = Config::default();
    // A heartbeat, so a vanished page is noticed: a Ping after 15 s of
    // silence, and a close (1001) after 45 s.
    config.timeouts.ping_interval = Some(Duration::from_secs(15));
    config.timeouts.idle = Some(Duration::from_secs(45));
    // A page sends only short requests.
    config.max_message_size = Some(1024);
    // Browsers offer permessage-deflate; accept it when the feature is on.
    // Without context takeover on our side a change is compressed once for
    // all the pages (see PreparedMessage).
    #[cfg(feature = "deflate")]
    {
        let mut deflate = rfc6455::DeflateConfig::default();
        deflate.server_no_context_takeover = true;
        config.deflate = Some(deflate);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut site = Site::bind(&args.addr, args.tls, false, config).await?;
        if let Some(origin) = args.flag("--origin") {
            site.allow_origin(origin);
        }
        println!("scheduler: listening on {}", site.url());
        println!("scheduler: WebSocket at {}", site.ws_url("/ws"));
        println!("scheduler: open {}/", site.url());
        let site = Arc::new(site);
        let scheduler = match args.flag("--redis") {
            Some(url) => {
                let (bus, changes) = Bus::start(url, "scheduler", None)?;
                println!("scheduler: one of several servers, through Redis at {url}");
                let scheduler = Arc::new(Scheduler::new(board, Some(bus)));
                tokio::spawn(follow(scheduler.clone(), changes));
                scheduler
            }
            None => Arc::new(Scheduler::new(board, None)),
        };
        // Stopped (Ctrl-C or SIGTERM): every page is told the server is
        // restarting (1012), so it reconnects, rather than finding its
        // connection gone (1006).
        stop::on_signals(CloseCode::SERVICE_RESTART, None);
        while let Some((tcp, peer)) = stop::unless_stopped(site.accept()).await {
            let (site, scheduler) = (site.clone(), scheduler.clone());
            tokio::spawn(async move {
                match site.open(tcp).await {
                    Ok(Opened::Http1(stream, request)) => {
                        serve(&site, &scheduler, stream, *request, peer).await
                    }
                    Ok(Opened::Http2(_)) => println!("{peer}: HTTP/2 is not served here"),
                    Err(err) => println!("{peer}: {err}"),
                }
            });
        }
        let closed = stop::wait_closed().await;
        let bus = scheduler.board().bus.clone();
        if let Some(bus) = bus {
            let _ = tokio::time::timeout(Duration::from_secs(2), bus.flush()).await;
        }
        stop::report(closed);
        Ok(())
    })
}

/// One HTTP request: the page, the WebSocket, or a 404.
async fn serve(
    site: &Site,
    scheduler: &Scheduler,
    stream: Stream,
    request: Request,
    peer: SocketAddr,
) {
    if let Some(mut ws) = site::page_or_upgrade(site, stream, request, peer, PAGE).await {
        ws.watch(&stop::SHUTDOWN);
        let (mut reader, writer) = ws.split();
        let id = scheduler.board().join(writer);
        println!("{peer}: page #{id} connected");
        let outcome = session(scheduler, id, &mut reader).await;
        scheduler.board().leave(id);
        println!("{peer}: page #{id} left: {outcome}");
    }
}

/// Reads one page's requests until it leaves. Reading is also what writes
/// the changes offered to this page when its socket could not take them
/// at once, answers Pings and runs the heartbeat.
async fn session(
    scheduler: &Scheduler,
    id: u64,
    reader: &mut rfc6455::tokio::ReadHalf<Stream>,
) -> String {
    loop {
        match reader.recv_event().await {
            Ok(Event::Message(message)) => match parse(&message) {
                Some(ask) => scheduler.board().apply(id, ask),
                None => {
                    // Not a request: this page leaves the board and is
                    // closed; reading goes on until its Close comes back.
                    let why = "expected JSON: book or cancel";
                    let writer = scheduler.board().leave(id);
                    if let Some(mut writer) = writer {
                        println!("page #{id}: closing with 1008: {why}");
                        let _ = writer.close(CloseCode::POLICY_VIOLATION, why).await;
                    }
                }
            },
            Ok(Event::Closed(closed)) => match &closed.error {
                Some(error) => return format!("{} ({error})", closed.code()),
                None => return format!("closed ({})", closed.code()),
            },
            Ok(_) => {} // Pings and Pongs: the connection answers them.
            Err(error) => return format!("connection lost: {error}"),
        }
    }
}

/// The shared state: the bookings and the pages that show them.
struct Scheduler {
    board: Mutex<Board>,
}

impl Scheduler {
    fn new(mut board: Board, bus: Option<Arc<Bus>>) -> Self {
        board.bus = bus;
        Scheduler {
            board: Mutex::new(board),
        }
    }

    /// The board, locked. Every change and every join happens under this
    /// lock, so each page sees the state, then the changes, in one order.
    fn board(&self) -> MutexGuard<'_, Board> {
        self.board.lock().expect("no panic while holding it")
    }
}

/// Follows the other servers (`--redis`): each slot they changed is read
/// back from the database and sent to this server's pages; when Redis
/// was away, every page gets the whole state again once it is back.
async fn follow(scheduler: Arc<Scheduler>, mut changes: tokio::sync::mpsc::Receiver<Value>) {
    let Some(bus) = scheduler.board().bus.clone() else {
        return;
    };
    let mut up = bus.up();
    let mut was_up = false;
    loop {
        tokio::select! {
            Some(change) = changes.recv() => scheduler.board().changed_elsewhere(&change),
            Ok(()) = up.changed() => {
                let now = *up.borrow_and_update();
                let mut board = scheduler.board();
                let notice = json!({ "type": "bus", "up": now });
                board.broadcast(&PreparedMessage::text(&notice.to_string()));
                if now && was_up {
                    board.resend_state();
                }
                was_up |= now;
            }
            else => return,
        }
    }
}

/// The database and the open pages' writing halves.
struct Board {
    db: rusqlite::Connection,
    pages: HashMap<u64, WriteHalf<Stream>>,
    next_id: u64,
    /// With `--redis`: the other servers.
    bus: Option<Arc<Bus>>,
}

/// What a page asks for.
#[derive(Debug, PartialEq)]
enum Ask {
    Book { slot: i64, name: String },
    Cancel { slot: i64, name: String },
}

impl Board {
    /// Opens (or creates) the database, with the slots of [`DAYS`] and
    /// [`TIMES`] when it is new.
    fn open(path: &std::path::Path) -> rusqlite::Result<Board> {
        let mut db = rusqlite::Connection::open(path)?;
        // Other servers may share the file: wait for their writes.
        db.busy_timeout(Duration::from_secs(5))?;
        // Writes survive a crash of this process at once and a power loss
        // after the next checkpoint; each change is one short transaction,
        // quick enough to do under the lock.
        //
        // Changing the journal mode takes a lock the busy timeout does not
        // wait for: two servers opening a new file at the same moment get
        // SQLITE_BUSY at once (seen in the browser test). Try again.
        let mut tries = 0;
        while let Err(error) = db.pragma_update(None, "journal_mode", "WAL") {
            let busy = error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy);
            tries += 1;
            if !busy || tries == 50 {
                return Err(error);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS slots (
                 id        INTEGER PRIMARY KEY,
                 day       TEXT NOT NULL,
                 time      TEXT NOT NULL,
                 booked_by TEXT
             )",
        )?;
        // One transaction, so of two servers starting at once only one
        // fills a new database.
        let fill = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let count: i64 = fill.query_row("SELECT count(*) FROM slots", [], |row| row.get(0))?;
        if count == 0 {
            for day in DAYS {
                for time in TIMES {
                    fill.execute(
                        "INSERT INTO slots (day, time) VALUES (?1, ?2)",
                        params![day, time],
                    )?;
                }
            }
        }
        fill.commit()?;
        Ok(Board {
            db,
            pages: HashMap::new(),
            next_id: 1,
            bus: None,
        })
    }

    /// Adds a page: it gets the whole state first, then every change
    /// after it (both under the lock, so none falls in between).
    fn join(&mut self, writer: WriteHalf<Stream>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let state = match self.slots() {
            Ok(slots) => json!({ "type": "state", "slots": slots }),
            Err(error) => json!({ "type": "error", "why": error.to_string() }),
        };
        self.pages.insert(id, writer);
        self.send(id, &PreparedMessage::text(&state.to_string()));
        if self.bus.as_ref().is_some_and(|bus| !*bus.up().borrow()) {
            let notice = json!({ "type": "bus", "up": false });
            self.send(id, &PreparedMessage::text(&notice.to_string()));
        }
        id
    }

    /// Every page gets the whole state again (after Redis was away: what
    /// the other servers changed meanwhile is in it).
    fn resend_state(&mut self) {
        match self.slots() {
            Ok(slots) => {
                let state = json!({ "type": "state", "slots": slots });
                self.broadcast(&PreparedMessage::text(&state.to_string()));
            }
            Err(error) => println!("database: {error}"),
        }
    }

    /// Another server changed a slot: its pages have the notice; this
    /// server's get the slot as the database has it now.
    fn changed_elsewhere(&mut self, change: &Value) {
        let (Some(slot), Some(action), Some(by)) = (
            change["slot"].as_i64(),
            change["action"].as_str(),
            change["by"].as_str(),
        ) else {
            return;
        };
        match self.slot(slot) {
            Ok(Some(row)) => {
                let event = json!({ "type": "slot", "slot": row, "action": action, "by": by });
                self.broadcast(&PreparedMessage::text(&event.to_string()));
            }
            Ok(None) => {}
            Err(error) => println!("database: {error}"),
        }
    }

    /// Removes a page from the board, giving back its writing half.
    fn leave(&mut self, id: u64) -> Option<WriteHalf<Stream>> {
        self.pages.remove(&id)
    }

    /// Does what page `id` asked, then tells every page (or only that one,
    /// when it could not be done).
    fn apply(&mut self, id: u64, ask: Ask) {
        let (slot, action, name) = match ask {
            Ask::Book { slot, name } => (slot, "booked", name),
            Ask::Cancel { slot, name } => (slot, "cancelled", name),
        };
        match self.change(slot, action, &name) {
            Ok(Ok(row)) => {
                println!("{name} {action} slot {slot}");
                let event = json!({ "type": "slot", "slot": row, "action": action, "by": name });
                self.broadcast(&PreparedMessage::text(&event.to_string()));
                if let Some(bus) = &self.bus {
                    let change = json!({ "slot": slot, "action": action, "by": name });
                    bus.publish(&change);
                }
            }
            Ok(Err(why)) => {
                let refused = json!({ "type": "refused", "slot": slot, "why": why });
                self.send(id, &PreparedMessage::text(&refused.to_string()));
            }
            Err(error) => {
                println!("database: {error}");
                let refused = json!({ "type": "refused", "slot": slot, "why": "database error" });
                self.send(id, &PreparedMessage::text(&refused.to_string()));
            }
        }
    }

    /// Books or cancels `slot` in the database. The update only books a
    /// free slot and only cancels a booked one, so of two bookings the
    /// second finds the slot taken; the inner error says why, for the page.
    fn change(
        &mut self,
        slot: i64,
        action: &str,
        name: &str,
    ) -> rusqlite::Result<Result<Value, String>> {
        let changed = if action == "booked" {
            self.db.execute(
                "UPDATE slots SET booked_by = ?1 WHERE id = ?2 AND booked_by IS NULL",
                params![name, slot],
            )?
        } else {
            self.db.execute(
                "UPDATE slots SET booked_by = NULL WHERE id = ?1 AND booked_by IS NOT NULL",
                params![slot],
            )?
        };
        let row = self.slot(slot)?;
        Ok(match (changed, row) {
            (1, Some(row)) => Ok(row),
            (_, None) => Err(format!("there is no slot {slot}")),
            (_, Some(row)) if action == "booked" => {
                let by = row["booked_by"].as_str().unwrap_or("someone");
                Err(format!("{} is already booked by {by}", slot_label(&row)))
            }
            (_, Some(row)) => Err(format!("{} is not booked", slot_label(&row))),
        })
    }

    /// Every slot, in order, as the page shows it.
    fn slots(&self) -> rusqlite::Result<Vec<Value>> {
        let mut query = self
            .db
            .prepare("SELECT id, day, time, booked_by FROM slots ORDER BY id")?;
        let rows = query.query_map([], row_json)?;
        rows.collect()
    }

    /// One slot, if there is one with this id.
    fn slot(&self, id: i64) -> rusqlite::Result<Option<Value>> {
        self.db
            .query_row(
                "SELECT id, day, time, booked_by FROM slots WHERE id = ?1",
                params![id],
                row_json,
            )
            .optional()
    }

    /// Offers `message` to every page; pages that are gone or too far
    /// behind are dropped from the board.
    fn broadcast(&mut self, message: &PreparedMessage) {
        let ids: Vec<u64> = self.pages.keys().copied().collect();
        for id in ids {
            self.send(id, message);
        }
    }

    /// Offers `message` to one page, without waiting for it.
    fn send(&mut self, id: u64, message: &PreparedMessage) {
        let Some(page) = self.pages.get(&id) else {
            return;
        };
        let policy = WhenFull::Close(CloseCode::TRY_AGAIN_LATER, "too far behind; reconnect");
        match page.offer(message, BACKLOG, policy) {
            Ok(Offered::Queued) => {}
            Ok(Offered::Closing) => {
                println!("page #{id}: more than {BACKLOG} bytes behind, closing with 1013");
                self.pages.remove(&id);
            }
            // Closing already (its reading half will say how it ended).
            Ok(Offered::Closed | Offered::Dropped) | Err(_) => {
                self.pages.remove(&id);
            }
        }
    }
}

/// A slot as people read it: "Mon 09:00".
fn slot_label(row: &Value) -> String {
    let field = |name: &str| row[name].as_str().unwrap_or("?").to_string();
    format!("{} {}", field("day"), field("time"))
}

/// A slot row as JSON.
fn row_json(row: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    Ok(json!({
        "id": row.get::<_, i64>(0)?,
        "day": row.get::<_, String>(1)?,
        "time": row.get::<_, String>(2)?,
        "booked_by": row.get::<_, Option<String>>(3)?,
    }))
}

/// Reads a page's request; `None` if it is not one.
fn parse(message: &Message) -> Option<Ask> {
    let value: Value = serde_json::from_str(message.as_text()?).ok()?;
    let slot = value.get("slot")?.as_i64()?;
    let name = clean_name(value.get("name").and_then(Value::as_str).unwrap_or(""));
    match value.get("type")?.as_str()? {
        "book" => Some(Ask::Book { slot, name }),
        "cancel" => Some(Ask::Cancel { slot, name }),
        _ => None,
    }
}

/// A name as stored and shown: printable, trimmed, at most [`MAX_NAME`]
/// characters, "someone" if nothing is left.
fn clean_name(name: &str) -> String {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    match name.trim() {
        "" => "someone".to_string(),
        name => name.to_string(),
    }
}
