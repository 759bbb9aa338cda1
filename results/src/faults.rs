//! Fault periods, reconstructed from the nemesis events of a history.
//!
//! A fault starts with its event and lasts until the event that undoes it: a partition
//! until the next `heal`, link faults until `links-heal`, a kill until a `restart` of
//! that node, a pause until its `resume`, a clock fault until `clock-reset`, a corrupt
//! WAL until the final heal; the final heal ends everything. A fault that
//! was `skipped` never started. A fault still open at the end of the history lasts to
//! the end.

use std::collections::BTreeMap;

use checker::history::NemesisEvent;
use paxos_trace::NodeId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One fault from installation to heal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultPeriod {
    /// `partition`, `links`, `kill`, `pause`.
    pub kind: String,
    pub start_ns: u64,
    pub end_ns: u64,
    /// The nodes it acted on (for a partition: the nodes named by its targets).
    pub nodes: Vec<NodeId>,
    /// Words for a tooltip: the shape of a partition, the rates of link faults.
    pub detail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSummary {
    /// Nemesis events per fault name (`partition`, `heal`, `kill`, ...), final heal
    /// included.
    pub counts: BTreeMap<String, u64>,
    /// Events that did not take effect (`skipped`) or whose effect is not known
    /// (`indeterminate`, `partially-installed`), per outcome.
    #[serde(default)]
    pub not_installed: BTreeMap<String, u64>,
    /// How many faults took effect ([`FaultSummary::faults`]): 0 says the run had no
    /// chaos, whatever its nemesis was.
    #[serde(default)]
    pub ran: usize,
    /// Time with at least one fault in force, in ms.
    pub total_ms: f64,
    /// Time in force per fault kind, in ms (overlaps counted once per kind).
    #[serde(default)]
    pub ms_per_kind: BTreeMap<String, f64>,
    /// Every period, in start order.
    #[serde(default)]
    pub periods: Vec<FaultPeriod>,
    /// What the nodes did wrong that the harness saw (Maelstrom nodes: lines that are
    /// not messages, messages to nobody, exits outside a fault), per node and kind.
    /// Not faults, but recorded by the same process (`node-misbehaved` events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub misbehaviour: Vec<Misbehaviour>,
}

/// The history event (process `nemesis`, type `info`) that records a node
/// misbehaving: `{"node": ID, "kind": KIND, "detail": TEXT}`, or once at the end of a
/// run `{"node": ID, "kind": KIND, "total": N}` when more happened than were
/// recorded one by one.
pub const MISBEHAVED: &str = "node-misbehaved";

/// At most this many `node-misbehaved` events per node and kind; the rest are counted.
pub const MISBEHAVED_EVENTS_MAX: u64 = 10;

/// Ways a node can break its protocol that the harness notices and records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MisbehaviourKind {
    /// A line on stdout that is not a message (not JSON, or no src, dest, body, type).
    Garbage,
    /// A line over the protocol's size limit.
    LineTooLong,
    /// A message to a name that is no node, client or service.
    UnknownDestination,
    /// A reply to a client's request that nobody waits for (never asked, answered
    /// twice, or after the client gave up).
    UnexpectedReply,
    /// The node's process ended (or closed its stdout) when no fault stopped it.
    UnexpectedExit,
}

impl MisbehaviourKind {
    pub fn describe(self) -> &'static str {
        match self {
            MisbehaviourKind::Garbage => "wrote a line that is not a message",
            MisbehaviourKind::LineTooLong => "wrote a line over 1 MiB",
            MisbehaviourKind::UnknownDestination => "sent a message to an unknown destination",
            MisbehaviourKind::UnexpectedReply => "sent a reply to a request nobody waits for",
            MisbehaviourKind::UnexpectedExit => "exited outside a fault",
        }
    }
}

