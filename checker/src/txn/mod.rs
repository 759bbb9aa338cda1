//! Transactional isolation, judged from a history of transactions: dependencies
//! inferred from what the transactions read, cycles found in them, and each anomaly
//! named as Adya's isolation levels name it (G0, G1a, G1b, G1c, G-single, G2-item,
//! and with process or real-time order their session and strict variants).
//!
//! Two workloads make the inference sound without guessing:
//! - **list-append**: every key holds a list that transactions only append unique
//!   values to, and a read returns the whole list; the longest read of a key gives
//!   the order of its appends (every other read must be a prefix of it), so a read
//!   shows exactly which writes it saw and which it did not:
//!   write-write (ww) from consecutive appends, write-read (wr) from a read's last
//!   element to the reader, read-write (rw, an anti-dependency) from a reader to the
//!   append just after what it saw;
//! - **rw-register**: unique values written to registers; a read names its writer
//!   (wr), but the order of two writes is known only where one transaction read a
//!   value and then overwrote it, and a read of the initial (empty) value precedes
//!   every write of that key. The report says what this cannot order.
//!
//! Besides cycles it finds the anomalies that need none: a read of an aborted write
//! (G1a), a read of a write its own transaction later overwrote (G1b), a transaction
//! that does not read its own writes (internal), duplicated elements, reads of one
//! key that no single order explains (incompatible order), a read of a value nobody
//! wrote, and with real time, an acknowledged append that a later read lacks.
//!
//! The consistency model ([`Model`]) decides which of these are violations. The
//! search is bounded by a deadline, a step count and a memory estimate; when one runs
//! out before a violation is found the verdict is unknown, never valid.
//!
//! Written here rather than taken from a crate: the one native implementation
//! measured (BENCHMARKS.md, "Transactions") needs about 4 KB per transaction and
//! checks fewer than 100k transactions a second at a million; this one keeps the
//! history in flat arrays and the graph in compressed rows.

pub mod graph;
pub mod synth;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::report::Verdict;
use graph::{Class, Graph, PROCESS, REALTIME, RW, RwCount, SearchBudget, WR, WW};

/// A transaction's index in its history.
pub type TxnId = u32;

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Committed, with its reads' values.
    Ok,
    /// Definitely not committed.
    Fail,
    /// Unknown: it may or may not have committed; its reads are unknown.
    Info,
}

/// One micro-operation as a client gives it. Keys are numbers the history
/// interns names to ([`TxnHistory::key`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mop {
    /// Appends a value to a key's list.
    Append(u32, u64),
    /// Reads a key's list; `None` when the value is unknown (a transaction that
    /// did not complete).
    Read(u32, Option<Vec<u64>>),
    /// Writes a register.
    Write(u32, u64),
    /// Reads a register: `Some(None)` is the initial, empty value.
    ReadRegister(u32, Option<Option<u64>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MopKind {
    Append,
    Read,
    Write,
    ReadRegister,
}

/// A micro-operation as stored: values live in the history's one value array, and
/// a list read that is a prefix of its key's list (every read, in a valid history)
/// as its length only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MopRec {
    kind: MopKind,
    key: u32,
    /// First value in the value array, or [`PREFIX`].
    lo: u32,
    /// Number of values; [`UNKNOWN`] when the read's value is unknown.
    len: u32,
}

const UNKNOWN: u32 = u32::MAX;
/// A list read stored as the first `len` elements of its key's list.
const PREFIX: u32 = u32::MAX;
/// Keys above this are not given a list of their own (reads of them are stored
/// whole): a sparse key space must not allocate a slot for every number.
const MAX_LIST_KEY: u32 = 1 << 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TxnRec {
    invoke: u64,
    /// [`NEVER`] for a transaction that did not complete.
    complete: u64,
    /// The history's index of its invoke event, [`NEVER`] when none was given.
    index: u64,
    process: u32,
    mops: u32,
    n: u32,
    /// The node the client talked to, [`NO_NODE`] when none was given (it fits
    /// beside `status` in what the record's alignment leaves).
    node: u16,
    status: Status,
}

const NO_NODE: u16 = u16::MAX;

const NEVER: u64 = u64::MAX;

/// A micro-operation as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MopView<'a> {
    Append(u32, u64),
    Read(u32, Option<&'a [u64]>),
    Write(u32, u64),
    ReadRegister(u32, Option<Option<u64>>),
}

impl MopView<'_> {
    pub fn key(&self) -> u32 {
        match *self {
            MopView::Append(k, _)
            | MopView::Read(k, _)
            | MopView::Write(k, _)
            | MopView::ReadRegister(k, _) => k,
        }
    }
}

/// A history of transactions in flat arrays: 40 bytes a transaction, 16 a
/// micro-operation and 8 a value written. Each key's list is kept once, as long as
/// the longest read of it so far; a read that is a prefix of it (or extends it) is
/// stored as its length, so a read costs no more than its micro-operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnHistory {
    txns: Vec<TxnRec>,
    mops: Vec<MopRec>,
    values: Vec<u64>,
    lists: Vec<Vec<u64>>,
    keys: Vec<String>,
    key_ids: BTreeMap<String, u32>,
}

impl TxnHistory {
    pub fn new() -> TxnHistory {
        TxnHistory::default()
    }

