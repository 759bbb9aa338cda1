//! `chaos run` end to end: real node processes, short runs, bounded waits.
//!
//! "No process remains" is checked through /proc: every node's command line carries
//! its data directory, which lies inside the test's unique temporary results root.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{assert_nothing_left, latest, processes_under, text, wait_for_history};

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn chaos_run(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(CHAOS);
    cmd.arg("run")
        .arg("--results")
        .arg(root)
        .args(["--no-progress", "--grace", "10"])
        .args(args);
    cmd
}

fn run(root: &Path, args: &[&str]) -> Output {
    chaos_run(root, args).output().unwrap()
}

fn result_json(root: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(latest(root).join("result.json")).unwrap())
        .unwrap()
}

fn check<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

#[test]
fn a_clean_three_node_run_is_valid() {
    let root = tempfile::tempdir().unwrap();
    let out = run(
        root.path(),
        &["--nodes", "3", "--time-limit", "5", "--seed", "7"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = latest(root.path());
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let parsed = checker::history::parse_history_str(&history).expect("well-formed history");
    assert!(parsed.ops.len() > 100, "only {} ops", parsed.ops.len());
    let result = result_json(root.path());
    assert_eq!(result["verdict"], "valid");
    assert_eq!(result["seed"], 7);
    assert_eq!(check(&result, "register-agreement")["verdict"], "valid");
    assert_eq!(check(&result, "linearizability")["verdict"], "valid");
    assert_eq!(check(&result, "log-agreement")["verdict"], "valid");
    assert_eq!(result["liveness"]["ok"], true);
    // By default every node journals its steps and the protocol's rules judge them
    // all (not only what the wire shows), with the situations they met.
    let protocol = check(&result, "protocol");
    assert_eq!(protocol["verdict"], "valid", "{protocol}");
    let summary = protocol["summary"].as_str().unwrap();
    assert!(summary.contains(" events;"), "{summary}");
    assert!(
        result["coverage"]["duplicate_accepted_delivered"].is_u64(),
        "{}",
        result["coverage"]
    );
    for id in 1..=3 {
        let journal =
            std::fs::read_to_string(dir.join(format!("nodes/n{id}/journal.jsonl"))).unwrap();
        assert!(
            journal.starts_with("{\"t\":") && journal.contains("\"restart\""),
            "{}",
            &journal[..journal.len().min(300)]
        );
    }
    // Registers were decided and KV ops completed: the run exercised consensus.
    assert!(parsed.ops.iter().any(
        |o| o.f() == checker::history::F::Propose && o.outcome == checker::history::Outcome::Ok
    ));
    for id in 1..=3 {
        assert!(dir.join(format!("final/n{id}.json")).exists());
        assert!(dir.join(format!("nodes/n{id}/stderr.log")).exists());
    }
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["seed"], 7);
    assert!(text(&out).contains("reproduce: chaos run --seed 7 --nodes 3"));
    // The results: report, junit, the index over the root, and where the report is.
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("chaos run --seed 7 --nodes 3"));
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<testcase name=\"linearizability\""),
        "{junit}"
    );
    assert!(!junit.contains("<failure"), "{junit}");
    let index = std::fs::read_to_string(root.path().join("index.html")).unwrap();
    assert!(index.contains("report.html"));
    assert!(text(&out).contains("report:    "), "{}", text(&out));
    assert!(
        !text(&out).contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    // `chaos report` renders the same run again from its files, with the run's exit code.
    std::fs::remove_file(dir.join("report.html")).unwrap();
    let again = Command::new(CHAOS)
        .arg("report")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(dir.join("report.html").exists());
    assert!(text(&again).contains("VALID"));
    assert_nothing_left(root.path());
}

