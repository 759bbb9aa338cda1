//! The sans-IO Paxos core: one node's proposer, acceptor and learner roles as a pure
//! state machine.
//!
//! Events go in ([`Event`]: a peer message, a client request, a timer firing; recovered
//! durable state is handed to [`Node::start`]); actions come out ([`Action`]: persist a
//! record, send a message, reply to a client, set a timer). There is no tokio, socket,
//! clock, thread or unseeded randomness here, so the same code runs inside the real
//! node (`crate::shell`) and inside the deterministic simulation (`chaos sim`).
//!
//! The ordering contract with a driver: actions are returned in the order they must
//! take effect, and every `Persist` precedes the sends and replies that depend on it.
//! A driver may delay sends and replies (the shell moves all persists of a burst of
//! events ahead of all its sends, so one fsync covers them), but it must never let a
//! send or a reply leave before a persist that was returned ahead of it.
//!
//! The roles live in two files: `register.rs` (Basic Paxos, one single-decree instance
//! per register key) and `log.rs` (Multi-Paxos: a replicated log behind the KV store,
//! with a stable leader). This file holds what they share.

pub(crate) mod encode;
mod log;
mod register;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::msg::{PeerMessage, ReportedEntry};
use crate::types::{
    Ballot, Batch, Bug, ClientOp, CmdId, Command, Mistake, NodeId, OpResult, RegKey, Slot,
};

pub use register::{RegisterAcceptor, RegisterProposer};

/// What one command costs the log besides its key, for [`Timing::snapshot_bytes`]:
/// about its WAL record's framing, ids and value.
pub const COMMAND_BYTES: u64 = 64;

/// Covered chosen slots freed per step after a snapshot: a 50,000-slot snapshot is
/// freed within a few hundred steps, a fraction of a second under load.
const RETIRE_PER_STEP: usize = 256;

/// Actions a step has room for before it grows its list.
const OUT_ROOM: usize = 8;

/// Durations the core asks timers for. Milliseconds of whatever clock the driver runs:
/// real time in the shell, virtual time in the simulation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// A follower that has not heard from a leader for a random duration in
    /// `[min, max)` starts an election. Randomised so candidates rarely collide.
    pub election_timeout_ms: (u64, u64),
    /// How often a leader sends `Commit` heartbeats and retransmits unacknowledged
    /// accepts.
    pub heartbeat_ms: u64,
    /// A register proposer that has not completed a phase within this (plus jitter)
    /// starts a new round with a higher ballot.
    pub phase_timeout_ms: u64,
    /// A register proposer refused by a higher ballot waits a random duration in
    /// `[min, max)` before its next round, so dueling proposers stop dueling.
    pub backoff_ms: (u64, u64),
    /// A client request not answered within this gets an indefinite `timeout` reply.
    pub request_timeout_ms: u64,
    /// A register proposer gives up after this many rounds.
    pub max_register_rounds: u32,
    /// How many log slots a leader keeps in flight at once.
    pub window: usize,
    /// How many client commands a leader batches into one slot at most.
    pub max_batch: usize,
    /// How many client commands a leader or candidate queues at most; beyond that new
    /// commands are refused with `unavailable`.
    pub queue_capacity: usize,
    /// How many chosen entries one `Chosen` catch-up reply carries at most.
    pub catch_up_batch: usize,
    /// The most commands one log promise reports. A candidate so far behind that its
    /// promise would carry more is answered `log-behind` instead and catches up
    /// first: an unbounded promise once took longer to arrive than an election
    /// timeout, and the campaigns restarted forever.
    pub promise_max_commands: usize,
    /// A client command that arrives when no leader is known waits about this long
    /// (between three quarters of it and all of it) for one, then is refused with a
    /// definite `unavailable` (0: refused at once). About two election timeouts: long enough for a fresh
    /// cluster to elect and for a restarted node to hear the first heartbeat.
    pub leader_wait_ms: u64,
    /// After this many applied commands (no-op slots count one) the node writes a
    /// snapshot of its state machine and drops the log before it (0: never).
    pub snapshot_every: u64,
    /// Or after about this many bytes of applied commands, whichever comes first
    /// (0: no byte bound): a log of long keys is compacted before it is large.
    /// A command counts its key's length plus [`COMMAND_BYTES`].
    pub snapshot_bytes: u64,
    /// How many KV pairs one snapshot chunk carries to a follower at most.
    pub snapshot_chunk_keys: usize,
    /// Whether a follower runs a pre-vote before it campaigns (off: it raises its
    /// ballot as soon as its election timer fires, as before pre-votes existed).
    pub pre_vote: bool,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            election_timeout_ms: (300, 600),
            heartbeat_ms: 50,
            phase_timeout_ms: 200,
            backoff_ms: (10, 120),
            request_timeout_ms: 2_000,
            max_register_rounds: 100,
            window: 16,
            max_batch: 512,
            queue_capacity: 16_384,
            catch_up_batch: 512,
            promise_max_commands: 8_192,
            snapshot_every: 50_000,
            snapshot_bytes: 64 << 20,
            snapshot_chunk_keys: 1_000,
            leader_wait_ms: 1_200,
            pre_vote: true,
        }
    }
}

