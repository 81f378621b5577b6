//! Consumers: one fetch loop per (consumer, broker), each with its own connection and one
//! fetch in flight. Every record's value carries its intended send time, so end-to-end
//! latency is measured per message when the fetch answer arrives.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::compression::Decompressor;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::batch_builder::{for_each_stamp, Compression, HEADER_BYTES};
use super::error::BenchError;
use super::stats::Recorder;
use super::wire;
use super::workload::{Control, Workload};

/// Error code OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// Partitions one fetch loop reads from one broker, with their next offsets.
#[derive(Debug, Clone)]
pub struct FetchAssignment {
    pub consumer_id: usize,
    pub broker: usize,
    pub partitions: Vec<(i32, i64)>,
}

pub async fn run(
    assignment: FetchAssignment,
    workload: Arc<Workload>,
    control: Arc<Control>,
    recorder: Rc<RefCell<Recorder>>,
) {
    let consumer_id = assignment.consumer_id;
    if let Err(e) = fetch_loop(assignment, &workload, &control, &recorder).await {
        recorder
            .borrow_mut()
            .error(format!("consumer {consumer_id}: {e}"));
    }
}

async fn fetch_loop(
    mut assignment: FetchAssignment,
    workload: &Workload,
    control: &Control,
    recorder: &Rc<RefCell<Recorder>>,
) -> Result<(), BenchError> {
    let addr = &workload.broker_addrs[assignment.broker];
    let (mut writer, mut reader) = wire::connect(
        addr,
        &format!("sluice-bench-c{}", assignment.consumer_id),
        workload.tls.as_ref(),
    )
    .await?;
    if workload.catch_up {
        while !control.consumers_go.load(Ordering::Relaxed) {
            if control.stop_consuming.load(Ordering::Relaxed) {
                return Ok(());
            }
            crate::io::sleep(Duration::from_millis(5)).await;
        }
    }
    let topic = TopicName(StrBytes::from_string(workload.topic.clone()));
    let version = workload.fetch_version;
    while !control.stop_consuming.load(Ordering::Relaxed) {
        let partitions = assignment
            .partitions
            .iter()
            .map(|&(partition, offset)| {
                FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_current_leader_epoch(-1)
                    .with_last_fetched_epoch(-1)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(workload.partition_fetch_bytes_max)
            })
            .collect();
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(workload.fetch_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(workload.fetch_bytes_max)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic.clone())
                .with_partitions(partitions)]);
        let correlation_id = writer.send(ApiKey::Fetch, version, &request).await?;
        let response: FetchResponse = reader.recv(ApiKey::Fetch, version, correlation_id).await?;
        let now = control.clock.now_ns();
        if response.error_code != 0 {
            return Err(BenchError::Broker {
                addr: addr.clone(),
                what: "Fetch",
                code: response.error_code,
            });
        }
        let mut r = recorder.borrow_mut();
        for topic_response in response.responses {
            for data in topic_response.partitions {
                let Some(slot) = assignment
                    .partitions
                    .iter_mut()
                    .find(|(p, _)| *p == data.partition_index)
                else {
                    continue;
                };
                if data.error_code != 0 {
                    r.error(format!(
                        "fetch {}-{} at {}: error code {}",
                        workload.topic, slot.0, slot.1, data.error_code
                    ));
                    if data.error_code == OFFSET_OUT_OF_RANGE {
                        return Err(BenchError::Broker {
                            addr: addr.clone(),
                            what: "Fetch",
                            code: data.error_code,
                        });
                    }
                    continue;
                }
                let Some(records) = data.records else {
                    continue;
                };
                // A catch-up run measures only the read rate: counting records from the
                // batch headers keeps the instrument from walking (or decompressing) every
                // record, which made the client, not the broker, the limit at 1 KiB.
                let read = if workload.catch_up {
                    read_batches(&records, None::<fn(u64)>)?
                } else {
                    read_batches(&records, Some(|stamp| r.record_e2e(stamp, now)))?
                };
                if let Some(next) = read.next_offset {
                    slot.1 = next;
                }
                if read.record_count > 0 {
                    control.last_consume_ns.fetch_max(now, Ordering::Relaxed);
                }
                r.counters.consumed_msgs += read.record_count;
                r.counters.consumed_bytes += read.record_count * workload.message_bytes as u64;
            }
        }
    }
    writer.close().await;
    Ok(())
}

/// What one partition's record set held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchesRead {
    pub record_count: u64,
    /// The offset after the last whole batch, if there was one.
    pub next_offset: Option<i64>,
}

