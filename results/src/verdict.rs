//! The one place a run's verdict, exit code and outcome are decided, from what the
//! checks found and how the run ended. `chaos run`, `chaos sim`, the seeds of a sweep,
//! a shrink's candidates, `chaos report` (a run that left no result.json) and
//! `chaos check` all call [`decide`], so the same facts give the same exit code and
//! the same words everywhere.

use checker::{CheckResult, Verdict};

use crate::schema::{ExitCode, Outcome, RunEnd, RunState};

/// What a run's verdict is decided from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Facts<'a> {
    /// Every check's result, the protocol's rules included; `None`: the history could
    /// not be read, so nothing was checked.
    pub checked: Option<&'a CheckResult>,
    /// The harness's own failure, if it had one.
    pub harness_failure: Option<&'a str>,
    /// `None`: the run did not get as far as asking whether the nodes serve.
    pub liveness: Option<&'a Result<(), String>>,
    /// Stopped by SIGINT/SIGTERM before its time limit.
    pub interrupted: bool,
    /// The run did not finish (it left no result.json), so it decided nothing about
    /// liveness.
    pub incomplete: bool,
    /// Nodes whose final dump could not be fetched, and why.
    pub missing_dumps: &'a [(u32, String)],
}

/// What [`decide`] decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Over every check; unknown when nothing could be checked.
    pub verdict: Verdict,
    pub exit_code: ExitCode,
    pub outcome: Outcome,
    /// What the decision adds to the run's notes (a judgement left partial).
    pub notes: Vec<String>,
}

/// The verdict, the exit code (the worst of verdict, harness, liveness and
/// undecidedness, [`ExitCode::of_run`]) and the words ([`Outcome::of`]).
pub fn decide(f: &Facts) -> Decision {
    let mut notes = Vec::new();
    // Nodes that recovered must have left their dumps, or log agreement went unchecked.
    let dumps_missing = matches!(f.liveness, Some(Ok(()))) && !f.missing_dumps.is_empty();
    if dumps_missing {
        let why: Vec<String> = f
            .missing_dumps
            .iter()
            .map(|(id, why)| format!("node {id}: {why}"))
            .collect();
        notes.push(format!(
            "some final dumps could not be fetched, so log agreement is not fully checked: {}",
            why.join("; ")
        ));
    }
    let verdict = f.checked.map(|c| c.verdict);
    let exit_code = ExitCode::of_run(RunEnd {
        verdict,
        harness_failed: f.harness_failure.is_some(),
        liveness_failed: matches!(f.liveness, Some(Err(_))),
        undecided: f.interrupted || f.incomplete || dumps_missing,
    });
    let verdict = verdict.unwrap_or(Verdict::Unknown);
    let outcome = Outcome::of(RunState {
        verdict,
        exit_code,
        interrupted: f.interrupted,
        incomplete: f.incomplete,
        harness_failed: f.harness_failure.is_some(),
    });
    Decision {
        verdict,
        exit_code,
        outcome,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(verdict: Verdict) -> CheckResult {
        CheckResult {
            verdict,
            checks: Vec::new(),
            stats: Default::default(),
        }
    }

    #[test]
    fn the_worst_fact_decides_the_exit_code() {
        let valid = checked(Verdict::Valid);
        let invalid = checked(Verdict::Invalid);
        let live: Result<(), String> = Ok(());
        let dead: Result<(), String> = Err("nodes [2] did not answer".into());
        let base = Facts {
            checked: Some(&valid),
            liveness: Some(&live),
            ..Facts::default()
        };
        let code = |f: Facts| decide(&f).exit_code;
        assert_eq!(code(base), ExitCode::Valid);
        assert_eq!(
            code(Facts {
                checked: None,
                ..base
            }),
            ExitCode::Unknown
        );
        assert_eq!(
            code(Facts {
                liveness: Some(&dead),
                ..base
            }),
            ExitCode::Liveness
        );
        assert_eq!(
            code(Facts {
                harness_failure: Some("cannot write"),
                liveness: Some(&dead),
                ..base
            }),
            ExitCode::Harness
        );
        assert_eq!(
            code(Facts {
                checked: Some(&invalid),
                interrupted: true,
                ..base
            }),
            ExitCode::Invalid
        );
        assert_eq!(
            code(Facts {
                interrupted: true,
                liveness: None,
                ..base
            }),
            ExitCode::Unknown
        );
        assert_eq!(
            code(Facts {
                incomplete: true,
                liveness: None,
                ..base
            }),
            ExitCode::Unknown
        );
        // `chaos check`: the checks alone.
        assert_eq!(
            code(Facts {
                checked: Some(&invalid),
                ..Facts::default()
            }),
            ExitCode::Invalid
        );
    }

    #[test]
    fn a_missing_dump_after_a_live_cluster_leaves_the_run_undecided_and_says_why() {
        let valid = checked(Verdict::Valid);
        let live: Result<(), String> = Ok(());
        let missing = [(2, "node 2 timed out".to_string())];
        let d = decide(&Facts {
            checked: Some(&valid),
            liveness: Some(&live),
            missing_dumps: &missing,
            ..Facts::default()
        });
        assert_eq!(d.exit_code, ExitCode::Unknown);
        assert!(
            d.notes[0].contains("node 2: node 2 timed out"),
            "{:?}",
            d.notes
        );
        // When the cluster did not recover, liveness already says so.
        let dead: Result<(), String> = Err("nodes [2] did not answer".into());
        let d = decide(&Facts {
            checked: Some(&valid),
            liveness: Some(&dead),
            missing_dumps: &missing,
            ..Facts::default()
        });
        assert_eq!(d.exit_code, ExitCode::Liveness);
        assert!(d.notes.is_empty());
    }
}
