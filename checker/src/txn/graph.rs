//! The dependency graph of a transaction history and the search for its cycles.
//!
//! Nodes are transactions (their index in the history); an edge carries the kinds of
//! dependency that order its two ends, as bits ([`WW`], [`WR`], [`RW`], [`PROCESS`],
//! [`REALTIME`]), and is stored once however many keys give it. The edges are kept in
//! compressed rows (one offset per node, then targets and kinds), five bytes an edge.
//!
//! Hand-written: the search needs edge kinds on every step and constraints on the
//! kinds a cycle uses (exactly one anti-dependency, at least one real-time edge),
//! which the graph crates' cycle finders do not express, and its memory layout is
//! what keeps a million transactions within a few hundred bytes each.

use std::collections::VecDeque;
use std::time::Instant;

/// Write-write: the source's write of a key was overwritten (or appended after) by
/// the target's.
pub const WW: u8 = 1;
/// Write-read: the target read what the source wrote.
pub const WR: u8 = 2;
/// Read-write (anti-dependency): the source read a version the target overwrote.
pub const RW: u8 = 4;
/// The source and the target ran on one process, in that order.
pub const PROCESS: u8 = 8;
/// The source completed before the target was invoked.
pub const REALTIME: u8 = 16;

/// The most transactions a graph holds (an edge packs two of them in a `u64`).
pub const MAX_NODES: usize = 1 << 29;

/// One edge in eight bytes: `from` in the top 29 bits, `to` in the next 30, the
/// kinds in the low 5; sorting the packed edges sorts them by (from, to).
pub fn pack(from: u32, to: u32, kinds: u8) -> u64 {
    debug_assert!((from as usize) < MAX_NODES && (to as usize) < MAX_NODES);
    (u64::from(from) << 35) | (u64::from(to) << 5) | u64::from(kinds & 31)
}

fn unpack(e: u64) -> (u32, u32, u8) {
    (
        (e >> 35) as u32,
        ((e >> 5) & ((1 << 30) - 1)) as u32,
        (e & 31) as u8,
    )
}

/// Edges in compressed rows.
#[derive(Debug, Default)]
pub struct Graph {
    offsets: Vec<u32>,
    targets: Vec<u32>,
    kinds: Vec<u8>,
}

impl Graph {
    /// The graph of `nodes` nodes over `edges` ([`pack`]ed; duplicates merge their
    /// bits; self-edges are dropped). Consumes the edge list, so the peak is the
    /// list plus the rows.
    pub fn build(nodes: usize, mut edges: Vec<u64>) -> Graph {
        edges.sort_unstable();
        let distinct = edges.windows(2).filter(|w| w[0] >> 5 != w[1] >> 5).count() + 1;
        let mut offsets = vec![0u32; nodes + 1];
        let mut targets = Vec::with_capacity(distinct);
        let mut kinds: Vec<u8> = Vec::with_capacity(distinct);
        let mut last: Option<(u32, u32)> = None;
        for (a, b, k) in edges.into_iter().map(unpack) {
            if a == b {
                continue;
            }
            if last == Some((a, b)) {
                *kinds.last_mut().expect("an edge before") |= k;
                continue;
            }
            last = Some((a, b));
            offsets[a as usize + 1] += 1;
            targets.push(b);
            kinds.push(k);
        }
        for i in 0..nodes {
            offsets[i + 1] += offsets[i];
        }
        Graph {
            offsets,
            targets,
            kinds,
        }
    }

