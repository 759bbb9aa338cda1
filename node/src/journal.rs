//! The node's journal (`--journal FILE`): every step the protocol's rules read
//! ([`crate::rules`]), one JSON line each ([`paxos_trace::JournalLine`]), so
//! that `chaos` judges a real run's nodes with the same rules, on the same events,
//! as the simulation judges its steps.
//!
//! Times are CLOCK_MONOTONIC nanoseconds, which every process on the machine shares,
//! minus the run's origin (`--journal-origin-ns`), so the journals of all nodes merge
//! into one order that respects every message (a send is stamped before it leaves,
//! a receipt after it arrives) and line up with the history's times.
//!
//! Lines are buffered per burst and written with one `write` before the burst's
//! records are written to the WAL and before its first effect: a record the node
//! recovers after a kill, or a message another node takes in, is always in the
//! journal already (the page cache keeps it through a kill). A kill during that write
//! can leave a torn last line; the next start ends it with a newline, and the reader
//! skips it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use paxos_trace::{Event, JournalLine};

pub use paxos_trace::LEARNED_FILE;

/// Nanoseconds on CLOCK_MONOTONIC.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always readable");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

pub struct Journal {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    origin_ns: u64,
    /// `learned.jsonl` beside the journal: every slot the node wrote down as chosen,
    /// appended once the record is synced, over all the node's lives. Log agreement
    /// reads it to judge slots a snapshot has since compacted away.
    learned: File,
    /// Lines of chosen slots appended to the WAL and not yet synced.
    unsynced: String,
}

/// Opens `path` for appending, ending a torn last line (a kill mid-write) with a
/// newline so the next line starts clean; returns the file and that newline, if any.
fn open_appending(path: &Path) -> io::Result<(File, Vec<u8>)> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    let len = file.metadata()?.len();
    let mut start = Vec::new();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            start.push(b'\n');
        }
    }
    Ok((file, start))
}

impl Journal {
    /// Opens `path` for appending (a restarted node goes on in the same file).
    pub fn open(path: &Path, origin_ns: u64) -> io::Result<Journal> {
        let (file, start) = open_appending(path)?;
        let mut buf = Vec::with_capacity(64 << 10);
        buf.extend(start);
        let (mut learned, start) = open_appending(&path.with_file_name(LEARNED_FILE))?;
        learned.write_all(&start)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            buf,
            origin_ns,
            learned,
            unsynced: String::new(),
        })
    }

    /// A chosen slot appended to the WAL: written to the learned log once synced.
    pub fn chosen(&mut self, slot: crate::types::Slot, batch: &crate::types::Batch) {
        crate::client::learned_lines(&mut self.unsynced, slot, batch);
    }

    /// The WAL is synced: the chosen slots appended before it are learned.
    pub fn synced(&mut self) -> io::Result<()> {
        if self.unsynced.is_empty() {
            return Ok(());
        }
        self.learned.write_all(self.unsynced.as_bytes())?;
        self.unsynced.clear();
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stamps `event` now and buffers its line.
    pub fn note(&mut self, event: Event) {
        let line = JournalLine {
            t: monotonic_ns().saturating_sub(self.origin_ns),
            event,
        };
        serde_json::to_writer(&mut self.buf, &line).expect("journal lines serialize");
        self.buf.push(b'\n');
    }

    /// Writes the buffered lines.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}
