//! A simulated disk for one node's write-ahead log, with a page cache.
//!
//! Records are encoded by the node's own WAL code ([`paxos_node::wal::encode_into`])
//! and recovered by its own recovery code ([`paxos_node::wal::recover`]), so a
//! simulated restart reads exactly what a real one would. Appended bytes sit in the
//! page cache until a sync makes them durable. A crash decides, from the run's disk
//! stream, what happens to bytes not yet synced: lost entirely, torn (a prefix
//! survives, cutting a record), or kept (the kernel happened to write them back).
//! A killed real process always keeps them; only here can they be lost.

use std::path::Path;

use paxos_node::seam::Wire;
use paxos_node::wal::{self, Recovery, WalError};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a crash did to the bytes that were not yet synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashFate {
    /// Nothing was waiting for a sync.
    Clean,
    /// Every unsynced byte was lost.
    Lost { bytes: u64 },
    /// A prefix survived; the rest, from inside a record, was lost.
    Torn { kept: u64, lost: u64 },
    /// Every unsynced byte reached the disk after all.
    Kept { bytes: u64 },
}

#[derive(Debug, Default)]
pub struct SimDisk {
    durable: Vec<u8>,
    cache: Vec<u8>,
    /// The snapshot file, as the node's own code frames it: durable, and a newer
    /// one written but not yet known durable (the node's writer thread has not
    /// finished, or with the `unsynced-snapshot` bug, never syncs it).
    snapshot: Option<Vec<u8>>,
    snapshot_unsynced: Option<Vec<u8>>,
    /// Where in the page cache the segment a snapshot began starts (its `keep`
    /// records): the log before it goes at the sync that makes them durable.
    segment_at: Option<usize>,
    /// The byte length of every whole record on the disk (synced, or left by a
    /// crash), and of every record in the page cache: the disk's own account of
    /// what a recovery must return, kept apart from the node's decoding.
    frames: Vec<usize>,
    cache_frames: Vec<usize>,
    /// How many of `cache_frames` lie before `segment_at`.
    segment_frames: usize,
}

/// A recovery that returned other records than the disk holds: the file and byte
/// offset of the first record it dropped (or, with more records than the disk
/// holds, of its end), and the counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotRecovered {
    pub offset: u64,
    pub on_disk: usize,
    pub recovered: usize,
}

impl SimDisk {
    /// Encodes a record into the page cache, as `Wal::append` plus the write does.
    pub fn append<R: Wire>(&mut self, record: &R) {
        let before = self.cache.len();
        wal::encode_into(record, &mut self.cache);
        self.cache_frames.push(self.cache.len() - before);
    }

    /// Makes everything in the page cache durable (fsync). After a snapshot began,
    /// this is where the node's writer is taken to be done: the snapshot is durable
    /// and the log segment before it is deleted.
    pub fn sync(&mut self) {
        let base = self.durable.len();
        let base_frames = self.frames.len();
        self.durable.append(&mut self.cache);
        self.frames.append(&mut self.cache_frames);
        if let Some(at) = self.segment_at.take() {
            self.durable.drain(..base + at);
            self.frames.drain(..base_frames + self.segment_frames);
            self.snapshot = self.snapshot_unsynced.take().or(self.snapshot.take());
        }
    }

    /// The shell's `Wal::begin_snapshot`: the snapshot file is being written, the
    /// log goes on in a new segment that starts with `keep`, the segment before it
    /// stays until the next sync (when the snapshot is taken as written too), and a
    /// crash before then leaves both segments and either snapshot file. With the
    /// `unsynced-snapshot` bug (`sync_snapshot` off) the segment before is deleted at
    /// once, with its unsynced records, and the snapshot stays unsynced until a
    /// crash decides whether it reached the disk. Takes no simulated time.
    pub fn begin_snapshot<S: Serialize, R: Wire>(
        &mut self,
        snapshot: &S,
        keep: &[R],
        sync_snapshot: bool,
    ) {
        if self.segment_at.is_some() {
            // One snapshot at a time: the shell waits for the one before.
            self.sync();
        }
        let mut frame = Vec::new();
        wal::encode_snapshot(snapshot, &mut frame);
        self.snapshot_unsynced = Some(frame);
        if sync_snapshot {
            self.segment_at = Some(self.cache.len());
            self.segment_frames = self.cache_frames.len();
        } else {
            self.cache.clear();
            self.durable.clear();
            self.cache_frames.clear();
            self.frames.clear();
        }
        for r in keep {
            self.append(r);
        }
    }

