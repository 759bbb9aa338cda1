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

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nemesis::{NemesisOutcome, ScheduledFault};
use results::schema::Durations;
use results::{Plan, RunDir};

use crate::final_phase;
use crate::finish::{self, Judgement};
use crate::observe::Observer;
use crate::procedure;
use crate::progress;
use crate::recorder::{FLUSH_EVERY, Recorder};
use crate::system::node::NodeLauncher;
use crate::system::{Launcher, System};
use crate::vocab::{Completion, Failure, NodeId, WorkloadOp};
use crate::workload::{self, Shared, WorkloadConfig};

pub use crate::finish::{EngineError, RunOutcome};

/// Runs a plan against the system it names: the bundled node (or `--node-bin`), a
/// Maelstrom node (`--node-cmd`) or etcd (`--system etcd`).
pub fn execute(
    plan: &Plan,
    results: &Path,
    show: &dyn Observer,
) -> Result<RunOutcome, EngineError> {
    match plan.system {
        results::plan::SystemKind::Bundled => execute_with(plan, results, show, &NodeLauncher),
        results::plan::SystemKind::Maelstrom => execute_with(
            plan,
            results,
            show,
            &crate::system::maelstrom::MaelstromLauncher,
        ),
        results::plan::SystemKind::Etcd | results::plan::SystemKind::Declared => execute_with(
            plan,
            results,
            show,
            &crate::system::declared::DeclaredLauncher,
        ),
    }
}

/// Runs a plan against the system `launcher` makes. Errors before the run directory
/// exists are returned; everything after is recorded in the run directory.
pub fn execute_with<L: Launcher>(
    plan: &Plan,
    results: &Path,
    show: &dyn Observer,
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
    results::store::write_whole(&plan_path, plan.to_json()).map_err(|source| {
        EngineError::RunDir {
            path: plan_path,
            source,
        }
    })?;
    let outcome = run_plan(runtime.handle(), plan, &dir, show, launcher);
    // In-flight tasks (proxies, flusher) die with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(outcome)
}

fn run_plan<L: Launcher>(
    rt: &tokio::runtime::Handle,
    plan: &Plan,
    dir: &RunDir,
    show: &dyn Observer,
    launcher: &L,
) -> RunOutcome {
    let started = Instant::now();
    show.run_started(plan, &dir.path);
    let interrupted = Arc::new(AtomicBool::new(false));
    rt.block_on(async { progress::watch_signals(interrupted.clone()) });
    let recorder = match Recorder::create(&dir.file("history.jsonl"), plan.concurrency as u64) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            return finish::failed(plan, dir, show, format!("cannot create history.jsonl: {e}"));
        }
    };
    let flusher = {
        let recorder = recorder.clone();
        rt.spawn(async move {
            loop {
                tokio::time::sleep(FLUSH_EVERY).await;
                let _ = recorder.flush();
            }
        })
    };
    let system = match rt.block_on(launcher.launch(plan, &dir.path, &recorder)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            flusher.abort();
            let _ = recorder.flush();
            return finish::failed(plan, dir, show, e.what);
        }
    };
    let mut real = Real {
        rt,
        plan,
        dir,
        show,
        system: system.clone(),
        recorder: recorder.clone(),
        interrupted,
        began: rt.block_on(async { tokio::time::Instant::now() }),
        clients: Vec::new(),
        shared: Arc::new(Shared::new()),
        nemesis: None,
        startup_s: 0.0,
        workload_s: 0.0,
    };
    let mut ran = procedure::run(plan, &mut real, &recorder);
    let (startup_s, workload_s) = (real.startup_s, real.workload_s);
    drop(real);
    // Stop the nodes and make the history durable before judging it.
    {
        let s = system.clone();
        let _ = rt.block_on(rt.spawn_blocking(move || s.shutdown()));
    }
    flusher.abort();
    if let Err(e) = system.flush_trace() {
        ran.harness_failure
            .get_or_insert(format!("cannot write messages.jsonl: {e}"));
    }
    if let Err(e) = recorder.flush() {
        ran.harness_failure
            .get_or_insert(format!("cannot write history.jsonl: {e}"));
    }
    let durations = Durations {
        startup_s,
        workload_s,
        final_s: started.elapsed().as_secs_f64() - startup_s - workload_s,
        check_s: 0.0,
    };
    let judgement = Judgement {
        durations,
        links: system.link_stats(),
        system_version: system.version(),
        ..Judgement::of(ran)
    };
    finish::finish(plan, dir, show, judgement)
}

/// The real driver of the run procedure ([`procedure::run`]): processes on
/// wall-clock time, each step carried out on the async runtime.
struct Real<'a, S: System> {
    show: &'a dyn Observer,
    rt: &'a tokio::runtime::Handle,
    plan: &'a Plan,
    dir: &'a RunDir,
    system: Arc<S>,
    recorder: Arc<Recorder>,
    interrupted: Arc<AtomicBool>,
    began: tokio::time::Instant,
    /// The workload's client tasks and what they share, while it runs.
    clients: Vec<tokio::task::JoinHandle<()>>,
    shared: Arc<Shared>,
    nemesis: Option<tokio::task::JoinHandle<()>>,
    startup_s: f64,
    workload_s: f64,
}

