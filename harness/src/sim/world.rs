//! The simulated world: every node's real core, its simulated disk and clock, the
//! network between the nodes, and the clients, on one virtual clock.
//!
//! A discrete-event loop: a heap of items ordered by (virtual time, sequence number)
//! is popped one at a time, and every random choice comes from a named stream of the
//! plan's seed, so one plan gives one run. Hand-written rather than an async runtime
//! under a paused clock: no runtime promises the order in which ready tasks run, and
//! that order is the whole of determinism.
//!
//! What each node does is what the real shell does with the same inputs: it steps its
//! core ([`Node::step`]) for each event, and carries out the actions in the order
//! [`paxos_node::commit::order`] gives (records into the page cache, one fsync that
//! takes virtual time, then sends, replies and timers). Events that arrive while a
//! sync is in flight or while the node is paused wait in its inbox, as on a socket,
//! and are stepped as one burst afterwards (group commit).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use nemesis::{LinkFaults, NemesisOutcome, ScheduledFault, substream};
use paxos_node::commit::{self, Durable, Effect};
use paxos_node::seam::{Actions, Event, EventOf, Wire};
use paxos_node::types::{self as node_types, OpResult};
use paxos_node::wal::{self, Wal};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use results::Plan;
use results::schema::SimCounts;

use super::core::{Learned, Rules, SimCore};
use super::disk::{self, CrashFate, SimFs};
use super::queue::Queue;
use crate::recorder::Recorder;
use crate::system::node::{completion_of, request_of};
use crate::system::{CLIENT_TIMEOUT, CONNECTION_BROKEN, Completion, NodeId, WorkloadOp};
use crate::workload::{CONNECT_RETRY, ClientSlot, Shared, WorkloadConfig};

const MS: u64 = 1_000_000;
/// One way on a peer link (loopback plus a proxy hop), in ns.
const PEER_DELAY: (u64, u64) = (150_000, 900_000);
/// One way between a client and a node, in ns.
const CLIENT_DELAY: (u64, u64) = (50_000, 300_000);
/// One fsync of the WAL, in ns.
const FSYNC: (u64, u64) = (300_000, 2_500_000);
/// Events a paused or syncing node holds before it drops more (a full socket).
const INBOX_CAPACITY: usize = 65_536;

#[derive(Clone, Debug)]
enum Item<C: SimCore> {
    Peer {
        from: NodeId,
        to: NodeId,
        msg: C::Msg,
    },
    Request {
        client: usize,
        seq: u64,
        node: NodeId,
        epoch: u64,
        op: node_types::ClientOp,
    },
    Reply {
        client: usize,
        seq: u64,
        result: OpResult,
    },
    /// Carries a timer of the node's life `epoch` ([`Armed`]).
    Timer {
        node: NodeId,
        epoch: u64,
        timer: C::Timer,
    },
    SyncDone {
        node: NodeId,
        epoch: u64,
    },
    Wake {
        client: usize,
    },
    /// Carries the client's op timeout ([`SimClient::timeout`]).
    Timeout {
        client: usize,
    },
    Fault(usize),
}

/// A node's clock: local = base_local + (global - base_global) * rate.
#[derive(Clone, Copy, Debug)]
struct Clock {
    rate: f64,
    base_global: u64,
    base_local: u64,
}

impl Clock {
    fn local(&self, global: u64) -> u64 {
        self.base_local + (global.saturating_sub(self.base_global) as f64 * self.rate) as u64
    }

    /// The global time at which local time reaches `deadline` (never before `now`).
    fn global_at(&self, deadline: u64, now: u64) -> u64 {
        if deadline <= self.local(now) {
            return now;
        }
        let t = self.base_global + ((deadline - self.base_local) as f64 / self.rate).ceil() as u64;
        t.max(now)
    }
}

/// A timer armed, or a client's op timeout set: due at `due` (time, sequence
/// number), and carried by the queued item at `carrier`.
///
/// Most timers are set again before they fire (an election timer on every
/// heartbeat, an op timeout on every op), and an item queued for each setting was
/// up to a sixth of all the items a run handled, each doing nothing when it came
/// up. Now one item waits per timer: a setting due no earlier than the item waiting
/// only moves `due`, and the item, when it comes up early, is queued again at
/// `due` under the sequence number `due` took when it was set. Items are handled in
/// (time, sequence number) order, so every timer fires exactly where it did with an
/// item per setting. A setting due earlier than the item waiting queues its own,
/// and the older item finds itself no carrier when it comes up.
#[derive(Clone, Copy, Debug)]
struct Armed {
    due: (u64, u64),
    carrier: (u64, u64),
}

/// What the item that came up at a key does for its timer.
enum CameUp {
    /// The timer is due now.
    Due,
    /// The timer is due later: queue the item again at this key.
    Carry((u64, u64)),
    /// A later setting queued its own item: this one is void.
    Void,
}

impl Armed {
    /// Set for the first time, or after its item came up: its own item is queued.
    fn new(due: (u64, u64)) -> Armed {
        Armed { due, carrier: due }
    }

    /// Set again, due at `due`. `true`: the item waiting comes up later than that,
    /// so `due` needs an item of its own (now the carrier).
    fn set(&mut self, due: (u64, u64)) -> bool {
        self.due = due;
        if self.carrier <= due {
            return false;
        }
        self.carrier = due;
        true
    }

    /// An item of this timer came up at `here`.
    fn came_up(&mut self, here: (u64, u64)) -> CameUp {
        if self.carrier != here {
            CameUp::Void
        } else if self.due == here {
            CameUp::Due
        } else {
            self.carrier = self.due;
            CameUp::Carry(self.due)
        }
    }
}