    /// The number of the key `name`, interned on first use.
    pub fn key(&mut self, name: &str) -> u32 {
        if let Some(id) = self.key_ids.get(name) {
            return *id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(name.to_string());
        self.key_ids.insert(name.to_string(), id);
        id
    }

    /// The name of key `id` (its number when it was never named).
    pub fn key_name(&self, id: u32) -> String {
        self.keys
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    /// Adds a transaction of `process`, invoked at `invoke` and completed at
    /// `complete` (`None` if it never completed; its status is then `Info`), with its
    /// micro-operations in order. Times are any monotonic unit.
    pub fn push(
        &mut self,
        process: u32,
        invoke: u64,
        complete: Option<u64>,
        status: Status,
        mops: &[Mop],
    ) -> TxnId {
        // Grown by an eighth rather than doubled: a history of a million
        // transactions is mostly these arrays, and a doubled one is up to half empty.
        fn grow<T>(v: &mut Vec<T>, more: usize) {
            if v.len() + more > v.capacity() {
                v.reserve_exact(v.capacity() / 8 + more + 1024);
            }
        }
        grow(&mut self.txns, 1);
        grow(&mut self.mops, mops.len());
        grow(&mut self.values, mops.len());
        let id = self.txns.len() as TxnId;
        let start = self.mops.len() as u32;
        for m in mops {
            let lo = self.values.len() as u32;
            let (kind, key, len) = match m {
                Mop::Append(k, v) => {
                    self.values.push(*v);
                    (MopKind::Append, *k, 1)
                }
                Mop::Write(k, v) => {
                    self.values.push(*v);
                    (MopKind::Write, *k, 1)
                }
                Mop::Read(k, None) => (MopKind::Read, *k, UNKNOWN),
                Mop::Read(k, Some(vs)) => {
                    let len = vs.len() as u32;
                    assert!(len < UNKNOWN, "a read of {len} elements");
                    if self.as_prefix(*k, vs) {
                        self.mops.push(MopRec {
                            kind: MopKind::Read,
                            key: *k,
                            lo: PREFIX,
                            len,
                        });
                        continue;
                    }
                    self.values.extend_from_slice(vs);
                    (MopKind::Read, *k, len)
                }
                Mop::ReadRegister(k, None) => (MopKind::ReadRegister, *k, UNKNOWN),
                Mop::ReadRegister(k, Some(None)) => (MopKind::ReadRegister, *k, 0),
                Mop::ReadRegister(k, Some(Some(v))) => {
                    self.values.push(*v);
                    (MopKind::ReadRegister, *k, 1)
                }
            };
            assert!(lo < PREFIX, "more than 4 billion values");
            self.mops.push(MopRec { kind, key, lo, len });
        }
        let status = if complete.is_none() {
            Status::Info
        } else {
            status
        };
        self.txns.push(TxnRec {
            process,
            status,
            invoke,
            complete: complete.unwrap_or(NEVER),
            index: NEVER,
            node: NO_NODE,
            mops: start,
            n: mops.len() as u32,
        });
        id
    }

    /// Names the history event that invoked transaction `t`, so a report can point
    /// at it on the history's timeline, and the node its client talked to (a node
    /// numbered past 65,534 is kept as none).
    pub fn set_index(&mut self, t: TxnId, index: u64, node: Option<u32>) {
        let rec = &mut self.txns[t as usize];
        rec.index = index;
        rec.node = node
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n != NO_NODE)
            .unwrap_or(NO_NODE);
    }

    /// The node transaction `t`'s client talked to, when the history said.
    pub fn node(&self, t: TxnId) -> Option<u32> {
        let node = self.txns[t as usize].node;
        (node != NO_NODE).then_some(u32::from(node))
    }

    /// The history's index of transaction `t`'s invoke event, when one was given.
    pub fn index(&self, t: TxnId) -> Option<u64> {
        let index = self.txns[t as usize].index;
        (index != NEVER).then_some(index)
    }

    /// Whether `read` is a prefix of key `k`'s list, after extending the list with
    /// it if the list is a prefix of it.
    fn as_prefix(&mut self, k: u32, read: &[u64]) -> bool {
        if k > MAX_LIST_KEY {
            return false;
        }
        if self.lists.len() <= k as usize {
            self.lists.resize_with(k as usize + 1, Vec::new);
        }
        let list = &mut self.lists[k as usize];
        if list.starts_with(read) {
            return true;
        }
        if read.starts_with(list) {
            list.extend_from_slice(&read[list.len()..]);
            return true;
        }
        false
    }

    /// Makes a nil read of a key some transaction appends to an empty list, as
    /// Maelstrom's and Elle's list-append do (a read of a list never appended to
    /// returns null), and releases the arrays' slack: call once the history is
    /// complete.
    pub fn finish(&mut self) {
        let mut appended: Vec<u32> = self
            .mops
            .iter()
            .filter(|m| m.kind == MopKind::Append)
            .map(|m| m.key)
            .collect();
        appended.sort_unstable();
        appended.dedup();
        for m in &mut self.mops {
            if m.kind == MopKind::ReadRegister
                && m.len == 0
                && appended.binary_search(&m.key).is_ok()
            {
                *m = MopRec {
                    kind: MopKind::Read,
                    key: m.key,
                    lo: PREFIX,
                    len: 0,
                };
            }
        }
        self.shrink_to_fit();
    }

    /// Releases the slack of the arrays once the history is complete.
    pub fn shrink_to_fit(&mut self) {
        self.txns.shrink_to_fit();
        self.mops.shrink_to_fit();
        self.values.shrink_to_fit();
        for l in &mut self.lists {
            l.shrink_to_fit();
        }
        self.lists.shrink_to_fit();
    }

    /// The values of the read at `mop` (an index into the micro-operations).
    fn read_values(&self, mop: u32) -> &[u64] {
        let m = &self.mops[mop as usize];
        if m.len == 0 {
            return &[];
        }
        if m.lo == PREFIX {
            return &self.lists[m.key as usize][..m.len as usize];
        }
        &self.values[m.lo as usize..(m.lo + m.len) as usize]
    }

    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    pub fn status(&self, t: TxnId) -> Status {
        self.txns[t as usize].status
    }

    /// When transaction `t` was invoked and completed (`None`: it never did).
    pub fn times(&self, t: TxnId) -> (u64, Option<u64>) {
        let rec = self.txns[t as usize];
        (rec.invoke, (rec.complete != NEVER).then_some(rec.complete))
    }

    pub fn process(&self, t: TxnId) -> u32 {
        self.txns[t as usize].process
    }

    /// Transaction `t`'s micro-operations, in order.
    pub fn mops(&self, t: TxnId) -> impl Iterator<Item = MopView<'_>> + '_ {
        let rec = self.txns[t as usize];
        (rec.mops..rec.mops + rec.n).map(move |i| self.view(i))
    }

    fn view(&self, i: u32) -> MopView<'_> {
        let m = &self.mops[i as usize];
        let vals = |_: &MopRec| self.read_values(i);
        match m.kind {
            MopKind::Append => MopView::Append(m.key, self.values[m.lo as usize]),
            MopKind::Write => MopView::Write(m.key, self.values[m.lo as usize]),
            MopKind::Read if m.len == UNKNOWN => MopView::Read(m.key, None),
            MopKind::Read => MopView::Read(m.key, Some(vals(m))),
            MopKind::ReadRegister if m.len == UNKNOWN => MopView::ReadRegister(m.key, None),
            MopKind::ReadRegister if m.len == 0 => MopView::ReadRegister(m.key, Some(None)),
            MopKind::ReadRegister => {
                MopView::ReadRegister(m.key, Some(Some(self.values[m.lo as usize])))
            }
        }
    }

