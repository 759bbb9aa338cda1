//! TiKV's Raft (`raft` on crates.io, its `RawNode`) behind the core seam, as a
//! linearizable KV store: the worked example of a core nobody here wrote
//! (docs/cores.md).
//!
//! - Every node is a voter of one fixed cluster `1..=n`.
//! - Writes and compare-and-sets are proposed as log entries (one command each, the
//!   bundled node's [`Command`] as JSON). A follower hands a proposal to its leader
//!   (raft-rs forwards it); with no leader known the client hears a definite
//!   `unavailable` at once. The node that took the op answers it when it applies
//!   the command; a command applied before (a duplicated forward) is skipped, so
//!   every node's state machine takes each command once.
//! - Reads go through ReadIndex (raft-rs's `read_index`): answered once the node has
//!   applied up to the index the leader confirmed. `--raft-read-only lease-based`
//!   makes raft-rs answer from the leader's lease instead.
//! - Durable state is records through the seam, so the simulated disk's faults hit
//!   them: the entries raft-rs asks to append ([`RaftRecord::Entries`]), its hard
//!   state, and this node's incarnation. raft-rs's rule for a `Ready` is that its
//!   entries and hard state are durable before its persisted messages leave; the
//!   drivers' commit order (records, one sync, then every effect) keeps it, and sends
//!   even the messages raft-rs allows before persistence after the sync.
//! - After `snapshot_every` applied entries the node snapshots its KV state and
//!   compacts the log; a follower too far behind gets the snapshot from its leader.
//! - raft-rs draws its randomized election timeout from an unseeded generator. Here
//!   every node runs with raft-rs's timeout range of one value and the randomness is
//!   this core's: after each reset of its election clock a follower or candidate
//!   holds back a seeded number of ticks, so the same seed elects the same leaders.
//!
//! Test-only mistakes of an adapter ([`Mistake`]) show that the harness catches them.

use std::collections::{BTreeMap, BTreeSet};

use protobuf::Message as _;
use raft::eraftpb::{
    ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot as PbSnapshot,
};
use raft::{GetEntriesContext, RaftState, RawNode, ReadOnlyOption, StateRole, Storage};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::client::encode_dump;
use crate::seam::{Action, Core, Event, View, Wire};
use crate::types::{Batch, ClientOp, CmdId, Command, ErrorCode, KvOp, NodeId, OpResult};

/// How a node answers reads (raft-rs's `ReadOnlyOption`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMode {
    /// ReadIndex confirmed by a heartbeat round with a quorum.
    Safe,
    /// ReadIndex from the leader's lease (needs check-quorum; trusts clocks).
    LeaseBased,
}

/// A mistake an adapter could make, switched on only to prove the harness sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mistake {
    /// The leader applies a command (and answers its client) as soon as it appends it,
    /// before a quorum has it.
    ApplyBeforeCommit,
    /// Messages and replies leave before the records of their burst are synced.
    SendBeforePersist,
}

/// A raft-rs node's configuration: every knob of raft-rs's `Config` that changes what
/// is safe or live, and this adapter's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftConfig {
    pub id: NodeId,
    pub n: usize,
    pub seed: u64,
    /// Milliseconds per raft-rs tick.
    pub tick_ms: u64,
    /// Ticks without a leader before a follower campaigns (plus a seeded hold of up to
    /// as many again).
    pub election_tick: usize,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_tick: usize,
    /// A leader steps down when it has not heard from a quorum for an election timeout.
    pub check_quorum: bool,
    /// A pre-vote round before a campaign.
    pub pre_vote: bool,
    pub read_only: ReadMode,
    /// Append messages in flight per follower.
    pub max_inflight: usize,
    /// Bytes of entries per append message at most.
    pub max_size_per_msg: u64,
    /// A client op not answered within this gets an indefinite `timeout`.
    pub request_timeout_ms: u64,
    /// Applied entries between snapshots (0: never).
    pub snapshot_every: u64,
    pub mistake: Option<Mistake>,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            id: 1,
            n: 1,
            seed: 0,
            tick_ms: 25,
            election_tick: 12,
            heartbeat_tick: 2,
            check_quorum: true,
            pre_vote: true,
            read_only: ReadMode::Safe,
            max_inflight: 256,
            max_size_per_msg: 1 << 20,
            request_timeout_ms: 2_000,
            snapshot_every: 10_000,
            mistake: None,
        }
    }
}

/// A raft-rs message on the wire: its protobuf bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct RaftMsg(pub Message);

