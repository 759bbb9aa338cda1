//! Wrong or extreme input, a full disk, a node that answers garbage, and the paths a
//! user is shown: each refused or said clearly, before any work, with nothing lost
//! and every printed path usable from where the command ran.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::{SHORT, assert_nothing_left, latest, result_of, text};

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn chaos_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(CHAOS)
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap()
}

/// A simulated run of `extra` under `root`; its run directory, absolute.
fn sim_run(root: &Path, extra: &[&str]) -> (Output, PathBuf) {
    let mut args = vec!["sim", "--no-progress", "--results", root.to_str().unwrap()];
    args.extend(SHORT);
    args.extend(extra);
    let out = chaos_in(root, &args);
    let dir = latest(root);
    (out, dir)
}

#[test]
fn numbers_outside_their_ranges_are_refused_before_any_work() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    for (args, words) in [
        (
            vec!["sim", "--time-limit", "1e12"],
            "--time-limit (plan.json `time_limit_s`) must be in (0, 86400] s",
        ),
        (
            vec!["run", "--nodes", "3", "--time-limit", "1e7"],
            "`time_limit_s`",
        ),
        (vec!["sim", "--time-limit", "-1"], "--time-limit"),
        (vec!["sim", "--grace", "0"], "--grace"),
        (vec!["sim", "--rate", "-5"], "--rate"),
        (vec!["sim", "--keys", "0"], "--keys"),
        (vec!["sim", "--concurrency", "0"], "--concurrency"),
        (vec!["sim", "--op-timeout-ms", "0"], "--op-timeout-ms"),
        (
            vec!["sim", "--nemesis-interval", "0.001"],
            "--nemesis-interval",
        ),
        (
            vec!["sim", "--time-limit", "86400", "--nemesis-interval", "0.1"],
            "fault slots",
        ),
        (
            vec!["sim", "--seeds", "1..10", "--jobs", "0"],
            "--jobs must be in [1, 256]",
        ),
        (
            vec!["sweep", "--seeds", "1..10", "--jobs", "0"],
            "--jobs must be in [1, 256]",
        ),
        (
            vec!["sim", "--seeds", "0..18446744073709551615"],
            "--seeds must be in",
        ),
        (
            vec!["replay", "--times", "0", "x"],
            "--times must be in [1, 10000]",
        ),
        (
            vec!["matrix", "--sim", "--time-limit", "-2"],
            "--time-limit",
        ),
        (vec!["shrink", "x", "--max-time", "-1"], "--max-time"),
    ] {
        let mut all = args.clone();
        if !matches!(args[0], "replay" | "shrink") {
            all.extend(["--results", r]);
        }
        let started = Instant::now();
        let out = chaos_in(root.path(), &all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(words), "{args:?}: {}", text(&out));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    // Nothing was started: no run directory, no plan.json half-written.
    let left: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_plan_json_out_of_range_is_refused_naming_its_file_and_field() {
    let root = tempfile::tempdir().unwrap();
    let (_, dir) = sim_run(root.path(), &["--seed", "3"]);
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    plan["time_limit_s"] = serde_json::json!(1e7);
    let bad = root.path().join("bad-plan.json");
    std::fs::write(&bad, plan.to_string()).unwrap();
    for cmd in ["sim", "run"] {
        let out = chaos_in(root.path(), &[cmd, "--plan", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let t = text(&out);
        assert!(
            t.contains("bad-plan.json") && t.contains("`time_limit_s`"),
            "{t}"
        );
    }
    // A report of a run whose plan.json is damaged names the file.
    std::fs::write(dir.join("plan.json"), "{\"version\": 2").unwrap();
    let out = chaos_in(root.path(), &["report", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{}", dir.join("plan.json").display())),
        "{}",
        text(&out)
    );
}

#[test]
fn plan_flags_beside_plan_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let (_, dir) = sim_run(root.path(), &["--seed", "2"]);
    let plan = dir.join("plan.json");
    let plan = plan.to_str().unwrap();
    for args in [
        vec!["run", "--plan", plan, "--nodes", "5"],
        vec!["sim", "--plan", plan, "--seed", "5", "--time-limit", "1"],
        vec!["sim", "--plan", plan, "--node-arg=--bug=stale-read"],
    ] {
        let out = chaos_in(root.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("--plan runs the plan as stored"),
            "{}",
            text(&out)
        );
    }
    // What is not a plan flag goes with --plan.
    let out = chaos_in(
        root.path(),
        &["sim", "--plan", plan, "--no-progress", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

fn schedule_file(root: &Path, name: &str, json: &str) -> PathBuf {
    let path = root.join(name);
    std::fs::write(&path, json).unwrap();
    path
}

#[test]
fn an_explicit_schedule_is_checked_and_its_reproduce_line_runs() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for (name, json, words) in [
        (
            "cut.json",
            r#"[{"at_ms":500,"fault":{"kind":"partition","shape":{"shape":"one-way","from":[1]},"cut":[[9,1],[1,9]]},"targets":[1]}]"#,
            "cuts the link 9->1, outside nodes 1..=3",
        ),
        (
            "loss.json",
            r#"[{"at_ms":500,"fault":{"kind":"links","loss":7.5,"delay_ms":0,"jitter_ms":0,"duplicate":-1.0,"reorder":0},"targets":[1]}]"#,
            "loss 7.5: a probability is in [0, 1]",
        ),
        (
            "late.json",
            r#"[{"at_ms":999999999,"fault":{"kind":"kill"},"targets":[1]}]"#,
            "is not inside the run",
        ),
    ] {
        let file = schedule_file(r, name, json);
        let mut args = vec!["sim", "--results", r.to_str().unwrap(), "--schedule"];
        args.push(file.to_str().unwrap());
        args.extend(SHORT);
        let out = chaos_in(r, &args);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        assert!(text(&out).contains(words), "{name}: {}", text(&out));
    }
    // A schedule that fits: the header says so, and the reproduce line, pasted as it
    // is, runs the same plan.
    let good = schedule_file(
        r,
        "good.json",
        r#"[{"at_ms":300,"fault":{"kind":"kill"},"targets":[2]},{"at_ms":900,"fault":{"kind":"restart"},"targets":[2]}]"#,
    );
    let (out, dir) = sim_run(r, &["--seed", "4", "--schedule", good.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("an explicit schedule of 1 fault"), "{t}");
    assert!(!t.contains("nemesis partition"), "{t}");
    let line = t
        .lines()
        .find_map(|l| l.trim().strip_prefix("reproduce: "))
        .expect("a reproduce line");
    assert!(
        !line.contains('<'),
        "a placeholder cannot be pasted: {line}"
    );
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[..3], ["chaos", "sim", "--plan"], "{line}");
    let elsewhere = tempfile::tempdir().unwrap();
    let again = chaos_in(elsewhere.path(), &words[1..]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let first = result_of(&dir);
    let second = result_of(&latest(r));
    assert_eq!(
        first["simulation"]["history_sha256"],
        second["simulation"]["history_sha256"]
    );
}

#[test]
fn output_locations_are_checked_before_any_work() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let file = r.join("a-file");
    std::fs::write(&file, "").unwrap();
    let f = file.to_str().unwrap();
    let (out, failing) = sim_run(r, &["--seed", "2", "--node-arg=--bug=stale-read"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    for args in [
        vec!["shrink", failing.to_str().unwrap(), "--results", f],
        vec!["matrix", "--sim", "--bugs", "stale-read", "--results", f],
        vec![
            "sweep",
            "--seeds",
            "1..3",
            "--nodes",
            "3",
            "--time-limit",
            "1",
            "--results",
            f,
        ],
        vec!["merge", r.to_str().unwrap(), "--out", f],
    ] {
        let started = Instant::now();
        let out = chaos_in(r, &args);
        let t = text(&out);
        assert!(matches!(out.status.code(), Some(2 | 5)), "{args:?}: {t}");
        assert!(t.contains("a-file"), "{args:?}: {t}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{args:?} worked {:?} before failing",
            started.elapsed()
        );
    }
}

/// Mounts a tmpfs of `mb` MiB at a fresh directory; `None` (with the reason printed)
/// where this process may not mount.
fn small_disk(mb: u32) -> Option<(tempfile::TempDir, Unmount)> {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
        .arg(dir.path())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let path = dir.path().to_path_buf();
            Some((dir, Unmount(path)))
        }
        Ok(o) => {
            eprintln!(
                "skipped: cannot mount a tmpfs here ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("skipped: cannot run mount ({e})");
            None
        }
    }
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_run_at_once_and_says_which_file() {
    let Some((disk, _unmount)) = small_disk(5) else {
        return;
    };
    let started = Instant::now();
    let out = chaos_in(
        disk.path(),
        &[
            "run",
            "--nodes",
            "3",
            "--time-limit",
            "20",
            "--grace",
            "5",
            "--no-progress",
            "--results",
            disk.path().to_str().unwrap(),
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(
        t.contains("harness failure: cannot write") && t.contains("history.jsonl: No space left"),
        "{t}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a 20 s run on a full disk went on for {:?}",
        started.elapsed()
    );
    assert_nothing_left(disk.path());
    let dir = latest(disk.path());
    // Files written whole are whole or absent, never empty or torn.
    for name in ["plan.json", "result.json"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            assert!(
                serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                "{name}: {text}"
            );
        }
    }
    // With room again, the run is judged from its history, torn last line skipped.
    let _ = std::fs::remove_file(dir.join("messages.jsonl"));
    for id in 1..=3 {
        let _ = std::fs::remove_file(dir.join(format!("nodes/n{id}/journal.jsonl")));
    }
    let _ = std::fs::remove_file(dir.join("result.json"));
    let out = chaos_in(disk.path(), &["report", dir.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("INCOMPLETE"), "{t}");
    assert!(t.contains("linearizability      valid"), "{t}");
}

/// A one-node run of a test node in tests/nodes/, with no faults and a 1 s grace.
fn one_node_run(root: &Path, node: &str, time_limit: &str) -> Output {
    let node = format!("{}/tests/nodes/{node}", env!("CARGO_MANIFEST_DIR"));
    chaos_in(
        root,
        &[
            "run",
            "--node-bin",
            &node,
            "--nodes",
            "1",
            "--time-limit",
            time_limit,
            "--nemesis",
            "none",
            "--grace",
            "1",
            "--no-progress",
            "--results",
            root.to_str().unwrap(),
        ],
    )
}

#[test]
fn a_reply_that_is_not_json_is_recorded_as_misbehaviour() {
    let root = tempfile::tempdir().unwrap();
    let out = one_node_run(root.path(), "garbage_node.py", "1");
    let t = text(&out);
    // A node that never gives a real reply is not live: the final phase asks it again
    // and again (waiting between asks) until the grace period ends.
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(
        t.contains("misbehaved: n1 wrote a line that is not a message"),
        "{t}"
    );
    let history = std::fs::read_to_string(latest(root.path()).join("history.jsonl")).unwrap();
    let event = history
        .lines()
        .find(|l| l.contains("node-misbehaved"))
        .expect("a node-misbehaved event");
    assert!(event.contains("\"kind\":\"garbage\""), "{event}");
    assert!(
        event.contains("this is not json"),
        "the bytes' beginning: {event}"
    );
    assert!(history.contains("\"error\":\"malformed-reply\""));
    assert_nothing_left(root.path());
}

#[test]
fn a_node_nobody_can_reach_is_a_liveness_failure_not_a_harness_crash() {
    // The final phase waits between asks of a node it cannot connect to: that wait
    // runs on the harness's runtime (it once panicked: "no reactor running").
    let root = tempfile::tempdir().unwrap();
    let out = one_node_run(root.path(), "unreachable_node.py", "0.5");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(
        t.contains("did not answer within the 1 s grace period"),
        "{t}"
    );
    assert!(!t.contains("panicked"), "{t}");
    assert_nothing_left(root.path());
}

#[test]
fn printed_paths_work_from_where_the_command_ran() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // A sweep's failing seed: its run directory, from the sweep's own directory.
    let mut sweep = vec!["sweep", "--seeds", "2..3"];
    sweep.extend(SHORT);
    sweep.extend([
        "--node-arg=--bug=stale-read",
        "--results",
        "sh0",
        "--no-progress",
    ]);
    let out = chaos_in(r, &sweep);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let dirs: Vec<PathBuf> = t
        .lines()
        .filter_map(|l| l.trim().strip_prefix("run directory: ").map(PathBuf::from))
        .collect();
    assert!(!dirs.is_empty(), "{t}");
    for d in &dirs {
        assert!(
            d.is_absolute() && d.join("plan.json").is_file(),
            "{}",
            d.display()
        );
    }
    // chaos merge: the paths it prints, absolute.
    let out = chaos_in(r, &["merge", "sh0", "--out", "m"]);
    let t = text(&out);
    for d in t
        .lines()
        .filter_map(|l| l.trim().strip_prefix("run directory: "))
    {
        assert!(Path::new(d).join("plan.json").is_file(), "{d}: {t}");
    }
    assert!(
        t.contains(&format!("merged into {}", r.join("m").display())),
        "{t}"
    );
    // chaos report from another directory, through `latest`: every path absolute and
    // this run's own, not the link's.
    let run = dirs[0].parent().unwrap().join("latest");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = chaos_in(elsewhere.path(), &["report", run.to_str().unwrap()]);
    let t = text(&out);
    for prefix in ["run directory: ", "report:    ", "replay:    chaos replay "] {
        let path = t
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix.trim_start()))
            .unwrap_or_else(|| panic!("no {prefix}: {t}"));
        let path = path.split_whitespace().next().unwrap();
        assert!(Path::new(path).is_absolute(), "{prefix}{path}");
        assert!(!path.contains("latest"), "{prefix}{path}");
        assert!(Path::new(path).exists(), "{prefix}{path}");
    }
}

#[test]
fn what_the_harness_writes_by_default_is_ignored_by_git() {
    let ignore =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.gitignore")).unwrap();
    // chaos run/sim/sweep/matrix/shrink write under runs/, chaos merge under merged/.
    for dir in ["/runs", "/merged"] {
        assert!(
            ignore.lines().any(|l| l.trim() == dir),
            "{dir} in .gitignore"
        );
    }
}
