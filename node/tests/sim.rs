//! The deterministic in-process cluster, over many seeds.
//!
//! Correct cores: agreement and validity hold in every seed, and most runs actually
//! decide registers and choose slots (so the test cannot pass by deciding nothing).
//! Buggy cores: a bounded sweep finds a violation (so the test has teeth).
//! A failing seed is printed; re-run it alone with `SimConfig::new(n, seed)`.

use paxos_node::sim::{SimConfig, SimReport, run};
use paxos_node::types::Bug;

/// Runs `seeds` for an `n`-node cluster and asserts safety and that work got done.
fn sweep_correct(n: usize, seeds: std::ops::Range<u64>) {
    let total = seeds.end - seeds.start;
    let mut idle = 0u64;
    let mut decided = 0usize;
    let mut slots = 0usize;
    for seed in seeds {
        let report = run(SimConfig::new(n, seed));
        assert!(
            report.violations.is_empty(),
            "n={n} seed={seed}: {:#?}",
            report.violations
        );
        if report.registers_decided == 0 || report.slots_chosen == 0 {
            idle += 1;
        }
        decided += report.registers_decided;
        slots += report.slots_chosen;
    }
    // "Sometimes" checks: the runs exercised consensus, not just survived.
    assert!(
        idle * 20 < total,
        "n={n}: {idle} of {total} runs decided no register or chose no slot"
    );
    assert!(
        decided as u64 > total,
        "n={n}: only {decided} registers decided"
    );
    assert!(slots as u64 > 3 * total, "n={n}: only {slots} slots chosen");
}

// 10,000 seeds of each size, split so the test runner spreads them over the cores.
#[test]
fn three_nodes_seeds_0_to_5000() {
    sweep_correct(3, 0..5_000);
}

#[test]
fn three_nodes_seeds_5000_to_10000() {
    sweep_correct(3, 5_000..10_000);
}

#[test]
fn five_nodes_seeds_0_to_5000() {
    sweep_correct(5, 0..5_000);
}

#[test]
fn five_nodes_seeds_5000_to_10000() {
    sweep_correct(5, 5_000..10_000);
}

#[test]
fn a_lossless_network_without_crashes_answers_every_op() {
    let (mut ops, mut ok, mut timeouts) = (0, 0, 0);
    for seed in 0..200 {
        let mut cfg = SimConfig::new(3, seed);
        cfg.drop_prob = 0.0;
        cfg.dup_prob = 0.0;
        cfg.crashes = false;
        cfg.partitions = false;
        let r = run(cfg.clone());
        assert!(r.violations.is_empty(), "seed {seed}: {:?}", r.violations);
        // Request timers guarantee an answer to every op.
        assert_eq!(
            r.outcomes.get("unanswered"),
            None,
            "seed {seed}: {:?}",
            r.outcomes
        );
        ops += cfg.ops;
        ok += r.ops_ok;
        // Only a command in flight at a leader deposed during the first election can
        // time out here: it may or may not be chosen later, so no definite answer.
        timeouts += r.outcomes.get("timeout").copied().unwrap_or(0);
    }
    assert!(timeouts * 100 <= ops, "{timeouts} timeouts in {ops} ops");
    assert!(ok * 10 >= ops * 8, "only {ok} of {ops} ops succeeded");
}

#[test]
fn one_seed_gives_one_run() {
    let traced = |seed| {
        let mut cfg = SimConfig::new(5, seed);
        cfg.trace = true;
        run(cfg)
    };
    let (a, b) = (traced(42), traced(42));
    assert!(a.trace.len() > 100);
    assert_eq!(a.trace, b.trace);
    assert_ne!(a.trace, traced(43).trace);
}

/// The first seed (n = 3 and 5 alternating) in which the bug breaks a property.
fn first_violation(bug: Bug, max_seeds: u64) -> Option<SimReport> {
    (0..max_seeds).find_map(|seed| {
        let n = if seed % 2 == 0 { 3 } else { 5 };
        let report = run(SimConfig::new(n, seed).with_bug(bug));
        (!report.violations.is_empty()).then_some(report)
    })
}

fn assert_found(bug: Bug, what: &str) {
    let report = first_violation(bug, 2_000)
        .unwrap_or_else(|| panic!("--bug {bug}: no violation in 2,000 seeds"));
    assert!(
        report.violations.iter().any(|v| v.contains(what)),
        "--bug {bug} (seed {}): expected '{what}' in {:#?}",
        report.seed,
        report.violations
    );
}

#[test]
fn forget_promises_breaks_agreement() {
    assert_found(Bug::ForgetPromises, "agreement broken");
}

#[test]
fn accept_lower_ballot_breaks_agreement() {
    assert_found(Bug::AcceptLowerBallot, "agreement broken");
}

#[test]
fn ignore_accepted_breaks_register_agreement() {
    assert_found(Bug::IgnoreAccepted, "register");
}

#[test]
fn minority_quorum_breaks_agreement() {
    assert_found(Bug::MinorityQuorum, "agreement broken");
}

#[test]
fn early_ack_loses_acknowledged_writes() {
    assert_found(Bug::EarlyAck, "acknowledged write");
}
