//! The command lines' flags, and turning them into the library's typed specs
//! ([`PlanSpec`] and each command's own): the flags only name choices; what they
//! mean, and whether they are right, the specs decide.

use std::path::{Path, PathBuf};

use nemesis::{FaultKinds, ScheduledFault};
use results::plan::SystemKind;
use results::ranges::{self, Range};
use results::{Mode, Plan, Workload};

use harness::spec::{PlanSpec, UsageError};

/// `--protocol`: the older name of `--system` for the two protocols, kept so that
/// older reproduce commands still run.
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

/// `--system`: the system under test, by a bundled system's name or a system file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemFlag {
    Bundled,
    Maelstrom,
    Etcd,
    /// A system declared in a file (docs/systems.md).
    File(PathBuf),
}

/// A `--system` value: a bundled system's name, or the path of a system file.
fn parse_system(s: &str) -> Result<SystemFlag, String> {
    Ok(match s {
        "bundled" => SystemFlag::Bundled,
        "maelstrom" => SystemFlag::Maelstrom,
        "etcd" => SystemFlag::Etcd,
        _ if s.ends_with(".toml") || s.contains('/') => SystemFlag::File(PathBuf::from(s)),
        _ => {
            return Err(format!(
                "'{s}' is no system: bundled, maelstrom, etcd, or a system file (a path ending in .toml, docs/systems.md)"
            ));
        }
    })
}

fn parse_core(s: &str) -> Result<results::plan::CoreName, String> {
    results::plan::CoreName::parse(s)
        .ok_or_else(|| format!("'{s}' is no core: paxos or raft-rs (docs/cores.md)"))
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    s.parse()
}

/// A number inside its documented range ([`results::ranges`]), refused by the
/// parser (exit 2, the flag and the range named) before any work.
pub fn within<T: std::str::FromStr>(
    range: Range,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a number"))?;
        range.check(v)?;
        s.trim()
            .parse::<T>()
            .map_err(|_| format!("'{s}' is not a whole number"))
    }
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
    #[arg(
        long,
        value_name = "S",
        default_value_t = 30.0,
        allow_negative_numbers = true
    )]
    pub time_limit: f64,
    /// Number of concurrent clients [default: 2 per node].
    #[arg(long, value_name = "C")]
    pub concurrency: Option<usize>,
    /// Total ops/s over all clients; 0 = as fast as possible.
    #[arg(
        long,
        value_name = "R",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
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
    /// The bundled node's consensus core: paxos (its own) or raft-rs (TiKV's Raft
    /// behind the same KV store; its settings are node arguments such as
    /// --node-arg=--raft-read-only=lease-based; docs/cores.md).
    #[arg(long, value_name = "NAME", value_parser = parse_core)]
    pub core: Option<results::plan::CoreName>,
    /// Swarm testing: each seed also draws which fault kinds are on, the fault
    /// interval and the number of clients (where these flags are unset), the keys
    /// (1 to 1,200) and the op mix, recorded in the plan so the seed still replays
    /// exactly; the summary says what was drawn (docs/simulation.md).
    #[arg(long)]
    pub swarm: bool,
    /// What a transaction workload (list-append, rw-register) is judged against:
    /// read-uncommitted, read-committed, snapshot-isolation, serializable,
    /// strong-session-serializable or strict-serializable [default:
    /// strict-serializable] (docs/transactions.md).
    #[arg(long, value_name = "MODEL", value_parser = parse_model)]
    pub consistency_model: Option<checker::txn::Model>,
    /// Micro-ops per transaction of a transaction workload, drawn uniformly from
    /// MIN..MAX (or exactly N), at most 64 [default: 1..4].
    #[arg(long, value_name = "MIN..MAX", value_parser = parse_txn_length)]
    pub txn_length: Option<(u32, u32)>,
    /// How a transaction's micro-op picks its key among the active keys (one per
    /// --keys): uniform, or exponential (each key twice as likely as the one
    /// before it: a few hot keys and a cold tail) [default: exponential].
    #[arg(long, value_name = "DIST", value_parser = parse_key_dist)]
    pub key_dist: Option<results::plan::KeyDist>,
    /// A transaction workload's key is retired for a fresh one after this many
    /// appends or writes, so lists stay short [default: 32].
    #[arg(long, value_name = "N")]
    pub max_writes_per_key: Option<u32>,
    /// Root directory of run directories.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub results: PathBuf,
    /// Name of this test; runs are grouped under <DIR>/<name>/.
    #[arg(long, default_value = "chaos")]
    pub name: String,
    /// Seconds the cluster has to answer again after the final heal.
    #[arg(
        long,
        value_name = "S",
        default_value_t = 10.0,
        allow_negative_numbers = true
    )]
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
    /// Seconds per fault interval: a fault starts at the beginning of its interval and is undone
    /// after 40-70% of it. A run has time-limit / S - 1 slots [default: 3, or a fifth
    /// of a run shorter than 15 s, so every run has at least 4 faults; a 30 s run 9].
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
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
    /// The older spelling of --system bundled|maelstrom; accepted so that older
    /// reproduce commands still run.
    #[arg(
        long,
        value_name = "NAME",
        value_enum,
        hide = true,
        conflicts_with = "system"
    )]
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
    /// The system under test: bundled (the bundled node, over its TCP protocols),
    /// maelstrom (a node speaking Maelstrom's JSON lines over stdio, run by
    /// --node-cmd, which implies it) or etcd (etcd members from the `etcd` on PATH,
    /// through its v3 JSON gateway; implies --net netns and --workload kv), or a
    /// system file (FILE.toml: how to start, stop and ask each node, and a client
    /// program in any language; docs/systems.md; implies --net netns) [default:
    /// bundled].
    #[arg(long, value_name = "NAME|FILE", value_parser = parse_system)]
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
    /// Seeds run at once with --seeds, 1 to 256 [default: the number of cores].
    #[arg(long, value_name = "J", value_parser = within::<usize>(ranges::JOBS), allow_negative_numbers = true)]
    pub jobs: Option<usize>,
    /// Stop --seeds after this many failing seeds (0: never).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub max_failures: usize,
    /// Run the plan twice (with --seeds, every seed) and exit 5 unless both histories
    /// have the same SHA-256.
    #[arg(long)]
    pub check_determinism: bool,
}

