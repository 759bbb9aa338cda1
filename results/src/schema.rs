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
use crate::plan::Plan;

/// The version this code writes.
pub const SCHEMA_VERSION: u32 = 2;

/// The overall verdict of the safety checks is the checker's own type: defined once.
/// An overall verdict is never `skipped` ([`Verdict::combine`] counts a skipped check
/// for nothing), so result.json's `verdict` is `valid`, `invalid` or `unknown`.
pub use checker::Verdict;

/// The exit codes of `chaos run`, `chaos check`, `chaos report`, `chaos replay` and
/// `chaos matrix` (docs/exit-codes.md). Defined once: every command and result.json use
/// this type, and [`ExitCode::worse`] is the one priority rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExitCode {
    /// Every check passed.
    Valid = 0,
    /// A safety violation was found.
    Invalid = 1,
    /// The command line was wrong.
    Usage = 2,
    /// A check could not decide (or the run was cut short).
    Unknown = 3,
    /// The cluster did not recover within the grace period after the final heal.
    Liveness = 4,
    /// The test itself broke.
    Harness = 5,
}

/// What made a run end as it did, for [`ExitCode::of_run`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RunEnd {
    pub verdict: Option<checker::Verdict>,
    pub harness_failed: bool,
    pub liveness_failed: bool,
    /// Interrupted, or a part of the judgement is missing (dumps not fetched).
    pub undecided: bool,
}

impl ExitCode {
    pub const ALL: [ExitCode; 6] = [
        ExitCode::Valid,
        ExitCode::Invalid,
        ExitCode::Usage,
        ExitCode::Unknown,
        ExitCode::Liveness,
        ExitCode::Harness,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<ExitCode> {
        ExitCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// What an exit code means, in the words the summary and the report use.
    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Valid => "valid: every check passed",
            ExitCode::Invalid => "invalid: a safety violation was found",
            ExitCode::Unknown => "unknown: a check could not decide",
            ExitCode::Liveness => {
                "liveness failure: the cluster did not recover after the final heal"
            }
            ExitCode::Usage => "usage error",
            ExitCode::Harness => "harness failure: the test itself broke",
        }
    }

    /// Priority when several hold: a violation beats a harness failure beats a
    /// liveness failure beats unknown beats a usage error beats valid.
    fn rank(self) -> u8 {
        match self {
            ExitCode::Valid => 0,
            ExitCode::Usage => 1,
            ExitCode::Unknown => 2,
            ExitCode::Liveness => 3,
            ExitCode::Harness => 4,
            ExitCode::Invalid => 5,
        }
    }

    /// The code that wins when both hold (several runs, or several conditions).
    pub fn worse(self, other: ExitCode) -> ExitCode {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// The exit code of a verdict alone (`chaos check`).
    pub fn of_verdict(v: checker::Verdict) -> ExitCode {
        match v {
            checker::Verdict::Valid | checker::Verdict::Skipped => ExitCode::Valid,
            checker::Verdict::Invalid => ExitCode::Invalid,
            checker::Verdict::Unknown => ExitCode::Unknown,
        }
    }

    /// The exit code of a run: every condition that holds, folded by [`Self::worse`].
    /// A run whose history could not be judged (`verdict` `None`) is unknown.
    pub fn of_run(end: RunEnd) -> ExitCode {
        let mut code = end.verdict.map_or(ExitCode::Unknown, ExitCode::of_verdict);
        for (holds, c) in [
            (end.harness_failed, ExitCode::Harness),
            (end.liveness_failed, ExitCode::Liveness),
            (end.undecided, ExitCode::Unknown),
        ] {
            if holds {
                code = code.worse(c);
            }
        }
        code
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c.code())
    }
}

impl Serialize for ExitCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for ExitCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = u8::deserialize(d)?;
        ExitCode::from_code(code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown exit code {code}")))
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
    /// The system under test, when it is not the bundled node: "etcd 3.4.23".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

/// What a simulated run did (`chaos sim`); absent for real runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Simulation {
    /// SHA-256 of history.jsonl: one plan gives one history, so equal hashes mean an
    /// exact replay.
    pub history_sha256: String,
    /// Virtual seconds from the first node's start to the last dump.
    pub virtual_s: f64,
    /// Wall-clock seconds the simulation took, check excluded (a wall-clock field).
    pub wall_s: f64,
    /// What happened inside, deterministic for a plan.
    pub counts: SimCounts,
}

