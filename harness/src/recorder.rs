//! Writes history.jsonl as the run goes (DESIGN.md §5).
//!
//! Index and time are assigned under one lock, so index order is time order. A client
//! records its invoke *before* sending the request and its completion *after* reading
//! the reply, so each recorded interval contains the op's real execution: the checker
//! may then trust real-time order. A background task flushes every 100 ms, so a
//! SIGKILLed harness loses at most the last 100 ms.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

struct Inner {
    out: BufWriter<File>,
    next_index: u64,
    error: Option<std::io::Error>,
}

pub struct Recorder {
    inner: Mutex<Inner>,
    start: Instant,
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    next_process: AtomicU64,
}

/// What a client event says; index and time are added by the recorder.
pub struct ClientEvent<'a> {
    pub process: u64,
    pub kind: &'a str,
    pub f: &'a str,
    pub key: &'a str,
    pub value: Value,
    pub node: u32,
    pub error: Option<&'a str>,
}

impl Recorder {
    pub fn create(path: &Path, first_process: u64) -> std::io::Result<Recorder> {
        Ok(Recorder {
            inner: Mutex::new(Inner {
                out: BufWriter::with_capacity(1 << 20, File::create(path)?),
                next_index: 0,
                error: None,
            }),
            start: Instant::now(),
            ok: AtomicU64::new(0),
            fail: AtomicU64::new(0),
            info: AtomicU64::new(0),
            next_process: AtomicU64::new(first_process),
        })
    }

    /// A fresh client process number (one never used before in this run).
    pub fn new_process(&self) -> u64 {
        self.next_process.fetch_add(1, Ordering::Relaxed)
    }

    /// The run's time origin (`time_ns` 0).
    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Appends one event: `body` is the event's fields after index and time, as JSON
    /// object members without braces. Formatted by the caller, outside the lock; only
    /// the index, the clock read and the copy into the buffer happen under it.
    fn write(&self, body: &str) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let time_ns = self.start.elapsed().as_nanos() as u64;
        let index = inner.next_index;
        inner.next_index += 1;
        let result = writeln!(
            inner.out,
            "{{\"index\":{index},\"time_ns\":{time_ns},{body}}}"
        );
        if let Err(err) = result {
            inner.error.get_or_insert(err);
        }
    }

    pub fn client(&self, e: ClientEvent) {
        match e.kind {
            "ok" => self.ok.fetch_add(1, Ordering::Relaxed),
            "fail" => self.fail.fetch_add(1, Ordering::Relaxed),
            "info" => self.info.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        let mut body = format!(
            "\"process\":{},\"type\":{},\"f\":{},\"key\":{},\"value\":{},\"node\":{}",
            e.process,
            json_str(e.kind),
            json_str(e.f),
            json_str(e.key),
            e.value,
            e.node
        );
        if let Some(err) = e.error {
            body.push_str(",\"error\":");
            body.push_str(&json_str(err));
        }
        self.write(&body);
    }

    /// A nemesis event (`"process":"nemesis"`, type `info`).
    pub fn nemesis(&self, f: &str, value: Value) {
        let body = format!(
            "\"process\":\"nemesis\",\"type\":\"info\",\"f\":{},\"value\":{value}",
            json_str(f)
        );
        self.write(&body);
    }

    /// Flushes to the file; returns the first write error seen, if any.
    pub fn flush(&self) -> std::io::Result<()> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| std::io::Error::other("history lock poisoned"))?;
        if let Some(e) = inner.error.take() {
            return Err(e);
        }
        inner.out.flush()
    }
}

/// A string as a JSON string literal (quoted and escaped).
fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a str always serialises")
}
