//! A [`PlanSpec`]: everything a user can choose about a run, typed, with the
//! defaults `chaos run` has, and the one way to make a [`Plan`] ([`PlanSpec::plan`]):
//! the command line, the tests, the benches, `chaos matrix`, `chaos sweep` and
//! `chaos shrink` all go through it, so a rule about plans is checked once.
//!
//! What is left unset is decided from the rest, as the flags' help says: the
//! workload from the system, the concurrency from the nodes, the fault kinds from
//! the mode and the network, the fault interval from the time limit, the seed at random.

use std::path::{Path, PathBuf};

use nemesis::{FaultKinds, ScheduledFault, substream};
use results::plan::{Backoff, SystemKind};
use results::{Mode, Net, OpMix, PLAN_VERSION, Plan, Workload};

/// What the user asked for cannot be run: exit 2 with this one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

macro_rules! usage {
    ($($t:tt)*) => { return Err(UsageError(format!($($t)*))) };
}

/// The fault kinds of a `--net netns` plan when none are named: what the kernel
/// backend can make.
pub const NETNS_NEMESIS: &str = "partition,kill,pause,lossy-links";

/// The fault kinds of a plan when none are named.
pub fn default_nemesis(mode: Mode) -> &'static str {
    match mode {
        Mode::Real => "partition,kill,pause,flaky-links",
        Mode::Sim => "partition,kill,pause,links,power,clock",
    }
}

/// Every choice a plan is made from. Name only what differs from the default:
/// `PlanSpec { nodes: 3, seed: Some(7), ..PlanSpec::default() }`.
#[derive(Clone, Debug)]
pub struct PlanSpec {
    /// Real processes (`chaos run`) or the simulation (`chaos sim`).
    pub mode: Mode,
    pub name: String,
    /// `None`: drawn at random (and stored in the plan).
    pub seed: Option<u64>,
    pub nodes: usize,
    /// `None`: kv for Maelstrom nodes and etcd, else both.
    pub workload: Option<Workload>,
    pub time_limit_s: f64,
    /// `None`: two clients per node.
    pub concurrency: Option<usize>,
    /// Total ops/s; 0 as fast as possible.
    pub rate: f64,
    pub keys: usize,
    pub grace_s: f64,
    pub op_timeout_ms: u64,
    /// The system under test, and how the harness talks to it.
    pub system: SystemKind,
    /// The system file of a declared system (with [`SystemKind::Declared`]).
    pub declared: Option<results::system_file::Declared>,
    /// A node binary speaking the bundled node's protocols (bundled protocol only).
    pub node_bin: Option<PathBuf>,
    /// A Maelstrom node's command line (Maelstrom protocol only).
    pub node_cmd: Option<String>,
    pub node_args: Vec<String>,
    /// The bundled node's consensus core (`--core`).
    pub core: results::plan::CoreName,
    /// Draw the fault kinds, interval, clients, keys and op mix from the seed too
    /// (`--swarm`): kinds, interval and clients where these are unset.
    pub swarm: bool,
    /// What transactions are judged against.
    pub consistency_model: Option<checker::txn::Model>,
    /// Micro-ops per transaction, `(min, max)` (`--txn-length`); `None`: the
    /// default shape's, or a swarm draw.
    pub txn_length: Option<(u32, u32)>,
    /// How a micro-op picks its key (`--key-dist`).
    pub key_dist: Option<results::plan::KeyDist>,
    /// Writes a key takes before it is retired (`--max-writes-per-key`).
    pub max_writes_per_key: Option<u32>,
    /// `None`: netns for etcd, else proxy.
    pub net: Option<Net>,
    /// `None`: the default kinds of the mode and network.
    pub nemesis: Option<FaultKinds>,
    /// Seconds per fault interval; `None`: [`nemesis::default_interval_ms`].
    pub nemesis_interval_s: Option<f64>,
    /// An explicit schedule instead of a generated one.
    pub schedule: Option<Vec<ScheduledFault>>,
    pub trace_messages: bool,
    pub ops_per_client: Option<u64>,
    pub backoff: Backoff,
}

impl Default for PlanSpec {
    /// `chaos run` with no flags.
    fn default() -> Self {
        PlanSpec {
            mode: Mode::Real,
            name: "chaos".into(),
            seed: None,
            nodes: 5,
            workload: None,
            time_limit_s: 30.0,
            concurrency: None,
            rate: 0.0,
            keys: 5,
            grace_s: 10.0,
            op_timeout_ms: 2_500,
            system: SystemKind::Bundled,
            declared: None,
            node_bin: None,
            node_cmd: None,
            node_args: Vec::new(),
            core: results::plan::CoreName::Paxos,
            swarm: false,
            consistency_model: None,
            txn_length: None,
            key_dist: None,
            max_writes_per_key: None,
            net: None,
            nemesis: None,
            nemesis_interval_s: None,
            schedule: None,
            trace_messages: true,
            ops_per_client: None,
            backoff: Backoff::default(),
        }
    }
}

