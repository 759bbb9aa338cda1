//! The one judging path of a run's files: parse history.jsonl, check it with the final
//! dumps in final/, and summarise its faults. `chaos run` (after a run), `chaos check`
//! (on a history or a run directory) and `chaos report` (on a run that left no
//! result.json) all call [`judge_files`], so they reach the same verdict on the same
//! files; what differs is only how each presents it. A simulated run that built its
//! history as it wrote it hands that over ([`judge_built`]): the same fold over the
//! same events, judged the same way.

use std::path::Path;
use std::time::Instant;

use checker::history::History;
use checker::{CheckResult, Options};

use crate::faults::FaultSummary;

/// What judging a run's files found.
pub struct Judged {
    /// The parsed history, or why it could not be read.
    pub history: Result<History, String>,
    /// The checks' result; `None` when the history could not be read.
    pub checked: Option<CheckResult>,
    /// Fault periods from the history's nemesis events.
    pub faults: FaultSummary,
    /// What the protocol's rules saw reached, when the nodes' journals were judged.
    pub coverage: Option<checker::protocol::Coverage>,
    /// Seconds spent parsing and checking.
    pub secs: f64,
    /// What a reader of the verdict should know about the files judged (a torn last
    /// line of the history, skipped).
    pub notes: Vec<String>,
}

impl Judged {
    /// The verdict over every check; `None` when nothing could be checked.
    pub fn verdict(&self) -> Option<checker::Verdict> {
        self.checked.as_ref().map(|c| c.verdict)
    }
}

/// Reads a history file: parse errors name the line.
pub fn read_history(path: &Path) -> Result<History, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    checker::history::parse_history(std::io::BufReader::new(file))
        .map_err(|e| format!("{} is not a valid history: {e}", path.display()))
}

/// Judges `history` (a history.jsonl) with the dumps of `finals` (a final/ directory;
/// `None` or a missing directory means no dumps, and log agreement is skipped). An
/// unreadable dump makes log agreement `unknown`, on every path. A messages.jsonl
/// beside the history that carries messages adds the `protocol` check.
pub fn judge_files(history: &Path, finals: Option<&Path>, options: &Options) -> Judged {
    judge(history, None, finals, options)
}

/// The final dumps a run hands over as it wrote them to its final/ directory, in the
/// files' order; one that would not read is why, as reading final/ would say it
/// (`<path>: <why>`).
pub type BuiltFinals = Vec<Result<checker::FinalDump, String>>;

/// [`judge_files`] of a run that built its history from the events as it wrote them
/// to `history` (what reading the file back gives: the simulation's recorder makes it
/// with the parser's own fold), so the file is not read again; and, when given, the
/// final dumps as it wrote them to `finals` ([`BuiltFinals`]), so they are not
/// either.
pub fn judge_built(
    history: &Path,
    built: Result<History, String>,
    finals: Option<&Path>,
    built_finals: Option<BuiltFinals>,
    options: &Options,
) -> Judged {
    judge(history, Some((built, built_finals)), finals, options)
}

fn judge(
    history: &Path,
    built: Option<(Result<History, String>, Option<BuiltFinals>)>,
    finals: Option<&Path>,
    options: &Options,
) -> Judged {
    let started = Instant::now();
    let history_path = history;
    // How the dumps are folded in: a history that must be read is read while the
    // dumps are folded on a second thread; a built one is checked at once, the
    // dumps folded beside the checks (checker::check_folding).
    let (history, fold): (_, Box<dyn FnOnce() -> checker::Folded + Send>) = match built {
        Some((history, Some(dumps))) => (history, Box::new(move || checker::fold_finals(dumps))),
        Some((history, None)) => (history, Box::new(move || checker::fold_finals_dir(finals))),
        None => std::thread::scope(|s| {
            let folding = s.spawn(|| checker::fold_finals_dir(finals));
            let history = read_history(history);
            let folded = folding
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (history, Box::new(move || folded) as Box<_>)
        }),
    };
    // The run's plan beside the history, read once for every use below.
    let plan = history_path
        .parent()
        .and_then(|d| crate::Plan::read(d).ok());
    // Transactions are judged against the model the run asked for.
    let mut options = options.clone();
    if options.consistency_model.is_none() {
        options.consistency_model = plan.as_ref().and_then(|p| p.consistency_model);
    }
    let options = &options;
    let mut checked = history
        .as_ref()
        .ok()
        .map(|h| checker::check_folding(h, fold, options));
    // The protocol's rules (docs/protocol.md): over the nodes' journals beside the
    // history when the nodes kept them (every rule), else over a message trace that
    // carries messages (the rules the wire shows).
    let mut coverage = None;
    if let (Some(result), Some(dir), Ok(h)) = (checked.as_mut(), history_path.parent(), &history) {
        let other_core = plan.as_ref().filter(|p| p.core.unjudged_rules().is_some());
        let report = match other_core {
            // The bundled node's rules do not apply to another core; its own are
            // judged on every step where every step is seen (chaos sim).
            Some(p) => Some(not_judged(p)),
            None => match journal_rules(dir, plan.as_ref()) {
                Some((report, reached)) => {
                    coverage = reached;
                    Some(report)
                }
                None => wire_rules(
                    &dir.join("messages.jsonl"),
                    &crate::faults::restarts(&h.nemesis),
                ),
            },
        }
        .or_else(|| plan.as_ref().map(not_judged));
        if let Some(report) = report {
            result.put(report);
        }
    }
    if let (Some(result), Some(plan)) = (checked.as_mut(), &plan) {
        unpromised(result, plan);
    }
    let faults = history
        .as_ref()
        .map(|h| FaultSummary::of(&h.nemesis, h.end_ns))
        .unwrap_or_default();
    let notes = history
        .as_ref()
        .ok()
        .and_then(|h| h.torn_last_line)
        .map(|line| {
            format!(
                "{}: its last line (line {line}) was cut short mid-write and was skipped",
                history_path.display()
            )
        })
        .into_iter()
        .collect();
    Judged {
        history,
        checked,
        faults,
        coverage,
        secs: started.elapsed().as_secs_f64(),
        notes,
    }
}

