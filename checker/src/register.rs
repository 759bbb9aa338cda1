//! Checks of the Basic Paxos registers, per register key (docs/history.md: `propose`).
//!
//! - Agreement: every ok propose reply and every node's learned value (final dumps)
//!   name the same value.
//! - Validity: that value was proposed for that key by an op invoked before the
//!   decision was first reported (an `info` propose counts as proposed; a `fail` one
//!   certainly did not happen and does not).
//! - "Sometimes": how many keys were decided. A history with propose ops and no
//!   decided key is `unknown`: the run did not exercise consensus.

use paxos_trace::NodeId;
use std::collections::BTreeMap;

use crate::finals::FinalDump;
use crate::history::{Call, History, Op, Outcome};
use crate::report::{Anomaly, AnomalyKind, CheckReport, OpRef, Verdict};

pub fn check(history: &History, finals: &[FinalDump]) -> (CheckReport, CheckReport) {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
        if let Call::Propose { .. } = op.call {
            by_key.entry(&op.key).or_default().push(op);
        }
    }
    let mut learned: BTreeMap<&str, Vec<(NodeId, i64)>> = BTreeMap::new();
    for dump in finals {
        for (key, value) in &dump.registers {
            learned.entry(key).or_default().push((dump.node, *value));
        }
    }
    let keys: Vec<&str> = {
        let mut k: Vec<&str> = by_key.keys().chain(learned.keys()).copied().collect();
        k.sort_unstable();
        k.dedup();
        k
    };

    let mut agreement = Vec::new();
    let mut validity = Vec::new();
    let mut decided = 0usize;
    for key in keys {
        let ops = by_key.get(key).map(Vec::as_slice).unwrap_or(&[]);
        // Every report of a decision: value -> (ok ops, nodes).
        let mut reports: BTreeMap<i64, (Vec<&Op>, Vec<NodeId>)> = BTreeMap::new();
        for op in ops {
            if let (Outcome::Ok, Some(Some(v))) = (op.outcome, op.result) {
                reports.entry(v).or_default().0.push(op);
            }
        }
        for (node, v) in learned.get(key).map(Vec::as_slice).unwrap_or(&[]) {
            reports.entry(*v).or_default().1.push(*node);
        }
        if reports.is_empty() {
            continue;
        }
        decided += 1;
        if reports.len() > 1 {
            agreement.push(disagreement(key, &reports));
        }
        validity.extend(invalid_values(key, ops, &reports, history.end_ns));
    }

    let proposes = by_key.values().map(Vec::len).sum::<usize>();
    let exercised = |anomalies: &Vec<Anomaly>| {
        if !anomalies.is_empty() {
            Verdict::Invalid
        } else if proposes == 0 && decided == 0 {
            Verdict::Skipped
        } else if decided == 0 {
            Verdict::Unknown
        } else {
            Verdict::Valid
        }
    };
    let scope = if proposes == 0 && decided == 0 {
        "no propose ops in this history".to_string()
    } else {
        format!(
            "{decided} of {} register keys decided ({proposes} propose ops, {})",
            by_key.len().max(decided),
            crate::report::count(finals.len(), "node dump")
        )
    };
    let unknown = |v: Verdict| {
        if v == Verdict::Unknown {
            vec!["no register was decided: consensus was not exercised".to_string()]
        } else {
            Vec::new()
        }
    };
    let av = exercised(&agreement);
    let vv = exercised(&validity);
    (
        CheckReport {
            name: "register-agreement".into(),
            verdict: av,
            summary: format!("{scope}; {} disagreements", agreement.len()),
            anomalies: agreement,
            unknown: unknown(av),
        },
        CheckReport {
            name: "register-validity".into(),
            verdict: vv,
            summary: format!("{scope}; {} invalid values", validity.len()),
            anomalies: validity,
            unknown: unknown(vv),
        },
    )
}

/// Every value a register was decided to that no op proposed before it was first
/// reported.
fn invalid_values(
    key: &str,
    ops: &[&Op],
    reports: &BTreeMap<i64, (Vec<&Op>, Vec<NodeId>)>,
    end_ns: u64,
) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for (value, (reporters, _)) in reports {
        let first_report_ns = reporters
            .iter()
            .filter_map(|o| o.complete_ns)
            .min()
            .unwrap_or(end_ns);
        let proposers: Vec<&&Op> = ops
            .iter()
            .filter(|o| o.call == Call::Propose { value: *value } && o.outcome != Outcome::Fail)
            .collect();
        if proposers.iter().any(|o| o.invoke_ns <= first_report_ns) {
            continue;
        }
        let why = if proposers.is_empty() {
            "no op proposed it".to_string()
        } else {
            format!(
                "it was first reported at {:.3} ms, before any op proposing it was invoked",
                first_report_ns as f64 / 1e6
            )
        };
        let mut witnesses: Vec<OpRef> = reporters.iter().take(1).map(|o| OpRef::of(o)).collect();
        witnesses.extend(proposers.iter().take(1).map(|o| OpRef::of(o)));
        out.push(Anomaly {
            kind: AnomalyKind::Validity,
            key: Some(key.to_string()),
            slot: None,
            message: format!("register {key}: value {value} was chosen but {why}"),
            ops: witnesses,
            witness: None,
            messages: Vec::new(),
            cycle: Vec::new(),
        });
    }
    out
}

/// The agreement anomaly of a register decided to more than one value.
fn disagreement(key: &str, reports: &BTreeMap<i64, (Vec<&Op>, Vec<NodeId>)>) -> Anomaly {
    let parts: Vec<String> = reports
        .iter()
        .map(|(v, (ops, nodes))| {
            format!(
                "{v} ({} replies{})",
                ops.len(),
                if nodes.is_empty() {
                    String::new()
                } else {
                    format!(", learned by nodes {nodes:?}")
                }
            )
        })
        .collect();
    Anomaly {
        kind: AnomalyKind::Agreement,
        key: Some(key.to_string()),
        slot: None,
        message: format!(
            "register {key}: {} different values chosen: {}",
            reports.len(),
            parts.join(", ")
        ),
        // The first reply reporting each value.
        ops: reports
            .values()
            .filter_map(|(ops, _)| ops.first().map(|o| OpRef::of(o)))
            .collect(),
        witness: None,
        messages: Vec::new(),
        cycle: Vec::new(),
    }
}
