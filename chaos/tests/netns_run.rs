//! The kernel network backend (`--net netns`) and etcd (`--system etcd`), with real
//! processes. Skipped, with the reason printed, where this machine cannot make
//! namespaces (not root and no user namespaces, or no `ip`/`nft`) or has no etcd.
//!
//! - The bundled node in namespaces, under partitions, kills, pauses and loss: valid.
//! - Nothing is left after a normal end, a failure, SIGINT and SIGKILL of the
//!   harness: no process, no namespace (by the inodes net.json records), and no
//!   interface in the harness's own namespace.
//! - Usage errors for what the backend cannot make; a missing etcd is exit 5 with
//!   how to install it.
//! - etcd under partitions, kills and pauses: valid, its version recorded.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{latest, netns_ok, result_of, text, verdict, wait_for_history};

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn etcd_ok() -> bool {
    match harness::system::etcd::find_etcd() {
        Ok(_) => true,
        Err(e) => {
            println!("skipped: {e}");
            false
        }
    }
}

fn chaos(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(CHAOS);
    c.args(["run", "--no-progress", "--nodes", "3"])
        .args(args)
        .arg("--results")
        .arg(root);
    c
}

/// Interfaces of the namespace the tests run in.
fn root_links() -> BTreeSet<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
        .collect()
}

/// Processes (live, not zombies) that hold one of `inodes` as their network
/// namespace or as an open descriptor, or whose command line names `root`.
fn holders(root: &Path, inodes: &[u64]) -> Vec<String> {
    let needle = root.to_string_lossy().to_string();
    let names: Vec<String> = inodes.iter().map(|i| format!("net:[{i}]")).collect();
    let mut found = Vec::new();
    for (pid, dir, cmdline) in common::live_processes() {
        let ns = std::fs::read_link(dir.join("ns/net"))
            .map(|l| l.to_string_lossy().to_string())
            .unwrap_or_default();
        let fds: Vec<String> = std::fs::read_dir(dir.join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|f| std::fs::read_link(f.path()).ok())
            .map(|l| l.to_string_lossy().to_string())
            .collect();
        let holds = names.iter().any(|n| *n == ns || fds.contains(n));
        if holds || (cmdline.contains(&needle) && !cmdline.starts_with(CHAOS)) {
            found.push(format!("{pid} {cmdline}"));
        }
    }
    found
}

/// The namespace inodes a run recorded in its net.json.
fn inodes_of(dir: &Path) -> Vec<u64> {
    let net: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("net.json")).unwrap()).unwrap();
    let mut v = vec![net["hub"]["namespace"].as_u64().unwrap()];
    v.extend(
        net["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["namespace"].as_u64().unwrap()),
    );
    v
}

