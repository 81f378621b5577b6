//! With `--admin-token-file`, the admin endpoint answers 401 to a request without the
//! bearer token or with a wrong one, and 200 with it.

use crate::common::{free_port_range, Broker, BrokerOptions};

use std::io::{Read, Write};
use std::net::TcpStream;

/// `GET /ready` with `authorization` as the header line, if any; the status code.
fn status(port: u16, authorization: Option<&str>) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to admin port");
    let header = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(stream, "GET /ready HTTP/1.1\r\nHost: x\r\n{header}\r\n").expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[test]
fn admin_token_is_required_when_configured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-admin-token\n").expect("write token");
    let port = free_port_range(1);
    let _broker = Broker::start_with(BrokerOptions {
        extra_args: vec![
            "--admin-listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--admin-token-file".to_owned(),
            token_file.display().to_string(),
        ],
        ..BrokerOptions::default()
    });
    assert_eq!(status(port, None), 401);
    assert_eq!(status(port, Some("Bearer wrong")), 401);
    assert_eq!(status(port, Some("Bearer s3cret-admin-token")), 200);
}