/// `chaos explore`: the run flags make the fresh plans; the search's own flags.
#[derive(Debug, clap::Args)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Stop after this many runs.
    #[arg(long, value_name = "N", value_parser = within::<u64>(ranges::EXPLORE_RUNS), allow_negative_numbers = true)]
    pub runs: Option<u64>,
    /// Stop after this many seconds of wall time (the batch in flight finishes)
    /// [default: 60 unless --runs is given].
    #[arg(long = "time", value_name = "S", value_parser = within::<f64>(ranges::EXPLORE_TIME), allow_negative_numbers = true)]
    pub search_time: Option<f64>,
    /// Runs at once, 1 to 256 [default: the number of cores]; the search's sequence
    /// does not depend on it.
    #[arg(long, value_name = "J", value_parser = within::<usize>(ranges::JOBS), allow_negative_numbers = true)]
    pub jobs: Option<usize>,
    /// Stop after this many failing runs (0: never).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub max_failures: usize,
    /// Fresh plans as the flags make them, without a swarm draw. By default the
    /// search's fresh plans are swarm plans (`--swarm`): it found 9 of 11 bugs as soon
    /// as or sooner than with plain ones (BENCHMARKS.md).
    #[arg(long, conflicts_with = "swarm")]
    pub no_swarm: bool,
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
    ranges::SEEDS.check((b - a) as f64)?;
    Ok(a..b)
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

/// The ids of `RunArgs`'s flags that make a plan: beside `--plan`, which runs a plan
/// as stored, each is refused rather than silently ignored.
const PLAN_FLAGS: &[&str] = &[
    "nodes",
    "workload",
    "time_limit",
    "concurrency",
    "rate",
    "keys",
    "seed",
    "node_bin",
    "node_args",
    "core",
    "swarm",
    "consistency_model",
    "txn_length",
    "key_dist",
    "max_writes_per_key",
    "name",
    "grace",
    "op_timeout_ms",
    "nemesis",
    "nemesis_interval",
    "schedule",
    "no_trace_messages",
    "trace_messages",
    "protocol",
    "net",
    "system",
    "node_cmd",
    "backoff_ms",
    "ops_per_client",
];

