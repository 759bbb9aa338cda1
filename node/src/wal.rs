//! The write-ahead log: the only place a node's durable state lives.
//!
//! Append-only segment files in the node's data directory: `wal.log`, then
//! `wal.1.log`, `wal.2.log`, ... (a snapshot starts a new segment, see
//! [`Wal::begin_snapshot`]; recovery replays every segment, oldest first). Each
//! record is
//!
//! ```text
//! [payload length: u32 LE][CRC-32 of the payload: u32 LE][payload: JSON of a Record]
//! ```
//!
//! The shell appends the records of a burst of events and calls [`Wal::sync`] once
//! (group commit) before it sends any message or reply of that burst.
//!
//! Recovery reads the file front to back. A damaged *final* record is what a crash
//! during a write leaves behind: it is cut off (the file is truncated to the last good
//! record) and reported in [`Recovery::torn_tail`]. Damage anywhere *before* the final
//! record cannot come from a crash; it is corruption, and [`Wal::open`] refuses with
//! an error naming the file and the byte offset, never resetting silently.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::core::Record;
use crate::fs::{Fs, FsFile, StdFs, Task};
use crate::seam::Wire;

/// The log file's name inside the data directory.
pub const WAL_FILE: &str = "wal.log";

/// No record is this large; a length above it is corruption, not a torn write.
const MAX_RECORD_BYTES: u32 = 256 << 20;
/// The bytes of a frame before its payload: length and checksum.
pub const HEADER_BYTES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: corrupt record at byte offset {offset}: {reason}; refusing to start (the acceptor state it holds cannot be dropped safely)"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

/// What recovery found: the records of a core (the bundled node's by default).
#[derive(Debug, PartialEq, Eq)]
pub struct Recovery<R = Record> {
    pub records: Vec<R>,
    /// `(offset, bytes)` of a damaged final record that was cut off.
    pub torn_tail: Option<(u64, u64)>,
    /// The segment it was cut off ([`Wal::open`] only).
    pub torn_file: Option<PathBuf>,
}

/// The log of one data directory, on the file system `F` (the operating system's
/// for a real node, a simulated one in `chaos sim`).
pub struct Wal<F: Fs = StdFs> {
    fs: F,
    dir: PathBuf,
    /// The segment appends go to.
    current: Segment<F>,
    fsync: bool,
    buf: Vec<u8>,
    /// The current segment holds writes not yet synced.
    unsynced: bool,
    /// The segment created ahead of the next snapshot (its directory entry already
    /// durable, so switching to it costs no sync on the node's step).
    next: Option<Segment<F>>,
    /// The segment before the current one, kept while the snapshot that replaces
    /// it is written; `dirty` while it holds writes not yet synced.
    prev: Option<(Segment<F>, bool)>,
    /// The current segment holds `keep` records not yet synced: the previous one
    /// must stay until they are.
    keep_unsynced: bool,
    /// The snapshot being written off the node's step, which makes the next segment
    /// when it is done.
    writer: Option<F::Task<Result<Segment<F>, WalError>>>,
    /// The work deleting the segments a finished snapshot covers.
    remover: Option<F::Task<()>>,
}

/// One file of the log.
struct Segment<F: Fs> {
    seq: u64,
    path: PathBuf,
    file: F::File,
}

/// The name of segment `seq`: [`WAL_FILE`] for the first, `wal.<seq>.log` after.
pub fn segment_name(seq: u64) -> String {
    if seq == 0 {
        WAL_FILE.to_string()
    } else {
        format!("wal.{seq}.log")
    }
}

/// The segment number a file name stands for, if it is one.
pub fn segment_seq(name: &str) -> Option<u64> {
    if name == WAL_FILE {
        return Some(0);
    }
    let n = name.strip_prefix("wal.")?.strip_suffix(".log")?;
    n.parse()
        .ok()
        .filter(|n| *n > 0 && segment_name(*n) == name)
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    // The path is copied only for an error: every write and sync goes through here.
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The log's segments in `dir`, oldest first.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    segments_in(&StdFs, dir)
}

