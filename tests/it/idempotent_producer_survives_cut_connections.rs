//! An idempotent librdkafka producer sends numbered messages to several partitions while a
//! TCP proxy between it and the broker cuts every connection at random moments, and the
//! broker is restarted once (kill -9). Retries after each cut must not duplicate or reorder
//! anything: a consumer then reads exactly the messages sent, in order within each
//! partition, with no duplicates and no gaps.
//!
//! The broker listens on 127.0.0.1 and advertises 127.0.0.2 with the same ports; the proxy
//! listens on 127.0.0.2 and forwards to 127.0.0.1, so every client connection crosses it.

use crate::common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assign, consumer, create_topic, producer, topic_name, Broker, BrokerOptions, CLIENT_TIMEOUT,
};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};

const PARTITIONS_COUNT: i32 = 4;
const MESSAGES_DEFAULT: usize = 1_000_000;
const CUTS: usize = 6;
const CUTTING_FOR: Duration = Duration::from_secs(60);

/// Forwards 127.0.0.2:port to 127.0.0.1:port and can cut every live connection at once.
struct CuttingProxy {
    live: Arc<Mutex<Vec<TcpStream>>>,
    cuts: AtomicUsize,
}

impl CuttingProxy {
    fn start(ports: &[u16]) -> Arc<CuttingProxy> {
        let proxy = Arc::new(CuttingProxy {
            live: Arc::new(Mutex::new(Vec::new())),
            cuts: AtomicUsize::new(0),
        });
        for &port in ports {
            let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 2], port)))
                .expect("bind proxy on 127.0.0.2");
            let live = Arc::clone(&proxy.live);
            thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let Ok(server) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
                    else {
                        continue; // the broker is restarting; the client retries
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    {
                        let mut live = live.lock().expect("lock");
                        live.push(client.try_clone().expect("clone"));
                        live.push(server.try_clone().expect("clone"));
                    }
                    pipe(
                        client.try_clone().expect("clone"),
                        server.try_clone().expect("clone"),
                    );
                    pipe(server, client);
                }
            });
        }
        proxy
    }

    fn cut_all(&self) {
        let mut live = self.live.lock().expect("lock");
        for stream in live.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.cuts.fetch_add(1, Ordering::Relaxed);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

#[test]
fn idempotent_producer_survives_cut_connections() {
    let messages: usize = std::env::var("SLUICE_IDEMPOTENCE_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MESSAGES_DEFAULT);
    let mut broker = Broker::start_with(BrokerOptions {
        fixed_ports: true,
        extra_args: vec!["--advertised-host".into(), "127.0.0.2".into()],
        ..BrokerOptions::default()
    });
    let ports: Vec<u16> = broker
        .ready_line()
        .brokers
        .iter()
        .map(|(_, address)| {
            address
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port")
        })
        .collect();
    let proxy = CuttingProxy::start(&ports);
    let bootstrap = format!("127.0.0.2:{}", ports[0]);
    let topic = topic_name("cuts");
    create_topic(&bootstrap, &topic, PARTITIONS_COUNT);

    let done = Arc::new(AtomicBool::new(false));
    let producer_thread = {
        let (bootstrap, topic, done) = (bootstrap.clone(), topic.clone(), Arc::clone(&done));
        thread::spawn(move || {
            let producer = producer(
                &bootstrap,
                &[
                    ("enable.idempotence", "true"),
                    ("message.timeout.ms", "300000"),
                    ("linger.ms", "5"),
                    ("reconnect.backoff.ms", "10"),
                ],
            );
            for n in 0..messages {
                let value = n.to_string();
                let partition = (n % PARTITIONS_COUNT as usize) as i32;
                let mut record: BaseRecord<'_, [u8], [u8], Box<usize>> =
                    BaseRecord::with_opaque_to(&topic, Box::new(n))
                        .payload(value.as_bytes())
                        .partition(partition);
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                            record = back;
                            producer.poll(Duration::from_millis(5));
                        }
                        Err((error, _)) => panic!("send {n}: {error}"),
                    }
                }
            }
            producer.flush(Duration::from_secs(300)).expect("flush");
            producer.poll(Duration::from_millis(100));
            done.store(true, Ordering::Relaxed);
            let deliveries = producer.context().deliveries.lock().expect("lock").clone();
            deliveries
        })
    };

    // Cut connections while the producer runs, and restart the broker once in the middle.
    let started = Instant::now();
    let mut cut = 0;
    let mut killed = false;
    // Faults stop after CUTTING_FOR so that a slow (shared, loaded) machine still finishes;
    // every cut costs the producer a reconnect and a resend of its in-flight batches.
    while !done.load(Ordering::Relaxed) && started.elapsed() < CUTTING_FOR {
        thread::sleep(Duration::from_millis(150 + 53 * (cut as u64 % 5)));
        if cut == CUTS / 2 {
            broker.kill();
            broker.restart();
            killed = true;
        }
        proxy.cut_all();
        cut += 1;
    }
    assert!(
        killed && cut > CUTS / 2,
        "the producer finished before the faults were injected ({cut} cuts); send more messages"
    );
    let deliveries = producer_thread.join().expect("producer thread");
    let failed: Vec<_> = deliveries.iter().filter(|d| d.error.is_some()).collect();
    assert!(
        failed.is_empty(),
        "{} deliveries failed, first {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(deliveries.len(), messages);

    // Every message exactly once, in order within its partition.
    let reader = consumer(&bootstrap, &[]);
    assign(
        &reader,
        &topic,
        &(0..PARTITIONS_COUNT).map(|p| (p, 0)).collect::<Vec<_>>(),
    );
    let mut last: HashMap<i32, i64> = HashMap::new();
    let mut seen = vec![false; messages];
    let mut read = 0usize;
    let deadline = Instant::now() + CLIENT_TIMEOUT * 2;
    while read < messages {
        assert!(Instant::now() < deadline, "read {read} of {messages}");
        let Some(result) = reader.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = result.expect("fetch");
        let n: usize = std::str::from_utf8(message.payload().unwrap_or_default())
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("a message this test sent");
        assert!(n < messages, "message {n} was never sent");
        assert!(!seen[n], "message {n} appears twice");
        seen[n] = true;
        let partition = message.partition();
        let previous = last.insert(partition, n as i64).unwrap_or(-1);
        assert!(
            previous < n as i64,
            "partition {partition}: {n} after {previous}"
        );
        read += 1;
    }
    let (_, high) = reader
        .fetch_watermarks(&topic, 0, CLIENT_TIMEOUT)
        .expect("watermarks");
    assert_eq!(
        high as usize,
        messages / PARTITIONS_COUNT as usize,
        "partition 0 holds nothing extra"
    );
    eprintln!(
        "{messages} messages through {} connection cuts and one kill -9: exactly once, in order",
        proxy.cuts.load(Ordering::Relaxed)
    );
}
