//! Faults aimed by role: a schedule can name the leader, its followers, a minority
//! that holds the leader or a majority without it, and the executor resolves the role
//! to node ids at the moment the fault starts, from what the nodes say about who
//! leads. Faults drawn at random against a leader-based protocol mostly land on
//! followers; these land where the bugs live.
//!
//! When no leader is known (an election is on, or the system does not say), the
//! fault falls back on the targets drawn when the schedule was made, and the history
//! says so. The undo of a role-aimed fault (restart, resume, clock reset) acts on the
//! nodes its start chose, even if the leader has changed since.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::shapes::Shape;
use crate::{Fault, NodeId, ScheduledFault};

/// Whom a fault is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The node the others follow.
    Leader,
    /// Every node but the leader.
    Followers,
    /// A minority that holds the leader (a partition cuts it from the rest).
    MinorityWithLeader,
    /// A majority without the leader (a partition cuts it from the rest).
    MajorityWithoutLeader,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Followers => "followers",
            Role::MinorityWithLeader => "minority-with-leader",
            Role::MajorityWithoutLeader => "majority-without-leader",
        }
    }
}

/// What the nodes said about who leads, when a role-aimed fault started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderView {
    pub leader: Option<NodeId>,
    /// How it was learned, or why it is not known (for the history).
    pub how: String,
    /// No leader is known now but one may be soon (an election is on, or the nodes
    /// did not answer in time): worth asking again. False when the system does not
    /// say who leads at all.
    #[serde(default)]
    pub transient: bool,
}

impl LeaderView {
    /// No leader, and asking again would not tell.
    pub fn unknown(why: &str) -> LeaderView {
        LeaderView {
            leader: None,
            how: why.to_string(),
            transient: false,
        }
    }

    /// No leader known yet: an election, or nodes too slow to answer.
    pub fn not_yet(why: &str) -> LeaderView {
        LeaderView {
            transient: true,
            ..LeaderView::unknown(why)
        }
    }

    /// The leader most of the answering nodes name (ties: the lowest id), from each
    /// answering node's `(id, the leader it names)`.
    pub fn by_vote(answers: &[(NodeId, Option<NodeId>)]) -> LeaderView {
        let mut votes: BTreeMap<NodeId, usize> = BTreeMap::new();
        for (_, leader) in answers {
            if let Some(l) = leader {
                *votes.entry(*l).or_default() += 1;
            }
        }
        let best = votes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(l, n)| (*l, *n));
        match best {
            Some((leader, n)) => LeaderView {
                leader: Some(leader),
                how: format!(
                    "status: {n} of {} answering nodes name node {leader}",
                    answers.len()
                ),
                transient: false,
            },
            None if answers.is_empty() => LeaderView::not_yet("no node answered status"),
            None => LeaderView::not_yet(&format!(
                "status: none of {} answering nodes knows a leader",
                answers.len()
            )),
        }
    }
}

/// How a role-aimed fault was resolved: recorded with its nemesis event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub role: Role,
    pub leader: Option<NodeId>,
    pub how: String,
    /// No leader was known: the schedule's own targets were used.
    pub fallback: bool,
}

/// Resolves role-aimed faults as a schedule runs; one per run.
#[derive(Debug, Default)]
pub struct Resolver {
    /// The nodes the last start aimed at each role chose.
    chosen: BTreeMap<Role, Vec<NodeId>>,
}

impl Resolver {
    /// The fault as it will be applied (targets, and a partition's cut, from the
    /// role), and how the role was resolved; a fault without a role is unchanged.
    /// `view` is asked only for a start aimed by role.
    pub fn resolve(
        &mut self,
        fault: &ScheduledFault,
        n: usize,
        view: impl FnOnce() -> LeaderView,
    ) -> (ScheduledFault, Option<Resolution>) {
        let Some(role) = fault.role else {
            return (fault.clone(), None);
        };
        let mut out = fault.clone();
        if !fault.fault.starts_fault() {
            // An undo acts on what its start chose.
            if let Some(chosen) = self.chosen.get(&role) {
                out.targets = chosen.clone();
            }
            return (out, None);
        }
        let view = view();
        let ids: Vec<NodeId> = (1..=n as NodeId).collect();
        let resolution = |fallback: bool| Resolution {
            role,
            leader: view.leader,
            how: view.how.clone(),
            fallback,
        };
        let Some(leader) = view.leader.filter(|l| ids.contains(l)) else {
            self.chosen.insert(role, out.targets.clone());
            return (out, Some(resolution(true)));
        };
        let others: Vec<NodeId> = ids.iter().copied().filter(|i| *i != leader).collect();
        // A minority with the leader: the leader and the next ids around the ring.
        let minority_size = (n - 1) / 2;
        let ring: Vec<NodeId> = (0..n)
            .map(|k| ((leader as usize - 1 + k) % n) as NodeId + 1)
            .collect();
        let with_leader: Vec<NodeId> = sorted(&ring[..minority_size.max(1)]);
        let without: Vec<NodeId> = ids
            .iter()
            .copied()
            .filter(|i| !with_leader.contains(i))
            .collect();
        out.targets = match role {
            Role::Leader => vec![leader],
            Role::Followers => others,
            Role::MinorityWithLeader => with_leader.clone(),
            Role::MajorityWithoutLeader => without.clone(),
        };
        if let Fault::Partition { shape, cut } = &mut out.fault {
            let groups = [with_leader, without];
            *cut = groups[0]
                .iter()
                .flat_map(|a| groups[1].iter().flat_map(move |b| [(*a, *b), (*b, *a)]))
                .collect();
            cut.sort_unstable();
            *shape = Shape::Halves { groups };
        }
        self.chosen.insert(role, out.targets.clone());
        (out, Some(resolution(false)))
    }
}

