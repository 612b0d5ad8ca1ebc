#!/usr/bin/env python3
"""The host's end of the board's serial line (src/link.rs): turns TCP
connections into sessions on the line and back.

The bridge starts QEMU (the command after --, in which {line} becomes
the port QEMU connects the board's UART0 to: -serial tcp:127.0.0.1:{line}),
ends when it ends, and exits with its status. Then:

  bridge.py server --listen PORT -- QEMU...    a client that connects to
      --listen is a session the board accepts (one at a time; the next
      waits in the listen backlog);
  bridge.py client --connect PORT -- QEMU...   each session the board
      opens is connected to --connect (the fuzzing server).

On the line, ESC (0xDB) 1 opens a session, ESC 2 ends the sender's side,
ESC 3 is a data byte 0xDB. The host's end is the TCP peer's FIN; the board
ending its side closes the TCP connection, and the bridge then ends its
side too if the peer had not, which the board waits for before its next
session.
"""
import argparse
import selectors
import signal
import socket
import subprocess
import sys

ESC, OPEN, CLOSE, LITERAL = 0xDB, 1, 2, 3
# Bytes waiting for a socket beyond this stop reading from the other one.
HIGH = 4 << 20


class Bridge:
    def __init__(self, uart, mode, target, listener):
        self.uart = uart
        self.mode = mode
        self.target = target
        self.listener = listener
        self.tcp = None
        self.host_ended = False
        self.escaped = False
        self.to_uart = bytearray()
        self.to_tcp = bytearray()
        self.sessions = 0

    def open_session(self, tcp):
        tcp.setblocking(False)
        tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tcp = tcp
        self.host_ended = False
        self.to_tcp.clear()
        self.sessions += 1

    def end_session(self):
        """The board ended its side: send what it wrote, then close. The
        board waits for our end too (ESC 2), so that nothing of this
        session still on the line reaches its next one."""
        if self.tcp is None:
            return
        if not self.host_ended:
            self.host_ended = True
            self.to_uart += bytes([ESC, CLOSE])
        try:
            self.tcp.setblocking(True)
            self.tcp.settimeout(5)
            self.tcp.sendall(self.to_tcp)
        except OSError:
            pass
        self.tcp.close()
        self.tcp = None
        self.to_tcp.clear()

    def from_uart(self, data):
        """Decodes the line: data for the session, markers for its life."""
        out = self.to_tcp
        i = 0
        n = len(data)
        while i < n:
            if self.escaped:
                self.escaped = False
                byte = data[i]
                if byte == LITERAL:
                    if self.tcp is not None:
                        out.append(ESC)
                elif byte == OPEN and self.mode == "client":
                    self.board_opens()
                    out = self.to_tcp
                elif byte == CLOSE:
                    self.end_session()
                i += 1
                continue
            j = data.find(bytes([ESC]), i)
            if j < 0:
                j = n
            if self.tcp is not None:
                out += data[i:j]
            if j < n:
                self.escaped = True
            i = j + 1 if j < n else n

    def board_opens(self):
        """Client mode: the board asks for a connection to the server."""
        self.end_session()
        try:
            tcp = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        except OSError as error:
            print(f"bridge: cannot connect to {self.target}: {error}", file=sys.stderr)
            self.to_uart += bytes([ESC, CLOSE])
            return
        self.open_session(tcp)

    def run(self):
        sel = selectors.DefaultSelector()
        self.uart.setblocking(False)
        while True:
            if self.mode == "server" and self.tcp is None and not self.to_uart:
                tcp, _ = self.listener.accept()
                self.open_session(tcp)
                self.to_uart += bytes([ESC, OPEN])
            uart_events = selectors.EVENT_READ if len(self.to_tcp) < HIGH else 0
            if self.to_uart:
                uart_events |= selectors.EVENT_WRITE
            sel.register(self.uart, uart_events)
            if self.tcp is not None:
                tcp_events = 0
                if not self.host_ended and len(self.to_uart) < HIGH:
                    tcp_events |= selectors.EVENT_READ
                if self.to_tcp:
                    tcp_events |= selectors.EVENT_WRITE
                if tcp_events:
                    sel.register(self.tcp, tcp_events)
            ready = sel.select(timeout=1)
            tcp = self.tcp
            for key, events in ready:
                sock = key.fileobj
                if sock is self.uart:
                    if events & selectors.EVENT_WRITE:
                        sent = self.uart.send(self.to_uart)
                        del self.to_uart[:sent]
                    if events & selectors.EVENT_READ:
                        data = self.uart.recv(1 << 16)
                        if not data:
                            return
                        self.from_uart(data)
                elif sock is tcp and self.tcp is tcp:
                    if events & selectors.EVENT_WRITE and self.to_tcp:
                        try:
                            sent = tcp.send(self.to_tcp)
                            del self.to_tcp[:sent]
                        except OSError:
                            self.to_tcp.clear()
                    if events & selectors.EVENT_READ:
                        try:
                            data = tcp.recv(1 << 16)
                        except OSError:
                            data = b""
                        if data:
                            self.to_uart += data.replace(bytes([ESC]), bytes([ESC, LITERAL]))
                        else:
                            self.host_ended = True
                            self.to_uart += bytes([ESC, CLOSE])
            for sock in list(sel.get_map().values()):
                sel.unregister(sock.fileobj)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["server", "client"])
    parser.add_argument("--listen", type=int)
    parser.add_argument("--connect", type=int)
    parser.add_argument("qemu", nargs="+")
    args = parser.parse_args()
    line = socket.socket()
    line.bind(("127.0.0.1", 0))
    line.listen(1)
    port = line.getsockname()[1]
    # Killed (the end of a test): QEMU goes too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    qemu = subprocess.Popen([arg.replace("{line}", str(port)) for arg in args.qemu])
    listener = None
    if args.mode == "server":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", args.listen))
        listener.listen(64)
    line.settimeout(30)
    uart, _ = line.accept()
    uart.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        Bridge(uart, args.mode, args.connect, listener).run()
    finally:
        if qemu.poll() is None:
            qemu.terminate()
    return qemu.wait()


if __name__ == "__main__":
    sys.exit(main())