    /// Bytes the history holds.
    pub fn bytes(&self) -> usize {
        self.txns.capacity() * std::mem::size_of::<TxnRec>()
            + self.mops.capacity() * std::mem::size_of::<MopRec>()
            + self.values.capacity() * 8
            + self.lists.capacity() * 24
            + self.lists.iter().map(|l| l.capacity() * 8).sum::<usize>()
            + self.keys.iter().map(|k| 2 * k.len() + 56).sum::<usize>()
    }

    /// The transaction in words: `T3 (process 1): append x 5, read y [1, 2]`.
    pub fn describe(&self, t: TxnId) -> String {
        let mut s = format!("T{t} (process {}", self.process(t));
        match self.status(t) {
            Status::Ok => {}
            Status::Fail => s.push_str(", failed"),
            Status::Info => s.push_str(", indeterminate"),
        }
        s.push_str("):");
        for (i, m) in self.mops(t).enumerate() {
            s.push_str(if i == 0 { " " } else { ", " });
            let k = self.key_name(m.key());
            match m {
                MopView::Append(_, v) => write!(s, "append {k} {v}"),
                MopView::Write(_, v) => write!(s, "write {k} {v}"),
                MopView::Read(_, None) | MopView::ReadRegister(_, None) => {
                    write!(s, "read {k} ?")
                }
                MopView::Read(_, Some(vs)) => write!(s, "read {k} {vs:?}"),
                MopView::ReadRegister(_, Some(None)) => write!(s, "read {k} nil"),
                MopView::ReadRegister(_, Some(Some(v))) => write!(s, "read {k} {v}"),
            }
            .expect("writing to a string");
        }
        s
    }
}

/// The consistency models a history can be judged against, weakest first; each
/// forbids what the one before it does and more ([`Model::forbids`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    ReadUncommitted,
    ReadCommitted,
    SnapshotIsolation,
    Serializable,
    /// Serializable, and each process observes its own earlier transactions.
    StrongSessionSerializable,
    /// Serializable in an order that agrees with real time.
    StrictSerializable,
}

impl Model {
    pub const ALL: [Model; 6] = [
        Model::ReadUncommitted,
        Model::ReadCommitted,
        Model::SnapshotIsolation,
        Model::Serializable,
        Model::StrongSessionSerializable,
        Model::StrictSerializable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Model::ReadUncommitted => "read-uncommitted",
            Model::ReadCommitted => "read-committed",
            Model::SnapshotIsolation => "snapshot-isolation",
            Model::Serializable => "serializable",
            Model::StrongSessionSerializable => "strong-session-serializable",
            Model::StrictSerializable => "strict-serializable",
        }
    }

    pub fn parse(s: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether the model rules `kind` out.
    pub fn forbids(self, kind: TxnAnomalyKind) -> bool {
        use TxnAnomalyKind as K;
        match kind {
            // No model explains these: they are not isolation, they are wrong data.
            K::Internal | K::DuplicateElements | K::IncompatibleOrder | K::GarbageRead => true,
            K::G0 => true,
            K::G1a | K::G1b | K::G1c => self >= Model::ReadCommitted,
            K::GSingle => self >= Model::SnapshotIsolation,
            K::G2Item => self >= Model::Serializable,
            K::G0Process | K::G1cProcess | K::GSingleProcess | K::G2ItemProcess => {
                self >= Model::StrongSessionSerializable
            }
            K::G0Realtime
            | K::G1cRealtime
            | K::GSingleRealtime
            | K::G2ItemRealtime
            | K::LostAppend => self == Model::StrictSerializable,
        }
    }

    /// The orders the model adds to the dependencies.
    fn orders(self) -> u8 {
        match self {
            Model::StrictSerializable => PROCESS | REALTIME,
            Model::StrongSessionSerializable => PROCESS,
            _ => 0,
        }
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every anomaly the transaction checker names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TxnAnomalyKind {
    /// A cycle of write-write dependencies (dirty write).
    G0,
    /// A read of a write whose transaction aborted.
    G1a,
    /// A read of a write its own transaction later overwrote (intermediate read).
    G1b,
    /// A cycle of write-write and write-read dependencies (circular information flow).
    G1c,
    /// A cycle with exactly one anti-dependency (read skew).
    GSingle,
    /// A cycle with two or more anti-dependencies (write skew).
    G2Item,
    G0Process,
    G1cProcess,
    GSingleProcess,
    G2ItemProcess,
    G0Realtime,
    G1cRealtime,
    GSingleRealtime,
    G2ItemRealtime,
    /// A transaction that does not observe its own earlier reads and writes.
    Internal,
    /// A read list with one element twice.
    DuplicateElements,
    /// Two reads of one key that no single order of appends explains.
    IncompatibleOrder,
    /// A read of a value nobody wrote.
    GarbageRead,
    /// An acknowledged append missing from every read of its key, one of which began
    /// after the append completed.
    LostAppend,
}

impl TxnAnomalyKind {
    pub fn as_str(self) -> &'static str {
        use TxnAnomalyKind as K;
        match self {
            K::G0 => "G0",
            K::G1a => "G1a",
            K::G1b => "G1b",
            K::G1c => "G1c",
            K::GSingle => "G-single",
            K::G2Item => "G2-item",
            K::G0Process => "G0-process",
            K::G1cProcess => "G1c-process",
            K::GSingleProcess => "G-single-process",
            K::G2ItemProcess => "G2-item-process",
            K::G0Realtime => "G0-realtime",
            K::G1cRealtime => "G1c-realtime",
            K::GSingleRealtime => "G-single-realtime",
            K::G2ItemRealtime => "G2-item-realtime",
            K::Internal => "internal",
            K::DuplicateElements => "duplicate-elements",
            K::IncompatibleOrder => "incompatible-order",
            K::GarbageRead => "garbage-read",
            K::LostAppend => "lost-append",
        }
    }
}

impl std::fmt::Display for TxnAnomalyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One edge of a cycle, with why it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleStep {
    pub from: TxnId,
    pub to: TxnId,
    /// `ww`, `wr`, `rw`, `process` or `realtime`.
    pub kind: String,
    pub why: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnAnomaly {
    pub kind: TxnAnomalyKind,
    /// The transactions that show it (for a cycle, in its order).
    pub txns: Vec<TxnId>,
    /// The cycle, edge by edge (empty for the anomalies that need none).
    pub cycle: Vec<CycleStep>,
    /// The anomaly in words, the transactions quoted.
    pub message: String,
}

/// The verdict on a transaction history under one model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TxnReport {
    pub model: Model,
    pub verdict: Verdict,
    /// Every anomaly found, forbidden by the model or not.
    pub anomalies: Vec<TxnAnomaly>,
    /// The kinds found that the model forbids, each once.
    pub forbidden: Vec<TxnAnomalyKind>,
    /// What the inference could not order (rw-register).
    pub not_inferred: Vec<String>,
    /// Why the verdict is unknown.
    pub unknown: Option<String>,
    pub txns: usize,
    pub edges: usize,
    /// Strongly connected components of more than one transaction.
    pub components: usize,
}

/// Limits of a transaction check.
#[derive(Clone, Debug)]
pub struct TxnOptions {
    pub model: Model,
    pub time_limit: Option<Duration>,
    /// Most node visits of the cycle search over all components.
    pub max_steps: u64,
    /// Most bytes the inferred edges and graph may take.
    pub max_bytes: usize,
    /// Most anomalies of one kind reported (the count is kept).
    pub max_reported: usize,
}

impl Default for TxnOptions {
    fn default() -> Self {
        TxnOptions {
            model: Model::StrictSerializable,
            time_limit: Some(Duration::from_secs(60)),
            max_steps: 50_000_000,
            max_bytes: 4 << 30,
            max_reported: 8,
        }
    }
}

/// An append or write: its key, value and transaction, sorted by (key, value).
#[derive(Clone, Copy, Debug)]
struct Writer {
    key: u32,
    value: u64,
    txn: TxnId,
    /// Its transaction wrote the key again after it.
    overwritten: bool,
}

struct Checker<'h> {
    h: &'h TxnHistory,
    opts: &'h TxnOptions,
    deadline: Option<Instant>,
    anomalies: Vec<TxnAnomaly>,
    counts: BTreeMap<TxnAnomalyKind, usize>,
    /// Packed by [`graph::pack`].
    edges: Vec<u64>,
    not_inferred: Vec<String>,
    unknown: Option<String>,
}