/// A node's fixed configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// This node's id, `1..=n`.
    pub id: NodeId,
    /// The number of nodes in the cluster.
    pub n: usize,
    /// Seeds the node's randomness (election timeouts, backoff). Mixed with the id and
    /// the incarnation, so nodes and restarts draw different streams.
    pub seed: u64,
    pub bugs: BTreeSet<Bug>,
    /// Test-only mistakes in rare paths ([`crate::types::Mistake`]).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub mistakes: BTreeSet<crate::types::Mistake>,
    pub timing: Timing,
}

impl Config {
    pub fn new(id: NodeId, n: usize, seed: u64) -> Config {
        Config {
            id,
            n,
            seed,
            bugs: BTreeSet::new(),
            mistakes: BTreeSet::new(),
            timing: Timing::default(),
        }
    }
}

/// A durable record: the only state that survives a restart. Written to the WAL by
/// the driver when the core returns [`Action::Persist`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "kebab-case", try_from = "FlatRecord")]
pub enum Record {
    /// Written at every start; command ids embed it so they never repeat.
    Incarnation {
        incarnation: u64,
    },
    RegisterPromise {
        key: RegKey,
        ballot: Ballot,
    },
    /// Also a promise of `ballot` (an acceptor that accepts `ballot` has promised it).
    RegisterAccept {
        key: RegKey,
        ballot: Ballot,
        value: i64,
    },
    RegisterChosen {
        key: RegKey,
        value: i64,
    },
    LogPromise {
        ballot: Ballot,
    },
    /// Also a promise of `ballot`.
    LogAccept {
        slot: Slot,
        ballot: Ballot,
        batch: Batch,
    },
    LogChosen {
        slot: Slot,
        batch: Batch,
    },
}

/// The state machine at a slot: every slot up to `index` applied. With the records
/// written after it, all a node needs to start again; the log before it is gone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub index: Slot,
    pub kv: BTreeMap<String, i64>,
    /// The lists transactions appended to (absent from the encoding when empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lists: crate::types::Lists,
    /// Per origin (node, incarnation), one past the highest command sequence number
    /// seen: duplicate detection must survive the log that taught it.
    pub origins: Vec<(NodeId, u64, u64)>,
}

/// A timer the core asks for. Setting a timer that is already set replaces it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimerId {
    /// Follower or candidate: time to (re)start an election if the leader is silent.
    Election,
    /// Leader: time to send heartbeats and retransmit accepts.
    Heartbeat,
    /// Register proposer for this key: phase timeout or end of backoff.
    Register(RegKey),
    /// Client request with this token: time to give up and answer `timeout`.
    Request(u64),
    /// Commands waiting for a leader: a quarter of `leader_wait_ms` has passed.
    LeaderWait,
    /// Follower: the shortest election timeout has passed since the leader's last
    /// heartbeat, so pre-votes are granted again.
    LeaderContact,
}

/// What the driver feeds the core ([`crate::seam::Event`] with this core's types).
pub type Event = crate::seam::Event<PeerMessage, TimerId>;

/// What the core asks the driver to do ([`crate::seam::Action`] with this core's
/// types).
pub type Action = crate::seam::Action<PeerMessage, Record, Snapshot, TimerId>;

impl crate::seam::Wire for Record {
    fn kind(&self) -> &'static str {
        match self {
            Record::Incarnation { .. } => "incarnation",
            Record::RegisterPromise { .. } => "register-promise",
            Record::RegisterAccept { .. } => "register-accept",
            Record::RegisterChosen { .. } => "register-chosen",
            Record::LogPromise { .. } => "log-promise",
            Record::LogAccept { .. } => "log-accept",
            Record::LogChosen { .. } => "log-chosen",
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        // The bytes serde writes, by hand (the encoding's own module says why).
        encode::record(self, out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        crate::seam::json_decode(bytes)
    }
}

/// A record's kind: the `r` of its encoding.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RecordKind {
    Incarnation,
    RegisterPromise,
    RegisterAccept,
    RegisterChosen,
    LogPromise,
    LogAccept,
    LogChosen,
}