    /// The snapshot a restart reads (through the node's own decoding), if any.
    pub fn recover_snapshot<S: DeserializeOwned>(
        &self,
        path: &Path,
    ) -> Result<Option<S>, WalError> {
        assert!(
            self.snapshot_unsynced.is_none(),
            "recovery runs after a crash"
        );
        self.snapshot
            .as_ref()
            .map(|bytes| wal::decode_snapshot(path, bytes))
            .transpose()
    }

    #[cfg(test)]
    fn durable_len(&self) -> usize {
        self.durable.len()
    }

    /// A crash: the page cache's fate is drawn from `rng`.
    pub fn crash(&mut self, rng: &mut ChaCha8Rng) -> CrashFate {
        if let Some(unsynced) = self.snapshot_unsynced.take() {
            // The unsynced snapshot reached the disk, or the old file stayed.
            if rng.random_range(0..2) == 0 {
                self.snapshot = Some(unsynced);
            }
        }
        // Both segments stay; recovery replays the older one first.
        self.segment_at = None;
        let cache = std::mem::take(&mut self.cache);
        let cache_frames = std::mem::take(&mut self.cache_frames);
        let len = cache.len() as u64;
        if cache.is_empty() {
            return CrashFate::Clean;
        }
        match rng.random_range(0..3) {
            0 => CrashFate::Lost { bytes: len },
            1 if cache.len() > 1 => {
                let kept = rng.random_range(1..cache.len());
                self.durable.extend_from_slice(&cache[..kept]);
                let mut end = 0;
                for frame in cache_frames {
                    end += frame;
                    if end > kept {
                        break;
                    }
                    self.frames.push(frame);
                }
                CrashFate::Torn {
                    kept: kept as u64,
                    lost: len - kept as u64,
                }
            }
            _ => {
                self.durable.extend_from_slice(&cache);
                self.frames.extend(cache_frames);
                CrashFate::Kept { bytes: len }
            }
        }
    }

    /// Recovery on restart, through the real node's code: the records, or the error
    /// the real node refuses to start with. A torn tail is cut off, as `Wal::open`
    /// truncates the file.
    pub fn recover<R: Wire>(&mut self, path: &Path) -> Result<Recovery<R>, WalError> {
        assert!(self.cache.is_empty(), "recovery runs after a crash");
        let recovery = wal::recover(path, &self.durable)?;
        if let Some((good, _)) = recovery.torn_tail {
            self.durable.truncate(good as usize);
        }
        Ok(recovery)
    }

    /// The record whose frame starts at `offset` of the log, if one does (the words
    /// of an anomaly that names it).
    pub fn record_at<R: Wire>(&self, offset: u64) -> Option<R> {
        let at = offset as usize;
        let len = u32::from_le_bytes(self.durable.get(at..at + 4)?.try_into().ok()?) as usize;
        R::decode(self.durable.get(at + 8..at + 8 + len)?).ok()
    }

    /// Whether a recovery that returned `recovered` records returned every whole
    /// record the disk holds, and no more. A recovery may refuse a damaged log (an
    /// error); it may never drop a record that reached the disk whole, nor bring
    /// back one a crash lost.
    pub fn check_recovered(&self, recovered: usize) -> Result<(), NotRecovered> {
        if recovered == self.frames.len() {
            return Ok(());
        }
        Err(NotRecovered {
            offset: self.frames.iter().take(recovered).sum::<usize>() as u64,
            on_disk: self.frames.len(),
            recovered,
        })
    }

    /// Flips one bit in the checksummed payload of a synced record other than the
    /// final one (damage to the final record is indistinguishable from a torn write,
    /// and the header's length field is not checksummed), or in the durable snapshot
    /// file's payload. `position` picks the file (either, half the time each, when
    /// both can be damaged) and the bit within it, modulo the bits eligible. Returns
    /// what was damaged, or `None` when nothing is eligible (fewer than two synced
    /// records and no snapshot).
    pub fn corrupt(&mut self, position: u64) -> Option<Damage> {
        let mut payloads = Vec::new(); // (record offset, payload start, payload end)
        let mut at = 0usize;
        while at + 8 <= self.durable.len() {
            let len = u32::from_le_bytes(self.durable[at..at + 4].try_into().ok()?) as usize;
            let end = at + 8 + len;
            if end > self.durable.len() {
                break;
            }
            payloads.push((at, at + 8, end));
            at = end;
        }
        payloads.pop(); // never the final record
        let log_bits: u64 = payloads.iter().map(|(_, s, e)| (e - s) as u64 * 8).sum();
        let snapshot_bits = self
            .snapshot
            .as_ref()
            .map_or(0, |f| f.len().saturating_sub(8) as u64 * 8);
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
            let frame = self.snapshot.as_mut().expect("snapshot bits");
            frame[8 + (bit / 8) as usize] ^= 1 << (bit % 8);
            return Some(Damage::Snapshot);
        }
        let mut bit = position % log_bits;
        for (record, start, end) in payloads {
            let here = (end - start) as u64 * 8;
            if bit < here {
                self.durable[start + (bit / 8) as usize] ^= 1 << (bit % 8);
                return Some(Damage::Record {
                    offset: record as u64,
                });
            }
            bit -= here;
        }
        unreachable!("the bit lies inside one of the payloads")
    }
}

