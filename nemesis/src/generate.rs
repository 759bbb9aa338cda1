//! Seeded schedule generation.
//!
//! The run is cut into slots of `interval_ms`, after a quiet first half-slot. Slots
//! come in rounds; each round has one slot per enabled kind, in a shuffled order, so a
//! run sees every enabled kind about equally often. A fault starts at the beginning of
//! its slot and is undone (heal, restart, resume, links-heal) after 40-70% of it; the
//! rest of the slot is quiet, so the cluster can make progress between faults. No
//! fault is left active at the end: the last slot ends half an interval before the
//! time limit. Faults may take a majority down: safety must not depend on them.
//!
//! One composite: a third of kill slots kill the majority side *of a partition*
//! (partition, kill that side, restart it, heal). Only overlapping faults like this
//! expose a node that forgets what it accepted: the nodes that could have reported
//! the newest entries are exactly the ones that restarted.

use std::str::FromStr;

use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::shapes::{SHAPES, Shape, grudge};
use crate::{Fault, LinkFaults, NodeId, Role, ScheduledFault};

/// Which kinds of faults a schedule may contain (`--nemesis LIST`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultKinds {
    pub partition: bool,
    pub kill: bool,
    pub pause: bool,
    pub links: bool,
    /// Clock rate changes and jumps (simulation only).
    #[serde(default)]
    pub clock: bool,
    /// A flipped bit in a synced WAL record, then a restart (simulation only).
    #[serde(default)]
    pub corrupt: bool,
    /// Every node killed at once and restarted, as in a power cut: in simulation each
    /// loses or tears what it had not yet synced.
    #[serde(default)]
    pub power: bool,
    /// Kill the leader while writes are in flight, restart it soon after.
    #[serde(default)]
    pub leader_kill: bool,
    /// The leader in a minority, cut off from the majority; clients write on both sides.
    #[serde(default)]
    pub leader_isolate: bool,
    /// Pause the leader past an election timeout, then resume it.
    #[serde(default)]
    pub leader_pause: bool,
    /// Restart every node in turn.
    #[serde(default)]
    pub rolling_restart: bool,
    /// Cut the links one by one, then restore them one by one in another order.
    #[serde(default)]
    pub swizzle: bool,
    /// Low-rate loss and duplication (1-3% each) on one node's links.
    #[serde(default)]
    pub flaky_links: bool,
    /// Loss alone (5-30%) on one node's links: what the kernel backend can make.
    #[serde(default)]
    pub lossy_links: bool,
}

/// Every `--nemesis` name, in the order `describe` lists them.
/// Every fault kind's `--nemesis` name.
pub const NAMES: [&str; 14] = [
    "partition",
    "kill",
    "pause",
    "links",
    "clock",
    "corrupt",
    "power",
    "leader-kill",
    "leader-isolate",
    "leader-pause",
    "rolling-restart",
    "swizzle",
    "flaky-links",
    "lossy-links",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown fault kind '{0}'; expected a comma-separated list of partition, kill, pause, links, flaky-links, lossy-links, power, clock, corrupt, leader-kill, leader-isolate, leader-pause, rolling-restart, swizzle, or all (every one but power and corrupt), or none"
)]
pub struct KindsError(pub String);

impl FromStr for FaultKinds {
    type Err = KindsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut k = FaultKinds::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => {
                    for name in NAMES {
                        if name != "power" && name != "corrupt" {
                            *k.flag(name).expect("a known name") = true;
                        }
                    }
                }
                "none" => {}
                name => match k.flag(name) {
                    Some(flag) => *flag = true,
                    None => return Err(KindsError(name.to_string())),
                },
            }
        }
        Ok(k)
    }
}

