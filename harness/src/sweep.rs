//! `chaos sweep` and `chaos merge` (docs/sweep.md): many seeds of one test, on one
//! machine or as one shard of many, and the shards' results merged into one answer.
//!
//! A sweep runs its shard's seeds J at a time, each as `chaos sim` or `chaos run` would
//! (simulated seeds are judged in memory, and a failing one is run again into a run
//! directory), and appends one [`SeedRecord`] per run to `sweep.jsonl` as runs end, so
//! a sweep killed half way leaves every finished run's record. A real failing seed is
//! run again `--confirm K` times: reproducible or flaky. At the end it writes
//! junit.xml, index.html and summary.txt from the records; `chaos merge` writes the
//! same three files from the records of many sweep directories.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use results::sweep::{
    Confirmation, META_FILE, RECORDS_FILE, SWEEP_VERSION, Scope, SeedRecord, Shard, SweepMeta,
};
use results::{ExitCode, Mode, Plan, RunResult};

use crate::observe::{Observer, Silent};
use crate::spec::{PlanSpec, UsageError};

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error("{0}")]
    Failed(String),
}

/// What `chaos sweep` runs: the plan of every seed, which seeds, how.
#[derive(Clone, Debug)]
pub struct SweepSpec {
    /// Every seed's plan but its seed (simulated or real, as its mode says).
    pub plan: PlanSpec,
    /// Where the sweep directory goes.
    pub results: PathBuf,
    /// Every shard's seeds, A..B (B excluded).
    pub seeds: std::ops::Range<u64>,
    pub shard: Shard,
    /// Seeds run at once [`None`: real 1; sim the number of cores].
    pub jobs: Option<u64>,
    /// Real mode: re-runs of each failing seed.
    pub confirm: u32,
    /// Start no new seed after this many failing seeds (0: never).
    pub stop_after_failures: u64,
    /// Start no new seed (and no re-run) after this many seconds.
    pub max_time: Option<f64>,
    /// Keep every run directory, not only the failing ones.
    pub keep_all: bool,
}

/// The project's commit, when known: `CHAOS_COMMIT`, then `GITHUB_SHA`, then
/// `git rev-parse HEAD` in the working directory.
pub fn project_commit() -> Option<String> {
    for var in ["CHAOS_COMMIT", "GITHUB_SHA"] {
        if let Some(v) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
            return Some(v.trim().to_string());
        }
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && sha.len() >= 7).then_some(sha)
}

/// What the sweep needs from its flags, checked once.
struct Setup {
    mode: Mode,
    jobs: usize,
    /// This shard's seeds: `shard.nth(range, i)`.
    range: std::ops::Range<u64>,
    shard: Shard,
    planned: u64,
    config: String,
    name: String,
    keep_all: bool,
    plan_of: Box<dyn Fn(u64) -> Plan + Sync>,
}

fn setup(args: &SweepSpec) -> Result<Setup, UsageError> {
    if let Some(t) = args.max_time {
        if !(t.is_finite() && t >= 0.0) {
            return Err(UsageError(format!(
                "--max-time {t}: expected seconds, 0 or more"
            )));
        }
    }
    let mode = args.plan.mode;
    // Each seed changes only the seed.
    let spec = args.plan.clone();
    let plan_at = move |seed: u64| {
        crate::spec::PlanSpec {
            seed: Some(seed),
            ..spec.clone()
        }
        .plan()
    };
    let template = plan_at(args.seeds.start).map_err(|e| match mode {
        Mode::Sim => UsageError(format!(
            "{e} (--mode real runs real processes, which any system can)"
        )),
        Mode::Real => e,
    })?; // the flags, checked once, up front
    let config = results::sweep::config_hash(&template);
    let plan_of = Box::new(move |seed: u64| plan_at(seed).expect("flags checked above"));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.map_or(
        match mode {
            Mode::Sim => cores,
            Mode::Real => 1,
        },
        |j| j as usize,
    );
    Ok(Setup {
        mode,
        jobs,
        range: args.seeds.clone(),
        shard: args.shard,
        planned: args.shard.count_in(args.seeds.clone()),
        config,
        name: template.name.clone(),
        keep_all: args.keep_all,
        plan_of,
    })
}

