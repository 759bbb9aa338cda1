//! The command lines' flags, and turning them into a [`PlanSpec`]: the flags only
//! name choices; what they mean, and whether they are right, the spec decides.

use std::path::{Path, PathBuf};

use nemesis::{FaultKinds, ScheduledFault};
use results::plan::Protocol;
use results::{Mode, Plan, Workload};

pub use crate::spec::{NETNS_NEMESIS, PlanSpec, UsageError, default_nemesis};

/// `--protocol`: how the harness talks to the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolFlag {
    Bundled,
    Maelstrom,
}

/// `--net`: where network faults are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NetFlag {
    Proxy,
    Netns,
}

/// `--system`: the system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SystemFlag {
    Bundled,
    Etcd,
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    s.parse()
}

#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// register: contended proposals; kv: read/write/cas; both: half the clients each
    /// [default: both; kv for Maelstrom nodes, which serve lin-kv].
    #[arg(long, value_parser = parse_workload)]
    pub workload: Option<Workload>,
    /// Seconds of workload (and faults) before the final phase.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub time_limit: f64,
    /// Number of concurrent clients [default: 2 per node].
    #[arg(long, value_name = "C")]
    pub concurrency: Option<usize>,
    /// Total ops/s over all clients; 0 = as fast as possible.
    #[arg(long, value_name = "R", default_value_t = 0.0)]
    pub rate: f64,
    /// Number of KV keys.
    #[arg(long, value_name = "K", default_value_t = 5)]
    pub keys: usize,
    /// Seed of every random choice [default: random, printed and stored].
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Node executable speaking the node protocols [default: this executable's
    /// bundled node, run as `chaos node ...`].
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,
    /// Extra argument for every node (repeatable), e.g. --node-arg=--bug=stale-read.
    #[arg(long = "node-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Root directory of run directories.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub results: PathBuf,
    /// Name of this test; runs are grouped under <DIR>/<name>/.
    #[arg(long, default_value = "chaos")]
    pub name: String,
    /// Seconds the cluster has to answer again after the final heal.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub grace: f64,
    /// Client-side timeout of one op, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2_500)]
    pub op_timeout_ms: u64,
    /// Fault kinds for the seeded schedule, a comma-separated list: partition, kill,
    /// pause (a third of kills and pauses aim at the leader, a quarter of partitions
    /// cut it off in a minority), links (loss, delay, duplication, reordering),
    /// flaky-links (1-3% loss and duplication), lossy-links (5-30% loss alone, what
    /// --net netns can make), power (every node killed at once),
    /// clock (a node's timers run fast or slow: a restart with --clock-rate for real
    /// processes), leader-kill, leader-isolate, leader-pause (past an election
    /// timeout), rolling-restart, swizzle (links cut one by one, restored in another
    /// order), corrupt (chaos sim only); or all (every kind but power and corrupt); or
    /// none [default: partition,kill,pause,flaky-links; with --net netns:
    /// partition,kill,pause,lossy-links; chaos sim: partition,kill,pause,links,power,clock].
    #[arg(long, value_name = "LIST", value_parser = parse_kinds)]
    pub nemesis: Option<FaultKinds>,
    /// Seconds per fault slot: a fault starts at the beginning of its slot and is undone
    /// after 40-70% of it. A run has time-limit / S - 1 slots [default: 3, or a fifth
    /// of a run shorter than 15 s, so every run has at least 4 faults; a 30 s run 9].
    #[arg(long, value_name = "S")]
    pub nemesis_interval: Option<f64>,
    /// A JSON file with an explicit fault schedule instead of a generated one:
    /// [{"at_ms", "fault": {"kind": ...}, "targets": [ids]}], as plan.json stores it.
    #[arg(long, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
    /// Keep no message trace: by default the bundled node journals every step the
    /// protocol's rules read (nodes/nI/journal.jsonl), which the `protocol` check
    /// judges, and the proxies write messages.jsonl (every peer message with its
    /// time, link, type, fate and delay). The trace costs a few percent of
    /// throughput and about 1.3 KB of disk per op (BENCHMARKS.md). `chaos sim`
    /// always judges the rules on every step and writes neither file.
    #[arg(long)]
    pub no_trace_messages: bool,
    /// The default; accepted so that older reproduce commands still run.
    #[arg(long, hide = true, conflicts_with = "no_trace_messages")]
    pub trace_messages: bool,
    /// How to talk to the nodes: bundled (the bundled node's TCP protocols) or
    /// maelstrom (JSON lines over stdio; implied by --node-cmd).
    #[arg(long, value_name = "NAME", value_enum)]
    pub protocol: Option<ProtocolFlag>,
    /// Where network faults are made: proxy (a proxy on every directed link: every
    /// link fault) or netns (each node in a network namespace of its own with an
    /// address on a bridge; partitions of every shape and link loss are nftables
    /// rules; no delay, duplication or reordering, as this kernel has no sch_netem;
    /// needs root or an unprivileged user namespace, and nftables) [default: proxy;
    /// netns for --system etcd]. Nemesis default with netns:
    /// partition,kill,pause,lossy-links.
    #[arg(long, value_name = "NAME", value_enum)]
    pub net: Option<NetFlag>,
    /// The system under test: bundled (the bundled node) or etcd (etcd members from
    /// the `etcd` on PATH, through its v3 JSON gateway; implies --net netns and
    /// --workload kv) [default: bundled].
    #[arg(long, value_name = "NAME", value_enum)]
    pub system: Option<SystemFlag>,
    /// Test a node that speaks Maelstrom's protocol (JSON lines on stdin and stdout):
    /// the command line that runs one node, split into words as a shell splits them
    /// (quotes; leading NAME=VALUE words set environment variables) and run without a
    /// shell, so that it dies with the harness (for pipes or `&&`, name a script that
    /// ends with `exec`). The harness routes its messages through the fault model and
    /// emulates the lin-kv, seq-kv and lww-kv services (docs/maelstrom.md).
    #[arg(long, value_name = "CMD")]
    pub node_cmd: Option<String>,
    /// After a definite "unavailable" answer (no leader could take the op; Maelstrom's
    /// temporarily-unavailable) a client slot waits before its next op: the n-th such
    /// answer in a row waits a seeded delay in [d/2, d], d = min(MAX, BASE x 2^(n-1));
    /// 0 waits not at all [default: 20,1000].
    #[arg(long, value_name = "BASE[,MAX]")]
    pub backoff_ms: Option<results::plan::Backoff>,
    /// Each client slot stops after this many ops (the time limit still ends the run).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub ops_per_client: Option<u64>,
    /// Run this plan.json (from any run, real or simulated, or `chaos shrink`) instead
    /// of one made from the flags; `chaos run` runs it with real processes, `chaos sim`
    /// in simulation. Other plan flags are refused beside it.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// No progress bar; a plain status line every few seconds instead.
    #[arg(long)]
    pub no_progress: bool,
    /// Print result.json on stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
}