    pub fn nodes(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn edges(&self) -> usize {
        self.targets.len()
    }

    /// `(target, kinds)` of the edges out of `node`.
    pub fn out(&self, node: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        let (lo, hi) = (
            self.offsets[node as usize] as usize,
            self.offsets[node as usize + 1] as usize,
        );
        self.targets[lo..hi]
            .iter()
            .copied()
            .zip(self.kinds[lo..hi].iter().copied())
    }

    /// The kinds of the edge `from -> to`, 0 if there is none.
    pub fn kinds_of(&self, from: u32, to: u32) -> u8 {
        let (lo, hi) = (
            self.offsets[from as usize] as usize,
            self.offsets[from as usize + 1] as usize,
        );
        match self.targets[lo..hi].binary_search(&to) {
            Ok(i) => self.kinds[lo + i],
            Err(_) => 0,
        }
    }

    /// The strongly connected components of more than one node, over the edges with
    /// a kind in `mask` (Tarjan's algorithm, iterative: histories are deep).
    pub fn components(&self, mask: u8) -> Vec<Vec<u32>> {
        const NONE: u32 = u32::MAX;
        let n = self.nodes();
        let mut index = vec![NONE; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        let mut found = Vec::new();
        let mut next = 0u32;
        // (node, position in its edge row)
        let mut work: Vec<(u32, u32)> = Vec::new();
        for root in 0..n as u32 {
            if index[root as usize] != NONE {
                continue;
            }
            work.push((root, self.offsets[root as usize]));
            index[root as usize] = next;
            low[root as usize] = next;
            next += 1;
            stack.push(root);
            on_stack[root as usize] = true;
            while let Some(&mut (v, ref mut at)) = work.last_mut() {
                let end = self.offsets[v as usize + 1];
                let mut descended = false;
                while *at < end {
                    let e = *at as usize;
                    *at += 1;
                    if self.kinds[e] & mask == 0 {
                        continue;
                    }
                    let w = self.targets[e];
                    if index[w as usize] == NONE {
                        index[w as usize] = next;
                        low[w as usize] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w as usize] = true;
                        work.push((w, self.offsets[w as usize]));
                        descended = true;
                        break;
                    } else if on_stack[w as usize] {
                        low[v as usize] = low[v as usize].min(index[w as usize]);
                    }
                }
                if descended {
                    continue;
                }
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent as usize] = low[parent as usize].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    let mut component = Vec::new();
                    loop {
                        let w = stack.pop().expect("v is on the stack");
                        on_stack[w as usize] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.sort_unstable();
                        found.push(component);
                    }
                }
            }
        }
        found
    }
}

/// How many anti-dependency edges a cycle of a class has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RwCount {
    Any,
    Exactly1,
    AtLeast2,
}

/// The cycles of one class: the kinds it may use, the kind its pivot edge (the one
/// the search starts from) must carry, and its count of anti-dependencies.
#[derive(Clone, Copy, Debug)]
pub struct Class {
    pub allowed: u8,
    pub pivot: u8,
    pub rw: RwCount,
}

/// The search ran out of its budget.
#[derive(Debug)]
pub struct OutOfBudget;

/// A bound on the search: a deadline and a number of node visits.
pub struct SearchBudget {
    pub deadline: Option<Instant>,
    pub steps: u64,
}

impl SearchBudget {
    fn spend(&mut self, n: u64) -> Result<(), OutOfBudget> {
        if self.steps < n {
            return Err(OutOfBudget);
        }
        self.steps -= n;
        if self.steps % 1024 < n && self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(OutOfBudget);
        }
        Ok(())
    }
}

/// The kind an edge counts as in a cycle of `class`: a dependency if it is one,
/// an anti-dependency only if it is nothing else the class allows.
pub fn counted_kind(kinds: u8, allowed: u8) -> u8 {
    let k = kinds & allowed;
    for bit in [WW, WR, PROCESS, REALTIME, RW] {
        if k & bit != 0 {
            return bit;
        }
    }
    0
}

/// The shortest cycle of `class` found inside `component` (sorted node list), as
/// its nodes in order (the cycle closes from the last back to the first), starting
/// from each pivot edge in turn until one closes. `None` if there is none.
pub fn find_cycle(
    graph: &Graph,
    component: &[u32],
    class: Class,
    budget: &mut SearchBudget,
) -> Result<Option<Vec<u32>>, OutOfBudget> {
    let local = |v: u32| component.binary_search(&v).ok();
    let mut best: Option<Vec<u32>> = None;
    // Per search: the predecessor of each (node, rw count) state, by local index.
    let states = component.len() * 3;
    let mut prev: Vec<u32> = vec![u32::MAX; states];
    let mut touched: Vec<usize> = Vec::new();
    for &a in component {
        for (b, kinds) in graph.out(a) {
            if kinds & class.pivot == 0 || local(b).is_none() {
                continue;
            }
            // A pivot anti-dependency counts as one even where it is also a
            // dependency (that cycle is a dependency cycle, searched first).
            let first_rw = u8::from(class.pivot == RW || counted_kind(kinds, class.allowed) == RW);
            for i in touched.drain(..) {
                prev[i] = u32::MAX;
            }
            // BFS over (node, anti-dependencies so far, capped at 2) from b.
            let start = local(b).expect("in the component") * 3 + first_rw as usize;
            prev[start] = start as u32;
            touched.push(start);
            let mut queue = VecDeque::from([start]);
            let mut closed = None;
            while let Some(s) = queue.pop_front() {
                budget.spend(1)?;
                let (vi, rw) = (s / 3, (s % 3) as u8);
                let v = component[vi];
                if v == a && accepts(class.rw, rw) {
                    closed = Some(s);
                    break;
                }
                if v == a {
                    continue;
                }
                for (w, k) in graph.out(v) {
                    let counted = counted_kind(k, class.allowed);
                    if counted == 0 {
                        continue;
                    }
                    let Some(wi) = local(w) else { continue };
                    let rw2 = (rw + u8::from(counted == RW)).min(2);
                    if class.rw == RwCount::Exactly1 && rw2 > 1 {
                        continue;
                    }
                    let t = wi * 3 + rw2 as usize;
                    if prev[t] == u32::MAX {
                        prev[t] = s as u32;
                        touched.push(t);
                        queue.push_back(t);
                    }
                }
            }
            let Some(end) = closed else { continue };
            let mut path = vec![component[end / 3]];
            let mut s = end;
            while prev[s] as usize != s {
                s = prev[s] as usize;
                path.push(component[s / 3]);
            }
            path.reverse(); // b ... a
            // a -> b, then b ... a: the cycle is a, b, ..., (back to a).
            path.pop();
            let mut cycle = vec![a];
            cycle.extend(path);
            if !is_simple(&cycle) {
                continue;
            }
            if best.as_ref().is_none_or(|b| cycle.len() < b.len()) {
                let done = cycle.len() == 2;
                best = Some(cycle);
                if done {
                    return Ok(best);
                }
            }
        }
        if best.is_some() {
            // The first pivot node that closes a cycle: its shortest cycle is
            // reported (a shorter one elsewhere costs a search per pivot).
            return Ok(best);
        }
    }
    Ok(best)
}

