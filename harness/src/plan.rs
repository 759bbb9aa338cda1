//! The plan of a run: everything needed to run it again (DESIGN.md §6, plan.json).
//! Written before the run starts; `chaos replay` reads it back.

use std::path::PathBuf;

use nemesis::{FaultKinds, ScheduledFault};
use serde::{Deserialize, Serialize};

/// Version of the plan.json format.
pub const PLAN_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Contended proposals on write-once registers (Basic Paxos).
    Register,
    /// Reads, writes and cas on a key-value store (Multi-Paxos).
    Kv,
    /// Half the clients on each.
    Both,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Kv => "kv",
            Workload::Both => "both",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    pub name: String,
    pub seed: u64,
    pub nodes: usize,
    pub workload: Workload,
    pub time_limit_s: f64,
    pub concurrency: usize,
    /// Total ops/s over all clients; 0 = as fast as possible.
    pub rate: f64,
    pub keys: usize,
    /// `None`: the bundled node (`chaos node ...` from the same executable).
    pub node_bin: Option<PathBuf>,
    pub node_args: Vec<String>,
    pub grace_s: f64,
    pub op_timeout_ms: u64,
    /// The fault kinds the schedule was generated from (`--nemesis`).
    pub nemesis: FaultKinds,
    pub nemesis_interval_s: f64,
    /// Generated from the seed's `nemesis` stream, or given with `--schedule`.
    pub schedule: Vec<ScheduledFault>,
    /// Whether `schedule` came from a `--schedule` file rather than the seed.
    #[serde(default)]
    pub explicit_schedule: bool,
    /// Write messages.jsonl (every peer message and its fate).
    #[serde(default)]
    pub trace_messages: bool,
}

impl Plan {
    /// The `chaos run` command line that runs this plan again.
    pub fn command_line(&self) -> String {
        let mut parts = vec![
            "chaos run".to_string(),
            format!("--seed {}", self.seed),
            format!("--nodes {}", self.nodes),
            format!("--workload {}", self.workload.name()),
            format!("--time-limit {}", self.time_limit_s),
            format!("--concurrency {}", self.concurrency),
            format!("--rate {}", self.rate),
            format!("--keys {}", self.keys),
            format!("--grace {}", self.grace_s),
            format!("--op-timeout-ms {}", self.op_timeout_ms),
            format!("--name {}", shell_quote(&self.name)),
            format!("--nemesis {}", self.nemesis.describe()),
            format!("--nemesis-interval {}", self.nemesis_interval_s),
        ];
        if let Some(bin) = &self.node_bin {
            parts.push(format!(
                "--node-bin {}",
                shell_quote(&bin.display().to_string())
            ));
        }
        for arg in &self.node_args {
            parts.push(format!("--node-arg={}", shell_quote(arg)));
        }
        if self.trace_messages {
            parts.push("--trace-messages".into());
        }
        if self.explicit_schedule {
            parts.push("--schedule <the schedule in plan.json>".into());
        }
        parts.join(" ")
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

pub use nemesis::substream;
