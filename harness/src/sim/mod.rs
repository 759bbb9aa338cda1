//! `chaos sim`: the same plan, workload, faults, history, final phase, checks and
//! report as `chaos run`, with every node's real core running in this one process on
//! virtual time. One plan gives one run: the history is a function of the plan, and
//! its SHA-256 in result.json proves a replay exact.
//!
//! - [`world`]: the discrete-event world (nodes, disks, clocks, network, clients);
//! - [`disk`]: a WAL file with a page cache, recovered by the node's own code;
//! - [`faults`]: the world as the executor of [`nemesis::apply`];
//! - [`sweep`]: runs judged in memory, and many seeds of them on all cores;
//!
//! Every node's steps are shown to the protocol's rules ([`checker::protocol`]) as
//! they happen, in the words of [`paxos_node::rules`] (the same translation the
//! real node writes to its journal).

//!
//! What differs from a real run is only what a real run cannot control: time (virtual,
//! so a 30 s run takes a fraction of a second), the disk (unsynced bytes can be lost
//! on a crash, synced ones corrupted), and the clocks (nodes' timers can run fast or
//! slow, or jump).

pub mod core;
mod disk;
mod faults;
mod queue;
pub mod raft;

pub mod explore;
pub mod sweep;
mod world;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use checker::finals::{FinalDump, parse_final_owned};
use paxos_node::core::Config;
use results::schema::{Durations, SimCounts, Simulation};
use results::{Plan, RunDir};
use sha2::{Digest, Sha256};

use crate::finish::{self, Judgement};
use crate::finish::{EngineError, RunOutcome};
use crate::observe::Observer;
use crate::procedure;
use crate::recorder::Recorder;
use crate::spec::UsageError;
use crate::vocab::{Completion, Failure, NodeId, WorkloadOp};
use core::{Rules, SimCore};
use world::World;

/// A node's learned log as encoded, with where each entry's command lies in the
/// text: log agreement takes it as [`FinalDump::learned_as_written`] gives it,
/// without reading the text back.
pub struct LearnedLog {
    pub node: NodeId,
    pub text: String,
    entries: Vec<(u64, Option<std::ops::Range<usize>>)>,
}

impl LearnedLog {
    fn encode(node: NodeId, log: &core::Learned) -> LearnedLog {
        let mut entries = Vec::with_capacity(log.len());
        let text = paxos_node::client::encode_learned_placed(node, log.iter(), &mut |slot, at| {
            entries.push((slot, at))
        });
        LearnedLog {
            node,
            text,
            entries,
        }
    }

    /// The log as a final dump, as reading its text would give it.
    pub fn into_dump(self) -> Result<FinalDump, String> {
        FinalDump::learned_as_written(self.node, self.text, self.entries)
    }
}

/// What a simulation produced besides its history.
pub struct Simulated {
    /// What the run procedure found (the simulation is never interrupted and has no
    /// harness of its own to fail, so it always asks for liveness).
    pub ran: procedure::Ran,
    /// Each running node's final dump (docs/protocol.md), as the real node writes it.
    pub dumps: Vec<(NodeId, String)>,
    /// Per node, every slot it wrote down as chosen and synced over the run, the
    /// compacted ones included ([`paxos_node::client::encode_learned`]): log agreement
    /// judges the whole log, not only the tail above the snapshots.
    pub learned: Vec<LearnedLog>,
    pub counts: SimCounts,
    /// Messages per directed link and type.
    pub links: Vec<nemesis::net::LinkStats>,
    pub virtual_ns: u64,
    /// The protocol's rules, checked on every step, and the situations reached.
    pub protocol: checker::CheckReport,
    pub coverage: checker::protocol::Coverage,
    /// Each fault kind as it met the cluster (`kill@leader/caught-up`): whom it hit
    /// and the cluster's state then, for `chaos explore`.
    pub moments: std::collections::BTreeSet<String>,
    /// The workload ops as invoked, when asked for ([`simulate_traced`]).
    pub script: Option<Vec<results::plan::ScriptedOp>>,
}

