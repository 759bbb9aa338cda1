//! The system seam is real: the engine runs, faults, records, judges and reports a
//! second system that has nothing to do with the bundled node, an in-memory key-value
//! store whose "nodes" are views of one map. A correct store is judged valid; one whose
//! nodes answer reads from their own stale copy is caught.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::execute_with;
use harness::observe::Silent;
use harness::procedure::Step;
use harness::recorder::Recorder;
use harness::spec::PlanSpec;
use harness::system::{
    CLIENT_TIMEOUT, CONNECTION_BROKEN, Client, Completion, Failure, Launcher, NodeId, System,
    UNAVAILABLE, WorkloadOp,
};
use results::{ExitCode, Plan};

#[derive(Default)]
struct State {
    /// Nodes started at least once.
    started: BTreeSet<NodeId>,
    running: BTreeSet<NodeId>,
    paused: BTreeSet<NodeId>,
    cut: BTreeSet<(NodeId, NodeId)>,
    store: BTreeMap<String, i64>,
    registers: BTreeMap<String, i64>,
    /// Per node: the store as that node last saw it (the stale variant reads this).
    copies: BTreeMap<NodeId, BTreeMap<String, i64>>,
}

struct Toy {
    n: usize,
    /// A node, once started, will not start again.
    no_restarts: bool,
    stale_reads: bool,
    garbage_dumps: bool,
    state: Arc<Mutex<State>>,
}

