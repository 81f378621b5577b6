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
//!
//! Reopening (ShareFetch epoch 0 for a member that has a session) replaces the session
//! without releasing anything, as Kafka does (`SharePartitionManager.newContext` removes the
//! old session without its member-leave listener): records the member acquired on partitions
//! the new session no longer covers stay locked until their lock times out.
//!
//! # How sessions go away
//!
//! A session is closed by its member (epoch -1), dropped on every shard when the group's
//! coordinator expires the member (its heartbeats stopped for `share.session.timeout.ms`),
//! or evicted: every accepted request stamps its session's last use, and an opening request
//! that finds the cache full first evicts the sessions idle for longer than their group's
//! `share.session.timeout.ms` (45 s by default), and only then refuses with
//! SHARE_SESSION_LIMIT_REACHED. Eviction covers what the other two miss: sessions of members
//! that left the group, and sessions under member ids the group never knew (ShareFetch does
//! not ask the coordinator, which lives on another shard, whether the member belongs). A
//! live member's client keeps fetching from the brokers of its partitions, so its sessions
//! are rarely idle that long, and only a full cache evicts; an evicted member's next
//! request gets SHARE_SESSION_NOT_FOUND and its client opens a new session. Eviction, like
//! expiry, releases nothing: the evicted member's records come back when their locks time
//! out. This is Kafka 4.0's rule (`ShareSessionCache.tryEvict`, stale after two minutes,
//! one session per attempt) with the session timeout as the idle limit, and every stale
//! session evicted in one pass so that a full cache is scanned once per burst of opens.
//! Kafka 4.1 dropped time-based eviction (KAFKA-19159) for removal on connection close
//! (KAFKA-19015); sluice's sessions are not tied to connections, so it keeps eviction.
//!
//! A member leaving the group (ShareGroupHeartbeat epoch -1) does not drop its sessions.
//! librdkafka 2.16's `close()` sends, concurrently, the leave heartbeat to the coordinator
//! and to each broker a ShareAcknowledge epoch -1 carrying the final acknowledgements; for
//! a broker with a ShareFetch in flight (a long poll) that ShareAcknowledge is deferred
//! until the fetch answers (`rd_kafka_cgrp_terminate0`, `rd_kafka_share_fetch_reply_op`),
//! so it may reach the partition's shard after the coordinator handled the leave. Observed
//! against sluice with librdkafka 2.16.0 (`debug=protocol,cgrp`), even with no fetch in
//! flight: the leave heartbeat was sent and answered before the ShareAcknowledge epoch -1
//! carrying the final acknowledgements was sent to the coordinator's own broker. Dropping
//! sessions on leave would refuse that request with SHARE_SESSION_NOT_FOUND and lose the
//! acknowledgements (the records would be delivered again). The leaving member's sessions
//! are closed by that ShareAcknowledge, or else evicted once idle.

use std::collections::{BTreeSet, HashMap};

use uuid::Uuid;

use super::ShareError;

/// The epoch that opens a share session (Kafka's `ShareRequestMetadata.INITIAL_EPOCH`).
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch that closes a share session (Kafka's `ShareRequestMetadata.FINAL_EPOCH`).
pub const FINAL_EPOCH: i32 = -1;

/// A topic partition by topic id, as share requests name it (a topic deleted and created
/// again under its name is another partition).
pub type TopicPartition = (Uuid, i32);

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

/// When a request reaches the cache, and how long its group's sessions may sit idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionClock {
    pub now_ms: i64,
    /// The group's `share.session.timeout.ms`: a session unused for longer may be evicted.
    pub idle_ms_max: i64,
}

/// One member's session: the partitions it covers, the epoch its next request must carry,
/// and when a request last used it.
#[derive(Debug)]
struct ShareSession {
    epoch_next: i32,
    partitions: BTreeSet<TopicPartition>,
    used_ms: i64,
    /// The group's session timeout when the session opened (a later change to the group's
    /// config applies to sessions opened after it).
    idle_ms_max: i64,
}

impl ShareSession {
    fn is_idle(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.used_ms) > self.idle_ms_max
    }
}

