//! Writes history.jsonl as the run goes (docs/history.md).
//!
//! Every line is a [`checker::history::Event`], the type the checker parses, so the
//! writer and the reader cannot disagree. Index and time are assigned under one lock,
//! so index order is time order. A client records its invoke *before* sending the
//! request and its completion *after* reading the reply, so each recorded interval
//! contains the op's real execution: the checker may then trust real-time order. A
//! background task flushes every 100 ms, so a SIGKILLed harness loses at most the last
//! 100 ms.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use checker::history::{Call, Event, EventType, Func, Outcome, Process};

use crate::vocab::Completion;
use serde_json::Value;

pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

struct Inner {
    out: BufWriter<Box<dyn Write + Send>>,
    next_index: u64,
    /// The time of the last event written: the next is never earlier.
    last_time_ns: u64,
    /// The first write error, said once in the file's words and kept: a history with
    /// a hole cannot be judged, so the run stops ([`Recorder::broken`]) and nothing
    /// more is written.
    broken: Option<String>,
    /// The history built from the events as they are written ([`Recorder::build`]).
    built: Option<checker::history::Builder>,
}

/// Where `time_ns` comes from: the wall clock since the recorder was made, or the
/// simulation's virtual clock, which its driver sets before each event.
enum Clock {
    Wall,
    Virtual(AtomicU64),
}

pub struct Recorder {
    inner: Mutex<Inner>,
    /// The file written, as errors name it.
    name: String,
    start: Instant,
    /// `start` on CLOCK_MONOTONIC, in ns: the origin of the nodes' journals.
    origin_ns: u64,
    clock: Clock,
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    next_process: AtomicU64,
}

impl Recorder {
    /// A recorder writing `path`, stamping events with wall-clock time.
    pub fn create(path: &Path, first_process: u64) -> std::io::Result<Recorder> {
        Ok(Recorder::new(
            Box::new(File::create(path)?),
            path.display().to_string(),
            first_process,
            Clock::Wall,
        ))
    }

    /// A recorder writing to `out`, stamping events with the virtual time last given
    /// to [`Recorder::set_virtual_ns`] (the simulation's clock).
    pub fn with_virtual_clock(out: Box<dyn Write + Send>, first_process: u64) -> Recorder {
        Recorder::new(
            out,
            "history.jsonl".into(),
            first_process,
            Clock::Virtual(AtomicU64::new(0)),
        )
    }

    fn new(out: Box<dyn Write + Send>, name: String, first_process: u64, clock: Clock) -> Recorder {
        Recorder {
            inner: Mutex::new(Inner {
                out: BufWriter::with_capacity(1 << 20, out),
                next_index: 0,
                last_time_ns: 0,
                broken: None,
                built: None,
            }),
            name,
            start: Instant::now(),
            origin_ns: paxos_node::journal::monotonic_ns(),
            clock,
            ok: AtomicU64::new(0),
            fail: AtomicU64::new(0),
            info: AtomicU64::new(0),
            next_process: AtomicU64::new(first_process),
        }
    }

    /// Sets the virtual time of the next events. No effect on a wall-clock recorder.
    pub fn set_virtual_ns(&self, ns: u64) {
        if let Clock::Virtual(now) = &self.clock {
            now.store(ns, Ordering::Relaxed);
        }
    }

    /// A fresh client process number (one never used before in this run).
    pub fn new_process(&self) -> u64 {
        self.next_process.fetch_add(1, Ordering::Relaxed)
    }

    /// The run's time origin (`time_ns` 0).
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The run's time origin on CLOCK_MONOTONIC, in ns (what a node's journal
    /// subtracts from its times).
    pub fn origin_ns(&self) -> u64 {
        self.origin_ns
    }

    /// Time since the origin, on the recorder's clock.
    pub fn elapsed(&self) -> Duration {
        match &self.clock {
            Clock::Wall => self.start.elapsed(),
            Clock::Virtual(now) => Duration::from_nanos(now.load(Ordering::Relaxed)),
        }
    }

