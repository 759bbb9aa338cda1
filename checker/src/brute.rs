//! A brute-force linearizability checker for small histories: tries every order of the
//! ops that respects real time, with each `info` write or cas either taking effect at
//! some point or never. Exponential; for property tests against [`crate::linear`] only.
//!
//! It shares nothing with the search but the meaning of outcomes, and deliberately
//! skips the search's optimisations (it keeps `info` writes nobody observes), so the
//! two agreeing is evidence about both.

use crate::history::{Call, Op, Outcome};
use crate::linear::Timed;
use crate::model::Model;

/// Whether the ops of one key are linearizable. Meant for at most ~10 ops.
pub fn linearizable(ops: &[&Op]) -> bool {
    let ops: Vec<&Op> = ops
        .iter()
        .copied()
        .filter(|o| {
            o.outcome != Outcome::Fail
                && !matches!(o.call, Call::Propose { .. })
                && !(o.outcome == Outcome::Info && o.call == Call::Read)
        })
        .collect();
    let mut placed = vec![false; ops.len()];
    search(&ops, &mut placed, None)
}

fn search(ops: &[&Op], placed: &mut [bool], state: Option<i64>) -> bool {
    let required_left = ops
        .iter()
        .zip(placed.iter())
        .any(|(o, p)| !p && o.outcome == Outcome::Ok);
    if !required_left {
        return true; // the remaining info ops never take effect
    }
    for i in 0..ops.len() {
        if placed[i] {
            continue;
        }
        // Real time: an unplaced op that completed before `i` was invoked must come first.
        let blocked = ops.iter().zip(placed.iter()).any(|(o, p)| {
            !p && o.outcome == Outcome::Ok && o.complete_ns.is_some_and(|c| c < ops[i].invoke_ns)
        });
        if blocked {
            continue;
        }
        let next = match ops[i].call {
            Call::Read => (ops[i].result == Some(state)).then_some(state),
            Call::Write { value } => Some(Some(value)),
            Call::Cas { from, to } => (state == Some(from)).then_some(Some(to)),
            Call::Propose { .. } => None,
        };
        if let Some(next) = next {
            placed[i] = true;
            let ok = search(ops, placed, next);
            placed[i] = false;
            if ok {
                return true;
            }
        }
    }
    false
}

/// Brute force over any [`Model`]: every order of `ops` that respects real time (an op
/// whose return precedes another's call comes first), with each op that has no return
/// either taking effect at some point or never. For property tests of
/// [`crate::linear::search`] on small inputs; it ignores `lazy`.
pub fn linearizable_model<M: Model>(model: &M, ops: &[Timed<M::Op>]) -> bool {
    fn go<M: Model>(model: &M, ops: &[Timed<M::Op>], placed: &mut [bool], s: &M::State) -> bool {
        if ops
            .iter()
            .zip(placed.iter())
            .all(|(o, p)| *p || o.ret.is_none())
        {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            let blocked = ops
                .iter()
                .zip(placed.iter())
                .any(|(o, p)| !p && o.ret.is_some_and(|r| r.0 < ops[i].call.0));
            if blocked {
                continue;
            }
            if let Some(next) = model.step(s, &ops[i].op) {
                placed[i] = true;
                let ok = go(model, ops, placed, &next);
                placed[i] = false;
                if ok {
                    return true;
                }
            }
        }
        false
    }
    let mut placed = vec![false; ops.len()];
    go(model, ops, &mut placed, &model.init())
}