/// Judges `history` under `opts.model`.
pub fn check(history: &TxnHistory, opts: &TxnOptions) -> TxnReport {
    let mut c = Checker {
        h: history,
        opts,
        deadline: opts.time_limit.map(|d| Instant::now() + d),
        anomalies: Vec::new(),
        counts: BTreeMap::new(),
        edges: Vec::new(),
        not_inferred: Vec::new(),
        unknown: None,
    };
    if history.len() > graph::MAX_NODES {
        c.unknown = Some(format!(
            "{} transactions: more than the {} the graph holds",
            history.len(),
            graph::MAX_NODES
        ));
        return c.report(0, 0);
    }
    c.internal();
    let writers = c.writers();
    match writers {
        Ok(writers) => {
            let appends = history.mops.iter().any(|m| m.kind == MopKind::Append);
            let registers = history
                .mops
                .iter()
                .any(|m| matches!(m.kind, MopKind::Write | MopKind::ReadRegister));
            if appends {
                c.list_append(&writers);
            }
            if registers {
                c.rw_register(&writers);
            }
        }
        Err(why) => c.unknown = Some(why),
    }
    let orders = opts.model.orders();
    if orders & PROCESS != 0 {
        c.process_order();
    }
    if orders & REALTIME != 0 {
        c.realtime_order();
    }
    let (edges, components) = c.cycles();
    c.report(edges, components)
}

impl<'h> Checker<'h> {
    /// An anomaly that needs no cycle; its message is led by its name, as a
    /// cycle's is.
    fn found(&mut self, kind: TxnAnomalyKind, txns: Vec<TxnId>, message: String) {
        self.found_cycle(kind, txns, Vec::new(), format!("{kind}: {message}"));
    }

    fn found_cycle(
        &mut self,
        kind: TxnAnomalyKind,
        txns: Vec<TxnId>,
        cycle: Vec<CycleStep>,
        message: String,
    ) {
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        if *n <= self.opts.max_reported {
            self.anomalies.push(TxnAnomaly {
                kind,
                txns,
                cycle,
                message,
            });
        }
    }

    fn edge(&mut self, from: TxnId, to: TxnId, kind: u8) {
        if from != to {
            self.edges.push(graph::pack(from, to, kind));
        }
    }

    fn edges_over_budget(&mut self) -> bool {
        let bytes = self.edges.capacity() * 8;
        if bytes > self.opts.max_bytes && self.unknown.is_none() {
            self.unknown = Some(format!(
                "the dependency edges need more than the memory budget of {} MB",
                self.opts.max_bytes >> 20
            ));
        }
        self.unknown.is_some()
    }

    /// Every transaction reads its own writes and repeats its own reads.
    fn internal(&mut self) {
        let h = self.h;
        // Per key: what the transaction knows of it (a list, or a register value),
        // and its appends since it last read it.
        let mut state: Vec<(u32, Option<Vec<u64>>, Vec<u64>)> = Vec::new();
        for t in 0..h.len() as TxnId {
            if h.status(t) != Status::Ok {
                continue;
            }
            state.clear();
            for m in h.mops(t) {
                let k = m.key();
                let at = match state.iter().position(|(key, ..)| *key == k) {
                    Some(at) => at,
                    None => {
                        state.push((k, None, Vec::new()));
                        state.len() - 1
                    }
                };
                let (_, known, appended) = &mut state[at];
                let bad = match m {
                    MopView::Append(_, v) => {
                        appended.push(v);
                        None
                    }
                    MopView::Write(_, v) => {
                        *known = Some(vec![v]);
                        None
                    }
                    MopView::Read(_, Some(got)) => {
                        let expected: Option<Vec<u64>> = known
                            .as_ref()
                            .map(|k| k.iter().chain(appended.iter()).copied().collect());
                        let bad = match &expected {
                            Some(e) => (e.as_slice() != got).then(|| format!("{e:?}")),
                            None => (!got.ends_with(appended))
                                .then(|| format!("a list ending in its own appends {appended:?}")),
                        };
                        *known = Some(got.to_vec());
                        appended.clear();
                        bad
                    }
                    MopView::ReadRegister(_, Some(got)) => {
                        let bad = match known {
                            Some(k) if k.first().copied() != got => {
                                Some(format!("{:?}", k.first()))
                            }
                            _ => None,
                        };
                        *known = Some(got.into_iter().collect());
                        bad
                    }
                    MopView::Read(_, None) | MopView::ReadRegister(_, None) => None,
                };
                if let Some(expected) = bad {
                    let message = format!(
                        "{}: its read of {} returned other than its own earlier operations imply ({expected})",
                        h.describe(t),
                        h.key_name(k)
                    );
                    self.found(TxnAnomalyKind::Internal, vec![t], message);
                    break;
                }
            }
        }
    }

