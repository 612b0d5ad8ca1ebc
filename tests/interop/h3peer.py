"""A third-party WebSocket-over-HTTP/3 (RFC 9220) peer for tests/http3.rs:
aioquic's QUIC and HTTP/3 (H3Connection), and wsproto's frames, neither
written here.

    h3peer.py client HOST:PORT CAFILE [deflate]
        Opens WebSockets on our server (extended CONNECT on one QUIC
        connection) and checks every echo: text, 1 MiB binary, a fragmented
        message, a ping, and close codes (1000, then 4000 with a reason),
        with permessage-deflate offered if asked. Prints "ok".

    h3peer.py server CERTFILE KEYFILE
        Serves WebSockets on UDP 127.0.0.1 (prints "port N"): echoes every
        message frame by frame, answers pings and the Close, and accepts
        permessage-deflate when offered.
"""

import asyncio
import sys

import wsproto
import wsproto.events as ev
from aioquic.asyncio import connect, serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamReset
from wsproto.extensions import PerMessageDeflate

TIMEOUT = 20


class Stream:
    """One WebSocket on one request stream."""

    def __init__(self, protocol, stream_id, ws):
        self.protocol = protocol
        self.stream_id = stream_id
        self.ws = ws
        self.queue = asyncio.Queue()

    def send(self, event, end=False):
        data = self.ws.send(event)
        self.protocol.h3.send_data(self.stream_id, data, end_stream=end)
        self.protocol.transmit()

    async def next(self):
        """The next WebSocket event (CloseConnection 1006 if the stream ends
        or is reset before a Close frame)."""
        ended = False
        while True:
            for event in self.ws.events():
                return event
            if ended:
                # After the frames that came before the end.
                self.ws.receive_data(None)
                continue
            item = await asyncio.wait_for(self.queue.get(), TIMEOUT)
            if isinstance(item, DataReceived):
                if item.data:
                    self.ws.receive_data(item.data)
                ended = item.stream_ended
            elif isinstance(item, StreamReset):
                ended = True


