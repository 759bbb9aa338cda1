//! This node's steps in the vocabulary of the protocol's rules ([`paxos_trace`],
//! which the checker's `protocol` module judges; the node does not link the
//! checker): every message it sends (when it leaves), every message it takes in
//! (when it steps it), every record it appends, every proposal it makes.
//! One translation for both drivers of the core: the simulation feeds these events
//! to the rules as it steps each node, and the shell writes them to the node's
//! journal (`--journal`), which `chaos` judges after a real run
//! ([`crate::journal`]).
//!
//! Only the messages the rules read are translated; batches of log commands become
//! fingerprints.

use paxos_trace::{self as protocol, BatchId, Event, Msg};

use crate::core::{Action, Record};
use crate::msg::PeerMessage;
use crate::types::{Batch, NodeId};

/// A batch's fingerprint: equal batches, equal fingerprints (SipHash with fixed keys,
/// so the same in every process built from this source, node and harness alike).
pub fn fingerprint(batch: &Batch) -> BatchId {
    batch.fingerprint()
}

/// Whether the rules read `m` when it leaves its node: an acceptor's promises and
/// acceptances, a learner's announcements.
pub fn read_when_sent(m: &PeerMessage) -> bool {
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

/// A peer message as the rules see it (`None`: one no rule reads).
pub fn msg(m: &PeerMessage) -> Option<Msg> {
    Some(match m {
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
        _ => return None,
    })
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

/// What one step of node `id` decided, in order: the records it appended and the
/// proposals it made. What it sends is shown when it leaves ([`sent`]): after the
/// fsync it waits for, so a message lost with its node in a crash never counts.
pub fn step_events(id: NodeId, actions: &[Action], mut out: impl FnMut(Event)) {
    let node = id;
    let mut proposed: Option<&PeerMessage> = None;
    for action in actions {
        match action {
            Action::Persist(r) => {
                if let Some(record) = record(r) {
                    out(Event::Record { node, record });
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
                if let Some(msg) = msg(m) {
                    out(Event::Propose { from: node, msg });
                }
            }
            _ => {}
        }
    }
}

/// Node `to` taking in `m` from `from`, if the rules read it.
pub fn received(from: NodeId, to: NodeId, m: &PeerMessage) -> Option<Event> {
    if !read_when_received(m) {
        return None;
    }
    Some(Event::Receive {
        from,
        to,
        msg: msg(m)?,
    })
}

/// `m` leaving node `from` for `to`, if the rules read it.
pub fn sent(from: NodeId, to: NodeId, m: &PeerMessage) -> Option<Event> {
    if !read_when_sent(m) {
        return None;
    }
    Some(Event::Send {
        from,
        to,
        msg: msg(m)?,
    })
}
