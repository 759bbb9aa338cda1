//! Log agreement, from the final dumps of the Multi-Paxos log.
//!
//! - Agreement: for every slot, every node that reports it chose the same commands.
//! - Validity: every chosen write and cas was invoked by some client (written values
//!   are unique within a run, so a chosen value identifies its invoke).
//! - No duplicates: no command id is chosen in two places, and no write or cas is
//!   chosen more often than clients invoked it (a retry is a second invoke).

use std::collections::BTreeMap;

use paxos_trace::NodeId;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::finals::{FinalDump, LogEntry};
use crate::history::{Call, F, History, Op, Outcome};
use crate::report::{Anomaly, AnomalyKind, CheckReport, OpRef, Verdict};

/// A chosen command as the checker understands it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Chosen<'a> {
    Read { key: &'a str },
    Write { key: &'a str, value: i64 },
    Cas { key: &'a str, from: i64, to: i64 },
    Other,
}

/// The fields of a logged command the checks look at, borrowed from its JSON text.
#[derive(Deserialize, Default)]
struct CommandView<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    op: Option<&'a str>,
    #[serde(default)]
    key: Option<&'a str>,
    #[serde(default)]
    value: Option<i64>,
    #[serde(default)]
    from: Option<i64>,
    #[serde(default)]
    to: Option<i64>,
    /// A transaction's micro-ops (`["w", key, value]` writes a register).
    #[serde(borrow, default)]
    txn: Option<&'a RawValue>,
}

fn view(cmd: &str) -> CommandView<'_> {
    serde_json::from_str(cmd).unwrap_or_default()
}

fn understand<'a>(v: &CommandView<'a>) -> Chosen<'a> {
    match (v.op, v.key) {
        (Some("read"), Some(key)) => Chosen::Read { key },
        (Some("write"), Some(key)) => match v.value {
            Some(value) => Chosen::Write { key, value },
            None => Chosen::Other,
        },
        (Some("cas"), Some(key)) => match (v.from, v.to) {
            (Some(from), Some(to)) => Chosen::Cas { key, from, to },
            _ => Chosen::Other,
        },
        _ => Chosen::Other,
    }
}

/// Log agreement, fed one dump at a time so that only one node's dump is in memory at
/// once: per slot it keeps the first reporter's commands as one compact JSON array
/// text (`[cmd, ...]`, `null` for a no-op), and every disagreeing report.
#[derive(Default)]
pub struct LogAgreement {
    /// Per slot: the node that first reported it, and its commands.
    union: BTreeMap<u64, First>,
    disagreeing: BTreeMap<u64, Vec<(NodeId, Box<str>)>>,
    dumps: usize,
    /// Of those, the learned logs (every slot a node wrote down, compacted ones too).
    learned: usize,
    /// Each node's snapshot: (node, index, KV state there).
    snapshots: Vec<(NodeId, u64, BTreeMap<String, i64>)>,
}

impl LogAgreement {
    pub fn new() -> LogAgreement {
        LogAgreement::default()
    }

    pub fn add(&mut self, dump: &FinalDump) {
        self.dumps += 1;
        self.learned += usize::from(dump.learned);
        if let Some((index, kv)) = &dump.snapshot {
            self.snapshots.push((dump.node, *index, kv.clone()));
        }
        // Entries grouped by slot (a stable sort keeps the order within a slot); a
        // slot's text is built only when it is new or disagrees. The dump's slots
        // and the known ones are walked together, both in slot order, rather than
        // each slot looked up; the new ones are added after.
        let mut order: Vec<&LogEntry> = dump.log.iter().collect();
        order.sort_by_key(|e| e.slot);
        let mut known = self.union.iter().peekable();
        let mut new = Vec::new();
        for group in order.chunk_by(|a, b| a.slot == b.slot) {
            let slot = group[0].slot;
            let cmds = || group.iter().map(|e| dump.command(e).unwrap_or("null"));
            while known.next_if(|(s, _)| **s < slot).is_some() {}
            match known.peek() {
                Some((s, first)) if **s == slot => {
                    if !bracketed_eq(&first.text, cmds()) {
                        self.disagreeing
                            .entry(slot)
                            .or_default()
                            .push((dump.node, bracketed(cmds())));
                    }
                }
                _ => new.push((
                    slot,
                    First {
                        node: dump.node,
                        single: group.len() == 1,
                        text: bracketed(cmds()),
                    },
                )),
            }
        }
        // Many new slots (the first dump's, all of them) are built into the map in
        // one pass; a few are inserted.
        if new.len() > self.union.len() / 8 {
            self.union.append(&mut new.into_iter().collect());
        } else {
            self.union.extend(new);
        }
    }

