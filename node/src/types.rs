//! The domain vocabulary shared by the core, the write-ahead log, the wire formats and
//! the simulation: node ids, ballots, slots, KV commands and client-visible results.
//!
//! These are plain data with serde derives so that the same values travel over the peer
//! links, land in the WAL and appear in `dump` replies without translation layers.

use serde::{Deserialize, Serialize};

/// A node id, `1..=N`: the one id type of every crate (the journal's).
pub use paxos_trace::NodeId;

/// A ballot (proposal number). `0` means "none": no node ever uses it.
///
/// Ballots are unique per node: `ballot = round * N + id` ("Paxos Made Simple" §2.2:
/// "different proposers choose their numbers from disjoint sets of numbers").
pub type Ballot = u64;

/// A position in the Multi-Paxos log. Slots start at 1; slot 0 is "before the log".
pub type Slot = u64;

/// The node that owns `ballot` in a cluster of `n` nodes; 0 for ballot 0 (nobody's).
pub fn ballot_owner(ballot: Ballot, n: usize) -> NodeId {
    if ballot == 0 || n == 0 {
        return 0;
    }
    (((ballot - 1) % n as u64) + 1) as NodeId
}

/// The smallest ballot owned by `id` that is strictly greater than `above`, or `None`
/// when no such ballot fits in a u64 (only a peer sending absurd ballots gets us
/// there; the node then stops proposing rather than wrap around).
pub fn next_ballot(above: Ballot, id: NodeId, n: usize) -> Option<Ballot> {
    let n = n as u64;
    let id = u64::from(id);
    // Ballots of `id` are round * n + id for round >= 0.
    let round = if above < id { 0 } else { (above - id) / n + 1 };
    round.checked_mul(n)?.checked_add(id)
}

/// Identifies one client command across the whole run: the node that received it from
/// a client, that node's incarnation (bumped and persisted on every start, so sequence
/// numbers never repeat across restarts), and a sequence number within the incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CmdId {
    pub node: NodeId,
    pub incarnation: u64,
    pub seq: u64,
}

/// The lists of the state machine: list-append transactions append to them.
pub type Lists = std::collections::BTreeMap<String, Vec<i64>>;

/// What a transaction's read returned: a register's value or a list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MopValue {
    Int(i64),
    List(Vec<i64>),
}

/// One micro-operation of a transaction, as Maelstrom's and Elle's transaction
/// workloads write it: `["r", key, value]`, `["w", key, value]`,
/// `["append", key, value]`. A read's value is `null` in the request and what it
/// read in the reply (`null` when the key holds nothing).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MicroOp {
    Read {
        key: String,
        value: Option<MopValue>,
    },
    Write {
        key: String,
        value: i64,
    },
    Append {
        key: String,
        value: i64,
    },
}

impl MicroOp {
    pub fn key(&self) -> &str {
        match self {
            MicroOp::Read { key, .. }
            | MicroOp::Write { key, .. }
            | MicroOp::Append { key, .. } => key,
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, MicroOp::Read { .. })
    }
}

impl Serialize for MicroOp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(3)?;
        match self {
            MicroOp::Read { key, value } => {
                t.serialize_element("r")?;
                t.serialize_element(key)?;
                t.serialize_element(value)?;
            }
            MicroOp::Write { key, value } => {
                t.serialize_element("w")?;
                t.serialize_element(key)?;
                t.serialize_element(value)?;
            }
            MicroOp::Append { key, value } => {
                t.serialize_element("append")?;
                t.serialize_element(key)?;
                t.serialize_element(value)?;
            }
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for MicroOp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (f, key, value): (String, String, Option<MopValue>) = Deserialize::deserialize(d)?;
        let int = |v: Option<MopValue>| match v {
            Some(MopValue::Int(i)) => Ok(i),
            _ => Err(D::Error::custom(format!("{f} needs an integer value"))),
        };
        Ok(match f.as_str() {
            "r" => MicroOp::Read { key, value },
            "w" => MicroOp::Write {
                key,
                value: int(value)?,
            },
            "append" => MicroOp::Append {
                key,
                value: int(value)?,
            },
            other => {
                return Err(D::Error::custom(format!(
                    "unknown micro-op '{other}'; expected r, w or append"
                )));
            }
        })
    }
}