class Peer(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.streams = {}
        self.pending = {}

    def quic_event_received(self, event):
        if isinstance(event, StreamReset) and event.stream_id in self.streams:
            self.streams[event.stream_id].queue.put_nowait(event)
        for h3_event in self.h3.handle_event(event):
            sid = getattr(h3_event, "stream_id", None)
            if sid in self.pending:
                self.pending.pop(sid).set_result(h3_event)
            elif sid in self.streams:
                self.streams[sid].queue.put_nowait(h3_event)
            elif isinstance(h3_event, HeadersReceived):
                self.on_request(h3_event)

    def on_request(self, event):
        pass


# ---------------------------------------------------------------- client


class Client(Peer):
    async def websocket(self, authority, path, deflate):
        sid = self._quic.get_next_available_stream_id()
        headers = [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
            (b"sec-websocket-version", b"13"),
        ]
        pmd = PerMessageDeflate() if deflate else None
        if pmd:
            offer = "permessage-deflate; " + pmd.offer()
            headers.append((b"sec-websocket-extensions", offer.encode()))
        response = asyncio.get_running_loop().create_future()
        self.pending[sid] = response
        self.h3.send_headers(sid, headers)
        self.transmit()
        response = await asyncio.wait_for(response, TIMEOUT)
        fields = dict(response.headers)
        assert fields[b":status"] == b"200", fields
        extensions = []
        agreed = fields.get(b"sec-websocket-extensions")
        if pmd:
            assert agreed and agreed.startswith(b"permessage-deflate"), fields
            pmd.finalize(agreed.decode())
            extensions.append(pmd)
        else:
            assert agreed is None, fields
        stream = Stream(self, sid, wsproto.Connection(wsproto.ConnectionType.CLIENT, extensions))
        self.streams[sid] = stream
        return stream


async def expect_message(stream, kind, want):
    got = b"" if kind is ev.BytesMessage else ""
    while True:
        event = await stream.next()
        assert isinstance(event, kind), event
        got += event.data
        if event.message_finished:
            assert got == want, (len(got), len(want))
            return


async def run_client(target, cafile, deflate):
    host, port = target.rsplit(":", 1)
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
    config.load_verify_locations(cafile)
    async with connect(host, int(port), configuration=config, create_protocol=Client) as client:
        authority = f"localhost:{port}"
        ws = await client.websocket(authority, "/echo", deflate)
        ws.send(ev.TextMessage("hello from aioquic"))
        await expect_message(ws, ev.TextMessage, "hello from aioquic")
        big = bytes((i * 7 + 3) % 251 for i in range(1 << 20))
        ws.send(ev.BytesMessage(big))
        await expect_message(ws, ev.BytesMessage, big)
        for i, piece in enumerate(["in ", "three ", "pieces"]):
            ws.send(ev.TextMessage(piece, message_finished=i == 2))
        await expect_message(ws, ev.TextMessage, "in three pieces")
        ws.send(ev.Ping(b"there?"))
        event = await ws.next()
        assert isinstance(event, ev.Pong) and event.payload == b"there?", event
        ws.send(ev.CloseConnection(1000))
        event = await ws.next()
        assert isinstance(event, ev.CloseConnection) and event.code == 1000, event

        # A second WebSocket on the same connection, closed with 4000.
        ws = await client.websocket(authority, "/echo", deflate)
        ws.send(ev.TextMessage("second"))
        await expect_message(ws, ev.TextMessage, "second")
        ws.send(ev.CloseConnection(4000, "done here"))
        event = await ws.next()
        # The reply echoes the code (RFC 6455 §5.5.1), not the reason.
        assert isinstance(event, ev.CloseConnection) and event.code == 4000, event
    print("ok")


# ---------------------------------------------------------------- server


class Server(Peer):
    def on_request(self, event):
        fields = dict(event.headers)
        sid = event.stream_id
        if fields.get(b":method") != b"CONNECT" or fields.get(b":protocol") != b"websocket":
            self.h3.send_headers(sid, [(b":status", b"400")], end_stream=True)
            self.transmit()
            return
        response = [(b":status", b"200")]
        extensions = []
        offer = fields.get(b"sec-websocket-extensions", b"").decode()
        if offer.startswith("permessage-deflate"):
            pmd = PerMessageDeflate()
            params = pmd.accept(offer)
            if params is not None:
                agreed = "permessage-deflate" + ("; " + params if params else "")
                response.append((b"sec-websocket-extensions", agreed.encode()))
                extensions.append(pmd)
        self.h3.send_headers(sid, response)
        self.transmit()
        stream = Stream(self, sid, wsproto.Connection(wsproto.ConnectionType.SERVER, extensions))
        self.streams[sid] = stream
        asyncio.ensure_future(echo(stream))


async def echo(stream):
    while True:
        event = await stream.next()
        if isinstance(event, ev.TextMessage):
            stream.send(ev.TextMessage(event.data, message_finished=event.message_finished))
        elif isinstance(event, ev.BytesMessage):
            stream.send(ev.BytesMessage(event.data, message_finished=event.message_finished))
        elif isinstance(event, ev.Ping):
            stream.send(event.response())
        elif isinstance(event, ev.CloseConnection):
            if event.code != 1006:
                stream.send(event.response(), end=True)
            return


async def run_server(certfile, keyfile):
    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    config.load_cert_chain(certfile, keyfile)
    server = await serve("127.0.0.1", 0, configuration=config, create_protocol=Server)
    port = server._transport.get_extra_info("sockname")[1]
    print(f"port {port}", flush=True)
    await asyncio.Future()


def main():
    mode = sys.argv[1]
    if mode == "client":
        asyncio.run(run_client(sys.argv[2], sys.argv[3], "deflate" in sys.argv[4:]))
    else:
        asyncio.run(run_server(sys.argv[2], sys.argv[3]))


if __name__ == "__main__":
    main()