    pub fn finish(self, history: &History) -> CheckReport {
        if self.dumps == 0 {
            return CheckReport {
                name: "log-agreement".into(),
                verdict: Verdict::Skipped,
                summary: "no final node dumps given".into(),
                anomalies: Vec::new(),
                unknown: Vec::new(),
            };
        }
        finish(self, history)
    }
}

/// A slot's commands as the node that first reported it gave them.
struct First {
    node: NodeId,
    /// Whether it gave one command (or one no-op).
    single: bool,
    /// `[cmd, ...]`, `null` for a no-op.
    text: Box<str>,
}

impl First {
    /// The commands' JSON texts, no-ops left out. One command is the text inside
    /// the brackets (each part is a whole JSON value, as its dump held it); more
    /// are split by reading the array.
    fn commands(&self) -> Vec<&str> {
        if self.single {
            let one = &self.text[1..self.text.len() - 1];
            return if one == "null" { Vec::new() } else { vec![one] };
        }
        let cmds: Vec<Option<&RawValue>> = serde_json::from_str(&self.text).unwrap_or_default();
        cmds.into_iter().flatten().map(RawValue::get).collect()
    }
}

/// `[a,b,c]` from the parts.
fn bracketed<'a>(parts: impl Iterator<Item = &'a str>) -> Box<str> {
    let mut out = String::from("[");
    for (i, p) in parts.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(p);
    }
    out.push(']');
    out.into_boxed_str()
}

/// Whether `text` is `[a,b,c]` of the parts, without building it.
fn bracketed_eq<'a>(text: &str, parts: impl Iterator<Item = &'a str>) -> bool {
    let Some(mut rest) = text.strip_prefix('[') else {
        return false;
    };
    for (i, p) in parts.enumerate() {
        if i > 0 {
            let Some(r) = rest.strip_prefix(',') else {
                return false;
            };
            rest = r;
        }
        let Some(r) = rest.strip_prefix(p) else {
            return false;
        };
        rest = r;
    }
    rest == "]"
}

/// The key of the command with id `id` among a slot's commands.
fn key_of(slot: &First, id: &str) -> Option<String> {
    slot.commands().into_iter().find_map(|cmd| {
        let v = view(cmd);
        (v.id.map(RawValue::get) == Some(id)).then(|| v.key.map(str::to_string))?
    })
}

/// Errors a node gives after it applied a chosen command whose condition did not hold:
/// the command is in the log although the client was told it failed.
const APPLIED_BUT_REFUSED: [&str; 2] = ["precondition-failed", "not-found"];

