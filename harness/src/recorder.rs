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
    sink: Sink,
    next_index: u64,
    /// The time of the last event written: the next is never earlier.
    last_time_ns: u64,
    /// The first write error, said once in the file's words and kept: a history with
    /// a hole cannot be judged, so the run stops ([`Recorder::broken`]) and nothing
    /// more is written.
    broken: Option<String>,
}

/// Where events go once stamped.
enum Sink {
    /// Written under the lock.
    Here {
        out: BufWriter<Box<dyn Write + Send>>,
        /// The history built from the events as they are written ([`Recorder::build`]).
        built: Option<checker::history::Builder>,
    },
    /// Handed in batches to a thread of their own ([`Recorder::with_virtual_clock_apart`]).
    Apart(Apart),
}

/// Events on their way to the writer thread, which writes them, hashes the bytes
/// and builds the history from them.
struct Apart {
    batch: Vec<Event<'static>>,
    /// `None` once closed ([`Recorder::flush`]).
    to_writer: Option<std::sync::mpsc::SyncSender<Vec<Event<'static>>>>,
    writer: Option<std::thread::JoinHandle<Written>>,
    /// The writer's first error, said as soon as it meets it.
    failed: std::sync::Arc<std::sync::OnceLock<std::io::Error>>,
    /// What the writer made, once closed.
    written: Option<Written>,
}

/// Events per batch handed to the writer thread, and batches on their way at most:
/// the simulation never waits for it unless it falls that far behind.
const APART_BATCH: usize = 4096;
const APART_IN_FLIGHT: usize = 16;

/// What the writer thread made of the events.
struct Written {
    /// SHA-256 of the bytes written, in hex.
    sha256: String,
    built: Option<Result<checker::history::History, checker::history::HistoryError>>,
}

/// One event's line of history.jsonl.
fn write_line(out: &mut impl Write, event: &Event) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, event).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

