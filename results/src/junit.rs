//! junit.xml: one test suite per run, one test case per check, plus `liveness` and
//! `harness`. An invalid check is a `<failure>` carrying the anomaly text; a check
//! that could not decide, or a broken harness, is an `<error>`; a check with nothing
//! to look at is `<skipped>`.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::schema::RunResult;

const CLASS: &str = "chaos";

fn failure(kind: NonSuccessKind, message: &str, description: String) -> TestCaseStatus {
    let mut s = TestCaseStatus::non_success(kind);
    s.set_message(message);
    if !description.is_empty() {
        s.set_description(description);
    }
    s
}

fn case(name: &str, status: TestCaseStatus, secs: f64) -> TestCase {
    let mut c = TestCase::new(name, status);
    c.set_classname(CLASS);
    c.set_time(Duration::from_secs_f64(secs.max(0.0)));
    c
}

/// The anomaly text of one check: each anomaly with its witness ops, one per line.
pub fn anomaly_text(check: &checker::CheckReport) -> String {
    let mut out = String::new();
    for a in &check.anomalies {
        for line in a.lines() {
            out.push_str(&line);
            out.push('\n');
        }
    }
    for u in &check.unknown {
        out.push_str(&format!("unknown: {u}\n"));
    }
    out
}

pub fn render(r: &RunResult) -> String {
    let mut suite = TestSuite::new(format!("chaos {} seed {}", r.name, r.seed));
    suite.set_timestamp(
        r.started_at
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .unwrap_or_default(),
    );
    suite.add_property(("seed", r.seed.to_string().as_str()));
    suite.add_property(("reproduce", r.reproduce.as_str()));
    suite.add_property(("exit_code", r.exit_code.code().to_string().as_str()));
    let words = r.words();
    suite.add_property(("outcome", words.label.as_str()));
    suite.add_property(("meaning", words.meaning.as_str()));
    let check_secs = r.durations.check_s;
    match &r.checks {
        Some(checks) => {
            for c in checks {
                let status = match c.verdict {
                    checker::Verdict::Valid => TestCaseStatus::success(),
                    checker::Verdict::Invalid => {
                        failure(NonSuccessKind::Failure, &c.summary, anomaly_text(c))
                    }
                    checker::Verdict::Unknown => {
                        failure(NonSuccessKind::Error, &c.summary, anomaly_text(c))
                    }
                    checker::Verdict::Skipped => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(c.summary.as_str());
                        s
                    }
                };
                suite.add_test_case(case(&c.name, status, check_secs));
            }
        }
        None => {
            suite.add_test_case(case(
                "history",
                failure(
                    NonSuccessKind::Error,
                    "the history could not be checked",
                    r.harness_failure.clone().unwrap_or_default(),
                ),
                0.0,
            ));
        }
    }
    let liveness = match (&r.liveness.checked, r.liveness.ok) {
        (true, Some(true)) => TestCaseStatus::success(),
        (true, _) => failure(
            NonSuccessKind::Failure,
            "the cluster did not recover within the grace period after the final heal",
            r.liveness.message.clone().unwrap_or_default(),
        ),
        (false, _) => {
            let mut s = TestCaseStatus::skipped();
            s.set_message("the run did not reach the final phase");
            s
        }
    };
    suite.add_test_case(case("liveness", liveness, r.durations.final_s));
    let harness = match (&r.harness_failure, r.interrupted, r.incomplete) {
        (Some(why), _, _) => failure(NonSuccessKind::Error, "the test itself broke", why.clone()),
        (None, true, _) => failure(
            NonSuccessKind::Error,
            "the run was interrupted before its time limit",
            String::new(),
        ),
        (None, false, true) => failure(
            NonSuccessKind::Error,
            "the run did not finish: judged from the files it left",
            String::new(),
        ),
        _ => TestCaseStatus::success(),
    };
    suite.add_test_case(case(
        "harness",
        harness,
        r.durations.startup_s + r.durations.workload_s,
    ));
    let mut report = Report::new(format!("chaos {}", r.name));
    report.add_test_suite(suite);
    report
        .to_string()
        .expect("junit serialisation writes to memory")
}
