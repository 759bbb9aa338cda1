//! The run procedure: the steps of every run, written once and taken by every driver.
//!
//! A run starts every node, runs the workload and the fault schedule until the time
//! limit, lets the ops in flight end, heals everything, asks every node whether it
//! serves (liveness), reads every KV key through every node that does, and fetches
//! what each node learned. [`run`] is that sequence, over a small [`Driver`]: the
//! real engine ([`crate::engine`], processes on wall-clock time) and the simulation
//! ([`crate::sim`], cores on virtual time) are two drivers of it, so `chaos sim`'s
//! thousands of seeds test the procedure `chaos run` follows.
//!
//! The rules of the final heal are decided here, once, for every system:
//! - links are healed and restored, every clock is put back to real speed, paused
//!   nodes resume and dead ones start on their own data;
//! - a node that refuses its own durable state (a corrupt WAL or snapshot, which only
//!   the simulation makes) stays down, with a note, and liveness is judged on the
//!   others: refusing is what a correct node does;
//! - a node that exits or never becomes ready when restarted misbehaved: a note, and
//!   it counts as a node that did not answer (a liveness failure);
//! - the harness failing to do its part (a link it cannot heal, a program it cannot
//!   spawn) is a harness failure, and the final phase is not run on a half-healed
//!   cluster.

use std::time::Duration;

use checker::history::Outcome;
use results::Plan;
use serde_json::json;

use crate::recorder::Recorder;
use crate::vocab::{Blame, Completion, Failure, NodeId, WorkloadOp};

/// One step of the procedure, in the order taken: what a run did, for tests and
/// for the drivers' agreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Every node started, in id order.
    Start,
    /// The workload and the fault schedule, until the time limit.
    Workload,
    /// No new ops; those in flight end or time out.
    Drain,
    /// The final heal.
    Heal,
    /// Node `id` asked until it answers or the grace period ends.
    Liveness(NodeId),
    /// Every KV key read through node `id`.
    Reads(NodeId),
    /// Every node's final dump fetched.
    Dumps,
}

/// How a node stood after the final heal asked it to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restart {
    /// It was running.
    Up,
    /// It was down and started.
    Restarted,
    /// It refused its own durable state and stays down (why).
    Refused(String),
}

/// What the procedure needs from a way of running a system. Methods that act on
/// nodes report failures with their [`Blame`]; the procedure decides what each means.
pub trait Driver {
    /// A final-phase client's connection to one node.
    type Session;

    /// Starts every node in id order; the first that will not start ends the run.
    fn start_nodes(&mut self) -> Result<(), Failure>;
    /// Runs the workload and the fault schedule until the plan's time limit, or until
    /// the user interrupts the run (`true`).
    fn run_workload(&mut self) -> bool;
    /// Stops the workload and waits up to `wait` for the ops in flight.
    fn drain(&mut self, wait: Duration);
    /// Heals every cut link and restores every degraded one.
    fn heal_links(&mut self) -> Result<(), Failure>;
    /// Puts node `id`'s clock back to real speed; `true` when that restarted it.
    fn reset_clock(&mut self, id: NodeId) -> Result<bool, Failure>;
    /// Resumes node `id` if it is paused; `true` when it was.
    fn resume(&mut self, id: NodeId) -> Result<bool, Failure>;
    /// Starts node `id` on its own data if it is down.
    fn restart(&mut self, id: NodeId) -> Result<Restart, Failure>;
    /// Time since the run began, on the driver's clock.
    fn now(&self) -> Duration;
    fn sleep(&mut self, d: Duration);
    /// A client of node `id` for the final phase (it connects on its first call).
    fn open(&mut self, id: NodeId) -> Self::Session;
    /// Runs one recorded op through `session`, bounded by `timeout`. `None`: the node
    /// cannot be reached now, so nothing was invoked.
    fn call(
        &mut self,
        session: &mut Self::Session,
        op: &WorkloadOp,
        process: u64,
        timeout: Duration,
    ) -> Option<Completion>;
    /// Fetches every node's final dump; the nodes that gave none, and why (a dump
    /// the harness could not store is the harness's failure).
    fn dumps(&mut self) -> Vec<(NodeId, Failure)>;
}