#[test]
fn a_stale_read_node_is_caught_by_the_same_path() {
    let root = tempfile::tempdir().unwrap();
    let out = run(
        root.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "3",
            "--seed",
            "2",
            "--workload",
            "kv",
            // One key, ten clients: the stale read shows early (see replay below).
            "--keys",
            "1",
            "--concurrency",
            "10",
            "--node-arg=--bug=stale-read",
            "--no-trace-messages",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let result = result_json(root.path());
    assert_eq!(check(&result, "linearizability")["verdict"], "invalid");
    // Without the trace: no journals, no messages.jsonl, the protocol check skipped
    // with the reason, and the reproduce command says so.
    let dir = latest(root.path());
    assert!(!dir.join("messages.jsonl").exists());
    assert!(!dir.join("nodes/n1/journal.jsonl").exists());
    let protocol = check(&result, "protocol");
    assert_eq!(protocol["verdict"], "skipped", "{protocol}");
    assert!(
        protocol["summary"]
            .as_str()
            .unwrap()
            .contains("--no-trace-messages")
    );
    assert!(
        result["reproduce"]
            .as_str()
            .unwrap()
            .ends_with("--no-trace-messages"),
        "{}",
        result["reproduce"]
    );
    assert_nothing_left(root.path());
}

#[test]
fn a_minority_quorum_node_breaks_agreement_and_exits_1() {
    let root = tempfile::tempdir().unwrap();
    let out = run(
        root.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "3",
            "--seed",
            "3",
            "--workload",
            "register",
            "--node-arg=--bug=minority-quorum",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("agreement: register"));
    // The nodes' journals show the broken step itself: a value written down as
    // chosen with acceptances from one of three acceptors.
    let result = result_json(root.path());
    let protocol = check(&result, "protocol");
    assert_eq!(protocol["verdict"], "invalid", "{protocol}");
    assert!(
        protocol["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "chosen-without-quorum"),
        "{protocol}"
    );
    let dir = latest(root.path());
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<failure"),
        "the violation is a junit failure: {junit}"
    );
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("id=\"anomalies\""));
    assert_nothing_left(root.path());
}

#[test]
fn scheduled_kills_and_pauses_are_healed_by_the_final_phase() {
    let root = tempfile::tempdir().unwrap();
    let schedule = root.path().join("schedule.json");
    std::fs::write(
        &schedule,
        json!([
            {"at_ms": 500, "fault": {"kind": "kill"}, "targets": [1]},
            {"at_ms": 800, "fault": {"kind": "pause"}, "targets": [2]},
            {"at_ms": 1200, "fault": {"kind": "partition",
                "shape": {"shape": "isolate-one", "node": 3},
                "cut": [[1, 3], [2, 3], [3, 1], [3, 2]]}, "targets": [3]},
        ])
        .to_string(),
    )
    .unwrap();
    // The run ends with node 1 dead, node 2 stopped and node 3 cut off: the final
    // phase must undo all of it.
    let out = run(
        root.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "3",
            "--seed",
            "4",
            "--schedule",
            schedule.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let history = std::fs::read_to_string(latest(root.path()).join("history.jsonl")).unwrap();
    let nemesis: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["process"] == "nemesis")
        .collect();
    let fs: Vec<&str> = nemesis.iter().map(|e| e["f"].as_str().unwrap()).collect();
    assert_eq!(fs, vec!["kill", "pause", "partition", "heal"]);
    assert!(
        nemesis
            .iter()
            .take(3)
            .all(|e| e["value"]["outcome"] == "installed")
    );
    assert_eq!(nemesis[3]["value"]["restarted"], json!([1]));
    assert_eq!(nemesis[3]["value"]["resumed"], json!([2]));
    assert_eq!(result_json(root.path())["liveness"]["ok"], true);
    // The message trace saw the cut: messages to or from node 3 were dropped.
    let trace = std::fs::read_to_string(latest(root.path()).join("messages.jsonl")).unwrap();
    let messages: Vec<Value> = trace
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m["type"] == "log-accept" && m["fate"] == "delivered")
    );
    assert!(
        messages
            .iter()
            .any(|m| m["fate"] == "dropped" && (m["from"] == 3 || m["to"] == 3))
    );
    let times: Vec<u64> = messages
        .iter()
        .map(|m| m["time_ns"].as_u64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "messages.jsonl is in time order"
    );
    // The trace carries the messages the protocol's rules read from the wire, and the
    // correct node keeps them.
    assert!(
        messages
            .iter()
            .any(|m| m["type"] == "log-accepted" && m["msg"].is_string())
    );
    let checks = result_json(root.path())["checks"].clone();
    let protocol = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "protocol")
        .expect("a protocol check from the journals")
        .clone();
    assert_eq!(protocol["verdict"], "valid", "{protocol}");
    // A restarted node goes on in the same journal: two starts in node 1's.
    let journal =
        std::fs::read_to_string(latest(root.path()).join("nodes/n1/journal.jsonl")).unwrap();
    assert_eq!(journal.matches("\"restart\"").count(), 2);
    assert_nothing_left(root.path());
}

