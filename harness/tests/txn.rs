//! Transactions in the deterministic simulation: the list-append and rw-register
//! workloads against the bundled node, judged by the isolation check
//! (docs/transactions.md).
//!
//! The correct node is strict serializable under every fault kind; the same plan
//! gives the same history; each transaction bug is found, with the anomaly it
//! should produce, and `chaos shrink`'s search keeps it while taking faults and
//! ops away.

use harness::sim::sweep::{Judged, View, judge, sweep};
use harness::spec::PlanSpec;
use results::{ExitCode, Mode, Plan, Workload};

fn plan(workload: Workload, seed: u64, nemesis: &str, bug: Option<&str>) -> Plan {
    PlanSpec {
        mode: Mode::Sim,
        name: "txn-test".into(),
        seed: Some(seed),
        nodes: 3,
        workload: Some(workload),
        time_limit_s: 3.0,
        concurrency: Some(4),
        keys: 3,
        op_timeout_ms: 1_000,
        node_args: bug.map(|b| format!("--bug={b}")).into_iter().collect(),
        nemesis: Some(nemesis.parse().unwrap()),
        nemesis_interval_s: Some(0.3),
        ..PlanSpec::default()
    }
    .plan()
    .unwrap()
}

const EVERY_FAULT: &str = "partition,kill,pause,links,clock,power,corrupt";

fn run(plan: &Plan) -> Judged {
    judge(plan).unwrap_or_else(|e| panic!("{}: {e}", plan.command_line()))
}

#[test]
fn the_correct_node_keeps_transactions_strict_serializable_under_every_fault() {
    for workload in [Workload::ListAppend, Workload::RwRegister] {
        let plan_of = |seed| plan(workload, seed, EVERY_FAULT, None);
        let swept = sweep(0..80, 2, 0, &plan_of, None, View::QUIET).unwrap();
        for j in &swept.failures {
            eprintln!(
                "{}: seed {}: {:?}\n  {}",
                workload.name(),
                j.seed,
                j.problem,
                plan_of(j.seed).command_line()
            );
        }
        assert!(swept.failures.is_empty(), "{} failed", workload.name());
        // The runs did work and met faults: one seed, looked at whole.
        let j = run(&plan_of(3));
        assert!(
            j.ok_ops > 50,
            "{}: {} ok transactions",
            workload.name(),
            j.ok_ops
        );
        assert!(j.faults > 3 && j.counts.crashes > 0, "{j:?}");
    }
}

#[test]
fn a_transaction_plan_gives_one_history() {
    for workload in [Workload::ListAppend, Workload::RwRegister] {
        let p = plan(workload, 11, EVERY_FAULT, None);
        assert_eq!(run(&p).history_sha256, run(&p).history_sha256);
    }
}

/// The first failing seed below 300 for `bug`, with the isolation check's first
/// anomaly.
fn found(bug: &str) -> Judged {
    let plan_of = |seed| {
        plan(
            Workload::ListAppend,
            seed,
            "partition,kill,pause",
            Some(bug),
        )
    };
    let swept = sweep(0..300, 2, 1, &plan_of, None, View::QUIET).unwrap();
    let j = swept
        .failures
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("--bug {bug}: no seed below 300 failed"));
    assert_eq!(j.exit_code, ExitCode::Invalid, "{j:?}");
    assert!(
        j.failures.iter().any(|(check, kinds)| check == "isolation"
            && !kinds.is_empty()
            && kinds.iter().all(|k| *k == checker::AnomalyKind::Isolation)),
        "{:?}",
        j.failures
    );
    j
}

#[test]
fn a_split_transaction_is_seen_half_applied_and_shrinks() {
    let j = found("split-txn");
    let problem = j.problem.clone().unwrap_or_default();
    // Another transaction (or the transaction itself) saw half of its writes.
    assert!(
        ["G-single", "G1c", "G1b", "G2-item", "internal"]
            .iter()
            .any(|k| problem.contains(k)),
        "{problem}"
    );
    // Shrinking keeps the isolation failure with fewer faults and ops.
    let p = plan(
        Workload::ListAppend,
        j.seed,
        "partition,kill,pause",
        Some("split-txn"),
    );
    let ops = j.ok_ops + j.fail_ops + j.info_ops;
    let target = harness::shrink::Target {
        check: "isolation".into(),
        kind: Some(checker::AnomalyKind::Isolation),
    };
    let shrunk = harness::shrink::shrink(
        &p,
        ops,
        &target,
        &mut harness::shrink::SimOracle,
        harness::shrink::Budget {
            max_time: std::time::Duration::from_secs(60),
            max_runs: Some(3_000),
        },
        &harness::observe::Silent,
    );
    assert!(shrunk.ops * 10 <= ops, "{} of {ops} ops kept", shrunk.ops);
    assert!(shrunk.plan.schedule.len() <= p.schedule.len());
    let again = run(&shrunk.plan);
    assert!(
        again.failures.iter().any(|(check, _)| check == "isolation"),
        "{:?}",
        again.problem
    );
}

#[test]
fn a_local_read_only_transaction_is_a_stale_read_in_real_time() {
    let j = found("txn-local-read");
    let problem = j.problem.unwrap_or_default();
    assert!(
        problem.contains("realtime") || problem.contains("lost-append"),
        "{problem}"
    );
    // Strict serializability forbids it; plain serializability would not.
    let p = plan(
        Workload::ListAppend,
        j.seed,
        "partition,kill,pause",
        Some("txn-local-read"),
    );
    let serializable = Plan {
        consistency_model: Some(checker::txn::Model::Serializable),
        ..p
    };
    let again = run(&serializable);
    assert!(
        again.failures.iter().all(|(check, _)| check != "isolation"),
        "{:?}",
        again.problem
    );
}
