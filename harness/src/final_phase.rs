//! The real driver's final dumps: every node's dump, fetched at once and stored in
//! final/. The steps of the final phase themselves are the run procedure's
//! ([`crate::procedure`]).

use std::sync::Arc;
use std::time::Duration;

use results::{Plan, RunDir};

use crate::system::System;
use crate::vocab::{Failure, NodeId};

/// How long the final phase waits for one node's dump (it holds the whole log).
pub const DUMP_TIMEOUT: Duration = Duration::from_secs(30);

/// Each node's dump, fetched from every node at once; the nodes that gave none.
pub async fn fetch_dumps<S: System>(
    plan: &Plan,
    dir: &RunDir,
    system: &Arc<S>,
) -> Vec<(NodeId, Failure)> {
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
            Err(e) => missing.push((0, Failure::harness(format!("a dump task failed: {e}")))),
        }
    }
    missing.sort_by_key(|(id, _)| *id);
    missing
}