/// `Err` naming the first plan flag given on the command line beside `--plan`
/// (`m`: the matches of `chaos run` or `chaos sim`).
pub fn refuse_beside_plan(m: &clap::ArgMatches) -> Result<(), UsageError> {
    use clap::parser::ValueSource::CommandLine;
    let given = |id: &str| m.try_get_raw(id).is_ok() && m.value_source(id) == Some(CommandLine);
    if !given("plan") {
        return Ok(());
    }
    match PLAN_FLAGS.iter().find(|id| given(id)) {
        None => Ok(()),
        Some(id) => {
            let flag = match *id {
                "node_args" => "node-arg".to_string(),
                other => other.replace('_', "-"),
            };
            Err(UsageError(format!(
                "--plan runs the plan as stored: --{flag} cannot change it (drop --{flag}, or edit a copy of the plan.json)"
            )))
        }
    }
}

/// The plan of `chaos run`: `--plan FILE`, or one made from the flags.
pub fn run_plan(args: &RunArgs) -> Result<Plan, UsageError> {
    match &args.plan {
        Some(path) => harness::spec::plan_from_file(path, Mode::Real),
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
        let named = self.system.clone().or(self.protocol.map(|p| match p {
            ProtocolFlag::Bundled => SystemFlag::Bundled,
            ProtocolFlag::Maelstrom => SystemFlag::Maelstrom,
        }));
        let read = |path: &Path| {
            results::system_file::SystemFile::read(path).map_err(|e| UsageError(e.to_string()))
        };
        let declared = match &named {
            Some(SystemFlag::File(path)) => Some(read(path)?),
            // etcd is a system file chaos carries, written out beside the runs.
            Some(SystemFlag::Etcd) => {
                let path = harness::system::etcd::system_file(&self.results).map_err(|e| {
                    UsageError(format!(
                        "cannot write etcd's system file under {}: {e}",
                        self.results.display()
                    ))
                })?;
                let mut d = read(&path)?;
                d.bundled_as = Some("etcd".into());
                Some(d)
            }
            _ => None,
        };
        let system = match named {
            Some(SystemFlag::File(_) | SystemFlag::Etcd) => SystemKind::Declared,
            Some(SystemFlag::Maelstrom) => SystemKind::Maelstrom,
            None if self.node_cmd.is_some() => SystemKind::Maelstrom,
            Some(SystemFlag::Bundled) | None => SystemKind::Bundled,
        };
        if self.node_cmd.is_some() && system != SystemKind::Maelstrom {
            return Err(UsageError(
                "--node-cmd runs a Maelstrom node: it goes with --system maelstrom (or no --system)"
                    .into(),
            ));
        }
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
            system,
            declared,
            node_bin: self.node_bin.clone(),
            node_cmd: self.node_cmd.clone(),
            node_args: self.node_args.clone(),
            core: self.core.unwrap_or_default(),
            swarm: self.swarm,
            consistency_model: self.consistency_model,
            txn_length: self.txn_length,
            key_dist: self.key_dist,
            max_writes_per_key: self.max_writes_per_key,
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

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Every shard's seeds, A..B (B excluded).
    #[arg(long, value_name = "A..B", value_parser = parse_seeds)]
    pub seeds: std::ops::Range<u64>,
    /// Run only shard I of N (I from 0): the seeds s with (s - A) mod N = I. A CI
    /// matrix value or a Kubernetes JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "I/N", default_value = "0/1")]
    pub shard: results::sweep::Shard,
    /// How each seed runs: sim (`chaos sim`: exact, judged in memory) or real
    /// (`chaos run`: real processes).
    #[arg(long, value_name = "MODE", value_enum, default_value_t = ModeFlag::Sim)]
    pub mode: ModeFlag,
    /// Seeds run at once [default: real 1; sim the number of cores].
    #[arg(long, value_name = "J", value_parser = within::<u64>(ranges::JOBS), allow_negative_numbers = true)]
    pub jobs: Option<u64>,
    /// Real mode: run each failing seed K more times and label it reproducible (every
    /// re-run failed with the same exit code) or flaky. Simulated failures are exact.
    #[arg(long, value_name = "K", default_value_t = 2, value_parser = within::<u32>(ranges::CONFIRM), allow_negative_numbers = true)]
    pub confirm: u32,
    /// Start no new seed after K failing seeds (0: never).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub stop_after_failures: u64,
    /// Start no new seed (and no re-run) after S seconds; runs in progress finish. A
    /// sweep stopped so (or by SIGINT/SIGTERM) before its last seed exits 3 (unknown)
    /// unless a seed failed: the seeds not run were not judged.
    #[arg(long, value_name = "S", value_parser = within::<f64>(ranges::MAX_TIME), allow_negative_numbers = true)]
    pub max_time: Option<f64>,
    /// Which run directories to keep: failing (a passing real run's directory is
    /// removed once its record is written) or all.
    #[arg(long, value_name = "WHICH", value_enum, default_value_t = KeepFlag::Failing)]
    pub keep: KeepFlag,
}

/// `--mode`: how each seed of a sweep runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeFlag {
    Sim,
    Real,
}