/// A write or cas in the chosen log although every client that invoked it was told it
/// definitely failed (`fail`: it did not and will not happen). A cas refused when
/// applied (its precondition did not hold) is chosen and fails legitimately, so those
/// errors are not counted.
fn failed_but_chosen(c: Chosen, slot: u64, invoked: &[(Chosen, &Op)]) -> Option<Anomaly> {
    let (key, what) = match c {
        Chosen::Write { key, value } => (key, format!("write {value}")),
        Chosen::Cas { key, from, to } => (key, format!("cas {from} -> {to}")),
        Chosen::Read { .. } | Chosen::Other => return None,
    };
    let all_failed = !invoked.is_empty()
        && invoked.iter().all(|(_, op)| {
            op.outcome == Outcome::Fail
                && !op
                    .error
                    .as_deref()
                    .is_some_and(|e| APPLIED_BUT_REFUSED.contains(&e))
        });
    if !all_failed {
        return None;
    }
    let (_, op) = invoked[0];
    Some(Anomaly {
        kind: AnomalyKind::FailedCommandChosen,
        key: Some(key.to_string()),
        slot: Some(slot),
        message: format!(
            "slot {slot} holds {what} on key {key}, but process {} (index {}) was told it definitely failed ({})",
            op.process,
            op.index,
            op.error.as_deref().unwrap_or("no error code")
        ),
        ops: invoked.iter().map(|(_, o)| OpRef::of(o)).collect(),
        witness: None,
        messages: Vec::new(),
        cycle: Vec::new(),
    })
}

/// What precedes a snapshot is compared by state: the lowest snapshot, with the log
/// after it applied up to each other snapshot's slot, must give that snapshot's KV
/// state (a write sets its key; a cas whose condition holds sets it; reads and no-ops
/// change nothing). A snapshot the log does not reach without a gap is not compared.
fn snapshot_disagreements(
    union: &BTreeMap<u64, First>,
    snapshots: &[(NodeId, u64, BTreeMap<String, i64>)],
) -> Vec<Anomaly> {
    let Some((base_node, base_index, base_kv)) = snapshots.iter().min_by_key(|s| (s.1, s.0)) else {
        return Vec::new();
    };
    let mut others: Vec<&(NodeId, u64, BTreeMap<String, i64>)> = snapshots
        .iter()
        .filter(|s| (s.0, s.1) != (*base_node, *base_index))
        .collect();
    others.sort_by_key(|s| (s.1, s.0));
    let mut state = base_kv.clone();
    let mut at = *base_index;
    let mut out = Vec::new();
    for (node, index, kv) in others {
        while at < *index {
            let Some(first) = union.get(&(at + 1)) else {
                return out; // a gap: nothing further can be compared
            };
            for cmd in first.commands() {
                let v = view(cmd);
                if let (Some("txn"), Some(txn)) = (v.op, v.txn) {
                    // Its register writes, in order (appends change lists only).
                    let mops: Vec<(String, String, serde_json::Value)> =
                        serde_json::from_str(txn.get()).unwrap_or_default();
                    for (f, key, value) in mops {
                        if let ("w", Some(value)) = (f.as_str(), value.as_i64()) {
                            state.insert(key, value);
                        }
                    }
                    continue;
                }
                match understand(&v) {
                    Chosen::Write { key, value } => {
                        state.insert(key.to_string(), value);
                    }
                    Chosen::Cas { key, from, to } if state.get(key) == Some(&from) => {
                        state.insert(key.to_string(), to);
                    }
                    _ => {}
                }
            }
            at += 1;
        }
        if state != *kv {
            let differs: Vec<String> = state
                .keys()
                .chain(kv.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|k| state.get(*k) != kv.get(*k))
                .take(5)
                .map(|k| format!("{k}: {:?} vs {:?}", kv.get(k), state.get(k)))
                .collect();
            out.push(Anomaly {
                kind: AnomalyKind::LogDisagreement,
                key: None,
                slot: Some(*index),
                message: format!(
                    "node {node}'s snapshot at slot {index} differs from node {base_node}'s snapshot at slot {base_index} with the chosen log up to slot {index} applied ({})",
                    differs.join(", ")
                ),
                ops: Vec::new(),
                witness: None,
                messages: Vec::new(),
                cycle: Vec::new(),
            });
        }
    }
    out
}