struct SimNode<C: SimCore> {
    core: Option<C>,
    /// The node's data directory (`n<id>`) on its own simulated file system, and
    /// its log there while the node runs: the node's own WAL code.
    dir: PathBuf,
    fs: SimFs,
    wal: Option<Wal<SimFs>>,
    /// This node's own stream (`sim/disk/n<id>`): its fsync times and what a crash
    /// does to its unsynced bytes. A fault elsewhere moves none of its draws.
    rng: ChaCha8Rng,
    /// Bumped on every crash: timers and syncs of an earlier life are void.
    epoch: u64,
    paused: bool,
    syncing: bool,
    /// Effects waiting for the sync in flight.
    after_sync: Vec<Effect<C::Msg, C::Timer>>,
    inbox: VecDeque<EventOf<C>>,
    /// Timer -> its local deadline and when it is due.
    timers: BTreeMap<C::Timer, (u64, Armed)>,
    clock: Clock,
    /// Why the node refused to start (its WAL or snapshot is corrupt): it stays down.
    refused: Option<String>,
    /// A corruption fault has flipped a bit on this node's disk.
    corrupted: bool,
    /// Core token -> (client, op sequence number).
    pending: BTreeMap<u64, (usize, u64)>,
    /// Slots the node wrote down as chosen since its last sync (a crash loses them).
    unsynced_chosen: Vec<(node_types::Slot, node_types::Batch)>,
    /// Every slot the node wrote down as chosen and synced, over all its lives: the
    /// log as it learned it, including what its snapshots compacted away since.
    learned: Learned,
}

struct InFlight {
    op: WorkloadOp,
    process: u64,
    node: NodeId,
}

struct SimClient {
    /// This client's own stream (`sim/clients/c<i>`): its requests' and replies'
    /// travel times.
    rng: ChaCha8Rng,
    /// The node this client holds a connection to.
    conn: Option<NodeId>,
    /// Sequence number of the client's current (or last) op.
    seq: u64,
    in_flight: Option<InFlight>,
    /// A completion the final phase waits for.
    done: Option<Completion>,
    /// The timeout of the op in flight (or of the last one), and the op's sequence
    /// number.
    timeout: Option<(Armed, u64)>,
    /// A workload slot; `None` for the final phase's clients.
    slot: Option<ClientSlot>,
    next_at: u64,
}

pub struct World<'r, C: SimCore> {
    plan: &'r Plan,
    recorder: &'r Recorder,
    base: C::Config,
    /// The core's test-only mistakes of order ([`paxos_node::seam::Core`]).
    effects_first: bool,
    unsynced_snapshot: bool,
    workload: WorkloadConfig,
    shared: Shared,
    pub now: u64,
    seq: u64,
    /// The (time, sequence number) of the item handled last: items are handled in
    /// strictly increasing order of it.
    last_handled: (u64, u64),
    /// Items by (time, sequence number), each by its slot in `items`.
    queue: Queue,
    /// The queued items, by slot; freed slots are reused.
    items: Vec<Option<Item<C>>>,
    free: Vec<u32>,
    nodes: Vec<SimNode<C>>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    degraded: BTreeMap<(NodeId, NodeId), LinkFaults>,
    /// One stream per directed link (`sim/net/<from>-<to>`), indexed as
    /// [`LinkCounts`] is: a link's losses, copies and delays move with its own
    /// traffic only, so removing a fault or an op perturbs what it touches.
    nets: Vec<ChaCha8Rng>,
    clients: Vec<SimClient>,
    next_token: u64,
    stopping: bool,
    pub counts: SimCounts,
    /// Messages per directed link and type, as a real run's proxies count them.
    pub links: LinkCounts,
    /// Every (node, ballot) that campaigned, for `counts.elections`.
    campaigns: BTreeSet<(NodeId, u64)>,
    /// The protocol's rules, checked on every step.
    pub rules: C::Rules,
    /// The messages the report draws, with their fates, as a real run's
    /// messages.jsonl has them (kept in a second, identical pass of a failed run).
    pub trace: Option<results::data::TraceSelector>,
    /// Every workload op as it is invoked, as a script (`chaos shrink`).
    pub capture: Option<Vec<results::plan::ScriptedOp>>,
    /// Faults aimed by role, resolved as they start.
    resolver: nemesis::Resolver,
    /// What the world itself found wrong with a node (when, node, what, why): a core
    /// that stopped on its own assertion, a recovery that returned other records
    /// than the disk held.
    pub findings: Vec<(u64, NodeId, checker::AnomalyKind, String)>,
    /// Each fault kind as it met the cluster: whom it hit and in what state the
    /// cluster was ([`World::fault_moment`]), for `chaos explore`'s coverage.
    pub moments: BTreeSet<String>,
}

