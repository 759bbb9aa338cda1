//! The deterministic simulation (`chaos sim`), over many seeds, judged by the full
//! checker: register agreement and validity, linearizability of every KV key (reads
//! and cas results), log agreement, and that no op with a definite error took effect.
//!
//! Correct nodes: every seed is valid, and the seeds did work and met faults (so the
//! test cannot pass by doing nothing). Buggy nodes: a bounded sweep finds every
//! `--bug`. A failing seed is printed with the `chaos sim` command that reproduces it.

use std::collections::BTreeSet;
use std::path::Path;

use harness::sim::sweep::{Judged, View, judge, sweep};
use harness::spec::PlanSpec;
use nemesis::{Fault, ScheduledFault};
use paxos_node::types::Bug;
use results::{ExitCode, Mode, Plan, RunResult};

/// A short, fault-dense simulated plan: `secs` virtual seconds, a fault interval every
/// `interval` seconds.
fn plan(
    nodes: usize,
    seed: u64,
    secs: f64,
    nemesis: &str,
    interval: f64,
    bug: Option<Bug>,
) -> Plan {
    PlanSpec {
        mode: Mode::Sim,
        name: "sim-test".into(),
        seed: Some(seed),
        nodes,
        workload: Some(results::Workload::Both),
        time_limit_s: secs,
        concurrency: Some(4),
        keys: 3,
        op_timeout_ms: 1_000,
        node_args: bug.map(|b| format!("--bug={b}")).into_iter().collect(),
        nemesis: Some(nemesis.parse().unwrap()),
        nemesis_interval_s: Some(interval),
        ..PlanSpec::default()
    }
    .plan()
    .unwrap()
}

const EVERY_FAULT: &str = "partition,kill,pause,links,clock,corrupt";

fn run(plan: &Plan) -> Judged {
    judge(plan).unwrap_or_else(|e| panic!("{}: {e}", plan.command_line()))
}

