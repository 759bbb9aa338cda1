//! The workload: client slots that each run one op at a time against one node.
//!
//! Register slots propose distinct values for the *same* key through different nodes
//! at once (the contended case Paxos exists for) and move to a new key once one of
//! them learns it is decided. KV slots draw ops from the plan's op mix over the plan's
//! KV keys, with values unique within the run. Each slot draws from its own named
//! stream of the seed.
//!
//! How a reply becomes ok / fail / info is the [`Client`]'s business (docs/history.md
//! says what each means); a process that got `info` is retired and the slot continues
//! as a fresh process.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use checker::history::Outcome;
use nemesis::substream;
use rand::RngExt;
use results::plan::KvChoice;
use results::{OpMix, Workload};

use crate::recorder::Recorder;
use crate::system::{Client, Completion, NodeId, System, UNAVAILABLE, WorkloadOp};

/// Runs one op: records the invoke, calls, records the completion.
pub async fn perform<C: Client>(
    client: &mut C,
    op: &WorkloadOp,
    process: u64,
    node: NodeId,
    recorder: &Recorder,
    timeout: Duration,
) -> Completion {
    recorder.invoke_op(process, op, node);
    let done = client.call(op, timeout).await;
    recorder.complete_op(process, op, node, &done);
    done
}

/// What the client tasks share.
pub struct Shared {
    pub stop: AtomicBool,
    /// The register key the register slots contend on now.
    pub register_key: AtomicU64,
    /// A transaction workload's active keys, one per plan key: its generation
    /// (`k0.3` is key `k0`'s fourth) and the writes drawn to it so far.
    pub txn_keys: std::sync::Mutex<Vec<(u64, u32)>>,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            stop: AtomicBool::new(false),
            register_key: AtomicU64::new(0),
            txn_keys: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

/// A scripted workload, per slot: each op and the time (ns from the start) it may go at.
pub type Script = Arc<[Vec<(u64, WorkloadOp)>]>;

#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub seed: u64,
    pub nodes: usize,
    pub concurrency: usize,
    pub workload: Workload,
    pub kv_keys: Arc<[String]>,
    pub op_mix: OpMix,
    /// How a transaction workload draws its transactions.
    pub txn_shape: results::plan::TxnShape,
    /// Total ops/s; 0 = as fast as possible.
    pub rate: f64,
    pub op_timeout: Duration,
    /// A slot stops after this many ops.
    pub ops_per_client: Option<u64>,
    /// A scripted workload: per slot, its ops and the time (ns from the start) each
    /// may go at.
    pub script: Option<Script>,
    /// The wait after a definite unavailable answer.
    pub backoff: results::plan::Backoff,
}

impl WorkloadConfig {
    pub fn of(plan: &results::Plan) -> WorkloadConfig {
        WorkloadConfig {
            seed: plan.seed,
            nodes: plan.nodes,
            concurrency: plan.concurrency,
            workload: plan.workload,
            kv_keys: plan.kv_keys.clone().into(),
            op_mix: plan.op_mix,
            txn_shape: plan.txn_shape.unwrap_or_default(),
            rate: plan.rate,
            op_timeout: Duration::from_millis(plan.op_timeout_ms),
            ops_per_client: plan.ops_per_client,
            backoff: plan.backoff,
            script: plan.script.as_ref().map(|ops| {
                let mut slots: Vec<Vec<(u64, WorkloadOp)>> = vec![Vec::new(); plan.concurrency];
                for o in ops {
                    if let Some(slot) = slots.get_mut(o.slot) {
                        slot.push((o.at_us * 1_000, o.op.clone()));
                    }
                }
                slots.into()
            }),
        }
    }
}

/// Starts every client slot; they run until `shared.stop` is set.
pub fn start<S: System>(
    cfg: &WorkloadConfig,
    recorder: Arc<Recorder>,
    system: Arc<S>,
    shared: Arc<Shared>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..cfg.concurrency)
        .map(|slot| {
            tokio::spawn(client_slot(
                cfg.clone(),
                slot,
                recorder.clone(),
                system.clone(),
                shared.clone(),
            ))
        })
        .collect()
}

/// How long a slot waits before trying again to connect to a node that is down.
pub const CONNECT_RETRY: Duration = Duration::from_millis(50);
/// Whether a completion is a definite "no leader could take it": the bundled node's
/// `unavailable`, Maelstrom's `temporarily-unavailable` (code 11).
pub fn is_unavailable(done: &Completion) -> bool {
    done.outcome == Outcome::Fail
        && matches!(
            done.error.as_deref(),
            Some(UNAVAILABLE | "temporarily-unavailable")
        )
}

