//! Simulated runs judged in memory, and many seeds of them on all cores.
//!
//! A seed's run writes no files: its history and dumps stay in memory and go through
//! the same checks as a run directory's ([`checker::check_streaming`]) and the same
//! decision of verdict and exit code ([`results::verdict::decide`]). A failing seed is then run once more into a
//! run directory (the same plan gives the same run), so it gets its report.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use checker::finals::parse_final_owned;
use results::schema::SimCounts;
use results::{ExitCode, Plan, Verdict};

use super::{Memory, sha256, simulate_traced};
use crate::observe::{Observer, Silent};
use crate::recorder::Recorder;
use crate::vocab::Failure;

/// One simulated run, judged in memory.
#[derive(Clone, Debug)]
pub struct Judged {
    pub seed: u64,
    pub exit_code: ExitCode,
    pub verdict: Verdict,
    /// The first thing wrong, in one line (`None` for a valid run).
    pub problem: Option<String>,
    pub history_sha256: String,
    /// Client ops completed ok, failed, and of unknown outcome.
    pub ok_ops: u64,
    pub fail_ops: u64,
    pub info_ops: u64,
    /// The situations the protocol's rules matter in, as reached.
    pub coverage: checker::protocol::Coverage,
    /// The kinds of the protocol rules broken, in the order found.
    pub broken_rules: Vec<checker::AnomalyKind>,
    /// The verdict of the history checks alone, without the protocol's rules.
    pub history_verdict: Verdict,
    pub counts: SimCounts,
    /// Every check that failed, with the kinds of its anomalies in the order found.
    pub failures: Vec<(String, Vec<checker::AnomalyKind>)>,
    /// Whether the nodes failed to serve after the final heal.
    pub liveness_failed: bool,
    /// The workload ops as invoked ([`judge_capturing`]).
    pub script: Option<Vec<results::plan::ScriptedOp>>,
    /// How many faults took effect, counted as result.json counts them.
    pub faults: usize,
    /// Each fault kind as it met the cluster ([`super::Simulated::moments`]).
    pub moments: std::collections::BTreeSet<String>,
}

/// Every failed check, with the kinds of its anomalies in the order found: what
/// `chaos shrink` compares candidates by.
pub fn failures(checks: &[checker::CheckReport]) -> Vec<(String, Vec<checker::AnomalyKind>)> {
    checks
        .iter()
        .filter(|c| c.verdict == Verdict::Invalid)
        .map(|c| (c.name.clone(), c.anomalies.iter().map(|a| a.kind).collect()))
        .collect()
}

/// Simulates `plan` and judges it without touching the disk: an input error (node
/// arguments the simulation cannot take) or the harness's own (its history in
/// memory unreadable).
pub fn judge(plan: &Plan) -> Result<Judged, Failure> {
    judge_capturing(plan, false)
}

