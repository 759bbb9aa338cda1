//! `chaos check`: judge a history file or a run directory, through the same judging
//! path as `chaos run` and `chaos report` ([`results::judge_files`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use checker::Options;
use results::ExitCode;

use harness::spec::UsageError;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A history.jsonl file, or a run directory (its history.jsonl, and its final/
    /// dumps unless --final says otherwise).
    pub history: PathBuf,

    /// A directory of final node dumps (`n<i>.json`, each a node's `dump` reply), for
    /// the log agreement check and the nodes' learned registers.
    #[arg(long = "final", value_name = "DIR")]
    pub finals: Option<PathBuf>,

    /// Print the machine-readable result (the structure result.json embeds) instead of
    /// the text summary.
    #[arg(long)]
    pub json: bool,

    /// Seconds the linearizability search may take over all keys; keys still open
    /// then are `unknown`.
    #[arg(long, value_name = "S", default_value_t = 60.0, value_parser = crate::flags::within::<f64>(results::ranges::CHECK_TIME), allow_negative_numbers = true)]
    pub time_limit: f64,

    /// Most search states memoised per key (memory budget); more makes the key
    /// `unknown`.
    #[arg(long, value_name = "N", default_value_t = checker::linear::Budget::default().max_states)]
    pub max_states: usize,

    /// What transactions are judged against: read-uncommitted, read-committed,
    /// snapshot-isolation, serializable, strong-session-serializable or
    /// strict-serializable [default: the run's plan's, else strict-serializable].
    #[arg(long, value_name = "MODEL", value_parser = crate::flags::parse_model)]
    pub consistency_model: Option<checker::txn::Model>,
}

/// Judges and prints; the exit code follows the verdict (a history that cannot be
/// read is a usage error).
pub fn check(args: &CheckArgs) -> Result<ExitCode, UsageError> {
    if !(args.time_limit > 0.0 && args.time_limit.is_finite()) {
        return Err(UsageError(
            "--time-limit must be a positive number of seconds".into(),
        ));
    }
    let (history_path, default_finals) = locate(&args.history);
    let finals = args.finals.clone().or(default_finals);
    if let Some(dir) = &args.finals {
        if !dir.is_dir() {
            return Err(UsageError(format!(
                "--final {}: not a directory",
                dir.display()
            )));
        }
    }
    let options = Options {
        time_limit: Some(Duration::from_secs_f64(args.time_limit)),
        max_states: args.max_states,
        consistency_model: args.consistency_model,
    };
    let judged = results::judge_files(&history_path, finals.as_deref(), &options);
    let history = judged.history.map_err(UsageError)?;
    let result = judged
        .checked
        .expect("a history that parsed is always checked");
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).expect("a result always serialises")
        );
    } else {
        println!(
            "history: {} ({} events)",
            history_path.display(),
            history.events
        );
        print!("{}", result.render_text());
    }
    // The checks alone decide: a history has no liveness or harness of its own.
    Ok(results::verdict::decide(&results::verdict::Facts {
        checked: Some(&result),
        ..results::verdict::Facts::default()
    })
    .exit_code)
}

/// A run directory means its history.jsonl and its final/ dumps.
fn locate(path: &Path) -> (PathBuf, Option<PathBuf>) {
    if path.is_dir() {
        (path.join("history.jsonl"), Some(path.join("final")))
    } else {
        (path.to_path_buf(), None)
    }
}
