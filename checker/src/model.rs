//! Sequential specifications for the linearizability search ([`crate::linear`]).
//!
//! A [`Model`] says what one object does when its operations run one at a time: an
//! initial state, and for each operation (with the result a client observed) the next
//! state, or `None` when the operation cannot have happened in that state with that
//! result. The search is generic over it; adding a data type to check (a counter, a
//! set, a queue) is one `impl Model` and a function that turns the history's ops into
//! the model's ops.
//!
//! - [`Register`]: one key of the KV store, `Option<i64>` (absent at first) with read,
//!   write and cas. The model `chaos run` uses.
//! - [`Counter`]: an integer with `add` and `read`, the shape of grow-only and PN
//!   counters.

use std::fmt::Debug;
use std::hash::{Hash, Hasher};

/// A sequential specification.
pub trait Model {
    /// One operation as the model sees it: what was asked and, where the client saw
    /// one, the result.
    type Op: Debug;
    /// The object's state. Hashable: the search memoises (linearized set, state).
    type State: Clone + Eq + Hash + Debug;

    fn init(&self) -> Self::State;

    /// The state after `op`, or `None` if `op` cannot take effect in `state` with its
    /// observed result.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// Whether `op` replaces the whole state whatever it was, and reports nothing (a
    /// blind write). The search may then place an unobserved such op lazily: right
    /// before another blind write, or at its own return. Only ops for which this holds
    /// may be marked `lazy`.
    fn overwrites(&self, _op: &Self::Op) -> bool {
        false
    }

    /// A 128-bit hash of a state, mixed into the search's memo key. The default hashes
    /// twice with the standard (fixed-key, so deterministic) hasher; a model with a
    /// cheap exact mix should override it.
    fn state_key(&self, state: &Self::State) -> u128 {
        let half = |salt: u64| {
            let mut h = std::hash::DefaultHasher::new();
            salt.hash(&mut h);
            state.hash(&mut h);
            h.finish()
        };
        (u128::from(half(0x5EED)) << 64) | u128::from(half(0xC0FFEE))
    }
}

/// What a register op asked for, with its observed result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// An ok read and the value it returned (`None` = absent).
    Read(Option<i64>),
    Write(i64),
    Cas {
        from: i64,
        to: i64,
    },
}

/// One KV key: a register holding `Option<i64>`, absent at first.
#[derive(Clone, Copy, Debug, Default)]
pub struct Register;

impl Model for Register {
    type Op = RegisterOp;
    type State = Option<i64>;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(&self, state: &Option<i64>, op: &RegisterOp) -> Option<Option<i64>> {
        match *op {
            RegisterOp::Read(seen) => (seen == *state).then_some(*state),
            RegisterOp::Write(v) => Some(Some(v)),
            RegisterOp::Cas { from, to } => (*state == Some(from)).then_some(Some(to)),
        }
    }

    fn overwrites(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Write(_))
    }

    /// splitmix64 of the value, and of its complement, one per half; absent has its
    /// own constant. Cheaper than hashing, and the register is the hot model.
    fn state_key(&self, state: &Option<i64>) -> u128 {
        fn mix(mut z: u64) -> u64 {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        match *state {
            None => 0x7A3C_55E1_09D2_4B6F_D1E8_2A90_6C3B_F157,
            Some(x) => (u128::from(mix(x as u64)) << 64) | u128::from(mix(!(x as u64) ^ 0x55AA)),
        }
    }
}

/// What a counter op asked for, with its observed result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterOp {
    Add(i64),
    /// An ok read and the value it returned.
    Read(i64),
}

/// An integer counter, 0 at first.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counter;

impl Model for Counter {
    type Op = CounterOp;
    type State = i64;

    fn init(&self) -> i64 {
        0
    }

    fn step(&self, state: &i64, op: &CounterOp) -> Option<i64> {
        match *op {
            CounterOp::Add(n) => state.checked_add(n),
            CounterOp::Read(seen) => (seen == *state).then_some(*state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_steps() {
        let r = Register;
        assert_eq!(r.step(&None, &RegisterOp::Read(None)), Some(None));
        assert_eq!(r.step(&Some(1), &RegisterOp::Read(None)), None);
        assert_eq!(r.step(&None, &RegisterOp::Write(3)), Some(Some(3)));
        assert_eq!(
            r.step(&Some(3), &RegisterOp::Cas { from: 3, to: 4 }),
            Some(Some(4))
        );
        assert_eq!(r.step(&None, &RegisterOp::Cas { from: 3, to: 4 }), None);
        assert!(r.overwrites(&RegisterOp::Write(1)));
        assert!(!r.overwrites(&RegisterOp::Cas { from: 1, to: 2 }));
        assert_ne!(r.state_key(&None), r.state_key(&Some(0)));
    }

    #[test]
    fn counter_steps_and_default_key() {
        let c = Counter;
        assert_eq!(c.step(&2, &CounterOp::Add(3)), Some(5));
        assert_eq!(c.step(&5, &CounterOp::Read(5)), Some(5));
        assert_eq!(c.step(&5, &CounterOp::Read(4)), None);
        assert_eq!(c.step(&i64::MAX, &CounterOp::Add(1)), None);
        assert_ne!(c.state_key(&1), c.state_key(&2));
        assert_eq!(c.state_key(&7), c.state_key(&7), "deterministic");
    }
}
