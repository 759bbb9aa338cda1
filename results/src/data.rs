//! What the report draws, computed once from the run's files: timeline lanes, the ops
//! of the anomalies, the window around the first anomaly, and the message trace in
//! that window.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;

use checker::history::{History, Op, Outcome};
use serde::Deserialize;

use crate::schema::RunResult;

/// Ops on one lane never overlap: a process has one op in flight, and a lane is reused
/// only after its previous process retired. Lanes recover the client slots from the
/// process numbers (a process that got `info` is replaced by a new number).
pub fn assign_lanes(history: &History) -> (Vec<u32>, Vec<Vec<u64>>) {
    let end = history.end_ns;
    // Process -> (first invoke, last completion).
    let mut spans: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for op in &history.ops {
        let done = op.complete_ns.unwrap_or(end).max(op.invoke_ns);
        spans
            .entry(op.process)
            .and_modify(|s| s.1 = s.1.max(done))
            .or_insert((op.invoke_ns, done));
    }
    let mut by_start: Vec<(u64, u64, u64)> = spans.iter().map(|(p, (a, b))| (*a, *b, *p)).collect();
    by_start.sort_unstable();
    // Lane -> time it is free again; lane -> processes on it.
    let mut free_at: Vec<u64> = Vec::new();
    let mut lane_procs: Vec<Vec<u64>> = Vec::new();
    let mut lane_of: BTreeMap<u64, u32> = BTreeMap::new();
    for (start, done, p) in by_start {
        let lane = match free_at.iter().position(|f| *f < start) {
            Some(l) => l,
            None => {
                free_at.push(0);
                lane_procs.push(Vec::new());
                free_at.len() - 1
            }
        };
        free_at[lane] = done;
        lane_procs[lane].push(p);
        lane_of.insert(p, lane as u32);
    }
    let lanes = history.ops.iter().map(|op| lane_of[&op.process]).collect();
    (lanes, lane_procs)
}

/// History indexes of every op named by an anomaly (its ops and its witness).
pub fn anomaly_ops(r: &RunResult) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    for (_, a) in r.anomalies() {
        out.extend(a.ops.iter().map(|o| o.index));
        if let Some(w) = &a.witness {
            out.insert(w.blocked.index);
        }
    }
    out
}

/// The ops of the first anomaly (its witness's blocked op included).
pub fn first_anomaly_ops(r: &RunResult) -> Vec<checker::OpRef> {
    r.anomalies()
        .next()
        .map(|(_, a)| {
            let mut ops = a.ops.clone();
            if let Some(w) = &a.witness {
                ops.push(w.blocked.clone());
            }
            ops
        })
        .unwrap_or_default()
}

/// The time window (ns) a close-up should show: around the first anomaly's ops, or
/// the start of the run when there is none.
pub fn focus_window(r: &RunResult, history: &History) -> (u64, u64) {
    let ops = first_anomaly_ops(r);
    let end_of = |o: &checker::OpRef| o.complete_ns.unwrap_or(history.end_ns);
    if let (Some(a), Some(b)) = (
        ops.iter().map(|o| o.invoke_ns).min(),
        ops.iter().map(end_of).max(),
    ) {
        let margin = ((b - a) / 4).max(2_000_000);
        return (
            a.saturating_sub(margin),
            (b + margin).min(history.end_ns.max(b)),
        );
    }
    let start = history.ops.first().map_or(0, |o| o.invoke_ns);
    (start, (start + 200_000_000).min(history.end_ns.max(start)))
}

/// Ops overlapping a window, at most `cap`, preferring those nearest its middle.
pub fn ops_in_window(history: &History, (a, b): (u64, u64), cap: usize) -> Vec<&Op> {
    let end = history.end_ns;
    let mut ops: Vec<&Op> = history
        .ops
        .iter()
        .filter(|o| o.invoke_ns <= b && o.complete_ns.unwrap_or(end) >= a)
        .collect();
    if ops.len() > cap {
        let mid = a / 2 + b / 2;
        ops.sort_by_key(|o| (o.invoke_ns.abs_diff(mid), o.index));
        ops.truncate(cap);
        ops.sort_by_key(|o| o.index);
    }
    ops
}

pub fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
    }
}

/// One line of messages.jsonl.
#[derive(Clone, Debug, Deserialize)]
pub struct TracedMessage {
    pub time_ns: u64,
    pub from: u32,
    pub to: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub fate: String,
    #[serde(default)]
    pub delay_ms: Vec<f64>,
}

/// Up to `cap` traced messages sent at or after `from_ns` (the first anomaly's
/// window), read in one pass; lines that do not parse are skipped.
pub fn trace_window(path: &Path, from_ns: u64, cap: usize) -> Option<Vec<TracedMessage>> {
    let file = std::fs::File::open(path).ok()?;
    let mut out = Vec::new();
    for line in std::io::BufReader::with_capacity(1 << 20, file).lines() {
        let Ok(line) = line else { break };
        let Ok(m) = serde_json::from_str::<TracedMessage>(&line) else {
            continue;
        };
        if m.time_ns < from_ns {
            continue;
        }
        out.push(m);
        if out.len() >= cap {
            break;
        }
    }
    out.sort_by_key(|m| m.time_ns);
    Some(out)
}
