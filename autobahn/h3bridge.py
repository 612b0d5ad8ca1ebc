"""A relay between kosoku, which speaks HTTP/1.1 only, and WebSockets over
HTTP/3 (RFC 9220), for the Autobahn passes server-http3 and client-http3:
what haproxy does for the HTTP/2 passes. The HTTP/3 side is aioquic's (a
QUIC stack nobody here wrote); the WebSocket's bytes are relayed as they
are, never decoded, so every frame kosoku sends or checks is one our
driver read or wrote.

    h3bridge.py server TCP_PORT H3_PORT
        kosoku's fuzzing client connects to TCP_PORT with an HTTP/1.1
        Upgrade; each connection becomes an extended CONNECT on a QUIC
        connection to our server on UDP H3_PORT (its certificate is not
        checked: loopback, made at start), and the 200 becomes a 101.

    h3bridge.py client H3_PORT TCP_PORT CERT_OUT
        Our client's extended CONNECTs to UDP H3_PORT (a certificate made
        here, written to CERT_OUT for it to trust) each become an HTTP/1.1
        Upgrade to kosoku's fuzzing server on TCP_PORT, and the 101 a 200.

Prints "ready" once it listens.
"""

import asyncio
import base64
import datetime
import hashlib
import os
import ssl
import sys

from aioquic.asyncio import connect, serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamReset

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Fields the two handshakes share; the rest is each protocol's own.
PASSED = (b"sec-websocket-protocol", b"sec-websocket-extensions", b"origin")
MAX_HEAD = 64 * 1024


class H3(QuicConnectionProtocol):
    """An HTTP/3 connection whose request streams are relayed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.streams = {}
        self.responses = {}

    def quic_event_received(self, event):
        if isinstance(event, StreamReset) and event.stream_id in self.streams:
            self.streams[event.stream_id].put_nowait(None)
        for h3_event in self.h3.handle_event(event):
            sid = getattr(h3_event, "stream_id", None)
            if isinstance(h3_event, HeadersReceived) and sid in self.responses:
                self.responses.pop(sid).set_result(h3_event.headers)
            elif isinstance(h3_event, HeadersReceived) and sid not in self.streams:
                self.streams[sid] = asyncio.Queue()
                asyncio.ensure_future(self.on_request(sid, dict(h3_event.headers)))
            elif isinstance(h3_event, DataReceived) and sid in self.streams:
                if h3_event.data:
                    self.streams[sid].put_nowait(h3_event.data)
                if h3_event.stream_ended:
                    self.streams[sid].put_nowait(b"")

    async def on_request(self, sid, fields):
        pass

    async def relay(self, sid, reader, writer):
        """Bytes both ways until both ends are done: TCP's FIN is the
        stream's end and the other way round; a reset is a TCP reset."""

        async def to_h3():
            while True:
                data = await reader.read(65536)
                self.h3.send_data(sid, data, end_stream=not data)
                self.transmit()
                if not data:
                    return

        async def to_tcp():
            queue = self.streams[sid]
            while True:
                data = await queue.get()
                if data is None:
                    writer.transport.abort()
                    return
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        await asyncio.gather(to_h3(), to_tcp(), return_exceptions=True)
        writer.close()


async def read_head(reader):
    head = b""
    while b"\r\n\r\n" not in head:
        data = await reader.read(4096)
        if not data or len(head) > MAX_HEAD:
            return None, b""
        head += data
    head, rest = head.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    return (lines[0], fields), rest


# ---------------------------------------------------------------- server


async def serve_tcp(tcp_port, h3_port):
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    config.verify_mode = ssl.CERT_NONE

    async def on_tcp(reader, writer):
        head, rest = await read_head(reader)
        if head is None:
            writer.close()
            return
        (line, fields) = head
        path = line.split(b" ")[1]
        async with connect("127.0.0.1", h3_port, configuration=config, create_protocol=H3) as h3:
            sid = h3._quic.get_next_available_stream_id()
            h3.streams[sid] = asyncio.Queue()
            response = asyncio.get_running_loop().create_future()
            h3.responses[sid] = response
            request = [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"https"),
                (b":authority", fields.get(b"host", b"localhost")),
                (b":path", path),
                (b"sec-websocket-version", fields.get(b"sec-websocket-version", b"13")),
            ] + [(name, fields[name]) for name in PASSED if name in fields]
            h3.h3.send_headers(sid, request)
            h3.transmit()
            answer = dict(await response)
            status = answer.get(b":status", b"502")
            if status != b"200":
                writer.write(b"HTTP/1.1 " + status + b" Refused\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                writer.close()
                return
            key = fields.get(b"sec-websocket-key", b"")
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            out = [
                b"HTTP/1.1 101 Switching Protocols",
                b"Upgrade: websocket",
                b"Connection: Upgrade",
                b"Sec-WebSocket-Accept: " + accept,
            ] + [name + b": " + answer[name] for name in PASSED if name in answer]
            writer.write(b"\r\n".join(out) + b"\r\n\r\n")
            if rest:
                h3.h3.send_data(sid, rest, end_stream=False)
                h3.transmit()
            await h3.relay(sid, reader, writer)

    server = await asyncio.start_server(on_tcp, "127.0.0.1", tcp_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------- client


class Upgrading(H3):
    tcp_port = None

    async def on_request(self, sid, fields):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.tcp_port)
        key = base64.b64encode(os.urandom(16))
        out = [
            b"GET " + fields.get(b":path", b"/") + b" HTTP/1.1",
            b"Host: " + fields.get(b":authority", b"localhost"),
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Key: " + key,
            b"Sec-WebSocket-Version: 13",
        ] + [name + b": " + fields[name] for name in PASSED if name in fields]
        writer.write(b"\r\n".join(out) + b"\r\n\r\n")
        head, rest = await read_head(reader)
        status = head[0].split(b" ")[1] if head else b"502"
        if status != b"101":
            self.h3.send_headers(sid, [(b":status", status)], end_stream=True)
            self.transmit()
            writer.close()
            return
        answer = [(b":status", b"200")] + [
            (name, head[1][name]) for name in PASSED if name in head[1]
        ]
        self.h3.send_headers(sid, answer)
        if rest:
            self.h3.send_data(sid, rest, end_stream=False)
        self.transmit()
        await self.relay(sid, reader, writer)


def self_signed(cert_out):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    with open(cert_out, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    key_out = cert_out + ".key"
    with open(key_out, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_out, key_out


async def serve_h3(h3_port, tcp_port, cert_out):
    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    config.load_cert_chain(*self_signed(cert_out))
    Upgrading.tcp_port = tcp_port
    await serve("127.0.0.1", h3_port, configuration=config, create_protocol=Upgrading)
    print("ready", flush=True)
    await asyncio.Future()


def main():
    if sys.argv[1] == "server":
        asyncio.run(serve_tcp(int(sys.argv[2]), int(sys.argv[3])))
    else:
        asyncio.run(serve_h3(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))


if __name__ == "__main__":
    main()
