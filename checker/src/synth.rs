//! Synthetic histories for benchmarks and tests: closed-loop clients against an
//! atomic store, so every history is linearizable and has agreeing registers by
//! construction (unless a caller corrupts it on purpose).
//!
//! Each client slot runs one op at a time; an op takes effect at a random point inside
//! its interval; results are computed by applying ops in that order. A timed-out op
//! (`info`, with probability `info_prob`) takes effect or not at random and retires
//! its process, whose slot continues under a new process number. Values written are
//! unique. Deterministic per seed.

use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct SynthConfig {
    pub seed: u64,
    pub processes: usize,
    pub kv_keys: usize,
    pub register_keys: usize,
    pub ops: usize,
    /// Share of ops that are register proposals (the rest are KV ops).
    pub propose_share: f64,
    /// Probability that an op times out (info).
    pub info_prob: f64,
    /// Op latency is uniform in [50 us, max_latency_us].
    pub max_latency_us: u64,
}

impl SynthConfig {
    pub fn kv(seed: u64, processes: usize, keys: usize, ops: usize, info_prob: f64) -> Self {
        SynthConfig {
            seed,
            processes,
            kv_keys: keys,
            register_keys: 0,
            ops,
            propose_share: 0.0,
            info_prob,
            max_latency_us: 2_000,
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Read,
    Write(i64),
    Cas(i64, i64),
    Propose(i64),
}

struct Planned {
    invoke_ns: u64,
    complete_ns: u64,
    effect_ns: u64,
    process: u64,
    key: usize,
    kind: Kind,
    info: bool,
    takes_effect: bool,
    /// Filled by the replay: the result value, or failure.
    result: Value,
    failed: bool,
}

/// Writes a synthetic history as JSON lines to `out`.
pub fn write_history(cfg: &SynthConfig, out: &mut impl Write) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut plan = plan_ops(cfg, &mut rng);
    replay(&mut plan, &mut rng);
    write_events(&plan, out)
}

/// The ops, planned: who invokes what when, how long it takes and whether it is of
/// unknown outcome.
fn plan_ops(cfg: &SynthConfig, rng: &mut ChaCha8Rng) -> Vec<Planned> {
    let mut next_value: i64 = 1;
    let mut next_process = cfg.processes as u64;
    // (Reverse clock, slot) min-heap: the slot that is free earliest invokes next.
    let mut free: BinaryHeap<std::cmp::Reverse<(u64, usize)>> = (0..cfg.processes)
        .map(|s| std::cmp::Reverse((rng.random_range(0..1_000u64), s)))
        .collect();
    let mut process_of: Vec<u64> = (0..cfg.processes as u64).collect();
    let mut plan = Vec::with_capacity(cfg.ops);
    for _ in 0..cfg.ops {
        let std::cmp::Reverse((t, slot)) = free.pop().expect("at least one process");
        let latency = rng.random_range(50..=cfg.max_latency_us.max(50)) * 1_000;
        let propose = cfg.register_keys > 0 && rng.random_bool(cfg.propose_share);
        let (key, kind) = if propose {
            let v = next_value;
            next_value += 1;
            (rng.random_range(0..cfg.register_keys), Kind::Propose(v))
        } else {
            let key = rng.random_range(0..cfg.kv_keys.max(1));
            let kind = match rng.random_range(0..10) {
                0..=3 => Kind::Read,
                4..=7 => {
                    next_value += 1;
                    Kind::Write(next_value - 1)
                }
                _ => {
                    next_value += 1;
                    Kind::Cas(0, next_value - 1) // `from` is chosen at replay
                }
            };
            (key, kind)
        };
        let info = rng.random_bool(cfg.info_prob);
        plan.push(Planned {
            invoke_ns: t,
            complete_ns: t + latency,
            effect_ns: t + rng.random_range(0..latency),
            process: process_of[slot],
            key,
            kind,
            info,
            takes_effect: !info || rng.random_bool(0.5),
            result: Value::Null,
            failed: false,
        });
        if info {
            process_of[slot] = next_process;
            next_process += 1;
        }
        let think = rng.random_range(1_000..100_000u64);
        free.push(std::cmp::Reverse((t + latency + think, slot)));
    }
    plan
}

/// The planned ops replayed in effect order against an atomic store: what each read
/// and propose returns, which cas fails.
fn replay(plan: &mut [Planned], rng: &mut ChaCha8Rng) {
    let mut order: Vec<usize> = (0..plan.len()).collect();
    order.sort_by_key(|&i| plan[i].effect_ns);
    let mut kv: BTreeMap<usize, i64> = BTreeMap::new();
    let mut registers: BTreeMap<usize, i64> = BTreeMap::new();
    for i in order {
        let p = &mut plan[i];
        match p.kind {
            Kind::Read => p.result = json!(kv.get(&p.key)),
            Kind::Write(v) => {
                if p.takes_effect {
                    kv.insert(p.key, v);
                }
            }
            Kind::Cas(_, to) => {
                // Mostly the current value (succeeds), sometimes a stale one (fails).
                let current = kv.get(&p.key).copied();
                let from = match current {
                    Some(c) if rng.random_bool(0.8) => c,
                    Some(c) => c + 1_000_000_000,
                    None => -1,
                };
                p.kind = Kind::Cas(from, to);
                if current == Some(from) {
                    if p.takes_effect {
                        kv.insert(p.key, to);
                    }
                } else {
                    p.failed = true;
                }
            }
            Kind::Propose(v) => {
                if p.takes_effect || registers.contains_key(&p.key) {
                    let chosen = *registers.entry(p.key).or_insert(v);
                    p.result = json!(chosen);
                } else {
                    p.result = Value::Null;
                }
            }
        }
    }
}

/// The history's events, in time order.
fn write_events(plan: &[Planned], out: &mut impl Write) -> std::io::Result<()> {
    // Events in time order; at equal times completions come first, so a process's
    // next invoke never precedes its previous completion.
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * plan.len());
    for (i, p) in plan.iter().enumerate() {
        events.push((p.invoke_ns, 1, i));
        events.push((p.complete_ns, 0, i));
    }
    events.sort_unstable();
    for (index, (t, phase, i)) in events.into_iter().enumerate() {
        let p = &plan[i];
        let (f, key, call_value) = match p.kind {
            Kind::Read => ("read", format!("k{}", p.key), Value::Null),
            Kind::Write(v) => ("write", format!("k{}", p.key), json!(v)),
            Kind::Cas(a, b) => ("cas", format!("k{}", p.key), json!([a, b])),
            Kind::Propose(v) => ("propose", format!("r{}", p.key), json!(v)),
        };
        let (ty, value) = if phase == 1 {
            ("invoke", call_value)
        } else if p.info {
            ("info", call_value)
        } else if p.failed {
            ("fail", call_value)
        } else {
            match p.kind {
                Kind::Read | Kind::Propose(_) => ("ok", p.result.clone()),
                _ => ("ok", call_value),
            }
        };
        let mut e = json!({"index": index, "time_ns": t, "process": p.process, "type": ty,
                           "f": f, "key": key, "value": value, "node": 1 + p.process % 5});
        if ty == "fail" {
            e["error"] = json!("precondition-failed");
        }
        writeln!(out, "{e}")?;
    }
    Ok(())
}

/// The history as a string.
pub fn history_text(cfg: &SynthConfig) -> String {
    let mut out = Vec::new();
    write_history(cfg, &mut out).expect("writing to memory");
    String::from_utf8(out).expect("JSON is UTF-8")
}
