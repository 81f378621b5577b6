//! KIP-848 consumer groups: members heartbeat with ConsumerGroupHeartbeat and the
//! coordinator computes their assignment.
//!
//! Epochs: every change of membership, subscriptions or subscribed partition counts bumps
//! the group epoch and recomputes the target assignment at once (the assignment epoch equals
//! the group epoch). Each member reconciles towards its target on its own heartbeats:
//!
//! 1. partitions it holds but should not are revoked first (sent as an assignment without
//!    them; the member keeps its epoch until it reports it no longer owns them);
//! 2. then it receives the target partitions no other member still owns or is revoking, and
//!    moves to the assignment epoch; partitions still held elsewhere follow on later
//!    heartbeats.
//!
//! So a partition is never owned by two members at once. A member that does not revoke
//! within its rebalance timeout, or stops heartbeating for the session timeout, is removed.

use std::collections::{BTreeMap, BTreeSet};

use super::assignor::{self, AssignorMember, TopicPartitionCounts};
use super::subscription_regex::SubscriptionRegex;
use super::{GroupConfig, GroupError, TopicCatalog};

pub type Partitions = BTreeMap<String, BTreeSet<i32>>;

/// Member epoch in a heartbeat that joins the group.
pub const JOIN_EPOCH: i32 = 0;
/// Member epoch in a heartbeat that leaves the group.
pub const LEAVE_EPOCH: i32 = -1;
/// Member epoch in a heartbeat of a static member leaving temporarily.
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// How often a group's regex subscriptions are matched against the catalog again, so that
/// topics created or deleted since then join or leave the subscription. Kafka batches these
/// refreshes every 10 s; matching is cheap here, so a new topic is picked up sooner.
const REGEX_REFRESH_INTERVAL_MS: i64 = 1_000;

pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Topics subscribed by name.
    pub subscribed: BTreeSet<String>,
    /// Topics subscribed by regular expression, resolved in the group's `regexes`.
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub member_epoch: i32,
    previous_epoch: i32,
    pub assigned: Partitions,
    pub revoking: Partitions,
    session_deadline_ms: i64,
    revoke_deadline_ms: Option<i64>,
    last_sent: Option<Partitions>,
}

impl ConsumerMember {
    /// OffsetCommit and OffsetFetch must name the member's current epoch exactly.
    fn check_epoch(&self, epoch: i32) -> Result<(), GroupError> {
        if epoch == self.member_epoch {
            Ok(())
        } else {
            Err(GroupError::StaleMemberEpoch {
                expected: self.member_epoch,
                got: epoch,
            })
        }
    }
}

pub struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Partitions>,
    topic_counts: TopicPartitionCounts,
    /// Every regex a member subscribes with, and the topics it matches.
    regexes: BTreeMap<String, SubscriptionRegex>,
    regexes_resolved_ms: i64,
    pub state_since_ms: i64,
}

pub struct HeartbeatRequest {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    /// `None`: unchanged; empty: no regex (librdkafka sends "" when it has none).
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// Partitions the member reports it owns, by topic name (None: unchanged).
    pub owned: Option<Partitions>,
}

impl HeartbeatRequest {
    /// The checks Kafka makes before looking at the group: INVALID_REQUEST.
    pub fn validate(&self) -> Result<(), GroupError> {
        let invalid = |reason: &str| Err(GroupError::InvalidRequest(reason.to_owned()));
        if self.instance_id.as_deref() == Some("") {
            return invalid("InstanceId can't be empty.");
        }
        if self.member_epoch == STATIC_LEAVE_EPOCH && self.instance_id.is_none() {
            return invalid("InstanceId can't be null.");
        }
        if self.member_epoch < STATIC_LEAVE_EPOCH {
            return invalid("MemberEpoch is invalid.");
        }
        if (self.member_epoch > 0 || self.member_epoch == LEAVE_EPOCH) && self.member_id.is_empty()
        {
            return invalid("MemberId can't be empty.");
        }
        if self.member_epoch == JOIN_EPOCH
            && self.subscribed_topic_names.is_none()
            && self.subscribed_topic_regex.is_none()
        {
            return invalid(
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
            );
        }
        Ok(())
    }

    /// The regex the request subscribes with: `None` unchanged, `Some(None)` none.
    fn regex(&self) -> Option<Option<String>> {
        self.subscribed_topic_regex
            .as_ref()
            .map(|regex| (!regex.is_empty()).then(|| regex.clone()))
    }
}

