//! The plan of a run: everything needed to run it again (DESIGN.md §6, plan.json).
//! Written before the run starts; `chaos replay` reads it back.

use std::path::PathBuf;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
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

/// A fault the nemesis executes at `at_ms` after the workload starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledFault {
    pub at_ms: u64,
    pub fault: Fault,
    /// Node ids the fault applies to.
    pub targets: Vec<u32>,
}

/// The faults the run can execute today. Seeded schedule generation and the richer
/// vocabulary (shapes of partitions, link faults) belong to the nemesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL the targets' process groups.
    Kill,
    /// Start the targets again on their data directories.
    Restart,
    /// SIGSTOP the targets.
    Pause,
    /// SIGCONT the targets.
    Resume,
    /// Cut every link between the targets and the other nodes, both ways.
    Isolate,
    /// Restore every link.
    Heal,
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
    pub schedule: Vec<ScheduledFault>,
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

/// A named random stream derived from the run's seed, so that changing one knob (say,
/// the number of clients) does not reshuffle the others (DESIGN.md §8).
pub fn substream(seed: u64, name: &str) -> ChaCha8Rng {
    // FNV-1a of the name, mixed with the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(seed ^ h.rotate_left(17))
}
