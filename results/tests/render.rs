//! Rendering tests on checked-in run directories (`tests/runs/`): a valid run, a run
//! with an agreement violation (`--bug=minority-quorum`), one with a linearizability
//! anomaly (`--bug=stale-read`), an incomplete run (the harness was SIGKILLed, so
//! there is no result.json and no final dump), and a simulated run whose protocol check
//! caught `--bug=forget-promises` while every history check stayed valid. Each is copied into a scratch results
//! root and rendered as `chaos report` would.

use std::path::{Path, PathBuf};

use quick_junit::{NonSuccessKind, Report, TestCaseStatus};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/runs")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Copies a fixture to `<root>/<name>/<leaf>` with a `latest` link, as a run store.
fn stage(root: &Path, name: &str) -> PathBuf {
    let run = root
        .join(name)
        .join(format!("20261122T000000.000Z-s-{name}"));
    copy_dir(&fixture(name), &run);
    let _ = std::os::unix::fs::symlink(run.strip_prefix(root).unwrap(), root.join("latest"));
    run
}

fn validate_schema(result_json: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/result.schema.json");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    let index = compiler
        .compile(
            schema.canonicalize().unwrap().to_str().unwrap(),
            &mut schemas,
        )
        .expect("the schema compiles");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(result_json).unwrap()).unwrap();
    if let Err(e) = schemas.validate(&value, index) {
        panic!("{} does not validate:\n{e:#}", result_json.display());
    }
}

fn junit(run: &Path) -> Report {
    let text = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    Report::deserialize_from_str(&text).expect("junit.xml parses")
}

/// (test case name, "ok" | "failure" | "error" | "skipped")
fn cases(report: &Report) -> Vec<(String, &'static str)> {
    assert_eq!(report.test_suites.len(), 1, "one suite per run");
    report.test_suites[0]
        .test_cases
        .iter()
        .map(|c| {
            let status = match &c.status {
                TestCaseStatus::Success { .. } => "ok",
                TestCaseStatus::NonSuccess {
                    kind: NonSuccessKind::Failure,
                    ..
                } => "failure",
                TestCaseStatus::NonSuccess { .. } => "error",
                TestCaseStatus::Skipped { .. } => "skipped",
            };
            (c.name.to_string(), status)
        })
        .collect()
}

fn failure_text(report: &Report, case: &str) -> String {
    let c = report.test_suites[0]
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == case)
        .unwrap();
    match &c.status {
        TestCaseStatus::NonSuccess {
            message,
            description,
            ..
        } => format!(
            "{} {}",
            message.as_ref().map(|m| m.as_str()).unwrap_or(""),
            description.as_ref().map(|d| d.as_str()).unwrap_or("")
        ),
        _ => panic!("{case} is not a failure"),
    }
}

fn render(name: &str) -> (tempfile::TempDir, PathBuf, results::Rendered, String) {
    let root = tempfile::tempdir().unwrap();
    let run = stage(root.path(), name);
    let rendered = results::render_run(&run).expect("renders");
    for f in ["report.html", "junit.xml", "result.json"] {
        assert!(run.join(f).exists(), "{name}: {f} missing");
    }
    validate_schema(&run.join("result.json"));
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    // Self-contained: nothing is fetched from a network.
    for remote in ["http://", "https://", "src=\"//"] {
        assert!(
            !html.contains(remote),
            "{name}: the report refers to {remote}"
        );
    }
    assert!(
        html.contains(&format!("--seed {}", rendered.result.seed)) || html.contains("chaos replay")
    );
    let index = std::fs::read_to_string(root.path().join("index.html")).expect("index.html");
    assert!(index.contains(&format!("{name}/20261122T000000.000Z-s-{name}/report.html")));
    (root, run, rendered, html)
}

