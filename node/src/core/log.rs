//! Multi-Paxos: a replicated log of KV commands with a stable leader.
//!
//! - Election by ballot takeover: a node that has not heard a leader for a seeded,
//!   random timeout runs phase 1 once for every slot from its first unapplied one on
//!   (`log-prepare`). With promises from a majority it becomes leader: for each slot
//!   any promise reported, it proposes the chosen value, else the highest-numbered
//!   accepted batch, else a no-op ("Paxos Made Simple" §3). Later slots need phase 2
//!   only.
//! - The leader batches queued client commands into one slot and keeps up to
//!   `window` slots in flight; heartbeats (`commit`) carry its commit index and it
//!   retransmits accepts that are not yet acknowledged, so lost messages only delay.
//! - Learning: a follower that accepted slot s in the leader's ballot knows the batch
//!   is the chosen one once `commit` covers s; otherwise it asks (`catch-up`).
//! - Applying: chosen slots are applied in order to the KV map on every node. The
//!   node a client sent a command to answers it when it applies that command, so an
//!   answer always reflects the chosen log; followers forward commands to the leader.
//! - Reads go through the log like writes, which makes them linearizable.

use std::collections::{BTreeMap, BTreeSet};

use super::{Inflight, Node, Pending, Record, Role, TimerId};

/// The most slots a new leader re-proposes after phase 1. Far above any honest lag in
/// a test run; a report beyond it can only come from a broken peer.
pub(super) const MAX_RECOVERY_SPAN: Slot = 1 << 22;
use crate::msg::{PeerMessage, ReportedEntry};
use crate::types::{
    Ballot, Batch, Bug, CmdId, Command, ErrorCode, KvOp, MicroOp, NodeId, OpResult, Slot,
    ballot_owner, next_ballot,
};

impl Node {
    // ---- clients ----

