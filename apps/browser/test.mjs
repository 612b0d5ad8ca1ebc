// End-to-end tests of the chat, ticker and scheduler apps in a real browser:
// Debian's Chromium, driven by playwright-core. apps/browser/run builds
// and starts the servers and passes their addresses:
//
//   CHAT_URL, CHAT_TLS_URL, TICKER_URL, TICKER_TLS_URL  (http[s]://127.0.0.1:PORT)
//   CHAT_TOKEN   the token the chat servers were started with
//   HEARTBEAT    the chat's --heartbeat, in seconds
//   OUTPUT       where screenshots go
//   CHAT_TLS_LOG the wss:// chat server's log (which protocol each
//                WebSocket came over)
//   CHAT_AXUM_URL the chat served by axum with our extractor (built with
//                the axum feature; empty otherwise)
//   SCHEDULER_BIN the scheduler app, which this script starts (and
//                restarts) itself, its database in OUTPUT
//   CHAT_BIN     the chat app, which the cluster checks start twice
//   REDIS_SERVER Debian's redis-server: when set, the chat and the scheduler
//                also run as two servers each joined through a Redis this
//                script starts, restarts and stops itself
//   HAPROXY, NGINX  Debian's haproxy and nginx: when set (with REDIS_SERVER),
//                the two chat servers also run behind each balancer, with
//                the configurations in deploy/, and are restarted in turn
//   DEPLOY       the deploy/ folder
//
// One line per check, then "N passed, N failed"; the exit code is 1 if any
// check failed.

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync, createWriteStream } from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import tls from "node:tls";
import crypto from "node:crypto";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run apps/browser/run)`);
  return value;
};
const CHAT_URL = env("CHAT_URL");
const CHAT_TLS_URL = env("CHAT_TLS_URL");
const TICKER_URL = env("TICKER_URL");
const TICKER_TLS_URL = env("TICKER_TLS_URL");
const TOKEN = env("CHAT_TOKEN");
const HEARTBEAT = Number(env("HEARTBEAT"));
const OUTPUT = env("OUTPUT");
// The features the apps were built with (apps/browser/run passes them on).
const FEATURES = (process.env.CARGO_FEATURES || "").split(/[\s,]+/);
const DEFLATE = FEATURES.includes("deflate");
// Built with http2, the wss:// chat offers h2 in ALPN and advertises
// SETTINGS_ENABLE_CONNECT_PROTOCOL.
const HTTP2 = FEATURES.includes("http2");
const CHAT_TLS_LOG = env("CHAT_TLS_LOG");
mkdirSync(OUTPUT, { recursive: true });

// The flags of the machine notes: no network but loopback, no first-run UI,
// no background services, a fresh profile per browser.
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const VIEWPORT = { width: 640, height: 600 };

let passed = 0;
let failed = 0;

async function check(name, body) {
  const started = Date.now();
  try {
    const detail = await body();
    passed += 1;
    const ms = Date.now() - started;
    console.log(`ok   ${name}${detail ? ` (${detail})` : ""} [${ms} ms]`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}: ${String(error.message || error).split("\n")[0]}`);
  }
}