/// The plan's node arguments, parsed by the node's own command line so that they
/// mean what they mean to a real node. Arguments that only make sense for a process
/// (addresses, data directories, `--unsafe-no-fsync`) are refused.
pub(crate) fn node_args(plan: &Plan) -> Result<paxos_node::cli::NodeArgs, UsageError> {
    for arg in &plan.node_args {
        let name = arg.split('=').next().unwrap_or(arg);
        if [
            "--id",
            "--listen",
            "--peer",
            "--data-dir",
            "--seed",
            "--unsafe-no-fsync",
            "--core",
        ]
        .contains(&name)
        {
            return Err(UsageError(format!(
                "--node-arg={arg}: chaos sim decides {name} itself; only the core's own settings (--bug, --election-timeout-ms, --request-timeout-ms, --leader-wait-ms, --no-pre-vote, --snapshot-every, --raft-*) apply"
            )));
        }
    }
    let argv = ["chaos node", "--id", "1", "--data-dir", "sim"]
        .into_iter()
        .map(String::from)
        .chain(plan.node_args.iter().cloned());
    paxos_node::cli::NodeArgs::parse_argv(argv)
        .map_err(|e| UsageError(format!("--node-arg: {}", e.lines().next().unwrap_or(""))))
}

/// The bundled Paxos nodes' configuration from the plan's node arguments
/// ([`node_args`]): `--bug`, `--election-timeout-ms`, `--request-timeout-ms`,
/// `--leader-wait-ms`, `--no-pre-vote` and `--snapshot-every`.
pub fn node_config(plan: &Plan) -> Result<Config, UsageError> {
    let args = node_args(plan)?;
    let cfg = args.into_config().map_err(|e| UsageError(e.to_string()))?;
    let mut core = cfg.core;
    if !plan
        .node_args
        .iter()
        .any(|a| a.starts_with("--snapshot-every"))
    {
        // Short simulated runs apply a few thousand commands: snapshot often, so
        // that snapshots, compaction and snapshot transfer meet every fault.
        core.timing.snapshot_every = SIM_SNAPSHOT_EVERY;
    }
    Ok(core)
}

/// Checks that the plan's node arguments configure its core.
pub fn check_config(plan: &Plan) -> Result<(), UsageError> {
    match plan.core {
        results::plan::CoreName::Paxos => node_config(plan).map(|_| ()),
        results::plan::CoreName::RaftRs => {
            <paxos_node::raft::RaftCore as SimCore>::plan_config(plan).map(|_| ())
        }
    }
}

/// Applied commands between snapshots in simulation, unless the plan's node
/// arguments say `--snapshot-every`.
pub const SIM_SNAPSHOT_EVERY: u64 = 200;

/// Runs `plan` to its end, writing its history through `recorder`. The one error is
/// the user's: node arguments the simulation cannot take ([`Blame::Input`]).
///
/// [`Blame::Input`]: crate::vocab::Blame::Input
pub fn simulate(plan: &Plan, recorder: &Recorder) -> Result<Simulated, Failure> {
    // One run at a time: the second core takes the rules and the learned logs.
    simulate_with(plan, recorder, None, false, true).map(|(sim, _)| sim)
}

/// [`simulate`], keeping the messages `trace` selects and, with `capture`, every
/// workload op as it is invoked.
pub fn simulate_traced(
    plan: &Plan,
    recorder: &Recorder,
    trace: Option<results::data::TraceSelector>,
    capture: bool,
) -> Result<(Simulated, Vec<results::data::TracedMessage>), Failure> {
    simulate_with(plan, recorder, trace, capture, false)
}

/// [`simulate_traced`]; `alone`: a single run with the cores to itself, whose
/// rules judge on a thread of their own ([`core::Rules::apart`]), whose learned
/// logs are encoded on two threads and freed on a thread of their own.
fn simulate_with(
    plan: &Plan,
    recorder: &Recorder,
    trace: Option<results::data::TraceSelector>,
    capture: bool,
    alone: bool,
) -> Result<(Simulated, Vec<results::data::TracedMessage>), Failure> {
    match plan.core {
        results::plan::CoreName::Paxos => {
            simulate_core::<paxos_node::core::Node>(plan, recorder, trace, capture, alone)
        }
        results::plan::CoreName::RaftRs => {
            simulate_core::<paxos_node::raft::RaftCore>(plan, recorder, trace, capture, alone)
        }
    }
}