/// Applies `mops` to the registers `kv` and the lists `lists`, in order, as one
/// step: what a transaction returns (each read filled in with what it read: a
/// list for a key that holds one, else the register's value or `null`).
pub fn apply_txn(
    mops: &[MicroOp],
    kv: &mut std::collections::BTreeMap<String, i64>,
    lists: &mut Lists,
) -> Vec<MicroOp> {
    mops.iter()
        .map(|m| match m {
            MicroOp::Read { key, .. } => MicroOp::Read {
                key: key.clone(),
                value: match lists.get(key) {
                    Some(l) => Some(MopValue::List(l.clone())),
                    None => kv.get(key).map(|v| MopValue::Int(*v)),
                },
            },
            MicroOp::Write { key, value } => {
                kv.insert(key.clone(), *value);
                m.clone()
            }
            MicroOp::Append { key, value } => {
                lists.entry(key.clone()).or_default().push(*value);
                m.clone()
            }
        })
        .collect()
}

/// An operation of the replicated key-value state machine.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum KvOp {
    Read {
        key: String,
    },
    Write {
        key: String,
        value: i64,
    },
    Cas {
        key: String,
        from: i64,
        to: i64,
    },
    /// A transaction: its micro-operations applied atomically, in log order.
    Txn {
        txn: Vec<MicroOp>,
    },
}

impl KvOp {
    /// Applies the operation to a key-value state machine: what every core's KV
    /// store does with a committed command (a cas on a missing key is `not-found`,
    /// on another value `precondition-failed`).
    pub fn apply(
        &self,
        kv: &mut std::collections::BTreeMap<String, i64>,
        lists: &mut Lists,
    ) -> OpResult {
        match self {
            KvOp::Txn { txn } => OpResult::Txn(apply_txn(txn, kv, lists)),
            KvOp::Read { key } => OpResult::Value(kv.get(key).copied()),
            KvOp::Write { key, value } => {
                // A key written before keeps its string: no copy of the name.
                match kv.get_mut(key) {
                    Some(current) => *current = *value,
                    None => {
                        kv.insert(key.clone(), *value);
                    }
                }
                OpResult::Done
            }
            KvOp::Cas { key, from, to } => match kv.get_mut(key) {
                None => OpResult::Error(ErrorCode::NotFound),
                Some(current) if *current != *from => {
                    OpResult::Error(ErrorCode::PreconditionFailed)
                }
                Some(current) => {
                    *current = *to;
                    OpResult::Done
                }
            },
        }
    }

    /// The key the operation reads or writes (a transaction's first).
    pub fn key(&self) -> &str {
        match self {
            KvOp::Read { key } | KvOp::Write { key, .. } | KvOp::Cas { key, .. } => key,
            KvOp::Txn { txn } => txn.first().map_or("", MicroOp::key),
        }
    }

    /// The bytes of its keys, for the state machine's accounting.
    pub fn key_bytes(&self) -> usize {
        match self {
            KvOp::Txn { txn } => txn.iter().map(|m| m.key().len() + 8).sum(),
            _ => self.key().len(),
        }
    }
}

/// One client command in the log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "FlatCommand")]
pub struct Command {
    pub id: CmdId,
    #[serde(flatten)]
    pub op: KvOp,
}

/// A field a flat reader ([`FlatCommand`], the core's records) needs for the kind
/// it read: the value, or the error serde's own readers give.
pub(crate) fn need<T>(field: Option<T>, name: &str) -> Result<T, String> {
    field.ok_or_else(|| format!("missing field `{name}`"))
}

/// A [`KvOp`]'s kind: the `op` of its encoding.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum KvOpKind {
    Read,
    Write,
    Cas,
    Txn,
}

/// A [`Command`] as its encoding reads, every op's fields optional. serde reads a
/// struct field by field, where a flattened, tagged op is first buffered whole to
/// find its tag: every command of every WAL record and peer message was read
/// twice over. The same bytes give the same command, fields of other ops ignored
/// as the derived reader ignored them, a missing one named.
#[derive(Deserialize)]
struct FlatCommand {
    id: CmdId,
    op: KvOpKind,
    key: Option<String>,
    value: Option<i64>,
    from: Option<i64>,
    to: Option<i64>,
    txn: Option<Vec<MicroOp>>,
}

impl TryFrom<FlatCommand> for Command {
    type Error = String;

