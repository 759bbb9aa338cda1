//! `chaos shrink RUN_DIR`: from a failing run to the smallest plan that still fails
//! the same way.
//!
//! A candidate is the current smallest failing plan with one thing taken away; it is
//! kept when it fails the same way (the same check, and for linearizability and the
//! protocol's rules the same kind of anomaly). The passes, repeated until a round
//! keeps nothing or the budget ends:
//! 1. the time limit, halved while the failure survives, then bisected;
//! 2. the faults, by delta debugging over fault groups (a start with its undo);
//! 3. the nodes, 5 to 3 (faults naming a dropped node go with it);
//! 4. the workload, kv or register alone instead of both;
//! 5. the clients, bisected down to one;
//! 6. the KV keys, by delta debugging;
//! 7. the op rate, halved while the failure survives;
//! 8. the ops, as a per-client budget (`ops_per_client`), bisected;
//! 9. in simulation, the ops one by one: the run's ops become a script (`script`,
//!    each op at the time it was invoked) and delta debugging drops those the
//!    failure does not need;
//! 10. each fault's duration, halved while the failure survives;
//! 11. each fault's targets, narrowed to one node where it can be.
//!
//! In simulation a candidate is one deterministic run, so the answer is exact. With
//! real processes it is tried `--trials` times and fails if any try fails; the final
//! plan is then run `--confirm` times and its reproduction rate kept in plan.json.
//!
//! Written by hand: the search is over this project's own plan (fault pairs, client
//! slots, keys, an op budget) with a candidate budget in time and in runs; the
//! classic delta-debugging loop ([`ddmin`]) is a few dozen lines.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use checker::AnomalyKind;
use nemesis::{Fault, ScheduledFault};
use results::plan::{ScriptedOp, ShrunkFrom};
use results::{ExitCode, Mode, Plan, RunResult, Verdict};

use crate::observe::{Observer, Silent};

/// What `chaos shrink` is asked to do.
#[derive(Clone, Debug)]
pub struct ShrinkSpec {
    /// The failing run's directory (holds plan.json and result.json).
    pub run_dir: PathBuf,
    /// What must keep failing.
    pub target: TargetKind,
    /// Real runs: tries per candidate; a candidate fails if any try fails.
    pub trials: u32,
    /// Real runs: how many times the smallest plan is run again to measure how often
    /// it reproduces.
    pub confirm: u32,
    /// Seconds of search before the smallest failing plan found is kept.
    pub max_time: f64,
    /// Candidate runs before the search stops (trials count one each).
    pub max_runs: Option<u64>,
    /// Where the shrunk plan's run goes.
    pub results: PathBuf,
}

/// What must keep failing: `safety` (linearizability if it failed, else the
/// protocol's rules if they were broken, else the run's first failed check; for
/// linearizability and the protocol's rules also the kind of its first anomaly) or
/// `liveness`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Safety,
    Liveness,
}

#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("{0}")]
    Unreadable(String),
}

/// The way a candidate must fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// A check's name, or `liveness`.
    pub check: String,
    /// For linearizability and the protocol's rules: the anomaly kind.
    pub kind: Option<AnomalyKind>,
}

impl Target {
    /// The target a failed run sets.
    pub fn of(result: &RunResult, kind: TargetKind) -> Result<Target, String> {
        if kind == TargetKind::Liveness {
            if result.exit_code != ExitCode::Liveness {
                return Err(format!(
                    "--target liveness: the run exited {}, not 4 (liveness)",
                    result.exit_code.code()
                ));
            }
            return Ok(Target {
                check: "liveness".into(),
                kind: None,
            });
        }
        if result.exit_code != ExitCode::Invalid {
            return Err(match result.exit_code {
                ExitCode::Liveness => {
                    "the run failed liveness (exit 4), not safety: use --target liveness".into()
                }
                code => format!(
                    "nothing to shrink: the run exited {} ({}), not 1 (a safety violation)",
                    code.code(),
                    result.verdict.as_str()
                ),
            });
        }
        // Linearizability, then the protocol's rules, then the first failed check:
        // one stale read or one broken step is a witness a much smaller plan keeps,
        // where agreement of whole logs or registers needs more to line up
        // (forget-promises shrank to 5 faults on log-agreement, to none on the
        // rules; a raft-rs mistake to 1,068 ops on the rules, to 8 on
        // linearizability).
        let invalid = || {
            result
                .checks
                .iter()
                .flatten()
                .filter(|c| c.verdict == Verdict::Invalid)
        };
        let failed = invalid()
            .find(|c| c.name == "linearizability")
            .or_else(|| invalid().find(|c| c.name == "protocol"))
            .or_else(|| invalid().next())
            .ok_or("the run exited 1 but no check failed")?;
        let kind = matches!(failed.name.as_str(), "linearizability" | "protocol")
            .then(|| failed.anomalies.first().map(|a| a.kind))
            .flatten();
        Ok(Target {
            check: failed.name.clone(),
            kind,
        })
    }

    /// Whether a run with these failed checks (name and anomaly kinds) and liveness
    /// failed the same way.
    pub fn hit(&self, failures: &[(String, Vec<AnomalyKind>)], liveness_failed: bool) -> bool {
        if self.check == "liveness" {
            return liveness_failed;
        }
        failures.iter().any(|(name, kinds)| {
            *name == self.check && self.kind.is_none_or(|k| kinds.contains(&k))
        })
    }

    pub fn describe(&self) -> String {
        match self.kind {
            Some(k) => format!("{} ({})", self.check, k.as_str()),
            None => self.check.clone(),
        }
    }
}

/// What one candidate did.
#[derive(Clone, Copy, Debug)]
pub struct Tried {
    pub fails: bool,
    /// Client ops invoked (of the failing try, when one failed).
    pub ops: u64,
    /// Runs it took.
    pub runs: u64,
}

