//! Clients that send part of a request and then stall (slowloris): 200 per shard stuck in the
//! size prefix, in the header or in a small body, plus one per shard that announced a 1 MiB
//! produce and sent half of it. While they hold their connections open, a well-behaved rdkafka
//! producer keeps being acknowledged promptly and new connections are answered; when they go
//! away the broker is still healthy.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::raw::{frame, produce_v3_body, record_batch, round_trip, Cursor, Reply};
use common::{Broker, HealthyClient};

const STALLERS_PER_SHARD: usize = 200;

fn partial(kind: usize) -> Vec<u8> {
    let whole = frame(3, 1, 9, &[0, 0, 0, 1, 0, 5, b't', b'o', b'p', b'i', b'c']);
    match kind % 3 {
        0 => whole[..2].to_vec(),               // inside the size prefix
        1 => whole[..10].to_vec(),              // inside the header
        _ => whole[..whole.len() - 3].to_vec(), // inside the body
    }
}

#[test]
fn half_sent_requests_do_not_stall_other_clients() {
    let mut broker = Broker::start();
    let healthy = HealthyClient::start(&broker);
    let mut stallers = Vec::new();
    for (_, address) in broker.ready_line().brokers.clone() {
        for kind in 0..STALLERS_PER_SHARD {
            let mut stream = TcpStream::connect(&address).expect("connect staller");
            stream
                .write_all(&partial(kind))
                .expect("write partial request");
            stallers.push(stream);
        }
        // Half of a 1 MiB produce.
        let value = vec![7u8; 1 << 20];
        let request = frame(
            0,
            3,
            10,
            &produce_v3_body(
                "stalled",
                0,
                1,
                &record_batch(&[value.as_slice()], 1, false),
            ),
        );
        let mut stream = TcpStream::connect(&address).expect("connect staller");
        stream
            .write_all(&request[..request.len() / 2])
            .expect("write half a produce");
        stallers.push(stream);
    }
    // Let the well-behaved client run for a while beside them.
    std::thread::sleep(Duration::from_secs(3));
    for (_, address) in &broker.ready_line().brokers {
        let mut stream = TcpStream::connect(address).expect("connect");
        match round_trip(&mut stream, 18, 0, 3, &[], Duration::from_secs(5)) {
            Reply::Frame(body) => assert_eq!(Cursor::new(&body).i32(), 3),
            other => panic!(
                "{address}: ApiVersions beside {} stallers got {other:?}",
                stallers.len()
            ),
        }
    }
    healthy.finish(Duration::from_secs(5));
    drop(stallers);
    broker.assert_alive();
    broker.stop_graceful();
}
