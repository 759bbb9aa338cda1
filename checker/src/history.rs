//! The history model and its parser (DESIGN.md §5).
//!
//! A history is a stream of JSON lines: client `invoke`s and their completions
//! (`ok`, `fail`, `info`), and nemesis events. Parsing is streaming and validating: a
//! malformed line or a broken history (two ops in flight on one process, a completion
//! without an invoke, an invoke after `info`, a decreasing index or time) is a
//! [`HistoryError`] naming the line. Unknown fields are ignored. An invoke with no
//! completion by the end counts as `info`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The operation classes of DESIGN.md §9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened, with the recorded result.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// Unknown: it may take effect at any time after its invoke, or never.
    Info,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum F {
    Propose,
    Read,
    Write,
    Cas,
}

impl F {
    pub fn name(self) -> &'static str {
        match self {
            F::Propose => "propose",
            F::Read => "read",
            F::Write => "write",
            F::Cas => "cas",
        }
    }

    fn parse(s: &str) -> Option<F> {
        Some(match s {
            "propose" => F::Propose,
            "read" => F::Read,
            "write" => F::Write,
            "cas" => F::Cas,
            _ => return None,
        })
    }
}

/// What an op asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum Call {
    Propose { value: i64 },
    Read,
    Write { value: i64 },
    Cas { from: i64, to: i64 },
}

impl Call {
    pub fn f(self) -> F {
        match self {
            Call::Propose { .. } => F::Propose,
            Call::Read => F::Read,
            Call::Write { .. } => F::Write,
            Call::Cas { .. } => F::Cas,
        }
    }

    /// The value as the history writes it: `null`, `v` or `[from, to]`.
    pub fn value_text(self) -> String {
        match self {
            Call::Read => "null".into(),
            Call::Propose { value } | Call::Write { value } => value.to_string(),
            Call::Cas { from, to } => format!("[{from},{to}]"),
        }
    }
}

/// One client operation: an invoke paired with its completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// `index` of the invoke event.
    pub index: u64,
    pub process: u64,
    /// Shared by every op on the key: a run has few keys and many ops, and a string per
    /// op was a fifth of the judge's memory.
    pub key: Arc<str>,
    pub call: Call,
    pub invoke_ns: u64,
    /// `index` and time of the completion; `None` when the history ended first.
    pub complete_index: Option<u64>,
    pub complete_ns: Option<u64>,
    pub outcome: Outcome,
    /// The returned value of an `ok` read (`Some(None)` = absent) or propose.
    pub result: Option<Option<i64>>,
    pub node: Option<u64>,
    pub error: Option<String>,
}

impl Op {
    pub fn f(&self) -> F {
        self.call.f()
    }
}

/// A nemesis event, kept as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NemesisEvent {
    pub index: u64,
    pub time_ns: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub f: String,
    pub value: Value,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Client operations in invoke order.
    pub ops: Vec<Op>,
    pub nemesis: Vec<NemesisEvent>,
    /// Number of lines (events) read.
    pub events: u64,
    /// Time of the last event.
    pub end_ns: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct HistoryError {
    /// 1-based line number; 0 when the error is not tied to a line (I/O).
    pub line: u64,
    pub message: String,
}