impl PlanSpec {
    /// The plan: every choice checked, every unset one decided, the schedule drawn.
    pub fn plan(&self) -> Result<Plan, UsageError> {
        self.check()?;
        let seed = self.seed.unwrap_or_else(random_seed);
        let (drawn, op_mix) = match self.swarm {
            true => self.swarm_draw(seed),
            false => (self.clone(), OpMix::default()),
        };
        drawn.plan_with(seed, op_mix)
    }

    /// What `--swarm` draws for `seed`, from its own stream (`swarm`): a spec with
    /// the draw in the fields the flags left unset (the keys always), and the op mix.
    /// Every value is drawn whether used or not, so a reproduce line that gives the
    /// drawn values as flags draws the same keys and op mix again.
    fn swarm_draw(&self, seed: u64) -> (PlanSpec, OpMix) {
        use rand::RngExt;
        let mut rng = substream(seed, "swarm");
        let netns = self.net.unwrap_or(self.system.default_net()) == Net::Netns;
        let possible: Vec<&str> = nemesis::KIND_NAMES
            .into_iter()
            .filter(|name| self.mode == Mode::Sim || *name != "corrupt")
            .filter(|name| !netns || !matches!(*name, "links" | "flaky-links"))
            .collect();
        let mut names: Vec<&str> = possible
            .iter()
            .copied()
            .filter(|_| rng.random_bool(0.5))
            .collect();
        let fallback = possible[rng.random_range(0..possible.len())];
        if names.is_empty() {
            names.push(fallback);
        }
        // Slots short enough for at least two faults in the run.
        let intervals: Vec<f64> = [0.2, 0.3, 0.5, 1.0, 2.0, 3.0]
            .into_iter()
            .filter(|s| self.time_limit_s / s >= 3.0)
            .collect();
        let interval = match intervals.len() {
            0 => None,
            n => Some(intervals[rng.random_range(0..n)]),
        };
        let concurrency = rng.random_range(1..=3 * self.nodes);
        let key_counts = [1, 2, 3, 5, 8, 32, 1_200];
        let keys = key_counts[rng.random_range(0..key_counts.len())];
        let op_mix = OpMix {
            read: rng.random_range(0..=6),
            write: rng.random_range(1..=6),
            cas: rng.random_range(0..=4),
        };
        // A transaction workload's shape, drawn last so that the draws above stay
        // what they were before shapes were drawn.
        let max_len = [1, 2, 4, 8][rng.random_range(0..4)];
        let min_len = rng.random_range(1..=max_len);
        let key_dist = match rng.random_bool(0.5) {
            true => results::plan::KeyDist::Uniform,
            false => results::plan::KeyDist::Exponential,
        };
        let max_writes = [4, 16, 32, 128][rng.random_range(0..4)];
        let mut spec = self.clone();
        spec.txn_length.get_or_insert((min_len, max_len));
        spec.key_dist.get_or_insert(key_dist);
        spec.max_writes_per_key.get_or_insert(max_writes);
        if spec.nemesis.is_none() {
            spec.nemesis = Some(names.join(",").parse().expect("drawn from the known names"));
        }
        if spec.nemesis_interval_s.is_none() {
            spec.nemesis_interval_s = interval;
        }
        spec.concurrency.get_or_insert(concurrency);
        spec.keys = keys;
        (spec, op_mix)
    }

