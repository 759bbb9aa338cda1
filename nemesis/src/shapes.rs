//! Partition shapes and their grudges: the directed links a partition cuts.
//!
//! A link (from, to) being cut means messages from `from` to `to` are dropped.

use std::collections::BTreeSet;

use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use serde::{Deserialize, Serialize};

use crate::NodeId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "kebab-case")]
pub enum Shape {
    /// Two groups that cannot talk to each other: the lower half of the ids and the rest.
    Halves { groups: [Vec<NodeId>; 2] },
    /// Two groups drawn at random that cannot talk to each other.
    RandomHalves { groups: [Vec<NodeId>; 2] },
    /// One node cut off from all others.
    IsolateOne { node: NodeId },
    /// Nodes on a ring; node `ring[k]` hears exactly the majority of nodes starting at
    /// it on the ring, so every node sees a majority and no two see the same one.
    MajoritiesRing { ring: Vec<NodeId> },
    /// Two groups joined by one node that talks to both.
    Bridge {
        left: Vec<NodeId>,
        bridge: NodeId,
        right: Vec<NodeId>,
    },
    /// Messages from `from` to the other nodes are dropped; the other direction flows.
    OneWay { from: Vec<NodeId> },
    /// One step of a swizzle: links cut one at a time, then restored one at a time in
    /// another order; `cut` of the `of` directed links are cut at this step.
    Swizzle { cut: usize, of: usize },
}

/// The shape names `--nemesis` partitions draw from.
pub const SHAPES: [&str; 6] = [
    "halves",
    "random-halves",
    "isolate-one",
    "majorities-ring",
    "bridge",
    "one-way",
];

impl Shape {
    /// Draws a partition of kind `name` for `n` nodes (n >= 2; `bridge` needs 3).
    pub fn draw(name: &str, n: usize, rng: &mut ChaCha8Rng) -> Shape {
        let ids: Vec<NodeId> = (1..=n as NodeId).collect();
        let mut perm = ids.clone();
        perm.shuffle(rng);
        let sorted = |v: &[NodeId]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v
        };
        match name {
            "halves" => Shape::Halves {
                groups: [ids[..n / 2].to_vec(), ids[n / 2..].to_vec()],
            },
            "random-halves" => Shape::RandomHalves {
                groups: [sorted(&perm[..n / 2]), sorted(&perm[n / 2..])],
            },
            "majorities-ring" => Shape::MajoritiesRing { ring: perm },
            "bridge" if n >= 3 => {
                let half = (n - 1) / 2;
                Shape::Bridge {
                    left: sorted(&perm[..half]),
                    bridge: perm[half],
                    right: sorted(&perm[half + 1..]),
                }
            }
            "one-way" => {
                let size = rng.random_range(1..=((n - 1) / 2).max(1));
                Shape::OneWay {
                    from: sorted(&perm[..size]),
                }
            }
            _ => Shape::IsolateOne { node: perm[0] },
        }
    }

    /// The nodes the shape names, for the schedule's `targets`.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = match self {
            Shape::Halves { groups } | Shape::RandomHalves { groups } => groups[0].clone(),
            Shape::IsolateOne { node } => vec![*node],
            Shape::MajoritiesRing { ring } => ring.clone(),
            Shape::Bridge { bridge, .. } => vec![*bridge],
            Shape::OneWay { from } => from.clone(),
            Shape::Swizzle { .. } => Vec::new(),
        };
        v.sort_unstable();
        v
    }
}

/// The directed links `shape` cuts in a cluster of `n` nodes, in order.
pub fn grudge(shape: &Shape, n: usize) -> Vec<(NodeId, NodeId)> {
    let all: Vec<NodeId> = (1..=n as NodeId).collect();
    let mut cut = BTreeSet::new();
    let mut cut_between = |a: &[NodeId], b: &[NodeId]| {
        for &x in a {
            for &y in b {
                cut.insert((x, y));
                cut.insert((y, x));
            }
        }
    };
    match shape {
        Shape::Halves { groups } | Shape::RandomHalves { groups } => {
            cut_between(&groups[0], &groups[1])
        }
        Shape::IsolateOne { node } => {
            let others: Vec<NodeId> = all.iter().copied().filter(|x| x != node).collect();
            cut_between(&[*node], &others);
        }
        Shape::Bridge { left, right, .. } => cut_between(left, right),
        Shape::OneWay { from } => {
            for &x in from {
                for &y in &all {
                    if !from.contains(&y) {
                        cut.insert((x, y));
                    }
                }
            }
        }
        // Its links are listed step by step in the schedule, not derived.
        Shape::Swizzle { .. } => {}
        Shape::MajoritiesRing { ring } => {
            let m = ring.len() / 2 + 1;
            for (k, &node) in ring.iter().enumerate() {
                let sees: BTreeSet<NodeId> = (0..m).map(|d| ring[(k + d) % ring.len()]).collect();
                for &other in ring {
                    if !sees.contains(&other) {
                        cut.insert((other, node)); // `node` does not hear `other`
                    }
                }
            }
        }
    }
    cut.into_iter().collect()
}