/// A run of a system that promises less than linearizability (its system file says
/// so, docs/systems.md): the `linearizability` check does not apply, and says so with
/// what it found.
fn unpromised(result: &mut checker::CheckResult, plan: &crate::Plan) {
    use crate::system_file::Promise;
    let Some(d) = &plan.declared else {
        return;
    };
    if d.file.promises == Promise::Linearizable {
        return;
    }
    let Some(found) = result.checks.iter().find(|c| c.name == "linearizability") else {
        return;
    };
    let summary = format!(
        "not judged: {} promises less than linearizability (its system file says not-linearizable); the history alone shows {}",
        d.file.name, found.summary
    );
    result.put(checker::CheckReport {
        name: "linearizability".into(),
        verdict: checker::Verdict::Skipped,
        summary,
        anomalies: Vec::new(),
        unknown: Vec::new(),
    });
}

/// The nodes' journals of a run directory (nodes/nI/journal.jsonl), by node id.
pub fn journals(dir: &Path) -> Vec<(u64, std::path::PathBuf)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join("nodes")) else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let id = name
            .to_str()
            .and_then(|n| n.strip_prefix('n')?.parse::<u64>().ok());
        let path = entry.path().join("journal.jsonl");
        if let (Some(id), true) = (id, path.is_file()) {
            found.push((id, path));
        }
    }
    found.sort();
    found
}

/// Every protocol rule over the nodes' journals, if the run has any with events; an
/// unreadable journal is a check that cannot decide. The cluster's size is the
/// plan's, or else the highest node id that kept a journal.
fn journal_rules(
    dir: &Path,
    plan: Option<&crate::Plan>,
) -> Option<(checker::CheckReport, Option<checker::protocol::Coverage>)> {
    let journals = journals(dir);
    let n = plan
        .map(|plan| plan.nodes)
        .or_else(|| journals.last().map(|(id, _)| *id as usize))?;
    let mut readers = Vec::new();
    for (id, path) in &journals {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => return Some((unreadable(format!("{}: {e}", path.display())), None)),
        };
        readers.push((
            format!("nodes/n{id}/journal.jsonl"),
            std::io::BufReader::with_capacity(1 << 20, file),
        ));
    }
    match checker::protocol::check_journals(readers, n) {
        Ok(Some((report, reached))) => Some((report, Some(reached))),
        Ok(None) => None,
        Err(e) => Some((unreadable(e.to_string()), None)),
    }
}

/// A run directory whose nodes left nothing the rules can read: the check is there,
/// skipped, with the reason. (A history judged on its own is no run: nothing is said.)
fn not_judged(plan: &crate::Plan) -> checker::CheckReport {
    let why = if let Some(why) = plan.core.unjudged_rules() {
        why
    } else if !plan.trace_messages {
        "the run kept no message trace (--no-trace-messages, or a plan from before the trace was on by default)"
    } else if let Some(why) = plan.system.unjudged_rules() {
        why
    } else if plan.node_bin.is_some() {
        "the nodes kept no journal and the wire trace carries no messages (only the bundled node journals its steps)"
    } else {
        "the nodes left no journal and the wire trace carries no messages"
    };
    checker::CheckReport {
        name: "protocol".into(),
        verdict: checker::Verdict::Skipped,
        summary: format!("the protocol's rules were not checked: {why}"),
        anomalies: Vec::new(),
        unknown: Vec::new(),
    }
}

fn unreadable(why: String) -> checker::CheckReport {
    checker::CheckReport {
        name: "protocol".into(),
        verdict: checker::Verdict::Unknown,
        summary: "a node's journal is unreadable".into(),
        anomalies: Vec::new(),
        unknown: vec![why],
    }
}

/// The protocol's rules over a real run's message trace, if it has one that carries
/// messages; an unreadable trace is a check that cannot decide.
fn wire_rules(
    path: &Path,
    restarts: &[(u64, checker::protocol::NodeId)],
) -> Option<checker::CheckReport> {
    let file = std::fs::File::open(path).ok()?;
    match checker::protocol::check_wire(std::io::BufReader::new(file), restarts) {
        Ok(report) => report,
        Err(e) => Some(checker::CheckReport {
            name: "protocol".into(),
            verdict: checker::Verdict::Unknown,
            summary: "the message trace is unreadable".into(),
            anomalies: Vec::new(),
            unknown: vec![e.to_string()],
        }),
    }
}

/// [`judge_files`] on a run directory: its history.jsonl and final/.
pub fn judge_run_dir(dir: &Path, options: &Options) -> Judged {
    judge_files(
        &dir.join("history.jsonl"),
        Some(&dir.join("final")),
        options,
    )
}

/// [`judge_run_dir`] with the history the run built as it wrote it, and the final
/// dumps too when given ([`judge_built`]).
pub fn judge_run_dir_built(
    dir: &Path,
    built: Result<History, String>,
    built_finals: Option<BuiltFinals>,
    options: &Options,
) -> Judged {
    judge_built(
        &dir.join("history.jsonl"),
        built,
        Some(&dir.join("final")),
        built_finals,
        options,
    )
}
