//! `chaos sweep` and `chaos merge` from the command line, and the CI examples in
//! examples/ run as a CI system would run them, with tiny limits.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::text;

fn chaos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chaos"))
}

/// A small simulated test that fails on some seeds and passes on others.
const STALE_SIM: &[&str] = &[
    "--mode",
    "sim",
    "--nodes",
    "3",
    "--time-limit",
    "1",
    "--nemesis-interval",
    "0.3",
    "--node-arg=--bug=stale-read",
    "--no-progress",
];

fn sweep(root: &Path, extra: &[&str]) -> Output {
    chaos()
        .arg("sweep")
        .args(extra)
        .arg("--results")
        .arg(root)
        .output()
        .unwrap()
}

/// The one sweep directory under `root`.
fn sweep_dir(root: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("sweep.jsonl").exists())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "one sweep directory under {}",
        root.display()
    );
    dirs[0].clone()
}

fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("sweep.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What a record says about its seed, without where or when it ran.
fn outcome(r: &serde_json::Value) -> serde_json::Value {
    let mut r = r.clone();
    let o = r.as_object_mut().unwrap();
    for field in ["started_at", "wall_s", "run_dir", "shard", "commit"] {
        o.remove(field);
    }
    r
}

/// junit.xml's test cases: name and whether it failed.
fn junit_cases(path: &Path) -> Vec<(String, bool)> {
    let xml = std::fs::read_to_string(path).unwrap();
    xml.split("<testcase ")
        .skip(1)
        .map(|case| {
            let name = case
                .split("name=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let head_end = case.find('>').unwrap();
            let failed = !case[..head_end].ends_with('/') && case.contains("<failure");
            (name.to_string(), failed)
        })
        .collect()
}

#[test]
fn merging_the_shards_of_a_sweep_equals_running_it_unsharded() {
    let tmp = tempfile::tempdir().unwrap();
    let seeds = ["--seeds", "1..13"];
    let whole = sweep(&tmp.path().join("whole"), &[&seeds[..], STALE_SIM].concat());
    let whole_dir = sweep_dir(&tmp.path().join("whole"));
    let expected = records(&whole_dir);
    assert_eq!(expected.len(), 12, "{}", text(&whole));
    let failing = expected.iter().filter(|r| r["exit_code"] != 0).count();
    assert!(
        failing > 0 && failing < 12,
        "a mix of failing and passing seeds: {}",
        text(&whole)
    );
    assert_eq!(whole.status.code(), Some(1), "{}", text(&whole));
    for r in expected.iter().filter(|r| r["exit_code"] != 0) {
        assert_eq!(r["confirmation"]["kind"], "exact", "{r}");
        let run = whole_dir.join(r["run_dir"].as_str().unwrap());
        assert!(run.join("report.html").exists(), "{}", run.display());
        let reproduce = r["reproduce"].as_str().unwrap();
        assert!(
            reproduce.starts_with(&format!("chaos sim --seed {} ", r["seed"])),
            "{reproduce}"
        );
        assert!(
            text(&whole).contains(reproduce),
            "failing seeds are listed with their command"
        );
    }
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(whole_dir.join("sweep.json")).unwrap())
            .unwrap();
    assert_eq!(meta["planned"], 12);
    assert_eq!(meta["run"], 12);
    assert_eq!(meta["finished"], true);

    // Three shards, each in its own results root, as three CI jobs would leave them.
    for i in 0..3 {
        let shard = format!("{i}/3");
        let out = sweep(
            &tmp.path().join(format!("shards/{i}")),
            &[&seeds[..], &["--shard", &shard, "--jobs", "1"], STALE_SIM].concat(),
        );
        let dir = sweep_dir(&tmp.path().join(format!("shards/{i}")));
        let seeds: Vec<u64> = records(&dir)
            .iter()
            .map(|r| r["seed"].as_u64().unwrap())
            .collect();
        let mine: Vec<u64> = (1..13).filter(|s| (s - 1) % 3 == i).collect();
        assert_eq!(seeds, mine, "shard {shard}: {}", text(&out));
    }
    let merged_dir = tmp.path().join("merged");
    let merged = chaos()
        .args(["merge"])
        .arg(tmp.path().join("shards"))
        .arg("--out")
        .arg(&merged_dir)
        .output()
        .unwrap();
    assert_eq!(
        merged.status.code(),
        whole.status.code(),
        "{}",
        text(&merged)
    );
    let got: Vec<serde_json::Value> = records(&merged_dir).iter().map(outcome).collect();
    let want: Vec<serde_json::Value> = expected.iter().map(outcome).collect();
    assert_eq!(got, want);
    assert_eq!(
        junit_cases(&merged_dir.join("junit.xml")),
        junit_cases(&whole_dir.join("junit.xml"))
    );
    assert_eq!(
        junit_cases(&merged_dir.join("junit.xml"))
            .iter()
            .filter(|c| c.1)
            .count(),
        failing
    );
    // The merged index links every failing seed's report where the shards keep it.
    let index = std::fs::read_to_string(merged_dir.join("index.html")).unwrap();
    let links: Vec<&str> = index
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(links.len(), failing, "{index}");
    for link in links {
        assert!(merged_dir.join(link).exists(), "{link} does not resolve");
    }
    let summary = text(&merged);
    assert!(summary.contains("12 seeds run"), "{summary}");
    assert!(summary.contains("shards 0/3 1/3 2/3"), "{summary}");
    assert!(!summary.contains("MISSING"), "{summary}");

    // Without shard 2 the merge says so and is not valid.
    std::fs::remove_dir_all(tmp.path().join("shards/2")).unwrap();
    let partial = chaos()
        .args(["merge"])
        .arg(tmp.path().join("shards"))
        .arg("--out")
        .arg(tmp.path().join("partial"))
        .output()
        .unwrap();
    assert!(
        text(&partial).contains("MISSING shards 2 of 3"),
        "{}",
        text(&partial)
    );
    assert_ne!(partial.status.code(), Some(0));
}

#[test]
fn real_failures_are_re_run_and_passing_run_directories_are_not_kept() {
    let tmp = tempfile::tempdir().unwrap();
    // A node that cannot start fails every run the same way (exit 5).
    let root = tmp.path().join("broken");
    let out = sweep(
        &root,
        &[
            "--mode",
            "real",
            "--seeds",
            "1..4",
            "--node-bin",
            "/bin/false",
            "--nodes",
            "3",
            "--time-limit",
            "1",
            "--stop-after-failures",
            "2",
            "--no-progress",
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let dir = sweep_dir(&root);
    let recs = records(&dir);
    assert_eq!(recs.len(), 2, "stopped after 2 failures: {}", text(&out));
    for r in &recs {
        assert_eq!(r["mode"], "real");
        assert_eq!(r["confirmation"]["kind"], "confirmed", "{r}");
        assert_eq!(r["confirmation"]["runs"], 2, "{r}");
        assert_eq!(r["confirmation"]["failed"], 2, "{r}");
        for d in r["confirmation"]["run_dirs"].as_array().unwrap() {
            assert!(dir.join(d.as_str().unwrap()).join("plan.json").exists());
        }
        assert!(dir.join(r["run_dir"].as_str().unwrap()).exists());
    }
    assert!(text(&out).contains("reproducible 2/2"), "{}", text(&out));
    let meta = std::fs::read_to_string(dir.join("sweep.json")).unwrap();
    assert!(meta.contains("--stop-after-failures 2 reached"), "{meta}");
    // Progress as plain lines when stderr is not a terminal.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1/3 seeds"),
        "{}",
        text(&out)
    );

    // A passing real run leaves its record and no run directory.
    let root = tmp.path().join("ok");
    let out = sweep(
        &root,
        &[
            "--mode",
            "real",
            "--seeds",
            "7..8",
            "--nodes",
            "3",
            "--time-limit",
            "1",
            "--nemesis",
            "none",
            "--no-progress",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = sweep_dir(&root);
    let recs = records(&dir);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["verdict"], "valid");
    assert!(recs[0].get("run_dir").is_none(), "{}", recs[0]);
    assert!(
        recs[0]["durations"]["workload_s"].as_f64().unwrap() > 0.5,
        "{}",
        recs[0]
    );
    let kept = std::fs::read_dir(dir.join("runs/chaos"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("plan.json").exists())
                .count()
        })
        .unwrap_or(0);
    assert_eq!(kept, 0, "a passing run's directory is removed");
    for link in ["runs/latest", "runs/chaos/latest"] {
        let link = dir.join(link);
        assert!(
            link.symlink_metadata().is_err() || link.exists(),
            "{} dangles",
            link.display()
        );
    }
}

#[test]
fn bounds_and_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    // --stop-after-failures 1 with one job: every record before the last passed.
    let root = tmp.path().join("stop");
    let out = sweep(
        &root,
        &[
            &[
                "--seeds",
                "1..200",
                "--jobs",
                "1",
                "--stop-after-failures",
                "1",
            ][..],
            STALE_SIM,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let recs = records(&sweep_dir(&root));
    assert!(recs.len() < 199, "stopped early");
    assert_eq!(recs.last().unwrap()["verdict"], "invalid");
    assert!(
        recs[..recs.len() - 1]
            .iter()
            .all(|r| r["verdict"] == "valid")
    );

    // --max-time 0 starts nothing: no record, exit 3 (nothing was judged), and
    // sweep.json says why.
    let root = tmp.path().join("time");
    let out = sweep(
        &root,
        &["--seeds", "1..50", "--max-time", "0", "--no-progress"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let dir = sweep_dir(&root);
    assert!(records(&dir).is_empty());
    let meta = std::fs::read_to_string(dir.join("sweep.json")).unwrap();
    assert!(meta.contains("--max-time 0 s reached"), "{meta}");

    for (args, says) in [
        (&["--seeds", "1..5", "--shard", "3/3"][..], "does not exist"),
        (&["--seeds", "1..5", "--seed", "3"][..], "drop --seed"),
        (&["--seeds", "5..5"][..], "holds no seed"),
        (
            &["--seeds", "1..5", "--node-bin", "/bin/false"][..],
            "--mode real",
        ),
    ] {
        let out = sweep(&tmp.path().join("bad"), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }
    std::fs::create_dir_all(tmp.path().join("empty")).unwrap();
    let out = chaos()
        .arg("merge")
        .arg(tmp.path().join("empty"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no sweep directory"), "{}", text(&out));
}

/// Copies the tree at `from` to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let t = e.file_type().unwrap();
        if t.is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else if t.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A PATH on which `chaos` is the binary under test.
fn path_with_chaos() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_chaos")).parent().unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn yaml(path: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    let text = std::fs::read_to_string(&file).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| serde_json::Value::deserialize(doc).unwrap())
        .collect()
}

fn env_of(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs a `run:` script as GitHub's bash would, in `dir`.
fn run_step(script: &str, env: &BTreeMap<String, String>, dir: &Path) -> Output {
    Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .envs(env)
        .env("PATH", path_with_chaos())
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn the_github_actions_example_runs() {
    let docs = yaml("examples/github-actions/nightly-chaos.yml");
    let wf = &docs[0];
    assert!(wf["on"]["schedule"][0]["cron"].is_string(), "nightly: {wf}");
    let mut env = env_of(&wf["env"]);
    // Tiny limits: two simulated seeds and at most one real run per shard.
    for (k, v) in [
        ("SIM_SEEDS", "1..9"),
        ("SIM_TIME_LIMIT", "0.5"),
        ("REAL_SEEDS", "1..3"),
        ("REAL_TIME_LIMIT", "1"),
    ] {
        assert!(env.contains_key(k), "the workflow sets {k}");
        env.insert(k.into(), v.into());
    }
    let sweep_job = &wf["jobs"]["sweep"];
    let shards: Vec<u64> = sweep_job["strategy"]["matrix"]["shard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(
        env["SHARDS"],
        shards.len().to_string(),
        "SHARDS matches the matrix"
    );
    let steps = sweep_job["steps"].as_array().unwrap();
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .expect("the shards upload their results");
    assert_eq!(upload["if"], "always()", "uploaded even when a seed fails");
    let upload_path = upload["with"]["path"].as_str().unwrap();
    let name = upload["with"]["name"].as_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for shard in &shards {
        let work = tmp.path().join(format!("shard-{shard}"));
        std::fs::create_dir_all(&work).unwrap();
        for step in steps {
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            if !script.contains("chaos ") {
                continue; // the build: the test runs the chaos it was built with
            }
            let script = script.replace("${{ matrix.shard }}", &shard.to_string());
            assert!(
                !script.contains("${{"),
                "an expression the test does not know: {script}"
            );
            let out = run_step(&script, &env, &work);
            assert_eq!(out.status.code(), Some(0), "{script}: {}", text(&out));
            ran += 1;
        }
        // What download-artifact leaves: each artifact in a directory of its name.
        let artifact = name.replace("${{ matrix.shard }}", &shard.to_string());
        copy_tree(
            &work.join(upload_path),
            &tmp.path().join("merge/shards").join(artifact),
        );
    }
    assert_eq!(
        ran,
        2 * shards.len(),
        "a simulated sweep and real runs per shard"
    );
    let merge_job = &wf["jobs"]["merge"];
    assert_eq!(merge_job["needs"], "sweep");
    assert_eq!(
        merge_job["if"], "always()",
        "the merge runs when a shard failed"
    );
    let msteps = merge_job["steps"].as_array().unwrap();
    let download = msteps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/download-artifact"))
        })
        .unwrap();
    let pattern = download["with"]["pattern"].as_str().unwrap();
    assert!(
        name.starts_with(pattern.trim_end_matches('*')),
        "{pattern} matches {name}"
    );
    assert_eq!(download["with"]["path"], "shards");
    let merge = msteps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("chaos merge"))
        .unwrap();
    let out = run_step(merge, &env, &tmp.path().join("merge"));
    assert_eq!(out.status.code(), Some(0), "{merge}: {}", text(&out));
    let merged = records(&tmp.path().join("merge/merged"));
    let count = |mode: &str| merged.iter().filter(|r| r["mode"] == mode).count();
    assert_eq!((count("sim"), count("real")), (8, 2), "{}", text(&out));
    assert!(!text(&out).contains("MISSING"), "{}", text(&out));
}

#[test]
fn the_kubernetes_example_runs() {
    let docs = yaml("examples/kubernetes/chaos-sweep.yaml");
    assert_eq!(docs.len(), 2, "the sweep Job and the merge Job");
    let job = &docs[0];
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["backoffLimitPerIndex"], 0);
    let completions = job["spec"]["completions"].as_u64().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let container = |doc: &serde_json::Value| {
        let spec = &doc["spec"]["template"]["spec"];
        let c = spec["containers"][0].clone();
        let mount = c["volumeMounts"][0]["mountPath"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(spec["volumes"][0]["name"], c["volumeMounts"][0]["name"]);
        let mut env: BTreeMap<String, String> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(env["RESULTS"], mount, "results go to the volume");
        env.insert("RESULTS".into(), results.display().to_string());
        assert_eq!(c["command"], serde_json::json!(["/bin/sh", "-c"]));
        (c["args"][0].as_str().unwrap().to_string(), env)
    };
    let (script, mut env) = container(job);
    assert_eq!(
        env["SHARDS"],
        completions.to_string(),
        "SHARDS matches completions"
    );
    env.insert("SEEDS".into(), "1..9".into());
    env.insert("TIME_LIMIT".into(), "0.5".into());
    let sh = |script: &str, env: &BTreeMap<String, String>| {
        Command::new("/bin/sh")
            .args(["-c", script])
            .env_clear()
            .envs(env)
            .env("PATH", path_with_chaos())
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    for index in 0..completions {
        let mut env = env.clone();
        env.insert("JOB_COMPLETION_INDEX".into(), index.to_string());
        let out = sh(&script, &env);
        assert_eq!(out.status.code(), Some(0), "index {index}: {}", text(&out));
    }
    let (merge, env) = container(&docs[1]);
    let out = sh(&merge, &env);
    assert_eq!(out.status.code(), Some(0), "{merge}: {}", text(&out));
    let merged = records(&results.join("merged"));
    let seeds: Vec<u64> = merged.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, (1..9).collect::<Vec<_>>(), "{}", text(&out));
    // Merging again (the merged directory inside what is searched) gives the same.
    let again = sh(&merge, &env);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(records(&results.join("merged")).len(), 8);
}

#[test]
fn an_interrupted_real_sweep_stops_says_why_and_leaves_nothing_running() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let mut child = chaos()
        .args([
            "sweep",
            "--mode",
            "real",
            "--seeds",
            "1..5",
            "--nodes",
            "3",
            "--time-limit",
            "20",
            "--no-progress",
            "--results",
        ])
        .arg(tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first run's nodes are up.
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::processes_under(tmp.path()).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the first run's nodes never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep exited early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the sweep did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "an interrupted run is undecided: {}",
        text(&out)
    );
    common::assert_nothing_left(tmp.path());
    let dir = sweep_dir(tmp.path());
    assert_eq!(records(&dir).len(), 1, "no seed started after the signal");
    let meta = std::fs::read_to_string(dir.join("sweep.json")).unwrap();
    assert!(meta.contains("interrupted (SIGINT or SIGTERM)"), "{meta}");
    assert!(meta.contains("\"finished\": true"), "{meta}");
}

/// A sweep that did not run all its seeds judged only some: unknown (exit 3), never
/// valid, whether time ran out or a signal stopped it, in `chaos sweep` and in
/// `chaos sim --seeds` alike.
#[test]
fn a_sweep_that_stops_before_its_last_seed_is_unknown() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let quiet = ["--nodes", "3", "--time-limit", "2", "--no-progress"];
    let out = sweep(
        tmp.path(),
        &[
            &["--seeds", "1..1000000", "--max-time", "1"][..],
            &quiet[..],
        ]
        .concat(),
    );
    let stdout = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("planned seeds not run"), "{stdout}");
    assert!(
        stdout.contains("exit 3: unknown: the sweep stopped"),
        "{stdout}"
    );
    assert!(stdout.contains("faults per seed"), "{stdout}");
    let meta = std::fs::read_to_string(sweep_dir(tmp.path()).join("sweep.json")).unwrap();
    assert!(meta.contains("--max-time 1 s reached"), "{meta}");
    let records = records(&sweep_dir(tmp.path()));
    assert!(!records.is_empty());
    assert!(
        records.iter().all(|r| r["faults"].as_u64() > Some(0)),
        "every seed of a 2 s run has faults: {records:?}"
    );
    for (command, seeds) in [("sweep", "--seeds"), ("sim", "--seeds")] {
        let mut child = chaos()
            .args([command, seeds, "1..1000000"])
            .args(quiet)
            .arg("--results")
            .arg(tmp.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Signal once it has begun: it takes signals before it prints its header.
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            use std::io::{BufRead, Read};
            let mut all = String::new();
            stdout.read_line(&mut all).unwrap();
            tx.send(()).unwrap();
            stdout.read_to_string(&mut all).unwrap();
            all
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("a header within 30 s");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "chaos {command} did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = child.wait().unwrap();
        let stdout = reader.join().unwrap();
        assert_eq!(status.code(), Some(3), "chaos {command}: {stdout}");
        assert!(
            stdout.contains("interrupted (SIGINT or SIGTERM)"),
            "chaos {command}: {stdout}"
        );
        assert!(
            stdout.contains("exit 3: unknown: the sweep stopped"),
            "chaos {command}: {stdout}"
        );
    }
}
