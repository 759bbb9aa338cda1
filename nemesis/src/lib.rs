//! The nemesis: faults as data.
//!
//! A fault schedule is an explicit list of [`ScheduledFault`]s (`{at_ms, fault,
//! targets}`), generated from the run's seed *before* the run starts and stored in
//! plan.json, so it can be printed, replayed and shrunk. Everything random is decided
//! at generation time: a `random-halves` partition is stored with the groups it drew,
//! a `minority` kill with the nodes it picked. The harness only executes.
//!
//! - [`Fault`]: the vocabulary (partitions of several shapes, heal, kill, restart,
//!   pause, resume, link faults, link heal; clock and disk-corruption faults, which
//!   only the simulation makes).
//! - [`grudge`]: a partition shape resolved to the set of cut directed links.
//! - [`generate`]: a seeded schedule for a set of fault kinds; [`check_schedule`]:
//!   whether any schedule fits its run.
//! - [`net`]: the network layer that executes partitions and link faults: a
//!   forwarding proxy per directed link (tokio).
//! - [`process`]: process faults as signals to a node's process group.

mod generate;
pub mod net;
pub mod netns;
pub mod process;
mod roles;
mod shapes;
mod valid;

pub use generate::{
    DEFAULT_INTERVAL_MS, FaultKinds, KindsError, NAMES as KIND_NAMES, default_interval_ms,
    generate, most_corrupted,
};
pub use roles::{LeaderView, Resolution, Resolver, Role};
pub use shapes::{SHAPES, Shape, grudge, reachable};
pub use valid::{CLOCK_RATES, MAX_CLOCK_JUMP_MS, MAX_LINK_DELAY_MS, check_schedule};

#[cfg(test)]
mod apply_tests;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A node's id, 1..=n: the journal's type, the one of every crate.
pub use paxos_trace::NodeId;

/// Link behaviour for the duration of a link fault (per directed link).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

impl LinkFaults {
    /// One message's fate on a link degraded like this, drawn from the link's own
    /// stream: the delays of its deliveries; empty if it is dropped, two if it is
    /// duplicated. Every network backend that degrades links draws from here.
    pub fn fate(&self, rng: &mut ChaCha8Rng) -> Vec<std::time::Duration> {
        use rand::RngExt;
        if rng.random_bool(self.loss.clamp(0.0, 1.0)) {
            return Vec::new();
        }
        let copies = if rng.random_bool(self.duplicate.clamp(0.0, 1.0)) {
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                let jitter =
                    rng.random_range(0..=2 * self.jitter_ms) as i64 - self.jitter_ms as i64;
                let mut ms = (self.delay_ms as i64 + jitter).max(0) as u64;
                if rng.random_bool(self.reorder.clamp(0.0, 1.0)) {
                    // Held back long enough for later messages to overtake it.
                    ms += rng.random_range(1..=2 * self.delay_ms.max(10));
                }
                std::time::Duration::from_millis(ms)
            })
            .collect()
    }
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
    /// Run the targets' clocks at `rate` times real speed from now on, after jumping
    /// them `jump_ms` forward: their timers fire early or late. Safety must not depend
    /// on clocks. Only `chaos sim` makes it; other systems record it as skipped.
    Clock { rate: f64, jump_ms: u64 },
    /// Put the targets' clocks back to real speed.
    ClockReset,
    /// Flip one bit inside a synced record of each target's write-ahead log (not its
    /// final record, which recovery may take for a torn write) or inside its snapshot
    /// file; `position` picks which, modulo the bits eligible. The node must refuse to
    /// start on it, naming the file (and a record's offset). Only `chaos sim` makes it.
    Corrupt { position: u64 },
}

