//! The agent's own peak memory, measured where the work runs:
//!
//! - a suspend (the dump) runs in the daemon, on threads of its own: it
//!   forks no helper, so the daemon's `VmHWM` is the dump's peak. That is
//!   a high-water mark over the daemon's life, so it is reset before each
//!   run (`clear_refs` 5 sets it to the current resident size) and read
//!   after; where it cannot be reset the figure is since the daemon's
//!   start, and [`DaemonPeak::reset`] says so;
//! - a resume from an image runs in the `resume` command (a CLI process),
//!   whose `ru_maxrss` `live::wait_limited` reads as it waits for it;
//! - a held process's memory is given back by `suspend-agent refill PID`,
//!   which `resume PID` starts in a session of its own and leaves behind;
//!   once `resume` returns it is a child of the bench (the subreaper), and
//!   its `ru_maxrss` is read as it is reaped ([`Refill`]).

use std::time::Duration;

use suspend_harness::poll;

/// The running daemon's pid file (suspend-common's `paths::LOCK_FILE`).
const DAEMON_PID_FILE: &str = "/run/suspend/agent.pid";

/// The value in KiB of `field` (`VmHWM:`) in the text of a
/// `/proc/PID/status`.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The daemon's peak resident memory, one run at a time.
pub struct DaemonPeak {
    pid: Option<u32>,
    /// Whether the last [`DaemonPeak::start`] reset its high-water mark
    /// (else it is since the daemon's start).
    pub reset: bool,
}

impl DaemonPeak {
    /// The daemon running now (from its pid file).
    pub fn find() -> Self {
        let pid = std::fs::read_to_string(DAEMON_PID_FILE)
            .ok()
            .and_then(|pid| pid.trim().parse().ok());
        Self { pid, reset: false }
    }

    /// Resets its high-water mark to its resident size now.
    pub fn start(&mut self) {
        self.reset = self
            .pid
            .is_some_and(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok());
    }

    /// Its `VmHWM`, KiB (0 if it cannot be read).
    pub fn read(&self) -> u64 {
        self.pid
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .and_then(|status| status_kib(&status, "VmHWM:"))
            .unwrap_or(0)
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }
}

/// `(ppid, state, comm)` from the text of a `/proc/PID/stat`.
fn stat_fields(stat: &str) -> Option<(u32, char, &str)> {
    let comm = &stat[stat.find('(')? + 1..stat.rfind(')')?];
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, state, comm))
}

/// Whether a child of ours with this command line (NUL-separated),
/// state and name is the refill agent serving `held`.
fn is_refill(cmdline: &[u8], state: char, comm: &str, held: u32) -> bool {
    let serving = format!("\0refill\0{held}\0");
    let ended = state == 'Z' && matches!(comm, "exe" | "suspend-agent");
    String::from_utf8_lossy(cmdline).contains(&serving) || ended
}

/// The refill agent a held resume left behind.
pub struct Refill(u32);

impl Refill {
    /// The refill agent serving `held` among this process's children: one
    /// whose command line is `… refill HELD`, or one that has ended (a
    /// zombie has no command line) named as `resume` starts it — it runs
    /// `/proc/self/exe`, so the kernel names it `exe` — or `suspend-agent`,
    /// and that is not the daemon (`daemon`). Call it once `resume PID`
    /// returned, where no other agent is a child of ours (the synthetic
    /// workload's runs: no `suspend-agent run`, every command reaped).
    pub fn find(daemon: Option<u32>, held: u32) -> Option<Self> {
        let me = std::process::id();
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .find_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                if Some(pid) == daemon {
                    return None;
                }
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let (ppid, state, comm) = stat_fields(&stat)?;
                if ppid != me {
                    return None;
                }
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                is_refill(&cmdline, state, comm, held).then_some(Self(pid))
            })
    }

    /// Waits (up to `limit`) for it to end and reaps it; its `ru_maxrss`,
    /// KiB. `None` if it did not end in time (it is left running).
    pub fn reap(self, limit: Duration) -> Option<u64> {
        poll(limit, Duration::from_millis(2), || {
            // SAFETY: waiting for our own child (adopted as the subreaper),
            // no one else's handle; `info` and `usage` are ours and the
            // kernel writes only them.
            let (got, info, usage) = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                let mut usage: libc::rusage = std::mem::zeroed();
                let got = libc::syscall(
                    libc::SYS_waitid,
                    libc::P_PID,
                    self.0 as libc::id_t,
                    &mut info as *mut libc::siginfo_t,
                    libc::WEXITED | libc::WNOHANG,
                    &mut usage as *mut libc::rusage,
                );
                (got, info, usage)
            };
            // SAFETY: `info` was zeroed and is filled by waitid; si_pid
            // reads the field it set (0 while the child runs).
            let ended = got == 0 && unsafe { info.si_pid() } != 0;
            (ended || got != 0).then_some(ended.then_some(usage.ru_maxrss.max(0) as u64))
        })
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_water_mark_is_read_from_a_status() {
        let status = "Name:\tsuspend-agent\nVmPeak:\t  123456 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   30000 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(40960));
        assert_eq!(status_kib(status, "VmRSS:"), Some(30000));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn a_stat_gives_its_parent_state_and_name_even_with_odd_names() {
        let stat = "4242 (suspend-agent) S 17 4242 4242 0 -1 4194560 …";
        assert_eq!(stat_fields(stat), Some((17, 'S', "suspend-agent")));
        let odd = "7 (a) b (c)) Z 1 7 7 0";
        assert_eq!(stat_fields(odd), Some((1, 'Z', "a) b (c)")));
    }

    #[test]
    fn the_refill_agent_is_known_by_its_command_line_or_as_a_zombie() {
        let serving = b"/proc/self/exe\x00refill\x00123\x00";
        assert!(is_refill(serving, 'S', "exe", 123));
        assert!(!is_refill(serving, 'S', "exe", 12), "another pid's");
        assert!(!is_refill(serving, 'S', "exe", 1234), "another pid's");
        assert!(is_refill(b"", 'Z', "exe", 123), "ended");
        assert!(is_refill(b"", 'Z', "suspend-agent", 123), "ended");
        assert!(!is_refill(b"", 'Z', "workload", 123), "a workload");
        assert!(!is_refill(b"workload\0--fill\0", 'S', "workload", 123));
    }

    #[test]
    fn a_child_that_ended_is_reaped_with_its_peak() {
        let child = std::process::Command::new("true").spawn().expect("true");
        let peak = Refill(child.id()).reap(Duration::from_secs(10));
        assert!(peak.is_some_and(|kib| kib > 0), "{peak:?}");
        // Not waited again (it is reaped): dropping a `Child` only closes
        // its pipes.
        drop(child);
    }
}