    fn try_from(c: FlatCommand) -> Result<Command, String> {
        let op = match c.op {
            KvOpKind::Read => KvOp::Read {
                key: need(c.key, "key")?,
            },
            KvOpKind::Write => KvOp::Write {
                key: need(c.key, "key")?,
                value: need(c.value, "value")?,
            },
            KvOpKind::Cas => KvOp::Cas {
                key: need(c.key, "key")?,
                from: need(c.from, "from")?,
                to: need(c.to, "to")?,
            },
            KvOpKind::Txn => KvOp::Txn {
                txn: need(c.txn, "txn")?,
            },
        };
        Ok(Command { id: c.id, op })
    }
}

/// A register's name. Shared, not copied: one name travels in every message and
/// record of a register's rounds and in every snapshot's records. Written and read
/// as a string.
pub type RegKey = std::sync::Arc<str>;

/// The value of one log slot: the client commands batched into it. An empty batch is a
/// no-op, which a new leader proposes to fill a gap it found no value for.
///
/// Shared, not copied: one slot's batch travels in a proposal to every peer, into
/// each acceptor's record, its chosen log and the learned log, and a copy of every
/// command for each was most of a simulated run's allocations. Written and read as
/// the list of commands it holds; equal, and hashed, as that list.
///
/// What every holder would otherwise work out again is worked out once, on first
/// use, and kept with the batch: its JSON text (written into each WAL record that
/// holds it: on every node, when accepted and again when chosen) and its
/// fingerprint (the protocol's rules name it by that in every event).
#[derive(Clone, Default)]
pub struct Batch(std::sync::Arc<BatchData>);

#[derive(Default)]
struct BatchData {
    commands: Vec<Command>,
    json: std::sync::OnceLock<Box<str>>,
    fingerprint: std::sync::OnceLock<u64>,
}

impl Batch {
    pub fn new(commands: Vec<Command>) -> Batch {
        Batch(std::sync::Arc::new(BatchData {
            commands,
            json: std::sync::OnceLock::new(),
            fingerprint: std::sync::OnceLock::new(),
        }))
    }

    /// The commands' JSON array, as serde writes the list (`[cmd,...]`), made once.
    pub fn json(&self) -> &str {
        self.0.json.get_or_init(|| {
            let mut out = Vec::with_capacity(2 + 96 * self.0.commands.len());
            crate::core::encode::commands(&mut out, &self.0.commands);
            String::from_utf8(out)
                .expect("JSON text is UTF-8")
                .into_boxed_str()
        })
    }

    /// The commands' text as the list holds them: one command's is the array's
    /// inside (made once, with [`Batch::json`]); several are each written into
    /// `room` and handed to `each` in turn.
    pub fn each_json(&self, room: &mut Vec<u8>, each: &mut dyn FnMut(&str)) {
        if self.0.commands.len() == 1 {
            let json = self.json();
            return each(&json[1..json.len() - 1]);
        }
        for c in &self.0.commands {
            room.clear();
            crate::core::encode::command(room, c);
            each(std::str::from_utf8(room).expect("JSON text is UTF-8"));
        }
    }

    /// The batch's fingerprint (the protocol's rules name a batch by it): SipHash
    /// with fixed keys of the list, so equal batches have equal fingerprints, the
    /// same in every process built from this source. Made once.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        *self.0.fingerprint.get_or_init(|| {
            let mut h = std::hash::DefaultHasher::new();
            self.0.commands.hash(&mut h);
            h.finish()
        })
    }
}

impl std::ops::Deref for Batch {
    type Target = Vec<Command>;
    fn deref(&self) -> &Vec<Command> {
        &self.0.commands
    }
}

impl From<Vec<Command>> for Batch {
    fn from(commands: Vec<Command>) -> Batch {
        Batch::new(commands)
    }
}

impl PartialEq for Batch {
    fn eq(&self, other: &Batch) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.0.commands == other.0.commands
    }
}

impl Eq for Batch {}

impl std::hash::Hash for Batch {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.commands.hash(state)
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.commands.fmt(f)
    }
}

impl Serialize for Batch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.commands.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Batch, D::Error> {
        Vec::<Command>::deserialize(d).map(Batch::new)
    }
}

