//! How long a big run takes to render, and how big and how responsive its report is.
//!
//! `cargo bench -p results --bench render` writes a synthetic 100,000-op history
//! (64 client slots, 100 KV keys and register proposals, 0.2% timeouts, and a fault
//! every 10,000 ops) into a scratch run directory, then:
//! 1. `render_run` with no result.json: judges the history and renders (what
//!    `chaos report` does for an unfinished run);
//! 2. `render_run` again: reads result.json and the history, renders (the normal
//!    `chaos report` path);
//! 3. with Chromium installed, loads the page headless and reads back how long the
//!    timeline script took to draw the whole run once.
//!
//! Knob: BENCH_OPS (100,000).

use std::io::Write;
use std::time::Instant;

use checker::synth::{SynthConfig, write_history};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The synthetic history with nemesis events spliced in; indexes renumbered.
fn history(ops: usize) -> String {
    let cfg = SynthConfig {
        seed: 1,
        processes: 64,
        kv_keys: 100,
        register_keys: 2_000,
        ops,
        propose_share: 0.3,
        info_prob: 0.002,
        max_latency_us: 3_000,
    };
    let mut raw = Vec::new();
    write_history(&cfg, &mut raw).unwrap();
    let faults = ["partition", "heal", "kill", "restart", "pause", "resume"];
    let mut out = String::new();
    let mut index = 0u64;
    for (i, line) in String::from_utf8(raw).unwrap().lines().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if i > 0 && i % 10_000 == 0 {
            let f = faults[(i / 10_000) % faults.len()];
            let nemesis = serde_json::json!({
                "index": index, "time_ns": v["time_ns"], "process": "nemesis", "type": "info",
                "f": f, "value": {"kind": f, "outcome": "installed", "targets": [1 + (i / 10_000) % 5]}
            });
            out.push_str(&nemesis.to_string());
            out.push('\n');
            index += 1;
        }
        v["index"] = index.into();
        index += 1;
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let ops = env_or("BENCH_OPS", 100_000usize);
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("plan.json"),
        serde_json::json!({
            "version": 1, "name": "bench", "seed": 1, "nodes": 5, "workload": "both",
            "time_limit_s": 30.0, "concurrency": 64, "rate": 0.0, "keys": 100,
            "node_bin": null, "node_args": [], "grace_s": 10.0, "op_timeout_ms": 2500,
            "nemesis": {"partition": true, "kill": true, "pause": true, "links": false,
                "clock": false, "corrupt": false, "power": false, "leader_kill": false,
                "leader_isolate": false, "leader_pause": false, "rolling_restart": false,
                "swizzle": false, "flaky_links": false, "lossy_links": false}, "nemesis_interval_s": 3.0, "schedule": []
        })
        .to_string(),
    )
    .unwrap();
    let text = history(ops);
    std::fs::File::create(run.join("history.jsonl"))
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    println!("history: {} ops, {:.1} MB", ops, text.len() as f64 / 1e6);

    let started = Instant::now();
    let first = results::render_run(&run).unwrap();
    println!(
        "judge + render (no result.json): {:.2} s, verdict {}",
        started.elapsed().as_secs_f64(),
        first.result.verdict.as_str()
    );
    let started = Instant::now();
    let again = results::render_run(&run).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(&again.report).unwrap().len();
    println!(
        "render from result.json + history: {secs:.2} s; report.html {:.1} MB (targets: 10 s, 20 MB)",
        size as f64 / 1e6
    );

    let Some(browser) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        println!("no chromium: page load and draw time not measured");
        return;
    };
    let started = Instant::now();
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--window-size=1200,1800",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("file://{}", again.report.display()))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    let load = started.elapsed().as_secs_f64();
    let dom = String::from_utf8_lossy(&out.stdout);
    let draw_ms = dom
        .split("data-draw-ms=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("?");
    println!(
        "chromium: page loaded, script done and DOM dumped in {load:.2} s (browser start included); one draw of the whole {ops}-op timeline: {draw_ms} ms; ready: {}",
        dom.contains("data-ready=\"1\"")
    );
}
