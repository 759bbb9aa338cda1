//! `chaos explore`: a search over plans, guided by what the runs reach.
//!
//! Counting seeds spends every run on a fresh draw; most of them exercise what the
//! last thousand already did. The search here keeps a corpus of plans that each
//! reached something no earlier run had (a feature, [`features`]) and spends most
//! runs mutating those ([`mutate`]): a fault moved, stretched, dropped, added, aimed
//! at another role, given other targets, or the world reseeded under the same
//! faults. The rest are fresh plans from the flags, so the search never stops
//! looking elsewhere.
//!
//! The features of a run are the protocol situations its rules count (in
//! logarithmic buckets, so reaching one eight times is new after reaching it
//! once), each fault kind crossed with whom it hit and the cluster's state at that
//! moment ([`super::Simulated::moments`]), and the run's elections and crashes in
//! buckets.
//!
//! The search is a function of its seed: candidates are made in batches of
//! [`BATCH`] from the corpus as it stood before the batch, run on any number of
//! threads, and taken in in candidate order. Its budget (runs or seconds) only
//! says where the sequence stops. Written by hand: the corpus, the features and the
//! mutations are this harness's plans and coverage, which no fuzzing crate knows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nemesis::{Fault, Role, ScheduledFault, substream};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use results::{ExitCode, Plan};

use super::sweep::{Judged, judge};
use crate::observe::{Observer, Silent};
use crate::shrink::fault_groups;

/// Candidates made at once from the same corpus: a constant, so the search's
/// sequence does not depend on the number of threads.
pub const BATCH: usize = 8;

/// The share of runs spent on fresh plans from the flags, in percent.
const FRESH_PERCENT: u32 = 20;

/// What to search and for how long.
pub struct Spec<'a> {
    /// The search's own seed: every choice of candidates comes from it.
    pub seed: u64,
    /// The plan the flags make for a seed: the fresh candidates.
    pub fresh: &'a (dyn Fn(u64) -> Plan + Sync),
    /// Stop after this many runs, or this long, whichever comes first (at least one
    /// must be given).
    pub runs: Option<u64>,
    pub time: Option<Duration>,
    pub jobs: usize,
    /// Stop after this many failing runs (0: never).
    pub max_failures: usize,
}

/// Where a candidate came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A fresh plan from the flags for this seed.
    Fresh(u64),
    /// The corpus entry first found by run `parent`, changed as `how` says.
    Mutated { parent: u64, how: Vec<String> },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Fresh(seed) => write!(f, "fresh plan, seed {seed}"),
            Origin::Mutated { parent, how } => {
                write!(f, "run {parent}'s plan, {}", how.join(", "))
            }
        }
    }
}

/// A run the search kept: it reached something new.
struct Entry {
    run: u64,
    plan: Plan,
    /// How many features it was first to reach.
    new: usize,
}

/// A failing run.
#[derive(Debug)]
pub struct Found {
    /// Its number in the search (from 1).
    pub run: u64,
    pub plan: Plan,
    pub origin: Origin,
    pub judged: Judged,
    /// Seconds into the search when it was judged.
    pub after_s: f64,
    /// Its run directory, once written.
    pub run_dir: Option<PathBuf>,
}

/// What a search found.
#[derive(Debug)]
pub struct Explored {
    pub runs: u64,
    pub wall_s: f64,
    pub failures: Vec<Found>,
    /// Every feature reached, with the run that reached it first.
    pub features: BTreeMap<String, u64>,
    /// The protocol situations, summed over every run.
    pub coverage: checker::protocol::Coverage,
    /// Runs kept in the corpus for reaching something new.
    pub corpus: usize,
    /// Faults that took effect over every run.
    pub faults: u64,
    /// The worst run's exit code; unknown when the search stopped at a signal.
    pub exit_code: ExitCode,
    /// Why the search stopped early (a signal, enough failures), if it did.
    pub stopped: Option<String>,
}

