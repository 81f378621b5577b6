//! On a SASL listener, requests out of turn, unsupported mechanisms, garbage or truncated
//! SASL tokens and random frames close only the connection that sent them (after Kafka's
//! error answer where Kafka gives one); an authenticated client keeps being served.

use crate::common;
use crate::sasl_support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use kafka_protocol::messages::MetadataRequest;
use sluice::client::{Connection, ConnectionConfig, SaslLogin};
use sluice::security::sasl::SaslMechanism;

use common::raw::{frame, put_string, read_reply, round_trip, Cursor, Reply, Rng};
use sasl_support::sasl_broker;

const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const METADATA: i16 = 3;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(addr: &str) -> TcpStream {
    TcpStream::connect(addr).expect("connect")
}

fn handshake(stream: &mut TcpStream, mechanism: &str) -> (i16, Vec<String>) {
    let mut body = Vec::new();
    put_string(&mut body, mechanism);
    let Reply::Frame(reply) = round_trip(stream, SASL_HANDSHAKE, 1, 1, &body, REPLY_TIMEOUT) else {
        panic!("no SaslHandshake answer");
    };
    let mut cursor = Cursor::new(&reply);
    assert_eq!(cursor.i32(), 1);
    let error = cursor.i16();
    let count = cursor.i32();
    (error, (0..count).map(|_| cursor.string()).collect())
}

/// SaslAuthenticate v1 with `token`; (error code, error message).
fn authenticate(stream: &mut TcpStream, token: &[u8]) -> (i16, String) {
    let mut body = (token.len() as i32).to_be_bytes().to_vec();
    body.extend_from_slice(token);
    let Reply::Frame(reply) = round_trip(stream, SASL_AUTHENTICATE, 1, 2, &body, REPLY_TIMEOUT)
    else {
        panic!("no SaslAuthenticate answer");
    };
    let mut cursor = Cursor::new(&reply);
    assert_eq!(cursor.i32(), 2);
    let error = cursor.i16();
    let message_len = cursor.i16();
    let message = if message_len >= 0 {
        String::from_utf8_lossy(cursor.take(message_len as usize)).into_owned()
    } else {
        String::new()
    };
    (error, message)
}

fn assert_closed(stream: &mut TcpStream, what: &str) {
    let reply = read_reply(stream, REPLY_TIMEOUT);
    assert!(matches!(reply, Reply::Closed), "{what}: {reply:?}");
}

/// The authenticated client still gets Metadata answers.
fn assert_served(client: &mut Connection, what: &str) {
    let answer = client.send(&MetadataRequest::default());
    assert!(answer.is_ok(), "after {what}: {answer:?}");
}

#[test]
fn garbage_sasl_exchanges_close_only_their_connection() {
    let broker = sasl_broker(&[("alice", "alice-pw")], &[]);
    let addr = broker
        .bootstrap()
        .split(',')
        .next()
        .expect("an address")
        .to_owned();
    let login = SaslLogin {
        mechanism: SaslMechanism::ScramSha512,
        username: "alice".to_owned(),
        password: "alice-pw".to_owned(),
    };
    let config = ConnectionConfig {
        sasl: Some(login),
        ..ConnectionConfig::default()
    };
    let mut client = Connection::connect(&addr, &config).expect("alice authenticates");
    assert_served(&mut client, "authenticating");

    // A request other than ApiVersions/SaslHandshake before authentication.
    let mut stream = connect(&addr);
    let reply = round_trip(
        &mut stream,
        METADATA,
        1,
        9,
        &0i32.to_be_bytes(),
        REPLY_TIMEOUT,
    );
    assert!(matches!(reply, Reply::Closed), "metadata first: {reply:?}");
    assert_served(&mut client, "metadata before authentication");

    // A mechanism the broker does not offer: UNSUPPORTED_SASL_MECHANISM with the list, then close.
    let mut stream = connect(&addr);
    let (error, mechanisms) = handshake(&mut stream, "GSSAPI");
    assert_eq!(error, UNSUPPORTED_SASL_MECHANISM);
    assert_eq!(mechanisms, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    assert_closed(&mut stream, "unsupported mechanism");

    // Another request where SaslAuthenticate is due.
    let mut stream = connect(&addr);
    assert_eq!(handshake(&mut stream, "PLAIN").0, 0);
    let reply = round_trip(
        &mut stream,
        METADATA,
        1,
        9,
        &0i32.to_be_bytes(),
        REPLY_TIMEOUT,
    );
    assert!(
        matches!(reply, Reply::Closed),
        "metadata mid-exchange: {reply:?}"
    );

    // Garbage where a SCRAM client-first message belongs: Kafka's vague failure, then close.
    let mut stream = connect(&addr);
    assert_eq!(handshake(&mut stream, "SCRAM-SHA-256").0, 0);
    let (error, message) = authenticate(&mut stream, b"\xff\x00garbage,,=");
    assert_eq!(error, SASL_AUTHENTICATION_FAILED);
    assert_eq!(
        message,
        "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
    );
    assert_closed(&mut stream, "garbage client-first");
    assert_served(&mut client, "garbage token");

    // A valid client-first, then a client-final with a forged proof.
    let mut stream = connect(&addr);
    assert_eq!(handshake(&mut stream, "SCRAM-SHA-256").0, 0);
    let mut body = Vec::new();
    let first = b"n,,n=alice,r=clientnonce";
    body.extend_from_slice(&(first.len() as i32).to_be_bytes());
    body.extend_from_slice(first);
    let Reply::Frame(server_first) =
        round_trip(&mut stream, SASL_AUTHENTICATE, 1, 3, &body, REPLY_TIMEOUT)
    else {
        panic!("no server-first message");
    };
    let text = String::from_utf8_lossy(&server_first).into_owned();
    // The token sits behind the response's fixed fields; the nonce runs from `r=` to `,`.
    let nonce = text
        .split_once("r=")
        .and_then(|(_, rest)| rest.split(',').next())
        .expect("server nonce");
    let forged = format!("c=biws,r={nonce},p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let (error, _) = authenticate(&mut stream, forged.as_bytes());
    assert_eq!(error, SASL_AUTHENTICATION_FAILED);
    assert_closed(&mut stream, "forged proof");

    // A SaslAuthenticate frame cut short, then the socket closed mid-frame.
    let mut stream = connect(&addr);
    assert_eq!(handshake(&mut stream, "SCRAM-SHA-512").0, 0);
    let whole = frame(SASL_AUTHENTICATE, 1, 4, b"\x00\x00\x00\x40n,,n=alice");
    stream.write_all(&whole[..whole.len() - 3]).expect("write");
    drop(stream);
    assert_served(&mut client, "a truncated frame");

    // Random frames after a handshake: each connection ends, none takes the broker along.
    let mut rng = Rng::new(0x5a51);
    for round in 0..30 {
        let mut stream = connect(&addr);
        assert_eq!(handshake(&mut stream, "SCRAM-SHA-512").0, 0);
        let api_key = [SASL_AUTHENTICATE, SASL_HANDSHAKE, METADATA][rng.below(3)];
        let version = rng.below(3) as i16;
        let body_len = rng.below(200);
        let body = rng.bytes(body_len);
        stream
            .write_all(&frame(api_key, version, 5, &body))
            .expect("write");
        // An answer (an authentication failure or a challenge) may come first; then either
        // the broker closes, or it waits for a next token that never comes.
        let _ = read_reply(&mut stream, Duration::from_millis(500));
        drop(stream);
        assert_served(&mut client, &format!("random frame {round}"));
    }
}