/// What the procedure found, for the judgement.
#[derive(Debug, Default)]
pub struct Ran {
    pub steps: Vec<Step>,
    pub harness_failure: Option<String>,
    pub interrupted: bool,
    /// `None`: the run did not get as far as asking.
    pub liveness: Option<Result<(), String>>,
    pub notes: Vec<String>,
    /// Nodes whose dump could not be fetched, and why.
    pub missing_dumps: Vec<(NodeId, String)>,
}

/// How long a final-phase client waits before asking a node again.
pub const RETRY: Duration = Duration::from_millis(100);

/// How long the drain waits beyond the op timeout for the ops in flight.
const DRAIN_MARGIN: Duration = Duration::from_secs(2);

/// Takes `plan` through the driver's system, step by step.
pub fn run<D: Driver>(plan: &Plan, d: &mut D, recorder: &Recorder) -> Ran {
    let mut ran = Ran {
        steps: vec![Step::Start],
        ..Ran::default()
    };
    if let Err(e) = d.start_nodes() {
        ran.harness_failure = Some(e.what);
        return ran;
    }
    ran.steps.push(Step::Workload);
    ran.interrupted = d.run_workload();
    if ran.interrupted {
        ran.notes
            .push("interrupted: the run stopped early on SIGINT/SIGTERM".into());
    }
    ran.steps.push(Step::Drain);
    d.drain(Duration::from_millis(plan.op_timeout_ms) + DRAIN_MARGIN);
    ran.steps.push(Step::Heal);
    let healed = heal_everything(plan, d, recorder, &mut ran.notes);
    if let Some(why) = recorder.broken() {
        // The history has a hole from here on: the nodes are healed (nothing stays
        // paused or cut) but nothing more is asked of them, and the write error is
        // what the run says, before whatever it caused (a node that could not write
        // its own data on the same full disk).
        if let Err(also) = healed {
            ran.notes.push(format!("final heal: {also}"));
        }
        ran.harness_failure = Some(why);
        return ran;
    }
    let down = match healed {
        Ok(down) => down,
        Err(why) => {
            ran.harness_failure = Some(why);
            return ran;
        }
    };
    if !ran.interrupted {
        final_phase(plan, d, recorder, &down, &mut ran);
    }
    if let Some(why) = recorder.broken() {
        ran.harness_failure = Some(why);
    }
    ran
}

/// The nodes the final heal left down: those that refused their durable state, and
/// those that would not start.
#[derive(Debug, Default)]
struct Down {
    refused: Vec<NodeId>,
    failed: Vec<NodeId>,
}

impl Down {
    fn contains(&self, id: NodeId) -> bool {
        self.refused.contains(&id) || self.failed.contains(&id)
    }
}

/// The final heal, recorded as the final `heal` event. `Err`: the harness could not
/// do its part.
fn heal_everything<D: Driver>(
    plan: &Plan,
    d: &mut D,
    recorder: &Recorder,
    notes: &mut Vec<String>,
) -> Result<Down, String> {
    let mut failures: Vec<(Option<NodeId>, Failure)> = Vec::new();
    let mut down = Down::default();
    if let Err(e) = d.heal_links() {
        failures.push((None, e));
    }
    let (mut resumed, mut restarted) = (Vec::new(), Vec::new());
    for id in 1..=plan.nodes as NodeId {
        match d.reset_clock(id) {
            Ok(true) => restarted.push(id),
            Ok(false) => {}
            Err(e) => failures.push((Some(id), e)),
        }
        match d.resume(id) {
            Ok(true) => resumed.push(id),
            Ok(false) => {}
            Err(e) => failures.push((Some(id), e)),
        }
        match d.restart(id) {
            Ok(Restart::Up) => {}
            Ok(Restart::Restarted) => restarted.push(id),
            Ok(Restart::Refused(why)) => {
                notes.push(format!(
                    "node {id} {why}; it stays down, as a real node would"
                ));
                down.refused.push(id);
            }
            Err(e) => failures.push((Some(id), e)),
        }
    }
    let mut harness = Vec::new();
    for (id, e) in failures {
        match (e.blame, id) {
            (Blame::System, Some(id)) => {
                notes.push(format!(
                    "node {id} could not be restarted by the final heal, so it counts as not answering: {}",
                    e.what
                ));
                if !down.failed.contains(&id) {
                    down.failed.push(id);
                }
            }
            _ => harness.push(e.what),
        }
    }
    recorder.nemesis(
        "heal",
        json!({"final": true, "resumed": resumed, "restarted": restarted, "outcome": "installed"}),
    );
    match harness.first() {
        None => Ok(down),
        Some(e) => Err(format!("final heal: {e}")),
    }
}

