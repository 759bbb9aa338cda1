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
use crate::{Fault, LinkFaults, NodeId, ScheduledFault};

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
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown fault kind '{0}'; expected a comma-separated list of partition, kill, pause, links, power, clock, corrupt, or all (the first four), or none"
)]
pub struct KindsError(pub String);

impl FromStr for FaultKinds {
    type Err = KindsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut k = FaultKinds::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "partition" => k.partition = true,
                "kill" => k.kill = true,
                "pause" => k.pause = true,
                "links" => k.links = true,
                "clock" => k.clock = true,
                "corrupt" => k.corrupt = true,
                "power" => k.power = true,
                "all" => {
                    k.partition = true;
                    k.kill = true;
                    k.pause = true;
                    k.links = true;
                }
                "none" => {}
                other => return Err(KindsError(other.to_string())),
            }
        }
        Ok(k)
    }
}

impl FaultKinds {
    fn enabled(&self, n: usize) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.partition && n >= 2 {
            v.push("partition");
        }
        if self.kill {
            v.push("kill");
        }
        if self.pause {
            v.push("pause");
        }
        if self.links && n >= 2 {
            v.push("links");
        }
        if self.clock {
            v.push("clock");
        }
        if self.corrupt {
            v.push("corrupt");
        }
        if self.power {
            v.push("power");
        }
        v
    }

    /// Whether only the simulation can make some of these kinds.
    pub fn needs_simulation(&self) -> bool {
        self.clock || self.corrupt
    }

    /// The `--nemesis` spelling.
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        for (on, name) in [
            (self.partition, "partition"),
            (self.kill, "kill"),
            (self.pause, "pause"),
            (self.links, "links"),
            (self.clock, "clock"),
            (self.corrupt, "corrupt"),
            (self.power, "power"),
        ] {
            if on {
                v.push(name);
            }
        }
        if v.is_empty() {
            "none".into()
        } else {
            v.join(",")
        }
    }
}

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
            if corrupted.len() < (n - 1) / 2 {
                let target = healthy[rng.random_range(0..healthy.len())];
                corrupted.push(target);
                schedule.extend(corrupt_then_restart(target, rng, t, active));
            }
            t += interval_ms;
            continue;
        }
        let (start, stop, targets) = match kind {
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
            _ => {
                let faults = LinkFaults {
                    loss: rng.random_range(0..=30) as f64 / 100.0,
                    delay_ms: rng.random_range(0..=40),
                    jitter_ms: rng.random_range(0..=20),
                    duplicate: rng.random_range(0..=10) as f64 / 100.0,
                    reorder: rng.random_range(0..=20) as f64 / 100.0,
                };
                (Fault::Links(faults), Fault::LinksHeal, pick_targets(n, rng))
            }
        };
        schedule.push(ScheduledFault {
            at_ms: t,
            fault: start,
            targets: targets.clone(),
        });
        schedule.push(ScheduledFault {
            at_ms: t + active,
            fault: stop,
            targets,
        });
        t += interval_ms;
    }
    schedule
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
        },
        ScheduledFault {
            at_ms: t + step,
            fault: Fault::Kill,
            targets: majority_side.clone(),
        },
        ScheduledFault {
            at_ms: t + 2 * step,
            fault: Fault::Restart,
            targets: majority_side.clone(),
        },
        ScheduledFault {
            at_ms: t + 3 * step,
            fault: Fault::Heal,
            targets: majority_side,
        },
    ]
}

/// Corrupt one node's WAL, kill it, and restart it on the damaged log: three faults
/// within `active` ms of `t`. A node that finds the damage stays down.
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
            fault: Fault::Corrupt { position },
            targets: targets.clone(),
        },
        ScheduledFault {
            at_ms: t + step,
            fault: Fault::Kill,
            targets: targets.clone(),
        },
        ScheduledFault {
            at_ms: t + 2 * step,
            fault: Fault::Restart,
            targets,
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
        assert_eq!(all().describe(), "partition,kill,pause,links");
        assert_eq!(
            "kill,teleport".parse::<FaultKinds>(),
            Err(KindsError("teleport".into()))
        );
        assert!(schedule(1, FaultKinds::default()).is_empty());
    }
}
