//! ptrace requests the agent uses, on top of `nix` where it has them and
//! of `sys::ptrace` where it does not.
//!
//! ptrace ties a tracee to the tracer *thread* that attached: every request
//! for a frozen process must come from the thread that froze it.

use nix::{errno::Errno, sys::ptrace, unistd::Pid};

use crate::sys::ptrace as sys;
pub use crate::sys::ptrace::Waited;

fn pid(tid: u32) -> Pid {
    Pid::from_raw(tid as i32)
}

/// A ptrace request (or wait) on a thread that failed.
#[derive(Debug, thiserror::Error)]
#[error("pid {pid}: thread {tid}: {call}: {source}")]
pub struct PtraceError {
    pub pid: u32,
    pub tid: u32,
    pub call: &'static str,
    #[source]
    pub source: Errno,
}

impl PtraceError {
    /// Maps an errno of `call` on `tid` of `pid` to this error.
    pub fn of(pid: u32, tid: u32, call: &'static str) -> impl FnOnce(Errno) -> Self {
        move |source| Self {
            pid,
            tid,
            call,
            source,
        }
    }
}

/// Waits for the next event of traced thread `tid` (`waitpid(tid, __WALL)`),
/// without ever blocking for good: a thread-group leader that has exited is
/// reported only after every other thread of its group was reaped, so a
/// blocking wait on it could wait forever when the process is killed while
/// frozen. This polls, and says `Exited` for a thread that is a zombie or
/// gone. Decoded from the raw status (`sys::ptrace::Waited`): a stop for a
/// realtime signal is reported as any other.
pub fn wait_tid(tid: u32) -> Result<Waited, Errno> {
    let mut pause = std::time::Duration::from_micros(20);
    loop {
        match sys::wait_nohang(tid) {
            Ok(Waited::StillAlive) => {}
            Err(Errno::EINTR) => continue,
            other => return other,
        }
        if crate::procfs::exiting(tid) {
            return Ok(Waited::Exited);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(5));
    }
}

/// Attaches to `tid` without stopping it, its seccomp filters suspended
/// while it is traced (`PTRACE_O_SUSPEND_SECCOMP`): the system calls the
/// agent runs inside it must not meet them (a filter may kill for one).
/// Where the kernel cannot (no `CONFIG_CHECKPOINT_RESTORE`), plainly.
pub fn seize(tid: u32) -> Result<(), Errno> {
    const PTRACE_O_SUSPEND_SECCOMP: libc::c_long = 1 << 21;
    let plain = ptrace::Options::PTRACE_O_TRACESYSGOOD;
    match sys::seize(tid, plain.bits() as libc::c_long | PTRACE_O_SUSPEND_SECCOMP) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL | Errno::EPERM) => ptrace::seize(pid(tid), plain),
        Err(e) => Err(e),
    }
}

/// Asks a seized thread to stop.
pub fn interrupt(tid: u32) -> Result<(), Errno> {
    ptrace::interrupt(pid(tid))
}

/// How a thread reported in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Stopped by our interrupt (or a group stop): nothing pending.
    Interrupted,
    /// Stopped on the way to deliver `signal`; it must be given back on
    /// detach (or it is lost).
    Signal(i32),
    /// It is gone.
    Exited,
}

/// Waits until `tid` stops (or exits).
pub fn wait_stop(tid: u32) -> Result<Stop, Errno> {
    loop {
        match wait_tid(tid) {
            Ok(Waited::Event(_)) => return Ok(Stop::Interrupted),
            Ok(Waited::Signal(signal)) => {
                // With PTRACE_SEIZE, group stops come as PTRACE_EVENT_STOP;
                // a plain stop is a signal on its way.
                return Ok(Stop::Signal(signal));
            }
            Ok(Waited::Exited) => return Ok(Stop::Exited),
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Ok(Stop::Exited),
            Err(e) => return Err(e),
        }
    }
}

/// Lets `tid` go, delivering `signal` if it was stopped on its way (any
/// signal, a realtime one too).
pub fn detach(tid: u32, signal: Option<i32>) -> Result<(), Errno> {
    sys::detach(tid, signal.unwrap_or(0))
}

/// Waits for a killed tracee to be gone, so it does not linger as a zombie
/// reported to us. Unlike [`wait_tid`], a zombie is not taken as gone: a
/// traced zombie stays traced until its tracer waits for it, and a process
/// whose threads stay so can never be reaped by its parent. The caller
/// reaps a group's other threads before its leader (which is reported only
/// after them); the wait is bounded all the same.
pub fn reap(tid: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut pause = std::time::Duration::from_micros(20);
    loop {
        match sys::wait_nohang(tid) {
            Ok(Waited::Exited) => return,
            Err(Errno::EINTR) => continue,
            Err(_) => return, // not (or no longer) ours
            Ok(Waited::StillAlive) => {
                if std::time::Instant::now() >= deadline {
                    log::warn!("thread {tid} was killed but is still not gone; left to the kernel");
                    return;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(5));
            }
            Ok(_) => {
                // A last stop (e.g. PTRACE_EVENT_EXIT) before it dies.
                let _ = ptrace::cont(pid(tid), None);
            }
        }
    }
}