/// A run's features: what it reached, in words ([`self`]).
pub fn features(j: &Judged) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, n) in &j.coverage.0 {
        for b in 0..=bucket(*n) {
            if *n > 0 {
                out.insert(format!(
                    "situation/{}/{}",
                    name.replace('_', "-"),
                    1u64 << b
                ));
            }
        }
    }
    for m in &j.moments {
        out.insert(format!("fault/{m}"));
    }
    out.insert(format!("elections/{}", 1u64 << bucket(j.counts.elections)));
    out.insert(format!("crashes/{}", 1u64 << bucket(j.counts.crashes)));
    for (check, kinds) in &j.failures {
        for k in kinds {
            out.insert(format!("anomaly/{check}/{}", k.as_str()));
        }
    }
    out
}

/// The logarithmic bucket of a count: 0 for 0 and 1, then floor(log2), at most 6.
fn bucket(n: u64) -> u32 {
    (63 - n.max(1).leading_zeros()).min(6)
}

/// Runs the search. Each failing run is told to `show` when found, with its
/// origin, and the search's state after every batch (a line whenever the corpus
/// grew); the caller writes the failures' run directories.
pub fn explore(spec: &Spec, show: &dyn Observer, signals: bool) -> Result<Explored, String> {
    assert!(
        spec.runs.is_some() || spec.time.is_some(),
        "a search needs a budget of runs or time"
    );
    let started = Instant::now();
    let mut rng = substream(spec.seed, "explore");
    let mut corpus: Vec<Entry> = Vec::new();
    let mut out = Explored {
        runs: 0,
        wall_s: 0.0,
        failures: Vec::new(),
        features: BTreeMap::new(),
        coverage: checker::protocol::Coverage::default(),
        corpus: 0,
        faults: 0,
        exit_code: ExitCode::Valid,
        stopped: None,
    };
    if signals {
        crate::progress::stop_on_signals();
    }
    loop {
        if signals && crate::progress::stop_requested() {
            out.stopped = Some("interrupted (SIGINT or SIGTERM)".into());
            out.exit_code = out.exit_code.worse(ExitCode::Unknown);
            break;
        }
        let left = spec
            .runs
            .map_or(BATCH as u64, |r| r.saturating_sub(out.runs));
        let out_of_time = spec.time.is_some_and(|t| started.elapsed() >= t);
        if left == 0 || out_of_time {
            break;
        }
        let batch: Vec<(Plan, Origin)> = (0..BATCH)
            .map(|_| candidate(&mut rng, &corpus, spec.fresh))
            .take(left as usize)
            .collect();
        let judged = run_batch(&batch, spec.jobs)?;
        let kept_before = corpus.len();
        for ((plan, origin), j) in batch.into_iter().zip(judged) {
            out.runs += 1;
            out.faults += j.faults as u64;
            out.coverage.add(&j.coverage);
            let mut new = 0;
            for f in features(&j) {
                if let std::collections::btree_map::Entry::Vacant(v) = out.features.entry(f) {
                    v.insert(out.runs);
                    new += 1;
                }
            }
            if new > 0 {
                corpus.push(Entry {
                    run: out.runs,
                    plan: plan.clone(),
                    new,
                });
            }
            out.exit_code = out.exit_code.worse(j.exit_code);
            if j.exit_code != ExitCode::Valid {
                show.say(&format!(
                    "run {} ({origin}): {} (exit {}): {}",
                    out.runs,
                    j.verdict.as_str(),
                    j.exit_code.code(),
                    j.problem.as_deref().unwrap_or("-")
                ));
                out.failures.push(Found {
                    run: out.runs,
                    plan,
                    origin,
                    judged: j,
                    after_s: started.elapsed().as_secs_f64(),
                    run_dir: None,
                });
            }
        }
        show.search_state(
            &format!(
                "run {}: {} features reached, {} plans kept, {} failing",
                out.runs,
                out.features.len(),
                corpus.len(),
                out.failures.len()
            ),
            corpus.len() > kept_before,
        );
        if spec.max_failures > 0 && out.failures.len() >= spec.max_failures {
            out.stopped = Some(format!("{} failing runs", out.failures.len()));
            break;
        }
    }
    out.wall_s = started.elapsed().as_secs_f64();
    out.corpus = corpus.len();
    Ok(out)
}

