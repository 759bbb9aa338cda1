//! `chaos run` and `chaos replay`: one complete test of real node processes.
//!
//! plan.json first; then the network layer, the nodes, the workload and the fault
//! schedule; at the time limit (or on SIGINT/SIGTERM) the final phase: stop the
//! workload, heal every fault, restart dead nodes and resume paused ones, wait (up to
//! the grace period) until every node answers, read every key through every node, and
//! store each node's dump in final/. Then the checker judges history.jsonl and the
//! dumps, result.json is written, and the exit code says what happened (DESIGN.md §7).
//!
//! Whatever happens, the nodes are killed and reaped before `chaos` exits: the cluster
//! is dropped on every path, a panic hook kills every registered process group, and the
//! nodes carry a parent-death signal for the case of a SIGKILLed harness.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cluster::{Addresses, Cluster, NodeCommand};
use nemesis::net::{Network, Tracer};
use nemesis::{Fault, FaultKinds, ScheduledFault};

use crate::plan::{PLAN_VERSION, Plan, Workload, substream};
use crate::recorder::{FLUSH_EVERY, Recorder};
use crate::workload::{self, Conn, Ended, Shared, WorkloadConfig};
use results::RunDir;
use results::schema::{Durations, Liveness, RunResult, Versions};

/// How long the final phase waits for one node's dump.
const DUMP_TIMEOUT: Duration = Duration::from_secs(30);

/// Exit codes (DESIGN.md §7).
pub use results::exit::{
    HARNESS as EXIT_HARNESS, INVALID as EXIT_INVALID, LIVENESS as EXIT_LIVENESS,
    UNKNOWN as EXIT_UNKNOWN, USAGE as EXIT_USAGE, VALID as EXIT_VALID,
};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// register: contended proposals; kv: read/write/cas; both: half the clients each.
    #[arg(long, value_enum, default_value_t = Workload::Both)]
    pub workload: Workload,
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
    /// Fault kinds for the seeded schedule: a comma-separated list of partition, kill,
    /// pause, links; or all; or none.
    #[arg(long, value_name = "LIST", default_value = "partition,kill,pause")]
    pub nemesis: String,
    /// Seconds per fault slot: a fault starts at the beginning of its slot and is undone
    /// after 40-70% of it (so a 30 s run sees about 9 faults).
    #[arg(long, value_name = "S", default_value_t = 3.0)]
    pub nemesis_interval: f64,
    /// A JSON file with an explicit fault schedule instead of a generated one:
    /// [{"at_ms", "fault": {"kind": ...}, "targets": [ids]}], as plan.json stores it.
    #[arg(long, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
    /// Write messages.jsonl in the run directory: every peer message with its time,
    /// link, type and fate (delivered, dropped, duplicated) and delay.
    #[arg(long)]
    pub trace_messages: bool,
    /// No progress bar; a plain status line every few seconds instead.
    #[arg(long)]
    pub no_progress: bool,
    /// Print result.json on stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
}

/// How to present a run.
#[derive(Clone, Copy, Debug)]
pub struct Presentation {
    pub progress_bar: bool,
    pub json: bool,
    /// No header, no status lines and no summary (result.json is still written).
    pub quiet: bool,
}

