//! Checker performance: `cargo bench -p harness --bench checker`.
//!
//! 1. Single-key histories of 100 ops from 10 processes with ~15% info ops: the
//!    linearizability check's median and worst time over 1,000 generated histories.
//! 2. A 2,000-op history over 10 keys from 50 processes: parse + all checks.
//! 3. A 1,000,000-op history over 1,000 keys: `chaos check` as a child process
//!    (parse + all checks), wall time and peak memory (getrusage of the child).
//! 4. Register agreement and validity alone over 1,000,000 events.
//!
//! BENCH_SKIP_BIG=1 skips case 3.

use std::io::BufWriter;
use std::process::Command;
use std::time::{Duration, Instant};

use checker::history::parse_history_str;
use checker::synth::{SynthConfig, history_text, write_history};
use checker::{Options, check, linearizability, register};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn single_key() {
    let mut times = Vec::new();
    let mut info_ops = 0usize;
    let mut total_ops = 0usize;
    for seed in 0..1_000 {
        let cfg = SynthConfig::kv(seed, 10, 1, 100, 0.15);
        let h = parse_history_str(&history_text(&cfg)).unwrap();
        total_ops += h.ops.len();
        info_ops += h
            .ops
            .iter()
            .filter(|o| o.outcome == checker::history::Outcome::Info)
            .count();
        let started = Instant::now();
        let report = linearizability(&h, &Options::default());
        times.push(started.elapsed());
        assert_eq!(report.verdict, checker::Verdict::Valid, "seed {seed}");
    }
    times.sort();
    println!(
        "single key, 100 ops, 10 processes, {:.1}% info, 1000 histories: median {:.3} ms, p99 {:.3} ms, worst {:.3} ms",
        100.0 * info_ops as f64 / total_ops as f64,
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100]),
        ms(times[times.len() - 1])
    );
}

fn two_thousand() {
    let mut worst = Duration::ZERO;
    let mut sum = Duration::ZERO;
    for seed in 0..20 {
        let text = history_text(&SynthConfig::kv(seed, 50, 10, 2_000, 0.1));
        let started = Instant::now();
        let h = parse_history_str(&text).unwrap();
        let result = check(&h, &[], &Options::default());
        let took = started.elapsed();
        assert_eq!(result.verdict, checker::Verdict::Valid);
        worst = worst.max(took);
        sum += took;
    }
    println!(
        "2,000 ops, 10 keys, 50 processes, 10% info, 20 histories: mean {:.2} ms, worst {:.2} ms (parse + all checks)",
        ms(sum / 20),
        ms(worst)
    );
}

fn one_million() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let mut cfg = SynthConfig::kv(1, 200, 1_000, 1_000_000, 0.05);
    cfg.register_keys = 1_000;
    cfg.propose_share = 0.1;
    {
        let mut out = BufWriter::new(std::fs::File::create(&path).unwrap());
        write_history(&cfg, &mut out).unwrap();
    }
    let size_mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let took = started.elapsed();
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    println!(
        "1,000,000 ops ({size_mb:.0} MB, 1,000 KV + 1,000 register keys, 200 processes, 5% info): `chaos check` {:.2} s wall, peak RSS {:.0} MB",
        took.as_secs_f64(),
        usage.max_rss() as f64 / 1024.0
    );
}

fn registers_alone() {
    let mut cfg = SynthConfig::kv(2, 100, 1, 500_000, 0.05);
    cfg.register_keys = 10_000;
    cfg.propose_share = 1.0;
    let text = history_text(&cfg);
    // Each the median of 5 passes: one pass is 0.1-0.2 s, and single passes of
    // the same code differed by a third from run to run.
    let mut parses = Vec::new();
    let mut h = None;
    for _ in 0..5 {
        let started = Instant::now();
        h = Some(parse_history_str(&text).unwrap());
        parses.push(started.elapsed());
    }
    let h = h.unwrap();
    let mut checks = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (agreement, validity) = register::check(&h, &[]);
        checks.push(started.elapsed());
        assert_eq!(agreement.verdict, checker::Verdict::Valid);
        assert_eq!(validity.verdict, checker::Verdict::Valid);
    }
    parses.sort();
    checks.sort();
    let (parse, took) = (parses[2], checks[2]);
    println!(
        "register agreement + validity over {} events ({} proposes, 10,000 keys), median of 5: {:.0} events/s ({:.1} ms); parsing {:.0} events/s",
        h.events,
        h.ops.len(),
        h.events as f64 / took.as_secs_f64(),
        ms(took),
        h.events as f64 / parse.as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    single_key();
    two_thousand();
    registers_alone();
    if std::env::var("BENCH_SKIP_BIG").is_err() {
        one_million();
    }
}