/// The nodes `node` hears from (itself included) under a set of cut links.
pub fn reachable(node: NodeId, n: usize, cut: &[(NodeId, NodeId)]) -> BTreeSet<NodeId> {
    (1..=n as NodeId)
        .filter(|&from| from == node || !cut.contains(&(from, node)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn majority(n: usize) -> usize {
        n / 2 + 1
    }

    #[test]
    fn halves_cut_exactly_the_links_across() {
        for n in [3usize, 5, 7] {
            let left: Vec<NodeId> = (1..=(n / 2) as NodeId).collect();
            let right: Vec<NodeId> = ((n / 2 + 1) as NodeId..=n as NodeId).collect();
            let cut = grudge(
                &Shape::Halves {
                    groups: [left.clone(), right.clone()],
                },
                n,
            );
            assert_eq!(cut.len(), 2 * left.len() * right.len());
            for a in &left {
                assert_eq!(reachable(*a, n, &cut), left.iter().copied().collect());
            }
            for b in &right {
                assert_eq!(reachable(*b, n, &cut), right.iter().copied().collect());
            }
        }
    }

    #[test]
    fn isolate_one_leaves_the_rest_whole() {
        for n in [3usize, 5, 7] {
            let cut = grudge(&Shape::IsolateOne { node: 2 }, n);
            assert_eq!(reachable(2, n, &cut), [2].into_iter().collect());
            for x in (1..=n as NodeId).filter(|x| *x != 2) {
                assert_eq!(reachable(x, n, &cut).len(), n - 1);
            }
        }
    }

    #[test]
    fn majorities_ring_every_node_sees_a_distinct_majority() {
        for n in [3usize, 5, 7] {
            let ring: Vec<NodeId> = (1..=n as NodeId).rev().collect();
            let cut = grudge(&Shape::MajoritiesRing { ring }, n);
            let views: Vec<BTreeSet<NodeId>> =
                (1..=n as NodeId).map(|x| reachable(x, n, &cut)).collect();
            for v in &views {
                assert_eq!(v.len(), majority(n), "n={n}: {views:?}");
            }
            let distinct: BTreeSet<&BTreeSet<NodeId>> = views.iter().collect();
            assert_eq!(distinct.len(), n, "n={n}: two nodes see the same majority");
        }
    }

    #[test]
    fn a_bridge_node_hears_both_sides_and_the_sides_not_each_other() {
        for n in [3usize, 5, 7] {
            let half = (n - 1) / 2;
            let left: Vec<NodeId> = (1..=half as NodeId).collect();
            let bridge = half as NodeId + 1;
            let right: Vec<NodeId> = (bridge + 1..=n as NodeId).collect();
            let cut = grudge(
                &Shape::Bridge {
                    left: left.clone(),
                    bridge,
                    right: right.clone(),
                },
                n,
            );
            assert_eq!(reachable(bridge, n, &cut).len(), n);
            for a in &left {
                let r = reachable(*a, n, &cut);
                assert!(r.contains(&bridge) && right.iter().all(|b| !r.contains(b)));
            }
        }
    }

    #[test]
    fn one_way_cuts_only_one_direction() {
        for n in [3usize, 5, 7] {
            let cut = grudge(&Shape::OneWay { from: vec![1] }, n);
            assert_eq!(cut.len(), n - 1);
            assert!(cut.iter().all(|(from, _)| *from == 1));
            // Node 1 still hears everyone; nobody hears node 1.
            assert_eq!(reachable(1, n, &cut).len(), n);
            for x in 2..=n as NodeId {
                assert!(!reachable(x, n, &cut).contains(&1));
            }
        }
    }
}