/// Turns flags into a plan; a bad flag is a usage error.
pub fn plan_from_args(args: &RunArgs) -> Result<Plan> {
    if args.nodes == 0 || args.nodes > 15 {
        bail!("--nodes must be between 1 and 15 (got {})", args.nodes);
    }
    if !(args.time_limit > 0.0 && args.time_limit.is_finite()) {
        bail!("--time-limit must be a positive number of seconds");
    }
    if !(args.grace > 0.0 && args.grace.is_finite()) {
        bail!("--grace must be a positive number of seconds");
    }
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        bail!("--rate must be 0 (as fast as possible) or a positive number of ops/s");
    }
    if args.keys == 0 {
        bail!("--keys must be at least 1");
    }
    if args.op_timeout_ms == 0 {
        bail!("--op-timeout-ms must be positive");
    }
    if args.name.is_empty() || args.name.contains('/') || args.name.starts_with('.') {
        bail!(
            "--name must be a plain directory name (got {:?})",
            args.name
        );
    }
    let concurrency = args.concurrency.unwrap_or(2 * args.nodes);
    if concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if let Some(bin) = &args.node_bin {
        check_executable(bin)?;
    }
    let kinds: FaultKinds = args
        .nemesis
        .parse()
        .map_err(|e| anyhow::anyhow!("--nemesis: {e}"))?;
    if !(args.nemesis_interval > 0.0 && args.nemesis_interval.is_finite()) {
        bail!("--nemesis-interval must be a positive number of seconds");
    }
    let seed = args.seed.unwrap_or_else(random_seed);
    let schedule = match &args.schedule {
        None => nemesis::generate(
            args.nodes,
            &mut substream(seed, "nemesis"),
            kinds,
            (args.nemesis_interval * 1e3) as u64,
            (args.time_limit * 1e3) as u64,
        ),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --schedule {}", path.display()))?;
            let s: Vec<ScheduledFault> = serde_json::from_str(&text).with_context(|| {
                format!("--schedule {} is not a fault schedule", path.display())
            })?;
            for f in &s {
                if f.targets
                    .iter()
                    .any(|t| *t == 0 || *t as usize > args.nodes)
                {
                    bail!("--schedule: targets must be node ids 1..={}", args.nodes);
                }
            }
            s
        }
    };
    Ok(Plan {
        version: PLAN_VERSION,
        name: args.name.clone(),
        seed,
        nodes: args.nodes,
        workload: args.workload,
        time_limit_s: args.time_limit,
        concurrency,
        rate: args.rate,
        keys: args.keys,
        node_bin: args.node_bin.clone(),
        node_args: args.node_args.clone(),
        grace_s: args.grace,
        op_timeout_ms: args.op_timeout_ms,
        nemesis: kinds,
        nemesis_interval_s: args.nemesis_interval,
        schedule,
        explicit_schedule: args.schedule.is_some(),
        trace_messages: args.trace_messages,
    })
}

fn check_executable(bin: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(bin).with_context(|| {
        format!(
            "--node-bin {}: no such file; build it first or omit --node-bin to test the bundled node",
            bin.display()
        )
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        bail!("--node-bin {}: not an executable file", bin.display());
    }
    Ok(())
}

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1
}

/// What a run produced.
pub struct RunOutcome {
    pub exit_code: u8,
    pub verdict: String,
    pub run_dir: PathBuf,
}

/// Runs a plan to completion. Errors before the run directory exists are returned;
/// everything after is recorded in the run directory.
pub fn execute(plan: &Plan, results: &Path, show: Presentation) -> Result<RunOutcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let dir = RunDir::create(results, &plan.name, plan.seed, plan.nodes)
        .map_err(|e| anyhow::anyhow!("{e}: {} (is --results writable?)", e.source))?;
    std::fs::write(dir.file("plan.json"), serde_json::to_string_pretty(plan)?)
        .with_context(|| format!("cannot write {}", dir.file("plan.json").display()))?;
    let outcome = runtime.block_on(run_plan(plan, &dir, show));
    // In-flight tasks (proxies, flusher) die with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(outcome)
}