    /// Appends one event, stamping its index and time under the lock.
    fn write(&self, mut event: Event) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.broken.is_some() {
            return;
        }
        event.time_ns = self.elapsed().as_nanos() as u64;
        // Index order is time order: both are stamped under this one lock.
        assert!(
            event.time_ns >= inner.last_time_ns,
            "history time went back: {} ns after {} ns",
            event.time_ns,
            inner.last_time_ns
        );
        inner.last_time_ns = event.time_ns;
        event.index = inner.next_index;
        inner.next_index += 1;
        let result = serde_json::to_writer(&mut inner.out, &event)
            .map_err(std::io::Error::from)
            .and_then(|()| inner.out.write_all(b"\n"));
        match result {
            Err(err) => self.break_on(&mut inner, &err),
            Ok(()) => {
                if let Some(built) = inner.built.as_mut() {
                    built.event(event);
                }
            }
        }
    }

    /// From now on, also builds the history from the events as they are written
    /// (what a judge reading the text back would make of it, without reading it):
    /// [`Recorder::built`] hands it over.
    pub fn build(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.built.get_or_insert_with(Default::default);
        }
    }

    /// The history built since [`Recorder::build`], or the first event it refused;
    /// `None` when it was not asked for.
    pub fn built(
        &self,
    ) -> Option<Result<checker::history::History, checker::history::HistoryError>> {
        let mut inner = self.inner.lock().ok()?;
        inner.built.take().map(checker::history::Builder::finish)
    }

    /// Keeps the first write error.
    fn break_on(&self, inner: &mut Inner, err: &std::io::Error) {
        inner
            .broken
            .get_or_insert_with(|| format!("cannot write {}: {err}", self.name));
    }

    /// Why the history can no longer be written (the first write error, naming the
    /// file), once it cannot: the run must stop, since what follows would be lost.
    pub fn broken(&self) -> Option<String> {
        self.inner.lock().ok().and_then(|i| i.broken.clone())
    }

    /// A client's invoke of `op` through `node`.
    pub fn invoke_op(&self, process: u64, op: &crate::vocab::WorkloadOp, node: u32) {
        match (op.call(), op) {
            (Some(call), _) => self.invoke(process, call, op.key(), node),
            (None, crate::vocab::WorkloadOp::Txn { txn }) => {
                self.txn_event(process, EventType::Invoke, txn, node, None)
            }
            (None, _) => unreachable!("every op but a txn has a call"),
        }
    }

    /// The completion of `op`'s invoke: an ok transaction's micro-ops are what it
    /// read; every other completion repeats the invoke's.
    pub fn complete_op(
        &self,
        process: u64,
        op: &crate::vocab::WorkloadOp,
        node: u32,
        done: &Completion,
    ) {
        match (op.call(), op) {
            (Some(call), _) => self.complete(process, call, op.key(), node, done),
            (None, crate::vocab::WorkloadOp::Txn { txn }) => {
                self.count(done.outcome);
                let shown = match (done.outcome, &done.txn) {
                    (Outcome::Ok, Some(read)) => read,
                    _ => txn,
                };
                let kind = EventType::of(done.outcome);
                self.txn_event(process, kind, shown, node, done.error.as_deref());
            }
            (None, _) => unreachable!("every op but a txn has a call"),
        }
    }

    fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Ok => &self.ok,
            Outcome::Fail => &self.fail,
            Outcome::Info => &self.info,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn txn_event(
        &self,
        process: u64,
        kind: EventType,
        txn: &[checker::history::TxnMop],
        node: u32,
        error: Option<&str>,
    ) {
        self.write(Event {
            index: 0,
            time_ns: 0,
            process: Process::Client(process),
            kind,
            f: Func::Fault(Cow::Borrowed("txn")),
            key: None,
            value: Value::Array(txn.iter().map(checker::history::TxnMop::to_json).collect()),
            node: Some(node),
            error: error.map(Cow::Borrowed),
        });
    }

    /// A client's invoke of `call` on `key` through `node`.
    pub fn invoke(&self, process: u64, call: Call, key: &str, node: u32) {
        self.write(Event {
            index: 0,
            time_ns: 0,
            process: Process::Client(process),
            kind: EventType::Invoke,
            f: Func::Op(call.f()),
            key: Some(Cow::Borrowed(key)),
            value: call.value_json(),
            node: Some(node),
            error: None,
        });
    }

    /// The completion of that invoke. An ok read's or propose's value is what it
    /// returned; every other completion repeats the invoke's value.
    pub fn complete(&self, process: u64, call: Call, key: &str, node: u32, done: &Completion) {
        let (outcome, returned, error) = (done.outcome, done.value, done.error.as_deref());
        self.count(outcome);
        let value = match (outcome, call) {
            (Outcome::Ok, Call::Read | Call::Propose { .. }) => {
                returned.map_or(Value::Null, Value::from)
            }
            _ => call.value_json(),
        };
        self.write(Event {
            index: 0,
            time_ns: 0,
            process: Process::Client(process),
            kind: EventType::of(outcome),
            f: Func::Op(call.f()),
            key: Some(Cow::Borrowed(key)),
            value,
            node: Some(node),
            error: error.map(Cow::Borrowed),
        });
    }

    /// A nemesis event (`"process":"nemesis"`, type `info`) named for its fault.
    pub fn nemesis(&self, fault: &str, value: Value) {
        self.write(Event {
            index: 0,
            time_ns: 0,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: Func::Fault(Cow::Borrowed(fault)),
            key: None,
            value,
            node: None,
            error: None,
        });
    }

    /// A scheduled fault and what executing it did (docs/faults.md): the fault's
    /// fields, its targets, its outcome and its scheduled time.
    /// A fault as applied (its targets resolved), its outcome, and for a fault aimed by
    /// role the role and how the leader was learned (docs/faults.md).
    pub fn fault(
        &self,
        fault: &nemesis::ScheduledFault,
        outcome: &nemesis::NemesisOutcome,
        resolution: Option<&nemesis::Resolution>,
    ) {
        let mut value = serde_json::to_value(&fault.fault).unwrap_or(Value::Null);
        value["targets"] = serde_json::json!(fault.targets);
        value["outcome"] = serde_json::to_value(outcome).unwrap_or(Value::Null);
        value["at_ms"] = serde_json::json!(fault.at_ms);
        if let Some(role) = fault.role {
            value["role"] = serde_json::json!(role.name());
        }
        if let Some(r) = resolution {
            value["leader"] = serde_json::json!({
                "id": r.leader,
                "how": r.how,
                "fallback": r.fallback,
            });
        }
        self.nemesis(fault.fault.name(), value);
    }

    /// A node misbehaving (docs/maelstrom.md): one `node-misbehaved` event, with what
    /// it did. The caller bounds how many it records
    /// ([`results::faults::MISBEHAVED_EVENTS_MAX`]) and reports the rest with
    /// [`Recorder::misbehaved_total`].
    pub fn misbehaved(&self, node: u32, kind: results::faults::MisbehaviourKind, detail: &str) {
        self.nemesis(
            results::faults::MISBEHAVED,
            serde_json::json!({"node": node, "kind": kind, "detail": detail}),
        );
    }

    /// How often a node misbehaved in one way over the run, when more often than
    /// was recorded one by one.
    pub fn misbehaved_total(&self, node: u32, kind: results::faults::MisbehaviourKind, total: u64) {
        self.nemesis(
            results::faults::MISBEHAVED,
            serde_json::json!({"node": node, "kind": kind, "total": total}),
        );
    }

    /// Flushes to the file; the first write error seen, if any, every time.
    pub fn flush(&self) -> std::io::Result<()> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| std::io::Error::other("history lock poisoned"))?;
        if let Some(why) = &inner.broken {
            return Err(std::io::Error::other(why.clone()));
        }
        if let Err(e) = inner.out.flush() {
            self.break_on(&mut inner, &e);
            return Err(e);
        }
        Ok(())
    }
}

