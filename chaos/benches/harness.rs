//! The harness itself: `cargo bench -p harness --bench harness`.
//!
//! 1. Time from `chaos run` start (spawn) to the first acknowledged op with 5 nodes,
//!    measured from outside: the first `"type":"ok"` line in history.jsonl.
//! 2. Ops/s with 64 clients on 64 keys against 3 nodes run with `--unsafe-no-fsync`,
//!    without faults, and the CPU share of the harness process (its own user+sys
//!    time over that of the harness and all nodes together).
//! 3. Time from the end of the time limit to exit (final phase, checking, writing).
//!
//! Knobs: BENCH_SECS (throughput run length, default 20).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn latest_history(root: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(root.join("latest")).ok()?;
    std::fs::read_to_string(dir.join("history.jsonl")).ok()
}

fn first_ack() {
    let mut times = Vec::new();
    for seed in 1..=5u64 {
        let root = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let mut child = Command::new(CHAOS)
            .args(["run", "--nodes", "5", "--time-limit", "2", "--no-progress"])
            .args(["--seed", &seed.to_string()])
            .arg("--results")
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let first = loop {
            if latest_history(root.path()).is_some_and(|h| h.contains("\"type\":\"ok\"")) {
                break started.elapsed();
            }
            assert!(Instant::now() < deadline, "no acknowledged op");
            std::thread::sleep(Duration::from_millis(2));
        };
        times.push(first);
        child.wait().unwrap();
    }
    times.sort();
    println!(
        "first acknowledged op, 5 nodes, 5 runs: median {:.0} ms, max {:.0} ms (from spawning `chaos run`; includes the ~100 ms flush interval of history.jsonl)",
        times[2].as_secs_f64() * 1e3,
        times[4].as_secs_f64() * 1e3
    );
}

fn throughput() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let root = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(CHAOS)
        .args([
            "run",
            "--nodes",
            "3",
            "--workload",
            "kv",
            "--concurrency",
            "64",
            "--keys",
            "64",
            "--nemesis",
            "none",
        ])
        .args([
            "--time-limit",
            &secs.to_string(),
            "--no-progress",
            "--seed",
            "11",
        ])
        .arg("--node-arg=--unsafe-no-fsync")
        .arg("--results")
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut harness_ticks = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(t) = cpu_ticks(pid) {
            harness_ticks = t;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let wall = started.elapsed().as_secs_f64();
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let total_cpu = usage.user_time().tv_sec() as f64
        + usage.user_time().tv_usec() as f64 / 1e6
        + usage.system_time().tv_sec() as f64
        + usage.system_time().tv_usec() as f64 / 1e6;
    // /proc/<pid>/stat counts in USER_HZ, which Linux fixes at 100 for user space.
    let ticks_per_s = 100.0;
    let harness_cpu = harness_ticks as f64 / ticks_per_s;
    let dir = std::fs::canonicalize(root.path().join("latest")).unwrap();
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap();
    let stats = &result["stats"];
    let completed: u64 = stats["counts"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|m| m.as_object().unwrap().values())
        .map(|v| v.as_u64().unwrap())
        .sum();
    let d = &result["durations"];
    let workload = d["workload_s"].as_f64().unwrap();
    let startup = d["startup_s"].as_f64().unwrap();
    println!(
        "64 clients, 3 nodes --unsafe-no-fsync, {secs} s: {:.0} ok ops/s, {:.0} completed ops/s; verdict {}; harness CPU {:.1} s of {:.1} s total ({:.0}%)",
        stats["ok_per_second"].as_f64().unwrap(),
        completed as f64 / workload,
        result["verdict"],
        harness_cpu,
        total_cpu,
        100.0 * harness_cpu / total_cpu
    );
    println!(
        "end of time limit to exit: {:.2} s (final phase {:.2} s, check {:.2} s; grace period 10 s not used up)",
        wall - startup - workload,
        d["final_s"].as_f64().unwrap(),
        d["check_s"].as_f64().unwrap()
    );
    println!(
        "harness peak memory: {:.0} MB",
        result["harness_peak_rss_mb"].as_f64().unwrap_or(0.0)
    );
    // A run that was not valid is worth studying: keep its directory.
    if result["verdict"] != "valid" {
        println!("kept the run for study: {}", root.keep().display());
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    first_ack();
    throughput();
}
