//! The engine: one complete test of a system under a plan.
//!
//! plan.json first; then the history recorder, the system (network and nodes), the
//! workload and the fault schedule; at the time limit (or on SIGINT/SIGTERM) the final
//! phase ([`crate::final_phase`]); then judging, result.json, the report and the exit
//! code ([`crate::finish`]). Generic over the [`Launcher`]: the bundled node is one
//! system, and every other kind runs through the same code.
//!
//! Whatever happens, the nodes are stopped before the engine returns: the system is
//! shut down on every path, a panic hook kills every registered process group, and the
//! bundled node's processes carry a parent-death signal for a SIGKILLed harness.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nemesis::{NemesisOutcome, ScheduledFault};
use results::schema::Durations;
use results::{ExitCode, Plan, RunDir};

use crate::final_phase;
use crate::finish::{self, Judgement};
use crate::progress::{self, Presentation};
use crate::recorder::{FLUSH_EVERY, Recorder};
use crate::system::node::NodeLauncher;
use crate::system::{Launcher, NodeId, System};
use crate::workload::{self, Shared, WorkloadConfig};

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub exit_code: ExitCode,
    pub verdict: results::Verdict,
    pub run_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{source}: {path} (is --results writable?)")]
    RunDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs a plan against the system it names: the bundled node (or `--node-bin`), a
/// Maelstrom node (`--node-cmd`) or etcd (`--system etcd`).
pub fn execute(plan: &Plan, results: &Path, show: Presentation) -> Result<RunOutcome, EngineError> {
    match plan.protocol {
        results::plan::Protocol::Bundled => execute_with(plan, results, show, &NodeLauncher),
        results::plan::Protocol::Maelstrom => execute_with(
            plan,
            results,
            show,
            &crate::system::maelstrom::MaelstromLauncher,
        ),
        results::plan::Protocol::Etcd => {
            execute_with(plan, results, show, &crate::system::etcd::EtcdLauncher)
        }
    }
}

/// Runs a plan against the system `launcher` makes. Errors before the run directory
/// exists are returned; everything after is recorded in the run directory.
pub fn execute_with<L: Launcher>(
    plan: &Plan,
    results: &Path,
    show: Presentation,
    launcher: &L,
) -> Result<RunOutcome, EngineError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(EngineError::Runtime)?;
    let dir = RunDir::create(results, &plan.name, plan.seed, plan.nodes).map_err(|e| {
        EngineError::RunDir {
            path: e.path.clone(),
            source: e.source,
        }
    })?;
    let plan_path = dir.file("plan.json");
    std::fs::write(&plan_path, plan.to_json()).map_err(|source| EngineError::RunDir {
        path: plan_path,
        source,
    })?;
    let outcome = runtime.block_on(run_plan(plan, &dir, show, launcher));
    // In-flight tasks (proxies, flusher) die with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(outcome)
}

/// What the run learned on its way, for the judgement.
#[derive(Default)]
struct RunState {
    harness_failure: Option<String>,
    liveness: Option<Result<(), String>>,
    interrupted: bool,
    notes: Vec<String>,
    missing_dumps: Vec<(NodeId, String)>,
    workload_s: f64,
}

async fn run_plan<L: Launcher>(
    plan: &Plan,
    dir: &RunDir,
    show: Presentation,
    launcher: &L,
) -> RunOutcome {
    let started = Instant::now();
    progress::header(plan, dir, show);
    let interrupted = Arc::new(AtomicBool::new(false));
    progress::watch_signals(interrupted.clone());
    let recorder = match Recorder::create(&dir.file("history.jsonl"), plan.concurrency as u64) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            return finish::failed(plan, dir, show, format!("cannot create history.jsonl: {e}"));
        }
    };
    let flusher = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FLUSH_EVERY).await;
                let _ = recorder.flush();
            }
        })
    };
    let system = match launcher.launch(plan, &dir.path, &recorder).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            flusher.abort();
            let _ = recorder.flush();
            return finish::failed(plan, dir, show, e);
        }
    };
    let mut st = RunState {
        harness_failure: start_nodes(&system).await.err(),
        ..RunState::default()
    };
    let startup_s = started.elapsed().as_secs_f64();
    if st.harness_failure.is_none() {
        drive(plan, dir, show, &system, &recorder, &interrupted, &mut st).await;
    }
    // Stop the nodes and make the history durable before judging it.
    {
        let s = system.clone();
        let _ = tokio::task::spawn_blocking(move || s.shutdown()).await;
    }
    flusher.abort();
    if let Err(e) = system.flush_trace() {
        st.harness_failure
            .get_or_insert(format!("cannot write messages.jsonl: {e}"));
    }
    if let Err(e) = recorder.flush() {
        st.harness_failure
            .get_or_insert(format!("cannot write history.jsonl: {e}"));
    }
    let durations = Durations {
        startup_s,
        workload_s: st.workload_s,
        final_s: started.elapsed().as_secs_f64() - startup_s - st.workload_s,
        check_s: 0.0,
    };
    let judgement = Judgement {
        harness_failure: st.harness_failure,
        liveness: st.liveness,
        interrupted: st.interrupted,
        notes: st.notes,
        durations,
        links: system.link_stats(),
        missing_dumps: st.missing_dumps,
        simulation: None,
        protocol: None,
        system_version: system.version(),
    };
    finish::finish(plan, dir, show, judgement)
}

