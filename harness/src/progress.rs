//! A run's clock and the user's signals: the workload's wait for the time limit
//! (telling the observer how it goes), and SIGINT/SIGTERM as a request to stop early.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use results::Plan;

use crate::observe::{Observer, RunProgress};
use crate::recorder::Recorder;

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

/// Waits for the time limit (or an interrupt), telling `show` how the run goes about
/// every 100 ms.
pub async fn until_limit(
    plan: &Plan,
    recorder: &Recorder,
    active_faults: &Mutex<Vec<String>>,
    interrupted: &AtomicBool,
    show: &dyn Observer,
) {
    let limit = Duration::from_secs_f64(plan.time_limit_s);
    let start = Instant::now();
    loop {
        let elapsed = start.elapsed();
        // A history that can no longer be written ends the workload at once.
        if elapsed >= limit || interrupted.load(Ordering::SeqCst) || recorder.broken().is_some() {
            break;
        }
        let faults = active_faults
            .lock()
            .ok()
            .filter(|a| !a.is_empty())
            .map_or("none".to_string(), |a| a.join(", "));
        show.run_progress(&RunProgress {
            plan,
            elapsed,
            ok: recorder.ok.load(Ordering::Relaxed),
            fail: recorder.fail.load(Ordering::Relaxed),
            info: recorder.info.load(Ordering::Relaxed),
            faults: &faults,
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    show.run_workload_ended();
}