impl<'r, C: SimCore> World<'r, C> {
    /// A world for `plan`; `base` carries the nodes' settings (from the plan's node
    /// or core arguments).
    pub fn new(plan: &'r Plan, recorder: &'r Recorder, base: C::Config) -> World<'r, C> {
        let nodes = (0..plan.nodes)
            .map(|i| SimNode {
                core: None,
                dir: PathBuf::from(format!("n{}", i + 1)),
                fs: SimFs::default(),
                wal: None,
                rng: substream(plan.seed, &format!("sim/disk/n{}", i + 1)),
                epoch: 0,
                paused: false,
                syncing: false,
                after_sync: Vec::new(),
                inbox: VecDeque::new(),
                timers: BTreeMap::new(),
                clock: Clock {
                    rate: 1.0,
                    base_global: 0,
                    base_local: 0,
                },
                refused: None,
                corrupted: false,
                pending: BTreeMap::new(),
                unsynced_chosen: Vec::new(),
                learned: BTreeMap::new(),
            })
            .collect();
        World {
            plan,
            recorder,
            effects_first: C::effects_before_sync(&base),
            unsynced_snapshot: C::unsynced_snapshot(&base),
            base,
            workload: WorkloadConfig::of(plan),
            shared: Shared::new(),
            now: 0,
            seq: 0,
            last_handled: (0, 0),
            queue: Queue::default(),
            items: Vec::new(),
            free: Vec::new(),
            nodes,
            blocked: BTreeSet::new(),
            degraded: BTreeMap::new(),
            nets: (0..plan.nodes * plan.nodes)
                .map(|i| {
                    let (from, to) = (i / plan.nodes + 1, i % plan.nodes + 1);
                    substream(plan.seed, &format!("sim/net/{from}-{to}"))
                })
                .collect(),
            clients: Vec::new(),
            next_token: 0,
            stopping: false,
            counts: SimCounts::default(),
            links: LinkCounts::new(plan.nodes),
            campaigns: BTreeSet::new(),
            rules: C::Rules::new(plan.nodes),
            trace: None,
            capture: None,
            resolver: nemesis::Resolver::default(),
            findings: Vec::new(),
            moments: BTreeSet::new(),
        }
    }

    fn node(&mut self, id: NodeId) -> &mut SimNode<C> {
        &mut self.nodes[id as usize - 1]
    }

    fn schedule(&mut self, at: u64, item: Item<C>) {
        let seq = self.next_seq();
        self.push(at, seq, item);
    }

    /// The next sequence number: items due at the same time are handled in the
    /// order they took these.
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Queues `item` at (`at`, `seq`).
    fn push(&mut self, at: u64, seq: u64, item: Item<C>) {
        // Nothing is scheduled in the past: what is due now runs after what is
        // already due now, by its sequence number.
        assert!(
            at >= self.now,
            "an item scheduled at {at} ns at {} ns",
            self.now
        );
        let slot = match self.free.pop() {
            Some(slot) => {
                self.items[slot as usize] = Some(item);
                slot
            }
            None => {
                self.items.push(Some(item));
                u32::try_from(self.items.len() - 1).expect("under 4 G queued items")
            }
        };
        self.queue.push(at, seq, slot);
    }

    /// Boots every node from its (empty) disk.
    pub fn boot_all(&mut self) {
        for id in 1..=self.plan.nodes as NodeId {
            let _ = self.boot(id);
        }
    }

    /// Starts the workload's slots and schedules the plan's faults.
    pub fn start_workload(&mut self) {
        for i in 0..self.plan.concurrency {
            self.clients.push(SimClient {
                rng: substream(self.plan.seed, &format!("sim/clients/c{i}")),
                conn: None,
                seq: 0,
                in_flight: None,
                timeout: None,
                done: None,
                slot: Some(ClientSlot::new(&self.workload, i)),
                next_at: 0,
            });
            self.schedule(0, Item::Wake { client: i });
        }
        for (i, f) in self.plan.schedule.iter().enumerate() {
            self.schedule(f.at_ms * MS, Item::Fault(i));
        }
    }

    /// Processes items up to virtual time `until` or until `done` holds.
    pub fn run_until(&mut self, until: u64, done: impl Fn(&World<C>) -> bool) {
        while let Some((next, _, _)) = self.queue.peek() {
            if next > until || done(self) {
                return;
            }
            let (at, seq, slot) = self.queue.pop().expect("looked at it");
            let item = self.items[slot as usize]
                .take()
                .expect("a queued slot holds its item");
            self.free.push(slot);
            // Virtual time never runs backwards, and two items are never handled in
            // an order their sequence numbers do not give.
            assert!(
                at >= self.now && (at, seq) > self.last_handled,
                "item {seq} due at {at} ns handled at {} ns after item {:?}",
                self.now,
                self.last_handled
            );
            self.last_handled = (at, seq);
            self.now = at;
            self.recorder.set_virtual_ns(at);
            self.counts.events += 1;
            self.handle(item);
        }
    }

    /// Advances the clock to `until`, processing everything due meanwhile.
    pub fn sleep_until(&mut self, until: u64) {
        self.run_until(until, |_| false);
        self.now = self.now.max(until);
        self.recorder.set_virtual_ns(self.now);
    }

    /// Stops the workload: no slot starts another op.
    pub fn stop_workload(&mut self) {
        self.stopping = true;
    }

    /// Whether a workload op is still waiting for its completion.
    pub fn workload_in_flight(&self) -> bool {
        self.clients
            .iter()
            .any(|c| c.slot.is_some() && c.in_flight.is_some())
    }

    fn handle(&mut self, item: Item<C>) {
        match item {
            Item::Peer { from, to, msg } => {
                if self.nodes[to as usize - 1].core.is_some() {
                    self.links.of(from, to, msg.kind()).delivered += 1;
                    self.deliver(to, Event::Peer { from, msg });
                }
            }
            Item::Request {
                client,
                seq,
                node,
                epoch,
                op,
            } => {
                let n = self.node(node);
                // A request to a process that died on its way is lost with it.
                if n.core.is_some() && n.epoch == epoch {
                    let token = self.next_token;
                    self.next_token += 1;
                    self.node(node).pending.insert(token, (client, seq));
                    self.deliver(node, Event::Client { token, op });
                }
            }
            Item::Reply {
                client,
                seq,
                result,
            } => {
                let c = &self.clients[client];
                if c.seq == seq {
                    if let Some(f) = &c.in_flight {
                        let done = completion_of(&f.op, &result);
                        self.complete(client, done);
                    }
                }
            }
            Item::Timer { node, epoch, timer } => {
                let here = self.last_handled;
                let n = self.node(node);
                // An item carries the epoch it was made in: never a later one than
                // the node's own.
                assert!(
                    epoch <= n.epoch,
                    "node {node}: a timer of epoch {epoch}, the node at {}",
                    n.epoch
                );
                if n.epoch != epoch {
                    return;
                }
                let came = match n.timers.get_mut(&timer) {
                    Some((_, armed)) => armed.came_up(here),
                    None => CameUp::Void,
                };
                match came {
                    CameUp::Due => {
                        n.timers.remove(&timer);
                        self.deliver(node, Event::Timer(timer));
                    }
                    CameUp::Carry((at, seq)) => {
                        self.push(at, seq, Item::Timer { node, epoch, timer });
                    }
                    CameUp::Void => {}
                }
            }
            Item::SyncDone { node, epoch } => {
                if self.node(node).epoch == epoch {
                    self.sync_done(node);
                }
            }
            Item::Wake { client } => self.wake(client),
            Item::Timeout { client } => {
                let here = self.last_handled;
                let c = &mut self.clients[client];
                let Some((armed, op)) = c.timeout.as_mut() else {
                    return;
                };
                let live = c.seq == *op && c.in_flight.is_some();
                match armed.came_up(here) {
                    CameUp::Void => {}
                    // Its op is done: nothing is left to time out.
                    _ if !live => c.timeout = None,
                    CameUp::Carry((at, seq)) => self.push(at, seq, Item::Timeout { client }),
                    CameUp::Due => {
                        c.timeout = None;
                        if let Some(f) = &c.in_flight {
                            let done = Completion::unknown(&f.op, CLIENT_TIMEOUT, true);
                            self.complete(client, done);
                        }
                    }
                }
            }
            Item::Fault(i) => {
                let planned = self.plan.schedule[i].clone();
                let mut resolver = std::mem::take(&mut self.resolver);
                let (fault, resolution) =
                    resolver.resolve(&planned, self.plan.nodes, || self.leader_view());
                self.resolver = resolver;
                if fault.fault.starts_fault() {
                    let moment = self.fault_moment(&fault);
                    self.moments.insert(moment);
                }
                let outcome = self.apply(&fault);
                self.recorder.fault(&fault, &outcome, resolution.as_ref());
            }
        }
    }

    /// Who leads, by the running nodes' own account (what a real node's `status`
    /// says), for faults aimed by role.
    fn leader_view(&self) -> nemesis::LeaderView {
        leader_of(&self.views())
    }

    /// Each running node's own view (a paused one does not answer).
    fn views(&self) -> Vec<(NodeId, paxos_node::seam::View)> {
        (1..=self.plan.nodes as NodeId)
            .filter(|id| !self.is_paused(*id))
            .filter_map(|id| Some((id, self.nodes[id as usize - 1].core.as_ref()?.view())))
            .collect()
    }

    /// A fault as it starts, in words: its kind, whom it hits (the leader, followers
    /// only, the leader and followers, or every node) and the cluster's state by the
    /// running nodes' own account (no leader known, two leaders named, a follower
    /// behind the leader's commit index, or all caught up).
    fn fault_moment(&self, fault: &ScheduledFault) -> String {
        let views = self.views();
        let leaders: BTreeSet<NodeId> = views.iter().filter_map(|(_, v)| v.leader).collect();
        let leader = leader_of(&views).leader;
        // A partition's targets are the nodes its shape names (one side of it).
        let hit = |id: &NodeId| fault.targets.contains(id);
        let whom = match leader {
            _ if (1..=self.plan.nodes as NodeId).all(|id| hit(&id)) => "all",
            Some(l) if hit(&l) && fault.targets.len() <= 1 => "leader",
            Some(l) if hit(&l) => "leader+followers",
            Some(_) => "followers",
            None => "leaderless",
        };
        let state = match leader {
            None => "no-leader",
            Some(_) if leaders.len() > 1 => "leaders-disputed",
            Some(l) => {
                let at = views
                    .iter()
                    .find(|(id, _)| *id == l)
                    .map_or(0, |(_, v)| v.commit_index);
                if views.iter().any(|(_, v)| v.commit_index < at) {
                    "follower-behind"
                } else {
                    "caught-up"
                }
            }
        };
        format!("{}@{whom}/{state}", fault.fault.name())
    }

    /// Executes a scheduled fault through the same dispatch as real runs.
    fn apply(&mut self, fault: &ScheduledFault) -> NemesisOutcome {
        let cell = std::cell::RefCell::new(self);
        let faults = super::faults::Faults(&cell);
        nemesis::apply(&faults, &faults, fault)
    }

    // ---- nodes ----------------------------------------------------------------------

    fn config_for(&self, id: NodeId) -> C::Config {
        // As the real cluster seeds each node's process.
        C::configure(
            &self.base,
            id,
            self.plan.nodes,
            self.plan.seed ^ u64::from(id),
        )
    }

    /// Starts node `id` from its durable records. `Ok(false)`: already up. The one
    /// way a boot fails is the node's own recovery refusing its WAL or snapshot.
    pub fn boot(&mut self, id: NodeId) -> Result<bool, Refused> {
        let cfg = self.config_for(id);
        let n = self.node(id);
        if n.core.is_some() {
            return Ok(false);
        }
        if let Some(why) = &n.refused {
            return Err(Refused(why.clone()));
        }
        // The disk's own account of what recovery must return, taken before the
        // node's recovery cuts torn tails off.
        let frames = n.fs.whole_frames(&n.dir);
        let opened = wal::read_snapshot_in(&n.fs, &n.dir).and_then(|snapshot| {
            Wal::open_in(n.fs.clone(), &n.dir, true).map(|(wal, r)| (snapshot, wal, r))
        });
        let (snapshot, log, recovery) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                let why = format!("refused to start: {e}");
                n.refused = Some(why.clone());
                let corrupted = n.corrupted;
                self.counts.refused_starts += 1;
                if !corrupted {
                    // Crashes alone never damage what a correct node synced.
                    self.findings.push((
                        self.now,
                        id,
                        checker::AnomalyKind::RecoveryMismatch,
                        format!("{why}, though no fault damaged its disk"),
                    ));
                }
                return Err(Refused(why));
            }
        };
        n.wal = Some(log);
        if let Err(lost) = disk::check_recovered(&frames, recovery.records.len()) {
            let words = match &lost.first_missing {
                Some(frame) => format!(
                    "the first one it left out is at byte offset {} of {}: {}",
                    frame.offset,
                    frame.file.display(),
                    n.fs.record_at::<C::Record>(frame)
                        .map_or_else(|| "undecodable".to_string(), |r| format!("{r:?}"))
                ),
                None => "it returned records the disk does not hold".to_string(),
            };
            let dir = n.dir.display().to_string();
            self.findings.push((
                self.now,
                id,
                checker::AnomalyKind::RecoveryMismatch,
                format!(
                    "recovered {} records from {dir} where the disk holds {} whole; {words}",
                    lost.recovered, lost.on_disk,
                ),
            ));
        }
        let started = in_core(|| C::start(cfg, snapshot, recovery.records));
        let (core, actions) = match started {
            Ok(started) => started,
            Err(text) => {
                let why = format!("stopped on its own assertion at start: {text}");
                let kind = checker::AnomalyKind::CoreAssertion;
                self.findings.push((self.now, id, kind, why.clone()));
                let n = self.node(id);
                n.refused = Some(why.clone());
                self.counts.refused_starts += 1;
                return Err(Refused(why));
            }
        };
        let n = self.node(id);
        n.paused = false;
        if n.epoch > 0 {
            self.rules.restarted(self.now, id);
        }
        self.rules.stepped(self.now, id, &actions, &core);
        self.node(id).core = Some(core);
        self.commit(id, actions);
        Ok(true)
    }

    /// Node `id`'s core stopped on its own assertion (`why`): the process is gone, as
    /// after a kill, and stays down (what the core found is the run's finding, kept
    /// in [`World::findings`]).
    fn panicked(&mut self, id: NodeId, why: String) {
        let why = format!("stopped on its own assertion: {why}");
        let kind = checker::AnomalyKind::CoreAssertion;
        self.findings.push((self.now, id, kind, why.clone()));
        self.kill(id);
        self.node(id).refused = Some(why);
    }

    /// Kills node `id`: its page cache meets its fate, its connections break.
    pub fn kill(&mut self, id: NodeId) -> bool {
        let fate = {
            let n = &mut self.nodes[id as usize - 1];
            if n.core.is_none() {
                return false;
            }
            n.core = None;
            n.epoch += 1;
            n.paused = false;
            n.syncing = false;
            n.after_sync.clear();
            n.unsynced_chosen.clear();
            n.inbox.clear();
            n.timers.clear();
            n.pending.clear();
            // The process and its background work are gone; then the disk decides.
            n.wal = None;
            n.fs.crash(&mut n.rng)
        };
        self.counts.crashes += 1;
        match fate {
            CrashFate::Clean => {}
            CrashFate::Lost { .. } => self.counts.unsynced_lost += 1,
            CrashFate::Torn { .. } => self.counts.unsynced_torn += 1,
            CrashFate::Kept { .. } => self.counts.unsynced_kept += 1,
        }
        for client in 0..self.clients.len() {
            if self.clients[client].conn == Some(id) {
                self.clients[client].conn = None;
                if let Some(f) = &self.clients[client].in_flight {
                    let done = Completion::unknown(&f.op, CONNECTION_BROKEN, true);
                    self.complete(client, done);
                }
            }
        }
        true
    }

    pub fn pause(&mut self, id: NodeId) -> bool {
        let n = self.node(id);
        if n.core.is_none() || n.paused {
            return false;
        }
        n.paused = true;
        true
    }

    pub fn resume(&mut self, id: NodeId) -> bool {
        let n = self.node(id);
        if n.core.is_none() || !n.paused {
            return false;
        }
        n.paused = false;
        if !n.syncing {
            self.after_sync_and_drain(id);
        }
        true
    }

    pub fn is_running(&self, id: NodeId) -> bool {
        self.nodes[id as usize - 1].core.is_some()
    }

    pub fn is_paused(&self, id: NodeId) -> bool {
        self.nodes[id as usize - 1].paused
    }

    /// Every slot node `id` wrote down as chosen and synced, over all its lives.
    pub fn learned(&self, id: NodeId) -> &Learned {
        &self.nodes[id as usize - 1].learned
    }

    /// Every node's learned log, taken out of the world.
    pub fn take_learned(&mut self) -> Vec<Learned> {
        self.nodes
            .iter_mut()
            .map(|n| std::mem::take(&mut n.learned))
            .collect()
    }

    pub fn core(&self, id: NodeId) -> Option<&C> {
        self.nodes[id as usize - 1].core.as_ref()
    }

    /// Runs node `id`'s clock at `rate` after jumping it `jump_ms` forward; its
    /// pending timers move with it.
    pub fn set_clock(&mut self, id: NodeId, rate: f64, jump_ms: u64) {
        assert!(rate > 0.0 && rate.is_finite(), "clock rate {rate}");
        let now = self.now;
        let n = self.node(id);
        let local = n.clock.local(now) + jump_ms * MS;
        n.clock = Clock {
            rate,
            base_global: now,
            base_local: local,
        };
        let timers: Vec<(C::Timer, u64)> =
            n.timers.iter().map(|(t, (d, _))| (t.clone(), *d)).collect();
        for (timer, deadline) in timers {
            self.arm(id, timer, deadline);
        }
    }

    pub fn corrupt(&mut self, id: NodeId, position: u64) -> bool {
        let n = self.node(id);
        let hit = n.fs.corrupt(&n.dir, position).is_some();
        n.corrupted |= hit;
        if hit {
            self.counts.corruptions += 1;
        }
        hit
    }

    /// Heals the network: every cut and degraded link is restored.
    pub fn heal_links(&mut self) {
        self.blocked.clear();
        self.degraded.clear();
    }

    pub fn cut(&mut self, links: &[(NodeId, NodeId)]) {
        self.blocked.extend(links.iter().copied());
    }

    pub fn heal_partitions(&mut self) {
        self.blocked.clear();
    }

    pub fn degrade(&mut self, targets: &[NodeId], faults: &LinkFaults) {
        let n = self.plan.nodes as NodeId;
        for from in 1..=n {
            for to in 1..=n {
                if from != to && (targets.contains(&from) || targets.contains(&to)) {
                    self.degraded.insert((from, to), faults.clone());
                }
            }
        }
    }

    pub fn restore_links(&mut self) {
        self.degraded.clear();
    }

    /// Hands node `id` an event, or queues it while the node cannot step.
    fn deliver(&mut self, id: NodeId, event: EventOf<C>) {
        let n = &mut self.nodes[id as usize - 1];
        let Some(core) = n.core.as_mut() else {
            return;
        };
        if n.paused || n.syncing {
            if n.inbox.len() < INBOX_CAPACITY {
                n.inbox.push_back(event);
            }
            return;
        }
        match step(core, &mut self.rules, self.now, id, event) {
            Ok(actions) => self.commit(id, actions),
            Err(why) => self.panicked(id, why),
        }
    }

    /// Carries out a burst of actions in the shell's order ([`commit::order`]):
    /// appends and snapshots, the sync, then the effects, which wait in `after_sync`
    /// until the sync completes (with `effects_first`, the effects first).
    fn commit(&mut self, id: NodeId, actions: Actions<C>) {
        let n = self.node(id);
        if let Some(core) = n.core.as_mut() {
            n.unsynced_chosen.extend(core.take_committed());
        }
        let commit::Burst {
            durable,
            mut effects,
        } = commit::split(actions);
        if self.effects_first {
            for effect in std::mem::take(&mut effects) {
                self.effect(id, effect);
            }
        }
        if durable.is_empty() {
            for effect in effects {
                self.effect(id, effect);
            }
            return;
        }
        for step in durable {
            match step {
                Durable::Append(record) => {
                    let n = self.node(id);
                    n.wal
                        .as_mut()
                        .expect("a running node has its log")
                        .append(&record);
                    if let Some(chosen) = C::chosen(record) {
                        n.unsynced_chosen.push(chosen);
                    }
                }
                Durable::Snapshot { snapshot, keep } => {
                    let sync = !self.unsynced_snapshot;
                    let log = self
                        .node(id)
                        .wal
                        .as_mut()
                        .expect("a running node has its log");
                    if let Err(e) = log.begin_snapshot(&snapshot, &keep, sync) {
                        return self.panicked(id, format!("its log failed: {e}"));
                    }
                }
            }
        }
        let n = self.node(id);
        // The records reach the page cache now and the disk when the sync
        // completes; a crash between decides their fate.
        let log = n.wal.as_mut().expect("a running node has its log");
        if let Err(e) = log.write() {
            return self.panicked(id, format!("its log failed: {e}"));
        }
        let delay = n.rng.random_range(FSYNC.0..=FSYNC.1);
        n.syncing = true;
        n.after_sync = effects;
        let epoch = n.epoch;
        self.counts.fsyncs += 1;
        self.schedule(self.now + delay, Item::SyncDone { node: id, epoch });
    }

    fn sync_done(&mut self, id: NodeId) {
        let n = self.node(id);
        // The snapshot writer and the segment remover started before this sync are
        // taken to be done with it, unless the process is stopped.
        if !n.paused {
            n.fs.run_tasks();
        }
        let log = n.wal.as_mut().expect("a running node has its log");
        let synced = log.sync().and_then(|()| match n.paused {
            false => log.poll_snapshot(),
            true => Ok(()),
        });
        if let Err(e) = synced {
            return self.panicked(id, format!("its log failed: {e}"));
        }
        let n = self.node(id);
        n.syncing = false;
        for (slot, batch) in std::mem::take(&mut n.unsynced_chosen) {
            n.learned.entry(slot).or_insert(batch);
        }
        if !n.paused {
            self.after_sync_and_drain(id);
        }
    }

    /// The effects a finished sync released, then everything that queued meanwhile,
    /// stepped as one burst.
    fn after_sync_and_drain(&mut self, id: NodeId) {
        for effect in std::mem::take(&mut self.node(id).after_sync) {
            self.effect(id, effect);
        }
        let n = &mut self.nodes[id as usize - 1];
        if n.inbox.is_empty() || n.syncing || n.paused {
            return;
        }
        let Some(core) = n.core.as_mut() else {
            return;
        };
        let mut actions = Vec::new();
        let mut stopped = None;
        for event in n.inbox.drain(..) {
            match step(core, &mut self.rules, self.now, id, event) {
                Ok(more) if actions.is_empty() => actions = more,
                Ok(more) => actions.extend(more),
                Err(why) => {
                    stopped = Some(why);
                    break;
                }
            }
        }
        match stopped {
            None => self.commit(id, actions),
            Some(why) => self.panicked(id, why),
        }
    }

    fn effect(&mut self, id: NodeId, effect: Effect<C::Msg, C::Timer>) {
        match effect {
            Effect::Send { to, msg } => {
                self.rules.sent(self.now, id, to, &msg);
                self.transmit(id, to, msg);
            }
            Effect::Reply { token, result } => {
                if let Some((client, seq)) = self.node(id).pending.remove(&token) {
                    let delay = self.clients[client]
                        .rng
                        .random_range(CLIENT_DELAY.0..=CLIENT_DELAY.1);
                    self.schedule(
                        self.now + delay,
                        Item::Reply {
                            client,
                            seq,
                            result,
                        },
                    );
                }
            }
            Effect::SetTimer { timer, after_ms } => {
                let now = self.now;
                let deadline = self.node(id).clock.local(now) + after_ms * MS;
                self.arm(id, timer, deadline);
            }
        }
    }

    /// (Re)arms a timer at a local deadline; an earlier arming of it is void.
    fn arm(&mut self, id: NodeId, timer: C::Timer, deadline: u64) {
        let now = self.now;
        let seq = self.next_seq();
        let n = self.node(id);
        let epoch = n.epoch;
        let due = (n.clock.global_at(deadline, now), seq);
        let queue = match n.timers.get_mut(&timer) {
            Some((d, armed)) => {
                *d = deadline;
                armed.set(due)
            }
            None => {
                n.timers.insert(timer.clone(), (deadline, Armed::new(due)));
                true
            }
        };
        if queue {
            let item = Item::Timer {
                node: id,
                epoch,
                timer,
            };
            self.push(due.0, seq, item);
        }
    }

    fn transmit(&mut self, from: NodeId, to: NodeId, msg: C::Msg) {
        let kind = msg.kind();
        if let Some(round) = C::campaign(&msg) {
            // A campaign asks every peer: counted once per round.
            if self.campaigns.insert((from, round)) {
                self.counts.elections += 1;
            }
        }
        if self.blocked.contains(&(from, to)) {
            self.links.of(from, to, kind).sent_with(0);
            self.traced(from, to, &msg, &[]);
            return;
        }
        let faults = self.degraded.get(&(from, to)).cloned();
        let link = (from as usize - 1) * self.plan.nodes + (to as usize - 1);
        let rng = &mut self.nets[link];
        let mut copies = 1;
        let mut extra = 0u64;
        let mut reorder = 0.0;
        if let Some(f) = &faults {
            if rng.random_bool(f.loss.clamp(0.0, 1.0)) {
                self.links.of(from, to, kind).sent_with(0);
                self.traced(from, to, &msg, &[]);
                return;
            }
            if rng.random_bool(f.duplicate.clamp(0.0, 1.0)) {
                copies = 2;
            }
            let jitter = f.jitter_ms * MS;
            extra = (f.delay_ms * MS + rng.random_range(0..=2 * jitter)).saturating_sub(jitter);
            reorder = f.reorder.clamp(0.0, 1.0);
        }
        self.links.of(from, to, kind).sent_with(copies);
        let mut delays = [0u64; 2];
        for slot in delays.iter_mut().take(copies) {
            let rng = &mut self.nets[link];
            let mut delay = rng.random_range(PEER_DELAY.0..=PEER_DELAY.1) + extra;
            if reorder > 0.0 && rng.random_bool(reorder) {
                // Held back long enough for later messages to overtake it.
                delay += rng.random_range(5 * MS..=25 * MS);
            }
            *slot = delay;
        }
        self.traced(from, to, &msg, &delays[..copies]);
        // The message itself travels in the last copy; only a duplicate clones it.
        if copies == 2 {
            let copy = Item::Peer {
                from,
                to,
                msg: msg.clone(),
            };
            self.schedule(self.now + delays[0], copy);
        }
        self.schedule(self.now + delays[copies - 1], Item::Peer { from, to, msg });
    }

    /// Keeps a message for the report's space-time diagram, if a trace window is open
    /// and it falls inside.
    fn traced(&mut self, from: NodeId, to: NodeId, msg: &C::Msg, delays: &[u64]) {
        let Some(selector) = &mut self.trace else {
            return;
        };
        if !selector.wants(self.now) {
            return;
        }
        selector.offer(results::data::TracedMessage {
            time_ns: self.now,
            from,
            to,
            kind: msg.kind().to_string(),
            fate: match delays.len() {
                0 => "dropped",
                1 => "delivered",
                _ => "duplicated",
            }
            .into(),
            delay_ms: delays.iter().map(|d| *d as f64 / 1e6).collect(),
        });
    }

    // ---- clients --------------------------------------------------------------------

    fn wake(&mut self, client: usize) {
        if self.stopping || self.clients[client].in_flight.is_some() {
            return;
        }
        let Some(slot) = self.clients[client].slot.as_ref() else {
            return;
        };
        if slot.exhausted(&self.workload) {
            return;
        }
        if let Some(at) = slot.due_at(&self.workload).filter(|at| *at > self.now) {
            self.schedule(at, Item::Wake { client });
            return;
        }
        let node = slot.node;
        if self.clients[client].conn.is_none() {
            if !self.is_running(node) {
                // The node is down: nothing was invoked, so nothing is recorded.
                let at = self.now + CONNECT_RETRY.as_nanos() as u64;
                self.schedule(at, Item::Wake { client });
                return;
            }
            self.clients[client].conn = Some(node);
        }
        let c = &mut self.clients[client];
        let slot = c.slot.as_mut().expect("a workload client");
        let op = slot.next_op(&self.workload, &self.shared);
        let process = slot.process;
        if let Some(script) = &mut self.capture {
            script.push(results::plan::ScriptedOp {
                slot: slot.index,
                at_us: self.now / 1_000,
                op: op.clone(),
            });
        }
        self.send(client, node, op, process, self.plan.op_timeout_ms * MS);
    }

    /// Records the invoke and sends `op` to `node` on the client's connection.
    fn send(&mut self, client: usize, node: NodeId, op: WorkloadOp, process: u64, timeout: u64) {
        self.recorder.invoke_op(process, &op, node);
        let request = match request_of(&op) {
            paxos_node::client::Request::Op(op) => op,
            other => unreachable!("a workload op is a core op, not {other:?}"),
        };
        let c = &mut self.clients[client];
        c.seq += 1;
        let seq = c.seq;
        c.in_flight = Some(InFlight { op, process, node });
        let delay = c.rng.random_range(CLIENT_DELAY.0..=CLIENT_DELAY.1);
        let epoch = self.node(node).epoch;
        self.schedule(
            self.now + delay,
            Item::Request {
                client,
                seq,
                node,
                epoch,
                op: request,
            },
        );
        let due = (self.now + timeout, self.next_seq());
        let c = &mut self.clients[client];
        let queue = match c.timeout.as_mut() {
            Some((armed, op)) => {
                *op = seq;
                armed.set(due)
            }
            None => {
                c.timeout = Some((Armed::new(due), seq));
                true
            }
        };
        if queue {
            self.push(due.0, due.1, Item::Timeout { client });
        }
    }

    fn complete(&mut self, client: usize, done: Completion) {
        let Some(f) = self.clients[client].in_flight.take() else {
            return;
        };
        self.recorder.complete_op(f.process, &f.op, f.node, &done);
        if done.reconnect {
            self.clients[client].conn = None;
        }
        let c = &mut self.clients[client];
        let Some(slot) = c.slot.as_mut() else {
            c.done = Some(done);
            return;
        };
        let after = slot.after(&f.op, &done, &self.shared, self.recorder);
        if after.reconnect {
            c.conn = None;
        }
        let mut at = self.now + after.backoff.map_or(0, |d| d.as_nanos() as u64);
        if self.plan.rate > 0.0 {
            let every = (self.plan.concurrency as f64 / self.plan.rate * 1e9) as u64;
            c.next_at += every;
            at = at.max(c.next_at);
        }
        self.schedule(at, Item::Wake { client });
    }

    /// A client for the final phase: one op at a time through [`World::call`].
    pub fn script_client(&mut self) -> usize {
        let i = self.clients.len();
        self.clients.push(SimClient {
            rng: substream(self.plan.seed, &format!("sim/clients/c{i}")),
            conn: None,
            seq: 0,
            in_flight: None,
            timeout: None,
            done: None,
            slot: None,
            next_at: 0,
        });
        self.clients.len() - 1
    }

    /// Runs one op of a final-phase client to its completion (bounded by `timeout`).
    /// `None`: the node is down, so nothing was invoked.
    pub fn call(
        &mut self,
        client: usize,
        node: NodeId,
        op: WorkloadOp,
        process: u64,
        timeout: u64,
    ) -> Option<Completion> {
        if self.clients[client].conn != Some(node) {
            if !self.is_running(node) {
                return None;
            }
            self.clients[client].conn = Some(node);
        }
        self.send(client, node, op, process, timeout);
        self.run_until(u64::MAX, |w| w.clients[client].done.is_some());
        self.clients[client].done.take()
    }
}