/// Liveness within the grace period, the final reads, the dumps.
fn final_phase<D: Driver>(plan: &Plan, d: &mut D, recorder: &Recorder, down: &Down, ran: &mut Ran) {
    let deadline = d.now() + Duration::from_secs_f64(plan.grace_s);
    let timeout = Duration::from_millis(plan.op_timeout_ms);
    let mut silent = down.failed.clone();
    for id in 1..=plan.nodes as NodeId {
        if down.contains(id) {
            continue;
        }
        ran.steps.push(Step::Liveness(id));
        if !node_answers(plan, d, id, deadline, timeout, recorder) {
            silent.push(id);
        }
    }
    silent.sort_unstable();
    if !down.refused.is_empty() {
        ran.notes.push(format!(
            "nodes {:?} found their WAL or snapshot corrupt and refused to start, so liveness is judged on the others",
            down.refused
        ));
    }
    if plan.workload.has_kv() {
        for id in
            (1..=plan.nodes as NodeId).filter(|id| !silent.contains(id) && !down.contains(*id))
        {
            ran.steps.push(Step::Reads(id));
            final_reads(plan, d, id, timeout, recorder);
        }
    }
    ran.steps.push(Step::Dumps);
    // A node that refused its corrupt data has nothing to dump (a note says so).
    for (id, why) in d.dumps() {
        match why.blame {
            Blame::Harness => {
                ran.harness_failure
                    .get_or_insert(format!("node {id}'s final dump: {}", why.what));
            }
            _ if down.refused.contains(&id) => {}
            _ => ran.missing_dumps.push((id, why.what)),
        }
    }
    ran.missing_dumps.sort();
    ran.liveness = Some(if silent.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "nodes {silent:?} did not answer within the {} s grace period after the final heal",
            plan.grace_s
        ))
    });
}

/// The op that asks node `id` whether it serves: a read of the plan's first KV key
/// (in a transaction, for a transaction workload), or, for a register workload, a
/// propose on a fresh register.
pub fn liveness_op(plan: &Plan, id: NodeId) -> WorkloadOp {
    match plan.kv_keys.first() {
        Some(key) if plan.workload.has_kv() => WorkloadOp::Read { key: key.clone() },
        // A transaction that reads the first key of the clients' first generation.
        Some(key) if plan.workload.is_txn() => WorkloadOp::Txn {
            txn: vec![checker::history::TxnMop::Read {
                key: format!("{key}.0"),
                value: serde_json::Value::Null,
            }],
        },
        _ => WorkloadOp::Propose {
            key: format!("final-n{id}"),
            value: -i64::from(id),
        },
    }
}

/// Asks node `id` with a recorded op until one succeeds or the deadline passes. An
/// op of unknown outcome is the end of its process (a new one asks next).
fn node_answers<D: Driver>(
    plan: &Plan,
    d: &mut D,
    id: NodeId,
    deadline: Duration,
    timeout: Duration,
    recorder: &Recorder,
) -> bool {
    let op = liveness_op(plan, id);
    let mut session = d.open(id);
    let mut process = recorder.new_process();
    while d.now() < deadline {
        let left = deadline.saturating_sub(d.now());
        match d.call(&mut session, &op, process, timeout.min(left)) {
            None => d.sleep(RETRY),
            Some(done) => match done.outcome {
                Outcome::Ok => return true,
                Outcome::Info => process = recorder.new_process(),
                Outcome::Fail if done.reconnect => {}
                Outcome::Fail => d.sleep(RETRY),
            },
        }
    }
    false
}