/// One of `keys` active keys, as `dist` weighs them. Exponential: key `i` is
/// twice as likely as key `i - 1`, drawn as `keys - 1 - j` with `j` geometric
/// (each step on with probability 1/2) and drawn again past the last key, which
/// is exact for any number of keys where weights of `2^i` overflow.
fn draw_key(rng: &mut rand_chacha::ChaCha8Rng, dist: results::plan::KeyDist, keys: usize) -> usize {
    match dist {
        results::plan::KeyDist::Uniform => rng.random_range(0..keys),
        results::plan::KeyDist::Exponential => loop {
            let mut j = 0;
            while j < keys && rng.random_bool(0.5) {
                j += 1;
            }
            if j < keys {
                return keys - 1 - j;
            }
        },
    }
}

/// One client slot's own state: what it draws its ops from and what it has seen.
/// The async driver below and the simulation both run slots through this.
pub struct ClientSlot {
    pub index: usize,
    pub register: bool,
    /// The node this slot talks to.
    pub node: NodeId,
    /// The history process of the slot's current client.
    pub process: u64,
    rng: rand_chacha::ChaCha8Rng,
    seq: i64,
    /// Values written by this slot's transactions so far (each unique in the run).
    written: i64,
    /// Per key, the last value this client saw (a cas expects it).
    seen: BTreeMap<String, i64>,
    /// The wait after an unavailable answer, its stream of its own, and how many
    /// such answers came in a row.
    backoff: results::plan::Backoff,
    backoff_rng: rand_chacha::ChaCha8Rng,
    unavailable_streak: u32,
}

/// What a slot does after an op completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct After {
    /// Drop the connection and make a new one before the next op.
    pub reconnect: bool,
    /// Wait this long before the next op.
    pub backoff: Option<Duration>,
}

impl ClientSlot {
    pub fn new(cfg: &WorkloadConfig, index: usize) -> ClientSlot {
        ClientSlot {
            index,
            register: cfg.workload.slot_is_register(index),
            node: (index % cfg.nodes) as NodeId + 1,
            process: index as u64,
            rng: substream(cfg.seed, &format!("workload/{index}")),
            seq: 0,
            written: 0,
            seen: BTreeMap::new(),
            backoff: cfg.backoff,
            backoff_rng: substream(cfg.seed, &format!("workload/{index}/backoff")),
            unavailable_streak: 0,
        }
    }

    /// Whether the slot has invoked all the ops the plan allows it (its budget, or
    /// its script).
    pub fn exhausted(&self, cfg: &WorkloadConfig) -> bool {
        let done = u64::try_from(self.seq).unwrap_or(0);
        cfg.ops_per_client.is_some_and(|n| done >= n)
            || cfg.script.as_ref().is_some_and(|s| {
                s.get(self.index)
                    .is_none_or(|ops| done as usize >= ops.len())
            })
    }

    /// A scripted slot's next op's time (ns from the start): not before it.
    pub fn due_at(&self, cfg: &WorkloadConfig) -> Option<u64> {
        let ops = cfg.script.as_ref()?.get(self.index)?;
        ops.get(usize::try_from(self.seq).ok()?).map(|(at, _)| *at)
    }

    /// The slot's next op: its script's next, or one drawn from its stream with a
    /// value unique within the run.
    pub fn next_op(&mut self, cfg: &WorkloadConfig, shared: &Shared) -> WorkloadOp {
        if let Some(ops) = &cfg.script {
            let i = usize::try_from(self.seq).unwrap_or(usize::MAX);
            self.seq += 1;
            if let Some((_, op)) = ops.get(self.index).and_then(|ops| ops.get(i)) {
                return op.clone();
            }
        }
        self.seq += 1;
        // Slots never share a value.
        let value = (self.index as i64 + 1) * 1_000_000_000 + self.seq;
        if self.register {
            let k = shared.register_key.load(Ordering::Relaxed);
            return WorkloadOp::Propose {
                key: format!("r{k}"),
                value,
            };
        }
        if cfg.workload.is_txn() {
            return self.next_txn(cfg, shared);
        }
        let rng = &mut self.rng;
        let key = cfg.kv_keys[rng.random_range(0..cfg.kv_keys.len().max(1))].clone();
        match cfg
            .op_mix
            .choose(rng.random_range(0..cfg.op_mix.total().max(1)))
        {
            KvChoice::Read => WorkloadOp::Read { key },
            KvChoice::Write => WorkloadOp::Write { key, value },
            KvChoice::Cas => {
                let from = self.seen.get(&key).copied().unwrap_or(0);
                WorkloadOp::Cas {
                    key,
                    from,
                    to: value,
                }
            }
        }
    }