/// The operations a client can ask of a node (docs/protocol.md), as the core sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientOp {
    Propose { key: RegKey, value: i64 },
    Kv(KvOp),
}

/// Error codes of the client protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    MalformedRequest,
    UnknownOp,
    NotFound,
    PreconditionFailed,
    /// The node could not serve the op (no leader known, queue full). Definite.
    Unavailable,
    /// The node gave up waiting. Indefinite: the op may still take effect.
    Timeout,
}

impl ErrorCode {
    /// Whether the error promises the operation did not and will not take effect.
    pub fn definite(self) -> bool {
        !matches!(self, ErrorCode::Timeout)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedRequest => "malformed-request",
            ErrorCode::UnknownOp => "unknown-op",
            ErrorCode::NotFound => "not-found",
            ErrorCode::PreconditionFailed => "precondition-failed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
        }
    }
}

/// The outcome of a client op as the core reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// `read` (the observed value, `None` = absent) or `propose` (the chosen value).
    Value(Option<i64>),
    /// `write` or `cas` took effect.
    Done,
    Error(ErrorCode),
    /// A transaction took effect: its micro-operations with what its reads read.
    Txn(Vec<MicroOp>),
}

/// The deliberate bugs a node can be started with (docs/protocol.md). Each breaks exactly
/// one rule so the harness can prove that it notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// Acceptor state is kept in memory only; a restart forgets promises and acceptances.
    ForgetPromises,
    /// An acceptor accepts a proposal numbered below its promise.
    AcceptLowerBallot,
    /// A register proposer proposes its own value even when promises report an accepted one.
    IgnoreAccepted,
    /// Quorums are floor(N/2) nodes instead of floor(N/2)+1.
    MinorityQuorum,
    /// KV reads are answered from local state without consensus.
    StaleRead,
    /// The leader acknowledges a write when it proposes it, before it is chosen.
    EarlyAck,
    /// The shell sends a burst's messages and replies before the WAL's fsync of that
    /// burst completes. A killed process does not show it (the page cache survives);
    /// only a crash that loses unsynced bytes does, which `chaos sim` models.
    UnsyncedReply,
    /// The snapshot file is not synced, and the write-ahead log's segments before it
    /// are deleted at once instead of once it is durable: a crash that loses
    /// unsynced bytes loses the log's chosen prefix with it. Like `unsynced-reply`,
    /// only `chaos sim`'s disk shows it.
    UnsyncedSnapshot,
    /// A transaction that only reads is answered from the receiving node's applied
    /// state, without consensus: a follower behind serves an old state, consistent
    /// in itself, after later transactions were acknowledged. Only a transaction
    /// workload shows it (a real-time or process-order cycle).
    TxnLocalRead,
    /// A transaction's writes are applied in two log slots: the first half with
    /// the transaction, the rest after the next slot, so others see half of it.
    /// Only a multi-key check sees it (G-single, G1c).
    SplitTxn,
}

impl Bug {
    pub const ALL: [Bug; 10] = [
        Bug::ForgetPromises,
        Bug::AcceptLowerBallot,
        Bug::IgnoreAccepted,
        Bug::MinorityQuorum,
        Bug::StaleRead,
        Bug::EarlyAck,
        Bug::UnsyncedReply,
        Bug::UnsyncedSnapshot,
        Bug::TxnLocalRead,
        Bug::SplitTxn,
    ];

    /// Whether only a simulated disk can show the bug: a real process killed with
    /// SIGKILL keeps what it wrote to the page cache.
    pub fn needs_simulated_disk(self) -> bool {
        matches!(self, Bug::UnsyncedReply | Bug::UnsyncedSnapshot)
    }

    /// Whether only a transaction workload (`list-append`, `rw-register`) can show
    /// the bug.
    pub fn needs_transactions(self) -> bool {
        matches!(self, Bug::TxnLocalRead | Bug::SplitTxn)
    }

    /// The `--bug` name of this bug.
    pub fn name(self) -> &'static str {
        match self {
            Bug::ForgetPromises => "forget-promises",
            Bug::AcceptLowerBallot => "accept-lower-ballot",
            Bug::IgnoreAccepted => "ignore-accepted",
            Bug::MinorityQuorum => "minority-quorum",
            Bug::StaleRead => "stale-read",
            Bug::EarlyAck => "early-ack",
            Bug::UnsyncedReply => "unsynced-reply",
            Bug::UnsyncedSnapshot => "unsynced-snapshot",
            Bug::TxnLocalRead => "txn-local-read",
            Bug::SplitTxn => "split-txn",
        }
    }
}