/// General registers.
pub fn regs(tid: u32) -> Result<libc::user_regs_struct, Errno> {
    ptrace::getregs(pid(tid))
}

/// The full xstate (`NT_X86_XSTATE`) into `buf`; returns the bytes the kernel
/// filled.
pub fn xstate(tid: u32, buf: &mut [u8]) -> Result<usize, Errno> {
    sys::xstate(tid, buf)
}

/// The thread's blocked-signal mask.
pub fn sigmask(tid: u32) -> Result<u64, Errno> {
    sys::sigmask(tid)
}

/// Sets the thread's blocked-signal mask.
pub fn set_sigmask(tid: u32, mask: u64) -> Result<(), Errno> {
    sys::set_sigmask(tid, mask)
}

/// The siginfo of the signal a thread is stopped on its way to deliver
/// (`PTRACE_GETSIGINFO`, raw 128 bytes).
pub fn siginfo(tid: u32) -> Result<[u8; 128], Errno> {
    sys::siginfo(tid)
}

/// Pending signals (the thread's own queue, or the process's shared one),
/// as raw 128-byte `siginfo_t`s, without dequeuing them.
pub fn pending_signals(tid: u32, shared: bool) -> Result<Vec<[u8; 128]>, Errno> {
    let mut all = Vec::new();
    loop {
        let mut batch = [[0u8; 128]; 32];
        let n = sys::peek_siginfo(tid, shared, all.len() as u64, &mut batch)?;
        all.extend_from_slice(&batch[..n]);
        if n < batch.len() {
            return Ok(all);
        }
    }
}

/// The thread's rseq registration: (address, length, signature), or `None`
/// when it has none.
pub fn rseq(tid: u32) -> Result<Option<(u64, u32, u32)>, Errno> {
    let (pointer, size, signature) = sys::rseq_configuration(tid)?;
    Ok((pointer != 0).then_some((pointer, size, signature)))
}

/// The thread's seccomp filters, oldest first: (flags, the filter's
/// `struct sock_filter` array as bytes). `PTRACE_SECCOMP_GET_FILTER` counts
/// from the newest; `PTRACE_GET_SECCOMP_METADATA` gives each one's flags
/// (`SECCOMP_FILTER_FLAG_LOG`).
pub fn seccomp_filters(tid: u32) -> Result<Vec<(u64, Vec<u8>)>, Errno> {
    let mut filters = Vec::new();
    for index in 0u64.. {
        let program = match sys::seccomp_filter(tid, index) {
            Err(Errno::ENOENT) => break,
            other => other?,
        };
        filters.push((sys::seccomp_filter_flags(tid, index)?, program));
    }
    filters.reverse();
    Ok(filters)
}

/// The thread's robust futex list: (head, length).
pub fn robust_list(tid: u32) -> crate::sys::Result<(u64, u64)> {
    sys::robust_list(tid)
}

#[cfg(test)]
mod tests {
    use std::{
        io::Read as _,
        process::{Command, Stdio},
        time::{Duration, Instant},
    };

    use super::*;

    /// A realtime signal sent to a traced thread stops it on its way; the
    /// wait reports it and the detach delivers it (both once lost it:
    /// `nix`'s wait failed with `EINVAL` on it, its detach dropped it).
    #[test]
    fn a_realtime_signal_stopped_on_its_way_is_reported_and_delivered() {
        let rt = libc::SIGRTMIN() + 10;
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "trap 'echo got; exit 0' {rt}; echo ready; while :; do sleep 0.01; done"
            ))
            .stdout(Stdio::piped())
            .spawn()
            .expect("bash");
        let tid = child.id();
        let mut out = child.stdout.take().expect("piped");
        let mut ready = [0u8; 6];
        out.read_exact(&mut ready).expect("ready");
        seize(tid).expect("PTRACE_SEIZE");
        crate::sys::process::kill(tid, rt).expect("kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        let stop = loop {
            match wait_stop(tid) {
                // A stop for the sleep child's SIGCHLD may come first.
                Ok(Stop::Signal(s)) if s != rt => detach_and_seize(tid, s),
                other => break other,
            }
            assert!(Instant::now() < deadline, "no stop for signal {rt}");
        };
        assert_eq!(stop, Ok(Stop::Signal(rt)));
        detach(tid, Some(rt)).expect("PTRACE_DETACH");
        let mut said = String::new();
        out.read_to_string(&mut said).expect("its output");
        assert_eq!(said.trim(), "got", "the signal was delivered on detach");
        assert!(child.wait().expect("wait").success());
    }

    /// Lets `tid` go with `signal` and traces it again.
    fn detach_and_seize(tid: u32, signal: i32) {
        detach(tid, Some(signal)).expect("PTRACE_DETACH");
        seize(tid).expect("PTRACE_SEIZE");
    }
}
