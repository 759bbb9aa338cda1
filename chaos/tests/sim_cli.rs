//! `chaos sim`, `chaos replay` of a simulated run and `chaos matrix --sim` from the
//! command line: what a user types, and what they read back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{SHORT, latest, run_dir_of, text};

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

fn chaos(root: &Path, args: &[&str]) -> Output {
    Command::new(CHAOS)
        .args(args)
        .arg("--results")
        .arg(root)
        .output()
        .unwrap()
}

#[test]
fn a_sim_run_says_it_is_simulated_and_its_replay_is_exact() {
    let root = tempfile::tempdir().unwrap();
    let mut args = vec!["sim", "--seed", "9", "--no-progress"];
    args.extend(SHORT);
    let out = chaos(root.path(), &args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.starts_with("chaos sim: seed 9 | 3 nodes"), "{t}");
    assert!(t.contains("2 virtual s"), "{t}");
    assert!(
        t.contains("simulated: ") && t.contains("history sha256: "),
        "{t}"
    );
    assert!(t.contains("reproduce: chaos sim --seed 9"), "{t}");
    let dir = latest(root.path());
    let plan = std::fs::read_to_string(dir.join("plan.json")).unwrap();
    assert!(plan.contains("\"mode\": \"sim\""), "{plan}");

    let replay = Command::new(CHAOS)
        .args(["replay", "--no-progress", "--times", "2"])
        .arg(&dir)
        .output()
        .unwrap();
    let r = text(&replay);
    assert_eq!(replay.status.code(), Some(0), "{r}");
    assert_eq!(
        r.matches("matches the original: an exact replay").count(),
        2,
        "{r}"
    );
}

#[test]
fn check_determinism_runs_the_plan_twice() {
    let root = tempfile::tempdir().unwrap();
    let mut args = vec!["sim", "--seed", "4", "--json", "--check-determinism"];
    args.extend(SHORT);
    let out = chaos(root.path(), &args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("determinism: run 1 history sha256 "), "{t}");
    assert!(t.contains(": identical"), "{t}");
}

#[test]
fn a_seed_sweep_prints_failing_seeds_with_their_reproduce_command() {
    let root = tempfile::tempdir().unwrap();
    let mut args = vec!["sim", "--seeds", "1..40", "--node-arg=--bug=stale-read"];
    args.extend(SHORT);
    let out = chaos(root.path(), &args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let line = t
        .lines()
        .find(|l| l.starts_with("seed "))
        .expect("a failing seed");
    assert!(line.contains("invalid (exit 1)"), "{t}");
    assert!(t.contains("  reproduce: chaos sim --seed "), "{t}");
    assert!(t.contains("--node-arg=--bug=stale-read"), "{t}");
    assert!(t.contains("failing") && t.contains("seeds/s"), "{t}");
    // The failing seed got a run directory with its report.
    let dir = t
        .lines()
        .find_map(|l| {
            l.split_once(": run directory ")
                .map(|(_, d)| PathBuf::from(d))
        })
        .expect("a run directory line");
    // Its report draws the messages around the first anomaly: the failed run was
    // simulated again, identically, keeping them.
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        report.contains("Messages around the first anomaly"),
        "{}",
        dir.display()
    );
    assert!(report.contains("class=\"chart lamport\""));
    let trace = std::fs::read_to_string(dir.join("messages.jsonl")).unwrap();
    assert!(
        (1..=80).contains(&trace.lines().count()),
        "{}",
        trace.lines().count()
    );

    let mut clean = vec!["sim", "--seeds", "1..9", "--jobs", "2"];
    clean.extend(SHORT);
    let out = chaos(root.path(), &clean);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("8 seeds run (1..9), 0 failing"), "{t}");
}

#[test]
fn sim_flags_are_checked() {
    let root = tempfile::tempdir().unwrap();
    for (args, wanted) in [
        (vec!["sim", "--seeds", "5..5"], "holds no seed"),
        (
            vec!["sim", "--seeds", "1..3", "--seed", "2"],
            "--seeds runs plans made from the flags",
        ),
        (
            vec!["sim", "--node-arg=--unsafe-no-fsync"],
            "--unsafe-no-fsync",
        ),
        (vec!["sim", "--node-bin", "/bin/true"], "--node-bin"),
        (vec!["run", "--nemesis", "corrupt"], "use chaos sim"),
        (
            vec!["sim", "--plan", "/nonexistent/plan.json"],
            "cannot read --plan",
        ),
    ] {
        let out = chaos(root.path(), &args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(wanted), "{args:?}: {t}");
    }
}

