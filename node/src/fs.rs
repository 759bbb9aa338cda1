//! The file system the write-ahead log runs on: the operating system's for a real
//! node ([`StdFs`]), a simulated one in the harness's deterministic simulation.
//!
//! The trait has exactly the operations [`crate::wal::Wal`] uses, with the
//! durability points made explicit (`sync_data`, `sync_all`, `sync_dir`), so a
//! simulated file system can decide what a crash keeps of everything written since.
//! The WAL's work off the node's step (writing a snapshot file, deleting the
//! segments it replaced) is handed to [`Fs::spawn`]: a thread on a real node, a task
//! the simulation runs at a point of simulated time it chooses.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// A file system, shared by the WAL and its background work.
pub trait Fs: Clone + Send + Sync + 'static {
    type File: FsFile;
    /// Work running off the node's step.
    type Task<T: Send + 'static>: Task<T>;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the entries of `dir`, in any order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens `path` for reading and appending, creating it empty if it is missing.
    fn open_append(&self, path: &Path) -> io::Result<Self::File>;
    /// Creates `path` empty, truncating it if it exists.
    fn create(&self, path: &Path) -> io::Result<Self::File>;
    /// The whole of `path` (an error of kind `NotFound` when it is missing).
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Starts `work` off the caller's step.
    fn spawn<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Self::Task<T>;
}

/// An open file.
pub trait FsFile: Send + 'static {
    /// The whole file, from its start.
    fn read_all(&mut self) -> io::Result<Vec<u8>>;
    /// Appends `bytes` (to the page cache: durable only after a sync).
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes the file's data durable.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Makes the file's data and length durable.
    fn sync_all(&mut self) -> io::Result<()>;
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// Work started by [`Fs::spawn`].
pub trait Task<T>: Send {
    /// Whether the work is done (never blocks).
    fn is_finished(&self) -> bool;
    /// Waits for the work; `None` if it panicked.
    fn join(self) -> Option<T>;
}

/// The operating system's file system, with threads for background work.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

impl Fs for StdFs {
    type File = File;
    type Task<T: Send + 'static> = std::thread::JoinHandle<T>;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open_append(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
    }

    fn create(&self, path: &Path) -> io::Result<File> {
        File::create(path)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn spawn<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        std::thread::spawn(work)
    }
}

impl FsFile for File {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        File::sync_all(self)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
}

impl<T: Send + 'static> Task<T> for std::thread::JoinHandle<T> {
    fn is_finished(&self) -> bool {
        std::thread::JoinHandle::is_finished(self)
    }

    fn join(self) -> Option<T> {
        std::thread::JoinHandle::join(self).ok()
    }
}
