//! What a command tells its user while it works. The library prints nothing: it
//! tells an [`Observer`], which the `chaos` binary implements for a terminal (a bar,
//! status lines, the summary) and a test or another program implements as it likes;
//! [`Silent`] drops everything.
//!
//! The library composes the words (so every front end says the same thing); the
//! observer decides where they go and how they look.

use std::path::Path;
use std::time::Duration;

use results::{Plan, RunResult};

/// A run's progress during its workload, about every 100 ms.
#[derive(Clone, Copy, Debug)]
pub struct RunProgress<'a> {
    pub plan: &'a Plan,
    pub elapsed: Duration,
    /// Client ops completed ok, failed and of unknown outcome so far.
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// The faults in force, in words ("none" when none is).
    pub faults: &'a str,
}

/// Where a command's words go.
pub trait Observer: Sync {
    /// A line of the command's output (stdout).
    fn say(&self, _line: &str) {}
    /// A line beside the output (stderr): a status, or a problem that does not end
    /// the command.
    fn warn(&self, _line: &str) {}
    /// A run starts: its header (the plan, its run directory).
    fn run_started(&self, _plan: &Plan, _dir: &Path) {}
    /// A run's workload goes on.
    fn run_progress(&self, _p: &RunProgress) {}
    /// A run's workload ended.
    fn run_workload_ended(&self) {}
    /// A run was judged: its result (`json` as result.json holds it) and its report.
    fn run_judged(&self, _result: &RunResult, _json: &str, _report: Option<&Path>) {}
    /// Many seeds start: `total` to run; `slow`: each is a real run.
    fn seeds_started(&self, _total: u64, _slow: bool) {}
    /// `done` seeds judged, `failed` of them failing.
    fn seeds_progress(&self, _done: u64, _failed: u64) {}
    fn seeds_ended(&self) {}
    /// A long search's state in a few words (a shrink's smallest failing plan);
    /// `changed`: it moved since the last call.
    fn search_state(&self, _line: &str, _changed: bool) {}
    /// A long search ended.
    fn search_ended(&self) {}
}

/// Says nothing: for callers that only want the returned results.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Observer for Silent {}

/// The header of a run, in words: what runs, for how long, with which faults.
pub fn run_header(plan: &Plan, dir: &Path) -> Vec<String> {
    let virtual_time = if plan.mode == results::Mode::Sim {
        " virtual"
    } else {
        ""
    };
    let mut lines = vec![format!(
        "{}: seed {} | {} | {} workload | {}{virtual_time} s | {} | run directory {}",
        plan.mode.command(),
        plan.seed,
        checker::report::count(plan.nodes, "node"),
        plan.workload.name(),
        plan.time_limit_s,
        plan.faults_words(),
        dir.display()
    )];
    lines.extend(
        plan.schedule_notes()
            .into_iter()
            .map(|n| format!("  note: {n}")),
    );
    lines
}

#[cfg(test)]
mod tests {
    use nemesis::{Fault, ScheduledFault};

    #[test]
    fn a_header_counts_in_words_and_names_an_explicit_schedule() {
        let step = |at_ms, fault| ScheduledFault {
            at_ms,
            fault,
            targets: vec![1],
            role: None,
        };
        let plan = crate::spec::PlanSpec {
            nodes: 1,
            seed: Some(1),
            time_limit_s: 2.0,
            schedule: Some(vec![step(300, Fault::Kill), step(600, Fault::Restart)]),
            ..crate::spec::PlanSpec::default()
        }
        .plan()
        .unwrap();
        let header = super::run_header(&plan, std::path::Path::new("runs/x")).join("\n");
        assert!(header.contains("| 1 node |"), "{header}");
        assert!(
            header.contains("| an explicit schedule of 1 fault |"),
            "{header}"
        );
        assert!(!header.contains("nemesis"), "{header}");
    }
}
