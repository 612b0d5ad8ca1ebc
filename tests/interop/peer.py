"""The Python `websockets` peer of the interoperability tests (tests/interop.rs).

    peer.py server --closer us|peer [--deflate SPEC]       listens on 127.0.0.1
    peer.py client URL --closer us|peer [--deflate SPEC]   connects to URL

Without --deflate, websockets keeps its defaults: compression is on by
default (as a client it offers permessage-deflate, as a server it accepts
it), so the Rust side is the one that declines. With --deflate SPEC, SPEC is
"default" (websockets' own permessage-deflate settings: memLevel 5, and
window bits 12 both ways on a server) or parameters separated by commas for
ClientPerMessageDeflateFactory / ServerPerMessageDeflateFactory:
server_no_context_takeover, client_no_context_takeover,
server_max_window_bits=N, client_max_window_bits=N, and the compressor's
mem_level=N and level=N. Then compression must be negotiated, or this peer
fails.

Both modes run the same exchange with the Rust side, whichever end opened
the connection:

1. This peer sends every message of messages() (the fragmented ones in several
   frames) and checks that each comes back unchanged; then it pings with
   PEER_PING and waits for the Pong carrying that payload.
2. It echoes every data message it receives, until the closing handshake.
   With `--closer us` the Rust side closes with 4000 "done here"; with
   `--closer peer` the Rust side sends the text "close-me" and this peer
   closes with 4000 "done here".

Lines on stdout, for the Rust test to check:

    LISTENING <port>                 (server mode, once bound)
    EXTENSIONS <negotiated>          after the handshake: "none", or the
                                     permessage-deflate parameters in force,
                                     in the order of RFC 7692 §7.1, those at
                                     their default (15 bits) left out
    CLOSE-RECEIVED <code> <reason>   the Close frame the Rust side sent
    CLOSE-SENT <code> <reason>       the Close frame this peer sent
    WIRE <received> <sent>           bytes this peer received and sent after
                                     the handshake
    PEER OK                          every check passed

Any failed check prints `PEER FAIL: ...` on stderr and exits with status 1.
Everything is bounded by TIMEOUT. messages() must stay identical to the lists
in peer.mjs and tests/interop.rs.
"""

import argparse
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)

TIMEOUT = 60
CLOSE_CODE = 4000
CLOSE_REASON = "done here"
PEER_PING = "ping from peer \u2713".encode()
# Larger than the 1 MiB message: the default max_size is exactly 1 MiB.
MAX_SIZE = 16 * 2**20


def pattern(n, mul, add):
    return bytes((i * mul + add) % 251 for i in range(n))


def messages():
    """(payload, fragment size or None); str is a text message."""
    fragmented_text = "\u00a1fragmented \u2713 message \U0001f600! " * 300
    return [
        ("hello, interop \u2713 \u2014 \u00fcn\u00efc\u00f6d\u00e9 \U0001f600", None),
        (bytes(range(256)), None),
        ("", None),
        (b"", None),
        ("".join(chr(0x20 + (i * 7) % 95) for i in range(64 * 1024)), None),
        (pattern(1 << 20, 31, 7), None),
        # 1000-byte frames end inside multi-byte characters on purpose.
        (fragmented_text, 1000),
        (pattern(100_000, 13, 1), 16 * 1024),
    ]


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)


def describe(data):
    if isinstance(data, str):
        return f"text of {len(data.encode())} bytes"
    return f"binary of {len(data)} bytes"


async def send(ws, payload, fragment):
    if fragment is None:
        await ws.send(payload)
        return
    raw = payload.encode() if isinstance(payload, str) else payload
    chunks = [raw[i : i + fragment] for i in range(0, len(raw), fragment)]
    check(len(chunks) > 1, "a fragmented message needs several frames")
    # websockets sends each chunk in its own frame, then an empty final
    # continuation frame. text=True keeps bytes chunks in a Text message, so
    # the frames split UTF-8 characters.
    await ws.send(chunks, text=isinstance(payload, str))


def deflate_options(spec):
    """The factory's keyword arguments for --deflate SPEC (not "default")."""
    options, compress = {}, {}
    for item in spec.split(","):
        name, _, value = item.partition("=")
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            options[name] = True
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            options[name] = int(value)
        elif name == "mem_level":
            compress["memLevel"] = int(value)
        elif name == "level":
            compress["level"] = int(value)
        else:
            raise ValueError(f"unknown --deflate parameter {item!r}")
    if compress:
        options["compress_settings"] = compress
    return options


def negotiated(ws, mode):
    """The EXTENSIONS line's value: "none", or permessage-deflate's parameters."""
    extensions = ws.protocol.extensions
    check(
        all(isinstance(e, PerMessageDeflate) for e in extensions)
        and len(extensions) <= 1,
        f"unexpected extensions {extensions!r}",
    )
    if not extensions:
        return "none"
    d = extensions[0]
    # local is this peer, remote the Rust side.
    ours = (d.local_no_context_takeover, d.local_max_window_bits)
    theirs = (d.remote_no_context_takeover, d.remote_max_window_bits)
    server, client = (ours, theirs) if mode == "server" else (theirs, ours)
    value = "permessage-deflate"
    if server[0]:
        value += "; server_no_context_takeover"
    if client[0]:
        value += "; client_no_context_takeover"
    if server[1] < 15:
        value += f"; server_max_window_bits={server[1]}"
    if client[1] < 15:
        value += f"; client_max_window_bits={client[1]}"
    return value


