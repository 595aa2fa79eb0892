//! Processes: this one's limits and signal dispositions; others created,
//! signalled and waited for by pid.

use super::{Result, SyscallError};

/// This process's limit `resource` (`RLIMIT_*`): (soft, hard).
pub fn rlimit(resource: u32) -> Result<(u64, u64)> {
    let mut limit = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit64 reads this process's limit into a valid struct.
    if unsafe { libc::prlimit64(0, resource, std::ptr::null(), &mut limit) } < 0 {
        return Err(SyscallError::last("prlimit64"));
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Sets this process's limit `resource` (`RLIMIT_*`) to `soft` and
/// `hard`.
pub fn set_rlimit(resource: u32, soft: u64, hard: u64) -> Result<()> {
    let limit = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: prlimit64 reads the new limit from a valid struct.
    if unsafe { libc::prlimit64(0, resource, &limit, std::ptr::null_mut()) } < 0 {
        return Err(SyscallError::last("prlimit64"));
    }
    Ok(())
}

/// Gives `SIGPIPE` its default action back (ending the process quietly
/// when the reader of its output goes away): Rust's runtime ignores it.
pub fn default_sigpipe() {
    // SAFETY: SIG_DFL installs no handler; no memory is passed.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Sends `signal` to thread `tid` of process `pid` (`tgkill`).
pub fn tgkill(pid: u32, tid: u32, signal: i32) -> Result<()> {
    // SAFETY: tgkill takes three integers and no memory.
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, pid as i32, tid as i32, signal) };
    if rc < 0 {
        return Err(SyscallError::last("tgkill"));
    }
    Ok(())
}

/// Ignores the signals that end a command from its terminal or session
/// (`SIGINT`, `SIGQUIT`, `SIGHUP`, `SIGTERM`) in this process from now
/// on: a command whose work must end with a message either way.
pub fn ignore_terminal_signals() -> Result<()> {
    for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM] {
        // SAFETY: SIG_IGN is a valid disposition; no handler runs.
        if unsafe { libc::signal(signal, libc::SIG_IGN) } == libc::SIG_ERR {
            return Err(SyscallError::last("signal"));
        }
    }
    Ok(())
}

/// Sends `signal` to process `pid` (`kill`).
pub fn kill(pid: u32, signal: i32) -> Result<()> {
    // SAFETY: kill takes two integers and no memory.
    if unsafe { libc::kill(pid as libc::pid_t, signal) } < 0 {
        return Err(SyscallError::last("kill"));
    }
    Ok(())
}

/// Waits for child (or traced thread) `pid` to change state
/// (`waitpid` with `__WALL`, blocking): its raw status.
pub fn wait(pid: u32) -> Result<i32> {
    let mut status = 0;
    // SAFETY: waitpid writes one int.
    if unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::__WALL) } < 0 {
        return Err(SyscallError::last("waitpid"));
    }
    Ok(status)
}

/// Creates a child process whose pid is `pid` (`clone3` with `set_tid`,
/// `SIGCHLD` as its exit signal, no other flag: a copy of this process, as
/// `fork` makes). Returns twice, as `fork` does: 0 in the child, `pid` in
/// this process.
///
/// # Safety
/// As for `fork`: if this process has other threads, the child (which has
/// only this one) must call nothing but async-signal-safe functions (no
/// allocation, no lock) until it execs or exits.
pub unsafe fn clone_with_pid(pid: u32) -> Result<u32> {
    let set_tid: [libc::pid_t; 1] = [pid as libc::pid_t];
    let mut args = [0u64; 11]; // struct clone_args, up to `cgroup`
    args[4] = libc::SIGCHLD as u64; // exit_signal
    args[8] = set_tid.as_ptr() as u64; // set_tid
    args[9] = 1; // set_tid_size
    // SAFETY: clone3 reads the 88-byte argument block and the one-pid
    // `set_tid` array; without CLONE_VM the child has its own copy of
    // memory, and the caller answers for what it does there.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, args.as_ptr(), 88usize) };
    if ret < 0 {
        return Err(SyscallError::last("clone3"));
    }
    Ok(ret as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_read_and_set_its_own_limit() {
        let (soft, hard) = rlimit(libc::RLIMIT_NOFILE).expect("RLIMIT_NOFILE");
        assert!(soft <= hard);
        set_rlimit(libc::RLIMIT_NOFILE, soft, hard).expect("the same limit again");
        assert_eq!(rlimit(libc::RLIMIT_NOFILE).expect("again"), (soft, hard));
    }
}
