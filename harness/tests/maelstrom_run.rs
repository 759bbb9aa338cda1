//! Maelstrom nodes, with the test proxy node (tests/maelstrom/proxy_node.py,
//! python3's standard library only), which forwards every request to one of the
//! emulated services:
//! - driven directly: `init`, then client requests whose answers come back from the
//!   services through it;
//! - under `chaos run --node-cmd`: over lin-kv it must pass under faults, kills
//!   included (the node is started again and re-initialised); over seq-kv and
//!   lww-kv its stale reads must be caught. Nothing may be left running.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use harness::maelstrom::proto::{self, Envelope};
use harness::maelstrom::services::Services;
use harness::system::ClientOp;
use rand::SeedableRng;

use serde_json::Value;

mod common;
use common::{latest, text};

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
            .contains("--protocol maelstrom --node-cmd 'python3 "),
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

#[test]
fn maelstrom_flags_are_checked() {
    let root = tempfile::tempdir().unwrap();
    for (args, wanted) in [
        (
            vec!["run", "--protocol", "maelstrom"],
            "needs node_cmd (--node-cmd)",
        ),
        (
            vec!["run", "--node-cmd", "true", "--workload", "both"],
            "lin-kv workload: --workload kv",
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
        ClientOp::Read { key: "k0".into() },
        ClientOp::Write {
            key: "k0".into(),
            value: 5,
        },
        ClientOp::Cas {
            key: "k0".into(),
            from: 4,
            to: 6,
        },
        ClientOp::Cas {
            key: "k0".into(),
            from: 5,
            to: 6,
        },
        ClientOp::Read { key: "k0".into() },
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
