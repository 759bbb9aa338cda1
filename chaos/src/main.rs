//! `chaos`: the command line of the chaos harness. It parses flags into the
//! `harness` library's typed specs ([`flags`]), calls it, and shows what it says on
//! the terminal ([`terminal::Terminal`]); exit codes are [`results::ExitCode`]
//! (docs/exit-codes.md).

mod check;
mod explore;
mod flags;
mod matrix;
mod report;
mod sim;
mod systems;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Subcommand};
use harness::{cluster, engine, replay, shrink, sweep};
use results::ExitCode as Exit;
use terminal::Terminal;

/// mimalloc instead of the system allocator: a simulated run allocates per message
/// and per record, and glibc's malloc and free were a fifth of its profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, clap::Parser)]
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
    Run(flags::RunArgs),
    /// Run a plan in deterministic simulation: every node's real core in this one
    /// process, on virtual time, with a simulated network, disk (lost, torn and
    /// corrupt writes) and clocks. The same plan, history, checks, report and exit
    /// codes as `chaos run`; the same plan gives a byte-identical history.
    /// --time-limit, --grace and timeouts are virtual. With --seeds A..B, many seeds on
    /// all cores.
    Sim(flags::SimArgs),
    /// Search for failures in simulation, guided by coverage: keep the plans whose
    /// runs reached something new (a protocol situation, a fault kind meeting the
    /// cluster in a new role and state), mutate them (move, stretch, drop, add, aim
    /// or retarget a fault; reseed the world), and spend the rest on fresh plans from
    /// the flags. The same --seed gives the same sequence of runs. Each failure gets a
    /// run directory and a `chaos sim --plan` line, ready for `chaos shrink`. Exit: the
    /// worst run's exit code (0 when every run passed).
    Explore(flags::ExploreArgs),
    /// Prove the harness finds bugs: run each node --bug under the nemesis over a few
    /// seeds and report, per bug, whether and when a violation was found. Exit 0 if
    /// every bug was detected, 1 if one was not.
    Matrix(flags::MatrixArgs),
    /// Shrink a failing run: search for the smallest plan (fewest faults, ops, clients,
    /// keys, nodes, shortest time) that still fails the same way, by delta debugging,
    /// and run it into a new run directory whose report says what it was shrunk from.
    /// Simulated runs shrink exactly; real runs try each candidate --trials times and
    /// measure the result's reproduction rate. Exit: the smallest plan's run's code; 2
    /// if RUN_DIR is not a failing run.
    Shrink(flags::ShrinkArgs),
    /// Run many seeds of one test (or one shard of them, for a CI matrix or a
    /// Kubernetes Indexed Job), J at a time, simulated or real, into a sweep directory
    /// under --results: sweep.jsonl (one record per run), junit.xml (a test case per
    /// seed), index.html, summary.txt and the failing seeds' run directories. A real
    /// failing seed is run --confirm more times: reproducible or flaky. Exit: the worst
    /// exit code of its runs (0 when every seed passed).
    Sweep(flags::SweepArgs),
    /// Merge sweep directories (the shards of a sweep, or the artifacts a CI system
    /// downloaded) into one sweep.jsonl, junit.xml, index.html and summary.txt, saying
    /// which shards or seeds are missing. Exit: the worst exit code of the runs; 2 if
    /// no sweep directory is found.
    Merge(flags::MergeArgs),
    /// Re-run the plan of an earlier run and report how often its verdict comes back.
    Replay {
        /// The run directory (holds plan.json and result.json).
        run_dir: PathBuf,
        /// How many times to re-run it, 1 to 10,000.
        #[arg(long, default_value_t = 1, value_parser = flags::within::<usize>(results::ranges::TIMES), allow_negative_numbers = true)]
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
        run_dir: PathBuf,
    },
    /// Two runs side by side: system, parameters (a * marks those that differ),
    /// verdict, throughput, latency percentiles per op. Exit 0; 2 if either is not a
    /// run directory with a result.json.
    Compare {
        /// The first run directory.
        a: PathBuf,
        /// The second run directory.
        b: PathBuf,
    },
    /// List the systems this chaos can test (bundled, and declared in system files
    /// under examples/systems or the directories named) and whether what each needs
    /// is installed. Exit 0; 2 if a named directory does not exist.
    Systems(systems::SystemsArgs),
    /// Judge a recorded history: register agreement and validity, linearizability of
    /// the KV store, log agreement, and the isolation of transactions (against the
    /// run's --consistency-model). Exit 0 valid, 1 invalid, 3 unknown, 2 bad input.
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