/// A browser with a profile of its own, removed at the end.
async function launch(extraFlags = []) {
  const profile = mkdtempSync(join(tmpdir(), "rfc6455-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [...FLAGS, ...extraFlags],
    viewport: VIEWPORT,
    ignoreHTTPSErrors: extraFlags.includes("--ignore-certificate-errors"),
    timeout: 30000,
  });
  context.setDefaultTimeout(10000);
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/// Opens a tab and keeps what its console says, for the failure messages.
async function openTab(context, url) {
  const page = await context.newPage();
  page.consoleLines = [];
  page.on("console", (m) => page.consoleLines.push(m.text()));
  page.on("pageerror", (e) => page.consoleLines.push(`page error: ${e.message}`));
  await page.goto(url);
  return page;
}

/// Waits until `tab`'s log has an entry with `text`; `ms` bounds the wait.
async function waitForLog(tab, text, ms = 3000, selector = "#log li") {
  try {
    await tab.waitForFunction(
      ([sel, t]) => [...document.querySelectorAll(sel)].some((li) => li.textContent.includes(t)),
      [selector, text],
      { timeout: ms, polling: 20 },
    );
  } catch {
    const log = await tab.$$eval(selector, (lis) => lis.map((li) => li.textContent)).catch(() => []);
    throw new Error(`no "${text}" within ${ms} ms; the log has: ${JSON.stringify(log.slice(-6))}`);
  }
}

async function waitForStatus(tab, cls, text, ms = 5000) {
  try {
    await tab.waitForFunction(
      ([c, t]) => {
        const s = document.getElementById("status");
        return s.className === c && s.textContent.includes(t);
      },
      [cls, text],
      { timeout: ms, polling: 20 },
    );
  } catch {
    const status = await tab.$eval("#status", (s) => `${s.className}: ${s.textContent}`).catch(() => "?");
    throw new Error(`status is not ${cls} with "${text}" within ${ms} ms; it is "${status}"`);
  }
  return tab.$eval("#status", (s) => s.textContent);
}

/// A WebSocket upgrade by hand, outside the browser: for a foreign Origin
/// and for a client that goes silent. Resolves with the status line and the
/// socket, still open.
function rawUpgrade(base, path, headers = {}) {
  const url = new URL(base);
  const options = { host: url.hostname, port: Number(url.port) };
  return new Promise((resolve, reject) => {
    const socket = url.protocol === "https:"
      ? tls.connect({ ...options, rejectUnauthorized: false })
      : net.connect(options);
    const timer = setTimeout(() => { socket.destroy(); reject(new Error("no response in 5 s")); }, 5000);
    socket.once("error", (e) => { clearTimeout(timer); reject(e); });
    socket.once(url.protocol === "https:" ? "secureConnect" : "connect", () => {
      const key = crypto.randomBytes(16).toString("base64");
      const lines = [
        `GET ${path} HTTP/1.1`, `Host: ${url.host}`, "Upgrade: websocket", "Connection: Upgrade",
        `Sec-WebSocket-Key: ${key}`, "Sec-WebSocket-Version: 13",
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      socket.write(lines.join("\r\n") + "\r\n\r\n");
    });
    let head = "";
    const onData = (chunk) => {
      head += chunk.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      clearTimeout(timer);
      socket.off("data", onData);
      // A silent client: stop reading, so nothing is answered, not even Pings.
      socket.pause();
      resolve({ status: Number(head.split(" ")[1]), head: head.slice(0, end), body: head.slice(end + 4), socket });
    };
    socket.on("data", onData);
  });
}

/// Both tabs' screenshots, side by side with captions, as one PNG.
async function sideBySide(context, tabs, file) {
  const shots = [];
  for (const { page, caption } of tabs) {
    shots.push({ caption, data: (await page.screenshot()).toString("base64") });
  }
  const page = await context.newPage();
  await page.setViewportSize({ width: VIEWPORT.width * 2 + 60, height: VIEWPORT.height + 70 });
  const figures = shots.map((s) =>
    `<figure><figcaption>${s.caption}</figcaption><img src="data:image/png;base64,${s.data}"></figure>`).join("");
  await page.setContent(`<!doctype html><style>
      body { margin: 0; padding: 14px; display: flex; gap: 20px; background: #5b6475; font: 14px system-ui; }
      figure { margin: 0; } figcaption { color: #fff; margin-bottom: 6px; }
      img { display: block; box-shadow: 0 2px 10px #0006; }
    </style>${figures}`);
  await page.screenshot({ path: file, fullPage: true });
  await page.close();
}

/// The chat checks, over ws:// or wss://.
async function chatSuite(label, base, foreignBase, extraFlags) {
  const browser = await launch(extraFlags);
  const { context } = browser;
  const url = (name, token = TOKEN) =>
    `${base}/?${token === null ? "" : `token=${encodeURIComponent(token)}&`}name=${name}`;
  const wsScheme = base.startsWith("https:") ? "wss:" : "ws:";
  let alice, bob;
  try {
    await check(`${label}: two tabs connect and see each other join`, async () => {
      alice = await openTab(context, url("alice"));
      await waitForStatus(alice, "open", `${wsScheme}//`);
      bob = await openTab(context, url("bob"));
      await waitForStatus(bob, "open", `${wsScheme}//`);
      await waitForLog(alice, "bob joined");
      await waitForLog(bob, "you joined as bob");
      // Chromium offers permessage-deflate: it must be agreed exactly when
      // the apps are built with the deflate feature.
      const extensions = await bob.evaluate(() => window.chat.socket.extensions);
      if (DEFLATE !== extensions.includes("permessage-deflate")) {
        throw new Error(`built ${DEFLATE ? "with" : "without"} deflate, but the browser reports extensions "${extensions}"`);
      }
      return `extensions "${extensions}"; status: ${await bob.$eval("#status", (s) => s.textContent)}`;
    });

    if (wsScheme === "wss:") {
      await check(`${label}: the WebSockets travelled over ${HTTP2 ? "HTTP/2 streams (RFC 8441)" : "HTTP/1.1"}`, async () => {
        // The browser's side: the protocol the page came over.
        const page = await bob.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
        // The server's side: the log line of each accepted WebSocket.
        const log = readFileSync(CHAT_TLS_LOG, "utf8");
        const count = (re) => (log.match(re) || []).length;
        const overH2 = count(/\/ws: upgraded \(HTTP\/2 extended CONNECT\)/g);
        const overH1 = count(/\/ws: upgraded \(HTTP\/1\.1\)/g);
        const want = HTTP2 ? ["h2", 2, 0] : ["http/1.1", 0, 2];
        if (page !== want[0] || overH2 !== want[1] || overH1 !== want[2]) {
          throw new Error(`page over ${page}, server accepted ${overH2} WebSockets over HTTP/2 and ${overH1} over HTTP/1.1; expected ${want}`);
        }
        return `page over ${page}; the server accepted ${overH2} over HTTP/2 extended CONNECT, ${overH1} over HTTP/1.1 Upgrade`;
      });
    }

    await check(`${label}: a message sent in one tab appears in the other within a second`, async () => {
      await alice.fill("#input", "Hello from alice's tab");
      const sent = Date.now();
      await alice.press("#input", "Enter");
      await waitForLog(bob, "Hello from alice's tab", 1000);
      const first = Date.now() - sent;
      await bob.fill("#input", "And hello back from bob");
      const sent2 = Date.now();
      await bob.press("#input", "Enter");
      await waitForLog(alice, "And hello back from bob", 1000);
      return `alice to bob ${first} ms, bob to alice ${Date.now() - sent2} ms`;
    });

    await check(`${label}: the typing indicator shows in the other tab`, async () => {
      await bob.locator("#input").pressSequentially("I am typing a rep", { delay: 30 });
      await waitForLog(alice, "bob is typing...", 2000, "#typing");
      return await alice.$eval("#typing", (t) => `alice sees "${t.textContent}"`);
    });

    await check(`${label}: screenshot of the two chat tabs side by side`, async () => {
      const suffix = label.includes("wss") ? "-tls" : label.includes("axum") ? "-axum" : "";
      const file = join(OUTPUT, `chat-two-tabs${suffix}.png`);
      await sideBySide(context, [
        { page: alice, caption: `Tab 1: alice, ${base}/ (bob is typing)` },
        { page: bob, caption: `Tab 2: bob, ${base}/` },
      ], file);
      return file;
    });

    await check(`${label}: a dead client is dropped by the heartbeat (leave notice)`, async () => {
      const ghost = await rawUpgrade(base, `/ws?token=${TOKEN}&name=ghost`);
      if (ghost.status !== 101) throw new Error(`expected 101, got ${ghost.head}`);
      try {
        await waitForLog(alice, "ghost joined");
        const started = Date.now();
        // Silent for three heartbeats, then the closing handshake times out.
        await waitForLog(alice, "ghost left (dropped: no answer to the heartbeat)", (HEARTBEAT * 6 + 5) * 1000);
        return `dropped after ${((Date.now() - started) / 1000).toFixed(1)} s with a ${HEARTBEAT} s heartbeat`;
      } finally {
        ghost.socket.destroy();
      }
    });

    await check(`${label}: closing one tab gives a leave notice in the other`, async () => {
      await bob.close();
      // Over HTTP/1.1 Chromium sends its Close frame (1001, going away);
      // over HTTP/2 it resets the tab's stream (RST_STREAM CANCEL) without
      // one: the server sees the reset, as a TCP reset, and frees the stream.
      const over2 = HTTP2 && wsScheme === "wss:";
      await waitForLog(alice, over2 ? "bob left (connection lost: I/O error: the peer reset the HTTP/2 stream (CANCEL))" : "bob left (closed (1001", 3000);
      return await alice.$$eval("#log li.leave", (lis) => lis.at(-1).textContent);
    });

    await check(`${label}: a tab without the token is refused and shows why`, async () => {
      const stranger = await openTab(context, url("mallory", null));
      const status = await waitForStatus(stranger, "refused", "401 Unauthorized: a token is required");
      await waitForLog(stranger, "could not connect: 1006");
      await waitForLog(stranger, "WebSocket error");
      const wrong = await openTab(context, url("mallory", "not-the-token"));
      await waitForStatus(wrong, "refused", "401 Unauthorized: wrong token");
      await stranger.close();
      await wrong.close();
      return `"${status}"`;
    });

    await check(`${label}: an upgrade with a foreign Origin gets 403`, async () => {
      const foreign = await rawUpgrade(base, `/ws?token=${TOKEN}`, { Origin: "http://evil.example" });
      foreign.socket.destroy();
      if (foreign.status !== 403) throw new Error(`expected 403, got ${foreign.head}`);
      const own = await rawUpgrade(base, `/ws?token=${TOKEN}&name=probe`, { Origin: base });
      own.socket.destroy();
      if (own.status !== 101) throw new Error(`own origin: expected 101, got ${own.head}`);
      return `403 body: ${foreign.body.trim()}`;
    });

    await check(`${label}: a page from another origin cannot open the chat's WebSocket`, async () => {
      const page = await openTab(context, `${foreignBase}/`);
      const target = `${wsScheme}//${new URL(base).host}/ws?token=${TOKEN}&name=intruder`;
      const result = await page.evaluate((target) => new Promise((resolve) => {
        const ws = new WebSocket(target);
        let opened = false;
        ws.onopen = () => { opened = true; ws.close(); };
        ws.onclose = (e) => resolve({ opened, code: e.code });
      }), target);
      await page.close();
      if (result.opened || result.code !== 1006) throw new Error(`expected refusal, got ${JSON.stringify(result)}`);
      return `from ${foreignBase}: closed with ${result.code} without opening`;
    });

    await check(`${label}: a flood closes that tab with 1008, the other tab keeps working`, async () => {
      const flooder = await openTab(context, url("flooder"));
      await waitForStatus(flooder, "open", "connected");
      await waitForLog(alice, "flooder joined");
      await flooder.evaluate(() => { for (let i = 0; i < 200; i++) window.chat.say(`flood ${i}`); });
      const status = await waitForStatus(flooder, "closed", "1008 policy violation: rate limit", 5000);
      await waitForLog(alice, "flooder left (closed by the server: rate limit", 3000);
      await alice.fill("#input", "alice is still here");
      await alice.press("#input", "Enter");
      await waitForLog(alice, "alice is still here", 1000);
      await waitForStatus(alice, "open", "connected", 100);
      // And the flooded tab comes back after its backoff.
      await waitForLog(flooder, "reconnecting in");
      await waitForStatus(flooder, "open", "connected", 5000);
      await flooder.close();
      return `flooder: "${status}"`;
    });
  } finally {
    for (const tab of [alice, bob]) {
      if (tab && !tab.isClosed() && failed > 0) {
        console.log(`  console of ${tab.url()}: ${JSON.stringify(tab.consoleLines.slice(-5))}`);
      }
    }
    await browser.close();
  }
}

async function tickerSuite(label, base, extraFlags) {
  const browser = await launch(extraFlags);
  try {
    await check(`${label}: the page receives at least three "Hello!" in 3.5 seconds`, async () => {
      const page = await browser.context.newPage();
      await page.goto(`${base}/`);
      const loaded = Date.now();
      await page.waitForTimeout(3500 - (Date.now() - loaded));
      const messages = await page.$$eval("#messages li", (lis) => lis.map((li) => li.textContent));
      const hellos = messages.filter((m) => m.includes("Hello! #"));
      await page.screenshot({ path: join(OUTPUT, `ticker${label.includes("wss") ? "-tls" : ""}.png`) });
      if (hellos.length < 3) throw new Error(`only ${hellos.length}: ${JSON.stringify(messages)}`);
      return `${hellos.length} messages, newest "${hellos[0].replace(/^.*Hello/, "Hello")}"`;
    });
  } finally {
    await browser.close();
  }
}

/// Starts the scheduler on `addr` with the database `db`.
const startScheduler = (addr, db) => startServer(env("SCHEDULER_BIN"), [addr, "--db", db], "scheduler");

/// What a scheduler page shows for slot `id`: its classes and its text.
const slotShown = (page, id) =>
  page.$eval(`button[data-slot="${id}"]`, (b) => ({ cls: b.className, text: b.textContent }));

/// Waits until slot `id` on `page` shows `text`; `ms` bounds the wait.
async function waitForSlot(page, id, text, ms) {
  try {
    await page.waitForFunction(
      ([id, t]) => document.querySelector(`button[data-slot="${id}"]`)?.textContent.includes(t),
      [id, text],
      { timeout: ms, polling: 10 },
    );
  } catch {
    const shown = await slotShown(page, id).catch(() => null);
    throw new Error(`slot ${id} did not show "${text}" within ${ms} ms; it shows ${JSON.stringify(shown)}`);
  }
}

/// The scheduler in two separate browsers (each its own profile, so two
/// users): a booking in one appears in the other within a second, two
/// bookings of one slot at once give exactly one winner and tell the
/// other, and the bookings survive a restart of the server.
async function schedulerSuite() {
  const db = join(OUTPUT, "scheduler.sqlite3");
  let server = startScheduler("127.0.0.1:0", db);
  const base = await server.url;
  const addr = new URL(base).host;
  const ann = await launch();
  const bob = await launch();
  let pageA = null;
  let pageB = null;
  try {
    await check("scheduler: two browsers load the page and see the same 12 free slots", async () => {
      pageA = await openTab(ann.context, `${base}/`);
      pageB = await openTab(bob.context, `${base}/`);
      for (const [page, name] of [[pageA, "Ann"], [pageB, "Bob"]]) {
        await waitForStatus(page, "open", "connected");
        await page.fill("#name", name);
        await page.dispatchEvent("#name", "change");
        await page.waitForFunction(() => document.querySelectorAll("#slots button").length === 12);
      }
      const free = await pageB.$$eval("#slots button.free", (bs) => bs.length);
      if (free !== 12) throw new Error(`${free} free slots, expected 12 on a new database`);
      return "12 slots, all free";
    });

    await check("scheduler: a booking in one browser appears in the other within a second", async () => {
      const clicked = Date.now();
      await pageA.click('button[data-slot="1"]');
      await waitForSlot(pageB, 1, "booked by Ann", 1000);
      const ms = Date.now() - clicked;
      const own = await slotShown(pageA, 1);
      if (!own.cls.includes("mine")) throw new Error(`Ann's page shows ${JSON.stringify(own)}`);
      await waitForLog(pageB, "Ann booked Mon 09:00", 1000);
      return `shown in Bob's browser ${ms} ms after Ann's click`;
    });

    await check("scheduler: two bookings of one slot at once: exactly one wins, the other is told", async () => {
      // Both requests leave their browsers together, before either hears back.
      await Promise.all([pageA.evaluate(() => book(2)), pageB.evaluate(() => book(2))]);
      await waitForSlot(pageA, 2, "booked by", 1000);
      await waitForSlot(pageB, 2, "booked by", 1000);
      const [a, b] = [await slotShown(pageA, 2), await slotShown(pageB, 2)];
      if (a.text !== b.text) throw new Error(`the browsers disagree: ${a.text} / ${b.text}`);
      const winner = a.text.includes("Ann") ? "Ann" : "Bob";
      const [won, lost] = winner === "Ann" ? [pageA, pageB] : [pageB, pageA];
      if (!(await slotShown(won, 2)).cls.includes("mine")) throw new Error("the winner's page does not show it as theirs");
      await waitForLog(lost, `refused: Mon 10:00 is already booked by ${winner}`, 1000);
      const wonRefused = await won.$$eval("#log li.refused", (lis) => lis.length);
      if (wonRefused !== 0) throw new Error("the winner was refused too");
      return `${winner} won; the other browser was told "already booked by ${winner}"`;
    });

    await check("scheduler: screenshot of the two browsers showing the same bookings", async () => {
      const file = join(OUTPUT, "scheduler-two-browsers.png");
      await sideBySide(ann.context, [
        { page: pageA, caption: "Ann's browser" },
        { page: pageB, caption: "Bob's browser (a separate profile)" },
      ], file);
      return file;
    });

    await check("scheduler: a cancel in one browser frees the slot in the other", async () => {
      await pageB.click('button[data-slot="1"]');
      await waitForSlot(pageA, 1, "free", 1000);
      await waitForLog(pageA, "Bob cancelled Mon 09:00", 1000);
      await pageA.click('button[data-slot="1"]');
      await waitForSlot(pageB, 1, "booked by Ann", 1000);
      // Ann's page learns of its own booking from the broadcast too.
      await waitForSlot(pageA, 1, "booked by Ann", 1000);
      return "Bob cancelled Ann's booking; Ann booked it again";
    });

    await check("scheduler: after a restart of the server the pages reconnect and the bookings are kept", async () => {
      const before = await pageA.$$eval("#slots button", (bs) => bs.map((b) => b.textContent));
      await stopServer(server);
      // Stopped with SIGTERM, the server closes every page with 1012.
      await waitForStatus(pageA, "closed", "1012 the server is restarting", 3000);
      server = startScheduler(addr, db);
      await server.url;
      await waitForStatus(pageA, "open", "connected", 15000);
      await waitForStatus(pageB, "open", "connected", 15000);
      // A new page in Bob's browser starts from the stored state.
      const fresh = await openTab(bob.context, `${base}/`);
      await waitForStatus(fresh, "open", "connected");
      await fresh.waitForFunction(() => document.querySelectorAll("#slots button").length === 12);
      for (const page of [pageA, pageB, fresh]) {
        const after = await page.$$eval("#slots button", (bs) => bs.map((b) => b.textContent));
        if (JSON.stringify(after) !== JSON.stringify(before)) {
          throw new Error(`before the restart ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
        }
      }
      await fresh.close();
      return `closed with 1012, ${before.filter((t) => t.includes("booked")).length} bookings kept in ${db}`;
    });
  } finally {
    for (const page of [pageA, pageB]) {
      if (page && !page.isClosed() && failed > 0) {
        console.log(`  console of ${page.url()}: ${JSON.stringify(page.consoleLines.slice(-5))}`);
      }
    }
    await ann.close();
    await bob.close();
    await stopServer(server);
  }
}

/// Starts `bin` with `args`, its output in OUTPUT/`log`.log; resolves
/// `url` to the address it prints once it listens.
function startServer(bin, args, log) {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  const out = createWriteStream(join(OUTPUT, `${log}.log`), { flags: "a" });
  // Both into one file, which ends when both have (not when either does).
  child.stdout.pipe(out, { end: false });
  child.stderr.pipe(out, { end: false });
  child.on("close", () => out.end());
  const url = new Promise((resolve, reject) => {
    let seen = "";
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      const found = /^[a-z]+: listening on (\S+)$/m.exec(seen);
      if (found) resolve(found[1]);
    });
    child.on("exit", (code) => reject(new Error(`${bin} exited with ${code}: ${seen}`)));
  });
  return { child, url };
}

function stopServer(server, signal = "SIGTERM") {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null || server.child.signalCode !== null) return resolve();
    server.child.on("exit", resolve);
    server.child.kill(signal);
  });
}

/// A free port of 127.0.0.1 (free a moment ago).
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/// Debian's redis-server on `port`, with nothing kept on disk: a restart
/// starts it empty, the hardest case for the servers.
async function startRedis(port) {
  const child = spawn(env("REDIS_SERVER"), [
    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  const out = createWriteStream(join(OUTPUT, "redis.log"), { flags: "a" });
  child.stderr.pipe(out);
  await new Promise((resolve, reject) => {
    let seen = "";
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      out.write(chunk);
      if (seen.includes("Ready to accept connections")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`redis-server exited with ${code}: ${seen.slice(-300)}`)));
  });
  return { child };
}

/// How many entries of `tab`'s log contain `text`.
const countLog = (tab, text, selector = "#log li") =>
  tab.$$eval(selector, (lis, t) => lis.filter((li) => li.textContent.includes(t)).length, text);

/// Waits until `tab`'s list of users has (or, with `present` false, has
/// not) `name`.
async function waitForUser(tab, name, present, ms) {
  try {
    await tab.waitForFunction(
      ([n, p]) => [...document.querySelectorAll("#users li")].some((li) => li.textContent.startsWith(n)) === p,
      [name, present],
      { timeout: ms, polling: 20 },
    );
  } catch {
    const users = await tab.$$eval("#users li", (lis) => lis.map((li) => li.textContent)).catch(() => []);
    throw new Error(`${name} ${present ? "not" : "still"} in the list after ${ms} ms: ${JSON.stringify(users)}`);
  }
}

/// The chat as two servers through Redis: tabs on each, messages, joins
/// and leaves across, Redis restarted, a server killed.
async function chatClusterSuite(redisPort) {
  const redisUrl = `redis://127.0.0.1:${redisPort}/`;
  let redis = await startRedis(redisPort);
  const start = (log) => startServer(env("CHAT_BIN"), [
    "127.0.0.1:0", "--token", TOKEN, "--heartbeat", String(HEARTBEAT), "--redis", redisUrl,
  ], log);
  const serverA = start("chat-cluster-a");
  const serverB = start("chat-cluster-b");
  const [baseA, baseB] = [await serverA.url, await serverB.url];
  const url = (base, name) => `${base}/?token=${encodeURIComponent(TOKEN)}&name=${name}`;
  const browser = await launch();
  let alice, bob;
  try {
    await check("chat on two servers: a tab on each sees the other join", async () => {
      alice = await openTab(browser.context, url(baseA, "alice"));
      await waitForStatus(alice, "open", "ws://");
      bob = await openTab(browser.context, url(baseB, "bob"));
      await waitForStatus(bob, "open", "ws://");
      await waitForLog(alice, "bob joined");
      await waitForUser(alice, "bob", true, 1000);
      await waitForUser(bob, "alice", true, 1000);
      return `alice on ${new URL(baseA).host}, bob on ${new URL(baseB).host}`;
    });

    await check("chat on two servers: a message typed on A's tab appears on B's tab within a second", async () => {
      await alice.fill("#input", "Hello from server A");
      const sent = Date.now();
      await alice.press("#input", "Enter");
      await waitForLog(bob, "Hello from server A", 1000);
      const ms = Date.now() - sent;
      await bob.fill("#input", "Hello back from server B");
      await bob.press("#input", "Enter");
      await waitForLog(alice, "Hello back from server B", 1000);
      return `A to B in ${ms} ms, and back`;
    });

    await check("chat on two servers: a leave crosses too", async () => {
      const carol = await openTab(browser.context, url(baseB, "carol"));
      await waitForLog(alice, "carol joined");
      await carol.close();
      await waitForLog(alice, "carol left", 3000);
      await waitForUser(alice, "carol", false, 1000);
      return "carol joined on B and left; A's tab saw both";
    });

    await check("chat on two servers: Redis restarted in the middle: the tabs are told, nothing lost or doubled", async () => {
      await stopServer(redis, "SIGKILL");
      await alice.waitForSelector("#bus:not([hidden])", { timeout: 5000 });
      // Said while the servers cannot reach each other: delayed, not lost.
      await alice.fill("#input", "Said while Redis was down");
      await alice.press("#input", "Enter");
      await waitForLog(alice, "Said while Redis was down", 1000);
      redis = await startRedis(redisPort);
      const restarted = Date.now();
      await alice.waitForSelector("#bus", { state: "hidden", timeout: 10000 });
      await waitForLog(bob, "Said while Redis was down", 10000);
      const late = Date.now() - restarted;
      await bob.fill("#input", "After the restart");
      await bob.press("#input", "Enter");
      await waitForLog(alice, "After the restart", 1000);
      // Past the grace a restarted Redis gets (its list of users starts
      // empty): nobody was taken for gone, nothing came twice.
      await new Promise((r) => setTimeout(r, 7000));
      await waitForUser(alice, "bob", true, 100);
      await waitForUser(bob, "alice", true, 100);
      for (const [tab, text] of [[bob, "Said while Redis was down"], [alice, "After the restart"]]) {
        const n = await countLog(tab, text);
        if (n !== 1) throw new Error(`"${text}" shown ${n} times`);
      }
      if ((await countLog(alice, "bob left")) + (await countLog(bob, "alice left")) !== 0) {
        throw new Error("a user was shown leaving across the restart");
      }
      return `the held message arrived ${late} ms after Redis came back; lists intact after 7 s`;
    });

    await check("chat on two servers: a server killed: its users leave the other's list", async () => {
      const killed = Date.now();
      await stopServer(serverB, "SIGKILL");
      await waitForUser(alice, "bob", false, 10000);
      const ms = Date.now() - killed;
      await waitForLog(alice, "bob left (their server stopped answering)", 100);
      return `bob gone from alice's list ${ms} ms after server B was killed`;
    });
  } finally {
    await browser.close();
    await stopServer(serverA);
    await stopServer(serverB);
    await stopServer(redis);
  }
}

/// The scheduler as two servers sharing one SQLite file, through Redis.
async function schedulerClusterSuite(redisPort) {
  const redisUrl = `redis://127.0.0.1:${redisPort}/`;
  let redis = await startRedis(redisPort);
  const db = join(OUTPUT, "scheduler-cluster.sqlite3");
  const start = (log) => startServer(env("SCHEDULER_BIN"), ["127.0.0.1:0", "--db", db, "--redis", redisUrl], log);
  const serverA = start("scheduler-cluster-a");
  const serverB = start("scheduler-cluster-b");
  const [baseA, baseB] = [await serverA.url, await serverB.url];
  const browser = await launch();
  let pageA, pageB;
  try {
    await check("scheduler on two servers: a booking on A appears on B within a second", async () => {
      pageA = await openTab(browser.context, `${baseA}/`);
      pageB = await openTab(browser.context, `${baseB}/`);
      for (const [page, name] of [[pageA, "Ann"], [pageB, "Bob"]]) {
        await waitForStatus(page, "open", "connected");
        await page.fill("#name", name);
        await page.waitForFunction(() => document.querySelectorAll("#slots button").length === 12);
      }
      const clicked = Date.now();
      await pageA.click('button[data-slot="1"]');
      await waitForSlot(pageB, 1, "booked by Ann", 1000);
      return `shown on B ${Date.now() - clicked} ms after the click on A`;
    });

    await check("scheduler on two servers: two bookings of one slot at once: exactly one wins", async () => {
      await Promise.all([pageA.evaluate(() => book(2)), pageB.evaluate(() => book(2))]);
      await waitForSlot(pageA, 2, "booked by", 1000);
      await waitForSlot(pageB, 2, "booked by", 1000);
      const [a, b] = [await slotShown(pageA, 2), await slotShown(pageB, 2)];
      if (a.text !== b.text) throw new Error(`the servers' pages disagree: ${a.text} / ${b.text}`);
      const winner = a.text.includes("Ann") ? "Ann" : "Bob";
      const lost = winner === "Ann" ? pageB : pageA;
      await waitForLog(lost, `refused: Mon 10:00 is already booked by ${winner}`, 1000);
      return `${winner} won through the shared database`;
    });

    await check("scheduler on two servers: a booking while Redis is down reaches the other server once it is back", async () => {
      await stopServer(redis, "SIGKILL");
      await pageB.waitForSelector("#bus:not([hidden])", { timeout: 5000 });
      await pageA.click('button[data-slot="3"]');
      await waitForSlot(pageA, 3, "booked by Ann", 1000);
      redis = await startRedis(redisPort);
      const restarted = Date.now();
      await waitForSlot(pageB, 3, "booked by Ann", 10000);
      await pageB.waitForSelector("#bus", { state: "hidden", timeout: 10000 });
      return `booked on A during the outage; on B ${Date.now() - restarted} ms after Redis came back`;
    });
  } finally {
    await browser.close();
    await stopServer(serverA);
    await stopServer(serverB);
    await stopServer(redis);
  }
}

/// A balancer (`haproxy` or `nginx`) listening on `port` in front of the
/// servers at `servers`, with the shipped configuration (deploy/) filled
/// in; its log in OUTPUT.
async function startBalancer(kind, port, servers) {
  const dir = join(OUTPUT, kind);
  mkdirSync(join(dir, "tmp"), { recursive: true });
  const file = kind === "haproxy" ? "haproxy.cfg" : "nginx.conf";
  const values = {
    LISTEN: kind === "haproxy" ? `127.0.0.1:${port}` : `127.0.0.1:${port}`,
    SERVER_A: servers[0], SERVER_B: servers[1], SERVER_OPTIONS: "", RUN: dir, BIND: "127.0.0.1",
  };
  let text = readFileSync(join(env("DEPLOY"), file), "utf8");
  for (const [name, value] of Object.entries(values)) text = text.replaceAll(`@${name}@`, value);
  writeFileSync(join(dir, file), text);
  const args = kind === "haproxy"
    ? ["-db", "-f", join(dir, file)]
    : ["-p", dir, "-c", join(dir, file), "-g", "daemon off; master_process off;"];
  const child = spawn(env(kind === "haproxy" ? "HAPROXY" : "NGINX"), args, { stdio: ["ignore", "pipe", "pipe"] });
  const out = createWriteStream(join(OUTPUT, `${kind}.log`), { flags: "a" });
  child.stdout.pipe(out, { end: false });
  child.stderr.pipe(out, { end: false });
  child.on("close", () => out.end());
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const probe = net.connect(port, "127.0.0.1", () => { probe.destroy(); resolve(true); });
      probe.on("error", () => resolve(false));
    });
    if (up) return { child };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${kind} did not listen on ${port}`);
}

/// The chat on two servers through Redis, behind `kind` (haproxy or
/// nginx): tabs through the balancer, messages across, a quiet minute of
/// the proxy's 3 s timeout survived by the 1 s heartbeat, and each server
/// restarted in turn (SIGTERM: its tabs get 1012 and come back through the
/// balancer), nothing lost or doubled.
async function balancerSuite(kind, redisPort) {
  const redisUrl = `redis://127.0.0.1:${redisPort}/`;
  const redis = await startRedis(redisPort);
  const [portA, portB, front] = [await freePort(), await freePort(), await freePort()];
  const origin = `http://127.0.0.1:${front}`;
  const start = (port, log) => startServer(env("CHAT_BIN"), [
    `127.0.0.1:${port}`, "--token", TOKEN, "--heartbeat", String(HEARTBEAT), "--redis", redisUrl,
    "--origin", origin, "--restart",
  ], log);
  const servers = [start(portA, `${kind}-chat-a`), start(portB, `${kind}-chat-b`)];
  await Promise.all(servers.map((s) => s.url));
  const balancer = await startBalancer(kind, front, [`127.0.0.1:${portA}`, `127.0.0.1:${portB}`]);
  const url = (name) => `${origin}/?token=${encodeURIComponent(TOKEN)}&name=${name}`;
  const browser = await launch();
  const tabs = [];
  const all = (text) => Promise.all(tabs.map((tab) => countLog(tab, text)));
  let restarted = 0;
  try {
    await check(`chat behind ${kind}: four tabs through it, on both servers, a message to all`, async () => {
      for (const name of ["ann", "ben", "cat", "dan"]) {
        const tab = await openTab(browser.context, url(name));
        await waitForStatus(tab, "open", "ws://");
        tabs.push(tab);
      }
      await tabs[0].fill("#input", `Hello through ${kind}`);
      await tabs[0].press("#input", "Enter");
      for (const tab of tabs) await waitForLog(tab, `Hello through ${kind}`, 2000);
      // Where each tab landed is the balancer's choice (round robin over
      // the page loads and the upgrades alike); the restarts below reach
      // every tab whichever it was.
      const logs = ["a", "b"].map((s) => readFileSync(join(OUTPUT, `${kind}-chat-${s}.log`), "utf8"));
      const joined = logs.map((log) => (log.match(/ joined$/gm) || []).length);
      return `joined ${joined.join(" + ")} on the two servers`;
    });

    await check(`chat behind ${kind}: 7 s of silence under its 3 s timeout, kept open by the 1 s heartbeat`, async () => {
      const closedBefore = await all("connection closed");
      await new Promise((r) => setTimeout(r, 7000));
      for (const tab of tabs) await waitForStatus(tab, "open", "ws://", 100);
      const closedAfter = await all("connection closed");
      if (closedAfter.join() !== closedBefore.join()) throw new Error(`closed meanwhile: ${closedAfter}`);
      await tabs[3].fill("#input", "Still here after the quiet");
      await tabs[3].press("#input", "Enter");
      for (const tab of tabs) await waitForLog(tab, "Still here after the quiet", 2000);
      return "no tab was cut";
    });

    for (const [index, name] of [[0, "A"], [1, "B"]]) {
      await check(`chat behind ${kind}: server ${name} restarted (SIGTERM): its tabs get 1012, come back through ${kind}, and get what was said meanwhile, once`, async () => {
        // A tab straight on the other server, which says something while
        // the restarted server's tabs are away.
        const otherPort = index === 0 ? portB : portA;
        const direct = `http://127.0.0.1:${otherPort}/?token=${encodeURIComponent(TOKEN)}&name=witness`;
        const witness = await openTab(browser.context, direct);
        await waitForStatus(witness, "open", "ws://");
        // A tab's own connection closing says so in its log (others'
        // leave notices name the code too, but not this way).
        const told = await all("connection closed: 1012");
        const stopped = Date.now();
        await stopServer(servers[index], "SIGTERM");
        const meanwhile = `Said while ${name} restarted`;
        await witness.fill("#input", meanwhile);
        await witness.press("#input", "Enter");
        const log = readFileSync(join(OUTPUT, `${kind}-chat-${name.toLowerCase()}.log`), "utf8");
        if (!log.includes("stopped: every WebSocket closed")) throw new Error(`server ${name} did not close every WebSocket: ${log.slice(-300)}`);
        servers[index] = start(index === 0 ? portA : portB, `${kind}-chat-${name.toLowerCase()}`);
        await servers[index].url;
        const now = await all("connection closed: 1012");
        const moved = now.filter((n, i) => n > told[i]).length;
        restarted += moved;
        for (const tab of tabs) await waitForStatus(tab, "open", "ws://", 10000);
        const back = Date.now() - stopped;
        const text = `After the restart of ${name}`;
        await tabs[index].fill("#input", text);
        await tabs[index].press("#input", "Enter");
        for (const tab of tabs) await waitForLog(tab, text, 2000);
        for (const line of [meanwhile, text]) {
          const counts = await all(line);
          if (counts.some((n) => n !== 1)) throw new Error(`"${line}" shown ${counts} times`);
        }
        await witness.close();
        return `${moved} tab(s) closed with 1012, all open again ${back} ms after the SIGTERM`;
      });
    }
    if (restarted < tabs.length) {
      failed += 1;
      console.log(`FAIL chat behind ${kind}: only ${restarted} of ${tabs.length} tabs saw a 1012 over the two restarts`);
    }
  } finally {
    await browser.close();
    await stopServer(balancer);
    for (const server of servers) await stopServer(server);
    await stopServer(redis);
  }
}

const deadline = setTimeout(() => {
  console.log("FAIL the browser tests took longer than 480 s");
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 480000);

try {
  await chatSuite("chat ws://", CHAT_URL, TICKER_URL, []);
  await chatSuite("chat wss://", CHAT_TLS_URL, TICKER_TLS_URL, ["--ignore-certificate-errors"]);
  if (process.env.CHAT_AXUM_URL) {
    await chatSuite("chat on axum ws://", process.env.CHAT_AXUM_URL, TICKER_URL, []);
  }
  await tickerSuite("ticker ws://", TICKER_URL, []);
  await tickerSuite("ticker wss://", TICKER_TLS_URL, ["--ignore-certificate-errors"]);
  await schedulerSuite();
  if (process.env.REDIS_SERVER) {
    await chatClusterSuite(await freePort());
    await schedulerClusterSuite(await freePort());
    if (process.env.HAPROXY) await balancerSuite("haproxy", await freePort());
    if (process.env.NGINX) await balancerSuite("nginx", await freePort());
  }
} catch (error) {
  failed += 1;
  console.log(`FAIL the run stopped: ${error.stack || error}`);
}
clearTimeout(deadline);
writeFileSync(join(OUTPUT, "result.txt"), `${passed} passed, ${failed} failed\n`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
