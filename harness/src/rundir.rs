//! The run directory (DESIGN.md §6): `results/<name>/<UTC stamp>-s<seed>/` with
//! `nodes/n<i>/`, `final/`, and the `latest` links.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates a fresh run directory under `root` and points the `latest` links at it.
    pub fn create(root: &Path, name: &str, seed: u64, nodes: usize) -> Result<RunDir> {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
        let leaf = format!("{stamp}-s{seed}");
        let group = root.join(name);
        let path = group.join(&leaf);
        std::fs::create_dir_all(&path).with_context(|| {
            format!(
                "cannot create the run directory {} (is --results writable?)",
                path.display()
            )
        })?;
        for id in 1..=nodes {
            std::fs::create_dir_all(path.join(format!("nodes/n{id}/data")))?;
        }
        std::fs::create_dir_all(path.join("final"))?;
        relink(&group.join("latest"), Path::new(&leaf));
        relink(&root.join("latest"), &Path::new(name).join(&leaf));
        Ok(RunDir { path })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// Replaces a symlink atomically (best effort: a failure leaves the old link).
fn relink(link: &Path, target: &Path) {
    let tmp = link.with_extension("tmp-link");
    let _ = std::fs::remove_file(&tmp);
    if std::os::unix::fs::symlink(target, &tmp).is_ok() {
        let _ = std::fs::rename(&tmp, link);
    }
}