    /// The plan of a checked spec, with its seed decided.
    fn plan_with(&self, seed: u64, op_mix: OpMix) -> Result<Plan, UsageError> {
        let concurrency = self.concurrency.unwrap_or(2 * self.nodes);
        let kinds = self.kinds()?;
        let interval_ms = match self.nemesis_interval_s {
            Some(s) => ((s * 1e3) as u64).max(1),
            None => nemesis::default_interval_ms((self.time_limit_s * 1e3) as u64),
        };
        let schedule = match &self.schedule {
            Some(s) => s.clone(),
            None => nemesis::generate(
                self.nodes,
                &mut substream(seed, "nemesis"),
                kinds,
                interval_ms,
                (self.time_limit_s * 1e3) as u64,
            ),
        };
        let workload = self.workload.unwrap_or(self.default_workload());
        let txn_shape = workload.is_txn().then(|| {
            let default = results::plan::TxnShape::default();
            let (min_len, max_len) = self
                .txn_length
                .unwrap_or((default.min_len, default.max_len));
            results::plan::TxnShape {
                min_len,
                max_len,
                key_dist: self.key_dist.unwrap_or(default.key_dist),
                max_writes_per_key: self
                    .max_writes_per_key
                    .unwrap_or(default.max_writes_per_key),
            }
        });
        let plan = Plan {
            version: PLAN_VERSION,
            mode: self.mode,
            name: self.name.clone(),
            seed,
            nodes: self.nodes,
            workload,
            time_limit_s: self.time_limit_s,
            concurrency,
            rate: self.rate,
            keys: self.keys,
            kv_keys: results::plan::default_kv_keys(self.keys),
            op_mix,
            node_bin: self.node_bin.clone(),
            node_args: self.node_args.clone(),
            grace_s: self.grace_s,
            op_timeout_ms: self.op_timeout_ms,
            nemesis: kinds,
            nemesis_interval_s: interval_ms as f64 / 1e3,
            schedule,
            explicit_schedule: self.schedule.is_some(),
            // The simulation judges the rules on every step: it always traces.
            trace_messages: self.trace_messages || self.mode == Mode::Sim,
            ops_per_client: self.ops_per_client,
            backoff: self.backoff,
            system: self.system,
            declared: self.declared.clone(),
            core: self.core,
            swarm: self.swarm,
            consistency_model: self.consistency_model,
            txn_shape,
            node_cmd: self.node_cmd.clone(),
            net: self.net.unwrap_or(self.system.default_net()),
            script: None,
            shrunk_from: None,
        };
        let plan = plan.normalised().map_err(|e| UsageError(e.to_string()))?;
        if plan.mode == Mode::Sim {
            crate::sim::check_config(&plan)?;
        }
        Ok(plan)
    }

    /// The workload when none is named: the system's, or for a declared system the
    /// first of kv and register its client serves.
    fn default_workload(&self) -> Workload {
        use results::system_file::WorkloadName;
        match &self.declared {
            Some(d) if !d.file.serves(WorkloadName::Kv) => Workload::Register,
            // raft-rs serves the KV store only.
            _ if !self.core.is_paxos() => Workload::Kv,
            _ => self.system.default_workload(),
        }
    }

    /// The fault kinds: as given, or the default of the mode and network.
    fn kinds(&self) -> Result<FaultKinds, UsageError> {
        let kinds = match self.nemesis {
            Some(k) => k,
            None => {
                let netns = self.net.unwrap_or(self.system.default_net()) == Net::Netns;
                let names = if self.mode == Mode::Real && netns {
                    NETNS_NEMESIS
                } else {
                    default_nemesis(self.mode)
                };
                names.parse().expect("the default fault kinds parse")
            }
        };
        if self.mode == Mode::Real && kinds.needs_simulation() {
            usage!(
                "--nemesis {}: corrupt faults need the simulated disk; use chaos sim",
                kinds.describe()
            );
        }
        Ok(kinds)
    }