    /// Every append and write, sorted by (key, value); an error if two share a
    /// value (the inference needs unique values).
    fn writers(&mut self) -> Result<Vec<Writer>, String> {
        let h = self.h;
        let mut writers = Vec::new();
        for t in 0..h.len() as TxnId {
            let start = writers.len();
            for m in h.mops(t) {
                if let MopView::Append(key, value) | MopView::Write(key, value) = m {
                    for w in &mut writers[start..] {
                        let w: &mut Writer = w;
                        if w.key == key {
                            w.overwritten = true;
                        }
                    }
                    writers.push(Writer {
                        key,
                        value,
                        txn: t,
                        overwritten: false,
                    });
                }
            }
        }
        writers.sort_unstable_by_key(|w| (w.key, w.value));
        if let Some(w) = writers
            .windows(2)
            .find(|w| (w[0].key, w[0].value) == (w[1].key, w[1].value))
        {
            return Err(format!(
                "T{} and T{} both wrote {} to {}: the inference needs unique values per key",
                w[0].txn,
                w[1].txn,
                w[0].value,
                h.key_name(w[0].key)
            ));
        }
        Ok(writers)
    }

    /// The writer of `value` to `key`, as an index into `writers`.
    fn writer_of(writers: &[Writer], key: u32, value: u64) -> Option<usize> {
        writers
            .binary_search_by_key(&(key, value), |w| (w.key, w.value))
            .ok()
    }

    /// The reads that show what a transaction saw of a key before it wrote it
    /// itself: `(key, txn, micro-op index, length)`, Ok transactions only, sorted by key.
    fn external_reads(&self, kind: MopKind) -> Vec<(u32, TxnId, u32, u32)> {
        let h = self.h;
        let mut reads = Vec::new();
        let mut written: Vec<u32> = Vec::new();
        let mut read: Vec<u32> = Vec::new();
        for t in 0..h.len() as TxnId {
            let rec = h.txns[t as usize];
            if rec.status != Status::Ok {
                continue;
            }
            written.clear();
            read.clear();
            for i in rec.mops..rec.mops + rec.n {
                let m = &h.mops[i as usize];
                match m.kind {
                    MopKind::Append | MopKind::Write => written.push(m.key),
                    k if k == kind
                        && m.len != UNKNOWN
                        && !written.contains(&m.key)
                        && !read.contains(&m.key) =>
                    {
                        read.push(m.key);
                        reads.push((m.key, t, i, m.len));
                    }
                    _ => {}
                }
            }
        }
        reads.sort_unstable_by_key(|r| (r.0, r.1));
        reads
    }

