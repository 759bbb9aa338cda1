//! The words a Paxos node's journal is written in: the steps the protocol's rules read
//! (docs/protocol.md), one JSON line each ([`JournalLine`]).
//!
//! A crate of its own so that a node writes its journal without linking the checker
//! that judges it: the bundled node depends on this crate alone for its trace, the
//! checker reads the same types (`checker::protocol` re-exports them), and a node
//! written elsewhere in Rust can write journals the rules judge by depending on it.

use serde::{Deserialize, Serialize};

/// The learned log's file name, beside the journal: every slot the node wrote down as
/// chosen, one `{"slot", "command"}` line per command (a dump's log entries),
/// appended once the fsync that made the slot durable returned.
pub const LEARNED_FILE: &str = "learned.jsonl";

pub type NodeId = u32;
pub type Ballot = u64;
pub type Slot = u64;
/// A batch of log commands as the rules compare it: a fingerprint of its contents.
pub type BatchId = u64;
/// A register's name: shared with the node that sent it, not copied into every
/// event (a run's events name registers hundreds of thousands of times). Written
/// and read as a string.
pub type Key = std::sync::Arc<str>;

/// A peer message, as far as the rules look at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Msg {
    Promise {
        key: Key,
        ballot: Ballot,
        accepted: Option<(Ballot, i64)>,
    },
    Accept {
        key: Key,
        ballot: Ballot,
        value: i64,
    },
    Accepted {
        key: Key,
        ballot: Ballot,
    },
    Decided {
        key: Key,
        value: i64,
    },
    /// Phase 1b of the log: per slot, the ballot it was accepted in (`None`: known
    /// chosen) and the batch.
    LogPromise {
        ballot: Ballot,
        entries: Vec<(Slot, Option<Ballot>, BatchId)>,
    },
    LogAccept {
        ballot: Ballot,
        slot: Slot,
        batch: BatchId,
    },
    LogAccepted {
        ballot: Ballot,
        slot: Slot,
    },
    Chosen {
        entries: Vec<(Slot, BatchId)>,
    },
    /// A leader's heartbeat: it has finished phase 1 of `ballot`, and every slot up to
    /// `commit` is chosen.
    Commit {
        ballot: Ballot,
        commit: Slot,
    },
}

/// A durable record a node appended: what its own acceptor and learner did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Record {
    Promise {
        key: Key,
        ballot: Ballot,
    },
    Accept {
        key: Key,
        ballot: Ballot,
        value: i64,
    },
    Chosen {
        key: Key,
        value: i64,
    },
    LogPromise {
        ballot: Ballot,
    },
    LogAccept {
        slot: Slot,
        ballot: Ballot,
        batch: BatchId,
    },
    LogChosen {
        slot: Slot,
        batch: BatchId,
    },
}

/// One observed step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// `msg` left `from` for `to` (what the network then does is its fate). An
    /// acceptor's promises and acceptances count from here: a message lost with its
    /// node before it left promised nothing.
    Send { from: NodeId, to: NodeId, msg: Msg },
    /// `from` decided, in the step it took last, to propose `msg` (an accept, a log
    /// accept, or a leader's first heartbeat). A proposer's duties are judged here,
    /// against what it had taken in by then.
    Propose { from: NodeId, msg: Msg },
    /// `to` took `msg` in.
    Receive { from: NodeId, to: NodeId, msg: Msg },
    /// `node` appended `record` to its log.
    Record { node: NodeId, record: Record },
    /// `node` started again from its durable records.
    Restart { node: NodeId },
}

/// One line of a node's journal (docs/run-directory.md): an event as the node stepped
/// it, at `t` ns from the run's start, on the clock every process of the run shares
/// (CLOCK_MONOTONIC). `{"t":1234,"send":{"from":1,"to":2,"msg":{"promise":{..}}}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLine {
    pub t: u64,
    #[serde(flatten)]
    pub event: Event,
}
