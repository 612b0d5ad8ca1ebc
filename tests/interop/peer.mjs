// The Node `ws` peer of the interoperability tests (tests/interop.rs).
//
//     node peer.mjs server --closer us|peer [--deflate SPEC]       listens on 127.0.0.1
//     node peer.mjs client URL --closer us|peer [--deflate SPEC]   connects to URL
//
// Without --deflate, ws keeps its defaults: a client offers permessage-deflate
// (the Rust side declines it), a server does not accept it. With --deflate
// SPEC, permessage-deflate is on with `threshold: 0` (ws compresses even the
// smallest message) and SPEC is "default" or parameters separated by commas:
// server_no_context_takeover, client_no_context_takeover,
// server_max_window_bits=N, client_max_window_bits=N (ws's options of the same
// names in camelCase: a client offers them, a server imposes them), and the
// compressor's mem_level=N and level=N. Then compression must be negotiated,
// or this peer fails.
//
// The same exchange as peer.py, whichever end opened the connection:
//
// 1. This peer sends every message of messages() (the fragmented ones in
//    several frames) and checks that each comes back unchanged; then it pings
//    with PEER_PING and waits for the Pong carrying that payload.
// 2. It echoes every data message it receives, until the closing handshake.
//    With `--closer us` the Rust side closes with 4000 "done here"; with
//    `--closer peer` the Rust side sends the text "close-me" and this peer
//    closes with 4000 "done here".
//
// Lines on stdout, for the Rust test to check:
//
//     LISTENING <port>                 (server mode, once bound)
//     EXTENSIONS <negotiated>          after the handshake: "none", or the
//                                      permessage-deflate parameters in force,
//                                      in the order of RFC 7692 §7.1, those at
//                                      their default (15 bits) left out
//     CLOSE-RECEIVED <code> <reason>   the Close frame the Rust side sent
//     CLOSE-SENT <code> <reason>       the Close frame this peer sent, when
//                                      ws tells (it does not for its reply)
//     WIRE <received> <sent>           bytes this peer's socket received and
//                                      sent after the handshake
//     PEER OK                          every check passed
//
// Any failed check prints `PEER FAIL: ...` on stderr and exits with status 1.
// Everything is bounded by TIMEOUT_MS. messages() must stay identical to the
// lists in peer.py and tests/interop.rs.

import { WebSocket, WebSocketServer } from 'ws';

const TIMEOUT_MS = 60_000;
const CLOSE_CODE = 4000;
const CLOSE_REASON = 'done here';
const PEER_PING = Buffer.from('ping from peer \u2713');
const RUST_PING = Buffer.from('ping from rust \u2713');
const MAX_PAYLOAD = 16 * 2 ** 20;

function pattern(n, mul, add) {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (i * mul + add) % 251;
  return out;
}

/** { binary, data: Buffer, fragment: frame size or null } */
function messages() {
  const text = (s) => Buffer.from(s, 'utf8');
  let ascii = '';
  for (let i = 0; i < 64 * 1024; i++) ascii += String.fromCharCode(0x20 + ((i * 7) % 95));
  const byteRange = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) byteRange[i] = i;
  return [
    { binary: false, data: text('hello, interop \u2713 \u2014 \u00fcn\u00efc\u00f6d\u00e9 \u{1F600}'), fragment: null },
    { binary: true, data: byteRange, fragment: null },
    { binary: false, data: Buffer.alloc(0), fragment: null },
    { binary: true, data: Buffer.alloc(0), fragment: null },
    { binary: false, data: text(ascii), fragment: null },
    { binary: true, data: pattern(1 << 20, 31, 7), fragment: null },
    // 1000-byte frames end inside multi-byte characters on purpose.
    { binary: false, data: text('\u00a1fragmented \u2713 message \u{1F600}! '.repeat(300)), fragment: 1000 },
    { binary: true, data: pattern(100_000, 13, 1), fragment: 16 * 1024 },
  ];
}

class Failure extends Error {}

function check(condition, what) {
  if (!condition) throw new Failure(what);
}

function describe(binary, data) {
  return `${binary ? 'binary' : 'text'} of ${data.length} bytes`;
}

/** Turns the socket's events into a queue read in order with `next()`. */
function events(ws) {
  const queue = [];
  const waiting = [];
  const push = (event) => {
    const resolve = waiting.shift();
    if (resolve) resolve(event);
    else queue.push(event);
  };
  ws.on('message', (data, isBinary) => push({ type: 'message', data, binary: isBinary }));
  ws.on('ping', (data) => push({ type: 'ping', data }));
  ws.on('pong', (data) => push({ type: 'pong', data }));
  ws.on('error', (error) => push({ type: 'error', error }));
  ws.on('close', (code, reason) => push({ type: 'close', code, reason: reason.toString('utf8') }));
  return {
    next: () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r))),
  };
}

