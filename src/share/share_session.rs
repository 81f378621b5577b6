//! A shard's share sessions (KIP-932): for each (group, member) fetching from this shard's
//! partitions, the partitions its ShareFetch requests cover and the session epoch the next
//! request must carry. Pure, synchronous state; the handlers release records when a session
//! closes.
//!
//! The epoch rules are Kafka's (`SharePartitionManager.newContext` and
//! `acknowledgeSessionUpdate`):
//!
//! | request          | epoch 0                          | epoch -1                     | epoch n > 0                  |
//! |------------------|----------------------------------|------------------------------|------------------------------|
//! | ShareFetch       | opens a session (replacing one); | closes the session           | must equal the session's     |
//! |                  | acknowledgements are refused     |                              | next epoch; adds and forgets |
//! | ShareAcknowledge | INVALID_SHARE_SESSION_EPOCH      | closes the session           | must equal the next epoch    |
//!
//! A request other than an opening one for a session this shard does not hold gets
//! SHARE_SESSION_NOT_FOUND; an opening one when `sessions_max` sessions exist gets
//! SHARE_SESSION_LIMIT_REACHED. Every accepted request moves the next epoch on by one, for
//! ShareFetch and ShareAcknowledge alike (the client counts them together, per broker).
//!
//! Worked example: ShareFetch epoch 0 with partitions {t-0} opens the session, next epoch 1.
//! ShareFetch epoch 1 adding t-1 covers {t-0, t-1}, next epoch 2. ShareAcknowledge epoch 2,
//! next epoch 3. A retried ShareFetch epoch 2 is refused (INVALID_SHARE_SESSION_EPOCH) and
//! changes nothing. ShareFetch epoch 3 forgetting t-0 covers {t-1}. ShareAcknowledge epoch -1
//! closes the session: the member's records on t-1 are released.

use std::collections::{BTreeSet, HashMap};

use super::ShareError;

/// The epoch that opens a share session (Kafka's `ShareRequestMetadata.INITIAL_EPOCH`).
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch that closes a share session (Kafka's `ShareRequestMetadata.FINAL_EPOCH`).
pub const FINAL_EPOCH: i32 = -1;

/// A topic partition by name.
pub type TopicPartition = (String, i32);

/// What a ShareFetch asks of its session.
#[derive(Debug, Clone, Copy)]
pub struct FetchSessionRequest<'a> {
    pub epoch: i32,
    /// Partitions the request names (added to the session).
    pub added: &'a [TopicPartition],
    /// Partitions the request forgets (removed from the session).
    pub forgotten: &'a [TopicPartition],
    /// Whether the request carries acknowledgements (an opening request may not).
    pub has_acknowledgements: bool,
}

/// One member's session: the partitions it covers and the epoch its next request must carry.
#[derive(Debug)]
struct ShareSession {
    epoch_next: i32,
    partitions: BTreeSet<TopicPartition>,
}

/// The share sessions of one shard, at most `sessions_max` of them.
///
/// Concurrency contract: owned by one shard; no method awaits.
#[derive(Debug)]
pub struct ShareSessionCache {
    sessions: HashMap<(String, String), ShareSession>,
    sessions_max: usize,
}