/// Runs candidates.
pub trait Oracle {
    fn try_plan(&mut self, plan: &Plan, target: &Target) -> Result<Tried, String>;

    /// The ops a run of `plan` invokes, as a script, where runs are exact (`None`
    /// where they are not: a real run's script would not replay it).
    fn script_of(&mut self, _plan: &Plan) -> Option<Vec<ScriptedOp>> {
        None
    }
}

/// Candidates in simulation: one exact run each, judged in memory.
pub struct SimOracle;

impl Oracle for SimOracle {
    fn try_plan(&mut self, plan: &Plan, target: &Target) -> Result<Tried, String> {
        let j = crate::sim::sweep::judge(plan).map_err(|e| e.what)?;
        Ok(Tried {
            fails: target.hit(&j.failures, j.liveness_failed),
            ops: j.ok_ops + j.fail_ops + j.info_ops,
            runs: 1,
        })
    }

    fn script_of(&mut self, plan: &Plan) -> Option<Vec<ScriptedOp>> {
        crate::sim::sweep::judge_capturing(plan, true).ok()?.script
    }
}

/// Candidates with real processes: up to `trials` runs each, in a scratch results
/// directory that is emptied after every run.
pub struct RealOracle {
    pub scratch: PathBuf,
    pub trials: u32,
}

impl RealOracle {
    /// One real run of `plan`: whether it failed like `target`, and its ops.
    pub fn run_once(&self, plan: &Plan, target: &Target) -> Result<(bool, u64), String> {
        let out =
            crate::engine::execute(plan, &self.scratch, &Silent).map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(out.run_dir.join("result.json"))
            .map_err(|e| format!("{}: {e}", out.run_dir.display()))?;
        let _ = std::fs::remove_dir_all(&self.scratch);
        let result = RunResult::parse(&text).map_err(|e| e.to_string())?;
        let failures = crate::sim::sweep::failures(result.checks.as_deref().unwrap_or(&[]));
        let liveness_failed = result.liveness.ok == Some(false);
        let ops = result.stats.as_ref().map_or(0, |s| s.ops);
        Ok((target.hit(&failures, liveness_failed), ops))
    }
}

impl Oracle for RealOracle {
    fn try_plan(&mut self, plan: &Plan, target: &Target) -> Result<Tried, String> {
        let mut ops = 0;
        for trial in 1..=self.trials {
            let (fails, n) = self.run_once(plan, target)?;
            ops = n;
            if fails {
                return Ok(Tried {
                    fails: true,
                    ops,
                    runs: u64::from(trial),
                });
            }
        }
        Ok(Tried {
            fails: false,
            ops,
            runs: u64::from(self.trials),
        })
    }
}

/// Delta debugging ("ddmin"): a smallest subset of `items` for which `test` holds,
/// assuming it holds for `items`. `test` answers `None` when the budget is spent;
/// the smallest subset found so far is returned then.
pub fn ddmin<T: Clone>(items: &[T], test: &mut dyn FnMut(&[T]) -> Option<bool>) -> Vec<T> {
    let mut current = items.to_vec();
    let mut n = 2usize;
    while current.len() >= 2 {
        let chunk = current.len().div_ceil(n);
        let parts: Vec<Vec<T>> = current.chunks(chunk).map(<[T]>::to_vec).collect();
        let mut reduced = false;
        // A part alone that fails: keep only it.
        for part in &parts {
            match test(part) {
                None => return current,
                Some(true) => {
                    current = part.clone();
                    n = 2;
                    reduced = true;
                    break;
                }
                Some(false) => {}
            }
        }
        // Everything but one part: drop that part.
        if !reduced && parts.len() > 2 {
            for i in 0..parts.len() {
                let rest: Vec<T> = parts
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, p)| p.iter().cloned())
                    .collect();
                match test(&rest) {
                    None => return current,
                    Some(true) => {
                        current = rest;
                        n = (n - 1).max(2);
                        reduced = true;
                        break;
                    }
                    Some(false) => {}
                }
            }
        }
        if !reduced {
            if n >= current.len() {
                break;
            }
            n = (2 * n).min(current.len());
        }
    }
    current
}

/// The entries of a schedule grouped into faults: each start with the undo that
/// ends it (a partition with its heal, a kill or corruption with its restart, ...);
/// an undo that ends nothing stands alone.
pub fn fault_groups(schedule: &[ScheduledFault]) -> Vec<Vec<usize>> {
    let mut taken = vec![false; schedule.len()];
    let mut groups = Vec::new();
    for (i, f) in schedule.iter().enumerate() {
        if taken[i] {
            continue;
        }
        taken[i] = true;
        let mut group = vec![i];
        if f.fault.starts_fault() {
            let ends = |g: &Fault| {
                matches!(
                    (&f.fault, g),
                    (Fault::Partition { .. }, Fault::Heal)
                        | (Fault::Kill | Fault::Corrupt { .. }, Fault::Restart)
                        | (Fault::Pause, Fault::Resume)
                        | (Fault::Links(_), Fault::LinksHeal)
                        | (Fault::Clock { .. }, Fault::ClockReset)
                )
            };
            let undo = (i + 1..schedule.len())
                .find(|&j| {
                    !taken[j] && ends(&schedule[j].fault) && schedule[j].targets == f.targets
                })
                .or_else(|| {
                    (i + 1..schedule.len()).find(|&j| !taken[j] && ends(&schedule[j].fault))
                });
            if let Some(j) = undo {
                taken[j] = true;
                group.push(j);
            }
        }
        groups.push(group);
    }
    groups
}

/// Faults (fault starts) in a schedule: the unit headers and summaries count.
pub fn fault_count(plan: &Plan) -> usize {
    plan.schedule
        .iter()
        .filter(|f| f.fault.starts_fault())
        .count()
}

