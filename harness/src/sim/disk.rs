//! A simulated file system for one node's data directory, with a page cache, on
//! which the node's own write-ahead log runs ([`paxos_node::wal::Wal`] over
//! [`paxos_node::fs::Fs`]): its segments, its snapshot file and the background
//! work that writes one and deletes the segments it replaced.
//!
//! Written bytes sit in the page cache until a sync makes them durable; created,
//! renamed and removed names until a directory sync does. A crash decides, from the
//! node's disk stream, what happens to what was not yet synced: the unsynced bytes
//! of every file are lost, torn (a prefix survives, cutting a record) or kept (the
//! kernel happened to write them back), and a prefix of the name changes since the
//! last directory sync survives, in the order they were made. A killed real
//! process always keeps them; only here can they be lost.
//!
//! Background work ([`Fs::spawn`]) does not run on a thread: it waits until the
//! simulation runs it ([`SimFs::run_tasks`], when the node's fsync completes) or the
//! WAL waits for it, and a crash discards it with the process. Hand-written: the
//! crates that fake a file system keep no page cache and decide no crash fates.
//!
//! The disk also keeps its own account of what a recovery must return
//! ([`SimFs::whole_frames`]): every whole frame of every segment, walked by length
//! alone, apart from the node's decoding and checksums.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use paxos_node::fs::{Fs, FsFile, Task};
use paxos_node::seam::Wire;
use paxos_node::wal::{self, HEADER_BYTES, SNAPSHOT_FILE};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// What a crash did to the bytes that were not yet synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashFate {
    /// Nothing was waiting for a sync.
    Clean,
    /// Every unsynced byte was lost.
    Lost { bytes: u64 },
    /// A prefix of each file's unsynced bytes survived; the rest was lost.
    Torn { kept: u64, lost: u64 },
    /// Every unsynced byte reached the disk after all.
    Kept { bytes: u64 },
}

/// The simulated file system of one node (cheap to clone: every clone is the same
/// file system, as the WAL and its background work share one).
#[derive(Clone, Default)]
pub struct SimFs(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    /// Files by number; a file no name reaches keeps its number, emptied.
    inodes: Vec<Inode>,
    /// The names as the running process sees them.
    live: BTreeMap<PathBuf, usize>,
    /// The names a crash keeps for certain.
    durable: BTreeMap<PathBuf, usize>,
    /// The name changes since the last directory sync, oldest first.
    journal: Vec<Entry>,
    /// Background work not yet run, oldest first (dropped with the WAL that
    /// started it).
    tasks: Vec<Weak<dyn Pending>>,
    /// Buffers of freed files, reused by new ones: a segment grows to megabytes,
    /// and fresh pages for every new one cost more than the rest of the disk.
    spare: Vec<Vec<u8>>,
}

/// Room a new file's buffer starts with: more than a WAL segment holds between
/// two snapshots of a simulated node.
const FILE_ROOM: usize = 512 << 10;

impl State {
    /// Frees every file no name reaches now or after a crash.
    fn free_unnamed(&mut self) {
        let named: BTreeSet<usize> = self
            .live
            .values()
            .chain(self.durable.values())
            .copied()
            .collect();
        for (ino, inode) in self.inodes.iter_mut().enumerate() {
            if !named.contains(&ino) && inode.data.capacity() > 0 {
                let mut data = std::mem::take(&mut inode.data);
                inode.synced = 0;
                if self.spare.len() < 4 {
                    data.clear();
                    self.spare.push(data);
                }
            }
        }
    }
}

#[derive(Default)]
struct Inode {
    /// The contents as the running process sees them.
    data: Vec<u8>,
    /// How many of them are durable. A truncation is taken as durable at once:
    /// the WAL syncs every truncation it makes before it writes again.
    synced: usize,
}

/// A change of the names in the directory.
#[derive(Clone, Debug)]
enum Entry {
    Create(PathBuf, usize),
    Rename(PathBuf, PathBuf),
    Remove(PathBuf),
}

impl Entry {
    fn apply(&self, names: &mut BTreeMap<PathBuf, usize>) {
        match self {
            Entry::Create(path, ino) => {
                names.insert(path.clone(), *ino);
            }
            Entry::Rename(from, to) => {
                if let Some(ino) = names.remove(from) {
                    names.insert(to.clone(), ino);
                }
            }
            Entry::Remove(path) => {
                names.remove(path);
            }
        }
    }
}

