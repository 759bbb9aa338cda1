//! The history model, its event type and its parser (docs/history.md).
//!
//! A history is a stream of JSON lines: client `invoke`s and their completions
//! (`ok`, `fail`, `info`), and nemesis events. Parsing is streaming and validating: a
//! malformed line or a broken history (two ops in flight on one process, a completion
//! without an invoke, an invoke after `info`, a decreasing index or time) is a
//! [`HistoryError`] naming the line. Unknown fields are ignored. An invoke with no
//! completion by the end counts as `info`.

use paxos_trace::NodeId;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The outcome classes of an op (docs/history.md).
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

impl Outcome {
    /// The outcome as the history writes it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
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

    pub fn parse(s: &str) -> Option<F> {
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
    pub node: Option<NodeId>,
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

/// One micro-operation of a transaction as the history writes it: `["r", key,
/// value]`, `["w", key, value]`, `["append", key, value]` (Maelstrom's and Elle's
/// form). A read's value is `null` in the invoke and what it read in an ok
/// completion: a list (list-append), an integer or `null` (rw-register).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnMop {
    Read { key: String, value: Value },
    Write { key: String, value: i64 },
    Append { key: String, value: i64 },
}

impl TxnMop {
    pub fn key(&self) -> &str {
        match self {
            TxnMop::Read { key, .. } | TxnMop::Write { key, .. } | TxnMop::Append { key, .. } => {
                key
            }
        }
    }

    /// The micro-operation as the history writes it.
    pub fn to_json(&self) -> Value {
        match self {
            TxnMop::Read { key, value } => serde_json::json!(["r", key, value]),
            TxnMop::Write { key, value } => serde_json::json!(["w", key, value]),
            TxnMop::Append { key, value } => serde_json::json!(["append", key, value]),
        }
    }

    /// A micro-operation from its history form.
    pub fn from_json(v: &Value) -> Result<TxnMop, String> {
        let Some([f, key, value]) = v.as_array().map(Vec::as_slice) else {
            return Err(format!("a micro-op must be [f, key, value], got {v}"));
        };
        let key = key
            .as_str()
            .ok_or_else(|| format!("a micro-op's key must be a string, got {key}"))?
            .to_string();
        let int = || {
            value
                .as_i64()
                .ok_or_else(|| format!("a write or append needs an integer value, got {value}"))
        };
        match f.as_str() {
            Some("r") => Ok(TxnMop::Read {
                key,
                value: value.clone(),
            }),
            Some("w") => Ok(TxnMop::Write { key, value: int()? }),
            Some("append") => Ok(TxnMop::Append { key, value: int()? }),
            _ => Err(format!("a micro-op's f must be r, w or append, got {f}")),
        }
    }
}

impl Serialize for TxnMop {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for TxnMop {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        TxnMop::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// A transaction's micro-operations from an event's value.
pub fn txn_of(v: &Value) -> Result<Vec<TxnMop>, String> {
    let list = v
        .as_array()
        .ok_or_else(|| format!("a txn's value must be a list of micro-ops, got {v}"))?;
    list.iter().map(TxnMop::from_json).collect()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Client operations in invoke order.
    pub ops: Vec<Op>,
    /// Transactions (`"f": "txn"` events), for the isolation check.
    #[serde(skip)]
    pub txns: crate::txn::TxnHistory,
    pub nemesis: Vec<NemesisEvent>,
    /// Number of lines (events) read.
    pub events: u64,
    /// Time of the last event.
    pub end_ns: u64,
    /// The line number of a last line cut short (no newline, not a whole event: the
    /// writer died or its disk filled mid-line), which was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_last_line: Option<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct HistoryError {
    /// 1-based line number; 0 when the error is not tied to a line (I/O).
    pub line: u64,
    pub message: String,
}

/// Who an event is from: a client process (a number, never reused after `info`) or
/// the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("process: a non-negative integer or \"nemesis\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Process, E> {
                if v == "nemesis" {
                    Ok(Process::Nemesis)
                } else {
                    Err(E::custom(format!(
                        "process must be a non-negative integer or \"nemesis\", got \"{v}\""
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// An event's `type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn name(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }

    /// The completion type of an outcome.
    pub fn of(outcome: Outcome) -> EventType {
        match outcome {
            Outcome::Ok => EventType::Ok,
            Outcome::Fail => EventType::Fail,
            Outcome::Info => EventType::Info,
        }
    }
}

/// An event's `f`: a client op's function, or the name of a fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Func<'a> {
    Op(F),
    Fault(Cow<'a, str>),
}

impl Serialize for Func<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Func::Op(f) => s.serialize_str(f.name()),
            Func::Fault(name) => s.serialize_str(name),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Func<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name: Cow<'a, str> = borrow_str(d)?;
        Ok(match F::parse(&name) {
            Some(f) => Func::Op(f),
            None => Func::Fault(name),
        })
    }
}

/// A string borrowed from the input where it has no escapes.
fn borrow_str<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Cow<'a, str>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Borrowed::deserialize(d)?.0)
}

/// One line of history.jsonl (docs/history.md). The recorder writes this type and the
/// parser reads it, so the two cannot drift apart. Unknown fields are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event<'a> {
    pub index: u64,
    pub time_ns: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(borrow)]
    pub f: Func<'a>,
    /// The op's key (client events only).
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Cow<'a, str>>,
    /// The op's value (docs/history.md), or a nemesis event's details.
    #[serde(default)]
    pub value: Value,
    /// The node a client talked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    /// A failed or unknown op's error code.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Cow<'a, str>>,
}

impl Event<'_> {
    /// The same event owning its text (to hand to another thread).
    pub fn into_owned(self) -> Event<'static> {
        let owned = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        Event {
            index: self.index,
            time_ns: self.time_ns,
            process: self.process,
            kind: self.kind,
            f: match self.f {
                Func::Op(f) => Func::Op(f),
                Func::Fault(name) => Func::Fault(owned(name)),
            },
            key: self.key.map(owned),
            value: self.value,
            node: self.node,
            error: self.error.map(owned),
        }
    }
}