    /// The choices that are wrong on their own, each named as its flag: the numbers
    /// against their documented ranges ([`results::ranges`]) before anything is
    /// drawn from them.
    fn check(&self) -> Result<(), UsageError> {
        use results::ranges;
        let u = |r: Result<(), String>| r.map_err(UsageError);
        u(ranges::NODES.check(self.nodes as f64))?;
        u(ranges::TIME_LIMIT.check(self.time_limit_s))?;
        u(ranges::GRACE.check(self.grace_s))?;
        u(ranges::RATE.check(self.rate))?;
        u(ranges::KEYS.check(self.keys as f64))?;
        u(ranges::OP_TIMEOUT.check(self.op_timeout_ms as f64))?;
        if let Some(c) = self.concurrency {
            u(ranges::CONCURRENCY.check(c as f64))?;
        }
        if let Some(s) = self.nemesis_interval_s {
            u(ranges::NEMESIS_INTERVAL.check(s))?;
            u(ranges::slots(self.time_limit_s, s))?;
        }
        if let Some(n) = self.ops_per_client {
            u(ranges::OPS_PER_CLIENT.check(n as f64))?;
        }
        if let Some((min, max)) = self.txn_length {
            u(ranges::txn_length(min, max))?;
        }
        if let Some(n) = self.max_writes_per_key {
            u(ranges::MAX_WRITES_PER_KEY.check(f64::from(n)))?;
        }
        let shaped = [
            ("--txn-length", self.txn_length.is_some()),
            ("--key-dist", self.key_dist.is_some()),
            ("--max-writes-per-key", self.max_writes_per_key.is_some()),
        ];
        if let Some((flag, _)) = shaped.iter().find(|(_, given)| *given) {
            if !self.workload.is_some_and(|w| w.is_txn()) {
                usage!(
                    "{flag} shapes transactions: it goes with --workload list-append or rw-register"
                );
            }
        }
        if let Some(cmd) = &self.node_cmd {
            crate::system::maelstrom::NodeCommand::parse(cmd).map_err(UsageError)?;
        }
        if self.name.is_empty() || self.name.contains('/') || self.name.starts_with('.') {
            usage!(
                "--name must be a plain directory name (got {:?})",
                self.name
            );
        }
        if let Some(bin) = &self.node_bin {
            if self.mode == Mode::Sim {
                usage!(
                    "--node-bin: chaos sim runs the bundled node's core in one process; use chaos run to test another binary"
                );
            }
            check_executable(bin)?;
        }
        check_core_args(self.core, &self.node_args)?;
        if !self.core.is_paxos() {
            if self.system != SystemKind::Bundled || self.node_bin.is_some() {
                usage!(
                    "--core {}: the core of the bundled node; another system brings its own",
                    self.core.name()
                );
            }
            if self.workload.is_some_and(|w| w != Workload::Kv) {
                usage!(
                    "--core {}: serves the KV store only; use --workload kv",
                    self.core.name()
                );
            }
        }
        if let Some(schedule) = &self.schedule {
            let end_ms = (self.time_limit_s * 1e3) as u64;
            nemesis::check_schedule(schedule, self.nodes, end_ms, true)
                .map_err(|e| UsageError(format!("--schedule: {e}")))?;
        }
        Ok(())
    }
}

/// Node arguments that belong to one core only, refused beside the other: a setting
/// that would be ignored in silence.
fn check_core_args(core: results::plan::CoreName, args: &[String]) -> Result<(), UsageError> {
    const PAXOS_ONLY: [&str; 6] = [
        "--bug",
        "--election-timeout-ms",
        "--leader-wait-ms",
        "--no-pre-vote",
        "--snapshot-bytes",
        "--maelstrom",
    ];
    for arg in args {
        let name = arg.split('=').next().unwrap_or(arg);
        let wrong = if core.is_paxos() {
            name.starts_with("--raft-")
        } else {
            PAXOS_ONLY.contains(&name)
        };
        if wrong {
            usage!(
                "--node-arg={arg}: not a setting of the {} core (docs/cores.md)",
                core.name()
            );
        }
    }
    Ok(())
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
    let plan = plan.normalised().map_err(|e| {
        UsageError(format!(
            "--plan {}: {e}{}",
            path.display(),
            if mode == Mode::Real {
                " (run it with chaos sim --plan)"
            } else {
                ""
            }
        ))
    })?;
    if mode == Mode::Sim {
        crate::sim::node_config(&plan)?;
    }
    Ok(plan)
}

fn check_executable(bin: &Path) -> Result<(), UsageError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(bin).map_err(|_| {
        UsageError(format!(
            "--node-bin {}: no such file; build it first or omit --node-bin to test the bundled node",
            bin.display()
        ))
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        usage!("--node-bin {}: not an executable file", bin.display());
    }
    Ok(())
}

