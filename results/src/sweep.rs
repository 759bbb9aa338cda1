//! Sweeps over seeds (`chaos sweep`, `chaos merge`; docs/sweep.md): one record per run
//! in `sweep.jsonl`, the sweep's own description in `sweep.json`, and what both commands
//! write from the records (junit.xml, index.html, the text summary). Defined here once,
//! so a sweep and a merge of its shards write the same files from the same records.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use maud::{DOCTYPE, PreEscaped, html};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};

use crate::plan::{Mode, Plan};
use crate::schema::{ExitCode, Verdict};

/// The version of `sweep.jsonl` records and `sweep.json`.
pub const SWEEP_VERSION: u32 = 1;

/// The file of records, one JSON object per line, appended as runs end.
pub const RECORDS_FILE: &str = "sweep.jsonl";
/// The sweep's description, written at its start and rewritten at its end.
pub const META_FILE: &str = "sweep.json";

/// Which part of the seeds a sweep runs: seed `s` of `A..B` belongs to shard
/// `(s - A) mod count`. Interleaved, so every shard gets early and late seeds alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// From 0 (a Kubernetes completion index; a CI matrix value).
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether `seed` of a sweep starting at `first` is this shard's.
    pub fn holds(self, first: u64, seed: u64) -> bool {
        seed >= first && (seed - first) % u64::from(self.count) == u64::from(self.index)
    }

    /// This shard's seeds of `seeds`, in order (computed, not searched for: a range
    /// of billions costs nothing).
    pub fn seeds(self, seeds: std::ops::Range<u64>) -> impl Iterator<Item = u64> {
        (0..self.count_in(seeds.clone()))
            .map(move |i| seeds.start + u64::from(self.index) + i * u64::from(self.count))
    }

    /// How many of `seeds` are this shard's.
    pub fn count_in(self, seeds: std::ops::Range<u64>) -> u64 {
        let len = seeds.end.saturating_sub(seeds.start);
        len.saturating_sub(u64::from(self.index))
            .div_ceil(u64::from(self.count))
    }

    /// This shard's `i`-th seed of `seeds` (from 0), if it has that many.
    pub fn nth(self, seeds: std::ops::Range<u64>, i: u64) -> Option<u64> {
        (i < self.count_in(seeds.clone()))
            .then(|| seeds.start + u64::from(self.index) + i * u64::from(self.count))
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected I/N (shard I of N, from 0), got '{s}'"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("'{i}' is not a shard index"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("'{n}' is not a shard count"))?;
        if count == 0 {
            return Err("a sweep has at least one shard: N must be 1 or more".into());
        }
        if index >= count {
            return Err(format!(
                "shard {index} of {count} does not exist: shards are numbered 0 to {}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

/// Whether a failing seed fails again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Confirmation {
    /// A simulated run: the same seed gives the same run, every time.
    Exact,
    /// Re-run `runs` times; `failed` of them ended with the same exit code.
    Confirmed {
        runs: u32,
        failed: u32,
        /// The re-runs' directories, relative to the sweep directory (kept ones).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        run_dirs: Vec<String>,
    },
    /// Not re-run, and why (`--confirm 0`, out of time, stopped).
    Unconfirmed { reason: String },
}

impl Confirmation {
    /// `exact`, `reproducible 2/2`, `flaky 1/2` or `unconfirmed`: reproducible when
    /// every re-run failed the same way.
    pub fn label(&self) -> String {
        match self {
            Confirmation::Exact => "exact (simulation)".into(),
            Confirmation::Confirmed { runs, failed, .. } if failed == runs => {
                format!("reproducible {failed}/{runs}")
            }
            Confirmation::Confirmed { runs, failed, .. } => format!("flaky {failed}/{runs}"),
            Confirmation::Unconfirmed { reason } => format!("unconfirmed ({reason})"),
        }
    }
}

/// One run of a sweep: a line of `sweep.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedRecord {
    pub version: u32,
    /// The plan's name (`--name`).
    pub name: String,
    pub mode: Mode,
    pub seed: u64,
    /// [`config_hash`] of the plan: records with equal hashes differ only by seed.
    pub config: String,
    /// The project's commit, when known (`CHAOS_COMMIT`, `GITHUB_SHA`, or git).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub shard: Shard,
    pub verdict: Verdict,
    pub exit_code: ExitCode,
    /// The first thing wrong, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// When the run started, UTC, RFC 3339.
    pub started_at: String,
    /// Wall-clock seconds of the run as the sweep saw it (judging and report included).
    pub wall_s: f64,
    /// Where a real run's time went (result.json's `durations`); absent for a
    /// simulated seed, which is judged in memory on virtual time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durations: Option<crate::schema::Durations>,
    /// The command that runs this seed again.
    pub reproduce: String,
    /// The run directory, relative to the sweep directory; `None` when none was kept
    /// (a passing seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<String>,
    /// For a failing seed: whether it fails again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
    /// How many faults took effect in the run (result.json's `faults.ran`); `None`
    /// when the run left no count (a record from an older sweep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<usize>,
}

impl SeedRecord {
    pub fn failed(&self) -> bool {
        self.exit_code != ExitCode::Valid
    }

    /// What a record says about its seed, without where or when it ran: equal for the
    /// same seed in a sharded and an unsharded sweep.
    pub fn outcome(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "mode": self.mode,
            "seed": self.seed,
            "config": self.config,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "problem": self.problem,
            "reproduce": self.reproduce,
            "confirmation": self.confirmation.as_ref().map(Confirmation::label),
        })
    }

    /// The group the record belongs to: runs of one configuration.
    fn group(&self) -> (String, Mode, String) {
        (self.name.clone(), self.mode, self.config.clone())
    }
}