#[test]
fn a_node_that_will_not_start_fails_the_run_with_5() {
    let root = tempfile::tempdir().unwrap();
    let out = run(
        root.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "2",
            "--node-bin",
            "/bin/false",
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("node 1 exited during start-up"),
        "{}",
        text(&out)
    );
    assert_eq!(result_json(root.path())["exit_code"], 5);
    // With --json, stdout is exactly result.json.
    let out = run(
        root.path(),
        &[
            "--nodes",
            "1",
            "--time-limit",
            "1",
            "--node-bin",
            "/bin/false",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(5));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(printed, result_json(root.path()));
    assert_nothing_left(root.path());
}

/// A 60 s fault-free run, already recording (200 history events).
fn start_long_run(root: &Path, seed: u64) -> Child {
    let seed = seed.to_string();
    let mut child = chaos_run(
        root,
        &[
            "--nodes",
            "3",
            "--time-limit",
            "60",
            "--seed",
            &seed,
            "--nemesis",
            "none",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for_history(root, 200, &mut child);
    child
}

#[test]
fn sigint_stops_gracefully_and_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mut child = start_long_run(root.path(), 5);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(3), "interrupted runs are unknown");
    let result = result_json(root.path());
    assert_eq!(result["interrupted"], true);
    assert_nothing_left(root.path());
}

#[test]
fn sigkill_of_the_harness_takes_its_nodes_along() {
    let root = tempfile::tempdir().unwrap();
    let mut child = start_long_run(root.path(), 6);
    assert_eq!(processes_under(root.path()).len(), 3, "three nodes running");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_nothing_left(root.path());
    // What was recorded up to the last flush is there and well-formed up to a torn line.
    let history = std::fs::read_to_string(latest(root.path()).join("history.jsonl")).unwrap();
    assert!(history.lines().count() >= 200);
}

#[test]
fn flag_errors_are_one_line_with_exit_2() {
    let root = tempfile::tempdir().unwrap();
    for (args, what) in [
        (vec!["--nodes", "0"], "--nodes"),
        (vec!["--time-limit=-3"], "--time-limit"),
        (vec!["--node-bin", "/nonexistent/node"], "no such file"),
        (vec!["--workload", "sideways"], "invalid value"),
        (vec!["--name", "../x"], "--name"),
        (
            vec!["--nemesis", "kill,flood"],
            "unknown fault kind 'flood'",
        ),
    ] {
        let out = run(root.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(what), "{args:?}: {}", text(&out));
    }
    // An unwritable results directory is a harness failure with a hint.
    let out = Command::new(CHAOS)
        .args([
            "run",
            "--results",
            "/proc/no-such-place",
            "--time-limit",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("is --results writable"),
        "{}",
        text(&out)
    );
}

#[test]
fn replay_reruns_the_stored_plan_and_reports_reproduction() {
    let root = tempfile::tempdir().unwrap();
    let out = run(
        root.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "2",
            "--seed",
            "8",
            "--workload",
            "kv",
            // One key and ten clients: a follower's stale read shows within the
            // first hundred ops, not by luck late in the run (five keys and six
            // clients once went a whole CI run without one).
            "--keys",
            "1",
            "--concurrency",
            "10",
            "--node-arg=--bug=stale-read",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let original = latest(root.path());
    let out = Command::new(CHAOS)
        .args(["replay", "--no-progress", "--times", "2"])
        .arg(&original)
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("reproduced the original verdict 'invalid' in 2 of 2 runs"),
        "{t}"
    );
    // The replays ran the same plan: same seed, same node arguments.
    let replayed = latest(root.path());
    assert_ne!(replayed, original);
    let plan = |d: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("plan.json")).unwrap()).unwrap()
    };
    assert_eq!(plan(&replayed), plan(&original));
    let out = Command::new(CHAOS)
        .args(["replay", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("has no plan.json"));
    assert_nothing_left(root.path());
}