fn accepts(rule: RwCount, rw: u8) -> bool {
    match rule {
        RwCount::Any => true,
        RwCount::Exactly1 => rw == 1,
        RwCount::AtLeast2 => rw >= 2,
    }
}

fn is_simple(cycle: &[u32]) -> bool {
    let mut seen = cycle.to_vec();
    seen.sort_unstable();
    seen.windows(2).all(|w| w[0] != w[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(list: &[(u32, u32, u8)]) -> Vec<u64> {
        list.iter().map(|&(a, b, k)| pack(a, b, k)).collect()
    }

    fn budget() -> SearchBudget {
        SearchBudget {
            deadline: None,
            steps: 1_000_000,
        }
    }

    #[test]
    fn components_find_cycles_and_only_them() {
        let g = Graph::build(5, edges(&[(0, 1, WW), (1, 2, WR), (2, 0, RW), (3, 4, WW)]));
        assert_eq!(g.components(WW | WR | RW), vec![vec![0, 1, 2]]);
        assert!(g.components(WW | WR).is_empty());
    }

    #[test]
    fn the_search_honours_the_count_of_anti_dependencies() {
        // 0 -ww-> 1 -rw-> 0: exactly one rw; 2 -rw-> 3 -rw-> 2: two.
        let g = Graph::build(4, edges(&[(0, 1, WW), (1, 0, RW), (2, 3, RW), (3, 2, RW)]));
        let all = g.components(WW | WR | RW);
        assert_eq!(all.len(), 2);
        let single = Class {
            allowed: WW | WR | RW,
            pivot: RW,
            rw: RwCount::Exactly1,
        };
        let two = Class {
            rw: RwCount::AtLeast2,
            ..single
        };
        assert_eq!(
            find_cycle(&g, &all[0], single, &mut budget()).unwrap(),
            Some(vec![1, 0])
        );
        assert_eq!(find_cycle(&g, &all[0], two, &mut budget()).unwrap(), None);
        assert_eq!(
            find_cycle(&g, &all[1], single, &mut budget()).unwrap(),
            None
        );
        assert!(
            find_cycle(&g, &all[1], two, &mut budget())
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn an_edge_that_is_also_a_dependency_is_not_counted_as_an_anti_dependency() {
        let g = Graph::build(2, edges(&[(0, 1, WW), (1, 0, RW), (1, 0, WR)]));
        assert_eq!(g.kinds_of(1, 0), RW | WR);
        let c = &g.components(WW | WR | RW)[0];
        let g1c = Class {
            allowed: WW | WR,
            pivot: WR,
            rw: RwCount::Any,
        };
        assert!(find_cycle(&g, c, g1c, &mut budget()).unwrap().is_some());
    }

    #[test]
    fn a_spent_budget_is_reported() {
        let ring: Vec<_> = (0..100).map(|i| (i, (i + 1) % 100, WW)).collect();
        let g = Graph::build(100, edges(&ring));
        let c = &g.components(WW)[0];
        let g0 = Class {
            allowed: WW,
            pivot: WW,
            rw: RwCount::Any,
        };
        let mut small = SearchBudget {
            deadline: None,
            steps: 10,
        };
        assert!(find_cycle(&g, c, g0, &mut small).is_err());
        assert_eq!(
            find_cycle(&g, c, g0, &mut budget()).unwrap().unwrap().len(),
            100
        );
    }
}
