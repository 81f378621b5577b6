//! A share group's membership on its coordinator shard (KIP-932 ShareGroupHeartbeat).
//!
//! Assignment: every member is assigned every partition of the topics it subscribes to.
//! Members of a share group do not own partitions — records are handed out one acquisition
//! at a time by the partition's shard — so sharing every partition with every member is
//! always correct and spreads the work over all members even when there are more members
//! than partitions (Kafka's `simple` assignor reaches the same for that case).

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::ShareError;

/// Topic name → the topic's id and partitions.
pub type Assignment = BTreeMap<String, AssignedTopic>;

/// One topic of an assignment. The id belongs to it so that a topic deleted and created
/// again under its name (a new id) changes the assignment, and the member learns the new id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedTopic {
    pub id: Uuid,
    pub partitions: BTreeSet<i32>,
}

#[derive(Debug, Clone)]
pub struct ShareMember {
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: BTreeSet<String>,
    pub assignment: Assignment,
    pub last_heartbeat_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ShareGroup {
    pub group_epoch: i32,
    pub members: BTreeMap<String, ShareMember>,
}

pub struct HeartbeatRequest {
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Option<Vec<String>>,
}

#[derive(Debug)]
pub struct HeartbeatResult {
    pub member_id: String,
    pub member_epoch: i32,
    /// Sent when it changed, when the member (re)joined, or on a full heartbeat.
    pub assignment: Option<Assignment>,
}

impl ShareGroup {
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    pub fn heartbeat(
        &mut self,
        request: HeartbeatRequest,
        topic: &dyn Fn(&str) -> Option<(Uuid, i32)>,
        now_ms: i64,
    ) -> Result<HeartbeatResult, ShareError> {
        if request.member_epoch == -1 {
            // The member's share sessions stay: its client's final ShareAcknowledge (epoch
            // -1) may reach a partition's shard after this leave (see `share_session`).
            if self.members.remove(&request.member_id).is_some() {
                self.group_epoch += 1;
            }
            return Ok(HeartbeatResult {
                member_id: request.member_id,
                member_epoch: -1,
                assignment: None,
            });
        }
        let member_id = if request.member_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            request.member_id
        };
        let joining = request.member_epoch == 0;
        if !joining {
            let Some(member) = self.members.get(&member_id) else {
                return Err(ShareError::UnknownMemberId(member_id));
            };
            if request.member_epoch > member.member_epoch {
                return Err(ShareError::FencedMemberEpoch {
                    expected: member.member_epoch,
                    got: request.member_epoch,
                });
            }
        }
        let full = request.subscribed_topic_names.is_some();
        if joining && !self.members.contains_key(&member_id) {
            self.group_epoch += 1;
        }
        let group_epoch = self.group_epoch;
        let member = self
            .members
            .entry(member_id.clone())
            .or_insert_with(|| ShareMember {
                member_id: member_id.clone(),
                member_epoch: group_epoch,
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                subscribed: BTreeSet::new(),
                assignment: Assignment::new(),
                last_heartbeat_ms: now_ms,
            });
        member.last_heartbeat_ms = now_ms;
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        if request.rack_id.is_some() {
            member.rack_id = request.rack_id;
        }
        if let Some(names) = request.subscribed_topic_names {
            member.subscribed = names.into_iter().collect();
        }
        let target: Assignment = member
            .subscribed
            .iter()
            .filter_map(|name| {
                let (id, count) = topic(name)?;
                let partitions = (0..count).collect();
                Some((name.clone(), AssignedTopic { id, partitions }))
            })
            .collect();
        let changed = target != member.assignment;
        if changed {
            self.group_epoch += 1;
            member.assignment = target;
            member.member_epoch = self.group_epoch;
        }
        let assignment = (changed || joining || full).then(|| member.assignment.clone());
        Ok(HeartbeatResult {
            member_id,
            member_epoch: member.member_epoch,
            assignment,
        })
    }

    /// Removes members whose session expired; returns their ids.
    pub fn expire(&mut self, session_timeout_ms: i64, now_ms: i64) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| now_ms - m.last_heartbeat_ms > session_timeout_ms)
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            self.members.remove(id);
        }
        if !expired.is_empty() {
            self.group_epoch += 1;
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(group: &mut ShareGroup, id: &str, now_ms: i64) -> HeartbeatResult {
        group
            .heartbeat(
                HeartbeatRequest {
                    member_id: id.to_owned(),
                    member_epoch: 0,
                    rack_id: None,
                    client_id: "c".to_owned(),
                    client_host: "/127.0.0.1".to_owned(),
                    subscribed_topic_names: Some(vec!["t".to_owned()]),
                },
                &|_| Some((Uuid::from_u128(1), 1)),
                now_ms,
            )
            .expect("join")
    }

    #[test]
    fn every_member_shares_every_partition() {
        let mut group = ShareGroup::default();
        let a = join(&mut group, "a", 0);
        let b = join(&mut group, "b", 0);
        for result in [&a, &b] {
            let assignment = result.assignment.as_ref().expect("sent on join");
            assert_eq!(assignment.get("t").map(|t| t.partitions.len()), Some(1));
        }
        assert_eq!(group.expire(1000, 500), Vec::<String>::new());
        assert_eq!(group.expire(1000, 5000).len(), 2);
        assert_eq!(group.state(), "Empty");
    }
}