    fn list_append(&mut self, writers: &[Writer]) {
        let h = self.h;
        // Every read, also those after the transaction's own appends, must be a
        // prefix of the key's longest read.
        let mut all: Vec<(u32, TxnId, u32, u32)> = Vec::new();
        for t in 0..h.len() as TxnId {
            let rec = h.txns[t as usize];
            if rec.status != Status::Ok {
                continue;
            }
            for i in rec.mops..rec.mops + rec.n {
                let m = &h.mops[i as usize];
                if m.kind == MopKind::Read && m.len != UNKNOWN {
                    all.push((m.key, t, i, m.len));
                }
            }
        }
        all.sort_unstable_by_key(|r| (r.0, r.1));
        let vals = |mop: u32, _len: u32| h.read_values(mop);
        // Per key: its longest read, and the position of each writer in it.
        let mut position: Vec<u32> = vec![u32::MAX; writers.len()];
        let mut longest: BTreeMap<u32, (TxnId, u32, u32)> = BTreeMap::new();
        let mut bad_keys: Vec<u32> = Vec::new();
        let mut at = 0;
        while at < all.len() {
            let key = all[at].0;
            let end = at + all[at..].partition_point(|r| r.0 == key);
            let &(_, lt, llo, llen) = all[at..end]
                .iter()
                .max_by_key(|r| (r.3, std::cmp::Reverse(r.1)))
                .expect("one read at least");
            let order = vals(llo, llen);
            for &(_, t, mop, len) in &all[at..end] {
                if !order.starts_with(vals(mop, len)) {
                    let message = format!(
                        "{} and {} read {} in orders no sequence of appends gives: {:?} is not a prefix of {:?}",
                        h.describe(t),
                        h.describe(lt),
                        h.key_name(key),
                        vals(mop, len),
                        order
                    );
                    self.found(TxnAnomalyKind::IncompatibleOrder, vec![t, lt], message);
                    bad_keys.push(key);
                    break;
                }
            }
            for (i, v) in order.iter().enumerate() {
                match Self::writer_of(writers, key, *v) {
                    None => {
                        let message = format!(
                            "{} read {} {order:?}, but no transaction appended {v} to it",
                            h.describe(lt),
                            h.key_name(key)
                        );
                        self.found(TxnAnomalyKind::GarbageRead, vec![lt], message);
                    }
                    Some(w) if position[w] != u32::MAX => {
                        let message = format!(
                            "{} read {} {order:?}, with {v} twice",
                            h.describe(lt),
                            h.key_name(key)
                        );
                        self.found(TxnAnomalyKind::DuplicateElements, vec![lt], message);
                        bad_keys.push(key);
                        break;
                    }
                    Some(w) => position[w] = i as u32,
                }
            }
            longest.insert(key, (lt, llo, llen));
            at = end;
        }
        bad_keys.sort_unstable();
        bad_keys.dedup();
        for key in &bad_keys {
            self.not_inferred.push(format!(
                "{}: its reads give no single order of appends; no dependency is inferred from it",
                h.key_name(*key)
            ));
        }
        // Aborted and intermediate reads, from every read.
        for &(key, t, mop, len) in &all {
            if len == 0 {
                continue;
            }
            let seen = vals(mop, len);
            if let Some(w) = seen
                .iter()
                .filter_map(|v| Self::writer_of(writers, key, *v))
                .find(|w| h.status(writers[*w].txn) == Status::Fail)
            {
                let message = format!(
                    "{} read {} {seen:?}, which holds {} appended by {}, a transaction that failed",
                    h.describe(t),
                    h.key_name(key),
                    writers[w].value,
                    h.describe(writers[w].txn)
                );
                self.found(TxnAnomalyKind::G1a, vec![t, writers[w].txn], message);
            }
            let last = *seen.last().expect("not empty");
            if let Some(w) = Self::writer_of(writers, key, last) {
                let w = writers[w];
                if w.overwritten && w.txn != t {
                    let message = format!(
                        "{} read {} {seen:?}, ending in {last}, which {} appended before appending to it again: an intermediate state",
                        h.describe(t),
                        h.key_name(key),
                        h.describe(w.txn)
                    );
                    self.found(TxnAnomalyKind::G1b, vec![t, w.txn], message);
                }
            }
        }
        drop(all);
        // Dependencies. An acknowledged append no read saw still follows every
        // element some read saw (reads are prefixes of the key's final list): it
        // gets a ww edge from the last one, and an rw edge from each read that saw
        // the whole known order. Its place among the other unseen appends is unknown.
        let committed = |t: TxnId| h.status(t) != Status::Fail;
        let mut unseen: BTreeMap<u32, Vec<TxnId>> = BTreeMap::new();
        for (&key, &(_, mop, len)) in &longest {
            if bad_keys.binary_search(&key).is_ok() {
                continue;
            }
            let order = vals(mop, len);
            let mut prev: Option<TxnId> = None;
            for v in order {
                let Some(w) = Self::writer_of(writers, key, *v) else {
                    prev = None;
                    continue;
                };
                let t = writers[w].txn;
                if let Some(p) = prev {
                    if committed(p) && committed(t) {
                        self.edge(p, t, WW);
                    }
                }
                prev = Some(t);
            }
            let lo = writers.partition_point(|w| w.key < key);
            let hi = writers.partition_point(|w| w.key <= key);
            let missing: Vec<TxnId> = (lo..hi)
                .filter(|w| position[*w] == u32::MAX && h.status(writers[*w].txn) == Status::Ok)
                .map(|w| writers[w].txn)
                .collect();
            if missing.is_empty() {
                continue;
            }
            let last = order
                .last()
                .and_then(|v| Self::writer_of(writers, key, *v))
                .map(|w| writers[w].txn);
            for &u in &missing {
                if let Some(p) = last.filter(|p| committed(*p)) {
                    self.edge(p, u, WW);
                }
            }
            unseen.insert(key, missing);
        }
        if self.edges_over_budget() {
            return;
        }
        let reads = self.external_reads(MopKind::Read);
        for &(key, t, mop, len) in &reads {
            if bad_keys.binary_search(&key).is_ok() {
                continue;
            }
            let Some(&(_, olo, olen)) = longest.get(&key) else {
                continue;
            };
            let order = vals(olo, olen);
            if len > 0 {
                let last = *vals(mop, len).last().expect("not empty");
                if let Some(w) = Self::writer_of(writers, key, last) {
                    if committed(writers[w].txn) {
                        self.edge(writers[w].txn, t, WR);
                    }
                }
            }
            if (len as usize) < order.len() {
                if let Some(w) = Self::writer_of(writers, key, order[len as usize]) {
                    if committed(writers[w].txn) {
                        self.edge(t, writers[w].txn, RW);
                    }
                }
            } else if let Some(missing) = unseen.get(&key) {
                for &u in missing {
                    self.edge(t, u, RW);
                }
            }
            if self.edges.len() % 65_536 == 0 && self.edges_over_budget() {
                return;
            }
        }
        // Appends acknowledged before a read of their key began, missing from it.
        if self.opts.model == Model::StrictSerializable {
            let mut last_invoke: BTreeMap<u32, (u64, TxnId)> = BTreeMap::new();
            for &(key, t, _, _) in &reads {
                let inv = h.txns[t as usize].invoke;
                let e = last_invoke.entry(key).or_insert((inv, t));
                if inv > e.0 {
                    *e = (inv, t);
                }
            }
            for (w, p) in writers.iter().zip(&position) {
                if *p != u32::MAX || h.status(w.txn) != Status::Ok {
                    continue;
                }
                let Some(&(inv, reader)) = last_invoke.get(&w.key) else {
                    continue;
                };
                if h.txns[w.txn as usize].complete < inv
                    && bad_keys.binary_search(&w.key).is_err()
                    && h.mops(w.txn).any(|m| matches!(m, MopView::Append(..)))
                {
                    let message = format!(
                        "{} was acknowledged, but {} began after it and read {} without {}, as every read of it did",
                        h.describe(w.txn),
                        h.describe(reader),
                        h.key_name(w.key),
                        w.value
                    );
                    self.found(TxnAnomalyKind::LostAppend, vec![w.txn, reader], message);
                }
            }
        }
    }