/// What a corruption fault damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The WAL record at this byte offset.
    Record { offset: u64 },
    /// The snapshot file.
    Snapshot,
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use paxos_node::core::{Record, Snapshot};

    fn records(n: u64) -> Vec<Record> {
        (1..=n)
            .map(|ballot| Record::LogPromise { ballot })
            .collect()
    }

    fn path() -> &'static Path {
        Path::new("n1/wal.log")
    }

    #[test]
    fn synced_records_survive_and_unsynced_ones_meet_every_fate() {
        let mut fates = std::collections::BTreeSet::new();
        for seed in 0..60 {
            let mut disk = SimDisk::default();
            for r in records(3) {
                disk.append(&r);
            }
            disk.sync();
            for r in records(6).into_iter().skip(3) {
                disk.append(&r);
            }
            let fate = disk.crash(&mut ChaCha8Rng::seed_from_u64(seed));
            let got = disk.recover::<Record>(path()).unwrap().records;
            // Synced records always survive; unsynced ones survive only as a prefix.
            assert_eq!(got[..3], records(3)[..]);
            assert_eq!(got[..], records(6)[..got.len()]);
            match fate {
                CrashFate::Lost { .. } => assert_eq!(got.len(), 3),
                CrashFate::Kept { .. } => assert_eq!(got.len(), 6),
                CrashFate::Torn { .. } => assert!(got.len() < 6),
                CrashFate::Clean => panic!("bytes were waiting"),
            }
            fates.insert(match fate {
                CrashFate::Clean => "clean",
                CrashFate::Lost { .. } => "lost",
                CrashFate::Torn { .. } => "torn",
                CrashFate::Kept { .. } => "kept",
            });
        }
        assert_eq!(fates.len(), 3, "lost, torn and kept all happen");
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_later_appends_follow_the_good_prefix() {
        let mut disk = SimDisk::default();
        for r in records(2) {
            disk.append(&r);
        }
        disk.sync();
        disk.append(&Record::LogPromise { ballot: 9 });
        let full = disk.durable_len() + disk.cache.len();
        // Keep all but the last byte of the unsynced record.
        let cache = std::mem::take(&mut disk.cache);
        disk.durable.extend_from_slice(&cache[..cache.len() - 1]);
        let rec = disk.recover::<Record>(path()).unwrap();
        assert_eq!(rec.records, records(2));
        assert!(rec.torn_tail.is_some());
        assert!(disk.durable_len() < full);
        disk.append(&Record::LogPromise { ballot: 10 });
        disk.sync();
        assert_eq!(disk.recover::<Record>(path()).unwrap().records.len(), 3);
    }

    #[test]
    fn a_snapshot_drops_the_log_before_it_only_at_the_sync_after_it() {
        let snap = Snapshot {
            index: 4,
            kv: Default::default(),
            origins: vec![],
        };
        let keep = [Record::LogPromise { ballot: 9 }];
        let begun = || {
            let mut disk = SimDisk::default();
            for r in records(3) {
                disk.append(&r);
            }
            disk.sync();
            disk.begin_snapshot(&snap, &keep, true);
            disk
        };
        // A crash before the sync: the log before stays whole; the snapshot file is
        // the old one or the new one, as the writer got on.
        let mut snapshots = std::collections::BTreeSet::new();
        for seed in 0..20 {
            let mut disk = begun();
            disk.crash(&mut ChaCha8Rng::seed_from_u64(seed));
            let got = disk.recover::<Record>(path()).unwrap().records;
            assert_eq!(got[..3], records(3)[..]);
            snapshots.insert(disk.recover_snapshot::<Snapshot>(path()).unwrap().is_some());
        }
        assert_eq!(snapshots.len(), 2, "either snapshot file after a crash");
        // After the sync: the snapshot and the new segment only.
        let mut disk = begun();
        disk.sync();
        assert_eq!(disk.recover::<Record>(path()).unwrap().records, keep);
        assert_eq!(
            disk.recover_snapshot::<Snapshot>(path()).unwrap(),
            Some(snap.clone())
        );
        // With the bug the log before goes at once.
        let mut disk = SimDisk::default();
        disk.append(&Record::LogPromise { ballot: 1 });
        disk.sync();
        disk.begin_snapshot(&snap, &keep, false);
        disk.crash(&mut ChaCha8Rng::seed_from_u64(1));
        assert!(
            disk.recover::<Record>(path())
                .unwrap()
                .records
                .iter()
                .all(|r| *r != Record::LogPromise { ballot: 1 })
        );
    }

    #[test]
    fn a_flipped_bit_in_a_synced_record_refuses_recovery_naming_file_and_offset() {
        for position in [0u64, 7, 100, 12_345, u64::MAX] {
            let mut disk = SimDisk::default();
            for r in records(4) {
                disk.append(&r);
            }
            disk.sync();
            let Some(Damage::Record { offset }) = disk.corrupt(position) else {
                panic!("no snapshot: a record is damaged")
            };
            let err = disk.recover::<Record>(path()).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("n1/wal.log"), "{text}");
            assert!(text.contains(&format!("byte offset {offset}")), "{text}");
        }
        let mut one = SimDisk::default();
        one.append(&Record::LogPromise { ballot: 1 });
        one.sync();
        assert_eq!(one.corrupt(3), None, "a lone record is never damaged");
    }

    #[test]
    fn a_flipped_bit_in_the_snapshot_file_refuses_recovery_naming_it() {
        let snap = Snapshot {
            index: 4,
            kv: [("k".to_string(), 7)].into_iter().collect(),
            origins: vec![(1, 1, 4)],
        };
        let (mut records_hit, mut snapshots_hit) = (0, 0);
        for position in (0..4000u64).step_by(37) {
            let mut disk = SimDisk::default();
            disk.append(&Record::LogPromise { ballot: 1 });
            disk.sync();
            disk.begin_snapshot(&snap, &records(2), true);
            disk.sync();
            match disk.corrupt(position) {
                Some(Damage::Snapshot) => {
                    snapshots_hit += 1;
                    let snap_path = Path::new("n1/snapshot.bin");
                    let err = disk
                        .recover_snapshot::<Snapshot>(snap_path)
                        .unwrap_err()
                        .to_string();
                    assert!(err.contains("n1/snapshot.bin"), "{err}");
                }
                Some(Damage::Record { .. }) => {
                    records_hit += 1;
                    assert!(disk.recover::<Record>(path()).is_err());
                }
                None => panic!("a snapshot and two records to damage"),
            }
        }
        assert!(records_hit > 0 && snapshots_hit > 0);
    }

    #[test]
    fn the_disk_knows_which_records_a_recovery_must_return() {
        let mut rng = rand::SeedableRng::seed_from_u64(3);
        let mut fates = std::collections::BTreeSet::new();
        for round in 0..60u64 {
            let mut disk = SimDisk::default();
            for ballot in 0..4 {
                disk.append(&Record::LogPromise { ballot });
            }
            disk.sync();
            if round % 3 == 0 {
                let snap = Snapshot::default();
                disk.begin_snapshot(&snap, &[Record::LogPromise { ballot: 9 }], true);
                disk.sync();
            }
            for ballot in 10..13 {
                disk.append(&Record::LogPromise { ballot });
            }
            let fate = disk.crash(&mut rng);
            fates.insert(match fate {
                CrashFate::Clean => "clean",
                CrashFate::Lost { .. } => "lost",
                CrashFate::Torn { .. } => "torn",
                CrashFate::Kept { .. } => "kept",
            });
            let rec = disk.recover::<Record>(path()).unwrap();
            assert_eq!(disk.check_recovered(rec.records.len()), Ok(()), "{fate:?}");
            // A recovery that dropped its last whole record is caught, with where.
            let dropped = disk.check_recovered(rec.records.len() - 1).unwrap_err();
            assert_eq!(dropped.on_disk, rec.records.len());
            assert_eq!(dropped.recovered + 1, dropped.on_disk);
            assert!(disk.check_recovered(rec.records.len() + 1).is_err());
        }
        assert_eq!(fates.len(), 3, "lost, torn and kept all met");
    }
}
