//! The plan of a run (plan.json): everything needed to run it again. Written by
//! `chaos run` before the run starts; read back by `chaos replay`, `chaos report`, the
//! run index and the report. docs/plans.md describes the format.
//!
//! Version 1 plans (before the workload's keys and op mix were stored) still read:
//! [`Plan::parse`] fills in what version 1 implied.

use std::path::{Path, PathBuf};

use nemesis::{FaultKinds, ScheduledFault};
use serde::{Deserialize, Serialize};

/// The version of plan.json this code writes.
pub const PLAN_VERSION: u32 = 2;

/// Which clients run: contended register proposals, KV ops, or half each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Contended proposals on write-once registers (Basic Paxos).
    Register,
    /// Reads, writes and cas on a key-value store (Multi-Paxos).
    Kv,
    /// Half the clients on each.
    Both,
    /// Transactions that append to lists and read them (docs/transactions.md).
    ListAppend,
    /// Transactions that write and read registers (docs/transactions.md).
    RwRegister,
}

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::Register,
        Workload::Kv,
        Workload::Both,
        Workload::ListAppend,
        Workload::RwRegister,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Kv => "kv",
            Workload::Both => "both",
            Workload::ListAppend => "list-append",
            Workload::RwRegister => "rw-register",
        }
    }

    /// Whether client slot `slot` proposes on registers (else it runs KV ops or
    /// transactions).
    pub fn slot_is_register(self, slot: usize) -> bool {
        match self {
            Workload::Register => true,
            Workload::Both => slot % 2 == 0,
            _ => false,
        }
    }

    /// Whether any client runs single-key KV ops.
    pub fn has_kv(self) -> bool {
        matches!(self, Workload::Kv | Workload::Both)
    }

    /// Whether the clients run transactions.
    pub fn is_txn(self) -> bool {
        matches!(self, Workload::ListAppend | Workload::RwRegister)
    }
}

impl std::str::FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Workload, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown workload '{s}'; expected register, kv, both, list-append or rw-register"
                )
            })
    }
}

/// The relative weights of a KV client's ops. A KV client draws each op with
/// probability weight / total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpMix {
    pub read: u32,
    pub write: u32,
    pub cas: u32,
}

impl Default for OpMix {
    /// 40% reads, 40% writes, 20% cas.
    fn default() -> Self {
        OpMix {
            read: 4,
            write: 4,
            cas: 2,
        }
    }
}

/// How a transaction workload draws its transactions (docs/transactions.md), as
/// Elle's generator does: a length, each micro-op's key from a pool of active keys
/// (one per plan key), a key retired for a fresh one once it has taken
/// `max_writes_per_key` writes, so lists stay short however long the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnShape {
    /// Micro-ops per transaction, drawn uniformly from `min_len..=max_len`.
    pub min_len: u32,
    pub max_len: u32,
    /// How a micro-op picks its key among the active keys.
    pub key_dist: KeyDist,
    /// Writes (appends or register writes) a key takes before it is retired.
    pub max_writes_per_key: u32,
}

impl Default for TxnShape {
    /// 1 to 4 micro-ops, exponential keys, 32 writes a key (Elle's generator's
    /// distribution and bound; up to 4 micro-ops rather than its 2, so that more
    /// transactions span several keys).
    fn default() -> Self {
        TxnShape {
            min_len: 1,
            max_len: 4,
            key_dist: KeyDist::Exponential,
            max_writes_per_key: 32,
        }
    }
}

impl TxnShape {
    /// `1-4 micro-ops, exponential keys, 32 writes a key`.
    pub fn describe(&self) -> String {
        format!(
            "{}-{} micro-ops, {} keys, {} writes a key",
            self.min_len,
            self.max_len,
            self.key_dist.name(),
            self.max_writes_per_key
        )
    }
}

/// Which active key a transaction's micro-op touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyDist {
    /// Every active key as likely.
    Uniform,
    /// Each active key twice as likely as the one before it: a few hot keys where
    /// transactions meet, and a tail of cold ones.
    Exponential,
}

impl KeyDist {
    pub fn name(self) -> &'static str {
        match self {
            KeyDist::Uniform => "uniform",
            KeyDist::Exponential => "exponential",
        }
    }

    pub fn parse(s: &str) -> Option<KeyDist> {
        match s {
            "uniform" => Some(KeyDist::Uniform),
            "exponential" => Some(KeyDist::Exponential),
            _ => None,
        }
    }
}

/// What a KV client does next, drawn from the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvChoice {
    Read,
    Write,
    Cas,
}

impl OpMix {
    pub fn total(&self) -> u32 {
        self.read + self.write + self.cas
    }

    /// The op for a draw `r` in `0..total()`.
    pub fn choose(&self, r: u32) -> KvChoice {
        if r < self.read {
            KvChoice::Read
        } else if r < self.read + self.write {
            KvChoice::Write
        } else {
            KvChoice::Cas
        }
    }
}