class Wire:
    """Counts the bytes through the sans-IO protocol under the connection."""

    def __init__(self, protocol):
        self.received = self.sent = 0
        receive_data, data_to_send = protocol.receive_data, protocol.data_to_send

        def counting_receive_data(data):
            self.received += len(data)
            return receive_data(data)

        def counting_data_to_send():
            chunks = data_to_send()
            self.sent += sum(len(chunk) for chunk in chunks)
            return chunks

        protocol.receive_data = counting_receive_data
        protocol.data_to_send = counting_data_to_send


async def drive(ws):
    """Phase 1: we send, the Rust side echoes."""
    for payload, fragment in messages():
        await send(ws, payload, fragment)
        echo = await ws.recv()
        check(
            type(echo) is type(payload) and echo == payload,
            f"echo of {describe(payload)} came back as {describe(echo)}, different",
        )
    pong = await ws.ping(PEER_PING)
    # websockets completes the waiter only for a Pong with the same payload.
    await asyncio.wait_for(pong, 10)
    print("phase 1 done: messages echoed, pong received", file=sys.stderr)


async def echo(ws, closer):
    """Phase 2: the Rust side sends, we echo; then the closing handshake."""
    count = 0
    while True:
        try:
            message = await ws.recv()
        except ConnectionClosed:
            check(closer == "us", "the Rust side closed, but it was ours to close")
            break
        if closer == "peer" and message == "close-me":
            await ws.close(CLOSE_CODE, CLOSE_REASON)
            break
        await ws.send(message)
        count += 1
    await ws.wait_closed()
    print(f"phase 2 done: {count} messages echoed", file=sys.stderr)
    sent, rcvd = ws.protocol.close_sent, ws.protocol.close_rcvd
    check(rcvd is not None, "no Close frame received")
    check(sent is not None, "no Close frame sent")
    print(f"CLOSE-RECEIVED {rcvd.code} {rcvd.reason}", flush=True)
    print(f"CLOSE-SENT {sent.code} {sent.reason}", flush=True)
    if closer == "us":
        check(
            (rcvd.code, rcvd.reason) == (CLOSE_CODE, CLOSE_REASON),
            f"received close {rcvd.code} {rcvd.reason!r}, "
            f"expected {CLOSE_CODE} {CLOSE_REASON!r}",
        )
    else:
        # The reply: "it typically echos the status code it received" (§5.5.1).
        check(
            rcvd.code == CLOSE_CODE,
            f"reply close has code {rcvd.code}, expected {CLOSE_CODE}",
        )


async def exchange(ws, mode, closer, deflate):
    wire = Wire(ws.protocol)
    extensions = negotiated(ws, mode)
    print(f"EXTENSIONS {extensions}", flush=True)
    if deflate is not None:
        check(extensions != "none", "permessage-deflate was not negotiated")
    await drive(ws)
    await echo(ws, closer)
    print(f"WIRE {wire.received} {wire.sent}", flush=True)


def extension_factories(deflate, factory):
    """The `extensions` argument: None keeps websockets' default."""
    if deflate is None or deflate == "default":
        return None
    return [factory(**deflate_options(deflate))]


async def run_client(url, closer, deflate):
    extensions = extension_factories(deflate, ClientPerMessageDeflateFactory)
    async with connect(
        url, max_size=MAX_SIZE, ping_interval=None, extensions=extensions
    ) as ws:
        await exchange(ws, "client", closer, deflate)


async def run_server(closer, deflate):
    done = asyncio.get_running_loop().create_future()
    extensions = extension_factories(deflate, ServerPerMessageDeflateFactory)

    async def handler(ws):
        if done.done():
            return  # one connection only
        try:
            await exchange(ws, "server", closer, deflate)
        except BaseException as e:  # reported by the main task
            done.set_exception(e)
            return
        done.set_result(None)

    async with serve(
        handler,
        "127.0.0.1",
        0,
        max_size=MAX_SIZE,
        ping_interval=None,
        extensions=extensions,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        await done


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["client", "server"])
    parser.add_argument("url", nargs="?")
    parser.add_argument("--closer", choices=["us", "peer"], required=True)
    parser.add_argument("--deflate", metavar="SPEC")
    args = parser.parse_args()
    if args.deflate not in (None, "default"):
        try:
            deflate_options(args.deflate)
        except ValueError as e:
            parser.error(str(e))
    if args.mode == "client":
        if not args.url:
            parser.error("client mode needs a URL")
        work = run_client(args.url, args.closer, args.deflate)
    else:
        work = run_server(args.closer, args.deflate)

    async def bounded():
        await asyncio.wait_for(work, TIMEOUT)

    try:
        asyncio.run(bounded())
    except Failure as e:
        print(f"PEER FAIL: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception as e:
        print(f"PEER FAIL: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print("PEER OK", flush=True)


if __name__ == "__main__":
    main()