#[test]
fn the_bug_matrix_runs_in_simulation() {
    let root = tempfile::tempdir().unwrap();
    let out = chaos(
        root.path(),
        &[
            "matrix",
            "--sim",
            "--bugs",
            "stale-read,accept-lower-ballot",
            "--seeds",
            "50",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("2 of 2 bugs detected within 50 seeds of 3 s simulated runs"),
        "{t}"
    );
    // The real matrix cannot show a bug that needs a simulated disk, and says so.
    let real = chaos(root.path(), &["matrix", "--bugs", "unsynced-reply"]);
    let t = text(&real);
    assert_eq!(real.status.code(), Some(0), "{t}");
    assert!(t.contains("needs sim"), "{t}");
}

fn plan_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap()
}

#[test]
fn a_shrunk_sim_failure_is_small_fails_again_and_says_where_it_came_from() {
    let root = tempfile::tempdir().unwrap();
    let mut args = vec![
        "sim",
        "--seed",
        "2",
        "--no-progress",
        "--node-arg=--bug=stale-read",
        "--nodes",
        "3",
        "--time-limit",
        "3",
        "--nemesis-interval",
        "0.3",
    ];
    let out = chaos(root.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let original = run_dir_of(&text(&out));
    let shrink = Command::new(CHAOS)
        .args(["shrink", "--no-progress"])
        .arg(&original)
        .arg("--results")
        .arg(root.path())
        .output()
        .unwrap();
    let t = text(&shrink);
    assert_eq!(shrink.status.code(), Some(1), "{t}");
    assert!(
        t.contains("keeping linearizability (non-linearizable) failing"),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "shrunk from {}",
            original.canonicalize().unwrap().display()
        )),
        "{t}"
    );
    let small = run_dir_of(&t);
    let plan = plan_json(&small);
    let from = &plan["shrunk_from"];
    assert_eq!(from["minimal"], true, "{from}");
    let ops_before = from["ops"].as_u64().unwrap();
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(small.join("result.json")).unwrap()).unwrap();
    let ops_after = result["stats"]["ops"].as_u64().unwrap();
    assert!(
        ops_after * 20 <= ops_before,
        "ops {ops_before} -> {ops_after}: not 5% or less"
    );
    assert!(
        plan["schedule"].as_array().unwrap().len() <= 4,
        "{}",
        plan["schedule"]
    );
    assert!(plan["script"].is_array(), "the ops are scripted");
    assert!(
        result["reproduce"]
            .as_str()
            .unwrap()
            .starts_with("chaos sim --plan "),
        "{}",
        result["reproduce"]
    );
    let report = std::fs::read_to_string(small.join("report.html")).unwrap();
    assert!(report.contains("Shrunk from"), "the report links back");
    // The shrunk plan fails again from its plan.json, and exactly when replayed.
    let again = chaos(
        root.path(),
        &[
            "sim",
            "--no-progress",
            "--plan",
            small.join("plan.json").to_str().unwrap(),
        ],
    );
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    let replay = Command::new(CHAOS)
        .args(["replay", "--no-progress"])
        .arg(&small)
        .output()
        .unwrap();
    let r = text(&replay);
    assert_eq!(replay.status.code(), Some(1), "{r}");
    assert!(r.contains("an exact replay"), "{r}");

    // A budget that runs out keeps the smallest failing plan found, marked so.
    args.clear();
    let out = Command::new(CHAOS)
        .args(["shrink", "--no-progress", "--max-runs", "3"])
        .arg(&original)
        .arg("--results")
        .arg(root.path())
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("not minimal"), "{t}");
    let plan = plan_json(&run_dir_of(&t));
    assert_eq!(plan["shrunk_from"]["minimal"], false);
    assert_eq!(plan["shrunk_from"]["candidates"], 3);
}

