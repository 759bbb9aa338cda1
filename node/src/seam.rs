//! The core seam: the one trait a consensus core implements to run under every driver
//! of this project (the node's real shell, the deterministic simulation, the tests).
//!
//! A core is a sans-IO state machine. The driver hands it [`Event`]s (a peer message,
//! a client op, a timer it asked for; and, at start, the durable records and snapshot
//! a restart recovered) and carries out the [`Action`]s it returns: persist a record,
//! replace the log by a snapshot, send a message, reply to a client, set a timer.
//! Sync is the driver's, not an action: a burst of actions is carried out in the
//! order [`crate::commit::order`] gives (every record of the burst, one sync, then the
//! sends, replies and timers), so no message or reply leaves before the records that
//! were returned ahead of it are durable.
//!
//! Messages, records and snapshots are opaque to the drivers. A driver asks a message
//! or record for its kind ([`Wire::kind`], for counts and the report's diagrams) and
//! turns it into bytes and back ([`Wire::encode`], [`Wire::decode`]) when it crosses
//! a socket or a disk; the simulation moves messages in memory and writes records to
//! its simulated disk as the bytes the real write-ahead log would hold, so a torn or
//! corrupt write hits the same bytes in both.
//!
//! Two cores implement it: the bundled Paxos node ([`crate::core::Node`]) and TiKV's
//! Raft behind a KV store ([`crate::raft::RaftCore`]). docs/cores.md says how a team
//! puts its own core under the harness.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::{ClientOp, NodeId, OpResult};

/// A message or record as a driver sees it: a kind and bytes.
pub trait Wire: Clone + Debug + Sized {
    /// A short name of what this is (`append`, `vote`, `hard-state`, ...): message
    /// counts per type, the report's space-time diagram, the witnesses of anomalies.
    fn kind(&self) -> &'static str;
    /// Appends the bytes that stand for this value.
    fn encode(&self, out: &mut Vec<u8>);
    /// The value `bytes` stand for; an error says why they stand for none.
    fn decode(bytes: &[u8]) -> Result<Self, String>;

    /// One line of the peer protocol (docs/protocol.md): a JSON object whose `"type"`
    /// is the kind (the proxies count messages by it) and whose `"bytes"` are the
    /// encoding in base64. A core whose messages are JSON already sends them as they are.
    fn to_line(&self) -> String {
        use base64::Engine as _;
        let mut bytes = Vec::new();
        self.encode(&mut bytes);
        serde_json::json!({
            "type": self.kind(),
            "bytes": base64::engine::general_purpose::STANDARD.encode(bytes),
        })
        .to_string()
    }

    /// The message a line of [`Wire::to_line`] carries.
    fn from_line(line: &[u8]) -> Result<Self, String> {
        use base64::Engine as _;
        #[derive(serde::Deserialize)]
        struct Line {
            bytes: String,
        }
        let line: Line = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(line.bytes)
            .map_err(|e| e.to_string())?;
        Self::decode(&bytes)
    }
}

/// Any serde type is on the wire as JSON: the bundled node's messages and records,
/// and records of cores that have no encoding of their own.
pub fn json_encode<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    serde_json::to_writer(out, value).expect("a core's values always serialize");
}

pub fn json_decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// What a driver feeds a core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<M, T> {
    Peer {
        from: NodeId,
        msg: M,
    },
    /// A client request. `token` is the driver's handle for the reply; it must be
    /// unique among the requests in flight.
    Client {
        token: u64,
        op: ClientOp,
    },
    Timer(T),
}

/// What a core asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<M, R, S, T> {
    /// Make the record durable before carrying out any later send or reply.
    Persist(R),
    /// Make `snapshot` the node's durable snapshot (written whole, checksummed, synced,
    /// then put in place), and only then replace the write-ahead log with `keep`: the
    /// records that, after the snapshot, hold every durable state of the node.
    /// Records persisted earlier in the same burst are covered by `keep`.
    Snapshot {
        snapshot: S,
        keep: Vec<R>,
    },
    Send {
        to: NodeId,
        msg: M,
    },
    Reply {
        token: u64,
        result: OpResult,
    },
    /// Setting a timer that is already set replaces it.
    SetTimer {
        timer: T,
        after_ms: u64,
    },
}

/// The actions of a core `C`.
pub type Actions<C> =
    Vec<Action<<C as Core>::Msg, <C as Core>::Record, <C as Core>::Snapshot, <C as Core>::Timer>>;
/// An event of a core `C`.
pub type EventOf<C> = Event<<C as Core>::Msg, <C as Core>::Timer>;

/// Who a node thinks leads, and in which round, by its own account: what `status`
/// answers and what faults aimed at the leader ask.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// `leader`, `candidate`, `follower` (or the core's own words).
    pub role: &'static str,
    pub leader: Option<NodeId>,
    /// The ballot or term the node is in.
    pub round: u64,
    /// Every log position up to this one is known committed to this node.
    pub commit_index: u64,
}

/// A sans-IO consensus core. Deterministic: the same configuration, recovered state
/// and events give the same actions (its randomness comes from the configuration's
/// seed).
pub trait Core: Sized {
    /// A message between nodes.
    type Msg: Wire;
    /// A durable record.
    type Record: Wire;
    /// A durable snapshot of the state machine and what it needs to go on.
    type Snapshot: Clone + Debug + Serialize + DeserializeOwned;
    /// A timer the core asks for; setting one that is set replaces it.
    type Timer: Clone + Debug + Ord;
    /// The core's fixed configuration.
    type Config: Clone + Debug;

    /// The name users give the core (`--core NAME`).
    const NAME: &'static str;

    /// Starts (or restarts) a node from its durable snapshot and the records written
    /// after it; empty on a first start. Returns the node and its first actions.
    fn start(
        cfg: Self::Config,
        snapshot: Option<Self::Snapshot>,
        records: Vec<Self::Record>,
    ) -> (Self, Actions<Self>);

    /// Steps the node with one event.
    fn step(&mut self, event: EventOf<Self>) -> Actions<Self>;

    /// Its view of the cluster, for status and for faults aimed by role.
    fn view(&self) -> View;

    /// A configuration for node `id` of `n`, seeded with `seed`, from a template that
    /// carries the run's settings.
    fn configure(template: &Self::Config, id: NodeId, n: usize, seed: u64) -> Self::Config;

    /// Whether sends and replies leave before the burst's sync (a test-only mistake
    /// a core may be configured with, to show the harness catches it).
    fn effects_before_sync(_cfg: &Self::Config) -> bool {
        false
    }

    /// Whether a snapshot is put in place without being synced first (likewise).
    fn unsynced_snapshot(_cfg: &Self::Config) -> bool {
        false
    }
}
