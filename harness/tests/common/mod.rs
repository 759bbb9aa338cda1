//! What the command-line tests share.

use std::path::{Path, PathBuf};
use std::process::Output;

/// A command's stdout and stderr, for assertions and their messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The run directory `<root>/latest` points at.
#[allow(dead_code)] // not every test file reads runs this way
pub fn latest(root: &Path) -> PathBuf {
    std::fs::canonicalize(root.join("latest")).expect("results/latest exists")
}

/// A run directory's result.json.
#[allow(dead_code)] // not every test file reads results this way
pub fn result_of(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
}

/// The verdict of one check in a result.json ("" when the check is absent).
#[allow(dead_code)]
pub fn verdict(result: &serde_json::Value, check: &str) -> String {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == check)
        .map(|c| c["verdict"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Waits (up to 30 s) until the running harness `child` has recorded at least
/// `lines` history events under `root`.
#[allow(dead_code)]
pub fn wait_for_history(root: &Path, lines: usize, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let n = std::fs::canonicalize(root.join("latest"))
            .ok()
            .and_then(|d| std::fs::read_to_string(d.join("history.jsonl")).ok())
            .map_or(0, |t| t.lines().count());
        if n >= lines {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the harness exited early"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "history did not grow to {lines} lines"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
