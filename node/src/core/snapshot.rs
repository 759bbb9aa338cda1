//! Snapshots: the state machine written down so the log before it can go.
//!
//! - Taking one: after `snapshot_every` applied commands the node asks its driver to
//!   make the state machine at the applied index durable ([`Action::Snapshot`]) and to
//!   replace its write-ahead log with the records that still matter (the promise,
//!   accepted and chosen slots above the snapshot, the registers, the incarnation);
//!   the chosen log up to the snapshot leaves memory.
//! - Sending one: a node asked to catch up from a slot its snapshot covers sends its
//!   state machine as it is now, in chunks of at most `snapshot_chunk_keys` pairs.
//! - Installing one: a node that got every chunk of a snapshot beyond its applied
//!   index takes it as its state machine, makes it durable the same way, and asks
//!   for what follows.
//!
//! A snapshot holds only chosen, applied state, so taking or installing one changes
//! no acceptor state: promises and accepted values stay in the records.

use std::collections::BTreeMap;

use super::{Action, Node, Record, Snapshot};
use crate::msg::PeerMessage;
use crate::types::{NodeId, Slot};

/// A snapshot being received: its index, its number of parts, and the parts so far
/// (KV pairs, and the origins' marks).
pub(super) type Incoming = (Slot, u32, BTreeMap<u32, Chunk>);
/// A chunk's pairs and lists.
type Part = (Vec<(String, i64)>, Vec<(String, Vec<i64>)>);

pub(super) type Chunk = (
    Vec<(String, i64)>,
    Vec<(String, Vec<i64>)>,
    Vec<(NodeId, u64, u64)>,
);

impl Node {
    /// Counts applied commands and their bytes, and takes a snapshot when enough of
    /// either have been applied.
    pub(super) fn note_applied(&mut self, commands: u64, bytes: u64) {
        self.since_snapshot += commands;
        self.since_snapshot_bytes += bytes;
        let (every, max_bytes) = (
            self.cfg.timing.snapshot_every,
            self.cfg.timing.snapshot_bytes,
        );
        if (every > 0 && self.since_snapshot >= every)
            || (max_bytes > 0 && self.since_snapshot_bytes >= max_bytes)
        {
            self.take_snapshot();
        }
    }

    /// The state machine as it is now.
    fn current_state(&self) -> Snapshot {
        Snapshot {
            index: self.applied,
            kv: self.kv.clone(),
            lists: self.lists.clone(),
            origins: self
                .origin_high
                .iter()
                .map(|(&(node, incarnation), &high)| (node, incarnation, high))
                .collect(),
        }
    }

    fn take_snapshot(&mut self) {
        let snapshot = self.current_state();
        self.keep_snapshot(snapshot);
    }

    /// Makes `snapshot` (at or below the applied index) the node's snapshot: the log
    /// up to it leaves memory and the driver writes it and compacts the WAL.
    fn keep_snapshot(&mut self, snapshot: Snapshot) {
        debug_assert!(snapshot.index <= self.applied);
        self.since_snapshot = 0;
        self.since_snapshot_bytes = 0;
        let after = self.chosen.split_off(&(snapshot.index + 1));
        let covered = std::mem::replace(&mut self.chosen, after);
        if self.retired.is_empty() {
            self.retired = covered;
        } else {
            self.retired.extend(covered);
        }
        self.log_accepted = self.log_accepted.split_off(&(snapshot.index + 1));
        let keep = self.durable_records();
        self.snapshot = Some(snapshot.clone());
        self.out.push(Action::Snapshot { snapshot, keep });
    }