impl Fault {
    /// Whether this starts a fault (rather than undoing one). Headers and summaries
    /// count faults in this one unit.
    pub fn starts_fault(&self) -> bool {
        match self {
            Fault::Partition { .. }
            | Fault::Kill
            | Fault::Pause
            | Fault::Links(_)
            | Fault::Clock { .. }
            | Fault::Corrupt { .. } => true,
            Fault::Heal | Fault::Restart | Fault::Resume | Fault::LinksHeal | Fault::ClockReset => {
                false
            }
        }
    }

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
            Fault::Clock { .. } => "clock",
            Fault::ClockReset => "clock-reset",
            Fault::Corrupt { .. } => "corrupt",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// Milliseconds after the workload starts.
    pub at_ms: u64,
    pub fault: Fault,
    /// The nodes the fault applies to (for partitions: the nodes named by the shape).
    /// With a `role`, the nodes to fall back on when no leader is known.
    pub targets: Vec<NodeId>,
    /// Aimed by role: resolved to nodes when the fault starts ([`Resolver`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// The outcome of executing a fault, as recorded in the history's nemesis event
/// (docs/faults.md): `"installed"`, `{"skipped": why}`, `{"indeterminate": why}`, or
/// `{"partially-installed": {"applied": [ids], "skipped": [ids]}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisOutcome {
    /// It took effect on every target.
    Installed,
    /// It took effect on some targets; the others were not in a state it applies to
    /// (a kill of a node already down).
    PartiallyInstalled {
        applied: Vec<NodeId>,
        skipped: Vec<NodeId>,
    },
    /// It took effect nowhere, for the reason given.
    Skipped(String),
    /// It may or may not have taken effect (an error half-way).
    Indeterminate(String),
}

impl NemesisOutcome {
    /// Whether the fault is in force (wholly or on some targets) afterwards.
    pub fn took_effect(&self) -> bool {
        matches!(
            self,
            NemesisOutcome::Installed | NemesisOutcome::PartiallyInstalled { .. }
        )
    }
}

/// Why a backend did not make a fault, classed where the backend fails: the class
/// decides the fault's recorded outcome, so no caller has to guess it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The backend cannot make this fault and did nothing: recorded as skipped.
    #[error("{0}")]
    Cannot(String),
    /// The backend tried and failed part-way, or cannot tell whether it acted:
    /// recorded as indeterminate.
    #[error("{0}")]
    Unknown(String),
}

impl FaultError {
    /// The backend's own bookkeeping broke (a poisoned lock): nothing is known.
    pub fn poisoned(what: &str) -> FaultError {
        FaultError::Unknown(format!("{what}'s lock is poisoned"))
    }
}

/// What a backend's call answers: `Ok(true)` when it acted, `Ok(false)` when the
/// node was not in a state the fault applies to (killing a node that is down).
pub type Acted = Result<bool, FaultError>;

/// What executes process faults on a system's nodes. Each call reports `Ok(true)`
/// when it acted, `Ok(false)` when the node was not in a state the fault applies to
/// (killing a node that is down), and a [`FaultError`] otherwise.
pub trait Nodes {
    fn kill(&self, id: NodeId) -> Acted;
    fn pause(&self, id: NodeId) -> Acted;
    fn resume(&self, id: NodeId) -> Acted;
    /// Starts the node again on its own data, if it is down.
    fn restart(&self, id: NodeId) -> Acted;
    /// Why this system cannot make `fault` at all, if it cannot: the fault is then
    /// recorded as skipped with this reason. By default, clock and disk-corruption
    /// faults (which need a simulated clock and disk) cannot be made.
    fn cannot(&self, fault: &Fault) -> Option<&'static str> {
        match fault {
            Fault::Clock { .. } | Fault::ClockReset => Some(NO_CLOCK),
            Fault::Corrupt { .. } => Some(NO_CORRUPT),
            _ => None,
        }
    }
    /// Runs the node's clock at `rate` after a forward jump of `jump_ms`
    /// ([`Fault::Clock`]); `rate` 1 and no jump is [`Fault::ClockReset`].
    fn set_clock(&self, _id: NodeId, _rate: f64, _jump_ms: u64) -> Acted {
        Err(FaultError::Cannot(NO_CLOCK.into()))
    }
    /// Flips one bit of a synced WAL record or of the snapshot file
    /// ([`Fault::Corrupt`]).
    fn corrupt(&self, _id: NodeId, _position: u64) -> Acted {
        Err(FaultError::Cannot(NO_CORRUPT.into()))
    }
}

