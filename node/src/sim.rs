//! A deterministic in-process cluster: N cores, a seeded scheduler and a faulty
//! network, for exact replay of protocol runs from a seed.
//!
//! The scheduler owns time (virtual milliseconds) and every random choice: message
//! delay (which reorders), loss, duplication, partitions, and crashes that restart a
//! node from the records it had persisted, including crashes in the middle of a step
//! that keep only a prefix of that step's records and lose all its sends and replies
//! (the torn write of a real fsync). Clients submit proposals and KV commands at
//! random times through random nodes.
//!
//! After the fault period the network heals, every node is restarted, and the cluster
//! runs quietly so that learners catch up. Then [`SimReport::violations`] lists every
//! broken safety property: register agreement and validity, log agreement and
//! validity, no command chosen twice, and no acknowledged write lost.
//!
//! Everything iterates over ordered collections, so one seed gives one run.

use std::collections::{BTreeMap, BTreeSet};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::core::{Action, Config, Event, Node, Record, TimerId, Timing};
use crate::msg::PeerMessage;
use crate::types::{Batch, Bug, ClientOp, KvOp, NodeId, OpResult, Slot};

/// What a simulated run does.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub n: usize,
    pub seed: u64,
    pub bugs: BTreeSet<Bug>,
    /// Length of the period with faults and client operations.
    pub fault_ms: u64,
    /// Length of the quiet period after the final heal.
    pub settle_ms: u64,
    pub drop_prob: f64,
    pub dup_prob: f64,
    /// Each message takes 1..=max_delay_ms to arrive, independently: this reorders.
    pub max_delay_ms: u64,
    pub crashes: bool,
    pub partitions: bool,
    /// How many client operations are submitted during the fault period.
    pub ops: usize,
    pub register_keys: usize,
    pub kv_keys: usize,
    /// Record a line per scheduled event in [`SimReport::trace`].
    pub trace: bool,
}

impl SimConfig {
    pub fn new(n: usize, seed: u64) -> SimConfig {
        SimConfig {
            n,
            seed,
            bugs: BTreeSet::new(),
            fault_ms: 1_200,
            settle_ms: 1_200,
            drop_prob: 0.05,
            dup_prob: 0.03,
            max_delay_ms: 12,
            crashes: true,
            partitions: true,
            ops: 30,
            register_keys: 3,
            kv_keys: 2,
            trace: false,
        }
    }

    pub fn with_bug(mut self, bug: Bug) -> SimConfig {
        self.bugs.insert(bug);
        self
    }
}

/// Timing of the simulated cores: shorter than the real node's, so that a short
/// virtual run still sees several elections and rounds.
pub fn sim_timing() -> Timing {
    Timing {
        election_timeout_ms: (80, 160),
        heartbeat_ms: 20,
        phase_timeout_ms: 50,
        backoff_ms: (5, 40),
        request_timeout_ms: 800,
        max_register_rounds: 50,
        window: 4,
        max_batch: 8,
        queue_capacity: 64,
        catch_up_batch: 16,
    }
}

/// The outcome of one simulated run.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    pub seed: u64,
    pub violations: Vec<String>,
    /// Register keys some node learned as chosen.
    pub registers_decided: usize,
    /// Slots some node learned as chosen.
    pub slots_chosen: usize,
    /// Client operations answered with a success.
    pub ops_ok: usize,
    /// Client operations by outcome: `ok`, an error code, or `unanswered`.
    pub outcomes: BTreeMap<String, usize>,
    pub messages_delivered: u64,
    pub crashes: u64,
    pub trace: Vec<String>,
}

#[derive(Clone, Debug)]
enum Item {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: PeerMessage,
    },
    Timer {
        node: NodeId,
        epoch: u64,
        timer: TimerId,
        generation: u64,
    },
    Client {
        op: usize,
    },
    Crash {
        node: NodeId,
    },
    Restart {
        node: NodeId,
    },
    Partition,
    Heal,
}

struct ClientRecord {
    node: NodeId,
    op: ClientOp,
    reply: Option<OpResult>,
}

struct Sim {
    cfg: SimConfig,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Item>,
    nodes: Vec<Option<Node>>,
    durable: Vec<Vec<Record>>,
    epochs: Vec<u64>,
    timer_generation: BTreeMap<(NodeId, TimerId), u64>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    faults_on: bool,
    clients: Vec<ClientRecord>,
    report: SimReport,
}

