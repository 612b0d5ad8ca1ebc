"""Round trips against an echo server, with the Python `websockets` client:

    echo_check.py URL [--deflate]

Sends a text, a 1 MiB binary, a text in three fragments and a ping, and
checks each answer (the echo, the Pong); then closes with 4000 and checks
that the server's Close carries 4000 too. With --deflate, permessage-deflate
must have been agreed. Prints "ok" and exits 0, or says what failed and
exits 1. Used by tests/frameworks.rs for the hyper and axum examples.
"""
import asyncio
import os
import sys

from websockets.asyncio.client import connect


async def main(url, deflate):
    async with connect(url, compression="deflate" if deflate else None, max_size=None) as ws:
        agreed = [type(e).__name__ for e in ws.protocol.extensions]
        if deflate != ("PerMessageDeflate" in agreed):
            raise AssertionError(f"extensions agreed: {agreed}, deflate wanted: {deflate}")
        await ws.send("hello, echo")
        assert await ws.recv() == "hello, echo", "text echo"
        big = os.urandom(1 << 20)
        await ws.send(big)
        assert await ws.recv() == big, "1 MiB binary echo"
        await ws.send(iter(["frag", "men", "ted"]))
        assert await ws.recv() == "fragmented", "fragmented echo"
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        await ws.close(4000, "done")
        assert ws.protocol.close_rcvd is not None, "no Close from the server"
        code = ws.protocol.close_rcvd.code
        assert code == 4000, f"the server closed with {code}, not 4000"
    print("ok")


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(sys.argv[1], "--deflate" in sys.argv[2:]), 30))
    except Exception as error:  # noqa: BLE001 - any failure is reported the same way
        print(f"FAILED: {type(error).__name__}: {error}")
        sys.exit(1)