/// The log's segments in `dir` on `fs`, oldest first.
pub fn segments_in<F: Fs>(fs: &F, dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut found: Vec<(u64, PathBuf)> = fs
        .list(dir)
        .map_err(io_at(dir))?
        .into_iter()
        .filter_map(|name| Some((segment_seq(&name)?, dir.join(name))))
        .collect();
    found.sort();
    Ok(found)
}

/// Creates segment `seq` in `dir`, empty, with its directory entry durable (with
/// `fsync`).
fn create_segment<F: Fs>(
    fs: &F,
    dir: &Path,
    seq: u64,
    fsync: bool,
) -> Result<Segment<F>, WalError> {
    let path = dir.join(segment_name(seq));
    let file = fs.open_append(&path).map_err(io_at(&path))?;
    if fsync {
        fs.sync_dir(dir).map_err(io_at(dir))?;
    }
    Ok(Segment { seq, path, file })
}

impl Wal {
    /// Opens (creating if needed) the log in `dir` and recovers its records: those
    /// of every segment, oldest first (a torn final record is cut off each segment:
    /// a crash while a snapshot was being taken can leave one in the previous
    /// segment too). With `fsync == false` (`--unsafe-no-fsync`) [`Wal::sync`] does
    /// not reach the disk.
    pub fn open<R: Wire>(dir: &Path, fsync: bool) -> Result<(Wal, Recovery<R>), WalError> {
        Wal::open_in(StdFs, dir, fsync)
    }
}

impl<F: Fs> Wal<F> {
    /// [`Wal::open`] on the file system `fs`.
    pub fn open_in<R: Wire>(
        fs: F,
        dir: &Path,
        fsync: bool,
    ) -> Result<(Wal<F>, Recovery<R>), WalError> {
        fs.create_dir_all(dir).map_err(io_at(dir))?;
        let mut found = segments_in(&fs, dir)?;
        if found.is_empty() {
            found.push((0, dir.join(WAL_FILE)));
        }
        let mut recovery = Recovery {
            records: Vec::new(),
            torn_tail: None,
            torn_file: None,
        };
        let last = found.len() - 1;
        let mut current = None;
        for (i, (seq, path)) in found.into_iter().enumerate() {
            let mut file = fs.open_append(&path).map_err(io_at(&path))?;
            let bytes = file.read_all().map_err(io_at(&path))?;
            let found = recover(&path, &bytes)?;
            if let Some((good_len, _)) = found.torn_tail {
                file.set_len(good_len).map_err(io_at(&path))?;
                file.sync_all().map_err(io_at(&path))?;
                recovery.torn_tail = found.torn_tail;
                recovery.torn_file = Some(path.clone());
            }
            recovery.records.extend(found.records);
            if i == last {
                current = Some(Segment { seq, path, file });
            } else if bytes.is_empty() {
                // A segment made ahead of a snapshot that never came.
                let _ = fs.remove_file(&path);
            }
        }
        let current = current.expect("at least one segment");
        // Makes a freshly created log's directory entry durable too.
        let next = create_segment(&fs, dir, current.seq + 1, fsync)?;
        Ok((
            Wal {
                fs,
                dir: dir.to_path_buf(),
                current,
                fsync,
                buf: Vec::new(),
                unsynced: false,
                next: Some(next),
                prev: None,
                keep_unsynced: false,
                writer: None,
                remover: None,
            },
            recovery,
        ))
    }

    /// The segment appends go to now.
    pub fn path(&self) -> &Path {
        &self.current.path
    }

    /// Buffers a record; it is written by the next [`Wal::write`] or [`Wal::sync`].
    pub fn append<R: Wire>(&mut self, record: &R) {
        encode_into(record, &mut self.buf);
    }