impl Wire for RaftMsg {
    fn kind(&self) -> &'static str {
        match self.0.get_msg_type() {
            MessageType::MsgAppend => "append",
            MessageType::MsgAppendResponse => "append-response",
            MessageType::MsgRequestVote => "vote",
            MessageType::MsgRequestVoteResponse => "vote-response",
            MessageType::MsgRequestPreVote => "pre-vote",
            MessageType::MsgRequestPreVoteResponse => "pre-vote-response",
            MessageType::MsgHeartbeat => "heartbeat",
            MessageType::MsgHeartbeatResponse => "heartbeat-response",
            MessageType::MsgSnapshot => "snapshot",
            MessageType::MsgPropose => "propose",
            MessageType::MsgReadIndex => "read-index",
            MessageType::MsgReadIndexResp => "read-index-response",
            MessageType::MsgTimeoutNow => "timeout-now",
            MessageType::MsgTransferLeader => "transfer-leader",
            _ => "other",
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let bytes = self.0.write_to_bytes().expect("a raft message encodes");
        out.extend_from_slice(&bytes);
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        Message::parse_from_bytes(bytes)
            .map(RaftMsg)
            .map_err(|e| e.to_string())
    }
}

/// One log entry as this adapter writes it down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub index: u64,
    pub term: u64,
    /// `None`: an empty entry (a new leader's).
    pub command: Option<Command>,
}

/// A durable record of a raft-rs node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "kebab-case")]
pub enum RaftRecord {
    /// Written at every start; command ids embed it so they never repeat.
    Incarnation {
        incarnation: u64,
    },
    /// Entries appended from `entries[0].index` on: every entry at or after that index
    /// written before is replaced.
    Entries {
        entries: Vec<LogEntry>,
    },
    HardState {
        term: u64,
        vote: u64,
        commit: u64,
    },
}

impl Wire for RaftRecord {
    fn kind(&self) -> &'static str {
        match self {
            RaftRecord::Incarnation { .. } => "incarnation",
            RaftRecord::Entries { .. } => "entries",
            RaftRecord::HardState { .. } => "hard-state",
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        crate::seam::json_encode(self, out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        crate::seam::json_decode(bytes)
    }
}

/// The state machine at a log index, with what raft-rs needs to go on from it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftSnapshot {
    pub index: u64,
    pub term: u64,
    pub kv: BTreeMap<String, i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lists: crate::types::Lists,
    /// The commands applied, per origin: a duplicate forward is skipped after the
    /// log that taught it is gone.
    pub applied_ids: AppliedIds,
}

/// How far below its origin's newest applied command a command may still be applied
/// (a forward overtaken by later ones); further behind, it counts as a duplicate.
pub const APPLY_WINDOW: u64 = 4_096;

/// The commands applied, per origin (node, incarnation): the newest sequence number
/// and the ones applied within [`APPLY_WINDOW`] below it. Bounded by the window per
/// origin, where a set of every id would grow with the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Origin>", into = "Vec<Origin>")]
pub struct AppliedIds(BTreeMap<(NodeId, u64), (u64, BTreeSet<u64>)>);

/// One origin's applied commands as a snapshot stores them (JSON has no tuple keys):
/// node, incarnation, newest sequence number, the recent ones.
type Origin = (NodeId, u64, u64, BTreeSet<u64>);

impl From<Vec<Origin>> for AppliedIds {
    fn from(origins: Vec<Origin>) -> Self {
        AppliedIds(
            origins
                .into_iter()
                .map(|(node, inc, high, recent)| ((node, inc), (high, recent)))
                .collect(),
        )
    }
}

impl From<AppliedIds> for Vec<Origin> {
    fn from(ids: AppliedIds) -> Self {
        ids.0
            .into_iter()
            .map(|((node, inc), (high, recent))| (node, inc, high, recent))
            .collect()
    }
}

impl AppliedIds {
    /// Notes `id` as applied; `false` if it was (or counts as) applied before.
    pub fn insert(&mut self, id: CmdId) -> bool {
        let (high, recent) = self.0.entry((id.node, id.incarnation)).or_default();
        if id.seq + APPLY_WINDOW <= *high || !recent.insert(id.seq) {
            return false;
        }
        *high = (*high).max(id.seq);
        let floor = high.saturating_sub(APPLY_WINDOW);
        while recent.first().is_some_and(|s| *s <= floor) {
            recent.pop_first();
        }
        true
    }
}

/// A timer of the adapter.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RaftTimer {
    /// One raft-rs tick.
    Tick,
    /// A client op's deadline.
    Request(u64),
}

