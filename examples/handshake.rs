//! The opening handshake and one frame, byte by byte.
//!
//! ```text
//! cargo run --example handshake
//! ```
//!
//! Runs a client and a server in memory and prints what goes over the wire:
//! the client's request, how the server derives `Sec-WebSocket-Accept` from
//! the key, the server's response, then one masked "Hello" frame from the
//! client, field by field. The key and the masking key are the examples of
//! RFC 6455 (§1.3 and §5.7), so every value can be checked against the RFC;
//! real clients draw both at random.

use base64::Engine as _;
use sha1::{Digest, Sha1};

use rfc6455::frame::Header;
use rfc6455::handshake::{
    accept_key, Accept, ClientHandshake, ClientRequest, ServerHandshake, GUID,
};
use rfc6455::{Config, Event, MaskKeys};

fn show(title: &str, bytes: &[u8]) {
    println!("── {title} ({} bytes) ──", bytes.len());
    for line in String::from_utf8_lossy(bytes).split_inclusive("\r\n") {
        println!("  {}", line.replace("\r\n", "\\r\\n"));
    }
    println!();
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    // 1. The client builds its request around a 16-byte nonce, base64-encoded.
    let request = ClientRequest::new("server.example.com", "/chat")
        .protocol("chat")
        .protocol("superchat");
    // The masking key of RFC 6455 §5.7's examples, so the output is the
    // RFC's; a real client keeps the default, a fresh random key per frame.
    let mut config = Config::default();
    config.mask_keys = MaskKeys::Fixed([0x37, 0xfa, 0x21, 0x3d]);
    let client = ClientHandshake::with_key(&request, config, *b"the sample nonce");
    show("client → server: the Upgrade request", client.request());

    // 2. The server parses it and proves it understood: SHA-1 of the key
    //    followed by the GUID, in base64.
    let server = ServerHandshake::new(Config::default());
    let request = server
        .handle_read(client.request())
        .expect("a valid request")
        .done()
        .expect("the whole head arrived");
    let key = client.key();
    println!("── how the server computes Sec-WebSocket-Accept ──");
    println!("  key                 {key}");
    println!("  key + GUID          {key}{GUID}");
    let digest = Sha1::digest(format!("{key}{GUID}").as_bytes());
    println!("  SHA-1               {}", hex(&digest));
    let accept = base64::engine::general_purpose::STANDARD.encode(digest);
    println!("  base64              {accept}");
    assert_eq!(accept, accept_key(key.as_bytes()));
    println!();

    let offered = request.protocols().join(", ");
    let accepted = request
        .accept(Accept::new().protocol("chat"))
        .expect("valid");
    show(
        "server → client: 101 Switching Protocols",
        &accepted.response,
    );
    println!("  (the client offered subprotocols [{offered}]; the server chose \"chat\")\n");
    let mut server = accepted.connection;

    // 3. The client checks the response; both sides now speak frames.
    let connected = client
        .handle_read(&accepted.response)
        .expect("a valid response")
        .done()
        .expect("the whole head arrived");
    let mut client = connected.connection;

    // 4. One text frame from the client. Client frames are always masked.
    client.send_text("Hello").expect("open");
    let frame = client.pending_output().to_vec();
    let (header, header_len) = Header::decode(&frame).expect("valid").expect("complete");
    let key = header.mask.expect("client frames are masked");
    let masked = &frame[header_len..];
    let unmasked: Vec<u8> = masked
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 4])
        .collect();
    println!(
        "── client → server: one masked text frame ({} bytes) ──",
        frame.len()
    );
    println!("  {}", hex(&frame));
    println!("  byte 0 = {:08b}", frame[0]);
    println!(
        "    FIN    = {}        (the last frame of the message)",
        u8::from(header.fin)
    );
    println!("    RSV1-3 = {:03b}      (no extension in use)", header.rsv);
    println!("    opcode = {:04b}     (0x1: text)", header.opcode.as_u8());
    println!("  byte 1 = {:08b}", frame[1]);
    println!("    MASK   = 1        (client-to-server frames are masked)");
    println!(
        "    length = {:07b}  ({} bytes of payload)",
        header.len, header.len
    );
    println!("  masking key    {}", hex(&key));
    println!("  masked payload {}", hex(masked));
    println!(
        "  unmasked       {}  = {:?}",
        hex(&unmasked),
        String::from_utf8_lossy(&unmasked)
    );
    println!("  (each payload byte i is XORed with masking key byte i mod 4)");

    server.handle_read(&frame);
    match server.poll_event() {
        Some(Event::Message(message)) => println!(
            "\nthe server received: {:?}",
            message.as_text().unwrap_or("")
        ),
        other => panic!("unexpected {other:?}"),
    }
}
