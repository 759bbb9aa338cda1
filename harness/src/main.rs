//! `chaos`: the command line of the chaos harness. Glue only: it parses flags and
//! wires the libraries together; the work lives in `node`, `checker`, `nemesis` and
//! `results`.
//!
//! Exit codes (DESIGN.md §7): 0 valid, 1 safety violation, 2 usage error, 3 unknown,
//! 4 liveness, 5 harness failure.

mod check;
mod cluster;
mod matrix;
mod plan;
mod recorder;
mod run;
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "chaos", version, about = "Chaos testing for a Paxos cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a complete chaos test of a real cluster: spawn the nodes, drive the
    /// workload, record history.jsonl, judge it, and leave a run directory. Exit 0
    /// valid, 1 safety violation, 2 usage error, 3 unknown, 4 liveness, 5 harness
    /// failure.
    Run(run::RunArgs),
    /// Prove the harness finds bugs: run each node --bug under the nemesis over a few
    /// seeds and report, per bug, whether and when a violation was found. Exit 0 if
    /// every bug was detected, 1 if one was not.
    Matrix(matrix::MatrixArgs),
    /// Re-run the plan of an earlier run and report how often its verdict comes back.
    Replay {
        /// The run directory (holds plan.json and result.json).
        run_dir: std::path::PathBuf,
        /// How many times to re-run it.
        #[arg(long, default_value_t = 1)]
        times: usize,
        /// No progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Re-render a run's report.html, junit.xml and the results index from its files,
    /// without re-running anything, and print its summary. A run that left no
    /// result.json (the harness was killed) is judged from its history and marked
    /// incomplete. Exit: the run's own exit code; 2 if RUN_DIR is not a run.
    Report {
        /// The run directory (holds plan.json, history.jsonl, result.json).
        run_dir: std::path::PathBuf,
    },
    /// Judge a recorded history: register agreement and validity, linearizability of
    /// the KV store, log agreement. Exit 0 valid, 1 invalid, 3 unknown, 2 bad input.
    Check(check::CheckArgs),
    /// Run the bundled Paxos node (the same code as `paxos-node`; `chaos node --help`
    /// lists its flags).
    #[command(disable_help_flag = true)]
    Node {
        /// The node's own command line.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    // Whatever panics, no node outlives the harness.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        cluster::kill_all_registered();
        default_hook(info);
    }));
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Node { args } => run_node(args),
        Command::Run(args) => {
            let plan = match run::plan_from_args(&args) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("chaos run: {e:#}");
                    return ExitCode::from(run::EXIT_USAGE);
                }
            };
            let show = run::presentation(args.no_progress, args.json);
            match run::execute(&plan, &args.results, show) {
                Ok(outcome) => ExitCode::from(outcome.exit_code),
                Err(e) => {
                    eprintln!("chaos run: {e:#}");
                    ExitCode::from(run::EXIT_HARNESS)
                }
            }
        }
        Command::Report { run_dir } => match results::render_run(&run_dir) {
            Ok(r) => {
                print!(
                    "{}",
                    results::summary::render(
                        &r.result,
                        Some(&r.report),
                        results::summary::colour_on_stdout()
                    )
                );
                println!("  junit:     {}", r.junit.display());
                if let Some(index) = &r.index {
                    println!("  index:     {}", index.display());
                }
                ExitCode::from(r.result.exit_code)
            }
            Err(e) => {
                eprintln!("chaos report: {e}");
                ExitCode::from(run::EXIT_USAGE)
            }
        },
        Command::Matrix(args) => match matrix::matrix(&args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("chaos matrix: {e:#}");
                ExitCode::from(run::EXIT_USAGE)
            }
        },
        Command::Replay {
            run_dir,
            times,
            no_progress,
        } => match run::replay(
            &run_dir,
            times.max(1),
            run::presentation(no_progress, false),
        ) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("chaos replay: {e:#}");
                ExitCode::from(run::EXIT_USAGE)
            }
        },
    }
}

fn run_node(args: Vec<String>) -> ExitCode {
    use clap::Parser as _;
    let argv = std::iter::once("chaos node".to_string()).chain(args);
    let node_args = match paxos_node::cli::NodeArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match paxos_node::cli::run(node_args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos node: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
