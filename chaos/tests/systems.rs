//! Systems declared in a file (`chaos run --system FILE`, docs/systems.md): a file
//! with a mistake is refused naming its line and field; the bundled node declared in
//! examples/systems/ with its Python client is valid under faults and its bug is
//! caught; a node that exits or is never ready, and a client that prints garbage,
//! hangs, exits or answers an op nobody asked, each end the way docs/clients.md says,
//! with nothing left running. The runs need network namespaces: where this machine
//! cannot make them, they are skipped with the reason printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{assert_nothing_left, latest, netns_ok, result_of, text, verdict};

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/systems")
        .join(name)
}

fn run(root: &Path, system: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(CHAOS)
        .args(["run", "--no-progress", "--system"])
        .arg(system)
        .args(args)
        .arg("--results")
        .arg(root)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The sleepers' file and its client, copied under `root` (so every process they
/// start names `root` on its command line), with `edit` applied to the file.
fn sleepers(root: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/systems");
    let dir = root.join("system");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(here.join("bad_client.py"), dir.join("bad_client.py")).unwrap();
    let text = std::fs::read_to_string(here.join("sleeper.toml")).unwrap();
    std::fs::write(dir.join("sleepers.toml"), edit(text)).unwrap();
    dir.join("sleepers.toml")
}

#[test]
fn a_system_file_with_a_mistake_is_refused_naming_its_line_and_field() {
    let root = tempfile::tempdir().unwrap();
    for (edit, words) in [
        (
            ("workloads = [\"kv\"]\n", ""),
            "sleepers.toml:1: missing field `workloads`",
        ),
        (
            ("timeout_s = 2", "timeout_s = \"soon\""),
            "sleepers.toml:13: invalid type",
        ),
        (
            ("{node_dir}", "{node_directory}"),
            "sleepers.toml:9: node.command: unknown placeholder {node_directory}",
        ),
        (("[node.ready]", "[node.redy]"), "unknown field `redy`"),
    ] {
        let file = sleepers(root.path(), |t| t.replace(edit.0, edit.1));
        let out = run(root.path(), &file, &["--nodes", "1"], &[]);
        assert_eq!(out.status.code(), Some(2), "{words}: {}", text(&out));
        assert!(text(&out).contains(words), "{words}: {}", text(&out));
    }
    // A program the file requires that is missing: the run cannot start its nodes
    // (exit 5, as a node that will not start), saying what to install.
    let file = sleepers(root.path(), |t| {
        t.replace(
            "workloads = [\"kv\"]",
            "workloads = [\"kv\"]\nrequires = [\"no-such-program\"]\ninstall_hint = \"apt-get install no-such\"",
        )
    });
    let out = run(
        root.path(),
        &file,
        &["--nodes", "1", "--time-limit", "1"],
        &[],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains(
            "needs no-such-program: no-such-program is not on PATH: apt-get install no-such"
        ),
        "{}",
        text(&out)
    );
    // The simulation runs only the bundled node's core: a declared system is refused.
    let out = Command::new(CHAOS)
        .args(["sim", "--system"])
        .arg(example("bundled.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("chaos sim simulates only the bundled node's core"));
    let out = run(root.path(), Path::new("no/such/system.toml"), &[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("system.toml: cannot read the system file"));
}

#[test]
fn the_bundled_node_declared_in_a_file_is_valid_under_faults_and_its_bug_is_caught() {
    if !netns_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let file = example("bundled.toml");
    let short = ["--nodes", "3", "--time-limit", "4", "--grace", "10"];
    let mut args = short.to_vec();
    args.extend(["--workload", "both", "--seed", "3"]);
    let out = run(root.path(), &file, &args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let result = result_of(&latest(root.path()));
    assert_eq!(verdict(&result, "linearizability"), "valid");
    assert_eq!(verdict(&result, "register-agreement"), "valid");
    assert!(
        result["faults"]["ran"].as_u64().unwrap() >= 3,
        "{}",
        result["faults"]
    );
    assert_eq!(result["versions"]["system"], "bundled node (declared)");
    assert!(result["plan"]["declared"]["file"]["node"]["command"].is_array());
    assert_nothing_left(root.path());
    // The node's bug, through the same file and client: caught within five seeds.
    let caught = (1..=5).any(|seed| {
        let mut args = short.to_vec();
        let seed = seed.to_string();
        args.extend(["--node-arg=--bug=stale-read", "--seed", &seed]);
        run(root.path(), &file, &args, &[]).status.code() == Some(1)
    });
    assert!(caught, "stale reads through a declared system went unseen");
    assert_nothing_left(root.path());
    // Transactions through the same file's client: valid, and a split transaction
    // caught by the isolation check.
    for (bug, code) in [(None, 0), (Some("--node-arg=--bug=split-txn"), 1)] {
        let mut args = short.to_vec();
        args.extend(["--workload", "list-append", "--seed", "3"]);
        args.extend(bug);
        let out = run(root.path(), &file, &args, &[]);
        assert_eq!(out.status.code(), Some(code), "{bug:?}: {}", text(&out));
        let result = result_of(&latest(root.path()));
        let want = if code == 0 { "valid" } else { "invalid" };
        assert_eq!(
            verdict(&result, "isolation"),
            want,
            "{bug:?}: {}",
            text(&out)
        );
    }
    assert_nothing_left(root.path());
}

#[test]
fn a_node_that_exits_or_is_never_ready_fails_the_run_clearly() {
    if !netns_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    for (edit, words) in [
        (
            ("print('up', flush=True)", "raise SystemExit(3)"),
            "node 1 exited during start-up",
        ),
        (
            ("line = \"^up$\"", "line = \"^never$\""),
            "node 1 was not ready within 2 s",
        ),
    ] {
        let file = sleepers(root.path(), |t| t.replace(edit.0, edit.1));
        let out = run(
            root.path(),
            &file,
            &["--nodes", "2", "--time-limit", "1", "--nemesis", "none"],
            &[("HOW", "none")],
        );
        assert_eq!(out.status.code(), Some(5), "{words}: {}", text(&out));
        assert!(text(&out).contains(words), "{words}: {}", text(&out));
        assert_nothing_left(root.path());
    }
}

#[test]
fn a_system_that_promises_less_than_linearizability_is_not_judged_by_it() {
    if !netns_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let file = sleepers(root.path(), |t| {
        t.replace("workloads", "promises = \"not-linearizable\"\nworkloads")
    });
    let out = run(
        root.path(),
        &file,
        &["--nodes", "1", "--time-limit", "1", "--nemesis", "none"],
        &[("HOW", "none")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let result = result_of(&latest(root.path()));
    assert_eq!(verdict(&result, "linearizability"), "skipped");
    let check = result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "linearizability")
        .unwrap();
    assert!(
        check["summary"]
            .as_str()
            .unwrap()
            .contains("promises less than linearizability"),
        "{check}"
    );
    assert_nothing_left(root.path());
}

#[test]
fn clock_faults_are_made_with_libfaketime_or_skipped_saying_why() {
    if !netns_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // A system that reads the time on its own: every clock fault skipped, with why.
    let file = sleepers(root.path(), |t| {
        t.replace("[node.ready]", "time = \"own\"\n\n[node.ready]")
    });
    let out = run(
        root.path(),
        &file,
        &[
            "--nodes",
            "2",
            "--time-limit",
            "2",
            "--nemesis",
            "clock",
            "--nemesis-interval",
            "0.5",
        ],
        &[("HOW", "none")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let history = std::fs::read_to_string(latest(root.path()).join("history.jsonl")).unwrap();
    assert!(
        history.contains("\"f\":\"clock\""),
        "clock faults were scheduled"
    );
    assert!(
        history.contains("libfaketime cannot change its clock"),
        "skipped, saying why"
    );
    for clock in history.lines().filter(|l| l.contains("\"f\":\"clock\"")) {
        assert!(!clock.contains("\"outcome\":\"installed\""), "{clock}");
    }
    if !Path::new("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1").is_file() {
        println!("skipped: libfaketime is not installed (apt-get install faketime)");
        return;
    }
    // The bundled node reads the time through libc: its clock runs fast, slow and
    // ahead under libfaketime, and the cluster stays valid.
    let out = run(
        root.path(),
        &example("bundled.toml"),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "4",
            "--nemesis",
            "clock,partition",
            "--seed",
            "4",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let history = std::fs::read_to_string(latest(root.path()).join("history.jsonl")).unwrap();
    let clock = history
        .lines()
        .find(|l| l.contains("\"f\":\"clock\""))
        .expect("a clock fault");
    assert!(clock.contains("\"outcome\":\"installed\""), "{clock}");
    assert_nothing_left(root.path());
}

#[test]
fn a_client_that_misbehaves_is_recorded_and_replaced() {
    if !netns_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let file = sleepers(root.path(), |t| t);
    // The op timeout leaves a client's interpreter time to start on a loaded machine:
    // a client given up on before it acted would misbehave in no way to be seen.
    for (how, kind) in [
        ("garbage", Some("garbage")),
        ("exit", Some("unexpected-exit")),
        ("wrong-id", Some("unexpected-reply")),
        ("hang", None),
    ] {
        let out = run(
            root.path(),
            &file,
            &[
                "--nodes",
                "1",
                "--concurrency",
                "2",
                "--time-limit",
                "1.5",
                "--nemesis",
                "none",
                "--op-timeout-ms",
                "1500",
                "--grace",
                "2",
            ],
            &[("HOW", how)],
        );
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{how}: {t}");
        let history = std::fs::read_to_string(latest(root.path()).join("history.jsonl")).unwrap();
        match kind {
            Some(kind) => assert!(
                history.contains(&format!("\"kind\":\"{kind}\"")),
                "{how}: no {kind} event"
            ),
            // A client that never answers: its op is given up on, its process
            // replaced, and nothing it did is misbehaviour.
            None => {
                assert!(history.contains("\"error\":\"client-timeout\""), "{how}");
                assert!(!history.contains("node-misbehaved"), "{how}");
            }
        }
        assert_nothing_left(root.path());
    }
}

#[test]
fn chaos_systems_lists_what_it_knows_and_whether_it_is_installed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("mine");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(example("bundled.toml"), dir.join("bundled.toml")).unwrap();
    std::fs::write(dir.join("broken.toml"), "name = 3\n").unwrap();
    let out = Command::new(CHAOS)
        .arg("systems")
        .arg(&dir)
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for words in [
        "bundled (the Paxos node)     yes",
        "etcd",
        "bundled node (declared)      yes          chaos run --system ",
        "broken.toml",
        "unreadable",
    ] {
        assert!(t.contains(words), "{words}: {t}");
    }
    let out = Command::new(CHAOS)
        .args(["systems", "/no/such/dir"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Whether ZooKeeper, a JVM and kazoo are here (printing why not).
fn zookeeper_ok() -> bool {
    let kazoo = Command::new("python3")
        .args(["-c", "import kazoo"])
        .output()
        .is_ok_and(|o| o.status.success());
    let why = if !Path::new("/usr/share/java/zookeeper.jar").is_file() {
        "ZooKeeper is not installed (apt-get install zookeeper)"
    } else if !kazoo {
        "kazoo is not installed (pip install kazoo)"
    } else {
        return true;
    };
    println!("skipped: {why}");
    false
}

#[test]
fn zookeeper_is_judged_by_what_it_promises_under_faults_over_three_seeds() {
    if !netns_ok() || !zookeeper_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let file = example("zookeeper.toml");
    for seed in ["1", "2", "3"] {
        let out = run(
            root.path(),
            &file,
            &[
                "--nodes",
                "3",
                "--time-limit",
                "6",
                "--workload",
                "both",
                "--seed",
                seed,
                "--nemesis",
                "partition,kill,pause",
                "--nemesis-interval",
                "1.5",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "seed {seed}: {}", text(&out));
        let result = result_of(&latest(root.path()));
        // Its registers are judged; its reads, which its documentation says may be
        // stale, are not judged as linearizable, and the run says so.
        assert_eq!(verdict(&result, "register-agreement"), "valid");
        assert_eq!(verdict(&result, "register-validity"), "valid");
        assert_eq!(verdict(&result, "linearizability"), "skipped");
        assert!(
            result["faults"]["ran"].as_u64().unwrap() >= 2,
            "{}",
            result["faults"]
        );
        let version = result["versions"]["system"].as_str().unwrap();
        assert!(version.starts_with("ZooKeeper 3."), "{version}");
        assert_nothing_left(root.path());
    }
}

#[test]
fn a_killed_or_interrupted_harness_takes_a_declared_systems_nodes_and_clients_along() {
    if !netns_ok() {
        return;
    }
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGKILL,
    ] {
        let root = tempfile::tempdir().unwrap();
        // The system file and its client under the root, so every process names it.
        let dir = root.path().join("system");
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["bundled.toml", "bundled_client.py", "bundled_leader.py"] {
            std::fs::copy(example(f), dir.join(f)).unwrap();
        }
        let mut child = Command::new(CHAOS)
            .args([
                "run",
                "--no-progress",
                "--nodes",
                "3",
                "--time-limit",
                "60",
                "--system",
            ])
            .arg(dir.join("bundled.toml"))
            .arg("--results")
            .arg(root.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        common::wait_for_history(root.path(), 50, &mut child);
        assert!(
            common::processes_under(root.path()).len() >= 4,
            "nodes and clients running"
        );
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        child.wait().unwrap();
        assert_nothing_left(root.path());
    }
}
