//! `chaos matrix`: proof that the harness finds bugs. Runs each `--bug` of the node
//! under the nemesis over seeds 1..=N and reports, per bug, whether a run found a
//! violation (exit 1), the first seed that did, and the wall time until it did. With
//! `--sim` the runs are simulated, judged in memory on every core, and a detection is
//! exact: its seed reproduces it every time.

use std::path::PathBuf;
use std::time::Instant;

use paxos_node::types::Bug;
use results::{ExitCode, Mode, Workload};

use crate::engine::{EngineError, execute};
use crate::observe::{Observer, Silent};
use crate::spec::{PlanSpec, UsageError};

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Sim(String),
}

/// One line of the matrix.
#[derive(Clone, Debug)]
pub struct Row {
    pub bug: String,
    /// The first detecting seed and where to see it.
    pub found: Option<(u64, String)>,
    pub runs: u64,
    pub secs: f64,
    /// Not tried: the bug needs the simulation.
    pub skipped: bool,
    /// The same under `--hog`: first detecting seed, runs, seconds.
    pub hogged: Option<(Option<u64>, u64, f64)>,
}

/// What `chaos matrix` is asked to do (`None`: the matrix's default for the mode).
#[derive(Clone, Debug, Default)]
pub struct MatrixSpec {
    /// Bugs to try (comma-separated); `None`: every bug of the node.
    pub bugs: Option<String>,
    /// In simulation instead of real processes.
    pub sim: bool,
    /// Seeds per bug, 1..=N [5; with sim 600].
    pub seeds: Option<u64>,
    /// Seconds per run [30; with sim 3].
    pub time_limit: Option<f64>,
    /// Nodes per run [5; with sim 3].
    pub nodes: Option<usize>,
    pub nemesis: Option<nemesis::FaultKinds>,
    /// Seconds per fault interval [3; with sim 0.3].
    pub nemesis_interval: Option<f64>,
    /// Simulated runs at once [the number of cores].
    pub jobs: Option<usize>,
    /// Busy threads beside every real run (0: none).
    pub hog: usize,
    pub results: PathBuf,
}

/// What the matrix found.
#[derive(Clone, Debug)]
pub struct Matrix {
    pub rows: Vec<Row>,
    pub seeds: u64,
    pub time_limit: f64,
    /// Every bug tried was detected (under the hog too).
    pub all_found: bool,
}

/// N threads that keep the CPU busy until dropped (or, as a bound, for two hours).
struct Hog {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hog {
    const MAX: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

    fn start(n: usize) -> Hog {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..n)
            .map(|i| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("hog-{i}"))
                    .spawn(move || {
                        let started = Instant::now();
                        let mut x: u64 = i as u64 + 1;
                        while !stop.load(Ordering::Relaxed) && started.elapsed() < Hog::MAX {
                            for _ in 0..100_000 {
                                x = std::hint::black_box(
                                    x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1),
                                );
                            }
                        }
                    })
                    .expect("spawn a hog thread")
            })
            .collect();
        Hog { stop, threads }
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Runs `run` for seeds 1..=`seeds` until one finds a violation (exit 1): that seed
/// and its run directory, and how many runs it took.
type Found = Option<(u64, String)>;

fn real_seeds(
    bug: &str,
    seeds: u64,
    label: &str,
    run: &dyn Fn(u64) -> Result<crate::engine::RunOutcome, MatrixError>,
    show: &dyn Observer,
) -> Result<(Found, u64), MatrixError> {
    let mut runs = 0;
    for seed in 1..=seeds {
        runs += 1;
        let outcome = run(seed)?;
        show.warn(&format!(
            "  {bug}{label} seed {seed}: {} (exit {})",
            outcome.verdict.as_str(),
            outcome.exit_code.code()
        ));
        if outcome.exit_code == ExitCode::Invalid {
            return Ok((Some((seed, outcome.run_dir.display().to_string())), runs));
        }
    }
    Ok((None, runs))
}

/// The plan of one bug's run at `seed`: the matrix's defaults, or the flags'.
fn spec_of(args: &MatrixSpec, bug: &str, seed: u64) -> PlanSpec {
    let sim = args.sim;
    PlanSpec {
        mode: if sim { Mode::Sim } else { Mode::Real },
        name: format!("matrix-{bug}"),
        seed: Some(seed),
        nodes: args.nodes.unwrap_or(if sim { 3 } else { 5 }),
        workload: Some(Workload::Both),
        time_limit_s: time_limit(args),
        node_args: vec![format!("--bug={bug}")],
        nemesis: args.nemesis,
        nemesis_interval_s: Some(args.nemesis_interval.unwrap_or(if sim { 0.3 } else { 3.0 })),
        ..PlanSpec::default()
    }
}