/// One kind of misbehaviour of one node over a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Misbehaviour {
    pub node: NodeId,
    pub kind: MisbehaviourKind,
    /// How often it happened.
    pub count: u64,
    /// When it first happened.
    pub first_ns: u64,
    /// What the first occurrence was (a prefix of the line, the destination, ...).
    pub example: String,
}

impl Misbehaviour {
    /// One line for a summary or report: "n2 wrote a line that is not a message (3
    /// times, first at 1.20 s): not JSON: ...".
    pub fn describe(&self) -> String {
        let times = if self.count == 1 {
            "once".to_string()
        } else {
            format!("{} times", self.count)
        };
        format!(
            "n{} {} ({times}, first at {:.2} s): {}",
            self.node,
            self.kind.describe(),
            self.first_ns as f64 / 1e9,
            self.example
        )
    }
}

/// The misbehaviour a history records, per (node, kind) in order of first occurrence.
pub fn misbehaviour(events: &[NemesisEvent]) -> Vec<Misbehaviour> {
    let mut out: Vec<Misbehaviour> = Vec::new();
    for e in events.iter().filter(|e| e.f == MISBEHAVED) {
        let (Some(node), Ok(kind)) = (
            e.value["node"]
                .as_u64()
                .and_then(|n| NodeId::try_from(n).ok()),
            serde_json::from_value::<MisbehaviourKind>(e.value["kind"].clone()),
        ) else {
            continue;
        };
        let i = match out.iter().position(|m| (m.node, m.kind) == (node, kind)) {
            Some(i) => i,
            None => {
                out.push(Misbehaviour {
                    node,
                    kind,
                    count: 0,
                    first_ns: e.time_ns,
                    example: e.value["detail"].as_str().unwrap_or("").to_string(),
                });
                out.len() - 1
            }
        };
        let m = &mut out[i];
        match e.value["total"].as_u64() {
            Some(total) => m.count = m.count.max(total),
            None => m.count += 1,
        }
    }
    out
}

/// When each node was started again, from the nemesis events: (time, node), in time
/// order. A restart that skipped a node (it was up) does not count.
pub fn restarts(events: &[NemesisEvent]) -> Vec<(u64, NodeId)> {
    let mut out = Vec::new();
    for e in events {
        let nodes = match e.f.as_str() {
            "restart" => match outcome_name(&e.value).as_str() {
                "installed" => ids(&e.value["targets"]),
                "partially-installed" => ids(&e.value["outcome"]["partially-installed"]["applied"]),
                _ => Vec::new(),
            },
            "heal" => ids(&e.value["restarted"]),
            _ => Vec::new(),
        };
        out.extend(nodes.into_iter().map(|n| (e.time_ns, n)));
    }
    out
}

fn outcome_name(v: &Value) -> String {
    match &v["outcome"] {
        Value::String(s) => s.clone(),
        Value::Object(m) => m.keys().next().cloned().unwrap_or_default(),
        _ => "installed".into(),
    }
}

/// The node ids in a JSON array (what is not one is skipped).
fn ids(v: &Value) -> Vec<NodeId> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64().and_then(|n| NodeId::try_from(n).ok()))
                .collect()
        })
        .unwrap_or_default()
}

fn detail(e: &NemesisEvent) -> String {
    match e.f.as_str() {
        "partition" => {
            let shape = e.value["shape"]["shape"].as_str().unwrap_or("partition");
            let cut = e.value["cut"].as_array().map_or(0, Vec::len);
            format!("{shape}, {cut} directed links cut")
        }
        "links" => format!(
            "loss {} delay {}±{} ms duplicate {} reorder {}",
            e.value["loss"],
            e.value["delay_ms"],
            e.value["jitter_ms"],
            e.value["duplicate"],
            e.value["reorder"]
        ),
        f => f.to_string(),
    }
}

