//! `chaos check`: judge a history file or a run directory.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use checker::{Options, check, check_streaming, finals, history};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A history.jsonl file, or a run directory (its history.jsonl, and its final/
    /// dumps unless --final says otherwise).
    history: PathBuf,

    /// A directory of final node dumps (`n<i>.json`, each a node's `dump` reply), for
    /// the log agreement check and the nodes' learned registers.
    #[arg(long = "final", value_name = "DIR")]
    finals: Option<PathBuf>,

    /// Print the machine-readable result (the structure result.json embeds) instead of
    /// the text summary.
    #[arg(long)]
    json: bool,

    /// Seconds the linearizability search may take over all keys; keys still open
    /// then are `unknown`.
    #[arg(long, value_name = "S", default_value_t = 60.0)]
    time_limit: f64,

    /// Most search states memoised per key (memory budget); more makes the key
    /// `unknown`.
    #[arg(long, value_name = "N", default_value_t = checker::linear::Budget::default().max_states)]
    max_states: usize,
}

pub fn run(args: CheckArgs) -> ExitCode {
    match judge(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("chaos check: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn judge(args: &CheckArgs) -> Result<u8> {
    if !(args.time_limit > 0.0 && args.time_limit.is_finite()) {
        anyhow::bail!("--time-limit must be a positive number of seconds");
    }
    let (history_path, default_finals) = locate(&args.history);
    let file = File::open(&history_path)
        .with_context(|| format!("cannot open {}", history_path.display()))?;
    let history = history::parse_history(BufReader::new(file))
        .with_context(|| format!("{} is not a valid history", history_path.display()))?;
    let finals_dir = args.finals.clone().or(default_finals);
    let options = Options {
        time_limit: Some(Duration::from_secs_f64(args.time_limit)),
        max_states: args.max_states,
    };
    let result = match &finals_dir {
        Some(dir) => {
            let dumps = finals::finals_in(dir).context("cannot read the final dumps")?;
            check_streaming(&history, dumps, &options).context("cannot read a final dump")?
        }
        None => check(&history, &[], &options),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "history: {} ({} events)",
            history_path.display(),
            history.events
        );
        print!("{}", result.render_text());
    }
    Ok(result.verdict.exit_code() as u8)
}

/// A run directory means its history.jsonl and, when present, its final/ dumps.
fn locate(path: &Path) -> (PathBuf, Option<PathBuf>) {
    if path.is_dir() {
        let finals = path.join("final");
        (
            path.join("history.jsonl"),
            finals.is_dir().then_some(finals),
        )
    } else {
        (path.to_path_buf(), None)
    }
}
