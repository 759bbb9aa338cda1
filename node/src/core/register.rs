//! Basic Paxos registers: each register key is its own single-decree instance, decided
//! at most once ("SET X = v" exactly once).
//!
//! The rules, from "Paxos Made Simple" (Lamport, 2001), §2.2-2.3:
//! - P1a: an acceptor promises a number only if it is above every number it promised;
//! - P2c: a proposer that got promises from a majority proposes the value of the
//!   highest-numbered proposal accepted among them, or its own value if there is none;
//! - an acceptor accepts a proposal unless it promised a higher number;
//! - a value is chosen once a majority accepted it in one ballot.
//!
//! Any node proposes on behalf of its clients. Dueling proposers back off for a seeded
//! random time. Learning: the proposer that sees a majority of `accepted` broadcasts
//! `decided`; an acceptor that already knows the decision answers any later prepare or
//! accept with `decided`, so a node that missed the broadcast learns on its next try.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Node, Pending, Record, TimerId};
use crate::msg::PeerMessage;
use crate::types::{Ballot, Bug, NodeId, OpResult, RegKey, ballot_owner, next_ballot};

/// Acceptor state of one register. Durable: every change is persisted before the
/// reply that reveals it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterAcceptor {
    /// The highest ballot promised. Invariant: at least the ballot of `accepted`.
    pub promised: Ballot,
    /// The highest-numbered proposal accepted.
    pub accepted: Option<(Ballot, i64)>,
}

/// Proposer state of one register on this node, while it is undecided here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterProposer {
    /// The value of the client whose request started this proposer.
    pub value: i64,
    /// The ballot of the current round (0 before the first).
    pub ballot: Ballot,
    pub phase: Phase,
    /// Tokens of the client requests waiting for the decision.
    pub waiters: Vec<u64>,
    pub rounds: u32,
    /// The highest ballot any acceptor told us about.
    pub max_seen: Ballot,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for promises: acceptor -> its highest accepted proposal.
    Preparing {
        promises: BTreeMap<NodeId, Option<(Ballot, i64)>>,
    },
    /// Waiting for acceptances of `value`.
    Accepting { value: i64, acks: BTreeSet<NodeId> },
    /// Refused by a higher ballot; the register timer ends the wait.
    Backoff,
}

impl Node {
    pub(super) fn client_propose(&mut self, token: u64, key: RegKey, value: i64) {
        if let Some(&chosen) = self.reg_chosen.get(&*key) {
            self.reply(token, OpResult::Value(Some(chosen)));
            return;
        }
        self.requests.insert(token, Pending::Register(key.clone()));
        let timeout = self.cfg.timing.request_timeout_ms;
        self.set_timer(TimerId::Request(token), timeout);
        if let Some(p) = self.reg_proposers.get_mut(&key) {
            // A round is already running here: the client shares its outcome. Its own
            // value is not proposed, which keeps validity (the chosen value was proposed
            // by some client of this key).
            p.waiters.push(token);
            return;
        }
        self.reg_proposers.insert(
            key.clone(),
            RegisterProposer {
                value,
                ballot: 0,
                phase: Phase::Backoff,
                waiters: vec![token],
                rounds: 0,
                max_seen: 0,
            },
        );
        self.start_register_round(key);
    }

    /// Phase 1: a new ballot above everything seen, prepare sent to every acceptor.
    fn start_register_round(&mut self, key: RegKey) {
        let promised_here = self.reg_acceptors.get(&key).map_or(0, |a| a.promised);
        let (id, n, max_rounds) = (self.cfg.id, self.cfg.n, self.cfg.timing.max_register_rounds);
        let Some(p) = self.reg_proposers.get_mut(&key) else {
            return;
        };
        if p.rounds >= max_rounds {
            // Give up; the waiters' request timers answer them with `timeout`.
            self.reg_proposers.remove(&key);
            return;
        }
        let Some(ballot) = next_ballot(p.max_seen.max(promised_here).max(p.ballot), id, n) else {
            self.reg_proposers.remove(&key); // ballot space exhausted: stop proposing
            return;
        };
        p.rounds += 1;
        p.ballot = ballot;
        p.max_seen = p.ballot;
        p.phase = Phase::Preparing {
            promises: BTreeMap::new(),
        };
        let ballot = p.ballot;
        self.arm_phase_timer(&key);
        self.broadcast(PeerMessage::Prepare { key, ballot });
    }

    fn arm_phase_timer(&mut self, key: &RegKey) {
        let base = self.cfg.timing.phase_timeout_ms;
        let jitter = self.random_u64() % (base / 2 + 1);
        self.set_timer(TimerId::Register(key.clone()), base + jitter);
    }

    pub(super) fn on_register_timer(&mut self, key: RegKey) {
        if self.reg_chosen.contains_key(&*key) || !self.reg_proposers.contains_key(&*key) {
            return;
        }
        self.start_register_round(key);
    }