/// [`judge`]; with `capture`, the run's workload ops as a script too.
pub fn judge_capturing(plan: &Plan, capture: bool) -> Result<Judged, Failure> {
    let memory = Memory::default();
    let recorder = Recorder::with_virtual_clock(Box::new(memory.clone()), plan.concurrency as u64);
    // The history is judged as it was written, not read back from its text.
    recorder.build();
    let (sim, _) = simulate_traced(plan, &recorder, None, capture)?;
    recorder
        .flush()
        .map_err(|e| Failure::harness(format!("cannot keep the history: {e}")))?;
    let ok_ops = recorder.ok.load(Ordering::Relaxed);
    let fail_ops = recorder.fail.load(Ordering::Relaxed);
    let info_ops = recorder.info.load(Ordering::Relaxed);
    let built = recorder.built();
    drop(recorder);
    let bytes = std::mem::take(
        &mut *memory
            .0
            .lock()
            .map_err(|_| Failure::harness("the history's memory is poisoned"))?,
    );
    let history = built
        .expect("asked for above")
        .map_err(|e| Failure::harness(format!("the simulated history is unreadable: {e}")))?;
    let finals = sim
        .dumps
        .into_iter()
        .map(|(id, dump)| parse_final_owned(dump, Some(id)))
        .chain(sim.learned.into_iter().map(|log| log.into_dump()));
    let faults = results::faults::FaultSummary::of(&history.nemesis, history.end_ns).ran;
    let options = checker::Options {
        consistency_model: plan.consistency_model,
        ..checker::Options::default()
    };
    let mut checked = checker::check_streaming(&history, finals, &options);
    let broken_rules = sim.protocol.anomalies.iter().map(|a| a.kind).collect();
    let history_verdict = checked.verdict;
    checked.put(sim.protocol);
    let liveness_failed = matches!(sim.ran.liveness, Some(Err(_)));
    let exit_code = results::verdict::decide(&results::verdict::Facts {
        checked: Some(&checked),
        liveness: sim.ran.liveness.as_ref(),
        missing_dumps: &sim.ran.missing_dumps,
        ..results::verdict::Facts::default()
    })
    .exit_code;
    let failures = failures(&checked.checks);
    let problem = checked
        .checks
        .iter()
        .find_map(|c| {
            c.anomalies
                .first()
                .map(|a| format!("{}: {}", c.name, a.message))
        })
        .or_else(|| sim.ran.liveness.clone().and_then(Result::err));
    Ok(Judged {
        seed: plan.seed,
        exit_code,
        verdict: checked.verdict,
        problem,
        history_sha256: sha256(&bytes),
        ok_ops,
        fail_ops,
        info_ops,
        coverage: sim.coverage,
        broken_rules,
        history_verdict,
        counts: sim.counts,
        failures,
        liveness_failed,
        script: sim.script,
        faults,
        moments: sim.moments,
    })
}

/// Each failing seed run again into a run directory under `root` (the same plan gives
/// the same run), so it gets its report.
fn run_dirs(
    failures: &[Judged],
    plan_of: &(dyn Fn(u64) -> Plan + Sync),
    root: &Path,
    show: &dyn Observer,
) -> Vec<(u64, std::path::PathBuf)> {
    let mut dirs = Vec::new();
    for f in failures {
        match super::execute(&plan_of(f.seed), root, &Silent) {
            Ok(out) => {
                let dir = std::path::absolute(&out.run_dir).unwrap_or(out.run_dir.clone());
                show.say(&format!("seed {}: run directory {}", f.seed, dir.display()));
                dirs.push((f.seed, out.run_dir));
            }
            Err(e) => show.say(&format!(
                "seed {}: cannot write its run directory: {e}",
                f.seed
            )),
        }
    }
    dirs
}

/// What a sweep over seeds found.
#[derive(Debug)]
pub struct Sweep {
    pub seeds_run: u64,
    /// Failing seeds, in seed order.
    pub failures: Vec<Judged>,
    /// The worst seed's; at least unknown when the sweep stopped before its last seed
    /// (the seeds not run were not judged).
    pub exit_code: ExitCode,
    pub wall_s: f64,
    /// The run directory written for each failing seed.
    pub run_dirs: Vec<(u64, std::path::PathBuf)>,
    /// The situations the protocol's rules exist for, summed over every seed run.
    pub coverage: checker::protocol::Coverage,
    /// Why the sweep stopped before its last seed, if it did.
    pub stopped: Option<String>,
    /// Faults that took effect over every seed run, and the seeds that ran none.
    pub faults: u64,
    pub without_faults: u64,
}

/// How a sweep over seeds shows itself.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// SIGINT and SIGTERM stop the sweep after the seeds in flight instead of
    /// killing it: off for a caller that runs many sweeps and handles them itself.
    pub signals: bool,
    /// Told of every failing seed (with the command that reproduces it), of the
    /// seeds' progress and of the run directories written.
    pub show: &'a dyn Observer,
    /// Run every seed twice and fail it (exit 5, a bug of the simulation) unless
    /// both histories hash the same (`--check-determinism`).
    pub twice: bool,
}

impl View<'static> {
    /// Nothing said and no signal handling: for callers that run many sweeps.
    pub const QUIET: View<'static> = View {
        twice: false,
        signals: false,
        show: &Silent,
    };
}