/// A sweep as a whole: `sweep.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepMeta {
    pub version: u32,
    pub name: String,
    pub mode: Mode,
    pub config: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Every shard's seeds: `A..B`, B excluded.
    pub first_seed: u64,
    pub end_seed: u64,
    pub shard: Shard,
    /// This shard's seeds.
    pub planned: u64,
    /// Seeds run so far (records written).
    pub run: u64,
    pub failed: u64,
    /// Seeds run in which no fault took effect: runs that tested a fault-free cluster.
    #[serde(default)]
    pub without_faults: u64,
    /// Runs at once.
    pub jobs: usize,
    /// Why the sweep stopped before its last seed; `None` while running or when done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Whether the sweep got to its end (false while it runs, or if it was killed).
    pub finished: bool,
    pub started_at: String,
    pub wall_s: f64,
    /// The `chaos` version that ran it.
    pub chaos: String,
    /// The command line, as given.
    pub command: String,
}

/// A hash of everything in a plan but its seed and what the seed draws (the fault
/// schedule): two plans with equal hashes are the same test on different seeds.
pub fn config_hash(plan: &Plan) -> String {
    use sha2::Digest;
    let mut v = serde_json::to_value(plan).expect("a plan always serialises");
    if let Some(o) = v.as_object_mut() {
        for field in ["seed", "schedule"] {
            o.remove(field);
        }
    }
    // serde_json's maps are ordered by key, so the text is canonical.
    let digest = sha2::Sha256::digest(v.to_string().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum SweepFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Record {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The records of a `sweep.jsonl`. A last line cut short (a sweep killed while
/// writing) is skipped; any other bad line is an error naming it.
pub fn read_records(path: &Path) -> Result<Vec<SeedRecord>, SweepFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SweepFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<SeedRecord>(line) {
            Ok(r) if r.version > SWEEP_VERSION => {
                return Err(SweepFileError::Record {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: format!(
                        "record version {}; this chaos reads up to {SWEEP_VERSION}",
                        r.version
                    ),
                });
            }
            Ok(r) => out.push(r),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(SweepFileError::Record {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// A sweep's `sweep.json`, if it has a readable one.
pub fn read_meta(dir: &Path) -> Option<SweepMeta> {
    let text = std::fs::read_to_string(dir.join(META_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records in the order every output lists them: by name, mode, configuration, seed.
pub fn sort_records(records: &mut [SeedRecord]) {
    records.sort_by(|a, b| a.group().cmp(&b.group()).then(a.seed.cmp(&b.seed)));
}

/// The exit code of many runs: the worst of theirs (valid when there are none). A
/// merge that lacks a shard, or a sweep that stopped before its last seed (interrupted,
/// out of time), is at least unknown: the seeds it did not run were not judged.
pub fn exit_code(records: &[SeedRecord], metas: &[SweepMeta], scope: Scope) -> ExitCode {
    let worst = records
        .iter()
        .fold(ExitCode::Valid, |w, r| w.worse(r.exit_code));
    if coverage(records, metas, scope)
        .iter()
        .any(|c| !c.missing_shards.is_empty() || c.not_run > 0)
    {
        worst.worse(ExitCode::Unknown)
    } else {
        worst
    }
}

/// junit.xml: a test suite per configuration, a test case per seed. A failing seed's
/// message is its problem; its text says how to reproduce it and whether it does.
pub fn junit(records: &[SeedRecord], title: &str) -> String {
    let mut report = Report::new(title);
    let mut groups: BTreeMap<(String, Mode, String), Vec<&SeedRecord>> = BTreeMap::new();
    for r in records {
        groups.entry(r.group()).or_default().push(r);
    }
    for ((name, mode, config), runs) in groups {
        let mut suite = TestSuite::new(format!("chaos sweep {name} {} {config}", mode.name()));
        suite.add_property(("config", config.as_str()));
        if let Some(c) = runs.iter().find_map(|r| r.commit.as_deref()) {
            suite.add_property(("commit", c));
        }
        for r in runs {
            let status = if r.failed() {
                let kind = match r.exit_code {
                    ExitCode::Invalid | ExitCode::Liveness => NonSuccessKind::Failure,
                    _ => NonSuccessKind::Error,
                };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_message(format!(
                    "{} (exit {}): {}",
                    r.verdict.as_str(),
                    r.exit_code.code(),
                    r.problem.as_deref().unwrap_or("-")
                ));
                s.set_description(failure_text(r));
                s
            } else {
                TestCaseStatus::success()
            };
            let mut case = TestCase::new(format!("seed {}", r.seed), status);
            case.set_classname(format!("chaos.sweep.{name}.{}", mode.name()));
            case.set_time(Duration::from_secs_f64(r.wall_s.max(0.0)));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report
        .to_string()
        .expect("junit serialisation writes to memory")
}

fn failure_text(r: &SeedRecord) -> String {
    let mut out = format!("reproduce: {}\n", r.reproduce);
    if let Some(c) = &r.confirmation {
        out.push_str(&format!("fails again: {}\n", c.label()));
    }
    if let Some(d) = &r.run_dir {
        out.push_str(&format!("run directory: {d}\n"));
    }
    out
}

/// What a set of records covers, per configuration, for the summary and the index.
pub struct Coverage {
    pub name: String,
    pub mode: Mode,
    pub config: String,
    pub runs: u64,
    pub failed: u64,
    /// The shards seen, and the count they were out of.
    pub shards: BTreeSet<Shard>,
    /// Shards of the count with no record and no `sweep.json` (a lost CI job).
    pub missing_shards: Vec<u32>,
    /// Seeds planned by the `sweep.json`s seen, and how many of those have no record.
    pub planned: u64,
    pub not_run: u64,
    /// Seeds run in which no fault took effect, and the faults of every seed run.
    pub without_faults: u64,
    pub faults: u64,
    /// Seeds with more than one record (shards that overlapped, or a sweep merged twice).
    pub duplicates: Vec<u64>,
}

/// What the outputs describe: one sweep (one shard, which lacks no other) or a merge of
/// shards (which may lack some).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Sweep,
    Merge,
}

impl Coverage {
    fn new(name: &str, mode: Mode, config: &str) -> Coverage {
        Coverage {
            name: name.to_string(),
            mode,
            config: config.to_string(),
            runs: 0,
            failed: 0,
            shards: BTreeSet::new(),
            missing_shards: Vec::new(),
            planned: 0,
            not_run: 0,
            without_faults: 0,
            faults: 0,
            duplicates: Vec::new(),
        }
    }
}

/// Groups records by configuration and says what each group lacks, given the
/// `sweep.json`s of the directories they came from.
pub fn coverage(records: &[SeedRecord], metas: &[SweepMeta], scope: Scope) -> Vec<Coverage> {
    let mut out: BTreeMap<(String, Mode, String), Coverage> = BTreeMap::new();
    let mut seen: BTreeMap<(String, Mode, String), BTreeSet<u64>> = BTreeMap::new();
    for r in records {
        let c = out
            .entry(r.group())
            .or_insert_with(|| Coverage::new(&r.name, r.mode, &r.config));
        c.shards.insert(r.shard);
        if !seen.entry(r.group()).or_default().insert(r.seed) {
            c.duplicates.push(r.seed);
            continue;
        }
        c.runs += 1;
        c.failed += u64::from(r.failed());
        c.without_faults += u64::from(r.faults == Some(0));
        c.faults += r.faults.unwrap_or(0) as u64;
    }
    for m in metas {
        let key = (m.name.clone(), m.mode, m.config.clone());
        let c = out
            .entry(key.clone())
            .or_insert_with(|| Coverage::new(&m.name, m.mode, &m.config));
        c.shards.insert(m.shard);
        c.planned += m.planned;
        let ran = seen.get(&key).map_or(0, |r| {
            r.range(m.first_seed..m.end_seed)
                .filter(|s| m.shard.holds(m.first_seed, **s))
                .count() as u64
        });
        c.not_run += m.planned.saturating_sub(ran);
    }
    for c in out.values_mut().filter(|_| scope == Scope::Merge) {
        if let Some(count) = c.shards.iter().map(|s| s.count).max() {
            let have: BTreeSet<u32> = c
                .shards
                .iter()
                .filter(|s| s.count == count)
                .map(|s| s.index)
                .collect();
            c.missing_shards = (0..count).filter(|i| !have.contains(i)).collect();
        }
    }
    out.into_values().collect()
}

/// The text summary: a line per configuration, each failing seed with its problem,
/// whether it fails again and the command that reproduces it, and the exit code.
/// `max_failing` caps the failing seeds listed (the rest are counted).
///
/// Run directories are named relative to the sweep directory (as summary.txt, which
/// lives there, needs), or under `base` when given (the terminal's summary: `base`
/// absolute, so the path works from wherever the command ran).
pub fn summary(
    records: &[SeedRecord],
    metas: &[SweepMeta],
    scope: Scope,
    max_failing: Option<usize>,
    base: Option<&std::path::Path>,
) -> String {
    let mut out = String::new();
    for c in coverage(records, metas, scope) {
        let shards: Vec<String> = c.shards.iter().map(Shard::to_string).collect();
        out.push_str(&format!(
            "{} {} (config {}): {} seeds run, {} failing, {:.1} faults per seed; shards {}\n",
            c.mode.name(),
            c.name,
            c.config,
            c.runs,
            c.failed,
            c.faults as f64 / c.runs.max(1) as f64,
            shards.join(" ")
        ));
        if c.without_faults > 0 {
            out.push_str(&format!(
                "  {} of {} seeds ran no fault: they tested a fault-free cluster\n",
                c.without_faults, c.runs
            ));
        }
        if !c.missing_shards.is_empty() {
            let missing: Vec<String> = c.missing_shards.iter().map(u32::to_string).collect();
            out.push_str(&format!(
                "  MISSING shards {} of {}: their seeds are not in this result\n",
                missing.join(", "),
                c.shards.iter().map(|s| s.count).max().unwrap_or(1)
            ));
        }
        if c.not_run > 0 {
            out.push_str(&format!(
                "  {} of {} planned seeds not run (stopped early; see each sweep.json)\n",
                c.not_run, c.planned
            ));
        }
        if !c.duplicates.is_empty() {
            out.push_str(&format!(
                "  seeds with more than one record (the first is counted): {:?}\n",
                c.duplicates
            ));
        }
    }
    let failing: Vec<&SeedRecord> = records.iter().filter(|r| r.failed()).collect();
    if !failing.is_empty() {
        out.push_str("\nfailing seeds:\n");
    }
    let shown = max_failing.unwrap_or(usize::MAX);
    if failing.len() > shown {
        out.push_str(&format!(
            "  (the first {shown} of {}; summary.txt and index.html list every one)\n",
            failing.len()
        ));
    }
    for r in failing.into_iter().take(shown) {
        out.push_str(&format!(
            "  {} seed {}: {} (exit {}), {}: {}\n    reproduce: {}\n",
            r.mode.name(),
            r.seed,
            r.verdict.as_str(),
            r.exit_code.code(),
            r.confirmation
                .as_ref()
                .map_or_else(|| "-".into(), Confirmation::label),
            one_line(r.problem.as_deref().unwrap_or("-"), 240),
            r.reproduce
        ));
        if let Some(d) = &r.run_dir {
            let d = base.map_or_else(|| d.clone(), |b| b.join(d).display().to_string());
            out.push_str(&format!("    run directory: {d}\n"));
        }
    }
    let code = exit_code(records, metas, scope);
    out.push_str(&format!(
        "\nexit {}: {}\n",
        code.code(),
        if code == ExitCode::Valid && records.is_empty() {
            "no seed was run"
        } else if code == ExitCode::Unknown
            && coverage(records, metas, scope)
                .iter()
                .any(|c| !c.missing_shards.is_empty())
        {
            "unknown: shards are missing (their seeds were not judged)"
        } else {
            exit_words(code, records.iter().any(SeedRecord::failed))
        }
    ));
    out
}

/// The words for a sweep's exit code: unknown with no seed failing means it stopped
/// before its last seed (a merge that lacks a shard says so first, in [`summary`]).
pub fn exit_words(code: ExitCode, any_failed: bool) -> &'static str {
    if code == ExitCode::Unknown && !any_failed {
        "unknown: the sweep stopped before its last seed; the seeds it ran are valid, the rest were not judged"
    } else {
        code.meaning()
    }
}

/// `text` on one line, cut to `max` characters with an ellipsis.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// index.html of a sweep or a merge: per configuration what was covered, then every
/// failing seed with its reproduce command and a link to its report, then the rest.
/// Run directories are linked as the records name them: relative to the index.
pub fn index(records: &[SeedRecord], metas: &[SweepMeta], scope: Scope, title: &str) -> String {
    let groups = coverage(records, metas, scope);
    let failing: Vec<&SeedRecord> = records.iter().filter(|r| r.failed()).collect();
    let passing: Vec<&SeedRecord> = records.iter().filter(|r| !r.failed()).collect();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(r#"
body { font: 14px/1.45 system-ui, sans-serif; margin: 20px auto; max-width: 1100px; padding: 0 16px; }
table { border-collapse: collapse; width: 100%; margin-bottom: 18px; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #fafafa; }
code { font-size: 12px; word-break: break-all; }
code.cmd { word-break: normal; } code.cmd .w { white-space: nowrap; }
.v { font-weight: 700; } .valid { color: #2e7d32; } .invalid { color: #c62828; } .unknown { color: #ef6c00; }
.warn { color: #c62828; font-weight: 700; }
"#)) }
            }
            body {
                h1 { (title) }
                p { (records.len()) " runs, " (failing.len()) " failing. Exit code " (exit_code(records, metas, scope).code()) "." }
                table {
                    thead { tr { th { "mode" } th { "name" } th { "config" } th { "seeds run" } th { "failing" } th { "shards" } th { "gaps" } } }
                    tbody {
                        @for c in &groups {
                            tr {
                                td { (c.mode.name()) }
                                td { (c.name) }
                                td { code { (c.config) } }
                                td { (c.runs) }
                                td { (c.failed) }
                                td { (c.shards.iter().map(Shard::to_string).collect::<Vec<_>>().join(" ")) }
                                td {
                                    @if !c.missing_shards.is_empty() { span.warn { "missing shards " (format!("{:?}", c.missing_shards)) } " " }
                                    @if c.not_run > 0 { span.warn { (c.not_run) " seeds not run" } " " }
                                    @if !c.duplicates.is_empty() { span.warn { (c.duplicates.len()) " duplicate seeds" } }
                                }
                            }
                        }
                    }
                }
                @if !failing.is_empty() {
                    h2 { "Failing seeds" }
                    table {
                        thead { tr { th { "mode" } th { "seed" } th { "verdict" } th { "fails again" } th { "problem" } th { "reproduce" } th { "run" } } }
                        tbody {
                            @for r in &failing {
                                tr {
                                    td { (r.mode.name()) }
                                    td { (r.seed) }
                                    td class=(format!("v {}", r.verdict.as_str())) { (r.verdict.as_str()) " (exit " (r.exit_code.code()) ")" }
                                    td { (r.confirmation.as_ref().map_or_else(|| "-".into(), Confirmation::label)) }
                                    td { (r.problem.as_deref().unwrap_or("-")) }
                                    td { (crate::report::command(&r.reproduce)) }
                                    td { @if let Some(d) = &r.run_dir { a href=(format!("{d}/report.html")) { "report" } } @else { "-" } }
                                }
                            }
                        }
                    }
                }
                h2 { "Passing seeds" }
                p {
                    @if passing.is_empty() { "none" } @else {
                        @for (i, r) in passing.iter().enumerate() {
                            @if i > 0 { ", " }
                            (r.mode.name()) " " (r.seed)
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seed: u64, shard: Shard, code: ExitCode) -> SeedRecord {
        SeedRecord {
            version: SWEEP_VERSION,
            name: "chaos".into(),
            mode: Mode::Sim,
            seed,
            config: "c0ffee".into(),
            commit: None,
            shard,
            verdict: if code == ExitCode::Invalid {
                Verdict::Invalid
            } else {
                Verdict::Valid
            },
            exit_code: code,
            problem: (code != ExitCode::Valid).then(|| "linearizability: stale".into()),
            started_at: "2026-11-29T00:00:00.000Z".into(),
            wall_s: 0.1,
            durations: None,
            reproduce: format!("chaos sim --seed {seed}"),
            run_dir: None,
            confirmation: (code != ExitCode::Valid).then_some(Confirmation::Exact),
            faults: Some(1),
        }
    }

    fn meta(shard: Shard, first: u64, end: u64) -> SweepMeta {
        SweepMeta {
            version: SWEEP_VERSION,
            name: "chaos".into(),
            mode: Mode::Sim,
            config: "c0ffee".into(),
            commit: None,
            first_seed: first,
            end_seed: end,
            shard,
            planned: shard.seeds(first..end).count() as u64,
            run: 0,
            failed: 0,
            without_faults: 0,
            jobs: 1,
            stopped: None,
            finished: true,
            started_at: String::new(),
            wall_s: 0.0,
            chaos: "0".into(),
            command: String::new(),
        }
    }

    #[test]
    fn shards_partition_the_seeds() {
        let seeds = 5..42;
        let mut all: Vec<u64> = (0..4)
            .flat_map(|i| Shard { index: i, count: 4 }.seeds(seeds.clone()))
            .collect();
        all.sort();
        assert_eq!(all, seeds.clone().collect::<Vec<_>>());
        for i in 0..4 {
            let shard = Shard { index: i, count: 4 };
            let listed: Vec<u64> = seeds.clone().filter(|s| shard.holds(5, *s)).collect();
            assert_eq!(shard.seeds(seeds.clone()).collect::<Vec<_>>(), listed);
            assert_eq!(shard.count_in(seeds.clone()), listed.len() as u64);
            assert_eq!(shard.nth(seeds.clone(), 2), listed.get(2).copied());
        }
        assert_eq!(Shard { index: 3, count: 4 }.count_in(1..3), 0);
        let huge = Shard { index: 1, count: 3 };
        assert_eq!(huge.count_in(0..3_000_000_000), 1_000_000_000);
        assert_eq!(huge.nth(0..3_000_000_000, 999_999_999), Some(2_999_999_998));
        assert_eq!(
            "1/4"
                .parse::<Shard>()
                .unwrap()
                .seeds(seeds)
                .take(3)
                .collect::<Vec<_>>(),
            vec![6, 10, 14]
        );
        for bad in ["4/4", "1/0", "x/2", "3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_config_hash_ignores_the_seed_and_its_schedule_only() {
        let plan = |seed: u64, nodes: usize| {
            let mut p = crate::plan::tests::sample();
            p.seed = seed;
            p.nodes = nodes;
            p.schedule = nemesis::generate(
                nodes,
                &mut nemesis::substream(seed, "nemesis"),
                p.nemesis,
                1_000,
                5_000,
            );
            p
        };
        assert_ne!(plan(1, 3).schedule, plan(2, 3).schedule);
        assert_eq!(config_hash(&plan(1, 3)), config_hash(&plan(2, 3)));
        assert_ne!(config_hash(&plan(1, 3)), config_hash(&plan(1, 5)));
        assert_eq!(config_hash(&plan(1, 3)).len(), 16);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_a_bad_one_elsewhere_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECORDS_FILE);
        let line = serde_json::to_string(&record(1, Shard::WHOLE, ExitCode::Valid)).unwrap();
        std::fs::write(&path, format!("{line}\n{}", &line[..20])).unwrap();
        assert_eq!(read_records(&path).unwrap().len(), 1);
        std::fs::write(&path, format!("{}\n{line}\n", &line[..20])).unwrap();
        let e = read_records(&path).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn a_merge_names_missing_shards_and_is_unknown_without_them() {
        let s = |i| Shard { index: i, count: 3 };
        let records = vec![
            record(1, s(0), ExitCode::Valid),
            record(2, s(1), ExitCode::Valid),
        ];
        let metas = vec![meta(s(0), 1, 4), meta(s(1), 1, 4)];
        let c = coverage(&records, &metas, Scope::Merge);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].missing_shards, vec![2]);
        assert_eq!(exit_code(&records, &metas, Scope::Merge), ExitCode::Unknown);
        assert!(
            summary(&records, &metas, Scope::Merge, None, None).contains("MISSING shards 2 of 3")
        );
        // One shard's own sweep lacks nothing.
        assert_eq!(
            exit_code(&records[..1], &metas[..1], Scope::Sweep),
            ExitCode::Valid
        );
        // A seed planned but not run is counted; a violation wins over unknown.
        let mut all = records.clone();
        all.push(record(3, s(2), ExitCode::Invalid));
        let mut metas = metas;
        metas.push(meta(s(2), 1, 7));
        let c = coverage(&all, &metas, Scope::Merge);
        assert!(c[0].missing_shards.is_empty());
        assert_eq!(c[0].not_run, 1, "seed 6 of shard 2 was planned and not run");
        assert_eq!(exit_code(&all, &metas, Scope::Merge), ExitCode::Invalid);
    }

    #[test]
    fn a_sweep_that_stopped_early_is_unknown_and_fault_free_seeds_are_counted() {
        let s = Shard { index: 0, count: 1 };
        let mut records = vec![record(1, s, ExitCode::Valid), record(2, s, ExitCode::Valid)];
        records[1].faults = Some(0);
        let mut stopped = meta(s, 1, 5);
        stopped.stopped = Some("interrupted (SIGINT or SIGTERM)".into());
        let metas = [stopped];
        assert_eq!(exit_code(&records, &metas, Scope::Sweep), ExitCode::Unknown);
        let text = summary(&records, &metas, Scope::Sweep, None, None);
        assert!(text.contains("2 of 4 planned seeds not run"), "{text}");
        assert!(text.contains("1 of 2 seeds ran no fault"), "{text}");
        assert!(text.contains("0.5 faults per seed"), "{text}");
        assert!(
            text.contains("exit 3: unknown: the sweep stopped"),
            "{text}"
        );
        // Every seed run: valid, as before.
        let done = [meta(s, 1, 3)];
        assert_eq!(exit_code(&records, &done, Scope::Sweep), ExitCode::Valid);
    }

    #[test]
    fn labels_and_junit_say_how_a_failure_reproduces() {
        let confirmed = |failed| Confirmation::Confirmed {
            runs: 2,
            failed,
            run_dirs: vec![],
        };
        assert_eq!(confirmed(2).label(), "reproducible 2/2");
        assert_eq!(confirmed(1).label(), "flaky 1/2");
        assert_eq!(confirmed(0).label(), "flaky 0/2");
        let mut failing = record(7, Shard::WHOLE, ExitCode::Invalid);
        failing.confirmation = Some(confirmed(1));
        let xml = junit(&[record(6, Shard::WHOLE, ExitCode::Valid), failing], "t");
        assert!(
            xml.contains(r#"tests="2""#) && xml.contains(r#"failures="1""#),
            "{xml}"
        );
        assert!(xml.contains("seed 7") && xml.contains("flaky 1/2"), "{xml}");
        assert!(xml.contains("reproduce: chaos sim --seed 7"), "{xml}");
    }
}