/// Counts of what a simulated run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimCounts {
    /// Items the event loop processed.
    pub events: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_dropped: u64,
    pub messages_duplicated: u64,
    pub fsyncs: u64,
    pub crashes: u64,
    /// Crashes that lost every unsynced byte, tore the unsynced tail, or kept it.
    pub unsynced_lost: u64,
    pub unsynced_torn: u64,
    pub unsynced_kept: u64,
    /// Bits flipped in synced WAL records.
    pub corruptions: u64,
    /// Starts refused because the WAL was corrupt.
    pub refused_starts: u64,
    /// Campaigns: phase 1 with a new ballot, counted once per node and ballot.
    #[serde(default)]
    pub elections: u64,
}

/// The fields of result.json that depend on the wall clock or the machine; the rest
/// of a simulated run's result.json is a function of its plan.
pub const WALL_CLOCK_FIELDS: [&str; 6] = [
    "started_at",
    "run_dir",
    "replay",
    "durations",
    "harness_peak_rss_mb",
    "simulation.wall_s",
];

/// How a run ended, in the words every output shows: the terminal's headline, the
/// report's banner, result.json's `outcome`, junit.xml's properties and the index.
/// Made only by [`Outcome::of`], from the run's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// valid, invalid, unknown, interrupted, incomplete, liveness failure, harness
    /// failure, usage error.
    pub label: String,
    /// What that means for this run, in a clause.
    pub meaning: String,
    /// The colour family: valid, invalid or unknown.
    pub class: String,
}

/// What [`Outcome::of`] reads: a run's verdict, exit code and how it ended.
#[derive(Clone, Copy, Debug)]
pub struct RunState {
    pub verdict: Verdict,
    pub exit_code: ExitCode,
    pub interrupted: bool,
    pub incomplete: bool,
    pub harness_failed: bool,
}

impl Outcome {
    /// The one mapping from a run's state to words. The exit code decides the family
    /// (it is already the worst of verdict, liveness, harness and interruption); the
    /// flags say why a run that is not invalid is undecided.
    pub fn of(s: RunState) -> Outcome {
        let checks_so_far = match s.verdict {
            Verdict::Valid | Verdict::Skipped => "every check valid on what ran",
            Verdict::Invalid => "a safety violation was found in what ran",
            Verdict::Unknown => "a check could not decide",
        };
        let (label, meaning, class) = match s.exit_code {
            ExitCode::Valid => ("valid", "every check passed".to_string(), "valid"),
            ExitCode::Invalid => (
                "invalid",
                if s.interrupted || s.incomplete {
                    "a safety violation was found (in a run that did not finish)".to_string()
                } else if s.harness_failed {
                    "a safety violation was found (and the harness broke: see its failure)"
                        .to_string()
                } else {
                    "a safety violation was found".to_string()
                },
                "invalid",
            ),
            ExitCode::Harness => (
                "harness failure",
                "the test itself broke".to_string(),
                "invalid",
            ),
            ExitCode::Liveness => (
                "liveness failure",
                "the cluster did not recover after the final heal".to_string(),
                "invalid",
            ),
            ExitCode::Usage => (
                "usage error",
                "the run was not started".to_string(),
                "unknown",
            ),
            ExitCode::Unknown if s.incomplete => (
                "incomplete",
                format!(
                    "the run did not finish and left no result.json; judged from its files: {checks_so_far}"
                ),
                "unknown",
            ),
            ExitCode::Unknown if s.interrupted => (
                "interrupted",
                format!("stopped before its time limit; {checks_so_far} so far"),
                "unknown",
            ),
            ExitCode::Unknown if s.verdict == Verdict::Unknown => {
                ("unknown", "a check could not decide".to_string(), "unknown")
            }
            ExitCode::Unknown => (
                "unknown",
                "the checks passed but not every check could run in full (see the notes)"
                    .to_string(),
                "unknown",
            ),
        };
        Outcome {
            label: label.to_string(),
            meaning,
            class: class.to_string(),
        }
    }

    /// `LABEL: MEANING`, as the terminal's headline and the report's banner put it.
    pub fn headline(&self) -> String {
        format!("{}: {}", self.label, self.meaning)
    }
}

/// The whole of result.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub schema_version: u32,
    /// The verdict of the safety checks.
    pub verdict: Verdict,
    /// The exit code `chaos run` gave; it also reflects liveness, interruption and
    /// harness failures.
    pub exit_code: ExitCode,
    /// How the run ended in words ([`Outcome::of`] of the fields here; every output
    /// shows these).
    #[serde(default)]
    pub outcome: Outcome,
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
    pub plan: Plan,
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
    /// Present for simulated runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulation: Option<Simulation>,
    /// How often the run reached the situations the protocol's rules matter in; present
    /// when the rules were checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<checker::protocol::Coverage>,
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
    #[error("result.json's plan: {0}")]
    Plan(#[from] crate::plan::PlanError),
}