fn with_groups(plan: &Plan, groups: &[Vec<usize>], keep: &[usize]) -> Plan {
    let mut indices: Vec<usize> = keep
        .iter()
        .flat_map(|g| groups[*g].iter().copied())
        .collect();
    indices.sort_unstable();
    let mut p = plan.clone();
    p.schedule = indices.iter().map(|i| plan.schedule[*i].clone()).collect();
    p.explicit_schedule = true;
    p
}

fn mentions_above(f: &ScheduledFault, n: usize) -> bool {
    let above = |id: &u32| *id as usize > n;
    f.targets.iter().any(above)
        || matches!(&f.fault, Fault::Partition { cut, .. } if cut.iter().any(|(a, b)| above(a) || above(b)))
}

/// The search: the smallest failing plan so far and the budget.
struct Search<'a> {
    oracle: &'a mut dyn Oracle,
    target: Target,
    best: Plan,
    best_ops: u64,
    tried: u64,
    runs: u64,
    started: Instant,
    max_time: Duration,
    max_runs: Option<u64>,
    out_of_budget: bool,
    improved: bool,
    show: &'a dyn Observer,
    /// The size last shown.
    shown: String,
    /// The plans `best` replaced, oldest first (at most [`CHAIN`]).
    chain: Vec<(Plan, u64)>,
}

/// Other seeds a simulated search tries the last few faults under
/// ([`Search::few_faults`]).
const RESEEDS: u64 = 16;

/// How many of the plans a search passed through it keeps, for a real search to fall
/// back on when its smallest plan does not reproduce.
const CHAIN: usize = 5;