/// Runs a batch's plans on `jobs` threads; the judgements in the batch's order.
fn run_batch(batch: &[(Plan, Origin)], jobs: usize) -> Result<Vec<Judged>, String> {
    let slots: Vec<Mutex<Option<Judged>>> = batch.iter().map(|_| Mutex::new(None)).collect();
    crate::seeds::on_threads(
        jobs,
        &|i| (i < batch.len() as u64).then_some(i),
        &|| None,
        &|i| {
            let judged = judge(&batch[i as usize].0).map_err(|e| e.what)?;
            *slots[i as usize].lock().expect("not poisoned") = Some(judged);
            Ok(())
        },
    )?;
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .expect("not poisoned")
                .ok_or_else(|| "a candidate of the batch was not run".to_string())
        })
        .collect()
}

/// The next candidate: a fresh plan, or a corpus entry mutated. Entries that
/// reached more new features, and recent ones, are picked more often.
fn candidate(
    rng: &mut ChaCha8Rng,
    corpus: &[Entry],
    fresh: &(dyn Fn(u64) -> Plan + Sync),
) -> (Plan, Origin) {
    let seed = rng.random_range(1..=u64::from(u32::MAX));
    if corpus.is_empty() || rng.random_range(0..100) < FRESH_PERCENT {
        return (fresh(seed), Origin::Fresh(seed));
    }
    let parent = if rng.random_bool(0.5) {
        let recent = corpus.len().min(8);
        &corpus[corpus.len() - 1 - rng.random_range(0..recent)]
    } else {
        let total: usize = corpus.iter().map(|e| e.new).sum();
        let mut pick = rng.random_range(0..total.max(1));
        corpus
            .iter()
            .find(|e| {
                if pick < e.new {
                    true
                } else {
                    pick -= e.new;
                    false
                }
            })
            .unwrap_or(&corpus[corpus.len() - 1])
    };
    let donor = &corpus[rng.random_range(0..corpus.len())].plan;
    let (plan, how) = mutate(&parent.plan, donor, rng, fresh);
    (
        plan,
        Origin::Mutated {
            parent: parent.run,
            how,
        },
    )
}

/// One to three changes to `plan`, each a valid plan (a change that would make an
/// invalid one is not made); what was done, in words. `donor` is another corpus
/// plan, for a fault taken from it.
pub fn mutate(
    plan: &Plan,
    donor: &Plan,
    rng: &mut ChaCha8Rng,
    fresh: &(dyn Fn(u64) -> Plan + Sync),
) -> (Plan, Vec<String>) {
    let mut p = plan.clone();
    p.explicit_schedule = true;
    p.shrunk_from = None;
    let mut how = Vec::new();
    let changes = rng.random_range(1..=3);
    let mut tries = 0;
    while how.len() < changes && tries < 20 {
        tries += 1;
        let mut next = p.clone();
        let Some(what) = change(&mut next, donor, rng, fresh) else {
            continue;
        };
        next.schedule.sort_by_key(|f| f.at_ms);
        if corrupts_a_minority(&next)
            && next.clone().normalised().is_ok()
            && nemesis::check_schedule(
                &next.schedule,
                next.nodes,
                (next.time_limit_s * 1e3) as u64,
                false,
            )
            .is_ok()
        {
            p = next;
            how.push(what);
        }
    }
    if how.is_empty() {
        how.push(reseed(&mut p, rng));
    }
    (p, how)
}