/// One fault as a person counts it: the periods one event opened on several nodes at
/// once (a kill of three nodes; a power failure, every node killed together) are one
/// fault, with all its nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// The kind as shown: `power` for a kill of every node of a cluster of two or
    /// more, else the period's kind.
    pub label: String,
    /// The period's kind, for its colour.
    pub kind: String,
    pub start_ns: u64,
    pub end_ns: u64,
    pub nodes: Vec<NodeId>,
    pub detail: String,
}

impl FaultSummary {
    /// The periods grouped into faults ([`Fault`]), in start order, for a cluster of
    /// `nodes` nodes.
    pub fn grouped(&self, nodes: usize) -> Vec<Fault> {
        let mut out: Vec<Fault> = Vec::new();
        for p in &self.periods {
            let per_node = !matches!(p.kind.as_str(), "partition" | "links");
            match out.iter_mut().rev().find(|f| {
                per_node && f.kind == p.kind && f.start_ns == p.start_ns && f.end_ns == p.end_ns
            }) {
                Some(f) => f.nodes.extend(&p.nodes),
                None => out.push(Fault {
                    label: p.kind.clone(),
                    kind: p.kind.clone(),
                    start_ns: p.start_ns,
                    end_ns: p.end_ns,
                    nodes: p.nodes.clone(),
                    detail: p.detail.clone(),
                }),
            }
        }
        for f in &mut out {
            f.nodes.sort_unstable();
            f.nodes.dedup();
            if f.kind == "kill" && nodes >= 2 && f.nodes.len() == nodes {
                f.label = "power".into();
                f.detail = "every node killed at once (a power failure)".into();
            }
        }
        out
    }

    /// How many faults took effect: fault events (a partition, a kill of some nodes,
    /// ...), not the per-node periods they opened. The run header counts the faults a
    /// schedule starts in the same unit.
    pub fn faults(&self) -> usize {
        let mut starts: Vec<(u64, &str)> = self
            .periods
            .iter()
            .map(|p| (p.start_ns, p.kind.as_str()))
            .collect();
        starts.sort_unstable();
        starts.dedup();
        starts.len()
    }

    pub fn of(events: &[NemesisEvent], end_ns: u64) -> FaultSummary {
        let mut s = FaultSummary::default();
        // Open faults: network-wide (partition, links) and per node (kill, pause).
        let mut partition: Option<FaultPeriod> = None;
        let mut links: Option<FaultPeriod> = None;
        let mut per_node: BTreeMap<(NodeId, &'static str), FaultPeriod> = BTreeMap::new();
        let mut periods = Vec::new();
        for e in events.iter().filter(|e| e.f != MISBEHAVED) {
            *s.counts.entry(e.f.clone()).or_default() += 1;
            let outcome = outcome_name(&e.value);
            if outcome != "installed" {
                *s.not_installed.entry(outcome.clone()).or_default() += 1;
            }
            let took_effect = outcome == "installed" || outcome == "partially-installed";
            let targets = ids(&e.value["targets"]);
            let open = |kind: &str, nodes: Vec<NodeId>| FaultPeriod {
                kind: kind.to_string(),
                start_ns: e.time_ns,
                end_ns,
                nodes,
                detail: detail(e),
            };
            let close = |p: Option<FaultPeriod>, periods: &mut Vec<FaultPeriod>| {
                if let Some(mut p) = p {
                    p.end_ns = e.time_ns;
                    periods.push(p);
                }
            };
            let is_final = e.value["final"].as_bool() == Some(true);
            match e.f.as_str() {
                "partition" if took_effect => {
                    close(partition.take(), &mut periods);
                    partition = Some(open("partition", targets));
                }
                "links" if took_effect => {
                    close(links.take(), &mut periods);
                    links = Some(open("links", targets));
                }
                "heal" => {
                    close(partition.take(), &mut periods);
                    if is_final {
                        close(links.take(), &mut periods);
                        for (_, p) in std::mem::take(&mut per_node) {
                            close(Some(p), &mut periods);
                        }
                    }
                }
                "links-heal" => close(links.take(), &mut periods),
                "kill" | "pause" | "clock" | "corrupt" if took_effect => {
                    let kind: &'static str = match e.f.as_str() {
                        "kill" => "kill",
                        "pause" => "pause",
                        "clock" => "clock",
                        _ => "corrupt",
                    };
                    for id in targets {
                        per_node
                            .entry((id, kind))
                            .or_insert_with(|| open(kind, vec![id]));
                    }
                }
                "restart" | "resume" | "clock-reset" => {
                    let kind = match e.f.as_str() {
                        "restart" => "kill",
                        "resume" => "pause",
                        _ => "clock",
                    };
                    for id in targets {
                        close(per_node.remove(&(id, kind)), &mut periods);
                    }
                }
                _ => {}
            }
        }
        periods.extend(partition);
        periods.extend(links);
        periods.extend(per_node.into_values());
        periods
            .sort_by(|a, b| (a.start_ns, &a.kind, &a.nodes).cmp(&(b.start_ns, &b.kind, &b.nodes)));
        s.total_ms = union_ms(periods.iter());
        let kinds: Vec<String> = {
            let mut k: Vec<String> = periods.iter().map(|p| p.kind.clone()).collect();
            k.dedup();
            k.sort();
            k.dedup();
            k
        };
        for k in kinds {
            s.ms_per_kind
                .insert(k.clone(), union_ms(periods.iter().filter(|p| p.kind == k)));
        }
        s.periods = periods;
        s.ran = s.faults();
        s.misbehaviour = misbehaviour(events);
        s
    }
}