/** ws's perMessageDeflate option for --deflate SPEC. */
function deflateOptions(spec) {
  const options = { threshold: 0 };
  if (spec === 'default') return options;
  const camel = (name) => name.replace(/_(.)/g, (_, c) => c.toUpperCase());
  for (const item of spec.split(',')) {
    const [name, value] = item.split('=');
    if (name === 'server_no_context_takeover' || name === 'client_no_context_takeover') {
      options[camel(name)] = true;
    } else if (name === 'server_max_window_bits' || name === 'client_max_window_bits') {
      options[camel(name)] = Number(value);
    } else if (name === 'mem_level' || name === 'level') {
      options.zlibDeflateOptions = { ...options.zlibDeflateOptions, [camel(name)]: Number(value) };
    } else {
      throw new Error(`unknown --deflate parameter ${JSON.stringify(item)}`);
    }
  }
  return options;
}

/**
 * The EXTENSIONS line's value, from the Sec-WebSocket-Extensions field of the
 * server's response (what both ends then use) and ws.extensions.
 */
function negotiated(ws, field) {
  const names = ws.extensions;
  if (!field) {
    check(names === '', `ws reports extensions ${JSON.stringify(names)} that the handshake did not agree`);
    return 'none';
  }
  check(names === 'permessage-deflate', `unexpected extensions ${JSON.stringify(names)}, response ${JSON.stringify(field)}`);
  const [name, ...params] = field.split(';').map((s) => s.trim());
  check(name === 'permessage-deflate' && !field.includes(','), `unexpected response field ${JSON.stringify(field)}`);
  const agreed = new Map(params.map((p) => p.split('=').map((s) => s.trim())));
  const bits = (key) => Number(agreed.get(key) ?? 15);
  let value = 'permessage-deflate';
  if (agreed.has('server_no_context_takeover')) value += '; server_no_context_takeover';
  if (agreed.has('client_no_context_takeover')) value += '; client_no_context_takeover';
  if (bits('server_max_window_bits') < 15) value += `; server_max_window_bits=${bits('server_max_window_bits')}`;
  if (bits('client_max_window_bits') < 15) value += `; client_max_window_bits=${bits('client_max_window_bits')}`;
  return value;
}

function sendFrame(ws, data, options) {
  return new Promise((resolve, reject) => {
    // ws compresses only when permessage-deflate was negotiated.
    ws.send(data, { compress: true, ...options }, (err) => (err ? reject(err) : resolve()));
  });
}

async function send(ws, { binary, data, fragment }) {
  if (fragment === null) {
    await sendFrame(ws, data, { binary, fin: true });
    return;
  }
  const chunks = [];
  for (let i = 0; i < data.length; i += fragment) chunks.push(data.subarray(i, i + fragment));
  check(chunks.length > 1, 'a fragmented message needs several frames');
  // ws sends the first frame with the message's opcode and the others as
  // continuations, until the one with fin set.
  for (let i = 0; i < chunks.length; i++) {
    await sendFrame(ws, chunks[i], { binary, fin: i === chunks.length - 1 });
  }
}

/** Phase 1: we send, the Rust side echoes. */
async function drive(ws, queue) {
  for (const message of messages()) {
    await send(ws, message);
    const echo = await queue.next();
    check(echo.type === 'message', `expected the echo of ${describe(message.binary, message.data)}, got ${echo.type}`);
    check(
      echo.binary === message.binary && echo.data.equals(message.data),
      `echo of ${describe(message.binary, message.data)} came back as ${describe(echo.binary, echo.data)}, different`,
    );
  }
  ws.ping(PEER_PING);
  const pong = await queue.next();
  check(pong.type === 'pong', `expected a pong, got ${pong.type}`);
  check(pong.data.equals(PEER_PING), `pong payload ${JSON.stringify(pong.data.toString())} is not the ping's`);
  console.error('phase 1 done: messages echoed, pong received');
}