    /// Acceptor, phase 1.
    pub(super) fn on_prepare(&mut self, from: NodeId, key: RegKey, ballot: Ballot) {
        if let Some(&value) = self.reg_chosen.get(&*key) {
            self.send(from, PeerMessage::Decided { key, value });
            return;
        }
        let n = self.cfg.n;
        let acc = self.reg_acceptors.entry(key.clone()).or_default();
        // Promise only above every number promised. A repeat of the very prepare we
        // promised (a duplicated message) gets the same promise again.
        let repeat = ballot == acc.promised && ballot > 0 && ballot_owner(ballot, n) == from;
        if ballot > acc.promised || repeat {
            acc.promised = ballot;
            let accepted = acc.accepted;
            if self.persists_acceptor_state() {
                self.persist(Record::RegisterPromise {
                    key: key.clone(),
                    ballot,
                });
            }
            self.send(
                from,
                PeerMessage::Promise {
                    key,
                    ballot,
                    accepted,
                },
            );
        } else {
            let promised = acc.promised;
            self.send(
                from,
                PeerMessage::RegisterNack {
                    key,
                    ballot,
                    promised,
                },
            );
        }
    }

    /// Proposer, phase 1 replies.
    pub(super) fn on_promise(
        &mut self,
        from: NodeId,
        key: RegKey,
        ballot: Ballot,
        accepted: Option<(Ballot, i64)>,
    ) {
        let quorum = self.quorum();
        let ignore_accepted = self.has_bug(Bug::IgnoreAccepted);
        let lowest = self.has_mistake(crate::types::Mistake::LowestPromiseWins);
        let Some(p) = self.reg_proposers.get_mut(&key) else {
            return;
        };
        if p.ballot != ballot {
            return; // a reply to an older round
        }
        let Phase::Preparing { promises } = &mut p.phase else {
            return;
        };
        promises.insert(from, accepted);
        if promises.len() < quorum {
            return;
        }
        // P2c: the value of the highest-numbered accepted proposal among the promises,
        // or our own value when none was accepted.
        let highest = match lowest {
            false => promises.values().flatten().max_by_key(|(b, _)| *b),
            true => promises.values().flatten().min_by_key(|(b, _)| *b),
        };
        let value = match highest {
            Some((_, v)) if !ignore_accepted => *v,
            _ => p.value,
        };
        p.phase = Phase::Accepting {
            value,
            acks: BTreeSet::new(),
        };
        self.arm_phase_timer(&key);
        self.broadcast(PeerMessage::Accept { key, ballot, value });
    }

    /// Acceptor, phase 2.
    pub(super) fn on_accept(&mut self, from: NodeId, key: RegKey, ballot: Ballot, value: i64) {
        if let Some(&chosen) = self.reg_chosen.get(&*key) {
            self.send(from, PeerMessage::Decided { key, value: chosen });
            return;
        }
        let lower_ok = self.has_bug(Bug::AcceptLowerBallot);
        let acc = self.reg_acceptors.entry(key.clone()).or_default();
        // Accept unless a higher number was promised.
        if ballot >= acc.promised || lower_ok {
            acc.promised = acc.promised.max(ballot);
            acc.accepted = Some((ballot, value));
            if self.persists_acceptor_state() {
                self.persist(Record::RegisterAccept {
                    key: key.clone(),
                    ballot,
                    value,
                });
            }
            self.send(from, PeerMessage::Accepted { key, ballot });
        } else {
            let promised = acc.promised;
            self.send(
                from,
                PeerMessage::RegisterNack {
                    key,
                    ballot,
                    promised,
                },
            );
        }
    }

    /// Proposer, phase 2 replies.
    pub(super) fn on_accepted(&mut self, from: NodeId, key: RegKey, ballot: Ballot) {
        let quorum = self.quorum();
        let Some(p) = self.reg_proposers.get_mut(&key) else {
            return;
        };
        if p.ballot != ballot {
            return;
        }
        let Phase::Accepting { value, acks } = &mut p.phase else {
            return;
        };
        acks.insert(from);
        if acks.len() < quorum {
            return;
        }
        let value = *value;
        self.learn_register(key.clone(), value);
        self.broadcast_others(PeerMessage::Decided { key, value });
    }

    pub(super) fn on_register_nack(&mut self, key: RegKey, ballot: Ballot, promised: Ballot) {
        let backoff = self.cfg.timing.backoff_ms;
        let Some(p) = self.reg_proposers.get_mut(&key) else {
            return;
        };
        p.max_seen = p.max_seen.max(promised);
        if p.ballot != ballot || p.phase == Phase::Backoff {
            return;
        }
        p.phase = Phase::Backoff;
        let wait = self.random_in(backoff);
        self.set_timer(TimerId::Register(key), wait);
    }

    /// Learner: `value` is chosen for `key`. Answers every client waiting here.
    pub(super) fn learn_register(&mut self, key: RegKey, value: i64) {
        if let Some(&known) = self.reg_chosen.get(&*key) {
            if known != value {
                // A peer claims another value (a bug, or a forged message): the log
                // keeps what it chose, and the conflict is counted, never panicked on.
                self.conflicts += 1;
            }
            return;
        }
        self.reg_chosen.insert(key.clone(), value);
        // Once chosen is known, the acceptor answers with `decided`; its state is moot.
        self.reg_acceptors.remove(&key);
        self.persist(Record::RegisterChosen {
            key: key.clone(),
            value,
        });
        if let Some(p) = self.reg_proposers.remove(&key) {
            for token in p.waiters {
                self.requests.remove(&token);
                self.reply(token, OpResult::Value(Some(value)));
            }
        }
    }
}