impl FaultKinds {
    /// The flag of the kind `name` (a `--nemesis` name).
    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "partition" => &mut self.partition,
            "kill" => &mut self.kill,
            "pause" => &mut self.pause,
            "links" => &mut self.links,
            "clock" => &mut self.clock,
            "corrupt" => &mut self.corrupt,
            "power" => &mut self.power,
            "leader-kill" => &mut self.leader_kill,
            "leader-isolate" => &mut self.leader_isolate,
            "leader-pause" => &mut self.leader_pause,
            "rolling-restart" => &mut self.rolling_restart,
            "swizzle" => &mut self.swizzle,
            "flaky-links" => &mut self.flaky_links,
            "lossy-links" => &mut self.lossy_links,
            _ => return None,
        })
    }

    /// The enabled kinds, by `--nemesis` name, in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        let mut copy = *self;
        NAMES
            .into_iter()
            .filter(|name| copy.flag(name).is_some_and(|f| *f))
            .collect()
    }

    fn enabled(&self, n: usize) -> Vec<&'static str> {
        self.names()
            .into_iter()
            .filter(|name| n >= nodes_needed(name))
            .collect()
    }

    /// The enabled kinds a cluster of `n` nodes cannot have, each with why, in the
    /// words a run's header and notes use: the schedule leaves them out.
    pub fn unusable(&self, n: usize) -> Vec<String> {
        self.names()
            .into_iter()
            .filter(|name| n < nodes_needed(name))
            .map(|name| {
                let why = match name {
                    "corrupt" => "at most a minority of the nodes is corrupted, and a minority of one needs 3",
                    "leader-isolate" | "swizzle" | "rolling-restart" => {
                        "it needs a minority and a majority of other nodes"
                    }
                    _ => "a network fault needs two nodes to come between",
                };
                format!(
                    "{name} faults need {} nodes ({why}): none scheduled for {n}",
                    nodes_needed(name)
                )
            })
            .collect()
    }

    /// Whether only the simulation can make some of these kinds (a corrupted disk;
    /// real processes take clock faults as a restart with a skewed clock).
    pub fn needs_simulation(&self) -> bool {
        self.corrupt
    }

    /// The kinds that delay, duplicate or reorder messages, which only the proxy
    /// backend (and the simulation) can do: `links`, `flaky-links`.
    pub fn needing_proxy(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.links {
            v.push("links");
        }
        if self.flaky_links {
            v.push("flaky-links");
        }
        v
    }

    /// The `--nemesis` spelling.
    pub fn describe(&self) -> String {
        let v = self.names();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(",")
        }
    }
}

/// The fewest nodes a fault kind means anything for: network faults need two nodes;
/// a swizzle, a leader cut off in a minority and a rolling restart need three; a
/// corrupt fault damages at most a minority, which is one node from three.
fn nodes_needed(name: &str) -> usize {
    match name {
        "partition" | "links" | "flaky-links" | "lossy-links" => 2,
        "leader-isolate" | "swizzle" | "rolling-restart" | "corrupt" => 3,
        _ => 1,
    }
}

/// The slot length a run of `duration_ms` gets when none is given: 3 s, or a fifth of
/// a run shorter than 15 s. A run has `duration / interval - 1` slots (half a slot quiet
/// at each end, and the last one must end by then), so every run has at least four
/// faults: a 30 s run nine, a 5 s run four of 1 s, a 1 s run four of 200 ms.
pub fn default_interval_ms(duration_ms: u64) -> u64 {
    (duration_ms / 5).clamp(1, DEFAULT_INTERVAL_MS)
}

/// The most nodes of `n` whose logs a schedule may corrupt: a node that finds its
/// log corrupt refuses to start and stays down, so at most a minority ever does and
/// the cluster can still serve after the final heal.
pub fn most_corrupted(n: usize) -> usize {
    n.saturating_sub(1) / 2
}

/// The longest default interval.
pub const DEFAULT_INTERVAL_MS: u64 = 3_000;