/// The first plan a sweep's flags make (for the binary to decide how to run, e.g.
/// in a user namespace for `--net netns`).
pub fn first_plan(args: &SweepSpec) -> Result<Plan, UsageError> {
    let s = setup(args)?;
    Ok((s.plan_of)(args.seeds.start))
}

/// How one seed ended, before it becomes a record.
struct Ran {
    exit_code: ExitCode,
    verdict: results::Verdict,
    problem: Option<String>,
    durations: Option<results::schema::Durations>,
    run_dir: Option<PathBuf>,
    faults: Option<usize>,
}

/// Runs `plan` as its mode does, into `runs` (the sweep's results root). A simulated
/// seed writes a run directory only when it fails.
/// Where a sweep's runs go and what they cost.
struct Runs {
    /// The sweep's results root (`<sweep>/runs`).
    root: PathBuf,
    /// The sweep directory, which records name run directories relative to.
    sweep_dir: PathBuf,
    keep_all: bool,
    /// Wall time spent inside runs, for the sweep's own overhead.
    spent_ns: AtomicU64,
}

impl Runs {
    fn run(&self, plan: &Plan) -> Result<Ran, String> {
        let started = Instant::now();
        let ran = run_plan(plan, &self.root);
        self.spent_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        ran
    }

    /// A run directory as a record names it.
    fn name(&self, dir: &Path) -> String {
        relative_to(dir, &self.sweep_dir)
    }

    /// Runs a failing real seed `times` more times: how many failed with the same
    /// exit code. Stops early (and says so) when the sweep is told to stop.
    fn confirm(
        &self,
        plan: &Plan,
        code: ExitCode,
        times: u32,
        stop: &dyn Fn() -> Option<String>,
    ) -> Confirmation {
        if times == 0 {
            return Confirmation::Unconfirmed {
                reason: "--confirm 0".into(),
            };
        }
        let mut failed = 0;
        let mut runs = 0;
        let mut run_dirs = Vec::new();
        for _ in 0..times {
            if let Some(why) = stop() {
                if runs == 0 {
                    return Confirmation::Unconfirmed { reason: why };
                }
                break;
            }
            let Ok(ran) = self.run(plan) else {
                continue;
            };
            runs += 1;
            let again = ran.exit_code == code;
            failed += u32::from(again);
            if let Some(d) = ran.run_dir {
                if again || self.keep_all {
                    run_dirs.push(self.name(&d));
                } else {
                    let _ = results::store::remove_run(&d);
                }
            }
        }
        if runs == 0 {
            return Confirmation::Unconfirmed {
                reason: "no re-run could start".into(),
            };
        }
        Confirmation::Confirmed {
            runs,
            failed,
            run_dirs,
        }
    }
}

fn run_plan(plan: &Plan, runs: &Path) -> Result<Ran, String> {
    match plan.mode {
        Mode::Sim => {
            let judged = crate::sim::sweep::judge(plan).map_err(|e| e.what)?;
            let run_dir = if judged.exit_code == ExitCode::Valid {
                None
            } else {
                let out = crate::sim::execute(plan, runs, &Silent).map_err(|e| e.to_string())?;
                Some(out.run_dir)
            };
            Ok(Ran {
                exit_code: judged.exit_code,
                verdict: judged.verdict,
                problem: judged.problem,
                durations: None,
                run_dir,
                faults: Some(judged.faults),
            })
        }
        Mode::Real => {
            let out = crate::engine::execute(plan, runs, &Silent).map_err(|e| e.to_string())?;
            let result = std::fs::read_to_string(out.run_dir.join("result.json"))
                .ok()
                .and_then(|t| RunResult::parse(&t).ok());
            Ok(Ran {
                exit_code: out.exit_code,
                verdict: out.verdict,
                problem: result.as_ref().and_then(RunResult::problem),
                faults: result.as_ref().map(|r| r.faults.ran),
                durations: result.map(|r| r.durations),
                run_dir: Some(out.run_dir),
            })
        }
    }
}