/** Phase 2: the Rust side sends, we echo; then the closing handshake. */
async function echo(ws, queue, closer) {
  let count = 0;
  let pings = 0;
  let sentClose = null;
  let close;
  for (;;) {
    const event = await queue.next();
    if (event.type === 'error') throw event.error;
    if (event.type === 'close') {
      close = event;
      break;
    }
    if (event.type === 'ping') {
      // ws has already answered it with a Pong of the same payload.
      check(event.data.equals(RUST_PING), `ping payload ${JSON.stringify(event.data.toString())} is not the Rust side's`);
      pings += 1;
      continue;
    }
    check(event.type === 'message', `phase 2: unexpected ${event.type}`);
    if (closer === 'peer' && !event.binary && event.data.toString() === 'close-me') {
      ws.close(CLOSE_CODE, CLOSE_REASON);
      sentClose = { code: CLOSE_CODE, reason: CLOSE_REASON };
      continue;
    }
    check(sentClose === null, 'a data message after our Close frame');
    await sendFrame(ws, event.data, { binary: event.binary, fin: true });
    count += 1;
  }
  console.error(`phase 2 done: ${count} messages echoed, ${pings} pings answered`);
  check(pings === 1, `the Rust side's ping arrived ${pings} times`);
  check(closer === 'us' || sentClose !== null, 'the Rust side closed, but it was ours to close');
  // 1005 is how ws reports a Close frame without a code, 1006 no Close frame.
  check(close.code !== 1005 && close.code !== 1006, `no proper Close frame received (code ${close.code})`);
  console.log(`CLOSE-RECEIVED ${close.code} ${close.reason}`);
  if (sentClose) console.log(`CLOSE-SENT ${sentClose.code} ${sentClose.reason}`);
  if (closer === 'us') {
    check(
      close.code === CLOSE_CODE && close.reason === CLOSE_REASON,
      `received close ${close.code} ${JSON.stringify(close.reason)}, expected ${CLOSE_CODE} ${JSON.stringify(CLOSE_REASON)}`,
    );
  } else {
    // The reply: "it typically echos the status code it received" (§5.5.1).
    check(close.code === CLOSE_CODE, `reply close has code ${close.code}, expected ${CLOSE_CODE}`);
  }
}

/**
 * `handshake`: the Sec-WebSocket-Extensions field of the response (or
 * undefined) and the socket under ws.
 */
async function exchange(ws, closer, deflate, handshake) {
  const queue = events(ws);
  const extensions = negotiated(ws, handshake.extensions);
  console.log(`EXTENSIONS ${extensions}`);
  if (deflate !== null) check(extensions !== 'none', 'permessage-deflate was not negotiated');
  // Counted from here, as in peer.py: the handshake is not in the counts.
  const start = { read: handshake.socket.bytesRead, written: handshake.socket.bytesWritten };
  await drive(ws, queue);
  await echo(ws, queue, closer);
  const { bytesRead, bytesWritten } = handshake.socket;
  console.log(`WIRE ${bytesRead - start.read} ${bytesWritten - start.written}`);
}

function runClient(url, closer, deflate) {
  return new Promise((resolve, reject) => {
    const options = { maxPayload: MAX_PAYLOAD };
    if (deflate !== null) options.perMessageDeflate = deflateOptions(deflate);
    const ws = new WebSocket(url, options);
    const handshake = {};
    ws.once('upgrade', (response) => {
      handshake.extensions = response.headers['sec-websocket-extensions'];
      handshake.socket = response.socket;
    });
    ws.once('error', reject);
    ws.once('open', () => {
      ws.off('error', reject);
      exchange(ws, closer, deflate, handshake).then(resolve, reject);
    });
  });
}

function runServer(closer, deflate) {
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      maxPayload: MAX_PAYLOAD,
      perMessageDeflate: deflate === null ? false : deflateOptions(deflate),
    });
    let taken = false;
    let field;
    wss.on('error', reject);
    wss.on('listening', () => console.log(`LISTENING ${wss.address().port}`));
    wss.on('headers', (headers) => {
      const prefix = 'sec-websocket-extensions:';
      const line = headers.find((h) => h.toLowerCase().startsWith(prefix));
      field = line && line.slice(prefix.length).trim();
    });
    wss.on('connection', (ws, request) => {
      if (taken) return ws.terminate(); // one connection only
      taken = true;
      exchange(ws, closer, deflate, { extensions: field, socket: request.socket }).then(
        () => wss.close(() => resolve()),
        (e) => {
          wss.close();
          reject(e);
        },
      );
    });
  });
}

function usage() {
  console.error('usage: node peer.mjs server | client URL, then --closer us|peer [--deflate SPEC]');
  process.exit(2);
}

function main() {
  const args = process.argv.slice(2);
  const mode = args[0];
  const at = args.indexOf('--closer');
  const closer = at >= 0 ? args[at + 1] : undefined;
  if (!['us', 'peer'].includes(closer)) usage();
  const deflateAt = args.indexOf('--deflate');
  const deflate = deflateAt >= 0 ? args[deflateAt + 1] : null;
  if (deflateAt >= 0) {
    if (!deflate) usage();
    try {
      deflateOptions(deflate);
    } catch (e) {
      console.error(e.message);
      usage();
    }
  }
  let work;
  if (mode === 'client') {
    if (!args[1] || args[1].startsWith('--')) usage();
    work = runClient(args[1], closer, deflate);
  } else if (mode === 'server') {
    work = runServer(closer, deflate);
  } else {
    usage();
  }
  const timer = setTimeout(() => {
    console.error(`PEER FAIL: timed out after ${TIMEOUT_MS} ms`);
    process.exit(1);
  }, TIMEOUT_MS);
  work.then(
    () => {
      clearTimeout(timer);
      console.log('PEER OK');
      process.exit(0);
    },
    (e) => {
      console.error(`PEER FAIL: ${e instanceof Failure ? e.message : e && e.stack ? e.stack : e}`);
      process.exit(1);
    },
  );
}

main();