async fn run_plan(plan: &Plan, dir: &RunDir, show: Presentation) -> RunOutcome {
    let started = Instant::now();
    if !show.json && !show.quiet {
        println!(
            "chaos run: seed {} | {} nodes | {} workload | {} s | nemesis {} ({} faults) | run directory {}",
            plan.seed,
            plan.nodes,
            plan.workload.name(),
            plan.time_limit_s,
            plan.nemesis.describe(),
            plan.schedule.len(),
            dir.path.display()
        );
    }
    let mut notes: Vec<String> = Vec::new();
    let mut harness_failure: Option<String> = None;
    let mut liveness: Option<Result<(), String>> = None;
    let interrupted = Arc::new(AtomicBool::new(false));
    watch_signals(interrupted.clone());

    let recorder = match Recorder::create(&dir.file("history.jsonl"), plan.concurrency as u64) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            return finish_failed(plan, dir, show, format!("cannot create history.jsonl: {e}"));
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

    let addrs: Addresses = Arc::new(Mutex::new(vec![None; plan.nodes + 1]));
    let tracer = if plan.trace_messages {
        match Tracer::create(&dir.file("messages.jsonl"), recorder.start()) {
            Ok(t) => Some(Arc::new(t)),
            Err(e) => {
                return finish_failed(
                    plan,
                    dir,
                    show,
                    format!("cannot create messages.jsonl: {e}"),
                );
            }
        }
    } else {
        None
    };
    let network = match Network::start(plan.nodes, plan.seed, addrs.clone(), tracer).await {
        Ok(n) => Arc::new(n),
        Err(e) => {
            return finish_failed(
                plan,
                dir,
                show,
                format!("cannot start the network layer: {e}"),
            );
        }
    };
    let peers: Vec<Vec<String>> = (0..=plan.nodes as u32)
        .map(|i| {
            if i == 0 {
                return Vec::new();
            }
            (1..=plan.nodes as u32)
                .filter(|j| *j != i)
                .flat_map(|j| {
                    [
                        "--peer".to_string(),
                        format!("{j}={}", network.proxy_addr(i, j)),
                    ]
                })
                .collect()
        })
        .collect();
    let command = node_command(plan);
    let cluster = Arc::new(Mutex::new(Cluster::new(
        plan.nodes,
        &dir.path,
        command,
        plan.seed,
        peers,
        addrs.clone(),
    )));

    // Start every node; a node that will not start fails the run (exit 5).
    for id in 1..=plan.nodes as u32 {
        let c = cluster.clone();
        let started =
            tokio::task::spawn_blocking(move || c.lock().expect("cluster").start(id)).await;
        match started {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                harness_failure = Some(e.to_string());
                break;
            }
            Err(e) => {
                harness_failure = Some(format!("node start-up task failed: {e}"));
                break;
            }
        }
    }

    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        register_key: std::sync::atomic::AtomicU64::new(0),
    });
    let mut interrupted_at: Option<f64> = None;
    let startup_s = started.elapsed().as_secs_f64();
    let mut workload_s = 0.0;
    if harness_failure.is_none() {
        let wcfg = WorkloadConfig {
            seed: plan.seed,
            nodes: plan.nodes,
            concurrency: plan.concurrency,
            workload: plan.workload,
            keys: plan.keys,
            rate: plan.rate,
            op_timeout: Duration::from_millis(plan.op_timeout_ms),
        };
        let clients = workload::start(&wcfg, recorder.clone(), addrs.clone(), shared.clone());
        let active_faults = Arc::new(Mutex::new(Vec::new()));
        let nemesis = tokio::spawn(run_schedule(
            plan.schedule.clone(),
            cluster.clone(),
            network.clone(),
            recorder.clone(),
            active_faults.clone(),
        ));
        let limit = Duration::from_secs_f64(plan.time_limit_s);
        let workload_started = Instant::now();
        progress(
            plan,
            &recorder,
            &active_faults,
            limit,
            &interrupted,
            show,
            workload_started,
        )
        .await;
        workload_s = workload_started.elapsed().as_secs_f64();
        if interrupted.load(Ordering::SeqCst) {
            interrupted_at = Some(recorder.elapsed().as_secs_f64());
            notes.push("interrupted: the run stopped early on SIGINT/SIGTERM".into());
        }
        nemesis.abort();
        shared.stop.store(true, Ordering::SeqCst);
        let wait = Duration::from_millis(plan.op_timeout_ms) + Duration::from_secs(2);
        for c in clients {
            let _ = tokio::time::timeout(wait, c).await;
        }
        if let Err(e) = heal_everything(&cluster, &network, &recorder).await {
            harness_failure = Some(e);
        }
        if harness_failure.is_none() && interrupted_at.is_none() {
            liveness = Some(final_phase(plan, dir, &addrs, &recorder).await);
        }
    }

    // Stop the nodes and make the history durable before judging it.
    {
        let c = cluster.clone();
        let _ = tokio::task::spawn_blocking(move || c.lock().expect("cluster").shutdown()).await;
    }
    flusher.abort();
    if let Err(e) = network.flush_trace() {
        harness_failure.get_or_insert(format!("cannot write messages.jsonl: {e}"));
    }
    if let Err(e) = recorder.flush() {
        harness_failure.get_or_insert(format!("cannot write history.jsonl: {e}"));
    }
    let durations = Durations {
        startup_s,
        workload_s,
        final_s: started.elapsed().as_secs_f64() - startup_s - workload_s,
        check_s: 0.0,
    };
    judge(
        plan,
        dir,
        show,
        Judgement {
            harness_failure,
            liveness,
            interrupted: interrupted_at.is_some(),
            notes,
            durations,
            links: network.stats(),
        },
    )
}