/// Starts every node in turn; the first that will not start fails the run (exit 5).
async fn start_nodes<S: System>(system: &Arc<S>) -> Result<(), String> {
    for id in 1..=system.nodes() as NodeId {
        let s = system.clone();
        tokio::task::spawn_blocking(move || s.start(id))
            .await
            .map_err(|e| format!("node start-up task failed: {e}"))??;
    }
    Ok(())
}

/// The workload and the schedule until the time limit, then the final phase.
async fn drive<S: System>(
    plan: &Plan,
    dir: &RunDir,
    show: Presentation,
    system: &Arc<S>,
    recorder: &Arc<Recorder>,
    interrupted: &AtomicBool,
    st: &mut RunState,
) {
    let shared = Arc::new(Shared::new());
    let clients = workload::start(
        &WorkloadConfig::of(plan),
        recorder.clone(),
        system.clone(),
        shared.clone(),
    );
    let active_faults = Arc::new(Mutex::new(Vec::new()));
    let nemesis = tokio::spawn(run_schedule(
        plan.schedule.clone(),
        system.clone(),
        recorder.clone(),
        active_faults.clone(),
    ));
    let workload_started = Instant::now();
    progress::until_limit(plan, recorder, &active_faults, interrupted, show).await;
    st.workload_s = workload_started.elapsed().as_secs_f64();
    st.interrupted = interrupted.load(Ordering::SeqCst);
    if st.interrupted {
        st.notes
            .push("interrupted: the run stopped early on SIGINT/SIGTERM".into());
    }
    nemesis.abort();
    shared.stop.store(true, Ordering::SeqCst);
    let wait = Duration::from_millis(plan.op_timeout_ms) + Duration::from_secs(2);
    for c in clients {
        let _ = tokio::time::timeout(wait, c).await;
    }
    if let Err(e) = final_phase::heal_everything(system, recorder).await {
        st.harness_failure = Some(e);
    }
    if st.harness_failure.is_none() && !st.interrupted {
        let done = final_phase::run(plan, dir, system, recorder).await;
        st.liveness = Some(done.liveness);
        st.missing_dumps = done.missing_dumps;
    }
}

/// How long a fault aimed by role keeps asking who leads while the answer is "not
/// yet" (an election on, nodes too slow to answer their status) before it falls back
/// on its drawn targets: about two elections of the bundled node or etcd.
const LEADER_ASK_BUDGET: Duration = Duration::from_secs(3);
/// The pause between two asks.
const LEADER_ASK_PAUSE: Duration = Duration::from_millis(100);

/// Who leads, asked again (bounded by [`LEADER_ASK_BUDGET`]) while no leader is known
/// yet; the view says how many asks it took when more than one.
async fn ask_leader<S: System>(system: &S) -> nemesis::LeaderView {
    let deadline = tokio::time::Instant::now() + LEADER_ASK_BUDGET;
    let mut asks = 1;
    loop {
        let mut view = system.leader().await;
        if view.leader.is_some() || !view.transient || tokio::time::Instant::now() >= deadline {
            if asks > 1 {
                view.how = format!("{} (ask {asks})", view.how);
            }
            return view;
        }
        tokio::time::sleep(LEADER_ASK_PAUSE).await;
        asks += 1;
    }
}

/// Executes a fault schedule through [`nemesis::apply`], recording each fault as a
/// nemesis event with its outcome.
async fn run_schedule<S: System>(
    schedule: Vec<ScheduledFault>,
    system: Arc<S>,
    recorder: Arc<Recorder>,
    active: Arc<Mutex<Vec<String>>>,
) {
    let start = tokio::time::Instant::now();
    let mut resolver = nemesis::Resolver::default();
    for fault in schedule {
        tokio::time::sleep_until(start + Duration::from_millis(fault.at_ms)).await;
        // A fault aimed by role is aimed now, from what the nodes say.
        let view = match fault.role {
            Some(_) if fault.fault.starts_fault() => Some(ask_leader(&*system).await),
            _ => None,
        };
        let (fault, resolution) = resolver.resolve(&fault, system.nodes(), || {
            view.unwrap_or_else(|| nemesis::LeaderView::unknown("not asked"))
        });
        let outcome = {
            let (s, f) = (system.clone(), fault.clone());
            tokio::task::spawn_blocking(move || nemesis::apply(&*s, s.links(), &f))
                .await
                .unwrap_or_else(|e| NemesisOutcome::Indeterminate(e.to_string()))
        };
        if let Ok(mut a) = active.lock() {
            a.clear();
            if fault.fault.starts_fault() && outcome.took_effect() {
                a.push(format!("{} {:?}", fault.fault.name(), fault.targets));
            }
        }
        recorder.fault(&fault, &outcome, resolution.as_ref());
    }
}
