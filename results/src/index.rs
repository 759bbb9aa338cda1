//! index.html at the results root: every run, newest first, with its verdict and a
//! link to its report.

use maud::{DOCTYPE, PreEscaped, html};

use crate::store::RunEntry;

pub fn render(runs: &[RunEntry]) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "chaos runs" }
                style { (PreEscaped(r#"
body { font: 14px/1.45 system-ui, sans-serif; margin: 20px auto; max-width: 1100px; padding: 0 16px; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 4px 8px; text-align: left; }
th { background: #fafafa; }
.v { font-weight: 700; } .valid { color: #2e7d32; } .invalid { color: #c62828; } .unknown, .incomplete { color: #ef6c00; }
"#)) }
            }
            body {
                h1 { "chaos runs" }
                p { (runs.len()) " runs, newest first. "
                    (runs.iter().filter(|r| r.class == "invalid").count()) " failed (invalid, liveness or harness failure), "
                    (runs.iter().filter(|r| r.class == "valid").count()) " valid." }
                table {
                    thead { tr { th { "date (UTC)" } th { "name" } th { "mode" } th { "seed" } th { "nodes" } th { "nemesis" } th { "node args" } th { "verdict" } th { "exit" } th { "run" } } }
                    tbody {
                        @for r in runs {
                            @let class = &r.class;
                            tr {
                                td { (pretty_stamp(&r.stamp)) }
                                td { (r.name) }
                                td { (r.mode) }
                                td { @if let Some(s) = r.seed { (s) } @else { "-" } }
                                td { @if let Some(n) = r.nodes { (n) } @else { "-" } }
                                td { (r.nemesis) }
                                td { code { (r.node_args) } }
                                td class=(format!("v {class}")) { (r.verdict) }
                                td { @if let Some(c) = r.exit_code { (c) } @else { "-" } }
                                td { @if r.has_report { a href=(format!("{}/report.html", r.rel)) { "report" } } @else { a href=(r.rel) { (r.rel) } } }
                            }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

/// `20261122T080102.526Z` -> `2026-11-22 08:01:02`.
fn pretty_stamp(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 15 && b[8] == b'T' {
        format!(
            "{}-{}-{} {}:{}:{}",
            &s[0..4],
            &s[4..6],
            &s[6..8],
            &s[9..11],
            &s[11..13],
            &s[13..15]
        )
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_shows_each_runs_mode_and_node_arguments() {
        let entry = |mode: &str, args: &str| RunEntry {
            rel: format!("t/{mode}"),
            name: "t".into(),
            stamp: "20261122T080102.526Z".into(),
            seed: Some(1),
            nodes: Some(3),
            nemesis: "partition".into(),
            mode: mode.into(),
            node_args: args.into(),
            verdict: "valid".into(),
            class: "valid".into(),
            exit_code: Some(0),
            has_report: true,
        };
        let page = render(&[entry("sim", "--bug=stale-read"), entry("real", "-")]);
        assert!(page.contains("<th>mode</th>") && page.contains("<th>node args</th>"));
        assert!(page.contains("<td>sim</td>") && page.contains("<td>real</td>"));
        assert!(
            page.contains("<code>--bug=stale-read</code>"),
            "a run with a bug says so"
        );
    }
}