/// What drives a plan: real processes (`chaos run`) or the deterministic simulation
/// (`chaos sim`), where every node's core runs in one process on virtual time.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Real,
    Sim,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Real => "real",
            Mode::Sim => "sim",
        }
    }

    /// The command that runs a plan of this mode.
    pub fn command(self) -> &'static str {
        match self {
            Mode::Real => "chaos run",
            Mode::Sim => "chaos sim",
        }
    }
}

/// Which consensus core the bundled node runs (`--core`, docs/cores.md): the
/// bundled Paxos core, or TiKV's Raft (`raft` on crates.io) behind the same KV store.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum CoreName {
    #[default]
    #[serde(rename = "paxos")]
    Paxos,
    #[serde(rename = "raft-rs")]
    RaftRs,
}

impl CoreName {
    pub const ALL: [CoreName; 2] = [CoreName::Paxos, CoreName::RaftRs];

    pub fn name(self) -> &'static str {
        match self {
            CoreName::Paxos => "paxos",
            CoreName::RaftRs => "raft-rs",
        }
    }

    pub fn parse(name: &str) -> Option<CoreName> {
        CoreName::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn is_paxos(&self) -> bool {
        *self == CoreName::Paxos
    }

    /// Why the bundled node's protocol rules cannot judge a real run of this core
    /// (`None`: they can, from the nodes' journals).
    pub fn unjudged_rules(self) -> Option<&'static str> {
        match self {
            CoreName::Paxos => None,
            CoreName::RaftRs => Some(
                "the Paxos rules do not apply to the raft-rs core; its own properties (docs/cores.md) are checked on every step by chaos sim --core raft-rs",
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    /// Real processes or the simulation; plans before the simulation are real.
    #[serde(default)]
    pub mode: Mode,
    pub name: String,
    pub seed: u64,
    pub nodes: usize,
    pub workload: Workload,
    pub time_limit_s: f64,
    pub concurrency: usize,
    /// Total ops/s over all clients; 0 = as fast as possible.
    pub rate: f64,
    /// How many KV keys (`kv_keys` names them).
    pub keys: usize,
    /// The KV keys the clients use and the final reads read. Version 1 plans have
    /// none stored: `k0`..`k{keys-1}` is what they used.
    #[serde(default)]
    pub kv_keys: Vec<String>,
    /// The KV clients' op mix.
    #[serde(default)]
    pub op_mix: OpMix,
    /// `None`: the bundled node (`chaos node ...` from the same executable).
    pub node_bin: Option<PathBuf>,
    pub node_args: Vec<String>,
    pub grace_s: f64,
    pub op_timeout_ms: u64,
    /// The fault kinds the schedule was generated from (`--nemesis`).
    pub nemesis: FaultKinds,
    pub nemesis_interval_s: f64,
    /// Generated from the seed's `nemesis` stream, or given with `--schedule`.
    pub schedule: Vec<ScheduledFault>,
    /// Whether `schedule` came from a `--schedule` file rather than the seed.
    #[serde(default)]
    pub explicit_schedule: bool,
    /// Keep the message trace: the bundled node's journals (the protocol's rules
    /// judge them) and messages.jsonl (every peer message and its fate). On unless
    /// `--no-trace-messages`; a plan.json without the field kept none.
    #[serde(default)]
    pub trace_messages: bool,
    /// How a client slot waits after a definite "unavailable" answer (no leader could
    /// take the op): a seeded, growing, bounded delay (`--backoff-ms`).
    #[serde(default)]
    pub backoff: Backoff,
    /// At most this many ops per client slot, after which the slot stops
    /// (`--ops-per-client`; `chaos shrink` sets it). `None`: until the time limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_per_client: Option<u64>,
    /// Which kind of system is tested, and so how the harness talks to its nodes
    /// (`--system`, `--node-cmd`). Stored as `protocol` in plan.json, the name it had
    /// when it only chose a protocol, so older plans load unchanged.
    #[serde(
        default,
        rename = "protocol",
        skip_serializing_if = "SystemKind::is_bundled"
    )]
    pub system: SystemKind,
    /// The system file of a declared system (`--system FILE`, docs/systems.md), kept
    /// whole so the run replays without the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<crate::system_file::Declared>,
    /// The consensus core of the bundled node (`--core`); its arguments are the
    /// plan's node arguments, recorded as given. Absent: the bundled Paxos core.
    #[serde(default, skip_serializing_if = "CoreName::is_paxos")]
    pub core: CoreName,
    /// Whether the seed also drew the fault kinds, the fault interval, the clients,
    /// the keys and the op mix (`--swarm`, docs/simulation.md); the drawn values are
    /// the plan's own fields, so it replays as stored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub swarm: bool,
    /// What a transaction workload's history is judged against (docs/transactions.md;
    /// unset: strict serializable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_model: Option<checker::txn::Model>,
    /// How a transaction workload draws its transactions; absent for the other
    /// workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_shape: Option<TxnShape>,
    /// The command line that runs one Maelstrom node (split into words as a shell
    /// would, run without one; docs/maelstrom.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_cmd: Option<String>,
    /// Where network faults are made: the per-link proxy, or the kernel (each node in
    /// a network namespace, nftables rules; `--net netns`, docs/netns.md).
    #[serde(default, skip_serializing_if = "Net::is_proxy")]
    pub net: Net,
    /// The workload as a script: the slots invoke exactly these ops (in order per
    /// slot) instead of drawing them from the seed. `chaos shrink` writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Vec<ScriptedOp>>,
    /// Where `chaos shrink` made this plan from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrunk_from: Option<ShrunkFrom>,
}

