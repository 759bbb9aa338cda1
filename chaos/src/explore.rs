//! `chaos explore`: a search over simulated plans guided by coverage
//! ([`harness::sim::explore`]), its failures written as run directories with a
//! `chaos sim --plan` line to reproduce or shrink them.

use std::time::Duration;

use harness::observe::Observer;
use harness::sim::explore::{self, Spec};
use harness::spec::UsageError;

use crate::flags::ExploreArgs;
use crate::sim::SimError;
use crate::terminal::Terminal;

/// The wall-clock budget when neither `--runs` nor `--time` is given.
const DEFAULT_TIME_S: f64 = 60.0;

pub fn command(args: &ExploreArgs) -> Result<results::ExitCode, SimError> {
    let show = Terminal::new(args.run.no_progress, false);
    if args.run.plan.is_some() {
        return Err(UsageError(
            "--plan: chaos explore makes its plans from the flags and mutates them; run one plan with chaos sim --plan".into(),
        )
        .into());
    }
    if args.run.json {
        return Err(UsageError("--json: chaos explore prints text only".into()).into());
    }
    let search_seed = args.run.seed.unwrap_or_else(harness::spec::random_seed);
    let fresh_of = |seed: u64| {
        let mut run = args.run.clone();
        run.seed = Some(seed);
        run.swarm = !args.no_swarm;
        run.spec(results::Mode::Sim)?.plan()
    };
    let first = fresh_of(search_seed)?; // flags checked once, up front
    let fresh = |seed: u64| fresh_of(seed).expect("flags checked above");
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let time = match (args.runs, args.search_time) {
        (None, None) => Some(DEFAULT_TIME_S),
        (_, t) => t,
    };
    println!(
        "chaos explore: search seed {search_seed} | {} | {}, {jobs} at a time | fresh plans: {} nodes, {} s, {}",
        budget_words(args.runs, time),
        if args.max_failures == 0 {
            "every failure".to_string()
        } else {
            format!("stops at {} failing", args.max_failures)
        },
        first.nodes,
        first.time_limit_s,
        if args.no_swarm {
            harness::sweep::nemesis_words(&first)
        } else {
            "each a swarm draw of the fault kinds, interval, clients, keys and op mix the flags leave unset".into()
        },
    );
    let spec = Spec {
        seed: search_seed,
        fresh: &fresh,
        runs: args.runs,
        time: time.map(Duration::from_secs_f64),
        jobs,
        max_failures: args.max_failures,
    };
    let mut found =
        explore::explore(&spec, &show as &dyn Observer, true).map_err(SimError::Failed)?;
    show.search_ended();
    explore::run_dirs(&mut found.failures, &args.run.results, &show);
    summary(&found, search_seed);
    Ok(found.exit_code)
}

fn budget_words(runs: Option<u64>, time: Option<f64>) -> String {
    match (runs, time) {
        (Some(r), Some(t)) => format!("{r} runs or {t} s"),
        (Some(r), None) => format!("{r} runs"),
        (None, Some(t)) => format!("{t} s"),
        (None, None) => unreachable!("a budget is always set"),
    }
}

fn summary(found: &explore::Explored, seed: u64) {
    println!(
        "{} runs in {:.1} s ({:.1} runs/s), {:.1} faults per run, {} features reached, {} plans kept{}",
        found.runs,
        found.wall_s,
        found.runs as f64 / found.wall_s.max(1e-9),
        found.faults as f64 / found.runs.max(1) as f64,
        found.features.len(),
        found.corpus,
        found
            .stopped
            .as_ref()
            .map_or_else(String::new, |s| format!("; stopped: {s}"))
    );
    let situations: Vec<String> = found
        .coverage
        .0
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| {
            let first = found
                .features
                .get(&format!("situation/{}/1", name.replace('_', "-")))
                .copied()
                .unwrap_or(0);
            format!(
                "{} {n} times (first in run {first})",
                name.replace('_', "-")
            )
        })
        .collect();
    if !situations.is_empty() {
        println!("situations reached: {}", situations.join("; "));
    }
    println!(
        "situations the protocol's rules exist for, never reached: {}",
        found.coverage.never_reached_words()
    );
    for f in &found.failures {
        println!(
            "failure: run {} after {:.1} s ({}): {}",
            f.run,
            f.after_s,
            f.origin,
            f.judged.problem.as_deref().unwrap_or("-")
        );
    }
    println!(
        "exit {}: {} (again: chaos explore ... --seed {seed} with the same flags and --runs {})",
        found.exit_code.code(),
        results::sweep::exit_words(found.exit_code, !found.failures.is_empty()),
        found.runs
    );
}