/// A whole frame on the disk: the segment it is in and its byte offset there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub file: PathBuf,
    pub offset: u64,
}

/// A recovery that returned other records than the disk holds: the first whole
/// frame it did not return (none when it returned more than the disk holds), and
/// the counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotRecovered {
    pub first_missing: Option<Frame>,
    pub on_disk: usize,
    pub recovered: usize,
}

/// What a corruption fault damaged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The WAL record at this byte offset of this segment.
    Record { file: PathBuf, offset: u64 },
    /// The snapshot file.
    Snapshot,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

/// The whole frames of `bytes`, by their length fields alone: `(offset, length)`.
fn frames_of(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at + HEADER_BYTES <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let end = at + HEADER_BYTES + len;
        if end > bytes.len() {
            break;
        }
        frames.push((at, end - at));
        at = end;
    }
    frames
}

impl SimFs {
    fn state(&self) -> MutexGuard<'_, State> {
        // The simulation is single-threaded; a poisoned lock means a panic already
        // on its way up.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the background work started so far, oldest first (the work it starts
    /// in turn waits for the next call).
    pub fn run_tasks(&self) {
        let tasks = std::mem::take(&mut self.state().tasks);
        for task in tasks {
            if let Some(task) = task.upgrade() {
                task.run();
            }
        }
    }

    /// A crash of the node: its background work is gone, a prefix of the name
    /// changes since the last directory sync survives, and the unsynced bytes of the
    /// files that remain meet one fate drawn from `rng`.
    pub fn crash(&self, rng: &mut ChaCha8Rng) -> CrashFate {
        let mut guard = self.state();
        let st = &mut *guard;
        st.tasks.clear();
        let journal = std::mem::take(&mut st.journal);
        if !journal.is_empty() {
            let kept = rng.random_range(0..=journal.len());
            for entry in &journal[..kept] {
                entry.apply(&mut st.durable);
            }
        }
        st.live = st.durable.clone();
        st.free_unnamed();
        let reachable: BTreeSet<usize> = st.durable.values().copied().collect();
        let unsynced: Vec<usize> = reachable
            .iter()
            .copied()
            .filter(|ino| st.inodes[*ino].data.len() > st.inodes[*ino].synced)
            .collect();
        let total: u64 = unsynced
            .iter()
            .map(|ino| (st.inodes[*ino].data.len() - st.inodes[*ino].synced) as u64)
            .sum();
        if total == 0 {
            return CrashFate::Clean;
        }
        let fate = rng.random_range(0..3);
        let mut kept_bytes = 0u64;
        for ino in unsynced {
            let inode = &mut st.inodes[ino];
            let tail = inode.data.len() - inode.synced;
            let keep = match fate {
                0 => 0,
                1 if tail > 1 => rng.random_range(1..tail),
                1 => 0,
                _ => tail,
            };
            inode.data.truncate(inode.synced + keep);
            inode.synced = inode.data.len();
            kept_bytes += keep as u64;
        }
        match fate {
            0 => CrashFate::Lost { bytes: total },
            1 => CrashFate::Torn {
                kept: kept_bytes,
                lost: total - kept_bytes,
            },
            _ => CrashFate::Kept { bytes: total },
        }
    }

    /// The segments of the log in `dir` under `names` (the live or the durable
    /// names), oldest first: (number, path, file).
    fn segment_files(names: &BTreeMap<PathBuf, usize>, dir: &Path) -> Vec<(u64, PathBuf, usize)> {
        let mut found: Vec<(u64, PathBuf, usize)> = names
            .iter()
            .filter(|(path, _)| path.parent() == Some(dir))
            .filter_map(|(path, ino)| {
                let name = path.file_name()?.to_str()?;
                Some((wal::segment_seq(name)?, path.clone(), *ino))
            })
            .collect();
        found.sort();
        found
    }

    /// Every whole frame of every segment in `dir`, oldest first: what a recovery
    /// must return, one record per frame (taken after a crash, before the node
    /// reopens its log).
    pub fn whole_frames(&self, dir: &Path) -> Vec<Frame> {
        let st = self.state();
        let mut frames = Vec::new();
        for (_, file, ino) in Self::segment_files(&st.live, dir) {
            for (offset, _) in frames_of(&st.inodes[ino].data) {
                frames.push(Frame {
                    file: file.clone(),
                    offset: offset as u64,
                });
            }
        }
        frames
    }

