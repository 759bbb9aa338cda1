//! Generated list-append histories of a strict serializable system: `concurrency`
//! processes, each running one transaction at a time; every transaction takes
//! effect at one instant between its invocation and its completion, in a global
//! order, so the history is valid under every model. For tests and benchmarks.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Mop, Status, TxnHistory};

/// The shape of a generated history.
#[derive(Clone, Debug)]
pub struct ListAppendConfig {
    pub seed: u64,
    pub txns: usize,
    pub concurrency: u32,
    /// Keys in use at once.
    pub active_keys: u32,
    /// Appends a key takes before it is retired for a fresh one (lists stay short).
    pub max_appends: u32,
    /// Micro-operations per transaction: uniform in 1..=max.
    pub max_mops: u32,
    /// Fraction of transactions that fail (and take no effect).
    pub fail_rate: f64,
}

impl ListAppendConfig {
    pub fn new(seed: u64, txns: usize) -> ListAppendConfig {
        ListAppendConfig {
            seed,
            txns,
            concurrency: 10,
            active_keys: 10,
            max_appends: 32,
            max_mops: 4,
            fail_rate: 0.01,
        }
    }
}

pub fn list_append(cfg: &ListAppendConfig) -> TxnHistory {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut h = TxnHistory::new();
    // Active keys: (key id, its list).
    let mut keys: Vec<(u32, Vec<u64>)> = (0..cfg.active_keys).map(|k| (k, Vec::new())).collect();
    let mut next_key = cfg.active_keys;
    let mut next_value = 1u64;
    let mut free_at = vec![0u64; cfg.concurrency as usize];
    let mut clock = 0u64;
    let mut mops = Vec::new();
    for _ in 0..cfg.txns {
        // The process free soonest invokes; the transaction takes effect now and
        // completes a little later.
        let p = (0..free_at.len())
            .min_by_key(|p| free_at[*p])
            .expect("a process");
        clock = (clock + 1).max(free_at[p]);
        let invoke = free_at[p];
        let complete = clock + rng.random_range(1..=3 * u64::from(cfg.concurrency));
        free_at[p] = complete + 1;
        let fail = rng.random_bool(cfg.fail_rate);
        mops.clear();
        for _ in 0..rng.random_range(1..=cfg.max_mops) {
            let slot = rng.random_range(0..keys.len());
            let (key, list) = &mut keys[slot];
            if rng.random_bool(0.5) {
                if !fail {
                    list.push(next_value);
                }
                mops.push(Mop::Append(*key, next_value));
                next_value += 1;
            } else {
                mops.push(Mop::Read(*key, (!fail).then(|| list.clone())));
            }
        }
        let status = if fail { Status::Fail } else { Status::Ok };
        h.push(p as u32, invoke, Some(complete), status, &mops);
        for (key, list) in &mut keys {
            if list.len() >= cfg.max_appends as usize {
                *key = next_key;
                list.clear();
                next_key += 1;
            }
        }
    }
    h
}