#[test]
fn help_explains_every_flag_with_its_default() {
    let out = Command::new(CHAOS)
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = text(&out);
    for flag in [
        "--nodes",
        "--workload",
        "--time-limit",
        "--concurrency",
        "--rate",
        "--keys",
        "--seed",
        "--node-bin",
        "--node-arg",
        "--results",
        "--name",
        "--no-progress",
        "--json",
        "--grace",
        "--op-timeout-ms",
    ] {
        assert!(help.contains(flag), "run --help lacks {flag}");
    }
    for default in [
        "[default: 5]",
        "[default: both;",
        "[default: 30]",
        "[default: runs]",
    ] {
        assert!(help.contains(default), "run --help lacks {default}");
    }
    let out = Command::new(CHAOS).arg("--help").output().unwrap();
    for sub in ["run", "replay", "check", "node"] {
        assert!(text(&out).contains(sub));
    }
}

/// A bounded bug-detection matrix: two bugs, short runs with faults, fixed seeds. A
/// regression in fault execution, recording or checking turns this red.
#[test]
fn a_bounded_matrix_catches_two_bugs_under_faults() {
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(CHAOS)
        .args([
            "matrix",
            "--bugs",
            "minority-quorum,stale-read",
            // A bug stops at its first detecting seed (seed 1 on a quiet machine), so
            // the other seeds cost time only on a busy one, where timing can hide a
            // bug from a single 4 s run; 6 bounds that at about 40 s per bug.
            "--seeds",
            "6",
        ])
        .args([
            "--time-limit",
            "4",
            "--nodes",
            "3",
            "--nemesis-interval",
            "1",
        ])
        .arg("--results")
        .arg(root.path())
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("2 of 2 bugs detected within 6 seeds"), "{t}");
    // Faults really ran: the detecting runs recorded nemesis events.
    for bug in ["minority-quorum", "stale-read"] {
        let dir = std::fs::canonicalize(root.path().join(format!("matrix-{bug}/latest"))).unwrap();
        let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
        assert!(
            history.contains("\"process\":\"nemesis\""),
            "{bug}: no fault ran"
        );
    }
    assert_nothing_left(root.path());
}

#[test]
fn faults_aimed_at_the_leader_and_a_skewed_clock_keep_safety() {
    let root = tempfile::tempdir().unwrap();
    let out = run(
        root.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "5",
            "--seed",
            "11",
            "--nemesis",
            "leader-kill,leader-pause,clock",
            "--nemesis-interval",
            "1.2",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let history = std::fs::read_to_string(latest(root.path()).join("history.jsonl")).unwrap();
    let nemesis: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["process"] == "nemesis")
        .collect();
    let fs: Vec<&str> = nemesis.iter().map(|e| e["f"].as_str().unwrap()).collect();
    for f in ["kill", "restart", "pause", "resume", "clock", "clock-reset"] {
        assert!(fs.contains(&f), "{f} in {fs:?}");
    }
    // Each start aimed at the leader says whom the nodes named and how; its undo acts
    // on the node the start chose.
    for e in nemesis.iter().filter(|e| e["value"]["role"] == "leader") {
        let v = &e["value"];
        if e["f"] == "kill" || e["f"] == "pause" {
            assert!(v["leader"].is_object(), "{e}");
            if v["leader"]["fallback"] == false {
                assert_eq!(v["targets"], json!([v["leader"]["id"]]), "{e}");
            }
        }
    }
    let starts: Vec<&Value> = nemesis
        .iter()
        .filter(|e| e["value"]["role"] == "leader" && (e["f"] == "kill" || e["f"] == "pause"))
        .collect();
    assert!(
        starts
            .iter()
            .any(|e| e["value"]["leader"]["fallback"] == false),
        "the nodes named a leader at least once: {starts:?}"
    );
    // The clock fault restarted a node with a skewed clock (its timers at another rate).
    let clock = nemesis.iter().find(|e| e["f"] == "clock").unwrap();
    assert_eq!(clock["value"]["outcome"], "installed", "{clock}");
    assert_nothing_left(root.path());
}