/// Prints `chaos <cmd>: <error>` and gives `code`.
fn fail(cmd: &str, e: impl std::fmt::Display, code: Exit) -> ExitCode {
    eprintln!("chaos {cmd}: {e}");
    code.into()
}

/// Memory freed goes back to the system at once rather than after mimalloc's
/// default 10 ms. For `chaos check` of a large history the parser's outgrown
/// arrays were otherwise still held when the checker's were made: the peak for a
/// million transactions was 354 bytes each, and is 282 (BENCHMARKS.md).
fn return_freed_memory_at_once() {
    // mi_option_purge_delay, as mimalloc.h numbers it (versions 2 and 3 alike).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets one of the allocator's option values; any thread may, at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}

fn main() -> ExitCode {
    // Transparent huge pages off for this process: with them on, each first
    // touch of an allocator page made the kernel zero a whole 2 MiB page, and a
    // simulated run spent from 2% to 30% of its time in that (BENCHMARKS.md).
    // A refusal (an old kernel) only costs speed.
    let _ = nix::sys::prctl::set_thp_disable(true);
    // Whatever panics, no node outlives the harness.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        cluster::kill_all_registered();
        default_hook(info);
    }));
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some((cmd @ ("run" | "sim"), sub)) = matches.subcommand() {
        if let Err(e) = flags::refuse_beside_plan(sub) {
            return fail(cmd, e, Exit::Usage);
        }
    }
    if matches!(cli.command, Command::Check(_)) {
        return_freed_memory_at_once();
    }
    match cli.command {
        Command::Check(args) => match check::check(&args) {
            Ok(code) => code.into(),
            Err(e) => fail("check", e, Exit::Usage),
        },
        Command::Node { args } => run_node(args),
        Command::Systems(args) => match systems::list(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail("systems", e, Exit::Usage),
        },
        Command::Compare { a, b } => match harness::compare::compare(&a, &b) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail("compare", e, Exit::Usage),
        },
        Command::Run(args) => run(&args),
        Command::Sweep(args) => run_sweep(&args),
        Command::Merge(args) => {
            match sweep::merge(&args.dirs, &args.out, &Terminal::new(true, false)) {
                Ok(code) => code.into(),
                Err(e @ sweep::SweepError::Usage(_)) => fail("merge", e, Exit::Usage),
                Err(e) => fail("merge", e, Exit::Harness),
            }
        }
        Command::Sim(args) => match sim::command(&args) {
            Ok(code) => exit_now(code),
            Err(e @ sim::SimError::Usage(_)) => fail("sim", e, Exit::Usage),
            Err(e) => fail("sim", e, Exit::Harness),
        },
        Command::Explore(args) => match explore::command(&args) {
            Ok(code) => code.into(),
            Err(e @ sim::SimError::Usage(_)) => fail("explore", e, Exit::Usage),
            Err(e) => fail("explore", e, Exit::Harness),
        },
        Command::Shrink(args) => run_shrink(&args),
        Command::Report { run_dir } => match report::report(&run_dir) {
            Ok(code) => code.into(),
            Err(e) => fail("report", e, Exit::Usage),
        },
        Command::Matrix(args) => run_matrix(&args),
        Command::Replay {
            run_dir,
            times,
            no_progress,
        } => {
            let show = Terminal::new(no_progress, false);
            match replay::replay(&run_dir, times, &show) {
                Ok(code) => code.into(),
                Err(e @ (replay::ReplayError::NoPlan(_) | replay::ReplayError::Plan(..))) => {
                    fail("replay", e, Exit::Usage)
                }
                Err(e) => fail("replay", e, Exit::Harness),
            }
        }
    }
}

/// Ends the process with `code` once its output is flushed, without the exit
/// handlers and destructors that would only give back memory the kernel takes back
/// whole: 2% of a 5-node `chaos sim` run (BENCHMARKS.md). Only for a command whose
/// files are all written and closed and that started no process.
fn exit_now(code: results::ExitCode) -> ! {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit only ends the process; nothing of this process is left to do.
    unsafe { nix::libc::_exit(code as i32) }
}