/// Every KV key of the plan, read through node `id` (recorded ops), until the node
/// cannot be reached.
fn final_reads<D: Driver>(
    plan: &Plan,
    d: &mut D,
    id: NodeId,
    timeout: Duration,
    recorder: &Recorder,
) {
    let mut session = d.open(id);
    let process = recorder.new_process();
    for key in &plan.kv_keys {
        let op = WorkloadOp::Read { key: key.clone() };
        if d.call(&mut session, &op, process, timeout).is_none() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A driver on a counter clock whose nodes answer at once, with knobs for the
    /// ways a run goes wrong.
    #[derive(Default)]
    struct Scripted {
        now: Duration,
        interrupt: bool,
        start_fails: bool,
        links_fail: bool,
        /// Node 2 is down at the final heal and refuses its data / will not start.
        refuse_2: bool,
        fail_2: bool,
        /// Node 3's dump cannot be stored (the results disk is full).
        disk_full: bool,
        calls: Vec<NodeId>,
    }

    impl Driver for Scripted {
        type Session = NodeId;
        fn start_nodes(&mut self) -> Result<(), Failure> {
            if self.start_fails {
                return Err(Failure::harness("cannot spawn"));
            }
            Ok(())
        }
        fn run_workload(&mut self) -> bool {
            self.interrupt
        }
        fn drain(&mut self, _: Duration) {}
        fn heal_links(&mut self) -> Result<(), Failure> {
            if self.links_fail {
                return Err(Failure::harness("nft failed"));
            }
            Ok(())
        }
        fn reset_clock(&mut self, _: NodeId) -> Result<bool, Failure> {
            Ok(false)
        }
        fn resume(&mut self, _: NodeId) -> Result<bool, Failure> {
            Ok(false)
        }
        fn restart(&mut self, id: NodeId) -> Result<Restart, Failure> {
            match id {
                2 if self.refuse_2 => Ok(Restart::Refused("refused to start: bad crc".into())),
                2 if self.fail_2 => Err(Failure::system("node 2 exited during start-up")),
                _ => Ok(Restart::Up),
            }
        }
        fn now(&self) -> Duration {
            self.now
        }
        fn sleep(&mut self, d: Duration) {
            self.now += d;
        }
        fn open(&mut self, id: NodeId) -> NodeId {
            id
        }
        fn call(
            &mut self,
            id: &mut NodeId,
            _: &WorkloadOp,
            _: u64,
            _: Duration,
        ) -> Option<Completion> {
            self.now += Duration::from_millis(1);
            self.calls.push(*id);
            Some(Completion::ok(None))
        }
        fn dumps(&mut self) -> Vec<(NodeId, Failure)> {
            let mut missing = Vec::new();
            if self.refuse_2 || self.fail_2 {
                missing.push((2, Failure::system("node 2 is down")));
            }
            if self.disk_full {
                missing.push((3, Failure::harness("cannot write n3.json: no space")));
            }
            missing
        }
    }

    fn plan() -> Plan {
        let mut plan = crate::spec::PlanSpec {
            nodes: 3,
            workload: Some(results::Workload::Kv),
            seed: Some(1),
            ..crate::spec::PlanSpec::default()
        }
        .plan()
        .unwrap();
        plan.kv_keys = vec!["a".into(), "b".into()];
        plan
    }

    fn run_with(d: &mut Scripted) -> Ran {
        let recorder = Recorder::with_virtual_clock(Box::new(std::io::sink()), 1);
        run(&plan(), d, &recorder)
    }

    use Step::*;

    #[test]
    fn a_healthy_run_takes_every_step_in_order() {
        let ran = run_with(&mut Scripted::default());
        assert_eq!(
            ran.steps,
            [
                Start,
                Workload,
                Drain,
                Heal,
                Liveness(1),
                Liveness(2),
                Liveness(3),
                Reads(1),
                Reads(2),
                Reads(3),
                Dumps
            ]
        );
        assert_eq!(ran.liveness, Some(Ok(())));
        assert!(ran.harness_failure.is_none() && ran.notes.is_empty());
    }

    #[test]
    fn a_run_that_cannot_start_or_heal_stops_there_as_a_harness_failure() {
        let ran = run_with(&mut Scripted {
            start_fails: true,
            ..Scripted::default()
        });
        assert_eq!(ran.steps, [Start]);
        assert_eq!(ran.harness_failure.as_deref(), Some("cannot spawn"));
        let ran = run_with(&mut Scripted {
            links_fail: true,
            ..Scripted::default()
        });
        assert_eq!(ran.steps, [Start, Workload, Drain, Heal]);
        assert_eq!(
            ran.harness_failure.as_deref(),
            Some("final heal: nft failed")
        );
        assert_eq!(ran.liveness, None);
    }

    #[test]
    fn a_dump_the_harness_cannot_store_is_its_failure_not_the_nodes() {
        let ran = run_with(&mut Scripted {
            fail_2: true,
            disk_full: true,
            ..Scripted::default()
        });
        assert_eq!(
            ran.harness_failure.as_deref(),
            Some("node 3's final dump: cannot write n3.json: no space")
        );
        assert_eq!(ran.missing_dumps, [(2, "node 2 is down".to_string())]);
    }

    #[test]
    fn an_interrupted_run_heals_and_asks_nothing() {
        let ran = run_with(&mut Scripted {
            interrupt: true,
            ..Scripted::default()
        });
        assert_eq!(ran.steps, [Start, Workload, Drain, Heal]);
        assert!(ran.interrupted && ran.liveness.is_none());
        assert!(ran.notes[0].contains("interrupted"));
    }

    #[test]
    fn a_node_that_refuses_its_data_is_left_out_of_liveness_with_a_note() {
        let mut d = Scripted {
            refuse_2: true,
            ..Scripted::default()
        };
        let ran = run_with(&mut d);
        assert_eq!(
            ran.steps,
            [
                Start,
                Workload,
                Drain,
                Heal,
                Liveness(1),
                Liveness(3),
                Reads(1),
                Reads(3),
                Dumps
            ]
        );
        assert_eq!(ran.liveness, Some(Ok(())));
        assert!(ran.missing_dumps.is_empty(), "{:?}", ran.missing_dumps);
        assert!(ran.notes.iter().any(|n| n.contains("stays down")));
        assert!(!d.calls.contains(&2));
    }

    #[test]
    fn a_node_that_will_not_restart_fails_liveness_not_the_harness() {
        let ran = run_with(&mut Scripted {
            fail_2: true,
            ..Scripted::default()
        });
        assert!(ran.harness_failure.is_none());
        let why = ran.liveness.unwrap().unwrap_err();
        assert!(why.starts_with("nodes [2] did not answer"), "{why}");
        assert!(
            ran.notes
                .iter()
                .any(|n| n.contains("exited during start-up"))
        );
        assert_eq!(ran.missing_dumps, [(2, "node 2 is down".to_string())]);
        assert!(!ran.steps.contains(&Liveness(2)));
    }

    #[test]
    fn liveness_gives_up_at_the_grace_period() {
        struct Silent(Duration);
        impl Driver for Silent {
            type Session = ();
            fn start_nodes(&mut self) -> Result<(), Failure> {
                Ok(())
            }
            fn run_workload(&mut self) -> bool {
                false
            }
            fn drain(&mut self, _: Duration) {}
            fn heal_links(&mut self) -> Result<(), Failure> {
                Ok(())
            }
            fn reset_clock(&mut self, _: NodeId) -> Result<bool, Failure> {
                Ok(false)
            }
            fn resume(&mut self, _: NodeId) -> Result<bool, Failure> {
                Ok(false)
            }
            fn restart(&mut self, _: NodeId) -> Result<Restart, Failure> {
                Ok(Restart::Up)
            }
            fn now(&self) -> Duration {
                self.0
            }
            fn sleep(&mut self, d: Duration) {
                self.0 += d;
            }
            fn open(&mut self, _: NodeId) {}
            fn call(
                &mut self,
                _: &mut (),
                _: &WorkloadOp,
                _: u64,
                t: Duration,
            ) -> Option<Completion> {
                self.0 += t;
                Some(Completion::unknown(
                    &WorkloadOp::Read { key: "a".into() },
                    "client-timeout",
                    true,
                ))
            }
            fn dumps(&mut self) -> Vec<(NodeId, Failure)> {
                Vec::new()
            }
        }
        let recorder = Recorder::with_virtual_clock(Box::new(std::io::sink()), 1);
        let mut d = Silent(Duration::ZERO);
        let plan = plan();
        let ran = run(&plan, &mut d, &recorder);
        assert!(ran.liveness.unwrap().is_err());
        // Every node had its grace period, shared: the clock ends within one timeout of it.
        let grace = Duration::from_secs_f64(plan.grace_s);
        assert!(d.0 >= grace && d.0 <= grace + Duration::from_millis(plan.op_timeout_ms));
    }
}