/// A node refused to start from its durable state (why): what a correct node does
/// with a corrupt WAL or snapshot, so it is the system's behaviour, not a failure
/// of the simulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

/// The leader most of `views` name, as a real node's `status` answers would say.
fn leader_of(views: &[(NodeId, paxos_node::seam::View)]) -> nemesis::LeaderView {
    let answers: Vec<(NodeId, Option<NodeId>)> =
        views.iter().map(|(id, v)| (*id, v.leader)).collect();
    nemesis::LeaderView::by_vote(&answers)
}

/// Steps a core with one event, showing the step to the protocol's rules. A core
/// that panics (a core nobody here wrote asserts its own invariants) has stopped:
/// `Err` with its message.
fn step<C: SimCore>(
    core: &mut C,
    rules: &mut C::Rules,
    now: u64,
    id: NodeId,
    event: EventOf<C>,
) -> Result<Actions<C>, String> {
    if let Event::Peer { from, msg } = &event {
        rules.received(now, id, *from, msg);
    }
    let actions = in_core(|| core.step(event))?;
    rules.stepped(now, id, &actions, core);
    Ok(actions)
}

thread_local! {
    /// Whether this thread is inside a core's step, where a panic is the core's
    /// finding (reported in the run's result) rather than the harness's crash.
    static IN_CORE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a core's step or start), catching a panic as its message. The panic
/// hook stays quiet for it: the run reports it.
fn in_core<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CORE.with(|c| c.get()) {
                previous(info);
            }
        }));
    });
    IN_CORE.with(|c| c.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_CORE.with(|c| c.set(false));
    result.map_err(|payload| panic_text(&payload))
}

