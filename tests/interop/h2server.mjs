// A third-party HTTP/2 WebSocket server: Node's built-in http2 module
// with SETTINGS_ENABLE_CONNECT_PROTOCOL, and the WebSocket framing written
// out here. Used by tests/http2.rs (the ignored tests run by
// tests/interop/run):
//
//   node h2server.mjs        prints "port N", serves one WebSocket
//
// Accepts one extended CONNECT (:protocol = websocket, version 13) and
// echoes every data message (text or binary, fragmented or not), answers
// pings, and answers a Close with the same code, then ends the stream.
// Checks that every client frame is masked. Prints "ok" when the
// WebSocket closed cleanly, "FAILED: ..." otherwise.
import http2 from 'node:http2';

const fail = (why) => {
  console.log(`FAILED: ${why}`);
  process.exit(1);
};
setTimeout(() => fail('timed out'), 20000).unref();

const server = http2.createServer({ settings: { enableConnectProtocol: true } });
server.on('stream', (stream, headers) => {
  if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
    stream.respond({ ':status': 400 });
    stream.end();
    return;
  }
  if (headers['sec-websocket-version'] !== '13') fail('version');
  stream.respond({ ':status': 200 });

  const send = (opcode, payload) => {
    const len = payload.length;
    const head = [0x80 | opcode];
    if (len < 126) head.push(len);
    else if (len < 65536) head.push(126, len >> 8, len & 0xff);
    else head.push(127, 0, 0, 0, 0, (len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
    stream.write(Buffer.concat([Buffer.from(head), payload]));
  };

  let pending = Buffer.alloc(0);
  let message = null; // { opcode, parts }
  stream.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (pending.length < 2) return;
      if (!(pending[1] & 0x80)) fail('an unmasked client frame');
      let len = pending[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (pending.length < 4) return;
        len = pending.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (pending.length < 10) return;
        len = Number(pending.readBigUInt64BE(2));
        at = 10;
      }
      if (pending.length < at + 4 + len) return;
      const key = pending.subarray(at, at + 4);
      const payload = Buffer.from(pending.subarray(at + 4, at + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= key[i % 4];
      const fin = !!(pending[0] & 0x80);
      const opcode = pending[0] & 0x0f;
      pending = pending.subarray(at + 4 + len);
      if (opcode === 9) {
        send(10, payload);
      } else if (opcode === 8) {
        send(8, payload.subarray(0, 2));
        stream.end();
        console.log('ok');
        setTimeout(() => process.exit(0), 100);
        return;
      } else if (opcode === 1 || opcode === 2) {
        message = { opcode, parts: [payload] };
      } else if (opcode === 0) {
        if (!message) fail('a continuation outside a message');
        message.parts.push(payload);
      }
      if (fin && message && opcode !== 9 && opcode !== 10) {
        send(message.opcode, Buffer.concat(message.parts));
        message = null;
      }
    }
  });
});
server.listen(0, '127.0.0.1', () => console.log(`port ${server.address().port}`));