/// `--keep`: which run directories a sweep keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeepFlag {
    Failing,
    All,
}

/// `chaos merge`: sweep directories (or directories holding them) into one result.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Sweep directories, or directories searched for them (a CI system's downloaded
    /// artifacts), at most 8 levels deep.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged sweep.jsonl, junit.xml, index.html and summary.txt.
    #[arg(long, value_name = "DIR", default_value = "merged")]
    pub out: PathBuf,
}

/// `chaos shrink`'s flags.
#[derive(Debug, clap::Args)]
pub struct ShrinkArgs {
    /// The failing run's directory (holds plan.json and result.json).
    pub run_dir: PathBuf,
    /// What must keep failing: `safety` (linearizability if it failed, else the
    /// protocol's rules if they were broken, else the run's first failed check; for
    /// linearizability and the protocol's rules also the kind of its first anomaly;
    /// the run must have exited 1) or `liveness` (it must have exited 4).
    #[arg(long, value_enum, default_value_t = TargetFlag::Safety)]
    pub target: TargetFlag,
    /// Real runs: tries per candidate; a candidate fails if any try fails.
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = within::<u32>(ranges::TRIALS), allow_negative_numbers = true)]
    pub trials: u32,
    /// Real runs: how many times the smallest plan is run again to measure how often
    /// it reproduces.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = within::<u32>(ranges::CONFIRM), allow_negative_numbers = true)]
    pub confirm: u32,
    /// Stop searching after S seconds and keep the smallest failing plan found (it is
    /// then marked as not minimal).
    #[arg(long, value_name = "S", default_value_t = 600.0, value_parser = within::<f64>(ranges::MAX_TIME), allow_negative_numbers = true)]
    pub max_time: f64,
    /// Stop searching after N candidate runs (trials count one each).
    #[arg(long, value_name = "N")]
    pub max_runs: Option<u64>,
    /// Root directory of run directories: the shrunk plan's run goes here.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub results: PathBuf,
    /// No progress bar: a plain line whenever the plan gets smaller.
    #[arg(long)]
    pub no_progress: bool,
}

/// `--target`: what must keep failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetFlag {
    Safety,
    Liveness,
}

#[derive(Debug, clap::Args)]
pub struct MatrixArgs {
    /// Bugs to try (comma-separated) [default: every bug of the node].
    #[arg(long, value_name = "LIST")]
    pub bugs: Option<String>,
    /// Run the matrix in simulation (`chaos sim`) instead of real processes.
    #[arg(long)]
    pub sim: bool,
    /// Seeds to try per bug, 1..=N; a bug stops at its first detection [default: 5;
    /// with --sim 600].
    #[arg(long, value_name = "N", value_parser = within::<u64>(ranges::MATRIX_SEEDS), allow_negative_numbers = true)]
    pub seeds: Option<u64>,
    /// Seconds per run (virtual with --sim) [default: 30; with --sim 3].
    #[arg(long, value_name = "S", value_parser = within::<f64>(ranges::TIME_LIMIT), allow_negative_numbers = true)]
    pub time_limit: Option<f64>,
    /// Nodes per run [default: 5; with --sim 3].
    #[arg(long, value_parser = within::<usize>(ranges::NODES), allow_negative_numbers = true)]
    pub nodes: Option<usize>,
    /// Fault kinds, as for `chaos run --nemesis` [default: as chaos run's, or with
    /// --sim as chaos sim's].
    #[arg(long, value_name = "LIST", value_parser = parse_kinds)]
    pub nemesis: Option<nemesis::FaultKinds>,
    /// Seconds per fault interval, as for `chaos run --nemesis-interval` [default: 3; with
    /// --sim 0.3].
    #[arg(long, value_name = "S", value_parser = within::<f64>(ranges::NEMESIS_INTERVAL), allow_negative_numbers = true)]
    pub nemesis_interval: Option<f64>,
    /// Simulated runs at once with --sim [default: the number of cores].
    #[arg(long, value_name = "J", value_parser = within::<usize>(ranges::JOBS), allow_negative_numbers = true)]
    pub jobs: Option<usize>,
    /// Also run every bug with N busy threads beside the test (a loaded CI runner),
    /// and print per bug the first detecting seed quiet and under the hog. Real
    /// processes only.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = within::<usize>(ranges::HOG), allow_negative_numbers = true)]
    pub hog: usize,
    /// Root directory of the run directories.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub results: PathBuf,
}

