//! Operation statistics: counts per f and outcome, latency percentiles of ok ops per
//! f, and throughput.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::history::{History, Outcome};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub ops: u64,
    /// f -> outcome (`ok`, `fail`, `info`) -> count.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// f -> latency of its ok ops.
    pub latency: BTreeMap<String, Latency>,
    /// Ok ops per second over the span from the first invoke to the last event.
    pub ok_per_second: f64,
    pub duration_ms: f64,
    pub nemesis_events: u64,
}

impl Stats {
    pub fn of(history: &History) -> Stats {
        let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let mut latencies: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut ok = 0u64;
        for op in &history.ops {
            let f = op.f().name().to_string();
            let outcome = match op.outcome {
                Outcome::Ok => "ok",
                Outcome::Fail => "fail",
                Outcome::Info => "info",
            };
            *counts
                .entry(f.clone())
                .or_default()
                .entry(outcome.into())
                .or_default() += 1;
            if op.outcome == Outcome::Ok {
                ok += 1;
                if let Some(done) = op.complete_ns {
                    latencies
                        .entry(f)
                        .or_default()
                        .push(done.saturating_sub(op.invoke_ns) / 1_000);
                }
            }
        }
        for t in 0..history.txns.len() as u32 {
            let outcome = match history.txns.status(t) {
                crate::txn::Status::Ok => "ok",
                crate::txn::Status::Fail => "fail",
                crate::txn::Status::Info => "info",
            };
            *counts
                .entry("txn".into())
                .or_default()
                .entry(outcome.into())
                .or_default() += 1;
            if let (crate::txn::Status::Ok, (invoke, Some(done))) =
                (history.txns.status(t), history.txns.times(t))
            {
                ok += 1;
                latencies
                    .entry("txn".into())
                    .or_default()
                    .push(done.saturating_sub(invoke) / 1_000);
            }
        }
        let latency = latencies
            .into_iter()
            .map(|(f, mut v)| {
                v.sort_unstable();
                let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
                let l = Latency {
                    count: v.len() as u64,
                    p50_us: at(0.50),
                    p90_us: at(0.90),
                    p99_us: at(0.99),
                    max_us: *v.last().expect("non-empty"),
                };
                (f, l)
            })
            .collect();
        let first_txn = (!history.txns.is_empty()).then(|| {
            (0..history.txns.len() as u32)
                .map(|t| history.txns.times(t).0)
                .min()
                .unwrap_or(0)
        });
        let start = match (history.ops.first().map(|o| o.invoke_ns), first_txn) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(0),
        };
        let span_ns = history.end_ns.saturating_sub(start);
        Stats {
            ops: (history.ops.len() + history.txns.len()) as u64,
            counts,
            latency,
            ok_per_second: if span_ns == 0 {
                0.0
            } else {
                ok as f64 / (span_ns as f64 / 1e9)
            },
            duration_ms: span_ns as f64 / 1e6,
            nemesis_events: history.nemesis.len() as u64,
        }
    }

    pub fn render_text(&self) -> String {
        let mut out = format!(
            "  ops: {} in {:.1} s ({:.0} ok/s), {} nemesis events\n",
            self.ops,
            self.duration_ms / 1e3,
            self.ok_per_second,
            self.nemesis_events
        );
        for (f, by) in &self.counts {
            let get = |k: &str| by.get(k).copied().unwrap_or(0);
            let lat = self
                .latency
                .get(f)
                .map(|l| {
                    format!(
                        "; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
                        l.p50_us as f64 / 1e3,
                        l.p90_us as f64 / 1e3,
                        l.p99_us as f64 / 1e3,
                        l.max_us as f64 / 1e3
                    )
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "    {f:<8} ok {} fail {} info {}{lat}\n",
                get("ok"),
                get("fail"),
                get("info")
            ));
        }
        out
    }
}
