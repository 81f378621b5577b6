//! The classic group protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup), following
//! Kafka's `ClassicGroup` state machine:
//!
//! ```text
//!   Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
//!     ▲                  ▲      │ (no members left)                    │ leader's SyncGroup
//!     └──────────────────┼──────┘                                      ▼
//!                        └──────── join, leave, session expiry ─── Stable
//! ```
//!
//! JoinGroup and SyncGroup answers that must wait for the rest of the group are parked as
//! oneshot senders on the member and sent when the group moves on. Deadlines (sessions,
//! rebalance and sync timeouts, the initial rebalance delay) are checked by [`ClassicGroup::tick`],
//! which the group timers task calls.

use bytes::Bytes;
use futures_channel::oneshot;
use indexmap::IndexMap;
use std::collections::HashMap;

use super::{GroupConfig, GroupError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl ClassicState {
    /// The name Kafka uses in ListGroups and DescribeGroups.
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
        }
    }
}

/// What a JoinGroup is answered with.
#[derive(Debug, Clone)]
pub struct JoinResult {
    pub error: Option<GroupError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: String,
    pub member_id: String,
    /// Only for the leader: every member's id, instance id and metadata.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub fn error(error: GroupError, member_id: String) -> JoinResult {
        JoinResult {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader_id: String::new(),
            member_id,
            members: Vec::new(),
        }
    }
}

/// What a SyncGroup is answered with.
#[derive(Debug, Clone)]
pub struct SyncResult {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: GroupError) -> SyncResult {
        SyncResult {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// An answer now, or one that arrives when the group moves on.
pub enum Pending<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member must first learn its id (KIP-394).
    pub require_known_member_id: bool,
}

pub struct ClassicMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    heartbeat_deadline_ms: i64,
    awaiting_join: Option<oneshot::Sender<JoinResult>>,
    awaiting_sync: Option<oneshot::Sender<SyncResult>>,
}

impl ClassicMember {
    /// The metadata of `protocol`, if the member supports it.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m)
    }
}

pub struct ClassicGroup {
    pub group_id: String,
    pub state: ClassicState,
    /// When the group entered its current state.
    pub state_since_ms: i64,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    /// In join order; the first member becomes leader when there is none.
    pub members: IndexMap<String, ClassicMember>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline to join by.
    pending_members: HashMap<String, i64>,
    /// group.instance.id → member id.
    static_members: HashMap<String, String>,
    rebalance_deadline_ms: i64,
    /// The initial rebalance of an empty group waits until this for more members.
    initial_delay_until_ms: Option<i64>,
    initial_delay_limit_ms: i64,
    sync_deadline_ms: i64,
}