/// A schedule for `n` nodes over `duration_ms`, from `rng` (the run's nemesis stream).
pub fn generate(
    n: usize,
    rng: &mut ChaCha8Rng,
    kinds: FaultKinds,
    interval_ms: u64,
    duration_ms: u64,
) -> Vec<ScheduledFault> {
    let enabled = kinds.enabled(n);
    let mut schedule = Vec::new();
    if enabled.is_empty() || interval_ms == 0 {
        return schedule;
    }
    let mut t = interval_ms / 2;
    let mut round: Vec<&str> = Vec::new();
    // Plain kills, pauses and partitions that may be aimed by role: (index, kind).
    let mut aimable: Vec<(usize, &str)> = Vec::new();
    let mut corrupted: Vec<NodeId> = Vec::new();
    while t + interval_ms + interval_ms / 2 <= duration_ms.max(interval_ms) {
        if round.is_empty() {
            round = enabled.clone();
            round.shuffle(rng);
        }
        let kind = round.pop().expect("refilled above");
        let active = interval_ms * rng.random_range(40..=70) / 100;
        if kind == "kill" && n >= 3 && rng.random_range(0..3) == 0 {
            schedule.extend(kill_in_partition(n, rng, t, active));
            t += interval_ms;
            continue;
        }
        if kind == "corrupt" {
            // A node that finds its WAL corrupt stays down: at most a minority ever
            // does, so the cluster can still serve.
            let healthy: Vec<NodeId> = (1..=n as NodeId)
                .filter(|id| !corrupted.contains(id))
                .collect();
            if corrupted.len() < most_corrupted(n) {
                let target = healthy[rng.random_range(0..healthy.len())];
                corrupted.push(target);
                schedule.extend(corrupt_then_restart(target, rng, t, active));
            }
            t += interval_ms;
            continue;
        }
        if let Some(steps) = composite(kind, n, rng, t, active, interval_ms) {
            schedule.extend(steps);
            t += interval_ms;
            continue;
        }
        let first = schedule.len();
        let (start, stop, targets) = simple(kind, n, rng);
        schedule.push(ScheduledFault {
            at_ms: t,
            fault: start,
            targets: targets.clone(),
            role: None,
        });
        schedule.push(ScheduledFault {
            at_ms: t + active,
            fault: stop,
            targets,
            role: None,
        });
        if matches!(kind, "kill" | "pause" | "partition") {
            aimable.push((first, kind));
        }
        t += interval_ms;
    }
    aim(&mut schedule, &aimable, rng);
    schedule
}

/// A fault kind that is a start and its undo on drawn targets: (start, undo, targets).
fn simple(kind: &str, n: usize, rng: &mut ChaCha8Rng) -> (Fault, Fault, Vec<NodeId>) {
    match kind {
        "partition" => {
            let shape_name = SHAPES[rng.random_range(0..SHAPES.len())];
            let shape = Shape::draw(shape_name, n, rng);
            let cut = grudge(&shape, n);
            let targets = shape.nodes();
            (Fault::Partition { shape, cut }, Fault::Heal, targets)
        }
        "kill" => (Fault::Kill, Fault::Restart, pick_targets(n, rng)),
        "power" => (Fault::Kill, Fault::Restart, (1..=n as NodeId).collect()),
        "pause" => (Fault::Pause, Fault::Resume, pick_targets(n, rng)),
        "clock" => {
            let rate = rng.random_range(50..=200) as f64 / 100.0;
            let jump_ms = if rng.random_bool(0.5) {
                0
            } else {
                rng.random_range(1..=1_000)
            };
            (
                Fault::Clock { rate, jump_ms },
                Fault::ClockReset,
                pick_targets(n, rng),
            )
        }
        "links" => {
            let faults = LinkFaults {
                loss: rng.random_range(0..=30) as f64 / 100.0,
                delay_ms: rng.random_range(0..=40),
                jitter_ms: rng.random_range(0..=20),
                duplicate: rng.random_range(0..=10) as f64 / 100.0,
                reorder: rng.random_range(0..=20) as f64 / 100.0,
            };
            (Fault::Links(faults), Fault::LinksHeal, pick_targets(n, rng))
        }
        other => unreachable!("a fault kind without a generator: {other}"),
    }
}

/// How long `leader-pause` holds the leader at least: past the node's longest
/// default election timeout (600 ms), so that the others elect a new one.
const LEADER_PAUSE_MS: u64 = 700;

/// Aims some plain kills, pauses and partitions by role, from a stream of their own
/// (the same key, another stream), so the schedule's times, kinds and drawn targets
/// stay what they are without roles: a third of kills and pauses at the leader, a
/// quarter of partitions at a minority that holds it. The drawn targets stay as the
/// fallback for when no leader is known.
fn aim(schedule: &mut [ScheduledFault], aimable: &[(usize, &str)], rng: &ChaCha8Rng) {
    let mut roles = rng.clone();
    roles.set_stream(1);
    for (first, kind) in aimable {
        let role = match *kind {
            "kill" | "pause" if roles.random_range(0..3) == 0 => Role::Leader,
            "partition" if roles.random_range(0..4) == 0 => Role::MinorityWithLeader,
            _ => continue,
        };
        schedule[*first].role = Some(role);
        schedule[*first + 1].role = Some(role);
    }
}

