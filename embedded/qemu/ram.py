#!/usr/bin/env python3
"""RAM per connection on the board: the same job with each library, run on
QEMU's mps2-an386, measured by the firmware itself (the heap's high-water
mark and the stack's, src/memory.rs).

The job: accept a client, echo messages of up to 4 KiB that arrive in
frames of up to 1 KiB with a Ping after each, close. Each library gets the
buffers its API asks for to do it (src/bin/ram_*.rs); ours also in
streaming mode (src/bin/echo.rs, what the Autobahn passes run).

usage: embedded/qemu/ram.py     (after embedded/qemu/run has installed QEMU)
"""
import base64
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ELF = HERE / "target" / "thumbv7em-none-eabihf" / "release"
BASELINE = "ram_baseline"
PROGRAMS = [
    ("rfc6455, whole messages", "ram_rfc6455"),
    ("rfc6455, streaming", "echo"),
    ("websocketz 0.2", "ram_websocketz"),
    ("embedded-websocket 0.9", "ram_embedded_websocket"),
]
SIZES = [0, 1, 125, 126, 1000, 1024, 2000, 4096]
FRAME = 1024


def frame(opcode, payload, fin=True):
    key = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Peer:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""

    def need(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        b0, b1 = self.need(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self.need(2), "big")
        elif n == 127:
            n = int.from_bytes(self.need(8), "big")
        return b0 & 0x0F, b0 & 0x80 != 0, self.need(n)

    def read_message(self):
        """The next data message, skipping Pongs."""
        data = b""
        while True:
            opcode, fin, payload = self.read_frame()
            if opcode in (0x9, 0xA):
                continue
            if opcode == 0x8:
                return None
            data += payload
            if fin:
                return data


def job(port):
    """Runs the job; returns how many messages came back intact."""
    peer = Peer(port)
    key = base64.b64encode(os.urandom(16)).decode()
    peer.sock.sendall(
        (
            "GET / HTTP/1.1\r\nHost: board\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\n\r\n"
        ).encode()
    )
    while b"\r\n\r\n" not in peer.buf:
        peer.buf += peer.sock.recv(4096)
    head, peer.buf = peer.buf.split(b"\r\n\r\n", 1)
    if b" 101 " not in head.split(b"\r\n")[0]:
        return 0
    echoed = 0
    for size in SIZES:
        text = size % 2 == 0
        payload = (b"a" * size) if text else os.urandom(size)
        pieces = [payload[i : i + FRAME] for i in range(0, len(payload), FRAME)] or [b""]
        try:
            for i, piece in enumerate(pieces):
                opcode = (0x1 if text else 0x2) if i == 0 else 0x0
                peer.sock.sendall(frame(opcode, piece, fin=i == len(pieces) - 1))
            peer.sock.sendall(frame(0x9, b"ping"))
            if peer.read_message() == payload:
                echoed += 1
        except (EOFError, OSError):
            break
    try:
        peer.sock.sendall(frame(0x8, (1000).to_bytes(2, "big")))
        while peer.read_message() is not None:
            pass
    except (EOFError, OSError):
        pass
    peer.sock.close()
    return echoed


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def measure(program):
    port = free_port()
    qemu = [
        "qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor", "none",
        "-semihosting", "-kernel", str(ELF / program),
        "-serial", "tcp:127.0.0.1:{line}", "-serial", "stdio",
    ]
    bridge = subprocess.Popen(
        [sys.executable, str(HERE / "bridge.py"), "server", "--listen", str(port), "--", *qemu],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        # That probe was a connection of its own: it opened and closed a
        # session. Measure the next.
        time.sleep(0.5)
        if program == BASELINE:
            # The same request, read to its end.
            with socket.create_connection(("127.0.0.1", port), 5) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: board\r\n\r\n")
            echoed = 0
        else:
            echoed = job(port)
        line = ""
        deadline = time.time() + 20
        while time.time() < deadline:
            line = bridge.stdout.readline()
            if line.startswith("connection 2:"):
                break
        found = re.search(r"heap peak (\d+) B .* stack peak (\d+) B", line)
        heap, stack = (int(found[1]), int(found[2])) if found else (None, None)
        return echoed, heap, stack
    finally:
        bridge.terminate()
        bridge.wait()


def main():
    subprocess.run(
        ["cargo", "build", "--quiet", "--release", "--features", "peers"], cwd=HERE, check=True
    )
    _, base_heap, base_stack = measure(BASELINE)
    print(f"RAM per connection on the board (mps2-an386), echoing {len(SIZES)} messages of")
    print(f"up to {max(SIZES)} B in frames of up to {FRAME} B, a Ping after each; heap and")
    print(f"stack high-water marks less the harness alone ({base_heap} B heap, {base_stack} B stack):")
    print(f"  {'':26} {'heap':>7} {'stack':>7} {'total':>7}  echoed")
    rows = {}
    for name, program in PROGRAMS:
        echoed, heap, stack = measure(program)
        if heap is None:
            print(f"  {name:26} {'?':>7} {'?':>7} {'?':>7}  {echoed}/{len(SIZES)}")
            continue
        heap, stack = heap - base_heap, stack - base_stack
        rows[name] = (heap + stack, echoed)
        print(f"  {name:26} {heap:>7} {stack:>7} {heap + stack:>7}  {echoed}/{len(SIZES)}")
    ours = rows["rfc6455, whole messages"][0]
    for name in ("websocketz 0.2", "embedded-websocket 0.9"):
        if name in rows:
            note = "" if rows[name][1] == len(SIZES) else " (it did not do the job)"
            print(f"  ours (whole messages) / {name}: {ours / rows[name][0]:.2f}{note}")


if __name__ == "__main__":
    sys.exit(main())
