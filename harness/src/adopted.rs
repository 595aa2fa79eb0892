//! A resumed process: `suspend-agent resume` creates it, and once that
//! command has exited it is a child of this process, the child subreaper.
//! `std::process::Child` does not know it: it is waited for and killed by
//! its pid, and only while it is still our child, so no other process is
//! ever hit.

use std::{io, os::unix::process::ExitStatusExt as _, process::ExitStatus};

/// Makes this process the child subreaper: a process that `resume` brings
/// back is a child of the command until it exits, then ours.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: a plain prctl on this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `status` as a shell says it: the exit code, 128 + the signal that killed
/// it, or -1.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| status.signal().map_or(-1, |s| 128 + s))
}

/// Reaps our child `pid` if it has ended, without waiting: its
/// [`exit_code`], or -1 if it is not our child (or was reaped elsewhere);
/// `None` while it runs.
pub fn try_reap(pid: u32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waiting for one pid without blocking; `status` is ours.
    let got = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
    match got {
        0 => None,
        got if got < 0 => Some(-1),
        _ => Some(exit_code(ExitStatus::from_raw(status))),
    }
}

/// Kills our child `pid` (SIGKILL) and reaps it. Only for a child that has
/// not been reaped: until then its pid cannot be another process's.
pub fn kill_and_reap(pid: u32) {
    // SAFETY: signalling and reaping our own child by its pid.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
        libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
    }
}

/// A process adopted through the subreaper: killed and reaped when
/// dropped, unless it has ended (and was reaped) before.
#[derive(Debug)]
pub struct Adopted {
    pid: u32,
    ended: Option<i32>,
}

impl Adopted {
    pub fn new(pid: u32) -> Self {
        Self { pid, ended: None }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its status ([`try_reap`]) once it has ended; `None` while it runs.
    pub fn try_status(&mut self) -> Option<i32> {
        if self.ended.is_none() {
            self.ended = try_reap(self.pid);
        }
        self.ended
    }
}

impl Drop for Adopted {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            kill_and_reap(self.pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_ended_is_reaped_once_and_says_how() {
        let child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        std::mem::forget(child); // waited for by its pid below
        let mut adopted = Adopted::new(pid);
        assert_eq!(adopted.try_status(), None, "it runs");
        // SAFETY: signalling our own child, not reaped yet.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        let status = crate::poll(crate::WAIT, std::time::Duration::from_millis(1), || {
            adopted.try_status()
        });
        assert_eq!(status, Some(128 + libc::SIGKILL));
        assert_eq!(adopted.try_status(), status, "kept once reaped");
        assert_eq!(try_reap(pid), Some(-1), "reaped: no longer our child");
    }

    #[test]
    fn an_exit_code_is_the_code_or_128_plus_the_signal() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
    }
}