#[derive(Deserialize)]
struct RawEvent {
    index: u64,
    time_ns: u64,
    process: Value,
    #[serde(rename = "type")]
    kind: RawType,
    f: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Value,
    #[serde(default)]
    node: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// Parses a whole history from a reader, line by line.
pub fn parse_history<R: BufRead>(reader: R) -> Result<History, HistoryError> {
    let mut parser = Parser::default();
    for (i, line) in reader.lines().enumerate() {
        let line_no = i as u64 + 1;
        let line = line.map_err(|e| HistoryError {
            line: line_no,
            message: format!("cannot read: {e}"),
        })?;
        parser.line(&line).map_err(|message| HistoryError {
            line: line_no,
            message,
        })?;
    }
    Ok(parser.finish())
}

/// Parses a history held in a string (tests, small tools).
pub fn parse_history_str(text: &str) -> Result<History, HistoryError> {
    parse_history(text.as_bytes())
}

#[derive(Default)]
struct Parser {
    history: History,
    last_index: Option<u64>,
    last_time: u64,
    /// Process -> position in `history.ops` of its op in flight.
    in_flight: BTreeMap<u64, usize>,
    /// Processes that got `info` and must not invoke again.
    retired: BTreeMap<u64, u64>,
    /// Every key seen, once.
    keys: BTreeSet<Arc<str>>,
}

impl Parser {
    fn line(&mut self, line: &str) -> Result<(), String> {
        if line.trim().is_empty() {
            return Ok(()); // blank lines (a trailing newline) carry nothing
        }
        let raw: RawEvent = serde_json::from_str(line)
            .map_err(|e| format!("not a valid history event: {}", diagnose(line, &e)))?;
        if let Some(last) = self.last_index {
            if raw.index <= last {
                return Err(format!(
                    "index {} does not increase (previous {last})",
                    raw.index
                ));
            }
        }
        if raw.time_ns < self.last_time {
            return Err(format!(
                "time_ns {} goes backwards (previous {})",
                raw.time_ns, self.last_time
            ));
        }
        self.last_index = Some(raw.index);
        self.last_time = raw.time_ns;
        self.history.events += 1;
        self.history.end_ns = raw.time_ns;
        match &raw.process {
            Value::String(s) if s == "nemesis" => {
                self.history.nemesis.push(NemesisEvent {
                    index: raw.index,
                    time_ns: raw.time_ns,
                    kind: raw_type_name(raw.kind).into(),
                    f: raw.f,
                    value: raw.value,
                });
                Ok(())
            }
            Value::Number(n) if n.as_u64().is_some() => {
                let process = n.as_u64().expect("checked");
                self.client_event(process, raw)
            }
            other => Err(format!(
                "process must be a non-negative integer or \"nemesis\", got {other}"
            )),
        }
    }

    fn client_event(&mut self, process: u64, raw: RawEvent) -> Result<(), String> {
        let f = F::parse(&raw.f).ok_or_else(|| {
            format!(
                "unknown f '{}' for a client op; expected propose, read, write or cas",
                raw.f
            )
        })?;
        let key = raw
            .key
            .as_deref()
            .ok_or_else(|| format!("{} event without a 'key'", raw.f))?;
        let key = match self.keys.get(key) {
            Some(k) => Arc::clone(k),
            None => {
                let k: Arc<str> = Arc::from(key);
                self.keys.insert(Arc::clone(&k));
                k
            }
        };
        if raw.kind == RawType::Invoke {
            if let Some(&at) = self.in_flight.get(&process) {
                let pending = &self.history.ops[at];
                return Err(format!(
                    "process {process} invokes while its op of index {} is still in flight",
                    pending.index
                ));
            }
            if let Some(info_index) = self.retired.get(&process) {
                return Err(format!(
                    "process {process} invokes after its op completed with info at index {info_index}"
                ));
            }
            let call = parse_call(f, &raw.value)?;
            self.in_flight.insert(process, self.history.ops.len());
            // Grow by an eighth rather than doubling: ops are most of the judge's
            // memory, and a doubled vector is up to half empty (176 MB for 589,000
            // ops where 99 MB are used). Large reallocations are remaps, not copies.
            let ops = &mut self.history.ops;
            if ops.len() == ops.capacity() {
                ops.reserve_exact(ops.capacity() / 8 + 1024);
            }
            self.history.ops.push(Op {
                index: raw.index,
                process,
                key,
                call,
                invoke_ns: raw.time_ns,
                complete_index: None,
                complete_ns: None,
                outcome: Outcome::Info,
                result: None,
                node: raw.node,
                error: None,
            });
            return Ok(());
        }
        let at = self.in_flight.remove(&process).ok_or_else(|| {
            format!(
                "{} completion for process {process} without a pending invoke",
                raw_type_name(raw.kind)
            )
        })?;
        let op = &mut self.history.ops[at];
        if op.f() != f || op.key != key {
            return Err(format!(
                "completion {} {} does not match process {process}'s pending invoke {} {} (index {})",
                f.name(),
                key,
                op.f().name(),
                op.key,
                op.index
            ));
        }
        op.complete_index = Some(raw.index);
        op.complete_ns = Some(raw.time_ns);
        op.error = raw.error;
        if op.node.is_none() {
            op.node = raw.node;
        }
        op.outcome = match raw.kind {
            RawType::Ok => Outcome::Ok,
            RawType::Fail => Outcome::Fail,
            RawType::Info => Outcome::Info,
            RawType::Invoke => unreachable!("handled above"),
        };
        if op.outcome == Outcome::Info {
            self.retired.insert(process, raw.index);
        }
        if op.outcome == Outcome::Ok {
            op.result = match f {
                F::Read => Some(optional_i64(&raw.value, "an ok read's value")?),
                F::Propose => Some(Some(raw.value.as_i64().ok_or_else(|| {
                    format!(
                        "an ok propose's value must be an integer, got {}",
                        raw.value
                    )
                })?)),
                F::Write | F::Cas => None,
            };
        }
        Ok(())
    }

