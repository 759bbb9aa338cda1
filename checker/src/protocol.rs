//! The bundled node's protocol rules (docs/protocol.md), checked over what its nodes
//! send, take in and write down, one event at a time.
//!
//! A client-visible history shows a protocol bug only once the bug produces a visible
//! anomaly. These rules catch the broken step itself and name the messages that broke
//! it:
//! - `promise-regressed`: an acceptor promises a ballot below one it promised (or
//!   accepted) before, across its restarts too. A duplicated prepare is answered with
//!   the same promise again, so an equal ballot is not a regression.
//! - `accepted-below-promise`: an acceptor accepts a proposal below its promise.
//! - `wrong-value-proposed`: the value a proposer sends in accept(b) is not the value
//!   with the highest accepted ballot among the promises it took in for b before its
//!   first accept of b (its own value only when none reported one). The proposer's
//!   own acceptor answers it without a message; what that acceptor wrote down
//!   ([`Record`]) counts as its report.
//! - `chosen-without-quorum`: a node wrote a register value or a log slot down as
//!   chosen without having learned it: no majority of distinct acceptors (its own
//!   acceptor through its records) had sent it acceptances of that value's ballot, and
//!   no peer had told it the value was chosen (decided, chosen, a promise reporting
//!   it chosen, or a commit covering a slot it had accepted in the committing ballot).
//! - `conflicting-learn`: a register or a log slot learned (written down as chosen, or
//!   announced as decided or chosen) as two different values, by any nodes.
//!
//! Every rule is judged from the events of the node that must keep it, in the order
//! that node stepped them, so a message still in flight never counts as known. From
//! a real run's wire ([`check_wire`]) only sends are known, stamped by a proxy per
//! link: an acceptor is held to the promises it made before its last restart, the
//! only ones certainly earlier, and the rules that need a node's steps are not judged. The
//! checker knows the protocol's message shapes ([`Msg`]); a driver translates its
//! messages into them (batches of log commands become fingerprints).
//!
//! Alongside the rules, "sometimes" counts ([`Coverage`]) say which situations where
//! the rules matter a run reached, so a green run says what it did not exercise.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::report::{Anomaly, AnomalyKind, CheckReport, MessageRef};

pub use paxos_trace::{Ballot, BatchId, Event, JournalLine, Msg, NodeId, Record, Slot};

/// How often a run reached the situations a protocol's rules exist for: a count per
/// situation, by name (snake_case in result.json, kebab-case in words). Every core's
/// rules start with their situations at zero, so one never reached is still listed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Coverage(pub BTreeMap<String, u64>);

/// The bundled node's situations.
pub const PAXOS_SITUATIONS: [&str; 5] = [
    // A proposer's promise quorum (its own acceptor included) reported two or more
    // different accepted values.
    "promises_disagreed",
    // A new leader recovered a slot whose value fewer than a majority had accepted.
    "minority_slot_recovered",
    // An acceptor restarted between promising a ballot and accepting in it.
    "restart_between_promise_and_accept",
    // An accepted message reached its proposer twice.
    "duplicate_accepted_delivered",
    // A new leader began while slots proposed by another were not yet chosen.
    "leader_change_with_slots_in_flight",
];

impl Coverage {
    /// Every situation of `names` at zero.
    pub fn of(names: &[&str]) -> Coverage {
        Coverage(names.iter().map(|n| (n.to_string(), 0)).collect())
    }

    /// One more time in situation `name`.
    pub fn reached(&mut self, name: &str) {
        *self.0.entry(name.to_string()).or_default() += 1;
    }

    /// How often situation `name` was reached.
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// The situations never reached, by name (kebab-case).
    pub fn never_reached(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(name, _)| name.replace('_', "-"))
            .collect()
    }

    /// The situations never reached, in words: "none", or their names.
    pub fn never_reached_words(&self) -> String {
        let never = self.never_reached();
        if never.is_empty() {
            "none".to_string()
        } else {
            never.join(", ")
        }
    }

    pub fn add(&mut self, other: &Coverage) {
        for (name, n) in &other.0 {
            *self.0.entry(name.clone()).or_default() += n;
        }
    }
}

/// What a proposer's phase 1 reported for one register or slot.
#[derive(Clone, Debug, Default)]
struct Reports<V> {
    /// (accepted ballot, value, who reported it, when it was taken in); `None`
    /// ballot: reported as chosen.
    reported: Vec<(Option<Ballot>, V, NodeId, u64)>,
}

impl<V: Copy + Ord> Reports<V> {
    /// The value phase 2 must propose: a value reported as chosen, else the one
    /// accepted in the highest ballot. `None`: the proposer is free.
    fn required(&self) -> Option<(Option<Ballot>, V)> {
        if let Some((_, v, _, _)) = self.reported.iter().find(|r| r.0.is_none()) {
            return Some((None, *v));
        }
        self.reported
            .iter()
            .max_by_key(|r| r.0)
            .map(|(b, v, _, _)| (*b, *v))
    }

    /// Whether the quorum's promises carried two or more different accepted values,
    /// counting `own`, what the proposer's own acceptor accepted (it answers
    /// without a message): in a cluster of three, the one other promise a proposer
    /// waits for can only disagree with its own.
    fn disagree(&self, own: Option<V>) -> bool {
        let values: BTreeSet<V> = self.reported.iter().map(|r| r.1).chain(own).collect();
        values.len() >= 2
    }
}