/// Every seed of `seeds` is valid with the correct node; the runs did work and met
/// crashes. Runs on two threads.
fn sweep_correct(nodes: usize, seeds: std::ops::Range<u64>) {
    let total = seeds.end - seeds.start;
    let results: Vec<Judged> = std::thread::scope(|s| {
        let halves = [
            seeds.start..seeds.start + total / 2,
            seeds.start + total / 2..seeds.end,
        ];
        let handles: Vec<_> = halves
            .into_iter()
            .map(|half| {
                s.spawn(move || {
                    half.map(|seed| run(&plan(nodes, seed, 1.5, EVERY_FAULT, 0.25, None)))
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
            "seed {}: {:?}\n  reproduce: {}",
            j.seed,
            j.problem,
            plan(nodes, j.seed, 1.5, EVERY_FAULT, 0.25, None).command_line()
        );
    }
    // "Sometimes" checks: the seeds did work, and met every kind of disk fault.
    let sum = |f: fn(&Judged) -> u64| results.iter().map(f).sum::<u64>();
    assert!(
        sum(|j| j.ok_ops) > 100 * total,
        "ok ops: {}",
        sum(|j| j.ok_ops)
    );
    assert!(
        sum(|j| j.counts.crashes) > total,
        "crashes: {}",
        sum(|j| j.counts.crashes)
    );
    // The situations the protocol's rules exist for were reached (a promise quorum
    // reporting two accepted values needs longer runs: a 30 s run reaches it).
    let mut reached = checker::protocol::Coverage::default();
    for j in &results {
        reached.add(&j.coverage);
    }
    assert!(
        reached.never_reached().len() <= 1 && reached.get("restart_between_promise_and_accept") > 0,
        "{reached:?}"
    );
    for (what, n) in [
        ("lost", sum(|j| j.counts.unsynced_lost)),
        ("torn", sum(|j| j.counts.unsynced_torn)),
        ("kept", sum(|j| j.counts.unsynced_kept)),
        ("refused", sum(|j| j.counts.refused_starts)),
    ] {
        assert!(n > 0, "no crash left its unsynced bytes {what}");
    }
}

#[test]
fn three_nodes_correct_over_600_seeds() {
    sweep_correct(3, 0..600);
}

#[test]
fn five_nodes_correct_over_300_seeds() {
    sweep_correct(5, 0..300);
}

/// Every cluster size from 1 to 7 is judged valid under every fault kind the
/// simulation makes (a cluster of one is its own majority: its own acceptance
/// justifies what it writes down as chosen).
#[test]
fn every_cluster_size_from_one_to_seven_is_valid_under_every_fault() {
    let every = "all,power,corrupt";
    for nodes in 1..=7 {
        for seed in 0..12 {
            let p = plan(nodes, seed, 2.0, every, 0.25, None);
            let j = run(&p);
            assert_eq!(
                j.exit_code,
                ExitCode::Valid,
                "{nodes} nodes, seed {seed}: {:?}\n  reproduce: {}",
                j.problem,
                p.command_line()
            );
            assert!(j.ok_ops > 0, "{nodes} nodes, seed {seed}: no op succeeded");
        }
    }
}

#[test]
fn one_plan_gives_one_history_over_200_seeds() {
    let mut hashes = BTreeSet::new();
    for seed in 0..200 {
        let p = plan(3, seed, 0.5, EVERY_FAULT, 0.1, None);
        let (a, b) = (run(&p), run(&p));
        assert_eq!(a.history_sha256, b.history_sha256, "seed {seed}");
        assert_eq!(a.counts, b.counts, "seed {seed}");
        hashes.insert(a.history_sha256);
    }
    assert_eq!(
        hashes.len(),
        200,
        "different seeds give different histories"
    );
}

#[test]
fn every_bug_is_found_by_a_bounded_sweep() {
    let mut missed = Vec::new();
    // The transaction bugs need a transaction workload, which plans do not draw yet.
    for bug in Bug::ALL.into_iter().filter(|b| !b.needs_transactions()) {
        // Unsynced bytes are lost only when a node crashes, and the loss shows only
        // when the leader that holds the value is left out of the next election:
        // overlapping kills and partitions.
        // A snapshot lost with the log it replaced shows when a majority lost theirs
        // in one power failure and lagging links left the new leader's promises
        // without the slots they covered.
        let nemesis = match bug {
            Bug::UnsyncedSnapshot => "partition,kill,power,pause,links",
            b if b.needs_simulated_disk() => "partition,kill,power",
            _ => "partition,kill,pause,links",
        };
        // The sweep stops at the first detection; most bugs need a seed or two,
        // early-ack and unsynced-reply about a hundred.
        let plan_of = |seed| plan(3, seed, 3.0, nemesis, 0.3, Some(bug));
        let found = sweep(0..600, 2, 1, &plan_of, None, View::QUIET).unwrap();
        match found.failures.first() {
            Some(j) if j.exit_code == ExitCode::Invalid => {
                eprintln!("--bug {bug}: seed {}: {:?}", j.seed, j.problem);
            }
            _ => missed.push(bug),
        }
    }
    assert!(missed.is_empty(), "not found: {missed:?}");
}

/// The first seed below 200 whose protocol check broke a rule, for a bug.
fn first_broken_rule(bug: Bug) -> Option<Judged> {
    let plan_of = |seed| plan(3, seed, 3.0, "partition,kill,power,pause", 0.3, Some(bug));
    (0..200)
        .map(|seed| run(&plan_of(seed)))
        .find(|j| !j.broken_rules.is_empty())
}

#[test]
fn each_bug_that_breaks_a_protocol_rule_trips_that_rule() {
    use checker::AnomalyKind::*;
    for (bug, rule) in [
        (Bug::ForgetPromises, PromiseRegressed),
        (Bug::AcceptLowerBallot, AcceptedBelowPromise),
        (Bug::IgnoreAccepted, WrongValueProposed),
        (Bug::MinorityQuorum, ChosenWithoutQuorum),
    ] {
        let j = first_broken_rule(bug).unwrap_or_else(|| panic!("--bug {bug}: no rule broken"));
        assert!(
            j.broken_rules.contains(&rule),
            "--bug {bug} seed {}: {:?}",
            j.seed,
            j.broken_rules
        );
        assert_eq!(j.exit_code, ExitCode::Invalid);
    }
    // Bugs in what a node tells its clients break no rule between the nodes.
    for bug in [Bug::StaleRead, Bug::EarlyAck] {
        for seed in 0..20 {
            let j = run(&plan(3, seed, 2.0, "partition,kill,pause", 0.3, Some(bug)));
            assert_eq!(j.broken_rules, vec![], "--bug {bug} seed {seed}");
        }
    }
}

#[test]
fn without_faults_nearly_every_op_succeeds() {
    let (mut ok, mut info, mut all) = (0, 0, 0);
    for seed in 0..50 {
        let j = run(&plan(3, seed, 1.0, "none", 1.0, None));
        assert_eq!(j.exit_code, ExitCode::Valid, "seed {seed}: {:?}", j.problem);
        assert_eq!(j.counts.crashes, 0);
        ok += j.ok_ops;
        info += j.info_ops;
        all += j.ok_ops + j.fail_ops + j.info_ops;
    }
    // Only ops sent before the first leader is known fail (`unavailable`, definite:
    // the first election takes a good part of a 1 s run); none is left in doubt.
    assert_eq!(info, 0, "{info} ops of unknown outcome without faults");
    assert!(ok * 10 >= all * 8, "only {ok} of {all} ops succeeded");
}

#[test]
fn skewed_and_jumping_clocks_do_not_break_safety() {
    for seed in 0..40 {
        let p = plan(3, seed, 2.0, "clock,kill,partition", 0.2, None);
        assert!(
            p.schedule
                .iter()
                .any(|f| matches!(f.fault, Fault::Clock { .. }))
        );
        let j = run(&p);
        assert_eq!(j.exit_code, ExitCode::Valid, "seed {seed}: {:?}", j.problem);
    }
}

fn result_of(dir: &Path) -> RunResult {
    RunResult::parse(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
}

#[test]
fn a_simulated_run_leaves_a_run_directory_like_a_real_one_and_replays_exactly() {
    let root = tempfile::tempdir().unwrap();
    let mut p = plan(3, 11, 2.0, "partition,kill", 0.5, None);
    // A corrupt WAL, found on restart: the node stays down, naming file and offset.
    p.schedule.extend([
        ScheduledFault {
            at_ms: 1_600,
            fault: Fault::Corrupt { position: 12_345 },
            targets: vec![2],
            role: None,
        },
        ScheduledFault {
            at_ms: 1_700,
            fault: Fault::Kill,
            targets: vec![2],
            role: None,
        },
        ScheduledFault {
            at_ms: 1_800,
            fault: Fault::Restart,
            targets: vec![2],
            role: None,
        },
    ]);
    p.explicit_schedule = true;
    let show = &harness::observe::Silent;
    let first = harness::sim::execute(&p, root.path(), show).unwrap();
    let dir = &first.run_dir;
    for file in [
        "plan.json",
        "history.jsonl",
        "result.json",
        "report.html",
        "junit.xml",
    ] {
        assert!(dir.join(file).exists(), "{file} missing");
    }
    assert!(dir.join("final/n1.json").exists() && !dir.join("final/n2.json").exists());
    let r = result_of(dir);
    assert_eq!(r.exit_code, ExitCode::Valid, "{:?} {:?}", r.checks, r.notes);
    assert_eq!(r.plan.mode, Mode::Sim);
    // An explicit schedule cannot be given back as flags: the stored plan runs again.
    assert_eq!(
        r.reproduce,
        format!(
            "chaos sim --plan {}",
            std::fs::canonicalize(dir)
                .unwrap()
                .join("plan.json")
                .display()
        ),
    );
    let sim = r.simulation.clone().expect("a simulated run says so");
    // Its messages are counted per link and type, as a real run's proxies count them,
    // and add up to the simulation's totals.
    let sum = |f: fn(&nemesis::net::Counts) -> u64| -> u64 {
        r.links.iter().flat_map(|l| l.types.values()).map(f).sum()
    };
    assert!(r.links.len() >= 6, "{} links", r.links.len());
    assert_eq!(sum(|c| c.sent), sim.counts.messages_sent);
    assert_eq!(sum(|c| c.delivered), sim.counts.messages_delivered);
    assert_eq!(sum(|c| c.dropped), sim.counts.messages_dropped);
    assert_eq!(
        sim.history_sha256,
        harness::sim::sha256_file(&dir.join("history.jsonl")).unwrap()
    );
    assert_eq!(sim.counts.refused_starts, 1);
    // Each check once, in result.json and in junit.xml (the protocol check was listed
    // twice: skipped from the files, and valid from the simulation's own steps).
    let names: Vec<&str> = r.checks.iter().flatten().map(|c| c.name.as_str()).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(names.len(), unique.len(), "{names:?}");
    let protocol = r.checks.iter().flatten().find(|c| c.name == "protocol");
    assert_eq!(protocol.map(|c| c.verdict), Some(results::Verdict::Valid));
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches(r#"name="protocol""#).count(), 1, "{junit}");
    let note = r.notes.join("\n");
    assert!(
        note.contains("n2/wal.log") && note.contains("byte offset"),
        "{note}"
    );
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("Simulated run") && report.contains(&sim.history_sha256));
    // The same plan again: the same history, and the same result.json but for its
    // wall-clock fields.
    let again = harness::sim::execute(&p, root.path(), show).unwrap();
    let r2 = result_of(&again.run_dir);
    assert_eq!(
        r2.simulation.as_ref().unwrap().history_sha256,
        sim.history_sha256
    );
    assert_eq!(r2.without_wall_clock(), r.without_wall_clock());
    assert_eq!(
        std::fs::read(dir.join("history.jsonl")).unwrap(),
        std::fs::read(again.run_dir.join("history.jsonl")).unwrap()
    );
}

#[test]
fn node_arguments_that_need_a_process_are_refused() {
    let mut p = plan(3, 1, 1.0, "none", 1.0, None);
    p.node_args = vec!["--unsafe-no-fsync".into()];
    let refused = judge(&p).unwrap_err();
    assert_eq!(refused.blame, harness::vocab::Blame::Input);
    assert!(refused.what.contains("--unsafe-no-fsync"), "{refused}");
    p.node_args = vec!["--bug=nonsense".into()];
    assert!(judge(&p).unwrap_err().what.contains("nonsense"));
    p.node_args = vec!["--election-timeout-ms=100,200".into()];
    assert_eq!(run(&p).exit_code, ExitCode::Valid);
}

/// Log agreement sees every chosen command, the ones snapshots compacted away too: a
/// simulated run's final/ holds each node's learned log beside its dump, and a command
/// chosen twice below every snapshot (injected into those files, test only) is found,
/// where the dumps alone (the tail above the snapshots) could not show it.
#[test]
fn a_command_chosen_twice_below_a_snapshot_is_found() {
    let root = tempfile::tempdir().unwrap();
    let mut p = plan(3, 5, 6.0, "partition,kill", 1.0, None);
    p.workload = results::Workload::Kv;
    let out = harness::sim::execute(&p, root.path(), &harness::observe::Silent).unwrap();
    assert_eq!(out.exit_code, ExitCode::Valid);
    let dir = out.run_dir;
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("final").join(f)).unwrap()).unwrap()
    };
    let dump = read("n1.json");
    let snapshot = dump["snapshot"]["index"]
        .as_u64()
        .expect("the run is long enough for node 1 to snapshot");
    let mut learned = read("n1.learned.json");
    let entries = learned["log"].as_array_mut().unwrap();
    let below: Vec<usize> = (0..entries.len())
        .filter(|i| {
            entries[*i]["slot"].as_u64().unwrap() <= snapshot && entries[*i]["command"].is_object()
        })
        .collect();
    assert!(
        below.len() > 10,
        "the learned log keeps compacted slots: {below:?}"
    );
    let result = results::judge_run_dir(&dir, &checker::Options::default());
    let log = |r: &results::Judged| {
        r.checked
            .as_ref()
            .unwrap()
            .checks
            .iter()
            .find(|c| c.name == "log-agreement")
            .cloned()
            .unwrap()
    };
    let before = log(&result);
    assert_eq!(
        before.verdict,
        results::Verdict::Valid,
        "{}",
        before.summary
    );
    assert!(
        before.summary.contains("learned logs"),
        "{}",
        before.summary
    );
    // The first compacted command chosen again in a later compacted slot, in every
    // node's learned log alike (so the slots still agree): a duplicate only the
    // whole log shows.
    let (a, b) = (below[0], below[below.len() / 2]);
    let copy = entries[a]["command"].clone();
    let slot_b = entries[b]["slot"].clone();
    for f in ["n1.learned.json", "n2.learned.json", "n3.learned.json"] {
        let mut l = read(f);
        for e in l["log"].as_array_mut().unwrap() {
            if e["slot"] == slot_b {
                e["command"] = copy.clone();
            }
        }
        std::fs::write(dir.join("final").join(f), l.to_string()).unwrap();
    }
    let after = log(&results::judge_run_dir(&dir, &checker::Options::default()));
    assert_eq!(
        after.verdict,
        results::Verdict::Invalid,
        "{}",
        after.summary
    );
    assert!(
        after
            .anomalies
            .iter()
            .any(|x| x.kind == checker::AnomalyKind::DuplicateCommand),
        "{:?}",
        after.anomalies
    );
    // Without the learned logs, the dumps alone hold no compacted slot.
    for f in ["n1.learned.json", "n2.learned.json", "n3.learned.json"] {
        std::fs::remove_file(dir.join("final").join(f)).unwrap();
    }
    let dumps_only = log(&results::judge_run_dir(&dir, &checker::Options::default()));
    assert_eq!(
        dumps_only.verdict,
        results::Verdict::Valid,
        "{}",
        dumps_only.summary
    );
}

/// A sweep judges the history it built as the events were written; a single run
/// judges the text it wrote. Both must be the same history, op for op and
/// transaction for transaction, under every fault and with a bug that makes the
/// history invalid.
#[test]
fn the_history_built_as_written_is_the_history_read_back() {
    let mut plans = vec![
        plan(3, 1, 1.5, EVERY_FAULT, 0.25, None),
        plan(5, 2, 1.5, EVERY_FAULT, 0.25, Some(Bug::StaleRead)),
    ];
    for workload in [results::Workload::ListAppend, results::Workload::RwRegister] {
        let mut p = plan(3, 3, 1.5, EVERY_FAULT, 0.25, None);
        p.workload = workload;
        p.txn_shape = Some(results::plan::TxnShape::default());
        plans.push(p);
    }
    for p in &plans {
        let memory = harness::sim::Memory::default();
        let recorder = harness::recorder::Recorder::with_virtual_clock(Box::new(memory.clone()), 4);
        recorder.build();
        harness::sim::simulate(p, &recorder).unwrap();
        recorder.flush().unwrap();
        let built = recorder.built().expect("asked for").unwrap();
        let text = String::from_utf8(memory.0.lock().unwrap().clone()).unwrap();
        let read = checker::history::parse_history_str(&text).unwrap();
        assert!(
            read.ops.len() + read.txns.len() > 20,
            "{}",
            p.command_line()
        );
        assert!(built == read, "{}", p.command_line());
        // Written apart (as a single `chaos sim` run writes it): the same bytes, the
        // same history, and the hash of those bytes.
        let apart_memory = harness::sim::Memory::default();
        let apart = harness::recorder::Recorder::with_virtual_clock_apart(
            Box::new(apart_memory.clone()),
            4,
        );
        harness::sim::simulate(p, &apart).unwrap();
        assert_eq!(apart.sha256(), None, "no hash before the writer is closed");
        apart.flush().unwrap();
        apart.flush().unwrap();
        let apart_text = String::from_utf8(apart_memory.0.lock().unwrap().clone()).unwrap();
        assert!(apart_text == text, "{}", p.command_line());
        assert_eq!(
            apart.sha256(),
            Some(harness::sim::sha256(text.as_bytes())),
            "{}",
            p.command_line()
        );
        assert!(apart.built().expect("always built").unwrap() == read);
    }
}

/// A single run judges each learned log as it encoded it (the text, and where each
/// command lies in it), not read back from final/: that must be what reading the
/// text gives, entry for entry, with snapshots, restarts, transactions and a bug;
/// and the run's verdict must be what judging its files afresh says.
#[test]
fn the_learned_logs_judged_as_written_are_the_logs_read_back() {
    let mut plans = vec![
        plan(3, 4, 3.0, EVERY_FAULT, 0.25, None),
        plan(5, 5, 3.0, EVERY_FAULT, 0.25, Some(Bug::ForgetPromises)),
    ];
    let mut txns = plan(3, 6, 2.0, EVERY_FAULT, 0.25, None);
    txns.workload = results::Workload::ListAppend;
    txns.txn_shape = Some(results::plan::TxnShape::default());
    plans.push(txns);
    for p in &plans {
        let memory = harness::sim::Memory::default();
        let recorder = harness::recorder::Recorder::with_virtual_clock(Box::new(memory), 4);
        let sim = harness::sim::simulate(p, &recorder).unwrap();
        assert!(!sim.learned.is_empty(), "{}", p.command_line());
        let mut entries = 0;
        for log in sim.learned {
            let read = checker::finals::parse_final(&log.text, None).unwrap();
            let node = log.node;
            let built = log.into_dump().unwrap();
            entries += read.log.len();
            assert!(read == built, "{}: node {node}", p.command_line());
            for e in &built.log {
                assert_eq!(built.command(e), read.command(e));
            }
        }
        assert!(entries > 100, "{}: {entries} entries", p.command_line());
        let root = tempfile::tempdir().unwrap();
        let out = harness::sim::execute(p, root.path(), &harness::observe::Silent).unwrap();
        let stored = result_of(&out.run_dir);
        let afresh = results::judge_run_dir(&out.run_dir, &checker::Options::default());
        let afresh = afresh.checked.unwrap();
        let without_protocol = |checks: &[checker::CheckReport]| -> Vec<String> {
            checks
                .iter()
                .filter(|c| c.name != "protocol")
                .map(|c| serde_json::to_string(c).unwrap())
                .collect()
        };
        assert_eq!(
            without_protocol(stored.checks.as_deref().unwrap()),
            without_protocol(&afresh.checks),
            "{}",
            p.command_line()
        );
    }
}

/// A history that cannot be written stops the run, said in the file's words, when
/// written apart as when written under the lock.
#[test]
fn a_history_writer_that_fails_breaks_the_recorder_written_apart() {
    struct Full;
    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("no space left"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let p = plan(3, 1, 1.5, EVERY_FAULT, 0.25, None);
    let recorder = harness::recorder::Recorder::with_virtual_clock_apart(Box::new(Full), 4);
    // The run stops once the failure shows; it may have handed over more first.
    let _ = harness::sim::simulate(&p, &recorder);
    let e = recorder.flush().expect_err("the writer failed");
    assert!(e.to_string().contains("no space left"), "{e}");
    let broken = recorder.broken().expect("broken");
    assert!(
        broken.contains("history.jsonl") && broken.contains("no space left"),
        "{broken}"
    );
    assert!(recorder.sha256().is_some_and(|s| s.len() == 64));
}
