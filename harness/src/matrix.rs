//! `chaos matrix`: proof that the harness finds bugs. Runs each `--bug` of the node
//! under the nemesis over seeds 1..=N and reports, per bug, whether a run found a
//! violation (exit 1), the first seed that did, and the wall time until it did.

use std::path::PathBuf;
use std::time::Instant;

use paxos_node::types::Bug;
use results::{ExitCode, Workload};

use crate::cli::{RunArgs, UsageError, plan_from_args};
use crate::engine::{EngineError, execute};
use crate::progress::Presentation;

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

#[derive(Debug, clap::Args)]
pub struct MatrixArgs {
    /// Bugs to try (comma-separated) [default: all six].
    #[arg(long, value_name = "LIST")]
    pub bugs: Option<String>,
    /// Seeds to try per bug, 1..=N; a bug stops at its first detection.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub seeds: u64,
    /// Seconds per run.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub time_limit: f64,
    /// Nodes per run.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Fault kinds, as for `chaos run --nemesis`.
    #[arg(long, value_name = "LIST", default_value = "partition,kill,pause")]
    pub nemesis: String,
    /// Seconds per fault slot, as for `chaos run --nemesis-interval`.
    #[arg(long, value_name = "S", default_value_t = 3.0)]
    pub nemesis_interval: f64,
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
    let mut rows = Vec::new();
    let mut all_found = true;
    for bug in &bugs {
        let started = Instant::now();
        let mut found: Option<(u64, String)> = None;
        let mut runs = 0;
        for seed in 1..=args.seeds {
            runs += 1;
            let run_args = RunArgs {
                nodes: args.nodes,
                workload: Workload::Both,
                time_limit: args.time_limit,
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
                nemesis: Some(args.nemesis.clone()),
                nemesis_interval: args.nemesis_interval,
                schedule: None,
                trace_messages: false,
                no_progress: true,
                json: false,
            };
            let plan = plan_from_args(&run_args, results::Mode::Real)?;
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
        if found.is_none() {
            all_found = false;
        }
        rows.push((bug.clone(), found, runs, started.elapsed().as_secs_f64()));
    }
    println!(
        "\n{:<20} {:<9} {:<11} {:<5} {:<18} run directory",
        "bug", "detected", "first seed", "runs", "time to detection"
    );
    for (bug, found, runs, secs) in &rows {
        match found {
            Some((seed, dir)) => println!(
                "{bug:<20} {:<9} {seed:<11} {runs:<5} {:<18} {dir}",
                "yes",
                format!("{secs:.1} s")
            ),
            None => println!("{bug:<20} {:<9} {:<11} {runs:<5} {:<18} -", "NO", "-", "-"),
        }
    }
    println!(
        "\n{} of {} bugs detected within {} seeds of {} s runs",
        rows.iter().filter(|r| r.1.is_some()).count(),
        rows.len(),
        args.seeds,
        args.time_limit
    );
    Ok(if all_found {
        ExitCode::Valid
    } else {
        ExitCode::Invalid
    })
}
