//! The run store (docs/run-directory.md): `<root>/<name>/<UTC stamp>-s<seed>/`, the
//! `<root>/latest` and `<root>/<name>/latest` links, and the list of runs the index
//! shows.

use std::path::{Path, PathBuf};

use crate::plan::Plan;
use crate::schema::RunResult;

#[derive(Debug, thiserror::Error)]
#[error("cannot create the run directory {path}")]
pub struct CreateError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes `bytes` to `path` whole or not at all: to a temporary name beside it, then
/// renamed over it, so that a full disk or a killed harness leaves the old file (or
/// none), never an empty or half-written one. The temporary file is removed when the
/// write fails.
pub fn write_whole(path: &Path, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Whether files can be written under `dir` (made if missing): checked before a long
/// search or sweep, so that a wrong `--results` or `--out` is said at once and not
/// after the work whose result it would lose. `Err` names the directory and why.
pub fn check_writable(dir: &Path, flag: &str) -> Result<(), String> {
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("{flag} {}: cannot write there: {e}", dir.display()))
}

pub struct RunDir {
    pub path: PathBuf,
    /// When the directory was made, UTC, RFC 3339.
    pub started_at: String,
}

impl RunDir {
    /// Creates a fresh run directory under `root` and points the `latest` links at it.
    pub fn create(root: &Path, name: &str, seed: u64, nodes: usize) -> Result<RunDir, CreateError> {
        let now = chrono::Utc::now();
        let stamp = now.format("%Y%m%dT%H%M%S%.3fZ").to_string();
        let leaf = format!("{stamp}-s{seed}");
        let group = root.join(name);
        let path = group.join(&leaf);
        let made = (|| {
            std::fs::create_dir_all(&path)?;
            for id in 1..=nodes {
                std::fs::create_dir_all(path.join(format!("nodes/n{id}/data")))?;
            }
            std::fs::create_dir_all(path.join("final"))
        })();
        made.map_err(|source| CreateError {
            path: path.clone(),
            source,
        })?;
        relink(&group.join("latest"), Path::new(&leaf));
        relink(&root.join("latest"), &Path::new(name).join(&leaf));
        Ok(RunDir {
            path,
            started_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
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

/// Removes a run directory (a passing run a sweep does not keep) and points the
/// `latest` links that named it at the newest run left, or removes them if none is.
pub fn remove_run(run_dir: &Path) -> std::io::Result<()> {
    std::fs::remove_dir_all(run_dir)?;
    let newest = |group: &Path| {
        subdirs(group)
            .into_iter()
            .filter(|d| d.join("plan.json").exists())
            .filter_map(|d| Some(d.file_name()?.to_str()?.to_string()))
            .next_back()
    };
    let mend = |link: &Path, target: Option<PathBuf>| {
        if link.symlink_metadata().is_ok() && !link.exists() {
            match target {
                Some(t) => relink(link, &t),
                None => {
                    let _ = std::fs::remove_file(link);
                }
            }
        }
    };
    let Some(group) = run_dir.parent() else {
        return Ok(());
    };
    mend(&group.join("latest"), newest(group).map(PathBuf::from));
    if let Some(root) = group.parent() {
        // Leaves start with their UTC stamp: the newest across groups is the
        // greatest leaf.
        let across = subdirs(root)
            .into_iter()
            .filter_map(|g| {
                let leaf = newest(&g)?;
                Some((leaf.clone(), Path::new(g.file_name()?).join(leaf)))
            })
            .max()
            .map(|(_, rel)| rel);
        mend(&root.join("latest"), across);
    }
    Ok(())
}

/// The results root a run directory belongs to (`<root>/<name>/<leaf>`), if its
/// grandparent looks like one (it has a `latest` link or an index).
pub fn root_of(run_dir: &Path) -> Option<PathBuf> {
    let root = run_dir.parent()?.parent()?;
    (root.join("latest").exists() || root.join("index.html").exists()).then(|| root.to_path_buf())
}

/// One run as the index lists it.
#[derive(Clone, Debug)]
pub struct RunEntry {
    /// Relative to the root: `<name>/<leaf>`.
    pub rel: String,
    pub name: String,
    /// The leaf's UTC stamp.
    pub stamp: String,
    pub seed: Option<u64>,
    pub nodes: Option<u64>,
    pub nemesis: String,
    /// `sim` or `real`; `-` when the plan is unreadable.
    pub mode: String,
    /// The nodes' extra arguments (a `--bug` among them), `-` for none.
    pub node_args: String,
    /// The run's outcome label ([`crate::schema::Outcome`]): `valid`, `invalid`,
    /// `interrupted`, ...; `incomplete` without a result.json.
    pub verdict: String,
    /// Its colour family: valid, invalid or unknown.
    pub class: String,
    pub exit_code: Option<u8>,
    pub has_report: bool,
}

/// Every run directory under `root`, newest first. Unreadable entries are listed with
/// what could be read; nothing here fails.
pub fn list_runs(root: &Path) -> Vec<RunEntry> {
    let mut out = Vec::new();
    for group in subdirs(root) {
        for run in subdirs(&group) {
            if run.join("plan.json").exists() {
                out.push(entry(root, &run));
            }
        }
    }
    out.sort_by(|a, b| b.stamp.cmp(&a.stamp).then_with(|| a.rel.cmp(&b.rel)));
    out
}

/// The directories directly under `dir`, in path order (none if it is unreadable).
pub fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

fn entry(root: &Path, run: &Path) -> RunEntry {
    let rel = run
        .strip_prefix(root)
        .unwrap_or(run)
        .to_string_lossy()
        .into_owned();
    let leaf = run
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let plan = Plan::read(run).ok();
    let result = std::fs::read_to_string(run.join("result.json"))
        .ok()
        .and_then(|t| RunResult::parse(&t).ok());
    RunEntry {
        rel,
        name: plan.as_ref().map_or("-".into(), |p| p.name.clone()),
        stamp: leaf.split("-s").next().unwrap_or_default().to_string(),
        seed: plan.as_ref().map(|p| p.seed),
        nodes: plan.as_ref().map(|p| p.nodes as u64),
        nemesis: plan.as_ref().map_or("-".into(), |p| p.nemesis.describe()),
        mode: plan.as_ref().map_or("-".into(), |p| p.mode.name().into()),
        node_args: plan
            .as_ref()
            .filter(|p| !p.node_args.is_empty())
            .map_or("-".into(), |p| p.node_args.join(" ")),
        verdict: result
            .as_ref()
            .map_or("incomplete".into(), |r| r.words().label),
        class: result
            .as_ref()
            .map_or("unknown".into(), |r| r.words().class),
        exit_code: result.as_ref().map(|r| r.exit_code.code()),
        has_report: run.join("report.html").exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(root: &Path, name: &str, seed: u64) -> PathBuf {
        let dir = RunDir::create(root, name, seed, 1).unwrap().path;
        std::fs::write(dir.join("plan.json"), "{}").unwrap();
        dir
    }

    fn target(link: PathBuf) -> Option<PathBuf> {
        std::fs::read_link(link).ok()
    }

    #[test]
    fn a_removed_run_leaves_no_latest_link_dangling() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let a1 = run(root, "a", 1);
        let b2 = run(root, "b", 2);
        let a3 = run(root, "a", 3);
        let leaf = |p: &Path| PathBuf::from(p.file_name().unwrap());
        assert_eq!(
            target(root.join("latest")),
            Some(Path::new("a").join(leaf(&a3)))
        );
        remove_run(&a3).unwrap();
        assert!(!a3.exists());
        assert_eq!(target(root.join("a/latest")), Some(leaf(&a1)));
        assert_eq!(
            target(root.join("latest")),
            Some(Path::new("b").join(leaf(&b2)))
        );
        remove_run(&b2).unwrap();
        assert_eq!(target(root.join("b/latest")), None, "no run left in b");
        assert_eq!(
            target(root.join("latest")),
            Some(Path::new("a").join(leaf(&a1)))
        );
        // Removing a run the links do not name leaves them alone.
        let a4 = run(root, "a", 4);
        remove_run(&a1).unwrap();
        assert_eq!(
            target(root.join("latest")),
            Some(Path::new("a").join(leaf(&a4)))
        );
    }
}
