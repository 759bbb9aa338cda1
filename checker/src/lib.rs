//! The checker: judges a recorded history (and the nodes' final dumps) for the safety
//! properties of the Paxos cluster, and explains every anomaly it finds.
//!
//! Pure and synchronous: no tokio, no processes, no files except through the parse
//! entry points ([`history::parse_history`], [`finals::read_finals`]). It reports every
//! anomaly it finds, never only the first. A check that cannot decide says `unknown`,
//! never `valid`.
//!
//! Checks: register agreement and validity (Basic Paxos, [`register`]), linearizability
//! of the KV store per key ([`linear`]), log agreement from the final dumps
//! ([`logcheck`]). [`brute`] is a slow reference checker for tests.

pub mod brute;
pub mod finals;
pub mod history;
pub mod linear;
pub mod logcheck;
pub mod model;
pub mod protocol;
pub mod raft;
pub mod register;
pub mod report;
pub mod stats;
pub mod synth;
pub mod txn;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

pub use finals::FinalDump;
pub use history::{History, Op};
pub use report::{Anomaly, AnomalyKind, CheckReport, CheckResult, OpRef, Verdict};

use history::F;
use linear::{Budget, KeyResult};
use report::LinearizabilityWitness;

/// Limits of a check.
#[derive(Clone, Debug)]
pub struct Options {
    /// Wall-clock limit of the linearizability search over all keys.
    pub time_limit: Option<Duration>,
    /// Most memoised states per key.
    pub max_states: usize,
    /// What transactions are judged against (docs/transactions.md); `None`: the
    /// run's plan's model, else strict serializability.
    pub consistency_model: Option<txn::Model>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time_limit: Some(Duration::from_secs(60)),
            max_states: Budget::default().max_states,
            consistency_model: None,
        }
    }
}

/// Runs every check.
pub fn check(history: &History, finals: &[FinalDump], options: &Options) -> CheckResult {
    check_streaming(
        history,
        finals.iter().cloned().map(Ok::<_, String>),
        options,
    )
}

/// The final dumps of `dir` (`n<i>.json`, read one at a time) folded in
/// ([`fold_finals`]); `None`, or a directory that does not exist, means no dumps.
/// Needs no history: a judge reads the history meanwhile. With [`check_folded`],
/// the one judging path of a run directory (`results::judge_files`): `chaos run`,
/// `chaos check` and `chaos report` all come here, so they agree on every input.
pub fn fold_finals_dir(dir: Option<&Path>) -> Folded {
    match dir.filter(|d| d.exists()) {
        None => fold_finals(std::iter::empty::<Result<_, String>>()),
        // Each dump is parsed on a thread of its own while the one before is folded
        // in, in the files' order; the parser hands over only when the fold takes,
        // so memory holds at most two dumps.
        Some(d) => match finals::finals_in(d) {
            Ok(dumps) => std::thread::scope(|s| {
                let (parsed, to_fold) = std::sync::mpsc::sync_channel(0);
                s.spawn(move || {
                    for dump in dumps {
                        if parsed.send(dump).is_err() {
                            break;
                        }
                    }
                });
                fold_finals(to_fold)
            }),
            Err(e) => fold_finals(std::iter::once(Err(e))),
        },
    }
}

/// What the final dumps contribute before the history is looked at: log agreement's
/// state, the registers, and the dumps that could not be read.
pub struct Folded {
    log: logcheck::LogAgreement,
    registers: Vec<FinalDump>,
    unreadable: Vec<String>,
}

impl Folded {
    /// Log agreement's state, the registers' dumps, and why any dump was unreadable.
    fn into_parts(self) -> (logcheck::LogAgreement, Vec<FinalDump>, Vec<String>) {
        (self.log, self.registers, self.unreadable)
    }
}

/// Takes the final dumps one at a time (each is dropped once it is folded in), so
/// that memory holds one dump, not every dump.
pub fn fold_finals<E: std::fmt::Display>(
    finals: impl IntoIterator<Item = Result<FinalDump, E>>,
) -> Folded {
    let mut log = logcheck::LogAgreement::new();
    // Registers are small: keep them, without the logs.
    let mut registers = Vec::new();
    let mut unreadable = Vec::new();
    for dump in finals {
        match dump {
            Ok(dump) => {
                log.add(&dump);
                if !dump.learned {
                    registers.push(dump.without_log());
                }
            }
            Err(e) => unreadable.push(format!("a final dump is unreadable: {e}")),
        }
    }
    Folded {
        log,
        registers,
        unreadable,
    }
}

/// Runs every check, taking the final dumps one at a time (each is dropped once it is
/// folded in), so that memory holds the history plus one dump, not every dump. A dump
/// that cannot be read makes log agreement `unknown` (naming the dump and why): what
/// it held is not known, so the check cannot say valid.
pub fn check_streaming<E: std::fmt::Display>(
    history: &History,
    finals: impl IntoIterator<Item = Result<FinalDump, E>>,
    options: &Options,
) -> CheckResult {
    check_folded(history, fold_finals(finals), options)
}