impl Call {
    /// The invoke's value as the history writes it: `null`, `v` or `[from, to]`.
    pub fn value_json(self) -> Value {
        match self {
            Call::Read => Value::Null,
            Call::Propose { value } | Call::Write { value } => Value::from(value),
            Call::Cas { from, to } => Value::from(vec![from, to]),
        }
    }
}

/// Parses a whole history from a reader, line by line.
///
/// A last line with no newline that is not a whole event is torn (its writer was
/// killed, or its disk filled, mid-line): it is skipped and its number kept in
/// [`History::torn_last_line`]. Any other bad line is an error naming it.
pub fn parse_history<R: BufRead>(mut reader: R) -> Result<History, HistoryError> {
    let mut parser = Parser::default();
    let mut line = String::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        line_no += 1;
        let read = reader.read_line(&mut line).map_err(|e| HistoryError {
            line: line_no,
            message: format!("cannot read: {e}"),
        })?;
        if read == 0 {
            break;
        }
        let whole = line.ends_with('\n');
        let text = line.trim_end_matches(['\n', '\r']);
        if let Err(message) = parser.line(text) {
            if !whole && serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
                parser.history.torn_last_line = Some(line_no);
                break;
            }
            return Err(HistoryError {
                line: line_no,
                message,
            });
        }
    }
    Ok(parser.finish())
}

/// Parses a history held in a string (tests, small tools).
pub fn parse_history_str(text: &str) -> Result<History, HistoryError> {
    parse_history(text.as_bytes())
}

/// Builds a history from its events as they are written, without their text: the
/// history [`parse_history`] makes of the same events' lines (a simulation that
/// judges its history at once need not write it out and read it back; it still
/// writes the text, for its hash and its run directory). The first event the
/// history's rules refuse is kept as the error, numbered as its line would be.
#[derive(Default)]
pub struct Builder {
    parser: Parser,
    error: Option<HistoryError>,
}

impl Builder {
    /// Takes the next event, as the parser takes the next line.
    pub fn event(&mut self, event: Event<'_>) {
        if self.error.is_some() {
            return;
        }
        if let Err(message) = self.parser.event(event) {
            self.error = Some(HistoryError {
                line: self.parser.history.events + 1,
                message,
            });
        }
    }

    /// The history, or the first refused event.
    pub fn finish(self) -> Result<History, HistoryError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.parser.finish()),
        }
    }
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
    /// Process -> its transaction in flight: invoke time and micro-ops.
    txn_in_flight: BTreeMap<u64, (u64, u64, Option<NodeId>, Vec<TxnMop>)>,
}

impl Parser {
    fn line(&mut self, line: &str) -> Result<(), String> {
        if line.trim().is_empty() {
            return Ok(()); // blank lines (a trailing newline) carry nothing
        }
        let raw: Event = serde_json::from_str(line)
            .map_err(|e| format!("not a valid history event: {}", diagnose(line, &e)))?;
        self.event(raw)
    }

    /// One event, read from its line or handed over as written ([`Builder`]).
    fn event(&mut self, raw: Event<'_>) -> Result<(), String> {
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
        match raw.process {
            Process::Nemesis => {
                self.history.nemesis.push(NemesisEvent {
                    index: raw.index,
                    time_ns: raw.time_ns,
                    kind: raw.kind.name().into(),
                    f: match raw.f {
                        Func::Op(f) => f.name().to_string(),
                        Func::Fault(name) => name.into_owned(),
                    },
                    value: raw.value,
                });
                Ok(())
            }
            Process::Client(process) => self.client_event(process, raw),
        }
    }

    /// An invoke: the process must have nothing in flight and not be retired.
    /// Always inlined: it runs for every other line of a history, and as a call it
    /// measured about 10% slower parsing.
    #[inline(always)]
    fn invoke(&mut self, process: u64, f: F, key: Arc<str>, raw: &Event) -> Result<(), String> {
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
        Ok(())
    }

