// The broadcast server for Node's `ws` (benches/src/broadcast.rs): the
// broadcast idiom of ws's own README, `wss.clients.forEach(c => c.send(buf))`,
// a message every 10 ms whose first 8 bytes are the time in nanoseconds
// since the Unix epoch. `ws` comes from tests/interop/node_modules
// (tests/interop/run installs it).
//
//   node ws_server.mjs SIZE     prints "ready PORT" once listening
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tests/interop/package.json', import.meta.url));
const { WebSocketServer, WebSocket } = require('ws');

const size = Math.max(8, Number(process.argv[2] || 64));
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('listening', () => console.log(`ready ${wss.address().port}`));
wss.on('connection', (ws) => {
  ws._socket.setNoDelay(true);
  ws.on('error', () => {});
});

setInterval(() => {
  const buf = Buffer.alloc(size, 'x');
  const ns = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  buf.writeBigUInt64BE(ns, 0);
  wss.clients.forEach((client) => {
    if (client.readyState === WebSocket.OPEN) client.send(buf, { binary: true });
  });
}, 10);