#[test]
fn snapshots_and_their_transfer_keep_a_real_cluster_valid_under_kills_and_partitions() {
    let root = tempfile::tempdir().unwrap();
    let out = run(
        root.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "5",
            "--seed",
            "11",
            "--nemesis",
            "kill,partition",
            "--nemesis-interval",
            "1",
            "--workload",
            "kv",
            "--node-arg=--snapshot-every=50",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = latest(root.path());
    let result = result_json(root.path());
    assert_eq!(check(&result, "log-agreement")["verdict"], "valid");
    assert_eq!(check(&result, "protocol")["verdict"], "valid");
    let mut snapshots = 0;
    for id in 1..=3 {
        let dump: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("final/n{id}.json"))).unwrap(),
        )
        .unwrap();
        if let Some(index) = dump["snapshot"]["index"].as_u64() {
            snapshots += 1;
            // The log holds only what follows the snapshot.
            let first = dump["log"][0]["slot"].as_u64().unwrap_or(index + 1);
            assert!(
                first > index,
                "n{id}: log from {first}, snapshot at {index}"
            );
        }
        let data = dir.join(format!("nodes/n{id}/data"));
        assert!(data.join("snapshot.bin").exists());
        // Older log segments go once a snapshot is durable: the current one, the
        // one made ahead, one a snapshot in progress still needs, and one more if
        // a kill came during that snapshot and no snapshot followed the restart.
        let segments = paxos_node::wal::segments(&data).unwrap();
        assert!(
            (2..=4).contains(&segments.len()) && segments[0].0 > 0,
            "n{id}: {segments:?}"
        );
    }
    assert_eq!(snapshots, 3, "every node snapshotted");
}