    /// The record of the frame at `frame`, if it decodes (the words of an anomaly
    /// that names it).
    pub fn record_at<R: Wire>(&self, frame: &Frame) -> Option<R> {
        let st = self.state();
        let bytes = &st.inodes[*st.live.get(&frame.file)?].data;
        let at = frame.offset as usize;
        let len = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        R::decode(bytes.get(at + HEADER_BYTES..at + HEADER_BYTES + len)?).ok()
    }

    /// Flips one bit in the checksummed payload of a synced record that is not the
    /// last of its segment (damage to a segment's final record is indistinguishable
    /// from a torn write, and the header's length field is not checksummed), or in
    /// the synced snapshot file's payload, among the files on the disk in `dir`.
    /// `position` picks the file (either kind half the time when both can be
    /// damaged) and the bit within it, modulo the bits eligible. `None` when nothing
    /// is eligible.
    pub fn corrupt(&self, dir: &Path, position: u64) -> Option<Damage> {
        let mut guard = self.state();
        let st = &mut *guard;
        // (file, inode, record offset, payload start, payload end)
        let mut payloads = Vec::new();
        for (_, file, ino) in Self::segment_files(&st.durable, dir) {
            let inode = &st.inodes[ino];
            let mut frames = frames_of(&inode.data[..inode.synced]);
            frames.pop(); // never a segment's final record
            for (at, len) in frames {
                let start = at + HEADER_BYTES;
                payloads.push((file.clone(), ino, at, start, at + len));
            }
        }
        let log_bits: u64 = payloads.iter().map(|p| (p.4 - p.3) as u64 * 8).sum();
        let snapshot = st.durable.get(&dir.join(SNAPSHOT_FILE)).copied();
        let snapshot_bits = snapshot.map_or(0, |ino| {
            st.inodes[ino].synced.saturating_sub(HEADER_BYTES) as u64 * 8
        });
        // Either file as often as the other when both can be damaged (the snapshot
        // is small next to the log), then a bit within it.
        let (in_snapshot, position) = match (log_bits, snapshot_bits) {
            (0, 0) => return None,
            (0, _) => (true, position),
            (_, 0) => (false, position),
            _ => (position % 2 == 1, position / 2),
        };
        if in_snapshot {
            let bit = position % snapshot_bits;
            let inode = &mut st.inodes[snapshot.expect("snapshot bits")];
            inode.data[HEADER_BYTES + (bit / 8) as usize] ^= 1 << (bit % 8);
            return Some(Damage::Snapshot);
        }
        let mut bit = position % log_bits;
        for (file, ino, record, start, end) in payloads {
            let here = (end - start) as u64 * 8;
            if bit < here {
                st.inodes[ino].data[start + (bit / 8) as usize] ^= 1 << (bit % 8);
                return Some(Damage::Record {
                    file,
                    offset: record as u64,
                });
            }
            bit -= here;
        }
        unreachable!("the bit lies inside one of the payloads")
    }

    /// A new empty file at `path`, its name not yet durable.
    fn create_at(st: &mut State, path: &Path) -> usize {
        let ino = st.inodes.len();
        // The roomiest spare buffer, with room for a whole segment: one that
        // outgrew its buffer would be copied into fresh pages (room not written to
        // costs no pages).
        let roomiest = (0..st.spare.len()).max_by_key(|i| st.spare[*i].capacity());
        let mut data = roomiest
            .map(|i| st.spare.swap_remove(i))
            .unwrap_or_default();
        data.reserve(FILE_ROOM);
        st.inodes.push(Inode { data, synced: 0 });
        let entry = Entry::Create(path.to_path_buf(), ino);
        entry.apply(&mut st.live);
        st.journal.push(entry);
        ino
    }
}

/// Whether a recovery that returned `recovered` records returned every whole frame
/// the disk held (`frames`, from [`SimFs::whole_frames`]), and no more. A recovery
/// may refuse a damaged log (an error); it may never drop a record that reached the
/// disk whole, nor bring back one a crash lost.
pub fn check_recovered(frames: &[Frame], recovered: usize) -> Result<(), NotRecovered> {
    if recovered == frames.len() {
        return Ok(());
    }
    Err(NotRecovered {
        first_missing: frames.get(recovered).cloned(),
        on_disk: frames.len(),
        recovered,
    })
}