fn sorted(v: &[NodeId]) -> Vec<NodeId> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aimed(fault: Fault, role: Role, fallback: Vec<NodeId>) -> ScheduledFault {
        ScheduledFault {
            at_ms: 0,
            fault,
            targets: fallback,
            role: Some(role),
        }
    }

    fn known(leader: NodeId) -> LeaderView {
        LeaderView {
            leader: Some(leader),
            how: "test".into(),
            transient: false,
        }
    }

    #[test]
    fn a_known_leader_is_resolved_for_every_role() {
        let mut r = Resolver::default();
        let (f, how) = r.resolve(&aimed(Fault::Kill, Role::Leader, vec![1]), 5, || known(4));
        assert_eq!(f.targets, vec![4]);
        assert!(!how.unwrap().fallback);
        let (f, _) = r.resolve(&aimed(Fault::Pause, Role::Followers, vec![1]), 5, || {
            known(4)
        });
        assert_eq!(f.targets, vec![1, 2, 3, 5]);
        let partition = Fault::Partition {
            shape: Shape::IsolateOne { node: 1 },
            cut: vec![(1, 2)],
        };
        let (f, _) = r.resolve(
            &aimed(partition.clone(), Role::MinorityWithLeader, vec![1]),
            5,
            || known(5),
        );
        // 5 nodes: a minority of 2 around the ring from the leader.
        assert_eq!(f.targets, vec![1, 5]);
        let Fault::Partition { cut, .. } = &f.fault else {
            panic!("a partition")
        };
        assert_eq!(cut.len(), 2 * 2 * 3, "both ways between 2 and 3 nodes");
        assert!(cut.contains(&(5, 2)) && cut.contains(&(2, 5)) && !cut.contains(&(1, 5)));
        let (f, _) = r.resolve(
            &aimed(partition, Role::MajorityWithoutLeader, vec![1]),
            3,
            || known(2),
        );
        assert_eq!(f.targets, vec![1, 3]);
    }

    #[test]
    fn an_unknown_leader_falls_back_on_the_drawn_targets_and_says_so() {
        let mut r = Resolver::default();
        let (f, how) = r.resolve(&aimed(Fault::Kill, Role::Leader, vec![3]), 3, || {
            LeaderView::unknown("no node answered status")
        });
        assert_eq!(f.targets, vec![3]);
        let how = how.unwrap();
        assert!(how.fallback && how.leader.is_none());
        assert_eq!(how.how, "no node answered status");
    }

    #[test]
    fn an_undo_acts_on_what_its_start_chose_even_after_the_leader_changed() {
        let mut r = Resolver::default();
        let (kill, _) = r.resolve(&aimed(Fault::Kill, Role::Leader, vec![1]), 3, || known(2));
        assert_eq!(kill.targets, vec![2]);
        // The cluster elects node 3 meanwhile; the restart still restarts node 2, and
        // does not ask who leads.
        let (restart, how) = r.resolve(&aimed(Fault::Restart, Role::Leader, vec![1]), 3, || {
            panic!("an undo does not ask")
        });
        assert_eq!(restart.targets, vec![2]);
        assert!(how.is_none());
    }

    #[test]
    fn the_leader_is_the_one_most_nodes_name() {
        let v = LeaderView::by_vote(&[(1, Some(2)), (2, Some(2)), (3, Some(3))]);
        assert_eq!(v.leader, Some(2));
        assert!(v.how.contains("2 of 3"), "{}", v.how);
        assert_eq!(LeaderView::by_vote(&[(1, None)]).leader, None);
        assert!(LeaderView::by_vote(&[(1, None)]).transient);
        assert_eq!(LeaderView::by_vote(&[]).leader, None);
        assert!(
            LeaderView::by_vote(&[]).transient,
            "no answer yet: ask again"
        );
        assert!(!v.transient);
        // A tie goes to the lower id.
        assert_eq!(
            LeaderView::by_vote(&[(1, Some(3)), (2, Some(1))]).leader,
            Some(1)
        );
    }
}
