//! The order in which a driver carries out a burst of the core's actions: the one
//! piece of the durability contract that lives outside the core, written once and
//! driven by both the tokio shell and the simulation.
//!
//! The core's contract is that no send or reply leaves before the records it
//! depends on are durable. A burst (the actions of every event a driver stepped
//! before its next sync) is therefore carried out as: append every record, sync once
//! (group commit), then every other action in the order the core produced them.
//! [`order`] returns exactly that sequence; the driver only executes it, so the
//! simulation's crashes test the ordering the real node uses.
//!
//! With `--bug unsynced-reply` (the bundled node's [`crate::types::Bug::UnsyncedReply`]) the sends, replies and timers come first and the sync
//! last: a crash between them loses records that a peer or client already relied on.

use crate::seam::Action;
use crate::types::{NodeId, OpResult};

/// One thing a driver does, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step<M, R, S, T> {
    /// Append the record to the WAL (buffered; durable only after [`Step::Sync`]).
    Append(R),
    /// Take a snapshot: the WAL goes on in a new segment that starts with `keep`
    /// (the records that still matter after the snapshot), while the snapshot file
    /// is written off the node's step; the segment before is deleted once both are
    /// durable. Like an append, durable only after [`Step::Sync`].
    Snapshot { snapshot: S, keep: Vec<R> },
    /// Make every appended record durable before going on.
    Sync,
    /// An action with an effect outside the node.
    Effect(Effect<M, T>),
}

/// A non-durable action of the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<M, T> {
    Send { to: NodeId, msg: M },
    Reply { token: u64, result: OpResult },
    SetTimer { timer: T, after_ms: u64 },
}

/// The steps that carry out one burst of actions. At most one [`Step::Sync`], and
/// only when the burst appended a record or took a snapshot. `effects_first`: the
/// core's test-only mistake of letting effects overtake the sync
/// ([`crate::seam::Core::effects_before_sync`]).
pub fn order<M, R, S, T>(
    actions: Vec<Action<M, R, S, T>>,
    effects_first: bool,
) -> Vec<Step<M, R, S, T>> {
    let Burst { durable, effects } = split(actions);
    let sync = (!durable.is_empty()).then_some(Step::Sync);
    let durable = durable.into_iter().map(Step::from);
    let effects = effects.into_iter().map(Step::Effect);
    let mut steps = Vec::with_capacity(durable.len() + effects.len() + 1);
    if effects_first {
        steps.extend(effects);
        steps.extend(durable);
        steps.extend(sync);
    } else {
        steps.extend(durable);
        steps.extend(sync);
        steps.extend(effects);
    }
    steps
}

/// A burst's actions in the two groups [`order`] carries out: what must become
/// durable (in the core's order) and the effects (in the core's order). A driver that
/// keeps the effects aside until its sync completes (the simulation) takes them
/// from here, each action moved once.
pub struct Burst<M, R, S, T> {
    pub durable: Vec<Durable<R, S>>,
    pub effects: Vec<Effect<M, T>>,
}

/// An action that must be durable before the effects that follow it leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Durable<R, S> {
    /// [`Step::Append`].
    Append(R),
    /// [`Step::Snapshot`].
    Snapshot { snapshot: S, keep: Vec<R> },
}

impl<M, R, S, T> From<Durable<R, S>> for Step<M, R, S, T> {
    fn from(d: Durable<R, S>) -> Self {
        match d {
            Durable::Append(record) => Step::Append(record),
            Durable::Snapshot { snapshot, keep } => Step::Snapshot { snapshot, keep },
        }
    }
}

/// Splits a burst's actions into [`Burst`]'s two groups.
pub fn split<M, R, S, T>(actions: Vec<Action<M, R, S, T>>) -> Burst<M, R, S, T> {
    let mut durable = Vec::new();
    let mut effects = Vec::with_capacity(actions.len());
    for action in actions {
        match action {
            Action::Persist(record) => durable.push(Durable::Append(record)),
            Action::Snapshot { snapshot, keep } => {
                durable.push(Durable::Snapshot { snapshot, keep })
            }
            Action::Send { to, msg } => effects.push(Effect::Send { to, msg }),
            Action::Reply { token, result } => effects.push(Effect::Reply { token, result }),
            Action::SetTimer { timer, after_ms } => {
                effects.push(Effect::SetTimer { timer, after_ms })
            }
        }
    }
    Burst { durable, effects }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Action, Record, TimerId};

    fn burst() -> Vec<Action> {
        vec![
            Action::SetTimer {
                timer: TimerId::Heartbeat,
                after_ms: 5,
            },
            Action::Persist(Record::LogPromise { ballot: 3 }),
            Action::Reply {
                token: 1,
                result: OpResult::Done,
            },
            Action::Persist(Record::Incarnation { incarnation: 2 }),
        ]
    }

    #[test]
    fn records_are_synced_before_any_effect_leaves() {
        let steps = order(burst(), false);
        let sync = steps.iter().position(|s| *s == Step::Sync).unwrap();
        assert_eq!(sync, 2, "{steps:?}");
        assert!(steps[..sync].iter().all(|s| matches!(s, Step::Append(_))));
        assert!(
            steps[sync + 1..]
                .iter()
                .all(|s| matches!(s, Step::Effect(_)))
        );
        // The core's order is kept within each kind.
        assert_eq!(steps[0], Step::Append(Record::LogPromise { ballot: 3 }));
        assert!(matches!(steps[3], Step::Effect(Effect::SetTimer { .. })));
    }

    #[test]
    fn a_burst_without_records_does_not_sync() {
        let steps = order(
            burst()
                .into_iter()
                .filter(|a| !matches!(a, Action::Persist(_)))
                .collect(),
            false,
        );
        assert!(!steps.contains(&Step::Sync));
        assert_eq!(steps.len(), 2);
    }

    #[test]
    fn the_unsynced_reply_bug_lets_effects_overtake_the_sync() {
        let steps = order(burst(), true);
        assert_eq!(steps.last(), Some(&Step::Sync));
        assert!(matches!(steps[0], Step::Effect(_)));
    }
}