impl ShrunkFrom {
    /// "faults 9 -> 1, ops 61,234 -> 37, nodes 5 -> 3", given the shrunk run's sizes.
    pub fn sizes(&self, faults: usize, ops: u64, nodes: usize) -> String {
        format!(
            "faults {} -> {faults}, ops {} -> {}, nodes {} -> {nodes}",
            self.faults,
            thousands(self.ops),
            thousands(ops),
            self.nodes
        )
    }

    /// What else a reader should know: not minimal, how often it reproduces. `failed`
    /// is whether this run of the plan failed: a run that passed never says "kept
    /// failing".
    pub fn caveats(&self, failed: bool) -> Vec<String> {
        let mut out = vec![if failed {
            format!(
                "kept failing: {}; {} candidate plans tried",
                self.target, self.candidates
            )
        } else {
            format!(
                "this run did NOT fail ({} was the target); {} candidate plans tried; the run it was shrunk from still shows the failure",
                self.target, self.candidates
            )
        }];
        if !self.minimal {
            out.push(
                "not minimal: a smaller failing plan may exist (the search ended early, or the smallest plan it found did not fail again)"
                    .into(),
            );
        }
        if let Some((k, n)) = self.reproduced {
            out.push(format!("reproduced {k} of {n} confirming runs"));
        }
        out
    }
}

/// 61234 -> "61,234".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The kind of system under test, which decides how the harness talks to its nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SystemKind {
    /// The bundled node's client and peer protocols over TCP (docs/protocol.md).
    #[default]
    Bundled,
    /// Maelstrom's node protocol: JSON lines on each node's stdin and stdout.
    Maelstrom,
    /// etcd members, through etcd's v3 JSON gateway (`--system etcd`).
    Etcd,
    /// A system declared in a file (`--system FILE`, docs/systems.md): its nodes
    /// started as the file says, in network namespaces, its clients programs of the
    /// file's speaking docs/clients.md.
    Declared,
}

/// What each kind of system implies, in one place: a new kind is a variant here, and
/// the compiler points at these matches, the launcher `harness::engine::execute`
/// picks, and `--system` (chaos/src/flags.rs).
impl SystemKind {
    pub fn is_bundled(&self) -> bool {
        *self == SystemKind::Bundled
    }

    /// Its `--system` name.
    pub fn name(&self) -> &'static str {
        match self {
            SystemKind::Bundled => "bundled",
            SystemKind::Maelstrom => "maelstrom",
            SystemKind::Etcd => "etcd",
            SystemKind::Declared => "file",
        }
    }

    /// The network its runs default to (etcd members advertise one address to all
    /// peers, so no proxy can sit on a link).
    pub fn default_net(&self) -> Net {
        match self {
            SystemKind::Bundled | SystemKind::Maelstrom => Net::Proxy,
            SystemKind::Etcd | SystemKind::Declared => Net::Netns,
        }
    }

    /// The workload its runs default to: only the bundled node has registers.
    pub fn default_workload(&self) -> Workload {
        match self {
            SystemKind::Bundled => Workload::Both,
            SystemKind::Maelstrom | SystemKind::Etcd | SystemKind::Declared => Workload::Kv,
        }
    }

    /// Why the protocol's rules cannot judge its runs from their files, if they
    /// cannot whatever the run kept.
    pub fn unjudged_rules(&self) -> Option<&'static str> {
        match self {
            SystemKind::Bundled => None,
            SystemKind::Maelstrom => Some(
                "the Maelstrom nodes kept no journal, and the rules cannot read another protocol's messages (the bundled node keeps one: `chaos node --maelstrom --journal journal.jsonl`)",
            ),
            SystemKind::Etcd => {
                Some("etcd speaks its own protocol; the rules judge the bundled node's journals")
            }
            SystemKind::Declared => Some(
                "a system declared in a file keeps no journal of the bundled node's; the rules judge only those",
            ),
        }
    }

    /// Whether its nodes keep the learned logs of docs/protocol.md.
    pub fn keeps_learned_logs(&self) -> bool {
        match self {
            SystemKind::Bundled => true,
            SystemKind::Maelstrom | SystemKind::Etcd | SystemKind::Declared => false,
        }
    }
}

/// Where a real run's network faults are made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Net {
    /// A proxy on every directed link, which the nodes dial (every link fault).
    #[default]
    Proxy,
    /// Every node in a network namespace of its own; partitions and loss are
    /// nftables rules (no delay, duplication or reordering).
    Netns,
}