#[test]
fn a_valid_run_renders_with_passing_test_cases() {
    let (_root, run, r, html) = render("valid");
    assert_eq!(r.result.verdict, results::Verdict::Valid);
    assert!(html.contains("VALID"));
    assert!(
        html.contains(&r.result.reproduce),
        "the reproduce command is on the page"
    );
    assert!(
        !html.contains("id=\"anomalies\""),
        "no anomaly section for a valid run"
    );
    assert!(html.contains("tl-data"), "the timeline data is embedded");
    assert!(html.contains("lamport"), "the message diagram is drawn");
    let report = junit(&run);
    let cases = cases(&report);
    assert!(
        cases.iter().all(|(_, s)| *s == "ok" || *s == "skipped"),
        "{cases:?}"
    );
    assert!(cases.iter().any(|(n, _)| n == "linearizability"));
    assert!(cases.iter().any(|(n, _)| n == "liveness"));
}

#[test]
fn an_agreement_violation_is_explained_with_its_witnesses() {
    let (_root, run, r, html) = render("agreement");
    assert_eq!(r.result.verdict, results::Verdict::Invalid);
    assert_eq!(r.result.exit_code, results::ExitCode::Invalid);
    assert!(html.contains("id=\"anomalies\""));
    assert!(html.contains(results::report::explain(checker::AnomalyKind::Agreement)));
    let first = r.result.anomalies().next().unwrap().1;
    assert_eq!(first.kind, checker::AnomalyKind::Agreement);
    for op in &first.ops {
        assert!(
            html.contains(&format!("href=\"#op-{}\"", op.index)),
            "witness op {} links to the timeline",
            op.index
        );
        assert!(
            html.contains(&format!("id=\"op-{}\"", op.index)),
            "witness op {} is drawn",
            op.index
        );
    }
    assert!(html.contains(&r.result.reproduce));
    let report = junit(&run);
    let cases = cases(&report);
    assert!(
        cases.contains(&("register-agreement".into(), "failure")),
        "{cases:?}"
    );
    assert!(
        cases.contains(&("register-validity".into(), "ok")),
        "{cases:?}"
    );
    assert!(failure_text(&report, "register-agreement").contains(&first.message));
}

#[test]
fn a_linearizability_anomaly_shows_the_longest_order_and_the_blocked_op() {
    let (_root, run, r, html) = render("linearizability");
    assert_eq!(r.result.verdict, results::Verdict::Invalid);
    let (check, anomaly) = r.result.anomalies().next().unwrap();
    assert_eq!(check.name, "linearizability");
    assert_eq!(anomaly.kind, checker::AnomalyKind::NonLinearizable);
    let w = anomaly.witness.as_ref().expect("a witness");
    assert!(html.contains(results::report::explain(
        checker::AnomalyKind::NonLinearizable
    )));
    assert!(html.contains("cannot be placed next"));
    assert!(
        html.contains(&format!("id=\"op-{}\"", w.blocked.index)),
        "the blocked op is on the close-up"
    );
    let report = junit(&run);
    assert!(cases(&report).contains(&("linearizability".into(), "failure")));
    assert!(failure_text(&report, "linearizability").contains("cannot place next"));
}

#[test]
fn a_broken_protocol_rule_is_shown_with_its_messages() {
    let (_root, run, r, html) = render("protocol");
    assert_eq!(r.result.verdict, results::Verdict::Invalid);
    let sim = r.result.simulation.as_ref().expect("a simulated run");
    assert!(html.contains("Simulated run") && html.contains(&sim.history_sha256));
    let protocol = r
        .result
        .checks
        .iter()
        .flatten()
        .find(|c| c.name == "protocol")
        .expect("the protocol check");
    let kinds: Vec<&str> = protocol.anomalies.iter().map(|a| a.kind.as_str()).collect();
    assert!(kinds.contains(&"promise-regressed"), "{kinds:?}");
    assert!(protocol.anomalies.iter().all(|a| !a.messages.is_empty()));
    assert!(html.contains("The messages and records that show it"));
    assert!(
        html.contains("as a space-time diagram") && html.contains("class=\"chart lamport\""),
        "the witness messages are drawn"
    );
    assert!(
        html.contains("promise key=r21 ballot=4"),
        "the witness message is shown"
    );
    assert!(r.result.coverage.is_some());
    // Every history check passed: only the protocol's own rules saw the bug.
    for c in r
        .result
        .checks
        .iter()
        .flatten()
        .filter(|c| c.name != "protocol")
    {
        assert_ne!(c.verdict, checker::Verdict::Invalid, "{}", c.name);
    }
    let cases = cases(&junit(&run));
    assert!(
        cases.contains(&("protocol".to_string(), "failure")),
        "{cases:?}"
    );
}