impl Fs for SimFs {
    type File = SimFile;
    type Task<T: Send + 'static> = SimTask<T>;

    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        // Directories are implicit: a name's parent.
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.state();
        Ok(st
            .live
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| Some(path.file_name()?.to_str()?.to_string()))
            .collect())
    }

    fn open_append(&self, path: &Path) -> io::Result<SimFile> {
        let mut st = self.state();
        let ino = match st.live.get(path) {
            Some(ino) => *ino,
            None => Self::create_at(&mut st, path),
        };
        Ok(SimFile {
            fs: self.clone(),
            ino,
        })
    }

    fn create(&self, path: &Path) -> io::Result<SimFile> {
        let mut st = self.state();
        let ino = match st.live.get(path).copied() {
            Some(ino) => {
                let inode = &mut st.inodes[ino];
                inode.data.clear();
                inode.synced = 0;
                ino
            }
            None => Self::create_at(&mut st, path),
        };
        Ok(SimFile {
            fs: self.clone(),
            ino,
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let st = self.state();
        let ino = st.live.get(path).ok_or_else(|| not_found(path))?;
        Ok(st.inodes[*ino].data.clone())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state();
        if !st.live.contains_key(from) {
            return Err(not_found(from));
        }
        let entry = Entry::Rename(from.to_path_buf(), to.to_path_buf());
        entry.apply(&mut st.live);
        st.journal.push(entry);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state();
        if !st.live.contains_key(path) {
            return Err(not_found(path));
        }
        let entry = Entry::Remove(path.to_path_buf());
        entry.apply(&mut st.live);
        st.journal.push(entry);
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        // One directory per file system: every name change is durable now.
        let mut guard = self.state();
        let st = &mut *guard;
        for entry in std::mem::take(&mut st.journal) {
            entry.apply(&mut st.durable);
        }
        // A file no name reaches any more, now or after a crash, is freed (a handle
        // still open on it, as on a removed segment, writes to nothing).
        st.free_unnamed();
        Ok(())
    }

    fn spawn<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> SimTask<T> {
        let slot: Arc<Slot<T>> = Arc::new(Mutex::new(Work::Waiting(Box::new(work))));
        let pending: Arc<dyn Pending> = slot.clone();
        self.state().tasks.push(Arc::downgrade(&pending));
        SimTask(slot)
    }
}

/// An open file of a [`SimFs`].
pub struct SimFile {
    fs: SimFs,
    ino: usize,
}

impl SimFile {
    fn with<T>(&self, f: impl FnOnce(&mut Inode) -> T) -> T {
        f(&mut self.fs.state().inodes[self.ino])
    }
}

impl FsFile for SimFile {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        Ok(self.with(|i| i.data.clone()))
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.with(|i| i.data.extend_from_slice(bytes));
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.with(|i| i.synced = i.data.len());
        Ok(())
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.with(|i| {
            i.data.resize(len as usize, 0);
            i.synced = i.synced.min(i.data.len());
        });
        Ok(())
    }
}

enum Work<T> {
    Waiting(Box<dyn FnOnce() -> T + Send>),
    Running,
    /// `None`: the work panicked.
    Done(Option<T>),
}

type Slot<T> = Mutex<Work<T>>;

/// Background work the simulation runs when it chooses.
trait Pending: Send + Sync {
    fn run(&self);
}

impl<T: Send> Pending for Slot<T> {
    fn run(&self) {
        let work = {
            let mut w = self.lock().unwrap_or_else(|e| e.into_inner());
            match std::mem::replace(&mut *w, Work::Running) {
                Work::Waiting(work) => work,
                other => {
                    *w = other;
                    return;
                }
            }
        };
        // A panic in the node's storage code is the node's failure, reported by
        // the WAL as its writer's; the simulation goes on.
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).ok();
        *self.lock().unwrap_or_else(|e| e.into_inner()) = Work::Done(done);
    }
}

/// Work started on a [`SimFs`].
pub struct SimTask<T>(Arc<Slot<T>>);