impl SweepArgs {
    /// The sweep the flags ask for; a flag that makes no sense for a sweep is refused.
    pub fn spec(&self) -> Result<harness::sweep::SweepSpec, UsageError> {
        let run = &self.run;
        if run.seed.is_some() || run.plan.is_some() {
            return Err(UsageError(
                "chaos sweep makes a plan per seed from the flags: drop --seed and --plan".into(),
            ));
        }
        if run.json {
            return Err(UsageError(
                "chaos sweep writes sweep.jsonl; --json is for one run".into(),
            ));
        }
        let mode = match self.mode {
            ModeFlag::Real => Mode::Real,
            ModeFlag::Sim => Mode::Sim,
        };
        Ok(harness::sweep::SweepSpec {
            plan: run.spec(mode)?,
            results: run.results.clone(),
            seeds: self.seeds.clone(),
            shard: self.shard,
            jobs: self.jobs,
            confirm: self.confirm,
            stop_after_failures: self.stop_after_failures,
            max_time: self.max_time,
            keep_all: self.keep == KeepFlag::All,
        })
    }
}

impl ShrinkArgs {
    pub fn spec(&self) -> harness::shrink::ShrinkSpec {
        harness::shrink::ShrinkSpec {
            run_dir: self.run_dir.clone(),
            target: match self.target {
                TargetFlag::Safety => harness::shrink::TargetKind::Safety,
                TargetFlag::Liveness => harness::shrink::TargetKind::Liveness,
            },
            trials: self.trials,
            confirm: self.confirm,
            max_time: self.max_time,
            max_runs: self.max_runs,
            results: self.results.clone(),
        }
    }
}

impl MatrixArgs {
    pub fn spec(&self) -> harness::matrix::MatrixSpec {
        harness::matrix::MatrixSpec {
            bugs: self.bugs.clone(),
            sim: self.sim,
            seeds: self.seeds,
            time_limit: self.time_limit,
            nodes: self.nodes,
            nemesis: self.nemesis,
            nemesis_interval: self.nemesis_interval,
            jobs: self.jobs,
            hog: self.hog,
            results: self.results.clone(),
        }
    }
}

/// `MIN..MAX` or `N` (for `N..N`).
pub fn parse_txn_length(s: &str) -> Result<(u32, u32), String> {
    let number = |t: &str| {
        t.trim()
            .parse::<u32>()
            .map_err(|_| format!("expected MIN..MAX or N, micro-ops per transaction (got '{s}')"))
    };
    let (min, max) = match s.split_once("..") {
        Some((a, b)) => (number(a)?, number(b)?),
        None => (number(s)?, number(s)?),
    };
    results::ranges::txn_length(min, max)?;
    Ok((min, max))
}

pub fn parse_key_dist(s: &str) -> Result<results::plan::KeyDist, String> {
    results::plan::KeyDist::parse(s)
        .ok_or_else(|| format!("unknown key distribution '{s}'; expected uniform or exponential"))
}

pub fn parse_model(s: &str) -> Result<checker::txn::Model, String> {
    checker::txn::Model::parse(s).ok_or_else(|| {
        let names: Vec<&str> = checker::txn::Model::ALL
            .iter()
            .map(|m| m.as_str())
            .collect();
        format!(
            "unknown consistency model '{s}'; expected {}",
            names.join(", ")
        )
    })
}
