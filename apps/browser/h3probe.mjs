// Does Chromium open a WebSocket over HTTP/3 (RFC 9220)? A probe, not a
// test: it prints what happened, and the echo server's log says which
// protocol carried each request.
//
//   target/release/examples/echo_server 127.0.0.1:9443 --tls --cert-out /tmp/cert.pem &
//   SPKI=$(openssl x509 -in /tmp/cert.pem -pubkey -noout | openssl pkey -pubin -outform der \
//          | openssl dgst -sha256 -binary | base64)
//   node apps/browser/h3probe.mjs 9443 --enable-quic --origin-to-force-quic-on=127.0.0.1:9443 \
//        --ignore-certificate-errors-spki-list=$SPKI [--enable-features=WebSocketOverHttp3]
//
// It loads a page from the server's origin (forced onto QUIC: the
// server's log shows the GET over HTTP/3, refused with 405, and the page
// reports `h3`), then opens a WebSocket to the same origin and echoes one
// message. The server's log shows whether that WebSocket came over
// HTTP/3 ("(HTTP/3)" after its path) or over TCP.
import { chromium } from "playwright-core";

const port = process.argv[2];
const flags = process.argv.slice(3);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", ...flags],
});
const page = await browser.newPage({ ignoreHTTPSErrors: true });
try {
  const response = await page.goto(`https://127.0.0.1:${port}/page`);
  const protocol = await page.evaluate(
    () => performance.getEntriesByType("navigation")[0].nextHopProtocol,
  );
  console.log(`page: ${response?.status()} over ${protocol}`);
} catch (error) {
  console.log(`page failed: ${error.message.split("\n")[0]}`);
}
const result = await page.evaluate(async (port) => {
  return await new Promise((resolve) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}/from-chromium`);
    ws.onopen = () => ws.send("hello");
    ws.onmessage = (event) => {
      resolve(`echo: ${event.data}`);
      ws.close(1000);
    };
    ws.onerror = () => resolve("error");
    setTimeout(() => resolve("timeout"), 5000);
  });
}, port);
console.log(`websocket: ${result}`);
await browser.close();