/// The writer thread: writes each batch's events as the recorder would under its
/// lock, hashing the bytes and building the history from the events.
fn write_apart(
    out: Box<dyn Write + Send>,
    batches: std::sync::mpsc::Receiver<Vec<Event<'static>>>,
    failed: &std::sync::OnceLock<std::io::Error>,
) -> Written {
    use sha2::Digest as _;
    /// Hashes what passes through to `out`.
    struct Hashing {
        out: Box<dyn Write + Send>,
        hasher: sha2::Sha256,
    }
    impl Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.out.write(buf)?;
            self.hasher.update(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.out.flush()
        }
    }
    let mut out = BufWriter::with_capacity(
        1 << 20,
        Hashing {
            out,
            hasher: sha2::Sha256::new(),
        },
    );
    let mut built = checker::history::Builder::default();
    for batch in batches {
        for event in batch {
            if failed.get().is_some() {
                continue;
            }
            match write_line(&mut out, &event) {
                Ok(()) => built.event(event),
                Err(e) => {
                    let _ = failed.set(e);
                }
            }
        }
    }
    if let Err(e) = out.flush() {
        let _ = failed.set(e);
    }
    let hashing = match out.into_inner() {
        Ok(h) => h,
        Err(e) => {
            let _ = failed.set(std::io::Error::other(e.error().to_string()));
            e.into_inner().into_parts().0
        }
    };
    Written {
        sha256: crate::sim::hex(&hashing.hasher.finalize()),
        built: Some(built.finish()),
    }
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

    /// [`Recorder::with_virtual_clock`], writing on a thread of its own: the
    /// simulation only stamps each event and hands it over. The thread also hashes
    /// the bytes ([`Recorder::sha256`]) and builds the history ([`Recorder::built`]),
    /// both ready once [`Recorder::flush`] has closed it; nothing is written after.
    pub fn with_virtual_clock_apart(out: Box<dyn Write + Send>, first_process: u64) -> Recorder {
        let (to_writer, batches) = std::sync::mpsc::sync_channel(APART_IN_FLIGHT);
        let failed = std::sync::Arc::new(std::sync::OnceLock::new());
        let theirs = failed.clone();
        let writer = std::thread::Builder::new()
            .name("history".into())
            .spawn(move || write_apart(out, batches, &theirs))
            .expect("a thread for the history's writer");
        let sink = Sink::Apart(Apart {
            batch: Vec::with_capacity(APART_BATCH),
            to_writer: Some(to_writer),
            writer: Some(writer),
            failed,
            written: None,
        });
        Recorder::with_sink(
            sink,
            "history.jsonl".into(),
            first_process,
            Clock::Virtual(AtomicU64::new(0)),
        )
    }

    fn new(out: Box<dyn Write + Send>, name: String, first_process: u64, clock: Clock) -> Recorder {
        let sink = Sink::Here {
            out: BufWriter::with_capacity(1 << 20, out),
            built: None,
        };
        Recorder::with_sink(sink, name, first_process, clock)
    }

    fn with_sink(sink: Sink, name: String, first_process: u64, clock: Clock) -> Recorder {
        Recorder {
            inner: Mutex::new(Inner {
                sink,
                next_index: 0,
                last_time_ns: 0,
                broken: None,
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
        let result = match &mut inner.sink {
            Sink::Here { out, built } => {
                let result = write_line(out, &event);
                if let (Ok(()), Some(built)) = (&result, built.as_mut()) {
                    built.event(event);
                }
                result
            }
            Sink::Apart(apart) => apart.hand_over(event),
        };
        if let Err(err) = result {
            self.break_on(&mut inner, &err);
        }
    }

    /// From now on, also builds the history from the events as they are written
    /// (what a judge reading the text back would make of it, without reading it):
    /// [`Recorder::built`] hands it over.
    pub fn build(&self) {
        if let Ok(mut inner) = self.inner.lock()
            && let Sink::Here { built, .. } = &mut inner.sink
        {
            built.get_or_insert_with(Default::default);
        }
    }

    /// The history built since [`Recorder::build`], or the first event it refused;
    /// `None` when it was not asked for.
    pub fn built(
        &self,
    ) -> Option<Result<checker::history::History, checker::history::HistoryError>> {
        let mut inner = self.inner.lock().ok()?;
        match &mut inner.sink {
            Sink::Here { built, .. } => built.take().map(checker::history::Builder::finish),
            Sink::Apart(apart) => apart.written.as_mut()?.built.take(),
        }
    }

    /// SHA-256 of the history's bytes, in hex, from a recorder writing apart once
    /// [`Recorder::flush`] has closed it.
    pub fn sha256(&self) -> Option<String> {
        let inner = self.inner.lock().ok()?;
        match &inner.sink {
            Sink::Here { .. } => None,
            Sink::Apart(apart) => apart.written.as_ref().map(|w| w.sha256.clone()),
        }
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
        let mut inner = self.inner.lock().ok()?;
        if let Sink::Apart(apart) = &inner.sink
            && let Some(e) = apart.failure()
        {
            self.break_on(&mut inner, &e);
        }
        inner.broken.clone()
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

    /// The run has written its last event: a recorder writing apart hands its
    /// last batch over now, so that the writer finishes while the run winds up
    /// ([`Recorder::flush`] then waits for it). An event after this is refused
    /// as written after the history was closed. No effect on any other recorder.
    pub fn last_event_written(&self) {
        if let Ok(mut inner) = self.inner.lock()
            && let Sink::Apart(apart) = &mut inner.sink
        {
            apart.hand_over_rest();
        }
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
        let flushed = match &mut inner.sink {
            Sink::Here { out, .. } => out.flush(),
            Sink::Apart(apart) => apart.close(),
        };
        if let Err(e) = &flushed {
            self.break_on(&mut inner, e);
        }
        flushed
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

impl Apart {
    /// Queues one stamped event, handing a full batch to the writer.
    fn hand_over(&mut self, event: Event<'_>) -> std::io::Result<()> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let Some(to_writer) = &self.to_writer else {
            return Err(std::io::Error::other(
                "an event after the history was closed",
            ));
        };
        self.batch.push(event.into_owned());
        if self.batch.len() >= APART_BATCH {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(APART_BATCH));
            to_writer
                .send(batch)
                .map_err(|_| std::io::Error::other("the history's writer stopped"))?;
        }
        Ok(())
    }

    /// Hands over the last batch: the writer finishes on its own time.
    fn hand_over_rest(&mut self) {
        if let Some(to_writer) = self.to_writer.take() {
            let batch = std::mem::take(&mut self.batch);
            // A writer that stopped early has said why in `failed`.
            let _ = to_writer.send(batch);
        }
    }

    /// Hands over the last batch and waits for the writer to finish: its file
    /// flushed, its hash and history made. Closing twice is closing once.
    fn close(&mut self) -> std::io::Result<()> {
        self.hand_over_rest();
        if let Some(writer) = self.writer.take() {
            match writer.join() {
                Ok(written) => self.written = Some(written),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The writer's first error, if it met one, in a copy of its own.
    fn failure(&self) -> Option<std::io::Error> {
        let e = self.failed.get()?;
        Some(std::io::Error::new(e.kind(), e.to_string()))
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
