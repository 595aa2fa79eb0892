//! What `/proc` and the agent's run directory say of a process.

use std::path::PathBuf;

use suspend_common::paths::RUN_DIR;

/// The state letter of `/proc/PID/stat` (`R`, `S`, `Z`…); `None` once the
/// pid is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Whether `pid` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|state| state != 'Z')
}

/// `VmRSS` of `pid` in KiB; `None` once it is gone (or for a kernel
/// thread).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The record the agent keeps of a held process, from its hold until every
/// page is back after its resume: `/run/suspend/held/PID.json`.
pub fn held_record(pid: u32) -> PathBuf {
    PathBuf::from(RUN_DIR)
        .join("held")
        .join(format!("{pid}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_resident() {
        let me = std::process::id();
        // The state of the main thread, which may wait for this one.
        assert!(proc_state(me).is_some_and(|state| state != 'Z'));
        assert!(pid_alive(me));
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        assert_eq!(held_record(42), PathBuf::from("/run/suspend/held/42.json"));
    }

    #[test]
    fn a_zombie_is_not_alive_and_a_reaped_child_is_gone() {
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id();
        let zombie = crate::poll(crate::WAIT, std::time::Duration::from_millis(1), || {
            (proc_state(pid) == Some('Z')).then_some(())
        });
        assert_eq!(zombie, Some(()), "it ended, not reaped yet");
        assert!(!pid_alive(pid));
        child.wait().expect("reaping it");
        assert_eq!(proc_state(pid), None);
    }
}
