//! A plaintext Kafka client and random bytes sent to an SSL listener each fail their TLS
//! handshake and are disconnected; a TLS client connected before them keeps being served.

use crate::common;
use crate::tls_support::{borrowed, ssl_settings, tls_broker, tls_port, Pki};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{produce_all, producer, topic_name, TestRecord};

/// Writes `bytes` and reads until the broker closes; true when it closed the socket.
fn closed_after(bootstrap: &str, bytes: &[u8]) -> bool {
    let mut socket = TcpStream::connect(bootstrap).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    socket.write_all(bytes).expect("write");
    let mut buffer = [0u8; 4096];
    loop {
        match socket.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue, // a TLS alert, then the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn plaintext_and_garbage_on_ssl_port_close_only_their_connection() {
    let pki = Pki::new();
    let broker = tls_broker(&pki, "SSL", tls_port(), &[]);
    let bootstrap = broker.bootstrap().to_owned();
    let settings = ssl_settings(&pki);
    let topic = topic_name("tls-garbage");
    let tls_producer = producer(&bootstrap, &borrowed(&settings));
    let first = [TestRecord::new("k", "before").partition(0)];
    let deliveries = produce_all(&tls_producer, &topic, &first);
    assert!(
        deliveries.iter().all(|d| d.error.is_none()),
        "{deliveries:?}"
    );

    // An ApiVersions request as a plaintext client sends it first.
    let api_versions: &[u8] = &[
        0, 0, 0, 14, 0, 18, 0, 3, 0, 0, 0, 1, 0, 4, b't', b'e', b's', b't',
    ];
    assert!(closed_after(&bootstrap, api_versions), "plaintext request");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(closed_after(&bootstrap, &garbage), "garbage");

    // The TLS connection opened before is still served.
    let second = [TestRecord::new("k", "after").partition(0)];
    let deliveries = produce_all(&tls_producer, &topic, &second);
    assert!(
        deliveries.iter().all(|d| d.error.is_none()),
        "{deliveries:?}"
    );
}