pub struct HeartbeatResult {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's full assignment, when it changed since the last answer.
    pub assignment: Option<Partitions>,
}

fn minus(a: &Partitions, b: &Partitions) -> Partitions {
    let mut out = Partitions::new();
    for (topic, parts) in a {
        let other = b.get(topic);
        let rest: BTreeSet<i32> = parts
            .iter()
            .filter(|p| !other.is_some_and(|o| o.contains(p)))
            .copied()
            .collect();
        if !rest.is_empty() {
            out.insert(topic.clone(), rest);
        }
    }
    out
}

fn intersects(a: &Partitions, b: &Partitions) -> bool {
    a.iter()
        .any(|(t, parts)| b.get(t).is_some_and(|o| !parts.is_disjoint(o)))
}

fn add(into: &mut Partitions, topic: &str, partition: i32) {
    into.entry(topic.to_owned()).or_default().insert(partition);
}

/// A member's topics: those it names and those its regex matches.
fn member_topics(
    regexes: &BTreeMap<String, SubscriptionRegex>,
    member: &ConsumerMember,
) -> BTreeSet<String> {
    let mut topics = member.subscribed.clone();
    if let Some(regex) = member
        .subscribed_regex
        .as_ref()
        .and_then(|r| regexes.get(r))
    {
        topics.extend(regex.topics.iter().cloned());
    }
    topics
}

impl ConsumerGroup {
    pub fn new(group_id: String, now_ms: i64) -> ConsumerGroup {
        ConsumerGroup {
            group_id,
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            topic_counts: TopicPartitionCounts::new(),
            regexes: BTreeMap::new(),
            regexes_resolved_ms: now_ms,
            state_since_ms: now_ms,
        }
    }

    /// Kafka's state names for consumer groups.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || !m.revoking.is_empty())
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    pub fn assignor_name(&self) -> String {
        self.members
            .values()
            .find_map(|m| m.server_assignor.clone())
            .unwrap_or_else(|| assignor::UNIFORM.to_owned())
    }

    /// Recomputes partition counts, bumps the epoch and recomputes the target assignment.
    fn bump(&mut self, topics: &dyn TopicCatalog, now_ms: i64) {
        let members = &self.members;
        self.regexes.retain(|regex, _| {
            members
                .values()
                .any(|m| m.subscribed_regex.as_ref() == Some(regex))
        });
        let subscriptions: Vec<(&ConsumerMember, BTreeSet<String>)> = members
            .values()
            .map(|m| (m, member_topics(&self.regexes, m)))
            .collect();
        self.topic_counts = subscriptions
            .iter()
            .flat_map(|(_, subscribed)| subscribed.iter())
            .filter_map(|t| topics.partition_count(t).map(|c| (t.clone(), c)))
            .collect();
        self.group_epoch += 1;
        let name = self.assignor_name();
        let members: Vec<AssignorMember<'_>> = subscriptions
            .iter()
            .map(|(m, subscribed)| AssignorMember {
                member_id: &m.member_id,
                subscribed,
                previous: &m.assigned,
            })
            .collect();
        self.target = assignor::assign(&name, &members, &self.topic_counts);
        self.assignment_epoch = self.group_epoch;
        self.state_since_ms = now_ms;
        tracing::info!(
            group = %self.group_id,
            epoch = self.group_epoch,
            members = self.members.len(),
            "consumer group: new target assignment"
        );
    }

