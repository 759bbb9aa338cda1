//! The nemesis: faults as data.
//!
//! A fault schedule is an explicit list of [`ScheduledFault`]s (`{at_ms, fault,
//! targets}`), generated from the run's seed *before* the run starts and stored in
//! plan.json, so it can be printed, replayed and shrunk. Everything random is decided
//! at generation time: a `random-halves` partition is stored with the groups it drew,
//! a `minority` kill with the nodes it picked. The harness only executes.
//!
//! - [`Fault`]: the vocabulary (partitions of several shapes, heal, kill, restart,
//!   pause, resume, link faults, link heal).
//! - [`grudge`]: a partition shape resolved to the set of cut directed links.
//! - [`generate`]: a seeded schedule for a set of fault kinds.

mod generate;
mod shapes;

pub use generate::{FaultKinds, KindsError, generate};
pub use shapes::{SHAPES, Shape, grudge, reachable};

use serde::{Deserialize, Serialize};

pub type NodeId = u32;

/// Link behaviour for the duration of a link fault (per directed link).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkFaults {
    /// Probability that a message is dropped.
    pub loss: f64,
    /// Mean added delay.
    pub delay_ms: u64,
    /// The delay varies uniformly by up to this much either way.
    pub jitter_ms: u64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Probability that a message is held back long enough to be overtaken.
    pub reorder: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// Cut the directed links `cut` (resolved from `shape` at generation time).
    Partition {
        shape: Shape,
        cut: Vec<(NodeId, NodeId)>,
    },
    /// Restore every cut link.
    Heal,
    /// SIGKILL the targets' process groups.
    Kill,
    /// Start the targets again on their data directories.
    Restart,
    /// SIGSTOP the targets.
    Pause,
    /// SIGCONT the targets.
    Resume,
    /// Degrade every link between the targets and all nodes.
    Links(LinkFaults),
    /// Restore normal links.
    LinksHeal,
}

impl Fault {
    /// The name used for nemesis events in the history.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Heal => "heal",
            Fault::Kill => "kill",
            Fault::Restart => "restart",
            Fault::Pause => "pause",
            Fault::Resume => "resume",
            Fault::Links(_) => "links",
            Fault::LinksHeal => "links-heal",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// Milliseconds after the workload starts.
    pub at_ms: u64,
    pub fault: Fault,
    /// The nodes the fault applies to (for partitions: the nodes named by the shape).
    pub targets: Vec<NodeId>,
}

/// The outcome of executing a fault (DESIGN.md §9), as recorded in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisOutcome {
    Installed,
    Skipped(String),
    /// It may or may not have taken effect (e.g. an error half-way).
    Indeterminate(String),
}
