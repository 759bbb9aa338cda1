//! The transaction checker's speed and memory: `cargo bench -p checker --bench txn`
//! (sizes as arguments, default 10000 100000 1000000).
//!
//! Each size runs in a child process of its own, so its peak memory is its own:
//! a generated list-append history (10 processes, 10 keys in use, a key retired
//! after 32 appends, 1-4 micro-ops, 1% failed) checked under strict
//! serializability. Reports the check's wall time and transactions per second, the
//! history's bytes, and the peak resident memory above what the process held before
//! the check, per transaction (and the whole process's peak per transaction).

use std::process::Command;
use std::time::Instant;

use checker::txn::synth::{ListAppendConfig, list_append};
use checker::txn::{Model, TxnOptions, check};

/// `VmRSS` or `VmHWM` of this process, in bytes.
fn status_kb(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0)
        * 1024
}

fn one(n: usize) {
    let mut h = list_append(&ListAppendConfig::new(1, n));
    h.shrink_to_fit();
    let before = status_kb("VmRSS:");
    let hwm_before = status_kb("VmHWM:");
    let started = Instant::now();
    let report = check(
        &h,
        &TxnOptions {
            model: Model::StrictSerializable,
            ..TxnOptions::default()
        },
    );
    let secs = started.elapsed().as_secs_f64();
    let peak = status_kb("VmHWM:").max(hwm_before);
    assert_eq!(report.verdict, checker::Verdict::Valid, "{report:#?}");
    println!(
        "| {n} | {secs:.3} s | {:.0} txn/s | {} edges | history {:.0} B/txn | checker peak {:.0} B/txn | process peak {:.0} B/txn |",
        n as f64 / secs,
        report.edges,
        h.bytes() as f64 / n as f64,
        peak.saturating_sub(before) as f64 / n as f64,
        peak as f64 / n as f64,
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(n) = std::env::var("TXN_BENCH_ONE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        one(n);
        return;
    }
    let sizes: Vec<usize> = if args.is_empty() {
        vec![10_000, 100_000, 1_000_000]
    } else {
        args.iter().filter_map(|a| a.parse().ok()).collect()
    };
    println!("| transactions | check | speed | graph | history | checker | process |");
    println!("|---|---|---|---|---|---|---|");
    let me = std::env::current_exe().expect("the bench binary");
    for n in sizes {
        let status = Command::new(&me)
            .env("TXN_BENCH_ONE", n.to_string())
            .status()
            .expect("the bench child");
        assert!(status.success(), "size {n}");
    }
}