impl Search<'_> {
    fn size(&self) -> String {
        format!(
            "faults {}, ops {}, nodes {}, clients {}, keys {}, {} s",
            fault_count(&self.best),
            self.best_ops,
            self.best.nodes,
            self.best.concurrency,
            self.best.keys,
            self.best.time_limit_s
        )
    }

    /// Tries `cand`, keeping it if it fails the same way. `None`: the budget is spent.
    fn attempt(&mut self, cand: Plan) -> Option<bool> {
        let spent = self.started.elapsed() >= self.max_time
            || self.max_runs.is_some_and(|m| self.runs >= m)
            || crate::progress::stop_requested();
        if spent {
            self.out_of_budget = true;
            return None;
        }
        self.tried += 1;
        let tried = self.oracle.try_plan(&cand, &self.target);
        let fails = match tried {
            Ok(t) => {
                self.runs += t.runs;
                if t.fails {
                    let previous = std::mem::replace(&mut self.best, cand);
                    self.chain.push((previous, self.best_ops));
                    if self.chain.len() > CHAIN {
                        self.chain.remove(0);
                    }
                    self.best_ops = t.ops;
                    self.improved = true;
                }
                t.fails
            }
            // A candidate that cannot run (a plan the system refuses) is not kept.
            Err(_) => {
                self.runs += 1;
                false
            }
        };
        let size = self.size();
        self.show.search_state(
            &format!("shrink: {} candidates | {size}", self.tried),
            fails && size != self.shown,
        );
        if fails {
            self.shown = size;
        }
        Some(fails)
    }

    fn time(&mut self) {
        let with_time = |plan: &Plan, t: f64| {
            let mut p = plan.clone();
            p.time_limit_s = t;
            let end = (t * 1000.0) as u64;
            let before = p.schedule.len();
            p.schedule.retain(|f| f.at_ms < end);
            if p.schedule.len() != before {
                p.explicit_schedule = true;
            }
            p
        };
        let round = |t: f64| (t * 10.0).round() / 10.0;
        let mut hi = self.best.time_limit_s;
        let mut lo = 0.0;
        loop {
            let t = round(hi / 2.0);
            if t < 0.1 || t >= hi {
                break;
            }
            let cand = with_time(&self.best, t);
            match self.attempt(cand) {
                None => return,
                Some(true) => hi = t,
                Some(false) => {
                    lo = t;
                    break;
                }
            }
        }
        while hi - lo > 0.15 && hi - lo > hi * 0.05 {
            let mid = round((lo + hi) / 2.0);
            if mid <= lo || mid >= hi {
                break;
            }
            match self.attempt(with_time(&self.best, mid)) {
                None => return,
                Some(true) => hi = mid,
                Some(false) => lo = mid,
            }
        }
    }

    fn faults(&mut self) {
        if self.best.schedule.is_empty() {
            return;
        }
        let base = self.best.clone();
        let groups = fault_groups(&base.schedule);
        let all: Vec<usize> = (0..groups.len()).collect();
        match self.attempt(with_groups(&base, &groups, &[])) {
            None | Some(true) => return,
            Some(false) => {}
        }
        ddmin(&all, &mut |keep| {
            self.attempt(with_groups(&base, &groups, keep))
        });
        self.few_faults();
    }

    /// Delta debugging leaves a plan from which no single fault can go; in a
    /// simulation a fault also steers the timing of all that follows, so the faults
    /// left may be there only to line the timing up for the one that matters. With
    /// three to ten left, every set of one or two of them is tried on its own; in a
    /// simulation, then each such set under the next [`RESEEDS`] seeds too (other
    /// draws of links, disks and clocks, and of the ops until they are a script):
    /// at most 55 and 880 candidates.
    fn few_faults(&mut self) {
        let base = self.best.clone();
        let groups = fault_groups(&base.schedule);
        if groups.len() <= 2 || groups.len() > 10 {
            return;
        }
        let n = groups.len();
        let sets: Vec<Vec<usize>> = (0..n)
            .map(|a| vec![a])
            .chain((0..n).flat_map(|a| (a + 1..n).map(move |b| vec![a, b])))
            .collect();
        let seeds: Vec<u64> = match base.mode {
            Mode::Sim => (0..=RESEEDS).map(|k| base.seed.wrapping_add(k)).collect(),
            Mode::Real => vec![base.seed],
        };
        for seed in seeds {
            for keep in &sets {
                let mut cand = with_groups(&base, &groups, keep);
                cand.seed = seed;
                match self.attempt(cand) {
                    None | Some(true) => return,
                    Some(false) => {}
                }
            }
        }
    }

    /// A failure that hangs on timing (a crash inside a sync's window, say) may need
    /// the ops before a fault only to bring the run to a moment it can strike. Each
    /// fault in turn, with all that follows it, is moved earlier (its gap to what
    /// comes before cut to an eighth, a quarter, then a half) and the run ends as
    /// much sooner, under this seed and, in a simulation, the next [`RESEEDS`]: a
    /// shorter run that still fails keeps fewer ops for `ops` and `script` to take
    /// apart. At most 51 candidates a fault.
    fn earlier(&mut self) {
        let seeds: Vec<u64> = match self.best.mode {
            Mode::Sim => (0..=RESEEDS)
                .map(|k| self.best.seed.wrapping_add(k))
                .collect(),
            Mode::Real => vec![self.best.seed],
        };
        for g in 0..fault_groups(&self.best.schedule).len() {
            // The plan may have moved since the list was made: read it again.
            let base = self.best.clone();
            let groups = fault_groups(&base.schedule);
            let Some(at) = groups.get(g).map(|grp| base.schedule[grp[0]].at_ms) else {
                return;
            };
            let before = base
                .schedule
                .iter()
                .map(|f| f.at_ms)
                .filter(|t| *t < at)
                .max()
                .unwrap_or(0);
            'fracs: for frac in [8, 4, 2] {
                let shift = (at - before) - (at - before) / frac;
                let time_limit_s = base.time_limit_s - shift as f64 / 1e3;
                if shift < 20 || time_limit_s < 0.1 {
                    continue;
                }
                for seed in &seeds {
                    let mut cand = base.clone();
                    for f in cand.schedule.iter_mut().filter(|f| f.at_ms >= at) {
                        f.at_ms -= shift;
                    }
                    cand.explicit_schedule = true;
                    cand.time_limit_s = time_limit_s;
                    cand.seed = *seed;
                    match self.attempt(cand) {
                        None => return,
                        Some(true) => break 'fracs,
                        Some(false) => {}
                    }
                }
            }
        }
    }

    fn nodes(&mut self) {
        while self.best.nodes > 3 {
            let n = self.best.nodes - 2;
            let mut cand = self.best.clone();
            cand.nodes = n;
            let groups = fault_groups(&cand.schedule);
            let keep: Vec<usize> = (0..groups.len())
                .filter(|g| {
                    !groups[*g]
                        .iter()
                        .any(|i| mentions_above(&cand.schedule[*i], n))
                })
                .collect();
            let cand = with_groups(&cand, &groups, &keep);
            if self.attempt(cand) != Some(true) {
                return;
            }
        }
    }

    fn clients(&mut self) {
        let (mut lo, mut hi) = (0usize, self.best.concurrency);
        while hi - lo > 1 {
            // One client first: the smallest answer is the likeliest to read well.
            let c = if lo == 0 { 1 } else { lo + (hi - lo) / 2 };
            let mut cand = self.best.clone();
            cand.concurrency = c;
            if let Some(script) = &mut cand.script {
                script.retain(|o| o.slot < c);
            }
            match self.attempt(cand) {
                None => return,
                Some(true) => hi = c,
                Some(false) => lo = c,
            }
        }
    }

    /// Nodes that snapshot sooner (the bundled node only): a failure that needs a
    /// snapshot then needs fewer ops before one. The simulation snapshots every 200
    /// applied commands and a real run every 2,000, unless the plan's node arguments
    /// say `--snapshot-every=N`; this halves it down to 10, in a run with enough
    /// ops to snapshot at all.
    fn snapshots(&mut self) {
        if !self.best.system.is_bundled() {
            return;
        }
        let given = self
            .best
            .node_args
            .iter()
            .find_map(|a| a.strip_prefix("--snapshot-every="));
        let mut every = match given {
            Some(n) => match n.parse::<u64>() {
                Ok(n) => n,
                Err(_) => return,
            },
            // Given as two words (`--snapshot-every N`): left as it is.
            None if self.best.node_args.iter().any(|a| a == "--snapshot-every") => return,
            None if self.best.mode == Mode::Sim => crate::sim::SIM_SNAPSHOT_EVERY,
            None => crate::system::node::RUN_SNAPSHOT_EVERY,
        };
        // A run with fewer ops than that never snapshots: nothing to gain, and the
        // plan would carry a setting that plays no part in its failure.
        if every == 0 || self.best_ops < every {
            return;
        }
        while every > 10 {
            every /= 2;
            let mut cand = self.best.clone();
            cand.node_args
                .retain(|a| !a.starts_with("--snapshot-every="));
            cand.node_args.push(format!("--snapshot-every={every}"));
            if self.attempt(cand) != Some(true) {
                return;
            }
        }
    }

    /// One workload instead of both, when the failure lives in one.
    fn workload(&mut self) {
        if self.best.workload != results::Workload::Both {
            return;
        }
        for w in [results::Workload::Kv, results::Workload::Register] {
            let mut cand = self.best.clone();
            cand.workload = w;
            match self.attempt(cand) {
                None | Some(true) => return,
                Some(false) => {}
            }
        }
    }

    /// A lower op rate: the same time, fewer ops.
    fn rate(&mut self) {
        let effective = self.best_ops as f64 / self.best.time_limit_s.max(0.1);
        let mut rate = if self.best.rate > 0.0 {
            self.best.rate.min(effective)
        } else {
            effective
        };
        for _ in 0..8 {
            rate = (rate / 2.0).round();
            if rate < 1.0 {
                return;
            }
            let mut cand = self.best.clone();
            cand.rate = rate;
            if self.attempt(cand) != Some(true) {
                return;
            }
        }
    }

    fn keys(&mut self) {
        if !self.best.workload.has_kv() || self.best.kv_keys.len() < 2 {
            return;
        }
        let base = self.best.clone();
        let with_keys = |keys: &[String]| {
            let mut p = base.clone();
            p.kv_keys = keys.to_vec();
            p.keys = keys.len();
            p
        };
        ddmin(&base.kv_keys, &mut |keys| {
            if keys.is_empty() {
                return Some(false);
            }
            self.attempt(with_keys(keys))
        });
    }

    fn ops(&mut self) {
        let per_client = self
            .best_ops
            .div_ceil(self.best.concurrency.max(1) as u64)
            .max(1);
        let mut hi = self
            .best
            .ops_per_client
            .unwrap_or(u64::MAX)
            .min(per_client + 1);
        if self.best.ops_per_client != Some(hi) {
            let mut cand = self.best.clone();
            cand.ops_per_client = Some(hi);
            if self.attempt(cand) != Some(true) {
                return;
            }
        }
        let mut lo = 0;
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let mut cand = self.best.clone();
            cand.ops_per_client = Some(mid);
            match self.attempt(cand) {
                None => return,
                Some(true) => hi = mid,
                Some(false) => lo = mid,
            }
        }
    }

    /// The ops themselves: the run's ops become a script (each at the time it was
    /// invoked), and delta debugging takes away those the failure does not need.
    /// Only where runs are exact.
    fn script(&mut self) {
        if self.best.script.is_none() {
            let Some(ops) = self.oracle.script_of(&self.best) else {
                return;
            };
            let mut cand = self.best.clone();
            cand.script = Some(ops);
            cand.ops_per_client = None;
            cand.rate = 0.0;
            if self.attempt(cand) != Some(true) {
                return;
            }
        }
        let base = self.best.clone();
        let ops = base.script.clone().unwrap_or_default();
        let all: Vec<usize> = (0..ops.len()).collect();
        ddmin(&all, &mut |keep| {
            let mut cand = base.clone();
            cand.script = Some(keep.iter().map(|i| ops[*i].clone()).collect());
            self.attempt(cand)
        });
    }

    fn shorten(&mut self) {
        let groups = fault_groups(&self.best.schedule);
        for g in groups.iter().filter(|g| g.len() == 2) {
            for _ in 0..4 {
                let (s, u) = (g[0], g[1]);
                let (start, end) = (self.best.schedule[s].at_ms, self.best.schedule[u].at_ms);
                let shorter = start + (end - start) / 2;
                if end - start < 20 {
                    break;
                }
                let mut cand = self.best.clone();
                cand.schedule[u].at_ms = shorter;
                cand.schedule.sort_by_key(|f| f.at_ms);
                cand.explicit_schedule = true;
                // Sorting is stable and the undo stays after its start, so the group's
                // indices hold only if nothing moved past another entry.
                if fault_groups(&cand.schedule) != groups {
                    break;
                }
                if self.attempt(cand) != Some(true) {
                    break;
                }
            }
        }
    }

    fn narrow(&mut self) {
        let groups = fault_groups(&self.best.schedule);
        for g in &groups {
            let start = &self.best.schedule[g[0]];
            let narrowable = matches!(
                start.fault,
                Fault::Kill | Fault::Pause | Fault::Links(_) | Fault::Clock { .. }
            );
            if !narrowable || start.targets.len() < 2 {
                continue;
            }
            for t in start.targets.clone() {
                let mut cand = self.best.clone();
                for i in g {
                    cand.schedule[*i].targets = vec![t];
                }
                cand.explicit_schedule = true;
                match self.attempt(cand) {
                    None => return,
                    Some(true) => break,
                    Some(false) => {}
                }
            }
        }
    }
}