/// Length of the union of the periods' intervals, in ms.
fn union_ms<'a>(periods: impl Iterator<Item = &'a FaultPeriod>) -> f64 {
    let mut spans: Vec<(u64, u64)> = periods.map(|p| (p.start_ns, p.end_ns)).collect();
    spans.sort_unstable();
    let mut total = 0u64;
    let mut current: Option<(u64, u64)> = None;
    for (a, b) in spans {
        current = match current {
            Some((s, e)) if a <= e => Some((s, e.max(b))),
            Some((s, e)) => {
                total += e - s;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    total as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(index: u64, ms: u64, f: &str, value: Value) -> NemesisEvent {
        NemesisEvent {
            index,
            time_ns: ms * 1_000_000,
            kind: "info".into(),
            f: f.into(),
            value,
        }
    }

    #[test]
    fn a_kill_of_every_node_is_one_power_fault_and_clocks_have_periods() {
        let installed = |targets: Value| json!({"targets": targets, "outcome": "installed"});
        let events = vec![
            ev(1, 100, "kill", installed(json!([1, 2, 3, 4, 5]))),
            ev(2, 300, "restart", installed(json!([1, 2, 3, 4, 5]))),
            ev(3, 400, "kill", installed(json!([2, 3]))),
            ev(4, 500, "restart", installed(json!([2, 3]))),
            ev(5, 600, "clock", installed(json!([4]))),
            ev(6, 800, "clock-reset", installed(json!([4]))),
        ];
        let s = FaultSummary::of(&events, 1_000_000_000);
        assert_eq!(s.periods.len(), 8, "one period per node");
        let faults = s.grouped(5);
        let labels: Vec<(&str, &[NodeId])> = faults
            .iter()
            .map(|f| (f.label.as_str(), f.nodes.as_slice()))
            .collect();
        assert_eq!(
            labels,
            [
                ("power", &[1, 2, 3, 4, 5][..]),
                ("kill", &[2, 3][..]),
                ("clock", &[4][..])
            ]
        );
        assert_eq!(s.faults(), 3);
        assert_ne!(
            crate::charts::fault_colour("clock"),
            crate::charts::fault_colour("other")
        );
        assert_ne!(
            crate::charts::fault_colour("corrupt"),
            crate::charts::fault_colour("other")
        );
    }

    #[test]
    fn misbehaviour_is_grouped_per_node_and_kind_and_is_no_fault() {
        let bad = |i, ms, node, kind: &str, extra: Value| {
            let mut v = json!({"node": node, "kind": kind});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            ev(i, ms, MISBEHAVED, v)
        };
        let events = vec![
            bad(1, 100, 2, "garbage", json!({"detail": "not JSON: hello"})),
            bad(2, 200, 2, "garbage", json!({"detail": "not JSON: again"})),
            bad(
                3,
                300,
                1,
                "unexpected-exit",
                json!({"detail": "exit status 3"}),
            ),
            bad(4, 900, 2, "garbage", json!({"total": 40})),
            bad(5, 950, 3, "no-such-kind", json!({})),
        ];
        let s = FaultSummary::of(&events, 1_000_000_000);
        assert!(s.counts.is_empty(), "{:?}", s.counts);
        assert!(s.periods.is_empty());
        assert_eq!(s.misbehaviour.len(), 2);
        let g = &s.misbehaviour[0];
        assert_eq!(
            (g.node, g.kind, g.count, g.first_ns),
            (2, MisbehaviourKind::Garbage, 40, 100_000_000)
        );
        assert_eq!(
            g.describe(),
            "n2 wrote a line that is not a message (40 times, first at 0.10 s): not JSON: hello"
        );
        assert_eq!(s.misbehaviour[1].kind, MisbehaviourKind::UnexpectedExit);
        assert!(s.misbehaviour[1].describe().contains("(once, "));
    }

    #[test]
    fn periods_pair_faults_with_what_undoes_them() {
        let events = vec![
            ev(
                1,
                100,
                "partition",
                json!({"outcome": "installed", "targets": [1, 2], "shape": {"shape": "halves"}, "cut": [[1, 3]]}),
            ),
            ev(
                2,
                150,
                "kill",
                json!({"outcome": "installed", "targets": [3]}),
            ),
            ev(
                3,
                200,
                "heal",
                json!({"outcome": "installed", "targets": [1, 2]}),
            ),
            ev(
                4,
                300,
                "restart",
                json!({"outcome": "installed", "targets": [3]}),
            ),
            ev(
                5,
                400,
                "pause",
                json!({"outcome": {"skipped": "not running"}, "targets": [2]}),
            ),
            ev(
                6,
                500,
                "pause",
                json!({"outcome": "installed", "targets": [1]}),
            ),
            ev(
                7,
                900,
                "heal",
                json!({"final": true, "outcome": "installed"}),
            ),
        ];
        let s = FaultSummary::of(&events, 1_000_000_000);
        let spans: Vec<(&str, u64, u64, Vec<NodeId>)> = s
            .periods
            .iter()
            .map(|p| {
                (
                    p.kind.as_str(),
                    p.start_ns / 1_000_000,
                    p.end_ns / 1_000_000,
                    p.nodes.clone(),
                )
            })
            .collect();
        assert_eq!(
            spans,
            vec![
                ("partition", 100, 200, vec![1, 2]),
                ("kill", 150, 300, vec![3]),
                ("pause", 500, 900, vec![1]),
            ]
        );
        assert_eq!(s.total_ms, 200.0 + 400.0);
        assert_eq!(s.ms_per_kind["kill"], 150.0);
        assert_eq!(s.counts["heal"], 2);
        assert_eq!(s.not_installed["skipped"], 1);
        assert_eq!(s.periods[0].detail, "halves, 1 directed links cut");
    }

    #[test]
    fn a_fault_left_open_lasts_to_the_end() {
        let events = vec![ev(
            1,
            100,
            "links",
            json!({"outcome": "installed", "targets": [1], "loss": 0.1}),
        )];
        let s = FaultSummary::of(&events, 250_000_000);
        assert_eq!(s.periods.len(), 1);
        assert_eq!(s.periods[0].end_ns, 250_000_000);
        assert_eq!(s.total_ms, 150.0);
    }
}
