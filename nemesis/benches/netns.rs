//! The kernel backend's costs: `cargo bench -p nemesis --bench netns`.
//!
//! 1. Setting up a namespace network (hub, bridge, a namespace, veth pair, address
//!    and empty nftables chain per node) and tearing it down (closing its
//!    descriptors; the kernel then frees each namespace), for 3 and 5 nodes, 10 times
//!    each.
//! 2. A rule change: a partition installed and healed (each rewrites the chains of
//!    the nodes whose incoming links change, one `nft -f` per node), 50 times each on
//!    5 nodes; and loss on one node's links, set and cleared.
//!
//! Skipped, with the reason, where namespaces cannot be made.

use std::time::{Duration, Instant};

use nemesis::netns::{NetnsNetwork, available};
use nemesis::{LinkFaults, Links};

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "median {:.1} ms, min {:.1} ms, max {:.1} ms",
        ms(v[v.len() / 2]),
        ms(v[0]),
        ms(v[v.len() - 1])
    )
}

fn main() {
    if let Err(e) = available() {
        println!("skipped: {e}");
        return;
    }
    for n in [3, 5] {
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            let t = Instant::now();
            let net = NetnsNetwork::create(n).expect("a namespace network");
            up.push(t.elapsed());
            let t = Instant::now();
            drop(net);
            down.push(t.elapsed());
        }
        println!("{n} nodes: set-up {}; tear-down {}", stats(up), stats(down));
    }
    let net = NetnsNetwork::create(5).expect("a namespace network");
    let (mut cut, mut heal) = (Vec::new(), Vec::new());
    for i in 0..50u32 {
        // Node (i % 5) + 1 cut off from the others, both ways.
        let lone = i % 5 + 1;
        let links: Vec<(u32, u32)> = (1..=5)
            .filter(|j| *j != lone)
            .flat_map(|j| [(lone, j), (j, lone)])
            .collect();
        let t = Instant::now();
        net.cut(&links).expect("cut");
        cut.push(t.elapsed());
        let t = Instant::now();
        net.heal().expect("heal");
        heal.push(t.elapsed());
    }
    println!(
        "partition of 1 of 5 nodes: install {}; heal {}",
        stats(cut),
        stats(heal)
    );
    let (mut set, mut clear) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        let loss = LinkFaults {
            loss: 0.2,
            ..LinkFaults::default()
        };
        let t = Instant::now();
        net.degrade(&[1], &loss).expect("degrade");
        set.push(t.elapsed());
        let t = Instant::now();
        net.restore().expect("restore");
        clear.push(t.elapsed());
    }
    println!(
        "20% loss on one node's links: set {}; clear {}",
        stats(set),
        stats(clear)
    );
}