impl Net {
    pub fn is_proxy(&self) -> bool {
        *self == Net::Proxy
    }

    pub fn name(self) -> &'static str {
        match self {
            Net::Proxy => "proxy",
            Net::Netns => "netns",
        }
    }
}

/// One workload operation: what a client slot asks of the system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum WorkloadOp {
    Propose {
        key: String,
        value: i64,
    },
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
    /// A transaction: micro-ops over several keys (reads with a null value).
    Txn {
        txn: Vec<checker::history::TxnMop>,
    },
}

impl WorkloadOp {
    /// The op's name as the history writes it (`f`).
    pub fn name(&self) -> &'static str {
        match self.call() {
            Some(call) => call.f().name(),
            None => "txn",
        }
    }

    /// The op's key (a transaction's first).
    pub fn key(&self) -> &str {
        match self {
            WorkloadOp::Propose { key, .. }
            | WorkloadOp::Read { key }
            | WorkloadOp::Write { key, .. }
            | WorkloadOp::Cas { key, .. } => key,
            WorkloadOp::Txn { txn } => txn.first().map_or("", |m| m.key()),
        }
    }

    /// What a single-key op asks for, as the history records it (`None` for a
    /// transaction, which the history records as its micro-ops).
    pub fn call(&self) -> Option<checker::history::Call> {
        use checker::history::Call;
        Some(match *self {
            WorkloadOp::Propose { value, .. } => Call::Propose { value },
            WorkloadOp::Read { .. } => Call::Read,
            WorkloadOp::Write { value, .. } => Call::Write { value },
            WorkloadOp::Cas { from, to, .. } => Call::Cas { from, to },
            WorkloadOp::Txn { .. } => return None,
        })
    }

    /// Whether the op only reads (a read, or a transaction of reads): one that did
    /// not succeed changed nothing.
    pub fn reads_only(&self) -> bool {
        match self {
            WorkloadOp::Read { .. } => true,
            WorkloadOp::Txn { txn } => txn
                .iter()
                .all(|m| matches!(m, checker::history::TxnMop::Read { .. })),
            _ => false,
        }
    }
}

/// One op of a scripted workload: client slot `slot` invokes `op`, not before `at_us`
/// microseconds after the workload starts (and after the slot's previous op ended).
/// `chaos shrink` writes scripts from the ops a simulated run invoked, so that ops can
/// be taken away one by one without moving the others in time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptedOp {
    pub slot: usize,
    pub at_us: u64,
    #[serde(flatten)]
    pub op: WorkloadOp,
}

/// A client slot's wait after a definite "unavailable" answer: the n-th in a row
/// waits a delay drawn uniformly from [d/2, d], d = min(max, base x 2^(n-1)), from the
/// slot's own seeded stream (so the ops it draws are the same with or without it).
/// Any other answer starts the count again. `base_ms` 0: no wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 20,
            max_ms: 1_000,
        }
    }
}

impl std::fmt::Display for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{}", self.base_ms, self.max_ms)
    }
}

impl std::str::FromStr for Backoff {
    type Err = String;
    /// `BASE` or `BASE,MAX` in milliseconds.
    fn from_str(s: &str) -> Result<Backoff, String> {
        let num = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("{t:?} is not a number of milliseconds"))
        };
        let b = match s.split_once(',') {
            None => Backoff {
                base_ms: num(s)?,
                max_ms: Backoff::default().max_ms.max(num(s)?),
            },
            Some((a, b)) => Backoff {
                base_ms: num(a)?,
                max_ms: num(b)?,
            },
        };
        if b.max_ms < b.base_ms {
            return Err(format!(
                "the longest wait {} ms is below the first {} ms",
                b.max_ms, b.base_ms
            ));
        }
        if b.max_ms > 60_000 {
            return Err("the longest wait is at most 60000 ms".into());
        }
        Ok(b)
    }
}

impl Backoff {
    /// The upper bound of the `streak`-th wait in a row (from 1), before jitter.
    pub fn ceiling_ms(&self, streak: u32) -> u64 {
        let doublings = streak.saturating_sub(1).min(32);
        self.base_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms)
    }
}

/// A shrunk plan's origin and how far it shrank.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShrunkFrom {
    /// The failing run it was shrunk from.
    pub run_dir: String,
    /// Faults (fault starts), client ops and nodes of that run.
    pub faults: usize,
    pub ops: u64,
    pub nodes: usize,
    /// What every candidate had to keep failing: a check, and for linearizability
    /// and the protocol's rules the anomaly kind (`liveness`: the liveness check).
    pub target: String,
    /// Candidate plans tried.
    pub candidates: u64,
    /// Whether the search ran to its end (false: the budget ran out first, and a
    /// smaller failing plan may exist).
    pub minimal: bool,
    /// Real runs: how many of the confirming runs of this plan failed the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reproduced: Option<(u32, u32)>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("plan.json is not a plan: {0}")]
    Json(#[from] serde_json::Error),
    #[error("plan.json has version {0}; this chaos reads up to {PLAN_VERSION}")]
    TooNew(u32),
    #[error("plan.json is inconsistent: {0}")]
    Inconsistent(String),
}