/// The fingerprint of an entry's bytes, as the rules compare entries.
pub fn fingerprint(data: &[u8]) -> u64 {
    u64::from(crc32fast::hash(data)) | ((data.len() as u64) << 32)
}

impl LogEntry {
    /// The fingerprint of the bytes raft-rs holds for this entry ([`fingerprint`]).
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&entry_of(self).data)
    }
}

fn entry_of(e: &LogEntry) -> Entry {
    let mut entry = Entry::default();
    entry.set_entry_type(EntryType::EntryNormal);
    entry.index = e.index;
    entry.term = e.term;
    if let Some(c) = &e.command {
        entry.data = serde_json::to_vec(c).expect("commands serialize").into();
    }
    entry
}

fn log_entry_of(e: &Entry) -> LogEntry {
    LogEntry {
        index: e.index,
        term: e.term,
        command: (!e.data.is_empty())
            .then(|| serde_json::from_slice(&e.data).ok())
            .flatten(),
    }
}

/// raft-rs's storage, in memory, rebuilt from the records at every start. Written by
/// hand rather than raft-rs's `MemStorage`, whose snapshots carry no data and whose
/// compaction forgets the term at the compaction point.
#[derive(Default)]
pub struct Store {
    hard: HardState,
    conf: ConfState,
    /// Index and term of the last entry the snapshot covers.
    snap_index: u64,
    snap_term: u64,
    /// The snapshot raft-rs sends a follower that is too far behind.
    snap_data: Vec<u8>,
    /// Entries after `snap_index`, contiguous.
    entries: Vec<Entry>,
}

impl Store {
    fn first(&self) -> u64 {
        self.snap_index + 1
    }

    fn last(&self) -> u64 {
        self.snap_index + self.entries.len() as u64
    }

    /// Appends `ents`, replacing every entry from the first one's index on.
    fn append(&mut self, ents: &[Entry]) {
        let Some(first) = ents.first() else {
            return;
        };
        // Entries a snapshot covers are already applied: skip them.
        let skip = self.first().saturating_sub(first.index) as usize;
        let ents = &ents[skip.min(ents.len())..];
        let Some(first) = ents.first() else {
            return;
        };
        assert!(
            first.index <= self.last() + 1,
            "raft log gap: last {}, appending {}",
            self.last(),
            first.index
        );
        self.entries.truncate((first.index - self.first()) as usize);
        self.entries.extend_from_slice(ents);
    }

    /// Drops the entries up to `index` (of `term`), which `data` now covers.
    fn compact(&mut self, index: u64, term: u64, data: Vec<u8>) {
        let last = self.last();
        if index >= last {
            self.entries.clear();
        } else {
            self.entries
                .drain(..index.saturating_sub(self.snap_index) as usize);
        }
        self.snap_index = index;
        self.snap_term = term;
        self.snap_data = data;
        self.hard.commit = self.hard.commit.max(index);
    }

    fn term_of(&self, idx: u64) -> Option<u64> {
        if idx == self.snap_index {
            return Some(self.snap_term);
        }
        if idx < self.first() || idx > self.last() {
            return None;
        }
        Some(self.entries[(idx - self.first()) as usize].term)
    }

    /// Every entry kept: (index, term, fingerprint).
    pub fn log(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.entries
            .iter()
            .map(|e| (e.index, e.term, fingerprint(&e.data)))
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snap_index
    }
}

