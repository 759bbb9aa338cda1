//! Log agreement, from the final dumps of the Multi-Paxos log.
//!
//! - Agreement: for every slot, every node that reports it chose the same commands.
//! - Validity: every chosen write and cas was invoked by some client (written values
//!   are unique within a run, so a chosen value identifies its invoke).
//! - No duplicates: no command id is chosen in two places, and no write or cas is
//!   chosen more often than clients invoked it (a retry is a second invoke).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

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
    union: BTreeMap<u64, (u64, Box<str>)>,
    disagreeing: BTreeMap<u64, Vec<(u64, Box<str>)>>,
    dumps: usize,
}

impl LogAgreement {
    pub fn new() -> LogAgreement {
        LogAgreement::default()
    }

    pub fn add(&mut self, dump: &FinalDump) {
        self.dumps += 1;
        let mut mine: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
        for e in &dump.log {
            let text = dump.command(e).unwrap_or("null");
            mine.entry(e.slot).or_default().push(text);
        }
        for (slot, cmds) in mine {
            let text: Box<str> = format!("[{}]", cmds.join(",")).into_boxed_str();
            match self.union.get(&slot) {
                None => {
                    self.union.insert(slot, (dump.node, text));
                }
                Some((_, first)) if *first != text => {
                    self.disagreeing
                        .entry(slot)
                        .or_default()
                        .push((dump.node, text));
                }
                Some(_) => {}
            }
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

pub fn check(history: &History, finals: &[FinalDump]) -> CheckReport {
    let mut agreement = LogAgreement::new();
    for dump in finals {
        agreement.add(dump);
    }
    agreement.finish(history)
}

fn finish(state: LogAgreement, history: &History) -> CheckReport {
    let LogAgreement {
        union,
        disagreeing,
        dumps,
    } = state;
    let mut anomalies = Vec::new();
    for (slot, others) in &disagreeing {
        let (first_node, first) = &union[slot];
        let mut text = format!("slot {slot}: node {first_node} chose {first}");
        for (node, cmds) in others {
            text.push_str(&format!("; node {node} chose {cmds}"));
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
    // Both maps borrow from the union's text: no allocation per command.
    let mut by_id: BTreeMap<&str, u64> = BTreeMap::new();
    // Per write or cas: (first slot, times chosen).
    let mut times_chosen: BTreeMap<Chosen, (u64, usize)> = BTreeMap::new();
    let mut commands = 0usize;
    for (slot, (_, text)) in &union {
        let cmds: Vec<Option<&RawValue>> = serde_json::from_str(text).unwrap_or_default();
        for cmd in cmds.into_iter().flatten() {
            let cmd = cmd.get();
            commands += 1;
            let v = view(cmd);
            if let Some(id) = v.id {
                let id = id.get();
                if let Some(first) = by_id.insert(id, *slot) {
                    anomalies.push(Anomaly {
                        kind: "duplicate-command".into(),
                        key: v.key.map(str::to_string),
                        slot: Some(*slot),
                        message: format!(
                            "command {id} was chosen in slot {first} and again in slot {slot}"
                        ),
                        ops: Vec::new(),
                        witness: None,
                    });
                }
            }
            let c = understand(&v);
            if c == Chosen::Other {
                continue;
            }
            if !matches!(c, Chosen::Read { .. }) {
                // Reads are not unique and change nothing: no duplicate check for them.
                let entry = times_chosen.entry(c).or_insert((*slot, 0));
                entry.1 += 1;
            }
            if !invokes.contains_key(&c) {
                anomalies.push(Anomaly {
                    kind: "unknown-command".into(),
                    key: v.key.map(str::to_string),
                    slot: Some(*slot),
                    message: format!("slot {slot} holds {cmd}, which no client invoked"),
                    ops: Vec::new(),
                    witness: None,
                });
            }
        }
    }
    for (c, &(first_slot, times)) in &times_chosen {
        let invoked = invokes.get(c).map_or(0, Vec::len);
        if invoked > 0 && times > invoked {
            let ops = invokes[c].iter().map(|o| OpRef::of(o)).collect();
            let key = match c {
                Chosen::Write { key, .. } | Chosen::Cas { key, .. } | Chosen::Read { key } => key,
                Chosen::Other => "",
            };
            anomalies.push(Anomaly {
                kind: "duplicate-command".into(),
                key: Some(key.to_string()),
                slot: Some(first_slot),
                message: format!(
                    "{c:?} was chosen {times} times (first in slot {first_slot}) but invoked {invoked} time(s)"
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
            "{} slots, {commands} commands from {dumps} nodes ({kv_ops} KV ops in the history); {} anomalies",
            union.len(),
            anomalies.len()
        ),
        anomalies,
        unknown: Vec::new(),
    }
}
