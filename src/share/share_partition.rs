//! The delivery state of one share-partition: one share group's view of one topic
//! partition. Pure, synchronous state; persistence and dead-lettering are driven by the
//! [`StateChange`]s and [`DeadLetterJob`]s its methods return.
//!
//! Worked example (delivery limit 5, lock 30 s): the log holds offsets 0..=9 and the group
//! starts at 0. A fetch by member `a` acquires 0..=4 (delivery count 1) and moves
//! `end_offset` to 5. `a` accepts 0..=2 and releases 3: `start_offset` moves to 3 (0..=2 are
//! done and forgotten), 3 is available again, 4 stays acquired. Member `b` then acquires 3
//! (delivery count 2) and 5..=9. If `b`'s lock on 3 expires, 3 becomes available again; the
//! fifth time it would become available it is archived instead and sent to the dead-letter
//! topic, if the group has one.

use std::collections::BTreeMap;
use std::rc::Rc;

/// Kafka's AcknowledgeType values (KIP-932), plus RENEW (KIP-1222).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckType {
    Gap,
    Accept,
    Release,
    Reject,
    Renew,
}

impl AckType {
    pub fn from_wire(value: i8) -> Option<AckType> {
        match value {
            0 => Some(AckType::Gap),
            1 => Some(AckType::Accept),
            2 => Some(AckType::Release),
            3 => Some(AckType::Reject),
            4 => Some(AckType::Renew),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordState {
    Available,
    Acquired { member: Rc<str>, deadline_ms: i64 },
    Acknowledged,
    Archived,
}

impl RecordState {
    fn is_terminal(&self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub state: RecordState,
    pub delivery_count: i16,
}

/// A durable fact about the share-partition, appended to its state log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StateChange {
    /// Offsets `first..=last` were handed out; their delivery count is now `count`.
    Delivered {
        first: i64,
        last: i64,
        count: i16,
    },
    Acknowledged {
        first: i64,
        last: i64,
    },
    Archived {
        first: i64,
        last: i64,
    },
    /// The share-partition (re)starts at `offset` with nothing in flight: every offset below
    /// it is done and every offset from it on is yet to be delivered. Written on
    /// initialisation, by admin resets (which may move it backwards) and at the head of a
    /// compaction snapshot.
    Start {
        offset: i64,
    },
}

/// Why a record is sent to the dead-letter topic (the `sluice.dlq.reason` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    Rejected,
    DeliveryLimit,
}

impl DeadLetterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Rejected => "rejected",
            DeadLetterReason::DeliveryLimit => "delivery-limit",
        }
    }
}

/// A record archived by REJECT or the delivery limit. Its `Archived` change is persisted
/// only once the record is in the dead-letter topic (or there is none), so a crash in
/// between delivers it again rather than losing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterJob {
    pub offset: i64,
    pub delivery_count: i16,
    pub reason: DeadLetterReason,
}

/// One contiguous run of acquired offsets with one delivery count (the wire's AcquiredRecords).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquiredRange {
    pub first: i64,
    pub last: i64,
    pub delivery_count: i16,
}

/// A batch header as found in the log: the offsets it spans and whether it is a control batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    pub base: i64,
    pub last: i64,
    pub control: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("offset {0} is not acquired by this member")]
    InvalidRecordState(i64),
    #[error("acknowledge type {0} is unknown")]
    InvalidAckType(i8),
    #[error("acknowledgement batch {first}..={last} is malformed")]
    InvalidBatch { first: i64, last: i64 },
}

/// One acknowledgement batch as it arrives on the wire, types decoded.
#[derive(Debug, Clone)]
pub struct AckBatch {
    pub first: i64,
    pub last: i64,
    /// One type for the whole batch, or one per offset.
    pub types: Vec<AckType>,
}

/// What a change to record states produced: facts to persist, records to dead-letter, and
/// whether any record became available (long-polling fetches should look again).
#[derive(Debug, Default)]
pub struct Outcome {
    pub changes: Vec<StateChange>,
    pub dead_letters: Vec<DeadLetterJob>,
    pub released: bool,
}

#[derive(Debug, Clone)]
pub struct SharePartition {
    /// Every offset below this is acknowledged or archived.
    start_offset: i64,
    /// Every offset at or above this has never been acquired.
    end_offset: i64,
    /// Offsets in `start_offset..end_offset` that exist in the log and are not yet forgotten.
    in_flight: BTreeMap<i64, InFlight>,
}

impl SharePartition {
    pub fn new(start_offset: i64) -> SharePartition {
        SharePartition {
            start_offset,
            end_offset: start_offset,
            in_flight: BTreeMap::new(),
        }
    }

