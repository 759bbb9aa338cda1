//! result.json: the machine-readable outcome of a run (documented in
//! docs/result-schema.md, with a JSON Schema in docs/result.schema.json).
//!
//! Version 1 is what the first runs wrote; every field added since has a default, so
//! an old result.json still reads and renders. A reader refuses only a version newer
//! than it knows.

use std::collections::BTreeMap;

use checker::CheckReport;
use checker::stats::Stats;
use nemesis::net::LinkStats;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::faults::FaultSummary;

/// The version this code writes.
pub const SCHEMA_VERSION: u32 = 2;

/// The overall verdict of the safety checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }

    pub fn of(v: checker::Verdict) -> Verdict {
        match v {
            checker::Verdict::Valid | checker::Verdict::Skipped => Verdict::Valid,
            checker::Verdict::Invalid => Verdict::Invalid,
            checker::Verdict::Unknown => Verdict::Unknown,
        }
    }
}

/// The exit codes of DESIGN.md §7.
pub mod exit {
    pub const VALID: u8 = 0;
    pub const INVALID: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNKNOWN: u8 = 3;
    pub const LIVENESS: u8 = 4;
    pub const HARNESS: u8 = 5;

    /// What an exit code means, in the words the summary and the report use.
    pub fn meaning(code: u8) -> &'static str {
        match code {
            VALID => "valid: every check passed",
            INVALID => "invalid: a safety violation was found",
            UNKNOWN => "unknown: a check could not decide",
            LIVENESS => "liveness failure: the cluster did not recover after the final heal",
            USAGE => "usage error",
            _ => "harness failure: the test itself broke",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Liveness {
    /// Whether the final phase got as far as asking.
    pub checked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where the time of a run went, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Durations {
    /// Network layer and nodes up.
    #[serde(default)]
    pub startup_s: f64,
    /// The time limit (less if interrupted).
    #[serde(default)]
    pub workload_s: f64,
    /// Stopping clients, healing, recovery, final reads, dumps, stopping nodes.
    #[serde(default)]
    pub final_s: f64,
    /// Judging the history and the dumps.
    #[serde(default)]
    pub check_s: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    /// The `chaos` binary that wrote the file.
    pub chaos: String,
}

/// The whole of result.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub schema_version: u32,
    /// The verdict of the safety checks.
    pub verdict: Verdict,
    /// The exit code `chaos run` gave (DESIGN.md §7); it also reflects liveness,
    /// interruption and harness failures.
    pub exit_code: u8,
    pub seed: u64,
    pub name: String,
    /// When the run started, UTC, RFC 3339.
    #[serde(default)]
    pub started_at: Option<String>,
    pub run_dir: String,
    /// The command that runs this plan again from scratch.
    pub reproduce: String,
    /// The command that re-runs the stored plan (`chaos replay`).
    pub replay: String,
    /// plan.json as it was run.
    pub plan: Value,
    #[serde(default)]
    pub harness_failure: Option<String>,
    #[serde(default)]
    pub liveness: Liveness,
    #[serde(default)]
    pub interrupted: bool,
    /// The run did not finish (no result.json was written by `chaos run`); this file
    /// was made by `chaos report` from what the run left behind.
    #[serde(default)]
    pub incomplete: bool,
    #[serde(default)]
    pub notes: Vec<String>,
    /// One entry per check, with its anomalies and their witness ops.
    #[serde(default)]
    pub checks: Option<Vec<CheckReport>>,
    /// Op counts, latency percentiles, throughput.
    #[serde(default)]
    pub stats: Option<Stats>,
    #[serde(default)]
    pub faults: FaultSummary,
    /// Message counts per directed link and message type.
    #[serde(default, deserialize_with = "links_or_null")]
    pub links: Vec<LinkStats>,
    #[serde(default)]
    pub durations: Durations,
    #[serde(default)]
    pub versions: Versions,
    #[serde(default)]
    pub harness_peak_rss_mb: Option<f64>,
}

/// Version 1 wrote `null` for a run that never started its network.
fn links_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<LinkStats>, D::Error> {
    Ok(Option::<Vec<LinkStats>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("result.json is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("result.json has schema version {0}; this chaos reads up to {SCHEMA_VERSION}")]
    TooNew(u32),
}

impl RunResult {
    pub fn parse(text: &str) -> Result<RunResult, SchemaError> {
        let r: RunResult = serde_json::from_str(text)?;
        if r.schema_version > SCHEMA_VERSION {
            return Err(SchemaError::TooNew(r.schema_version));
        }
        Ok(r)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a RunResult always serialises")
    }

    /// The anomalies of every check, in check order.
    pub fn anomalies(&self) -> impl Iterator<Item = (&CheckReport, &checker::Anomaly)> {
        self.checks
            .iter()
            .flatten()
            .flat_map(|c| c.anomalies.iter().map(move |a| (c, a)))
    }

    /// Ops by outcome over every f.
    pub fn outcome_counts(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for by in self.stats.iter().flat_map(|s| s.counts.values()) {
            for (k, n) in by {
                *out.entry(k.clone()).or_default() += n;
            }
        }
        out
    }

    /// A plan field as text, for the report's parameter table.
    pub fn plan_field(&self, name: &str) -> String {
        match &self.plan[name] {
            Value::Null => "-".into(),
            Value::String(s) => s.clone(),
            Value::Array(a) if a.is_empty() => "-".into(),
            Value::Array(a) => a
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(" "),
            v => v.to_string(),
        }
    }
}
