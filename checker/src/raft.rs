//! Raft's safety properties (the Raft paper's figure 3), checked over what every
//! node of a simulated run writes down, applies and believes, one step at a time:
//!
//! - `election-safety`: at most one leader per term.
//! - `leader-append-only`: a leader never overwrites or deletes an entry of its own
//!   log while it leads.
//! - `log-matching`: two logs holding an entry of the same index and term hold the
//!   same entry there (and, checked at the end, the same entries before it).
//! - `leader-completeness`: a leader's log holds every entry applied anywhere before
//!   its term began.
//! - `state-machine-safety`: no two nodes apply different entries at one index.
//!
//! A driver translates its core's steps into these calls; entries are (index, term,
//! fingerprint of their bytes). Alongside, "sometimes" counts ([`Coverage`]) say
//! whether the situations that test the properties happened.

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::Coverage;
use crate::report::{Anomaly, AnomalyKind, CheckReport, MessageRef};

pub type NodeId = u32;

/// One log entry as the rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ent {
    pub index: u64,
    pub term: u64,
    pub fingerprint: u64,
}

/// Raft's situations that exercise the properties.
pub const RAFT_SITUATIONS: [&str; 3] = [
    // A node became leader with entries in its log that no node had applied yet.
    "leader_change_with_uncommitted_entries",
    // A follower's log lost a suffix to a leader's conflicting entries.
    "follower_log_truncated",
    // A node restarted after writing records down and before sending what followed.
    "restart_between_persist_and_send",
];

/// Anomalies of one kind kept at most: the first ones say what broke.
const MAX_PER_KIND: usize = 10;

#[derive(Default)]
struct NodeState {
    /// index -> (term, fingerprint), above `compacted`.
    log: BTreeMap<u64, (u64, u64)>,
    compacted: u64,
    /// The term this node leads, if it leads.
    leading: Option<u64>,
    /// Records written whose sends have not left yet.
    unsent: bool,
}

/// The properties' state over a run.
pub struct RaftRules {
    nodes: Vec<NodeState>,
    /// term -> its leader and when it was first seen leading.
    leaders: BTreeMap<u64, (NodeId, u64)>,
    /// (index, term) -> (fingerprint, who wrote it first, when).
    entries: BTreeMap<(u64, u64), (u64, NodeId, u64)>,
    /// index -> (term, fingerprint, who applied it first, when).
    applied: BTreeMap<u64, (u64, u64, NodeId, u64)>,
    anomalies: Vec<Anomaly>,
    per_kind: BTreeMap<AnomalyKind, usize>,
    coverage: Coverage,
    events: u64,
}

fn record(time_ns: u64, node: NodeId, text: String) -> MessageRef {
    MessageRef {
        time_ns,
        event: "record".into(),
        from: Some(node),
        to: None,
        text,
    }
}

impl RaftRules {
    pub fn new(n: usize) -> RaftRules {
        RaftRules {
            nodes: (0..n).map(|_| NodeState::default()).collect(),
            leaders: BTreeMap::new(),
            entries: BTreeMap::new(),
            applied: BTreeMap::new(),
            anomalies: Vec::new(),
            per_kind: BTreeMap::new(),
            coverage: Coverage::of(&RAFT_SITUATIONS),
            events: 0,
        }
    }

    fn node(&mut self, id: NodeId) -> &mut NodeState {
        &mut self.nodes[id as usize - 1]
    }

    fn anomaly(
        &mut self,
        kind: AnomalyKind,
        slot: Option<u64>,
        message: String,
        witnesses: Vec<MessageRef>,
    ) {
        let n = self.per_kind.entry(kind).or_default();
        *n += 1;
        if *n > MAX_PER_KIND {
            return;
        }
        self.anomalies.push(Anomaly {
            kind,
            key: None,
            slot,
            message,
            ops: Vec::new(),
            witness: None,
            messages: witnesses,
            cycle: Vec::new(),
        });
    }

    /// Node `id`, after a step, leads term `term` (or does not lead).
    pub fn view(&mut self, time: u64, id: NodeId, leads: Option<u64>) {
        self.events += 1;
        let before = self.node(id).leading;
        self.node(id).leading = leads;
        let Some(term) = leads else {
            return;
        };
        if before == Some(term) {
            return;
        }
        match self.leaders.get(&term).copied() {
            Some((other, at)) if other != id => {
                self.anomaly(
                    AnomalyKind::ElectionSafety,
                    None,
                    format!("n{other} and n{id} both led term {term}"),
                    vec![
                        record(at, other, format!("leader of term {term}")),
                        record(time, id, format!("leader of term {term}")),
                    ],
                );
                return;
            }
            Some(_) => return,
            None => {
                self.leaders.insert(term, (id, time));
            }
        }
        self.new_leader(time, id, term);
    }

