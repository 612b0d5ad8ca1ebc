#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/corpus/<target>/.

Each target reads a few fixed bytes of settings (see the `Input` struct of
its fuzz target: integers are little-endian, a bool is the low bit of a
byte) and then the raw bytes: frames, or an HTTP head. The seeds are the
examples of RFC 6455 with a few settings each. Run it from anywhere; it
replaces the files it writes and leaves others alone.
"""

import base64
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def mask(key, payload):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(opcode, payload, fin=True, key=None):
    """A frame with the length in the fewest bytes (RFC 6455 section 5.2)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    bit = 0x80 if key else 0
    n = len(payload)
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if key:
        return head + key + mask(key, payload)
    return head + payload


# --- frame_decode: flags (1), mask (4), chunk sizes (8), then the bytes.
# flags: 1 streaming, 2 end of stream, 4 close first, 8 no auto pong, 16 tiny limits.
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])  # the key of the section 5.7 examples
ONE_BY_ONE = bytes([1] * 8)
MIXED = bytes([3, 1, 7, 0, 2, 13, 5, 64])
WHOLE = bytes([0] * 8)


def frame_seed(name, data, flags=0, sizes=MIXED):
    write("frame_decode", name, bytes([flags]) + KEY + sizes + data)


# Section 5.7, byte for byte.
hello = bytes.fromhex("810548656c6c6f")
hello_masked = bytes.fromhex("818537fa213d7f9f4d5158")
hel_lo = bytes.fromhex("010348656c") + bytes.fromhex("80026c6f")
ping = bytes.fromhex("890548656c6c6f")
pong_masked = bytes.fromhex("8a8537fa213d7f9f4d5158")
bin256 = bytes.fromhex("827e0100") + bytes(range(256))
bin64k_header = bytes.fromhex("827f0000000000010000")
close_1000 = frame(0x8, struct.pack(">H", 1000))
close_1000_masked = frame(0x8, struct.pack(">H", 1000), key=KEY)

frame_seed("hello", hello)
frame_seed("hello-masked", hello_masked)
frame_seed("hello-masked-one-by-one", hello_masked, sizes=ONE_BY_ONE)
frame_seed("hel-lo", hel_lo, flags=1)
frame_seed("hel-lo-masked", frame(0x1, b"Hel", False, KEY) + frame(0x0, b"lo", True, KEY))
frame_seed("ping", ping)
frame_seed("ping-masked", frame(0x9, b"Hello", key=KEY))
frame_seed("pong-masked", pong_masked)
frame_seed("binary-256", bin256, flags=1)
frame_seed("binary-256-masked", frame(0x2, bytes(range(256)), key=KEY), sizes=WHOLE)
frame_seed("binary-64k-header", bin64k_header + b"\x00" * 16, flags=1)
frame_seed("binary-64k-header-masked", bytes.fromhex("82ff0000000000010000") + KEY, flags=16)
frame_seed("close-1000", close_1000, flags=2)
frame_seed("close-1000-masked", close_1000_masked)
frame_seed("close-first-then-close", close_1000_masked, flags=4)
frame_seed(
    "ping-inside-fragmented-text",
    frame(0x1, "κό".encode(), False, KEY)
    + frame(0x9, b"hi", key=KEY)
    + frame(0x0, "σμε".encode(), True, KEY)
    + close_1000_masked,
    flags=1,
)
frame_seed("invalid-utf8", frame(0x1, b"\xce\xba\xe1\xbd\xb9\xed\xa0\x80", key=KEY))
frame_seed("eof-mid-frame", hello_masked[:6], flags=2)

# --- handshake_request: head limit (1), field limit (1), chunk sizes (8), bytes.
def request_seed(name, data, sizes=MIXED, head_limit=255, field_limit=64):
    write("handshake_request", name, bytes([head_limit, field_limit]) + sizes + data)


RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
request_seed("rfc-1.2", RFC_REQUEST)
request_seed("rfc-1.2-one-by-one", RFC_REQUEST, sizes=ONE_BY_ONE)
request_seed("rfc-1.2-with-frame", RFC_REQUEST + hello_masked)
request_seed(
    "lowercase-lf",
    b"GET / HTTP/1.1\nhost: a\nupgrade: WebSocket\nconnection: keep-alive, upgrade\n"
    b"sec-websocket-key:AQIDBAUGBwgJCgsMDQ4PEA==\nsec-websocket-version: 13\n\n",
)
request_seed("post", RFC_REQUEST.replace(b"GET", b"POST", 1))
request_seed("http-1.0", RFC_REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0", 1))
request_seed("no-key", RFC_REQUEST.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""))
request_seed("short-key", RFC_REQUEST.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"dGhlIHNhbXBsZQ=="))
request_seed("version-8", RFC_REQUEST.replace(b"Version: 13", b"Version: 8"))
request_seed("no-upgrade", RFC_REQUEST.replace(b"Upgrade: websocket\r\n", b""))
request_seed("too-many-headers", RFC_REQUEST, field_limit=3)
request_seed("head-too-large", RFC_REQUEST, head_limit=2)
request_seed("bad-header-name", b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n")
request_seed("garbage", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n")

# --- handshake_response: flags (1), head limit (1), field limit (1), chunk sizes (8), bytes.
ACCEPT = base64.b64encode(hashlib.sha1(b"dGhlIHNhbXBsZSBub25jZQ==" + GUID).digest())
assert ACCEPT == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def response_seed(name, data, flags=1, sizes=MIXED):
    write("handshake_response", name, bytes([flags, 255, 64]) + sizes + data)


RFC_RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: " + ACCEPT + b"\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n"
    b"\r\n"
)
response_seed("rfc-1.2", RFC_RESPONSE)
response_seed("rfc-1.2-one-by-one", RFC_RESPONSE, sizes=ONE_BY_ONE)
response_seed("rfc-1.2-with-frames", RFC_RESPONSE + hello + ping + close_1000)
response_seed("no-protocol", RFC_RESPONSE.replace(b"Sec-WebSocket-Protocol: chat\r\n", b""), flags=0)
response_seed("protocol-not-offered", RFC_RESPONSE, flags=0)
response_seed("status-200", RFC_RESPONSE.replace(b"101 Switching Protocols", b"200 OK"))
response_seed("wrong-accept", RFC_RESPONSE.replace(ACCEPT, b"dGhlIHNhbXBsZSBub25jZQ=="))
response_seed("no-accept", RFC_RESPONSE.replace(b"Sec-WebSocket-Accept: " + ACCEPT + b"\r\n", b""))
response_seed("two-accepts", RFC_RESPONSE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Accept: " + ACCEPT + b"\r\n\r\n"))
response_seed("extension", RFC_RESPONSE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"))
response_seed("no-connection", RFC_RESPONSE.replace(b"Connection: Upgrade\r\n", b""))
response_seed("garbage", b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

# --- utf8: chunk sizes (4), then the text.
for i, sample in enumerate([
    "κόσμε".encode(),
    "Hello-µ@ßöäüàá-UTF-8!!".encode(),
    "\U0010FFFF\uFFFFa".encode(),
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    b"\xf4\x90\x80\x80",
    b"\xf0\x9f\x98",
    b"\xc0\xaf",
    b"\xe0\x80",
]):
    write("utf8", f"sample-{i}", bytes([1, 2, 3, 0]) + sample)

# --- mask: key (4), offset (4, little-endian), split (2), then the data.
write("mask", "rfc-5.7", KEY + struct.pack("<IH", 0, 2) + b"Hello")
write("mask", "long-odd-offset", KEY + struct.pack("<IH", 3, 37) + bytes(range(100)))

# --- roundtrip: flags (1), mask (4), chunk sizes (8), close code (2), then
# arbitrary's own encoding of the rest; any bytes are a valid input.
for name, flags, rest in [
    ("empty", 0, b""),
    ("streaming", 3, bytes(range(64))),
    ("text", 1, b"\x00\x05Hello\x03\x01" + bytes(range(40))),
]:
    write("roundtrip", name, bytes([flags]) + KEY + MIXED + struct.pack("<H", 1000) + rest)