/// The same faults over another draw of the network, disks and clients.
fn reseed(p: &mut Plan, rng: &mut ChaCha8Rng) -> String {
    p.seed = rng.random_range(1..=u64::from(u32::MAX));
    format!("reseeded ({})", p.seed)
}

/// Whether no more nodes ever have their logs corrupted than the schedule generator
/// allows ([`nemesis::most_corrupted`]): a cluster with a majority refusing to start
/// cannot serve after the final heal, which is no bug of the system's.
fn corrupts_a_minority(p: &Plan) -> bool {
    let corrupted: BTreeSet<u32> = p
        .schedule
        .iter()
        .filter(|f| matches!(f.fault, Fault::Corrupt { .. }))
        .flat_map(|f| f.targets.iter().copied())
        .collect();
    corrupted.len() <= nemesis::most_corrupted(p.nodes)
}

/// One change of a plan's faults or world, in words; `None` when it does not apply.
fn change(
    p: &mut Plan,
    donor: &Plan,
    rng: &mut ChaCha8Rng,
    fresh: &(dyn Fn(u64) -> Plan + Sync),
) -> Option<String> {
    let limit_ms = (p.time_limit_s * 1e3) as u64;
    let groups = fault_groups(&p.schedule);
    let pick = |rng: &mut ChaCha8Rng| -> Option<usize> {
        (!groups.is_empty()).then(|| rng.random_range(0..groups.len()))
    };
    // Dropping is as likely as adding (from a fresh plan or a kept one), so the
    // faults per plan do not creep up over a long search.
    match rng.random_range(0..9) {
        0 => Some(reseed(p, rng)),
        1 | 2 => {
            let g = pick(rng)?;
            (groups.len() > 1).then_some(())?;
            let start = p.schedule[groups[g][0]].clone();
            let drop: BTreeSet<usize> = groups[g].iter().copied().collect();
            p.schedule = take_out(&p.schedule, &drop);
            Some(format!(
                "dropped the {} at {} ms",
                start.fault.name(),
                start.at_ms
            ))
        }
        3 => {
            let g = pick(rng)?;
            let first = p.schedule[groups[g][0]].at_ms;
            let last = groups[g].iter().map(|i| p.schedule[*i].at_ms).max()?;
            let span = last - first;
            let to = rng.random_range(0..limit_ms.saturating_sub(span).max(1));
            for i in &groups[g] {
                p.schedule[*i].at_ms = p.schedule[*i].at_ms - first + to;
            }
            Some(format!(
                "moved the {} from {first} to {to} ms",
                p.schedule[groups[g][0]].fault.name()
            ))
        }
        4 => {
            // Stretch or shrink how long a fault holds.
            let g = pick(rng)?;
            let [start, undo] = groups[g][..] else {
                return None;
            };
            let held = p.schedule[undo].at_ms - p.schedule[start].at_ms;
            let to = (held * rng.random_range(25..=300) / 100).max(1);
            p.schedule[undo].at_ms = p.schedule[start].at_ms + to;
            Some(format!(
                "held the {} at {} ms for {to} ms instead of {held}",
                p.schedule[start].fault.name(),
                p.schedule[start].at_ms
            ))
        }
        5 => {
            // A fault of a fresh plan's schedule, at a time of its own.
            let other = fresh(rng.random_range(1..=u64::from(u32::MAX)));
            add_from(p, &other, rng, "a fresh plan")
        }
        6 => add_from(p, donor, rng, "another kept plan"),
        7 => {
            let g = pick(rng)?;
            aim(p, &groups[g], rng)
        }
        _ => {
            let g = pick(rng)?;
            retarget(p, &groups[g], rng)
        }
    }
}

fn take_out(schedule: &[ScheduledFault], drop: &BTreeSet<usize>) -> Vec<ScheduledFault> {
    schedule
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, f)| f.clone())
        .collect()
}

