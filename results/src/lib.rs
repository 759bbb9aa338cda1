//! Results of a run: the run store, result.json, report.html, junit.xml, the run
//! index, the terminal summary, and the typed plan every command shares
//! (docs/run-directory.md, docs/plans.md).
//!
//! This crate reads only the files of a run directory, so any run can be rendered
//! again, including runs written by older versions and runs that never finished.

mod charts;
pub mod data;
pub mod faults;
pub mod index;
pub mod judge;
pub mod junit;
pub mod learned;
pub mod plan;
pub mod ranges;
pub mod report;
pub mod schema;
pub mod store;
pub mod summary;
pub mod sweep;
pub mod system_file;
pub mod verdict;

use checker::history::History;
use std::path::{Path, PathBuf};

pub use faults::{FaultPeriod, FaultSummary};
pub use judge::{Judged, judge_built, judge_files, judge_run_dir, judge_run_dir_built};
pub use plan::{Mode, Net, OpMix, PLAN_VERSION, Plan, PlanError, SystemKind, Workload};
pub use schema::{ExitCode, RunEnd, RunResult, SCHEMA_VERSION, Verdict};
pub use store::RunDir;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{0} is not a run directory: it has no plan.json")]
    NotARun(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Schema {
        path: PathBuf,
        #[source]
        source: schema::SchemaError,
    },
    #[error("{path}: {source}")]
    Plan {
        path: PathBuf,
        #[source]
        source: PlanError,
    },
}

/// What [`render_run`] wrote.
pub struct Rendered {
    pub result: RunResult,
    pub report: PathBuf,
    pub junit: PathBuf,
    /// The results root's index.html, when the run sits in a results root.
    pub index: Option<PathBuf>,
}

fn write(path: PathBuf, text: &str) -> Result<PathBuf, RenderError> {
    store::write_whole(&path, text).map_err(|source| RenderError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// A run that left no result.json (the harness was killed or crashed), judged from
/// the history and whatever final dumps exist, and marked incomplete.
fn judge_incomplete(dir: &Path, plan: Plan, judged: &Judged, why: &str) -> RunResult {
    // A run cut short decided nothing about liveness: at best unknown. An unreadable
    // history is named as the harness's failure, but it is not what decides: nothing
    // was checked, so the run is incomplete and unknown.
    let decided = verdict::decide(&verdict::Facts {
        checked: judged.checked.as_ref(),
        incomplete: true,
        ..verdict::Facts::default()
    });
    RunResult {
        schema_version: SCHEMA_VERSION,
        verdict: decided.verdict,
        exit_code: decided.exit_code,
        outcome: decided.outcome,
        seed: plan.seed,
        name: plan.name.clone(),
        started_at: None,
        run_dir: dir.display().to_string(),
        reproduce: plan
            .reproduce(Some(&dir.join("plan.json")))
            .expect("a plan.json is given"),
        replay: format!("chaos replay {}", dir.display()),
        harness_failure: judged.history.as_ref().err().cloned(),
        liveness: schema::Liveness::default(),
        interrupted: false,
        incomplete: true,
        notes: std::iter::once(format!("the run did not finish: {why}, so this was judged by `chaos report` from the history and dumps it left"))
            .chain(judged.notes.iter().cloned())
            .collect(),
        faults: judged.faults.clone(),
        checks: judged.checked.as_ref().map(|c| c.checks.clone()),
        stats: judged.checked.as_ref().map(|c| c.stats.clone()),
        plan,
        links: Vec::new(),
        durations: schema::Durations::default(),
        versions: schema::Versions {
            chaos: env!("CARGO_PKG_VERSION").to_string(),
            system: None,
        },
        harness_peak_rss_mb: None,
        simulation: None,
        coverage: None,
    }
}

/// Files of each node that exist, as links relative to the run directory.
fn node_files(dir: &Path, nodes: usize) -> Vec<(paxos_trace::NodeId, Vec<String>)> {
    (1..=nodes as paxos_trace::NodeId)
        .map(|id| {
            let candidates = [
                format!("nodes/n{id}/stdout.log"),
                format!("nodes/n{id}/stderr.log"),
                format!("final/n{id}.json"),
            ];
            (
                id,
                candidates
                    .into_iter()
                    .filter(|p| dir.join(p).exists())
                    .collect(),
            )
        })
        .collect()
}

/// A run's stored result.json: `Ok(Err(why))` when it has none that can be used (it
/// is missing, or damaged: then it is kept as result.json.damaged), so the run is
/// judged again from its files. A result.json from a newer chaos is an error: it is
/// refused, not misread or judged over.
fn stored_result(dir: &Path) -> Result<Result<RunResult, String>, RenderError> {
    let result_path = dir.join("result.json");
    let text = match std::fs::read_to_string(&result_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Err("there is no result.json".to_string()));
        }
        Err(source) => {
            return Err(RenderError::Read {
                path: result_path,
                source,
            });
        }
    };
    match RunResult::parse(&text) {
        Err(source @ schema::SchemaError::TooNew(_)) => Err(RenderError::Schema {
            path: result_path,
            source,
        }),
        parsed => Ok(parsed.map_err(|e| {
            // Cut short or damaged (a full disk, an editor): kept beside the run.
            let kept = dir.join("result.json.damaged");
            let _ = std::fs::rename(&result_path, &kept);
            format!(
                "its result.json was damaged ({e}; kept as {})",
                kept.display()
            )
        })),
    }
}