/// The share sessions of one shard, at most `sessions_max` of them; idle ones are evicted
/// when the cache is full (see the module docs).
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
    /// released too. An opening request that finds the cache full evicts idle sessions first.
    pub fn fetch(
        &mut self,
        group: &str,
        member: &str,
        request: FetchSessionRequest<'_>,
        clock: SessionClock,
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
                    self.evict_idle(clock.now_ms);
                }
                if self.sessions.len() >= self.sessions_max {
                    return Err(ShareError::ShareSessionLimitReached);
                }
                let partitions: BTreeSet<TopicPartition> = request.added.iter().copied().collect();
                let covered = partitions.iter().copied().collect();
                self.sessions.insert(
                    key,
                    ShareSession {
                        epoch_next: epoch_after(INITIAL_EPOCH),
                        partitions,
                        used_ms: clock.now_ms,
                        idle_ms_max: clock.idle_ms_max,
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
                covered.extend(request.added.iter().copied());
                Ok(covered.into_iter().collect())
            }
            epoch => {
                let session = self.next(&key, epoch, clock.now_ms)?;
                session.partitions.extend(request.added.iter().copied());
                for partition in request.forgotten {
                    session.partitions.remove(partition);
                }
                Ok(session.partitions.iter().copied().collect())
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
        now_ms: i64,
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
            epoch => self.next(&key, epoch, now_ms).map(|_| Vec::new()),
        }
    }

    /// A deleted topic: its partitions leave every session. Its members learn of the deletion
    /// from their assignment; until their clients forget the partitions, an incremental
    /// ShareFetch would otherwise answer UNKNOWN_TOPIC_ID for them at once, every time, and
    /// a client that keeps fetching spins on that answer.
    pub fn forget_topic(&mut self, topic_id: Uuid) {
        for session in self.sessions.values_mut() {
            session.partitions.retain(|(id, _)| *id != topic_id);
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

    /// Evicts the sessions idle for longer than their group's session timeout; returns how
    /// many went. Their records are not released (see the module docs).
    fn evict_idle(&mut self, now_ms: i64) -> usize {
        let before = self.sessions.len();
        self.sessions.retain(|(group, member), session| {
            let idle = session.is_idle(now_ms);
            if idle {
                let idle_ms = now_ms.saturating_sub(session.used_ms);
                tracing::debug!(%group, %member, idle_ms, "evicting an idle share session");
            }
            !idle
        });
        let evicted = before.saturating_sub(self.sessions.len());
        if evicted > 0 {
            tracing::info!(
                evicted,
                "the share session cache was full: evicted idle sessions"
            );
        }
        evicted
    }

    /// Checks a continuing request's epoch, moves the session to the next one and stamps
    /// its use.
    fn next(
        &mut self,
        key: &(String, String),
        epoch: i32,
        now_ms: i64,
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
        session.used_ms = now_ms;
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Time zero, with Kafka's default session timeout.
    const AT: SessionClock = SessionClock {
        now_ms: 0,
        idle_ms_max: 45_000,
    };

    fn tp(partition: i32) -> TopicPartition {
        (Uuid::from_u128(1), partition)
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
            cache.fetch("g", "m", fetch(0, &[tp(0)], &[]), AT),
            Ok(vec![tp(0)])
        );
        assert_eq!(
            cache.fetch("g", "m", fetch(1, &[tp(1)], &[]), AT),
            Ok(vec![tp(0), tp(1)])
        );
        assert_eq!(cache.acknowledge("g", "m", 2, 0), Ok(vec![]));
        assert_eq!(
            cache.fetch("g", "m", fetch(2, &[], &[]), AT),
            Err(ShareError::InvalidShareSessionEpoch {
                expected: Some(3),
                got: 2
            })
        );
        assert_eq!(
            cache.fetch("g", "m", fetch(3, &[], &[tp(0)]), AT),
            Ok(vec![tp(1)])
        );
        assert_eq!(cache.acknowledge("g", "m", -1, 0), Ok(vec![tp(1)]));
        assert!(cache.is_empty());
    }

    #[test]
    fn unknown_sessions_and_epoch_zero_acknowledgements_are_refused() {
        let mut cache = ShareSessionCache::new(10);
        assert_eq!(
            cache.fetch("g", "m", fetch(1, &[tp(0)], &[]), AT),
            Err(ShareError::ShareSessionNotFound)
        );
        assert_eq!(
            cache.fetch("g", "m", fetch(-1, &[], &[]), AT),
            Err(ShareError::ShareSessionNotFound)
        );
        assert_eq!(
            cache.acknowledge("g", "m", 1, 0),
            Err(ShareError::ShareSessionNotFound)
        );
        assert!(matches!(
            cache.acknowledge("g", "m", 0, 0),
            Err(ShareError::InvalidShareSessionEpoch { got: 0, .. })
        ));
        let partitions = [tp(0)];
        let opening_with_acks = FetchSessionRequest {
            has_acknowledgements: true,
            ..fetch(0, &partitions, &[])
        };
        assert!(matches!(
            cache.fetch("g", "m", opening_with_acks, AT),
            Err(ShareError::InvalidRequest(_))
        ));
        assert!(cache.is_empty());
    }

    #[test]
    fn epoch_zero_replaces_a_session_and_the_cache_is_bounded() {
        let mut cache = ShareSessionCache::new(2);
        cache
            .fetch("g", "a", fetch(0, &[tp(0)], &[]), AT)
            .expect("a opens");
        cache
            .fetch("g", "a", fetch(1, &[], &[]), AT)
            .expect("a continues");
        // Reopening replaces the session (and its epoch) without needing a free slot.
        assert_eq!(
            cache.fetch("g", "a", fetch(0, &[tp(1)], &[]), AT),
            Ok(vec![tp(1)])
        );
        assert_eq!(
            cache.fetch("g", "a", fetch(1, &[], &[]), AT),
            Ok(vec![tp(1)])
        );
        cache
            .fetch("g", "b", fetch(0, &[tp(0)], &[]), AT)
            .expect("b opens");
        assert_eq!(
            cache.fetch("g", "c", fetch(0, &[tp(0)], &[]), AT),
            Err(ShareError::ShareSessionLimitReached)
        );
        assert_eq!(
            cache.drop_members("g", &["b".to_owned(), "x".to_owned()]),
            1
        );
        assert!(cache.fetch("g", "c", fetch(0, &[tp(0)], &[]), AT).is_ok());
        assert_eq!(cache.len(), 2);
    }

    fn at(now_ms: i64) -> SessionClock {
        SessionClock { now_ms, ..AT }
    }

    #[test]
    fn a_cache_full_of_idle_sessions_evicts_them_for_a_new_one() {
        let mut cache = ShareSessionCache::new(3);
        let quick = SessionClock {
            now_ms: 0,
            idle_ms_max: 5_000,
        };
        for member in ["a", "b"] {
            cache
                .fetch("g", member, fetch(0, &[tp(0)], &[]), AT)
                .expect("opens");
        }
        cache
            .fetch("quick", "q", fetch(0, &[tp(0)], &[]), quick)
            .expect("opens");
        // Each session is measured against its own group's timeout: only `q` is idle.
        assert_eq!(
            cache.fetch("g", "c", fetch(0, &[tp(0)], &[]), at(5_001)),
            Ok(vec![tp(0)])
        );
        assert_eq!(
            cache.fetch("quick", "q", fetch(1, &[], &[]), at(5_001)),
            Err(ShareError::ShareSessionNotFound)
        );
        assert_eq!(cache.len(), 3);
        // Past the session timeout `a` and `b` are idle too; `c` (opened at 5001) is not.
        assert_eq!(
            cache.fetch("g", "d", fetch(0, &[tp(1)], &[]), at(45_001)),
            Ok(vec![tp(1)])
        );
        assert_eq!(cache.len(), 2);
        for member in ["a", "b"] {
            assert_eq!(
                cache.fetch("g", member, fetch(1, &[], &[]), at(45_001)),
                Err(ShareError::ShareSessionNotFound),
                "{member}"
            );
        }
        assert_eq!(
            cache.fetch("g", "c", fetch(1, &[], &[]), at(45_001)),
            Ok(vec![tp(0)])
        );
    }

    #[test]
    fn a_cache_full_of_fresh_sessions_refuses_a_new_one() {
        let mut cache = ShareSessionCache::new(2);
        cache
            .fetch("g", "a", fetch(0, &[tp(0)], &[]), at(0))
            .expect("a opens");
        cache
            .fetch("g", "b", fetch(0, &[tp(0)], &[]), at(0))
            .expect("b opens");
        // Each accepted request stamps its session: a ShareFetch for `a`, a ShareAcknowledge
        // for `b`.
        cache
            .fetch("g", "a", fetch(1, &[], &[]), at(30_000))
            .expect("a continues");
        assert_eq!(cache.acknowledge("g", "b", 1, 40_000), Ok(vec![]));
        // Refused requests stamp nothing.
        assert!(cache.acknowledge("g", "a", 7, 60_000).is_err());
        // Idle for exactly the timeout is not idle yet.
        assert_eq!(
            cache.fetch("g", "c", fetch(0, &[tp(0)], &[]), at(75_000)),
            Err(ShareError::ShareSessionLimitReached)
        );
        assert_eq!(cache.len(), 2);
        // One millisecond later `a` is idle and makes room; `b` stays.
        assert_eq!(
            cache.fetch("g", "c", fetch(0, &[tp(0)], &[]), at(75_001)),
            Ok(vec![tp(0)])
        );
        assert_eq!(
            cache.fetch("g", "a", fetch(2, &[], &[]), at(75_001)),
            Err(ShareError::ShareSessionNotFound)
        );
        assert_eq!(cache.acknowledge("g", "b", 2, 75_001), Ok(vec![]));
    }

    #[test]
    fn a_deleted_topic_leaves_every_session() {
        let mut cache = ShareSessionCache::new(10);
        let other = (Uuid::from_u128(2), 0);
        cache
            .fetch("g", "a", fetch(0, &[tp(0), tp(1), other], &[]), AT)
            .expect("a opens");
        cache
            .fetch("g", "b", fetch(0, &[tp(0)], &[]), AT)
            .expect("b opens");
        cache.forget_topic(tp(0).0);
        assert_eq!(
            cache.fetch("g", "a", fetch(1, &[], &[]), AT),
            Ok(vec![other])
        );
        assert_eq!(cache.fetch("g", "b", fetch(1, &[], &[]), AT), Ok(vec![]));
    }

    #[test]
    fn epochs_wrap_past_the_maximum_to_one() {
        assert_eq!(epoch_after(i32::MAX), 1);
        assert_eq!(epoch_after(1), 2);
    }
}
