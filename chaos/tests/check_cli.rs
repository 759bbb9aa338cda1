//! `chaos check` and `chaos node` as a user runs them: real binary, temp files.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn event(index: u64, process: u64, ty: &str, f: &str, key: &str, value: Value) -> String {
    json!({"index": index, "time_ns": index * 1000, "process": process, "type": ty,
           "f": f, "key": key, "value": value})
    .to_string()
}

fn write_history(dir: &Path, lines: &[String]) -> std::path::PathBuf {
    let path = dir.join("history.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn chaos(args: &[&str]) -> Output {
    Command::new(CHAOS).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn valid_lines() -> Vec<String> {
    vec![
        event(0, 0, "invoke", "write", "k", json!(1)),
        event(1, 0, "ok", "write", "k", json!(1)),
        event(2, 1, "invoke", "read", "k", Value::Null),
        event(3, 1, "ok", "read", "k", json!(1)),
        event(4, 2, "invoke", "propose", "r", json!(5)),
        event(5, 2, "ok", "propose", "r", json!(5)),
    ]
}

#[test]
fn a_valid_history_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_history(dir.path(), &valid_lines());
    let out = chaos(&["check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("verdict: VALID"), "{text}");
    assert!(text.contains("log-agreement        skipped"), "{text}");
}

#[test]
fn a_stale_read_exits_1_and_json_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = valid_lines();
    lines.push(event(6, 0, "invoke", "write", "k", json!(2)));
    lines.push(event(7, 0, "ok", "write", "k", json!(2)));
    lines.push(event(8, 1, "invoke", "read", "k", Value::Null));
    lines.push(event(9, 1, "ok", "read", "k", json!(1)));
    let path = write_history(dir.path(), &lines);
    let out = chaos(&["check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("non-linearizable"));
    let out = chaos(&["check", "--json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["verdict"], "invalid");
    let lin = result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "linearizability")
        .unwrap();
    assert_eq!(lin["anomalies"][0]["key"], "k");
    assert_eq!(lin["anomalies"][0]["witness"]["blocked"]["index"], 8);
}

#[test]
fn an_undecided_run_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let lines = vec![
        event(0, 0, "invoke", "propose", "r", json!(5)),
        event(1, 0, "info", "propose", "r", json!(5)),
    ];
    let path = write_history(dir.path(), &lines);
    assert_eq!(
        chaos(&["check", path.to_str().unwrap()]).status.code(),
        Some(3)
    );
}

#[test]
fn a_history_with_nothing_to_judge_is_unknown_whether_empty_or_all_failed() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let out = chaos(&["check", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).contains("no client op"), "{}", stdout(&out));
    let failed = write_history(
        dir.path(),
        &[
            event(0, 0, "invoke", "read", "k", Value::Null),
            event(1, 0, "fail", "read", "k", Value::Null),
        ],
    );
    assert_eq!(
        chaos(&["check", failed.to_str().unwrap()]).status.code(),
        Some(3)
    );
}

#[test]
fn a_run_directory_uses_its_final_dumps() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), &valid_lines());
    std::fs::create_dir(dir.path().join("final")).unwrap();
    // Node 2 learned a different register value than the client was told.
    std::fs::write(
        dir.path().join("final/n2.json"),
        json!({"registers": {"r": 6}, "log": []}).to_string(),
    )
    .unwrap();
    let out = chaos(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("agreement"));
}

#[test]
fn bad_input_is_a_clear_error_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_history(dir.path(), &["{\"index\":0".to_string()]);
    let out = chaos(&["check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1"), "{err}");
    let out = chaos(&["check", "/nonexistent/history.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));
    let out = chaos(&["check", path.to_str().unwrap(), "--time-limit", "-1"]);
    assert_eq!(out.status.code(), Some(2));
    let out = chaos(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn chaos_node_is_the_bundled_node() {
    let out = chaos(&["node", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("minority-quorum"));
    let out = chaos(&["node", "--id", "3", "--data-dir", "/tmp/x"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A transaction history with a stale read: strict serializability forbids it,
/// serializability allows it, and `--consistency-model` chooses; a bad model name
/// is a usage error.
#[test]
fn transactions_are_judged_against_the_model_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let txn = |index: u64, process: u64, ty: &str, value: Value| {
        json!({"index": index, "time_ns": index * 1000, "process": process, "type": ty,
               "f": "txn", "value": value})
        .to_string()
    };
    let path = write_history(
        dir.path(),
        &[
            txn(0, 0, "invoke", json!([["append", "x", 1]])),
            txn(1, 0, "ok", json!([["append", "x", 1]])),
            txn(2, 1, "invoke", json!([["r", "x", null]])),
            txn(3, 1, "ok", json!([["r", "x", []]])),
        ],
    );
    let path = path.to_str().unwrap();
    let strict = chaos(&["check", path]);
    assert_eq!(strict.status.code(), Some(1), "{}", stdout(&strict));
    assert!(
        stdout(&strict).contains("G-single-realtime"),
        "{}",
        stdout(&strict)
    );
    let serializable = chaos(&["check", path, "--consistency-model", "serializable"]);
    assert_eq!(
        serializable.status.code(),
        Some(0),
        "{}",
        stdout(&serializable)
    );
    assert!(
        stdout(&serializable).contains("under serializable"),
        "{}",
        stdout(&serializable)
    );
    let bad = chaos(&["check", path, "--consistency-model", "linearizable"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("strict-serializable"));
}