/// Renders report.html and junit.xml of a run directory from its files (and, for a
/// run that left no result.json, writes one from a fresh check), then rebuilds the
/// results root's index.html. Nothing is re-run.
pub fn render_run(dir: &Path) -> Result<Rendered, RenderError> {
    render_run_with(dir, None)
}

/// [`render_run`] with the run's history already parsed (the harness has just judged
/// it): reading history.jsonl again would hold a second copy while the first is
/// freed, and on a long run the history is the biggest thing in memory.
pub fn render_run_with(dir: &Path, parsed: Option<History>) -> Result<Rendered, RenderError> {
    let plan = match Plan::read(dir) {
        Ok(p) => p,
        Err(PlanError::Read { .. }) => return Err(RenderError::NotARun(dir.to_path_buf())),
        Err(source) => {
            return Err(RenderError::Plan {
                path: dir.join("plan.json"),
                source,
            });
        }
    };
    let mut notes = Vec::new();
    // The run's own directory, absolute and through no `latest` link: what the
    // report and the summary name work from anywhere, and stay this run's.
    let here = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let result_path = dir.join("result.json");
    let stored = stored_result(dir)?;
    let (mut result, history) = match stored {
        Ok(result) => {
            let history = match parsed {
                Some(h) => Ok(h),
                None => judge::read_history(&dir.join("history.jsonl")),
            };
            (result, history)
        }
        Err(why) => {
            // A killed run's learned logs are not judged: its history lost the
            // invokes still buffered when it died, so every command they sent
            // would look like one nobody sent.
            let judged = judge::judge_run_dir(dir, &checker::Options::default());
            let r = judge_incomplete(&here, plan, &judged, &why);
            write(result_path, &r.to_json())?;
            (r, judged.history)
        }
    };
    result.run_dir = here.display().to_string();
    result.replay = format!("chaos replay {}", here.display());
    let history = match history {
        Ok(h) => Some(h),
        Err(e) => {
            notes.push(e);
            None
        }
    };
    // Results from before the fault summary existed: derive it for the page.
    if let Some(h) = &history
        && result.faults.periods.is_empty()
        && !h.nemesis.is_empty()
    {
        result.faults = FaultSummary::of(&h.nemesis, h.end_ns);
    }
    let trace = data::trace_window(
        &dir.join("messages.jsonl"),
        data::trace_focus(&result, history.as_ref()),
        report::LAMPORT_CAP,
    );
    let nodes = result.plan.nodes;
    let inputs = report::Inputs {
        result: &result,
        history: history.as_ref(),
        trace,
        node_files: node_files(dir, nodes),
        notes,
    };
    let report = here.join("report.html");
    std::fs::File::create(&report)
        .and_then(|f| {
            let mut out = std::io::BufWriter::new(f);
            report::render_to(&inputs, &mut out)?;
            std::io::Write::flush(&mut out)
        })
        .map_err(|source| RenderError::Write {
            path: report.clone(),
            source,
        })?;
    drop(inputs);
    drop(history);
    let junit = write(here.join("junit.xml"), &junit::render(&result))?;
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let index = match store::root_of(&real) {
        Some(root) => Some(rebuild_index(&root)?),
        None => None,
    };
    Ok(Rendered {
        result,
        report,
        junit,
        index,
    })
}

/// Rewrites `<root>/index.html` over every run under `root`.
pub fn rebuild_index(root: &Path) -> Result<PathBuf, RenderError> {
    write(
        root.join("index.html"),
        &index::render(&store::list_runs(root)),
    )
}
