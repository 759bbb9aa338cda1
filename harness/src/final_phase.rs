//! The final phase of a run: heal every fault, then ask for liveness and collect what
//! the nodes learned. Every node must answer within the grace period; then every KV
//! key of the plan is read through every node (recorded ops), and each node's dump is
//! stored in final/.

use std::sync::Arc;
use std::time::Duration;

use checker::history::Outcome;
use results::{Plan, RunDir};
use serde_json::json;

use crate::recorder::Recorder;
use crate::system::{ClientOp, NodeId, System};
use crate::workload::perform;

/// How long the final phase waits for one node's dump (it holds the whole log).
pub const DUMP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the final phase found.
pub struct FinalPhase {
    /// `Err`: which nodes did not answer within the grace period.
    pub liveness: Result<(), String>,
    /// Nodes whose dump could not be fetched, and why.
    pub missing_dumps: Vec<(NodeId, String)>,
}

/// Heals the network, resumes paused nodes and restarts dead ones, and records it as
/// the final `heal` event.
pub async fn heal_everything<S: System>(
    system: &Arc<S>,
    recorder: &Recorder,
) -> Result<(), String> {
    let s = system.clone();
    let (resumed, restarted, failed) = tokio::task::spawn_blocking(move || {
        let mut failed = Vec::new();
        for r in [s.links().heal(), s.links().restore()] {
            if let Err(e) = r {
                failed.push(e);
            }
        }
        let (mut resumed, mut restarted) = (Vec::new(), Vec::new());
        for id in 1..=s.nodes() as NodeId {
            if s.is_paused(id) && nemesis::Nodes::resume(&*s, id) == Ok(true) {
                resumed.push(id);
            }
            if !s.is_running(id) {
                match s.start(id) {
                    Ok(()) => restarted.push(id),
                    Err(e) => failed.push(e),
                }
            }
        }
        (resumed, restarted, failed)
    })
    .await
    .map_err(|e| format!("final heal failed: {e}"))?;
    recorder.nemesis(
        "heal",
        json!({"final": true, "resumed": resumed, "restarted": restarted, "outcome": "installed"}),
    );
    match failed.first() {
        None => Ok(()),
        Some(e) => Err(format!("final heal: {e}")),
    }
}

/// Liveness, final reads and dumps.
pub async fn run<S: System>(
    plan: &Plan,
    dir: &RunDir,
    system: &Arc<S>,
    recorder: &Recorder,
) -> FinalPhase {
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(plan.grace_s);
    let timeout = Duration::from_millis(plan.op_timeout_ms);
    let mut silent = Vec::new();
    for id in 1..=plan.nodes as NodeId {
        if !node_answers(plan, &**system, id, deadline, timeout, recorder).await {
            silent.push(id);
        }
    }
    if plan.workload.has_kv() {
        for id in (1..=plan.nodes as NodeId).filter(|id| !silent.contains(id)) {
            final_reads(plan, &**system, id, timeout, recorder).await;
        }
    }
    let missing_dumps = fetch_dumps(plan, dir, system).await;
    let liveness = if silent.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "nodes {silent:?} did not answer within the {} s grace period after the final heal",
            plan.grace_s
        ))
    };
    FinalPhase {
        liveness,
        missing_dumps,
    }
}

/// Every KV key of the plan, read through node `id` (recorded ops).
async fn final_reads<S: System>(
    plan: &Plan,
    system: &S,
    id: NodeId,
    timeout: Duration,
    recorder: &Recorder,
) {
    let Some(mut client) = system.connect(id).await else {
        return;
    };
    let process = recorder.new_process();
    for key in &plan.kv_keys {
        let op = ClientOp::Read { key: key.clone() };
        let done = perform(&mut client, &op, process, id, recorder, timeout).await;
        if done.reconnect {
            match system.connect(id).await {
                Some(c) => client = c,
                None => return,
            }
        }
    }
}

/// Each node's dump, fetched from every node at once.
async fn fetch_dumps<S: System>(
    plan: &Plan,
    dir: &RunDir,
    system: &Arc<S>,
) -> Vec<(NodeId, String)> {
    let mut fetches = tokio::task::JoinSet::new();
    for id in 1..=plan.nodes as NodeId {
        let path = dir.file(&format!("final/n{id}.json"));
        let s = system.clone();
        fetches.spawn(async move { (id, s.dump(id, &path, DUMP_TIMEOUT).await) });
    }
    let mut missing = Vec::new();
    while let Some(done) = fetches.join_next().await {
        match done {
            Ok((id, Err(why))) => missing.push((id, why)),
            Ok((_, Ok(_))) => {}
            Err(e) => missing.push((0, format!("a dump task failed: {e}"))),
        }
    }
    missing.sort();
    missing
}

/// The op that asks node `id` whether it serves: a read of the plan's first KV key,
/// or, for a register workload, a propose on a fresh register.
pub fn liveness_op(plan: &Plan, id: NodeId) -> ClientOp {
    match plan.kv_keys.first() {
        Some(key) if plan.workload.has_kv() => ClientOp::Read { key: key.clone() },
        _ => ClientOp::Propose {
            key: format!("final-n{id}"),
            value: -i64::from(id),
        },
    }
}

/// How long a final-phase client waits before asking a node again.
pub const RETRY: Duration = Duration::from_millis(100);

/// Polls node `id` with a recorded op until one succeeds or the deadline passes: a
/// read of the plan's first KV key, or, for a register workload, a propose on a fresh
/// register.
async fn node_answers<S: System>(
    plan: &Plan,
    system: &S,
    id: NodeId,
    deadline: tokio::time::Instant,
    timeout: Duration,
    recorder: &Recorder,
) -> bool {
    let op = liveness_op(plan, id);
    let mut process = recorder.new_process();
    while tokio::time::Instant::now() < deadline {
        let Some(mut client) = system.connect(id).await else {
            tokio::time::sleep(RETRY).await;
            continue;
        };
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let done = perform(&mut client, &op, process, id, recorder, timeout.min(left)).await;
            match done.outcome {
                Outcome::Ok => return true,
                Outcome::Info => {
                    process = recorder.new_process();
                    break;
                }
                Outcome::Fail if done.reconnect => break,
                Outcome::Fail => tokio::time::sleep(RETRY).await,
            }
        }
    }
    false
}
