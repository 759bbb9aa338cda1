//! `--core raft-rs` from the command line: TiKV's raft-rs under the simulation, in
//! real processes over the proxy and over namespaces, its mistakes shrunk, and the
//! choices that make no sense refused.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{SHORT, assert_nothing_left, netns_ok, result_of, run_dir_of, text, verdict};

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn chaos(root: &Path, args: &[&str]) -> Output {
    Command::new(CHAOS)
        .args(args)
        .arg("--results")
        .arg(root)
        .output()
        .unwrap()
}

#[test]
fn a_simulated_raft_rs_run_names_its_core_and_replays_exactly() {
    let root = tempfile::tempdir().unwrap();
    let mut args = vec!["sim", "--core", "raft-rs", "--seed", "4", "--no-progress"];
    args.extend(SHORT);
    let out = chaos(root.path(), &args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("Raft's properties:"), "{t}");
    assert!(
        t.contains("--core raft-rs"),
        "the reproduce line names the core: {t}"
    );
    let dir = run_dir_of(&t);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["core"], "raft-rs");
    let result = result_of(&dir);
    assert_eq!(verdict(&result, "protocol"), "valid");
    assert!(
        result["coverage"]["follower_log_truncated"].is_u64(),
        "{}",
        result["coverage"]
    );
    let replay = Command::new(CHAOS)
        .arg("replay")
        .arg(&dir)
        .output()
        .unwrap();
    let r = text(&replay);
    assert_eq!(replay.status.code(), Some(0), "{r}");
    assert!(r.contains("the same history"), "{r}");
}

#[test]
fn a_core_that_makes_no_sense_is_refused() {
    let root = tempfile::tempdir().unwrap();
    for (args, says) in [
        (vec!["sim", "--core", "zab"], "no core"),
        (
            vec!["sim", "--core", "raft-rs", "--workload", "register"],
            "KV store only",
        ),
        (
            vec!["run", "--core", "raft-rs", "--system", "etcd"],
            "bundled node",
        ),
        (
            vec![
                "sim",
                "--core",
                "raft-rs",
                "--node-arg=--raft-read-only=lease-based",
                "--node-arg=--raft-check-quorum=false",
            ],
            "lease-based needs",
        ),
        (
            vec![
                "sim",
                "--core",
                "raft-rs",
                "--node-arg=--raft-heartbeat-tick=20",
            ],
            "below",
        ),
        (
            vec!["sim", "--node-arg=--raft-pre-vote=false"],
            "not a setting of the paxos core",
        ),
        (
            vec!["run", "--core", "raft-rs", "--node-arg=--bug=stale-read"],
            "not a setting of the raft-rs core",
        ),
    ] {
        let out = chaos(root.path(), &args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(says), "{args:?}: {t}");
    }
}

#[test]
fn an_adapter_mistake_is_caught_in_simulation_and_shrunk() {
    let root = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = chaos(
        root.path(),
        &[
            "sim",
            "--core",
            "raft-rs",
            "--seed",
            "2",
            "--nodes",
            "3",
            "--time-limit",
            "5",
            "--no-progress",
            "--node-arg=--raft-mistake=apply-before-commit",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let original = run_dir_of(&t);
    let shrink = Command::new(CHAOS)
        .args(["shrink", "--no-progress"])
        .arg(&original)
        .arg("--results")
        .arg(root.path())
        .output()
        .unwrap();
    let s = text(&shrink);
    assert_eq!(shrink.status.code(), Some(1), "{s}");
    let small = run_dir_of(&s);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(small.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["core"], "raft-rs");
    let ops = result_of(&small)["stats"]["ops"].as_u64().unwrap();
    assert!(ops <= 50, "shrunk to {ops} ops: {s}");
    assert!(
        started.elapsed().as_secs() < 120,
        "caught and shrunk in {:?}",
        started.elapsed()
    );
}

fn real_run(net: &str) {
    let root = tempfile::tempdir().unwrap();
    let out = chaos(
        root.path(),
        &[
            "run",
            "--core",
            "raft-rs",
            "--seed",
            "3",
            "--nodes",
            "3",
            "--time-limit",
            "6",
            "--nemesis-interval",
            "1.5",
            "--grace",
            "8",
            "--net",
            net,
            "--no-progress",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let result = result_of(&run_dir_of(&t));
    assert_eq!(verdict(&result, "linearizability"), "valid", "{t}");
    assert_eq!(verdict(&result, "log-agreement"), "valid", "{t}");
    assert_eq!(verdict(&result, "protocol"), "skipped", "{t}");
    let ok = ["read", "write"]
        .iter()
        .map(|f| result["stats"]["counts"][f]["ok"].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert!(ok > 100, "{ok} ops ok: {t}");
    assert_nothing_left(root.path());
}

#[test]
fn raft_rs_runs_as_real_processes_over_the_proxy() {
    real_run("proxy");
}

#[test]
fn raft_rs_runs_as_real_processes_over_namespaces() {
    if !netns_ok() {
        return;
    }
    real_run("netns");
}