/// A log promise a proposer took in (from whom, its entries, when), kept until the
/// end of its phase 1.
type LogReport = (NodeId, Vec<(Slot, Option<Ballot>, BatchId)>, u64);
/// A register promise a proposer took in: from whom, what it reported, when.
type RegisterReport = (NodeId, Option<(Ballot, i64)>, u64);
/// What a node's own acceptor accepted in a slot (`None` ballot: learned chosen).
type OwnSlot = Vec<(Option<Ballot>, BatchId)>;

/// A register's name, interned: the rules' maps are keyed by integers, not strings
/// (building and comparing key strings was a visible part of a simulated run).
type Key = u32;
/// Maps and sets the rules only look up, never walk in an order that reaches a
/// verdict or a report: hashed (a fixed hash, the same in every process).
type Map<K, V> = rustc_hash::FxHashMap<K, V>;
type Set<K> = rustc_hash::FxHashSet<K>;

/// The distinct acceptors that sent something: a cluster is small, so a short list.
#[derive(Clone, Debug, Default)]
struct Acceptors(Vec<NodeId>);

impl Acceptors {
    fn insert(&mut self, node: NodeId) {
        if !self.0.contains(&node) {
            self.0.push(node);
        }
    }
    fn contains(&self, node: NodeId) -> bool {
        self.0.contains(&node)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Where a kept promise or learning was seen, in words only when a rule breaks:
/// most are never shown, and formatting each was a visible part of a simulated run.
#[derive(Clone, Debug)]
struct Seen {
    time_ns: u64,
    /// `send` or `record`.
    event: &'static str,
    from: Option<NodeId>,
    to: Option<NodeId>,
    what: Seeing,
}

#[derive(Clone, Debug)]
enum Seeing {
    Msg(Msg),
    Record(Record),
}

impl Seen {
    fn message_ref(&self) -> MessageRef {
        MessageRef {
            time_ns: self.time_ns,
            event: self.event.to_string(),
            from: self.from,
            to: self.to,
            text: match &self.what {
                Seeing::Msg(m) => describe(m),
                Seeing::Record(r) => format!("{r:?}"),
            },
        }
    }
}

/// The rules' state over a run.
pub struct Invariants {
    quorum: usize,
    time_ns: u64,
    /// Register names and their [`Key`]s.
    keys: Map<String, Key>,
    /// (acceptor, register) -> highest ballot promised or accepted, and where.
    reg_promised: Map<(NodeId, Key), (Ballot, Seen)>,
    log_promised: Map<NodeId, (Ballot, Seen)>,
    /// The same, as of each acceptor's last restart. On the wire, messages on
    /// different links are stamped by different proxies, so only a promise made
    /// before a restart is certainly earlier than one made after it.
    settled_reg: Map<(NodeId, Key), (Ballot, Seen)>,
    settled_log: Map<NodeId, (Ballot, Seen)>,
    /// Promises a proposer took in for (register, ballot), until its first accept.
    reg_promises: Map<(NodeId, Key, Ballot), Vec<RegisterReport>>,
    /// The value of a proposer's first accept of (register, ballot).
    reg_proposed: Map<(NodeId, Key, Ballot), i64>,
    log_promises: Map<(NodeId, Ballot), Vec<LogReport>>,
    /// Per leader ballot, what phase 1 required per slot (set at its first accept).
    log_required: Map<(NodeId, Ballot), Map<Slot, Reports<BatchId>>>,
    log_proposed: Map<(NodeId, Ballot, Slot), BatchId>,
    /// The same, by (node, slot): the ballots it proposed the slot in.
    log_proposed_in: Map<(NodeId, Slot), Vec<(Ballot, BatchId)>>,
    /// What each node's own acceptor accepted, from its records.
    own_reg: Map<(NodeId, Key), Vec<(Ballot, i64)>>,
    own_log: Map<(NodeId, Slot), OwnSlot>,
    /// The first learned value of each register and slot, and where.
    reg_learned: Map<Key, (i64, Seen)>,
    log_learned: Map<Slot, (BatchId, Seen)>,
    /// What each node was told was chosen, and the acceptances it took in.
    told_register: Set<(NodeId, Key, i64)>,
    told_slot: Set<(NodeId, Slot, BatchId)>,
    /// (node, leader ballot) -> the highest commit index it took in from that ballot.
    commits: Map<(NodeId, Ballot), Slot>,
    /// (proposer, register) -> ballot -> the acceptors that acknowledged it.
    reg_acks: Map<(NodeId, Key), Map<Ballot, Acceptors>>,
    log_acks: Map<(NodeId, Ballot, Slot), Acceptors>,
    /// Coverage bookkeeping.
    promised_then_restarted: Set<(NodeId, Option<Key>, Ballot)>,
    last_promise: Map<(NodeId, Option<Key>), Ballot>,
    accepted_seen: Set<(NodeId, NodeId, Option<Key>, Slot, Ballot)>,
    log_accepted_by: Map<(Slot, Ballot), Acceptors>,
    in_flight: Map<Slot, NodeId>,
    anomalies: Vec<Anomaly>,
    events: u64,
    /// Only what the wire shows: sends, no steps or records.
    wire: bool,
    pub coverage: Coverage,
}

/// At most this many anomalies of one kind are kept (the count goes on).
const MAX_PER_KIND: usize = 100;

impl Invariants {
    /// The rules for a cluster of `n` nodes.
    pub fn new(n: usize) -> Invariants {
        Invariants {
            quorum: n / 2 + 1,
            time_ns: 0,
            keys: Default::default(),
            reg_promised: Default::default(),
            log_promised: Default::default(),
            settled_reg: Default::default(),
            settled_log: Default::default(),
            reg_promises: Default::default(),
            reg_proposed: Default::default(),
            log_promises: Default::default(),
            log_required: Default::default(),
            log_proposed: Default::default(),
            log_proposed_in: Default::default(),
            own_reg: Default::default(),
            own_log: Default::default(),
            reg_learned: Default::default(),
            log_learned: Default::default(),
            told_register: Default::default(),
            told_slot: Default::default(),
            commits: Default::default(),
            reg_acks: Default::default(),
            log_acks: Default::default(),
            promised_then_restarted: Default::default(),
            last_promise: Default::default(),
            accepted_seen: Default::default(),
            log_accepted_by: Default::default(),
            in_flight: Default::default(),
            anomalies: Vec::new(),
            events: 0,
            wire: false,
            coverage: Coverage::of(&PAXOS_SITUATIONS),
        }
    }

    /// The rules for a trace of the wire (real processes behind proxies): only what
    /// each node sent is known, so the rules that need a node's steps (what it had
    /// taken in when it proposed; what its own acceptor recorded) are not judged.
    pub fn wire() -> Invariants {
        Invariants {
            wire: true,
            // No rule judged from the wire counts a quorum.
            ..Invariants::new(0)
        }
    }

    /// Takes one event, observed at virtual or wall time `time_ns`.
    pub fn observe(&mut self, time_ns: u64, event: &Event) {
        self.time_ns = time_ns;
        self.events += 1;
        match event {
            Event::Send { from, to, msg } => self.sent(*from, *to, msg),
            Event::Propose { from, msg } => self.proposed(*from, msg),
            Event::Receive { from, to, msg } => self.received(*from, *to, msg),
            Event::Record { node, record } => self.recorded(*node, record),
            Event::Restart { node } => {
                // Walked in any order: each entry lands in a set or a map the same way.
                for ((n, key), b) in &self.last_promise {
                    if n == node {
                        self.promised_then_restarted.insert((*n, *key, *b));
                    }
                }
                for (k, v) in self.reg_promised.iter().filter(|(k, _)| k.0 == *node) {
                    self.settled_reg.insert(*k, v.clone());
                }
                if let Some(v) = self.log_promised.get(node) {
                    self.settled_log.insert(*node, v.clone());
                }
                // In a cluster of one, what the node wrote down as chosen rests on its
                // own acceptance alone, which a crash before the sync takes back with
                // it (no reply went out, so nobody learned it). What it learned before
                // the restart is forgotten here; a synced value it then contradicts
                // is the history checks' to find (agreement, linearizability, the log
                // of its dump).
                if self.alone() {
                    let mine = |r: &Seen| r.event == "record" && r.from == Some(*node);
                    self.reg_learned.retain(|_, (_, r)| !mine(r));
                    self.log_learned.retain(|_, (_, r)| !mine(r));
                }
            }
        }
    }

    /// The [`Key`] of register `name`, interned on first sight.
    fn key(&mut self, name: &str) -> Key {
        if let Some(k) = self.keys.get(name) {
            return *k;
        }
        let k = Key::try_from(self.keys.len()).expect("under 4 G registers");
        self.keys.insert(name.to_string(), k);
        k
    }

    fn at(&self, kind: &str, from: Option<NodeId>, to: Option<NodeId>, text: String) -> MessageRef {
        MessageRef {
            time_ns: self.time_ns,
            event: kind.to_string(),
            from,
            to,
            text,
        }
    }

    fn flag(
        &mut self,
        kind: AnomalyKind,
        key: Option<String>,
        slot: Option<Slot>,
        message: String,
        messages: Vec<MessageRef>,
    ) {
        if self.anomalies.iter().filter(|a| a.kind == kind).count() >= MAX_PER_KIND {
            return;
        }
        self.anomalies.push(Anomaly {
            kind,
            key,
            slot,
            message,
            ops: Vec::new(),
            witness: None,
            messages,
            cycle: Vec::new(),
        });
    }

    /// An acceptor's promise or acceptance of `ballot` for a register (`key`) or the
    /// log (`None`): rules 1 and 2. `here` makes the witness of this step; it is
    /// asked for only when kept (a new promise, or a broken rule), and the stored
    /// witnesses are read only to flag: most acceptances repeat the promise's
    /// ballot, and copying or formatting a witness for each was a visible part of a
    /// simulated run.
    fn acceptor_ballot(
        &mut self,
        node: NodeId,
        key: Option<&str>,
        ballot: Ballot,
        accepting: bool,
        here: impl Fn(&Self) -> Seen,
    ) {
        let id = key.map(|k| self.key(k));
        let previous = match id {
            Some(k) => self.reg_promised.get(&(node, k)).map(|p| p.0),
            None => self.log_promised.get(&node).map(|p| p.0),
        };
        // What the step is judged against: the promise as settled by a restart when
        // judging the wire, else the last promise sent.
        let reference = match (self.wire, id) {
            (true, Some(k)) => self.settled_reg.get(&(node, k)),
            (true, None) => self.settled_log.get(&node),
            (false, Some(k)) => self.reg_promised.get(&(node, k)),
            (false, None) => self.log_promised.get(&node),
        };
        let broken = reference
            .filter(|(promised, _)| ballot < *promised)
            .map(|(promised, there)| (*promised, there.clone()));
        if let Some((promised, there)) = broken {
            let what = key.map_or("the log".to_string(), |k| format!("register {k}"));
            let (kind, verb) = if accepting {
                (AnomalyKind::AcceptedBelowPromise, "accepted")
            } else {
                (AnomalyKind::PromiseRegressed, "promised")
            };
            let here = here(self);
            self.flag(
                kind,
                key.map(str::to_string),
                None,
                format!(
                    "node {node} {verb} ballot {ballot} for {what} after promising ballot {promised}"
                ),
                vec![there.message_ref(), here.message_ref()],
            );
        }
        if previous.is_none_or(|p| ballot > p) {
            let here = here(self);
            match id {
                Some(k) => {
                    self.reg_promised.insert((node, k), (ballot, here));
                }
                None => {
                    self.log_promised.insert(node, (ballot, here));
                }
            }
        }
        let k = (node, id);
        if accepting {
            if self.promised_then_restarted.remove(&(k.0, k.1, ballot)) {
                self.coverage.reached("restart_between_promise_and_accept");
            }
        } else {
            self.last_promise.insert(k, ballot);
        }
    }

    fn sent(&mut self, from: NodeId, to: NodeId, msg: &Msg) {
        let witness = |w: &Self| Seen {
            time_ns: w.time_ns,
            event: "send",
            from: Some(from),
            to: Some(to),
            what: Seeing::Msg(msg.clone()),
        };
        match msg {
            Msg::Promise { key, ballot, .. } => {
                self.acceptor_ballot(from, Some(key), *ballot, false, witness);
            }
            Msg::Accepted { key, ballot } => {
                self.acceptor_ballot(from, Some(key), *ballot, true, witness);
            }
            Msg::LogPromise { ballot, .. } => {
                self.acceptor_ballot(from, None, *ballot, false, witness);
            }
            Msg::LogAccepted { ballot, slot } => {
                self.acceptor_ballot(from, None, *ballot, true, witness);
                self.log_accepted_by
                    .entry((*slot, *ballot))
                    .or_default()
                    .insert(from);
            }
            // A proposer's duties are judged when it decides ([`Event::Propose`]).
            Msg::Accept { .. } | Msg::LogAccept { .. } | Msg::Commit { .. } => {}
            Msg::Decided { key, value } => {
                self.learn_register(key, *value, witness);
            }
            Msg::Chosen { entries } => {
                for (slot, batch) in entries {
                    self.learn_slot(*slot, *batch, witness);
                }
            }
        }
    }

    fn proposed(&mut self, from: NodeId, msg: &Msg) {
        match msg {
            Msg::Accept { key, ballot, value } => self.register_accept(from, key, *ballot, *value),
            Msg::LogAccept {
                ballot,
                slot,
                batch,
            } => {
                self.end_phase_one(from, *ballot);
                self.log_accept(from, *ballot, *slot, *batch);
            }
            Msg::Commit { ballot, .. } => self.end_phase_one(from, *ballot),
            _ => {}
        }
    }

    fn received(&mut self, from: NodeId, to: NodeId, msg: &Msg) {
        match msg {
            Msg::Promise {
                key,
                ballot,
                accepted,
            } => {
                let id = (to, self.key(key), *ballot);
                // Only promises taken in before the proposer's first accept count.
                if !self.reg_proposed.contains_key(&id) {
                    let now = self.time_ns;
                    self.reg_promises
                        .entry(id)
                        .or_default()
                        .push((from, *accepted, now));
                }
            }
            Msg::LogPromise { ballot, entries }
                if !self.log_required.contains_key(&(to, *ballot)) =>
            {
                self.log_promises.entry((to, *ballot)).or_default().push((
                    from,
                    entries.clone(),
                    self.time_ns,
                ));
            }
            Msg::Accepted { key, ballot } => {
                let k = self.key(key);
                self.note_accepted((from, to, Some(k), 0, *ballot));
                self.reg_acks
                    .entry((to, k))
                    .or_default()
                    .entry(*ballot)
                    .or_default()
                    .insert(from);
            }
            Msg::LogAccepted { ballot, slot } => {
                self.note_accepted((from, to, None, *slot, *ballot));
                self.log_acks
                    .entry((to, *ballot, *slot))
                    .or_default()
                    .insert(from);
            }
            Msg::Decided { key, value } => {
                let k = self.key(key);
                self.told_register.insert((to, k, *value));
            }
            Msg::Chosen { entries } => {
                for (slot, batch) in entries {
                    self.told_slot.insert((to, *slot, *batch));
                }
            }
            Msg::Commit { ballot, commit } => {
                let c = self.commits.entry((to, *ballot)).or_default();
                *c = (*c).max(*commit);
            }
            _ => {}
        }
        // A promise reporting a slot chosen tells the candidate so, whether or not it
        // still counts for phase 1.
        if let Msg::LogPromise { entries, .. } = msg {
            for (slot, b, batch) in entries {
                if b.is_none() {
                    self.told_slot.insert((to, *slot, *batch));
                }
            }
        }
    }

    /// Rule: a register value written down as chosen must have been learned.
    fn register_justified(&self, node: NodeId, key: Key, value: i64) -> bool {
        if self.told_register.contains(&(node, key, value)) {
            return true;
        }
        let own = self.own_reg.get(&(node, key));
        if self.alone() && own.is_some_and(|v| v.iter().any(|(_, x)| *x == value)) {
            return true;
        }
        // Any ballot of the node's that a quorum acknowledged for this value: the
        // answer does not depend on the order the ballots are tried in.
        self.reg_acks
            .get(&(node, key))
            .into_iter()
            .flatten()
            .any(|(b, acks)| {
                if self.reg_proposed.get(&(node, key, *b)) != Some(&value) {
                    return false;
                }
                let mine = own.is_some_and(|v| v.contains(&(*b, value))) && !acks.contains(node);
                acks.len() + usize::from(mine) >= self.quorum
            })
    }

    /// A cluster of one: the node's own acceptance is the majority, and it proposes to
    /// nobody, so no proposal or acceptance message is ever seen.
    fn alone(&self) -> bool {
        self.quorum <= 1
    }

    /// Rule: a slot written down as chosen must have been learned.
    fn slot_justified(&self, node: NodeId, slot: Slot, batch: BatchId) -> bool {
        if self.told_slot.contains(&(node, slot, batch)) {
            return true;
        }
        let own: &[(Option<Ballot>, BatchId)] =
            self.own_log.get(&(node, slot)).map_or(&[], Vec::as_slice);
        // A commit of the ballot the node accepted this batch in.
        let committed = own.iter().any(|(b, x)| {
            *x == batch
                && b.is_some_and(|b| self.commits.get(&(node, b)).is_some_and(|c| *c >= slot))
        });
        if committed || (self.alone() && own.iter().any(|(b, x)| *x == batch && b.is_some())) {
            return true;
        }
        // A majority of acceptances of the node's own proposal.
        self.log_proposed_in
            .get(&(node, slot))
            .into_iter()
            .flatten()
            .filter(|(_, x)| *x == batch)
            .any(|(b, _)| {
                let acks = self.log_acks.get(&(node, *b, slot));
                let n = acks.map_or(0, Acceptors::len);
                let mine =
                    own.contains(&(Some(*b), batch)) && !acks.is_some_and(|a| a.contains(node));
                n + usize::from(mine) >= self.quorum
            })
    }

    /// An acceptance taken in by its proposer: counts the duplicates.
    fn note_accepted(&mut self, id: (NodeId, NodeId, Option<Key>, Slot, Ballot)) {
        if !self.accepted_seen.insert(id) {
            self.coverage.reached("duplicate_accepted_delivered");
        }
    }

    /// A record is appended before it is durable, and a crash may lose it: records
    /// never count against an acceptor (its messages do), only as its own report
    /// to its own proposer and as what a node learned.
    fn recorded(&mut self, node: NodeId, record: &Record) {
        // The record as a witness, put in words only when a rule breaks ([`Seen`]).
        let here = |w: &Self| Seen {
            time_ns: w.time_ns,
            event: "record",
            from: Some(node),
            to: None,
            what: Seeing::Record(record.clone()),
        };
        match record {
            Record::Promise { .. } | Record::LogPromise { .. } => {}
            Record::Accept { key, ballot, value } => {
                let k = self.key(key);
                self.own_reg
                    .entry((node, k))
                    .or_default()
                    .push((*ballot, *value));
            }
            Record::LogAccept {
                slot,
                ballot,
                batch,
            } => {
                self.own_log
                    .entry((node, *slot))
                    .or_default()
                    .push((Some(*ballot), *batch));
                self.log_accepted_by
                    .entry((*slot, *ballot))
                    .or_default()
                    .insert(node);
            }
            Record::Chosen { key, value } => {
                let k = self.key(key);
                if !self.register_justified(node, k, *value) {
                    let r = here(self).message_ref();
                    self.flag(
                        AnomalyKind::ChosenWithoutQuorum,
                        Some(key.to_string()),
                        None,
                        format!(
                            "node {node} wrote register {key} down as chosen ({value}) without a majority's acceptances or a peer telling it"
                        ),
                        vec![r],
                    );
                }
                self.learn_register(key, *value, here);
            }
            Record::LogChosen { slot, batch } => {
                if !self.slot_justified(node, *slot, *batch) {
                    let r = here(self).message_ref();
                    self.flag(
                        AnomalyKind::ChosenWithoutQuorum,
                        None,
                        Some(*slot),
                        format!(
                            "node {node} wrote slot {slot} down as chosen (batch #{batch:016x}) without a majority's acceptances or a peer telling it"
                        ),
                        vec![r],
                    );
                }
                self.own_log
                    .entry((node, *slot))
                    .or_default()
                    .push((None, *batch));
                self.in_flight.remove(slot);
                self.learn_slot(*slot, *batch, here);
            }
        }
    }

    /// Rule 3 for a register: the first accept of (key, ballot) by `from`.
    fn register_accept(&mut self, from: NodeId, key: &str, ballot: Ballot, value: i64) {
        let k = self.key(key);
        let id = (from, k, ballot);
        let proposal = |me: &Self| {
            me.at(
                "propose",
                Some(from),
                None,
                format!("accept key={key} ballot={ballot} value={value}"),
            )
        };
        if let Some(first) = self.reg_proposed.get(&id) {
            if *first != value {
                let r = proposal(self);
                self.flag(
                    AnomalyKind::WrongValueProposed,
                    Some(key.to_string()),
                    None,
                    format!("node {from} proposed both {first} and {value} for register {key} in ballot {ballot}"),
                    vec![r],
                );
            }
            return;
        }
        self.reg_proposed.insert(id, value);
        let promises = self.reg_promises.remove(&id).unwrap_or_default();
        let mut reports = Reports::<i64>::default();
        for (acceptor, accepted, _) in &promises {
            if let Some((b, v)) = accepted {
                reports.reported.push((Some(*b), *v, *acceptor, 0));
            }
        }
        // The proposer's own acceptor answers without a message: what it accepted
        // below this ballot, as its records say.
        let own: Vec<(Ballot, i64)> = self
            .own_reg
            .get(&(from, k))
            .map(|v| v.iter().filter(|(b, _)| *b < ballot).copied().collect())
            .unwrap_or_default();
        let own_best = own.iter().max_by_key(|(b, _)| *b).map(|(_, v)| *v);
        if reports.disagree(own_best) {
            self.coverage.reached("promises_disagreed");
        }
        let Some((Some(highest), required)) = reports.required() else {
            return; // nobody reported an accepted value: the proposer is free
        };
        if value == required || own.iter().any(|(b, v)| *v == value && *b >= highest) {
            return;
        }
        let mut witness: Vec<MessageRef> = promises
            .iter()
            .map(|(a, acc, t)| MessageRef {
                time_ns: *t,
                event: "receive".into(),
                from: Some(*a),
                to: Some(from),
                text: format!("promise key={key} ballot={ballot} accepted={acc:?}"),
            })
            .collect();
        witness.push(proposal(self));
        self.flag(
            AnomalyKind::WrongValueProposed,
            Some(key.to_string()),
            None,
            format!(
                "node {from} proposed {value} for register {key} in ballot {ballot}, but its promises reported {required} accepted in ballot {highest}, the highest"
            ),
            witness,
        );
    }

    /// A leader's first accept or heartbeat in `ballot` ends its phase 1: the
    /// promises taken in by then are the ones its proposals must respect.
    fn end_phase_one(&mut self, from: NodeId, ballot: Ballot) {
        let leader = (from, ballot);
        if self.log_required.contains_key(&leader) {
            return;
        }
        let promises = self.log_promises.remove(&leader).unwrap_or_default();
        let mut per_slot: Map<Slot, Reports<BatchId>> = Map::default();
        for (acceptor, entries, t) in &promises {
            for (s, b, batch) in entries {
                per_slot
                    .entry(*s)
                    .or_default()
                    .reported
                    .push((*b, *batch, *acceptor, *t));
            }
        }
        // Walked in any order: each slot only adds to the counts.
        for (s, reports) in &per_slot {
            let own_best = self
                .own_log
                .get(&(from, *s))
                .and_then(|v| {
                    v.iter()
                        .filter_map(|(b, x)| Some((b.filter(|b| *b < ballot)?, *x)))
                        .max_by_key(|(b, _)| *b)
                })
                .map(|(_, x)| x);
            if reports.disagree(own_best) {
                self.coverage.reached("promises_disagreed");
            }
            if let Some((Some(b), _)) = reports.required() {
                let had = self.log_accepted_by.get(&(*s, b)).map_or(0, Acceptors::len);
                if had < self.quorum {
                    self.coverage.reached("minority_slot_recovered");
                }
            }
        }
        if self.in_flight.values().any(|owner| *owner != from) {
            self.coverage.reached("leader_change_with_slots_in_flight");
        }
        self.log_required.insert(leader, per_slot);
    }

    /// Rule 3 for the log: the first accept of (ballot, slot) by `from`.
    fn log_accept(&mut self, from: NodeId, ballot: Ballot, slot: Slot, batch: BatchId) {
        let leader = (from, ballot);
        self.in_flight.entry(slot).or_insert(from);
        let id = (from, ballot, slot);
        if let Some(first) = self.log_proposed.get(&id) {
            if *first != batch {
                let r = self.at(
                    "propose",
                    Some(from),
                    None,
                    format!("log-accept ballot={ballot} slot={slot} batch=#{batch:016x}"),
                );
                self.flag(
                    AnomalyKind::WrongValueProposed,
                    None,
                    Some(slot),
                    format!("node {from} proposed two batches for slot {slot} in ballot {ballot}"),
                    vec![r],
                );
            }
            return;
        }
        self.log_proposed.insert(id, batch);
        self.log_proposed_in
            .entry((from, slot))
            .or_default()
            .push((ballot, batch));
        let Some(reports) = self.log_required.get(&leader).and_then(|m| m.get(&slot)) else {
            return; // nobody reported the slot: the leader is free
        };
        let Some((highest, required)) = reports.required() else {
            return;
        };
        if batch == required {
            return;
        }
        // The leader's own acceptor reports without a message.
        let own_ok = self.own_log.get(&(from, slot)).is_some_and(|v| {
            v.iter().any(|(b, x)| {
                *x == batch
                    && match (b, highest) {
                        (None, _) => true,
                        (Some(b), Some(h)) => *b >= h && *b < ballot,
                        (Some(_), None) => false,
                    }
            })
        });
        if own_ok {
            return;
        }
        let witness: Vec<MessageRef> = reports
            .reported
            .iter()
            .map(|(b, x, a, t)| MessageRef {
                time_ns: *t,
                event: "receive".into(),
                from: Some(*a),
                to: Some(from),
                text: format!(
                    "log-promise ballot={ballot}: slot {slot} accepted in {b:?}, batch #{x:016x}"
                ),
            })
            .chain(std::iter::once(self.at(
                "propose",
                Some(from),
                None,
                format!("log-accept ballot={ballot} slot={slot} batch=#{batch:016x}"),
            )))
            .collect();
        let was = match highest {
            None => "reported as chosen".to_string(),
            Some(h) => format!("accepted in ballot {h}, the highest reported"),
        };
        self.flag(
            AnomalyKind::WrongValueProposed,
            None,
            Some(slot),
            format!(
                "node {from} proposed batch #{batch:016x} for slot {slot} in ballot {ballot}, but its promises reported batch #{required:016x} {was}"
            ),
            witness,
        );
    }

    /// Rule 4: one value per register. `here` makes the witness of this learning,
    /// asked only when it is kept.
    fn learn_register(&mut self, key: &str, value: i64, here: impl Fn(&Self) -> Seen) {
        let k = self.key(key);
        match self.reg_learned.get(&k) {
            None => {
                let here = here(self);
                self.reg_learned.insert(k, (value, here));
            }
            Some((v, there)) if *v != value => {
                let (v, there) = (*v, there.clone());
                let here = here(self);
                self.flag(
                    AnomalyKind::ConflictingLearn,
                    Some(key.to_string()),
                    None,
                    format!("register {key} was learned as {v} and as {value}"),
                    vec![there.message_ref(), here.message_ref()],
                );
            }
            Some(_) => {}
        }
    }

    /// Rule 4: one batch per slot. `here` makes the witness of this learning,
    /// asked only when it is kept.
    fn learn_slot(&mut self, slot: Slot, batch: BatchId, here: impl Fn(&Self) -> Seen) {
        match self.log_learned.get(&slot) {
            None => {
                let here = here(self);
                self.log_learned.insert(slot, (batch, here));
            }
            Some((b, there)) if *b != batch => {
                let (b, there) = (*b, there.clone());
                let here = here(self);
                self.flag(
                    AnomalyKind::ConflictingLearn,
                    None,
                    Some(slot),
                    format!(
                        "slot {slot} was learned as batch #{b:016x} and as batch #{batch:016x}"
                    ),
                    vec![there.message_ref(), here.message_ref()],
                );
            }
            Some(_) => {}
        }
    }

    /// The verdict: invalid with the broken rules' anomalies, valid otherwise.
    pub fn finish(mut self) -> (CheckReport, Coverage) {
        self.verdict()
    }

    /// [`Invariants::finish`], leaving the state behind (for a thread that hands the
    /// verdict over before it frees the state).
    pub fn verdict(&mut self) -> (CheckReport, Coverage) {
        let summary = if self.wire {
            format!(
                "{} messages from the wire; {} rules broken; {} registers and {} slots announced (promise-regressed, accepted-below-promise and conflicting-learn judged; wrong-value-proposed and chosen-without-quorum need each node's steps, which chaos sim sees)",
                self.events,
                self.anomalies.len(),
                self.reg_learned.len(),
                self.log_learned.len()
            )
        } else {
            format!(
                "{} events; {} rules broken; {} registers and {} slots learned; situations never reached: {}",
                self.events,
                self.anomalies.len(),
                self.reg_learned.len(),
                self.log_learned.len(),
                self.coverage.never_reached_words()
            )
        };
        (
            CheckReport::decided("protocol", summary, std::mem::take(&mut self.anomalies)),
            std::mem::take(&mut self.coverage),
        )
    }
}

/// Why a line of a message trace or a journal cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{file} line {line}: {why}")]
pub struct TraceError {
    pub file: String,
    pub line: usize,
    pub why: String,
}

/// Reads one journal in order. A kill can cut the node's last write short: a line
/// that does not parse is skipped when the journal ends after it or the node's next
/// start follows it, and is an error anywhere else.
struct JournalReader<R> {
    name: String,
    lines: std::io::Lines<R>,
    line_no: usize,
    /// A line read ahead while deciding whether a bad line was torn.
    ahead: Option<(usize, String)>,
}

impl<R: std::io::BufRead> JournalReader<R> {
    fn next_line(&mut self) -> Result<Option<(usize, String)>, TraceError> {
        if let Some(l) = self.ahead.take() {
            return Ok(Some(l));
        }
        loop {
            let Some(line) = self.lines.next() else {
                return Ok(None);
            };
            self.line_no += 1;
            let line = line.map_err(|e| TraceError {
                file: self.name.clone(),
                line: self.line_no,
                why: e.to_string(),
            })?;
            if !line.trim().is_empty() {
                return Ok(Some((self.line_no, line)));
            }
        }
    }

    fn next_event(&mut self) -> Result<Option<JournalLine>, TraceError> {
        loop {
            let Some((no, line)) = self.next_line()? else {
                return Ok(None);
            };
            match serde_json::from_str::<JournalLine>(&line) {
                Ok(entry) => return Ok(Some(entry)),
                Err(e) => {
                    let next = self.next_line()?;
                    let torn = match &next {
                        None => true,
                        Some((_, l)) => serde_json::from_str::<JournalLine>(l)
                            .is_ok_and(|j| matches!(j.event, Event::Restart { .. })),
                    };
                    if !torn {
                        return Err(TraceError {
                            file: self.name.clone(),
                            line: no,
                            why: e.to_string(),
                        });
                    }
                    self.ahead = next;
                }
            }
        }
    }
}

/// Judges the journals of a real run's nodes (one per node, each in the order its
/// node stepped), merged by time, with every rule, as the simulation judges its
/// steps; `n` is the cluster's size. `Ok(None)`: no journal has an event.
pub fn check_journals<R: std::io::BufRead>(
    journals: Vec<(String, R)>,
    n: usize,
) -> Result<Option<(CheckReport, Coverage)>, TraceError> {
    use std::cmp::Reverse;
    let mut readers: Vec<JournalReader<R>> = journals
        .into_iter()
        .map(|(name, r)| JournalReader {
            name,
            lines: r.lines(),
            line_no: 0,
            ahead: None,
        })
        .collect();
    let mut heads: Vec<Option<JournalLine>> = Vec::with_capacity(readers.len());
    let mut queue = std::collections::BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        let head = r.next_event()?;
        if let Some(h) = &head {
            queue.push(Reverse((h.t, i)));
        }
        heads.push(head);
    }
    let mut rules = Invariants::new(n);
    let mut any = false;
    while let Some(Reverse((_, i))) = queue.pop() {
        let entry = heads[i].take().expect("a queued journal has a head");
        any = true;
        rules.observe(entry.t, &entry.event);
        heads[i] = readers[i].next_event()?;
        if let Some(h) = &heads[i] {
            queue.push(Reverse((h.t, i)));
        }
    }
    Ok(any.then(|| rules.finish()))
}

/// Judges a message trace of real processes (messages.jsonl, docs/run-directory.md):
/// every line that carries its message (`msg`) is a send by `from` to `to` at
/// `time_ns`; `restarts` are (time, node), in time order, from the history.
/// `Ok(None)`: the trace carries no messages, so nothing is judged.
pub fn check_wire<R: std::io::BufRead>(
    trace: R,
    restarts: &[(u64, NodeId)],
) -> Result<Option<CheckReport>, TraceError> {
    let mut rules = Invariants::wire();
    let mut restarts = restarts.iter().peekable();
    let mut any = false;
    for (i, line) in trace.lines().enumerate() {
        let bad = |why: String| TraceError {
            file: "messages.jsonl".into(),
            line: i + 1,
            why,
        };
        let line = line.map_err(|e| bad(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let Some(text) = entry.get("msg").and_then(|m| m.as_str()) else {
            continue;
        };
        let field = |name: &str| {
            entry
                .get(name)
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| bad(format!("no {name}")))
        };
        let node = |name: &str| {
            NodeId::try_from(field(name)?).map_err(|_| bad(format!("{name} is not a node id")))
        };
        let (from, to, time_ns) = (node("from")?, node("to")?, field("time_ns")?);
        // A message the rules cannot read is the node's business, not the trace's.
        let Some(msg) = wire_msg(text) else {
            continue;
        };
        any = true;
        while let Some((t, node)) = restarts.next_if(|(t, _)| *t <= time_ns) {
            rules.observe(*t, &Event::Restart { node: *node });
        }
        rules.observe(time_ns, &Event::Send { from, to, msg });
    }
    Ok(any.then(|| rules.finish().0))
}

/// A peer message's wire text (docs/protocol.md) as the rules see it.
fn wire_msg(text: &str) -> Option<Msg> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(text).ok()?;
    let u = |f: &str| v.get(f).and_then(Value::as_u64);
    let key = || {
        v.get("key")
            .and_then(Value::as_str)
            .map(paxos_trace::Key::from)
    };
    Some(match v.get("type")?.as_str()? {
        "promise" => Msg::Promise {
            key: key()?,
            ballot: u("ballot")?,
            accepted: v
                .get("accepted")
                .and_then(Value::as_array)
                .and_then(|a| Some((a.first()?.as_u64()?, a.get(1)?.as_i64()?))),
        },
        "accepted" => Msg::Accepted {
            key: key()?,
            ballot: u("ballot")?,
        },
        "decided" => Msg::Decided {
            key: key()?,
            value: v.get("value").and_then(Value::as_i64)?,
        },
        "log-promise" => Msg::LogPromise {
            ballot: u("ballot")?,
            entries: Vec::new(),
        },
        "log-accepted" => Msg::LogAccepted {
            ballot: u("ballot")?,
            slot: u("slot")?,
        },
        "chosen" => Msg::Chosen {
            entries: v
                .get("entries")?
                .as_array()?
                .iter()
                .filter_map(|e| {
                    let e = e.as_array()?;
                    Some((e.first()?.as_u64()?, fnv(&e.get(1)?.to_string())))
                })
                .collect(),
        },
        _ => return None,
    })
}

/// FNV-1a of a batch's canonical JSON text (object keys sorted): its fingerprint on
/// the wire.
fn fnv(text: &str) -> BatchId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A message in a line.
pub fn describe(msg: &Msg) -> String {
    match msg {
        Msg::Promise {
            key,
            ballot,
            accepted,
        } => format!("promise key={key} ballot={ballot} accepted={accepted:?}"),
        Msg::Accept { key, ballot, value } => {
            format!("accept key={key} ballot={ballot} value={value}")
        }
        Msg::Accepted { key, ballot } => format!("accepted key={key} ballot={ballot}"),
        Msg::Decided { key, value } => format!("decided key={key} value={value}"),
        Msg::LogPromise { ballot, entries } => {
            format!("log-promise ballot={ballot} ({} entries)", entries.len())
        }
        Msg::LogAccept {
            ballot,
            slot,
            batch,
        } => format!("log-accept ballot={ballot} slot={slot} batch=#{batch:016x}"),
        Msg::LogAccepted { ballot, slot } => format!("log-accepted ballot={ballot} slot={slot}"),
        Msg::Chosen { entries } => format!("chosen ({} entries)", entries.len()),
        Msg::Commit { ballot, commit } => format!("commit ballot={ballot} commit={commit}"),
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
