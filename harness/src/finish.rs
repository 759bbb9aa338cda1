//! The end of a run: judge its files (the one judging path, [`results::judge_run_dir`]),
//! write result.json, render the report, junit.xml and the index, print the summary,
//! with the verdict and exit code decided in the one place ([`results::verdict::decide`]).

use results::schema::{Durations, Liveness, RunResult, Versions};
use std::path::PathBuf;

use results::{ExitCode, Plan, RunDir};

use crate::observe::Observer;
use crate::vocab::NodeId;

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub exit_code: ExitCode,
    pub verdict: results::Verdict,
    pub run_dir: PathBuf,
    /// The steps of the run procedure taken, in order ([`crate::procedure::Step`]).
    pub steps: Vec<crate::procedure::Step>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{source}: {path} (is --results writable?)")]
    RunDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the run itself observed, beside the history.
pub struct Judgement {
    pub harness_failure: Option<String>,
    /// `None`: the final phase did not get as far as asking.
    pub liveness: Option<Result<(), String>>,
    pub interrupted: bool,
    pub notes: Vec<String>,
    pub durations: Durations,
    pub links: Vec<nemesis::net::LinkStats>,
    /// Nodes whose final dump could not be fetched, and why.
    pub missing_dumps: Vec<(NodeId, String)>,
    /// What a simulated run did.
    pub simulation: Option<results::schema::Simulation>,
    /// The protocol's rules, when the run could check them, and the situations reached.
    pub protocol: Option<(checker::CheckReport, checker::protocol::Coverage)>,
    /// The system under test's name and version, when it is not the bundled node.
    pub system_version: Option<String>,
    /// The steps of the run procedure taken.
    pub steps: Vec<crate::procedure::Step>,
    /// The history the run built as it wrote history.jsonl, judged in place of
    /// reading the file back ([`results::judge_run_dir_built`]).
    pub built_history: Option<Result<checker::history::History, String>>,
    /// The final dumps the run wrote to final/, as it wrote them and in the files'
    /// order (one unreadable as why), judged in place of reading final/ back. Only
    /// with a built history.
    pub built_finals: Option<results::judge::BuiltFinals>,
}

impl Judgement {
    /// What the run procedure found; the driver adds what only it knows.
    pub fn of(ran: crate::procedure::Ran) -> Judgement {
        Judgement {
            harness_failure: ran.harness_failure,
            liveness: ran.liveness,
            interrupted: ran.interrupted,
            notes: ran.notes,
            durations: Durations::default(),
            links: Vec::new(),
            missing_dumps: ran.missing_dumps,
            simulation: None,
            protocol: None,
            system_version: None,
            steps: ran.steps,
            built_history: None,
            built_finals: None,
        }
    }
}

/// A run that broke before it could drive anything: judged all the same (exit 5).
pub fn failed(plan: &Plan, dir: &RunDir, show: &dyn Observer, why: String) -> RunOutcome {
    finish(
        plan,
        dir,
        show,
        Judgement {
            harness_failure: Some(why),
            ..Judgement::of(crate::procedure::Ran::default())
        },
    )
}

/// Checks the history, writes result.json, prints the summary, picks the exit code.
pub fn finish(plan: &Plan, dir: &RunDir, show: &dyn Observer, j: Judgement) -> RunOutcome {
    let learned_notes = results::learned::gather(&dir.path, plan);
    let options = checker::Options::default();
    let judged = match j.built_history {
        Some(built) => results::judge_run_dir_built(&dir.path, built, j.built_finals, &options),
        None => results::judge_run_dir(&dir.path, &options),
    };
    let mut harness_failure = j.harness_failure;
    let mut notes = plan.schedule_notes();
    notes.extend(j.notes);
    notes.extend(learned_notes);
    notes.extend(judged.notes.iter().cloned());
    if let Err(e) = &judged.history {
        harness_failure.get_or_insert(format!("the recorded history is unreadable: {e}"));
    }
    let mut checked = judged.checked.clone();
    let mut coverage = judged.coverage.clone();
    if let (Some(checked), Some((protocol, reached))) = (checked.as_mut(), j.protocol) {
        // The run judged the rules itself (the simulation sees every step): its
        // report replaces what the files alone could say.
        checked.put(protocol);
        coverage = Some(reached);
    }
    let decided = results::verdict::decide(&results::verdict::Facts {
        checked: checked.as_ref(),
        harness_failure: harness_failure.as_deref(),
        liveness: j.liveness.as_ref(),
        interrupted: j.interrupted,
        incomplete: false,
        missing_dumps: &j.missing_dumps,
    });
    notes.extend(decided.notes);
    let exit_code = decided.exit_code;
    // Printed paths work from anywhere: absolute, and through no `latest` link.
    let shown_dir = std::fs::canonicalize(&dir.path).unwrap_or_else(|_| dir.path.clone());
    let (checks, stats) = checked.map(|c| (c.checks, c.stats)).unzip();
    let run_result = RunResult {
        schema_version: results::SCHEMA_VERSION,
        verdict: decided.verdict,
        exit_code,
        outcome: decided.outcome,
        seed: plan.seed,
        name: plan.name.clone(),
        started_at: Some(dir.started_at.clone()),
        run_dir: shown_dir.display().to_string(),
        reproduce: plan
            .reproduce(Some(&dir.file("plan.json")))
            .expect("a plan.json is given"),
        replay: format!("chaos replay {}", shown_dir.display()),
        plan: plan.clone(),
        harness_failure,
        liveness: liveness(&j.liveness),
        interrupted: j.interrupted,
        incomplete: false,
        notes,
        checks,
        coverage,
        stats,
        faults: judged.faults.clone(),
        links: j.links,
        durations: Durations {
            check_s: judged.secs,
            ..j.durations
        },
        versions: Versions {
            chaos: env!("CARGO_PKG_VERSION").to_string(),
            system: j.system_version,
        },
        harness_peak_rss_mb: peak_rss_mb(),
        simulation: j.simulation,
    };
    let text = run_result.to_json();
    let mut warnings = Vec::new();
    if let Err(e) = results::store::write_whole(&dir.file("result.json"), &text) {
        warnings.push(format!("cannot write result.json: {e}"));
    }
    // report.html, junit.xml and the results index, from the files just written and
    // the history already parsed.
    let report = match results::render_run_with(&dir.path, judged.history.ok()) {
        Ok(r) => Some(r.report),
        Err(e) => {
            warnings.push(format!("cannot render the report: {e}"));
            None
        }
    };
    for w in &warnings {
        show.warn(&format!("{}: {w}", plan.mode.command()));
    }
    show.run_judged(&run_result, &text, report.as_deref());
    RunOutcome {
        exit_code,
        verdict: run_result.verdict,
        run_dir: dir.path.clone(),
        steps: j.steps,
    }
}

fn liveness(l: &Option<Result<(), String>>) -> Liveness {
    match l {
        None => Liveness::default(),
        Some(Ok(())) => Liveness {
            checked: true,
            ok: Some(true),
            message: None,
        },
        Some(Err(e)) => Liveness {
            checked: true,
            ok: Some(false),
            message: Some(e.clone()),
        },
    }
}

/// This process's peak resident memory so far (VmHWM), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