/// Runs one simulated cluster to completion and checks it.
pub fn run(cfg: SimConfig) -> SimReport {
    let mut sim = Sim {
        rng: ChaCha8Rng::seed_from_u64(cfg.seed),
        now: 0,
        seq: 0,
        queue: BTreeMap::new(),
        nodes: (0..cfg.n).map(|_| None).collect(),
        durable: vec![Vec::new(); cfg.n],
        epochs: vec![0; cfg.n],
        timer_generation: BTreeMap::new(),
        blocked: BTreeSet::new(),
        faults_on: true,
        clients: Vec::new(),
        report: SimReport {
            seed: cfg.seed,
            ..SimReport::default()
        },
        cfg,
    };
    sim.run();
    sim.report
}

impl Sim {
    fn run(&mut self) {
        for id in 1..=self.cfg.n as NodeId {
            self.boot(id);
        }
        self.plan_clients();
        self.plan_faults();
        let end_faults = self.cfg.fault_ms;
        let end = end_faults + self.cfg.settle_ms;
        let mut healed = false;
        // Bounded: every item is processed once and items only schedule later items;
        // the step cap guards against a protocol livelock flooding the queue.
        let mut steps_left: u64 = 2_000_000;
        while let Some(((time, _), item)) = self.queue.pop_first() {
            if time > end {
                break;
            }
            steps_left -= 1;
            if steps_left == 0 {
                self.report
                    .violations
                    .push("simulation step budget exhausted".into());
                break;
            }
            if !healed && time >= end_faults {
                self.heal_all();
                healed = true;
            }
            self.now = time;
            self.handle(item);
        }
        if !healed {
            self.heal_all();
        }
        self.check();
    }

    fn schedule(&mut self, at: u64, item: Item) {
        self.seq += 1;
        self.queue.insert((at, self.seq), item);
    }

    fn config_for(&self, id: NodeId) -> Config {
        let mut c = Config::new(id, self.cfg.n, self.cfg.seed ^ 0x5EED);
        c.bugs = self.cfg.bugs.clone();
        c.timing = sim_timing();
        c
    }

    fn boot(&mut self, id: NodeId) {
        let recovered = self.durable[idx(id)].clone();
        let (node, actions) = Node::start(self.config_for(id), recovered);
        self.nodes[idx(id)] = Some(node);
        self.execute(id, actions, false);
    }

    fn crash(&mut self, id: NodeId) {
        if self.nodes[idx(id)].take().is_some() {
            self.epochs[idx(id)] += 1;
            self.report.crashes += 1;
        }
    }

    fn plan_clients(&mut self) {
        let mut written: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for i in 0..self.cfg.ops {
            let at = self.rng.random_range(0..self.cfg.fault_ms.max(1));
            let node = self.rng.random_range(1..=self.cfg.n as NodeId);
            let value = 1_000 + i as i64; // unique within the run
            let op = match self.rng.random_range(0..10) {
                0..=3 => ClientOp::Propose {
                    key: format!("r{}", self.rng.random_range(0..self.cfg.register_keys)),
                    value,
                },
                4..=6 => {
                    let key = format!("k{}", self.rng.random_range(0..self.cfg.kv_keys));
                    written.entry(key.clone()).or_default().push(value);
                    ClientOp::Kv(KvOp::Write { key, value })
                }
                7 => {
                    let key = format!("k{}", self.rng.random_range(0..self.cfg.kv_keys));
                    let from = match written.get(&key) {
                        Some(vs) if !vs.is_empty() => vs[self.rng.random_range(0..vs.len())],
                        _ => 0,
                    };
                    written.entry(key.clone()).or_default().push(value);
                    ClientOp::Kv(KvOp::Cas {
                        key,
                        from,
                        to: value,
                    })
                }
                _ => ClientOp::Kv(KvOp::Read {
                    key: format!("k{}", self.rng.random_range(0..self.cfg.kv_keys)),
                }),
            };
            self.clients.push(ClientRecord {
                node,
                op,
                reply: None,
            });
            self.schedule(at, Item::Client { op: i });
        }
    }

    fn plan_faults(&mut self) {
        let n = self.cfg.n as NodeId;
        if self.cfg.crashes {
            let mut t = self.rng.random_range(50..250);
            while t < self.cfg.fault_ms {
                let node = self.rng.random_range(1..=n);
                self.schedule(t, Item::Crash { node });
                let down = self.rng.random_range(20..300);
                self.schedule(t + down, Item::Restart { node });
                t += self.rng.random_range(80..350);
            }
        }
        if self.cfg.partitions {
            let mut t = self.rng.random_range(100..400);
            while t < self.cfg.fault_ms {
                self.schedule(t, Item::Partition);
                let len = self.rng.random_range(50..300);
                self.schedule(t + len, Item::Heal);
                t += len + self.rng.random_range(50..300);
            }
        }
    }