impl Toy {
    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl nemesis::Nodes for Toy {
    fn kill(&self, id: NodeId) -> nemesis::Acted {
        self.st().paused.remove(&id);
        Ok(self.st().running.remove(&id))
    }
    fn pause(&self, id: NodeId) -> nemesis::Acted {
        let mut s = self.st();
        Ok(s.running.contains(&id) && s.paused.insert(id))
    }
    fn resume(&self, id: NodeId) -> nemesis::Acted {
        Ok(self.st().paused.remove(&id))
    }
    fn restart(&self, id: NodeId) -> nemesis::Acted {
        Ok(self.st().running.insert(id))
    }
}

impl nemesis::Links for Toy {
    fn cut(&self, links: &[(NodeId, NodeId)]) -> Result<(), nemesis::FaultError> {
        self.st().cut = links.iter().copied().collect();
        Ok(())
    }
    fn heal(&self) -> Result<(), nemesis::FaultError> {
        self.st().cut.clear();
        Ok(())
    }
    fn degrade(&self, _: &[NodeId], _: &nemesis::LinkFaults) -> Result<(), nemesis::FaultError> {
        Err(nemesis::FaultError::Cannot(
            "the toy network has no link faults".into(),
        ))
    }
    fn restore(&self) -> Result<(), nemesis::FaultError> {
        Ok(())
    }
}

struct ToyClient {
    node: NodeId,
    n: usize,
    stale_reads: bool,
    state: Arc<Mutex<State>>,
}

impl Client for ToyClient {
    async fn call(&mut self, op: &WorkloadOp, timeout: Duration) -> Completion {
        let (running, paused) = {
            let s = self.state.lock().unwrap();
            (
                s.running.contains(&self.node),
                s.paused.contains(&self.node),
            )
        };
        if !running {
            return Completion::unknown(op, CONNECTION_BROKEN, true);
        }
        if paused {
            tokio::time::sleep(timeout).await;
            return Completion::unknown(op, CLIENT_TIMEOUT, true);
        }
        let mut s = self.state.lock().unwrap();
        // Serve only with a majority in reach (a partition's minority refuses).
        let reach = (1..=self.n as NodeId)
            .filter(|j| *j == self.node || !s.cut.contains(&(self.node, *j)))
            .count();
        if reach * 2 <= self.n {
            return Completion::fail(UNAVAILABLE);
        }
        let node = self.node;
        let done = match op {
            WorkloadOp::Propose { key, value } => {
                Completion::ok(Some(*s.registers.entry(key.clone()).or_insert(*value)))
            }
            WorkloadOp::Read { key } if self.stale_reads => {
                Completion::ok(s.copies.get(&node).and_then(|c| c.get(key)).copied())
            }
            WorkloadOp::Read { key } => Completion::ok(s.store.get(key).copied()),
            WorkloadOp::Write { key, value } => {
                s.store.insert(key.clone(), *value);
                Completion::ok(None)
            }
            WorkloadOp::Cas { key, from, to } => {
                if s.store.get(key) == Some(from) {
                    s.store.insert(key.clone(), *to);
                    Completion::ok(None)
                } else {
                    Completion::fail("precondition-failed")
                }
            }
            // This system's plans run no transactions.
            WorkloadOp::Txn { .. } => Completion::fail("unknown-op"),
        };
        if !matches!(op, WorkloadOp::Read { .. }) {
            let copy = s.store.clone();
            s.copies.insert(node, copy);
        }
        done
    }
}

impl System for Toy {
    type Client = ToyClient;
    fn nodes(&self) -> usize {
        self.n
    }
    fn start(&self, id: NodeId) -> Result<(), Failure> {
        let mut st = self.st();
        if self.no_restarts && st.started.contains(&id) {
            return Err(Failure::system(format!("node {id} exited during start-up")));
        }
        st.started.insert(id);
        st.running.insert(id);
        Ok(())
    }
    fn is_running(&self, id: NodeId) -> bool {
        self.st().running.contains(&id)
    }
    fn is_paused(&self, id: NodeId) -> bool {
        self.st().paused.contains(&id)
    }
    fn links(&self) -> &dyn nemesis::Links {
        self
    }
    async fn connect(&self, id: NodeId) -> Option<ToyClient> {
        self.is_running(id).then(|| ToyClient {
            node: id,
            n: self.n,
            stale_reads: self.stale_reads,
            state: self.state.clone(),
        })
    }
    async fn dump(&self, _: NodeId, path: &Path, _: Duration) -> Result<bool, Failure> {
        if !self.garbage_dumps {
            return Ok(false);
        }
        std::fs::write(path, "{\"registers\": {\"r0\"")
            .map_err(|e| Failure::harness(e.to_string()))?;
        Ok(true)
    }
    fn shutdown(&self) {
        self.st().running.clear();
    }
}

#[derive(Default)]
struct ToyLauncher {
    no_restarts: bool,
    stale_reads: bool,
    garbage_dumps: bool,
}

impl Launcher for ToyLauncher {
    type System = Toy;
    async fn launch(&self, plan: &Plan, _: &Path, _: &Arc<Recorder>) -> Result<Toy, Failure> {
        Ok(Toy {
            n: plan.nodes,
            no_restarts: self.no_restarts,
            stale_reads: self.stale_reads,
            garbage_dumps: self.garbage_dumps,
            state: Arc::default(),
        })
    }
}

/// The result.json a run left.
fn result_of(run_dir: &Path) -> results::RunResult {
    results::RunResult::parse(&std::fs::read_to_string(run_dir.join("result.json")).unwrap())
        .unwrap()
}

fn plan(seed: u64) -> Plan {
    let mut plan = PlanSpec {
        name: "toy".into(),
        seed: Some(seed),
        nodes: 3,
        workload: Some(results::Workload::Both),
        time_limit_s: 2.0,
        concurrency: Some(6),
        // Bounded: the toy answers at once, and the history must stay small.
        rate: 600.0,
        keys: 2,
        grace_s: 2.0,
        op_timeout_ms: 100,
        nemesis: Some("partition,kill,pause,links".parse().unwrap()),
        nemesis_interval_s: Some(0.4),
        ..PlanSpec::default()
    }
    .plan()
    .unwrap();
    // The workload's keys are data in the plan, and the final reads follow them.
    plan.kv_keys = vec!["alpha".into(), "beta".into()];
    plan
}

#[test]
fn the_engine_runs_faults_and_judges_a_second_system() {
    let root = tempfile::tempdir().unwrap();
    let plan = plan(3);
    let launcher = ToyLauncher::default();
    let out = execute_with(&plan, root.path(), &Silent, &launcher).unwrap();
    let r = result_of(&out.run_dir);
    assert_eq!(out.exit_code, ExitCode::Valid, "{:?}", r.checks);
    let history = results::judge::read_history(&out.run_dir.join("history.jsonl")).unwrap();
    let keys: BTreeSet<&str> = history
        .ops
        .iter()
        .filter(|o| o.f() != checker::history::F::Propose)
        .map(|o| &*o.key)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["alpha", "beta"]),
        "only the plan's keys"
    );
    assert!(
        history
            .ops
            .iter()
            .any(|o| o.f() == checker::history::F::Propose)
    );
    // Every fault kind went through nemesis::apply and was recorded with its outcome;
    // the toy has no link faults, so those were skipped with its reason.
    let outcome = |f: &str| {
        history
            .nemesis
            .iter()
            .filter(|e| e.f == f)
            .map(|e| e.value["outcome"].clone())
            .collect::<Vec<_>>()
    };
    for f in ["partition", "kill", "pause"] {
        assert!(
            outcome(f).iter().any(|o| o == "installed"),
            "{f}: {:?}",
            outcome(f)
        );
    }
    assert!(
        outcome("links")
            .iter()
            .all(|o| o["skipped"] == "the toy network has no link faults"),
        "{:?}",
        outcome("links")
    );
    // The header counts the faults the schedule starts; the summary counts those that
    // took effect: one unit, so they differ exactly by the ones that did not.
    let starts = ["partition", "kill", "pause", "links"];
    let not_in_force = history
        .nemesis
        .iter()
        .filter(|e| starts.contains(&e.f.as_str()))
        .filter(|e| {
            e.value["outcome"] != "installed"
                && e.value["outcome"].get("partially-installed").is_none()
        })
        .count();
    assert!(not_in_force > 0, "the toy's link faults were skipped");
    assert_eq!(r.faults.faults() + not_in_force, plan.scheduled_faults());
    // No dumps: log agreement is skipped, not failed; liveness was asked and held.
    let log = r
        .checks
        .iter()
        .flatten()
        .find(|c| c.name == "log-agreement");
    assert_eq!(log.unwrap().verdict, checker::Verdict::Skipped);
    // A system that is not the bundled node keeps no journal: the protocol's rules
    // are skipped, saying why, and the history checks still run.
    let protocol = r
        .checks
        .iter()
        .flatten()
        .find(|c| c.name == "protocol")
        .expect("a protocol check");
    assert_eq!(protocol.verdict, checker::Verdict::Skipped, "{protocol:?}");
    assert!(
        protocol.summary.contains("no journal"),
        "{}",
        protocol.summary
    );
    assert_eq!(r.liveness.ok, Some(true));
    assert!(out.run_dir.join("report.html").exists());
}

