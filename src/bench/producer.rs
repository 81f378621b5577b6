//! One producer: an accumulator per partition, one pipelined connection per broker, and an
//! open-loop message schedule.
//!
//! At a fixed rate, message `i` is *intended* to be sent at `start + i / rate`. Messages are
//! generated when their time has come, stamped with that intended time, and latency is
//! measured from it — so when the client or broker falls behind, the queueing shows up in the
//! latency instead of silently lowering the offered load (no coordinated omission). At the
//! maximum rate the intended time is the moment the message was generated. Generation stops
//! while more than `buffer_bytes` are unacknowledged, like Kafka's `buffer.memory`.
//!
//! In transactional mode every `transaction_records` messages form a transaction: generation
//! pauses at that count, the open batches are sealed and sent, and once all are acknowledged
//! the transaction is committed before the next message is generated.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use event_listener::Event;
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::{ApiKey, ProduceResponse, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::batch_builder::{BatchMeta, BatchProducer, PartitionBuffer};
use super::error::BenchError;
use super::stats::Recorder;
use super::transaction_session::TransactionSession;
use super::wire::{self, WireReader, WireWriter};
use super::workload::{filler, Control, KeyDistribution, Rng, Workload};

/// Messages generated per loop turn before sending and yielding.
const GENERATE_CHUNK: usize = 4096;
/// Longest idle wait between loop turns.
const IDLE_WAIT_MAX: Duration = Duration::from_millis(1);
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// How long a stopping producer waits for its last acknowledgements.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// A produce request on the wire, waiting for its answer.
struct InFlight {
    correlation_id: i32,
    /// Per partition, the batches the request carries.
    batches: Vec<(i32, Vec<BatchMeta>)>,
}

/// State shared by the producer task and its connections' reader tasks.
struct Shared {
    buffered_bytes: Cell<u64>,
    ack_event: Event,
    failed: Cell<bool>,
    /// The first refusal of a batch by a partition: the open transaction must not be
    /// committed, and the abort says why.
    produce_refused: RefCell<Option<String>>,
    /// Per partition: a batch of the open transaction was acknowledged there.
    txn_opened: Vec<Cell<bool>>,
}

struct BrokerConn {
    writer: WireWriter,
    in_flight: Rc<Cell<usize>>,
    /// Absent for acks=0, where no answers come.
    answers: Option<async_channel::Sender<InFlight>>,
    reader: Option<crate::io::Task<()>>,
    /// Partitions with sealed batches, oldest first.
    ready: VecDeque<i32>,
}

pub async fn run(
    producer_id: usize,
    workload: Arc<Workload>,
    control: Arc<Control>,
    recorder: Rc<RefCell<Recorder>>,
) {
    if let Err(e) = produce(producer_id, &workload, &control, &recorder).await {
        recorder
            .borrow_mut()
            .error(format!("producer {producer_id}: {e}"));
    }
    control.producers_running.fetch_sub(1, Ordering::SeqCst);
}

async fn produce(
    producer_id: usize,
    workload: &Workload,
    control: &Control,
    recorder: &Rc<RefCell<Recorder>>,
) -> Result<(), BenchError> {
    let clock = control.clock;
    let shared = Rc::new(Shared {
        buffered_bytes: Cell::new(0),
        ack_event: Event::new(),
        failed: Cell::new(false),
        produce_refused: RefCell::new(None),
        txn_opened: (0..workload.partition_broker.len())
            .map(|_| Cell::new(false))
            .collect(),
    });
    let mut conns = Vec::with_capacity(workload.broker_addrs.len());
    for addr in &workload.broker_addrs {
        let (writer, reader) = wire::connect(
            addr,
            &format!("sluice-bench-p{producer_id}"),
            workload.tls.as_ref(),
        )
        .await?;
        let in_flight = Rc::new(Cell::new(0usize));
        let (answers, reader) = if workload.acks == 0 {
            (None, None)
        } else {
            let (tx, rx) = async_channel::unbounded();
            let task = crate::io::spawn(read_answers(
                reader,
                rx,
                workload.produce_version,
                Rc::clone(&in_flight),
                Rc::clone(&shared),
                Rc::clone(recorder),
                clock,
            ));
            (Some(tx), Some(task))
        };
        conns.push(BrokerConn {
            writer,
            in_flight,
            answers,
            reader,
            ready: VecDeque::new(),
        });
    }

    let partition_count = workload.partition_broker.len();
    let mut buffers: Vec<PartitionBuffer> = (0..partition_count)
        .map(|_| PartitionBuffer::new())
        .collect();
    let mut txn = match workload.transactional.get(producer_id) {
        Some(identity) => {
            let session = TransactionSession::open(
                identity.clone(),
                partition_count,
                &format!("sluice-bench-p{producer_id}-txn"),
                workload.tls.as_ref(),
            )
            .await?;
            for buffer in &mut buffers {
                buffer.set_transactional(BatchProducer {
                    producer_id: identity.producer_id,
                    producer_epoch: identity.producer_epoch,
                });
            }
            Some(session)
        }
        None => None,
    };
    let mut queued = vec![false; partition_count];
    let filler = filler(
        workload
            .message_bytes
            .saturating_sub(super::batch_builder::STAMP_BYTES),
        producer_id as u64 + 1,
    );
    let keys: Vec<Vec<u8>> = (0..workload.key_count.max(1))
        .map(|k| format!("key-{k}").into_bytes())
        .collect();
    let key_partition: Vec<usize> = keys
        .iter()
        .map(|k| (fnv_hash(k) % partition_count as u64) as usize)
        .collect();
    // An upper bound on one record's encoded size: the batch is sealed once the next record
    // might not fit, so batches stay within batch.size (and the broker's message.max.bytes).
    let record_bytes_max =
        workload.message_bytes + keys.iter().map(Vec::len).max().unwrap_or(0) + 32;
    let mut rng = Rng::new(producer_id as u64 * 7919 + 17);
    let mut sticky = producer_id % partition_count;
    let mut key_next = producer_id % keys.len();
    let interval_ns = workload.producer_rate.map(|rate| 1e9 / rate);
    let mut next_intended = clock.now_ns() as f64;
    let topic_name = TopicName(StrBytes::from_string(workload.topic.clone()));

    loop {
        if shared.failed.get() {
            return Err(BenchError::Usage(
                "a connection failed; see the errors above".to_owned(),
            ));
        }
        let stopping = control.stop_producing.load(Ordering::Relaxed);
        // A full transaction is flushed like a stopping run, then committed.
        let txn_full = txn
            .as_ref()
            .is_some_and(|t| t.record_count() >= workload.transaction_records);
        let listener = shared.ack_event.listen();
        let now = clock.now_ns();
        let wall_ms = crate::io::clock::now_ms();
        let mut progressed = false;

        // 1. Generate what is due.
        if interval_ns.is_some() && !stopping {
            let lag = now.saturating_sub(next_intended as u64);
            let mut r = recorder.borrow_mut();
            r.counters.schedule_lag_ns_max = r.counters.schedule_lag_ns_max.max(lag);
        }
        let mut generated = 0;
        while !stopping
            && txn
                .as_ref()
                .is_none_or(|t| t.record_count() < workload.transaction_records)
            && generated < GENERATE_CHUNK
            && shared.buffered_bytes.get() < workload.buffer_bytes
        {
            let intended = match interval_ns {
                Some(interval) => {
                    if next_intended > now as f64 {
                        break;
                    }
                    let t = next_intended as u64;
                    next_intended += interval;
                    t
                }
                None => now,
            };
            let (partition, key) = match workload.keys {
                KeyDistribution::None => (sticky, None),
                KeyDistribution::RoundRobin => {
                    let k = key_next;
                    key_next = (key_next + 1) % keys.len();
                    (key_partition[k], Some(keys[k].as_slice()))
                }
                KeyDistribution::Random => {
                    let k = rng.below(keys.len());
                    (key_partition[k], Some(keys[k].as_slice()))
                }
            };
            let buffer = &mut buffers[partition];
            buffer.push(key, &filler, intended, wall_ms, workload.batch_bytes);
            shared
                .buffered_bytes
                .set(shared.buffered_bytes.get() + workload.message_bytes as u64);
            if buffer.open_bytes() + record_bytes_max > workload.batch_bytes {
                buffer.seal(workload.compression)?;
                mark_ready(&mut conns, &mut queued, workload, partition);
                if workload.keys == KeyDistribution::None {
                    sticky = (sticky + 1) % partition_count;
                }
            }
            if let Some(t) = txn.as_mut() {
                t.count_record();
            }
            generated += 1;
        }
        progressed |= generated > 0;

        // 2. Seal batches that lingered long enough (all of them when stopping).
        let mut next_linger_ns = u64::MAX;
        for (partition, buffer) in buffers.iter_mut().enumerate() {
            let Some(since) = buffer.open_since_ns() else {
                continue;
            };
            let deadline = since.saturating_add(workload.linger_ns);
            if stopping || txn_full || deadline <= now {
                buffer.seal(workload.compression)?;
                mark_ready(&mut conns, &mut queued, workload, partition);
                if workload.keys == KeyDistribution::None && partition == sticky {
                    sticky = (sticky + 1) % partition_count;
                }
            } else {
                next_linger_ns = next_linger_ns.min(deadline);
            }
        }

        // 3. Send, up to the in-flight limit per connection, once the transaction holds every
        // partition about to be written.
        if let Some(t) = txn.as_mut() {
            let mut new: Vec<i32> = conns
                .iter()
                .flat_map(|c| c.ready.iter().copied())
                .filter(|&p| !t.is_added(p as usize))
                .collect();
            if !new.is_empty() {
                new.sort_unstable();
                t.add_partitions(&topic_name, &new).await?;
            }
        }
        for conn in conns.iter_mut() {
            while conn.in_flight.get() < workload.in_flight_max && !conn.ready.is_empty() {
                send(
                    conn,
                    &mut buffers,
                    &mut queued,
                    workload,
                    &topic_name,
                    txn.as_ref(),
                    &shared,
                    recorder,
                    clock.now_ns(),
                )
                .await?;
                progressed = true;
            }
        }

        let idle = conns
            .iter()
            .all(|c| c.ready.is_empty() && c.in_flight.get() == 0);
        if let Some(t) = txn.as_mut() {
            if idle && (txn_full || stopping) && t.record_count() > 0 {
                end_transaction(t, &shared, recorder).await?;
                progressed = true;
            }
        }
        if stopping && idle {
            break;
        }

        // 4. Wait for an answer, the next due message or lingering batch, or yield.
        if progressed {
            futures_lite::future::yield_now().await;
        } else {
            let now = clock.now_ns();
            let mut wake_ns = next_linger_ns;
            // Due messages wait while the full transaction commits: no reason to wake for them.
            if interval_ns.is_some() && !txn_full {
                wake_ns = wake_ns.min(next_intended as u64);
            }
            let wait = Duration::from_nanos(wake_ns.saturating_sub(now)).min(IDLE_WAIT_MAX);
            if stopping {
                let drained = futures_lite::future::or(
                    async {
                        listener.await;
                        true
                    },
                    async {
                        crate::io::sleep(DRAIN_TIMEOUT).await;
                        false
                    },
                )
                .await;
                if !drained {
                    return Err(BenchError::Usage(
                        "timed out waiting for the last acknowledgements".to_owned(),
                    ));
                }
            } else if !wait.is_zero() {
                futures_lite::future::or(listener, crate::io::sleep(wait)).await;
            } else {
                // Something is due but nothing moved (generation is held back): let the
                // reader tasks run instead of spinning.
                futures_lite::future::yield_now().await;
            }
        }
    }
    if let Some(t) = txn.as_mut() {
        t.close().await;
    }
    for conn in conns.iter_mut() {
        conn.answers = None; // the reader task ends when its queue closes
        conn.writer.close().await;
        if let Some(task) = conn.reader.take() {
            task.await;
        }
    }
    Ok(())
}

/// Commits the transaction whose batches are all acknowledged, or aborts it when a partition
/// refused one of them.
async fn end_transaction(
    txn: &mut TransactionSession,
    shared: &Shared,
    recorder: &Rc<RefCell<Recorder>>,
) -> Result<(), BenchError> {
    let refusal = shared.produce_refused.borrow().clone();
    if let Some(refusal) = refusal {
        txn.abort().await?;
        return Err(BenchError::Usage(format!(
            "aborted a transaction of {}: {refusal}",
            txn.identity().transactional_id
        )));
    }
    let record_count = txn.commit().await?;
    for opened in &shared.txn_opened {
        opened.set(false);
    }
    let mut r = recorder.borrow_mut();
    r.counters.committed_txns += 1;
    r.counters.committed_msgs += record_count;
    Ok(())
}

fn mark_ready(
    conns: &mut [BrokerConn],
    queued: &mut [bool],
    workload: &Workload,
    partition: usize,
) {
    if !queued[partition] {
        queued[partition] = true;
        conns[workload.partition_broker[partition]]
            .ready
            .push_back(partition as i32);
    }
}

#[allow(clippy::too_many_arguments)]
async fn send(
    conn: &mut BrokerConn,
    buffers: &mut [PartitionBuffer],
    queued: &mut [bool],
    workload: &Workload,
    topic_name: &TopicName,
    txn: Option<&TransactionSession>,
    shared: &Shared,
    recorder: &Rc<RefCell<Recorder>>,
    now_ns: u64,
) -> Result<(), BenchError> {
    let mut partition_data = Vec::new();
    let mut metas = Vec::new();
    let mut request_bytes = 0usize;
    while request_bytes < workload.request_bytes_max {
        let Some(partition) = conn.ready.pop_front() else {
            break;
        };
        let index = partition as usize;
        if txn.is_some() {
            // One batch per partition and request; the rest go in the next requests.
            if metas.iter().any(|(p, _)| *p == partition) {
                conn.ready.push_front(partition);
                break;
            }
            if let Some((records, meta)) = buffers[index].take_first_sealed() {
                request_bytes += records.len();
                partition_data.push(
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                );
                metas.push((partition, vec![meta]));
            }
            if buffers[index].has_sealed() {
                conn.ready.push_back(partition);
            } else {
                queued[index] = false;
            }
            continue;
        }
        queued[index] = false;
        if let Some((records, batch_metas)) = buffers[index].take_sealed() {
            request_bytes += records.len();
            partition_data.push(
                PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records)),
            );
            metas.push((partition, batch_metas));
        }
    }
    if partition_data.is_empty() {
        return Ok(());
    }
    let transactional_id =
        txn.map(|t| TransactionalId(StrBytes::from_string(t.identity().transactional_id.clone())));
    let request = ProduceRequest::default()
        .with_transactional_id(transactional_id)
        .with_acks(workload.acks)
        .with_timeout_ms(PRODUCE_TIMEOUT_MS)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name.clone())
            .with_partition_data(partition_data)]);
    {
        let mut r = recorder.borrow_mut();
        for meta in metas.iter().flat_map(|(_, m)| m) {
            r.counters.sent_msgs += u64::from(meta.record_count);
            r.counters.sent_bytes += meta.payload_bytes;
        }
    }
    conn.in_flight.set(conn.in_flight.get() + 1);
    let correlation_id = conn
        .writer
        .send(ApiKey::Produce, workload.produce_version, &request)
        .await?;
    match &conn.answers {
        Some(answers) => {
            let in_flight = InFlight {
                correlation_id,
                batches: metas,
            };
            if answers.send(in_flight).await.is_err() {
                return Err(BenchError::Usage(format!(
                    "the reader of {} stopped",
                    conn.writer.addr()
                )));
            }
        }
        None => {
            // acks=0: written is all the acknowledgement there is.
            let mut r = recorder.borrow_mut();
            let now = now_ns.max(1);
            for meta in metas.iter().flat_map(|(_, m)| m) {
                r.record_ack(meta, now);
                shared.buffered_bytes.set(
                    shared
                        .buffered_bytes
                        .get()
                        .saturating_sub(meta.payload_bytes),
                );
            }
            conn.in_flight.set(conn.in_flight.get() - 1);
        }
    }
    Ok(())
}