/// The epoch after `epoch`; wraps to 1, since 0 and -1 mean open and close.
fn epoch_after(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

fn key(group: &str, member: &str) -> (String, String) {
    (group.to_owned(), member.to_owned())
}

impl ShareSessionCache {
    pub fn new(sessions_max: usize) -> ShareSessionCache {
        ShareSessionCache {
            sessions: HashMap::new(),
            sessions_max,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Applies a ShareFetch to the member's session and returns the partitions the fetch
    /// covers. A closing request also returns the partitions it names, so their records are
    /// released too.
    pub fn fetch(
        &mut self,
        group: &str,
        member: &str,
        request: FetchSessionRequest<'_>,
    ) -> Result<Vec<TopicPartition>, ShareError> {
        let key = key(group, member);
        match request.epoch {
            INITIAL_EPOCH => {
                if request.has_acknowledgements {
                    return Err(ShareError::InvalidRequest(
                        "a ShareFetch opening a share session cannot acknowledge".to_owned(),
                    ));
                }
                // The member's old session is replaced, so it does not count against the limit.
                self.sessions.remove(&key);
                if self.sessions.len() >= self.sessions_max {
                    return Err(ShareError::ShareSessionLimitReached);
                }
                let partitions: BTreeSet<TopicPartition> = request.added.iter().cloned().collect();
                let covered = partitions.iter().cloned().collect();
                self.sessions.insert(
                    key,
                    ShareSession {
                        epoch_next: epoch_after(INITIAL_EPOCH),
                        partitions,
                    },
                );
                Ok(covered)
            }
            FINAL_EPOCH => {
                let session = self
                    .sessions
                    .remove(&key)
                    .ok_or(ShareError::ShareSessionNotFound)?;
                let mut covered = session.partitions;
                covered.extend(request.added.iter().cloned());
                Ok(covered.into_iter().collect())
            }
            epoch => {
                let session = self.next(&key, epoch)?;
                session.partitions.extend(request.added.iter().cloned());
                for partition in request.forgotten {
                    session.partitions.remove(partition);
                }
                Ok(session.partitions.iter().cloned().collect())
            }
        }
    }

    /// Applies a ShareAcknowledge to the member's session. Returns the session's partitions
    /// when the request closes it (their records are to be released), else nothing.
    pub fn acknowledge(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
    ) -> Result<Vec<TopicPartition>, ShareError> {
        let key = key(group, member);
        match epoch {
            INITIAL_EPOCH => Err(ShareError::InvalidShareSessionEpoch {
                expected: self.sessions.get(&key).map(|s| s.epoch_next),
                got: epoch,
            }),
            FINAL_EPOCH => self
                .sessions
                .remove(&key)
                .map(|session| session.partitions.into_iter().collect())
                .ok_or(ShareError::ShareSessionNotFound),
            epoch => self.next(&key, epoch).map(|_| Vec::new()),
        }
    }

    /// Drops the sessions of `members` of `group` without releasing anything (their records
    /// are left to their lock timeout); returns how many there were.
    pub fn drop_members(&mut self, group: &str, members: &[String]) -> usize {
        members
            .iter()
            .filter(|member| self.sessions.remove(&key(group, member)).is_some())
            .count()
    }

    /// Checks a continuing request's epoch and moves the session to the next one.
    fn next(
        &mut self,
        key: &(String, String),
        epoch: i32,
    ) -> Result<&mut ShareSession, ShareError> {
        let session = self
            .sessions
            .get_mut(key)
            .ok_or(ShareError::ShareSessionNotFound)?;
        if session.epoch_next != epoch {
            return Err(ShareError::InvalidShareSessionEpoch {
                expected: Some(session.epoch_next),
                got: epoch,
            });
        }
        session.epoch_next = epoch_after(epoch);
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(partition: i32) -> TopicPartition {
        ("t".to_owned(), partition)
    }

    fn fetch<'a>(
        epoch: i32,
        added: &'a [TopicPartition],
        forgotten: &'a [TopicPartition],
    ) -> FetchSessionRequest<'a> {
        FetchSessionRequest {
            epoch,
            added,
            forgotten,
            has_acknowledgements: false,
        }
    }

    #[test]
    fn the_worked_example_of_the_module_docs() {
        let mut cache = ShareSessionCache::new(10);
        assert_eq!(
            cache.fetch("g", "m", fetch(0, &[tp(0)], &[])),
            Ok(vec![tp(0)])
        );
        assert_eq!(
            cache.fetch("g", "m", fetch(1, &[tp(1)], &[])),
            Ok(vec![tp(0), tp(1)])
        );
        assert_eq!(cache.acknowledge("g", "m", 2), Ok(vec![]));
        assert_eq!(
            cache.fetch("g", "m", fetch(2, &[], &[])),
            Err(ShareError::InvalidShareSessionEpoch {
                expected: Some(3),
                got: 2
            })
        );
        assert_eq!(
            cache.fetch("g", "m", fetch(3, &[], &[tp(0)])),
            Ok(vec![tp(1)])
        );
        assert_eq!(cache.acknowledge("g", "m", -1), Ok(vec![tp(1)]));
        assert!(cache.is_empty());
    }

    #[test]
    fn unknown_sessions_and_epoch_zero_acknowledgements_are_refused() {
        let mut cache = ShareSessionCache::new(10);
        assert_eq!(
            cache.fetch("g", "m", fetch(1, &[tp(0)], &[])),
            Err(ShareError::ShareSessionNotFound)
        );
        assert_eq!(
            cache.fetch("g", "m", fetch(-1, &[], &[])),
            Err(ShareError::ShareSessionNotFound)
        );
        assert_eq!(
            cache.acknowledge("g", "m", 1),
            Err(ShareError::ShareSessionNotFound)
        );
        assert!(matches!(
            cache.acknowledge("g", "m", 0),
            Err(ShareError::InvalidShareSessionEpoch { got: 0, .. })
        ));
        let partitions = [tp(0)];
        let opening_with_acks = FetchSessionRequest {
            has_acknowledgements: true,
            ..fetch(0, &partitions, &[])
        };
        assert!(matches!(
            cache.fetch("g", "m", opening_with_acks),
            Err(ShareError::InvalidRequest(_))
        ));
        assert!(cache.is_empty());
    }

    #[test]
    fn epoch_zero_replaces_a_session_and_the_cache_is_bounded() {
        let mut cache = ShareSessionCache::new(2);
        cache
            .fetch("g", "a", fetch(0, &[tp(0)], &[]))
            .expect("a opens");
        cache
            .fetch("g", "a", fetch(1, &[], &[]))
            .expect("a continues");
        // Reopening replaces the session (and its epoch) without needing a free slot.
        assert_eq!(
            cache.fetch("g", "a", fetch(0, &[tp(1)], &[])),
            Ok(vec![tp(1)])
        );
        assert_eq!(cache.fetch("g", "a", fetch(1, &[], &[])), Ok(vec![tp(1)]));
        cache
            .fetch("g", "b", fetch(0, &[tp(0)], &[]))
            .expect("b opens");
        assert_eq!(
            cache.fetch("g", "c", fetch(0, &[tp(0)], &[])),
            Err(ShareError::ShareSessionLimitReached)
        );
        assert_eq!(
            cache.drop_members("g", &["b".to_owned(), "x".to_owned()]),
            1
        );
        assert!(cache.fetch("g", "c", fetch(0, &[tp(0)], &[])).is_ok());
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn epochs_wrap_past_the_maximum_to_one() {
        assert_eq!(epoch_after(i32::MAX), 1);
        assert_eq!(epoch_after(1), 2);
    }
}