/// A final-phase client of one real node: connected on its first call, and again
/// after a reply it cannot trust.
struct Session<C> {
    id: NodeId,
    client: Option<C>,
}

impl<S: System> Real<'_, S> {
    /// A blocking call of the system's, off the async workers.
    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&S) -> T + Send + 'static,
    ) -> Result<T, Failure> {
        let s = self.system.clone();
        self.rt
            .block_on(self.rt.spawn_blocking(move || f(&s)))
            .map_err(|e| Failure::harness(format!("a task of the harness failed: {e}")))
    }
}

impl<S: System> procedure::Driver for Real<'_, S> {
    type Session = Session<S::Client>;

    fn start_nodes(&mut self) -> Result<(), Failure> {
        let started = Instant::now();
        for id in 1..=self.system.nodes() as NodeId {
            self.blocking(move |s| s.start(id))??;
        }
        self.startup_s = started.elapsed().as_secs_f64();
        Ok(())
    }

    fn run_workload(&mut self) -> bool {
        let started = Instant::now();
        let (plan, system, recorder) = (self.plan, &self.system, &self.recorder);
        let active_faults = Arc::new(Mutex::new(Vec::new()));
        self.rt.block_on(async {
            self.clients = workload::start(
                &WorkloadConfig::of(plan),
                recorder.clone(),
                system.clone(),
                self.shared.clone(),
            );
            self.nemesis = Some(tokio::spawn(run_schedule(
                plan.schedule.clone(),
                system.clone(),
                recorder.clone(),
                active_faults.clone(),
            )));
            progress::until_limit(plan, recorder, &active_faults, &self.interrupted, self.show)
                .await;
        });
        self.workload_s = started.elapsed().as_secs_f64();
        self.interrupted.load(Ordering::SeqCst)
    }

    fn drain(&mut self, wait: Duration) {
        if let Some(n) = self.nemesis.take() {
            n.abort();
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        let clients = std::mem::take(&mut self.clients);
        self.rt.block_on(async {
            for c in clients {
                let _ = tokio::time::timeout(wait, c).await;
            }
        });
    }

    fn heal_links(&mut self) -> Result<(), Failure> {
        let healed = self.blocking(|s| s.links().heal().and_then(|()| s.links().restore()))?;
        healed.map_err(|e| Failure::harness(e.to_string()))
    }

    fn reset_clock(&mut self, id: NodeId) -> Result<bool, Failure> {
        // Only a clock that a fault left skewed is reset: the bundled node takes it
        // as a restart at real speed; other systems have no clock to reset.
        let reset = self.blocking(move |s| {
            if !s.clock_skewed(id) {
                return Ok(false);
            }
            nemesis::Nodes::set_clock(s, id, 1.0, 0)
        })?;
        reset.map_err(|e| Failure::system(e.to_string()))
    }

    /// A node that cannot be resumed is left to the restart that follows (it is gone,
    /// or the restart finds it unusable).
    fn resume(&mut self, id: NodeId) -> Result<bool, Failure> {
        self.blocking(move |s| s.is_paused(id) && nemesis::Nodes::resume(s, id) == Ok(true))
    }

    fn restart(&mut self, id: NodeId) -> Result<procedure::Restart, Failure> {
        self.blocking(move |s| {
            if s.is_running(id) {
                return Ok(procedure::Restart::Up);
            }
            s.start(id).map(|()| procedure::Restart::Restarted)
        })?
    }

    fn now(&self) -> Duration {
        self.began.elapsed()
    }

    fn sleep(&mut self, d: Duration) {
        // The timer is made inside the runtime: `tokio::time::sleep` made on this
        // (non-runtime) thread panics with "no reactor running".
        self.rt.block_on(async move { tokio::time::sleep(d).await });
    }

    fn open(&mut self, id: NodeId) -> Session<S::Client> {
        Session { id, client: None }
    }

    fn call(
        &mut self,
        session: &mut Session<S::Client>,
        op: &WorkloadOp,
        process: u64,
        timeout: Duration,
    ) -> Option<Completion> {
        let (system, recorder) = (&self.system, &self.recorder);
        self.rt.block_on(async {
            if session.client.is_none() {
                session.client = Some(system.connect(session.id).await?);
            }
            let client = session.client.as_mut()?;
            let done = workload::perform(client, op, process, session.id, recorder, timeout).await;
            // A connection that broke, or whose op may still be answered late, is
            // not used again.
            if done.reconnect || done.outcome == checker::history::Outcome::Info {
                session.client = None;
            }
            Some(done)
        })
    }

    fn dumps(&mut self) -> Vec<(NodeId, Failure)> {
        self.rt
            .block_on(final_phase::fetch_dumps(self.plan, self.dir, &self.system))
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