/// A seed from the wall clock and the process id, for a run that names none: it is
/// printed and stored in the plan, so the run still replays.
pub fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PlanSpec {
        PlanSpec {
            nodes: 3,
            seed: Some(7),
            time_limit_s: 5.0,
            ..PlanSpec::default()
        }
    }

    #[test]
    fn every_swarm_draw_is_a_plan_its_mode_and_network_can_run() {
        let mut kinds = std::collections::BTreeSet::new();
        for (mode, net) in [
            (Mode::Sim, Net::Proxy),
            (Mode::Real, Net::Proxy),
            (Mode::Real, Net::Netns),
        ] {
            for seed in 0..200 {
                let p = PlanSpec {
                    mode,
                    net: Some(net),
                    seed: Some(seed),
                    swarm: true,
                    ..spec()
                }
                .plan()
                .unwrap_or_else(|e| panic!("{mode:?} {net:?} seed {seed}: {e}"));
                assert!(p.swarm);
                assert!(
                    !p.schedule.is_empty(),
                    "seed {seed}: a swarm run meets faults"
                );
                assert!(
                    p.nemesis_interval_s * 3.0 <= p.time_limit_s,
                    "{}",
                    p.nemesis_interval_s
                );
                assert!(p.concurrency >= 1 && p.concurrency <= 9);
                assert!(p.op_mix.write >= 1);
                kinds.insert(p.nemesis.describe());
                // The user's choices stand; the swarm fills the rest.
                let given = PlanSpec {
                    mode,
                    net: Some(net),
                    seed: Some(seed),
                    swarm: true,
                    concurrency: Some(2),
                    nemesis: Some("kill".parse().unwrap()),
                    ..spec()
                }
                .plan()
                .unwrap();
                assert_eq!(
                    (given.concurrency, given.nemesis.describe()),
                    (2, "kill".into())
                );
                assert_eq!(
                    (given.keys, given.op_mix),
                    (p.keys, p.op_mix),
                    "the same draw"
                );
            }
        }
        assert!(
            kinds.len() > 100,
            "{} distinct draws of fault kinds",
            kinds.len()
        );
    }

    #[test]
    fn unset_choices_are_decided_from_the_rest() {
        let plan = spec().plan().unwrap();
        assert_eq!(plan.concurrency, 6);
        assert_eq!(plan.workload, Workload::Both);
        assert_eq!(plan.net, Net::Proxy);
        assert_eq!(plan.nemesis_interval_s, 1.0, "a fifth of a 5 s run");
        let real_kinds: FaultKinds = default_nemesis(Mode::Real).parse().unwrap();
        assert_eq!(plan.nemesis, real_kinds);
        let root = tempfile::tempdir().unwrap();
        let file = crate::system::etcd::system_file(root.path()).unwrap();
        let etcd = PlanSpec {
            system: SystemKind::Declared,
            declared: Some(results::system_file::SystemFile::read(&file).unwrap()),
            ..spec()
        }
        .plan()
        .unwrap();
        assert_eq!((etcd.net, etcd.workload), (Net::Netns, Workload::Kv));
        let netns_kinds: FaultKinds = NETNS_NEMESIS.parse().unwrap();
        assert_eq!(etcd.nemesis, netns_kinds);
        let sim = PlanSpec {
            mode: Mode::Sim,
            trace_messages: false,
            ..spec()
        }
        .plan()
        .unwrap();
        assert!(
            sim.trace_messages,
            "the simulation always judges every step"
        );
        let sim_kinds: FaultKinds = default_nemesis(Mode::Sim).parse().unwrap();
        assert_eq!(sim.nemesis, sim_kinds);
    }

    #[test]
    fn one_spec_gives_one_plan() {
        assert_eq!(spec().plan().unwrap(), spec().plan().unwrap());
        let other = PlanSpec {
            seed: Some(8),
            ..spec()
        };
        assert_ne!(
            spec().plan().unwrap().schedule,
            other.plan().unwrap().schedule
        );
    }

    #[test]
    fn each_wrong_choice_is_refused_naming_its_flag() {
        let refused = |s: PlanSpec| s.plan().unwrap_err().0;
        for (s, flag) in [
            (PlanSpec { nodes: 0, ..spec() }, "--nodes"),
            (
                PlanSpec {
                    nodes: 16,
                    ..spec()
                },
                "--nodes",
            ),
            (
                PlanSpec {
                    time_limit_s: f64::NAN,
                    ..spec()
                },
                "--time-limit",
            ),
            (
                PlanSpec {
                    grace_s: 0.0,
                    ..spec()
                },
                "--grace",
            ),
            (
                PlanSpec {
                    rate: -1.0,
                    ..spec()
                },
                "--rate",
            ),
            (PlanSpec { keys: 0, ..spec() }, "--keys"),
            (
                PlanSpec {
                    op_timeout_ms: 0,
                    ..spec()
                },
                "--op-timeout-ms",
            ),
            (
                PlanSpec {
                    name: "a/b".into(),
                    ..spec()
                },
                "--name",
            ),
            (
                PlanSpec {
                    concurrency: Some(0),
                    ..spec()
                },
                "--concurrency",
            ),
            (
                PlanSpec {
                    nemesis_interval_s: Some(0.0),
                    ..spec()
                },
                "--nemesis-interval",
            ),
            (
                PlanSpec {
                    node_bin: Some("/no/such/node".into()),
                    ..spec()
                },
                "--node-bin",
            ),
            (
                PlanSpec {
                    nemesis: Some("corrupt".parse().unwrap()),
                    ..spec()
                },
                "--nemesis",
            ),
            (
                PlanSpec {
                    schedule: Some(vec![ScheduledFault {
                        at_ms: 0,
                        fault: nemesis::Fault::Kill,
                        targets: vec![4],
                        role: None,
                    }]),
                    ..spec()
                },
                "--schedule",
            ),
        ] {
            let why = refused(s);
            assert!(why.starts_with(flag), "{flag}: {why}");
        }
    }
}