/// The KV key names of a plan with `keys` keys and none stored.
pub fn default_kv_keys(keys: usize) -> Vec<String> {
    (0..keys).map(|k| format!("k{k}")).collect()
}

impl Plan {
    /// Parses plan.json text, filling in what a version 1 plan implied, and checks
    /// that it hangs together.
    pub fn parse(text: &str) -> Result<Plan, PlanError> {
        let plan: Plan = serde_json::from_str(text)?;
        plan.normalised()
    }

    /// Reads `<dir>/plan.json`.
    pub fn read(dir: &Path) -> Result<Plan, PlanError> {
        let path = dir.join("plan.json");
        let text = std::fs::read_to_string(&path).map_err(|source| PlanError::Read {
            path: path.clone(),
            source,
        })?;
        Plan::parse(&text)
    }

    /// The system, its network and the workload fit together (etcd needs the kernel
    /// network, a Maelstrom node has no addresses, and so on).
    fn system_fits(&self) -> Result<(), PlanError> {
        let inconsistent = |m: String| Err(PlanError::Inconsistent(m));
        if let (Some(d), Mode::Sim) = (&self.declared, self.mode) {
            return inconsistent(format!(
                "{} is declared in a file and runs as real processes: chaos sim simulates only the bundled node's core (use chaos run)",
                d.file.name
            ));
        }
        if self.net == Net::Netns {
            if self.mode == Mode::Sim {
                return inconsistent(
                    "chaos sim has its own network: --net netns is for real runs".into(),
                );
            }
            if self.system == SystemKind::Maelstrom {
                return inconsistent("Maelstrom nodes have no addresses: the stdio router is their network, not --net netns".into());
            }
            let proxy_only = self.nemesis.needing_proxy();
            if !proxy_only.is_empty() {
                return inconsistent(format!(
                    "--net netns makes {}; {} need {} (use --net proxy, or lossy-links)",
                    nemesis::netns::OFFERS,
                    proxy_only.join(" and "),
                    nemesis::netns::LACKS
                ));
            }
            if self.schedule.iter().any(|f| match &f.fault {
                nemesis::Fault::Links(l) => !nemesis::netns::can_make(l),
                _ => false,
            }) {
                return inconsistent(format!(
                    "the schedule has link faults --net netns cannot make: {}",
                    nemesis::netns::LACKS
                ));
            }
        }
        if self.workload.is_txn() && self.system == SystemKind::Etcd {
            return inconsistent(format!(
                "--workload {} is not served by the built-in etcd client: declare etcd in a file whose client speaks txn (docs/clients.md)",
                self.workload.name(),
            ));
        }
        if self.system == SystemKind::Etcd {
            // A plan of the built-in etcd client, which a system file replaced: it
            // still reads (its run renders and reports), but no longer runs.
            if self.net != Net::Netns {
                return inconsistent("etcd members advertise one address to all peers: --system etcd needs --net netns".into());
            }
            if self.workload != Workload::Kv {
                return inconsistent("etcd runs the kv workload: --workload kv".into());
            }
        }
        if (self.system == SystemKind::Declared) != self.declared.is_some() {
            return inconsistent(
                "a declared system's plan holds its system file, and only such a plan does".into(),
            );
        }
        if let Some(d) = &self.declared {
            use crate::system_file::WorkloadName;
            if self.net != Net::Netns {
                return inconsistent(format!(
                    "{}'s nodes each have an address of their own, which they tell their peers: it needs --net netns",
                    d.file.name
                ));
            }
            if self.node_bin.is_some() || self.node_cmd.is_some() {
                return inconsistent("a declared system's file says how to run its nodes: no --node-bin or --node-cmd (--node-arg adds words to its command)".into());
            }
            let wanted: &[WorkloadName] = match self.workload {
                Workload::Kv => &[WorkloadName::Kv],
                Workload::Register => &[WorkloadName::Register],
                Workload::Both => &[WorkloadName::Kv, WorkloadName::Register],
                Workload::ListAppend => &[WorkloadName::ListAppend],
                Workload::RwRegister => &[WorkloadName::RwRegister],
            };
            if let Some(w) = wanted.iter().find(|w| !d.file.serves(**w)) {
                let served: Vec<&str> = d.file.workloads.iter().map(|w| w.name()).collect();
                return inconsistent(format!(
                    "{}'s client serves {}, not {}: --workload {}",
                    d.file.name,
                    served.join(" and "),
                    w.name(),
                    served.join(" or --workload ")
                ));
            }
        }
        if self.system == SystemKind::Maelstrom {
            if self.node_cmd.is_none() {
                return inconsistent("a maelstrom plan needs node_cmd (--node-cmd)".into());
            }
            if !matches!(
                self.workload,
                Workload::Kv | Workload::ListAppend | Workload::RwRegister
            ) {
                return inconsistent(
                    "a maelstrom plan runs lin-kv (--workload kv), txn-list-append (--workload list-append) or txn-rw-register (--workload rw-register)".into(),
                );
            }
            if self.mode == Mode::Sim {
                return inconsistent(
                    "chaos sim runs the bundled core, not a maelstrom node".into(),
                );
            }
        }
        Ok(())
    }

