//! Maelstrom nodes, with the test proxy node (tests/maelstrom/proxy_node.py,
//! python3's standard library only), which forwards every request to one of the
//! emulated services:
//! - driven directly: `init`, then client requests whose answers come back from the
//!   services through it;
//! - under `chaos run --node-cmd`: over lin-kv it must pass under faults, kills
//!   included (the node is started again and re-initialised); over seq-kv and
//!   lww-kv its stale reads must be caught. Nothing may be left running.
//!
//! The bundled node over stdio (`chaos node --maelstrom`), with its journal: valid
//! under faults and kills, its messages counted and traced, and two of its bugs
//! caught (one by the history, one only by the protocol's rules). And a node that
//! breaks the protocol (tests/maelstrom/misbehaving_node.py): every way it misbehaves
//! is in the history, result.json and the report, and the run still ends.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use harness::maelstrom::proto::{self, Envelope};
use harness::maelstrom::services::Services;
use harness::system::WorkloadOp;
use rand::SeedableRng;

use serde_json::Value;

mod common;
use common::{latest, result_of, text, verdict};

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn python_ok() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("skipped: python3 is not installed");
    }
    ok
}

fn run(root: &Path, service: &str, extra: &[&str]) -> Output {
    let node = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/maelstrom/proxy_node.py");
    Command::new(CHAOS)
        .args(["run", "--no-progress", "--workload", "kv", "--nodes", "3"])
        .args(["--rate", "400", "--seed", "3"])
        .arg("--node-cmd")
        .arg(format!("python3 {node} {service}"))
        .args(extra)
        .arg("--results")
        .arg(root)
        .output()
        .unwrap()
}

