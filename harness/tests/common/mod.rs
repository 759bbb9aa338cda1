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
pub fn latest(root: &Path) -> PathBuf {
    std::fs::canonicalize(root.join("latest")).expect("results/latest exists")
}