    /// Leader completeness, and whether the new leader carries uncommitted entries.
    fn new_leader(&mut self, time: u64, id: NodeId, term: u64) {
        let state = &self.nodes[id as usize - 1];
        let mut missing = None;
        for (index, (t, fp, who, at)) in self.applied.range(state.compacted + 1..) {
            if *t < term && state.log.get(index) != Some(&(*t, *fp)) {
                missing = Some((*index, *t, *who, *at, state.log.get(index).copied()));
                break;
            }
        }
        let max_applied = self.applied.keys().next_back().copied().unwrap_or(0);
        if state
            .log
            .keys()
            .next_back()
            .is_some_and(|last| *last > max_applied)
        {
            self.coverage
                .reached("leader_change_with_uncommitted_entries");
        }
        if let Some((index, t, who, at, has)) = missing {
            let has = match has {
                Some((ht, _)) => format!("an entry of term {ht}"),
                None => "nothing".into(),
            };
            self.anomaly(
                AnomalyKind::LeaderCompleteness,
                Some(index),
                format!(
                    "n{id} leads term {term} with {has} at index {index}, where n{who} had applied an entry of term {t}"
                ),
                vec![
                    record(at, who, format!("applied index {index} of term {t}")),
                    record(time, id, format!("leader of term {term}")),
                ],
            );
        }
    }

    /// Node `id` wrote `ents` (contiguous) to its log, replacing every entry from the
    /// first one's index on.
    pub fn appended(&mut self, time: u64, id: NodeId, ents: &[Ent]) {
        self.events += 1;
        let Some(first) = ents.first() else {
            return;
        };
        let state = &mut self.nodes[id as usize - 1];
        let removed: Vec<(u64, (u64, u64))> = state
            .log
            .range(first.index..)
            .map(|(i, e)| (*i, *e))
            .collect();
        let overwritten = removed
            .iter()
            .find(|(i, e)| {
                ents.iter()
                    .find(|n| n.index == *i)
                    .map(|n| (n.term, n.fingerprint))
                    != Some(*e)
            })
            .copied();
        state.log.split_off(&first.index);
        for e in ents {
            if e.index > state.compacted {
                state.log.insert(e.index, (e.term, e.fingerprint));
            }
        }
        let leading = state.leading;
        if let Some((index, (term, _))) = overwritten {
            self.coverage.reached("follower_log_truncated");
            if let Some(lt) = leading {
                self.anomaly(
                    AnomalyKind::LeaderAppendOnly,
                    Some(index),
                    format!("n{id}, leader of term {lt}, replaced its entry of term {term} at index {index}"),
                    vec![record(time, id, format!("entries {}..={} written", first.index, ents.last().map_or(first.index, |e| e.index)))],
                );
            }
        }
        for e in ents {
            match self.entries.get(&(e.index, e.term)).copied() {
                Some((fp, who, at)) if fp != e.fingerprint => self.anomaly(
                    AnomalyKind::LogMatching,
                    Some(e.index),
                    format!(
                        "n{who} and n{id} hold different entries at index {} of term {}",
                        e.index, e.term
                    ),
                    vec![
                        record(
                            at,
                            who,
                            format!("index {} term {} written", e.index, e.term),
                        ),
                        record(
                            time,
                            id,
                            format!("index {} term {} written", e.index, e.term),
                        ),
                    ],
                ),
                Some(_) => {}
                None => {
                    self.entries
                        .insert((e.index, e.term), (e.fingerprint, id, time));
                }
            }
        }
    }

    /// Node `id`'s log up to `index` is covered by a snapshot now.
    pub fn compacted(&mut self, id: NodeId, index: u64) {
        let state = self.node(id);
        state.compacted = state.compacted.max(index);
        let keep = state.log.split_off(&(index + 1));
        state.log = keep;
    }

    /// Node `id` restarted: its log is what it recovered.
    pub fn restarted(&mut self, id: NodeId, compacted: u64, log: impl Iterator<Item = Ent>) {
        self.events += 1;
        let state = self.node(id);
        if std::mem::take(&mut state.unsent) {
            self.coverage.reached("restart_between_persist_and_send");
        }
        let state = self.node(id);
        state.leading = None;
        state.compacted = compacted;
        state.log = log.map(|e| (e.index, (e.term, e.fingerprint))).collect();
    }

    /// Node `id` wrote records in a step whose sends wait for the sync.
    pub fn unsent(&mut self, id: NodeId) {
        self.node(id).unsent = true;
    }

    /// Node `id`'s sends left.
    pub fn sent(&mut self, id: NodeId) {
        self.node(id).unsent = false;
    }

    /// Node `id` applied `e` to its state machine.
    pub fn applied(&mut self, time: u64, id: NodeId, e: Ent) {
        self.events += 1;
        match self.applied.get(&e.index).copied() {
            Some((term, fp, who, at)) if (term, fp) != (e.term, e.fingerprint) => self.anomaly(
                AnomalyKind::StateMachineSafety,
                Some(e.index),
                format!(
                    "n{who} applied an entry of term {term} at index {}, n{id} one of term {}",
                    e.index, e.term
                ),
                vec![
                    record(at, who, format!("applied index {} term {term}", e.index)),
                    record(
                        time,
                        id,
                        format!("applied index {} term {}", e.index, e.term),
                    ),
                ],
            ),
            Some(_) => {}
            None => {
                self.applied
                    .insert(e.index, (e.term, e.fingerprint, id, time));
            }
        }
    }

