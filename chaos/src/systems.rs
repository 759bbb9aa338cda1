//! `chaos systems`: the systems this chaos knows, bundled and declared in files, and
//! whether what each needs is installed.

use std::path::{Path, PathBuf};

use results::system_file::SystemFile;

#[derive(Debug, clap::Args)]
pub struct SystemsArgs {
    /// Directories of system files (`*.toml`) to list besides the bundled systems
    /// [default: ./examples/systems, and this checkout's examples/systems].
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

/// Where system files are looked for when no directory is named.
fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("examples/systems")];
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/systems");
    if built.is_dir() {
        dirs.push(built);
    }
    dirs
}

/// Prints one line per system: its name, how to run it, whether it can run here.
/// A file that cannot be read is listed with why. Exit 0; 2 if a named directory
/// does not exist.
pub fn list(args: &SystemsArgs) -> Result<(), String> {
    println!("{:<28} {:<12} run it with", "system", "installed");
    let etcd = harness::system::etcd::find_etcd();
    for (name, ok, how) in [
        (
            "bundled (the Paxos node)",
            Ok("yes".to_string()),
            "chaos run",
        ),
        (
            "maelstrom (any stdio node)",
            Ok("needs a node".to_string()),
            "chaos run --node-cmd 'CMD'",
        ),
        (
            "etcd",
            etcd.as_ref()
                .map(|(_, v)| format!("yes, {v}"))
                .map_err(|e| e.clone()),
            "chaos run --system etcd",
        ),
    ] {
        println!("{name:<28} {:<12} {how}", ok.as_deref().unwrap_or("no"));
        if let Err(why) = ok {
            println!("{:<28} {why}", "");
        }
    }
    let named = !args.dirs.is_empty();
    let dirs = if named {
        args.dirs.clone()
    } else {
        default_dirs()
    };
    let mut seen = std::collections::BTreeSet::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            if named {
                return Err(format!("{} is not a directory", dir.display()));
            }
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for file in files {
            let canonical = std::fs::canonicalize(&file).unwrap_or(file.clone());
            if !seen.insert(canonical.clone()) {
                continue;
            }
            match SystemFile::read(&file) {
                Ok(d) => {
                    let missing: Vec<String> = harness::system::declared::installed(&d)
                        .into_iter()
                        .filter_map(|(_, found)| found.err())
                        .collect();
                    let ok = if missing.is_empty() { "yes" } else { "no" };
                    println!(
                        "{:<28} {ok:<12} chaos run --system {}",
                        d.file.name,
                        canonical.display()
                    );
                    for why in missing {
                        println!("{:<28} {why}", "");
                    }
                }
                Err(e) => println!("{:<28} {:<12} {e}", file.display(), "unreadable"),
            }
        }
    }
    Ok(())
}