    /// A transaction's invoke or completion.
    fn txn_event(&mut self, process: u64, raw: Event) -> Result<(), String> {
        let mops = txn_of(&raw.value)?;
        if raw.kind == EventType::Invoke {
            if self.in_flight.contains_key(&process) || self.txn_in_flight.contains_key(&process) {
                return Err(format!(
                    "process {process} invokes a txn while another op is in flight"
                ));
            }
            if let Some(info_index) = self.retired.get(&process) {
                return Err(format!(
                    "process {process} invokes after its op completed with info at index {info_index}"
                ));
            }
            self.txn_in_flight
                .insert(process, (raw.index, raw.time_ns, raw.node, mops));
            return Ok(());
        }
        let (invoke_index, invoke_ns, invoke_node, invoked) =
            self.txn_in_flight.remove(&process).ok_or_else(|| {
                format!(
                    "{} txn completion for process {process} without a pending invoke",
                    raw.kind.name()
                )
            })?;
        if mops.len() != invoked.len() || mops.iter().zip(&invoked).any(|(a, b)| a.key() != b.key())
        {
            return Err(format!(
                "process {process}'s txn completion does not match its invoke's micro-ops"
            ));
        }
        let (status, complete, shown) = match raw.kind {
            EventType::Ok => (crate::txn::Status::Ok, Some(raw.time_ns), &mops),
            EventType::Fail => (crate::txn::Status::Fail, Some(raw.time_ns), &invoked),
            _ => {
                self.retired.insert(process, raw.index);
                (crate::txn::Status::Info, None, &invoked)
            }
        };
        let ok = status == crate::txn::Status::Ok;
        let converted = checker_mops(&mut self.history.txns, shown, ok)?;
        let t = self
            .history
            .txns
            .push(process as u32, invoke_ns, complete, status, &converted);
        self.history
            .txns
            .set_index(t, invoke_index, raw.node.or(invoke_node));
        Ok(())
    }

    fn client_event(&mut self, process: u64, raw: Event) -> Result<(), String> {
        let f = match &raw.f {
            Func::Op(f) => *f,
            Func::Fault(name) if name == "txn" => return self.txn_event(process, raw),
            Func::Fault(name) => {
                return Err(format!(
                    "unknown f '{name}' for a client op; expected propose, read, write, cas or txn"
                ));
            }
        };
        let key = raw
            .key
            .as_deref()
            .ok_or_else(|| format!("{} event without a 'key'", f.name()))?;
        let key = match self.keys.get(key) {
            Some(k) => Arc::clone(k),
            None => {
                let k: Arc<str> = Arc::from(key);
                self.keys.insert(Arc::clone(&k));
                k
            }
        };
        if raw.kind == EventType::Invoke {
            return self.invoke(process, f, key, &raw);
        }
        let at = self.in_flight.remove(&process).ok_or_else(|| {
            format!(
                "{} completion for process {process} without a pending invoke",
                raw.kind.name()
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
        op.error = raw.error.map(Cow::into_owned);
        if op.node.is_none() {
            op.node = raw.node;
        }
        op.outcome = match raw.kind {
            EventType::Ok => Outcome::Ok,
            EventType::Fail => Outcome::Fail,
            EventType::Info => Outcome::Info,
            EventType::Invoke => unreachable!("handled above"),
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
        // A transaction never completed stays indeterminate.
        for (process, (invoke_index, invoke_ns, node, mops)) in self.txn_in_flight {
            let converted = checker_mops(&mut history.txns, &mops, false)
                .expect("micro-ops with unknown reads always convert");
            let t = history.txns.push(
                process as u32,
                invoke_ns,
                None,
                crate::txn::Status::Info,
                &converted,
            );
            history.txns.set_index(t, invoke_index, node);
        }
        history.txns.finish();
        history
    }
}

/// A transaction's micro-ops in the checker's terms, its keys interned in `txns`;
/// with `reads_known` each read's value (a list, an integer, or null), else every
/// read unknown.
fn checker_mops(
    txns: &mut crate::txn::TxnHistory,
    mops: &[TxnMop],
    reads_known: bool,
) -> Result<Vec<crate::txn::Mop>, String> {
    use crate::txn::Mop;
    mops.iter()
        .map(|m| {
            let k = txns.key(m.key());
            Ok(match m {
                TxnMop::Append { value, .. } => Mop::Append(k, *value as u64),
                TxnMop::Write { value, .. } => Mop::Write(k, *value as u64),
                TxnMop::Read { .. } if !reads_known => Mop::Read(k, None),
                TxnMop::Read { value, .. } => match value {
                    Value::Null => Mop::ReadRegister(k, Some(None)),
                    Value::Array(items) => Mop::Read(
                        k,
                        Some(
                            items
                                .iter()
                                .map(|x| x.as_i64().map(|v| v as u64))
                                .collect::<Option<Vec<u64>>>()
                                .ok_or_else(|| {
                                    format!("a read list must hold integers, got {value}")
                                })?,
                        ),
                    ),
                    other => Mop::ReadRegister(
                        k,
                        Some(Some(other.as_i64().ok_or_else(|| {
                            format!(
                                "a read's value must be a list, an integer or null, got {other}"
                            )
                        })? as u64)),
                    ),
                },
            })
        })
        .collect()
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