    pub fn heartbeat(
        &mut self,
        request: HeartbeatRequest,
        topics: &dyn TopicCatalog,
        config: &GroupConfig,
        now_ms: i64,
    ) -> Result<HeartbeatResult, GroupError> {
        if let Some(assignor_name) = &request.server_assignor {
            if !assignor::is_known(assignor_name) {
                return Err(GroupError::UnsupportedAssignor(assignor_name.clone()));
            }
        }
        if matches!(request.member_epoch, LEAVE_EPOCH | STATIC_LEAVE_EPOCH) {
            return self.leave(request, topics, config, now_ms);
        }
        let member_id = if request.member_epoch == JOIN_EPOCH {
            self.join(&request, topics, now_ms)?
        } else {
            let member =
                self.existing_member(&request.member_id, request.instance_id.as_deref())?;
            if request.member_epoch != member.member_epoch
                && request.member_epoch != member.previous_epoch
            {
                return Err(GroupError::FencedMemberEpoch {
                    expected: member.member_epoch,
                    got: request.member_epoch,
                });
            }
            let regex = request.regex();
            let changed = request
                .subscribed_topic_names
                .as_ref()
                .is_some_and(|names| {
                    names.iter().cloned().collect::<BTreeSet<_>>() != member.subscribed
                })
                || regex
                    .as_ref()
                    .is_some_and(|r| *r != member.subscribed_regex);
            if let Some(Some(pattern)) = &regex {
                self.add_regex(pattern)?;
            }
            if let Some(member) = self.members.get_mut(&request.member_id) {
                if let Some(names) = &request.subscribed_topic_names {
                    member.subscribed = names.iter().cloned().collect();
                }
                if let Some(regex) = regex {
                    member.subscribed_regex = regex;
                }
                if request.rebalance_timeout_ms > 0 {
                    member.rebalance_timeout_ms = request.rebalance_timeout_ms;
                }
                if request.server_assignor.is_some() {
                    member.server_assignor = request.server_assignor.clone();
                }
            }
            if changed {
                self.bump(topics, now_ms);
            }
            request.member_id.clone()
        };
        let member = self
            .members
            .get_mut(&member_id)
            .expect("member present: joined or checked above");
        member.session_deadline_ms = now_ms + i64::from(config.consumer_session_timeout_ms);
        if let Some(owned) = &request.owned {
            if !member.revoking.is_empty() && !intersects(owned, &member.revoking) {
                member.revoking.clear();
                member.revoke_deadline_ms = None;
            }
        }
        self.reconcile(&member_id, now_ms);
        let member = self
            .members
            .get_mut(&member_id)
            .expect("member present: reconcile never removes");
        let assignment = if member.last_sent.as_ref() != Some(&member.assigned) {
            member.last_sent = Some(member.assigned.clone());
            Some(member.assigned.clone())
        } else {
            None
        };
        Ok(HeartbeatResult {
            member_id,
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: config.consumer_heartbeat_interval_ms,
            assignment,
        })
    }

    /// A member leaving (epoch -1), or a static member leaving for a restart (-2): that one
    /// keeps its place and its partitions until its session expires, so that its next
    /// incarnation takes them over in `join`.
    fn leave(
        &mut self,
        request: HeartbeatRequest,
        topics: &dyn TopicCatalog,
        config: &GroupConfig,
        now_ms: i64,
    ) -> Result<HeartbeatResult, GroupError> {
        let member_id = self
            .existing_member(&request.member_id, request.instance_id.as_deref())?
            .member_id
            .clone();
        if request.member_epoch == STATIC_LEAVE_EPOCH {
            if let Some(member) = self.members.get_mut(&member_id) {
                member.member_epoch = STATIC_LEAVE_EPOCH;
                // As in Kafka, what it was revoking is released at once.
                member.revoking.clear();
                member.revoke_deadline_ms = None;
                member.session_deadline_ms = now_ms + i64::from(config.consumer_session_timeout_ms);
            }
            tracing::info!(group = %self.group_id, member = %member_id, "static member left temporarily");
        } else {
            self.members.remove(&member_id);
            tracing::info!(group = %self.group_id, member = %member_id, "consumer group member left");
            self.bump(topics, now_ms);
        }
        Ok(HeartbeatResult {
            member_id,
            member_epoch: request.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        })
    }

    /// The member a heartbeat names. A static member is found by its instance id, as in
    /// Kafka: UNKNOWN_MEMBER_ID when no member holds it, FENCED_INSTANCE_ID when another
    /// member id does.
    fn existing_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<&ConsumerMember, GroupError> {
        let Some(instance_id) = instance_id else {
            return self.member(member_id);
        };
        let holder = self
            .static_member(instance_id)
            .ok_or_else(|| GroupError::UnknownMemberId(member_id.to_owned()))?;
        if holder.member_id != member_id {
            return Err(GroupError::FencedInstanceId(instance_id.to_owned()));
        }
        Ok(holder)
    }

