#!/usr/bin/env python3
"""Builds the same WebSocket server job with each library for
thumbv7em-none-eabihf (release: opt-level "s", LTO, panic = abort) and
prints the flash each takes (.text + .rodata + .data of the linked ELF),
less the harness alone (the `baseline` binary), with ours / theirs.

Ours is measured in layers, each a build of its own:
- `rfc6455_core`: the core alone under a loop written in the binary (no
  driver): the opening handshake, framing, masking, UTF-8, close codes,
  limits, and the HTTP error responses. The same job as the peers'.
- `+ timers`, `+ forwarded`: the core with one optional part turned on
  (the cargo features of the same names).
- `rfc6455` with timers: the embedded driver's loop on top, as the
  firmware in embedded/qemu uses it.

usage: benches/embedded/size.py
"""
import struct
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = "thumbv7em-none-eabihf"
PEERS = ["websocketz", "embedded_websocket"]
# (row, binary, cargo features of this crate)
OURS = [
    ("core", "rfc6455_core", []),
    ("core + timers", "rfc6455_core", ["timers"]),
    ("core + forwarded", "rfc6455_core", ["forwarded"]),
    ("driver + timers", "rfc6455", ["timers"]),
]


def flash(path):
    """Bytes of the ELF's allocated sections that live in flash (code,
    read-only data, initial values of data), from its section headers."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 1, "a 32-bit ELF"
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x2E)
    total = 0
    for i in range(shnum):
        _, kind, flags, _, _, size = struct.unpack_from("<IIIIII", data, shoff + i * shentsize)
        alloc, nobits = flags & 0x2, kind == 8  # SHF_ALLOC; SHT_NOBITS is .bss
        if alloc and not nobits:
            total += size
    return total


def build(features, bins):
    """Flash of each of `bins`, built with these features."""
    args = ["cargo", "build", "--quiet", "--release", "--target", TARGET]
    if features:
        args += ["--features", ",".join(features)]
    for name in bins:
        args += ["--bin", name]
    subprocess.run(args, cwd=HERE, check=True)
    out = HERE / "target" / TARGET / "release"
    return {name: flash(out / name) for name in bins}


def main():
    subprocess.run(["rustup", "target", "add", TARGET], check=False, capture_output=True)
    plain = build([], ["baseline"] + PEERS)
    base = plain["baseline"]
    peers = {name: plain[name] - base for name in PEERS}
    smaller = min(peers.values())
    print(f"flash for {TARGET}, less the harness ({base} bytes):")
    for name, size in peers.items():
        print(f"  {name:24} {size:7} bytes")
    previous = None
    for row, binary, features in OURS:
        size = build(features, [binary])[binary] - base
        more = "" if previous is None else f"   {size - previous:+6} on core"
        print(f"  {row:24} {size:7} bytes   ours / smaller peer {size / smaller:.2f}{more}")
        previous = size if previous is None else previous


if __name__ == "__main__":
    sys.exit(main())