/// A [`Record`] as its encoding reads, every variant's fields optional. serde
/// reads a struct field by field where an internally tagged enum first buffers
/// the whole object to find its tag: recovery read every WAL record that way, a
/// tenth of a restart-heavy simulation. The same bytes give the same record,
/// fields of other kinds ignored as the tagged reader ignored them, a missing one
/// named.
#[derive(Deserialize)]
struct FlatRecord {
    r: RecordKind,
    incarnation: Option<u64>,
    key: Option<String>,
    ballot: Option<Ballot>,
    value: Option<i64>,
    slot: Option<Slot>,
    batch: Option<Batch>,
}

impl TryFrom<FlatRecord> for Record {
    type Error = String;

    fn try_from(f: FlatRecord) -> Result<Record, String> {
        use crate::types::need;
        Ok(match f.r {
            RecordKind::Incarnation => Record::Incarnation {
                incarnation: need(f.incarnation, "incarnation")?,
            },
            RecordKind::RegisterPromise => Record::RegisterPromise {
                key: need(f.key, "key")?.into(),
                ballot: need(f.ballot, "ballot")?,
            },
            RecordKind::RegisterAccept => Record::RegisterAccept {
                key: need(f.key, "key")?.into(),
                ballot: need(f.ballot, "ballot")?,
                value: need(f.value, "value")?,
            },
            RecordKind::RegisterChosen => Record::RegisterChosen {
                key: need(f.key, "key")?.into(),
                value: need(f.value, "value")?,
            },
            RecordKind::LogPromise => Record::LogPromise {
                ballot: need(f.ballot, "ballot")?,
            },
            RecordKind::LogAccept => Record::LogAccept {
                slot: need(f.slot, "slot")?,
                ballot: need(f.ballot, "ballot")?,
                batch: need(f.batch, "batch")?,
            },
            RecordKind::LogChosen => Record::LogChosen {
                slot: need(f.slot, "slot")?,
                batch: need(f.batch, "batch")?,
            },
        })
    }
}

impl crate::seam::Core for Node {
    type Msg = PeerMessage;
    type Record = Record;
    type Snapshot = Snapshot;
    type Timer = TimerId;
    type Config = Config;
    const NAME: &'static str = "paxos";

    fn start(cfg: Config, snapshot: Option<Snapshot>, records: Vec<Record>) -> (Node, Vec<Action>) {
        Node::start_from(cfg, snapshot, records)
    }

    fn step(&mut self, event: Event) -> Vec<Action> {
        Node::step(self, event)
    }

    fn view(&self) -> crate::seam::View {
        let status = self.status();
        crate::seam::View {
            role: match status.role.as_str() {
                "leader" => "leader",
                "candidate" => "candidate",
                _ => "follower",
            },
            leader: status.leader,
            round: status.ballot,
            commit_index: status.commit_index,
        }
    }

    fn configure(template: &Config, id: NodeId, n: usize, seed: u64) -> Config {
        let mut c = template.clone();
        c.id = id;
        c.n = n;
        c.seed = seed;
        c
    }

    fn effects_before_sync(cfg: &Config) -> bool {
        cfg.bugs.contains(&Bug::UnsyncedReply)
    }

    fn unsynced_snapshot(cfg: &Config) -> bool {
        cfg.bugs.contains(&Bug::UnsyncedSnapshot)
    }
}

/// The role of this node in the Multi-Paxos log.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Role {
    Follower,
    /// Running phase 1 for every slot from `from_slot` on.
    Candidate {
        ballot: Ballot,
        from_slot: Slot,
        promises: BTreeMap<NodeId, Vec<ReportedEntry>>,
    },
    /// Phase 1 done for every slot from the candidate's `from_slot` on: proposes with
    /// phase 2 only.
    Leader {
        ballot: Ballot,
        /// The next slot no proposal of this ballot has used.
        next_slot: Slot,
        inflight: BTreeMap<Slot, Inflight>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Inflight {
    batch: Batch,
    acks: BTreeSet<NodeId>,
}

/// What a client request in flight is waiting for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    /// A KV command of this node's current incarnation with this sequence number.
    Kv(u64),
    /// A propose on this register key.
    Register(RegKey),
}