    /// Log matching over whole logs: where two logs agree on an entry's term they
    /// agree on every entry before it that both still hold.
    fn logs_match(&mut self) {
        let n = self.nodes.len();
        for a in 0..n {
            for b in a + 1..n {
                let (la, lb) = (&self.nodes[a].log, &self.nodes[b].log);
                let common = la
                    .iter()
                    .rev()
                    .find(|(i, (t, _))| lb.get(i).is_some_and(|(tb, _)| tb == t))
                    .map(|(i, _)| *i);
                let Some(top) = common else { continue };
                let differs = la
                    .range(..=top)
                    .find(|(i, e)| lb.get(i).is_some_and(|eb| eb != *e))
                    .map(|(i, _)| *i);
                if let Some(index) = differs {
                    let (ida, idb) = (a as NodeId + 1, b as NodeId + 1);
                    self.anomaly(
                        AnomalyKind::LogMatching,
                        Some(index),
                        format!(
                            "n{ida} and n{idb} agree on the entry at index {top} but differ at index {index} before it"
                        ),
                        Vec::new(),
                    );
                }
            }
        }
    }

    /// The verdict: invalid with the broken properties' anomalies, valid otherwise.
    pub fn finish(mut self) -> (CheckReport, Coverage) {
        self.logs_match();
        let broken: usize = self.per_kind.values().sum();
        let summary = format!(
            "Raft's properties: {} events; {broken} violations; {} terms led; {} entries applied; situations never reached: {}",
            self.events,
            self.leaders.len(),
            self.applied.len(),
            self.coverage.never_reached_words()
        );
        (
            CheckReport::decided("protocol", summary, self.anomalies),
            self.coverage,
        )
    }

    /// Terms with a leader so far (tests).
    pub fn terms_led(&self) -> BTreeSet<u64> {
        self.leaders.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(index: u64, term: u64, fingerprint: u64) -> Ent {
        Ent {
            index,
            term,
            fingerprint,
        }
    }

    fn kinds(r: RaftRules) -> Vec<AnomalyKind> {
        r.finish().0.anomalies.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn a_correct_run_breaks_nothing() {
        let mut r = RaftRules::new(3);
        r.view(1, 1, Some(1));
        for id in 1..=3 {
            r.appended(2, id, &[ent(1, 1, 7), ent(2, 1, 8)]);
            r.applied(3, id, ent(1, 1, 7));
        }
        r.view(4, 1, None);
        r.view(5, 2, Some(2));
        r.appended(6, 2, &[ent(3, 2, 9)]);
        assert!(kinds(r).is_empty());
    }

    #[test]
    fn two_leaders_of_one_term_break_election_safety() {
        let mut r = RaftRules::new(3);
        r.view(1, 1, Some(4));
        r.view(2, 2, Some(4));
        assert_eq!(kinds(r), vec![AnomalyKind::ElectionSafety]);
    }

    #[test]
    fn a_leader_that_truncates_its_log_breaks_append_only() {
        let mut r = RaftRules::new(3);
        r.view(1, 1, Some(1));
        r.appended(2, 1, &[ent(1, 1, 7), ent(2, 1, 8)]);
        r.appended(3, 1, &[ent(2, 1, 9)]);
        let k = kinds(r);
        assert!(k.contains(&AnomalyKind::LeaderAppendOnly), "{k:?}");
        assert!(k.contains(&AnomalyKind::LogMatching), "{k:?}");
    }

    #[test]
    fn a_follower_truncated_is_coverage_not_an_anomaly() {
        let mut r = RaftRules::new(3);
        r.appended(1, 2, &[ent(1, 1, 7), ent(2, 1, 8)]);
        r.appended(2, 2, &[ent(2, 2, 9)]);
        let (report, coverage) = r.finish();
        assert!(report.anomalies.is_empty(), "{:?}", report.anomalies);
        assert_eq!(coverage.get("follower_log_truncated"), 1);
    }

    #[test]
    fn a_leader_without_a_committed_entry_breaks_completeness() {
        let mut r = RaftRules::new(3);
        r.appended(1, 1, &[ent(1, 1, 7)]);
        r.applied(2, 1, ent(1, 1, 7));
        r.view(3, 2, Some(2));
        assert_eq!(kinds(r), vec![AnomalyKind::LeaderCompleteness]);
    }

    #[test]
    fn two_entries_applied_at_one_index_break_state_machine_safety() {
        let mut r = RaftRules::new(3);
        r.applied(1, 1, ent(5, 1, 7));
        r.applied(2, 2, ent(5, 2, 8));
        assert_eq!(kinds(r), vec![AnomalyKind::StateMachineSafety]);
    }

    #[test]
    fn logs_that_agree_at_the_top_but_not_below_break_log_matching() {
        let mut r = RaftRules::new(2);
        r.appended(1, 1, &[ent(1, 1, 7), ent(2, 1, 8)]);
        r.appended(1, 2, &[ent(1, 2, 6)]);
        r.appended(2, 2, &[ent(2, 1, 8)]);
        assert_eq!(kinds(r), vec![AnomalyKind::LogMatching]);
    }
}