    fn rw_register(&mut self, writers: &[Writer]) {
        let h = self.h;
        let committed = |t: TxnId| h.status(t) != Status::Fail;
        // Every read, for G1a, G1b and garbage.
        for t in 0..h.len() as TxnId {
            if h.status(t) != Status::Ok {
                continue;
            }
            for m in h.mops(t) {
                let MopView::ReadRegister(key, Some(Some(v))) = m else {
                    continue;
                };
                match Self::writer_of(writers, key, v) {
                    None => {
                        let message = format!(
                            "{} read {} {v}, which no transaction wrote",
                            h.describe(t),
                            h.key_name(key)
                        );
                        self.found(TxnAnomalyKind::GarbageRead, vec![t], message);
                    }
                    Some(w) => {
                        let w = writers[w];
                        if h.status(w.txn) == Status::Fail {
                            let message = format!(
                                "{} read {} {v}, written by {}, which failed",
                                h.describe(t),
                                h.key_name(key),
                                h.describe(w.txn)
                            );
                            self.found(TxnAnomalyKind::G1a, vec![t, w.txn], message);
                        } else if w.overwritten && w.txn != t {
                            let message = format!(
                                "{} read {} {v}, which {} overwrote before it committed: an intermediate state",
                                h.describe(t),
                                h.key_name(key),
                                h.describe(w.txn)
                            );
                            self.found(TxnAnomalyKind::G1b, vec![t, w.txn], message);
                        }
                    }
                }
            }
        }
        // Dependencies: wr from every external read; ww where a transaction read a
        // value and overwrote it, and rw from the other readers of that value;
        // rw from a read of the initial value to every writer of the key.
        let reads = self.external_reads(MopKind::ReadRegister);
        // (key, value read) -> the transactions that overwrote it after reading it.
        let mut successors: BTreeMap<(u32, Option<u64>), Vec<TxnId>> = BTreeMap::new();
        // Writes whose transaction had not read the key first: their predecessor in
        // the key's order is unknown.
        let mut blind = 0usize;
        for t in 0..h.len() as TxnId {
            if !committed(t) {
                continue;
            }
            // The first read of each key before the transaction wrote it.
            let mut read: Vec<(u32, Option<u64>)> = Vec::new();
            let mut written: Vec<u32> = Vec::new();
            for m in h.mops(t) {
                match m {
                    MopView::ReadRegister(k, Some(v))
                        if !read.iter().any(|r| r.0 == k) && !written.contains(&k) =>
                    {
                        read.push((k, v));
                    }
                    MopView::Write(k, _) if !written.contains(&k) => {
                        written.push(k);
                        match read.iter().find(|r| r.0 == k) {
                            Some(&(_, v)) => successors.entry((k, v)).or_default().push(t),
                            None => blind += 1,
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut at = 0;
        while at < reads.len() {
            let key = reads[at].0;
            let end = at + reads[at..].partition_point(|r| r.0 == key);
            let lo = writers.partition_point(|w| w.key < key);
            let hi = writers.partition_point(|w| w.key <= key);
            let key_writers = &writers[lo..hi];
            for &(_, t, mop, len) in &reads[at..end] {
                let value = (len == 1).then(|| h.read_values(mop)[0]);
                match value {
                    Some(v) => {
                        if let Some(w) = Self::writer_of(writers, key, v) {
                            if committed(writers[w].txn) {
                                self.edge(writers[w].txn, t, WR);
                            }
                        }
                    }
                    None => {
                        // The initial value precedes every write of the key.
                        for w in key_writers {
                            if committed(w.txn) {
                                self.edge(t, w.txn, RW);
                            }
                        }
                    }
                }
                for &s in successors.get(&(key, value)).map_or(&[][..], |v| v) {
                    self.edge(t, s, RW);
                }
            }
            at = end;
            if self.edges_over_budget() {
                return;
            }
        }
        for ((key, value), succ) in &successors {
            if let Some(v) = value {
                if let Some(w) = Self::writer_of(writers, *key, *v) {
                    for &s in succ {
                        if committed(writers[w].txn) {
                            self.edge(writers[w].txn, s, WW);
                        }
                    }
                }
            }
        }
        if blind > 0 {
            self.not_inferred.push(format!(
                "rw-register: {blind} writes were not preceded by a read of their key in their own transaction; their place in the key's order of versions is unknown, so the ww and rw edges into them are missing and cycles through them go unseen"
            ));
        }
    }

    /// Each process's transactions in the order it ran them (a transaction that did
    /// not complete ends its process's order).
    fn process_order(&mut self) {
        let h = self.h;
        let mut by_process: Vec<(u32, u64, TxnId)> = (0..h.len() as TxnId)
            .filter(|t| h.status(*t) != Status::Fail)
            .map(|t| (h.process(t), h.txns[t as usize].invoke, t))
            .collect();
        by_process.sort_unstable();
        for w in by_process.windows(2) {
            if w[0].0 == w[1].0 && h.status(w[0].2) == Status::Ok {
                self.edge(w[0].2, w[1].2, PROCESS);
            }
        }
    }

    /// Real-time order, transitively reduced: an edge from each transaction on the
    /// frontier of those completed when another is invoked.
    fn realtime_order(&mut self) {
        let h = self.h;
        // (time, 0 = invoke before 1 = complete at the same time, txn)
        let mut events: Vec<(u64, u8, TxnId)> = Vec::with_capacity(2 * h.len());
        for t in 0..h.len() as TxnId {
            let rec = h.txns[t as usize];
            if rec.status == Status::Fail {
                continue;
            }
            events.push((rec.invoke, 0, t));
            if rec.status == Status::Ok && rec.complete != NEVER {
                events.push((rec.complete, 1, t));
            }
        }
        events.sort_unstable();
        let mut frontier: Vec<TxnId> = Vec::new();
        for (_, what, t) in events {
            if what == 0 {
                for &p in &frontier {
                    self.edges.push(graph::pack(p, t, REALTIME));
                }
            } else {
                let invoke = h.txns[t as usize].invoke;
                frontier.retain(|p| h.txns[*p as usize].complete >= invoke);
                frontier.push(t);
            }
            if self.edges.len() % 65_536 == 0 && self.edges_over_budget() {
                return;
            }
        }
    }

    /// The cycles, class by class, in every component.
    fn cycles(&mut self) -> (usize, usize) {
        if self.edges_over_budget() {
            return (self.edges.len(), 0);
        }
        let edges = std::mem::take(&mut self.edges);
        let graph = Graph::build(self.h.len(), edges);
        let orders = self.opts.model.orders();
        let mask = WW | WR | RW | orders;
        let components = graph.components(mask);
        let mut budget = SearchBudget {
            deadline: self.deadline,
            steps: self.opts.max_steps,
        };
        use TxnAnomalyKind as K;
        let data = [
            (K::G0, WW, WW, RwCount::Any),
            (K::G1c, WW | WR, WR, RwCount::Any),
            (K::GSingle, WW | WR | RW, RW, RwCount::Exactly1),
            (K::G2Item, WW | WR | RW, RW, RwCount::AtLeast2),
        ];
        let process = [
            K::G0Process,
            K::G1cProcess,
            K::GSingleProcess,
            K::G2ItemProcess,
        ];
        let realtime = [
            K::G0Realtime,
            K::G1cRealtime,
            K::GSingleRealtime,
            K::G2ItemRealtime,
        ];
        'components: for component in &components {
            let mut found_any = false;
            for (i, &(kind, allowed, pivot, rw)) in data.iter().enumerate() {
                let mut variants = vec![(kind, allowed, pivot)];
                if orders & PROCESS != 0 {
                    variants.push((process[i], allowed | PROCESS, PROCESS));
                }
                if orders & REALTIME != 0 {
                    variants.push((realtime[i], allowed | PROCESS | REALTIME, REALTIME));
                }
                for (kind, allowed, pivot) in variants {
                    let class = Class { allowed, pivot, rw };
                    match graph::find_cycle(&graph, component, class, &mut budget) {
                        Ok(Some(cycle)) => {
                            found_any = true;
                            self.report_cycle(&graph, kind, allowed, cycle);
                            // The weaker variants need not be searched.
                            break;
                        }
                        Ok(None) => {}
                        Err(graph::OutOfBudget) => {
                            self.unknown = Some(format!(
                                "the cycle search ran out of its budget ({} steps{}) in a component of {} transactions",
                                self.opts.max_steps,
                                self.opts
                                    .time_limit
                                    .map(|d| format!(", {:.0} s", d.as_secs_f64()))
                                    .unwrap_or_default(),
                                component.len()
                            ));
                            break 'components;
                        }
                    }
                }
            }
            if !found_any && self.unknown.is_none() {
                // A component with no cycle of any class: its cycles need an edge
                // kind the classes exclude (never, with every kind allowed above).
                self.unknown = Some(format!(
                    "a cycle among {} transactions fits no anomaly class",
                    component.len()
                ));
            }
        }
        (graph.edges(), components.len())
    }

    fn report_cycle(&mut self, graph: &Graph, kind: TxnAnomalyKind, allowed: u8, cycle: Vec<u32>) {
        let h = self.h;
        let mut steps = Vec::new();
        for (i, &from) in cycle.iter().enumerate() {
            let to = cycle[(i + 1) % cycle.len()];
            let kinds = graph.kinds_of(from, to) & allowed;
            let k = graph::counted_kind(kinds, allowed);
            steps.push(CycleStep {
                from,
                to,
                kind: edge_name(k).to_string(),
                why: explain_edge(h, from, to, k),
            });
        }
        let mut message = format!("{kind}: a cycle of {} transactions.", cycle.len());
        for s in &steps {
            write!(message, " {}.", s.why).expect("writing to a string");
        }
        write!(
            message,
            " So T{} must precede itself. Transactions: {}",
            cycle[0],
            cycle
                .iter()
                .map(|t| h.describe(*t))
                .collect::<Vec<_>>()
                .join("; ")
        )
        .expect("writing to a string");
        self.found_cycle(kind, cycle, steps, message);
    }

    fn report(self, edges: usize, components: usize) -> TxnReport {
        let model = self.opts.model;
        // Each kind once: `counts` is keyed by kind.
        let forbidden: Vec<TxnAnomalyKind> = self
            .counts
            .keys()
            .copied()
            .filter(|k| model.forbids(*k))
            .collect();
        let verdict = if !forbidden.is_empty() {
            Verdict::Invalid
        } else if self.unknown.is_some() {
            Verdict::Unknown
        } else {
            Verdict::Valid
        };
        TxnReport {
            model,
            verdict,
            anomalies: self.anomalies,
            forbidden,
            not_inferred: self.not_inferred,
            unknown: self.unknown,
            txns: self.h.len(),
            edges,
            components,
        }
    }
}

fn edge_name(kind: u8) -> &'static str {
    match kind {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        PROCESS => "process",
        REALTIME => "realtime",
        _ => "?",
    }
}

/// Why `from` precedes `to` by an edge of `kind`, in words.
fn explain_edge(h: &TxnHistory, from: TxnId, to: TxnId, kind: u8) -> String {
    let writes = |t: TxnId| -> Vec<(u32, u64)> {
        h.mops(t)
            .filter_map(|m| match m {
                MopView::Append(k, v) | MopView::Write(k, v) => Some((k, v)),
                _ => None,
            })
            .collect()
    };
    let reads = |t: TxnId| -> Vec<(u32, Vec<u64>, bool)> {
        h.mops(t)
            .filter_map(|m| match m {
                MopView::Read(k, Some(vs)) => Some((k, vs.to_vec(), true)),
                MopView::ReadRegister(k, Some(v)) => Some((k, v.into_iter().collect(), false)),
                _ => None,
            })
            .collect()
    };
    let (a, b) = (format!("T{from}"), format!("T{to}"));
    match kind {
        WR => {
            for (k, v) in writes(from) {
                for (rk, seen, _) in reads(to) {
                    if rk == k && seen.last() == Some(&v) {
                        return format!(
                            "{b} read {} {} and so saw {a}'s write of {v}",
                            h.key_name(k),
                            show(&seen)
                        );
                    }
                }
            }
            format!("{b} read what {a} wrote")
        }
        RW => {
            for (k, v) in writes(to) {
                for (rk, seen, list) in reads(from) {
                    if rk == k && !seen.contains(&v) {
                        let what = if list { "appended" } else { "wrote" };
                        return format!(
                            "{a} read {} {} without {v}, which {b} {what} after that state, so {a} must precede {b}",
                            h.key_name(k),
                            show(&seen)
                        );
                    }
                }
            }
            format!("{a} read a state that {b} overwrote, so {a} must precede {b}")
        }
        WW => {
            // The key whose order puts `from`'s write before `to`'s: a list's
            // longest read, or a register `to` read `from`'s value of and then
            // overwrote.
            for (k, v) in writes(from) {
                for (k2, v2) in writes(to) {
                    if k2 != k {
                        continue;
                    }
                    let list = h.lists.get(k as usize).map_or(&[][..], Vec::as_slice);
                    let at = |x: u64| list.iter().position(|y| *y == x);
                    let in_order = matches!((at(v), at(v2)), (Some(i), Some(j)) if i < j)
                        || (at(v).is_some() && at(v2).is_none())
                        || reads(to)
                            .iter()
                            .any(|(rk, seen, list)| !list && *rk == k && seen.first() == Some(&v));
                    if in_order {
                        return format!(
                            "{a} wrote {v} to {} before {b} wrote {v2} to it",
                            h.key_name(k)
                        );
                    }
                }
            }
            format!("{a}'s write precedes {b}'s")
        }
        PROCESS => format!("{a} and {b} ran on process {}, {a} first", h.process(from)),
        REALTIME => format!("{a} completed before {b} began"),
        _ => format!("{a} precedes {b}"),
    }
}

fn show(values: &[u64]) -> String {
    if values.is_empty() {
        "nil/[]".to_string()
    } else {
        format!("{values:?}")
    }
}

#[cfg(test)]
mod tests;
