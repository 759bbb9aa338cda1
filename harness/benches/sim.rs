//! The simulation's figures: `cargo bench -p harness --bench sim`.
//!
//! 1. A 5-node, 30-virtual-second run with the default workload and nemesis, into a
//!    run directory (check and report included): wall time and the ratio to the
//!    virtual time it covered.
//! 2. 10,000 seeds of a 3-node, 5-virtual-second run, judged in memory on every
//!    core: wall time, seeds/s, failing seeds.
//! 3. `chaos matrix --sim` (every `--bug`, 3 nodes, 3 s runs, 0.3 s fault intervals):
//!    seeds and wall time to the first detection.
//! 4. Determinism: 1,000 seeds run twice, history hashes compared.
//! 5. Per `--bug`, the first detecting seed with the protocol's rules and with the
//!    history checks alone.
//!
//! Knobs: SIM_BENCH_SEEDS (figure 2, default 10000), SIM_BENCH_DETERMINISM (figure 4,
//! default 1000), SIM_BENCH_ONLY (a figure number, to run just that one).

use std::time::Instant;

use harness::sim::sweep::{View, judge, sweep};
use harness::spec::PlanSpec;
use paxos_node::types::Bug;
use results::{Mode, Plan, RunResult};

fn args(nodes: usize, secs: f64, seed: u64) -> PlanSpec {
    // The run's default fault interval: 3 s, or a fifth of a shorter run (every run has
    // faults).
    PlanSpec {
        mode: Mode::Sim,
        name: "sim-bench".into(),
        seed: Some(seed),
        nodes,
        workload: Some(results::Workload::Both),
        time_limit_s: secs,
        ..PlanSpec::default()
    }
}

fn plan(a: &PlanSpec) -> Plan {
    a.plan().unwrap()
}

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn one_long_run() {
    println!("1. 5 nodes, 30 virtual s, default workload and nemesis, check and report included");
    let mut rows = Vec::new();
    for seed in 1..=5 {
        let root = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let out = harness::sim::execute(
            &plan(&args(5, 30.0, seed)),
            root.path(),
            &harness::observe::Silent,
        )
        .unwrap();
        let wall = started.elapsed().as_secs_f64();
        let r =
            RunResult::parse(&std::fs::read_to_string(out.run_dir.join("result.json")).unwrap())
                .unwrap();
        let sim = r.simulation.clone().unwrap();
        let ok = r.outcome_counts().get("ok").copied().unwrap_or(0);
        println!(
            "   seed {seed}: {:.1} virtual s in {wall:.2} s ({:.0}x; simulation alone {:.2} s, {:.0}x), {ok} ok ops, exit {}",
            sim.virtual_s,
            sim.virtual_s / wall,
            sim.wall_s,
            sim.virtual_s / sim.wall_s,
            r.exit_code.code()
        );
        rows.push(sim.virtual_s / wall);
    }
    rows.sort_by(f64::total_cmp);
    println!("   median ratio to real time: {:.0}x", rows[rows.len() / 2]);
}

fn many_seeds() {
    let n = knob("SIM_BENCH_SEEDS", 10_000);
    println!(
        "2. {n} seeds of 3 nodes, 5 virtual s, default workload and nemesis, {} jobs",
        cores()
    );
    let plan_of = |seed| plan(&args(3, 5.0, seed));
    let s = sweep(0..n, cores(), 0, &plan_of, None, View::QUIET).unwrap();
    println!(
        "   {} seeds in {:.1} s: {:.1} seeds/s, {} failing; {:.2} faults per seed, {} seeds with none",
        s.seeds_run,
        s.wall_s,
        s.seeds_run as f64 / s.wall_s,
        s.failures.len(),
        s.faults as f64 / s.seeds_run.max(1) as f64,
        s.without_faults
    );
    println!("   coverage summed over the seeds: {:?}", s.coverage);
}

