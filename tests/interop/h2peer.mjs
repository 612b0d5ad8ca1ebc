// A third-party HTTP/2 WebSocket client: Node's built-in http2 module,
// with the WebSocket framing written out here (Node has no RFC 8441
// client of its own). Used by tests/http2.rs (the ignored test run by
// tests/interop/run):
//
//   node h2peer.mjs http://127.0.0.1:PORT    (h2c, prior knowledge)
//   node h2peer.mjs https://127.0.0.1:PORT   (TLS, ALPN h2; the server's
//                                             certificate is not checked)
//
// Waits for the server's SETTINGS, opens an extended CONNECT
// (:protocol = websocket), then over the stream: text, 1 MiB binary, a
// fragmented text, a ping, and a close with code 4000; each answer is
// checked. Over https://, then a wss:// WebSocket over HTTP/1.1 on the
// same port (Node's ws, which offers no ALPN). Prints "ok" and exits 0,
// or prints what failed and exits 1.
import http2 from 'node:http2';
import crypto from 'node:crypto';
import { once } from 'node:events';

const url = new URL(process.argv[2]);
const fail = (why) => {
  console.log(`FAILED: ${why}`);
  process.exit(1);
};
setTimeout(() => fail('timed out'), 20000).unref();

const secure = url.protocol === 'https:';
const session = http2.connect(url.origin, secure ? { rejectUnauthorized: false } : {});
session.on('error', (e) => fail(`session: ${e.message}`));
await once(session, 'remoteSettings');
if (!session.remoteSettings.enableConnectProtocol) {
  fail('the server did not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL');
}
const stream = session.request(
  {
    ':method': 'CONNECT',
    ':protocol': 'websocket',
    ':scheme': url.protocol.slice(0, -1),
    ':path': '/node-h2',
    ':authority': url.host,
    'sec-websocket-version': '13',
  },
  { endStream: false },
);
stream.on('error', (e) => fail(`stream: ${e.message}`));
const [headers] = await once(stream, 'response');
if (headers[':status'] !== 200) fail(`status ${headers[':status']}`);
if (secure && session.alpnProtocol !== 'h2') fail(`ALPN chose ${session.alpnProtocol}`);

// A client frame: masked with a fresh key (RFC 6455 §5.3).
function frame(opcode, payload, fin = true) {
  const len = payload.length;
  const head = [((fin ? 0x80 : 0) | opcode)];
  if (len < 126) head.push(0x80 | len);
  else if (len < 65536) head.push(0x80 | 126, len >> 8, len & 0xff);
  else {
    head.push(0x80 | 127, 0, 0, 0, 0);
    head.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  const key = crypto.randomBytes(4);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i] ^= key[i % 4];
  return Buffer.concat([Buffer.from(head), key, masked]);
}

// Server frames (unmasked), one at a time as they complete.
let pending = Buffer.alloc(0);
const frames = [];
let wake = null;
stream.on('data', (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  for (;;) {
    if (pending.length < 2) break;
    let len = pending[1] & 0x7f;
    let at = 2;
    if (len === 126) {
      if (pending.length < 4) break;
      len = pending.readUInt16BE(2);
      at = 4;
    } else if (len === 127) {
      if (pending.length < 10) break;
      len = Number(pending.readBigUInt64BE(2));
      at = 10;
    }
    if (pending[1] & 0x80) fail('the server masked a frame');
    if (pending.length < at + len) break;
    frames.push({ fin: !!(pending[0] & 0x80), opcode: pending[0] & 0x0f, payload: pending.subarray(at, at + len) });
    pending = pending.subarray(at + len);
  }
  if (wake && frames.length) wake();
});
async function next() {
  while (!frames.length) await new Promise((r) => (wake = r));
  wake = null;
  return frames.shift();
}
// A whole message (continuations joined).
async function message() {
  const first = await next();
  const parts = [first.payload];
  let last = first;
  while (!last.fin) {
    last = await next();
    if (last.opcode !== 0) fail(`opcode ${last.opcode} inside a message`);
    parts.push(last.payload);
  }
  return { opcode: first.opcode, payload: Buffer.concat(parts) };
}

stream.write(frame(1, Buffer.from('hello over HTTP/2')));
let got = await message();
if (got.opcode !== 1 || got.payload.toString() !== 'hello over HTTP/2') fail('text echo');

const big = crypto.randomBytes(1 << 20);
stream.write(frame(2, big));
got = await message();
if (got.opcode !== 2 || !got.payload.equals(big)) fail('1 MiB binary echo');

stream.write(frame(1, Buffer.from('frag'), false));
stream.write(frame(0, Buffer.from('mented'), true));
got = await message();
if (got.payload.toString() !== 'fragmented') fail('fragmented echo');

stream.write(frame(9, Buffer.from('ping!')));
got = await next();
if (got.opcode !== 10 || got.payload.toString() !== 'ping!') fail('pong');

const close = Buffer.alloc(5);
close.writeUInt16BE(4000, 0);
close.write('bye', 2);
stream.write(frame(8, close));
got = await next();
if (got.opcode !== 8 || got.payload.readUInt16BE(0) !== 4000) fail('close echo with 4000');
stream.end();
await once(stream, 'close');
session.close();

if (secure) {
  // HTTP/1.1 on the same TLS port: the Upgrade, for a client without ALPN.
  const { default: WebSocket } = await import('ws');
  const ws = new WebSocket(`wss://${url.host}/node-ws`, { rejectUnauthorized: false });
  ws.on('error', (e) => fail(`wss:// over HTTP/1.1: ${e.message}`));
  await once(ws, 'open');
  ws.send('hello over HTTP/1.1');
  const [data] = await once(ws, 'message');
  if (data.toString() !== 'hello over HTTP/1.1') fail('wss:// echo over HTTP/1.1');
  ws.close(4001);
  const [code] = await once(ws, 'close');
  if (code !== 4001) fail(`wss:// close code ${code}`);
}
console.log('ok');