    /// The final heal: no more faults, every node up.
    fn heal_all(&mut self) {
        self.faults_on = false;
        self.blocked.clear();
        for id in 1..=self.cfg.n as NodeId {
            if self.nodes[idx(id)].is_none() {
                self.boot(id);
            }
        }
    }

    fn handle(&mut self, item: Item) {
        if self.cfg.trace {
            self.report
                .trace
                .push(format!("{:>6} {:?}", self.now, item));
        }
        match item {
            Item::Deliver { from, to, msg } => {
                self.report.messages_delivered += 1;
                self.step(to, Event::Peer { from, msg });
            }
            Item::Timer {
                node,
                epoch,
                timer,
                generation,
            } => {
                let current = self.timer_generation.get(&(node, timer.clone())).copied();
                if epoch == self.epochs[idx(node)] && current == Some(generation) {
                    self.step(node, Event::Timer(timer));
                }
            }
            Item::Client { op } => {
                let c = &self.clients[op];
                let (node, op_value) = (c.node, c.op.clone());
                self.step(
                    node,
                    Event::Client {
                        token: op as u64,
                        op: op_value,
                    },
                );
            }
            Item::Crash { node } => {
                if self.faults_on {
                    self.crash(node);
                }
            }
            Item::Restart { node } => {
                if self.nodes[idx(node)].is_none() {
                    self.boot(node);
                }
            }
            Item::Partition => {
                if self.faults_on {
                    self.partition();
                }
            }
            Item::Heal => self.blocked.clear(),
        }
    }

    /// Cuts the cluster in two random groups (either may be the majority).
    fn partition(&mut self) {
        self.blocked.clear();
        let n = self.cfg.n as NodeId;
        let side: Vec<bool> = (1..=n).map(|_| self.rng.random_bool(0.5)).collect();
        for a in 1..=n {
            for b in 1..=n {
                if side[idx(a)] != side[idx(b)] {
                    self.blocked.insert((a, b));
                }
            }
        }
    }

    fn step(&mut self, id: NodeId, event: Event) {
        let Some(node) = self.nodes[idx(id)].as_mut() else {
            return; // a down node receives nothing
        };
        let actions = node.step(event);
        let crash_mid = self.cfg.crashes
            && self.faults_on
            && !actions.is_empty()
            && self.rng.random_bool(0.002);
        self.execute(id, actions, crash_mid);
        if crash_mid {
            self.crash(id);
        }
    }

    fn execute(&mut self, id: NodeId, actions: Vec<Action>, crash_mid: bool) {
        let persists = actions
            .iter()
            .filter(|a| matches!(a, Action::Persist(_)))
            .count();
        // A crash during the step keeps a prefix of its records and nothing else.
        let mut keep = if crash_mid {
            self.rng.random_range(0..=persists)
        } else {
            persists
        };
        for action in actions {
            match action {
                Action::Persist(record) => {
                    if keep > 0 {
                        keep -= 1;
                        self.durable[idx(id)].push(record);
                    }
                }
                _ if crash_mid => {}
                Action::Send { to, msg } => self.transmit(id, to, msg),
                Action::Reply { token, result } => {
                    if self.cfg.trace {
                        let line = format!(
                            "{:>6} reply to op {token} at node {id}: {result:?}",
                            self.now
                        );
                        self.report.trace.push(line);
                    }
                    let client = &mut self.clients[token as usize];
                    assert!(
                        client.reply.is_none(),
                        "seed {}: client op {token} answered twice",
                        self.cfg.seed
                    );
                    assert_eq!(client.node, id, "reply from a node the op was not sent to");
                    client.reply = Some(result);
                }
                Action::SetTimer { timer, after_ms } => {
                    let generation = self
                        .timer_generation
                        .entry((id, timer.clone()))
                        .or_insert(0);
                    *generation += 1;
                    let generation = *generation;
                    let epoch = self.epochs[idx(id)];
                    self.schedule(
                        self.now + after_ms,
                        Item::Timer {
                            node: id,
                            epoch,
                            timer,
                            generation,
                        },
                    );
                }
            }
        }
    }