fn time_limit(args: &MatrixSpec) -> f64 {
    args.time_limit.unwrap_or(if args.sim { 3.0 } else { 30.0 })
}

/// The bugs to try: the flag's list, or the node's own list of every bug, so the
/// matrix can never miss one.
fn bugs_of(args: &MatrixSpec) -> Result<Vec<String>, UsageError> {
    match &args.bugs {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().parse::<Bug>().map(|b| b.name().to_string()))
            .collect::<Result<_, _>>()
            .map_err(|e| UsageError(format!("--bugs: {e}"))),
        None => Ok(Bug::ALL.iter().map(|b| b.name().to_string()).collect()),
    }
}

/// One bug over seeds 1..=N in simulation, judged in memory on every core.
fn sim_seeds(args: &MatrixSpec, bug: &str, seeds: u64) -> Result<(Found, u64), MatrixError> {
    let plan_of = |seed: u64| {
        spec_of(args, bug, seed)
            .plan()
            .expect("flags checked above")
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let sweep = crate::sim::sweep::sweep(
        1..seeds + 1,
        jobs,
        1,
        &plan_of,
        Some(&args.results),
        crate::sim::sweep::View::QUIET,
    )
    .map_err(MatrixError::Sim)?;
    let found = sweep
        .failures
        .iter()
        .find(|j| j.exit_code == ExitCode::Invalid)
        .map(|j| {
            let dir = sweep.run_dirs.iter().find(|(s, _)| *s == j.seed);
            (
                j.seed,
                dir.map_or_else(|| "-".into(), |(_, d)| d.display().to_string()),
            )
        });
    Ok((found, sweep.seeds_run))
}

/// One bug's row: its seeds quiet, and under the hog when asked.
fn row(args: &MatrixSpec, bug: &str, seeds: u64, show: &dyn Observer) -> Result<Row, MatrixError> {
    let started = Instant::now();
    let real = |seed: u64| {
        let plan = spec_of(args, bug, seed).plan()?;
        Ok(execute(&plan, &args.results, &Silent)?)
    };
    let (found, runs) = if args.sim {
        sim_seeds(args, bug, seeds)?
    } else {
        real_seeds(bug, seeds, "", &real, show)?
    };
    let secs = started.elapsed().as_secs_f64();
    let hogged = if args.hog > 0 {
        let started = Instant::now();
        let _hog = Hog::start(args.hog);
        let label = format!(" (hog {})", args.hog);
        let (found, runs) = real_seeds(bug, seeds, &label, &real, show)?;
        Some((found.map(|(s, _)| s), runs, started.elapsed().as_secs_f64()))
    } else {
        None
    };
    Ok(Row {
        bug: bug.to_string(),
        found,
        runs,
        secs,
        skipped: false,
        hogged,
    })
}

/// Runs every bug's seeds until each is detected or its seeds run out.
pub fn matrix(args: &MatrixSpec, show: &dyn Observer) -> Result<Matrix, MatrixError> {
    if args.hog > 0 && args.sim {
        return Err(UsageError(
            "--hog loads the machine beside real processes; a simulation runs on virtual time and would only run slower".into(),
        )
        .into());
    }
    let bugs = bugs_of(args)?;
    results::store::check_writable(&args.results, "--results").map_err(UsageError)?;
    let seeds = args.seeds.unwrap_or(if args.sim { 600 } else { 5 });
    // The flags are checked once, up front, with the first bug of the list.
    if let Some(bug) = bugs.first() {
        spec_of(args, bug, 1).plan()?;
    }
    let mut rows = Vec::new();
    for bug in &bugs {
        let needs_sim = bug.parse::<Bug>().is_ok_and(Bug::needs_simulated_disk);
        let needs_txn = bug.parse::<Bug>().is_ok_and(Bug::needs_transactions);
        let skip = match (needs_sim && !args.sim, needs_txn) {
            (true, _) => {
                Some("only a simulated disk can lose unsynced writes (chaos matrix --sim)")
            }
            (_, true) => Some("only a transaction workload shows it, and the matrix runs none yet"),
            _ => None,
        };
        if let Some(why) = skip {
            show.warn(&format!("  {bug}: skipped: {why}"));
            rows.push(Row {
                bug: bug.clone(),
                found: None,
                runs: 0,
                secs: 0.0,
                skipped: true,
                hogged: None,
            });
            continue;
        }
        rows.push(row(args, bug, seeds, show)?);
    }
    let all_found = rows
        .iter()
        .filter(|r| !r.skipped)
        .all(|r| r.found.is_some() && r.hogged.is_none_or(|(found, _, _)| found.is_some()));
    Ok(Matrix {
        rows,
        seeds,
        time_limit: time_limit(args),
        all_found,
    })
}