    /// Rebuilds the state from persisted changes, in log order. Records that were acquired
    /// at the time of a crash come back available, keeping their delivery count.
    pub fn replay<'a>(changes: impl IntoIterator<Item = &'a StateChange>) -> SharePartition {
        let mut partition = SharePartition::new(0);
        for change in changes {
            partition.apply_change(change);
        }
        partition.advance_start();
        partition
    }

    /// Applies persisted changes to a state rebuilt from earlier ones (a replica following
    /// its leader's changes), as [`SharePartition::replay`] would.
    pub fn apply_changes<'a>(&mut self, changes: impl IntoIterator<Item = &'a StateChange>) {
        for change in changes {
            self.apply_change(change);
        }
        self.advance_start();
    }

    fn apply_change(&mut self, change: &StateChange) {
        match *change {
            StateChange::Start { offset } => {
                // A reset forgets what was delivered before it, as it does in memory
                // (`PartitionShares::reset_start`), also when it moves backwards.
                *self = SharePartition::new(offset);
            }
            StateChange::Delivered { first, last, count } => {
                for offset in first.max(self.start_offset)..=last {
                    let entry = self.in_flight.entry(offset).or_insert(InFlight {
                        state: RecordState::Available,
                        delivery_count: 0,
                    });
                    if !entry.state.is_terminal() {
                        entry.delivery_count = entry.delivery_count.max(count);
                    }
                }
                self.end_offset = self.end_offset.max(last + 1);
            }
            StateChange::Acknowledged { first, last } | StateChange::Archived { first, last } => {
                let state = if matches!(change, StateChange::Acknowledged { .. }) {
                    RecordState::Acknowledged
                } else {
                    RecordState::Archived
                };
                for offset in first.max(self.start_offset)..=last {
                    let delivery_count =
                        self.in_flight.get(&offset).map_or(1, |r| r.delivery_count);
                    self.in_flight.insert(
                        offset,
                        InFlight {
                            state: state.clone(),
                            delivery_count,
                        },
                    );
                }
                self.end_offset = self.end_offset.max(last + 1);
            }
        }
    }

    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// Records acquired, available for redelivery, or done but not yet below the start offset.
    pub fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    /// Records in flight that are not yet done: acquired by a member, or released and
    /// waiting for redelivery.
    pub fn pending_count(&self) -> usize {
        self.in_flight
            .values()
            .filter(|r| !r.state.is_terminal())
            .count()
    }

    /// Records at or above the start offset that are already acknowledged or archived
    /// (their lower neighbours are not, so the start offset cannot pass them yet).
    pub fn done_count(&self) -> usize {
        self.in_flight
            .values()
            .filter(|r| r.state.is_terminal())
            .count()
    }

    pub fn acquired_count(&self) -> usize {
        self.in_flight
            .values()
            .filter(|r| matches!(r.state, RecordState::Acquired { .. }))
            .count()
    }

    pub fn record(&self, offset: i64) -> Option<&InFlight> {
        self.in_flight.get(&offset)
    }

    /// Moves the start offset (an admin reset, or the log's start passing it): offsets below
    /// it are forgotten.
    pub fn reset_start(&mut self, offset: i64) {
        self.in_flight = self.in_flight.split_off(&offset);
        self.start_offset = offset;
        self.end_offset = self.end_offset.max(offset);
        self.advance_start();
    }

    /// Keeps the share-partition within the log after retention deleted its head.
    pub fn clamp_to_log(&mut self, log_start_offset: i64) {
        if self.start_offset < log_start_offset {
            self.reset_start(log_start_offset);
        }
    }

    /// The lowest offset a fetch could acquire, given the log's high watermark.
    pub fn next_candidate(&self, high_watermark: i64) -> Option<i64> {
        let redelivery = self
            .in_flight
            .iter()
            .find(|(_, r)| r.state == RecordState::Available)
            .map(|(offset, _)| *offset);
        let fresh = (self.end_offset < high_watermark).then_some(self.end_offset);
        match (redelivery, fresh) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Acquires up to `records_max` records for `member` among `batches` (read from the log,
    /// in offset order), never letting more than `in_flight_max` records be in flight.
    pub fn acquire(
        &mut self,
        batches: &[BatchSpan],
        member: &Rc<str>,
        deadline_ms: i64,
        records_max: usize,
        in_flight_max: usize,
    ) -> (Vec<AcquiredRange>, Outcome) {
        let mut ranges: Vec<AcquiredRange> = Vec::new();
        let mut acquired = 0usize;
        'batches: for batch in batches {
            for offset in batch.base.max(self.start_offset)..=batch.last {
                if acquired >= records_max {
                    break 'batches;
                }
                let delivery_count = if offset < self.end_offset {
                    match self.in_flight.get_mut(&offset) {
                        Some(record) if record.state == RecordState::Available => {
                            record.delivery_count = record.delivery_count.saturating_add(1);
                            record.state = RecordState::Acquired {
                                member: Rc::clone(member),
                                deadline_ms,
                            };
                            record.delivery_count
                        }
                        _ => continue,
                    }
                } else if batch.control {
                    // Control records (transaction markers) are never delivered.
                    self.end_offset = offset + 1;
                    continue;
                } else {
                    if self.in_flight.len() >= in_flight_max {
                        break 'batches;
                    }
                    self.in_flight.insert(
                        offset,
                        InFlight {
                            state: RecordState::Acquired {
                                member: Rc::clone(member),
                                deadline_ms,
                            },
                            delivery_count: 1,
                        },
                    );
                    self.end_offset = offset + 1;
                    1
                };
                acquired += 1;
                match ranges.last_mut() {
                    Some(range)
                        if range.last + 1 == offset && range.delivery_count == delivery_count =>
                    {
                        range.last = offset;
                    }
                    _ => ranges.push(AcquiredRange {
                        first: offset,
                        last: offset,
                        delivery_count,
                    }),
                }
            }
        }
        self.advance_start();
        let changes = ranges
            .iter()
            .map(|r| StateChange::Delivered {
                first: r.first,
                last: r.last,
                count: r.delivery_count,
            })
            .collect();
        (
            ranges,
            Outcome {
                changes,
                ..Outcome::default()
            },
        )
    }

    /// Applies one member's acknowledgements. All batches are checked before any is
    /// applied, so a refused request changes nothing.
    pub fn acknowledge(
        &mut self,
        member: &str,
        batches: &[AckBatch],
        lock_ms: i64,
        now_ms: i64,
        delivery_limit: i16,
    ) -> Result<Outcome, AckError> {
        for batch in batches {
            let count = batch
                .last
                .checked_sub(batch.first)
                .and_then(|d| d.checked_add(1));
            let valid = match count {
                Some(n) if n > 0 => batch.types.len() == 1 || batch.types.len() as i64 == n,
                _ => false,
            };
            if !valid {
                return Err(AckError::InvalidBatch {
                    first: batch.first,
                    last: batch.last,
                });
            }
            for (i, offset) in (batch.first..=batch.last).enumerate() {
                if batch_type(batch, i) == AckType::Gap {
                    continue;
                }
                let held = self.in_flight.get(&offset).is_some_and(|r| {
                    matches!(&r.state, RecordState::Acquired { member: m, .. } if &**m == member)
                });
                if !held {
                    return Err(AckError::InvalidRecordState(offset));
                }
            }
        }
        let mut outcome = Outcome::default();
        let mut accepted = Runs::default();
        let mut archived = Runs::default();
        for batch in batches {
            for (i, offset) in (batch.first..=batch.last).enumerate() {
                let ack = batch_type(batch, i);
                let Some(record) = self.in_flight.get_mut(&offset) else {
                    continue; // a gap the log never held
                };
                match ack {
                    AckType::Accept => {
                        record.state = RecordState::Acknowledged;
                        accepted.push(offset);
                    }
                    AckType::Gap => {
                        if !record.state.is_terminal() {
                            record.state = RecordState::Archived;
                            archived.push(offset);
                        }
                    }
                    AckType::Reject => {
                        record.state = RecordState::Archived;
                        outcome.dead_letters.push(DeadLetterJob {
                            offset,
                            delivery_count: record.delivery_count,
                            reason: DeadLetterReason::Rejected,
                        });
                    }
                    AckType::Release => {
                        release(offset, record, delivery_limit, &mut outcome);
                    }
                    AckType::Renew => {
                        if let RecordState::Acquired { deadline_ms, .. } = &mut record.state {
                            *deadline_ms = now_ms.saturating_add(lock_ms);
                        }
                    }
                }
            }
        }
        outcome.changes.extend(
            accepted
                .finish()
                .map(|(first, last)| StateChange::Acknowledged { first, last }),
        );
        outcome.changes.extend(
            archived
                .finish()
                .map(|(first, last)| StateChange::Archived { first, last }),
        );
        self.advance_start();
        Ok(outcome)
    }

    /// Releases every lock that expired by `now_ms` (or, with `member`, every lock that
    /// member holds: its share session closed).
    pub fn release_locks(
        &mut self,
        now_ms: i64,
        member: Option<&str>,
        delivery_limit: i16,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        for (offset, record) in self.in_flight.iter_mut() {
            let due = match (&record.state, member) {
                (RecordState::Acquired { member: m, .. }, Some(member)) => &**m == member,
                (RecordState::Acquired { deadline_ms, .. }, None) => *deadline_ms <= now_ms,
                _ => false,
            };
            if due {
                release(*offset, record, delivery_limit, &mut outcome);
            }
        }
        self.advance_start();
        outcome
    }

    /// Whether any record is locked (the timer task skips partitions without locks).
    pub fn has_locks(&self) -> bool {
        self.in_flight
            .values()
            .any(|r| matches!(r.state, RecordState::Acquired { .. }))
    }

    /// The changes that rebuild this state from nothing (a compaction's snapshot).
    pub fn snapshot(&self) -> Vec<StateChange> {
        let mut changes = vec![StateChange::Start {
            offset: self.start_offset,
        }];
        for (offset, record) in &self.in_flight {
            let (first, last) = (*offset, *offset);
            changes.push(StateChange::Delivered {
                first,
                last,
                count: record.delivery_count,
            });
            match record.state {
                RecordState::Acknowledged => {
                    changes.push(StateChange::Acknowledged { first, last })
                }
                RecordState::Archived => changes.push(StateChange::Archived { first, last }),
                _ => {}
            }
        }
        if self.end_offset > self.start_offset
            && !self.in_flight.contains_key(&(self.end_offset - 1))
        {
            // Offsets up to the end were seen (gaps or control records): keep the end.
            changes.push(StateChange::Archived {
                first: self.end_offset - 1,
                last: self.end_offset - 1,
            });
        }
        changes
    }

    /// Forgets the done records at the head of the window.
    fn advance_start(&mut self) {
        while let Some(entry) = self.in_flight.first_entry() {
            if !entry.get().state.is_terminal() {
                self.start_offset = *entry.key();
                return;
            }
            entry.remove();
        }
        self.start_offset = self.end_offset;
    }
}