    /// A transaction drawn as the plan's shape says (docs/transactions.md): its
    /// length, then per micro-op an active key and a read or (as often) an append
    /// or write of a value unique in the run. An active key that has taken its
    /// writes is retired for a fresh one (`k0.1`, `k0.2`, ...), so reads stay short
    /// however long the run.
    fn next_txn(&mut self, cfg: &WorkloadConfig, shared: &Shared) -> WorkloadOp {
        use checker::history::TxnMop;
        let shape = cfg.txn_shape;
        let keys = cfg.kv_keys.len().max(1);
        let rng = &mut self.rng;
        let n = rng.random_range(shape.min_len..=shape.max_len.max(shape.min_len)) as usize;
        // The slots take turns: in a simulation in a fixed order, so the same plan
        // draws the same keys.
        let mut active = shared
            .txn_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if active.len() < keys {
            active.resize(keys, (0, 0));
        }
        let mut txn = Vec::with_capacity(n);
        for _ in 0..n {
            let slot = draw_key(rng, shape.key_dist, keys);
            let (generation, writes) = active[slot];
            let key = match cfg.kv_keys.get(slot) {
                Some(k) => format!("{k}.{generation}"),
                None => format!("k.{generation}"),
            };
            if rng.random_bool(0.5) {
                txn.push(TxnMop::Read {
                    key,
                    value: serde_json::Value::Null,
                });
                continue;
            }
            active[slot] = match writes + 1 >= shape.max_writes_per_key {
                true => (generation + 1, 0),
                false => (generation, writes + 1),
            };
            self.written += 1;
            let value = (self.index as i64 + 1) * 1_000_000_000 + self.written;
            txn.push(match cfg.workload {
                Workload::RwRegister => TxnMop::Write { key, value },
                _ => TxnMop::Append { key, value },
            });
        }
        WorkloadOp::Txn { txn }
    }

    /// Learns from a completed op: a decided register moves every register slot to a
    /// new key; a client that got `info` is retired for a fresh process.
    pub fn after(
        &mut self,
        op: &WorkloadOp,
        done: &Completion,
        shared: &Shared,
        recorder: &Recorder,
    ) -> After {
        if done.outcome == Outcome::Ok {
            match op {
                WorkloadOp::Propose { key, .. } => {
                    let k: u64 = key[1..].parse().unwrap_or(0);
                    shared.register_key.fetch_max(k + 1, Ordering::Relaxed);
                }
                WorkloadOp::Read { key } => {
                    if let Some(v) = done.value {
                        self.seen.insert(key.clone(), v);
                    }
                }
                WorkloadOp::Write { key, value } | WorkloadOp::Cas { key, to: value, .. } => {
                    self.seen.insert(key.clone(), *value);
                }
                WorkloadOp::Txn { .. } => {}
            }
        }
        let info = done.outcome == Outcome::Info;
        if info {
            self.process = recorder.new_process();
        }
        let backoff = if is_unavailable(done) {
            self.unavailable_streak = self.unavailable_streak.saturating_add(1);
            let ceiling = self.backoff.ceiling_ms(self.unavailable_streak);
            (ceiling > 0).then(|| {
                let us = ceiling * 1_000;
                Duration::from_micros(self.backoff_rng.random_range(us / 2..=us))
            })
        } else {
            self.unavailable_streak = 0;
            None
        };
        After {
            reconnect: info || done.reconnect,
            backoff,
        }
    }
}