/// When a search stops early.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub max_time: Duration,
    /// Candidate runs (a real candidate's trials count one each).
    pub max_runs: Option<u64>,
}

/// What a search found.
pub struct Shrunk {
    pub plan: Plan,
    pub ops: u64,
    /// The failing plans the search kept before `plan`, oldest (largest) first.
    pub chain: Vec<(Plan, u64)>,
    pub candidates: u64,
    pub runs: u64,
    pub minimal: bool,
    pub secs: f64,
}

/// Shrinks `plan` (which failed like `target` with `ops` client ops) with `oracle`
/// within the budget.
pub fn shrink(
    plan: &Plan,
    ops: u64,
    target: &Target,
    oracle: &mut dyn Oracle,
    budget: Budget,
    show: &dyn Observer,
) -> Shrunk {
    let mut s = Search {
        oracle,
        target: target.clone(),
        best: plan.clone(),
        best_ops: ops,
        tried: 0,
        runs: 0,
        started: Instant::now(),
        max_time: budget.max_time,
        max_runs: budget.max_runs,
        out_of_budget: false,
        improved: false,
        show,
        shown: String::new(),
        chain: Vec::new(),
    };
    for _round in 0..4 {
        s.improved = false;
        s.time();
        s.faults();
        s.earlier();
        s.nodes();
        s.workload();
        s.clients();
        s.keys();
        s.rate();
        s.ops();
        s.script();
        // After the ops: a failure that does not need a snapshot has by then too
        // few ops to try it on.
        s.snapshots();
        s.shorten();
        s.narrow();
        if !s.improved || s.out_of_budget {
            break;
        }
    }
    s.show.search_ended();
    Shrunk {
        plan: s.best,
        ops: s.best_ops,
        chain: s.chain,
        candidates: s.tried,
        runs: s.runs,
        minimal: !s.out_of_budget,
        secs: s.started.elapsed().as_secs_f64(),
    }
}