/// One plan, fault-free, through the real engine (on the toy system) and through the
/// simulation (on the bundled node's core): the run procedure is one, so both take
/// the same steps in the same order.
#[test]
fn the_real_engine_and_the_simulation_take_the_same_steps() {
    let root = tempfile::tempdir().unwrap();
    let mut real = plan(5);
    real.schedule.clear();
    let out = execute_with(&real, root.path(), &Silent, &ToyLauncher::default()).unwrap();
    assert_eq!(out.exit_code, ExitCode::Valid);
    let mut sim = real.clone();
    sim.mode = results::Mode::Sim;
    let simulated = harness::sim::execute(&sim, root.path(), &Silent).unwrap();
    assert_eq!(simulated.exit_code, ExitCode::Valid);
    let mut want = vec![Step::Start, Step::Workload, Step::Drain, Step::Heal];
    want.extend((1..=3).map(Step::Liveness));
    want.extend((1..=3).map(Step::Reads));
    want.push(Step::Dumps);
    assert_eq!(out.steps, want);
    assert_eq!(simulated.steps, want);
}

/// A node that will not start again at the final heal misbehaved: the run says so in
/// a note and fails liveness (exit 4), not the harness (exit 5).
#[test]
fn a_node_that_will_not_restart_at_the_final_heal_fails_liveness() {
    let root = tempfile::tempdir().unwrap();
    let mut plan = plan(6);
    plan.schedule = vec![nemesis::ScheduledFault {
        at_ms: 100,
        fault: nemesis::Fault::Kill,
        targets: vec![2],
        role: None,
    }];
    let launcher = ToyLauncher {
        no_restarts: true,
        ..ToyLauncher::default()
    };
    let out = execute_with(&plan, root.path(), &Silent, &launcher).unwrap();
    let r = result_of(&out.run_dir);
    assert_eq!(out.exit_code, ExitCode::Liveness, "{:?}", r.harness_failure);
    assert!(r.harness_failure.is_none());
    assert_eq!(r.liveness.ok, Some(false));
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("node 2 exited during start-up")),
        "{:?}",
        r.notes
    );
    assert!(!out.steps.contains(&Step::Liveness(2)), "{:?}", out.steps);
}

