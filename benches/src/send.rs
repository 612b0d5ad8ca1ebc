//! Part 1, last table: what sending one small message costs through each
//! adapter, against the core's own encode and the peers' sends. Every
//! stream here takes everything at once and keeps nothing (it counts the
//! bytes), so what is left is each library's own work per message: the
//! encode, and the adapter's bookkeeping around the write (locks, wakers,
//! the flush). One core, 16-byte binary messages, client side (masked).

use rfc6455::plumbing::Plumbing;
use rfc6455::Driver;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::codec::{encode_limit_pass, frames_per_pass, ready, Content, Input, MockSink, Xor};
use crate::harness::{time_interleaved, Budget, Table};

const SIZE: usize = 16;

/// A stream that takes every write whole and never has anything to read.
#[derive(Default)]
struct Discard {
    written: usize,
}

impl io::Read for Discard {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = bufs.iter().map(|b| b.len()).sum();
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl tokio::io::AsyncRead for Discard {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

impl tokio::io::AsyncWrite for Discard {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(io::Write::write(self.get_mut(), buf))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(io::Write::write_vectored(self.get_mut(), bufs))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn client() -> rfc6455::Connection {
    rfc6455::Connection::new(rfc6455::Role::Client, rfc6455::Config::default())
}

/// Prints the table: ns per message for each way of sending, and the
/// adapters' cost over the core's encode.
pub fn run(budget: Budget) {
    let frames = frames_per_pass(SIZE);
    let payload = [0x5a_u8; SIZE];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _entered = runtime.enter();

    // The core: encode into its output, hand the output to the stream.
    let mut core = (client(), Discard::default());
    let mut core_pass = || {
        let (conn, sink) = &mut core;
        for _ in 0..frames {
            conn.send_binary(&payload).expect("send");
            let n = io::Write::write(sink, conn.pending_output()).expect("write");
            conn.consume_output(n);
        }
        frames
    };
    let mut tokio_ws = rfc6455::tokio::WebSocket::from_connection(Discard::default(), client());
    let mut tokio_pass = || {
        for _ in 0..frames {
            ready(tokio_ws.send_binary(&payload)).expect("send");
        }
        frames
    };
    let (_reader, mut writer) =
        rfc6455::tokio::WebSocket::from_connection(Discard::default(), client()).split();
    let mut split_pass = || {
        for _ in 0..frames {
            ready(writer.send_binary(&payload)).expect("send");
        }
        frames
    };
    let mut blocking_ws =
        rfc6455::blocking::WebSocket::from_connection(Discard::default(), client());
    let mut blocking_pass = || {
        for _ in 0..frames {
            blocking_ws.send_binary(&payload).expect("send");
        }
        frames
    };
    let mut tungstenite = ready(tokio_tungstenite::WebSocketStream::from_raw_socket(
        Discard::default(),
        tungstenite::protocol::Role::Client,
        None,
    ));
    let tungstenite_ws = &mut tungstenite;
    let mut tungstenite_pass = || {
        use futures_util::SinkExt;
        for _ in 0..frames {
            let message = tungstenite::Message::binary(bytes::Bytes::from_static(&[0x5a; SIZE]));
            ready(tungstenite_ws.send(message)).expect("send");
        }
        frames
    };
    let mut fast = fastwebsockets::WebSocket::after_handshake(
        Discard::default(),
        fastwebsockets::Role::Client,
    );
    let mut fast_pass = || {
        for _ in 0..frames {
            let frame = fastwebsockets::Frame::binary(fastwebsockets::Payload::Borrowed(&payload));
            ready(fast.write_frame(frame)).expect("send");
        }
        frames
    };
    let times = ready(async {
        time_interleaved(
            budget,
            &mut [
                &mut core_pass,
                &mut tokio_pass,
                &mut split_pass,
                &mut blocking_pass,
                &mut tungstenite_pass,
                &mut fast_pass,
            ],
        )
    });
    let ns = |t: Duration| t.as_secs_f64() * 1e9 / frames as f64;
    let core_ns = ns(times[0]);
    let mut table = Table::new(
        "Sending a 16 B message (client side) to a stream that takes everything at once, ns per message",
        &["how", "ns/msg", "over the core's encode"],
    );
    let names = [
        "rfc6455 core: send_binary, write the output",
        "rfc6455 tokio WebSocket::send_binary",
        "rfc6455 tokio WriteHalf::send_binary (split)",
        "rfc6455 blocking WebSocket::send_binary",
        "tokio-tungstenite send (SinkExt)",
        "fastwebsockets write_frame",
    ];
    for (name, time) in names.iter().zip(&times) {
        let cost = ns(*time);
        table.row(vec![
            name.to_string(),
            format!("{cost:.1}"),
            format!("{:.2}", cost / core_ns),
        ]);
    }
    table.note("Each send is awaited to completion (the stream is always ready, so one poll).");
    table.note("Target: the tokio adapter within 1.3 times the core's encode.");
    table.print();
    owned(budget);
}

/// Encoding a large message handed over (`send_owned`: masked in place,
/// its buffer spliced into the output) against a borrowed one
/// (`send_binary`: copied into the output as it is masked), and the limit
/// (copy into the sink, then the fastest XOR there).
fn owned(budget: Budget) {
    let mut table = Table::new(
        "Encode, client side, into a sink: a borrowed message against one handed over, GB/s",
        &[
            "size",
            "send_binary",
            "send_owned",
            "limit",
            "borrowed/limit",
            "owned/limit",
        ],
    );
    let xor = if Xor::available().contains(&Xor::Avx2) {
        Xor::Avx2
    } else {
        Xor::U64
    };
    for size in [64 << 10, 1 << 20] {
        let frames = frames_per_pass(size);
        let input = Input::new(Content::Binary, size, frames);
        let mut limit_sink = MockSink::new(size + 14);
        let mut limit = || encode_limit_pass(&input, &mut limit_sink, xor, [1, 2, 3, 4]);
        let (mut conn, mut sink) = (client(), MockSink::new(size + 14));
        let mut borrowed = || {
            for _ in 0..frames {
                conn.send_binary(&input.template).expect("send");
                while conn.pending_output_len() > 0 {
                    let n = conn.pending_output().len();
                    sink.copy_in(conn.pending_output());
                    conn.consume_output(n);
                }
            }
            frames * size
        };
        // The application's buffer: handed over, written to the sink, and
        // taken back for the next message (its bytes are the last frame's
        // masked payload, which is as good a payload as any).
        let (mut owner, mut owned_sink) = (client(), MockSink::new(size + 14));
        let mut buffer = Some(bytes::BytesMut::from(&input.template[..]));
        let mut owned = || {
            for _ in 0..frames {
                let payload = buffer.take().expect("the buffer came back");
                owner
                    .send_owned(rfc6455::MessageKind::Binary, payload)
                    .expect("send");
                loop {
                    let piece = owner.take_output(usize::MAX);
                    if piece.is_empty() {
                        break;
                    }
                    owned_sink.copy_in(&piece);
                    if piece.len() == size {
                        buffer = Some(piece.try_into_mut().expect("no one else holds it"));
                    }
                }
            }
            frames * size
        };
        let times = time_interleaved(budget, &mut [&mut limit, &mut borrowed, &mut owned]);
        let gbps = |t: Duration| (frames * size) as f64 / t.as_secs_f64() / 1e9;
        let [limit, borrowed, owned] = [0, 1, 2].map(|i| gbps(times[i]));
        table.row(vec![
            if size == 1 << 20 {
                "1 MiB".into()
            } else {
                "64 KiB".into()
            },
            format!("{borrowed:.1}"),
            format!("{owned:.1}"),
            format!("{limit:.1}"),
            format!("{:.2}", borrowed / limit),
            format!("{:.2}", owned / limit),
        ]);
    }
    table.note("limit = copy into the sink + the fastest XOR there, as in part 1; the sink copy stands for the socket's.");
    table.print();
}