#[test]
fn an_incomplete_run_is_judged_from_what_it_left_and_marked() {
    let fixture_dir = fixture("incomplete");
    assert!(
        !fixture_dir.join("result.json").exists(),
        "the fixture has no result.json"
    );
    let (_root, run, r, html) = render("incomplete");
    assert!(r.result.incomplete);
    assert_eq!(
        r.result.exit_code,
        results::ExitCode::Unknown,
        "an unfinished run is unknown at best"
    );
    assert!(r.result.checks.is_some(), "its history was still checked");
    assert!(
        html.contains("<div class=\"verdict\">INCOMPLETE</div>"),
        "the banner"
    );
    assert!(html.contains("left no result.json"));
    assert_eq!(r.result.outcome.label, "incomplete");
    let report = junit(&run);
    let cases = cases(&report);
    assert!(cases.contains(&("harness".into(), "error")), "{cases:?}");
    assert!(cases.contains(&("liveness".into(), "skipped")), "{cases:?}");
    // Rendering again reads the result.json it wrote, and says the same.
    let again = results::render_run(&run).unwrap();
    assert_eq!(again.result, r.result);
}

#[test]
fn a_directory_without_a_plan_is_not_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let err = results::render_run(dir.path()).err().expect("an error");
    assert!(err.to_string().contains("not a run directory"), "{err}");
}