/// A `--nemesis` list.
pub fn parse_kinds(s: &str) -> Result<FaultKinds, String> {
    s.parse().map_err(|e: nemesis::KindsError| e.to_string())
}

/// `chaos sim`: the run flags (time in virtual seconds) and the simulation's own.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Run every seed in A..B (B excluded) and print one line per failing seed with
    /// the command that reproduces it; failing seeds get a run directory.
    #[arg(long, value_name = "A..B", value_parser = parse_seeds)]
    pub seeds: Option<std::ops::Range<u64>>,
    /// Seeds run at once with --seeds [default: the number of cores].
    #[arg(long, value_name = "J")]
    pub jobs: Option<usize>,
    /// Stop --seeds after this many failing seeds (0: never).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub max_failures: usize,
    /// Run the plan twice and exit 5 unless both histories have the same SHA-256.
    #[arg(long)]
    pub check_determinism: bool,
}

pub fn parse_seeds(s: &str) -> Result<std::ops::Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected A..B, got '{s}'"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("'{a}' is not a seed"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("'{b}' is not a seed"))?;
    if b <= a {
        return Err(format!("{s} holds no seed: B must be above A"));
    }
    Ok(a..b)
}

/// A plan.json from any run (real, simulated or shrunk), to run in `mode`. A real
/// run's plan may name a node binary; the simulation runs the bundled core, and its
/// rules see every step. A simulated plan with faults only the simulation makes
/// cannot run with real processes: a usage error.
pub fn plan_from_file(path: &Path, mode: Mode) -> Result<Plan, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read --plan {}: {e}", path.display())))?;
    let mut plan =
        Plan::parse(&text).map_err(|e| UsageError(format!("--plan {}: {e}", path.display())))?;
    plan.mode = mode;
    if mode == Mode::Sim {
        plan.node_bin = None;
        plan.trace_messages = true;
    }
    plan.normalised().map_err(|e| {
        UsageError(format!(
            "--plan {}: {e}{}",
            path.display(),
            if mode == Mode::Real {
                " (run it with chaos sim --plan)"
            } else {
                ""
            }
        ))
    })
}

