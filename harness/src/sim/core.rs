//! What the simulation needs of a core beyond the seam ([`paxos_node::seam::Core`]):
//! its configuration from a plan, its protocol's rules checked on every step, and
//! the few words of its messages and records the world counts (a campaign, a log
//! position written down as chosen).
//!
//! One implementation per core: the bundled Paxos node here, TiKV's raft-rs in
//! [`super::raft`].

use std::collections::BTreeMap;

use checker::CheckReport;
use checker::protocol::{Coverage, Event, Invariants};
use paxos_node::core::{Config, Node, Record};
use paxos_node::msg::PeerMessage;
use paxos_node::rules;
use paxos_node::seam::{Actions, Core};
use paxos_node::types::{Batch, Slot};
use results::Plan;

use crate::spec::UsageError;
use crate::vocab::NodeId;

/// A core the simulation can run.
pub trait SimCore: Core {
    /// Its protocol's rules, shown every step.
    type Rules: Rules<Self>;

    /// The configuration template of every node of `plan` (from its core arguments).
    fn plan_config(plan: &Plan) -> Result<Self::Config, UsageError>;

    /// The log position and commands a record writes down as chosen (committed), if
    /// it does: once synced, part of what the node learned (log agreement). The
    /// record is written already; the world is done with it.
    fn chosen(record: Self::Record) -> Option<(Slot, Batch)>;

    /// The round a message starts a campaign for, if it does (`counts.elections`).
    fn campaign(msg: &Self::Msg) -> Option<u64>;

    /// The node's final dump (docs/protocol.md), as the real node writes it.
    fn dump(&self, id: NodeId) -> String;

    /// Entries this node committed since last asked (raft-rs writes no record for a
    /// commit): part of what it learned. The bundled node's come from its records.
    fn take_committed(&mut self) -> Vec<(Slot, Batch)> {
        Vec::new()
    }
}

/// A protocol's rules over one simulated run: shown every step of every node, in the
/// order the nodes took them.
pub trait Rules<C: Core> {
    fn new(n: usize) -> Self;
    /// Rules for a single run, which has a second core to spare: they may judge on
    /// a thread of their own, in the same order (the verdict is the same).
    fn apart(n: usize) -> Self
    where
        Self: Sized,
    {
        Self::new(n)
    }
    /// Node `id` restarted from its durable state (not its first start).
    fn restarted(&mut self, now: u64, id: NodeId);
    /// Node `id` took in `msg` from `from`; called before the step.
    fn received(&mut self, now: u64, id: NodeId, from: NodeId, msg: &C::Msg);
    /// Node `id` stepped (or started) and returned `actions`; `core` is its state after.
    fn stepped(&mut self, now: u64, id: NodeId, actions: &Actions<C>, core: &C);
    /// Node `id` sent `msg` to `to` (after the burst's sync).
    fn sent(&mut self, now: u64, id: NodeId, to: NodeId, msg: &C::Msg);
    /// The verdict of the rules and the situations reached.
    fn finish(self) -> (CheckReport, Coverage);
}

impl SimCore for Node {
    type Rules = PaxosRules;

    fn plan_config(plan: &Plan) -> Result<Config, UsageError> {
        super::node_config(plan)
    }

    fn chosen(record: Record) -> Option<(Slot, Batch)> {
        match record {
            Record::LogChosen { slot, batch } => Some((slot, batch)),
            _ => None,
        }
    }

    fn campaign(msg: &PeerMessage) -> Option<u64> {
        match msg {
            PeerMessage::LogPrepare { ballot, .. } => Some(*ballot),
            _ => None,
        }
    }

    fn dump(&self, id: NodeId) -> String {
        paxos_node::client::encode_dump(
            1,
            id,
            self.registers(),
            self.chosen_log().iter(),
            self.commit_index(),
            self.snapshot(),
        )
    }
}