#[test]
fn a_result_from_a_newer_chaos_is_refused_not_misread() {
    let root = tempfile::tempdir().unwrap();
    let run = stage(root.path(), "valid");
    let path = run.join("result.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["schema_version"] = 99.into();
    std::fs::write(&path, v.to_string()).unwrap();
    let err = results::render_run(&run).err().expect("an error");
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[test]
fn the_summary_has_colour_only_when_asked() {
    let (_root, _run, r, _) = render("agreement");
    let plain = results::summary::render(&r.result, Some(Path::new("x/report.html")), false);
    let coloured = results::summary::render(&r.result, None, true);
    assert!(!plain.contains('\x1b'));
    assert!(coloured.contains("\x1b[1;31m"));
    assert!(plain.contains("INVALID"));
    assert!(plain.contains("report:    x/report.html"));
    assert!(plain.contains(&r.result.reproduce));
    // The first few anomalies of each kind, then a count of the rest.
    let mut per_kind = std::collections::BTreeMap::new();
    for (_, a) in r.result.anomalies() {
        *per_kind.entry(a.kind).or_insert(0usize) += 1;
    }
    let cap = results::summary::ANOMALIES_PER_KIND;
    let expected: usize = per_kind
        .values()
        .map(|n| (*n).min(cap) + usize::from(*n > cap))
        .sum();
    assert!(
        per_kind.values().any(|n| *n > cap),
        "the fixture has a long list"
    );
    assert_eq!(plain.matches("\n    ! ").count(), expected, "{plain}");
    let (kind, n) = per_kind.iter().find(|(_, n)| **n > cap).unwrap();
    assert!(
        plain.contains(&format!(
            "... {} more {kind} anomalies ({n} in all",
            n - cap
        )),
        "{plain}"
    );
}

#[test]
fn the_schema_rejects_what_it_should() {
    let root = tempfile::tempdir().unwrap();
    let run = stage(root.path(), "agreement");
    let path = run.join("result.json");
    let good: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/result.schema.json");
    let mut schemas = boon::Schemas::new();
    let index = boon::Compiler::new()
        .compile(
            schema.canonicalize().unwrap().to_str().unwrap(),
            &mut schemas,
        )
        .unwrap();
    assert!(schemas.validate(&good, index).is_ok());
    let mut bad = good.clone();
    bad["verdict"] = "maybe".into();
    assert!(schemas.validate(&bad, index).is_err(), "an unknown verdict");
    let mut bad = good.clone();
    bad["checks"][0]["anomalies"][0]["ops"][0]["outcome"] = "done".into();
    assert!(
        schemas.validate(&bad, index).is_err(),
        "an unknown outcome in a witness op"
    );
    let mut bad = good;
    bad.as_object_mut().unwrap().remove("reproduce");
    assert!(
        schemas.validate(&bad, index).is_err(),
        "no reproduce command"
    );
}

#[test]
fn text_from_the_history_cannot_end_the_timeline_script_early() {
    let root = tempfile::tempdir().unwrap();
    let run = stage(root.path(), "valid");
    // A key and an error text that would close the <script> element holding the data.
    let mut history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    history.push_str(concat!(
        r#"{"f":"write","index":403,"key":"</script><b>k","node":1,"process":99,"time_ns":3056000000,"type":"invoke","value":7}"#,
        "\n",
        r#"{"f":"write","index":404,"key":"</script><b>k","node":1,"process":99,"time_ns":3057000000,"type":"fail","value":7,"error":"</script>boom"}"#,
        "\n"
    ));
    std::fs::write(run.join("history.jsonl"), history).unwrap();
    results::render_run(&run).expect("renders");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let start = html.find(r#"id="tl-data">"#).expect("the data script") + r#"id="tl-data">"#.len();
    let len = html[start..]
        .find("</script>")
        .expect("the data script ends");
    let data: serde_json::Value =
        serde_json::from_str(&html[start..start + len]).expect("the whole data is in the script");
    assert!(
        data["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "</script><b>k"),
        "{}",
        data["keys"]
    );
    assert!(
        data["r"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "</script>boom")
    );
    assert!(
        !html.contains("chaos:timeline-data"),
        "the data slot is filled"
    );
}

#[test]
fn a_damaged_result_is_kept_aside_and_the_run_judged_from_its_history() {
    for damage in ["", "{\"schema_version\": 2, \"verd", "\u{0}\u{1}garbage"] {
        let root = tempfile::tempdir().unwrap();
        let run = stage(root.path(), "valid");
        std::fs::write(run.join("result.json"), damage).unwrap();
        let r = results::render_run(&run).expect("a damaged result.json is no error");
        assert!(r.result.incomplete, "{damage:?}");
        assert_eq!(r.result.exit_code, results::ExitCode::Unknown);
        assert!(r.result.checks.is_some(), "the history was checked");
        assert!(
            r.result.notes[0].contains("its result.json was damaged"),
            "{:?}",
            r.result.notes
        );
        // Nothing is lost: the damaged file is kept, and the new one is whole.
        assert_eq!(
            std::fs::read_to_string(run.join("result.json.damaged")).unwrap(),
            damage
        );
        validate_schema(&run.join("result.json"));
    }
}

#[test]
fn a_torn_last_history_line_is_skipped_and_said() {
    let root = tempfile::tempdir().unwrap();
    let run = stage(root.path(), "incomplete");
    let path = run.join("history.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"index\":999999,\"time_ns\":12");
    std::fs::write(&path, text).unwrap();
    let r = results::render_run(&run).expect("renders");
    assert!(r.result.checks.is_some(), "the history was checked");
    assert!(
        r.result.harness_failure.is_none(),
        "{:?}",
        r.result.harness_failure
    );
    assert!(
        r.result
            .notes
            .iter()
            .any(|n| n.contains("was cut short mid-write and was skipped")),
        "{:?}",
        r.result.notes
    );
}