/// Adds one fault (with its undo) of `from`'s schedule to `p`'s, at a drawn time.
fn add_from(p: &mut Plan, from: &Plan, rng: &mut ChaCha8Rng, whose: &str) -> Option<String> {
    if from.nodes != p.nodes {
        return None;
    }
    let groups = fault_groups(&from.schedule);
    if groups.is_empty() {
        return None;
    }
    let g = &groups[rng.random_range(0..groups.len())];
    let first = from.schedule[g[0]].at_ms;
    let span = g.iter().map(|i| from.schedule[*i].at_ms).max()? - first;
    let limit_ms = (p.time_limit_s * 1e3) as u64;
    let to = rng.random_range(0..limit_ms.saturating_sub(span).max(1));
    for i in g {
        let mut f = from.schedule[*i].clone();
        f.at_ms = f.at_ms - first + to;
        p.schedule.push(f);
    }
    Some(format!(
        "added a {} of {whose} at {to} ms",
        from.schedule[g[0]].fault.name()
    ))
}

/// Aims a kill, pause or partition at a role (or takes its role away).
fn aim(p: &mut Plan, group: &[usize], rng: &mut ChaCha8Rng) -> Option<String> {
    let start = &p.schedule[group[0]];
    let roles: &[Role] = match start.fault {
        Fault::Kill | Fault::Pause => &[Role::Leader, Role::Followers],
        Fault::Partition { .. } => &[Role::MinorityWithLeader, Role::MajorityWithoutLeader],
        _ => return None,
    };
    let role = match start.role {
        Some(_) if rng.random_bool(0.3) => None,
        _ => Some(roles[rng.random_range(0..roles.len())]),
    };
    let name = start.fault.name();
    for i in group {
        p.schedule[*i].role = role;
    }
    Some(match role {
        Some(r) => format!("aimed a {name} at the {}", r.name()),
        None => format!("took a {name}'s role away"),
    })
}

/// Draws other targets for a kill, pause, clock or link fault (start and undo).
fn retarget(p: &mut Plan, group: &[usize], rng: &mut ChaCha8Rng) -> Option<String> {
    let start = &p.schedule[group[0]];
    if !matches!(
        start.fault,
        Fault::Kill | Fault::Pause | Fault::Clock { .. } | Fault::Links(_)
    ) || start.role.is_some()
    {
        return None;
    }
    let n = p.nodes;
    let size = rng.random_range(1..=n.div_ceil(2).max(1));
    let mut ids: Vec<u32> = (1..=n as u32).collect();
    let mut targets = Vec::new();
    for _ in 0..size {
        targets.push(ids.remove(rng.random_range(0..ids.len())));
    }
    targets.sort_unstable();
    let name = start.fault.name();
    for i in group {
        p.schedule[*i].targets = targets.clone();
    }
    Some(format!("aimed a {name} at nodes {targets:?}"))
}

/// Each failing run written into a run directory under `root` (the same plan gives
/// the same run), for its report and `chaos sim --plan` / `chaos shrink`.
pub fn run_dirs(found: &mut [Found], root: &Path, show: &dyn Observer) {
    for f in found {
        match super::execute(&f.plan, root, &Silent) {
            Ok(out) => {
                let dir = std::path::absolute(&out.run_dir).unwrap_or(out.run_dir.clone());
                show.say(&format!(
                    "run {}: run directory {}\n  reproduce: chaos sim --plan {}",
                    f.run,
                    dir.display(),
                    dir.join("plan.json").display()
                ));
                f.run_dir = Some(dir);
            }
            Err(e) => show.say(&format!(
                "run {}: cannot write its run directory: {e}",
                f.run
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_logarithmic() {
        assert_eq!(
            [0, 1, 2, 3, 4, 7, 8, 100, 1 << 20].map(bucket),
            [0, 0, 1, 1, 2, 2, 3, 6, 6]
        );
    }
}