/// The failing run a shrink starts from: its plan, its ops and what must keep failing.
struct Origin {
    plan: Plan,
    ops: u64,
    target: Target,
}

/// Reads the failing run; a run that cannot be shrunk is a usage error.
fn origin(spec: &ShrinkSpec) -> Result<Origin, ShrinkError> {
    let usage = ShrinkError::Usage;
    let plan =
        Plan::read(&spec.run_dir).map_err(|e| usage(format!("{}: {e}", spec.run_dir.display())))?;
    let result_path = spec.run_dir.join("result.json");
    let text = std::fs::read_to_string(&result_path).map_err(|e| {
        usage(format!(
            "{}: {e} (a run that never finished has no verdict to keep; chaos report judges it first)",
            result_path.display()
        ))
    })?;
    let result =
        RunResult::parse(&text).map_err(|e| usage(format!("{}: {e}", result_path.display())))?;
    let target = Target::of(&result, spec.target).map_err(usage)?;
    if spec.max_time.is_nan() || spec.max_time <= 0.0 {
        return Err(usage("--max-time must be above 0".into()));
    }
    let ops = result.stats.as_ref().map_or(0, |s| s.ops);
    Ok(Origin { plan, ops, target })
}

/// A real shrunk plan's reproduction rate: the smallest plan first; if it never
/// fails again, the larger ones the search passed through, newest first (a plan
/// that does not reproduce helps nobody). The plan kept, whether it is the
/// smallest, and its rate.
fn confirm_rate(
    spec: &ShrinkSpec,
    found: &Shrunk,
    target: &Target,
    oracle: &RealOracle,
    show: &dyn Observer,
) -> (Plan, bool, (u32, u32)) {
    let mut candidates = vec![found.plan.clone()];
    candidates.extend(found.chain.iter().rev().map(|(p, _)| p.clone()));
    for (i, cand) in candidates.iter().enumerate() {
        let hits = (0..spec.confirm)
            .filter(|_| matches!(oracle.run_once(cand, target), Ok((true, _))))
            .count() as u32;
        show.say(&format!(
            "chaos shrink: {} plan reproduced {hits} of {} times",
            if i == 0 { "the smallest" } else { "a larger" },
            spec.confirm
        ));
        if hits > 0 {
            return (cand.clone(), i == 0 && found.minimal, (hits, spec.confirm));
        }
        // None reproduces: the smallest is kept, with its rate of 0.
        if crate::progress::stop_requested() {
            break;
        }
    }
    (found.plan.clone(), found.minimal, (0, spec.confirm))
}

/// `chaos shrink`: reads the failing run, searches, runs the smallest plan into a new
/// run directory under `spec.results` and returns that run's result (its exit code
/// is the command's).
pub fn run(spec: &ShrinkSpec, show: &dyn Observer) -> Result<RunResult, ShrinkError> {
    let Origin { plan, ops, target } = origin(spec)?;
    // The shrunk plan's run goes under --results: said now, not after the search.
    results::store::check_writable(&spec.results, "--results").map_err(ShrinkError::Usage)?;
    show.say(&format!(
        "chaos shrink: {} ({} run, faults {}, ops {}, nodes {}), keeping {} failing",
        spec.run_dir.display(),
        if plan.mode == Mode::Sim {
            "simulated"
        } else {
            "real"
        },
        fault_count(&plan),
        ops,
        plan.nodes,
        target.describe()
    ));
    // Ctrl-C ends the search, not the process: the smallest plan so far is still run
    // and kept. A real run in progress sees the signal too and ends early; it then
    // does not count as failing.
    crate::progress::stop_on_signals();
    let scratch = spec.results.join(".shrink-scratch");
    let mut sim_oracle = SimOracle;
    let mut real_oracle = RealOracle {
        scratch: scratch.clone(),
        trials: spec.trials,
    };
    let oracle: &mut dyn Oracle = match plan.mode {
        Mode::Sim => &mut sim_oracle,
        Mode::Real => &mut real_oracle,
    };
    let budget = Budget {
        max_time: Duration::from_secs_f64(spec.max_time),
        max_runs: spec.max_runs,
    };
    let found = shrink(&plan, ops, &target, oracle, budget, show);
    let stopped = crate::progress::stop_requested();
    let (small, minimal, reproduced) = match plan.mode {
        Mode::Real if !stopped && spec.confirm > 0 => {
            let (p, m, rate) = confirm_rate(spec, &found, &target, &real_oracle, show);
            (p, m, Some(rate))
        }
        _ => (found.plan.clone(), found.minimal, None),
    };
    let _ = std::fs::remove_dir_all(&scratch);
    show.say(&format!(
        "chaos shrink: {} candidates ({} runs) in {:.1} s{}; running the smallest plan:",
        found.candidates,
        found.runs,
        found.secs,
        if found.minimal {
            ""
        } else if stopped {
            " (interrupted: the plan may not be minimal)"
        } else {
            " (budget spent: the plan may not be minimal)"
        }
    ));
    let shrunk_from = |minimal: bool| ShrunkFrom {
        run_dir: std::fs::canonicalize(&spec.run_dir)
            .unwrap_or_else(|_| spec.run_dir.clone())
            .display()
            .to_string(),
        faults: fault_count(&plan),
        ops,
        nodes: plan.nodes,
        target: target.describe(),
        candidates: found.candidates,
        minimal,
        reproduced,
    };
    let name = format!("{}-shrunk", plan.name);
    let kept = keep_the_run(spec, &found, (small, minimal), &target, &|cand, minimal| {
        Plan {
            name: name.clone(),
            shrunk_from: Some(shrunk_from(minimal)),
            ..cand.clone()
        }
    })?;
    if let Some(words) = kept_words(&kept) {
        show.say(&words);
    }
    std::fs::read_to_string(kept.run_dir.join("result.json"))
        .ok()
        .and_then(|t| RunResult::parse(&t).ok())
        .ok_or_else(|| {
            ShrinkError::Unreadable(format!(
                "{}: no readable result.json",
                kept.run_dir.display()
            ))
        })
}