    /// The records that, after the snapshot, restore every durable state: what the
    /// compacted write-ahead log holds.
    fn durable_records(&self) -> Vec<Record> {
        // Sized up front: with thousands of registers, growing it record by record
        // was a tenth of a simulated run's time.
        let mut keep = Vec::with_capacity(
            2 + 2 * self.reg_acceptors.len()
                + self.log_accepted.len()
                + self.reg_chosen.len()
                + self.chosen.len(),
        );
        keep.push(Record::Incarnation {
            incarnation: self.incarnation,
        });
        if self.persists_acceptor_state() {
            keep.push(Record::LogPromise {
                ballot: self.log_promised,
            });
            for (key, acc) in &self.reg_acceptors {
                keep.push(Record::RegisterPromise {
                    key: key.clone(),
                    ballot: acc.promised,
                });
                if let Some((ballot, value)) = acc.accepted {
                    keep.push(Record::RegisterAccept {
                        key: key.clone(),
                        ballot,
                        value,
                    });
                }
            }
            for (&slot, (ballot, batch)) in &self.log_accepted {
                keep.push(Record::LogAccept {
                    slot,
                    ballot: *ballot,
                    batch: batch.clone(),
                });
            }
        }
        for (key, value) in &self.reg_chosen {
            keep.push(Record::RegisterChosen {
                key: key.clone(),
                value: *value,
            });
        }
        for (&slot, batch) in &self.chosen {
            keep.push(Record::LogChosen {
                slot,
                batch: batch.clone(),
            });
        }
        keep
    }

    /// Takes a recovered or received snapshot as the state machine.
    pub(super) fn restore(&mut self, snapshot: &Snapshot) {
        self.kv = snapshot.kv.clone();
        self.lists = snapshot.lists.clone();
        self.applied = snapshot.index;
        for &(node, incarnation, high) in &snapshot.origins {
            let h = self.origin_high.entry((node, incarnation)).or_insert(0);
            *h = (*h).max(high);
        }
    }

    /// Whether catching up from `from_slot` needs the snapshot: the log before it is
    /// gone.
    pub(super) fn needs_snapshot(&self, from_slot: Slot) -> bool {
        from_slot <= self.snapshot_index()
    }

    /// Sends this node's state machine, as it is now, in chunks.
    pub(super) fn send_snapshot(&mut self, to: NodeId) {
        let state = self.current_state();
        let per = self.cfg.timing.snapshot_chunk_keys.max(1);
        let pairs: Vec<(String, i64)> = state.kv.into_iter().collect();
        let lists: Vec<(String, Vec<i64>)> = state.lists.into_iter().collect();
        // The pairs' chunks, then the lists' (a list counts as one pair).
        let mut chunks: Vec<Part> = pairs
            .chunks(per)
            .map(|c| (c.to_vec(), Vec::new()))
            .chain(lists.chunks(per).map(|c| (Vec::new(), c.to_vec())))
            .collect();
        if chunks.is_empty() {
            chunks.push((Vec::new(), Vec::new()));
        }
        let parts = chunks.len() as u32;
        for (part, (kv, lists)) in chunks.into_iter().enumerate() {
            let origins = if part == 0 {
                state.origins.clone()
            } else {
                Vec::new()
            };
            self.send(
                to,
                PeerMessage::SnapshotChunk {
                    index: state.index,
                    part: part as u32,
                    parts,
                    kv,
                    lists,
                    origins,
                },
            );
        }
    }

    /// Collects a snapshot's chunks; with all of them, installs it (if it is still
    /// ahead of this node) and asks the sender for what follows.
    pub(super) fn on_snapshot_chunk(
        &mut self,
        from: NodeId,
        index: Slot,
        part: u32,
        parts: u32,
        chunk: Chunk,
    ) {
        if index <= self.applied || part >= parts {
            return;
        }
        let fresh = !matches!(&self.incoming, Some((i, p, _)) if *i == index && *p == parts);
        if fresh {
            if self.incoming.as_ref().is_some_and(|(i, _, _)| *i > index) {
                return; // a newer snapshot is arriving already
            }
            self.incoming = Some((index, parts, BTreeMap::new()));
        }
        let Some((_, _, got)) = &mut self.incoming else {
            return;
        };
        got.insert(part, chunk);
        if got.len() < parts as usize {
            return;
        }
        let (_, _, got) = self.incoming.take().expect("present above");
        let mut snapshot = Snapshot {
            index,
            ..Snapshot::default()
        };
        for (kv, lists, origins) in got.into_values() {
            snapshot.kv.extend(kv);
            snapshot.lists.extend(lists);
            snapshot.origins.extend(origins);
        }
        self.restore(&snapshot);
        // Kept with this node's own origins merged in.
        let merged = self.current_state();
        self.keep_snapshot(merged);
        self.apply_chosen();
        let from_slot = self.applied + 1;
        self.send(from, PeerMessage::CatchUp { from_slot });
    }
}