/// A read-only view of the node for the `status` op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub id: NodeId,
    pub role: String,
    pub leader: Option<NodeId>,
    pub ballot: Ballot,
    pub commit_index: Slot,
    pub incarnation: u64,
    pub registers_chosen: usize,
    pub queued: usize,
    pub inflight_slots: usize,
    pub pending_requests: usize,
    /// Times this node learned a value that differs from one it had already learned.
    /// Always 0 in a correct cluster; kept so a bug shows up in `status`.
    pub conflicts: u64,
    /// Campaigns (phase 1 with a new ballot) this node started since it started.
    #[serde(default)]
    pub campaigns: u64,
    /// The slot of the last snapshot (0: none); the log before it is not kept.
    #[serde(default)]
    pub snapshot_index: Slot,
}

/// One node: proposer, acceptor and learner for every register and for the log.
pub struct Node {
    cfg: Config,
    rng: ChaCha8Rng,
    incarnation: u64,
    /// Actions produced by the step in progress.
    out: Vec<Action>,
    /// Messages this node sent to itself, handled before the step returns.
    local: VecDeque<PeerMessage>,

    // ---- registers (Basic Paxos) ----
    reg_acceptors: BTreeMap<RegKey, RegisterAcceptor>,
    reg_chosen: BTreeMap<RegKey, i64>,
    reg_proposers: BTreeMap<RegKey, RegisterProposer>,

    // ---- log acceptor ----
    /// The highest ballot this acceptor promised for the log. Invariant (without
    /// `accept-lower-ballot`): every ballot in `log_accepted` is at most this.
    log_promised: Ballot,
    /// Accepted and not yet known to be chosen. A slot leaves this map when it is
    /// chosen: from then on the chosen value stands for it.
    log_accepted: BTreeMap<Slot, (Ballot, Batch)>,

    // ---- log learner and state machine ----
    /// Chosen slots above `snapshot_index` (the ones below are in the snapshot).
    chosen: BTreeMap<Slot, Batch>,
    /// Chosen slots a snapshot covers, freed a few at a time at the end of each
    /// step ([`RETIRE_PER_STEP`]) instead of all at once in the step that takes the
    /// snapshot (tens of thousands of batches: milliseconds every client would wait).
    retired: BTreeMap<Slot, Batch>,
    /// The last snapshot taken or installed (every slot up to its index applied).
    snapshot: Option<Snapshot>,
    /// Commands applied since the last snapshot.
    since_snapshot: u64,
    /// Bytes of the commands applied since then (key lengths plus [`COMMAND_BYTES`]).
    since_snapshot_bytes: u64,
    /// Chunks of a snapshot being received: its index, its number of parts, and the
    /// parts so far. At most one snapshot at a time.
    incoming: Option<snapshot::Incoming>,
    /// Every slot up to `applied` is chosen and applied to `kv`.
    applied: Slot,
    kv: BTreeMap<String, i64>,
    lists: crate::types::Lists,
    /// The `split-txn` bug: writes of a transaction held back to after the next slot.
    split_rest: Vec<crate::types::MicroOp>,

    // ---- log proposer ----
    role: Role,
    /// The node this one believes leads the log (possibly itself).
    leader: Option<NodeId>,
    /// The highest ballot seen in any log message.
    max_ballot_seen: Ballot,
    /// Whether a leader made itself heard since the election timer was last armed.
    heard_from_leader: bool,
    /// Campaigns in a row that ended without a leader; each doubles the next wait.
    failed_campaigns: u32,
    /// Whether a leader's heartbeat arrived within the shortest election timeout: a
    /// node that heard its leader that recently refuses pre-votes.
    leader_fresh: bool,
    /// The pre-vote round in progress: the ballot it would campaign with and the
    /// nodes that granted it (this one included).
    pre_vote: Option<(Ballot, BTreeSet<NodeId>)>,
    /// Campaigns this node started (phase 1 with a new ballot), since it started.
    campaigns: u64,
    /// Commands waiting for a slot (leader) or for the election to end (candidate).
    queue: VecDeque<Command>,
    /// This node's client commands that arrived while no leader was known, each with
    /// the wait tick it arrived in; handed on as soon as a leader is known, refused
    /// after four ticks. Bounded by `queue_capacity`.
    awaiting_leader: VecDeque<(u64, Command)>,
    /// Ticks of the leader-wait timer so far.
    wait_tick: u64,

    // ---- client requests ----
    next_seq: u64,
    requests: BTreeMap<u64, Pending>,
    /// Sequence number of a KV command of this incarnation -> the request's token.
    kv_waiting: BTreeMap<u64, u64>,

