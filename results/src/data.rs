//! What the report draws, computed once from the run's files: timeline lanes, the ops
//! of the anomalies, the window around the first anomaly, and the message trace in
//! that window.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;

use checker::history::{History, Op, Outcome};
use checker::txn::{Status, TxnHistory, TxnId};
use serde::{Deserialize, Serialize};

use crate::schema::RunResult;

/// One bar of the timeline: a single-key op, or a transaction. Its text is made
/// when it is drawn, not held for every bar of a large run.
#[derive(Clone, Copy, Debug)]
pub enum Bar<'a> {
    Op(&'a Op),
    Txn(&'a TxnHistory, TxnId),
}

/// The code of a transaction in the timeline's `f` column, after the single-key
/// ops' (`F` as a number).
pub const TXN_F: u8 = 4;

impl<'a> Bar<'a> {
    pub fn index(&self) -> u64 {
        match *self {
            Bar::Op(o) => o.index,
            Bar::Txn(h, t) => h.index(t).unwrap_or(u64::from(t)),
        }
    }

    pub fn process(&self) -> u64 {
        match *self {
            Bar::Op(o) => o.process,
            Bar::Txn(h, t) => u64::from(h.process(t)),
        }
    }

    pub fn node(&self) -> Option<paxos_trace::NodeId> {
        match *self {
            Bar::Op(o) => o.node,
            Bar::Txn(h, t) => h.node(t),
        }
    }

    pub fn invoke_ns(&self) -> u64 {
        match *self {
            Bar::Op(o) => o.invoke_ns,
            Bar::Txn(h, t) => h.times(t).0,
        }
    }

    pub fn complete_ns(&self) -> Option<u64> {
        match *self {
            Bar::Op(o) => o.complete_ns,
            Bar::Txn(h, t) => h.times(t).1,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match *self {
            Bar::Op(o) => o.outcome,
            Bar::Txn(h, t) => match h.status(t) {
                Status::Ok => Outcome::Ok,
                Status::Fail => Outcome::Fail,
                Status::Info => Outcome::Info,
            },
        }
    }

    /// The `f` column's code: the op's `F`, or [`TXN_F`].
    pub fn f_code(&self) -> u8 {
        match *self {
            Bar::Op(o) => o.f() as u8,
            Bar::Txn(..) => TXN_F,
        }
    }

    /// The bar as a witness names it (every field as text).
    pub fn op_ref(&self) -> checker::OpRef {
        match *self {
            Bar::Op(o) => checker::OpRef::of(o),
            Bar::Txn(h, t) => checker::OpRef::of_txn(h, t),
        }
    }

    /// The error a failed or indeterminate op gave, when the history kept it.
    pub fn error(&self) -> Option<&'a str> {
        match *self {
            Bar::Op(o) => o.error.as_deref(),
            Bar::Txn(..) => None,
        }
    }
}

/// Every op and transaction of the history, in the order of their invoke events.
pub fn bars(history: &History) -> Vec<Bar<'_>> {
    let mut bars: Vec<Bar> = history.ops.iter().map(Bar::Op).collect();
    if !history.txns.is_empty() {
        bars.extend((0..history.txns.len() as TxnId).map(|t| Bar::Txn(&history.txns, t)));
        bars.sort_by_key(|b| b.index());
    }
    bars
}

