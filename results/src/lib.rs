//! Results of a run: the run store, result.json, report.html, junit.xml, the run
//! index and the terminal summary (DESIGN.md §3, §6).
//!
//! This crate reads only the files of a run directory, so any run can be rendered
//! again, including runs written by older versions and runs that never finished.

mod charts;
pub mod data;
pub mod faults;
pub mod index;
pub mod junit;
pub mod report;
pub mod schema;
pub mod store;
pub mod summary;

use checker::history::History;
use std::path::{Path, PathBuf};

pub use faults::{FaultPeriod, FaultSummary};
pub use schema::{RunResult, SCHEMA_VERSION, Verdict, exit};
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
    #[error("plan.json is not JSON: {0}")]
    Plan(serde_json::Error),
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
    std::fs::write(&path, text).map_err(|source| RenderError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Judges a run that left no result.json (the harness was killed or crashed): the
/// history and whatever final dumps exist are checked, and the result is marked
/// incomplete.
fn judge_incomplete(
    dir: &Path,
    plan: serde_json::Value,
    history: Option<&checker::History>,
    history_error: Option<String>,
) -> RunResult {
    let options = checker::Options::default();
    let checked = history.map(|h| match checker::finals::finals_in(&dir.join("final")) {
        Ok(dumps) => checker::check_streaming(h, dumps, &options)
            .unwrap_or_else(|_| checker::check(h, &[], &options)),
        Err(_) => checker::check(h, &[], &options),
    });
    let verdict = checked
        .as_ref()
        .map_or(Verdict::Unknown, |c| Verdict::of(c.verdict));
    let seed = plan["seed"].as_u64().unwrap_or(0);
    RunResult {
        schema_version: SCHEMA_VERSION,
        verdict,
        exit_code: if verdict == Verdict::Invalid { exit::INVALID } else { exit::UNKNOWN },
        seed,
        name: plan["name"].as_str().unwrap_or("chaos").to_string(),
        started_at: None,
        run_dir: dir.display().to_string(),
        reproduce: format!("chaos replay {}", dir.display()),
        replay: format!("chaos replay {}", dir.display()),
        harness_failure: history_error,
        liveness: schema::Liveness::default(),
        interrupted: false,
        incomplete: true,
        notes: vec!["the run did not finish: there is no result.json, so this was judged by `chaos report` from the history and dumps it left".into()],
        faults: history.map(|h| FaultSummary::of(&h.nemesis, h.end_ns)).unwrap_or_default(),
        checks: checked.as_ref().map(|c| c.checks.clone()),
        stats: checked.map(|c| c.stats),
        plan,
        links: Vec::new(),
        durations: schema::Durations::default(),
        versions: schema::Versions {
            chaos: env!("CARGO_PKG_VERSION").to_string(),
        },
        harness_peak_rss_mb: None,
    }
}

/// Files of each node that exist, as links relative to the run directory.
fn node_files(dir: &Path, nodes: u64) -> Vec<(u32, Vec<String>)> {
    (1..=nodes as u32)
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

fn read_history(dir: &Path) -> Result<History, String> {
    match std::fs::File::open(dir.join("history.jsonl")) {
        Ok(f) => checker::history::parse_history(std::io::BufReader::new(f))
            .map_err(|e| format!("history.jsonl is unreadable: {e}")),
        Err(e) => Err(format!("history.jsonl cannot be opened: {e}")),
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
    let plan_path = dir.join("plan.json");
    let plan_text =
        std::fs::read_to_string(&plan_path).map_err(|_| RenderError::NotARun(dir.to_path_buf()))?;
    let plan: serde_json::Value = serde_json::from_str(&plan_text).map_err(RenderError::Plan)?;
    let mut notes = Vec::new();
    let history = match parsed {
        Some(h) => Ok(h),
        None => read_history(dir),
    };
    let result_path = dir.join("result.json");
    let mut result = match std::fs::read_to_string(&result_path) {
        Ok(text) => RunResult::parse(&text).map_err(|source| RenderError::Schema {
            path: result_path.clone(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let r = judge_incomplete(
                dir,
                plan,
                history.as_ref().ok(),
                history.as_ref().err().cloned(),
            );
            write(result_path, &r.to_json())?;
            r
        }
        Err(source) => {
            return Err(RenderError::Read {
                path: result_path,
                source,
            });
        }
    };
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
    let trace = history.as_ref().and_then(|h| {
        // Shortly before the first anomaly's earliest op, or the focus window's start.
        let from = data::first_anomaly_ops(&result)
            .iter()
            .map(|o| o.invoke_ns.saturating_sub(1_000_000))
            .min()
            .unwrap_or_else(|| data::focus_window(&result, h).0);
        data::trace_window(&dir.join("messages.jsonl"), from, report::LAMPORT_CAP)
    });
    let nodes = result.plan["nodes"].as_u64().unwrap_or(0);
    let inputs = report::Inputs {
        result: &result,
        history: history.as_ref(),
        trace,
        node_files: node_files(dir, nodes),
        notes,
    };
    let report = dir.join("report.html");
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
    let junit = write(dir.join("junit.xml"), &junit::render(&result))?;
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