    /// Fills in version 1 defaults and checks the invariants every reader relies on.
    pub fn normalised(mut self) -> Result<Plan, PlanError> {
        if self.version > PLAN_VERSION {
            return Err(PlanError::TooNew(self.version));
        }
        if self.kv_keys.is_empty() {
            self.kv_keys = default_kv_keys(self.keys);
        }
        let bad = |m: String| Err(PlanError::Inconsistent(m));
        if self.kv_keys.len() != self.keys {
            return bad(format!(
                "keys is {} but kv_keys names {}",
                self.keys,
                self.kv_keys.len()
            ));
        }
        // A transaction plan written before shapes were stored drew the default's.
        if self.workload.is_txn() {
            self.txn_shape.get_or_insert_with(TxnShape::default);
        } else if self.txn_shape.is_some() {
            return bad(format!(
                "txn_shape shapes transactions, but the workload is {}",
                self.workload.name()
            ));
        }
        crate::ranges::check_plan(&self).map_err(PlanError::Inconsistent)?;
        if self.workload.has_kv() && self.op_mix.total() == 0 {
            return bad("op_mix gives every op weight 0".into());
        }
        if self.mode == Mode::Real && self.nemesis.needs_simulation() {
            return bad(format!(
                "nemesis {} includes faults only chaos sim makes",
                self.nemesis.describe()
            ));
        }
        if self.mode == Mode::Sim && self.node_bin.is_some() {
            return bad("a simulated run runs the bundled node's core, not a node_bin".into());
        }
        self.system_fits()?;
        if let Some(op) = self
            .script
            .iter()
            .flatten()
            .find(|o| o.slot >= self.concurrency)
        {
            return bad(format!(
                "a scripted op is for client slot {}, but there are {} slots",
                op.slot, self.concurrency
            ));
        }
        nemesis::check_schedule(
            &self.schedule,
            self.nodes,
            (self.time_limit_s * 1e3) as u64,
            self.explicit_schedule,
        )
        .map_err(|e| PlanError::Inconsistent(format!("schedule: {e}")))?;
        Ok(self)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan always serialises")
    }

    /// The faults the schedule starts (undoing steps are not counted): the unit every
    /// output counts faults in.
    pub fn scheduled_faults(&self) -> usize {
        self.schedule
            .iter()
            .filter(|f| f.fault.starts_fault())
            .count()
    }

    /// What the schedule left out and why, for the header and the run's notes: kinds
    /// this cluster size cannot have, and a generated schedule with no fault at all.
    pub fn schedule_notes(&self) -> Vec<String> {
        if self.explicit_schedule {
            return Vec::new();
        }
        let mut notes = self.nemesis.unusable(self.nodes);
        if self.scheduled_faults() == 0 && self.nemesis != nemesis::FaultKinds::default() {
            let slots = ((self.time_limit_s / self.nemesis_interval_s).floor() as i64 - 1).max(0);
            notes.push(if notes.len() == self.nemesis.names().len() {
                format!(
                    "no fault was scheduled: no kind in --nemesis {} fits {} nodes",
                    self.nemesis.describe(),
                    self.nodes
                )
            } else {
                format!(
                    "no fault was scheduled: a {} s run has time-limit / interval - 1 = {slots} slots of {} s",
                    self.time_limit_s, self.nemesis_interval_s
                )
            });
        }
        notes
    }

