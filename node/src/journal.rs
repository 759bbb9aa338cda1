//! The node's journal (`--journal FILE`): every step the protocol's rules read
//! ([`crate::rules`]), one JSON line each ([`checker::protocol::JournalLine`]), so
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

use checker::protocol::{Event, JournalLine};

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
}

impl Journal {
    /// Opens `path` for appending (a restarted node goes on in the same file).
    pub fn open(path: &Path, origin_ns: u64) -> io::Result<Journal> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        let len = file.metadata()?.len();
        let mut buf = Vec::with_capacity(64 << 10);
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                buf.push(b'\n');
            }
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            buf,
            origin_ns,
        })
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
