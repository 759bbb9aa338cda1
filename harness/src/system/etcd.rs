//! etcd as a system under test (`--system etcd`, docs/etcd.md) is a system file like
//! any other: examples/systems/etcd.toml and its Python client, compiled into this
//! executable and written out beside the runs that use them, so `--system etcd`
//! works wherever chaos is. What is left here is finding etcd and that writing-out.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How to get etcd when it is missing.
pub const INSTALL_HINT: &str = "etcd is not installed: apt-get install etcd-server (Debian ships etcd 3.4), or put an etcd binary on PATH";

/// The system file and its client, as examples/systems holds them.
const FILES: [(&str, &str); 2] = [
    (
        "etcd.toml",
        include_str!("../../../examples/systems/etcd.toml"),
    ),
    (
        "etcd_client.py",
        include_str!("../../../examples/systems/etcd_client.py"),
    ),
];

/// Writes etcd's system file and client under `results/.systems/etcd/` (again each
/// time, whole) and returns the file's path.
pub fn system_file(results: &Path) -> std::io::Result<PathBuf> {
    let dir = results.join(".systems/etcd");
    std::fs::create_dir_all(&dir)?;
    for (name, text) in FILES {
        results::store::write_whole(&dir.join(name), text)?;
    }
    Ok(dir.join("etcd.toml"))
}

/// The `etcd` on PATH and its version ("etcd 3.4.23"), or why there is none.
pub fn find_etcd() -> Result<(PathBuf, String), String> {
    let path = crate::cluster::on_path("etcd").ok_or_else(|| INSTALL_HINT.to_string())?;
    let out = Command::new(&path)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("etcd Version:"))
        .map(|v| format!("etcd {}", v.trim()))
        .unwrap_or_else(|| "etcd (version unknown)".into());
    Ok((path, version))
}

#[cfg(test)]
mod tests {
    #[test]
    fn etcds_file_is_written_out_and_reads() {
        let root = tempfile::tempdir().unwrap();
        let path = super::system_file(root.path()).unwrap();
        let d = results::system_file::SystemFile::read(&path).unwrap();
        assert_eq!(d.file.name, "etcd");
        assert!(path.with_file_name("etcd_client.py").is_file());
        assert_eq!(
            super::system_file(root.path()).unwrap(),
            path,
            "again, the same"
        );
    }
}
