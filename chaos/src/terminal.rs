//! The terminal as an [`Observer`]: what a person sees while a command works. A run
//! shows its header, a progress bar on a terminal (else a status line every five
//! seconds) and its summary; many seeds a bar of seeds (else a status line every five
//! seconds, or after every real run); a shrink a spinner with its smallest plan (else
//! a line whenever it gets smaller). `--json` prints result.json instead of the words.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use harness::observe::{Observer, RunProgress, run_header};
use indicatif::{ProgressBar, ProgressStyle};
use results::{Plan, RunResult};

/// How often a status line is printed when there is no bar.
const STATUS_EVERY: Duration = Duration::from_secs(5);

pub struct Terminal {
    /// Bars allowed: stderr is a terminal and neither `--no-progress` nor `--json`.
    bars: bool,
    /// result.json on stdout instead of the header and the summary.
    json: bool,
    /// No header and no summary either (a run inside a larger command).
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
    last_status: Mutex<Instant>,
    seeds: Mutex<SeedView>,
}

#[derive(Default)]
struct SeedView {
    total: u64,
    started: Option<Instant>,
    slow: bool,
}

impl Terminal {
    pub fn new(no_progress: bool, json: bool) -> Terminal {
        Terminal {
            bars: !no_progress && !json && std::io::stderr().is_terminal(),
            json,
            quiet: false,
            bar: Mutex::new(None),
            last_status: Mutex::new(Instant::now()),
            seeds: Mutex::new(SeedView::default()),
        }
    }

    fn bar(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.bar.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new_bar(&self, bar: ProgressBar, template: &str) {
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.bar() = Some(bar);
    }

    fn clear_bar(&self) {
        if let Some(b) = self.bar().take() {
            b.finish_and_clear();
        }
    }

    /// Whether a status line is due (at most one every [`STATUS_EVERY`]).
    fn status_due(&self) -> bool {
        let mut last = self.last_status.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() < STATUS_EVERY {
            return false;
        }
        *last = Instant::now();
        true
    }
}

impl Observer for Terminal {
    /// Above the bar when there is one.
    fn say(&self, line: &str) {
        match &*self.bar() {
            Some(b) => b.println(line),
            None => println!("{line}"),
        }
    }

    fn warn(&self, line: &str) {
        match &*self.bar() {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn run_started(&self, plan: &Plan, dir: &Path) {
        if self.json || self.quiet {
            return;
        }
        for line in run_header(plan, dir) {
            println!("{line}");
        }
        *self.last_status.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        if self.bars {
            let limit = Duration::from_secs_f64(plan.time_limit_s);
            let bar = ProgressBar::new(limit.as_millis() as u64);
            bar.set_prefix(format!("{}s", plan.time_limit_s));
            self.new_bar(bar, "{spinner} {elapsed:>4}/{prefix} [{bar:30}] {msg}");
        }
    }

    fn run_progress(&self, p: &RunProgress) {
        let msg = format!(
            "ok {} fail {} info {} | faults: {}",
            p.ok, p.fail, p.info, p.faults
        );
        if let Some(b) = &*self.bar() {
            b.set_position(p.elapsed.as_millis() as u64);
            b.set_message(msg);
            return;
        }
        if !self.json && !self.quiet && self.status_due() {
            eprintln!(
                "[{:>5.1}s/{}s] {msg}",
                p.elapsed.as_secs_f64(),
                p.plan.time_limit_s
            );
        }
    }

    fn run_workload_ended(&self) {
        self.clear_bar();
    }

    fn run_judged(&self, result: &RunResult, json: &str, report: Option<&Path>) {
        if self.json {
            println!("{json}");
        } else if !self.quiet {
            print!(
                "{}",
                results::summary::render(result, report, results::summary::colour_on_stdout())
            );
        }
    }

    fn seeds_started(&self, total: u64, slow: bool) {
        *self.seeds.lock().unwrap_or_else(|p| p.into_inner()) = SeedView {
            total,
            started: Some(Instant::now()),
            slow,
        };
        if self.bars {
            let bar = ProgressBar::new(total);
            bar.set_message("0 failing");
            self.new_bar(
                bar,
                "{spinner} [{elapsed}] [{bar:30}] {pos}/{len} seeds | {msg} | ETA {eta}",
            );
        }
    }

    fn seeds_progress(&self, done: u64, failed: u64) {
        if let Some(b) = &*self.bar() {
            b.set_position(done);
            b.set_message(format!("{failed} failing"));
            return;
        }
        let view = self.seeds.lock().unwrap_or_else(|p| p.into_inner());
        if !view.slow && !self.status_due() {
            return;
        }
        let elapsed = view.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let eta = if done > 0 {
            format!(
                "{:.0} s",
                elapsed / done as f64 * (view.total - done.min(view.total)) as f64
            )
        } else {
            "-".into()
        };
        eprintln!(
            "[{elapsed:>6.1}s] {done}/{} seeds, {failed} failing, ETA {eta}",
            view.total
        );
    }

    fn seeds_ended(&self) {
        self.clear_bar();
    }

    fn search_state(&self, line: &str, changed: bool) {
        if self.bars {
            let mut bar = self.bar();
            let b = bar.get_or_insert_with(|| {
                let b = ProgressBar::new_spinner();
                b.set_style(
                    ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                        .expect("a valid template"),
                );
                b.enable_steady_tick(Duration::from_millis(200));
                b
            });
            b.set_message(line.to_string());
        } else if changed {
            println!("{line}");
        }
    }

    fn search_ended(&self) {
        self.clear_bar();
    }
}
