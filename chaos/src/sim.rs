//! `chaos sim`: one simulated run, a determinism check, or a sweep over seeds.

use std::path::Path;

use harness::engine::EngineError;
use harness::observe::{Observer, Silent};
use harness::sim::{execute, sweep};
use harness::spec::UsageError;
use results::Plan;

use crate::flags::{RunArgs, SimArgs};
use crate::terminal::Terminal;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Failed(String),
}

/// The plan `chaos sim` runs for `seed`: from `--plan`, or from the flags.
fn plan_for(args: &SimArgs, seed: Option<u64>) -> Result<Plan, SimError> {
    match &args.run.plan {
        Some(path) => Ok(harness::spec::plan_from_file(path, results::Mode::Sim)?),
        None => {
            let mut run = args.run.clone();
            if seed.is_some() {
                run.seed = seed;
            }
            Ok(plan_from_flags(&run)?)
        }
    }
}

/// The simulated plan the run flags make: the simulation judges every step by the
/// protocol's rules, and it can simulate only the bundled node's core.
fn plan_from_flags(run: &RunArgs) -> Result<Plan, UsageError> {
    run.spec(results::Mode::Sim)?.plan()
}

/// `chaos sim`: one run, a determinism check, or a sweep over seeds.
pub fn command(args: &SimArgs) -> Result<results::ExitCode, SimError> {
    let show = Terminal::new(args.run.no_progress, args.run.json);
    if let Some(seeds) = args.seeds.clone() {
        return over_seeds(args, seeds, &show);
    }
    let plan = plan_for(args, None)?;
    let first = execute(&plan, &args.run.results, &show as &dyn Observer)?;
    if !args.check_determinism {
        return Ok(first.exit_code);
    }
    determinism(args, &plan, &first)
}

/// `chaos sim --seeds A..B`: every seed judged in memory on `--jobs` threads.
fn over_seeds(
    args: &SimArgs,
    seeds: std::ops::Range<u64>,
    show: &Terminal,
) -> Result<results::ExitCode, SimError> {
    if args.run.plan.is_some() || args.run.seed.is_some() {
        return Err(UsageError(
            "--seeds runs plans made from the flags: drop --plan and --seed".into(),
        )
        .into());
    }
    plan_for(args, Some(seeds.start))?; // flags checked once, up front
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let plan_of = |seed: u64| plan_for(args, Some(seed)).expect("flags checked above");
    // Signals stop the sweep from before its header on (sweep::View::signals).
    harness::progress::stop_on_signals();
    if !args.run.json {
        let first = plan_of(seeds.start);
        println!(
            "chaos sim: seeds {}..{}, {jobs} at a time | {}",
            seeds.start,
            seeds.end,
            harness::sweep::nemesis_words(&first)
        );
        for note in first.schedule_notes() {
            println!("  note: {note}");
        }
    }
    let view = sweep::View {
        signals: true,
        show,
        twice: args.check_determinism,
    };
    let sweep = sweep::sweep(
        seeds.clone(),
        jobs,
        args.max_failures,
        &plan_of,
        Some(&args.run.results),
        view,
    )
    .map_err(SimError::Failed)?;
    println!(
        "{} of {} seeds run ({}..{}), {} failing, {:.1} faults per seed, {:.1} s, {:.1} seeds/s on {jobs} jobs{}",
        sweep.seeds_run,
        seeds.end - seeds.start,
        seeds.start,
        seeds.end,
        sweep.failures.len(),
        sweep.faults as f64 / sweep.seeds_run.max(1) as f64,
        sweep.wall_s,
        sweep.seeds_run as f64 / sweep.wall_s.max(1e-9),
        sweep
            .stopped
            .as_ref()
            .map_or_else(String::new, |s| format!("; stopped: {s}"))
    );
    if sweep.without_faults > 0 {
        println!(
            "{} of {} seeds ran no fault: they tested a fault-free cluster",
            sweep.without_faults, sweep.seeds_run
        );
    }
    println!(
        "situations the protocol's rules exist for, never reached: {}",
        sweep.coverage.never_reached_words()
    );
    println!(
        "exit {}: {}",
        sweep.exit_code.code(),
        results::sweep::exit_words(sweep.exit_code, !sweep.failures.is_empty())
    );
    Ok(sweep.exit_code)
}

/// `--check-determinism`: the plan run a second time must give the same history.
fn determinism(
    args: &SimArgs,
    plan: &Plan,
    first: &harness::RunOutcome,
) -> Result<results::ExitCode, SimError> {
    let second = execute(plan, &args.run.results, &Silent)?;
    let digest = |dir: &Path| {
        std::fs::read_to_string(dir.join("result.json"))
            .ok()
            .and_then(|t| results::RunResult::parse(&t).ok())
            .map(|r| {
                (
                    r.simulation.as_ref().map(|s| s.history_sha256.clone()),
                    r.without_wall_clock(),
                )
            })
    };
    let (a, b) = (digest(&first.run_dir), digest(&second.run_dir));
    let same = a.is_some() && a == b;
    let hash = |d: &Option<(Option<String>, serde_json::Value)>| {
        d.as_ref()
            .and_then(|d| d.0.clone())
            .unwrap_or_else(|| "none".into())
    };
    println!(
        "determinism: run 1 history sha256 {}, run 2 {}: {}",
        hash(&a),
        hash(&b),
        if same {
            "identical"
        } else {
            "DIFFERENT (a bug in the simulation; please report it with this plan)"
        }
    );
    Ok(if same {
        first.exit_code
    } else {
        results::ExitCode::Harness
    })
}