/// Runs the shrunk plan for good. The kept run must fail as the candidates did: a
/// real run that passes this time is run again (as often as it was confirmed), then
/// the larger plans the search passed through are tried, newest first. A simulated
/// plan fails every time.
fn keep_the_run(
    spec: &ShrinkSpec,
    found: &Shrunk,
    (small, minimal): (Plan, bool),
    target: &Target,
    named: &dyn Fn(&Plan, bool) -> Plan,
) -> Result<Kept, ShrinkError> {
    let mut candidates = vec![(small.clone(), minimal)];
    if small.mode == Mode::Real {
        candidates.extend(found.chain.iter().rev().map(|(p, _)| (p.clone(), false)));
    }
    let attempts = match small.mode {
        Mode::Sim => 1,
        Mode::Real => spec.confirm.max(1),
    };
    let fails = |dir: &std::path::Path| fails_as(dir, target);
    keep_a_failing_run(&candidates, attempts, &fails, &mut |cand, minimal| {
        let p = named(cand, minimal);
        let out = match p.mode {
            Mode::Sim => crate::sim::execute(&p, &spec.results, &Silent)?,
            Mode::Real => crate::engine::execute(&p, &spec.results, &Silent)?,
        };
        Ok(out.run_dir)
    })
}

/// How the kept run was found, when it was not simply the smallest plan's first run.
fn kept_words(kept: &Kept) -> Option<String> {
    if !kept.failed {
        Some(format!(
            "chaos shrink: no plan failed again in its final runs ({} of the smallest); kept the smallest plan's last run, which did not fail",
            kept.smallest_passed
        ))
    } else if kept.larger {
        Some(format!(
            "chaos shrink: the smallest plan passed its {} final runs; kept a larger plan that failed",
            kept.smallest_passed
        ))
    } else if kept.smallest_passed > 0 {
        Some(format!(
            "chaos shrink: the smallest plan passed {} final runs before one failed",
            kept.smallest_passed
        ))
    } else {
        None
    }
}

/// Whether the run in `dir` failed as `target` does, by its result.json.
fn fails_as(dir: &std::path::Path, target: &Target) -> bool {
    std::fs::read_to_string(dir.join("result.json"))
        .ok()
        .and_then(|t| RunResult::parse(&t).ok())
        .is_some_and(|r| {
            let failures = crate::sim::sweep::failures(r.checks.as_deref().unwrap_or(&[]));
            r.exit_code != ExitCode::Valid && target.hit(&failures, r.liveness.ok == Some(false))
        })
}

/// The run a shrink keeps, and how it got there.
struct Kept {
    run_dir: PathBuf,
    /// Whether the kept run failed as the target does (false: no run did).
    failed: bool,
    /// Runs of the smallest plan that passed before one failed, or all of them.
    smallest_passed: u32,
    /// Whether the kept run is of a larger plan than the smallest.
    larger: bool,
}

