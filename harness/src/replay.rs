//! `chaos replay RUN_DIR --times N`: re-runs a stored plan and reports how often the
//! original verdict came back. Real processes are not deterministic: the rate is the
//! figure.

use std::path::{Path, PathBuf};

use results::{ExitCode, Plan, RunResult};

use crate::engine::{EngineError, execute};
use crate::progress::Presentation;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0} has no plan.json: it is not a run directory")]
    NoPlan(PathBuf),
    #[error("{0} has no readable plan: {1}")]
    Plan(PathBuf, results::PlanError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

pub fn replay(run_dir: &Path, times: usize, show: Presentation) -> Result<ExitCode, ReplayError> {
    let plan = Plan::read(run_dir).map_err(|e| match e {
        results::PlanError::Read { .. } => ReplayError::NoPlan(run_dir.to_path_buf()),
        e => ReplayError::Plan(run_dir.to_path_buf(), e),
    })?;
    let original = std::fs::read_to_string(run_dir.join("result.json"))
        .ok()
        .and_then(|t| RunResult::parse(&t).ok())
        .map_or(results::Verdict::Unknown, |r| r.verdict);
    // The run directory is <root>/<name>/<leaf>: replays go beside it.
    let root = run_dir
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("runs"), Path::to_path_buf);
    let mut same = 0;
    let mut worst = ExitCode::Valid;
    for i in 1..=times {
        let outcome = execute(&plan, &root, show)?;
        if outcome.verdict == original {
            same += 1;
        }
        worst = worst.worse(outcome.exit_code);
        println!(
            "replay {i}/{times}: {} (exit {}) in {}",
            outcome.verdict.as_str(),
            outcome.exit_code.code(),
            outcome.run_dir.display()
        );
    }
    println!(
        "reproduced the original verdict '{}' in {same} of {times} runs",
        original.as_str()
    );
    Ok(worst)
}
