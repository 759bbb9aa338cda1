//! `chaos matrix`: proof that the harness finds bugs. Runs each `--bug` of the node
//! under the nemesis over seeds 1..=N and reports, per bug, whether a run found a
//! violation (exit 1), the first seed that did, and the wall time until it did. With
//! `--sim` the runs are simulated, judged in memory on every core, and a detection is
//! exact: its seed reproduces it every time.

use std::path::PathBuf;
use std::time::Instant;

use paxos_node::types::Bug;
use results::{ExitCode, Mode, Workload};

use crate::cli::{RunArgs, UsageError, plan_from_args};
use crate::engine::{EngineError, execute};
use crate::progress::Presentation;

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
struct Row {
    bug: String,
    /// The first detecting seed and where to see it.
    found: Option<(u64, String)>,
    runs: u64,
    secs: f64,
    /// Not tried: the bug needs the simulation.
    skipped: bool,
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
    #[arg(long, value_name = "N")]
    pub seeds: Option<u64>,
    /// Seconds per run (virtual with --sim) [default: 30; with --sim 3].
    #[arg(long, value_name = "S")]
    pub time_limit: Option<f64>,
    /// Nodes per run [default: 5; with --sim 3].
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Fault kinds, as for `chaos run --nemesis` [default: as chaos run's, or with
    /// --sim as chaos sim's].
    #[arg(long, value_name = "LIST")]
    pub nemesis: Option<String>,
    /// Seconds per fault slot, as for `chaos run --nemesis-interval` [default: 3; with
    /// --sim 0.3].
    #[arg(long, value_name = "S")]
    pub nemesis_interval: Option<f64>,
    /// Simulated runs at once with --sim [default: the number of cores].
    #[arg(long, value_name = "J")]
    pub jobs: Option<usize>,
    /// Root directory of the run directories.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub results: PathBuf,
}

pub fn matrix(args: &MatrixArgs) -> Result<ExitCode, MatrixError> {
    // The node's own list of bugs, so the matrix can never miss one.
    let bugs: Vec<String> = match &args.bugs {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().parse::<Bug>().map(|b| b.name().to_string()))
            .collect::<Result<_, _>>()
            .map_err(|e| UsageError(format!("--bugs: {e}")))?,
        None => Bug::ALL.iter().map(|b| b.name().to_string()).collect(),
    };
    let mode = if args.sim { Mode::Sim } else { Mode::Real };
    let sim = args.sim;
    let seeds = args.seeds.unwrap_or(if sim { 600 } else { 5 });
    let time_limit = args.time_limit.unwrap_or(if sim { 3.0 } else { 30.0 });
    let run_args = |bug: &str, seed: u64| RunArgs {
        nodes: args.nodes.unwrap_or(if sim { 3 } else { 5 }),
        workload: Workload::Both,
        time_limit,
        concurrency: None,
        rate: 0.0,
        keys: 5,
        seed: Some(seed),
        node_bin: None,
        node_args: vec![format!("--bug={bug}")],
        results: args.results.clone(),
        name: format!("matrix-{bug}"),
        grace: 10.0,
        op_timeout_ms: 2_500,
        nemesis: args.nemesis.clone(),
        nemesis_interval: args.nemesis_interval.unwrap_or(if sim { 0.3 } else { 3.0 }),
        schedule: None,
        no_trace_messages: false,
        ops_per_client: None,
        plan: None,
        trace_messages: false,
        no_progress: true,
        json: false,
    };
    // The flags are checked once, up front, with the first bug of the list.
    if let Some(bug) = bugs.first() {
        plan_from_args(&run_args(bug, 1), mode)?;
    }
    let mut rows = Vec::new();
    let mut all_found = true;
    for bug in &bugs {
        let started = Instant::now();
        let needs_sim = bug.parse::<Bug>().is_ok_and(Bug::needs_simulated_disk);
        if needs_sim && !sim {
            eprintln!(
                "  {bug}: skipped: only a simulated disk can lose unsynced writes (chaos matrix --sim)"
            );
            rows.push(Row {
                bug: bug.clone(),
                found: None,
                runs: 0,
                secs: 0.0,
                skipped: true,
            });
            continue;
        }
        let (found, runs) = if sim {
            let plan_of = |seed: u64| {
                plan_from_args(&run_args(bug, seed), mode).expect("flags checked above")
            };
            let jobs = args
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let sweep =
                crate::sim::sweep::sweep(1..seeds + 1, jobs, 1, &plan_of, Some(&args.results))
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
            (found, sweep.seeds_run)
        } else {
            let mut found = None;
            let mut runs = 0;
            for seed in 1..=seeds {
                runs += 1;
                let plan = plan_from_args(&run_args(bug, seed), mode)?;
                let outcome = execute(&plan, &args.results, Presentation::quiet())?;
                eprintln!(
                    "  {bug} seed {seed}: {} (exit {})",
                    outcome.verdict.as_str(),
                    outcome.exit_code.code()
                );
                if outcome.exit_code == ExitCode::Invalid {
                    found = Some((seed, outcome.run_dir.display().to_string()));
                    break;
                }
            }
            (found, runs)
        };
        if found.is_none() {
            all_found = false;
        }
        rows.push(Row {
            bug: bug.clone(),
            found,
            runs,
            secs: started.elapsed().as_secs_f64(),
            skipped: false,
        });
    }
    println!(
        "\n{:<20} {:<9} {:<11} {:<5} {:<18} run directory",
        "bug", "detected", "first seed", "runs", "time to detection"
    );
    for r in &rows {
        let (bug, runs) = (&r.bug, r.runs);
        match &r.found {
            Some((seed, dir)) => println!(
                "{bug:<20} {:<9} {seed:<11} {runs:<5} {:<18} {dir}",
                "yes",
                format!("{:.1} s", r.secs)
            ),
            None if r.skipped => println!(
                "{bug:<20} {:<9} {:<11} {runs:<5} {:<18} -",
                "needs sim", "-", "-"
            ),
            None => println!("{bug:<20} {:<9} {:<11} {runs:<5} {:<18} -", "NO", "-", "-"),
        }
    }
    println!(
        "\n{} of {} bugs detected within {seeds} seeds of {time_limit} s{} runs",
        rows.iter().filter(|r| r.found.is_some()).count(),
        rows.iter().filter(|r| !r.skipped).count(),
        if sim { " simulated" } else { "" }
    );
    Ok(if all_found {
        ExitCode::Valid
    } else {
        ExitCode::Invalid
    })
}