impl Default for RunArgs {
    /// The flags as `chaos run` has them when none is given (no seed: a plan made
    /// from them draws one). Code that makes a plan names only what it changes:
    /// `RunArgs { nodes: 3, ..RunArgs::default() }`.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            run: RunArgs,
        }
        <Flags as clap::Parser>::parse_from(["chaos"]).run
    }
}

/// The plan of `chaos run`: `--plan FILE`, or one made from the flags.
pub fn run_plan(args: &RunArgs) -> Result<Plan, UsageError> {
    match &args.plan {
        Some(path) => plan_from_file(path, Mode::Real),
        None => plan_from_args(args, Mode::Real),
    }
}

/// Turns flags into a plan for `mode`; a bad flag is a usage error.
pub fn plan_from_args(args: &RunArgs, mode: Mode) -> Result<Plan, UsageError> {
    args.spec(mode)?.plan()
}

impl RunArgs {
    /// The choices the flags name, for `mode` (an explicit schedule read from its file).
    pub fn spec(&self, mode: Mode) -> Result<PlanSpec, UsageError> {
        let protocol = if self.system == Some(SystemFlag::Etcd) {
            Protocol::Etcd
        } else if self.node_cmd.is_some() || self.protocol == Some(ProtocolFlag::Maelstrom) {
            Protocol::Maelstrom
        } else {
            Protocol::Bundled
        };
        Ok(PlanSpec {
            mode,
            name: self.name.clone(),
            seed: self.seed,
            nodes: self.nodes,
            workload: self.workload,
            time_limit_s: self.time_limit,
            concurrency: self.concurrency,
            rate: self.rate,
            keys: self.keys,
            grace_s: self.grace,
            op_timeout_ms: self.op_timeout_ms,
            protocol,
            node_bin: self.node_bin.clone(),
            node_cmd: self.node_cmd.clone(),
            node_args: self.node_args.clone(),
            net: self.net.map(|n| match n {
                NetFlag::Proxy => results::Net::Proxy,
                NetFlag::Netns => results::Net::Netns,
            }),
            nemesis: self.nemesis,
            nemesis_interval_s: self.nemesis_interval,
            schedule: self.schedule.as_deref().map(read_schedule).transpose()?,
            trace_messages: !self.no_trace_messages,
            ops_per_client: self.ops_per_client,
            backoff: self.backoff_ms.unwrap_or_default(),
        })
    }
}

/// An explicit fault schedule from its file (`--schedule`).
fn read_schedule(path: &Path) -> Result<Vec<ScheduledFault>, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read --schedule {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        UsageError(format!(
            "--schedule {} is not a fault schedule: {e}",
            path.display()
        ))
    })
}