#[test]
fn a_second_system_with_stale_reads_is_caught() {
    let root = tempfile::tempdir().unwrap();
    let plan = plan(4);
    let launcher = ToyLauncher {
        stale_reads: true,
        ..ToyLauncher::default()
    };
    let out = execute_with(&plan, root.path(), &Silent, &launcher).unwrap();
    assert_eq!(out.exit_code, ExitCode::Invalid);
    let r = result_of(&out.run_dir);
    assert!(
        r.anomalies()
            .any(|(_, a)| a.kind == checker::AnomalyKind::NonLinearizable)
    );
}

fn log_agreement(r: &results::RunResult) -> &checker::CheckReport {
    r.checks
        .iter()
        .flatten()
        .find(|c| c.name == "log-agreement")
        .unwrap()
}

/// A run, the judgement of its files (what `chaos check RUN_DIR` runs) and the
/// rendering of a run without result.json (what `chaos report` runs) judge through
/// one path and decide in one place: an unreadable dump is the same `unknown` (exit 3)
/// in all.
#[test]
fn an_unreadable_dump_is_judged_alike_by_run_check_and_report() {
    let root = tempfile::tempdir().unwrap();
    let plan = plan(5);
    let launcher = ToyLauncher {
        garbage_dumps: true,
        ..ToyLauncher::default()
    };
    let out = execute_with(&plan, root.path(), &Silent, &launcher).unwrap();
    let ran = result_of(&out.run_dir);
    assert_eq!(out.exit_code, ExitCode::Unknown, "{:?}", ran.checks);
    assert_eq!(log_agreement(&ran).verdict, checker::Verdict::Unknown);
    assert!(
        log_agreement(&ran).unknown[0].contains("unreadable"),
        "{:?}",
        log_agreement(&ran).unknown
    );

    let judged = results::judge_run_dir(&out.run_dir, &checker::Options::default());
    let checked = judged.checked.expect("the history parses");
    let decided = results::verdict::decide(&results::verdict::Facts {
        checked: Some(&checked),
        ..results::verdict::Facts::default()
    });
    assert_eq!(decided.exit_code, ExitCode::Unknown);
    assert_eq!(checked.checks, ran.checks.clone().unwrap());

    std::fs::remove_file(out.run_dir.join("result.json")).unwrap();
    let reported = results::render_run(&out.run_dir).unwrap();
    assert_eq!(reported.result.exit_code, ExitCode::Unknown);
    let again = result_of(&out.run_dir);
    assert!(again.incomplete);
    assert_eq!(again.checks, ran.checks);
}