#[test]
fn a_plan_with_faults_only_the_simulation_makes_does_not_run_for_real() {
    let root = tempfile::tempdir().unwrap();
    let out = chaos(
        root.path(),
        &[
            "sim",
            "--seed",
            "1",
            "--no-progress",
            "--nodes",
            "3",
            "--time-limit",
            "1",
            "--nemesis",
            "corrupt,kill",
            "--nemesis-interval",
            "0.2",
        ],
    );
    let dir = run_dir_of(&text(&out));
    let refused = chaos(
        root.path(),
        &["run", "--plan", dir.join("plan.json").to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("chaos sim --plan"),
        "{}",
        text(&refused)
    );
}

#[test]
fn shrink_refuses_a_run_that_did_not_fail() {
    let root = tempfile::tempdir().unwrap();
    let mut args = vec!["sim", "--seed", "9", "--no-progress"];
    args.extend(SHORT);
    let out = chaos(root.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = run_dir_of(&text(&out));
    for (extra, wanted) in [
        (vec![], "nothing to shrink: the run exited 0"),
        (vec!["--target", "liveness"], "not 4 (liveness)"),
    ] {
        let out = Command::new(CHAOS)
            .arg("shrink")
            .arg(&dir)
            .args(&extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(wanted), "{}", text(&out));
    }
}

#[test]
fn composite_and_role_aimed_faults_run_and_heal_in_simulation() {
    let root = tempfile::tempdir().unwrap();
    let out = chaos(
        root.path(),
        &[
            "sim",
            "--seed",
            "5",
            "--no-progress",
            "--nodes",
            "5",
            "--time-limit",
            "8",
            "--nemesis",
            "leader-kill,leader-isolate,leader-pause,rolling-restart,swizzle,clock,flaky-links",
            "--nemesis-interval",
            "0.8",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let history = std::fs::read_to_string(latest(root.path()).join("history.jsonl")).unwrap();
    let nemesis: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["process"] == "nemesis")
        .collect();
    let has = |f: &str, role: Option<&str>| {
        nemesis.iter().any(|e| {
            e["f"] == f
                && role.is_none_or(|r| e["value"]["role"] == r)
                && e["value"]["outcome"] == "installed"
        })
    };
    assert!(has("kill", Some("leader")), "leader-kill");
    assert!(has("restart", Some("leader")));
    assert!(has("pause", Some("leader")), "leader-pause");
    assert!(
        has("partition", Some("minority-with-leader")),
        "leader-isolate"
    );
    assert!(has("clock", None) && has("clock-reset", None));
    assert!(has("links", None) && has("links-heal", None));
    let swizzle = nemesis
        .iter()
        .filter(|e| e["value"]["shape"]["shape"] == "swizzle")
        .count();
    assert_eq!(swizzle, 20 + 19, "a swizzle of 5 nodes' 20 links");
    // Roles were resolved from the nodes' own view: the leader was known, and the
    // event says who and how.
    let aimed: Vec<&serde_json::Value> = nemesis
        .iter()
        .filter(|e| e["value"]["leader"].is_object())
        .collect();
    assert!(!aimed.is_empty());
    assert!(
        aimed
            .iter()
            .any(|e| e["value"]["leader"]["fallback"] == false
                && e["value"]["targets"][0] == e["value"]["leader"]["id"]
                && e["f"] == "kill")
    );
    // Everything is healed at the end, and the run is judged valid.
    assert_eq!(nemesis.last().unwrap()["f"], "heal");
}

#[test]
fn a_swarm_seed_draws_its_faults_and_workload_and_replays_from_its_reproduce_line() {
    let root = tempfile::tempdir().unwrap();
    let hash = |t: &str| {
        t.lines()
            .find_map(|l| l.trim().strip_prefix("history sha256: "))
            .map(|h| h[..64].to_string())
            .unwrap_or_else(|| panic!("no hash: {t}"))
    };
    let mut draws = std::collections::BTreeSet::new();
    for seed in ["5", "6", "7"] {
        let args = [
            "sim",
            "--swarm",
            "--seed",
            seed,
            "--nodes",
            "3",
            "--time-limit",
            "2",
            "--no-progress",
        ];
        let (a, b) = (chaos(root.path(), &args), chaos(root.path(), &args));
        let (ta, tb) = (text(&a), text(&b));
        assert_eq!(a.status.code(), Some(0), "{ta}");
        assert_eq!(hash(&ta), hash(&tb), "one swarm seed, one history");
        let header = ta.lines().next().unwrap().to_string();
        assert!(header.contains("swarm draw: nemesis "), "{header}");
        draws.insert(header.split(" | ").nth(4).unwrap().to_string());
        let plan = plan_json(&run_dir_of(&ta));
        assert_eq!(plan["swarm"], true, "{plan}");
        // The reproduce line names the drawn values and --swarm: the same history.
        let line = ta
            .lines()
            .find_map(|l| l.trim().strip_prefix("reproduce: chaos "))
            .unwrap();
        assert!(line.ends_with("--swarm"), "{line}");
        let words: Vec<String> = shlex::split(line).unwrap();
        let mut again: Vec<&str> = words.iter().map(String::as_str).collect();
        again.push("--no-progress");
        let c = chaos(root.path(), &again);
        assert_eq!(hash(&text(&c)), hash(&ta), "{}", text(&c));
    }
    assert_eq!(draws.len(), 3, "each seed draws its own: {draws:?}");
}

#[test]
fn explore_finds_a_rare_path_mistake_and_its_plan_reproduces_it() {
    let root = tempfile::tempdir().unwrap();
    let out = chaos(
        root.path(),
        &[
            "explore",
            "--seed",
            "1",
            "--nodes",
            "3",
            "--time-limit",
            "3",
            "--runs",
            "200",
            "--node-arg=--mistake=restart-drops-promise",
            "--no-progress",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("chaos explore: search seed 1 |"), "{t}");
    assert!(
        t.contains("each a swarm draw"),
        "fresh plans are swarm draws: {t}"
    );
    assert!(t.contains("failure: run "), "{t}");
    assert!(
        t.contains("situations the protocol's rules exist for, never reached:"),
        "{t}"
    );
    let plan = t
        .lines()
        .find_map(|l| l.trim().strip_prefix("reproduce: chaos sim --plan "))
        .unwrap_or_else(|| panic!("a reproduce line: {t}"))
        .to_string();
    let again = chaos(root.path(), &["sim", "--plan", &plan, "--no-progress"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("protocol"), "{}", text(&again));
}

#[test]
fn explore_flags_are_checked() {
    let root = tempfile::tempdir().unwrap();
    for (args, says) in [
        (vec!["explore", "--runs", "0"], "--runs"),
        (vec!["explore", "--time", "-1"], "--time"),
        (vec!["explore", "--plan", "x.json"], "--plan"),
        (vec!["explore", "--swarm", "--no-swarm"], "--no-swarm"),
    ] {
        let out = chaos(root.path(), &args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(says), "{args:?}: {t}");
    }
}

/// The report of a run whose transactions were not isolated: the timeline draws
/// the transactions, and every witness of the isolation anomalies (the witness
/// table's links, the cycle drawing's circles) is a bar on it.
#[test]
fn an_isolation_anomalys_transactions_are_found_on_the_timeline() {
    let root = tempfile::tempdir().unwrap();
    let out = chaos(
        root.path(),
        &[
            "sim",
            "--seed",
            "1",
            "--nodes",
            "3",
            "--time-limit",
            "3",
            "--workload",
            "list-append",
            "--node-arg=--bug=split-txn",
            "--no-progress",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let dir = latest(root.path());
    let result = common::result_of(&dir);
    let isolation = result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "isolation")
        .expect("an isolation check");
    let anomalies = isolation["anomalies"].as_array().unwrap();
    assert!(!anomalies.is_empty(), "{isolation}");
    let mut witnesses = Vec::new();
    let mut cycles = 0;
    for a in anomalies {
        let ops = a["ops"].as_array().unwrap();
        assert!(
            !ops.is_empty(),
            "every isolation anomaly names its transactions: {a}"
        );
        for o in ops {
            assert_eq!(o["f"], "txn", "{o}");
            assert!(o["txn"].is_u64() && o["node"].is_u64(), "{o}");
            witnesses.push(o["index"].as_u64().unwrap());
        }
        if let Some(cycle) = a["cycle"].as_array().filter(|c| !c.is_empty()) {
            cycles += 1;
            // Every transaction of the cycle is among the anomaly's witnesses.
            for step in cycle {
                assert!(ops.iter().any(|o| o["txn"] == step["from"]), "{a}");
            }
        }
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let data = html
        .split_once(r#"id="tl-data">"#)
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .map(|(data, _)| data)
        .expect("the timeline's data");
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    let bars: Vec<u64> = data["i"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap())
        .collect();
    let txns = data["f"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| **f == 4)
        .count();
    assert!(txns > 100, "the timeline draws the transactions: {txns}");
    for w in &witnesses {
        assert!(bars.contains(w), "witness #{w} is a bar on the timeline");
        assert!(
            html.contains(&format!(r##"href="#op-{w}" data-op="{w}""##)),
            "witness #{w} links to the timeline"
        );
    }
    let marked: Vec<u64> = data["marked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap())
        .collect();
    assert!(witnesses.iter().all(|w| marked.contains(w)));
    // Seed 1 half-applies transactions into cycles, each drawn.
    assert!(cycles > 0, "{isolation}");
    assert_eq!(html.matches(r#"<svg class="cycle""#).count(), cycles);
}
