"""The Python `websockets` peer of the interoperability tests (tests/interop.rs).

    peer.py server --closer us|peer       listens on 127.0.0.1, a free port
    peer.py client URL --closer us|peer   connects to URL

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
    CLOSE-RECEIVED <code> <reason>   the Close frame the Rust side sent
    CLOSE-SENT <code> <reason>       the Close frame this peer sent
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


async def exchange(ws, closer):
    await drive(ws)
    await echo(ws, closer)


async def run_client(url, closer):
    async with connect(url, max_size=MAX_SIZE, ping_interval=None) as ws:
        await exchange(ws, closer)


async def run_server(closer):
    done = asyncio.get_running_loop().create_future()

    async def handler(ws):
        if done.done():
            return  # one connection only
        try:
            await exchange(ws, closer)
        except BaseException as e:  # reported by the main task
            done.set_exception(e)
            return
        done.set_result(None)

    async with serve(
        handler, "127.0.0.1", 0, max_size=MAX_SIZE, ping_interval=None
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        await done


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["client", "server"])
    parser.add_argument("url", nargs="?")
    parser.add_argument("--closer", choices=["us", "peer"], required=True)
    args = parser.parse_args()
    if args.mode == "client":
        if not args.url:
            parser.error("client mode needs a URL")
        work = run_client(args.url, args.closer)
    else:
        work = run_server(args.closer)

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