/// Runs every check over `history`, with the final dumps already folded in.
pub fn check_folded(history: &History, folded: Folded, options: &Options) -> CheckResult {
    check_folding(history, move || folded, options)
}

/// Runs every check over `history`, folding the final dumps in with `fold` first.
/// A history of at most BESIDE_MAX_OPS ops is small enough to judge everything at
/// once: the fold and log agreement run on a second thread beside the
/// linearizability search, and the registers are checked as soon as the fold has
/// them. A larger one is judged one check after another, log agreement finished
/// (and its per-slot state freed) before the linearizability search allocates its
/// memo, so the two never peak together.
pub fn check_folding(
    history: &History,
    fold: impl FnOnce() -> Folded + Send,
    options: &Options,
) -> CheckResult {
    let (registers, linearizability, log, unreadable) = if history.ops.len() > BESIDE_MAX_OPS {
        let (log, registers, unreadable) = fold().into_parts();
        let log = log.finish(history);
        let registers = register::check(history, &registers);
        (
            registers,
            linearizability(history, options),
            log,
            unreadable,
        )
    } else {
        std::thread::scope(|s| {
            let (give, registers) = std::sync::mpsc::sync_channel(1);
            let logging = s.spawn(move || {
                let (log, registers, unreadable) = fold().into_parts();
                let _ = give.send(registers);
                (log.finish(history), unreadable)
            });
            let linearizability = linearizability(history, options);
            let join = |logging: std::thread::ScopedJoinHandle<'_, _>| {
                logging
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            };
            // Nothing comes when the fold panicked: joining shows its panic.
            let Ok(registers) = registers.recv() else {
                join(logging);
                unreachable!("a fold that gives no registers has panicked");
            };
            let registers = register::check(history, &registers);
            let (log, unreadable) = join(logging);
            (registers, linearizability, log, unreadable)
        })
    };
    combine(
        history,
        registers,
        linearizability,
        log,
        unreadable,
        options,
    )
}

/// Every check's report, with what the unreadable dumps mean for log agreement.
fn combine(
    history: &History,
    (agreement, validity): (CheckReport, CheckReport),
    linearizability: CheckReport,
    mut log: CheckReport,
    unreadable: Vec<String>,
    options: &Options,
) -> CheckResult {
    if !unreadable.is_empty() {
        if log.verdict != Verdict::Invalid {
            log.verdict = Verdict::Unknown;
        }
        log.unknown.extend(unreadable);
    }
    let mut checks = vec![agreement, validity, linearizability, log];
    if !history.txns.is_empty() {
        checks.push(isolation(history, options));
    }
    CheckResult {
        verdict: Verdict::combine(checks.iter().map(|c| c.verdict)),
        checks,
        stats: stats::Stats::of(history),
    }
}

/// The most ops of a history whose log agreement and linearizability are judged at
/// once ([`check_folding`]).
const BESIDE_MAX_OPS: usize = 100_000;

/// Linearizability of every KV key, independently (P-compositionality: a history is
/// linearizable iff each key's sub-history is).
pub fn linearizability(history: &History, options: &Options) -> CheckReport {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
        if op.f() != F::Propose {
            by_key.entry(&op.key).or_default().push(op);
        }
    }
    let budget = Budget {
        deadline: options.time_limit.map(|t| Instant::now() + t),
        max_states: options.max_states,
    };
    let mut anomalies = Vec::new();
    let mut unknown = Vec::new();
    let mut ok_ops = 0usize;
    for (key, ops) in &by_key {
        ok_ops += ops
            .iter()
            .filter(|o| o.outcome == history::Outcome::Ok)
            .count();
        match linear::check_key(ops, &budget) {
            KeyResult::Linearizable => {}
            KeyResult::Unknown(why) => unknown.push(format!("key {key}: {why}")),
            KeyResult::NotLinearizable {
                prefix,
                blocked,
                value,
            } => {
                let blocked_op = ops[blocked];
                let witness = LinearizabilityWitness {
                    prefix: prefix.iter().map(|&i| OpRef::of(ops[i])).collect(),
                    blocked: OpRef::of(blocked_op),
                    value,
                };
                let value_text = value.map_or("absent".to_string(), |v| v.to_string());
                anomalies.push(Anomaly {
                    kind: AnomalyKind::NonLinearizable,
                    key: Some(key.to_string()),
                    slot: None,
                    message: format!(
                        "key {key}: no order of its {} ops explains the results. After the longest explainable prefix ({} ops) the value is {value_text}, and {} by process {} (index {}) cannot take effect there: {}",
                        ops.len(),
                        witness.prefix.len(),
                        name_op(blocked_op),
                        witness.blocked.process,
                        witness.blocked.index,
                        why_blocked(blocked_op, value)
                    ),
                    ops: vec![witness.blocked.clone()],
                    witness: Some(witness),
                    messages: Vec::new(),
                    cycle: Vec::new(),
                });
            }
        }
    }
    let verdict = if !anomalies.is_empty() {
        Verdict::Invalid
    } else if !unknown.is_empty() {
        Verdict::Unknown
    } else if history.ops.is_empty() && history.txns.is_empty() {
        unknown.push("the history holds no client op: nothing to check".into());
        Verdict::Unknown
    } else if by_key.is_empty() {
        Verdict::Skipped
    } else if ok_ops == 0 {
        unknown.push("no KV op completed ok: nothing to check".into());
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    CheckReport {
        name: "linearizability".into(),
        verdict,
        summary: format!(
            "{}, {} KV ops ({ok_ops} ok); {} non-linearizable, {} unknown",
            report::count(by_key.len(), "key"),
            by_key.values().map(Vec::len).sum::<usize>(),
            anomalies.len(),
            unknown.len()
        ),
        anomalies,
        unknown,
    }
}