/// Mistakes in the core's rarest paths, for measuring how soon a search finds a
/// bug nobody tuned it for (BENCHMARKS.md's detection table). Not `--bug`
/// switches: the hidden node argument `--mistake=NAME` turns one on, and no
/// default plan, matrix or documentation of the node's bugs lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mistake {
    /// A new leader (or a register proposer) whose promises report different
    /// accepted values for a slot adopts the lowest-numbered one instead of the
    /// highest: wrong only when promises disagree.
    LowestPromiseWins,
    /// A node restarting from a snapshot skips the first chosen slot after it: its
    /// state machine misses that slot's commands. Wrong only on a recovery after a
    /// snapshot with a chosen slot above it.
    SnapshotSkipsNext,
    /// A restart restores the log promise only from accepted ballots, ignoring a
    /// promise made since: wrong only on a restart between a promise and an accept.
    RestartDropsPromise,
}

impl Mistake {
    pub const ALL: [Mistake; 3] = [
        Mistake::LowestPromiseWins,
        Mistake::SnapshotSkipsNext,
        Mistake::RestartDropsPromise,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mistake::LowestPromiseWins => "lowest-promise-wins",
            Mistake::SnapshotSkipsNext => "snapshot-skips-next",
            Mistake::RestartDropsPromise => "restart-drops-promise",
        }
    }
}

impl std::str::FromStr for Mistake {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mistake::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Mistake::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown mistake '{s}'; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

impl std::str::FromStr for Bug {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
            format!("unknown bug '{s}'; expected one of: {}", names.join(", "))
        })
    }
}

impl std::fmt::Display for Bug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_are_unique_per_node_and_increase() {
        for n in [1usize, 3, 5, 7] {
            for id in 1..=n as NodeId {
                let mut b = 0;
                for _ in 0..20 {
                    let next = next_ballot(b, id, n).unwrap();
                    assert!(next > b);
                    assert_eq!(ballot_owner(next, n), id);
                    b = next;
                }
            }
        }
        // The literature's example: in a 3-node cluster node 3 moves past ballot 7 to 9.
        assert_eq!(next_ballot(7, 3, 3), Some(9));
        assert_eq!(next_ballot(5, 2, 3), Some(8));
        assert_eq!(next_ballot(0, 1, 3), Some(1));
        assert_eq!(next_ballot(u64::MAX, 3, 3), None);
        assert_eq!(ballot_owner(0, 3), 0);
    }

    /// What a batch keeps once made is what it would make again: its JSON is serde's
    /// list, each command's text is serde's command, and its fingerprint is the
    /// list's SipHash (the ids nodes write in their journals: pinned here, so a
    /// change to them is seen).
    #[test]
    fn a_batch_keeps_its_text_and_fingerprint_as_made() {
        let cmd = |seq, op| Command {
            id: CmdId {
                node: 2,
                incarnation: 1,
                seq,
            },
            op,
        };
        let write = cmd(
            7,
            KvOp::Write {
                key: "k\"1".into(),
                value: -3,
            },
        );
        let cas = cmd(
            8,
            KvOp::Cas {
                key: "k".into(),
                from: 1,
                to: 2,
            },
        );
        for commands in [vec![], vec![write.clone()], vec![write, cas]] {
            let batch = Batch::new(commands.clone());
            for _ in 0..2 {
                assert_eq!(batch.json(), serde_json::to_string(&commands).unwrap());
                let mut each = Vec::new();
                batch.each_json(&mut Vec::new(), &mut |j| each.push(j.to_string()));
                let serde: Vec<String> = commands
                    .iter()
                    .map(|c| serde_json::to_string(c).unwrap())
                    .collect();
                assert_eq!(each, serde);
                let mut h = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(&commands, &mut h);
                assert_eq!(batch.fingerprint(), std::hash::Hasher::finish(&h));
            }
            assert_eq!(batch.clone(), Batch::from(commands));
        }
        let one = Batch::new(vec![cmd(1, KvOp::Read { key: "k".into() })]);
        assert_eq!(one.fingerprint(), 7474337261212944656);
    }
}