fn node_command(plan: &Plan) -> NodeCommand {
    match &plan.node_bin {
        Some(bin) => NodeCommand {
            program: bin.clone(),
            prefix: Vec::new(),
            extra: plan.node_args.clone(),
        },
        None => NodeCommand {
            program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("chaos")),
            prefix: vec!["node".into()],
            extra: plan.node_args.clone(),
        },
    }
}

fn watch_signals(flag: Arc<AtomicBool>) {
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [SignalKind::interrupt(), SignalKind::terminate()] {
        let flag = flag.clone();
        if let Ok(mut s) = signal(kind) {
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    flag.store(true, Ordering::SeqCst);
                }
            });
        }
    }
}

/// Waits for the time limit (or an interrupt), showing progress.
async fn progress(
    plan: &Plan,
    recorder: &Recorder,
    active_faults: &Mutex<Vec<String>>,
    limit: Duration,
    interrupted: &AtomicBool,
    show: Presentation,
    start: Instant,
) {
    let bar = show.progress_bar.then(|| {
        let bar = indicatif::ProgressBar::new(limit.as_millis() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed:>4}/{prefix} [{bar:30}] {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}s", plan.time_limit_s));
        bar
    });
    let mut last_line = Instant::now();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= limit || interrupted.load(Ordering::SeqCst) {
            break;
        }
        let (ok, fail, info) = (
            recorder.ok.load(Ordering::Relaxed),
            recorder.fail.load(Ordering::Relaxed),
            recorder.info.load(Ordering::Relaxed),
        );
        let faults = active_faults
            .lock()
            .ok()
            .filter(|a| !a.is_empty())
            .map_or("none".to_string(), |a| a.join(", "));
        let msg = format!("ok {ok} fail {fail} info {info} | faults: {faults}");
        match &bar {
            Some(b) => {
                b.set_position(elapsed.as_millis() as u64);
                b.set_message(msg);
            }
            None if !show.json && !show.quiet && last_line.elapsed() >= Duration::from_secs(5) => {
                last_line = Instant::now();
                eprintln!(
                    "[{:>5.1}s/{}s] {msg}",
                    elapsed.as_secs_f64(),
                    plan.time_limit_s
                );
            }
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

/// Executes a fault schedule, recording each fault as a nemesis event with its outcome
/// (DESIGN.md §9: installed, skipped with a reason, or indeterminate).
async fn run_schedule(
    schedule: Vec<ScheduledFault>,
    cluster: Arc<Mutex<Cluster>>,
    network: Arc<Network>,
    recorder: Arc<Recorder>,
    active: Arc<Mutex<Vec<String>>>,
) {
    let start = tokio::time::Instant::now();
    for fault in schedule {
        tokio::time::sleep_until(start + Duration::from_millis(fault.at_ms)).await;
        let targets = fault.targets.clone();
        let outcome = match &fault.fault {
            Fault::Partition { cut, .. } => {
                network.cut(cut);
                json!("installed")
            }
            Fault::Heal => {
                network.heal_partitions();
                json!("installed")
            }
            Fault::Links(faults) => {
                network.degrade(&targets, faults);
                json!("installed")
            }
            Fault::LinksHeal => {
                network.restore_links();
                json!("installed")
            }
            Fault::Kill | Fault::Pause | Fault::Resume | Fault::Restart => {
                let c = cluster.clone();
                let kind = fault.fault.clone();
                let done = tokio::task::spawn_blocking(move || {
                    let mut c = c.lock().expect("cluster");
                    targets
                        .iter()
                        .map(|&id| match kind {
                            Fault::Kill => c.kill(id),
                            Fault::Pause => c.pause(id),
                            Fault::Resume => c.resume(id),
                            Fault::Restart => !c.is_running(id) && c.start(id).is_ok(),
                            _ => false,
                        })
                        .collect::<Vec<bool>>()
                })
                .await;
                match done {
                    Ok(done) if done.iter().all(|d| *d) => json!("installed"),
                    Ok(done) if done.iter().any(|d| *d) => json!({"partially-installed": done}),
                    Ok(_) => json!({"skipped": "no target was in a state the fault applies to"}),
                    Err(e) => json!({"indeterminate": e.to_string()}),
                }
            }
        };
        if let Ok(mut a) = active.lock() {
            match &fault.fault {
                Fault::Heal | Fault::Restart | Fault::Resume | Fault::LinksHeal => a.clear(),
                f => {
                    a.clear();
                    a.push(format!("{} {:?}", f.name(), fault.targets));
                }
            }
        }
        let mut value = serde_json::to_value(&fault.fault).unwrap_or(Value::Null);
        value["targets"] = json!(fault.targets);
        value["outcome"] = outcome;
        value["at_ms"] = json!(fault.at_ms);
        recorder.nemesis(fault.fault.name(), value);
    }
}

/// Heals the network, resumes paused nodes and restarts dead ones.
async fn heal_everything(
    cluster: &Arc<Mutex<Cluster>>,
    network: &Network,
    recorder: &Recorder,
) -> Result<(), String> {
    network.heal_partitions();
    network.restore_links();
    let c = cluster.clone();
    let (resumed, restarted, failed) = tokio::task::spawn_blocking(move || {
        let mut c = c.lock().expect("cluster");
        let (mut resumed, mut restarted, mut failed) = (Vec::new(), Vec::new(), None);
        for id in 1..=c.n() as u32 {
            if c.is_paused(id) && c.resume(id) {
                resumed.push(id);
            }
            if !c.is_running(id) {
                match c.start(id) {
                    Ok(_) => restarted.push(id),
                    Err(e) => failed = Some(e.to_string()),
                }
            }
        }
        (resumed, restarted, failed)
    })
    .await
    .map_err(|e| format!("final heal failed: {e}"))?;
    recorder.nemesis(
        "heal",
        json!({"final": true, "resumed": resumed, "restarted": restarted, "outcome": "installed"}),
    );
    failed.map_or(Ok(()), |e| Err(format!("final heal: {e}")))
}

/// After the heal: every node must answer within the grace period; then every key is
/// read through every node (recorded ops), and each node's dump is stored.
async fn final_phase(
    plan: &Plan,
    dir: &RunDir,
    addrs: &Addresses,
    recorder: &Recorder,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(plan.grace_s);
    let timeout = Duration::from_millis(plan.op_timeout_ms);
    let kv = plan.workload != Workload::Register;
    let mut silent = Vec::new();
    for id in 1..=plan.nodes as u32 {
        let addr = addrs.lock().ok().and_then(|a| a[id as usize]);
        let answered = match addr {
            Some(addr) => node_answers(addr, id, kv, deadline, timeout, recorder).await,
            None => false,
        };
        if !answered {
            silent.push(id);
        }
    }
    // Final reads: every KV key through every node that answers.
    if kv {
        for id in 1..=plan.nodes as u32 {
            if silent.contains(&id) {
                continue;
            }
            let Some(addr) = addrs.lock().ok().and_then(|a| a[id as usize]) else {
                continue;
            };
            if let Some(mut conn) = Conn::connect(addr, Duration::from_secs(1)).await {
                let process = recorder.new_process();
                for k in 0..plan.keys {
                    let op = workload::ClientOp::Read {
                        key: format!("k{k}"),
                    };
                    workload::perform(&mut conn, &op, process, id, recorder, timeout).await;
                }
            }
        }
    }
    // Dumps: what each node learned, fetched from every node at once. A dump holds
    // the whole chosen log, so it gets more time than an op.
    let mut fetches = tokio::task::JoinSet::new();
    for id in 1..=plan.nodes as u32 {
        let Some(addr) = addrs.lock().ok().and_then(|a| a[id as usize]) else {
            continue;
        };
        let path = dir.file(&format!("final/n{id}.json"));
        fetches.spawn(async move {
            if let Some(mut conn) = Conn::connect(addr, Duration::from_secs(1)).await {
                // Streamed to the file as it arrives; a partial file is removed.
                let fetched = conn
                    .call_to_file(json!({"op": "dump"}), &path, DUMP_TIMEOUT)
                    .await;
                if fetched.is_err() {
                    let _ = std::fs::remove_file(&path);
                }
            }
        });
    }
    while fetches.join_next().await.is_some() {}
    if silent.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "nodes {silent:?} did not answer within the {} s grace period after the final heal",
            plan.grace_s
        ))
    }
}