impl RunResult {
    /// The state [`Outcome::of`] reads.
    pub fn state(&self) -> RunState {
        RunState {
            verdict: self.verdict,
            exit_code: self.exit_code,
            interrupted: self.interrupted,
            incomplete: self.incomplete,
            harness_failed: self.harness_failure.is_some(),
        }
    }

    /// How the run ended, in words, from its state (not from the stored `outcome`,
    /// which older result.json files lack).
    pub fn words(&self) -> Outcome {
        Outcome::of(self.state())
    }

    pub fn parse(text: &str) -> Result<RunResult, SchemaError> {
        let mut r: RunResult = serde_json::from_str(text)?;
        if r.schema_version > SCHEMA_VERSION {
            return Err(SchemaError::TooNew(r.schema_version));
        }
        r.plan = r.plan.normalised()?;
        Ok(r)
    }

    /// result.json without its wall-clock fields ([`WALL_CLOCK_FIELDS`]): equal for
    /// two simulated runs of one plan.
    pub fn without_wall_clock(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("a result always serialises");
        for field in WALL_CLOCK_FIELDS {
            match field.split_once('.') {
                Some((outer, inner)) => {
                    if let Some(o) = v.get_mut(outer).and_then(|o| o.as_object_mut()) {
                        o.remove(inner);
                    }
                }
                None => {
                    if let Some(o) = v.as_object_mut() {
                        o.remove(field);
                    }
                }
            }
        }
        if !self.plan.made_by_flags() {
            // Its reproduce command names this run's own plan.json.
            if let Some(o) = v.as_object_mut() {
                o.remove("reproduce");
            }
        }
        v
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

    /// The first thing wrong, in one line: the first anomaly, the harness's failure, the
    /// liveness failure, or the first undecided check; `None` for a valid run.
    pub fn problem(&self) -> Option<String> {
        if self.exit_code == ExitCode::Valid {
            return None;
        }
        self.anomalies()
            .next()
            .map(|(c, a)| format!("{}: {}", c.name, a.message))
            .or_else(|| self.harness_failure.clone())
            .or_else(|| self.liveness.message.clone())
            .or_else(|| {
                self.checks.iter().flatten().find_map(|c| {
                    c.unknown
                        .first()
                        .map(|u| format!("{}: unknown: {u}", c.name))
                })
            })
            .or_else(|| self.interrupted.then(|| "interrupted".to_string()))
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
        let plan = serde_json::to_value(&self.plan).unwrap_or(Value::Null);
        match &plan[name] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_orders_the_exit_codes() {
        use ExitCode::*;
        let order = [Valid, Usage, Unknown, Liveness, Harness, Invalid];
        for (i, a) in order.iter().enumerate() {
            for b in &order[i..] {
                assert_eq!(a.worse(*b), *b, "{a:?} then {b:?}");
                assert_eq!(b.worse(*a), *b, "{b:?} then {a:?}");
            }
        }
        for c in ExitCode::ALL {
            assert_eq!(ExitCode::from_code(c.code()), Some(c));
        }
        assert_eq!(ExitCode::from_code(6), None);
    }

    #[test]
    fn a_run_ends_with_the_worst_of_what_held() {
        let run = |verdict, harness_failed, liveness_failed, undecided| {
            ExitCode::of_run(RunEnd {
                verdict,
                harness_failed,
                liveness_failed,
                undecided,
            })
        };
        let valid = Some(checker::Verdict::Valid);
        assert_eq!(run(valid, false, false, false), ExitCode::Valid);
        assert_eq!(run(valid, false, false, true), ExitCode::Unknown);
        assert_eq!(run(valid, false, true, true), ExitCode::Liveness);
        assert_eq!(run(valid, true, true, true), ExitCode::Harness);
        assert_eq!(
            run(Some(checker::Verdict::Invalid), true, true, true),
            ExitCode::Invalid,
            "a violation found is always reported"
        );
        assert_eq!(run(None, false, false, false), ExitCode::Unknown);
        assert_eq!(run(None, true, false, false), ExitCode::Harness);
        assert_eq!(
            run(Some(checker::Verdict::Skipped), false, false, false),
            ExitCode::Valid
        );
    }
}
