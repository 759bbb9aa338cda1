//! Final dumps: what each node reported as learned at the end of a run (`final/n<i>.json`,
//! the node's `dump` reply; docs/protocol.md). Parsed leniently: unknown fields are
//! ignored, and a command is kept as its raw JSON text, so any node's format compares
//! exactly and a dump of hundreds of thousands of commands stays compact in memory
//! (a parsed JSON tree per command cost gigabytes on a 10-minute run).

use paxos_trace::NodeId;
use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FinalDump {
    /// The node's id (from the dump's `node` field, else the file name `n<i>.json`).
    pub node: NodeId,
    pub registers: BTreeMap<String, i64>,
    /// The node's snapshot: every slot up to `.0` applied, giving the KV state `.1`;
    /// the log holds only slots after it.
    pub snapshot: Option<(u64, BTreeMap<String, i64>)>,
    pub log: Vec<LogEntry>,
    /// Not the node's state but what its driver saw it learn over the whole run
    /// (`"learned": true`: every slot it wrote down as chosen, compacted ones too):
    /// read by log agreement only.
    pub learned: bool,
    /// The dump's JSON text; log entries point into it.
    text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub slot: u64,
    /// Byte range of the command's JSON in the dump text; `None` for a no-op slot.
    command: Option<(u32, u32)>,
}

impl FinalDump {
    /// The JSON text of an entry's command, `None` for a no-op.
    pub fn command(&self, entry: &LogEntry) -> Option<&str> {
        entry
            .command
            .map(|(start, len)| &self.text[start as usize..(start + len) as usize])
    }

    /// The dump's JSON text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A learned log (`"learned": true`, no registers or snapshot) as its writer
    /// encoded it: `text`, with each entry's slot and the byte range of its command's
    /// JSON in `text` (`None` for a no-op slot), in the text's order. What
    /// [`parse_final`] of `text` gives, without reading it again; the writer
    /// vouches for the ranges, and they are checked to lie in `text`.
    pub fn learned_as_written(
        node: NodeId,
        text: String,
        entries: Vec<(u64, Option<std::ops::Range<usize>>)>,
    ) -> Result<FinalDump, String> {
        if text.len() > u32::MAX as usize {
            return Err("dump larger than 4 GiB".into());
        }
        let log = entries
            .into_iter()
            .map(|(slot, range)| {
                let command = match range {
                    Some(r) if text.get(r.clone()).is_some() => {
                        Some((r.start as u32, (r.end - r.start) as u32))
                    }
                    Some(r) => {
                        return Err(format!("slot {slot}'s command at {r:?} is not in the text"));
                    }
                    None => None,
                };
                Ok(LogEntry { slot, command })
            })
            .collect::<Result<_, String>>()?;
        Ok(FinalDump {
            node,
            registers: BTreeMap::new(),
            snapshot: None,
            log,
            learned: true,
            text,
        })
    }

    /// Drops the log (and the text it points into), keeping node and registers.
    pub fn without_log(mut self) -> FinalDump {
        self.log = Vec::new();
        self.text = String::new();
        self
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FinalsError {
    pub path: String,
    pub message: String,
}

/// Reads every `*.json` file of `dir` as a node's final dump, in file-name order.
pub fn read_finals(dir: &Path) -> Result<Vec<FinalDump>, FinalsError> {
    finals_in(dir)?.collect()
}

/// The final dumps of `dir`, read one at a time as the iterator is advanced.
pub fn finals_in(
    dir: &Path,
) -> Result<impl Iterator<Item = Result<FinalDump, FinalsError>>, FinalsError> {
    let err = |path: &Path, message: String| FinalsError {
        path: path.display().to_string(),
        message,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| err(dir, e.to_string()))?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    Ok(paths.into_iter().map(move |path| {
        let text = std::fs::read_to_string(&path).map_err(|e| err(&path, e.to_string()))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let from_name = stem.trim_start_matches('n').parse::<NodeId>().ok();
        parse_final_owned(text, from_name).map_err(|m| err(&path, m))
    }))
}

/// Parses one dump; `default_node` is used when the dump has no `node` field.
pub fn parse_final(text: &str, default_node: Option<NodeId>) -> Result<FinalDump, String> {
    parse_final_owned(text.to_string(), default_node)
}

/// [`parse_final`] taking the text it keeps, so a dump of many megabytes is held once,
/// not twice.
pub fn parse_final_owned(text: String, default_node: Option<NodeId>) -> Result<FinalDump, String> {
    #[derive(Deserialize)]
    struct Entry<'a> {
        slot: u64,
        #[serde(borrow, default)]
        command: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Dump<'a> {
        #[serde(default)]
        node: Option<NodeId>,
        #[serde(default)]
        registers: BTreeMap<String, i64>,
        #[serde(default)]
        snapshot: Option<Snap>,
        #[serde(borrow, default)]
        log: Vec<Entry<'a>>,
        #[serde(default)]
        learned: bool,
    }
    #[derive(Deserialize)]
    struct Snap {
        index: u64,
        #[serde(default)]
        kv: BTreeMap<String, i64>,
    }
    if text.len() > u32::MAX as usize {
        return Err("dump larger than 4 GiB".into());
    }
    let dump: Dump = serde_json::from_str(&text).map_err(|e| format!("not a node dump: {e}"))?;
    let node = match dump.node {
        Some(n) => n,
        None => default_node.ok_or("no 'node' field and no n<i>.json file name")?,
    };
    let base = text.as_ptr() as usize;
    let log = dump
        .log
        .iter()
        .map(|e| LogEntry {
            slot: e.slot,
            // A borrowed RawValue is a slice of `text`: record where.
            command: e.command.map(|c| {
                let start = c.get().as_ptr() as usize - base;
                (start as u32, c.get().len() as u32)
            }),
        })
        .collect();
    let registers = dump.registers;
    let snapshot = dump.snapshot.map(|s| (s.index, s.kv));
    Ok(FinalDump {
        learned: dump.learned,
        node,
        registers,
        snapshot,
        log,
        text,
    })
}
