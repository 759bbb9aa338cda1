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
//! - [`net`]: the network layer that executes partitions and link faults: a
//!   forwarding proxy per directed link (tokio).
//! - [`process`]: process faults as signals to a node's process group.

mod generate;
pub mod net;
pub mod process;
mod shapes;

pub use generate::{FaultKinds, KindsError, generate};
pub use shapes::{SHAPES, Shape, grudge, reachable};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
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

/// A named random stream derived from the run's seed, so that changing one knob (say,
/// the number of clients) does not reshuffle the others (DESIGN.md §8).
pub fn substream(seed: u64, name: &str) -> ChaCha8Rng {
    // FNV-1a of the name, mixed with the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(seed ^ h.rotate_left(17))
}
