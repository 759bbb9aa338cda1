//! `chaos explore`'s search ([`harness::sim::explore`]): a function of its seed
//! whatever the number of threads, every mutated plan a valid plan, every
//! situation the Paxos rules exist for reached in a few hundred short runs, and a
//! mistake in a rare path found and replayed from its plan.

use std::time::Duration;

use harness::sim::explore::{self, Explored, Spec};
use harness::sim::sweep::judge;
use harness::spec::PlanSpec;
use rand::SeedableRng;
use results::{ExitCode, Mode, Plan};

const NEMESIS: &str = "partition,kill,pause,links,clock,power";

fn fresh(nodes: usize, secs: f64, node_args: &[&str]) -> impl Fn(u64) -> Plan + Sync {
    fresh_with(nodes, secs, node_args, NEMESIS)
}

fn fresh_with(
    nodes: usize,
    secs: f64,
    node_args: &[&str],
    nemesis: &'static str,
) -> impl Fn(u64) -> Plan + Sync {
    let node_args: Vec<String> = node_args.iter().map(|s| s.to_string()).collect();
    move |seed| {
        PlanSpec {
            mode: Mode::Sim,
            name: "explore-test".into(),
            seed: Some(seed),
            nodes,
            time_limit_s: secs,
            node_args: node_args.clone(),
            nemesis: Some(nemesis.parse().unwrap()),
            ..PlanSpec::default()
        }
        .plan()
        .unwrap()
    }
}

fn search(seed: u64, runs: u64, jobs: usize, fresh: &(dyn Fn(u64) -> Plan + Sync)) -> Explored {
    let spec = Spec {
        seed,
        fresh,
        runs: Some(runs),
        time: None,
        jobs,
        max_failures: 1,
    };
    explore::explore(&spec, &harness::observe::Silent, false).unwrap()
}

#[test]
fn the_search_is_a_function_of_its_seed_and_reaches_every_situation() {
    let f = fresh(3, 3.0, &[]);
    let one = search(11, 400, 1, &f);
    let two = search(11, 400, 2, &f);
    assert_eq!(one.runs, 400);
    assert_eq!(one.exit_code, ExitCode::Valid, "the correct node passes");
    // The same seed: the same runs, so the same features first reached in the same
    // runs, the same corpus and the same situations counted, on 1 or 2 threads.
    assert_eq!(one.features, two.features);
    assert_eq!(one.corpus, two.corpus);
    assert_eq!(one.coverage, two.coverage);
    assert!(one.corpus > 5, "the corpus grew: {}", one.corpus);
    assert!(
        one.features.keys().any(|f| f.starts_with("fault/")),
        "faults meeting the cluster are features: {:?}",
        one.features.keys().collect::<Vec<_>>()
    );
    // Every situation the rules exist for, promises-disagreed included.
    assert_eq!(
        one.coverage.never_reached(),
        Vec::<String>::new(),
        "{:?}",
        one.coverage
    );
    // Another seed is another search.
    let other = search(12, 40, 2, &f);
    assert_ne!(other.features, search(11, 40, 2, &f).features);
}

#[test]
fn every_mutation_is_a_valid_plan_that_runs() {
    // Corruption too: a mutation never leaves a majority of logs corrupt, which
    // would keep the cluster down after the final heal.
    let f = fresh_with(
        5,
        4.0,
        &[],
        "partition,kill,pause,links,clock,power,corrupt",
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut plan = f(1);
    let donor = f(2);
    let mut changed = 0;
    for i in 0..300 {
        let (next, how) = explore::mutate(&plan, &donor, &mut rng, &f);
        assert!(!how.is_empty());
        let text = next.to_json();
        let back = Plan::parse(&text)
            .and_then(|p| p.normalised())
            .unwrap_or_else(|e| panic!("mutation {i} ({how:?}) made an invalid plan: {e}"));
        assert_eq!(back.schedule, next.schedule);
        assert!(
            next.explicit_schedule,
            "a mutated schedule is the plan's own"
        );
        assert!(
            next.schedule.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
            "in time order"
        );
        let corrupted: std::collections::BTreeSet<u32> = next
            .schedule
            .iter()
            .filter(|f| matches!(f.fault, nemesis::Fault::Corrupt { .. }))
            .flat_map(|f| f.targets.iter().copied())
            .collect();
        assert!(
            corrupted.len() <= 2,
            "at most a minority corrupted: {corrupted:?}"
        );
        changed += usize::from(next.schedule != plan.schedule || next.seed != plan.seed);
        plan = next;
    }
    assert!(changed > 250, "mutations change the plan: {changed} of 300");
    // The plan after 300 mutations still runs, and passes with the correct node.
    let j = judge(&plan).unwrap();
    assert_eq!(j.exit_code, ExitCode::Valid, "{:?}", j.problem);
}

#[test]
fn a_rare_path_mistake_is_found_and_its_plan_replays() {
    let f = fresh(3, 5.0, &["--mistake=lowest-promise-wins"]);
    let spec = Spec {
        seed: 1,
        fresh: &f,
        runs: Some(400),
        time: Some(Duration::from_secs(120)),
        jobs: 2,
        max_failures: 1,
    };
    let found = explore::explore(&spec, &harness::observe::Silent, false).unwrap();
    assert_eq!(found.exit_code, ExitCode::Invalid, "found within 400 runs");
    let first = &found.failures[0];
    assert!(
        first
            .judged
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("promises reported")),
        "{:?}",
        first.judged.problem
    );
    // The failing plan, run again from its JSON, fails the same way.
    let again = judge(&Plan::parse(&first.plan.to_json()).unwrap()).unwrap();
    assert_eq!(again.history_sha256, first.judged.history_sha256);
    assert_eq!(again.exit_code, ExitCode::Invalid);
}