/// `path` relative to `base` when it lies under it; as it is otherwise.
fn relative_to(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Appends records to sweep.jsonl as runs end (each line flushed, so a killed sweep
/// keeps every finished run), and keeps them for the outputs at the end.
struct Records {
    file: std::fs::File,
    all: Vec<SeedRecord>,
}

fn io_error(path: &Path, e: std::io::Error) -> SweepError {
    SweepError::Failed(format!("cannot write {}: {e}", path.display()))
}

/// Writes `text` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, text: &str) -> Result<(), SweepError> {
    results::store::write_whole(path, text).map_err(|e| io_error(path, e))
}

/// junit.xml, index.html and summary.txt from `records`, into `dir`.
fn write_outputs(
    dir: &Path,
    records: &[SeedRecord],
    metas: &[SweepMeta],
    scope: Scope,
    title: &str,
) -> Result<(), SweepError> {
    let summary = results::sweep::summary(records, metas, scope, None, None);
    write_atomic(
        &dir.join("junit.xml"),
        &results::sweep::junit(records, title),
    )?;
    write_atomic(
        &dir.join("index.html"),
        &results::sweep::index(records, metas, scope, title),
    )?;
    write_atomic(&dir.join("summary.txt"), &summary)
}

/// Failing seeds the terminal summary lists; summary.txt lists them all.
const SHOWN_FAILING: usize = 20;

fn records_text(records: &[SeedRecord]) -> String {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).expect("a record always serialises"));
        text.push('\n');
    }
    text
}

/// A sweep's faults in the header's words, from its first seed's plan.
pub fn nemesis_words(plan: &Plan) -> String {
    if plan.explicit_schedule {
        return plan.faults_words();
    }
    format!(
        "nemesis {} every {} s ({} scheduled in the first seed)",
        plan.nemesis.describe(),
        plan.nemesis_interval_s,
        checker::report::count(plan.scheduled_faults(), "fault")
    )
}

