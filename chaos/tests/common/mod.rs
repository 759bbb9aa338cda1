//! What the command-line tests share.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// A short simulated plan: 3 nodes, 2 virtual s, a fault slot every 0.4 s (4 faults).
#[allow(dead_code)] // not every test file simulates
pub const SHORT: [&str; 6] = [
    "--nodes",
    "3",
    "--time-limit",
    "2",
    "--nemesis-interval",
    "0.4",
];

/// Whether this machine can make network namespaces; prints why not.
#[allow(dead_code)] // not every test file makes namespaces
pub fn netns_ok() -> bool {
    match nemesis::netns::available() {
        Ok(()) => true,
        Err(e) => {
            println!("skipped: {e}");
            false
        }
    }
}

/// The run directory a command's summary names (its last "run directory:" line).
#[allow(dead_code)] // not every test file reads summaries this way
pub fn run_dir_of(out: &str) -> PathBuf {
    out.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("run directory: ").map(PathBuf::from))
        .expect("a run directory line")
}

/// A command's stdout and stderr, for assertions and their messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The run directory `<root>/latest` points at.
#[allow(dead_code)] // not every test file reads runs this way
pub fn latest(root: &Path) -> PathBuf {
    std::fs::canonicalize(root.join("latest")).expect("results/latest exists")
}

/// A run directory's result.json.
#[allow(dead_code)] // not every test file reads results this way
pub fn result_of(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
}

/// The verdict of one check in a result.json ("" when the check is absent).
#[allow(dead_code)]
pub fn verdict(result: &serde_json::Value, check: &str) -> String {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == check)
        .map(|c| c["verdict"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Waits (up to 30 s) until the running harness `child` has recorded at least
/// `lines` history events under `root`.
#[allow(dead_code)]
pub fn wait_for_history(root: &Path, lines: usize, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let n = std::fs::canonicalize(root.join("latest"))
            .ok()
            .and_then(|d| std::fs::read_to_string(d.join("history.jsonl")).ok())
            .map_or(0, |t| t.lines().count());
        if n >= lines {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the harness exited early"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "history did not grow to {lines} lines"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Every live process but this one: pid, its /proc directory and its command line
/// (a zombie has an empty one and is left out).
#[allow(dead_code)]
pub fn live_processes() -> Vec<(u32, PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if cmdline.is_empty() {
            continue;
        }
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        out.push((pid, entry.path(), cmdline));
    }
    out
}

/// Pids of live processes whose command line mentions `root` (not the harness).
#[allow(dead_code)]
pub fn processes_under(root: &Path) -> Vec<(u32, String)> {
    let needle = root.to_string_lossy().to_string();
    live_processes()
        .into_iter()
        .filter(|(_, _, cmdline)| {
            cmdline.contains(&needle)
                && !cmdline.contains("chaos run")
                && !cmdline.contains("chaos sweep")
        })
        .map(|(pid, dir, cmdline)| {
            let state = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            (
                pid,
                format!("{cmdline} [{}]", state.split(' ').nth(2).unwrap_or("?")),
            )
        })
        .collect()
}

/// Polls until no node process of `root` is left, or fails after a deadline.
#[allow(dead_code)]
pub fn assert_nothing_left(root: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_under(root);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
