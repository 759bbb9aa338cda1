//! TiKV's raft-rs in the simulation ([`paxos_node::raft::RaftCore`]): its
//! configuration from a plan's node arguments, and Raft's safety properties
//! ([`checker::raft`]) shown every step.

use std::collections::BTreeSet;

use checker::CheckReport;
use checker::protocol::Coverage;
use checker::raft::{Ent, RaftRules};
use paxos_node::raft::{RaftConfig, RaftCore, RaftMsg, RaftRecord};
use paxos_node::seam::{Action, Actions, Core, Wire};
use paxos_node::types::{Batch, Slot};
use results::Plan;

use super::core::{Rules, SimCore};
use crate::spec::UsageError;
use crate::vocab::NodeId;

impl SimCore for RaftCore {
    type Rules = RaftSimRules;

    fn plan_config(plan: &Plan) -> Result<RaftConfig, UsageError> {
        let args = super::node_args(plan)?;
        let mut cfg = args
            .raft_config(1, plan.nodes)
            .map_err(|e| UsageError(format!("--node-arg: {e}")))?;
        if !plan
            .node_args
            .iter()
            .any(|a| a.starts_with("--snapshot-every"))
        {
            cfg.snapshot_every = super::SIM_SNAPSHOT_EVERY;
        }
        Ok(cfg)
    }

    /// raft-rs writes no record for a commit: what a node learned comes from
    /// [`SimCore::take_committed`].
    fn chosen(_record: RaftRecord) -> Option<(Slot, Batch)> {
        None
    }

    fn campaign(msg: &RaftMsg) -> Option<u64> {
        (msg.kind() == "vote").then_some(msg.0.term)
    }

    fn dump(&self, _id: NodeId) -> String {
        RaftCore::dump(self, 1)
    }

    fn take_committed(&mut self) -> Vec<(Slot, Batch)> {
        RaftCore::take_committed(self)
    }
}

/// Raft's properties over a simulated run of raft-rs nodes.
pub struct RaftSimRules {
    rules: RaftRules,
    /// Nodes restarted whose recovered log the rules have not read yet.
    restarted: BTreeSet<NodeId>,
}

fn ents(entries: &[paxos_node::raft::LogEntry]) -> Vec<Ent> {
    entries
        .iter()
        .map(|e| Ent {
            index: e.index,
            term: e.term,
            fingerprint: e.fingerprint(),
        })
        .collect()
}

impl Rules<RaftCore> for RaftSimRules {
    fn new(n: usize) -> Self {
        RaftSimRules {
            rules: RaftRules::new(n),
            restarted: BTreeSet::new(),
        }
    }

    fn restarted(&mut self, _now: u64, id: NodeId) {
        self.restarted.insert(id);
    }

    fn received(&mut self, _now: u64, _id: NodeId, _from: NodeId, _msg: &RaftMsg) {}

    fn stepped(&mut self, now: u64, id: NodeId, actions: &Actions<RaftCore>, core: &RaftCore) {
        if self.restarted.remove(&id) {
            let store = core.store();
            let log = store.log().map(|(index, term, fingerprint)| Ent {
                index,
                term,
                fingerprint,
            });
            self.rules.restarted(id, store.snapshot_index(), log);
        }
        let view = core.view();
        let leads = (view.role == "leader").then_some(view.round);
        self.rules.view(now, id, leads);
        let (mut wrote, mut sends) = (false, false);
        for action in actions {
            match action {
                Action::Persist(RaftRecord::Entries { entries }) => {
                    wrote = true;
                    self.rules.appended(now, id, &ents(entries));
                }
                Action::Persist(_) => wrote = true,
                Action::Snapshot { snapshot, .. } => {
                    wrote = true;
                    self.rules.compacted(id, snapshot.index);
                }
                Action::Send { .. } => sends = true,
                _ => {}
            }
        }
        if wrote && sends {
            self.rules.unsent(id);
        }
        for &(index, term, fingerprint) in core.applied_now() {
            self.rules.applied(
                now,
                id,
                Ent {
                    index,
                    term,
                    fingerprint,
                },
            );
        }
    }

    fn sent(&mut self, _now: u64, id: NodeId, _to: NodeId, _msg: &RaftMsg) {
        self.rules.sent(id);
    }

    fn finish(self) -> (CheckReport, Coverage) {
        self.rules.finish()
    }
}
