//! What a person sees while a run goes: the header, a progress bar on a terminal (or a
//! status line every few seconds), and SIGINT/SIGTERM as a request to stop early.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use results::{Plan, RunDir};

use crate::recorder::Recorder;

/// How to present a run.
#[derive(Clone, Copy, Debug)]
pub struct Presentation {
    pub progress_bar: bool,
    pub json: bool,
    /// No header, no status lines and no summary (result.json is still written).
    pub quiet: bool,
}

impl Presentation {
    /// The bar is for people: only on a terminal and without --no-progress or --json.
    pub fn new(no_progress: bool, json: bool) -> Presentation {
        Presentation {
            progress_bar: !no_progress && !json && std::io::stderr().is_terminal(),
            json,
            quiet: false,
        }
    }

    /// Nothing on the terminal.
    pub fn quiet() -> Presentation {
        Presentation {
            progress_bar: false,
            json: false,
            quiet: true,
        }
    }
}

pub fn header(plan: &Plan, dir: &RunDir, show: Presentation) {
    if show.json || show.quiet {
        return;
    }
    let virtual_time = if plan.mode == results::Mode::Sim {
        " virtual"
    } else {
        ""
    };
    println!(
        "{}: seed {} | {} nodes | {} workload | {}{virtual_time} s | nemesis {} ({} faults scheduled) | run directory {}",
        plan.mode.command(),
        plan.seed,
        plan.nodes,
        plan.workload.name(),
        plan.time_limit_s,
        plan.nemesis.describe(),
        plan.scheduled_faults(),
        dir.path.display()
    );
    for note in plan.schedule_notes() {
        println!("  note: {note}");
    }
}

/// Set by SIGINT or SIGTERM once [`stop_on_signals`] is on: a command that runs many
/// runs (a shrink, a sweep) stops starting new ones and finishes what it has.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: nix::libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// SIGINT and SIGTERM set [`stop_requested`] instead of ending the process. A real
/// run started afterwards installs its own handler, which chains to this one, so the
/// run in progress ends early too (its history is judged as interrupted).
pub fn stop_on_signals() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(request_stop),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// Whether SIGINT or SIGTERM arrived since [`stop_on_signals`].
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

pub fn watch_signals(flag: Arc<AtomicBool>) {
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [SignalKind::interrupt(), SignalKind::terminate()] {
        let flag = flag.clone();
        if let Ok(mut s) = signal(kind) {
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    flag.store(true, Ordering::SeqCst);
                }
            });
        }
    }
}

/// Waits for the time limit (or an interrupt), showing progress.
pub async fn until_limit(
    plan: &Plan,
    recorder: &Recorder,
    active_faults: &Mutex<Vec<String>>,
    interrupted: &AtomicBool,
    show: Presentation,
) {
    let limit = Duration::from_secs_f64(plan.time_limit_s);
    let start = Instant::now();
    let bar = show.progress_bar.then(|| {
        let bar = indicatif::ProgressBar::new(limit.as_millis() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed:>4}/{prefix} [{bar:30}] {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}s", plan.time_limit_s));
        bar
    });
    let mut last_line = Instant::now();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= limit || interrupted.load(Ordering::SeqCst) {
            break;
        }
        let (ok, fail, info) = (
            recorder.ok.load(Ordering::Relaxed),
            recorder.fail.load(Ordering::Relaxed),
            recorder.info.load(Ordering::Relaxed),
        );
        let faults = active_faults
            .lock()
            .ok()
            .filter(|a| !a.is_empty())
            .map_or("none".to_string(), |a| a.join(", "));
        let msg = format!("ok {ok} fail {fail} info {info} | faults: {faults}");
        match &bar {
            Some(b) => {
                b.set_position(elapsed.as_millis() as u64);
                b.set_message(msg);
            }
            None if !show.json && !show.quiet && last_line.elapsed() >= Duration::from_secs(5) => {
                last_line = Instant::now();
                eprintln!(
                    "[{:>5.1}s/{}s] {msg}",
                    elapsed.as_secs_f64(),
                    plan.time_limit_s
                );
            }
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}
