//! A full disk: the broker's data dir lives on a small ext4 filesystem (a file-backed loop
//! device, so O_DIRECT works as on a real disk), nearly filled by a filler file. Producing with
//! acks=all until the disk is full must:
//! - answer KAFKA_STORAGE_ERROR (retriable for Kafka clients) and keep the broker up;
//! - lose nothing that was acknowledged;
//! - accept produce again once space is freed (the filler file deleted), without a restart;
//! - leave segments and indexes that a restart (after SIGKILL, then after a clean stop) reads
//!   back whole: every acknowledged message once, in order, and no recovery warning.
//!
//! Needs root (mount); without it the test prints why and passes without checking anything.

use crate::common;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::raw::{
    parse_produce_v3_response, produce_v3_body, record_batch, round_trip, Cursor, Reply,
};
use common::{
    assign, consume_count, consumer, create_topic, leader_address, topic_name, Broker,
    BrokerOptions, CLIENT_TIMEOUT,
};

/// An empty broker preallocates 16 MiB for each of its group-offsets partitions (about 480 MiB
/// at startup) and does not start on less; the image is sparse, so this costs little real disk.
const IMAGE_BYTES: u64 = 1 << 30;
/// Left free after the filler: a few segments' worth.
const HEADROOM_BYTES: u64 = 12 << 20;
const VALUE_BYTES: usize = 64 * 1024;
const KAFKA_STORAGE_ERROR: i16 = 56;
const TIMEOUT: Duration = Duration::from_secs(30);

/// A mounted loop filesystem, unmounted and deleted on drop.
struct SmallFs {
    root: PathBuf,
    mount: PathBuf,
}

impl SmallFs {
    fn create() -> Result<SmallFs, String> {
        // `id -u` rather than geteuid(), which would need unsafe code.
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("not root: cannot mount a loop filesystem".into());
        }
        let root =
            std::env::temp_dir().join(format!("sluice-fulldisk-{}", uuid::Uuid::new_v4().simple()));
        let mount = root.join("mnt");
        std::fs::create_dir_all(&mount).map_err(|e| e.to_string())?;
        let image = root.join("fs.img");
        let fs = SmallFs { root, mount };
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(IMAGE_BYTES))
            .map_err(|e| format!("create image: {e}"))?;
        run("mkfs.ext4", &["-q", "-F", "-m", "0", path_str(&image)])?;
        run(
            "mount",
            &["-o", "loop", path_str(&image), path_str(&fs.mount)],
        )?;
        Ok(fs)
    }

    fn available_bytes(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1", path_str(&self.mount)])
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df output")
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        if run("umount", &[path_str(&self.mount)]).is_err() {
            let _ = run("umount", &["-l", path_str(&self.mount)]);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn value(i: usize) -> Vec<u8> {
    let mut value = format!("msg-{i:06}-").into_bytes();
    value.resize(VALUE_BYTES, b'p');
    value
}

/// Produces message `i` with acks=all: the error code and base offset.
fn produce(stream: &mut TcpStream, topic: &str, i: usize) -> Result<(i16, i64), String> {
    let v = value(i);
    // Current timestamps: time retention (7 days) would delete 2023-stamped segments.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let batch = record_batch(&[v.as_slice()], now_ms, false);
    let correlation_id = i as i32;
    match round_trip(
        stream,
        0,
        3,
        correlation_id,
        &produce_v3_body(topic, 0, -1, &batch),
        TIMEOUT,
    ) {
        Reply::Frame(frame) => Ok(parse_produce_v3_response(&frame, correlation_id)),
        other => Err(format!("produce #{i}: {other:?}")),
    }
}

/// Reads the partition back; checks that every acknowledged message is there exactly once at
/// its acknowledged offset, and that nothing else is there but messages that were sent.
fn verify(
    broker: &Broker,
    topic: &str,
    acked: &BTreeMap<usize, i64>,
    sent_count: usize,
    when: &str,
) {
    let consumer = consumer(broker.bootstrap(), &[]);
    assign(&consumer, topic, &[(0, 0)]);
    let consumed = consume_count(&consumer, acked.len(), CLIENT_TIMEOUT);
    let mut seen = BTreeMap::new();
    let mut last_offset = -1;
    for message in &consumed {
        assert!(
            message.offset > last_offset,
            "{when}: offsets out of order at {}",
            message.offset
        );
        last_offset = message.offset;
        let value = message.value.as_deref().unwrap_or_default();
        let id: usize = std::str::from_utf8(&value[4..10.min(value.len())])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{when}: offset {} holds a value never produced",
                    message.offset
                )
            });
        assert!(id < sent_count, "{when}: message {id} was never sent");
        assert_eq!(
            value,
            value_of(id).as_slice(),
            "{when}: message {id} content"
        );
        assert!(
            seen.insert(id, message.offset).is_none(),
            "{when}: message {id} twice"
        );
    }
    for (id, offset) in acked {
        assert_eq!(
            seen.get(id),
            Some(offset),
            "{when}: acknowledged message {id} at offset {offset}"
        );
    }
    eprintln!(
        "{when}: {} messages read back, all {} acknowledged among them",
        consumed.len(),
        acked.len()
    );
}

