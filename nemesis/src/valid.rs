//! Whether a schedule fits its run: every target and every cut link inside the
//! cluster, every probability a probability, every delay and clock change bounded,
//! every fault inside the run. A generated schedule fits by construction (a test
//! below holds the generator to it); an explicit one (`--schedule`, a hand-edited
//! plan.json) is checked here before any work, so that nothing the harness cannot
//! carry out is counted as a fault that "took effect".

use crate::{Fault, NodeId, ScheduledFault};

/// The longest added delay or jitter of a link fault: a minute.
pub const MAX_LINK_DELAY_MS: u64 = 60_000;
/// The clock rates a clock fault may set: a hundredth to a hundred times real speed.
pub const CLOCK_RATES: (f64, f64) = (0.01, 100.0);
/// The longest forward jump of a clock fault: an hour.
pub const MAX_CLOCK_JUMP_MS: u64 = 3_600_000;

/// Checks `schedule` for a run of `nodes` nodes lasting `duration_ms`. `strict`: every
/// step must fall inside the run (an explicit schedule); otherwise only the steps that
/// start a fault must (an undo past the end is the final heal's to do). The error names
/// the step by its time and kind.
pub fn check_schedule(
    schedule: &[ScheduledFault],
    nodes: usize,
    duration_ms: u64,
    strict: bool,
) -> Result<(), String> {
    let inside = |id: NodeId| id >= 1 && id as usize <= nodes;
    for f in schedule {
        let at = |why: String| Err(format!("the {} at {} ms {why}", f.fault.name(), f.at_ms));
        if (strict || f.fault.starts_fault()) && f.at_ms >= duration_ms {
            return at(format!(
                "is not inside the run, which ends at {duration_ms} ms: it would never run"
            ));
        }
        if let Some(t) = f.targets.iter().find(|t| !inside(**t)) {
            return at(format!("targets node {t}, outside nodes 1..={nodes}"));
        }
        match &f.fault {
            Fault::Partition { shape, cut } => {
                if let Some(t) = shape.nodes().into_iter().find(|t| !inside(*t)) {
                    return at(format!("names node {t}, outside nodes 1..={nodes}"));
                }
                if let Some((a, b)) = cut.iter().find(|(a, b)| !inside(*a) || !inside(*b)) {
                    return at(format!("cuts the link {a}->{b}, outside nodes 1..={nodes}"));
                }
                if let Some((a, _)) = cut.iter().find(|(a, b)| a == b) {
                    return at(format!(
                        "cuts the link {a}->{a}: a node has no link to itself"
                    ));
                }
            }
            Fault::Links(l) => {
                for (name, p) in [
                    ("loss", l.loss),
                    ("duplicate", l.duplicate),
                    ("reorder", l.reorder),
                ] {
                    if !(0.0..=1.0).contains(&p) {
                        return at(format!("has {name} {p}: a probability is in [0, 1]"));
                    }
                }
                for (name, ms) in [("delay_ms", l.delay_ms), ("jitter_ms", l.jitter_ms)] {
                    if ms > MAX_LINK_DELAY_MS {
                        return at(format!("has {name} {ms}: at most {MAX_LINK_DELAY_MS}"));
                    }
                }
            }
            Fault::Clock { rate, jump_ms } => {
                let (lo, hi) = CLOCK_RATES;
                if !(lo..=hi).contains(rate) {
                    return at(format!(
                        "has rate {rate}: a clock runs at {lo} to {hi} times real speed"
                    ));
                }
                if *jump_ms > MAX_CLOCK_JUMP_MS {
                    return at(format!("jumps {jump_ms} ms: at most {MAX_CLOCK_JUMP_MS}"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FaultKinds, LinkFaults, Shape, generate, substream};

    fn one(fault: Fault, targets: Vec<NodeId>, at_ms: u64) -> Vec<ScheduledFault> {
        vec![ScheduledFault {
            at_ms,
            fault,
            targets,
            role: None,
        }]
    }

    #[test]
    fn every_generated_schedule_fits_its_run() {
        let every: FaultKinds = "all,power,corrupt".parse().unwrap();
        for nodes in [1, 2, 3, 5, 7] {
            for seed in 0..200 {
                for (interval, duration) in [(300, 3_000), (1_000, 5_000), (3_000, 30_000)] {
                    let s = generate(
                        nodes,
                        &mut substream(seed, "nemesis"),
                        every,
                        interval,
                        duration,
                    );
                    check_schedule(&s, nodes, duration, true).unwrap_or_else(|e| {
                        panic!("{nodes} nodes, seed {seed}, {interval}/{duration} ms: {e}")
                    });
                }
            }
        }
    }

    #[test]
    fn a_schedule_outside_its_cluster_or_its_run_is_refused() {
        let cut = Fault::Partition {
            shape: Shape::IsolateOne { node: 1 },
            cut: vec![(9, 1), (1, 9)],
        };
        let lossy = |loss, duplicate| {
            Fault::Links(LinkFaults {
                loss,
                duplicate,
                ..LinkFaults::default()
            })
        };
        let slow = Fault::Links(LinkFaults {
            delay_ms: 3_600_000,
            ..LinkFaults::default()
        });
        let clock = Fault::Clock {
            rate: 0.0,
            jump_ms: 0,
        };
        for (s, words) in [
            (one(cut, vec![1], 0), "cuts the link 9->1"),
            (one(lossy(7.5, 0.0), vec![1], 0), "loss 7.5"),
            (one(lossy(0.1, -1.0), vec![1], 0), "duplicate -1"),
            (one(slow, vec![1], 0), "delay_ms 3600000"),
            (one(clock, vec![1], 0), "rate 0"),
            (one(Fault::Kill, vec![4], 0), "targets node 4"),
            (one(Fault::Kill, vec![0], 0), "targets node 0"),
            (one(Fault::Kill, vec![1], 999_999_999), "not inside the run"),
            (one(Fault::Restart, vec![1], 3_000), "not inside the run"),
        ] {
            let why = check_schedule(&s, 3, 3_000, true).unwrap_err();
            assert!(why.contains(words), "{words}: {why}");
        }
        assert!(
            check_schedule(&one(Fault::Restart, vec![1], 3_000), 3, 3_000, false).is_ok(),
            "a generated plan's undo past the end is the final heal's"
        );
        assert!(check_schedule(&one(lossy(1.0, 0.0), vec![3], 2_999), 3, 3_000, true).is_ok());
    }
}
