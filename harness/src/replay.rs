//! `chaos replay RUN_DIR --times N`: re-runs a stored plan and reports how often the
//! original verdict came back. Real processes are not deterministic: the rate is the
//! figure. A simulated run is: its replay says whether the history's SHA-256 matched,
//! and a mismatch is a harness failure (exit 5).

use std::path::{Path, PathBuf};

use results::{ExitCode, Mode, Plan, RunResult};

use crate::engine::{EngineError, execute};
use crate::observe::Observer;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0} has no plan.json: it is not a run directory")]
    NoPlan(PathBuf),
    #[error("{0} has no readable plan: {1}")]
    Plan(PathBuf, results::PlanError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Runs the plan of `run_dir` `times` times (at least once) beside it; the worst exit
/// code, and a harness failure when a simulated replay's history differs.
pub fn replay(run_dir: &Path, times: usize, show: &dyn Observer) -> Result<ExitCode, ReplayError> {
    let times = times.max(1);
    let plan = Plan::read(run_dir).map_err(|e| match e {
        results::PlanError::Read { .. } => ReplayError::NoPlan(run_dir.to_path_buf()),
        e => ReplayError::Plan(run_dir.to_path_buf(), e),
    })?;
    let original = std::fs::read_to_string(run_dir.join("result.json"))
        .ok()
        .and_then(|t| RunResult::parse(&t).ok());
    let original_hash = original
        .as_ref()
        .and_then(|r| r.simulation.as_ref())
        .map(|s| s.history_sha256.clone());
    let original = original.map_or(results::Verdict::Unknown, |r| r.verdict);
    // The run directory is <root>/<name>/<leaf>: replays go beside it.
    let root = run_dir
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("runs"), Path::to_path_buf);
    let mut same = 0;
    let mut worst = ExitCode::Valid;
    for i in 1..=times {
        let outcome = match plan.mode {
            Mode::Real => execute(&plan, &root, show)?,
            Mode::Sim => crate::sim::execute(&plan, &root, show)?,
        };
        if outcome.verdict == original {
            same += 1;
        }
        worst = worst.worse(outcome.exit_code);
        if plan.mode == Mode::Sim {
            let hash = std::fs::read_to_string(outcome.run_dir.join("result.json"))
                .ok()
                .and_then(|t| RunResult::parse(&t).ok())
                .and_then(|r| r.simulation)
                .map(|s| s.history_sha256);
            let matched = hash.is_some() && hash == original_hash;
            show.say(&format!(
                "replay {i}/{times}: history sha256 {} {}",
                hash.as_deref().unwrap_or("none"),
                if matched {
                    "matches the original: an exact replay".to_string()
                } else {
                    format!(
                        "DIFFERS from the original {} (a simulation bug, or a run of another chaos version)",
                        original_hash.as_deref().unwrap_or("(none recorded)")
                    )
                }
            ));
            if !matched {
                worst = worst.worse(ExitCode::Harness);
            }
        }
        show.say(&format!(
            "replay {i}/{times}: {} (exit {}) in {}",
            outcome.verdict.as_str(),
            outcome.exit_code.code(),
            outcome.run_dir.display()
        ));
    }
    show.say(&format!(
        "reproduced the original verdict '{}' in {same} of {times} runs",
        original.as_str()
    ));
    Ok(worst)
}