    /// Hands the buffered records to the file system (its page cache) without
    /// waiting for the disk: a crash may keep, tear or lose them. The simulation
    /// calls it where a sync begins and [`Wal::sync`] where it ends.
    pub fn write(&mut self) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.current
            .file
            .write_all(&self.buf)
            .map_err(io_at(&self.current.path))?;
        self.buf.clear();
        self.unsynced = true;
        Ok(())
    }

    /// Writes the buffered records and, unless fsync is off, waits until they are on
    /// disk (and the previous segment's last writes, after a snapshot began). Only
    /// after this returns may dependent messages and replies leave.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if let Some((prev, dirty @ true)) = &mut self.prev {
            if self.fsync {
                prev.file.sync_data().map_err(io_at(&prev.path))?;
            }
            *dirty = false;
        }
        self.write()?;
        if !self.unsynced {
            return Ok(());
        }
        if self.fsync {
            self.current
                .file
                .sync_data()
                .map_err(io_at(&self.current.path))?;
        }
        self.unsynced = false;
        self.keep_unsynced = false;
        Ok(())
    }
}

/// The snapshot file's name inside the data directory: one frame as a WAL record
/// has (`[len][crc32][JSON of a Snapshot]`), replaced whole (written to a temporary
/// file, synced, renamed).
pub const SNAPSHOT_FILE: &str = "snapshot.bin";

impl<F: Fs> Wal<F> {
    /// Begins taking `snapshot`, without waiting for the disk: the records buffered
    /// so far are written to the current segment, appends go on in the next segment
    /// (made ahead, so the switch costs no sync), which starts with `keep`; a thread
    /// writes the snapshot file durably (temporary file, fsync, rename, directory
    /// fsync) and makes the segment after. The previous segment is deleted by
    /// [`Wal::poll_snapshot`] once the snapshot is durable and `keep` synced; until
    /// then recovery replays it, so a crash at any point loses nothing. The next
    /// [`Wal::sync`] makes the switch durable.
    ///
    /// With `sync_snapshot == false` (the `unsynced-snapshot` bug) the snapshot is
    /// not synced and the previous segment is deleted at once.
    pub fn begin_snapshot<S: Serialize, R: Wire>(
        &mut self,
        snapshot: &S,
        keep: &[R],
        sync_snapshot: bool,
    ) -> Result<(), WalError> {
        // One snapshot at a time: the previous one must be done (it makes the next
        // segment).
        self.finish_snapshot(true)?;
        let next = match self.next.take() {
            Some(next) => next,
            None => create_segment(&self.fs, &self.dir, self.current.seq + 1, self.fsync)?,
        };
        self.write()?;
        let dirty = std::mem::take(&mut self.unsynced);
        let old = std::mem::replace(&mut self.current, next);
        if sync_snapshot {
            self.prev = Some((old, dirty));
        } else {
            for path in self.older_segments()? {
                let _ = self.fs.remove_file(&path);
            }
        }
        for r in keep {
            encode_into(r, &mut self.buf);
        }
        self.keep_unsynced = true;
        let mut frame = Vec::new();
        encode_snapshot(snapshot, &mut frame);
        let (fs, dir, seq, fsync) = (
            self.fs.clone(),
            self.dir.clone(),
            self.current.seq + 1,
            self.fsync,
        );
        self.writer = Some(self.fs.spawn(move || {
            replace_file(
                &fs,
                &dir.join(SNAPSHOT_FILE),
                &frame,
                fsync && sync_snapshot,
            )?;
            create_segment(&fs, &dir, seq, fsync)
        }));
        Ok(())
    }

    /// Ends a snapshot whose file is written: the previous segment goes once `keep`
    /// is synced. Cheap; the shell calls it after every burst.
    pub fn poll_snapshot(&mut self) -> Result<(), WalError> {
        self.finish_snapshot(false)
    }

