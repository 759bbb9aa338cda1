//! `paxos-node`: the bundled Paxos node as a standalone binary.

use std::process::ExitCode;

use clap::Parser;
use paxos_node::cli::{NodeArgs, run};

fn main() -> ExitCode {
    let args = NodeArgs::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paxos-node: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