async fn client_slot<S: System>(
    cfg: WorkloadConfig,
    index: usize,
    recorder: Arc<Recorder>,
    system: Arc<S>,
    shared: Arc<Shared>,
) {
    let mut slot = ClientSlot::new(&cfg, index);
    let mut client: Option<S::Client> = None;
    let interval =
        (cfg.rate > 0.0).then(|| Duration::from_secs_f64(cfg.concurrency as f64 / cfg.rate));
    let mut next_at = tokio::time::Instant::now();
    while !shared.stop.load(Ordering::Relaxed) && !slot.exhausted(&cfg) {
        if let Some(every) = interval {
            tokio::time::sleep_until(next_at).await;
            next_at += every;
        }
        if let Some(at) = slot.due_at(&cfg) {
            let due = recorder.start() + Duration::from_nanos(at);
            tokio::time::sleep_until(due.into()).await;
        }
        if client.is_none() {
            client = system.connect(slot.node).await;
            if client.is_none() {
                // The node is down: nothing was invoked, so nothing is recorded.
                tokio::time::sleep(CONNECT_RETRY).await;
                continue;
            }
        }
        let op = slot.next_op(&cfg, &shared);
        let c = client.as_mut().expect("connected above");
        let done = perform(c, &op, slot.process, slot.node, &recorder, cfg.op_timeout).await;
        let after = slot.after(&op, &done, &shared, &recorder);
        if after.reconnect {
            client = None;
        }
        if let Some(wait) = after.backoff {
            // No leader yet (an election is on): do not flood the node or the history.
            tokio::time::sleep(wait).await;
        }
        // A system that answers without ever waiting (in memory, simulated) would
        // otherwise keep this worker forever, starving the time limit itself.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use results::plan::{KeyDist, TxnShape};

    fn cfg(shape: TxnShape, keys: usize, concurrency: usize) -> WorkloadConfig {
        let plan = crate::spec::PlanSpec {
            mode: results::Mode::Sim,
            seed: Some(5),
            nodes: 3,
            workload: Some(Workload::ListAppend),
            keys,
            concurrency: Some(concurrency),
            ..crate::spec::PlanSpec::default()
        }
        .plan()
        .unwrap();
        WorkloadConfig {
            txn_shape: shape,
            ..WorkloadConfig::of(&plan)
        }
    }

    /// (key, appends) over `n` transactions drawn in turn by every slot.
    fn draw(cfg: &WorkloadConfig, n: usize) -> (Vec<usize>, BTreeMap<String, u32>) {
        let shared = Shared::new();
        let mut slots: Vec<ClientSlot> = (0..cfg.concurrency)
            .map(|i| ClientSlot::new(cfg, i))
            .collect();
        let mut lengths = Vec::new();
        let mut writes: BTreeMap<String, u32> = BTreeMap::new();
        for i in 0..n {
            let slot = i % slots.len();
            let WorkloadOp::Txn { txn } = slots[slot].next_op(cfg, &shared) else {
                panic!("a list-append slot draws transactions");
            };
            lengths.push(txn.len());
            for m in &txn {
                if let checker::history::TxnMop::Append { key, .. } = m {
                    *writes.entry(key.clone()).or_default() += 1;
                }
            }
        }
        (lengths, writes)
    }

    #[test]
    fn a_transactions_length_is_drawn_from_its_shapes_range() {
        let shape = TxnShape {
            min_len: 2,
            max_len: 6,
            ..TxnShape::default()
        };
        let (lengths, _) = draw(&cfg(shape, 5, 4), 2_000);
        assert_eq!(lengths.iter().min(), Some(&2));
        assert_eq!(lengths.iter().max(), Some(&6));
        let exact = TxnShape {
            min_len: 3,
            max_len: 3,
            ..TxnShape::default()
        };
        let (lengths, _) = draw(&cfg(exact, 5, 4), 200);
        assert!(lengths.iter().all(|n| *n == 3));
    }

    #[test]
    fn a_key_takes_at_most_its_writes_and_is_retired_for_a_fresh_one() {
        for dist in [KeyDist::Uniform, KeyDist::Exponential] {
            let shape = TxnShape {
                key_dist: dist,
                max_writes_per_key: 8,
                ..TxnShape::default()
            };
            let (_, writes) = draw(&cfg(shape, 3, 6), 3_000);
            assert!(writes.values().all(|n| *n <= 8), "{dist:?}: {writes:?}");
            // Every key but the last of each base was filled before it was retired.
            for base in ["k0", "k1", "k2"] {
                let full: Vec<u32> = writes
                    .iter()
                    .filter(|(k, _)| k.split_once('.').map(|(b, _)| b) == Some(base))
                    .map(|(_, n)| *n)
                    .collect();
                assert!(full.len() >= 2, "{dist:?}: {base} was retired: {writes:?}");
                let retired = full.iter().filter(|n| **n == 8).count();
                assert!(retired + 1 >= full.len(), "{dist:?}: {writes:?}");
            }
        }
    }

    #[test]
    fn exponential_keys_make_the_last_key_hot_and_uniform_keys_do_not() {
        let mut rng = substream(1, "test");
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[draw_key(&mut rng, KeyDist::Exponential, 6)] += 1;
        }
        // Each key twice as likely as the one before it: about 1/2, 1/4, ... of
        // the draws from the last key down.
        for i in 1..6 {
            let ratio = f64::from(counts[i]) / f64::from(counts[i - 1]);
            assert!((1.7..2.3).contains(&ratio), "{counts:?}");
        }
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[draw_key(&mut rng, KeyDist::Uniform, 6)] += 1;
        }
        assert!(
            counts.iter().all(|c| (9_000..11_000).contains(c)),
            "{counts:?}"
        );
        // However many keys: no weight of 2^i overflows.
        let k = draw_key(&mut rng, KeyDist::Exponential, 1_200);
        assert!(k < 1_200);
    }
}
