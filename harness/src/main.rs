//! `chaos`: the command line of the chaos harness. Glue only: it parses flags and
//! wires the libraries together; the work lives in `checker` and `node`.
//!
//! Exit codes (DESIGN.md §7): 0 valid, 1 safety violation, 2 usage error, 3 unknown,
//! 4 liveness, 5 harness failure.

mod check;

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
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Node { args } => run_node(args),
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