fn batch_type(batch: &AckBatch, index: usize) -> AckType {
    if batch.types.len() == 1 {
        batch.types[0]
    } else {
        batch.types[index]
    }
}

/// A released record becomes available again, unless it reached the delivery limit.
fn release(offset: i64, record: &mut InFlight, delivery_limit: i16, outcome: &mut Outcome) {
    if record.delivery_count >= delivery_limit {
        record.state = RecordState::Archived;
        outcome.dead_letters.push(DeadLetterJob {
            offset,
            delivery_count: record.delivery_count,
            reason: DeadLetterReason::DeliveryLimit,
        });
    } else {
        record.state = RecordState::Available;
        outcome.released = true;
    }
}

/// Collects offsets into contiguous runs.
#[derive(Default)]
struct Runs(Vec<(i64, i64)>);

impl Runs {
    fn push(&mut self, offset: i64) {
        match self.0.last_mut() {
            Some((_, last)) if *last + 1 == offset => *last = offset,
            _ => self.0.push((offset, offset)),
        }
    }

    fn finish(self) -> impl Iterator<Item = (i64, i64)> {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(spans: &[(i64, i64)]) -> Vec<BatchSpan> {
        spans
            .iter()
            .map(|&(base, last)| BatchSpan {
                base,
                last,
                control: false,
            })
            .collect()
    }

    fn ack(first: i64, last: i64, ack: AckType) -> AckBatch {
        AckBatch {
            first,
            last,
            types: vec![ack],
        }
    }

    #[test]
    fn the_worked_example_of_the_module_docs() {
        let a: Rc<str> = Rc::from("a");
        let b: Rc<str> = Rc::from("b");
        let mut sp = SharePartition::new(0);
        let (ranges, _) = sp.acquire(&batches(&[(0, 9)]), &a, 30_000, 5, 100);
        assert_eq!(
            ranges,
            vec![AcquiredRange {
                first: 0,
                last: 4,
                delivery_count: 1
            }]
        );
        assert_eq!(sp.end_offset(), 5);
        let outcome = sp
            .acknowledge(
                "a",
                &[ack(0, 2, AckType::Accept), ack(3, 3, AckType::Release)],
                30_000,
                0,
                5,
            )
            .expect("a holds 0..=3");
        assert!(outcome.released);
        assert_eq!(sp.start_offset(), 3);
        assert_eq!(sp.next_candidate(10), Some(3));
        let (ranges, _) = sp.acquire(&batches(&[(0, 9)]), &b, 30_000, 100, 100);
        assert_eq!(
            ranges[0],
            AcquiredRange {
                first: 3,
                last: 3,
                delivery_count: 2
            }
        );
        assert_eq!(
            ranges[1],
            AcquiredRange {
                first: 5,
                last: 9,
                delivery_count: 1
            }
        );
        // `a` may not acknowledge what `b` holds.
        assert_eq!(
            sp.acknowledge("a", &[ack(5, 5, AckType::Accept)], 30_000, 0, 5)
                .err(),
            Some(AckError::InvalidRecordState(5))
        );
    }

    #[test]
    fn lock_expiry_redelivers_until_the_delivery_limit_then_dead_letters() {
        let m: Rc<str> = Rc::from("m");
        let mut sp = SharePartition::new(0);
        for round in 1..=3 {
            let (ranges, _) = sp.acquire(&batches(&[(0, 0)]), &m, 100 * round, 10, 10);
            assert_eq!(ranges.len(), 1, "round {round}");
            assert_eq!(ranges[0].delivery_count as i64, round);
            let outcome = sp.release_locks(100 * round, None, 3);
            if round < 3 {
                assert!(outcome.released);
            } else {
                assert_eq!(outcome.dead_letters.len(), 1);
                assert_eq!(
                    outcome.dead_letters[0].reason,
                    DeadLetterReason::DeliveryLimit
                );
            }
        }
        assert_eq!(sp.start_offset(), 1);
        assert_eq!(sp.in_flight_count(), 0);
    }

    #[test]
    fn replay_keeps_acknowledged_and_frees_acquired() {
        let changes = vec![
            StateChange::Start { offset: 10 },
            StateChange::Delivered {
                first: 10,
                last: 14,
                count: 1,
            },
            StateChange::Acknowledged {
                first: 10,
                last: 11,
            },
            StateChange::Acknowledged {
                first: 13,
                last: 13,
            },
            StateChange::Delivered {
                first: 12,
                last: 12,
                count: 2,
            },
        ];
        let mut sp = SharePartition::replay(&changes);
        assert_eq!(sp.start_offset(), 12);
        assert_eq!(sp.end_offset(), 15);
        assert_eq!(sp.record(12).map(|r| r.delivery_count), Some(2));
        assert_eq!(
            sp.record(13).map(|r| r.state.clone()),
            Some(RecordState::Acknowledged)
        );
        let m: Rc<str> = Rc::from("m");
        let (ranges, _) = sp.acquire(&batches(&[(10, 19)]), &m, 0, 100, 100);
        let offsets: Vec<(i64, i64)> = ranges.iter().map(|r| (r.first, r.last)).collect();
        assert_eq!(offsets, vec![(12, 12), (14, 14), (15, 19)]);
    }

    #[test]
    fn replay_of_a_backward_reset_delivers_everything_again() {
        let changes = vec![
            StateChange::Start { offset: 0 },
            StateChange::Delivered {
                first: 0,
                last: 9,
                count: 1,
            },
            StateChange::Acknowledged { first: 0, last: 9 },
            StateChange::Start { offset: 4 },
        ];
        let sp = SharePartition::replay(&changes);
        assert_eq!((sp.start_offset(), sp.end_offset()), (4, 4));
        assert_eq!(sp.next_candidate(10), Some(4));
        assert_eq!((sp.pending_count(), sp.done_count()), (0, 0));
    }

    #[test]
    fn in_flight_is_bounded() {
        let m: Rc<str> = Rc::from("m");
        let mut sp = SharePartition::new(0);
        let (ranges, _) = sp.acquire(&batches(&[(0, 99)]), &m, 0, 1000, 10);
        assert_eq!(
            ranges,
            vec![AcquiredRange {
                first: 0,
                last: 9,
                delivery_count: 1
            }]
        );
        let (ranges, _) = sp.acquire(&batches(&[(0, 99)]), &m, 0, 1000, 10);
        assert!(ranges.is_empty());
    }

    #[test]
    fn reject_archives_and_dead_letters() {
        let m: Rc<str> = Rc::from("m");
        let mut sp = SharePartition::new(0);
        sp.acquire(&batches(&[(0, 2)]), &m, 0, 10, 10);
        let outcome = sp
            .acknowledge(
                "m",
                &[AckBatch {
                    first: 0,
                    last: 2,
                    types: vec![AckType::Accept, AckType::Reject, AckType::Accept],
                }],
                0,
                0,
                5,
            )
            .expect("held");
        assert_eq!(outcome.dead_letters.len(), 1);
        assert_eq!(outcome.dead_letters[0].offset, 1);
        assert_eq!(sp.start_offset(), 3);
    }
}