/// A panic's message.
fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Messages per directed link and message type, counted as the world sends, drops,
/// duplicates and delivers them: a real run's per-link table, for a simulated run,
/// and (added up) the run's message totals.
/// Each link holds a short list of (type, counts): a handful of types, looked up by a
/// scan cheaper than a map on every message.
/// One message sent on a link with `copies` on their way (0: dropped, 2: duplicated).
trait SentWith {
    fn sent_with(&mut self, copies: usize);
}

impl SentWith for nemesis::net::Counts {
    fn sent_with(&mut self, copies: usize) {
        self.sent += 1;
        self.dropped += u64::from(copies == 0);
        self.duplicated += u64::from(copies > 1);
    }
}

pub struct LinkCounts {
    nodes: usize,
    links: Vec<Vec<(&'static str, nemesis::net::Counts)>>,
}

impl LinkCounts {
    fn new(nodes: usize) -> LinkCounts {
        LinkCounts {
            nodes,
            links: vec![Vec::new(); nodes * nodes],
        }
    }

    fn of(&mut self, from: NodeId, to: NodeId, kind: &'static str) -> &mut nemesis::net::Counts {
        let link = &mut self.links[(from as usize - 1) * self.nodes + (to as usize - 1)];
        // Kinds are static names: found by their pointer, almost always, before
        // any is compared by its bytes.
        let at = link
            .iter()
            .position(|(k, _)| std::ptr::eq(*k, kind))
            .or_else(|| link.iter().position(|(k, _)| *k == kind));
        let at = match at {
            Some(at) => at,
            None => {
                link.push((kind, nemesis::net::Counts::default()));
                link.len() - 1
            }
        };
        &mut link[at].1
    }

    /// Every link's counts added up: the simulation's message totals.
    pub fn totals(&self) -> nemesis::net::Counts {
        let mut t = nemesis::net::Counts::default();
        for (_, c) in self.links.iter().flatten() {
            t.sent += c.sent;
            t.delivered += c.delivered;
            t.dropped += c.dropped;
            t.duplicated += c.duplicated;
        }
        t
    }

    /// The links that carried a message, in (from, to) order, as result.json holds them.
    pub fn stats(&self) -> Vec<nemesis::net::LinkStats> {
        let mut out = Vec::new();
        for (i, types) in self.links.iter().enumerate() {
            if types.is_empty() {
                continue;
            }
            out.push(nemesis::net::LinkStats {
                from: (i / self.nodes) as u32 + 1,
                to: (i % self.nodes) as u32 + 1,
                types: types.iter().map(|(k, c)| (k.to_string(), *c)).collect(),
            });
        }
        out
    }
}