impl<T: Send + 'static> Task<T> for SimTask<T> {
    fn is_finished(&self) -> bool {
        matches!(
            *self.0.lock().unwrap_or_else(|e| e.into_inner()),
            Work::Done(_)
        )
    }

    fn join(self) -> Option<T> {
        // Waiting for work not yet run runs it now.
        self.0.run();
        match std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(|e| e.into_inner()),
            Work::Running,
        ) {
            Work::Done(done) => done,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::SeedableRng;

    use super::*;
    use paxos_node::core::{Record, Snapshot};
    use paxos_node::wal::{Recovery, Wal, WalError};

    fn records(from: u64, to: u64) -> Vec<Record> {
        (from..to)
            .map(|ballot| Record::LogPromise { ballot })
            .collect()
    }

    fn dir() -> &'static Path {
        Path::new("n1")
    }

    fn open(fs: &SimFs) -> Result<(Wal<SimFs>, Recovery<Record>), WalError> {
        Wal::open_in(fs.clone(), dir(), true)
    }

    fn reopen(fs: &SimFs) -> Vec<Record> {
        open(fs).unwrap().1.records
    }

    fn name(fate: CrashFate) -> &'static str {
        match fate {
            CrashFate::Clean => "clean",
            CrashFate::Lost { .. } => "lost",
            CrashFate::Torn { .. } => "torn",
            CrashFate::Kept { .. } => "kept",
        }
    }

    fn snap(index: u64) -> Snapshot {
        Snapshot {
            index,
            kv: [("k".to_string(), 7)].into_iter().collect(),
            origins: vec![(1, 1, index)],
            ..Default::default()
        }
    }

    #[test]
    fn synced_records_survive_and_unsynced_ones_meet_every_fate() {
        let mut fates = BTreeSet::new();
        for seed in 0..60 {
            let fs = SimFs::default();
            let (mut log, _) = open(&fs).unwrap();
            for r in records(0, 3) {
                log.append(&r);
            }
            log.sync().unwrap();
            for r in records(3, 6) {
                log.append(&r);
            }
            log.write().unwrap();
            drop(log);
            let fate = fs.crash(&mut ChaCha8Rng::seed_from_u64(seed));
            let frames = fs.whole_frames(dir());
            let got = reopen(&fs);
            assert_eq!(check_recovered(&frames, got.len()), Ok(()));
            // Synced records always survive; unsynced ones survive only as a prefix.
            assert_eq!(got[..3], records(0, 3)[..]);
            assert_eq!(got[..], records(0, 6)[..got.len()]);
            match fate {
                CrashFate::Lost { .. } => assert_eq!(got.len(), 3),
                CrashFate::Kept { .. } => assert_eq!(got.len(), 6),
                CrashFate::Torn { .. } => assert!(got.len() < 6),
                CrashFate::Clean => panic!("bytes were waiting"),
            }
            fates.insert(name(fate));
        }
        assert_eq!(fates.len(), 3, "lost, torn and kept all happen");
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_later_appends_follow_the_good_prefix() {
        let mut torn = 0;
        for seed in 0..40 {
            let fs = SimFs::default();
            let (mut log, _) = open(&fs).unwrap();
            for r in records(0, 2) {
                log.append(&r);
            }
            log.sync().unwrap();
            log.append(&Record::LogPromise { ballot: 9 });
            log.write().unwrap();
            drop(log);
            if !matches!(
                fs.crash(&mut ChaCha8Rng::seed_from_u64(seed)),
                CrashFate::Torn { .. }
            ) {
                continue;
            }
            torn += 1;
            let (mut log, rec) = open(&fs).unwrap();
            assert_eq!(rec.records, records(0, 2));
            assert!(rec.torn_tail.is_some());
            log.append(&Record::LogPromise { ballot: 10 });
            log.sync().unwrap();
            drop(log);
            fs.crash(&mut ChaCha8Rng::seed_from_u64(seed));
            assert_eq!(reopen(&fs).len(), 3);
        }
        assert!(torn > 0, "no seed tore the tail");
    }

    /// A log with synced records 0..3 and a snapshot begun with `keep`, its writer
    /// not yet run.
    fn begun(sync_snapshot: bool) -> (SimFs, Wal<SimFs>) {
        let fs = SimFs::default();
        let (mut log, _) = open(&fs).unwrap();
        for r in records(0, 3) {
            log.append(&r);
        }
        log.sync().unwrap();
        log.append(&Record::LogPromise { ballot: 3 });
        log.begin_snapshot(&snap(4), &records(9, 10), sync_snapshot)
            .unwrap();
        (fs, log)
    }

    #[test]
    fn a_crash_at_any_point_of_a_snapshot_loses_nothing_synced() {
        let mut snapshots = BTreeSet::new();
        // The points of a snapshot the simulation can crash at: before its sync,
        // after the sync with the writer not run, after the writer, after the
        // remover.
        for point in 0..4 {
            for seed in 0..20 {
                let (fs, mut log) = begun(true);
                if point >= 1 {
                    log.sync().unwrap();
                    log.poll_snapshot().unwrap();
                }
                if point >= 2 {
                    fs.run_tasks();
                    log.poll_snapshot().unwrap();
                }
                if point >= 3 {
                    fs.run_tasks();
                }
                drop(log);
                fs.crash(&mut ChaCha8Rng::seed_from_u64(seed));
                let frames = fs.whole_frames(dir());
                let snapshot: Option<Snapshot> = wal::read_snapshot_in(&fs, dir()).unwrap();
                let got = reopen(&fs);
                assert_eq!(check_recovered(&frames, got.len()), Ok(()));
                match &snapshot {
                    // Without the snapshot, the log before it is whole.
                    None => assert_eq!(got[..3], records(0, 3)[..], "point {point}"),
                    // With it, `keep` was synced before the log before could go.
                    Some(s) => {
                        assert_eq!(*s, snap(4));
                        assert!(got.contains(&Record::LogPromise { ballot: 9 }));
                    }
                }
                if point >= 1 {
                    assert!(got.contains(&Record::LogPromise { ballot: 9 }));
                }
                snapshots.insert((point, snapshot.is_some()));
            }
        }
        // Before the writer ran no snapshot exists; once it ran one always does.
        assert!(snapshots.contains(&(0, false)) && snapshots.contains(&(1, false)));
        assert!(!snapshots.contains(&(2, false)) && !snapshots.contains(&(3, false)));
    }

    #[test]
    fn the_remover_deletes_the_segment_before_a_finished_snapshot() {
        let (fs, mut log) = begun(true);
        log.sync().unwrap();
        fs.run_tasks();
        log.poll_snapshot().unwrap();
        fs.run_tasks();
        let names = fs.list(dir()).unwrap();
        assert!(!names.contains(&"wal.log".to_string()), "{names:?}");
        assert!(names.contains(&SNAPSHOT_FILE.to_string()), "{names:?}");
        assert_eq!(reopen(&fs), records(9, 10));
    }

    #[test]
    fn the_unsynced_snapshot_bug_can_lose_synced_records() {
        let (mut lost, mut refused) = (0, 0);
        for seed in 0..40 {
            let (fs, mut log) = begun(false);
            log.sync().unwrap();
            if seed % 2 == 1 {
                // The writer ran: the snapshot's name is durable, its bytes not.
                fs.run_tasks();
                log.poll_snapshot().unwrap();
            }
            drop(log);
            fs.crash(&mut ChaCha8Rng::seed_from_u64(seed));
            let snapshot = wal::read_snapshot_in::<_, Snapshot>(&fs, dir());
            let got = open(&fs).map(|(_, r)| r.records);
            match (snapshot, got) {
                (Ok(None), Ok(got)) if !got.contains(&Record::LogPromise { ballot: 0 }) => {
                    lost += 1
                }
                (Err(_), _) => refused += 1,
                _ => {}
            }
        }
        assert!(lost > 0, "no crash lost the records the snapshot replaced");
        assert!(
            refused > 0,
            "no crash left a snapshot file the node refuses"
        );
    }

    #[test]
    fn a_name_made_since_the_last_directory_sync_may_not_survive_a_crash() {
        let mut outcomes = BTreeSet::new();
        for seed in 0..30 {
            let fs = SimFs::default();
            let mut f = fs.create(Path::new("n1/x")).unwrap();
            f.write_all(b"abc").unwrap();
            f.sync_data().unwrap();
            fs.crash(&mut ChaCha8Rng::seed_from_u64(seed));
            outcomes.insert(fs.read(Path::new("n1/x")).ok());
        }
        assert_eq!(
            outcomes,
            [None, Some(b"abc".to_vec())].into_iter().collect(),
            "the name is lost or kept, with its synced data"
        );
        let fs = SimFs::default();
        fs.create(Path::new("n1/x")).unwrap();
        fs.sync_dir(dir()).unwrap();
        fs.crash(&mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(fs.read(Path::new("n1/x")).unwrap(), b"");
    }

    #[test]
    fn a_flipped_bit_in_a_synced_record_refuses_recovery_naming_file_and_offset() {
        for position in [0u64, 7, 100, 12_345, u64::MAX] {
            let fs = SimFs::default();
            let (mut log, _) = open(&fs).unwrap();
            for r in records(0, 4) {
                log.append(&r);
            }
            log.sync().unwrap();
            drop(log);
            let Some(Damage::Record { file, offset }) = fs.corrupt(dir(), position) else {
                panic!("no snapshot: a record is damaged")
            };
            let text = open(&fs).err().expect("refused").to_string();
            assert!(text.contains(&file.display().to_string()), "{text}");
            assert!(text.contains(&format!("byte offset {offset}")), "{text}");
        }
        let fs = SimFs::default();
        let (mut log, _) = open(&fs).unwrap();
        log.append(&Record::LogPromise { ballot: 1 });
        log.sync().unwrap();
        assert_eq!(fs.corrupt(dir(), 3), None, "a lone record is never damaged");
    }

    #[test]
    fn a_flipped_bit_in_the_snapshot_file_refuses_recovery_naming_it() {
        let (mut records_hit, mut snapshots_hit) = (0, 0);
        for position in (0..4000u64).step_by(37) {
            let (fs, mut log) = begun(true);
            log.sync().unwrap();
            fs.run_tasks();
            log.poll_snapshot().unwrap();
            drop(log);
            match fs.corrupt(dir(), position) {
                Some(Damage::Snapshot) => {
                    snapshots_hit += 1;
                    let err = wal::read_snapshot_in::<_, Snapshot>(&fs, dir())
                        .unwrap_err()
                        .to_string();
                    assert!(err.contains("n1/snapshot.bin"), "{err}");
                }
                Some(Damage::Record { .. }) => {
                    records_hit += 1;
                    assert!(open(&fs).is_err());
                }
                None => panic!("a snapshot and the records before it to damage"),
            }
        }
        assert!(records_hit > 0 && snapshots_hit > 0);
    }

    #[test]
    fn the_disk_knows_which_records_a_recovery_must_return() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut fates = BTreeSet::new();
        for round in 0..60u64 {
            let fs = SimFs::default();
            let (mut log, _) = open(&fs).unwrap();
            for r in records(0, 4) {
                log.append(&r);
            }
            log.sync().unwrap();
            if round % 3 == 0 {
                log.begin_snapshot(&snap(3), &records(9, 10), true).unwrap();
                log.sync().unwrap();
            }
            for r in records(10, 13) {
                log.append(&r);
            }
            log.write().unwrap();
            drop(log);
            fates.insert(name(fs.crash(&mut rng)));
            let frames = fs.whole_frames(dir());
            let got = reopen(&fs).len();
            assert_eq!(check_recovered(&frames, got), Ok(()));
            // A recovery that dropped its last whole record is caught, with where.
            let dropped = check_recovered(&frames, got - 1).unwrap_err();
            assert_eq!(dropped.first_missing.as_ref(), frames.last());
            assert_eq!(dropped.recovered + 1, dropped.on_disk);
            let more = check_recovered(&frames, got + 1).unwrap_err();
            assert_eq!(more.first_missing, None);
        }
        assert_eq!(fates.len(), 3, "lost, torn and kept all met");
    }

    #[test]
    fn background_work_waits_for_the_simulation_and_dies_with_a_crash() {
        let fs = SimFs::default();
        let ran = Arc::new(Mutex::new(0));
        let r = ran.clone();
        let task = fs.spawn(move || *r.lock().unwrap() += 1);
        assert!(!task.is_finished());
        fs.run_tasks();
        assert!(task.is_finished());
        assert_eq!(*ran.lock().unwrap(), 1);
        let r = ran.clone();
        let task = fs.spawn(move || *r.lock().unwrap() += 1);
        fs.crash(&mut ChaCha8Rng::seed_from_u64(0));
        fs.run_tasks();
        assert!(!task.is_finished(), "a crash discards the work");
        // A wait runs work not yet run.
        let r = ran.clone();
        assert_eq!(fs.spawn(move || *r.lock().unwrap() + 5).join(), Some(6));
    }
}