    fn transmit(&mut self, from: NodeId, to: NodeId, msg: PeerMessage) {
        if self.blocked.contains(&(from, to)) {
            return;
        }
        if self.faults_on && self.rng.random_bool(self.cfg.drop_prob) {
            return;
        }
        let copies = if self.faults_on && self.rng.random_bool(self.cfg.dup_prob) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.random_range(1..=self.cfg.max_delay_ms.max(1));
            self.schedule(
                self.now + delay,
                Item::Deliver {
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
    }

    fn check(&mut self) {
        let seed = self.cfg.seed;
        let nodes: Vec<&Node> = self.nodes.iter().flatten().collect();
        let mut violations = Vec::new();

        // Registers: agreement among learners and with every propose reply; validity.
        let mut proposed: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
        let mut replied: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
        for c in &self.clients {
            if let ClientOp::Propose { key, value } = &c.op {
                proposed.entry(key).or_default().insert(*value);
                if let Some(OpResult::Value(Some(v))) = c.reply {
                    replied.entry(key).or_default().insert(v);
                }
            }
        }
        let mut learned: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
        for node in &nodes {
            for (key, value) in node.registers() {
                learned.entry(key).or_default().insert(*value);
            }
        }
        for (key, values) in &replied {
            learned.entry(key).or_default().extend(values);
        }
        for (key, values) in &learned {
            if values.len() > 1 {
                violations.push(format!(
                    "seed {seed}: register {key}: agreement broken, values {values:?} chosen"
                ));
            }
            for v in values {
                if !proposed.get(key).is_some_and(|p| p.contains(v)) {
                    violations.push(format!(
                        "seed {seed}: register {key}: validity broken, {v} was never proposed"
                    ));
                }
            }
        }

        // Log: agreement per slot, validity of commands, no command chosen twice.
        let mut log: BTreeMap<Slot, &Batch> = BTreeMap::new();
        for node in &nodes {
            for (slot, batch) in node.chosen_log() {
                match log.get(slot) {
                    Some(other) if *other != batch => violations.push(format!(
                        "seed {seed}: slot {slot}: log agreement broken, node {} chose {batch:?}, another node {other:?}",
                        node.id()
                    )),
                    _ => {
                        log.insert(*slot, batch);
                    }
                }
            }
        }
        let submitted: Vec<&KvOp> = self
            .clients
            .iter()
            .filter_map(|c| match &c.op {
                ClientOp::Kv(op) => Some(op),
                ClientOp::Propose { .. } => None,
            })
            .collect();
        let mut seen_ids = BTreeSet::new();
        let mut written = BTreeSet::new();
        for (slot, batch) in &log {
            for command in batch.iter() {
                if !seen_ids.insert(command.id) {
                    violations.push(format!(
                        "seed {seed}: slot {slot}: command {:?} chosen twice",
                        command.id
                    ));
                }
                if !submitted.contains(&&command.op) {
                    violations.push(format!(
                        "seed {seed}: slot {slot}: command {:?} was never submitted",
                        command.op
                    ));
                }
                match &command.op {
                    KvOp::Write { value, .. } => {
                        written.insert(*value);
                    }
                    KvOp::Cas { to, .. } => {
                        written.insert(*to);
                    }
                    KvOp::Read { .. } => {}
                }
            }
        }
        // An acknowledged write or cas must be in the chosen log.
        for c in &self.clients {
            if let (
                ClientOp::Kv(KvOp::Write { value, .. } | KvOp::Cas { to: value, .. }),
                Some(OpResult::Done),
            ) = (&c.op, &c.reply)
            {
                if !written.contains(value) {
                    violations.push(format!(
                        "seed {seed}: acknowledged write of {value} is not in the chosen log"
                    ));
                }
            }
        }

        self.report.registers_decided = learned.len();
        self.report.slots_chosen = log.len();
        self.report.ops_ok = self
            .clients
            .iter()
            .filter(|c| matches!(c.reply, Some(OpResult::Value(_) | OpResult::Done)))
            .count();
        for c in &self.clients {
            let outcome = match &c.reply {
                None => "unanswered",
                Some(OpResult::Value(_) | OpResult::Done) => "ok",
                Some(OpResult::Error(code)) => code.as_str(),
            };
            *self.report.outcomes.entry(outcome.to_string()).or_default() += 1;
        }
        self.report.violations.extend(violations);
    }
}

fn idx(id: NodeId) -> usize {
    id as usize - 1
}