/// One anomaly per slot that some node reported with other commands than the first.
fn disagreements(
    union: &BTreeMap<u64, First>,
    disagreeing: &BTreeMap<u64, Vec<(NodeId, Box<str>)>>,
) -> Vec<Anomaly> {
    disagreeing
        .iter()
        .map(|(slot, others)| {
            let First {
                node: first_node,
                text: first,
                ..
            } = &union[slot];
            let mut text = format!("slot {slot}: node {first_node} chose {first}");
            for (node, cmds) in others {
                text.push_str(&format!("; node {node} chose {cmds}"));
            }
            Anomaly {
                kind: AnomalyKind::LogDisagreement,
                key: None,
                slot: Some(*slot),
                message: text,
                ops: Vec::new(),
                witness: None,
                messages: Vec::new(),
                cycle: Vec::new(),
            }
        })
        .collect()
}

pub fn check(history: &History, finals: &[FinalDump]) -> CheckReport {
    let mut agreement = LogAgreement::new();
    for dump in finals {
        agreement.add(dump);
    }
    agreement.finish(history)
}

/// Every KV op of the history as the command it would be in the log, sorted by
/// command then index. Sorted vectors rather than maps: after a long run there are
/// hundreds of thousands of commands, nearly all invoked and chosen once, and a map
/// entry (with its own vector) per command was most of the checker's memory. Sized
/// exactly (a grown vector is up to half empty: ~10 MB here after a long run).
fn invokes_of(history: &History) -> Vec<(Chosen<'_>, &Op)> {
    let kv_ops = history.ops.iter().filter(|o| o.f() != F::Propose).count();
    let mut invokes: Vec<(Chosen, &Op)> = Vec::with_capacity(kv_ops);
    invokes.extend(history.ops.iter().filter_map(|op| {
        let c = match op.call {
            Call::Read => Chosen::Read { key: &op.key },
            Call::Write { value } => Chosen::Write {
                key: &op.key,
                value,
            },
            Call::Cas { from, to } => Chosen::Cas {
                key: &op.key,
                from,
                to,
            },
            Call::Propose { .. } => return None,
        };
        Some((c, op))
    }));
    invokes.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.index.cmp(&b.1.index)));
    invokes
}

/// The same command id in two slots: each repeat against the slot before it, in slot
/// order. `ids` is (id, slot) for every command that has an id.
fn repeated_ids(union: &BTreeMap<u64, First>, mut ids: Vec<(&str, u64)>) -> Vec<Anomaly> {
    ids.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut repeats: Vec<(u64, Anomaly)> = ids
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| {
            let (id, first, slot) = (w[1].0, w[0].1, w[1].1);
            let anomaly = Anomaly {
                kind: AnomalyKind::DuplicateCommand,
                key: key_of(&union[&slot], id),
                slot: Some(slot),
                message: format!(
                    "command {id} was chosen in slot {first} and again in slot {slot}"
                ),
                ops: Vec::new(),
                witness: None,
                messages: Vec::new(),
                cycle: Vec::new(),
            };
            (slot, anomaly)
        })
        .collect();
    repeats.sort_by_key(|(slot, _)| *slot);
    repeats.into_iter().map(|(_, a)| a).collect()
}