fn value_of(i: usize) -> Vec<u8> {
    value(i)
}

fn alive(broker: &mut Broker) {
    broker.assert_alive();
    for (_, address) in &broker.ready_line().brokers {
        let mut stream = TcpStream::connect(address).expect("connect");
        match round_trip(&mut stream, 18, 0, 1, &[], TIMEOUT) {
            Reply::Frame(body) => assert_eq!(Cursor::new(&body).i32(), 1),
            other => panic!("{address}: ApiVersions on a full disk got {other:?}"),
        }
    }
}

#[test]
fn full_disk_refuses_produce_then_recovers() {
    let fs = match SmallFs::create() {
        Ok(fs) => fs,
        Err(reason) => {
            common::prerequisite::require(Some(reason));
            return;
        }
    };
    let mut broker = Broker::start_with(BrokerOptions {
        fixed_ports: true,
        segment_bytes: 4 << 20,
        data_parent: Some(fs.mount.clone()),
        ..BrokerOptions::default()
    });
    let topic = topic_name("full-disk");
    create_topic(broker.bootstrap(), &topic, 1);
    let leader = leader_address(&broker, &topic, 0);
    let mut stream = TcpStream::connect(&leader).expect("connect");
    let mut acked = BTreeMap::new();
    let mut sent = 0usize;
    // Some data before the disk fills.
    for _ in 0..20 {
        let (code, offset) = produce(&mut stream, &topic, sent).expect("produce");
        assert_eq!(code, 0, "produce before the disk is full");
        acked.insert(sent, offset);
        sent += 1;
    }

    let filler = fs.mount.join("filler");
    let filler_bytes = fs.available_bytes().saturating_sub(HEADROOM_BYTES);
    run(
        "fallocate",
        &["-l", &filler_bytes.to_string(), path_str(&filler)],
    )
    .expect("fallocate filler");
    eprintln!(
        "filler {} MiB, {} MiB left",
        filler_bytes >> 20,
        fs.available_bytes() >> 20
    );

    let mut first_error = None;
    let limit = sent + (HEADROOM_BYTES as usize / VALUE_BYTES) * 4;
    while sent < limit {
        let (code, offset) = produce(&mut stream, &topic, sent).expect("produce while filling");
        sent += 1;
        if code == 0 {
            acked.insert(sent - 1, offset);
        } else {
            first_error = Some(code);
            break;
        }
    }
    eprintln!(
        "disk full after {} acknowledged messages: {first_error:?}",
        acked.len()
    );
    assert_eq!(
        first_error,
        Some(KAFKA_STORAGE_ERROR),
        "a full disk should answer KAFKA_STORAGE_ERROR (after {sent} produces)"
    );
    // It stays that way while full, and the broker stays up.
    let (code, _) = produce(&mut stream, &topic, sent).expect("produce on a full disk");
    sent += 1;
    assert_ne!(code, 0, "produce succeeded although the disk is still full");
    alive(&mut broker);
    verify(&broker, &topic, &acked, sent, "while the disk is full");

    std::fs::remove_file(&filler).expect("delete filler");
    let resumed_by = Instant::now() + Duration::from_secs(30);
    let mut last_code = code;
    let mut resumed = false;
    while Instant::now() < resumed_by {
        let mut stream = TcpStream::connect(&leader).expect("connect");
        let (code, offset) = produce(&mut stream, &topic, sent).expect("produce after freeing");
        sent += 1;
        last_code = code;
        if code == 0 {
            acked.insert(sent - 1, offset);
            resumed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut failures = Vec::new();
    if !resumed {
        failures.push(format!(
            "produce did not resume within 30 s of freeing space (last error code {last_code}); \
             the partition stays failed until a restart"
        ));
    }
    verify(&broker, &topic, &acked, sent, "after freeing space");

    // A crash, then a clean stop: both restarts read every acknowledged message back and log
    // no recovery warning about segments or indexes.
    broker.kill();
    broker.restart();
    verify(&broker, &topic, &acked, sent, "after SIGKILL and restart");
    let mut stream = TcpStream::connect(leader_address(&broker, &topic, 0)).expect("connect");
    for _ in 0..5 {
        let (code, offset) = produce(&mut stream, &topic, sent).expect("produce after restart");
        sent += 1;
        assert_eq!(code, 0, "produce after restart");
        acked.insert(sent - 1, offset);
    }
    broker.stop_graceful();
    broker.restart();
    verify(
        &broker,
        &topic,
        &acked,
        sent,
        "after a clean stop and restart",
    );
    let stderr = broker.stderr();
    for warning in ["invalid tail", "does not continue", "corrupt", "failed"] {
        if stderr.contains(warning) {
            failures.push(format!(
                "restart after a clean stop logged {warning:?}:\n{stderr}"
            ));
        }
    }
    broker.stop_graceful();
    drop(broker);
    drop(fs);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