    fn finish(self) -> History {
        // Invokes with no completion stay `info` with no completion time.
        let mut history = self.history;
        history.ops.shrink_to_fit();
        history
    }
}

/// Names the offending field when a line failed to parse (the error path only: the
/// happy path parses straight into the typed event).
fn diagnose(line: &str, error: &serde_json::Error) -> String {
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line) else {
        return error.to_string();
    };
    let expect = |field: &str, ok: bool, what: &str| -> Option<String> {
        match obj.get(field) {
            None => Some(format!("missing field '{field}'")),
            Some(v) if !ok => Some(format!("field '{field}' must be {what}, got {v}")),
            Some(_) => None,
        }
    };
    let is_u64 = |f: &str| obj.get(f).is_some_and(|v| v.as_u64().is_some());
    let is_str = |f: &str| obj.get(f).is_some_and(Value::is_string);
    let kind_ok = obj
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| matches!(t, "invoke" | "ok" | "fail" | "info"));
    let key_ok = obj.get("key").is_none_or(|v| v.is_string() || v.is_null());
    let node_ok = obj.get("node").is_none_or(|v| v.is_u64() || v.is_null());
    let problems = [
        expect("index", is_u64("index"), "an unsigned integer"),
        expect("time_ns", is_u64("time_ns"), "an unsigned integer"),
        expect("process", obj.contains_key("process"), "present"),
        expect("type", kind_ok, "one of invoke, ok, fail, info"),
        expect("f", is_str("f"), "a string"),
        (!key_ok).then(|| format!("field 'key' must be a string, got {}", obj["key"])),
        (!node_ok).then(|| {
            format!(
                "field 'node' must be an unsigned integer, got {}",
                obj["node"]
            )
        }),
    ];
    problems
        .into_iter()
        .flatten()
        .next()
        .unwrap_or_else(|| error.to_string())
}

fn raw_type_name(t: RawType) -> &'static str {
    match t {
        RawType::Invoke => "invoke",
        RawType::Ok => "ok",
        RawType::Fail => "fail",
        RawType::Info => "info",
    }
}

fn optional_i64(v: &Value, what: &str) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        other => other
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{what} must be an integer or null, got {other}")),
    }
}

fn parse_call(f: F, v: &Value) -> Result<Call, String> {
    let int = |v: &Value, what: &str| {
        v.as_i64()
            .ok_or_else(|| format!("{what} must be an integer, got {v}"))
    };
    Ok(match f {
        F::Propose => Call::Propose {
            value: int(v, "a propose invoke's value")?,
        },
        F::Write => Call::Write {
            value: int(v, "a write's value")?,
        },
        F::Read => Call::Read,
        F::Cas => match v.as_array().map(Vec::as_slice) {
            Some([from, to]) => Call::Cas {
                from: int(from, "a cas's from")?,
                to: int(to, "a cas's to")?,
            },
            _ => return Err(format!("a cas's value must be [from, to], got {v}")),
        },
    })
}
