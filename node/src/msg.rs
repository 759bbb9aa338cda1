//! Peer messages: what one node's core sends to another's.
//!
//! On the wire each message is one JSON object on one line with a `"type"` field
//! (docs/protocol.md), so that a proxy on a link can frame, drop, delay and duplicate single
//! messages without understanding them.

use serde::{Deserialize, Serialize};

use crate::types::{Ballot, Batch, CmdId, Command, NodeId, RegKey, Slot};

/// One entry an acceptor reports in a phase-1 reply of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedEntry {
    pub slot: Slot,
    /// The ballot the batch was accepted in; `None` when the acceptor already knows the
    /// slot is chosen (a chosen value is the only value any later ballot may propose).
    pub ballot: Option<Ballot>,
    pub batch: Batch,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PeerMessage {
    // ---- Basic Paxos, one single-decree instance per register key ----
    /// Phase 1a.
    Prepare { key: RegKey, ballot: Ballot },
    /// Phase 1b: the acceptor promises `ballot` and reports its highest-numbered
    /// accepted proposal, if any.
    Promise {
        key: RegKey,
        ballot: Ballot,
        accepted: Option<(Ballot, i64)>,
    },
    /// Phase 2a.
    Accept {
        key: RegKey,
        ballot: Ballot,
        value: i64,
    },
    /// Phase 2b.
    Accepted { key: RegKey, ballot: Ballot },
    /// A prepare or accept was refused because the acceptor promised `promised`.
    RegisterNack {
        key: RegKey,
        ballot: Ballot,
        promised: Ballot,
    },
    /// The learner message: `value` is chosen for `key`.
    Decided { key: RegKey, value: i64 },

    // ---- Multi-Paxos log ----
    /// Phase 1a for every slot from `from_slot` on.
    LogPrepare { ballot: Ballot, from_slot: Slot },
    /// Phase 1b for every slot from the prepare's `from_slot` on.
    LogPromise {
        ballot: Ballot,
        entries: Vec<ReportedEntry>,
    },
    /// Phase 2a for one slot.
    LogAccept {
        ballot: Ballot,
        slot: Slot,
        batch: Batch,
    },
    /// Phase 2b for one slot.
    LogAccepted { ballot: Ballot, slot: Slot },
    /// A log prepare was refused, with no promise made, because the candidate lags
    /// too far behind: the promise would carry more chosen commands than one message
    /// may (`promise_max_commands`). The candidate catches up first; the answering
    /// node has applied every slot up to `commit`.
    LogBehind { ballot: Ballot, commit: Slot },
    /// A log prepare or accept was refused because the acceptor promised `promised`.
    LogNack { ballot: Ballot, promised: Ballot },
    /// Leader heartbeat and commit notice: every slot up to `commit` is chosen, and the
    /// leader proposed all the slots it did not learn as chosen before its election in
    /// `ballot`.
    Commit { ballot: Ballot, commit: Slot },
    /// Pre-vote: would the receiver join a campaign at `ballot`? Changes nothing at
    /// the receiver, so a node that cannot win (cut off, or rejoining after a
    /// partition) never raises the ballot that would depose a healthy leader.
    PreVote { ballot: Ballot },
    /// The answer to a `PreVote`: granted unless the receiver leads or heard its
    /// leader within the shortest election timeout.
    PreVoteReply { ballot: Ballot, granted: bool },
    /// A lagging node asks for chosen entries from `from_slot` on.
    CatchUp { from_slot: Slot },
    /// Chosen entries, in slot order.
    Chosen { entries: Vec<(Slot, Batch)> },
    /// Part `part` of `parts` of the sender's state machine at slot `index`, for a
    /// node whose catch-up starts below the sender's snapshot: at most
    /// `snapshot_chunk_keys` KV pairs; the origins' high-water marks in part 0.
    SnapshotChunk {
        index: Slot,
        part: u32,
        parts: u32,
        kv: Vec<(String, i64)>,
        /// Lists, in chunks after the pairs' (absent from the encoding when empty).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lists: Vec<(String, Vec<i64>)>,
        origins: Vec<(NodeId, u64, u64)>,
    },
    /// A follower hands client commands to the node it believes is the leader.
    Forward { commands: Vec<Command> },
    /// The receiver of a `Forward` is not the leader and did not propose these commands.
    Reject { ids: Vec<CmdId> },
    /// Only with `--bug early-ack`: the leader acknowledges a write it has just proposed.
    EarlyAck { ids: Vec<CmdId> },
}

impl PeerMessage {
    /// The wire name of the message type, as it appears in the `"type"` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            PeerMessage::Prepare { .. } => "prepare",
            PeerMessage::Promise { .. } => "promise",
            PeerMessage::Accept { .. } => "accept",
            PeerMessage::Accepted { .. } => "accepted",
            PeerMessage::RegisterNack { .. } => "register-nack",
            PeerMessage::Decided { .. } => "decided",
            PeerMessage::LogPrepare { .. } => "log-prepare",
            PeerMessage::LogPromise { .. } => "log-promise",
            PeerMessage::LogAccept { .. } => "log-accept",
            PeerMessage::LogAccepted { .. } => "log-accepted",
            PeerMessage::LogBehind { .. } => "log-behind",
            PeerMessage::LogNack { .. } => "log-nack",
            PeerMessage::Commit { .. } => "commit",
            PeerMessage::PreVote { .. } => "pre-vote",
            PeerMessage::PreVoteReply { .. } => "pre-vote-reply",
            PeerMessage::CatchUp { .. } => "catch-up",
            PeerMessage::Chosen { .. } => "chosen",
            PeerMessage::SnapshotChunk { .. } => "snapshot-chunk",
            PeerMessage::Forward { .. } => "forward",
            PeerMessage::Reject { .. } => "reject",
            PeerMessage::EarlyAck { .. } => "early-ack",
        }
    }
}

impl crate::seam::Wire for PeerMessage {
    fn kind(&self) -> &'static str {
        self.type_name()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        crate::seam::json_encode(self, out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        crate::seam::json_decode(bytes)
    }

    /// The bundled node's peer lines are its messages' JSON.
    fn to_line(&self) -> String {
        serde_json::to_string(self).expect("peer messages serialize")
    }

    fn from_line(line: &[u8]) -> Result<Self, String> {
        crate::seam::json_decode(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_name_matches_the_serialized_tag() {
        let msgs = [
            PeerMessage::Prepare {
                key: "k".into(),
                ballot: 1,
            },
            PeerMessage::LogPromise {
                ballot: 4,
                entries: vec![],
            },
            PeerMessage::RegisterNack {
                key: "k".into(),
                ballot: 1,
                promised: 2,
            },
            PeerMessage::EarlyAck { ids: vec![] },
            PeerMessage::PreVote { ballot: 3 },
            PeerMessage::LogBehind {
                ballot: 3,
                commit: 9,
            },
            PeerMessage::PreVoteReply {
                ballot: 3,
                granted: true,
            },
        ];
        for m in msgs {
            let v: serde_json::Value = serde_json::to_value(&m).unwrap();
            assert_eq!(v["type"], m.type_name());
            let back: PeerMessage = serde_json::from_value(v).unwrap();
            assert_eq!(back, m);
        }
    }
}