/// What every output of one run says about how it ended: the terminal's headline,
/// the report's banner, result.json's outcome, junit.xml's property and the index's
/// row. They must be one truth.
fn words_everywhere(dir: &Path, terminal: &str) -> Vec<(&'static str, String)> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let between = |text: &str, start: &str, end: &str| -> String {
        text.split_once(start)
            .and_then(|(_, rest)| rest.split_once(end))
            .map_or_else(String::new, |(v, _)| v.to_string())
    };
    let result: Value = serde_json::from_str(&read("result.json")).unwrap();
    let headline = terminal
        .lines()
        .find(|l| l.contains("(exit "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_default()
        .to_lowercase();
    let index_root = dir.parent().unwrap().parent().unwrap();
    let index = std::fs::read_to_string(index_root.join("index.html")).unwrap_or_default();
    let leaf = dir.file_name().unwrap().to_str().unwrap();
    let row = index
        .split("<tr>")
        .find(|r| r.contains(leaf))
        .unwrap_or_default()
        .to_string();
    vec![
        ("terminal", headline),
        (
            "report banner",
            between(&read("report.html"), "<div class=\"verdict\">", "<").to_lowercase(),
        ),
        (
            "result.json",
            result["outcome"]["label"]
                .as_str()
                .unwrap_or_default()
                .into(),
        ),
        (
            "junit.xml",
            between(&read("junit.xml"), "name=\"outcome\" value=\"", "\""),
        ),
        (
            "index",
            between(&row, "<td class=\"v ", "</td>")
                .split_once('>')
                .map_or_else(String::new, |(_, l)| l.to_string()),
        ),
    ]
}

fn assert_one_truth(dir: &Path, terminal: &str, label: &str, code: u64) {
    for (output, said) in words_everywhere(dir, terminal) {
        assert_eq!(said, label, "{output} of {}:\n{terminal}", dir.display());
    }
    assert_eq!(common::result_of(dir)["exit_code"], code, "{terminal}");
    // Each check once, in result.json and in junit.xml.
    let result = common::result_of(dir);
    let mut names: Vec<&str> = result["checks"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let mut cases: Vec<&str> = junit
        .split("<testcase name=\"")
        .skip(1)
        .filter_map(|c| c.split('"').next())
        .collect();
    for list in [&mut names, &mut cases] {
        let n = list.len();
        list.sort_unstable();
        list.dedup();
        assert_eq!(list.len(), n, "a check listed twice: {list:?}");
    }
}

#[test]
fn every_output_of_a_run_says_how_it_ended_in_the_same_words() {
    // Valid.
    let root = tempfile::tempdir().unwrap();
    let out = run(
        root.path(),
        &["--nodes", "3", "--time-limit", "1", "--nemesis", "none"],
    );
    assert_one_truth(&latest(root.path()), &text(&out), "valid", 0);
    // Invalid: a simulated stale-read node (seed 2 fails, exactly).
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(CHAOS)
        .args(["sim", "--seed", "2", "--nodes", "3", "--time-limit", "2"])
        .args(["--nemesis-interval", "0.3", "--node-arg=--bug=stale-read"])
        .arg("--results")
        .arg(root.path())
        .output()
        .unwrap();
    assert_one_truth(&latest(root.path()), &text(&out), "invalid", 1);
    // Harness failure: nodes that will not start.
    let root = tempfile::tempdir().unwrap();
    let out = run(
        root.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "1",
            "--node-bin",
            "/bin/false",
        ],
    );
    assert_one_truth(&latest(root.path()), &text(&out), "harness failure", 5);
    // Interrupted: every check valid so far, exit 3, and it says so.
    let root = tempfile::tempdir().unwrap();
    let mut child = chaos_run(
        root.path(),
        &["--nodes", "3", "--time-limit", "60", "--nemesis", "none"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for_history(root.path(), 200, &mut child);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let terminal = text(&out);
    assert!(
        terminal.contains("INTERRUPTED: STOPPED BEFORE ITS TIME LIMIT; EVERY CHECK VALID ON WHAT RAN SO FAR (exit 3)"),
        "{terminal}"
    );
    assert_one_truth(&latest(root.path()), &terminal, "interrupted", 3);
    // Killed: no result.json; `chaos report` judges what it left.
    let root = tempfile::tempdir().unwrap();
    let mut child = chaos_run(
        root.path(),
        &["--nodes", "3", "--time-limit", "60", "--nemesis", "none"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for_history(root.path(), 200, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_nothing_left(root.path());
    let dir = latest(root.path());
    let out = Command::new(CHAOS)
        .arg("report")
        .arg(&dir)
        .output()
        .unwrap();
    assert_one_truth(&dir, &text(&out), "incomplete", 3);
    // Its learned logs are not judged: the history lost its last buffered invokes,
    // so their commands would look like ones nobody sent.
    let result = common::result_of(&dir);
    assert_eq!(common::verdict(&result, "log-agreement"), "skipped");
}

/// One node is its own majority and two need each other: both sizes, under the
/// default faults, are valid, and a size that cannot have a fault kind says so in
/// its notes, never in its verdict.
#[test]
fn clusters_of_one_and_two_nodes_are_valid_under_faults() {
    for nodes in ["1", "2"] {
        let root = tempfile::tempdir().unwrap();
        let out = run(
            root.path(),
            &["--nodes", nodes, "--time-limit", "3", "--seed", "1"],
        );
        let terminal = text(&out);
        assert_eq!(out.status.code(), Some(0), "{nodes} nodes: {terminal}");
        let result = result_json(root.path());
        assert!(
            result["faults"]["ran"].as_u64() >= Some(3),
            "{nodes} nodes: the default schedule has faults: {terminal}"
        );
        let notes = result["notes"].to_string();
        if nodes == "1" {
            assert!(notes.contains("partition faults need 2 nodes"), "{notes}");
            assert!(
                terminal.contains("note: partition faults need 2 nodes"),
                "{terminal}"
            );
        } else {
            assert!(!notes.contains("need 2 nodes"), "{notes}");
        }
        assert_nothing_left(root.path());
    }
}

/// A real node writes each chosen slot to its learned log once synced, so log
/// agreement judges the slots its snapshots compacted away, not only the tail.
#[test]
fn log_agreement_in_a_real_run_covers_the_slots_snapshots_compacted() {
    let root = tempfile::tempdir().unwrap();
    let out = run(
        root.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "3",
            "--workload",
            "kv",
            "--seed",
            "3",
            "--nemesis",
            "kill",
            "--node-arg=--snapshot-every=50",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = latest(root.path());
    let dump: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("final/n1.json")).unwrap()).unwrap();
    let snapshot = dump["snapshot"]["index"]
        .as_u64()
        .expect("node 1 snapshotted");
    let result = result_json(root.path());
    let log = check(&result, "log-agreement");
    let summary = log["summary"].as_str().unwrap();
    let slots: u64 = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(
        slots >= snapshot && summary.contains("learned logs"),
        "{slots} slots judged, node 1's snapshot at {snapshot}: {summary}"
    );
    assert!(dir.join("final/n1.learned.json").is_file());
    assert_eq!(
        paxos_node::journal::LEARNED_FILE,
        results::learned::LEARNED_FILE,
        "the node and the judge name one file"
    );
}
