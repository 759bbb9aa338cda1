//! The simulation's view of each node's steps as the protocol rules see them
//! ([`checker::protocol`]): every message a node sends (when it leaves), every
//! message it takes in (when it steps it), every record it appends, every restart.
//! The rules are checked as the run goes, on every step.

use std::hash::{DefaultHasher, Hash, Hasher};

use checker::protocol::{self, BatchId, Event, Invariants, Msg};
use paxos_node::core::{Action, Record};
use paxos_node::msg::PeerMessage;
use paxos_node::types::Batch;

/// A batch's fingerprint: equal batches, equal fingerprints (SipHash with fixed keys,
/// so the same in every run of this binary).
pub fn fingerprint(batch: &Batch) -> BatchId {
    let mut h = DefaultHasher::new();
    batch.hash(&mut h);
    h.finish()
}

/// A peer message as the rules see it.
pub fn msg(m: &PeerMessage) -> Msg {
    match m {
        PeerMessage::Promise {
            key,
            ballot,
            accepted,
        } => Msg::Promise {
            key: key.clone(),
            ballot: *ballot,
            accepted: *accepted,
        },
        PeerMessage::Accept { key, ballot, value } => Msg::Accept {
            key: key.clone(),
            ballot: *ballot,
            value: *value,
        },
        PeerMessage::Accepted { key, ballot } => Msg::Accepted {
            key: key.clone(),
            ballot: *ballot,
        },
        PeerMessage::Decided { key, value } => Msg::Decided {
            key: key.clone(),
            value: *value,
        },
        PeerMessage::LogPromise { ballot, entries } => Msg::LogPromise {
            ballot: *ballot,
            entries: entries
                .iter()
                .map(|e| (e.slot, e.ballot, fingerprint(&e.batch)))
                .collect(),
        },
        PeerMessage::LogAccept {
            ballot,
            slot,
            batch,
        } => Msg::LogAccept {
            ballot: *ballot,
            slot: *slot,
            batch: fingerprint(batch),
        },
        PeerMessage::LogAccepted { ballot, slot } => Msg::LogAccepted {
            ballot: *ballot,
            slot: *slot,
        },
        PeerMessage::Chosen { entries } => Msg::Chosen {
            entries: entries.iter().map(|(s, b)| (*s, fingerprint(b))).collect(),
        },
        PeerMessage::Commit { ballot, commit } => Msg::Commit {
            ballot: *ballot,
            commit: *commit,
        },
        other => Msg::Other(other.type_name()),
    }
}

/// A WAL record as the rules see it (`None`: one they do not look at).
pub fn record(r: &Record) -> Option<protocol::Record> {
    Some(match r {
        Record::Incarnation { .. } => return None,
        Record::RegisterPromise { key, ballot } => protocol::Record::Promise {
            key: key.clone(),
            ballot: *ballot,
        },
        Record::RegisterAccept { key, ballot, value } => protocol::Record::Accept {
            key: key.clone(),
            ballot: *ballot,
            value: *value,
        },
        Record::RegisterChosen { key, value } => protocol::Record::Chosen {
            key: key.clone(),
            value: *value,
        },
        Record::LogPromise { ballot } => protocol::Record::LogPromise { ballot: *ballot },
        Record::LogAccept {
            slot,
            ballot,
            batch,
        } => protocol::Record::LogAccept {
            slot: *slot,
            ballot: *ballot,
            batch: fingerprint(batch),
        },
        Record::LogChosen { slot, batch } => protocol::Record::LogChosen {
            slot: *slot,
            batch: fingerprint(batch),
        },
    })
}

/// Feeds the rules with what one step of node `id` decided, in order: the records it
/// appended and the proposals it made. What it sends is shown when it leaves
/// ([`sent`]): after the fsync it waits for, so a message lost with its node in a
/// crash never counts.
pub fn observe_step(rules: &mut Invariants, now: u64, id: u32, actions: &[Action]) {
    let node = u64::from(id);
    let mut proposed: Option<&PeerMessage> = None;
    for action in actions {
        match action {
            Action::Persist(r) => {
                if let Some(record) = record(r) {
                    rules.observe(now, &Event::Record { node, record });
                }
            }
            // A broadcast is one decision: shown once.
            Action::Send { msg: m, .. }
                if matches!(
                    m,
                    PeerMessage::Accept { .. }
                        | PeerMessage::LogAccept { .. }
                        | PeerMessage::Commit { .. }
                ) && proposed != Some(m) =>
            {
                proposed = Some(m);
                rules.observe(
                    now,
                    &Event::Propose {
                        from: node,
                        msg: msg(m),
                    },
                );
            }
            _ => {}
        }
    }
}

/// Whether the rules read `m` when it leaves its node: an acceptor's promises and
/// acceptances, a learner's announcements. Others are not converted at all (a log
/// accept's batch would be fingerprinted for nothing).
fn read_when_sent(m: &PeerMessage) -> bool {
    matches!(
        m,
        PeerMessage::Promise { .. }
            | PeerMessage::Accepted { .. }
            | PeerMessage::LogPromise { .. }
            | PeerMessage::LogAccepted { .. }
            | PeerMessage::Decided { .. }
            | PeerMessage::Chosen { .. }
    )
}

/// Whether the rules read `m` when its node takes it in: what a proposer or learner
/// hears.
pub fn read_when_received(m: &PeerMessage) -> bool {
    read_when_sent(m) || matches!(m, PeerMessage::Commit { .. })
}

/// A message leaving node `from` for `to`.
pub fn sent(rules: &mut Invariants, now: u64, from: u32, to: u32, m: &PeerMessage) {
    if !read_when_sent(m) {
        return;
    }
    let send = Event::Send {
        from: u64::from(from),
        to: u64::from(to),
        msg: msg(m),
    };
    rules.observe(now, &send);
}
