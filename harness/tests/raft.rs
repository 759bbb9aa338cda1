//! TiKV's raft-rs behind the core seam, in the deterministic simulation: valid under
//! every fault kind the simulation makes, Raft's properties checked on every step
//! and the situations that test them reached, one history per plan, and an adapter's
//! own mistakes caught.

use std::collections::BTreeSet;

use checker::AnomalyKind;
use harness::sim::sweep::{Judged, View, judge, sweep};
use harness::spec::PlanSpec;
use results::plan::CoreName;
use results::{ExitCode, Mode, Plan};

/// Every fault kind of the simulation: partitions of every shape, kills, power
/// loss, pauses, link faults, clock faults and disk corruption of a minority.
const EVERY_FAULT: &str = "all,power,corrupt";

fn plan(nodes: usize, seed: u64, secs: f64, interval: f64, node_args: &[&str]) -> Plan {
    PlanSpec {
        mode: Mode::Sim,
        name: "raft-test".into(),
        seed: Some(seed),
        nodes,
        core: CoreName::RaftRs,
        time_limit_s: secs,
        concurrency: Some(4),
        keys: 3,
        op_timeout_ms: 1_000,
        node_args: node_args.iter().map(|a| a.to_string()).collect(),
        nemesis: Some(EVERY_FAULT.parse().unwrap()),
        nemesis_interval_s: Some(interval),
        ..PlanSpec::default()
    }
    .plan()
    .unwrap()
}

fn correct(nodes: usize, seeds: std::ops::Range<u64>, node_args: &[&str]) -> Vec<Judged> {
    let plan_of = |seed| plan(nodes, seed, 2.0, 0.25, node_args);
    let mid = seeds.start + (seeds.end - seeds.start) / 2;
    let results: Vec<Judged> = std::thread::scope(|s| {
        let handles: Vec<_> = [seeds.start..mid, mid..seeds.end]
            .into_iter()
            .map(|half| {
                let plan_of = &plan_of;
                s.spawn(move || {
                    half.map(|seed| judge(&plan_of(seed)).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    for j in &results {
        assert_eq!(
            j.exit_code,
            ExitCode::Valid,
            "{nodes} nodes, seed {}: {:?}\n  reproduce: {}",
            j.seed,
            j.problem,
            plan_of(j.seed).command_line()
        );
    }
    results
}

fn assert_exercised(results: &[Judged]) {
    let total = results.len() as u64;
    let sum = |f: fn(&Judged) -> u64| results.iter().map(f).sum::<u64>();
    assert!(
        sum(|j| j.ok_ops) > 50 * total,
        "ok ops: {}",
        sum(|j| j.ok_ops)
    );
    assert!(sum(|j| j.counts.crashes) > total, "crashes");
    assert!(sum(|j| j.counts.corruptions) > 0, "no disk corruption met");
    let mut reached = checker::protocol::Coverage::default();
    for j in results {
        reached.add(&j.coverage);
    }
    // Raft's situations, all reached: a leader change with uncommitted entries, a
    // follower's log truncated, a restart between persisting and sending.
    assert_eq!(
        reached
            .0
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        checker::raft::RAFT_SITUATIONS.into_iter().collect(),
        "{reached:?}"
    );
    assert!(reached.never_reached().is_empty(), "{reached:?}");
}

#[test]
fn three_raft_rs_nodes_are_valid_over_500_seeds_of_every_fault() {
    // Snapshots every 25 entries: compaction, snapshot transfer and recovery from a
    // snapshot meet every fault too.
    assert_exercised(&correct(3, 0..500, &["--snapshot-every=25"]));
}

#[test]
fn five_raft_rs_nodes_are_valid_over_200_seeds_of_every_fault() {
    assert_exercised(&correct(5, 0..200, &["--snapshot-every=25"]));
}

/// The knobs of raft-rs's Config that change what is safe: each setting is valid
/// (lease-based reads too: the simulation's clock faults stay inside what a lease
/// tolerates here) and recorded in the plan as node arguments.
#[test]
fn every_safety_setting_of_raft_rs_runs_and_is_recorded() {
    let settings: [&[&str]; 4] = [
        &["--raft-read-only=lease-based"],
        &["--raft-check-quorum=false", "--raft-pre-vote=false"],
        &["--raft-max-inflight=1", "--raft-heartbeat-tick=1"],
        &["--raft-election-tick=30", "--raft-tick-ms=10"],
    ];
    for args in settings {
        let p = plan(3, 1, 2.0, 0.25, args);
        assert_eq!(
            p.node_args,
            args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
        );
        assert!(
            p.to_json().contains("\"core\": \"raft-rs\""),
            "{}",
            p.to_json()
        );
        correct(3, 0..10, args);
    }
}

#[test]
fn one_raft_plan_gives_one_history() {
    let mut hashes = BTreeSet::new();
    for seed in 0..30 {
        let p = plan(3, seed, 1.0, 0.2, &[]);
        let (a, b) = (judge(&p).unwrap(), judge(&p).unwrap());
        assert_eq!(a.history_sha256, b.history_sha256, "seed {seed}");
        assert_eq!(a.counts, b.counts, "seed {seed}");
        hashes.insert(a.history_sha256);
    }
    assert_eq!(hashes.len(), 30, "different seeds give different histories");
}

/// The first failing seed below 100 of an adapter mistake, and what found it.
fn caught(mistake: &str) -> Judged {
    let arg = format!("--raft-mistake={mistake}");
    let plan_of = |seed| plan(3, seed, 3.0, 0.3, &[arg.as_str()]);
    let found = sweep(0..100, 2, 1, &plan_of, None, View::QUIET).unwrap();
    let j = found
        .failures
        .first()
        .unwrap_or_else(|| panic!("{mistake}: not caught in 100 seeds"))
        .clone();
    assert_eq!(j.exit_code, ExitCode::Invalid, "{mistake}: {:?}", j.problem);
    j
}

#[test]
fn applying_before_commit_is_caught_by_the_history() {
    let j = caught("apply-before-commit");
    assert!(j.seed < 20, "seed {}", j.seed);
    assert!(
        j.failures
            .iter()
            .any(|(check, _)| check == "linearizability" || check == "log-agreement"),
        "{:?}",
        j.failures
    );
}

#[test]
fn sending_before_persisting_is_caught() {
    let j = caught("send-before-persist");
    assert!(j.seed < 50, "seed {}", j.seed);
    let kinds: Vec<AnomalyKind> = j.failures.iter().flat_map(|(_, k)| k.clone()).collect();
    assert!(!kinds.is_empty(), "{:?}", j.failures);
}
