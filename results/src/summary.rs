//! The terminal summary at the end of `chaos run` and `chaos report`: a verdict line,
//! op counts, one line per check and per anomaly, where the report is, and the
//! commands that reproduce the run. Colour only when asked (a terminal without
//! `NO_COLOR`).

use std::collections::BTreeMap;
use std::io::IsTerminal;

use checker::AnomalyKind;
use std::path::Path;

use crate::schema::{ExitCode, RunResult};

/// Anomalies printed per kind and check; the rest are counted.
pub const ANOMALIES_PER_KIND: usize = 3;

/// Whether stdout should get colour: a terminal, and `NO_COLOR` unset.
pub fn colour_on_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn code(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn red(&self, s: &str) -> String {
        self.code("1;31", s)
    }
    fn green(&self, s: &str) -> String {
        self.code("1;32", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.code("1;33", s)
    }
    fn dim(&self, s: &str) -> String {
        self.code("2", s)
    }
    fn by_exit(&self, code: ExitCode, s: &str) -> String {
        match code {
            ExitCode::Valid => self.green(s),
            ExitCode::Invalid | ExitCode::Harness => self.red(s),
            _ => self.yellow(s),
        }
    }
}

/// One check's line, its first anomalies of each kind and its unknowns.
fn check_lines(out: &mut String, p: Paint, c: &checker::CheckReport) {
    let verdict = match c.verdict {
        checker::Verdict::Valid => p.green("valid   "),
        checker::Verdict::Invalid => p.red("invalid "),
        checker::Verdict::Unknown => p.yellow("unknown "),
        checker::Verdict::Skipped => p.dim("skipped "),
    };
    out.push_str(&format!("  {:<20} {verdict} {}\n", c.name, c.summary));
    // The first few of each kind; the full list is in result.json and the report.
    let mut shown: BTreeMap<AnomalyKind, usize> = BTreeMap::new();
    for a in &c.anomalies {
        let n = shown.entry(a.kind).or_default();
        *n += 1;
        if *n <= ANOMALIES_PER_KIND {
            out.push_str(&format!("    {} {}: {}\n", p.red("!"), a.kind, a.message));
        }
    }
    for (kind, n) in shown.iter().filter(|(_, n)| **n > ANOMALIES_PER_KIND) {
        out.push_str(&format!(
            "    {} ... {} more {kind} anomalies ({n} in all; every one is in result.json and report.html)\n",
            p.red("!"),
            n - ANOMALIES_PER_KIND
        ));
    }
    for u in &c.unknown {
        out.push_str(&format!("    {} {u}\n", p.yellow("?")));
    }
}

/// How many faults took effect, and for how long.
fn fault_line(r: &RunResult, p: Paint) -> String {
    if r.faults.periods.is_empty() {
        format!(
            "  faults: {} took effect ({} scheduled, nemesis {})\n",
            p.yellow("none"),
            r.plan.scheduled_faults(),
            r.plan.nemesis.describe()
        )
    } else {
        let kinds: Vec<String> = r
            .faults
            .ms_per_kind
            .iter()
            .map(|(k, ms)| format!("{k} {:.1} s", ms / 1e3))
            .collect();
        format!(
            "  faults: {} took effect of {} scheduled, {:.1} s with a fault in force ({})\n",
            r.faults.faults(),
            r.plan.scheduled_faults(),
            r.faults.total_ms / 1e3,
            kinds.join(", ")
        )
    }
}

pub fn render(r: &RunResult, report: Option<&Path>, colour: bool) -> String {
    let p = Paint(colour);
    let mut out = String::new();
    let headline = r.words().headline().to_uppercase();
    out.push_str(&format!(
        "\n{} (exit {})\n",
        p.by_exit(r.exit_code, &headline),
        r.exit_code.code()
    ));
    if r.incomplete {
        out.push_str(&format!(
            "  {}\n",
            p.yellow("incomplete run: no result.json was written; judged from the files it left")
        ));
    }
    if let Some(e) = &r.harness_failure {
        out.push_str(&format!("  harness failure: {e}\n"));
    }
    if let Some(m) = &r.liveness.message {
        out.push_str(&format!("  liveness: {m}\n"));
    }
    for c in r.checks.iter().flatten() {
        check_lines(&mut out, p, c);
    }
    if let Some(stats) = &r.stats {
        let counts = r.outcome_counts();
        let get = |k: &str| counts.get(k).copied().unwrap_or(0);
        out.push_str(&format!(
            "  ops: ok {} fail {} info {} ({:.0} ok/s)\n",
            get("ok"),
            get("fail"),
            get("info"),
            stats.ok_per_second
        ));
    }
    out.push_str(&fault_line(r, p));
    for n in &r.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    if let Some(system) = &r.versions.system {
        out.push_str(&format!("  system: {system}\n"));
    }
    for m in &r.faults.misbehaviour {
        out.push_str(&format!("  misbehaved: {}\n", m.describe()));
    }
    if let Some(sim) = &r.simulation {
        out.push_str(&format!(
            "  simulated: {:.1} virtual s in {:.2} s ({:.0}x real time); {} crashes, {} fsyncs, {} messages\n",
            sim.virtual_s,
            sim.wall_s,
            sim.virtual_s / sim.wall_s.max(1e-9),
            sim.counts.crashes,
            sim.counts.fsyncs,
            sim.counts.messages_sent
        ));
        out.push_str(&format!(
            "  history sha256: {} (the same plan gives the same history)\n",
            sim.history_sha256
        ));
    }
    if let Some(from) = &r.plan.shrunk_from {
        out.push_str(&format!(
            "  shrunk from {}: {}\n",
            from.run_dir,
            from.sizes(
                r.plan.scheduled_faults(),
                r.stats.as_ref().map_or(0, |s| s.ops),
                r.plan.nodes
            )
        ));
        for c in from.caveats(r.exit_code != ExitCode::Valid) {
            out.push_str(&format!("    {c}\n"));
        }
    }
    out.push_str(&format!("  run directory: {}\n", r.run_dir));
    if let Some(report) = report {
        out.push_str(&format!("  report:    {}\n", report.display()));
    }
    out.push_str(&format!("  reproduce: {}\n", p.dim(&r.reproduce)));
    out.push_str(&format!("  replay:    {}\n", p.dim(&r.replay)));
    out
}