/// [`simulate_traced`] with the core `C`.
fn simulate_core<C: SimCore>(
    plan: &Plan,
    recorder: &Recorder,
    trace: Option<results::data::TraceSelector>,
    capture: bool,
    alone: bool,
) -> Result<(Simulated, Vec<results::data::TracedMessage>), Failure> {
    let base = C::plan_config(plan).map_err(|e| Failure::input(e.0))?;
    let mut w = World::<C>::new(plan, recorder, base);
    if alone {
        w.rules = C::Rules::apart(plan.nodes);
    }
    w.trace = trace;
    w.capture = capture.then(Vec::new);
    let ran = procedure::run(plan, &mut Sim { w: &mut w, plan }, recorder);
    recorder.last_event_written();
    let dumps = dumps(&w, plan);
    let learned = encode_learned(&w, plan, alone);
    let rules = std::mem::replace(&mut w.rules, C::Rules::new(plan.nodes));
    let (mut protocol, coverage) = rules.finish();
    for (time_ns, id, kind, why) in std::mem::take(&mut w.findings) {
        protocol.verdict = checker::Verdict::Invalid;
        protocol.anomalies.push(checker::report::Anomaly {
            kind,
            key: None,
            slot: None,
            message: format!("node {id} {why}"),
            ops: Vec::new(),
            witness: None,
            messages: vec![checker::report::MessageRef {
                time_ns,
                event: "record".into(),
                from: Some(id),
                to: None,
                text: why,
            }],
            cycle: Vec::new(),
        });
    }
    let traced = w.trace.take().map(|t| t.finish()).unwrap_or_default();
    if alone {
        // The learned logs (every slot of every node) are most of what the world
        // frees: a single run frees them on a thread of its own while it is judged.
        let logs = w.take_learned();
        std::thread::spawn(move || drop(logs));
    }
    Ok((
        Simulated {
            dumps,
            learned,
            ran,
            counts: {
                let t = w.links.totals();
                SimCounts {
                    messages_sent: t.sent,
                    messages_delivered: t.delivered,
                    messages_dropped: t.dropped,
                    messages_duplicated: t.duplicated,
                    ..w.counts.clone()
                }
            },
            links: w.links.stats(),
            virtual_ns: w.now,
            protocol,
            coverage,
            moments: std::mem::take(&mut w.moments),
            script: w.capture.take(),
        },
        traced,
    ))
}

/// A failed simulated run's messages.jsonl, for the report's space-time diagram:
/// the plan runs again, which gives the same run, keeping the messages around the
/// first anomaly (the first pass keeps none, so a passing run costs nothing). The
/// second pass's history must hash as the first's did; if it does not, the run was
/// not deterministic and that is returned as the error.
pub fn trace_failed_run(plan: &Plan, dir: &Path) -> Result<usize, String> {
    let result_path = dir.join("result.json");
    let text = std::fs::read_to_string(&result_path)
        .map_err(|e| format!("cannot read {}: {e}", result_path.display()))?;
    let result = results::RunResult::parse(&text).map_err(|e| e.to_string())?;
    let history = results::judge::read_history(&dir.join("history.jsonl")).ok();
    let focus = results::data::trace_focus(&result, history.as_ref());
    drop(history);
    let sink = Memory::default();
    let recorder = Recorder::with_virtual_clock(Box::new(sink.clone()), plan.concurrency as u64);
    let selector = results::data::TraceSelector::new(focus, results::report::LAMPORT_CAP);
    let (_, traced) =
        simulate_traced(plan, &recorder, Some(selector), false).map_err(|e| e.what)?;
    recorder.flush().map_err(|e| e.to_string())?;
    drop(recorder);
    let again = sha256(&sink.0.lock().map_err(|_| "history sink poisoned")?);
    let first = result
        .simulation
        .map(|s| s.history_sha256)
        .unwrap_or_default();
    if again != first {
        return Err(format!(
            "the second pass for the message trace gave a different history (SHA-256 {again}, first {first}): the simulation is not deterministic here"
        ));
    }
    let mut out = Vec::new();
    for m in &traced {
        serde_json::to_writer(&mut out, m).map_err(|e| e.to_string())?;
        out.push(b'\n');
    }
    let path = dir.join("messages.jsonl");
    results::store::write_whole(&path, out)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(traced.len())
}

/// The simulated driver of the run procedure ([`procedure::run`]): the cores on
/// virtual time, every step a function of the plan.
struct Sim<'a, 'w, 'r, C: SimCore> {
    w: &'a mut World<'w, C>,
    plan: &'r Plan,
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