    /// Per origin (node, incarnation): the highest command sequence number this node
    /// has seen forwarded, accepted or chosen. A forwarded command at or below it is a
    /// duplicate (the network may duplicate messages) and is dropped, so that no
    /// command is chosen twice. One entry per origin incarnation: bounded by restarts.
    origin_high: BTreeMap<(NodeId, u64), u64>,

    conflicts: u64,
}

impl Node {
    /// Starts a node from its recovered durable records (empty on first start).
    /// Returns the node and the actions of its start: persist the new incarnation and
    /// arm the election timer.
    pub fn start(cfg: Config, recovered: Vec<Record>) -> (Node, Vec<Action>) {
        Node::start_from(cfg, None, recovered)
    }

    /// [`Node::start`] from a snapshot and the records written after it (records of
    /// slots the snapshot covers, left by a crash between the two writes, are
    /// skipped).
    pub fn start_from(
        cfg: Config,
        snapshot: Option<Snapshot>,
        recovered: Vec<Record>,
    ) -> (Node, Vec<Action>) {
        assert!(cfg.n >= 1, "a cluster has at least one node");
        assert!(
            cfg.id >= 1 && cfg.id as usize <= cfg.n,
            "node id {} outside 1..={}",
            cfg.id,
            cfg.n
        );
        let mut node = Node {
            rng: ChaCha8Rng::seed_from_u64(0),
            incarnation: 0,
            out: Vec::new(),
            local: VecDeque::new(),
            reg_acceptors: BTreeMap::new(),
            reg_chosen: BTreeMap::new(),
            reg_proposers: BTreeMap::new(),
            log_promised: 0,
            log_accepted: BTreeMap::new(),
            chosen: BTreeMap::new(),
            retired: BTreeMap::new(),
            snapshot: None,
            since_snapshot: 0,
            since_snapshot_bytes: 0,
            incoming: None,
            applied: 0,
            kv: BTreeMap::new(),
            lists: BTreeMap::new(),
            split_rest: Vec::new(),
            role: Role::Follower,
            leader: None,
            max_ballot_seen: 0,
            heard_from_leader: false,
            failed_campaigns: 0,
            leader_fresh: false,
            pre_vote: None,
            campaigns: 0,
            queue: VecDeque::new(),
            awaiting_leader: VecDeque::new(),
            wait_tick: 0,
            next_seq: 0,
            requests: BTreeMap::new(),
            kv_waiting: BTreeMap::new(),
            origin_high: BTreeMap::new(),
            conflicts: 0,
            cfg,
        };
        if let Some(snap) = snapshot {
            node.restore(&snap);
            node.snapshot = Some(snap);
        }
        for record in recovered {
            node.recover(record);
        }
        if node.has_mistake(Mistake::SnapshotSkipsNext) {
            let next = node.snapshot_index() + 1;
            if node.snapshot.is_some() && node.chosen.contains_key(&next) {
                node.applied = next;
            }
        }
        node.check_acceptor_invariants();
        node.incarnation += 1;
        let mix = node
            .cfg
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(u64::from(node.cfg.id) << 32)
            .wrapping_add(node.incarnation);
        node.rng = ChaCha8Rng::seed_from_u64(mix);
        node.max_ballot_seen = node.log_promised;
        node.apply_chosen();
        node.persist(Record::Incarnation {
            incarnation: node.incarnation,
        });
        node.arm_election_timer();
        let actions = std::mem::take(&mut node.out);
        (node, actions)
    }

    /// Folds one recovered record into the state.
    fn recover(&mut self, record: Record) {
        match record {
            Record::Incarnation { incarnation } => {
                self.incarnation = self.incarnation.max(incarnation)
            }
            Record::RegisterPromise { key, ballot } => {
                let acc = self.reg_acceptors.entry(key).or_default();
                acc.promised = acc.promised.max(ballot);
            }
            Record::RegisterAccept { key, ballot, value } => {
                let acc = self.reg_acceptors.entry(key).or_default();
                acc.promised = acc.promised.max(ballot);
                acc.accepted = Some((ballot, value));
            }
            Record::RegisterChosen { key, value } => {
                self.reg_acceptors.remove(&key);
                let known = *self.reg_chosen.entry(key.clone()).or_insert(value);
                assert!(
                    known == value || self.deliberate(),
                    "the log holds register {key} chosen as {known} and as {value}"
                );
            }
            Record::LogPromise { .. } if self.has_mistake(Mistake::RestartDropsPromise) => {}
            Record::LogPromise { ballot } => self.log_promised = self.log_promised.max(ballot),
            Record::LogAccept {
                slot,
                ballot,
                batch,
            } => {
                self.log_promised = self.log_promised.max(ballot);
                self.note_origins(&batch);
                if slot > self.snapshot_index() && !self.chosen.contains_key(&slot) {
                    self.log_accepted.insert(slot, (ballot, batch));
                }
            }
            Record::LogChosen { slot, .. } if slot <= self.snapshot_index() => {}
            Record::LogChosen { slot, batch } => {
                self.note_origins(&batch);
                self.log_accepted.remove(&slot);
                let bugs = self.deliberate();
                let known = self.chosen.entry(slot).or_insert_with(|| batch.clone());
                assert!(
                    *known == batch || bugs,
                    "the log holds slot {slot} chosen twice with different commands"
                );
            }
        }
    }

