//! The simulation's queue of items: a monotone priority queue (a radix heap) over
//! (time, sequence number) keys.
//!
//! Written by hand: no kept crate offers a radix heap that can be looked into
//! without taking its least item, and the loop must look (is the next item due
//! before the deadline?) and then, most of the time, take it. Nothing is ever
//! queued before the item taken last (the world schedules nothing in the past,
//! and every item's sequence number is new), which is what a radix heap needs: an
//! item waits in the bucket of the highest bit in which its key differs from the
//! last key taken, and only the lowest non-empty bucket is ever searched. A
//! binary heap of a few thousand items was the largest single cost of the loop.

/// The key of an item: its time, then its sequence number.
type Key = u128;

fn key(at: u64, seq: u64) -> Key {
    (u128::from(at) << 64) | u128::from(seq)
}

/// Buckets 1..=128 (bucket 0, a key equal to the last taken, never holds one: keys
/// are unique).
const BUCKETS: usize = 129;

pub struct Queue {
    /// The key of the item taken last: every queued key is greater.
    last: Key,
    buckets: Vec<Vec<(Key, u32)>>,
    /// Which buckets hold items, a bit each.
    full: [u64; 3],
    /// The least item, once looked for: (bucket, position in it).
    least: Option<(usize, usize)>,
    len: usize,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            last: 0,
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            full: [0; 3],
            least: None,
            len: 0,
        }
    }
}

impl Queue {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    /// Queues `slot` at (`at`, `seq`), which must be later than the item taken last.
    pub fn push(&mut self, at: u64, seq: u64, slot: u32) {
        let k = key(at, seq);
        assert!(
            k > self.last,
            "an item queued at ({at}, {seq}) after one taken at ({}, {})",
            (self.last >> 64) as u64,
            self.last as u64
        );
        let b = bucket(k, self.last);
        self.buckets[b].push((k, slot));
        self.full[b / 64] |= 1 << (b % 64);
        self.len += 1;
        // The least item known stays where it is (a push only appends); the new
        // one replaces it if it is less.
        if let Some((lb, li)) = self.least
            && k < self.buckets[lb][li].0
        {
            self.least = Some((b, self.buckets[b].len() - 1));
        }
    }

    /// The least item's (time, sequence number, slot), left in the queue.
    pub fn peek(&mut self) -> Option<(u64, u64, u32)> {
        let (b, i) = self.find()?;
        let (k, slot) = self.buckets[b][i];
        Some(((k >> 64) as u64, k as u64, slot))
    }

    /// Takes the least item.
    pub fn pop(&mut self) -> Option<(u64, u64, u32)> {
        let (b, i) = self.find()?;
        self.least = None;
        self.len -= 1;
        let mut items = std::mem::take(&mut self.buckets[b]);
        self.full[b / 64] &= !(1 << (b % 64));
        let (k, slot) = items.swap_remove(i);
        self.last = k;
        // Every other item of the bucket differs from the new last key in a lower
        // bit: each moves down.
        for (other, s) in items.drain(..) {
            let to = bucket(other, k);
            debug_assert!(to < b, "an item moved up");
            self.buckets[to].push((other, s));
            self.full[to / 64] |= 1 << (to % 64);
        }
        // The emptied bucket keeps its room.
        self.buckets[b] = items;
        Some(((k >> 64) as u64, k as u64, slot))
    }

    /// Where the least item is: in the lowest bucket holding any.
    fn find(&mut self) -> Option<(usize, usize)> {
        if let Some(at) = self.least {
            return Some(at);
        }
        let b = self
            .full
            .iter()
            .enumerate()
            .find(|(_, w)| **w != 0)
            .map(|(i, w)| i * 64 + w.trailing_zeros() as usize)?;
        let i = self.buckets[b]
            .iter()
            .enumerate()
            .min_by_key(|(_, (k, _))| *k)
            .map(|(i, _)| i)
            .expect("a full bucket holds an item");
        self.least = Some((b, i));
        Some((b, i))
    }
}

/// The bucket of `k` relative to `last`: one more than its highest bit that differs.
fn bucket(k: Key, last: Key) -> usize {
    (128 - (k ^ last).leading_zeros()) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Against a binary heap: the same items come out in the same order, under a
    /// mix of pushes (never before the item taken last) and looks and takes.
    #[test]
    fn items_come_out_in_key_order_as_from_a_binary_heap() {
        for seed in 0..50 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut q = Queue::default();
            let mut reference = std::collections::BinaryHeap::new();
            let (mut now, mut seq) = (0u64, 0u64);
            for step in 0..5_000u32 {
                if rng.random_bool(0.55) {
                    seq += 1;
                    // Some at the same time (order by sequence number), most later.
                    let at =
                        now + [0, 1, rng.random_range(0..1_000_000_000)][rng.random_range(0..3)];
                    q.push(at, seq, step);
                    reference.push(std::cmp::Reverse((at, seq, step)));
                } else {
                    let want = reference.peek().map(|r| r.0);
                    assert_eq!(q.peek(), want, "seed {seed} step {step}");
                    let got = q.pop();
                    assert_eq!(got, reference.pop().map(|r| r.0), "seed {seed} step {step}");
                    if let Some((at, _, _)) = got {
                        now = at;
                    }
                }
                assert_eq!(q.len(), reference.len());
            }
        }
    }

    #[test]
    #[should_panic(expected = "after one taken at")]
    fn an_item_before_the_last_taken_is_refused() {
        let mut q = Queue::default();
        q.push(10, 1, 0);
        q.pop();
        q.push(9, 2, 1);
    }
}