/// The entries of a composite fault kind starting at `t`, or `None` for a plain kind.
fn composite(
    kind: &str,
    n: usize,
    rng: &mut ChaCha8Rng,
    t: u64,
    active: u64,
    interval_ms: u64,
) -> Option<Vec<ScheduledFault>> {
    let at = |at_ms: u64, fault: Fault, targets: Vec<NodeId>, role: Option<Role>| ScheduledFault {
        at_ms,
        fault,
        targets,
        role,
    };
    let one = |rng: &mut ChaCha8Rng| vec![rng.random_range(1..=n as NodeId)];
    Some(match kind {
        "leader-kill" => {
            let fallback = one(rng);
            vec![
                at(t, Fault::Kill, fallback.clone(), Some(Role::Leader)),
                at(t + active, Fault::Restart, fallback, Some(Role::Leader)),
            ]
        }
        "leader-pause" => {
            let fallback = one(rng);
            let hold = active.max(LEADER_PAUSE_MS).min(interval_ms * 9 / 10);
            vec![
                at(t, Fault::Pause, fallback.clone(), Some(Role::Leader)),
                at(t + hold, Fault::Resume, fallback, Some(Role::Leader)),
            ]
        }
        "leader-isolate" => {
            let shape = Shape::draw("isolate-one", n, rng);
            let cut = grudge(&shape, n);
            let targets = shape.nodes();
            let role = Some(Role::MinorityWithLeader);
            vec![
                at(t, Fault::Partition { shape, cut }, targets.clone(), role),
                at(t + active, Fault::Heal, targets, role),
            ]
        }
        "rolling-restart" => rolling_restart(n, rng, t, active),
        "swizzle" => swizzle(n, rng, t, active),
        "lossy-links" => {
            let faults = LinkFaults {
                loss: rng.random_range(5..=30) as f64 / 100.0,
                ..LinkFaults::default()
            };
            let targets = one(rng);
            vec![
                at(t, Fault::Links(faults), targets.clone(), None),
                at(t + active, Fault::LinksHeal, targets, None),
            ]
        }
        "flaky-links" => {
            let faults = LinkFaults {
                loss: rng.random_range(1..=3) as f64 / 100.0,
                delay_ms: 0,
                jitter_ms: 0,
                duplicate: rng.random_range(1..=3) as f64 / 100.0,
                reorder: 0.0,
            };
            let targets = one(rng);
            vec![
                at(t, Fault::Links(faults), targets.clone(), None),
                at(t + active, Fault::LinksHeal, targets, None),
            ]
        }
        _ => return None,
    })
}

/// Every node killed and restarted in turn, in a seeded order, within `active` ms.
fn rolling_restart(n: usize, rng: &mut ChaCha8Rng, t: u64, active: u64) -> Vec<ScheduledFault> {
    let mut order: Vec<NodeId> = (1..=n as NodeId).collect();
    order.shuffle(rng);
    let step = active / n as u64;
    let at = |at_ms, fault, id| ScheduledFault {
        at_ms,
        fault,
        targets: vec![id],
        role: None,
    };
    order
        .iter()
        .enumerate()
        .flat_map(|(k, id)| {
            let from = t + k as u64 * step;
            [
                at(from, Fault::Kill, *id),
                at(from + step / 2, Fault::Restart, *id),
            ]
        })
        .collect()
}

/// Every directed link cut one by one in a seeded order over the first half of
/// `active`, then restored one by one in another order, then healed.
fn swizzle(n: usize, rng: &mut ChaCha8Rng, t: u64, active: u64) -> Vec<ScheduledFault> {
    let mut links: Vec<(NodeId, NodeId)> = (1..=n as NodeId)
        .flat_map(|a| {
            (1..=n as NodeId)
                .filter(move |b| *b != a)
                .map(move |b| (a, b))
        })
        .collect();
    links.shuffle(rng);
    let mut restore = links.clone();
    restore.shuffle(rng);
    let of = links.len();
    let half = active / 2;
    let step = (half / of as u64).max(1);
    let cut_at = |at_ms: u64, mut cut: Vec<(NodeId, NodeId)>| {
        cut.sort_unstable();
        let shape = Shape::Swizzle { cut: cut.len(), of };
        ScheduledFault {
            at_ms,
            fault: Fault::Partition { shape, cut },
            targets: Vec::new(),
            role: None,
        }
    };
    let mut out = Vec::new();
    for k in 1..=of {
        out.push(cut_at(t + (k as u64 - 1) * step, links[..k].to_vec()));
    }
    for k in 1..of {
        let cut = links
            .iter()
            .copied()
            .filter(|l| !restore[..k].contains(l))
            .collect();
        out.push(cut_at(t + half + (k as u64 - 1) * step, cut));
    }
    out.push(ScheduledFault {
        at_ms: t + active,
        fault: Fault::Heal,
        targets: Vec::new(),
        role: None,
    });
    out
}