    /// Acceptor invariants, checked after recovery and kept on in release builds: a
    /// violated one means our own code (or a deliberate bug) broke a Paxos rule.
    fn check_acceptor_invariants(&self) {
        if self.has_bug(Bug::AcceptLowerBallot) {
            return;
        }
        for (slot, (ballot, _)) in &self.log_accepted {
            assert!(
                *ballot <= self.log_promised,
                "slot {slot} accepted in ballot {ballot} above the promise {}",
                self.log_promised
            );
        }
        for (key, acc) in &self.reg_acceptors {
            if let Some((ballot, _)) = acc.accepted {
                assert!(
                    ballot <= acc.promised,
                    "register {key} accepted in ballot {ballot} above the promise {}",
                    acc.promised
                );
            }
        }
    }

    /// Handles one event and returns the actions it causes, in order.
    pub fn step(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::Peer { from, msg } => {
                if from == 0 || from as usize > self.cfg.n {
                    // Not a member: the shell drops such peers; the core ignores them too.
                    return Vec::new();
                }
                self.on_peer(from, msg)
            }
            Event::Client { token, op } => self.on_client(token, op),
            Event::Timer(timer) => self.on_timer(timer),
        }
        self.drain_local();
        if self.hand_on_awaiting() {
            self.drain_local();
        }
        for _ in 0..RETIRE_PER_STEP {
            if self.retired.pop_first().is_none() {
                break;
            }
        }
        // The next step's actions start with room for a step's usual few (a
        // broadcast, a record, a timer), not from none, growing as they come.
        std::mem::replace(&mut self.out, Vec::with_capacity(OUT_ROOM))
    }

    fn drain_local(&mut self) {
        // Finite by construction: a request to self causes at most one reply to self,
        // and a reply causes no further self-message but new proposals, of which a
        // step makes at most one per recovered slot plus the window. The bound turns a
        // bug that breaks this into a loud failure instead of a hang.
        let mut budget = 4 * (log::MAX_RECOVERY_SPAN + self.cfg.timing.window as u64) + 1_024;
        while let Some(msg) = self.local.pop_front() {
            budget -= 1;
            assert!(budget > 0, "self-message loop");
            self.on_peer(self.cfg.id, msg);
        }
    }

    fn on_peer(&mut self, from: NodeId, msg: PeerMessage) {
        match msg {
            PeerMessage::Prepare { key, ballot } => self.on_prepare(from, key, ballot),
            PeerMessage::Promise {
                key,
                ballot,
                accepted,
            } => self.on_promise(from, key, ballot, accepted),
            PeerMessage::Accept { key, ballot, value } => self.on_accept(from, key, ballot, value),
            PeerMessage::Accepted { key, ballot } => self.on_accepted(from, key, ballot),
            PeerMessage::RegisterNack {
                key,
                ballot,
                promised,
            } => self.on_register_nack(key, ballot, promised),
            PeerMessage::Decided { key, value } => self.learn_register(key, value),
            PeerMessage::LogPrepare { ballot, from_slot } => {
                self.on_log_prepare(from, ballot, from_slot)
            }
            PeerMessage::LogPromise { ballot, entries } => {
                self.on_log_promise(from, ballot, entries)
            }
            PeerMessage::LogAccept {
                ballot,
                slot,
                batch,
            } => self.on_log_accept(from, ballot, slot, batch),
            PeerMessage::LogAccepted { ballot, slot } => self.on_log_accepted(from, ballot, slot),
            PeerMessage::LogNack { ballot, promised } => self.on_log_nack(ballot, promised),
            PeerMessage::LogBehind { ballot, .. } => self.on_log_behind(from, ballot),
            PeerMessage::Commit { ballot, commit } => self.on_commit(from, ballot, commit),
            PeerMessage::PreVote { ballot } => self.on_pre_vote(from, ballot),
            PeerMessage::PreVoteReply { ballot, granted } => {
                self.on_pre_vote_reply(from, ballot, granted)
            }
            PeerMessage::CatchUp { from_slot } => self.on_catch_up(from, from_slot),
            PeerMessage::SnapshotChunk {
                index,
                part,
                parts,
                kv,
                lists,
                origins,
            } => self.on_snapshot_chunk(from, index, part, parts, (kv, lists, origins)),
            PeerMessage::Chosen { entries } => self.on_chosen(from, entries),
            PeerMessage::Forward { commands } => self.on_forward(commands),
            PeerMessage::Reject { ids } => {
                for id in ids {
                    self.finish_kv(id, OpResult::Error(crate::types::ErrorCode::Unavailable));
                }
            }
            PeerMessage::EarlyAck { ids } => {
                for id in ids {
                    self.finish_kv(id, OpResult::Done);
                }
            }
        }
    }

    fn on_client(&mut self, token: u64, op: ClientOp) {
        match op {
            ClientOp::Propose { key, value } => self.client_propose(token, key, value),
            ClientOp::Kv(op) => self.client_kv(token, op),
        }
    }

    fn on_timer(&mut self, timer: TimerId) {
        match timer {
            TimerId::Election => self.on_election_timer(),
            TimerId::Heartbeat => self.on_heartbeat_timer(),
            TimerId::Register(key) => self.on_register_timer(key),
            TimerId::Request(token) => self.on_request_timeout(token),
            TimerId::LeaderWait => self.on_leader_wait_timer(),
            TimerId::LeaderContact => self.leader_fresh = false,
        }
    }

    fn on_request_timeout(&mut self, token: u64) {
        let Some(pending) = self.requests.remove(&token) else {
            return; // answered already
        };
        match pending {
            Pending::Kv(seq) => {
                self.kv_waiting.remove(&seq);
            }
            Pending::Register(key) => {
                if let Some(p) = self.reg_proposers.get_mut(&key) {
                    p.waiters.retain(|t| *t != token);
                }
            }
        }
        self.reply(token, OpResult::Error(crate::types::ErrorCode::Timeout));
    }

    // ---- helpers shared by the roles ----

    fn has_bug(&self, bug: Bug) -> bool {
        self.cfg.bugs.contains(&bug)
    }

    fn has_mistake(&self, mistake: crate::types::Mistake) -> bool {
        self.cfg.mistakes.contains(&mistake)
    }

    /// Whether a deliberate bug or mistake is on: the core's own assertions of what
    /// its log must hold then stand down, and the harness's checks judge.
    fn deliberate(&self) -> bool {
        !self.cfg.bugs.is_empty() || !self.cfg.mistakes.is_empty()
    }

    /// The number of acceptors that make a quorum: floor(N/2)+1, so any two quorums
    /// intersect ("Paxos Made Simple" §2.2). `minority-quorum` breaks exactly this.
    fn quorum(&self) -> usize {
        if self.has_bug(Bug::MinorityQuorum) {
            (self.cfg.n / 2).max(1)
        } else {
            self.cfg.n / 2 + 1
        }
    }

    /// Whether records of acceptor state (promises and acceptances) are written.
    /// `forget-promises` keeps them in memory only.
    fn persists_acceptor_state(&self) -> bool {
        !self.has_bug(Bug::ForgetPromises)
    }

    fn persist(&mut self, record: Record) {
        self.check_record(&record);
        self.out.push(Action::Persist(record));
    }

    /// The write side of the invariants [`Self::check_acceptor_invariants`] and
    /// [`Self::recover`] check on the read side, kept on in release builds: an accept
    /// is persisted only at the acceptor's current promise (never below it), and a
    /// chosen slot or register is never persisted with a second value. A `--bug` that
    /// breaks one of these rules on purpose turns its check off.
    fn check_record(&self, record: &Record) {
        let lower_ok = self.has_bug(Bug::AcceptLowerBallot);
        match record {
            Record::LogAccept { slot, ballot, .. } if !lower_ok => assert!(
                *ballot >= self.log_promised,
                "slot {slot}: accept in ballot {ballot} persisted below the promise {}",
                self.log_promised
            ),
            Record::RegisterAccept { key, ballot, .. } if !lower_ok => {
                let promised = self.reg_acceptors.get(key).map_or(*ballot, |a| a.promised);
                assert!(
                    *ballot >= promised,
                    "register {key}: accept in ballot {ballot} persisted below the promise {promised}"
                );
            }
            Record::LogChosen { slot, batch } if !self.deliberate() => assert!(
                self.chosen.get(slot).is_none_or(|known| known == batch),
                "slot {slot} is chosen already with other commands"
            ),
            Record::RegisterChosen { key, value } if !self.deliberate() => assert!(
                self.reg_chosen.get(key).is_none_or(|known| known == value),
                "register {key} is chosen already as another value"
            ),
            _ => {}
        }
    }

    fn send(&mut self, to: NodeId, msg: PeerMessage) {
        if to == self.cfg.id {
            self.local.push_back(msg);
        } else {
            self.out.push(Action::Send { to, msg });
        }
    }

    /// Sends to every node, this one included (handled locally, after the others).
    fn broadcast(&mut self, msg: PeerMessage) {
        for to in 1..=self.cfg.n as NodeId {
            if to != self.cfg.id {
                self.out.push(Action::Send {
                    to,
                    msg: msg.clone(),
                });
            }
        }
        self.local.push_back(msg);
    }

    /// Sends to every other node.
    fn broadcast_others(&mut self, msg: PeerMessage) {
        for to in 1..=self.cfg.n as NodeId {
            if to != self.cfg.id {
                self.out.push(Action::Send {
                    to,
                    msg: msg.clone(),
                });
            }
        }
    }

    fn reply(&mut self, token: u64, result: OpResult) {
        self.out.push(Action::Reply { token, result });
    }

    fn set_timer(&mut self, timer: TimerId, after_ms: u64) {
        self.out.push(Action::SetTimer { timer, after_ms });
    }

    fn random_in(&mut self, (min, max): (u64, u64)) -> u64 {
        if max <= min {
            min
        } else {
            self.rng.random_range(min..max)
        }
    }

    /// A raw draw, for jitter.
    fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn cmd_is_mine(&self, id: CmdId) -> bool {
        id.node == self.cfg.id && id.incarnation == self.incarnation
    }

    /// Answers the client waiting for command `id`, if it is this node's and still
    /// waiting.
    fn finish_kv(&mut self, id: CmdId, result: OpResult) {
        if !self.cmd_is_mine(id) {
            return;
        }
        if let Some(token) = self.kv_waiting.remove(&id.seq) {
            self.requests.remove(&token);
            self.reply(token, result);
        }
    }

    // ---- read-only views ----

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn status(&self) -> Status {
        let (role, ballot, inflight) = match &self.role {
            Role::Follower => ("follower", self.log_promised, 0),
            Role::Candidate { ballot, .. } => ("candidate", *ballot, 0),
            Role::Leader {
                ballot, inflight, ..
            } => ("leader", *ballot, inflight.len()),
        };
        Status {
            id: self.cfg.id,
            role: role.to_string(),
            leader: self.leader,
            ballot,
            commit_index: self.applied,
            incarnation: self.incarnation,
            registers_chosen: self.reg_chosen.len(),
            queued: self.queue.len(),
            inflight_slots: inflight,
            pending_requests: self.requests.len(),
            conflicts: self.conflicts,
            campaigns: self.campaigns,
            snapshot_index: self.snapshot_index(),
        }
    }

    /// Registers this node has learned as chosen.
    pub fn registers(&self) -> &BTreeMap<RegKey, i64> {
        &self.reg_chosen
    }

    /// Log slots this node has learned as chosen (not necessarily contiguous) above
    /// its snapshot.
    pub fn chosen_log(&self) -> &BTreeMap<Slot, Batch> {
        &self.chosen
    }

    /// The last snapshot taken or installed, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Every slot up to this one is in the snapshot, not in the log (0: none).
    pub fn snapshot_index(&self) -> Slot {
        self.snapshot.as_ref().map_or(0, |s| s.index)
    }

    /// The KV state after applying every slot up to the commit index.
    pub fn kv(&self) -> &BTreeMap<String, i64> {
        &self.kv
    }

    pub fn commit_index(&self) -> Slot {
        self.applied
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    /// The register acceptor state for `key`, for tests and debugging.
    pub fn register_acceptor(&self, key: &str) -> Option<&RegisterAcceptor> {
        self.reg_acceptors.get(key)
    }

    /// The log acceptor's promise, for tests and debugging.
    pub fn log_promised(&self) -> Ballot {
        self.log_promised
    }
}

#[cfg(test)]
mod tests;