/// Runs `plan_of(seed)` for every seed in `seeds` on `jobs` threads, stopping once
/// `max_failures` seeds failed (0: never) or, with `view.signals`, at SIGINT or
/// SIGTERM. Each failing seed is printed when found, with the command that
/// reproduces it, and then run again into a run directory.
pub fn sweep(
    seeds: std::ops::Range<u64>,
    jobs: usize,
    max_failures: usize,
    plan_of: &(dyn Fn(u64) -> Plan + Sync),
    results: Option<&Path>,
    view: View,
) -> Result<Sweep, String> {
    let show = view.show;
    let started = Instant::now();
    let failed = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let faults = AtomicU64::new(0);
    let without_faults = AtomicU64::new(0);
    let found: Mutex<Vec<Judged>> = Mutex::new(Vec::new());
    let worst = Mutex::new(ExitCode::Valid);
    let coverage = Mutex::new(checker::protocol::Coverage::default());
    if view.signals {
        crate::progress::stop_on_signals();
    }
    show.seeds_started(seeds.end.saturating_sub(seeds.start), false);
    let work = |seed: u64| -> Result<(), String> {
        let plan = plan_of(seed);
        let mut judged = judge(&plan).map_err(|e| e.what)?;
        if view.twice {
            let again = judge(&plan).map_err(|e| e.what)?;
            if again.history_sha256 != judged.history_sha256 {
                judged.exit_code = ExitCode::Harness;
                judged.problem = Some(format!(
                    "not deterministic: the plan's two runs gave histories with SHA-256 {} and {} (a bug in the simulation; please report it with this plan)",
                    judged.history_sha256, again.history_sha256
                ));
            }
        }
        faults.fetch_add(judged.faults as u64, Ordering::SeqCst);
        without_faults.fetch_add(u64::from(judged.faults == 0), Ordering::SeqCst);
        if let Ok(mut c) = coverage.lock() {
            c.add(&judged.coverage);
        }
        if let Ok(mut w) = worst.lock() {
            *w = w.worse(judged.exit_code);
        }
        if judged.exit_code != ExitCode::Valid {
            failed.fetch_add(1, Ordering::SeqCst);
            show.say(&format!(
                "seed {seed}: {} (exit {}): {}\n  reproduce: {}",
                judged.verdict.as_str(),
                judged.exit_code.code(),
                judged.problem.as_deref().unwrap_or("-"),
                plan.reproduce(None).unwrap_or_else(|| format!(
                    "{} --plan <its run directory>/plan.json (the flags cannot make this plan)",
                    plan.mode.command()
                ))
            ));
            found.lock().expect("not poisoned").push(judged);
        }
        let n_done = done.fetch_add(1, Ordering::SeqCst) + 1;
        show.seeds_progress(n_done, failed.load(Ordering::SeqCst) as u64);
        Ok(())
    };
    let enough = || {
        if view.signals && crate::progress::stop_requested() {
            return Some("interrupted (SIGINT or SIGTERM)".to_string());
        }
        (max_failures > 0 && failed.load(Ordering::SeqCst) >= max_failures)
            .then(|| format!("{max_failures} failing seeds"))
    };
    let range = seeds.clone();
    let ended = crate::seeds::on_threads(
        jobs,
        &|i| Some(range.start + i).filter(|s| *s < range.end),
        &enough,
        &work,
    );
    show.seeds_ended();
    let stopped = ended?;
    let mut failures = found.into_inner().expect("not poisoned");
    failures.sort_by_key(|j| j.seed);
    let run_dirs = results.map_or_else(Vec::new, |root| run_dirs(&failures, plan_of, root, show));
    let seeds_run = done.into_inner();
    // The loop's own count: every seed judged once, all of them unless it stopped.
    assert!(
        seeds_run <= seeds.end - seeds.start
            && (stopped.is_some() || seeds_run == seeds.end - seeds.start),
        "{seeds_run} of {} seeds judged, stopped: {stopped:?}",
        seeds.end - seeds.start
    );
    let mut exit_code = worst.into_inner().expect("not poisoned");
    if stopped.is_some() {
        // The seeds not run were not judged; a failing seed's code already ranks
        // above unknown, so only a sweep with none failing changes.
        exit_code = exit_code.worse(ExitCode::Unknown);
    }
    Ok(Sweep {
        seeds_run,
        failures,
        exit_code,
        wall_s: started.elapsed().as_secs_f64(),
        run_dirs,
        coverage: coverage.into_inner().expect("not poisoned"),
        stopped,
        faults: faults.into_inner(),
        without_faults: without_faults.into_inner(),
    })
}
