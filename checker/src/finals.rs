//! Final dumps: what each node reported as learned at the end of a run (`final/n<i>.json`,
//! the node's `dump` reply; docs/protocol.md). Parsed leniently: unknown fields are
//! ignored, and a command is kept as its JSON so any node's format compares exactly.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalDump {
    /// The node's id (from the dump's `node` field, else the file name `n<i>.json`).
    pub node: u64,
    #[serde(default)]
    pub registers: BTreeMap<String, i64>,
    #[serde(default)]
    pub log: Vec<LogEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub slot: u64,
    /// `None` for a no-op slot.
    #[serde(default)]
    pub command: Option<Value>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FinalsError {
    pub path: String,
    pub message: String,
}

/// Reads every `*.json` file of `dir` as a node's final dump, in file-name order.
pub fn read_finals(dir: &Path) -> Result<Vec<FinalDump>, FinalsError> {
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
    let mut dumps = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| err(&path, e.to_string()))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let from_name = stem.trim_start_matches('n').parse::<u64>().ok();
        dumps.push(parse_final(&text, from_name).map_err(|m| err(&path, m))?);
    }
    Ok(dumps)
}

/// Parses one dump; `default_node` is used when the dump has no `node` field.
pub fn parse_final(text: &str, default_node: Option<u64>) -> Result<FinalDump, String> {
    let mut v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("node").is_none() {
        let node = default_node.ok_or("no 'node' field and no n<i>.json file name")?;
        v["node"] = node.into();
    }
    serde_json::from_value(v).map_err(|e| format!("not a node dump: {e}"))
}