/// A write or cas chosen more often than it was invoked, or chosen although every
/// client that invoked it was told it failed. `chosen` holds each chosen write or cas
/// that some client invoked, as where its invokes lie in `invokes` (every KV op as
/// the command it would be, sorted: [`invokes_of`]) and its slot: the same command
/// has the same invokes, so grouping by where they lie groups by command, in the
/// commands' order, without comparing commands. A command nobody invoked can be
/// neither (it is an unknown command instead).
fn over_chosen(
    mut chosen: Vec<(std::ops::Range<usize>, u64)>,
    invokes: &[(Chosen<'_>, &Op)],
) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    chosen.sort_unstable_by_key(|(at, slot)| (at.start, *slot));
    for group in chosen.chunk_by(|a, b| a.0.start == b.0.start) {
        let (at, first_slot) = &group[0];
        let invoked = &invokes[at.clone()];
        let (c, first_slot) = (invoked[0].0, *first_slot);
        let times = group.len();
        if let Some(a) = failed_but_chosen(c, first_slot, invoked) {
            anomalies.push(a);
        }
        if times > invoked.len() {
            let ops = invoked.iter().map(|(_, o)| OpRef::of(o)).collect();
            let key = match c {
                Chosen::Write { key, .. } | Chosen::Cas { key, .. } | Chosen::Read { key } => key,
                Chosen::Other => "",
            };
            anomalies.push(Anomaly {
                kind: AnomalyKind::DuplicateCommand,
                key: Some(key.to_string()),
                slot: Some(first_slot),
                message: format!(
                    "{c:?} was chosen {times} times (first in slot {first_slot}) but invoked {} time(s)",
                    invoked.len()
                ),
                ops,
                witness: None,
                messages: Vec::new(),
                cycle: Vec::new(),
            });
        }
    }
    anomalies
}

fn finish(state: LogAgreement, history: &History) -> CheckReport {
    let LogAgreement {
        union,
        disagreeing,
        dumps,
        learned,
        snapshots,
    } = state;
    let dumps = dumps - learned;
    let sources = if learned > 0 {
        format!("{dumps} nodes' dumps and {learned} learned logs (compacted slots included)")
    } else {
        format!("{dumps} nodes")
    };
    let mut anomalies = disagreements(&union, &disagreeing);
    anomalies.extend(snapshot_disagreements(&union, &snapshots));
    // Validity and duplicates over the log as first reported per slot. Sorted vectors
    // rather than maps: after a long run there are hundreds of thousands of commands,
    // nearly all invoked and chosen once, and a map entry (with its own vector) per
    // command was most of the checker's memory.
    // Sized exactly (a grown vector is up to half empty: ~10 MB here after a long run).
    let invokes = invokes_of(history);
    let kv_ops = invokes.len();
    // Where a command's invokes lie. A write or cas was nearly always invoked once:
    // its run of equal entries ends at once, and only a longer one (the reads of a
    // key) is searched for its end.
    let invoked_at = |c: &Chosen| -> std::ops::Range<usize> {
        let lo = invokes.partition_point(|(x, _)| x < c);
        let rest = &invokes[lo..];
        let hi = match rest.get(1) {
            Some((x, _)) if x == c => lo + rest.partition_point(|(x, _)| x == c),
            _ => lo + usize::from(rest.first().is_some_and(|(x, _)| x == c)),
        };
        lo..hi
    };
    // Both borrow from the union's text: no allocation per command.
    // (id, slot); a repeat's key is looked up again in its slot's text.
    let mut ids: Vec<(&str, u64)> = Vec::with_capacity(union.len());
    // Every write or cas chosen that some client invoked: where its invokes lie, and
    // its slot.
    let mut chosen: Vec<(std::ops::Range<usize>, u64)> = Vec::new();
    let mut commands = 0usize;
    for (slot, first) in &union {
        for cmd in first.commands() {
            commands += 1;
            let v = view(cmd);
            if let Some(id) = v.id {
                ids.push((id.get(), *slot));
            }
            let c = understand(&v);
            if c == Chosen::Other {
                continue;
            }
            let at = invoked_at(&c);
            if at.is_empty() {
                anomalies.push(Anomaly {
                    kind: AnomalyKind::UnknownCommand,
                    key: v.key.map(str::to_string),
                    slot: Some(*slot),
                    message: format!("slot {slot} holds {cmd}, which no client invoked"),
                    ops: Vec::new(),
                    witness: None,
                    messages: Vec::new(),
                    cycle: Vec::new(),
                });
            } else if !matches!(c, Chosen::Read { .. }) {
                // Reads are not unique and change nothing: no duplicate check for them.
                chosen.push((at, *slot));
            }
        }
    }
    anomalies.extend(repeated_ids(&union, ids));
    anomalies.extend(over_chosen(chosen, &invokes));
    let summary = format!(
        "{} slots, {commands} commands from {sources} ({kv_ops} KV ops in the history); {} anomalies",
        union.len(),
        anomalies.len()
    );
    CheckReport::decided("log-agreement", summary, anomalies)
}