/// Runs each candidate up to `attempts` times, in order, until a run fails as
/// `target` does, and keeps that run's directory. Every passing run's directory is
/// removed, but the smallest plan's last, which is kept when no run fails.
fn keep_a_failing_run(
    candidates: &[(Plan, bool)],
    attempts: u32,
    fails: &dyn Fn(&std::path::Path) -> bool,
    run: &mut dyn FnMut(&Plan, bool) -> Result<PathBuf, ShrinkError>,
) -> Result<Kept, ShrinkError> {
    let mut fallback: Option<PathBuf> = None;
    let mut smallest_passed = 0;
    'plans: for (i, (cand, minimal)) in candidates.iter().enumerate() {
        for _ in 0..attempts {
            let dir = run(cand, *minimal)?;
            if fails(&dir) {
                if let Some(old) = fallback.take() {
                    let _ = results::store::remove_run(&old);
                }
                return Ok(Kept {
                    run_dir: dir,
                    failed: true,
                    smallest_passed,
                    larger: i > 0,
                });
            }
            if i == 0 {
                smallest_passed += 1;
                if let Some(old) = fallback.replace(dir) {
                    let _ = results::store::remove_run(&old);
                }
            } else {
                let _ = results::store::remove_run(&dir);
            }
            if crate::progress::stop_requested() {
                break 'plans;
            }
        }
    }
    Ok(Kept {
        run_dir: fallback.expect("the smallest plan ran at least once"),
        failed: false,
        smallest_passed,
        larger: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddmin_finds_the_known_minimal_subset() {
        let items: Vec<u32> = (0..40).collect();
        let mut calls = 0;
        let found = ddmin(&items, &mut |s: &[u32]| {
            calls += 1;
            Some(s.contains(&3) && s.contains(&29) && s.contains(&30))
        });
        assert_eq!(found, vec![3, 29, 30]);
        assert!(calls < 120, "{calls} tests");
        // One item that matters alone.
        let found = ddmin(&items, &mut |s: &[u32]| Some(s.contains(&17)));
        assert_eq!(found, vec![17]);
    }

    /// A failure that needs a crash at least 150 ms into the run (a leader) and the
    /// run to go on 200 ms after it; a crash in its first second strikes under a
    /// seed that divides by 4, a later one under any even seed. Ops are one a
    /// millisecond.
    struct Window;

    impl Oracle for Window {
        fn try_plan(&mut self, plan: &Plan, _: &Target) -> Result<Tried, String> {
            let end = (plan.time_limit_s * 1e3) as u64;
            let crash = plan
                .schedule
                .iter()
                .find(|f| matches!(f.fault, Fault::Kill))
                .map(|f| f.at_ms);
            let fails = crash.is_some_and(|at| {
                let strikes = if at < 1_000 {
                    plan.seed % 4 == 0
                } else {
                    plan.seed % 2 == 0
                };
                at >= 150 && at + 200 <= end && strikes
            });
            Ok(Tried {
                fails,
                ops: end,
                runs: 1,
            })
        }
    }

    #[test]
    fn a_fault_is_moved_earlier_and_the_run_ends_sooner_under_another_seed() {
        let mut plan = crate::spec::PlanSpec {
            mode: Mode::Sim,
            seed: Some(3),
            nodes: 3,
            time_limit_s: 3.0,
            nemesis: Some("none".parse().unwrap()),
            ..Default::default()
        }
        .plan()
        .unwrap();
        let at = |at_ms, fault| ScheduledFault {
            at_ms,
            fault,
            targets: vec![2],
            role: None,
        };
        plan.schedule = vec![at(2_000, Fault::Kill), at(2_400, Fault::Restart)];
        plan.explicit_schedule = true;
        plan.seed = 6;
        let target = Target {
            check: "protocol".into(),
            kind: None,
        };
        let budget = Budget {
            max_time: Duration::from_secs(60),
            max_runs: Some(10_000),
        };
        let shrunk = shrink(
            &plan,
            3_000,
            &target,
            &mut Window,
            budget,
            &crate::observe::Silent,
        );
        // Cutting the end alone stops at the crash plus 200 ms (2.2 s, 2,200 ops);
        // the crash moved to an eighth of its time lets the run end at 0.45 s.
        let crash = shrunk.plan.schedule[0].at_ms;
        assert!((150..=300).contains(&crash), "{:?}", shrunk.plan.schedule);
        assert!(shrunk.ops <= 500, "{} ops", shrunk.ops);
        assert_eq!(shrunk.plan.seed, 8, "the next seed that strikes early");
    }

    #[test]
    fn ddmin_returns_what_it_has_when_the_budget_ends() {
        let items: Vec<u32> = (0..40).collect();
        let mut left = 3;
        let found = ddmin(&items, &mut |s: &[u32]| {
            if left == 0 {
                return None;
            }
            left -= 1;
            Some(s.contains(&3))
        });
        // Three tests: the first half fails (kept), then its first half (kept), then
        // the budget is spent.
        assert!(found.contains(&3));
        assert!(found.len() < 40 && found.len() > 1, "{found:?}");
    }

    #[test]
    fn a_shrink_keeps_a_failing_run_when_the_smallest_plan_stops_failing() {
        let tmp = tempfile::tempdir().unwrap();
        let base = crate::spec::PlanSpec {
            mode: Mode::Sim,
            seed: Some(1),
            ..Default::default()
        }
        .plan()
        .unwrap();
        let plan = |nodes: usize| Plan {
            nodes,
            ..base.clone()
        };
        // Candidates: the smallest (1 node), then two larger ones. A run "fails" when
        // its directory's name ends in F.
        let candidates = vec![(plan(1), true), (plan(2), false), (plan(3), false)];
        let fails = |d: &std::path::Path| d.to_string_lossy().ends_with('F');
        let run_with = |outcomes: &'static [(usize, bool)]| {
            let mut n = 0;
            let root = tmp.path().to_path_buf();
            move |p: &Plan, _: bool| -> Result<PathBuf, ShrinkError> {
                let (nodes, failed) = outcomes[n];
                assert_eq!(p.nodes, nodes, "run {n} is of the expected plan");
                n += 1;
                let d = root.join(format!("{nodes}-{n}-{}", if failed { 'F' } else { 'P' }));
                std::fs::create_dir_all(&d).unwrap();
                Ok(d)
            }
        };
        // The smallest passes twice; the next plan's second run fails: that is kept,
        // and the passing runs' directories are gone.
        let mut run = run_with(&[(1, false), (1, false), (2, false), (2, true)]);
        let kept = keep_a_failing_run(&candidates, 2, &fails, &mut run).unwrap();
        assert!(kept.failed && kept.larger);
        assert_eq!(kept.smallest_passed, 2);
        assert!(kept.run_dir.ends_with("2-4-F"));
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "only the failing run is kept");
        // The smallest fails at once.
        let mut run = run_with(&[(1, true)]);
        let kept = keep_a_failing_run(&candidates, 2, &fails, &mut run).unwrap();
        assert!(kept.failed && !kept.larger && kept.smallest_passed == 0);
        // Nothing fails: the smallest plan's last run is kept, and says it passed.
        let mut run = run_with(&[(1, false), (2, false), (3, false)]);
        let kept = keep_a_failing_run(&candidates, 1, &fails, &mut run).unwrap();
        assert!(!kept.failed);
        assert!(kept.run_dir.to_string_lossy().contains("1-1-P"));
    }

    #[test]
    fn faults_are_grouped_with_their_undo() {
        let plan_schedule = nemesis::generate(
            5,
            &mut nemesis::substream(3, "nemesis"),
            "partition,kill,pause,links".parse().unwrap(),
            1_000,
            30_000,
        );
        let groups = fault_groups(&plan_schedule);
        let starts = plan_schedule
            .iter()
            .filter(|f| f.fault.starts_fault())
            .count();
        assert_eq!(groups.len(), starts, "every entry pairs with a start");
        for g in &groups {
            assert_eq!(g.len(), 2, "{g:?}");
            assert!(plan_schedule[g[0]].fault.starts_fault());
            assert!(!plan_schedule[g[1]].fault.starts_fault());
            assert!(plan_schedule[g[0]].at_ms <= plan_schedule[g[1]].at_ms);
        }
    }
}
