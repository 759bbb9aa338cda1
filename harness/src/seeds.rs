//! The seed loop every sweep shares (`chaos sweep`, `chaos sim --seeds`, `chaos matrix
//! --sim`), and its live view.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The seed loop both sweeps share (`chaos sweep`, and `chaos sim --seeds` and
/// `chaos matrix --sim` through [`crate::sim::sweep::sweep`]): `jobs` threads take the
/// seeds in order (`seed_at(i)` is the i-th, `None` past the last) and run
/// `work(seed)`, until the seeds run out, `stop()` gives a reason before a seed
/// starts, or `work` fails (the first error ends every thread). Returns why it
/// stopped before its last seed, if it did.
pub fn on_threads(
    jobs: usize,
    seed_at: &(dyn Fn(u64) -> Option<u64> + Sync),
    stop: &(dyn Fn() -> Option<String> + Sync),
    work: &(dyn Fn(u64) -> Result<(), String> + Sync),
) -> Result<Option<String>, String> {
    let next = AtomicU64::new(0);
    let stopped: Mutex<Option<String>> = Mutex::new(None);
    let error: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                while error.lock().expect("not poisoned").is_none() {
                    let Some(seed) = seed_at(next.fetch_add(1, Ordering::SeqCst)) else {
                        return;
                    };
                    if let Some(why) = stop() {
                        stopped.lock().expect("not poisoned").get_or_insert(why);
                        return;
                    }
                    if let Err(e) = work(seed) {
                        error.lock().expect("not poisoned").get_or_insert(e);
                    }
                }
            });
        }
    });
    match error.into_inner().expect("not poisoned") {
        Some(e) => Err(e),
        None => Ok(stopped.into_inner().expect("not poisoned")),
    }
}

/// The live view: one bar on a terminal; otherwise a status line at most every
/// five seconds (and after every real run).
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    started: Instant,
    last_line: Mutex<Instant>,
    every_run: bool,
}

impl Progress {
    pub(crate) fn new(total: u64, no_progress: bool, every_run: bool) -> Progress {
        let bar = (!no_progress && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed}] [{bar:30}] {pos}/{len} seeds | {msg} | ETA {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_message("0 failing");
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            total,
            started: Instant::now(),
            last_line: Mutex::new(Instant::now()),
            every_run,
        }
    }

    /// A line that must be seen (a failing seed): above the bar, or on stdout.
    pub(crate) fn say(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => println!("{text}"),
        }
    }

    pub(crate) fn update(&self, done: u64, failed: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
            b.set_message(format!("{failed} failing"));
            return;
        }
        let mut last = self.last_line.lock().expect("not poisoned");
        if !self.every_run && last.elapsed() < Duration::from_secs(5) {
            return;
        }
        *last = Instant::now();
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta = if done > 0 {
            format!(
                "{:.0} s",
                elapsed / done as f64 * (self.total - done.min(self.total)) as f64
            )
        } else {
            "-".into()
        };
        eprintln!(
            "[{elapsed:>6.1}s] {done}/{} seeds, {failed} failing, ETA {eta}",
            self.total
        );
    }

    pub(crate) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_runs_once_until_a_stop_or_an_error() {
        let seen = Mutex::new(Vec::new());
        let seeds = |i: u64| (i < 50).then_some(100 + i);
        let ended = on_threads(3, &seeds, &|| None, &|s| {
            seen.lock().unwrap().push(s);
            Ok(())
        });
        assert_eq!(ended, Ok(None));
        let mut all = seen.into_inner().unwrap();
        all.sort_unstable();
        assert_eq!(all, (100..150).collect::<Vec<_>>(), "each seed once");
        // A stop is checked before each seed starts, and its reason returned.
        let ran = AtomicU64::new(0);
        let stop = || (ran.load(Ordering::SeqCst) >= 5).then(|| "enough".to_string());
        let ended = on_threads(1, &seeds, &stop, &|_| {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        assert_eq!(ended, Ok(Some("enough".into())));
        assert_eq!(ran.into_inner(), 5);
        // The first error ends every thread.
        let ended = on_threads(2, &seeds, &|| None, &|s| {
            if s == 110 {
                Err("seed 110 broke".into())
            } else {
                Ok(())
            }
        });
        assert_eq!(ended, Err("seed 110 broke".into()));
    }
}
