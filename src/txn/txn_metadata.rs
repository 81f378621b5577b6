//! One transactional id's state and its transitions, after Kafka's TransactionMetadata and
//! TransactionCoordinator (error codes as Kafka 4.x answers them). Pure: no I/O, no clock;
//! the coordinator persists each new state before it answers.

use std::collections::BTreeSet;

use super::TxnError;
use crate::group::offset_record::CommittedOffset;

/// Producer epochs stop short of `i16::MAX`: at `EPOCH_MAX` the next bump takes a new
/// producer id at epoch 0 (Kafka does the same).
pub const EPOCH_MAX: i16 = i16::MAX - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl TxnState {
    pub fn code(self) -> u8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<TxnState> {
        Some(match code {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            _ => return None,
        })
    }

    fn is_preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// Offsets a transaction commits to a group when it commits (TxnOffsetCommit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: CommittedOffset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    pub epoch: i16,
    /// The epoch before the last bump (-1: none), so that a retried InitProducerId whose
    /// answer was lost gets the current epoch rather than being fenced (KIP-360).
    pub last_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// When the current transaction became `Ongoing` (for the timeout).
    pub start_ms: i64,
    /// When the state last changed (for the expiration of idle transactional ids).
    pub last_update_ms: i64,
    pub partitions: BTreeSet<(String, i32)>,
    /// Groups whose offsets the transaction commits (AddOffsetsToTxn).
    pub groups: BTreeSet<String>,
    pub offsets: Vec<PendingOffset>,
}

/// What InitProducerId must do before it can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Answer with the (already bumped) producer id and epoch.
    Ready,
    /// Abort the open transaction first (its epoch bumped, fencing its producer), then call
    /// [`TxnMetadata::init`] again.
    AbortFirst,
    /// Finish writing the markers of the transaction being completed, then call again.
    CompleteFirst,
    /// The epoch is exhausted: take a new producer id, then [`TxnMetadata::restart_with`].
    NeedProducerId,
}

impl TxnMetadata {
    /// A transactional id seen for the first time gets `producer_id` at epoch 0.
    pub fn new(producer_id: i64, timeout_ms: i32) -> TxnMetadata {
        TxnMetadata {
            producer_id,
            epoch: 0,
            last_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            start_ms: 0,
            last_update_ms: 0,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            offsets: Vec::new(),
        }
    }