/// No node of `service` is left (tests of one file run at once: each looks for its
/// own).
fn no_node_left(service: &str) {
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let left: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains(&format!("proxy_node.py {service}")) && !l.starts_with(CHAOS))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn a_proxy_over_lin_kv_passes_under_faults_and_kills() {
    if !python_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let out = run(
        root.path(),
        "lin-kv",
        &[
            "--time-limit",
            "3",
            "--nemesis",
            "kill,partition,pause,links",
            "--nemesis-interval",
            "0.5",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = latest(root.path());
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap();
    let lin = result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "linearizability")
        .unwrap();
    assert_eq!(lin["verdict"], "valid", "{lin}");
    assert!(result["stats"]["ops"].as_u64().unwrap() > 300);
    // The plan says how the nodes were run, and reproduces with it.
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["protocol"], "maelstrom");
    assert!(
        result["reproduce"]
            .as_str()
            .unwrap()
            .contains("--system maelstrom --node-cmd 'python3 "),
        "{}",
        result["reproduce"]
    );
    // A kill restarted the node, which got init again.
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(history.contains(r#""f":"restart""#));
    no_node_left("lin-kv");
}

#[test]
fn a_proxy_over_seq_kv_or_lww_kv_is_caught() {
    if !python_ok() {
        return;
    }
    for service in ["seq-kv", "lww-kv"] {
        let root = tempfile::tempdir().unwrap();
        let out = run(
            root.path(),
            service,
            &["--time-limit", "2", "--nemesis", "none"],
        );
        assert_eq!(out.status.code(), Some(1), "{service}: {}", text(&out));
        assert!(
            text(&out).contains("non-linearizable"),
            "{service}: {}",
            text(&out)
        );
        no_node_left(service);
    }
}

/// A Maelstrom node of our own for the txn workloads (tests/maelstrom/txn_node.py):
/// one that applies each transaction whole passes; one that interleaves the
/// micro-ops of transactions in progress is caught by the isolation check, for
/// list-append and rw-register alike.
#[test]
fn a_txn_node_that_serialises_passes_and_one_without_isolation_is_caught() {
    if !python_ok() {
        return;
    }
    let node = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/maelstrom/txn_node.py");
    for workload in ["list-append", "rw-register"] {
        for (mode, code) in [("serial", 0), ("interleave", 1)] {
            let root = tempfile::tempdir().unwrap();
            let out = Command::new(CHAOS)
                .args(["run", "--no-progress", "--workload", workload])
                .args(["--nodes", "3", "--rate", "300", "--seed", "5"])
                .args(["--time-limit", "2", "--nemesis", "none"])
                .arg("--node-cmd")
                .arg(format!("python3 {node} {mode}"))
                .arg("--results")
                .arg(root.path())
                .output()
                .unwrap();
            let t = text(&out);
            assert_eq!(out.status.code(), Some(code), "{workload} {mode}: {t}");
            let result = result_of(&latest(root.path()));
            let want = if code == 0 { "valid" } else { "invalid" };
            assert_eq!(
                verdict(&result, "isolation"),
                want,
                "{workload} {mode}: {t}"
            );
        }
    }
}

#[test]
fn maelstrom_flags_are_checked() {
    let root = tempfile::tempdir().unwrap();
    for (args, wanted) in [
        (
            vec!["run", "--system", "maelstrom"],
            "needs node_cmd (--node-cmd)",
        ),
        (
            vec!["run", "--system", "etcd", "--node-cmd", "true"],
            "it goes with --system maelstrom",
        ),
        // The older spelling still means the same.
        (
            vec!["run", "--protocol", "maelstrom"],
            "needs node_cmd (--node-cmd)",
        ),
        (
            vec!["run", "--node-cmd", "true", "--workload", "both"],
            "runs lin-kv (--workload kv), txn-list-append",
        ),
    ] {
        let out = Command::new(CHAOS)
            .args(&args)
            .arg("--results")
            .arg(root.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(wanted), "{args:?}: {}", text(&out));
    }
}

#[test]
fn a_proxy_node_answers_clients_through_the_services() {
    if !python_ok() {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/maelstrom/proxy_node.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg("lin-kv")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Lines arrive through a channel, so every wait has a deadline (the node's stdin
    // closes when the test ends, so it never outlives it).
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut send = |e: &Envelope| writeln!(stdin, "{}", e.to_line()).unwrap();
    let recv = || {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the node answers within 10 s");
        Envelope::parse(line.as_bytes()).expect("the node writes messages")
    };
    let nodes = vec!["n1".to_string()];
    send(&Envelope::new("c0", "n1", proto::init("n1", &nodes, 1)));
    let ok = recv();
    assert_eq!(
        (ok.kind(), ok.in_reply_to(), ok.src.as_str()),
        ("init_ok", Some(1), "n1")
    );

    let mut services = Services::new(rand_chacha::ChaCha8Rng::seed_from_u64(7));
    let ops = [
        WorkloadOp::Read { key: "k0".into() },
        WorkloadOp::Write {
            key: "k0".into(),
            value: 5,
        },
        WorkloadOp::Cas {
            key: "k0".into(),
            from: 4,
            to: 6,
        },
        WorkloadOp::Cas {
            key: "k0".into(),
            from: 5,
            to: 6,
        },
        WorkloadOp::Read { key: "k0".into() },
    ];
    let mut results = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let msg_id = 10 + i as u64;
        send(&Envelope::new(
            "c1",
            "n1",
            proto::request(op, 0, msg_id).unwrap(),
        ));
        // The node asks the service; the service answers it.
        let asked = recv();
        assert_eq!(asked.dest, "lin-kv", "{asked:?}");
        let answer = services.handle(&asked).expect("lin-kv is a service");
        send(&answer);
        let reply = recv();
        assert_eq!(
            (reply.dest.as_str(), reply.in_reply_to()),
            ("c1", Some(msg_id))
        );
        let done = proto::completion(op, &reply);
        results.push((done.outcome, done.value, done.error));
    }
    use checker::history::Outcome::{Fail, Ok};
    assert_eq!(
        results,
        vec![
            (Fail, None, Some("key-does-not-exist".into())),
            (Ok, None, None),
            (Fail, None, Some("precondition-failed".into())),
            (Ok, None, None),
            (Ok, Some(6), None),
        ]
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// `chaos run` of the bundled node over stdio, 3 nodes, with its journal.
fn run_bundled(root: &Path, seed: &str, extra_node_args: &str, extra: &[&str]) -> Output {
    Command::new(CHAOS)
        .args(["run", "--no-progress", "--nodes", "3"])
        .args(["--seed", seed, "--time-limit", "3"])
        .arg("--node-cmd")
        .arg(format!(
            "{CHAOS} node --maelstrom --journal journal.jsonl {extra_node_args}"
        ))
        .args(extra)
        .arg("--results")
        .arg(root)
        .output()
        .unwrap()
}

#[test]
fn the_bundled_node_over_stdio_is_valid_and_traced_and_its_bugs_are_caught() {
    let root = tempfile::tempdir().unwrap();
    let faults = [
        "--nemesis",
        "kill,partition,pause",
        "--nemesis-interval",
        "0.5",
    ];
    let out = run_bundled(
        root.path(),
        "5",
        "",
        &[&faults[..], &["--rate", "300"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = latest(root.path());
    let result = result_of(&dir);
    assert_eq!(verdict(&result, "linearizability"), "valid");
    // The nodes' journals came through: every rule was judged.
    assert_eq!(verdict(&result, "protocol"), "valid", "{}", text(&out));
    assert!(result["coverage"].is_object(), "{}", result["coverage"]);
    // Routed messages are counted per link and type, and traced.
    let links = result["links"].as_array().unwrap();
    assert!(links.len() >= 4, "the leader's links and back: {links:?}");
    let accepts: u64 = links
        .iter()
        .filter_map(|l| l["types"]["log-accept"]["sent"].as_u64())
        .sum();
    assert!(accepts > 100, "{links:?}");
    let trace = std::fs::read_to_string(dir.join("messages.jsonl")).unwrap();
    let first: Value = serde_json::from_str(trace.lines().next().unwrap()).unwrap();
    assert!(
        first["from"].is_u64() && first["fate"].is_string(),
        "{first}"
    );
    assert!(
        first.get("msg").is_none(),
        "a Maelstrom message's text is not kept"
    );
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(!report.contains("No message trace"), "the diagram is drawn");
    // The report says which faults the plan allowed and which were used.
    let used = report
        .split("Used in this run: <strong>")
        .nth(1)
        .and_then(|r| r.split("</strong>").next())
        .unwrap_or_default();
    assert!(used.contains("kill \u{d7}"), "{used}");
    assert!(report.contains("node command (Maelstrom protocol)"));
    // A restart ran the command again and the node recovered from its WAL.
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(history.contains(r#""f":"restart""#));

    // stale-read shows in the history; forget-promises (with kills) only in the rules.
    // Stale reads need a follower behind the leader: an unlimited rate, and one key
    // that ten clients share, so one shows early.
    let out = run_bundled(
        root.path(),
        "1",
        "--bug=stale-read",
        &[
            "--nemesis",
            "none",
            "--rate",
            "0",
            "--keys",
            "1",
            "--concurrency",
            "10",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        verdict(&result_of(&latest(root.path())), "linearizability"),
        "invalid"
    );
    let out = run_bundled(
        root.path(),
        "1",
        "--bug=forget-promises",
        &[&faults[..], &["--rate", "300"]].concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        verdict(&result_of(&latest(root.path())), "protocol"),
        "invalid"
    );
}

#[test]
fn a_node_that_breaks_the_protocol_is_recorded_not_hung() {
    if !python_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let node = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/maelstrom/misbehaving_node.py"
    );
    let started = std::time::Instant::now();
    let out = Command::new(CHAOS)
        .args(["run", "--no-progress", "--nodes", "3", "--rate", "300"])
        .args(["--seed", "2", "--time-limit", "2", "--nemesis", "none"])
        .args(["--op-timeout-ms", "500", "--grace", "3"])
        .arg("--node-cmd")
        .arg(format!("python3 {node}"))
        .arg("--results")
        .arg(root.path())
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    let dir = latest(root.path());
    let result = result_of(&dir);
    assert_eq!(
        verdict(&result, "linearizability"),
        "valid",
        "{}",
        text(&out)
    );
    let seen: Vec<(u64, String)> = result["faults"]["misbehaviour"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|m| {
            (
                m["node"].as_u64().unwrap(),
                m["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (node, kind) in [
        (1, "garbage"),
        (1, "line-too-long"),
        (1, "unknown-destination"),
        (1, "unexpected-reply"),
        (2, "unexpected-exit"),
    ] {
        assert!(
            seen.contains(&(node, kind.to_string())),
            "n{node} {kind} not in {seen:?}"
        );
    }
    // Not counted as faults; in the history, the summary and the report.
    assert!(result["faults"]["counts"].get("node-misbehaved").is_none());
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(history.contains(r#""f":"node-misbehaved""#));
    assert!(
        text(&out).contains("misbehaved: n1 wrote a line that is not a message (once"),
        "{}",
        text(&out)
    );
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("n2 exited outside a fault"));
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&ps.stdout).contains("misbehaving_node.py"));
}

/// Live processes whose working directory is under `root` (a Maelstrom node runs in
/// its run directory's nodes/nI/).
fn nodes_under(root: &Path) -> Vec<String> {
    let root = std::fs::canonicalize(root).unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if cwd.starts_with(&root) && !cmdline.is_empty() {
            found.push(format!(
                "{pid} {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    found
}

#[test]
fn maelstrom_nodes_die_with_the_harness_on_sigint_and_sigkill() {
    if !python_ok() {
        return;
    }
    // A node that ignores the end of its stdin: only a signal stops it.
    let node = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/maelstrom/misbehaving_node.py"
    );
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGKILL,
    ] {
        let root = tempfile::tempdir().unwrap();
        let mut child = Command::new(CHAOS)
            .args(["run", "--no-progress", "--nodes", "3", "--rate", "100"])
            .args(["--time-limit", "60", "--nemesis", "none"])
            .arg("--node-cmd")
            .arg(format!("python3 {node} linger"))
            .arg("--results")
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while nodes_under(root.path()).len() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "{signal}: nodes never ran"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "{signal}: exited early"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        if signal == nix::sys::signal::Signal::SIGINT {
            assert_eq!(status.code(), Some(3), "interrupted runs are unknown");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let left = nodes_under(root.path());
            if left.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{signal}: left running: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A node in the idiom of Maelstrom's Raft tutorials forwards a client's request to
/// its primary unchanged (`src` still the client), and the primary answers the client
/// directly: valid under partitions and pauses, and the final reads through every node
/// are answered (with `src` rewritten to the forwarding node, every forwarded request
/// went unanswered and the run was a liveness failure).
#[test]
fn a_node_that_forwards_client_requests_unchanged_is_valid() {
    if !python_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let node = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/maelstrom/forwarding_node.py"
    );
    let out = Command::new(CHAOS)
        .args(["run", "--no-progress", "--workload", "kv", "--nodes", "3"])
        .args(["--rate", "300", "--seed", "4", "--time-limit", "3"])
        .args(["--nemesis", "partition,pause", "--nemesis-interval", "0.5"])
        .arg("--node-cmd")
        .arg(format!("python3 {node}"))
        .arg("--results")
        .arg(root.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let result = result_of(&latest(root.path()));
    assert_eq!(result["liveness"]["ok"], true, "{}", result["liveness"]);
    assert!(result["stats"]["ops"].as_u64().unwrap() > 200);
    assert!(
        result["faults"]["periods"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
}

/// A slot that hears a definite temporarily-unavailable waits a growing, bounded,
/// seeded delay before its next op, so a node still electing a leader is not flooded
/// (and the history not filled with fails); `--backoff-ms 0` turns it off, and then
/// the same node gets hundreds of requests in its first second.
#[test]
fn clients_back_off_from_a_node_that_is_not_ready() {
    if !python_ok() {
        return;
    }
    let node = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/maelstrom/slow_start_node.py"
    );
    let unavailable = |extra: &[&str]| {
        let root = tempfile::tempdir().unwrap();
        let out = Command::new(CHAOS)
            .args(["run", "--no-progress", "--workload", "kv", "--nodes", "1"])
            .args(["--concurrency", "4", "--seed", "2", "--time-limit", "2.5"])
            .args(["--nemesis", "none"])
            .args(extra)
            .arg("--node-cmd")
            .arg(format!("python3 {node}"))
            .arg("--results")
            .arg(root.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let dir = latest(root.path());
        let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
        let fails = history
            .lines()
            .filter(|l| l.contains("temporarily-unavailable"))
            .count();
        let ok = result_of(&dir)["stats"]["ops"].as_u64().unwrap();
        (fails, ok)
    };
    let (backed_off, ops) = unavailable(&[]);
    // 4 slots, waits of 10-20, 20-40, ... ms doubling to 0.5-1 s: about 7 each in 1 s.
    assert!(
        (4..=60).contains(&backed_off),
        "{backed_off} unavailable answers with the default backoff"
    );
    assert!(
        ops > 100,
        "the slots served after the first second: {ops} ops"
    );
    let (flooded, _) = unavailable(&["--backoff-ms", "0"]);
    assert!(
        flooded > 5 * backed_off && flooded > 200,
        "without backoff {flooded} unavailable answers, with it {backed_off}"
    );
}
