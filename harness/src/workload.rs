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
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            stop: AtomicBool::new(false),
            register_key: AtomicU64::new(0),
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
            return self.next_txn(cfg);
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

    /// A transaction of 1-4 micro-ops, each a read or (as often) an append or write
    /// of a value unique in the run, over the plan's keys of the slot's current
    /// generation. Every slot moves to fresh keys (`k0.1`, `k0.2`, ...) after a
    /// number of transactions that keeps a key's list near 32 appends, so reads
    /// stay short however long the run.
    fn next_txn(&mut self, cfg: &WorkloadConfig) -> WorkloadOp {
        use checker::history::TxnMop;
        let keys = cfg.kv_keys.len().max(1);
        let per_generation = ((26 * keys) / cfg.concurrency.max(1)).max(4) as i64;
        let generation = (self.seq - 1) / per_generation;
        let rng = &mut self.rng;
        let n = rng.random_range(1..=4);
        let mut txn = Vec::with_capacity(n);
        for _ in 0..n {
            let key = match cfg.kv_keys.get(rng.random_range(0..keys)) {
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
