//! The seed loop every sweep shares (`chaos sweep`, `chaos sim --seeds`, `chaos matrix
//! --sim`); what it shows is its caller's [`crate::observe::Observer`]'s business.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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
