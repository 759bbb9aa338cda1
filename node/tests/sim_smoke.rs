use paxos_node::sim::{SimConfig, run};
use paxos_node::types::Bug;
#[test]
fn smoke() {
    let t = std::time::Instant::now();
    let mut decided = 0;
    let mut slots = 0;
    let mut bad = 0;
    let mut nothing = 0;
    let mut okops = 0;
    for seed in 0..1000u64 {
        for n in [3usize, 5] {
            let r = run(SimConfig::new(n, seed));
            if !r.violations.is_empty() {
                bad += 1;
                if bad < 5 {
                    eprintln!("{:?}", r.violations);
                }
            }
            if r.registers_decided == 0 || r.slots_chosen == 0 {
                nothing += 1;
            }
            decided += r.registers_decided;
            slots += r.slots_chosen;
            okops += r.ops_ok;
        }
    }
    eprintln!(
        "elapsed {:?} decided {decided} slots {slots} okops {okops} nothing {nothing} bad {bad}",
        t.elapsed()
    );
    for bug in Bug::ALL {
        let mut first = None;
        let mut count = 0;
        for seed in 0..300u64 {
            for n in [3usize, 5] {
                let r = run(SimConfig::new(n, seed).with_bug(bug));
                if !r.violations.is_empty() {
                    count += 1;
                    if first.is_none() {
                        first = Some((seed, n, r.violations[0].clone()));
                    }
                }
            }
        }
        eprintln!("{bug}: {count}/600 first {first:?}");
    }
    assert_eq!(bad, 0);
}