/// What the nodes of a run (or their clients) did wrong, recorded bounded: one
/// `node-misbehaved` event each up to [`results::faults::MISBEHAVED_EVENTS_MAX`] per
/// node and kind, then, at the end, one event with the total. Every system that can
/// see a node misbehave records through one of these.
pub struct Misbehaviour {
    recorder: std::sync::Arc<Recorder>,
    counts: Mutex<std::collections::BTreeMap<(u32, results::faults::MisbehaviourKind), u64>>,
}

impl Misbehaviour {
    pub fn new(recorder: std::sync::Arc<Recorder>) -> Misbehaviour {
        Misbehaviour {
            recorder,
            counts: Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    /// Node `node` misbehaved in this way; `detail` says how. Returns how often it
    /// has so far.
    pub fn record(&self, node: u32, kind: results::faults::MisbehaviourKind, detail: &str) -> u64 {
        let count = self.counts.lock().map_or(1, |mut c| {
            let n = c.entry((node, kind)).or_default();
            *n += 1;
            *n
        });
        if count <= results::faults::MISBEHAVED_EVENTS_MAX {
            self.recorder.misbehaved(node, kind, detail);
        }
        count
    }

    /// Records the totals of what happened more often than was recorded one by one.
    pub fn totals(&self) {
        let counts = self.counts.lock().map(|c| c.clone()).unwrap_or_default();
        for ((node, kind), total) in counts {
            if total > results::faults::MISBEHAVED_EVENTS_MAX {
                self.recorder.misbehaved_total(node, kind, total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_recorder_writes_the_checker_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let r = Recorder::create(&path, 10).unwrap();
        let p = r.new_process();
        r.invoke(p, Call::Write { value: 7 }, "k\"0", 2);
        r.complete(
            p,
            Call::Write { value: 7 },
            "k\"0",
            2,
            &Completion::ok(None),
        );
        r.invoke(p, Call::Read, "k\"0", 2);
        r.complete(p, Call::Read, "k\"0", 2, &Completion::ok(Some(7)));
        r.invoke(p, Call::Cas { from: 7, to: 8 }, "k\"0", 1);
        let cas = crate::vocab::WorkloadOp::Cas {
            key: "k\"0".into(),
            from: 7,
            to: 8,
        };
        let timed_out = Completion::unknown(&cas, "client-timeout", true);
        r.complete_op(p, &cas, 1, &timed_out);
        r.nemesis(
            "kill",
            serde_json::json!({"targets": [1], "outcome": "installed"}),
        );
        r.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let h = checker::history::parse_history_str(&text).unwrap();
        assert_eq!(h.events, 7);
        assert_eq!(h.ops.len(), 3);
        assert_eq!(&*h.ops[0].key, "k\"0");
        assert_eq!(h.ops[1].result, Some(Some(7)));
        assert_eq!(h.ops[2].outcome, Outcome::Info);
        assert_eq!(h.ops[2].error.as_deref(), Some("client-timeout"));
        assert_eq!(h.ops[2].node, Some(1));
        assert_eq!(h.nemesis[0].f, "kill");
        // The documented line shape.
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with("{\"index\":0,\"time_ns\":")
                && first.contains("\"process\":10,\"type\":\"invoke\",\"f\":\"write\""),
            "{first}"
        );
    }
}