async fn read_answers(
    mut reader: WireReader,
    queue: async_channel::Receiver<InFlight>,
    version: i16,
    in_flight: Rc<Cell<usize>>,
    shared: Rc<Shared>,
    recorder: Rc<RefCell<Recorder>>,
    clock: super::stats::Clock,
) {
    while let Ok(request) = queue.recv().await {
        let answer: Result<ProduceResponse, BenchError> = reader
            .recv(ApiKey::Produce, version, request.correlation_id)
            .await;
        let now = clock.now_ns();
        let mut r = recorder.borrow_mut();
        match answer {
            Ok(response) => {
                let mut failed = Vec::new();
                for topic in &response.responses {
                    for partition in &topic.partition_responses {
                        if partition.error_code != 0 {
                            failed.push(partition.index);
                            let mut refusal = format!(
                                "produce to {}-{} failed with error code {}",
                                topic.name.0, partition.index, partition.error_code
                            );
                            if let Some(message) = &partition.error_message {
                                refusal.push_str(&format!(": {message}"));
                            }
                            shared
                                .produce_refused
                                .borrow_mut()
                                .get_or_insert_with(|| refusal.clone());
                            r.error(refusal);
                        }
                    }
                }
                for (partition, metas) in &request.batches {
                    if failed.contains(partition) {
                        continue;
                    }
                    if let Some(opened) = shared.txn_opened.get(*partition as usize) {
                        opened.set(true);
                    }
                    for meta in metas {
                        r.record_ack(meta, now);
                    }
                }
            }
            Err(e) => {
                r.error(e.to_string());
                shared.failed.set(true);
            }
        }
        let payload: u64 = request
            .batches
            .iter()
            .flat_map(|(_, m)| m)
            .map(|m| m.payload_bytes)
            .sum();
        shared
            .buffered_bytes
            .set(shared.buffered_bytes.get().saturating_sub(payload));
        in_flight.set(in_flight.get().saturating_sub(1));
        shared.ack_event.notify(usize::MAX);
        if shared.failed.get() {
            break;
        }
    }
}

fn fnv_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