/// The bundled node's rules ([`Invariants`]), judged as the nodes step, or on a
/// thread of their own ([`Rules::apart`]): the events go over in batches, in the
/// order the nodes stepped, so the thread reaches the same verdict. Translating a
/// step into the rules' events stays here; judging it (most of the rules' cost)
/// moves off the simulation's thread.
pub enum PaxosRules {
    Here(Box<Invariants>),
    Apart(Apart),
}

/// Events waiting for the rules' thread, the way to it, and the way back of its
/// verdict. The thread hands the verdict over, then frees the rules' state on its
/// own time: nobody waits for that. It hands each batch back emptied, for the
/// next: a batch is a third of a megabyte, and a fresh one costs its pages.
pub struct Apart {
    batch: Vec<(u64, Event)>,
    to: std::sync::mpsc::SyncSender<Vec<(u64, Event)>>,
    emptied: std::sync::mpsc::Receiver<Vec<(u64, Event)>>,
    verdict: std::sync::mpsc::Receiver<(CheckReport, Coverage)>,
}

/// Events per batch sent to the rules' thread.
const BATCH: usize = 4096;
/// Batches in flight to it at most: the simulation waits rather than queueing more.
const BATCHES: usize = 16;

impl PaxosRules {
    fn observe(&mut self, now: u64, event: Event) {
        match self {
            PaxosRules::Here(rules) => rules.observe(now, &event),
            PaxosRules::Apart(apart) => {
                apart.batch.push((now, event));
                if apart.batch.len() >= BATCH {
                    let next = apart
                        .emptied
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(BATCH));
                    let full = std::mem::replace(&mut apart.batch, next);
                    // The thread ends only when the sender is dropped, or when it
                    // panics, which `finish` reports.
                    let _ = apart.to.send(full);
                }
            }
        }
    }
}

impl Rules<Node> for PaxosRules {
    fn new(n: usize) -> Self {
        PaxosRules::Here(Box::new(Invariants::new(n)))
    }

    fn apart(n: usize) -> Self {
        let (to, from) = std::sync::mpsc::sync_channel::<Vec<(u64, Event)>>(BATCHES);
        let (give_back, emptied) = std::sync::mpsc::sync_channel(BATCHES);
        let (give, verdict) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("rules".into())
            .spawn(move || {
                let mut rules = Invariants::new(n);
                for mut batch in from {
                    for (now, event) in &batch {
                        rules.observe(*now, event);
                    }
                    batch.clear();
                    // Kept only while the simulation has room for it.
                    let _ = give_back.try_send(batch);
                }
                let _ = give.send(rules.verdict());
            })
            .expect("a thread for the rules");
        PaxosRules::Apart(Apart {
            batch: Vec::with_capacity(BATCH),
            to,
            emptied,
            verdict,
        })
    }

    fn restarted(&mut self, now: u64, id: NodeId) {
        self.observe(now, Event::Restart { node: id });
    }

    fn received(&mut self, now: u64, id: NodeId, from: NodeId, msg: &PeerMessage) {
        if let Some(e) = rules::received(from, id, msg) {
            self.observe(now, e);
        }
    }

    fn stepped(&mut self, now: u64, id: NodeId, actions: &Actions<Node>, _core: &Node) {
        rules::step_events(id, actions, |e| self.observe(now, e));
    }

    fn sent(&mut self, now: u64, id: NodeId, to: NodeId, msg: &PeerMessage) {
        if let Some(e) = rules::sent(id, to, msg) {
            self.observe(now, e);
        }
    }

    fn finish(self) -> (CheckReport, Coverage) {
        match self {
            PaxosRules::Here(rules) => rules.finish(),
            PaxosRules::Apart(Apart {
                batch, to, verdict, ..
            }) => {
                let _ = to.send(batch);
                drop(to);
                // The thread gives a verdict unless the rules panicked, which its
                // own panic message has said.
                verdict.recv().expect("the rules' thread panicked")
            }
        }
    }
}

/// A learned log: position -> commands.
pub type Learned = BTreeMap<Slot, Batch>;