fn assert_nothing_left(root: &Path, links_before: &BTreeSet<String>, what: &str) {
    let dir = latest(root);
    let inodes = inodes_of(&dir);
    assert!(inodes.iter().all(|i| *i > 0), "{what}: {inodes:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = holders(root, &inodes);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{what}: left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let added: Vec<String> = root_links().difference(links_before).cloned().collect();
    assert!(
        added.is_empty(),
        "{what}: interfaces left in the root namespace: {added:?}"
    );
}

#[test]
fn the_bundled_node_in_namespaces_is_valid_and_leaves_nothing_on_any_exit() {
    if !netns_ok() {
        return;
    }
    let before = root_links();
    // A normal end, under every fault the backend makes.
    let root = tempfile::tempdir().unwrap();
    let out = chaos(
        root.path(),
        &[
            "--net",
            "netns",
            "--time-limit",
            "4",
            "--seed",
            "2",
            "--nemesis-interval",
            "0.7",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = latest(root.path());
    let result = result_of(&dir);
    for check in [
        "linearizability",
        "register-agreement",
        "log-agreement",
        "protocol",
    ] {
        assert_eq!(verdict(&result, check), "valid", "{check}: {}", text(&out));
    }
    assert!(
        result["faults"]["periods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "partition")
    );
    assert_eq!(result["plan"]["net"], "netns");
    assert!(
        result["reproduce"]
            .as_str()
            .unwrap()
            .contains("--net netns")
    );
    assert_nothing_left(root.path(), &before, "normal end");

    // A failure: the nodes cannot start (exit 5).
    let root = tempfile::tempdir().unwrap();
    let out = chaos(
        root.path(),
        &[
            "--net",
            "netns",
            "--time-limit",
            "2",
            "--node-bin",
            "/bin/false",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert_nothing_left(root.path(), &before, "failure");

    // SIGINT and SIGKILL of the harness mid-run.
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGKILL,
    ] {
        let root = tempfile::tempdir().unwrap();
        let mut child = chaos(
            root.path(),
            &[
                "--net",
                "netns",
                "--time-limit",
                "60",
                "--nemesis",
                "partition",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        wait_for_history(root.path(), 100, &mut child);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        if signal == nix::sys::signal::Signal::SIGINT {
            assert_eq!(status.code(), Some(3), "interrupted runs are unknown");
        }
        assert_nothing_left(root.path(), &before, signal.as_ref());
    }
}

#[test]
fn faults_the_kernel_backend_cannot_make_are_usage_errors() {
    let root = tempfile::tempdir().unwrap();
    for (args, wanted) in [
        (vec!["--net", "netns", "--nemesis", "links"], "sch_netem"),
        (
            vec!["--net", "netns", "--nemesis", "partition,flaky-links"],
            "flaky-links",
        ),
        (vec!["--net", "netns", "--node-cmd", "true"], "stdio router"),
        (
            vec!["--system", "etcd", "--net", "proxy"],
            "needs --net netns",
        ),
        (
            vec!["--system", "etcd", "--workload", "both"],
            "--workload kv",
        ),
    ] {
        let out: Output = chaos(root.path(), &args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(wanted), "{args:?}: {}", text(&out));
    }
    let help = Command::new(CHAOS)
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = text(&help);
    assert!(
        help.contains("--net") && help.contains("sch_netem") && help.contains("lossy-links (5-30%")
    );
}

#[test]
fn a_missing_etcd_says_how_to_install_it() {
    let root = tempfile::tempdir().unwrap();
    let out = chaos(root.path(), &["--system", "etcd", "--time-limit", "1"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("apt-get install etcd-server"),
        "{}",
        text(&out)
    );
}

#[test]
fn etcd_under_partitions_kills_and_pauses_is_valid() {
    if !netns_ok() || !etcd_ok() {
        return;
    }
    let before = root_links();
    let root = tempfile::tempdir().unwrap();
    let out = chaos(
        root.path(),
        &[
            "--system",
            "etcd",
            "--time-limit",
            "6",
            "--seed",
            "4",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "1",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = latest(root.path());
    let result = result_of(&dir);
    assert_eq!(verdict(&result, "linearizability"), "valid");
    assert!(
        result["stats"]["counts"]["write"]["ok"]
            .as_u64()
            .unwrap_or(0)
            > 50
    );
    let version = result["versions"]["system"].as_str().unwrap();
    assert!(version.starts_with("etcd 3."), "{version}");
    let kinds: BTreeSet<&str> = result["faults"]["periods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["kind"].as_str())
        .collect();
    assert!(
        kinds.contains("kill") || kinds.contains("pause"),
        "{kinds:?}"
    );
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains(version));
    assert!(text(&out).contains(&format!("system: {version}")));
    assert_nothing_left(root.path(), &before, "etcd");
}

#[test]
fn a_user_that_is_not_root_runs_in_a_user_namespace() {
    if !nix::unistd::geteuid().is_root() || !netns_ok() {
        println!("skipped: needs root to become another user");
        return;
    }
    let Ok(setpriv) = which("setpriv") else {
        println!("skipped: no setpriv (util-linux) to run as another user");
        return;
    };
    let root = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new(setpriv)
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            CHAOS,
        ])
        .args(["run", "--no-progress", "--nodes", "3", "--net", "netns"])
        .args([
            "--time-limit",
            "2",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "0.5",
        ])
        .arg("--results")
        .arg(root.path())
        .output()
        .unwrap();
    if text(&out).contains("Permission denied") || text(&out).contains("user namespace") {
        println!(
            "skipped: this machine will not run the harness as nobody in a user namespace: {}",
            text(&out)
        );
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let result = result_of(&latest(root.path()));
    assert_eq!(verdict(&result, "linearizability"), "valid");
}

fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .ok_or(())
}

#[test]
fn faults_aimed_at_etcds_leader_find_it() {
    if !netns_ok() || !etcd_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let out = chaos(
        root.path(),
        &[
            "--system",
            "etcd",
            "--time-limit",
            "5",
            "--seed",
            "3",
            "--nemesis",
            "leader-kill",
            "--nemesis-interval",
            "1.5",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let history = std::fs::read_to_string(latest(root.path()).join("history.jsonl")).unwrap();
    let kills: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["f"] == "kill")
        .collect();
    assert!(!kills.is_empty(), "no leader-kill ran");
    for k in &kills {
        let leader = &k["value"]["leader"];
        assert_eq!(leader["fallback"], false, "{k}");
        assert_eq!(
            k["value"]["targets"],
            serde_json::json!([leader["id"]]),
            "{k}"
        );
    }
}