/// Ops on one lane never overlap: a process has one op in flight, and a lane is reused
/// only after its previous process retired. Lanes recover the client slots from the
/// process numbers (a process that got `info` is replaced by a new number).
pub fn assign_lanes(bars: &[Bar], end: u64) -> (Vec<u32>, Vec<Vec<u64>>) {
    // Process -> (first invoke, last completion).
    let mut spans: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for op in bars {
        let done = op.complete_ns().unwrap_or(end).max(op.invoke_ns());
        spans
            .entry(op.process())
            .and_modify(|s| s.1 = s.1.max(done))
            .or_insert((op.invoke_ns(), done));
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
    let lanes = bars.iter().map(|op| lane_of[&op.process()]).collect();
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

/// A run with at most this many ops (a shrunk one, say) is shown whole: every op
/// is readable on the timeline without zooming.
pub const SMALL_RUN_OPS: usize = 200;

/// The time window (ns) a close-up should show: a small run whole; else around the
/// first anomaly's ops, or the start of the run when there is none.
pub fn focus_window(r: &RunResult, bars: &[Bar], end_ns: u64) -> (u64, u64) {
    let start = bars.iter().map(Bar::invoke_ns).min().unwrap_or(0);
    if bars.len() <= SMALL_RUN_OPS {
        let end = bars
            .iter()
            .map(|o| o.complete_ns().unwrap_or(end_ns))
            .max()
            .unwrap_or(end_ns);
        let margin = ((end - start.min(end)) / 50).max(1_000_000);
        return (start.saturating_sub(margin), end + margin);
    }
    let ops = first_anomaly_ops(r);
    let end_of = |o: &checker::OpRef| o.complete_ns.unwrap_or(end_ns);
    if let (Some(a), Some(b)) = (
        ops.iter().map(|o| o.invoke_ns).min(),
        ops.iter().map(end_of).max(),
    ) {
        let margin = ((b - a) / 4).max(2_000_000);
        return (a.saturating_sub(margin), (b + margin).min(end_ns.max(b)));
    }
    (start, (start + 200_000_000).min(end_ns.max(start)))
}

/// Bars overlapping a window, at most `cap`, preferring those nearest its middle.
pub fn ops_in_window<'a>(
    bars: &[Bar<'a>],
    end: u64,
    (a, b): (u64, u64),
    cap: usize,
) -> Vec<Bar<'a>> {
    let mut ops: Vec<Bar> = bars
        .iter()
        .filter(|o| o.invoke_ns() <= b && o.complete_ns().unwrap_or(end) >= a)
        .copied()
        .collect();
    if ops.len() > cap {
        let mid = a / 2 + b / 2;
        ops.sort_by_key(|o| (o.invoke_ns().abs_diff(mid), o.index()));
        ops.truncate(cap);
        ops.sort_by_key(Bar::index);
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
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
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

/// Which messages the space-time diagram draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFocus {
    /// Those sent from this time on (shortly before the first anomaly's ops, or the
    /// start of the run).
    From(u64),
    /// Those sent around this time, half before and half after (the message that
    /// broke a protocol rule).
    Around(u64),
}

/// Where the diagram looks: around the last witness message of the first anomaly
/// when it is a broken rule, else from shortly before its earliest op, else from the
/// focus window's start.
pub fn trace_focus(r: &RunResult, history: Option<&History>) -> TraceFocus {
    if let Some((_, a)) = r.anomalies().next() {
        if let Some(t) = a.messages.iter().map(|m| m.time_ns).max() {
            return TraceFocus::Around(t);
        }
    }
    let from = first_anomaly_ops(r)
        .iter()
        .map(|o| o.invoke_ns.saturating_sub(1_000_000))
        .min()
        .or_else(|| history.map(|h| focus_window(r, &bars(h), h.end_ns).0))
        .unwrap_or(0);
    TraceFocus::From(from)
}

/// Picks up to `cap` messages for a [`TraceFocus`] from messages offered in time
/// order, holding at most `cap` at any moment.
pub struct TraceSelector {
    focus: TraceFocus,
    cap: usize,
    before: std::collections::VecDeque<TracedMessage>,
    after: Vec<TracedMessage>,
}

impl TraceSelector {
    pub fn new(focus: TraceFocus, cap: usize) -> TraceSelector {
        TraceSelector {
            focus,
            cap,
            before: std::collections::VecDeque::new(),
            after: Vec::new(),
        }
    }

    /// Whether a message sent at `time_ns` could still be kept (false once the
    /// window is full).
    pub fn wants(&self, time_ns: u64) -> bool {
        match self.focus {
            TraceFocus::From(from) => time_ns >= from && self.after.len() < self.cap,
            TraceFocus::Around(_) => self.after.len() < self.cap - self.cap / 2,
        }
    }

    /// Offers the next message in time order.
    pub fn offer(&mut self, m: TracedMessage) {
        if !self.wants(m.time_ns) {
            return;
        }
        match self.focus {
            TraceFocus::Around(at) if m.time_ns < at => {
                if self.before.len() == self.cap / 2 {
                    self.before.pop_front();
                }
                if self.cap / 2 > 0 {
                    self.before.push_back(m);
                }
            }
            _ => self.after.push(m),
        }
    }

    /// Whether nothing more will be kept.
    pub fn full(&self) -> bool {
        !self.wants(u64::MAX)
    }

    pub fn finish(self) -> Vec<TracedMessage> {
        let mut out: Vec<TracedMessage> = self.before.into_iter().chain(self.after).collect();
        out.sort_by_key(|m| m.time_ns);
        out
    }
}

/// The messages of messages.jsonl that `focus` selects, at most `cap`, read in one
/// pass; lines that do not parse are skipped.
pub fn trace_window(path: &Path, focus: TraceFocus, cap: usize) -> Option<Vec<TracedMessage>> {
    let file = std::fs::File::open(path).ok()?;
    let mut selector = TraceSelector::new(focus, cap);
    for line in std::io::BufReader::with_capacity(1 << 20, file).lines() {
        let Ok(line) = line else { break };
        let Ok(m) = serde_json::from_str::<TracedMessage>(&line) else {
            continue;
        };
        selector.offer(m);
        if selector.full() {
            break;
        }
    }
    Some(selector.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time_ns: u64) -> TracedMessage {
        TracedMessage {
            time_ns,
            from: 1,
            to: 2,
            kind: "promise".into(),
            fate: "delivered".into(),
            delay_ms: vec![0.5],
        }
    }

    fn select(focus: TraceFocus, cap: usize) -> Vec<u64> {
        let mut s = TraceSelector::new(focus, cap);
        for t in 0..100 {
            if s.full() {
                break;
            }
            s.offer(at(t * 10));
        }
        s.finish().iter().map(|m| m.time_ns).collect()
    }

    #[test]
    fn a_window_from_a_time_keeps_the_first_messages_from_it() {
        assert_eq!(select(TraceFocus::From(305), 3), vec![310, 320, 330]);
        assert_eq!(select(TraceFocus::From(2_000), 3), Vec::<u64>::new());
    }

    #[test]
    fn a_window_around_a_time_keeps_half_before_and_half_after() {
        assert_eq!(select(TraceFocus::Around(500), 4), vec![480, 490, 500, 510]);
        // Near the start there is less before; near the end, less after.
        assert_eq!(select(TraceFocus::Around(10), 4), vec![0, 10, 20]);
        assert_eq!(select(TraceFocus::Around(985), 5), vec![970, 980, 990]);
    }
}