    /// The network's short name: `sim` for a simulated run (whatever `net` says, no
    /// proxy or namespace exists), else the backend's.
    pub fn network_name(&self) -> &'static str {
        match self.mode {
            Mode::Sim => "sim",
            Mode::Real => self.net.name(),
        }
    }

    /// The network in words, for the report.
    pub fn network_words(&self) -> &'static str {
        match (self.mode, self.net) {
            (Mode::Sim, _) => {
                "simulated: every message passes through the simulation's seeded network (cuts, loss, delay, duplication, reordering)"
            }
            (Mode::Real, Net::Proxy) => "a proxy on every link",
            (Mode::Real, Net::Netns) => "a network namespace per node; nftables rules",
        }
    }

    /// The faults in words, for headers: "nemesis partition,kill every 3 s (9 faults
    /// scheduled)", or "an explicit schedule of 2 faults" when the schedule was given.
    pub fn faults_words(&self) -> String {
        let faults = checker::report::count(self.scheduled_faults(), "fault");
        if self.explicit_schedule {
            format!("an explicit schedule of {faults}")
        } else if self.swarm {
            let ops = match self.txn_shape {
                Some(shape) => format!("transactions of {}", shape.describe()),
                None => format!(
                    "op mix {}/{}/{}",
                    self.op_mix.read, self.op_mix.write, self.op_mix.cas
                ),
            };
            format!(
                "swarm draw: nemesis {} every {} s ({faults} scheduled), {} clients, {} keys, {ops}",
                self.nemesis.describe(),
                self.nemesis_interval_s,
                self.concurrency,
                self.keys,
            )
        } else {
            format!(
                "nemesis {} every {} s ({faults} scheduled)",
                self.nemesis.describe(),
                self.nemesis_interval_s
            )
        }
    }

    /// Whether flags alone can make this plan again: not a shrunk plan, one whose ops
    /// are scripted or one with an explicit schedule, which rerun from their plan.json
    /// (`--plan`).
    pub fn made_by_flags(&self) -> bool {
        self.script.is_none() && self.shrunk_from.is_none() && !self.explicit_schedule
    }

    /// The command that runs this plan again from scratch: the flags that make it, or
    /// `--plan` with `plan_json` (made absolute, so that it works from any directory)
    /// when flags cannot. `None` when flags cannot and there is no plan.json.
    pub fn reproduce(&self, plan_json: Option<&std::path::Path>) -> Option<String> {
        if self.made_by_flags() {
            return Some(self.command_line());
        }
        let path = plan_json?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Some(format!(
            "{} --plan {}",
            self.mode.command(),
            shell_quote(&path.display().to_string())
        ))
    }

    /// The `chaos run` (or `chaos sim`) command line of the flags that make this plan
    /// ([`Plan::made_by_flags`]; else see [`Plan::reproduce`]).
    pub fn command_line(&self) -> String {
        let mut parts = vec![
            self.mode.command().to_string(),
            format!("--seed {}", self.seed),
            format!("--nodes {}", self.nodes),
            format!("--workload {}", self.workload.name()),
            format!("--time-limit {}", self.time_limit_s),
            format!("--concurrency {}", self.concurrency),
            format!("--rate {}", self.rate),
            format!("--keys {}", self.keys),
            format!("--grace {}", self.grace_s),
            format!("--op-timeout-ms {}", self.op_timeout_ms),
            format!("--name {}", shell_quote(&self.name)),
            format!("--nemesis {}", self.nemesis.describe()),
            format!("--nemesis-interval {}", self.nemesis_interval_s),
        ];
        if let Some(bin) = &self.node_bin {
            parts.push(format!(
                "--node-bin {}",
                shell_quote(&bin.display().to_string())
            ));
        }
        if !self.core.is_paxos() {
            parts.push(format!("--core {}", self.core.name()));
        }
        if self.swarm {
            // The seed draws the keys and the op mix again, and the rest as given.
            parts.push("--swarm".into());
        }
        if let Some(model) = self.consistency_model {
            parts.push(format!("--consistency-model {model}"));
        }
        if let Some(shape) = self.txn_shape {
            let default = TxnShape::default();
            if (shape.min_len, shape.max_len) != (default.min_len, default.max_len) {
                parts.push(format!("--txn-length {}..{}", shape.min_len, shape.max_len));
            }
            if shape.key_dist != default.key_dist {
                parts.push(format!("--key-dist {}", shape.key_dist.name()));
            }
            if shape.max_writes_per_key != default.max_writes_per_key {
                parts.push(format!("--max-writes-per-key {}", shape.max_writes_per_key));
            }
        }
        for arg in &self.node_args {
            parts.push(format!("--node-arg={}", shell_quote(arg)));
        }
        if !self.trace_messages && self.mode == Mode::Real {
            parts.push("--no-trace-messages".into());
        }
        if let Some(n) = self.ops_per_client {
            parts.push(format!("--ops-per-client {n}"));
        }
        if self.backoff != Backoff::default() {
            parts.push(format!("--backoff-ms {}", self.backoff));
        }
        if let Some(cmd) = &self.node_cmd {
            parts.push(format!(
                "--system maelstrom --node-cmd {}",
                shell_quote(cmd)
            ));
        }
        if self.net == Net::Netns {
            parts.push("--net netns".into());
        }
        if let Some(d) = &self.declared {
            let system = d
                .bundled_as
                .clone()
                .unwrap_or_else(|| shell_quote(&d.path.display().to_string()));
            parts.push(format!("--system {system}"));
        }
        parts.join(" ")
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Plan {
        let kinds: FaultKinds = "partition,kill".parse().unwrap();
        let schedule = nemesis::generate(
            3,
            &mut nemesis::substream(7, "nemesis"),
            kinds,
            1_000,
            5_000,
        );
        Plan {
            version: PLAN_VERSION,
            mode: Mode::Real,
            name: "t".into(),
            seed: 7,
            nodes: 3,
            workload: Workload::Both,
            time_limit_s: 5.0,
            concurrency: 6,
            rate: 0.0,
            keys: 2,
            kv_keys: vec!["a".into(), "b".into()],
            op_mix: OpMix {
                read: 1,
                write: 2,
                cas: 3,
            },
            node_bin: Some("/bin/x y".into()),
            node_args: vec!["--bug=stale-read".into()],
            grace_s: 10.0,
            op_timeout_ms: 2_500,
            nemesis: kinds,
            nemesis_interval_s: 1.0,
            schedule,
            explicit_schedule: false,
            trace_messages: true,
            ops_per_client: None,
            backoff: Backoff::default(),
            system: SystemKind::Bundled,
            declared: None,
            core: CoreName::Paxos,
            swarm: false,
            consistency_model: None,
            txn_shape: None,
            node_cmd: None,
            net: Net::Proxy,
            script: None,
            shrunk_from: None,
        }
    }

    #[test]
    fn a_transaction_plan_has_a_shape_and_no_other_plan_has_one() {
        // A list-append plan.json from before shapes were stored drew the default's.
        let mut plan = sample();
        plan.workload = Workload::ListAppend;
        let plan = plan.normalised().unwrap();
        assert_eq!(plan.txn_shape, Some(TxnShape::default()));
        assert!(!plan.command_line().contains("--txn-length"));
        let shaped = Plan {
            txn_shape: Some(TxnShape {
                min_len: 2,
                max_len: 8,
                key_dist: KeyDist::Uniform,
                max_writes_per_key: 4,
            }),
            ..plan
        };
        let line = shaped.command_line();
        assert!(
            line.contains("--txn-length 2..8 --key-dist uniform --max-writes-per-key 4"),
            "{line}"
        );
        let back: Plan = serde_json::from_str(&shaped.to_json()).unwrap();
        assert_eq!(back.txn_shape, shaped.txn_shape);
        // A KV plan with a shape is refused, as is an empty or too long range.
        let kv = Plan {
            workload: Workload::Kv,
            ..shaped.clone()
        };
        assert!(
            kv.normalised()
                .unwrap_err()
                .to_string()
                .contains("txn_shape")
        );
        for (min, max) in [(3, 2), (0, 2), (1, 65)] {
            let bad = Plan {
                txn_shape: Some(TxnShape {
                    min_len: min,
                    max_len: max,
                    ..TxnShape::default()
                }),
                ..shaped.clone()
            };
            assert!(bad.normalised().is_err(), "{min}..{max}");
        }
    }

    #[test]
    fn shrink_sizes_read_at_a_glance() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(61_234), "61,234");
        assert_eq!(thousands(1_000_000), "1,000,000");
        let from = ShrunkFrom {
            run_dir: "runs/x".into(),
            faults: 9,
            ops: 61_234,
            nodes: 5,
            target: "linearizability".into(),
            candidates: 40,
            minimal: false,
            reproduced: Some((4, 5)),
        };
        assert_eq!(
            from.sizes(1, 37, 3),
            "faults 9 -> 1, ops 61,234 -> 37, nodes 5 -> 3"
        );
        let caveats = from.caveats(true).join("; ");
        assert!(
            caveats.contains("not minimal") && caveats.contains("4 of 5"),
            "{caveats}"
        );
        assert!(caveats.contains("kept failing"));
        let passed = from.caveats(false).join("; ");
        assert!(
            !passed.contains("kept failing") && passed.contains("did NOT fail"),
            "{passed}"
        );
    }

    #[test]
    fn a_plan_round_trips_through_json() {
        let plan = sample();
        assert!(!plan.schedule.is_empty());
        let back = Plan::parse(&plan.to_json()).unwrap();
        assert_eq!(back, plan);
        assert!(plan.command_line().contains("--node-bin '/bin/x y'"));
    }

    #[test]
    fn a_version_1_plan_reads_with_its_implied_keys_and_mix() {
        let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        let obj = v.as_object_mut().unwrap();
        obj.remove("kv_keys");
        obj.remove("op_mix");
        obj.insert("version".into(), 1.into());
        let plan = Plan::parse(&v.to_string()).unwrap();
        assert_eq!(plan.kv_keys, vec!["k0", "k1"]);
        assert_eq!(plan.op_mix, OpMix::default());
    }

    #[test]
    fn inconsistent_or_newer_plans_are_refused() {
        let mut p = sample();
        p.version = PLAN_VERSION + 1;
        assert!(matches!(
            Plan::parse(&p.to_json()),
            Err(PlanError::TooNew(_))
        ));
        let mut p = sample();
        p.schedule[0].targets = vec![9];
        assert!(matches!(
            Plan::parse(&p.to_json()),
            Err(PlanError::Inconsistent(_))
        ));
        let mut p = sample();
        p.keys = 3;
        assert!(Plan::parse(&p.to_json()).is_err());
    }

    #[test]
    fn the_mix_draws_each_op_by_weight() {
        let mix = OpMix::default();
        let drawn: Vec<KvChoice> = (0..mix.total()).map(|r| mix.choose(r)).collect();
        assert_eq!(drawn.iter().filter(|c| **c == KvChoice::Read).count(), 4);
        assert_eq!(drawn.iter().filter(|c| **c == KvChoice::Write).count(), 4);
        assert_eq!(drawn.iter().filter(|c| **c == KvChoice::Cas).count(), 2);
    }
}