/// sweep.json as a sweep starts: nothing run yet.
fn new_meta(
    args: &SweepSpec,
    setup: &Setup,
    started_at: &chrono::DateTime<chrono::Utc>,
    commit: Option<String>,
) -> SweepMeta {
    SweepMeta {
        version: SWEEP_VERSION,
        name: setup.name.clone(),
        mode: setup.mode,
        config: setup.config.clone(),
        commit,
        first_seed: args.seeds.start,
        end_seed: args.seeds.end,
        shard: args.shard,
        planned: setup.planned,
        run: 0,
        failed: 0,
        without_faults: 0,
        jobs: setup.jobs,
        stopped: None,
        finished: false,
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        wall_s: 0.0,
        chaos: env!("CARGO_PKG_VERSION").to_string(),
        command: std::env::args()
            .map(|a| shlex::try_quote(&a).map_or(a.clone(), |q| q.into_owned()))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The header: the seeds, the shard, the config and the faults of the first seed,
/// with the notes of what its schedule leaves out.
fn header(args: &SweepSpec, setup: &Setup, dir: &Path) -> Vec<String> {
    let first = setup
        .shard
        .nth(setup.range.clone(), 0)
        .map(|seed| (setup.plan_of)(seed));
    let mut lines = vec![format!(
        "chaos sweep: {} seeds {}..{} shard {}: {} seeds, {} at a time | config {} | {} | sweep directory {}",
        setup.mode.name(),
        args.seeds.start,
        args.seeds.end,
        args.shard,
        setup.planned,
        setup.jobs,
        setup.config,
        first.as_ref().map_or_else(String::new, nemesis_words),
        dir.display()
    )];
    lines.extend(
        first
            .iter()
            .flat_map(Plan::schedule_notes)
            .map(|n| format!("  note: {n}")),
    );
    lines
}

/// A failing seed as printed when it is found.
fn failure_line(record: &SeedRecord, dir: &Path) -> String {
    format!(
        "seed {}: {} (exit {}), {}: {}\n  reproduce: {}{}",
        record.seed,
        record.verdict.as_str(),
        record.exit_code.code(),
        record
            .confirmation
            .as_ref()
            .map_or_else(String::new, Confirmation::label),
        results::sweep::one_line(record.problem.as_deref().unwrap_or("-"), 200),
        record.reproduce,
        record
            .run_dir
            .as_ref()
            .map_or_else(String::new, |d| format!(
                "\n  run directory: {}",
                std::path::absolute(dir.join(d))
                    .unwrap_or_else(|_| dir.join(d))
                    .display()
            ))
    )
}

/// The last line: seeds run, the rate, the sweep's own time per run, why it stopped.
fn end_line(setup: &Setup, meta: &SweepMeta, runs: usize, wall_s: f64, run_s: f64) -> String {
    format!(
        "{runs} of {} seeds run in {wall_s:.1} s ({:.1} seeds/s on {} jobs; the sweep's own time {:.1} ms per run){}",
        setup.planned,
        runs as f64 / wall_s.max(1e-9),
        setup.jobs,
        if runs == 0 {
            0.0
        } else {
            (wall_s * setup.jobs as f64 - run_s).max(0.0) * 1e3 / runs as f64
        },
        meta.stopped
            .as_ref()
            .map_or_else(String::new, |s| format!("; stopped: {s}"))
    )
}

/// `chaos sweep`.
/// One seed of a sweep, run (and, when it fails in real mode, confirmed), as its
/// record. A passing run's directory is removed unless every run is kept.
fn run_seed(
    setup: &Setup,
    runs: &Runs,
    args: &SweepSpec,
    seed: u64,
    commit: Option<&str>,
    hard_stop: &dyn Fn() -> Option<String>,
) -> Result<SeedRecord, String> {
    let plan = (setup.plan_of)(seed);
    let run_started = Instant::now();
    let run_started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let ran = runs.run(&plan).map_err(|e| format!("seed {seed}: {e}"))?;
    let wall = run_started.elapsed();
    let is_failure = ran.exit_code != ExitCode::Valid;
    let mut run_dir = ran.run_dir.clone();
    if !is_failure && !setup.keep_all {
        if let Some(d) = run_dir.take() {
            let _ = results::store::remove_run(&d);
        }
    }
    let confirmation = is_failure.then(|| match setup.mode {
        Mode::Sim => Confirmation::Exact,
        Mode::Real => runs.confirm(&plan, ran.exit_code, args.confirm, hard_stop),
    });
    Ok(SeedRecord {
        version: SWEEP_VERSION,
        name: plan.name.clone(),
        mode: setup.mode,
        seed,
        config: setup.config.clone(),
        commit: commit.map(str::to_string),
        shard: args.shard,
        verdict: ran.verdict,
        exit_code: ran.exit_code,
        problem: ran.problem.clone(),
        started_at: run_started_at,
        wall_s: wall.as_secs_f64(),
        durations: ran.durations,
        reproduce: plan
            .reproduce(run_dir.as_deref().map(|d| d.join("plan.json")).as_deref())
            .unwrap_or_else(|| plan.command_line()),
        run_dir: run_dir.as_deref().map(|d| runs.name(d)),
        confirmation,
        faults: ran.faults,
    })
}

/// Runs a sweep into a new sweep directory under `args.results`, telling `show` of
/// its header, its failing seeds, its progress and its summary. The exit code is the
/// worst of its runs', unknown at least when it stopped before its last seed.
pub fn sweep(args: &SweepSpec, show: &dyn Observer) -> Result<ExitCode, SweepError> {
    let setup = setup(args)?;
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let stamp = started_at.format("%Y%m%dT%H%M%S%.3fZ");
    let dir = args.results.join(format!(
        "sweep-{stamp}-{}-shard-{}-of-{}",
        setup.mode.name(),
        args.shard.index,
        args.shard.count
    ));
    let runs = Runs {
        root: dir.join("runs"),
        sweep_dir: dir.clone(),
        keep_all: setup.keep_all,
        spent_ns: AtomicU64::new(0),
    };
    let commit = project_commit();
    let meta = new_meta(args, &setup, &started_at, commit.clone());
    let file = begin(&dir, &meta)?;
    let records_path = dir.join(RECORDS_FILE);
    // Signals stop the sweep from before its header on, so a signal after the header
    // always ends it cleanly.
    crate::progress::stop_on_signals();
    for line in header(args, &setup, &dir) {
        show.say(&line);
    }
    let deadline = args.max_time.map(|s| started + Duration::from_secs_f64(s));
    let out_of_time = || deadline.is_some_and(|d| Instant::now() >= d);
    show.seeds_started(setup.planned, setup.mode == Mode::Real);
    let failed = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let records = Mutex::new(Records {
        file,
        all: Vec::new(),
    });
    // What stops re-runs too; failures stop only new seeds, so a failing seed is
    // still confirmed after --stop-after-failures is reached.
    let hard_stop = || -> Option<String> {
        if crate::progress::stop_requested() {
            return Some("interrupted (SIGINT or SIGTERM)".into());
        }
        if out_of_time() {
            return Some(format!(
                "--max-time {} s reached",
                args.max_time.unwrap_or(0.0)
            ));
        }
        None
    };
    let stop_reason = || -> Option<String> {
        if let Some(why) = hard_stop() {
            return Some(why);
        }
        if args.stop_after_failures > 0 && failed.load(Ordering::SeqCst) >= args.stop_after_failures
        {
            return Some(format!(
                "--stop-after-failures {} reached",
                args.stop_after_failures
            ));
        }
        None
    };
    let work = |seed: u64| -> Result<(), String> {
        let record = run_seed(&setup, &runs, args, seed, commit.as_deref(), &hard_stop)?;
        let is_failure = record.failed();
        let n_failed = if is_failure {
            failed.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            failed.load(Ordering::SeqCst)
        };
        let n_done = done.fetch_add(1, Ordering::SeqCst) + 1;
        if is_failure {
            show.say(&failure_line(&record, &dir));
        }
        show.seeds_progress(n_done, n_failed);
        let mut r = records.lock().expect("not poisoned");
        let line = serde_json::to_string(&record).expect("a record serialises");
        let written = writeln!(r.file, "{line}").and_then(|()| r.file.flush());
        r.all.push(record);
        written.map_err(|e| format!("cannot write {}: {e}", records_path.display()))
    };
    let ended = crate::seeds::on_threads(
        setup.jobs,
        &|i| setup.shard.nth(setup.range.clone(), i),
        &stop_reason,
        &work,
    );
    show.seeds_ended();
    let end = Ended {
        all: records.into_inner().expect("not poisoned").all,
        ended,
        wall_s: started.elapsed().as_secs_f64(),
        run_s: runs.spent_ns.into_inner() as f64 / 1e9,
    };
    conclude(args, &setup, &dir, meta, end, show)
}

/// The sweep directory with its runs/ and its sweep.json as the sweep starts; the
/// records file, open for appending.
fn begin(dir: &Path, meta: &SweepMeta) -> Result<std::fs::File, SweepError> {
    let root = dir.join("runs");
    std::fs::create_dir_all(&root).map_err(|e| io_error(&root, e))?;
    let meta_json = serde_json::to_string_pretty(meta).expect("meta serialises");
    write_atomic(&dir.join(META_FILE), &meta_json)?;
    let records_path = dir.join(RECORDS_FILE);
    std::fs::File::create(&records_path).map_err(|e| io_error(&records_path, e))
}

/// How a sweep's seeds ended.
struct Ended {
    all: Vec<SeedRecord>,
    /// Why it stopped before its last seed, or the error that ended it.
    ended: Result<Option<String>, String>,
    wall_s: f64,
    /// Wall time spent inside runs.
    run_s: f64,
}

/// The sweep's files in their final form (records in seed order, sweep.json,
/// junit.xml, index.html, summary.txt), its summary told, and its exit code.
fn conclude(
    args: &SweepSpec,
    setup: &Setup,
    dir: &Path,
    mut meta: SweepMeta,
    end: Ended,
    show: &dyn Observer,
) -> Result<ExitCode, SweepError> {
    let Ended {
        mut all,
        ended,
        wall_s,
        run_s,
    } = end;
    let records_path = dir.join(RECORDS_FILE);
    results::sweep::sort_records(&mut all);
    // The records in seed order, so a sweep's file does not depend on thread timing.
    write_atomic(&records_path, &records_text(&all))?;
    meta.run = all.len() as u64;
    meta.failed = all.iter().filter(|r| r.failed()).count() as u64;
    meta.without_faults = all.iter().filter(|r| r.faults == Some(0)).count() as u64;
    meta.stopped = ended.as_ref().ok().cloned().flatten();
    meta.finished = true;
    meta.wall_s = wall_s;
    let meta_json = serde_json::to_string_pretty(&meta).expect("meta serialises");
    write_atomic(&dir.join(META_FILE), &meta_json)?;
    let _ = results::rebuild_index(&dir.join("runs"));
    let title = format!(
        "chaos sweep {} {} seeds {}..{} shard {}",
        setup.name,
        setup.mode.name(),
        args.seeds.start,
        args.seeds.end,
        args.shard
    );
    let metas = std::slice::from_ref(&meta);
    write_outputs(dir, &all, metas, Scope::Sweep, &title)?;
    let summary = results::sweep::summary(
        &all,
        metas,
        Scope::Sweep,
        Some(SHOWN_FAILING),
        Some(&std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())),
    );
    if let Err(e) = ended {
        return Err(SweepError::Failed(format!(
            "{e} (the records so far are in {})",
            records_path.display()
        )));
    }
    show.say("");
    for line in summary.lines() {
        show.say(line);
    }
    show.say(&end_line(setup, &meta, all.len(), wall_s, run_s));
    show.say(&format!("sweep directory: {}", dir.display()));
    Ok(results::sweep::exit_code(&all, metas, Scope::Sweep))
}

/// Every directory under `root` (itself included, at most `depth` levels down) that
/// holds a sweep.jsonl, in path order.
fn find_sweeps(root: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if root.join(RECORDS_FILE).is_file() {
        out.push(root.to_path_buf());
        return;
    }
    if depth == 0 {
        return;
    }
    for d in results::store::subdirs(root) {
        find_sweeps(&d, depth - 1, out);
    }
}

/// `path` as seen from `from` (both made absolute first): `../a/b` style.
fn relative_path(path: &Path, from: &Path) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (path, from) = (abs(path), abs(from));
    let common = path
        .components()
        .zip(from.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in from.components().skip(common) {
        out.push("..");
    }
    for c in path.components().skip(common) {
        out.push(c);
    }
    out.to_string_lossy().into_owned()
}

/// `chaos merge`.
/// Merges the sweep directories found in `dirs` (at most 8 levels down) into `out`.
pub fn merge(dirs: &[PathBuf], out: &Path, show: &dyn Observer) -> Result<ExitCode, SweepError> {
    let mut sweeps = Vec::new();
    for d in dirs {
        if !d.is_dir() {
            return Err(UsageError(format!("{} is not a directory", d.display())).into());
        }
        find_sweeps(d, 8, &mut sweeps);
    }
    results::store::check_writable(out, "--out").map_err(UsageError)?;
    let out_abs = std::fs::canonicalize(out).ok();
    sweeps.retain(|s| out_abs.is_none() || std::fs::canonicalize(s).ok() != out_abs);
    if sweeps.is_empty() {
        return Err(UsageError(format!(
            "no sweep directory (one holding {RECORDS_FILE}) under {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    std::fs::create_dir_all(out).map_err(|e| io_error(out, e))?;
    let mut records = Vec::new();
    let mut metas = Vec::new();
    for s in &sweeps {
        let found = results::sweep::read_records(&s.join(RECORDS_FILE))
            .map_err(|e| UsageError(e.to_string()))?;
        for mut r in found {
            if let Some(d) = &r.run_dir {
                r.run_dir = Some(relative_path(&s.join(d), out));
            }
            if let Some(Confirmation::Confirmed { run_dirs, .. }) = &mut r.confirmation {
                for d in run_dirs.iter_mut() {
                    *d = relative_path(&s.join(&*d), out);
                }
            }
            records.push(r);
        }
        match results::sweep::read_meta(s) {
            Some(m) => metas.push(m),
            None => show.warn(&format!(
                "chaos merge: {} has no readable {META_FILE}: its planned seeds are unknown",
                s.display()
            )),
        }
    }
    results::sweep::sort_records(&mut records);
    write_atomic(&out.join(RECORDS_FILE), &records_text(&records))?;
    let title = format!("chaos merge of {} sweep directories", sweeps.len());
    write_outputs(out, &records, &metas, Scope::Merge, &title)?;
    let out_shown = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let summary = results::sweep::summary(
        &records,
        &metas,
        Scope::Merge,
        Some(SHOWN_FAILING),
        Some(&out_shown),
    );
    show.say(&format!(
        "chaos merge: {} sweep directories, {} records",
        sweeps.len(),
        records.len()
    ));
    for line in summary.lines() {
        show.say(line);
    }
    show.say(&format!("merged into {}", out_shown.display()));
    Ok(results::sweep::exit_code(&records, &metas, Scope::Merge))
}