    /// Ends a snapshot in progress: waits for its file when `wait`, else only if it
    /// is already written.
    fn finish_snapshot(&mut self, wait: bool) -> Result<(), WalError> {
        if let Some(writer) = self.writer.take_if(|w| wait || w.is_finished()) {
            let made = writer.join().unwrap_or_else(|| {
                Err(WalError::Io {
                    path: self.dir.join(SNAPSHOT_FILE),
                    source: std::io::Error::other("the snapshot writer panicked"),
                })
            })?;
            self.next = Some(made);
        }
        if wait && self.keep_unsynced {
            self.sync()?;
        }
        if self.writer.is_none() && !self.keep_unsynced {
            if let Some((prev, _)) = self.prev.take() {
                // Every older segment is covered by the durable snapshot and `keep`.
                // Freeing a log of tens of megabytes takes the file system
                // milliseconds: a thread does it. A removal a crash undoes only
                // makes recovery replay that segment again.
                let older = self.older_segments()?;
                let fs = self.fs.clone();
                self.remover = Some(self.fs.spawn(move || {
                    drop(prev);
                    for path in older {
                        let _ = fs.remove_file(&path);
                    }
                }));
            }
        }
        if wait {
            if let Some(remover) = self.remover.take() {
                let _ = remover.join();
            }
        }
        Ok(())
    }

    /// The segments before the current one.
    fn older_segments(&self) -> Result<Vec<PathBuf>, WalError> {
        Ok(segments_in(&self.fs, &self.dir)?
            .into_iter()
            .filter(|(seq, _)| *seq < self.current.seq)
            .map(|(_, path)| path)
            .collect())
    }

    /// Waits for a snapshot in progress to be durable and its previous segment gone
    /// (tests, and a clean shutdown).
    pub fn settle(&mut self) -> Result<(), WalError> {
        self.finish_snapshot(true)
    }
}

/// Writes `bytes` to `path` through `path.tmp` and a rename; with `sync`, the data
/// before the rename and the directory after it.
fn replace_file<F: Fs>(fs: &F, path: &Path, bytes: &[u8], sync: bool) -> Result<(), WalError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs.create(&tmp).map_err(io_at(&tmp))?;
    f.write_all(bytes).map_err(io_at(&tmp))?;
    if sync {
        f.sync_data().map_err(io_at(&tmp))?;
    }
    drop(f);
    fs.rename(&tmp, path).map_err(io_at(path))?;
    match path.parent() {
        Some(dir) if sync => fs.sync_dir(dir).map_err(io_at(dir)),
        _ => Ok(()),
    }
}

/// One framed snapshot.
pub fn encode_snapshot<S: Serialize>(snapshot: &S, out: &mut Vec<u8>) {
    frame_into(out, |out| {
        serde_json::to_writer(out, snapshot).expect("snapshots always serialize")
    });
}

/// The snapshot in a snapshot file's bytes (named `path` in errors). Unlike the
/// log's tail, a damaged snapshot is never cut off: it replaced the log before it,
/// so the node refuses to start.
pub fn decode_snapshot<S: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<S, WalError> {
    let corrupt = |reason: String| WalError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason,
    };
    if bytes.len() < HEADER_BYTES {
        return Err(corrupt(format!(
            "{} bytes, shorter than a header",
            bytes.len()
        )));
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if bytes.len() != HEADER_BYTES + len {
        return Err(corrupt(format!(
            "length {len} does not match the file's {} bytes",
            bytes.len()
        )));
    }
    let payload = &bytes[HEADER_BYTES..];
    if crc32fast::hash(payload) != crc {
        return Err(corrupt("checksum mismatch".into()));
    }
    serde_json::from_slice(payload).map_err(|e| corrupt(format!("undecodable snapshot: {e}")))
}

/// The snapshot of the data directory `dir`, if it has one.
pub fn read_snapshot<S: DeserializeOwned>(dir: &Path) -> Result<Option<S>, WalError> {
    read_snapshot_in(&StdFs, dir)
}