/// Partition into random halves, let the majority side work, kill it all at once,
/// restart it, then heal: four faults within `active` ms of `t`.
fn kill_in_partition(n: usize, rng: &mut ChaCha8Rng, t: u64, active: u64) -> Vec<ScheduledFault> {
    let shape = Shape::draw("random-halves", n, rng);
    let cut = grudge(&shape, n);
    let majority_side = match &shape {
        Shape::RandomHalves { groups } => groups[1].clone(), // the larger half
        _ => unreachable!("drew random-halves"),
    };
    let step = active / 4;
    vec![
        ScheduledFault {
            at_ms: t,
            fault: Fault::Partition { shape, cut },
            targets: majority_side.clone(),
            role: None,
        },
        ScheduledFault {
            at_ms: t + step,
            fault: Fault::Kill,
            targets: majority_side.clone(),
            role: None,
        },
        ScheduledFault {
            at_ms: t + 2 * step,
            fault: Fault::Restart,
            targets: majority_side.clone(),
            role: None,
        },
        ScheduledFault {
            at_ms: t + 3 * step,
            fault: Fault::Heal,
            targets: majority_side,
            role: None,
        },
    ]
}

/// Kill one node, corrupt its disk while it is down, and restart it on the damage:
/// three faults within `active` ms of `t`. A node that finds the damage stays down.
/// The damage comes while the node is down because a running node replaces its
/// snapshot file and drops old log segments every few hundred commands, which would
/// often take the flipped bit with them before the restart could read it.
fn corrupt_then_restart(
    target: NodeId,
    rng: &mut ChaCha8Rng,
    t: u64,
    active: u64,
) -> Vec<ScheduledFault> {
    let targets = vec![target];
    let position = rng.random();
    let step = active / 3;
    vec![
        ScheduledFault {
            at_ms: t,
            fault: Fault::Kill,
            targets: targets.clone(),
            role: None,
        },
        ScheduledFault {
            at_ms: t + step,
            fault: Fault::Corrupt { position },
            targets: targets.clone(),
            role: None,
        },
        ScheduledFault {
            at_ms: t + 2 * step,
            fault: Fault::Restart,
            targets,
            role: None,
        },
    ]
}