    pub(super) fn client_kv(&mut self, token: u64, op: KvOp) {
        if self.has_bug(Bug::TxnLocalRead) {
            if let KvOp::Txn { txn } = &op {
                if txn.iter().all(MicroOp::is_read) {
                    // The bug: a read-only transaction from this node's applied
                    // state, no consensus.
                    let read = crate::types::apply_txn(txn, &mut self.kv, &mut self.lists);
                    self.reply(token, OpResult::Txn(read));
                    return;
                }
            }
        }
        if self.has_bug(Bug::StaleRead) {
            if let KvOp::Read { key } = &op {
                // The bug: answer from whatever this node has applied, no consensus.
                let value = self.kv.get(key).copied();
                self.reply(token, OpResult::Value(value));
                return;
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = CmdId {
            node: self.cfg.id,
            incarnation: self.incarnation,
            seq,
        };
        self.requests.insert(token, Pending::Kv(seq));
        self.kv_waiting.insert(seq, token);
        let timeout = self.cfg.timing.request_timeout_ms;
        self.set_timer(TimerId::Request(token), timeout);
        self.submit(vec![Command { id, op }]);
    }

    /// Routes commands: queued on a leader or candidate, forwarded to a known leader,
    /// held for a while when no leader is known ([`Self::await_leader`]).
    fn submit(&mut self, commands: Vec<Command>) {
        match (&self.role, self.leader) {
            (Role::Leader { .. } | Role::Candidate { .. }, _) => {
                let room = self
                    .cfg
                    .timing
                    .queue_capacity
                    .saturating_sub(self.queue.len());
                let mut commands = commands;
                let refused = if commands.len() > room {
                    commands.split_off(room)
                } else {
                    Vec::new()
                };
                self.queue.extend(commands);
                self.refuse(refused);
                self.propose_queued();
            }
            (Role::Follower, Some(leader)) if leader != self.cfg.id => {
                self.send(leader, PeerMessage::Forward { commands });
            }
            (Role::Follower, _) => self.await_leader(commands),
        }
    }

    /// Holds this node's commands until a leader is known, for at most four ticks of
    /// a quarter of `leader_wait_ms` (so between 3/4 and all of it). Commands of
    /// other origins, or beyond `queue_capacity`, are refused at once.
    fn await_leader(&mut self, commands: Vec<Command>) {
        let was_empty = self.awaiting_leader.is_empty();
        let waits = self.cfg.timing.leader_wait_ms > 0;
        let mut refused = Vec::new();
        for c in commands {
            if waits
                && self.cmd_is_mine(c.id)
                && self.awaiting_leader.len() < self.cfg.timing.queue_capacity
            {
                self.awaiting_leader.push_back((self.wait_tick, c));
            } else {
                refused.push(c);
            }
        }
        self.refuse(refused);
        if was_empty && !self.awaiting_leader.is_empty() {
            let tick = self.leader_wait_tick_ms();
            self.set_timer(TimerId::LeaderWait, tick);
        }
    }

    fn leader_wait_tick_ms(&self) -> u64 {
        (self.cfg.timing.leader_wait_ms / 4).max(1)
    }

    /// A tick of waiting for a leader: commands that have waited four ticks are
    /// refused (definitely: they were never proposed).
    pub(super) fn on_leader_wait_timer(&mut self) {
        self.wait_tick += 1;
        let mut expired = Vec::new();
        while let Some((tick, _)) = self.awaiting_leader.front() {
            if self.wait_tick - *tick < 4 {
                break;
            }
            expired.push(self.awaiting_leader.pop_front().expect("present").1);
        }
        self.refuse(expired);
        if !self.awaiting_leader.is_empty() {
            let tick = self.leader_wait_tick_ms();
            self.set_timer(TimerId::LeaderWait, tick);
        }
    }

    /// Once a leader is known (or this node campaigns or leads), hands the waiting
    /// commands on. Whether it did anything.
    pub(super) fn hand_on_awaiting(&mut self) -> bool {
        if self.awaiting_leader.is_empty()
            || (matches!(self.role, Role::Follower) && self.leader.is_none())
        {
            return false;
        }
        let commands: Vec<Command> = self.awaiting_leader.drain(..).map(|(_, c)| c).collect();
        self.submit(commands);
        true
    }

    /// Tells the origin of each command that it was not proposed and never will be.
    fn refuse(&mut self, commands: Vec<Command>) {
        let mut by_origin: BTreeMap<NodeId, Vec<CmdId>> = BTreeMap::new();
        for c in commands {
            by_origin.entry(c.id.node).or_default().push(c.id);
        }
        for (origin, ids) in by_origin {
            if origin == self.cfg.id {
                for id in ids {
                    self.finish_kv(id, OpResult::Error(ErrorCode::Unavailable));
                }
            } else {
                self.send(origin, PeerMessage::Reject { ids });
            }
        }
    }

    pub(super) fn on_forward(&mut self, commands: Vec<Command>) {
        let commands: Vec<Command> = commands
            .into_iter()
            .filter(|c| self.note_origin(c.id))
            .collect();
        match self.role {
            Role::Leader { .. } | Role::Candidate { .. } => self.submit(commands),
            Role::Follower => self.refuse(commands),
        }
    }

    /// Raises the high-water mark of `id`'s origin; false when `id` is at or below it
    /// (already seen: a duplicate, or overtaken by a later command of its origin).
    pub(super) fn note_origin(&mut self, id: CmdId) -> bool {
        // The map holds one past the highest sequence number seen, so that seq 0 (the
        // first command of an origin) is new against an absent entry.
        let high = self
            .origin_high
            .entry((id.node, id.incarnation))
            .or_insert(0);
        if id.seq < *high {
            return false;
        }
        *high = id.seq.saturating_add(1);
        true
    }

    pub(super) fn note_origins(&mut self, batch: &Batch) {
        for c in batch.iter() {
            self.note_origin(c.id);
        }
    }

    // ---- election ----

    /// Arms the election timer at a random point of the timeout range, doubled for each
    /// campaign in a row that ended without a leader (at most 8 times): phase 1 from a
    /// node that lags far behind carries the whole chosen tail in its promises, which
    /// can take longer to arrive than one timeout, and restarting it with a higher
    /// ballot each time deposed every leader without ever finishing.
    pub(super) fn arm_election_timer(&mut self) {
        let wait = self.random_in(self.cfg.timing.election_timeout_ms);
        let backoff = 1u64 << self.failed_campaigns.min(3);
        self.set_timer(TimerId::Election, wait.saturating_mul(backoff));
    }

    pub(super) fn on_election_timer(&mut self) {
        match self.role {
            Role::Leader { .. } => {} // a leader's clock is the heartbeat timer
            Role::Follower if self.heard_from_leader => {
                self.heard_from_leader = false;
                self.arm_election_timer();
            }
            Role::Follower if self.cfg.timing.pre_vote => self.start_pre_vote(),
            Role::Follower => self.start_campaign(),
            Role::Candidate { .. } if self.cfg.timing.pre_vote => {
                // A campaign that did not win goes back through a pre-vote: a
                // candidate cut off from the others stops raising its ballot.
                self.failed_campaigns = self.failed_campaigns.saturating_add(1);
                self.step_down();
                self.start_pre_vote();
            }
            Role::Candidate { .. } => {
                self.failed_campaigns = self.failed_campaigns.saturating_add(1);
                self.start_campaign();
            }
        }
    }

    /// Asks the others whether they would join a campaign, without raising any
    /// ballot; a majority of grants (this node's own included) starts the campaign.
    /// Unanswered, the next election timeout starts another round.
    fn start_pre_vote(&mut self) {
        let above = self.max_ballot_seen.max(self.log_promised);
        let Some(ballot) = next_ballot(above, self.cfg.id, self.cfg.n) else {
            self.arm_election_timer(); // ballot space exhausted: never lead
            return;
        };
        self.pre_vote = Some((ballot, BTreeSet::from([self.cfg.id])));
        if self.quorum() <= 1 {
            self.start_campaign();
            return;
        }
        self.arm_election_timer();
        self.broadcast_others(PeerMessage::PreVote { ballot });
    }

    /// Answers a pre-vote: granted unless this node leads or heard its leader within
    /// the shortest election timeout. Nothing here changes: no promise, no ballot.
    pub(super) fn on_pre_vote(&mut self, from: NodeId, ballot: Ballot) {
        let granted = !self.is_leader() && !self.leader_fresh;
        self.send(from, PeerMessage::PreVoteReply { ballot, granted });
    }

    pub(super) fn on_pre_vote_reply(&mut self, from: NodeId, ballot: Ballot, granted: bool) {
        let quorum = self.quorum();
        let Some((round, votes)) = &mut self.pre_vote else {
            return;
        };
        if !granted || *round != ballot || !matches!(self.role, Role::Follower) {
            return;
        }
        votes.insert(from);
        if votes.len() >= quorum {
            self.start_campaign();
        }
    }

    /// Notes a heartbeat of the current leader: pre-votes are refused for the
    /// shortest election timeout from now, and a pre-vote round of this node ends.
    fn leader_heard(&mut self) {
        self.leader_fresh = true;
        self.pre_vote = None;
        let shortest = self.cfg.timing.election_timeout_ms.0;
        self.set_timer(TimerId::LeaderContact, shortest);
    }

    fn start_campaign(&mut self) {
        self.pre_vote = None;
        self.campaigns += 1;
        let above = self.max_ballot_seen.max(self.log_promised);
        let Some(ballot) = next_ballot(above, self.cfg.id, self.cfg.n) else {
            // Ballot space exhausted (only absurd peer ballots get here): never lead.
            self.arm_election_timer();
            return;
        };
        self.max_ballot_seen = ballot;
        let from_slot = self.applied + 1;
        self.role = Role::Candidate {
            ballot,
            from_slot,
            promises: BTreeMap::new(),
        };
        self.leader = None;
        self.heard_from_leader = false;
        self.arm_election_timer();
        self.broadcast(PeerMessage::LogPrepare { ballot, from_slot });
    }

    /// Gives up leading or campaigning (a higher ballot exists, or the campaign did
    /// not win). Queued commands were never proposed: this node's own wait for the
    /// next leader, others' clients are told. In-flight ones may still be chosen by
    /// the next leader, so their clients wait (and may time out).
    fn step_down(&mut self) {
        if matches!(self.role, Role::Follower) {
            return;
        }
        self.role = Role::Follower;
        self.leader = None;
        // Never proposed: this node's wait for the next leader, the others' are
        // refused.
        let queued: Vec<Command> = self.queue.drain(..).collect();
        self.await_leader(queued);
        self.arm_election_timer();
    }

    /// Notes a ballot seen in a message from the current or a would-be leader.
    fn observe_ballot(&mut self, ballot: Ballot) {
        self.max_ballot_seen = self.max_ballot_seen.max(ballot);
        let mine = match self.role {
            Role::Follower => None,
            Role::Candidate { ballot, .. } | Role::Leader { ballot, .. } => Some(ballot),
        };
        if let Some(mine) = mine {
            if ballot > mine {
                self.step_down();
            }
        }
    }

    /// Acceptor, phase 1 for every slot from `from_slot` on.
    pub(super) fn on_log_prepare(&mut self, from: NodeId, ballot: Ballot, from_slot: Slot) {
        let repeat = ballot == self.log_promised && ballot_owner(ballot, self.cfg.n) == from;
        if ballot <= self.log_promised && !repeat {
            let promised = self.log_promised;
            self.send(from, PeerMessage::LogNack { ballot, promised });
            return;
        }
        if self.needs_snapshot(from_slot) || self.promise_too_large(from_slot) {
            // No promise: the candidate could not use it before catching up.
            let commit = self.applied;
            self.send(from, PeerMessage::LogBehind { ballot, commit });
            return;
        }
        self.observe_ballot(ballot);
        self.log_promised = ballot;
        if self.persists_acceptor_state() {
            self.persist(Record::LogPromise { ballot });
        }
        if from != self.cfg.id {
            // Give the candidate time to win before campaigning ourselves.
            self.leader = Some(from);
            self.heard_from_leader = true;
        }
        let mut reported: BTreeMap<Slot, ReportedEntry> = BTreeMap::new();
        for (&slot, (b, batch)) in self.log_accepted.range(from_slot..) {
            reported.insert(
                slot,
                ReportedEntry {
                    slot,
                    ballot: Some(*b),
                    batch: batch.clone(),
                },
            );
        }
        for (&slot, batch) in self.chosen.range(from_slot..) {
            reported.insert(
                slot,
                ReportedEntry {
                    slot,
                    ballot: None,
                    batch: batch.clone(),
                },
            );
        }
        let entries = reported.into_values().collect();
        self.send(from, PeerMessage::LogPromise { ballot, entries });
    }

    /// Whether a promise for every slot from `from_slot` on would report more than
    /// `promise_max_commands` commands (counting stops at the bound).
    fn promise_too_large(&self, from_slot: Slot) -> bool {
        let max = self.cfg.timing.promise_max_commands;
        let mut commands = 0usize;
        let accepted = self.log_accepted.range(from_slot..).map(|(_, (_, b))| b);
        for batch in accepted.chain(self.chosen.range(from_slot..).map(|(_, b)| b)) {
            commands += batch.len().max(1);
            if commands > max {
                return true;
            }
        }
        false
    }

    /// Candidate told it lags too far behind to lead: it stops campaigning and asks
    /// the node that said so for the chosen log it lacks.
    pub(super) fn on_log_behind(&mut self, from: NodeId, ballot: Ballot) {
        if matches!(self.role, Role::Candidate { ballot: mine, .. } if mine == ballot) {
            self.step_down();
            let from_slot = self.applied + 1;
            self.send(from, PeerMessage::CatchUp { from_slot });
        }
    }

    /// Candidate: collects promises; a majority makes it leader.
    pub(super) fn on_log_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        entries: Vec<ReportedEntry>,
    ) {
        let quorum = self.quorum();
        let Role::Candidate {
            ballot: mine,
            promises,
            ..
        } = &mut self.role
        else {
            return;
        };
        if *mine != ballot {
            return;
        }
        promises.insert(from, entries);
        if promises.len() >= quorum {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        let Role::Candidate {
            ballot,
            from_slot,
            promises,
        } = std::mem::replace(&mut self.role, Role::Follower)
        else {
            unreachable!("become_leader outside candidacy");
        };
        // Per slot: a chosen value wins outright; otherwise the batch accepted in the
        // highest ballot (P2c); slots nobody reported between known ones get a no-op.
        let mut merged: BTreeMap<Slot, (Option<Ballot>, Batch)> = BTreeMap::new();
        let lowest = self.has_mistake(crate::types::Mistake::LowestPromiseWins);
        for entry in promises.into_values().flatten() {
            match merged.get(&entry.slot) {
                Some((None, _)) => {} // already known chosen
                Some((Some(b), _)) if entry.ballot.is_some_and(|e| e <= *b) && !lowest => {}
                Some((Some(b), _)) if entry.ballot.is_some_and(|e| e >= *b) && lowest => {}
                _ => {
                    merged.insert(entry.slot, (entry.ballot, entry.batch));
                }
            }
        }
        let last_reported = merged.keys().next_back().copied().unwrap_or(0);
        let last_known = self.chosen.keys().next_back().copied().unwrap_or(0);
        let max_slot = last_reported.max(last_known).max(self.applied);
        if max_slot.saturating_sub(from_slot) > MAX_RECOVERY_SPAN {
            // Leading would mean proposing in more slots than any honest log holds
            // here. Safer to stay a follower and catch up from whoever leads.
            self.role = Role::Candidate {
                ballot,
                from_slot,
                promises: BTreeMap::new(),
            };
            self.step_down();
            return;
        }
        self.role = Role::Leader {
            ballot,
            next_slot: max_slot.saturating_add(1),
            inflight: BTreeMap::new(),
        };
        self.leader = Some(self.cfg.id);
        self.failed_campaigns = 0;
        for slot in from_slot..=max_slot {
            // Applied already (a snapshot may have arrived during the campaign).
            if slot <= self.applied || self.chosen.contains_key(&slot) {
                continue;
            }
            match merged.remove(&slot) {
                Some((None, batch)) => self.learn_slot(slot, batch),
                Some((Some(_), batch)) => self.propose_slot(ballot, slot, batch),
                None => self.propose_slot(ballot, slot, Batch::default()),
            }
        }
        self.apply_chosen();
        self.send_heartbeats();
        let every = self.cfg.timing.heartbeat_ms;
        self.set_timer(TimerId::Heartbeat, every);
        self.propose_queued();
    }

    // ---- leader: phase 2 ----

    fn propose_slot(&mut self, ballot: Ballot, slot: Slot, batch: Batch) {
        let Role::Leader { inflight, .. } = &mut self.role else {
            return;
        };
        inflight.insert(
            slot,
            Inflight {
                batch: batch.clone(),
                acks: BTreeSet::new(),
            },
        );
        self.broadcast(PeerMessage::LogAccept {
            ballot,
            slot,
            batch,
        });
    }

    /// Fills free window places with batches of queued commands.
    pub(super) fn propose_queued(&mut self) {
        let (window, max_batch) = (self.cfg.timing.window, self.cfg.timing.max_batch);
        loop {
            let Role::Leader {
                ballot,
                next_slot,
                inflight,
            } = &mut self.role
            else {
                return;
            };
            if inflight.len() >= window || self.queue.is_empty() {
                return;
            }
            let (ballot, slot) = (*ballot, *next_slot);
            *next_slot = next_slot.saturating_add(1);
            let take = self.queue.len().min(max_batch);
            let batch = Batch::new(self.queue.drain(..take).collect());
            if self.has_bug(Bug::EarlyAck) {
                self.early_ack(&batch);
            }
            self.propose_slot(ballot, slot, batch);
        }
    }

    /// The `early-ack` bug: acknowledge writes as soon as they are proposed.
    fn early_ack(&mut self, batch: &Batch) {
        let mut by_origin: BTreeMap<NodeId, Vec<CmdId>> = BTreeMap::new();
        for c in batch.iter() {
            if matches!(c.op, KvOp::Write { .. }) {
                by_origin.entry(c.id.node).or_default().push(c.id);
            }
        }
        for (origin, ids) in by_origin {
            if origin == self.cfg.id {
                for id in ids {
                    self.finish_kv(id, OpResult::Done);
                }
            } else {
                self.send(origin, PeerMessage::EarlyAck { ids });
            }
        }
    }

    /// Acceptor, phase 2 for one slot.
    pub(super) fn on_log_accept(&mut self, from: NodeId, ballot: Ballot, slot: Slot, batch: Batch) {
        if ballot < self.log_promised && !self.has_bug(Bug::AcceptLowerBallot) {
            let promised = self.log_promised;
            self.send(from, PeerMessage::LogNack { ballot, promised });
            return;
        }
        self.observe_ballot(ballot);
        if from != self.cfg.id {
            self.leader = Some(from);
            self.heard_from_leader = true;
            self.failed_campaigns = 0;
        }
        self.log_promised = self.log_promised.max(ballot);
        self.note_origins(&batch);
        if slot > self.snapshot_index() && !self.chosen.contains_key(&slot) {
            if self.persists_acceptor_state() {
                self.persist(Record::LogAccept {
                    slot,
                    ballot,
                    batch: batch.clone(),
                });
            }
            self.log_accepted.insert(slot, (ballot, batch));
        }
        self.send(from, PeerMessage::LogAccepted { ballot, slot });
    }

    /// Leader: counts acceptances; a majority makes the slot chosen.
    pub(super) fn on_log_accepted(&mut self, from: NodeId, ballot: Ballot, slot: Slot) {
        let quorum = self.quorum();
        let Role::Leader {
            ballot: mine,
            inflight,
            ..
        } = &mut self.role
        else {
            return;
        };
        if *mine != ballot {
            return;
        }
        let Some(entry) = inflight.get_mut(&slot) else {
            return;
        };
        entry.acks.insert(from);
        if entry.acks.len() < quorum {
            return;
        }
        let entry = inflight.remove(&slot).expect("present above");
        let before = self.applied;
        self.learn_slot(slot, entry.batch);
        self.apply_chosen();
        if self.applied > before {
            self.send_heartbeats();
        }
        self.propose_queued();
    }

    pub(super) fn on_log_nack(&mut self, ballot: Ballot, promised: Ballot) {
        self.max_ballot_seen = self.max_ballot_seen.max(promised);
        let mine = match self.role {
            Role::Follower => return,
            Role::Candidate { ballot, .. } | Role::Leader { ballot, .. } => ballot,
        };
        if mine == ballot && promised > mine {
            self.step_down();
        }
    }

    pub(super) fn on_heartbeat_timer(&mut self) {
        let Role::Leader {
            ballot, inflight, ..
        } = &self.role
        else {
            return;
        };
        // Retransmit accepts still missing acknowledgements; lost messages must only
        // delay a slot, never stall the window for good.
        let ballot = *ballot;
        let mut resend = Vec::new();
        for (&slot, entry) in inflight {
            for to in 1..=self.cfg.n as NodeId {
                if to != self.cfg.id && !entry.acks.contains(&to) {
                    resend.push((to, slot, entry.batch.clone()));
                }
            }
        }
        for (to, slot, batch) in resend {
            self.send(
                to,
                PeerMessage::LogAccept {
                    ballot,
                    slot,
                    batch,
                },
            );
        }
        self.send_heartbeats();
        let every = self.cfg.timing.heartbeat_ms;
        self.set_timer(TimerId::Heartbeat, every);
    }

    fn send_heartbeats(&mut self) {
        if let Role::Leader { ballot, .. } = self.role {
            let commit = self.applied;
            self.broadcast_others(PeerMessage::Commit { ballot, commit });
        }
    }

    // ---- learners ----

    /// Follower: the leader of `ballot` says every slot up to `commit` is chosen.
    pub(super) fn on_commit(&mut self, from: NodeId, ballot: Ballot, commit: Slot) {
        if ballot < self.log_promised {
            // A deposed leader: tell it, so it steps down.
            let promised = self.log_promised;
            self.send(from, PeerMessage::LogNack { ballot, promised });
            return;
        }
        self.observe_ballot(ballot);
        self.leader = Some(from);
        self.heard_from_leader = true;
        self.failed_campaigns = 0;
        if from != self.cfg.id {
            self.leader_heard();
        }
        let mut slot = self.applied + 1;
        while slot <= commit {
            if !self.chosen.contains_key(&slot) {
                match self.log_accepted.get(&slot) {
                    // Accepted in the leader's ballot: that batch is the one chosen, as a
                    // ballot proposes one batch per slot.
                    Some((b, batch)) if *b == ballot => {
                        let batch = batch.clone();
                        self.learn_slot(slot, batch);
                    }
                    _ => {
                        self.send(from, PeerMessage::CatchUp { from_slot: slot });
                        break;
                    }
                }
            }
            let Some(next) = slot.checked_add(1) else {
                break;
            };
            slot = next;
        }
        self.apply_chosen();
    }

    /// Sends chosen entries from `from_slot` on: at most `catch_up_batch` slots and,
    /// past the first slot, at most `promise_max_commands` commands.
    pub(super) fn on_catch_up(&mut self, from: NodeId, from_slot: Slot) {
        if self.needs_snapshot(from_slot) {
            self.send_snapshot(from);
            return;
        }
        let (slots, max) = (
            self.cfg.timing.catch_up_batch,
            self.cfg.timing.promise_max_commands,
        );
        let mut commands = 0usize;
        let mut entries: Vec<(Slot, Batch)> = Vec::new();
        for (s, b) in self.chosen.range(from_slot..).take(slots) {
            commands += b.len().max(1);
            if commands > max && !entries.is_empty() {
                break;
            }
            entries.push((*s, b.clone()));
        }
        if !entries.is_empty() {
            self.send(from, PeerMessage::Chosen { entries });
        }
    }

    /// Learns chosen entries; a reply as full as [`Self::on_catch_up`] makes them
    /// (in slots, or within one batch of the command bound) may have more behind it,
    /// so the next ones are asked for.
    pub(super) fn on_chosen(&mut self, from: NodeId, entries: Vec<(Slot, Batch)>) {
        let t = &self.cfg.timing;
        let commands: usize = entries.iter().map(|(_, b)| b.len().max(1)).sum();
        let full =
            entries.len() >= t.catch_up_batch || commands + t.max_batch > t.promise_max_commands;
        for (slot, batch) in entries {
            self.learn_slot(slot, batch);
        }
        self.apply_chosen();
        if full {
            let from_slot = self.applied + 1;
            self.send(from, PeerMessage::CatchUp { from_slot });
        }
    }

    /// Records that `batch` is chosen for `slot`.
    pub(super) fn learn_slot(&mut self, slot: Slot, batch: Batch) {
        if slot <= self.snapshot_index() {
            return; // applied, and in the snapshot
        }
        if let Some(known) = self.chosen.get(&slot) {
            if *known != batch {
                // A peer claims another value (a bug, or a forged message): the log
                // keeps what it chose, and the conflict is counted, never panicked on.
                self.conflicts += 1;
            }
            return;
        }
        self.log_accepted.remove(&slot);
        self.note_origins(&batch);
        self.persist(Record::LogChosen {
            slot,
            batch: batch.clone(),
        });
        self.chosen.insert(slot, batch);
    }

    /// Applies chosen slots in order, answering this node's clients.
    pub(super) fn apply_chosen(&mut self) {
        let (mut commands, mut bytes) = (0u64, 0u64);
        while let Some(batch) = self.chosen.get(&(self.applied + 1)) {
            let batch = batch.clone();
            self.applied += 1;
            commands += batch.len().max(1) as u64;
            // Writes the `split-txn` bug held back from the slot before.
            let due = std::mem::take(&mut self.split_rest);
            for command in batch.iter() {
                bytes += command.op.key_bytes() as u64 + super::COMMAND_BYTES;
                let result = self.apply_op(&command.op);
                self.finish_kv(command.id, result);
            }
            crate::types::apply_txn(&due, &mut self.kv, &mut self.lists);
        }
        if commands > 0 {
            self.note_applied(commands, bytes);
        }
    }

    fn apply_op(&mut self, op: &KvOp) -> OpResult {
        if let (true, KvOp::Txn { txn }) = (self.has_bug(Bug::SplitTxn), op) {
            let writes = txn.iter().filter(|m| !m.is_read()).count();
            if writes >= 2 {
                // The bug: the first half of the writes now, the rest after the
                // next slot.
                let mut left = writes / 2;
                let mut done = Vec::with_capacity(txn.len());
                for m in txn {
                    if !m.is_read() && left == 0 {
                        self.split_rest.push(m.clone());
                        done.push(m.clone());
                        continue;
                    }
                    left -= usize::from(!m.is_read());
                    let one = std::slice::from_ref(m);
                    done.extend(crate::types::apply_txn(one, &mut self.kv, &mut self.lists));
                }
                return OpResult::Txn(done);
            }
        }
        op.apply(&mut self.kv, &mut self.lists)
    }
}