/// `chaos run`: one plan against real processes.
fn run(args: &flags::RunArgs) -> ExitCode {
    let plan = match flags::run_plan(args) {
        Ok(p) => p,
        Err(e) => return fail("run", e, Exit::Usage),
    };
    if plan.net == results::Net::Netns {
        if let Some(e) = enter_user_namespace() {
            return fail("run", e, Exit::Harness);
        }
    }
    let show = Terminal::new(args.no_progress, args.json);
    match engine::execute(&plan, &args.results, &show) {
        Ok(outcome) => outcome.exit_code.into(),
        Err(e) => fail("run", e, Exit::Harness),
    }
}

/// `chaos sweep`: many seeds of one test.
fn run_sweep(args: &flags::SweepArgs) -> ExitCode {
    let spec = match args.spec() {
        Ok(s) => s,
        Err(e) => return fail("sweep", e, Exit::Usage),
    };
    match sweep::first_plan(&spec) {
        Ok(plan) if plan.net == results::Net::Netns => {
            if let Some(e) = enter_user_namespace() {
                return fail("sweep", e, Exit::Harness);
            }
        }
        Ok(_) => {}
        Err(e) => return fail("sweep", e, Exit::Usage),
    }
    let show = Terminal::new(args.run.no_progress, false);
    match sweep::sweep(&spec, &show) {
        Ok(code) => code.into(),
        Err(e @ sweep::SweepError::Usage(_)) => fail("sweep", e, Exit::Usage),
        Err(e) => fail("sweep", e, Exit::Harness),
    }
}

/// `chaos shrink`: the smallest plan that still fails the same way.
fn run_shrink(args: &flags::ShrinkArgs) -> ExitCode {
    match shrink::run(&args.spec(), &Terminal::new(args.no_progress, false)) {
        Ok(result) => {
            let report = std::path::Path::new(&result.run_dir).join("report.html");
            print!(
                "{}",
                results::summary::render(
                    &result,
                    report.is_file().then_some(report.as_path()),
                    results::summary::colour_on_stdout()
                )
            );
            result.exit_code.into()
        }
        Err(e @ shrink::ShrinkError::Usage(_)) => fail("shrink", e, Exit::Usage),
        Err(e) => fail("shrink", e, Exit::Harness),
    }
}

/// `chaos matrix`: every bug under the nemesis.
fn run_matrix(args: &flags::MatrixArgs) -> ExitCode {
    match harness::matrix::matrix(&args.spec(), &Terminal::new(true, false)) {
        Ok(m) => {
            matrix::print(&args.spec(), &m);
            if m.all_found {
                Exit::Valid
            } else {
                Exit::Invalid
            }
            .into()
        }
        Err(e @ harness::matrix::MatrixError::Usage(_)) => fail("matrix", e, Exit::Usage),
        Err(e) => fail("matrix", e, Exit::Harness),
    }
}

/// The variable that marks a harness already inside its own user namespace.
const IN_USERNS: &str = "CHAOS_IN_USER_NAMESPACE";

/// A harness that is not root makes its namespaces inside an unprivileged user
/// namespace, in which it is root: it runs itself again under `unshare -Urnm` (the
/// same arguments; it replaces this process, so its parent sees one process). Returns
/// only when that cannot be done, with why; root, or already inside, goes on as is.
fn enter_user_namespace() -> Option<String> {
    if nix::unistd::geteuid().is_root() || std::env::var_os(IN_USERNS).is_some() {
        return None;
    }
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return Some(format!("cannot find this executable to re-run it: {e}")),
    };
    // Try first, so that a kernel without unprivileged user namespaces is a clear
    // error here and not an exit code of `unshare`'s.
    let unshare = ["--user", "--map-root-user", "--net", "--mount", "--"];
    match std::process::Command::new("unshare")
        .args(unshare)
        .arg("true")
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Some(format!(
                "--net netns as a user that is not root needs an unprivileged user namespace, and `unshare -Urnm` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Err(e) => {
            return Some(format!(
                "--net netns as a user that is not root needs `unshare` (util-linux): {e}"
            ));
        }
    }
    let err = std::process::Command::new("unshare")
        .args(unshare)
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(IN_USERNS, "1")
        .exec();
    Some(format!(
        "--net netns as a user that is not root needs an unprivileged user namespace, made with `unshare` (util-linux): {err}"
    ))
}

fn run_node(args: Vec<String>) -> ExitCode {
    let argv = std::iter::once("chaos node".to_string()).chain(args);
    let node_args = match <paxos_node::cli::NodeArgs as clap::Parser>::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match paxos_node::cli::run(node_args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The node's own exit codes (docs/protocol.md), not the harness's.
            eprintln!("chaos node: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