/// One node (half the time), a minority, or a majority: faults may take a majority
/// down, since safety must not depend on a fault budget.
fn pick_targets(n: usize, rng: &mut ChaCha8Rng) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = (1..=n as NodeId).collect();
    ids.shuffle(rng);
    let size = match rng.random_range(0..10) {
        0..=4 => 1,
        5..=7 => rng.random_range(1..=((n - 1) / 2).max(1)),
        _ => n / 2 + 1,
    };
    let mut t = ids[..size.min(n)].to_vec();
    t.sort_unstable();
    t
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn all() -> FaultKinds {
        "all".parse().unwrap()
    }

    fn schedule(seed: u64, kinds: FaultKinds) -> Vec<ScheduledFault> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        generate(5, &mut rng, kinds, 3_000, 30_000)
    }

    #[test]
    fn same_seed_same_schedule_and_different_seeds_differ() {
        assert_eq!(schedule(1, all()), schedule(1, all()));
        assert_ne!(schedule(1, all()), schedule(2, all()));
        let json = serde_json::to_string(&schedule(3, all())).unwrap();
        let back: Vec<ScheduledFault> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, schedule(3, all()));
    }

    #[test]
    fn roles_are_drawn_per_seed_and_a_start_and_its_undo_share_one() {
        let kinds: FaultKinds = "partition,kill,pause".parse().unwrap();
        let mut aimed = 0;
        for seed in 0..50 {
            let s = schedule(seed, kinds);
            assert_eq!(s, schedule(seed, kinds), "seed {seed}: deterministic");
            for (i, f) in s.iter().enumerate() {
                let Some(role) = f.role else { continue };
                if f.fault.starts_fault() {
                    aimed += 1;
                    assert_eq!(s[i + 1].role, Some(role), "seed {seed}: its undo");
                    assert!(!s[i + 1].fault.starts_fault());
                    assert!(!f.targets.is_empty(), "a fallback to fall back on");
                }
            }
        }
        // A third of kills and pauses, a quarter of partitions: about 90 of 300.
        assert!((40..=160).contains(&aimed), "{aimed} faults aimed by role");
    }

    #[test]
    fn composite_faults_have_their_shapes() {
        let one = |kind: &str, seed: u64| schedule(seed, kind.parse().unwrap());
        for seed in 0..20 {
            let s = one("leader-kill", seed);
            assert!(s.chunks(2).all(|p| p[0].fault == Fault::Kill
                && p[1].fault == Fault::Restart
                && p[0].role == Some(Role::Leader)));
            let s = one("leader-pause", seed);
            assert!(
                s.chunks(2)
                    .all(|p| p[0].fault == Fault::Pause
                        && p[1].at_ms - p[0].at_ms >= LEADER_PAUSE_MS)
            );
            let s = one("leader-isolate", seed);
            assert!(s.iter().all(|f| f.role == Some(Role::MinorityWithLeader)));
            // A rolling restart kills and restarts each node once per slot, in turn.
            let s = one("rolling-restart", seed);
            let kills: Vec<NodeId> = s
                .iter()
                .filter(|f| f.fault == Fault::Kill)
                .flat_map(|f| f.targets.clone())
                .collect();
            assert_eq!(kills.len() % 5, 0);
            let mut first = kills[..5].to_vec();
            first.sort_unstable();
            assert_eq!(first, vec![1, 2, 3, 4, 5]);
            // A swizzle cuts 1, 2, ... 20 links, then 19, ... 1, then heals.
            let s = one("swizzle", seed);
            let sizes: Vec<usize> = s
                .iter()
                .take_while(|f| f.fault != Fault::Heal)
                .map(|f| match &f.fault {
                    Fault::Partition { cut, .. } => cut.len(),
                    other => panic!("{other:?}"),
                })
                .collect();
            let expect: Vec<usize> = (1..=20).chain((1..20).rev()).collect();
            assert_eq!(sizes, expect);
            let s = one("flaky-links", seed);
            assert!(s.iter().all(|f| match &f.fault {
                Fault::Links(l) => l.loss <= 0.03 && l.duplicate <= 0.03 && l.delay_ms == 0,
                Fault::LinksHeal => true,
                _ => false,
            }));
        }
    }

    #[test]
    fn the_default_sees_several_faults_of_each_kind_in_30_seconds() {
        let kinds: FaultKinds = "partition,kill,pause".parse().unwrap();
        for seed in 0..50 {
            let s = schedule(seed, kinds);
            for name in ["partition", "kill", "pause"] {
                let count = s.iter().filter(|f| f.fault.name() == name).count();
                assert!(count >= 2, "seed {seed}: only {count} {name} faults");
            }
        }
    }

    #[test]
    fn a_run_of_a_second_or_more_has_at_least_four_faults_by_default() {
        for duration_ms in [
            1_000, 1_500, 2_000, 3_000, 5_000, 14_999, 15_000, 30_000, 600_000,
        ] {
            let interval = default_interval_ms(duration_ms);
            assert!(interval <= DEFAULT_INTERVAL_MS);
            for n in 1..=7 {
                for seed in 0..20 {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    let s = generate(n, &mut rng, all(), interval, duration_ms);
                    let faults = s.iter().filter(|f| f.fault.starts_fault()).count();
                    assert!(
                        faults >= 4,
                        "{n} nodes, {duration_ms} ms, seed {seed}: {faults} faults"
                    );
                    assert!(s.iter().all(|f| f.at_ms <= duration_ms));
                }
            }
        }
        assert_eq!(default_interval_ms(30_000), 3_000);
        assert_eq!(default_interval_ms(5_000), 1_000);
    }

    #[test]
    fn a_size_that_cannot_have_a_kind_says_so() {
        let kinds: FaultKinds = "partition,kill,swizzle,corrupt".parse().unwrap();
        let one = kinds.unusable(1);
        assert_eq!(one.len(), 3, "{one:?}");
        assert!(
            one[0].starts_with("partition faults need 2 nodes"),
            "{one:?}"
        );
        assert_eq!(kinds.unusable(2).len(), 2);
        assert!(kinds.unusable(3).is_empty());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let s = generate(1, &mut rng, kinds, 500, 10_000);
        assert!(
            s.iter()
                .all(|f| f.fault.name() == "kill" || f.fault.name() == "restart")
        );
        assert!(!s.is_empty());
    }

    #[test]
    fn every_fault_is_undone_within_the_run() {
        let mut composites = 0;
        for seed in 0..100 {
            let s = schedule(seed, all());
            let (mut cut, mut down, mut paused, mut degraded) = (false, 0i64, 0i64, false);
            for w in s.windows(2) {
                assert!(w[0].at_ms < w[1].at_ms, "seed {seed}: simultaneous faults");
            }
            for f in &s {
                match &f.fault {
                    Fault::Partition { .. } => cut = true,
                    Fault::Heal => cut = false,
                    Fault::Kill => {
                        if cut {
                            composites += 1;
                        }
                        down += f.targets.len() as i64
                    }
                    Fault::Restart => down -= f.targets.len() as i64,
                    Fault::Pause => paused += f.targets.len() as i64,
                    Fault::Resume => paused -= f.targets.len() as i64,
                    Fault::Links(_) => degraded = true,
                    Fault::LinksHeal => degraded = false,
                    Fault::Clock { .. } | Fault::ClockReset | Fault::Corrupt { .. } => {}
                }
                assert!(f.at_ms <= 30_000 - 1_500, "quiet end");
            }
            assert!(
                !cut && down == 0 && paused == 0 && !degraded,
                "seed {seed}: left a fault on"
            );
        }
        assert!(composites > 10, "kills during partitions: {composites}");
    }

    #[test]
    fn corruption_takes_at_most_a_minority_down_for_good() {
        let kinds: FaultKinds = "corrupt,kill".parse().unwrap();
        let mut corrupting = 0;
        for n in [1usize, 2, 3, 5] {
            for seed in 0..50 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let s = generate(n, &mut rng, kinds, 500, 30_000);
                let hit: std::collections::BTreeSet<NodeId> = s
                    .iter()
                    .filter(|f| matches!(f.fault, Fault::Corrupt { .. }))
                    .flat_map(|f| f.targets.clone())
                    .collect();
                assert!(hit.len() <= (n - 1) / 2, "n={n} seed {seed}: {hit:?}");
                corrupting += usize::from(!hit.is_empty());
            }
        }
        assert!(
            corrupting > 50,
            "corruption was drawn in {corrupting} schedules"
        );
    }

    #[test]
    fn a_kill_in_a_partition_kills_the_majority_side() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let s = kill_in_partition(5, &mut rng, 1_000, 2_000);
        let names: Vec<&str> = s.iter().map(|f| f.fault.name()).collect();
        assert_eq!(names, vec!["partition", "kill", "restart", "heal"]);
        assert_eq!(s[1].targets.len(), 3);
        let Fault::Partition { cut, .. } = &s[0].fault else {
            panic!()
        };
        for &a in &s[1].targets {
            for b in 1..=5 {
                assert_eq!(cut.contains(&(a, b)), !s[1].targets.contains(&b));
            }
        }
    }

    #[test]
    fn targets_are_valid_and_sometimes_a_majority() {
        let mut majority = 0;
        for seed in 0..200 {
            for f in schedule(seed, "kill".parse().unwrap()) {
                assert!(!f.targets.is_empty());
                assert!(f.targets.iter().all(|t| (1..=5).contains(t)));
                if f.targets.len() >= 3 {
                    majority += 1;
                }
            }
        }
        assert!(majority > 0, "faults never took a majority down");
    }

    #[test]
    fn kinds_parse_and_errors_name_the_bad_kind() {
        assert_eq!("none".parse::<FaultKinds>().unwrap(), FaultKinds::default());
        assert_eq!(
            all().describe(),
            "partition,kill,pause,links,clock,leader-kill,leader-isolate,leader-pause,rolling-restart,swizzle,flaky-links,lossy-links"
        );
        let back: FaultKinds = all().describe().parse().unwrap();
        assert_eq!(back, all());
        assert!(!all().needs_simulation(), "all runs with real processes");
        assert_eq!(
            "kill,teleport".parse::<FaultKinds>(),
            Err(KindsError("teleport".into()))
        );
        assert!(schedule(1, FaultKinds::default()).is_empty());
    }
}