fn new_member_id(client_id: &str, instance_id: Option<&str>) -> String {
    let prefix = instance_id.unwrap_or(if client_id.is_empty() {
        "member"
    } else {
        client_id
    });
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

impl ClassicGroup {
    pub fn new(group_id: String, now_ms: i64) -> ClassicGroup {
        ClassicGroup {
            group_id,
            state: ClassicState::Empty,
            state_since_ms: now_ms,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: IndexMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline_ms: 0,
            initial_delay_until_ms: None,
            initial_delay_limit_ms: 0,
            sync_deadline_ms: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    fn set_state(&mut self, state: ClassicState, now_ms: i64) {
        self.state = state;
        self.state_since_ms = now_ms;
    }

    /// Protocols every member supports, in the first member's order.
    fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut candidates: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for member in members {
            candidates.retain(|c| member.protocols.iter().any(|(n, _)| n == c));
        }
        candidates
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && self
                .candidate_protocols()
                .iter()
                .any(|c| protocols.iter().any(|(n, _)| n == c))
    }

    /// Each member votes for its most preferred protocol among those all support.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: IndexMap<&str, usize> = candidates.iter().map(|c| (c.as_str(), 0)).collect();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(n))
            {
                if let Some(count) = votes.get_mut(name.as_str()) {
                    *count += 1;
                }
            }
        }
        let best = votes.values().copied().max()?;
        votes
            .into_iter()
            .find(|(_, v)| *v == best)
            .map(|(name, _)| name.to_owned())
    }

    fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    fn current_result(&self, member_id: &str, leader_view: bool) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        JoinResult {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_owned(),
            members: if leader_view {
                self.members
                    .values()
                    .map(|m| {
                        (
                            m.member_id.clone(),
                            m.group_instance_id.clone(),
                            m.metadata(&protocol).cloned().unwrap_or_default(),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    pub fn join(
        &mut self,
        request: JoinRequest,
        config: &GroupConfig,
        now_ms: i64,
    ) -> Result<Pending<JoinResult>, GroupError> {
        if !self.supports(&request.protocol_type, &request.protocols) {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        if request.member_id.is_empty() {
            let member_id = new_member_id(&request.client_id, request.group_instance_id.as_deref());
            if let Some(instance_id) = request.group_instance_id.clone() {
                if let Some(old_id) = self.static_members.get(&instance_id).cloned() {
                    return self.rejoin_static(old_id, member_id, request, config, now_ms);
                }
                self.static_members.insert(instance_id, member_id.clone());
            } else if request.require_known_member_id {
                let deadline = now_ms + i64::from(request.session_timeout_ms);
                self.pending_members.insert(member_id.clone(), deadline);
                return Err(GroupError::MemberIdRequired(member_id));
            }
            let (tx, rx) = oneshot::channel();
            self.add_member(member_id, request, tx, now_ms);
            self.prepare_rebalance(config, now_ms, true);
            self.try_complete_join(now_ms);
            return Ok(Pending::Later(rx));
        }
        let member_id = request.member_id.clone();
        if self.pending_members.remove(&member_id).is_some() {
            let (tx, rx) = oneshot::channel();
            self.add_member(member_id, request, tx, now_ms);
            self.prepare_rebalance(config, now_ms, true);
            self.try_complete_join(now_ms);
            return Ok(Pending::Later(rx));
        }
        let Some(member) = self.members.get(&member_id) else {
            return Err(GroupError::UnknownMemberId(member_id));
        };
        if let Some(instance_id) = &request.group_instance_id {
            if self.static_members.get(instance_id) != Some(&member_id) {
                return Err(GroupError::FencedInstanceId(instance_id.clone()));
            }
        }
        let same_metadata = member.protocols == request.protocols;
        let is_leader = self.leader_id.as_deref() == Some(member_id.as_str());
        match self.state {
            ClassicState::CompletingRebalance if same_metadata => {
                // It missed its JoinGroup answer; repeat it.
                return Ok(Pending::Now(self.current_result(&member_id, is_leader)));
            }
            ClassicState::Stable if same_metadata && !is_leader => {
                return Ok(Pending::Now(self.current_result(&member_id, false)));
            }
            _ => {}
        }
        let (tx, rx) = oneshot::channel();
        if let Some(member) = self.members.get_mut(&member_id) {
            member.protocols = request.protocols;
            member.session_timeout_ms = request.session_timeout_ms;
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            member.heartbeat_deadline_ms = now_ms + i64::from(request.session_timeout_ms);
            if let Some(old) = member.awaiting_join.replace(tx) {
                let _ = old.send(JoinResult::error(
                    GroupError::RebalanceInProgress,
                    member_id.clone(),
                ));
            }
        }
        self.prepare_rebalance(config, now_ms, false);
        self.try_complete_join(now_ms);
        Ok(Pending::Later(rx))
    }

    /// A static member rejoined with an unknown member id: it takes over its old identity.
    fn rejoin_static(
        &mut self,
        old_id: String,
        new_id: String,
        request: JoinRequest,
        config: &GroupConfig,
        now_ms: i64,
    ) -> Result<Pending<JoinResult>, GroupError> {
        let Some(mut member) = self.members.shift_remove(&old_id) else {
            // The mapping outlived its member; start afresh.
            if let Some(instance) = &request.group_instance_id {
                self.static_members.remove(instance);
            }
            return Err(GroupError::UnknownMemberId(old_id));
        };
        let previous_leader = self.leader_id.clone().unwrap_or_default();
        if let Some(old) = member.awaiting_join.take() {
            let _ = old.send(JoinResult::error(
                GroupError::FencedInstanceId(request.group_instance_id.clone().unwrap_or_default()),
                old_id.clone(),
            ));
        }
        if let Some(old) = member.awaiting_sync.take() {
            let _ = old.send(SyncResult::error(GroupError::FencedInstanceId(
                request.group_instance_id.clone().unwrap_or_default(),
            )));
        }
        member.member_id = new_id.clone();
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.heartbeat_deadline_ms = now_ms + i64::from(request.session_timeout_ms);
        let protocols_changed = member.protocols != request.protocols;
        member.protocols = request.protocols;
        self.members.insert(new_id.clone(), member);
        if let Some(instance) = request.group_instance_id {
            self.static_members.insert(instance, new_id.clone());
        }
        if self.leader_id.as_deref() == Some(old_id.as_str()) {
            self.leader_id = Some(new_id.clone());
        }
        let protocol_unchanged = self.select_protocol() == self.protocol_name;
        match self.state {
            ClassicState::Stable if protocol_unchanged && !protocols_changed => {
                // KIP-345: no rebalance. The old leader id is returned so that the member,
                // leader or not, does not compute an assignment the stable group would ignore.
                let mut result = self.current_result(&new_id, false);
                result.leader_id = previous_leader;
                Ok(Pending::Now(result))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                if let Some(member) = self.members.get_mut(&new_id) {
                    member.awaiting_join = Some(tx);
                }
                self.prepare_rebalance(config, now_ms, false);
                self.try_complete_join(now_ms);
                Ok(Pending::Later(rx))
            }
        }
    }

    fn add_member(
        &mut self,
        member_id: String,
        request: JoinRequest,
        awaiting_join: oneshot::Sender<JoinResult>,
        now_ms: i64,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        self.members.insert(
            member_id.clone(),
            ClassicMember {
                member_id,
                group_instance_id: request.group_instance_id,
                client_id: request.client_id,
                client_host: request.client_host,
                session_timeout_ms: request.session_timeout_ms,
                rebalance_timeout_ms: request.rebalance_timeout_ms,
                protocols: request.protocols,
                assignment: Bytes::new(),
                heartbeat_deadline_ms: now_ms + i64::from(request.session_timeout_ms),
                awaiting_join: Some(awaiting_join),
                awaiting_sync: None,
            },
        );
    }

    /// Starts a rebalance unless one is already being prepared. `new_member` extends the
    /// initial delay of a group that was empty.
    fn prepare_rebalance(&mut self, config: &GroupConfig, now_ms: i64, new_member: bool) {
        match self.state {
            ClassicState::PreparingRebalance => {
                if new_member {
                    if let Some(until) = self.initial_delay_until_ms {
                        let extended = (now_ms + config.initial_rebalance_delay_ms)
                            .min(self.initial_delay_limit_ms);
                        self.initial_delay_until_ms = Some(until.max(extended));
                    }
                }
                return;
            }
            ClassicState::CompletingRebalance => {
                for member in self.members.values_mut() {
                    if let Some(tx) = member.awaiting_sync.take() {
                        let _ = tx.send(SyncResult::error(GroupError::RebalanceInProgress));
                    }
                }
            }
            ClassicState::Empty | ClassicState::Stable => {}
        }
        let was_empty = self.state == ClassicState::Empty;
        let timeout = self.rebalance_timeout_ms();
        self.rebalance_deadline_ms = now_ms + timeout;
        self.initial_delay_until_ms = None;
        if was_empty && config.initial_rebalance_delay_ms > 0 {
            self.initial_delay_limit_ms = now_ms + timeout;
            self.initial_delay_until_ms =
                Some((now_ms + config.initial_rebalance_delay_ms).min(self.initial_delay_limit_ms));
        }
        self.set_state(ClassicState::PreparingRebalance, now_ms);
        tracing::debug!(group = %self.group_id, generation = self.generation_id, "preparing rebalance");
    }

    fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    fn try_complete_join(&mut self, now_ms: i64) {
        if self.state != ClassicState::PreparingRebalance {
            return;
        }
        let delaying = self
            .initial_delay_until_ms
            .is_some_and(|until| now_ms < until);
        if (self.all_joined() && !delaying) || now_ms >= self.rebalance_deadline_ms {
            self.complete_join(now_ms);
        }
    }

    /// Ends the join phase: members that did not rejoin are removed, a new generation starts
    /// and every waiting JoinGroup is answered (the leader with the member list).
    fn complete_join(&mut self, now_ms: i64) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in gone {
            self.remove_member(&member_id);
        }
        self.initial_delay_until_ms = None;
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.protocol_type = None;
            self.leader_id = None;
            self.set_state(ClassicState::Empty, now_ms);
            return;
        }
        self.protocol_name = self.select_protocol();
        if !self
            .leader_id
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.set_state(ClassicState::CompletingRebalance, now_ms);
        self.sync_deadline_ms = now_ms + self.rebalance_timeout_ms();
        let leader = self.leader_id.clone().unwrap_or_default();
        let leader_result = self.current_result(&leader, true);
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
            member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
            if let Some(tx) = member.awaiting_join.take() {
                let mut result = JoinResult {
                    member_id: member.member_id.clone(),
                    ..leader_result.clone()
                };
                if member.member_id != leader {
                    result.members = Vec::new();
                }
                let _ = tx.send(result);
            }
        }
        tracing::info!(
            group = %self.group_id,
            generation = self.generation_id,
            members = self.members.len(),
            protocol = ?self.protocol_name,
            "rebalance: join phase complete"
        );
    }

    /// Removes a member, answering anything it waits for.
    fn remove_member(&mut self, member_id: &str) -> bool {
        let Some(mut member) = self.members.shift_remove(member_id) else {
            return false;
        };
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if let Some(tx) = member.awaiting_join.take() {
            let _ = tx.send(JoinResult::error(
                GroupError::UnknownMemberId(member_id.to_owned()),
                member_id.to_owned(),
            ));
        }
        if let Some(tx) = member.awaiting_sync.take() {
            let _ = tx.send(SyncResult::error(GroupError::UnknownMemberId(
                member_id.to_owned(),
            )));
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = None;
        }
        true
    }

    /// Removes a member that left or expired and rebalances the rest.
    fn member_gone(&mut self, member_id: &str, config: &GroupConfig, now_ms: i64) {
        if !self.remove_member(member_id) {
            return;
        }
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => {
                self.prepare_rebalance(config, now_ms, false);
                if self.members.is_empty() {
                    self.complete_join(now_ms);
                }
            }
            ClassicState::PreparingRebalance => self.try_complete_join(now_ms),
            ClassicState::Empty => {}
        }
    }

    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<&ClassicMember, GroupError> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(id) if id == member_id => {}
                Some(_) => return Err(GroupError::FencedInstanceId(instance.to_owned())),
                None => return Err(GroupError::UnknownMemberId(member_id.to_owned())),
            }
        }
        self.members
            .get(member_id)
            .ok_or_else(|| GroupError::UnknownMemberId(member_id.to_owned()))
    }

    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        now_ms: i64,
    ) -> Result<Pending<SyncResult>, GroupError> {
        self.check_member(member_id, instance_id)?;
        if generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration {
                expected: self.generation_id,
                got: generation_id,
            });
        }
        let (protocol_type, protocol_name) = protocol;
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        match self.state {
            ClassicState::Empty => Err(GroupError::UnknownMemberId(member_id.to_owned())),
            ClassicState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            ClassicState::Stable => {
                let member = self.check_member(member_id, instance_id)?;
                Ok(Pending::Now(self.sync_result(member.assignment.clone())))
            }
            ClassicState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(member) = self.members.get_mut(member_id) {
                    member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                    if let Some(old) = member.awaiting_sync.replace(tx) {
                        let _ = old.send(SyncResult::error(GroupError::RebalanceInProgress));
                    }
                }
                if self.leader_id.as_deref() == Some(member_id) {
                    let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                    let template = self.sync_result(Bytes::new());
                    for member in self.members.values_mut() {
                        member.assignment = by_member.remove(&member.member_id).unwrap_or_default();
                        if let Some(tx) = member.awaiting_sync.take() {
                            let _ = tx.send(SyncResult {
                                assignment: member.assignment.clone(),
                                ..template.clone()
                            });
                        }
                    }
                    self.set_state(ClassicState::Stable, now_ms);
                    tracing::info!(group = %self.group_id, generation = self.generation_id, "rebalance: group stable");
                }
                Ok(Pending::Later(rx))
            }
        }
    }

    fn sync_result(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        if self.state == ClassicState::Empty {
            return Err(GroupError::UnknownMemberId(member_id.to_owned()));
        }
        self.check_member(member_id, instance_id)?;
        if generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration {
                expected: self.generation_id,
                got: generation_id,
            });
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        }
        match self.state {
            ClassicState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// LeaveGroup of one member, by member id and/or instance id.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        config: &GroupConfig,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        let member_id = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                Some(id) if member_id.is_empty() || id == member_id => id.clone(),
                Some(_) => return Err(GroupError::FencedInstanceId(instance.to_owned())),
                None => return Err(GroupError::UnknownMemberId(member_id.to_owned())),
            },
            None => member_id.to_owned(),
        };
        if self.pending_members.remove(&member_id).is_some() {
            self.try_complete_join(now_ms);
            return Ok(());
        }
        if !self.members.contains_key(&member_id) {
            return Err(GroupError::UnknownMemberId(member_id));
        }
        tracing::info!(group = %self.group_id, member = %member_id, "member left");
        self.member_gone(&member_id, config, now_ms);
        Ok(())
    }

    /// Expires sessions and deadlines; returns whether anything changed.
    pub fn tick(&mut self, config: &GroupConfig, now_ms: i64) {
        self.pending_members
            .retain(|_, deadline| *deadline > now_ms);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.awaiting_join.is_none()
                    && m.awaiting_sync.is_none()
                    && m.heartbeat_deadline_ms <= now_ms
            })
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in expired {
            tracing::info!(group = %self.group_id, member = %member_id, "member session expired");
            self.member_gone(&member_id, config, now_ms);
        }
        match self.state {
            ClassicState::PreparingRebalance => self.try_complete_join(now_ms),
            ClassicState::CompletingRebalance if now_ms >= self.sync_deadline_ms => {
                let laggards: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| m.awaiting_sync.is_none())
                    .map(|m| m.member_id.clone())
                    .collect();
                for member_id in laggards {
                    tracing::info!(group = %self.group_id, member = %member_id, "member missed SyncGroup");
                    self.member_gone(&member_id, config, now_ms);
                }
                if self.state == ClassicState::CompletingRebalance {
                    // Everyone synced but the leader never did.
                    if let Some(leader) = self.leader_id.clone() {
                        self.member_gone(&leader, config, now_ms);
                    }
                }
            }
            _ => {}
        }
    }

    /// Generation and member checks for OffsetCommit, as Kafka's `ClassicGroup`: a negative
    /// generation commits from outside the group protocol (a manually assigned consumer or an
    /// admin tool), which an empty group accepts whatever member id comes with it.
    pub fn validate_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), GroupError> {
        if generation_id < 0 && self.state == ClassicState::Empty {
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.check_member(member_id, instance_id)?;
            if generation_id != self.generation_id {
                return Err(GroupError::IllegalGeneration {
                    expected: self.generation_id,
                    got: generation_id,
                });
            }
        } else {
            // No member id and no generation while the group has members.
            return Err(GroupError::UnknownMemberId(String::new()));
        }
        if self.state == ClassicState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Sends every parked answer an error; used when the group is deleted or the shard stops.
    pub fn shut_down(&mut self) {
        for member in self.members.values_mut() {
            if let Some(tx) = member.awaiting_join.take() {
                let _ = tx.send(JoinResult::error(
                    GroupError::ShuttingDown,
                    member.member_id.clone(),
                ));
            }
            if let Some(tx) = member.awaiting_sync.take() {
                let _ = tx.send(SyncResult::error(GroupError::ShuttingDown));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(member_id: &str, instance: Option<&str>) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_owned(),
            group_instance_id: instance.map(str::to_owned),
            client_id: "c".to_owned(),
            client_host: "h".to_owned(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".to_owned(),
            protocols: vec![("range".to_owned(), Bytes::from_static(b"m"))],
            require_known_member_id: true,
        }
    }

    #[track_caller]
    fn answer<T>(pending: Pending<T>) -> T {
        match pending {
            Pending::Now(value) => value,
            Pending::Later(mut rx) => rx
                .try_recv()
                .expect("sender alive")
                .expect("answered already"),
        }
    }

    fn config() -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        }
    }

    #[test]
    fn join_sync_and_static_rejoin_without_rebalance() {
        let config = config();
        let mut group = ClassicGroup::new("g".into(), 0);
        // KIP-394: the first join only hands out a member id.
        let id = match group.join(request("", None), &config, 0) {
            Err(GroupError::MemberIdRequired(id)) => id,
            _ => panic!("expected MEMBER_ID_REQUIRED"),
        };
        let joined = answer(group.join(request(&id, None), &config, 1).expect("join"));
        assert_eq!(joined.generation_id, 1);
        assert_eq!(joined.leader_id, id);
        assert_eq!(joined.members.len(), 1);
        let synced = answer(
            group
                .sync(
                    &id,
                    None,
                    1,
                    (None, None),
                    vec![(id.clone(), Bytes::from_static(b"a"))],
                    2,
                )
                .expect("sync"),
        );
        assert_eq!(synced.assignment, Bytes::from_static(b"a"));
        assert_eq!(group.state, ClassicState::Stable);

        // A static member joins: rebalance to generation 2 with both.
        let static_join = group
            .join(request("", Some("s")), &config, 3)
            .expect("static join");
        let leader_rejoin = group.join(request(&id, None), &config, 3).expect("rejoin");
        let leader_view = answer(leader_rejoin);
        let static_view = answer(static_join);
        assert_eq!(leader_view.generation_id, 2);
        assert_eq!(leader_view.members.len(), 2);
        let static_id = static_view.member_id.clone();
        let assignments = vec![
            (id.clone(), Bytes::from_static(b"a")),
            (static_id.clone(), Bytes::from_static(b"b")),
        ];
        let follower = group
            .sync(&static_id, Some("s"), 2, (None, None), Vec::new(), 4)
            .expect("follower sync");
        answer(
            group
                .sync(&id, None, 2, (None, None), assignments, 4)
                .expect("leader sync"),
        );
        assert_eq!(answer(follower).assignment, Bytes::from_static(b"b"));

        // The static member restarts: new member id, same generation, same assignment.
        let restarted = answer(
            group
                .join(request("", Some("s")), &config, 5)
                .expect("static rejoin"),
        );
        assert_eq!(restarted.generation_id, 2);
        assert_ne!(restarted.member_id, static_id);
        assert_ne!(restarted.leader_id, restarted.member_id);
        assert_eq!(group.state, ClassicState::Stable);
        let resynced = answer(
            group
                .sync(
                    &restarted.member_id,
                    Some("s"),
                    2,
                    (None, None),
                    Vec::new(),
                    6,
                )
                .expect("resync"),
        );
        assert_eq!(resynced.assignment, Bytes::from_static(b"b"));
        // The old incarnation is fenced.
        assert_eq!(
            group.heartbeat(&static_id, Some("s"), 2, 7),
            Err(GroupError::FencedInstanceId("s".into()))
        );
        assert_eq!(group.heartbeat(&id, None, 2, 7), Ok(()));
    }

    #[test]
    fn commits_from_outside_the_group_need_an_empty_group() {
        let config = config();
        let mut group = ClassicGroup::new("g".into(), 0);
        // Empty: a negative generation commits, whatever member id comes with it.
        assert_eq!(group.validate_commit("", None, -1), Ok(()));
        assert_eq!(group.validate_commit("assigned-1", None, -1), Ok(()));
        assert_eq!(
            group.validate_commit("assigned-1", None, 0),
            Err(GroupError::UnknownMemberId("assigned-1".into()))
        );
        let id = match group.join(request("", None), &config, 0) {
            Err(GroupError::MemberIdRequired(id)) => id,
            _ => panic!("expected MEMBER_ID_REQUIRED"),
        };
        answer(group.join(request(&id, None), &config, 1).expect("join"));
        assert_eq!(group.state, ClassicState::CompletingRebalance);
        assert_eq!(
            group.validate_commit("", None, -1),
            Err(GroupError::UnknownMemberId(String::new()))
        );
        assert_eq!(
            group.validate_commit("stranger", None, -1),
            Err(GroupError::UnknownMemberId("stranger".into()))
        );
        assert_eq!(
            group.validate_commit(&id, None, -1),
            Err(GroupError::IllegalGeneration {
                expected: 1,
                got: -1
            })
        );
        assert_eq!(
            group.validate_commit(&id, None, 1),
            Err(GroupError::RebalanceInProgress)
        );
        assert_eq!(
            group.validate_commit(&id, Some("unknown-instance"), 1),
            Err(GroupError::UnknownMemberId(id.clone()))
        );
    }

    #[test]
    fn an_expired_member_is_removed_and_the_rest_rebalance() {
        let config = config();
        let mut group = ClassicGroup::new("g".into(), 0);
        let mut ids = Vec::new();
        for _ in 0..2 {
            let id = match group.join(request("", None), &config, 0) {
                Err(GroupError::MemberIdRequired(id)) => id,
                _ => panic!("expected MEMBER_ID_REQUIRED"),
            };
            ids.push(id);
        }
        let first = group
            .join(request(&ids[0], None), &config, 0)
            .expect("join");
        let second = group
            .join(request(&ids[1], None), &config, 0)
            .expect("join");
        let leader = answer(first);
        answer(second);
        let syncs: Vec<_> = ids
            .iter()
            .map(|id| {
                let assignments = if *id == leader.leader_id {
                    ids.iter().map(|m| (m.clone(), Bytes::new())).collect()
                } else {
                    Vec::new()
                };
                group
                    .sync(id, None, 1, (None, None), assignments, 0)
                    .expect("sync")
            })
            .collect();
        for sync in syncs {
            answer(sync);
        }
        // Only the first member keeps heartbeating.
        group.heartbeat(&ids[0], None, 1, 9_000).expect("heartbeat");
        group.tick(&config, 10_001);
        assert_eq!(group.state, ClassicState::PreparingRebalance);
        assert!(!group.members.contains_key(&ids[1]));
        assert_eq!(
            group.heartbeat(&ids[0], None, 1, 10_002),
            Err(GroupError::RebalanceInProgress)
        );
    }
}