impl<C: SimCore> procedure::Driver for Sim<'_, '_, '_, C> {
    /// A script client of the world, and the node it asks.
    type Session = (usize, NodeId);

    fn start_nodes(&mut self) -> Result<(), Failure> {
        self.w.boot_all();
        Ok(())
    }

    fn run_workload(&mut self) -> bool {
        self.w.start_workload();
        self.w.sleep_until((self.plan.time_limit_s * 1e9) as u64);
        false
    }

    fn drain(&mut self, wait: Duration) {
        self.w.stop_workload();
        let until = self.w.now + ns(wait);
        self.w.run_until(until, |w| !w.workload_in_flight());
    }

    fn heal_links(&mut self) -> Result<(), Failure> {
        self.w.heal_links();
        Ok(())
    }

    /// Every clock is set back to real speed; none needs a restart for it.
    fn reset_clock(&mut self, id: NodeId) -> Result<bool, Failure> {
        self.w.set_clock(id, 1.0, 0);
        Ok(false)
    }

    fn resume(&mut self, id: NodeId) -> Result<bool, Failure> {
        Ok(self.w.is_paused(id) && self.w.resume(id))
    }

    /// A node's boot fails only when it refuses its corrupt WAL or snapshot.
    fn restart(&mut self, id: NodeId) -> Result<procedure::Restart, Failure> {
        Ok(match self.w.boot(id) {
            Ok(true) => procedure::Restart::Restarted,
            Ok(false) => procedure::Restart::Up,
            Err(world::Refused(why)) => procedure::Restart::Refused(why),
        })
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.w.now)
    }

    fn sleep(&mut self, d: Duration) {
        let until = self.w.now + ns(d);
        self.w.sleep_until(until);
    }

    fn open(&mut self, id: NodeId) -> (usize, NodeId) {
        (self.w.script_client(), id)
    }

    fn call(
        &mut self,
        &mut (client, node): &mut (usize, NodeId),
        op: &WorkloadOp,
        process: u64,
        timeout: Duration,
    ) -> Option<Completion> {
        self.w.call(client, node, op.clone(), process, ns(timeout))
    }

    /// The dumps are taken from the cores when the run ends ([`dumps`]): here only
    /// the nodes that have none.
    fn dumps(&mut self) -> Vec<(NodeId, Failure)> {
        (1..=self.plan.nodes as NodeId)
            .filter(|id| self.w.core(*id).is_none())
            .map(|id| (id, Failure::system(format!("node {id} is down"))))
            .collect()
    }
}

/// Every running node's dump, in the real node's format.
fn dumps<C: SimCore>(w: &World<C>, plan: &Plan) -> Vec<(NodeId, String)> {
    (1..=plan.nodes as NodeId)
        .filter_map(|id| Some((id, w.core(id)?.dump(id))))
        .collect()
}

/// Every node's learned log ([`paxos_node::client::encode_learned`]), in node order;
/// `alone`, on two threads, each taking the next node not yet taken
/// ([`crate::seeds::on_threads`]): a 5-node run's logs are megabytes.
fn encode_learned<C: SimCore>(w: &World<C>, plan: &Plan, alone: bool) -> Vec<LearnedLog> {
    let logs: Vec<(NodeId, &core::Learned)> = (1..=plan.nodes as NodeId)
        .map(|id| (id, w.learned(id)))
        .filter(|(_, log)| !log.is_empty())
        .collect();
    if !alone {
        return logs
            .iter()
            .map(|(id, log)| LearnedLog::encode(*id, log))
            .collect();
    }
    let encoded: Vec<Mutex<Option<LearnedLog>>> = logs.iter().map(|_| Mutex::default()).collect();
    let at = |i: u64| (i < logs.len() as u64).then_some(i);
    // Nothing stops it and no node's encoding fails: it ends when every node is done.
    let _ = crate::seeds::on_threads(2, &at, &|| None, &|i| {
        let (id, log) = logs[i as usize];
        let done = LearnedLog::encode(id, log);
        *encoded[i as usize]
            .lock()
            .expect("no lock is held across a panic") = Some(done);
        Ok(())
    });
    encoded
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .expect("no lock is held across a panic")
                .expect("every node is encoded")
        })
        .collect()
}