/// The transactions' isolation under `options.consistency_model`: an `isolation`
/// anomaly for each anomaly found that the model forbids; those it allows are
/// counted in the summary.
pub fn isolation(history: &History, options: &Options) -> CheckReport {
    let model = options
        .consistency_model
        .unwrap_or(txn::Model::StrictSerializable);
    let report = txn::check(
        &history.txns,
        &txn::TxnOptions {
            model,
            time_limit: options.time_limit,
            ..txn::TxnOptions::default()
        },
    );
    let ok = (0..history.txns.len() as u32)
        .filter(|t| history.txns.status(*t) == txn::Status::Ok)
        .count();
    let mut anomalies = Vec::new();
    let mut allowed: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &report.anomalies {
        if !model.forbids(a.kind) {
            *allowed.entry(a.kind.as_str()).or_default() += 1;
            continue;
        }
        anomalies.push(Anomaly {
            kind: AnomalyKind::Isolation,
            key: None,
            slot: None,
            message: a.message.clone(),
            // The transactions as witnesses, so a report finds them on its timeline.
            ops: a
                .txns
                .iter()
                .map(|t| OpRef::of_txn(&history.txns, *t))
                .collect(),
            witness: None,
            messages: Vec::new(),
            cycle: a.cycle.clone(),
        });
    }
    let mut unknown: Vec<String> = report.unknown.iter().cloned().collect();
    let verdict = match report.verdict {
        Verdict::Valid if ok == 0 => {
            unknown.push("no transaction completed ok: nothing to check".into());
            Verdict::Unknown
        }
        v => v,
    };
    let forbidden: Vec<&str> = report.forbidden.iter().map(|k| k.as_str()).collect();
    let mut summary = format!(
        "{} ({ok} ok) under {model}; {}",
        report::count(report.txns, "transaction"),
        if forbidden.is_empty() {
            "no anomaly it forbids".to_string()
        } else {
            format!("forbidden: {}", forbidden.join(", "))
        }
    );
    if !allowed.is_empty() {
        let list: Vec<String> = allowed.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        summary.push_str(&format!("; allowed by it: {}", list.join(", ")));
    }
    summary.push_str(&format!(
        "; {} dependency edges, {} cycles' components",
        report.edges, report.components
    ));
    for note in &report.not_inferred {
        summary.push_str(&format!("; {note}"));
    }
    CheckReport {
        name: "isolation".into(),
        verdict,
        summary,
        anomalies,
        unknown,
    }
}

/// An op as a sentence names it: a read by what it returned ("the read that returned
/// 3"), a write by its value, a cas by its values.
fn name_op(op: &Op) -> String {
    use history::Call;
    let shown = |v: Option<i64>| v.map_or("absent".to_string(), |v| v.to_string());
    match (op.call, op.result) {
        (Call::Read, Some(r)) => format!("the read that returned {}", shown(r)),
        (Call::Read, None) => "a read".into(),
        (Call::Write { value }, _) => format!("write {value}"),
        (Call::Cas { from, to }, _) => format!("cas {from} -> {to}"),
        (Call::Propose { value }, _) => format!("propose {value}"),
    }
}

fn why_blocked(op: &Op, value: Option<i64>) -> String {
    use history::Call;
    let shown = value.map_or("absent".to_string(), |v| v.to_string());
    match (op.call, op.result) {
        (Call::Read, Some(_)) => format!("the value there is {shown}"),
        (Call::Cas { from, .. }, _) => {
            format!("it succeeded, which needs the value {from}, but the value is {shown}")
        }
        _ => "every order that places it here breaks a later op".into(),
    }
}