/// Polls node `id` with a recorded op until it succeeds or the deadline passes.
async fn node_answers(
    addr: std::net::SocketAddr,
    id: u32,
    kv: bool,
    deadline: tokio::time::Instant,
    timeout: Duration,
    recorder: &Recorder,
) -> bool {
    let mut process = recorder.new_process();
    while tokio::time::Instant::now() < deadline {
        let Some(mut conn) = Conn::connect(addr, Duration::from_secs(1)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        loop {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            let op = if kv {
                workload::ClientOp::Read { key: "k0".into() }
            } else {
                // A register workload's final check: a propose on a fresh key.
                workload::ClientOp::Propose {
                    key: format!("final-n{id}"),
                    value: -(i64::from(id)),
                }
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let done =
                workload::perform(&mut conn, &op, process, id, recorder, timeout.min(left)).await;
            match done.ended {
                Ended::Ok => return true,
                Ended::Info => {
                    process = recorder.new_process();
                    break;
                }
                Ended::Fail => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    false
}

struct Judgement {
    harness_failure: Option<String>,
    liveness: Option<Result<(), String>>,
    interrupted: bool,
    notes: Vec<String>,
    durations: Durations,
    links: Vec<nemesis::net::LinkStats>,
}

fn finish_failed(plan: &Plan, dir: &RunDir, show: Presentation, why: String) -> RunOutcome {
    judge(
        plan,
        dir,
        show,
        Judgement {
            harness_failure: Some(why),
            liveness: None,
            interrupted: false,
            notes: Vec::new(),
            durations: Durations::default(),
            links: Vec::new(),
        },
    )
}

/// Checks the history, writes result.json, prints the summary, picks the exit code.
fn judge(plan: &Plan, dir: &RunDir, show: Presentation, j: Judgement) -> RunOutcome {
    let check_started = Instant::now();
    let history_path = dir.file("history.jsonl");
    let parsed = std::fs::File::open(&history_path)
        .map_err(|e| e.to_string())
        .and_then(|f| {
            checker::history::parse_history(std::io::BufReader::new(f)).map_err(|e| e.to_string())
        });
    let checked = parsed.as_ref().map_err(Clone::clone).and_then(|history| {
        let options = checker::Options::default();
        match checker::finals::finals_in(&dir.file("final")) {
            Ok(dumps) => checker::check_streaming(history, dumps, &options)
                .map_err(|e| format!("a final dump is unreadable: {e}")),
            Err(_) => Ok(checker::check(history, &[], &options)),
        }
    });
    let faults = parsed
        .as_ref()
        .map(|h| results::FaultSummary::of(&h.nemesis, h.end_ns))
        .unwrap_or_default();
    // Kept for the report, which would otherwise parse the file again.
    let parsed = parsed.ok();
    let check_secs = check_started.elapsed().as_secs_f64();
    let mut harness_failure = j.harness_failure;
    let mut notes = j.notes;
    // Nodes that recovered must have left their dumps, or log agreement went unchecked.
    let missing_dumps: Vec<usize> = (1..=plan.nodes)
        .filter(|id| !dir.file(&format!("final/n{id}.json")).exists())
        .collect();
    let dumps_missing = matches!(j.liveness, Some(Ok(()))) && !missing_dumps.is_empty();
    if dumps_missing {
        notes.push(format!(
            "the dumps of nodes {missing_dumps:?} could not be fetched: log agreement is not fully checked"
        ));
    }
    let result = match checked {
        Ok(r) => Some(r),
        Err(e) => {
            harness_failure.get_or_insert(format!("the recorded history is unreadable: {e}"));
            None
        }
    };
    let verdict = result
        .as_ref()
        .map_or(checker::Verdict::Unknown, |r| r.verdict);
    let liveness_failed = matches!(j.liveness, Some(Err(_)));
    let exit_code = if verdict == checker::Verdict::Invalid {
        EXIT_INVALID
    } else if harness_failure.is_some() {
        EXIT_HARNESS
    } else if liveness_failed {
        EXIT_LIVENESS
    } else if j.interrupted || dumps_missing || verdict == checker::Verdict::Unknown {
        EXIT_UNKNOWN
    } else {
        EXIT_VALID
    };
    let run_result = RunResult {
        schema_version: results::SCHEMA_VERSION,
        verdict: results::Verdict::of(verdict),
        exit_code,
        seed: plan.seed,
        name: plan.name.clone(),
        started_at: Some(dir.started_at.clone()),
        run_dir: dir.path.display().to_string(),
        reproduce: plan.command_line(),
        replay: format!("chaos replay {}", dir.path.display()),
        plan: serde_json::to_value(plan).unwrap_or(Value::Null),
        harness_failure,
        liveness: match &j.liveness {
            None => Liveness::default(),
            Some(Ok(())) => Liveness {
                checked: true,
                ok: Some(true),
                message: None,
            },
            Some(Err(e)) => Liveness {
                checked: true,
                ok: Some(false),
                message: Some(e.clone()),
            },
        },
        interrupted: j.interrupted,
        incomplete: false,
        notes,
        checks: result.as_ref().map(|r| r.checks.clone()),
        stats: result.as_ref().map(|r| r.stats.clone()),
        faults,
        links: j.links,
        durations: Durations {
            check_s: check_secs,
            ..j.durations
        },
        versions: Versions {
            chaos: env!("CARGO_PKG_VERSION").to_string(),
        },
        harness_peak_rss_mb: peak_rss_mb(),
    };
    let text = run_result.to_json();
    if let Err(e) = std::fs::write(dir.file("result.json"), &text) {
        eprintln!("chaos run: cannot write result.json: {e}");
    }
    // report.html, junit.xml and the results index, from the files just written.
    let report = match results::render_run_with(&dir.path, parsed) {
        Ok(r) => Some(r.report),
        Err(e) => {
            eprintln!("chaos run: cannot render the report: {e}");
            None
        }
    };
    if show.json {
        println!("{text}");
    } else if !show.quiet {
        print!(
            "{}",
            results::summary::render(
                &run_result,
                report.as_deref(),
                results::summary::colour_on_stdout()
            )
        );
    }
    RunOutcome {
        exit_code,
        verdict: verdict.as_str().to_string(),
        run_dir: dir.path.clone(),
    }
}

/// This process's peak resident memory so far (VmHWM), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// `chaos replay RUN_DIR --times N`: re-runs a stored plan and reports how often the
/// original verdict came back.
pub fn replay(run_dir: &Path, times: usize, show: Presentation) -> Result<u8> {
    let plan: Plan = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("plan.json"))
            .with_context(|| format!("{} has no plan.json", run_dir.display()))?,
    )
    .context("plan.json is not a plan")?;
    let original: Value = std::fs::read_to_string(run_dir.join("result.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let original_verdict = original["verdict"]
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    // The run directory is <root>/<name>/<leaf>: replays go beside it.
    let root = run_dir
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("runs"), Path::to_path_buf);
    let mut same = 0;
    let mut worst = EXIT_VALID;
    for i in 1..=times {
        let outcome = execute(&plan, &root, show)?;
        if outcome.verdict == original_verdict {
            same += 1;
        }
        worst = worse(worst, outcome.exit_code);
        println!(
            "replay {i}/{times}: {} (exit {}) in {}",
            outcome.verdict,
            outcome.exit_code,
            outcome.run_dir.display()
        );
    }
    println!("reproduced the original verdict '{original_verdict}' in {same} of {times} runs");
    Ok(worst)
}

/// The exit code that wins when several runs (or conditions) hold (DESIGN.md §7).
pub fn worse(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        EXIT_INVALID => 5,
        EXIT_HARNESS => 4,
        EXIT_LIVENESS => 3,
        EXIT_UNKNOWN => 2,
        EXIT_USAGE => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// The bar is for people: only on a terminal and without --no-progress or --json.
pub fn presentation(no_progress: bool, json: bool) -> Presentation {
    Presentation {
        progress_bar: !no_progress && !json && std::io::stderr().is_terminal(),
        json,
        quiet: false,
    }
}