/// SHA-256 of a file, in hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 of bytes, in hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs a sim plan into a new run directory under `results`, as `chaos run` does for
/// real processes: plan.json, history.jsonl, final/, result.json, report, exit code.
pub fn execute(
    plan: &Plan,
    results: &Path,
    show: &dyn Observer,
) -> Result<RunOutcome, EngineError> {
    let dir = RunDir::create(results, &plan.name, plan.seed, plan.nodes).map_err(|e| {
        EngineError::RunDir {
            path: e.path.clone(),
            source: e.source,
        }
    })?;
    let io = |path: std::path::PathBuf| move |source| EngineError::RunDir { path, source };
    let plan_path = dir.file("plan.json");
    results::store::write_whole(&plan_path, plan.to_json()).map_err(io(plan_path.clone()))?;
    show.run_started(plan, &dir.path);
    let history = dir.file("history.jsonl");
    let file = std::fs::File::create(&history).map_err(io(history.clone()))?;
    // The history is written, hashed and built on a thread of its own.
    let recorder = Recorder::with_virtual_clock_apart(Box::new(file), plan.concurrency as u64);
    let started = Instant::now();
    let simulated = simulate(plan, &recorder);
    let wall_s = started.elapsed().as_secs_f64();
    let mut harness_failure = None;
    if let Err(e) = recorder.flush() {
        harness_failure = Some(format!("cannot write history.jsonl: {e}"));
    }
    // A history written whole is hashed and judged as the writer made it; one that
    // is not, from what its file holds.
    let whole = harness_failure.is_none();
    let written_sha256 = recorder.sha256().filter(|_| whole);
    let built = recorder
        .built()
        .map(|b| b.map_err(|e| format!("{} is not a valid history: {e}", history.display())));
    drop(recorder);
    let judgement = match simulated {
        Err(why) => {
            return Ok(finish::failed(plan, &dir, show, why.what));
        }
        Ok(sim) => {
            // A dump the harness cannot store is its own failure, as in a real run.
            // What was stored is judged as written, in the files' order: each node's
            // dump as its text parses, each learned log as encoded.
            let mut finals: Vec<(String, Result<FinalDump, String>)> = Vec::new();
            let mut stored = |name: String, text: &str| {
                let path = dir.file(&format!("final/{name}"));
                if let Err(e) = results::store::write_whole(&path, text) {
                    harness_failure.get_or_insert(format!("cannot write {}: {e}", path.display()));
                }
                move |why: String| format!("{}: {why}", path.display())
            };
            for (id, text) in sim.dumps {
                let name = format!("n{id}.json");
                let why = stored(name.clone(), &text);
                finals.push((name, parse_final_owned(text, Some(id)).map_err(why)));
            }
            for log in sim.learned {
                let name = format!("n{}.learned.json", log.node);
                let why = stored(name.clone(), &log.text);
                finals.push((name, log.into_dump().map_err(why)));
            }
            finals.sort_by(|a, b| a.0.cmp(&b.0));
            let built_finals = harness_failure
                .is_none()
                .then(|| finals.into_iter().map(|(_, dump)| dump).collect());
            let history_sha256 = match written_sha256 {
                Some(sha) => sha,
                None => sha256_file(&history).unwrap_or_default(),
            };
            Judgement {
                harness_failure: harness_failure.or(sim.ran.harness_failure.clone()),
                durations: Durations {
                    startup_s: 0.0,
                    workload_s: wall_s,
                    final_s: 0.0,
                    check_s: 0.0,
                },
                links: sim.links,
                simulation: Some(Simulation {
                    history_sha256,
                    virtual_s: sim.virtual_ns as f64 / 1e9,
                    wall_s,
                    counts: sim.counts,
                }),
                protocol: Some((sim.protocol, sim.coverage)),
                built_history: built.filter(|_| whole),
                built_finals,
                ..Judgement::of(sim.ran)
            }
        }
    };
    let outcome = finish::finish(plan, &dir, show, judgement);
    if outcome.verdict == results::Verdict::Invalid {
        match trace_failed_run(plan, &dir.path) {
            Ok(_) => {
                if let Err(e) = results::render_run(&dir.path) {
                    show.warn(&format!(
                        "chaos sim: cannot redraw the report with its messages: {e}"
                    ));
                }
            }
            Err(e) => show.warn(&format!("chaos sim: no message trace for the report: {e}")),
        }
    }
    Ok(outcome)
}

/// A history sink in memory, for runs judged without files (tests, sweeps).
#[derive(Clone, Default)]
pub struct Memory(pub Arc<Mutex<Vec<u8>>>);

impl Write for Memory {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