    fn static_member(&self, instance_id: &str) -> Option<&ConsumerMember> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    fn join(
        &mut self,
        request: &HeartbeatRequest,
        topics: &dyn TopicCatalog,
        now_ms: i64,
    ) -> Result<String, GroupError> {
        let subscribed: BTreeSet<String> = request
            .subscribed_topic_names
            .iter()
            .flatten()
            .cloned()
            .collect();
        let subscribed_regex = request.regex().flatten();
        let member_id = if request.member_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            request.member_id.clone()
        };
        // A static member coming back replaces its previous incarnation, but only once that
        // one has left with epoch -2; while it is active, its instance id is not released
        // (Kafka's UNRELEASED_INSTANCE_ID, whatever member id the newcomer brings).
        let mut released = None;
        if let Some(instance_id) = &request.instance_id {
            if let Some(holder) = self.static_member(instance_id) {
                if holder.member_epoch != STATIC_LEAVE_EPOCH {
                    return Err(GroupError::UnreleasedInstanceId(instance_id.clone()));
                }
                released = Some(holder.member_id.clone());
            }
        }
        if let Some(pattern) = &subscribed_regex {
            self.add_regex(pattern)?;
        }
        let previous = released.and_then(|holder_id| self.members.remove(&holder_id));
        let same_subscription = |m: &ConsumerMember| {
            m.subscribed == subscribed && m.subscribed_regex == subscribed_regex
        };
        let rejoin_same = self.members.get(&member_id).is_some_and(same_subscription);
        let member = ConsumerMember {
            member_id: member_id.clone(),
            instance_id: request.instance_id.clone(),
            rack_id: request.rack_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            subscribed,
            subscribed_regex,
            server_assignor: request.server_assignor.clone(),
            rebalance_timeout_ms: request.rebalance_timeout_ms.max(1),
            member_epoch: JOIN_EPOCH,
            previous_epoch: JOIN_EPOCH,
            assigned: Partitions::new(),
            revoking: Partitions::new(),
            session_deadline_ms: now_ms,
            revoke_deadline_ms: None,
            last_sent: None,
        };
        let static_same = previous.as_ref().is_some_and(|p| {
            p.subscribed == member.subscribed && p.subscribed_regex == member.subscribed_regex
        });
        if let Some(previous) = previous {
            // Keep the target of the previous incarnation under the new member id.
            if let Some(target) = self.target.remove(&previous.member_id) {
                self.target.insert(member_id.clone(), target);
            }
        }
        self.members.insert(member_id.clone(), member);
        tracing::info!(group = %self.group_id, member = %member_id, "consumer group member joined");
        if !(rejoin_same || static_same) {
            self.bump(topics, now_ms);
        }
        Ok(member_id)
    }

    /// Compiles `pattern` unless the group has it already: as in Kafka, a regex is validated
    /// when it is new to the group (INVALID_REGULAR_EXPRESSION), and resolved in the
    /// background: the member's first assignment holds only the topics it names, and the
    /// regex's topics follow at the next timer tick, with a new group epoch. Clients rely on
    /// that order (librdkafka's 0045 resubscribe test waits for the named topic alone).
    fn add_regex(&mut self, pattern: &str) -> Result<(), GroupError> {
        if !self.regexes.contains_key(pattern) {
            let regex = SubscriptionRegex::compile(pattern)?;
            self.regexes.insert(pattern.to_owned(), regex);
            // Resolve at the next tick rather than after the refresh interval.
            self.regexes_resolved_ms = i64::MIN;
        }
        Ok(())
    }

    /// Matches the group's regexes against the catalog again once the refresh interval has
    /// passed; whether any of them now matches other topics.
    fn refresh_regexes(&mut self, topics: &dyn TopicCatalog, now_ms: i64) -> bool {
        if self.regexes.is_empty()
            || now_ms
                < self
                    .regexes_resolved_ms
                    .saturating_add(REGEX_REFRESH_INTERVAL_MS)
        {
            return false;
        }
        self.regexes_resolved_ms = now_ms;
        let names = topics.topic_names();
        let mut changed = false;
        for regex in self.regexes.values_mut() {
            changed |= regex.resolve(&names);
        }
        changed
    }

    /// Moves `member_id` towards its target (see the module docs).
    fn reconcile(&mut self, member_id: &str, now_ms: i64) {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let owned_elsewhere: Partitions = {
            let mut owned = Partitions::new();
            for other in self.members.values().filter(|m| m.member_id != member_id) {
                for (topic, parts) in other.assigned.iter().chain(other.revoking.iter()) {
                    for p in parts {
                        add(&mut owned, topic, *p);
                    }
                }
            }
            owned
        };
        let assignment_epoch = self.assignment_epoch;
        let Some(member) = self.members.get_mut(member_id) else {
            return;
        };
        let to_revoke = minus(&member.assigned, &target);
        if !to_revoke.is_empty() {
            for (topic, parts) in &to_revoke {
                for p in parts {
                    add(&mut member.revoking, topic, *p);
                }
            }
            member.assigned = minus(&member.assigned, &to_revoke);
            member.revoke_deadline_ms = Some(now_ms + i64::from(member.rebalance_timeout_ms));
        }
        if !member.revoking.is_empty() {
            return;
        }
        for (topic, parts) in minus(&target, &member.assigned) {
            for p in parts {
                if !owned_elsewhere.get(&topic).is_some_and(|o| o.contains(&p)) {
                    add(&mut member.assigned, &topic, p);
                }
            }
        }
        if member.member_epoch != assignment_epoch {
            member.previous_epoch = member.member_epoch;
            member.member_epoch = assignment_epoch;
        }
    }

    /// Expires sessions and revocation deadlines; re-targets when partition counts change or
    /// a regex subscription matches other topics.
    pub fn tick(&mut self, topics: &dyn TopicCatalog, now_ms: i64) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline_ms <= now_ms || m.revoke_deadline_ms.is_some_and(|d| d <= now_ms)
            })
            .map(|m| m.member_id.clone())
            .collect();
        let mut changed = !expired.is_empty();
        for member_id in expired {
            tracing::info!(group = %self.group_id, member = %member_id, "consumer group member expired");
            self.members.remove(&member_id);
        }
        if !changed && !self.members.is_empty() {
            changed = self.refresh_regexes(topics, now_ms)
                || self
                    .topic_counts
                    .iter()
                    .any(|(topic, count)| topics.partition_count(topic) != Some(*count))
                || self.subscribed_topics().iter().any(|t| {
                    !self.topic_counts.contains_key(t) && topics.partition_count(t).is_some()
                });
        }
        if changed {
            self.bump(topics, now_ms);
        }
    }

    /// Member checks for OffsetCommit, as Kafka 4.0-4.1's `ConsumerGroup`: a negative epoch
    /// commits from outside the group protocol, which an empty group accepts whatever member
    /// id comes with it. `member_epochs`: the request version carries member epochs (v9+).
    pub fn validate_commit(
        &self,
        member_id: &str,
        epoch: i32,
        member_epochs: bool,
    ) -> Result<(), GroupError> {
        if epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self.member(member_id)?;
        if !member_epochs {
            return Err(GroupError::UnsupportedVersion(
                "a consumer-protocol member must commit with OffsetCommit v9 or later",
            ));
        }
        member.check_epoch(epoch)
    }

    /// Member checks for OffsetFetch v9: only a request naming neither a member nor an
    /// epoch is served without them.
    pub fn validate_fetch(&self, member_id: Option<&str>, epoch: i32) -> Result<(), GroupError> {
        if member_id.is_none() && epoch < 0 {
            return Ok(());
        }
        self.member(member_id.unwrap_or_default())?
            .check_epoch(epoch)
    }

    fn member(&self, member_id: &str) -> Result<&ConsumerMember, GroupError> {
        self.members
            .get(member_id)
            .ok_or_else(|| GroupError::UnknownMemberId(member_id.to_owned()))
    }

    /// Topics any member subscribes to, by name or by regex.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| member_topics(&self.regexes, m))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(
        member_id: &str,
        epoch: i32,
        topics: Option<&[&str]>,
        owned: Option<Partitions>,
    ) -> HeartbeatRequest {
        HeartbeatRequest {
            member_id: member_id.to_owned(),
            member_epoch: epoch,
            instance_id: None,
            rack_id: None,
            client_id: "c".to_owned(),
            client_host: "h".to_owned(),
            rebalance_timeout_ms: 10_000,
            subscribed_topic_names: topics.map(|t| t.iter().map(|s| (*s).to_owned()).collect()),
            subscribed_topic_regex: None,
            server_assignor: None,
            owned,
        }
    }

    #[test]
    fn a_static_instance_id_is_taken_over_only_once_released() {
        let config = GroupConfig::default();
        let counts = TopicPartitionCounts::from([("t".to_owned(), 2)]);
        let with_instance = |request: HeartbeatRequest| HeartbeatRequest {
            instance_id: Some("s".to_owned()),
            ..request
        };
        let mut group = ConsumerGroup::new("g".into(), 0);
        let a = group
            .heartbeat(
                with_instance(hb("a", 0, Some(&["t"]), None)),
                &counts,
                &config,
                0,
            )
            .expect("a joins");
        let a_parts = a.assignment.expect("a assigned");
        assert_eq!(
            group
                .heartbeat(
                    with_instance(hb("b", 0, Some(&["t"]), None)),
                    &counts,
                    &config,
                    1
                )
                .err(),
            Some(GroupError::UnreleasedInstanceId("s".into()))
        );
        assert_eq!(
            group
                .heartbeat(with_instance(hb("b", 1, None, None)), &counts, &config, 1)
                .err(),
            Some(GroupError::FencedInstanceId("s".into()))
        );
        let a_again = group
            .heartbeat(
                with_instance(hb("a", a.member_epoch, None, Some(a_parts.clone()))),
                &counts,
                &config,
                2,
            )
            .expect("a is still the member");
        assert_eq!(a_again.member_epoch, a.member_epoch);

        let left = group
            .heartbeat(
                with_instance(hb("a", STATIC_LEAVE_EPOCH, None, None)),
                &counts,
                &config,
                3,
            )
            .expect("a leaves for a restart");
        assert_eq!(left.member_epoch, STATIC_LEAVE_EPOCH);
        assert_eq!(group.members["a"].assigned, a_parts, "kept while away");
        let b = group
            .heartbeat(
                with_instance(hb("b", 0, Some(&["t"]), None)),
                &counts,
                &config,
                4,
            )
            .expect("b takes over the released instance id");
        assert_eq!(b.assignment, Some(a_parts));
        assert!(!group.members.contains_key("a"));
        assert_eq!(
            group
                .heartbeat(
                    with_instance(hb("a", a.member_epoch, None, None)),
                    &counts,
                    &config,
                    5
                )
                .err(),
            Some(GroupError::FencedInstanceId("s".into()))
        );
        assert!(hb("a", STATIC_LEAVE_EPOCH, None, None).validate().is_err());
    }

    #[test]
    fn a_regex_subscription_follows_topics_as_they_come_and_go() {
        let config = GroupConfig::default();
        let mut catalog =
            TopicPartitionCounts::from([("regex-test-a".to_owned(), 2), ("other".to_owned(), 1)]);
        let mut group = ConsumerGroup::new("g".into(), 0);
        let by_regex = |member_id: &str, epoch: i32, regex: &str| HeartbeatRequest {
            subscribed_topic_regex: Some(regex.to_owned()),
            ..hb(member_id, epoch, Some(&[]), None)
        };
        assert_eq!(
            group
                .heartbeat(by_regex("bad", 0, "(unclosed"), &catalog, &config, 0)
                .err()
                .map(|e| matches!(e, GroupError::InvalidRegularExpression(_))),
            Some(true)
        );
        assert!(group.members.is_empty() && group.regexes.is_empty());

        let joined = group
            .heartbeat(by_regex("a", 0, "regex-test-.*"), &catalog, &config, 0)
            .expect("join by regex");
        // A regex new to the group is resolved at the next tick, as in Kafka.
        assert!(joined.assignment.unwrap_or_default().is_empty());
        group.tick(&catalog, 0);
        assert!(group.group_epoch > joined.member_epoch);
        let a = group
            .heartbeat(
                hb("a", joined.member_epoch, None, Some(Partitions::new())),
                &catalog,
                &config,
                0,
            )
            .expect("heartbeat after the regex is resolved");
        let first = a.assignment.expect("assigned");
        assert_eq!(first.keys().collect::<Vec<_>>(), ["regex-test-a"]);
        assert_eq!(first["regex-test-a"].len(), 2);

        // A matching topic appears: it is picked up at the next refresh.
        catalog.insert("regex-test-b".to_owned(), 1);
        group.tick(&catalog, REGEX_REFRESH_INTERVAL_MS - 1);
        assert_eq!(group.group_epoch, a.member_epoch, "not before the refresh");
        group.tick(&catalog, REGEX_REFRESH_INTERVAL_MS);
        assert!(group.group_epoch > a.member_epoch);
        let a2 = group
            .heartbeat(
                hb("a", a.member_epoch, None, Some(first)),
                &catalog,
                &config,
                REGEX_REFRESH_INTERVAL_MS,
            )
            .expect("heartbeat");
        let second = a2.assignment.expect("new assignment");
        assert_eq!(
            second.keys().collect::<Vec<_>>(),
            ["regex-test-a", "regex-test-b"]
        );
        assert!(group.subscribed_topics().contains("regex-test-b"));

        // A matching topic is deleted: it leaves the subscription at the next refresh.
        catalog.remove("regex-test-b");
        group.tick(&catalog, 2 * REGEX_REFRESH_INTERVAL_MS);
        assert!(!group.subscribed_topics().contains("regex-test-b"));
        assert!(!group.target["a"].contains_key("regex-test-b"));

        // The member drops its regex ("" as librdkafka sends it): nothing is left.
        let a3 = group
            .heartbeat(
                by_regex("a", a2.member_epoch, ""),
                &catalog,
                &config,
                REGEX_REFRESH_INTERVAL_MS,
            )
            .expect("unsubscribe");
        assert_eq!(a3.assignment, Some(Partitions::new()));
        assert!(group.regexes.is_empty());
    }

    #[test]
    fn commits_check_the_member_and_its_exact_epoch() {
        let config = GroupConfig::default();
        let counts = TopicPartitionCounts::from([("t".to_owned(), 2)]);
        let mut group = ConsumerGroup::new("g".into(), 0);
        // Empty: a negative epoch commits, whatever member id comes with it.
        assert_eq!(group.validate_commit("assigned-1", -1, true), Ok(()));
        let a = group
            .heartbeat(hb("a", 0, Some(&["t"]), None), &counts, &config, 0)
            .expect("join a");
        let epoch = a.member_epoch;
        assert_eq!(group.validate_commit("a", epoch, true), Ok(()));
        assert_eq!(
            group.validate_commit("assigned-1", -1, true),
            Err(GroupError::UnknownMemberId("assigned-1".into()))
        );
        for stale in [epoch - 1, epoch + 1, -1] {
            assert_eq!(
                group.validate_commit("a", stale, true),
                Err(GroupError::StaleMemberEpoch {
                    expected: epoch,
                    got: stale
                })
            );
        }
        assert!(matches!(
            group.validate_commit("a", epoch, false),
            Err(GroupError::UnsupportedVersion(_))
        ));
        assert_eq!(group.validate_fetch(None, -1), Ok(()));
        assert_eq!(group.validate_fetch(Some("a"), epoch), Ok(()));
        assert_eq!(
            group.validate_fetch(Some("b"), epoch),
            Err(GroupError::UnknownMemberId("b".into()))
        );
    }

    #[test]
    fn a_partition_moves_only_after_its_owner_revokes_it() {
        let config = GroupConfig::default();
        let counts = TopicPartitionCounts::from([("t".to_owned(), 4)]);
        let mut group = ConsumerGroup::new("g".into(), 0);
        let a = group
            .heartbeat(hb("a", 0, Some(&["t"]), None), &counts, &config, 0)
            .expect("join a");
        let a_parts = a.assignment.expect("a assigned");
        assert_eq!(a_parts["t"].len(), 4);
        let b = group
            .heartbeat(hb("b", 0, Some(&["t"]), None), &counts, &config, 1)
            .expect("join b");
        // a still owns everything: b gets nothing yet.
        assert!(b.assignment.is_none_or(|p| p.is_empty()));
        let a2 = group
            .heartbeat(
                hb("a", a.member_epoch, None, Some(a_parts.clone())),
                &counts,
                &config,
                2,
            )
            .expect("a heartbeat");
        let kept = a2.assignment.expect("a told to revoke");
        assert_eq!(kept["t"].len(), 2);
        assert_eq!(
            a2.member_epoch, a.member_epoch,
            "epoch held until revocation is acked"
        );
        let a3 = group
            .heartbeat(
                hb("a", a2.member_epoch, None, Some(kept.clone())),
                &counts,
                &config,
                3,
            )
            .expect("a acks");
        assert_eq!(a3.member_epoch, group.assignment_epoch);
        let b2 = group
            .heartbeat(
                hb("b", b.member_epoch, None, Some(Partitions::new())),
                &counts,
                &config,
                4,
            )
            .expect("b heartbeat");
        let b_parts = b2.assignment.expect("b assigned");
        assert_eq!(b_parts["t"].len(), 2);
        assert!(!intersects(&b_parts, &kept));
    }
}