    /// InitProducerId for an existing transactional id. `expected` is the producer id and
    /// epoch a v3+ client sends when it re-initializes itself (KIP-360), `(-1, -1)` otherwise.
    pub fn init(&mut self, timeout_ms: i32, expected: (i64, i16)) -> Result<InitStep, TxnError> {
        let (expected_id, expected_epoch) = expected;
        let fenced = TxnError::ProducerFenced {
            got: expected_epoch,
            current: self.epoch,
        };
        // Checked first: a fenced instance must not abort the current one's transaction.
        if expected_id >= 0 && expected_id != self.producer_id {
            return Err(fenced);
        }
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => return Ok(InitStep::CompleteFirst),
            TxnState::Ongoing => return Ok(InitStep::AbortFirst),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {}
        }
        if expected_id >= 0 {
            if expected_epoch >= 0 && expected_epoch == self.last_epoch {
                // A retry of a bump already made: answer the current epoch again.
                return Ok(InitStep::Ready);
            }
            if expected_epoch != self.epoch {
                return Err(fenced);
            }
        }
        if self.epoch >= EPOCH_MAX {
            return Ok(InitStep::NeedProducerId);
        }
        self.last_epoch = self.epoch;
        self.epoch += 1;
        self.reset(timeout_ms);
        Ok(InitStep::Ready)
    }

    /// InitProducerId once the epoch is exhausted: a new producer id at epoch 0.
    pub fn restart_with(&mut self, producer_id: i64, timeout_ms: i32) {
        self.producer_id = producer_id;
        self.epoch = 0;
        self.last_epoch = -1;
        self.reset(timeout_ms);
    }

    fn reset(&mut self, timeout_ms: i32) {
        self.timeout_ms = timeout_ms;
        self.state = TxnState::Empty;
        self.partitions.clear();
        self.groups.clear();
        self.offsets.clear();
    }

    /// The checks every request of a producer inside a transaction goes through.
    pub fn check_producer(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<(), TxnError> {
        if producer_id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping {
                transactional_id: transactional_id.to_owned(),
                got: producer_id,
            });
        }
        if epoch != self.epoch {
            return Err(TxnError::ProducerFenced {
                got: epoch,
                current: self.epoch,
            });
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: whether anything changed (and must be persisted).
    pub fn add(
        &mut self,
        partitions: &[(String, i32)],
        group: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, TxnError> {
        if self.state.is_preparing() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let known = partitions.iter().all(|p| self.partitions.contains(p))
            && group.is_none_or(|g| self.groups.contains(g));
        if self.state == TxnState::Ongoing && known {
            return Ok(false);
        }
        if self.state != TxnState::Ongoing {
            self.state = TxnState::Ongoing;
            self.start_ms = now_ms;
            self.partitions.clear();
            self.groups.clear();
            self.offsets.clear();
        }
        self.partitions.extend(partitions.iter().cloned());
        if let Some(group) = group {
            self.groups.insert(group.to_owned());
        }
        Ok(true)
    }

    /// TxnOffsetCommit: offsets the transaction will commit to `group`.
    pub fn stage_offsets(&mut self, offsets: Vec<PendingOffset>) -> Result<(), TxnError> {
        if self.state != TxnState::Ongoing {
            return Err(TxnError::InvalidTxnState(
                "offsets can be committed only inside a transaction",
            ));
        }
        for pending in offsets {
            self.offsets.retain(|o| {
                (&o.group, &o.topic, o.partition)
                    != (&pending.group, &pending.topic, pending.partition)
            });
            self.offsets.push(pending);
        }
        Ok(())
    }

    /// EndTxn: `Ok(true)` when the transaction moved to a `Prepare*` state whose markers must
    /// now be written, `Ok(false)` when it is already complete in that direction (a retry).
    pub fn end(&mut self, commit: bool) -> Result<bool, TxnError> {
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                self.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                Ok(true)
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(false),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(TxnError::ConcurrentTransactions)
            }
            // Clients send no EndTxn for a transaction that never got a partition.
            (TxnState::Empty, _) => Err(TxnError::InvalidTxnState("no transaction to end")),
            _ => Err(TxnError::InvalidTxnState(
                "the transaction is being completed the other way",
            )),
        }
    }

    /// A coordinator-side abort (timeout, or a new producer instance): bumps the epoch so the
    /// old producer is fenced, and prepares the abort. `false` when the epoch is exhausted
    /// (the abort then keeps it; the next InitProducerId takes a new producer id).
    pub fn fence_and_abort(&mut self) -> bool {
        let bumped = self.epoch < EPOCH_MAX;
        if bumped {
            self.last_epoch = self.epoch;
            self.epoch += 1;
        }
        self.state = TxnState::PrepareAbort;
        bumped
    }

    /// The markers of a `Prepare*` state are written: the transaction is complete.
    pub fn complete(&mut self) {
        self.state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            other => other,
        };
        self.partitions.clear();
        self.groups.clear();
        self.offsets.clear();
    }

    /// Whether the transactional id has been idle, with no transaction open, for
    /// `expiration_ms` at `now_ms`.
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        ) && now_ms.saturating_sub(self.last_update_ms) >= expiration_ms
    }

    /// Whether the `Ongoing` transaction has outlived its timeout at `now_ms`.
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.state == TxnState::Ongoing
            && now_ms.saturating_sub(self.start_ms) > i64::from(self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(p: i32) -> (String, i32) {
        ("t".to_owned(), p)
    }

    #[test]
    fn a_transaction_commits_then_a_retried_end_is_answered_again() {
        let mut txn = TxnMetadata::new(7, 60_000);
        assert_eq!(txn.init(60_000, (-1, -1)), Ok(InitStep::Ready));
        assert_eq!(txn.epoch, 1);
        assert_eq!(txn.add(&[partition(0)], None, 5), Ok(true));
        assert_eq!(txn.add(&[partition(0)], None, 6), Ok(false));
        assert_eq!(txn.add(&[], Some("g"), 6), Ok(true));
        assert_eq!(txn.end(true), Ok(true));
        assert_eq!(
            txn.add(&[partition(1)], None, 7),
            Err(TxnError::ConcurrentTransactions)
        );
        assert_eq!(txn.end(true), Err(TxnError::ConcurrentTransactions));
        txn.complete();
        assert_eq!(txn.state, TxnState::CompleteCommit);
        assert_eq!(txn.end(true), Ok(false));
        assert!(matches!(txn.end(false), Err(TxnError::InvalidTxnState(_))));
    }

    #[test]
    fn a_new_instance_fences_the_old_one() {
        let mut txn = TxnMetadata::new(7, 60_000);
        txn.add(&[partition(0)], None, 0).expect("add");
        // The new instance finds a transaction open: it is aborted under a bumped epoch.
        assert_eq!(txn.init(60_000, (-1, -1)), Ok(InitStep::AbortFirst));
        assert!(txn.fence_and_abort());
        assert_eq!(txn.init(60_000, (-1, -1)), Ok(InitStep::CompleteFirst));
        txn.complete();
        assert_eq!(txn.init(60_000, (-1, -1)), Ok(InitStep::Ready));
        assert_eq!(txn.epoch, 2);
        // The old instance, at epoch 0, is fenced.
        assert_eq!(
            txn.check_producer("id", 7, 0),
            Err(TxnError::ProducerFenced { got: 0, current: 2 })
        );
        assert!(matches!(
            txn.check_producer("id", 8, 2),
            Err(TxnError::InvalidProducerIdMapping { .. })
        ));
        // KIP-360: a client re-initializing with a stale epoch is fenced too (epoch 1, the
        // one before the last bump, would be a retry of that bump).
        assert!(matches!(
            txn.init(60_000, (7, 0)),
            Err(TxnError::ProducerFenced { .. })
        ));
    }

    #[test]
    fn a_retried_bump_gets_the_same_epoch_and_a_stale_id_aborts_nothing() {
        let mut txn = TxnMetadata::new(7, 60_000);
        assert_eq!(txn.init(60_000, (7, 0)), Ok(InitStep::Ready));
        assert_eq!(txn.epoch, 1);
        // The answer was lost; the client asks again with the epoch it had.
        assert_eq!(txn.init(60_000, (7, 0)), Ok(InitStep::Ready));
        assert_eq!(txn.epoch, 1);
        txn.add(&[partition(0)], None, 0).expect("add");
        assert!(matches!(
            txn.init(60_000, (6, 0)),
            Err(TxnError::ProducerFenced { .. })
        ));
        assert_eq!(
            txn.state,
            TxnState::Ongoing,
            "the open transaction is untouched"
        );
    }

    #[test]
    fn an_exhausted_epoch_takes_a_new_producer_id() {
        let mut txn = TxnMetadata::new(7, 60_000);
        txn.epoch = EPOCH_MAX;
        assert_eq!(txn.init(60_000, (-1, -1)), Ok(InitStep::NeedProducerId));
        txn.restart_with(8, 60_000);
        assert_eq!((txn.producer_id, txn.epoch), (8, 0));
    }

    #[test]
    fn only_an_idle_id_without_a_transaction_expires() {
        let mut txn = TxnMetadata::new(7, 1_000);
        txn.last_update_ms = 100;
        assert!(!txn.expired(1_099, 1_000));
        assert!(txn.expired(1_100, 1_000));
        txn.add(&[partition(0)], None, 100).expect("add");
        assert!(
            !txn.expired(10_000, 1_000),
            "an open transaction keeps its id"
        );
    }

    #[test]
    fn only_an_ongoing_transaction_times_out() {
        let mut txn = TxnMetadata::new(7, 1_000);
        assert!(!txn.timed_out(10_000));
        txn.add(&[partition(0)], None, 100).expect("add");
        assert!(!txn.timed_out(1_100));
        assert!(txn.timed_out(1_101));
    }
}