impl Storage for Store {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard.clone(), self.conf.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        assert!(high <= self.last() + 1, "entries up to {high} asked");
        let (lo, hi) = (
            (low - self.first()) as usize,
            (high - self.first()) as usize,
        );
        let mut ents = self.entries[lo..hi].to_vec();
        raft::util::limit_size(&mut ents, max_size.into());
        Ok(ents)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx < self.snap_index {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        self.term_of(idx)
            .ok_or(raft::Error::Store(raft::StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<PbSnapshot> {
        if self.snap_index < request_index || self.snap_data.is_empty() {
            return Err(raft::Error::Store(
                raft::StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let mut snap = PbSnapshot {
            data: self.snap_data.clone().into(),
            ..Default::default()
        };
        let meta = snap.mut_metadata();
        meta.index = self.snap_index;
        meta.term = self.snap_term;
        meta.set_conf_state(self.conf.clone());
        Ok(snap)
    }
}

/// The actions of this core.
pub type RaftAction = Action<RaftMsg, RaftRecord, RaftSnapshot, RaftTimer>;

/// What a client op in flight waits for.
#[derive(Clone, Debug)]
enum Waiting {
    /// A proposed command.
    Command(CmdId),
    /// A read of this key, asked with ReadIndex; `Some(index)` once confirmed.
    Read(String, Option<u64>),
}

/// One raft-rs node behind the seam.
pub struct RaftCore {
    cfg: RaftConfig,
    node: RawNode<Store>,
    rng: ChaCha8Rng,
    incarnation: u64,
    next_seq: u64,
    kv: BTreeMap<String, i64>,
    lists: crate::types::Lists,
    applied_ids: AppliedIds,
    /// The index applied last.
    applied: u64,
    /// Applied entries above the last snapshot, for the dump.
    log: BTreeMap<u64, Batch>,
    /// The state machine at the last snapshot, for the dump.
    snapshot_kv: BTreeMap<String, i64>,
    /// Token -> what it waits for; command id -> token.
    pending: BTreeMap<u64, Waiting>,
    by_command: BTreeMap<CmdId, u64>,
    /// Ticks still held back before the election clock runs again.
    hold: usize,
    last_elapsed: usize,
    last_term: u64,
    /// Entries applied since the driver last asked: (index, commands).
    committed_out: Vec<(u64, Batch)>,
    /// Entries applied by the step in progress: (index, term, fingerprint).
    applied_now: Vec<(u64, u64, u64)>,
    out: Vec<RaftAction>,
}

impl RaftCore {
    fn raft_config(cfg: &RaftConfig, applied: u64) -> raft::Config {
        raft::Config {
            id: u64::from(cfg.id),
            election_tick: cfg.election_tick,
            heartbeat_tick: cfg.heartbeat_tick,
            applied,
            max_size_per_msg: cfg.max_size_per_msg,
            max_inflight_msgs: cfg.max_inflight,
            check_quorum: cfg.check_quorum,
            pre_vote: cfg.pre_vote,
            // One value: the randomness is this core's, seeded (module docs).
            min_election_tick: cfg.election_tick,
            max_election_tick: cfg.election_tick + 1,
            read_only_option: match cfg.read_only {
                ReadMode::Safe => ReadOnlyOption::Safe,
                ReadMode::LeaseBased => ReadOnlyOption::LeaseBased,
            },
            ..Default::default()
        }
    }

    /// The node's storage (the rules read its log).
    pub fn store(&self) -> &Store {
        self.node.store()
    }

    /// The entries applied by the last step: (index, term, fingerprint).
    pub fn applied_now(&self) -> &[(u64, u64, u64)] {
        &self.applied_now
    }

    pub fn config(&self) -> &RaftConfig {
        &self.cfg
    }

    fn persist_hard_state(&mut self) {
        let hs = self.node.store().hard.clone();
        self.out.push(Action::Persist(RaftRecord::HardState {
            term: hs.term,
            vote: hs.vote,
            commit: hs.commit,
        }));
    }

    fn send_all(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            let to = m.to as NodeId;
            if m.get_msg_type() == MessageType::MsgSnapshot {
                // Handed to the transport: reported sent, as a transport reports
                // it once written. If it is lost, the follower refuses the next
                // append and the leader sends the snapshot again; without the
                // report, the follower would wait for it forever.
                self.node
                    .report_snapshot(m.to, raft::SnapshotStatus::Finish);
            }
            self.out.push(Action::Send {
                to,
                msg: RaftMsg(m),
            });
        }
    }

    fn reply(&mut self, token: u64, result: OpResult) {
        if let Some(w) = self.pending.remove(&token) {
            if let Waiting::Command(id) = w {
                self.by_command.remove(&id);
            }
            self.out.push(Action::Reply { token, result });
        }
    }

    /// Applies one command once (a second copy is skipped); answers its client if it
    /// waits here. Returns the batch the log shows for it.
    fn apply_command(&mut self, command: Command) -> Batch {
        if !self.applied_ids.insert(command.id) {
            // A second copy, or a command so far behind its origin's newest that it
            // counts as one: skipped on every node alike. Its client, if it still
            // waits, hears an indefinite timeout.
            return Batch::default();
        }
        let result = command.op.apply(&mut self.kv, &mut self.lists);
        if let Some(token) = self.by_command.get(&command.id).copied() {
            self.reply(token, result);
        }
        Batch::new(vec![command])
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) {
        for e in entries {
            if e.index <= self.applied {
                continue;
            }
            let fp = fingerprint(&e.data);
            let batch = match log_entry_of(&e).command {
                Some(c) if e.get_entry_type() == EntryType::EntryNormal => self.apply_command(c),
                _ => Batch::default(),
            };
            self.applied = e.index;
            self.applied_now.push((e.index, e.term, fp));
            self.committed_out.push((e.index, batch.clone()));
            self.log.insert(e.index, batch);
        }
        self.answer_reads();
    }

    /// Answers every confirmed read whose index is applied.
    fn answer_reads(&mut self) {
        let ready: Vec<(u64, String)> = self
            .pending
            .iter()
            .filter_map(|(t, w)| match w {
                Waiting::Read(key, Some(index)) if *index <= self.applied => {
                    Some((*t, key.clone()))
                }
                _ => None,
            })
            .collect();
        for (token, key) in ready {
            let value = self.kv.get(&key).copied();
            self.reply(token, OpResult::Value(value));
        }
    }

    /// Installs a snapshot a leader sent.
    fn install(&mut self, snap: &PbSnapshot) {
        let Ok(data) = serde_json::from_slice::<RaftSnapshot>(&snap.data) else {
            return;
        };
        let meta = snap.get_metadata();
        let store = self.node.mut_store();
        store.entries.clear();
        store.compact(meta.index, meta.term, snap.data.to_vec());
        store.hard.commit = store.hard.commit.max(meta.index);
        self.kv = data.kv.clone();
        self.lists = data.lists.clone();
        self.applied_ids = data.applied_ids.clone();
        self.applied = meta.index;
        self.log.clear();
        self.snapshot_kv = data.kv.clone();
        self.out.push(Action::Snapshot {
            snapshot: data,
            keep: self.keep(),
        });
        self.answer_reads();
    }

    /// The records that, after a snapshot, hold the rest of the node's durable state.
    fn keep(&self) -> Vec<RaftRecord> {
        let store = self.node.store();
        let mut keep = vec![RaftRecord::Incarnation {
            incarnation: self.incarnation,
        }];
        if !store.entries.is_empty() {
            keep.push(RaftRecord::Entries {
                entries: store.entries.iter().map(log_entry_of).collect(),
            });
        }
        keep.push(RaftRecord::HardState {
            term: store.hard.term,
            vote: store.hard.vote,
            commit: store.hard.commit,
        });
        keep
    }

    /// Snapshots the state machine and compacts the log, when enough was applied.
    fn maybe_snapshot(&mut self) {
        let every = self.cfg.snapshot_every;
        let since = self.applied - self.node.store().snap_index;
        if every == 0 || since < every {
            return;
        }
        let term = self.node.store().term_of(self.applied).unwrap_or(0);
        let snapshot = RaftSnapshot {
            index: self.applied,
            term,
            kv: self.kv.clone(),
            lists: self.lists.clone(),
            applied_ids: self.applied_ids.clone(),
        };
        let data = serde_json::to_vec(&snapshot).expect("snapshots serialize");
        self.node.mut_store().compact(self.applied, term, data);
        let applied = self.applied;
        self.log.retain(|i, _| *i > applied);
        self.snapshot_kv = snapshot.kv.clone();
        self.out.push(Action::Snapshot {
            snapshot,
            keep: self.keep(),
        });
    }

    /// Handles raft-rs's `Ready` in its documented order: send its messages, install
    /// its snapshot, apply its committed entries, persist its entries and hard state,
    /// send its persisted messages, note its read states, advance, then the same for
    /// the light ready. Sends leave only after the burst's sync (the drivers' order).
    fn on_ready(&mut self) {
        if !self.node.has_ready() {
            return;
        }
        let mut ready = self.node.ready();
        let msgs = ready.take_messages();
        self.send_all(msgs);
        if !ready.snapshot().is_empty() {
            let snap = ready.snapshot().clone();
            self.install(&snap);
        }
        let committed = ready.take_committed_entries();
        self.apply_entries(committed);
        if !ready.entries().is_empty() {
            let entries = ready.take_entries();
            self.out.push(Action::Persist(RaftRecord::Entries {
                entries: entries.iter().map(log_entry_of).collect(),
            }));
            self.node.mut_store().append(&entries);
            if self.cfg.mistake == Some(Mistake::ApplyBeforeCommit)
                && self.node.raft.state == StateRole::Leader
            {
                self.apply_early(&entries);
            }
        }
        if let Some(hs) = ready.hs() {
            self.node.mut_store().hard = hs.clone();
            self.persist_hard_state();
        }
        let msgs = ready.take_persisted_messages();
        self.send_all(msgs);
        for rs in ready.take_read_states() {
            let Some(token) = self.read_token(&rs.request_ctx) else {
                continue;
            };
            if let Some(Waiting::Read(_, index)) = self.pending.get_mut(&token) {
                *index = Some(rs.index);
            }
        }
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.node.mut_store().hard.commit = commit;
            self.persist_hard_state();
        }
        let msgs = light.take_messages();
        self.send_all(msgs);
        let committed = light.take_committed_entries();
        self.apply_entries(committed);
        self.node.advance_apply();
        self.answer_reads();
        self.maybe_snapshot();
    }

    /// Handles every `Ready` a step produced: handling one can make another (a
    /// snapshot reported sent); a few rounds at most.
    fn ready_all(&mut self) {
        for _ in 0..4 {
            if !self.node.has_ready() {
                return;
            }
            self.on_ready();
        }
    }

    /// [`Mistake::ApplyBeforeCommit`]: the leader applies what it just appended.
    fn apply_early(&mut self, entries: &[Entry]) {
        for e in entries {
            if let Some(c) = log_entry_of(e).command {
                self.apply_command(c);
                self.applied_now
                    .push((e.index, e.term, fingerprint(&e.data)));
            }
        }
    }

    /// After a reset of raft-rs's election clock, a seeded hold of ticks.
    fn note_election_clock(&mut self) {
        let raft = &self.node.raft;
        let (elapsed, term) = (raft.election_elapsed, raft.term);
        if elapsed < self.last_elapsed || term != self.last_term {
            self.hold = self.rng.random_range(0..self.cfg.election_tick);
        }
        self.last_elapsed = elapsed;
        self.last_term = term;
    }

    fn tick(&mut self) {
        if self.hold > 0 && self.node.raft.state != StateRole::Leader {
            self.hold -= 1;
        } else {
            self.node.tick();
        }
        self.out.push(Action::SetTimer {
            timer: RaftTimer::Tick,
            after_ms: self.cfg.tick_ms,
        });
    }

    fn client(&mut self, token: u64, op: ClientOp) {
        let op = match op {
            ClientOp::Kv(op) => op,
            ClientOp::Propose { .. } => {
                self.out.push(Action::Reply {
                    token,
                    result: OpResult::Error(ErrorCode::UnknownOp),
                });
                return;
            }
        };
        if self.node.raft.leader_id == raft::INVALID_ID {
            self.out.push(Action::Reply {
                token,
                result: OpResult::Error(ErrorCode::Unavailable),
            });
            return;
        }
        self.out.push(Action::SetTimer {
            timer: RaftTimer::Request(token),
            after_ms: self.cfg.request_timeout_ms,
        });
        if let KvOp::Read { key } = op {
            self.pending.insert(token, Waiting::Read(key, None));
            self.node.read_index(self.read_context(token));
            return;
        }
        self.next_seq += 1;
        let id = CmdId {
            node: self.cfg.id,
            incarnation: self.incarnation,
            seq: self.next_seq,
        };
        let data = serde_json::to_vec(&Command { id, op }).expect("commands serialize");
        match self.node.propose(Vec::new(), data) {
            Ok(()) => {
                self.pending.insert(token, Waiting::Command(id));
                self.by_command.insert(id, token);
            }
            // Dropped before it reached any log: it will never take effect.
            Err(_) => self.out.push(Action::Reply {
                token,
                result: OpResult::Error(ErrorCode::Unavailable),
            }),
        }
    }

    /// A read's context: unique in the cluster (the leader keeps pending reads by
    /// context, so two nodes' tokens must not collide): node, incarnation, token.
    fn read_context(&self, token: u64) -> Vec<u8> {
        let mut ctx = Vec::with_capacity(20);
        ctx.extend_from_slice(&self.cfg.id.to_le_bytes());
        ctx.extend_from_slice(&self.incarnation.to_le_bytes());
        ctx.extend_from_slice(&token.to_le_bytes());
        ctx
    }

    /// The token of this node's read with context `ctx`, if it is one of its own.
    fn read_token(&self, ctx: &[u8]) -> Option<u64> {
        let expect = self.read_context(0);
        if ctx.len() != expect.len() || ctx[..12] != expect[..12] {
            return None;
        }
        Some(u64::from_le_bytes(ctx[12..].try_into().ok()?))
    }

    /// The dump of docs/protocol.md, with the applied log as the log.
    pub fn dump(&self, request_id: u64) -> String {
        let store = self.node.store();
        let snapshot = (store.snap_index > 0).then(|| crate::core::Snapshot {
            index: store.snap_index,
            kv: self.snapshot_kv.clone(),
            lists: Default::default(),
            origins: Vec::new(),
        });
        encode_dump(
            request_id,
            self.cfg.id,
            &BTreeMap::<String, i64>::new(),
            self.log.iter(),
            self.applied,
            snapshot.as_ref(),
        )
    }

    /// The entries applied since last asked (what the node learned committed).
    pub fn take_committed(&mut self) -> Vec<(u64, Batch)> {
        std::mem::take(&mut self.committed_out)
    }
}

impl Core for RaftCore {
    type Msg = RaftMsg;
    type Record = RaftRecord;
    type Snapshot = RaftSnapshot;
    type Timer = RaftTimer;
    type Config = RaftConfig;
    const NAME: &'static str = "raft-rs";

    fn start(
        cfg: RaftConfig,
        snapshot: Option<RaftSnapshot>,
        records: Vec<RaftRecord>,
    ) -> (RaftCore, Vec<RaftAction>) {
        let voters: Vec<u64> = (1..=cfg.n as u64).collect();
        let mut store = Store {
            conf: ConfState::from((voters, Vec::<u64>::new())),
            ..Store::default()
        };
        let (mut kv, mut applied_ids, mut applied) = (BTreeMap::new(), AppliedIds::default(), 0);
        let mut snapshot_kv = BTreeMap::new();
        let mut lists = BTreeMap::new();
        if let Some(snap) = snapshot {
            lists = snap.lists.clone();
            let data = serde_json::to_vec(&snap).expect("snapshots serialize");
            store.compact(snap.index, snap.term, data);
            applied = snap.index;
            snapshot_kv = snap.kv.clone();
            kv = snap.kv;
            applied_ids = snap.applied_ids;
        }
        let mut incarnation = 0;
        for record in records {
            match record {
                RaftRecord::Incarnation { incarnation: i } => incarnation = incarnation.max(i),
                RaftRecord::Entries { entries } => {
                    let ents: Vec<Entry> = entries.iter().map(entry_of).collect();
                    store.append(&ents);
                }
                RaftRecord::HardState { term, vote, commit } => {
                    store.hard.term = term;
                    store.hard.vote = vote;
                    store.hard.commit = commit.max(store.snap_index);
                }
            }
        }
        assert!(
            store.hard.commit <= store.last(),
            "node {}: commit {} beyond the last entry {}",
            cfg.id,
            store.hard.commit,
            store.last()
        );
        incarnation += 1;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raft_cfg = RaftCore::raft_config(&cfg, applied);
        let node = RawNode::new(&raft_cfg, store, &logger).expect("a valid raft-rs configuration");
        let mix = cfg
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(u64::from(cfg.id) << 32)
            .wrapping_add(incarnation);
        let mut core = RaftCore {
            rng: ChaCha8Rng::seed_from_u64(mix),
            node,
            incarnation,
            next_seq: 0,
            kv,
            lists,
            applied_ids,
            applied,
            log: BTreeMap::new(),
            snapshot_kv,
            pending: BTreeMap::new(),
            by_command: BTreeMap::new(),
            hold: 0,
            last_elapsed: 0,
            last_term: 0,
            committed_out: Vec::new(),
            applied_now: Vec::new(),
            out: Vec::new(),
            cfg,
        };
        core.hold = core.rng.random_range(0..core.cfg.election_tick);
        core.out
            .push(Action::Persist(RaftRecord::Incarnation { incarnation }));
        core.out.push(Action::SetTimer {
            timer: RaftTimer::Tick,
            after_ms: core.cfg.tick_ms,
        });
        core.ready_all();
        core.note_election_clock();
        let actions = std::mem::take(&mut core.out);
        (core, actions)
    }

    fn step(&mut self, event: Event<RaftMsg, RaftTimer>) -> Vec<RaftAction> {
        self.applied_now.clear();
        match event {
            Event::Peer { msg, .. } => {
                // A message for another node or from no node is dropped, as raft-rs
                // would drop a message of an unknown peer.
                if msg.0.to == u64::from(self.cfg.id) {
                    let _ = self.node.step(msg.0);
                }
            }
            Event::Client { token, op } => self.client(token, op),
            Event::Timer(RaftTimer::Tick) => self.tick(),
            Event::Timer(RaftTimer::Request(token)) => {
                self.reply(token, OpResult::Error(ErrorCode::Timeout))
            }
        }
        self.ready_all();
        self.note_election_clock();
        std::mem::take(&mut self.out)
    }

    fn view(&self) -> View {
        let raft = &self.node.raft;
        View {
            role: match raft.state {
                StateRole::Leader => "leader",
                StateRole::Candidate | StateRole::PreCandidate => "candidate",
                StateRole::Follower => "follower",
            },
            leader: (raft.leader_id != raft::INVALID_ID).then_some(raft.leader_id as NodeId),
            round: raft.term,
            commit_index: self.applied,
        }
    }

    fn configure(template: &RaftConfig, id: NodeId, n: usize, seed: u64) -> RaftConfig {
        RaftConfig {
            id,
            n,
            seed,
            ..template.clone()
        }
    }

    fn effects_before_sync(cfg: &RaftConfig) -> bool {
        cfg.mistake == Some(Mistake::SendBeforePersist)
    }
}

impl crate::shell::ShellCore for RaftCore {
    fn node_id(cfg: &RaftConfig) -> NodeId {
        cfg.id
    }

    fn cluster_size(cfg: &RaftConfig) -> usize {
        cfg.n
    }

    fn status_line(&self, id: u64) -> String {
        let view = self.view();
        let status = crate::core::Status {
            id: self.cfg.id,
            role: view.role.to_string(),
            leader: view.leader,
            ballot: view.round,
            commit_index: self.applied,
            incarnation: self.incarnation,
            registers_chosen: 0,
            queued: 0,
            inflight_slots: 0,
            pending_requests: self.pending.len(),
            conflicts: 0,
            campaigns: 0,
            snapshot_index: self.node.store().snap_index,
        };
        crate::client::encode_status(id, &status)
    }

    fn dump_line(&self, id: u64) -> String {
        self.dump(id)
    }

    fn recovered(&self) -> String {
        let raft = &self.node.raft;
        format!(
            "raft-rs: incarnation {}, term {}, applied {}, last index {}",
            self.incarnation,
            raft.term,
            self.applied,
            self.node.store().last()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seq: u64) -> CmdId {
        CmdId {
            node: 2,
            incarnation: 1,
            seq,
        }
    }

    #[test]
    fn a_command_is_applied_once_and_the_memory_of_it_is_bounded() {
        let mut ids = AppliedIds::default();
        assert!(ids.insert(id(5)));
        assert!(!ids.insert(id(5)), "a duplicate");
        assert!(ids.insert(id(3)), "overtaken, still within the window");
        for seq in 6..10_000 {
            assert!(ids.insert(id(seq)));
        }
        assert!(!ids.insert(id(4)), "too far behind: counts as applied");
        let (high, recent) = &ids.0[&(2, 1)];
        assert_eq!(*high, 9_999);
        assert!(recent.len() as u64 <= APPLY_WINDOW, "{}", recent.len());
        let json = serde_json::to_string(&ids).unwrap();
        assert_eq!(serde_json::from_str::<AppliedIds>(&json).unwrap(), ids);
    }

    #[test]
    fn compaction_keeps_the_entries_after_the_snapshot() {
        let mut store = Store::default();
        let ents: Vec<Entry> = (1..=10)
            .map(|i| {
                entry_of(&LogEntry {
                    index: i,
                    term: 1,
                    command: None,
                })
            })
            .collect();
        store.append(&ents);
        store.compact(6, 1, vec![1]);
        assert_eq!((store.first(), store.last()), (7, 10));
        assert_eq!(store.term_of(6), Some(1));
        assert_eq!(
            store
                .entries(7, 11, None, GetEntriesContext::empty(false))
                .unwrap()
                .len(),
            4
        );
        assert!(
            store
                .entries(5, 8, None, GetEntriesContext::empty(false))
                .is_err()
        );
        // Appending over the tail replaces it; what the snapshot covers is skipped.
        store.append(
            &[
                entry_of(&LogEntry {
                    index: 5,
                    term: 2,
                    command: None,
                }),
                entry_of(&LogEntry {
                    index: 8,
                    term: 2,
                    command: None,
                }),
            ][1..],
        );
        assert_eq!(store.last(), 8);
        assert_eq!(store.term_of(8), Some(2));
    }

    #[test]
    fn messages_and_records_cross_a_socket_and_a_disk_unchanged() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.to = 2;
        m.from = 1;
        m.term = 7;
        m.index = 41;
        m.mut_entries().push(Entry {
            index: 42,
            term: 7,
            data: b"{}".to_vec().into(),
            ..Default::default()
        });
        let msg = RaftMsg(m);
        let line = msg.to_line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["type"], "append",
            "the proxies count it by its kind: {line}"
        );
        assert_eq!(RaftMsg::from_line(line.as_bytes()).unwrap(), msg);
        assert!(RaftMsg::from_line(b"{\"type\":\"append\",\"bytes\":\"%%\"}").is_err());
        let record = RaftRecord::Entries {
            entries: vec![LogEntry {
                index: 42,
                term: 7,
                command: None,
            }],
        };
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        assert_eq!(RaftRecord::decode(&bytes).unwrap(), record);
        assert_eq!(record.kind(), "entries");
    }
}