fn rules_against_history() {
    println!(
        "5. per --bug, first detecting seed with the protocol rules and with the history checks alone (3 nodes, 3 virtual s, 0.3 s slots, one thread)"
    );
    println!(
        "   {:<20} {:<26} history checks alone",
        "bug", "rules and history"
    );
    for bug in Bug::ALL.into_iter().filter(|b| !b.needs_transactions()) {
        let started = Instant::now();
        let (mut with, mut alone) = (None, None);
        for seed in 1..=600u64 {
            let mut a = args(3, 3.0, seed);
            a.nemesis_interval_s = Some(0.3);
            a.node_args = vec![format!("--bug={bug}")];
            let j = judge(&plan(&a)).unwrap();
            let secs = started.elapsed().as_secs_f64();
            if with.is_none() && j.exit_code == results::ExitCode::Invalid {
                with = Some((seed, secs, j.broken_rules.first().copied()));
            }
            if alone.is_none() && j.history_verdict == results::Verdict::Invalid {
                alone = Some((seed, secs));
            }
            if alone.is_some() && with.is_some() {
                break;
            }
        }
        let show = |f: Option<(u64, f64)>| {
            f.map_or("not in 600 seeds".to_string(), |(s, t)| {
                format!("seed {s}, {t:.2} s")
            })
        };
        let rule = with
            .and_then(|w| w.2)
            .map_or(String::new(), |k| format!(" ({k})"));
        println!(
            "   {:<20} {:<26} {}",
            bug.name(),
            format!("{}{rule}", show(with.map(|w| (w.0, w.1)))),
            show(alone)
        );
    }
}

fn matrix() {
    println!(
        "3. chaos matrix --sim: 3 nodes, 3 virtual s, 0.3 s fault intervals, up to 600 seeds per bug"
    );
    println!(
        "   {:<20} {:<9} {:<11} time to detection",
        "bug", "detected", "first seed"
    );
    let mut times = Vec::new();
    for bug in Bug::ALL.into_iter().filter(|b| !b.needs_transactions()) {
        let plan_of = |seed| {
            let mut a = args(3, 3.0, seed);
            a.nemesis_interval_s = Some(0.3);
            a.node_args = vec![format!("--bug={bug}")];
            plan(&a)
        };
        let started = Instant::now();
        let s = sweep(1..601, cores(), 1, &plan_of, None, View::QUIET).unwrap();
        let secs = started.elapsed().as_secs_f64();
        match s.failures.first() {
            Some(j) if j.exit_code == results::ExitCode::Invalid => {
                println!(
                    "   {:<20} {:<9} {:<11} {secs:.2} s",
                    bug.name(),
                    "yes",
                    j.seed
                );
                times.push(secs);
            }
            _ => println!("   {:<20} {:<9} {:<11} -", bug.name(), "NO", "-"),
        }
    }
    times.sort_by(f64::total_cmp);
    if !times.is_empty() {
        println!(
            "   median time to detection: {:.2} s",
            times[times.len() / 2]
        );
    }
}

fn determinism() {
    let n = knob("SIM_BENCH_DETERMINISM", 1_000);
    println!("4. determinism: {n} seeds (3 nodes, 2 virtual s, every fault kind) run twice");
    let started = Instant::now();
    let mismatches = std::sync::atomic::AtomicU64::new(0);
    let plan_of = |seed| {
        let mut a = args(3, 2.0, seed);
        a.nemesis = Some(
            "partition,kill,pause,links,power,clock,corrupt"
                .parse()
                .unwrap(),
        );
        a.nemesis_interval_s = Some(0.3);
        plan(&a)
    };
    std::thread::scope(|s| {
        for part in 0..cores() as u64 {
            let (plan_of, mismatches) = (&plan_of, &mismatches);
            s.spawn(move || {
                for seed in (0..n).filter(|s| s % cores() as u64 == part) {
                    let p = plan_of(seed);
                    if judge(&p).unwrap().history_sha256 != judge(&p).unwrap().history_sha256 {
                        mismatches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        println!("   seed {seed}: MISMATCH");
                    }
                }
            });
        }
    });
    println!(
        "   {} runs in {:.1} s: {} hash mismatches",
        2 * n,
        started.elapsed().as_secs_f64(),
        mismatches.into_inner()
    );
}

fn main() {
    let only = std::env::var("SIM_BENCH_ONLY").ok();
    let want = |k: &str| only.as_deref().is_none_or(|o| o == k);
    if want("1") {
        one_long_run();
    }
    if want("2") {
        many_seeds();
    }
    if want("3") {
        matrix();
    }
    if want("4") {
        determinism();
    }
    if want("5") {
        rules_against_history();
    }
}