/// Walks the whole batches in `records`, calling `on_stamp` with each record's stamp
/// (decompressing when needed); without `on_stamp` only the batch headers are read. A
/// trailing partial batch is ignored.
pub fn read_batches(
    records: &Bytes,
    mut on_stamp: Option<impl FnMut(u64)>,
) -> Result<BatchesRead, BenchError> {
    let mut read = BatchesRead::default();
    let mut pos = 0usize;
    while pos + HEADER_BYTES <= records.len() {
        let batch = &records[pos..];
        let length = i32::from_be_bytes([batch[8], batch[9], batch[10], batch[11]]);
        let Some(size) = usize::try_from(length).ok().map(|l| l + 12) else {
            break;
        };
        if size < HEADER_BYTES || pos + size > records.len() {
            break;
        }
        let base_offset = i64::from_be_bytes(batch[0..8].try_into().unwrap_or([0; 8]));
        let attributes = i16::from_be_bytes([batch[21], batch[22]]);
        let last_offset_delta = i32::from_be_bytes([batch[23], batch[24], batch[25], batch[26]]);
        let count = i32::from_be_bytes([batch[57], batch[58], batch[59], batch[60]]);
        let is_control = attributes & 0x20 != 0;
        if !is_control {
            match (Compression::from_attribute(attributes), on_stamp.as_mut()) {
                (None, _) => {
                    return Err(BenchError::Usage(format!(
                        "unknown compression in batch at offset {base_offset}"
                    )))
                }
                (Some(_), None) => {}
                (Some(Compression::None), Some(on_stamp)) => {
                    for_each_stamp(&batch[HEADER_BYTES..size], on_stamp);
                }
                (Some(compression), Some(on_stamp)) => {
                    let mut compressed = records.slice(pos + HEADER_BYTES..pos + size);
                    decompress(compression, &mut compressed, on_stamp)?;
                }
            }
            read.record_count += u64::try_from(count).unwrap_or(0);
        }
        read.next_offset = Some(base_offset + i64::from(last_offset_delta) + 1);
        pos += size;
    }
    Ok(read)
}

fn decompress(
    compression: Compression,
    compressed: &mut Bytes,
    on_stamp: &mut impl FnMut(u64),
) -> Result<(), BenchError> {
    use kafka_protocol::compression as c;
    let mut walk = |records: &mut Bytes| {
        for_each_stamp(records, &mut *on_stamp);
        Ok(())
    };
    let result = match compression {
        Compression::None => walk(compressed),
        Compression::Gzip => <c::Gzip as Decompressor<Bytes>>::decompress(compressed, walk),
        Compression::Snappy => <c::Snappy as Decompressor<Bytes>>::decompress(compressed, walk),
        Compression::Lz4 => <c::Lz4 as Decompressor<Bytes>>::decompress(compressed, walk),
        Compression::Zstd => <c::Zstd as Decompressor<Bytes>>::decompress(compressed, walk),
    };
    result.map_err(|e| BenchError::Usage(format!("cannot decompress a fetched batch: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::batch_builder::PartitionBuffer;

    #[test]
    fn reads_back_counts_offsets_and_stamps() {
        for compression in [Compression::None, Compression::Snappy, Compression::Gzip] {
            let mut buffer = PartitionBuffer::new();
            for i in 0..7u64 {
                buffer.push(None, b"payload", 100 + i, 0, 1024);
            }
            buffer.seal(compression).expect("seal");
            buffer.push(None, b"payload", 200, 0, 1024);
            buffer.seal(compression).expect("seal");
            let (records, _) = buffer.take_sealed().expect("sealed");
            let mut stamps = Vec::new();
            let read = read_batches(&records, Some(|s| stamps.push(s))).expect("read");
            // Base offsets are 0 (unassigned) in both batches here.
            assert_eq!(read.record_count, 8);
            assert_eq!(read.next_offset, Some(1));
            assert_eq!(stamps, vec![100, 101, 102, 103, 104, 105, 106, 200]);
            let partial = records.slice(..records.len() - 1);
            let read = read_batches(&partial, None::<fn(u64)>).expect("read");
            assert_eq!(read.record_count, 7);
            let headers_only = read_batches(&records, None::<fn(u64)>).expect("read");
            assert_eq!(
                headers_only,
                BatchesRead {
                    record_count: 8,
                    next_offset: Some(1),
                },
                "the headers alone give the same counts and next offset"
            );
        }
    }
}
