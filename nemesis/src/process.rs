//! Process faults: signals to a node's whole process group.
//!
//! Every node runs in its own process group, so one signal reaches the node and
//! anything it started. `kill` cannot be caught or ignored, and it also ends a stopped
//! group; `pause` is healed by `resume`, and a group that is killed while stopped
//! needs no resume.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A process-group id, as returned by the spawner (the group leader's pid).
pub type Pgid = i32;

#[derive(Debug, thiserror::Error)]
#[error("signal {signal} to process group {pgid}: {source}")]
pub struct SignalError {
    pub pgid: Pgid,
    pub signal: &'static str,
    #[source]
    pub source: nix::Error,
}

fn send(pgid: Pgid, signal: Signal) -> Result<(), SignalError> {
    killpg(Pid::from_raw(pgid), signal).map_err(|source| SignalError {
        pgid,
        signal: signal.as_str(),
        source,
    })
}

/// SIGKILL to the group: the `kill` fault, and every cleanup path.
pub fn kill(pgid: Pgid) -> Result<(), SignalError> {
    send(pgid, Signal::SIGKILL)
}

/// SIGSTOP to the group: the `pause` fault.
pub fn pause(pgid: Pgid) -> Result<(), SignalError> {
    send(pgid, Signal::SIGSTOP)
}

/// SIGCONT to the group: the `resume` fault, which heals a pause.
pub fn resume(pgid: Pgid) -> Result<(), SignalError> {
    send(pgid, Signal::SIGCONT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    fn state(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The state follows the parenthesised command name.
        stat.rsplit_once(") ")?.1.chars().next()
    }

    fn wait_for(pid: u32, want: char) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if state(pid) == Some(want) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn pause_resume_and_kill_reach_the_group() {
        let mut child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pgid = child.id() as Pgid;
        pause(pgid).unwrap();
        assert!(wait_for(child.id(), 'T'), "paused group is stopped");
        resume(pgid).unwrap();
        assert!(wait_for(child.id(), 'S'), "resumed group runs again");
        pause(pgid).unwrap();
        kill(pgid).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "a stopped group dies of SIGKILL");
        assert!(
            kill(pgid).is_err(),
            "a reaped group is an error, not a panic"
        );
    }
}
