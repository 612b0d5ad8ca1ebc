#!/usr/bin/env python3
"""Builds the same WebSocket server job with each library for
thumbv7em-none-eabihf (release: opt-level "s", LTO, panic = abort) and
prints the flash each takes (.text + .rodata + .data of the linked ELF),
less the harness alone (the `baseline` binary), with ours / theirs.
`rfc6455_core` is the core alone under a loop of its own (no driver, no
timers): what the core costs, and, from `rfc6455`, what the driver adds.

usage: benches/embedded/size.py
"""
import struct
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = "thumbv7em-none-eabihf"
BINS = ["baseline", "rfc6455", "rfc6455_core", "websocketz", "embedded_websocket"]


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


def main():
    subprocess.run(["rustup", "target", "add", TARGET], check=False, capture_output=True)
    subprocess.run(
        ["cargo", "build", "--quiet", "--release", "--target", TARGET],
        cwd=HERE,
        check=True,
    )
    out = HERE / "target" / TARGET / "release"
    sizes = {name: flash(out / name) for name in BINS}
    base = sizes["baseline"]
    ours = sizes["rfc6455"] - base
    print(f"flash for {TARGET}, less the harness ({base} bytes):")
    for name in BINS[1:]:
        size = sizes[name] - base
        ratio = "" if name.startswith("rfc6455") else f"   ours / theirs {ours / size:.2f}"
        print(f"  {name:20} {size:7} bytes{ratio}")


if __name__ == "__main__":
    sys.exit(main())
