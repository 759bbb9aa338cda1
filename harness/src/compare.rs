//! `chaos compare RUN_DIR RUN_DIR`: two runs side by side, from their result.json:
//! the system, the parameters (a `*` marks those that differ), the verdict,
//! throughput, and latency percentiles per operation. For putting the bundled node
//! and another system (etcd) next to each other under the same plan.

use std::path::Path;

use results::RunResult;

/// Reads a run directory's result.json.
fn load(dir: &Path) -> Result<RunResult, String> {
    let path = dir.join("result.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (is it a run directory?)", path.display()))?;
    RunResult::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn system(r: &RunResult) -> String {
    match (&r.versions.system, &r.plan.node_cmd, &r.plan.node_bin) {
        (Some(s), _, _) => s.clone(),
        (None, Some(cmd), _) => format!("maelstrom: {cmd}"),
        (None, None, Some(bin)) => bin.display().to_string(),
        (None, None, None) => format!("bundled node (chaos {})", r.versions.chaos),
    }
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1e3)
}

/// The comparison as text.
pub fn compare(a: &Path, b: &Path) -> Result<String, String> {
    let (ra, rb) = (load(a)?, load(b)?);
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row = |k: &str, x: String, y: String| {
        let mark = if x != y { "*" } else { " " };
        rows.push((format!("{mark} {k}"), x, y));
    };
    row("run", a.display().to_string(), b.display().to_string());
    row("system", system(&ra), system(&rb));
    row(
        "verdict",
        ra.verdict.as_str().into(),
        rb.verdict.as_str().into(),
    );
    let (pa, pb) = (&ra.plan, &rb.plan);
    row("seed", pa.seed.to_string(), pb.seed.to_string());
    row("nodes", pa.nodes.to_string(), pb.nodes.to_string());
    row(
        "workload",
        pa.workload.name().into(),
        pb.workload.name().into(),
    );
    row(
        "clients",
        pa.concurrency.to_string(),
        pb.concurrency.to_string(),
    );
    row("rate", pa.rate.to_string(), pb.rate.to_string());
    row("keys", pa.keys.to_string(), pb.keys.to_string());
    row(
        "time limit",
        format!("{} s", pa.time_limit_s),
        format!("{} s", pb.time_limit_s),
    );
    row("nemesis", pa.nemesis.describe(), pb.nemesis.describe());
    row(
        "network",
        pa.network_name().into(),
        pb.network_name().into(),
    );
    row("node args", pa.node_args.join(" "), pb.node_args.join(" "));
    row(
        "faults took effect",
        ra.faults.faults().to_string(),
        rb.faults.faults().to_string(),
    );
    let (sa, sb) = (
        ra.stats.clone().unwrap_or_default(),
        rb.stats.clone().unwrap_or_default(),
    );
    let count = |s: &checker::stats::Stats, outcome: &str| -> u64 {
        s.counts.values().filter_map(|c| c.get(outcome)).sum()
    };
    for outcome in ["ok", "fail", "info"] {
        row(
            &format!("ops {outcome}"),
            count(&sa, outcome).to_string(),
            count(&sb, outcome).to_string(),
        );
    }
    row(
        "ok ops/s",
        format!("{:.0}", sa.ok_per_second),
        format!("{:.0}", sb.ok_per_second),
    );
    let mut fs: Vec<&String> = sa.latency.keys().chain(sb.latency.keys()).collect();
    fs.sort();
    fs.dedup();
    for f in fs {
        let lat = |s: &checker::stats::Stats| {
            s.latency.get(f).map_or("-".to_string(), |l| {
                format!(
                    "{} / {} / {} / {}",
                    ms(l.p50_us),
                    ms(l.p90_us),
                    ms(l.p99_us),
                    ms(l.max_us)
                )
            })
        };
        row(&format!("{f} ms p50/p90/p99/max"), lat(&sa), lat(&sb));
    }
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).min(60);
    let mut out = String::new();
    for (k, x, y) in rows {
        out.push_str(&format!("{k:<w0$}  {x:<w1$}  {y}\n"));
    }
    out.push_str("(* marks a row that differs)\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_run_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = compare(dir.path(), dir.path()).unwrap_err();
        assert!(e.contains("result.json"), "{e}");
    }
}
