//! Log agreement, from the final dumps of the Multi-Paxos log.
//!
//! - Agreement: for every slot, every node that reports it chose the same commands.
//! - Validity: every chosen write and cas was invoked by some client (written values
//!   are unique within a run, so a chosen value identifies its invoke).
//! - No duplicates: no command id is chosen in two places, and no write or cas is
//!   chosen more often than clients invoked it (a retry is a second invoke).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::finals::FinalDump;
use crate::history::{Call, F, History, Op};
use crate::report::{Anomaly, CheckReport, OpRef, Verdict};

/// A chosen command as the checker understands it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Chosen<'a> {
    Read { key: &'a str },
    Write { key: &'a str, value: i64 },
    Cas { key: &'a str, from: i64, to: i64 },
    Other,
}

fn understand(cmd: &Value) -> Chosen<'_> {
    let key = cmd.get("key").and_then(Value::as_str);
    let int = |f: &str| cmd.get(f).and_then(Value::as_i64);
    match (cmd.get("op").and_then(Value::as_str), key) {
        (Some("read"), Some(key)) => Chosen::Read { key },
        (Some("write"), Some(key)) => match int("value") {
            Some(value) => Chosen::Write { key, value },
            None => Chosen::Other,
        },
        (Some("cas"), Some(key)) => match (int("from"), int("to")) {
            (Some(from), Some(to)) => Chosen::Cas { key, from, to },
            _ => Chosen::Other,
        },
        _ => Chosen::Other,
    }
}

/// The commands one node reports for one slot, in order (`None` = no-op).
type SlotCommands<'a> = Vec<Option<&'a Value>>;

pub fn check(history: &History, finals: &[FinalDump]) -> CheckReport {
    if finals.is_empty() {
        return CheckReport {
            name: "log-agreement".into(),
            verdict: Verdict::Skipped,
            summary: "no final node dumps given".into(),
            anomalies: Vec::new(),
            unknown: Vec::new(),
        };
    }
    let mut anomalies = Vec::new();

    // Per slot: the first node's commands, then every disagreeing node.
    let mut union: BTreeMap<u64, (u64, SlotCommands)> = BTreeMap::new();
    let mut disagreeing: BTreeMap<u64, Vec<(u64, SlotCommands)>> = BTreeMap::new();
    for dump in finals {
        let mut mine: BTreeMap<u64, SlotCommands> = BTreeMap::new();
        for e in &dump.log {
            mine.entry(e.slot).or_default().push(e.command.as_ref());
        }
        for (slot, cmds) in mine {
            match union.get(&slot) {
                None => {
                    union.insert(slot, (dump.node, cmds));
                }
                Some((_, first)) if *first != cmds => {
                    disagreeing.entry(slot).or_default().push((dump.node, cmds));
                }
                Some(_) => {}
            }
        }
    }
    let show = |cmds: &SlotCommands| {
        let parts: Vec<String> = cmds
            .iter()
            .map(|c| c.map_or("no-op".to_string(), |v| v.to_string()))
            .collect();
        format!("[{}]", parts.join(", "))
    };
    for (slot, others) in &disagreeing {
        let (first_node, first) = &union[slot];
        let mut text = format!("slot {slot}: node {first_node} chose {}", show(first));
        for (node, cmds) in others {
            text.push_str(&format!("; node {node} chose {}", show(cmds)));
        }
        anomalies.push(Anomaly {
            kind: "log-disagreement".into(),
            key: None,
            slot: Some(*slot),
            message: text,
            ops: Vec::new(),
            witness: None,
        });
    }

    // Validity and duplicates over the log as first reported per slot.
    let mut invokes: BTreeMap<Chosen, Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
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
            Call::Propose { .. } => continue,
        };
        invokes.entry(c).or_default().push(op);
    }
    let mut by_id: BTreeMap<String, u64> = BTreeMap::new();
    let mut times_chosen: BTreeMap<Chosen, Vec<u64>> = BTreeMap::new();
    let mut commands = 0usize;
    for (slot, (_, cmds)) in &union {
        for cmd in cmds.iter().flatten() {
            commands += 1;
            if let Some(id) = cmd.get("id") {
                let id = id.to_string();
                if let Some(first) = by_id.insert(id.clone(), *slot) {
                    anomalies.push(Anomaly {
                        kind: "duplicate-command".into(),
                        key: cmd.get("key").and_then(Value::as_str).map(str::to_string),
                        slot: Some(*slot),
                        message: format!(
                            "command {id} was chosen in slot {first} and again in slot {slot}"
                        ),
                        ops: Vec::new(),
                        witness: None,
                    });
                }
            }
            let c = understand(cmd);
            if c == Chosen::Other {
                continue;
            }
            times_chosen.entry(c).or_default().push(*slot);
            if !invokes.contains_key(&c) {
                anomalies.push(Anomaly {
                    kind: "unknown-command".into(),
                    key: cmd.get("key").and_then(Value::as_str).map(str::to_string),
                    slot: Some(*slot),
                    message: format!("slot {slot} holds {cmd}, which no client invoked"),
                    ops: Vec::new(),
                    witness: None,
                });
            }
        }
    }
    for (c, slots) in &times_chosen {
        if matches!(c, Chosen::Read { .. }) {
            continue; // reads are not unique and change nothing
        }
        let invoked = invokes.get(c).map_or(0, Vec::len);
        if invoked > 0 && slots.len() > invoked {
            let ops = invokes[c].iter().map(|o| OpRef::of(o)).collect();
            let key = match c {
                Chosen::Write { key, .. } | Chosen::Cas { key, .. } | Chosen::Read { key } => key,
                Chosen::Other => "",
            };
            anomalies.push(Anomaly {
                kind: "duplicate-command".into(),
                key: Some(key.to_string()),
                slot: slots.first().copied(),
                message: format!(
                    "{c:?} was chosen {} times (slots {slots:?}) but invoked {invoked} time(s)",
                    slots.len()
                ),
                ops,
                witness: None,
            });
        }
    }
    let kv_ops = history.ops.iter().filter(|o| o.f() != F::Propose).count();
    CheckReport {
        name: "log-agreement".into(),
        verdict: if anomalies.is_empty() {
            Verdict::Valid
        } else {
            Verdict::Invalid
        },
        summary: format!(
            "{} slots, {commands} commands from {} nodes ({kv_ops} KV ops in the history); {} anomalies",
            union.len(),
            finals.len(),
            anomalies.len()
        ),
        anomalies,
        unknown: Vec::new(),
    }
}