/// Why a system without clock control skips a clock fault.
pub const NO_CLOCK: &str = "this system cannot change a node's clock (chaos sim can)";
/// Why a system without a simulated disk skips a corruption fault.
pub const NO_CORRUPT: &str = "this system cannot corrupt a node's disk (chaos sim can)";

/// What executes network faults between a system's nodes. A backend that cannot
/// make a fault returns [`FaultError::Cannot`] with the reason (the fault is recorded
/// as skipped); one that failed part-way [`FaultError::Unknown`] (indeterminate).
pub trait Links {
    /// Cuts the directed links `(from, to)`: `to` no longer hears `from`.
    fn cut(&self, links: &[(NodeId, NodeId)]) -> Result<(), FaultError>;
    /// Restores every cut link.
    fn heal(&self) -> Result<(), FaultError>;
    /// Degrades every link between `targets` and all nodes.
    fn degrade(&self, targets: &[NodeId], faults: &LinkFaults) -> Result<(), FaultError>;
    /// Restores every degraded link.
    fn restore(&self) -> Result<(), FaultError>;
}

/// Executes one scheduled fault: the one entry point from a schedule to a system. It
/// never decides anything (the schedule did); it acts and says what happened. Every
/// fault kind is matched here, so a new kind does not compile until it is executed.
pub fn apply(nodes: &dyn Nodes, links: &dyn Links, fault: &ScheduledFault) -> NemesisOutcome {
    if let Some(why) = nodes.cannot(&fault.fault) {
        return NemesisOutcome::Skipped(why.into());
    }
    let network = |r: Result<(), FaultError>| match r {
        Ok(()) => NemesisOutcome::Installed,
        Err(FaultError::Cannot(why)) => NemesisOutcome::Skipped(why),
        Err(FaultError::Unknown(why)) => NemesisOutcome::Indeterminate(why),
    };
    let per_node = |act: &dyn Fn(NodeId) -> Acted| {
        let mut applied = Vec::new();
        let mut skipped = Vec::new();
        let mut why = None;
        for &id in &fault.targets {
            match act(id) {
                Ok(true) => applied.push(id),
                Ok(false) => skipped.push(id),
                Err(FaultError::Cannot(w)) => {
                    why.get_or_insert(format!("node {id}: {w}"));
                    skipped.push(id);
                }
                Err(FaultError::Unknown(e)) => {
                    return NemesisOutcome::Indeterminate(format!(
                        "node {id}: {e} (done on {applied:?} before it)"
                    ));
                }
            }
        }
        if skipped.is_empty() && !applied.is_empty() {
            NemesisOutcome::Installed
        } else if applied.is_empty() {
            NemesisOutcome::Skipped(
                why.unwrap_or_else(|| "no target was in a state the fault applies to".into()),
            )
        } else {
            NemesisOutcome::PartiallyInstalled { applied, skipped }
        }
    };
    match &fault.fault {
        Fault::Partition { cut, .. } => network(links.cut(cut)),
        Fault::Heal => network(links.heal()),
        Fault::Links(faults) => network(links.degrade(&fault.targets, faults)),
        Fault::LinksHeal => network(links.restore()),
        Fault::Kill => per_node(&|id| nodes.kill(id)),
        Fault::Pause => per_node(&|id| nodes.pause(id)),
        Fault::Resume => per_node(&|id| nodes.resume(id)),
        Fault::Restart => per_node(&|id| nodes.restart(id)),
        Fault::Clock { rate, jump_ms } => per_node(&|id| nodes.set_clock(id, *rate, *jump_ms)),
        Fault::ClockReset => per_node(&|id| nodes.set_clock(id, 1.0, 0)),
        Fault::Corrupt { position } => per_node(&|id| nodes.corrupt(id, *position)),
    }
}

/// A named random stream derived from the run's seed, so that changing one knob (say,
/// the number of clients) does not reshuffle the others (docs/plans.md).
pub fn substream(seed: u64, name: &str) -> ChaCha8Rng {
    // FNV-1a of the name, mixed with the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(seed ^ h.rotate_left(17))
}