/// [`read_snapshot`] on the file system `fs`.
pub fn read_snapshot_in<F: Fs, S: DeserializeOwned>(
    fs: &F,
    dir: &Path,
) -> Result<Option<S>, WalError> {
    let path = dir.join(SNAPSHOT_FILE);
    match fs.read(&path) {
        Ok(bytes) => decode_snapshot(&path, &bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(WalError::Io { path, source }),
    }
}

/// Recovery from a log's bytes (named `path` in errors): its records, and the torn
/// final record to cut off, if any. [`Wal::open`] and the simulated disk both use it.
pub fn recover<R: Wire>(path: &Path, bytes: &[u8]) -> Result<Recovery<R>, WalError> {
    let (records, good_len) = decode_all(path, bytes)?;
    let torn_tail =
        (good_len < bytes.len()).then(|| (good_len as u64, (bytes.len() - good_len) as u64));
    Ok(Recovery {
        records,
        torn_tail,
        torn_file: None,
    })
}

/// Appends one framed record to `out`.
pub fn encode_into<R: Wire>(record: &R, out: &mut Vec<u8>) {
    frame_into(out, |out| record.encode(out));
}

/// Appends `[len][crc32][payload]` to `out`, the payload written by `write` straight
/// after a header left blank and filled in once its length and checksum are known:
/// no payload buffer per record (a snapshot's `keep` is thousands of records).
fn frame_into(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    write(out);
    let payload = &out[start + HEADER_BYTES..];
    let len = u32::try_from(payload.len()).expect("record under 4 GiB");
    assert!(len <= MAX_RECORD_BYTES, "record of {len} bytes");
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes every record; returns them and the length of the good prefix. A damaged
/// final record ends the good prefix; damage before it is an error.
pub fn decode_all<R: Wire>(path: &Path, bytes: &[u8]) -> Result<(Vec<R>, usize), WalError> {
    let corrupt = |offset: usize, reason: String| WalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER_BYTES {
            return Ok((records, at)); // a header cut short: torn tail
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if rest.iter().all(|b| *b == 0) {
            // A preallocated or zero-filled tail, as some file systems leave it.
            return Ok((records, at));
        }
        if len > MAX_RECORD_BYTES {
            return Err(corrupt(at, format!("length {len} exceeds the maximum")));
        }
        let end = HEADER_BYTES + len as usize;
        if rest.len() < end {
            return Ok((records, at)); // payload cut short: torn tail
        }
        let payload = &rest[HEADER_BYTES..end];
        let is_last = rest.len() == end;
        if crc32fast::hash(payload) != crc {
            if is_last {
                return Ok((records, at)); // the final write did not complete
            }
            return Err(corrupt(at, "checksum mismatch".into()));
        }
        match R::decode(payload) {
            Ok(record) => records.push(record),
            // A valid checksum over an unreadable record is not a torn write.
            Err(e) => return Err(corrupt(at, format!("undecodable record: {e}"))),
        }
        at += end;
    }
    Ok((records, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        vec![
            Record::Incarnation { incarnation: 1 },
            Record::RegisterPromise {
                key: "x".into(),
                ballot: 5,
            },
            Record::RegisterAccept {
                key: "x".into(),
                ballot: 5,
                value: 7,
            },
            Record::LogPromise { ballot: 9 },
        ]
    }

    fn write_all(dir: &Path, records: &[Record]) {
        let (mut wal, rec) = Wal::open::<Record>(dir, true).unwrap();
        assert_eq!(rec.records, vec![]);
        for r in records {
            wal.append(r);
        }
        wal.sync().unwrap();
    }

    #[test]
    fn records_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), &sample());
        let (_, rec) = Wal::open::<Record>(dir.path(), true).unwrap();
        assert_eq!(rec.records, sample());
        assert_eq!(rec.torn_tail, None);
    }

    #[test]
    fn a_torn_final_record_is_cut_off_at_every_possible_length() {
        let mut full = Vec::new();
        for r in sample() {
            encode_into(&r, &mut full);
        }
        let mut last_start = Vec::new();
        for r in &sample()[..3] {
            encode_into(r, &mut last_start);
        }
        let good = last_start.len();
        for cut in good + 1..full.len() {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(WAL_FILE), &full[..cut]).unwrap();
            let (mut wal, rec) = Wal::open::<Record>(dir.path(), false).unwrap();
            assert_eq!(rec.records, sample()[..3].to_vec(), "cut at {cut}");
            assert_eq!(rec.torn_tail, Some((good as u64, (cut - good) as u64)));
            // The log is usable again: appends land after the good prefix.
            wal.append(&Record::LogPromise { ballot: 10 });
            wal.sync().unwrap();
            let (_, again) = Wal::open::<Record>(dir.path(), false).unwrap();
            assert_eq!(again.records.len(), 4);
            assert_eq!(again.records[3], Record::LogPromise { ballot: 10 });
        }
    }

    #[test]
    fn a_bad_checksum_on_the_final_record_is_a_torn_tail() {
        let mut bytes = Vec::new();
        for r in sample() {
            encode_into(&r, &mut bytes);
        }
        let n = bytes.len();
        bytes[n - 2] ^= 0xFF;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(WAL_FILE), &bytes).unwrap();
        let (_, rec) = Wal::open::<Record>(dir.path(), false).unwrap();
        assert_eq!(rec.records, sample()[..3].to_vec());
        assert!(rec.torn_tail.is_some());
    }

    #[test]
    fn corruption_before_the_tail_names_the_file_and_offset() {
        let mut bytes = Vec::new();
        let mut offsets = Vec::new();
        for r in sample() {
            offsets.push(bytes.len());
            encode_into(&r, &mut bytes);
        }
        bytes[offsets[1] + HEADER_BYTES + 3] ^= 0x01; // inside record 1's payload
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        std::fs::write(&path, &bytes).unwrap();
        let err = Wal::open::<Record>(dir.path(), false)
            .err()
            .expect("must refuse");
        match &err {
            WalError::Corrupt { offset, .. } => assert_eq!(*offset, offsets[1] as u64),
            other => panic!("wrong error {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(
            text.contains(&format!("byte offset {}", offsets[1])),
            "{text}"
        );
        // The file is left untouched for inspection.
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn an_absurd_length_is_corruption_not_a_torn_write() {
        let mut bytes = Vec::new();
        encode_into(&sample()[0], &mut bytes);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(WAL_FILE), &bytes).unwrap();
        assert!(matches!(
            Wal::open::<Record>(dir.path(), false),
            Err(WalError::Corrupt { .. })
        ));
    }

    fn promises(records: &[Record]) -> Vec<u64> {
        records
            .iter()
            .map(|r| match r {
                Record::LogPromise { ballot } => *ballot,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A snapshot taken at `index` 7 after promises 3 (synced) and 4 (buffered),
    /// with `keep` = promise 5, then promise 6 appended.
    fn snapshot_begun(dir: &Path, sync_snapshot: bool) -> (Wal, crate::core::Snapshot) {
        let (mut wal, _) = Wal::open::<Record>(dir, true).unwrap();
        wal.append(&Record::LogPromise { ballot: 3 });
        wal.sync().unwrap();
        wal.append(&Record::LogPromise { ballot: 4 });
        let snap = crate::core::Snapshot {
            index: 7,
            kv: [("a".to_string(), 1)].into_iter().collect(),
            origins: vec![(2, 1, 5)],
            ..Default::default()
        };
        let keep = vec![Record::LogPromise { ballot: 5 }];
        wal.begin_snapshot(&snap, &keep, sync_snapshot).unwrap();
        wal.append(&Record::LogPromise { ballot: 6 });
        (wal, snap)
    }

    #[test]
    fn a_crash_at_any_point_of_a_snapshot_loses_nothing_synced() {
        // Killed before the sync that follows the switch: the first segment is
        // whole (its buffered record was written), the new one holds nothing yet.
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = snapshot_begun(dir.path(), true);
        drop(wal);
        let (_, rec) = Wal::open::<Record>(dir.path(), true).unwrap();
        assert_eq!(promises(&rec.records), vec![3, 4]);

        // Killed after the sync, before the previous segment went: both replayed,
        // oldest first, whichever snapshot file is there.
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = snapshot_begun(dir.path(), true);
        wal.sync().unwrap();
        let writer = wal.writer.take().unwrap();
        writer.join().unwrap().unwrap();
        drop(wal);
        let (_, rec) = Wal::open::<Record>(dir.path(), true).unwrap();
        assert_eq!(promises(&rec.records), vec![3, 4, 5, 6]);

        // A torn write at the end of the previous segment, records after it in the
        // next: cut off, and both replayed.
        let first = dir.path().join(WAL_FILE);
        let mut bytes = std::fs::read(&first).unwrap();
        bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
        std::fs::write(&first, &bytes).unwrap();
        let (_, rec) = Wal::open::<Record>(dir.path(), true).unwrap();
        assert_eq!(promises(&rec.records), vec![3, 4, 5, 6]);
        assert_eq!(rec.torn_file.as_deref(), Some(first.as_path()));
    }

    #[test]
    fn a_finished_snapshot_deletes_the_segment_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, snap) = snapshot_begun(dir.path(), true);
        // The switch to the segment made ahead cost no sync on the step.
        assert_eq!(wal.path(), dir.path().join("wal.1.log"));
        wal.poll_snapshot().unwrap();
        assert!(dir.path().join(WAL_FILE).exists(), "keep is not synced yet");
        wal.sync().unwrap();
        wal.settle().unwrap();
        assert_eq!(
            names(dir.path()),
            ["snapshot.bin", "wal.1.log", "wal.2.log"],
            "the first segment deleted, the next one made ahead"
        );
        drop(wal);
        assert_eq!(
            read_snapshot::<crate::core::Snapshot>(dir.path()).unwrap(),
            Some(snap.clone())
        );
        let (mut wal, rec) = Wal::open::<Record>(dir.path(), true).unwrap();
        assert_eq!(promises(&rec.records), vec![5, 6]);
        // Appends go on in the newest segment; an empty older one is dropped.
        assert_eq!(wal.path(), dir.path().join("wal.2.log"));
        wal.append(&Record::LogPromise { ballot: 7 });
        wal.sync().unwrap();
        drop(wal);
        let (mut wal, rec) = Wal::open::<Record>(dir.path(), true).unwrap();
        assert_eq!(promises(&rec.records), vec![5, 6, 7]);
        // A second snapshot.
        wal.begin_snapshot(&snap, &[Record::LogPromise { ballot: 8 }], true)
            .unwrap();
        wal.sync().unwrap();
        wal.settle().unwrap();
        drop(wal);
        assert_eq!(
            names(dir.path()),
            ["snapshot.bin", "wal.4.log", "wal.5.log"],
            "every older segment deleted (wal.3.log was made ahead and empty)"
        );
        let (_, rec) = Wal::open::<Record>(dir.path(), true).unwrap();
        assert_eq!(promises(&rec.records), vec![8]);
    }

    #[test]
    fn the_unsynced_snapshot_bug_deletes_the_segment_before_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = snapshot_begun(dir.path(), false);
        assert!(!dir.path().join(WAL_FILE).exists());
        drop(wal);
        let (_, rec) = Wal::open::<Record>(dir.path(), true).unwrap();
        assert!(
            rec.records.is_empty(),
            "promise 3 went with the first segment"
        );
    }

    #[test]
    fn a_damaged_snapshot_refuses_naming_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = snapshot_begun(dir.path(), true);
        wal.sync().unwrap();
        wal.settle().unwrap();
        drop(wal);
        // One flipped bit: refused, with the file named.
        let path = dir.path().join(SNAPSHOT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = read_snapshot::<crate::core::Snapshot>(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("snapshot.bin") && err.contains("checksum"),
            "{err}"
        );
        std::fs::write(&path, &bytes[..5]).unwrap();
        assert!(read_snapshot::<crate::core::Snapshot>(dir.path()).is_err());
    }
}
