//! Probes for kernel features, each by a harmless real call.

use std::io;

use nix::{
    sys::{
        ptrace,
        signal::{Signal, kill},
        wait::waitpid,
    },
    unistd::{ForkResult, Pid, fork},
};

use super::{Result, SyscallError};

/// `clone3` with `set_tid`: asks for our own (taken) pid, which the kernel
/// refuses with `EEXIST` exactly when it supports `set_tid`.
pub fn clone3_set_tid() -> Result<()> {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    let taken: libc::pid_t = std::process::id() as libc::pid_t;
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: (&raw const taken) as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 with a valid, fully initialised argument block. Without
    // CLONE_VM a success would be a fork-like child, which exits at once.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, &raw const args, size_of::<CloneArgs>()) };
    if rc == 0 {
        // SAFETY: we are the (unexpected) child; leave without running
        // anything of the parent's.
        unsafe { libc::_exit(0) };
    }
    if rc > 0 {
        let _ = waitpid(Pid::from_raw(rc as i32), None);
        return Err(SyscallError::of("clone3")(io::Error::other(
            "set_tid ignored",
        )));
    }
    let e = io::Error::last_os_error();
    let why = match e.raw_os_error() {
        Some(libc::EEXIST) => return Ok(()),
        Some(libc::ENOSYS) => "not in this kernel (< 5.3)".to_owned(),
        Some(libc::EPERM) => "EPERM: needs root (CAP_CHECKPOINT_RESTORE)".to_owned(),
        _ => format!("set_tid not supported: {e}"),
    };
    Err(SyscallError::of("clone3")(io::Error::other(why)))
}

/// `PTRACE_GET_RSEQ_CONFIGURATION` on a stopped child.
pub fn ptrace_rseq_configuration() -> Result<()> {
    // SAFETY: the child only calls async-signal-safe functions (pause/_exit).
    let child = match unsafe { fork() }.map_err(SyscallError::of("fork"))? {
        ForkResult::Child => loop {
            // SAFETY: pause is async-signal-safe.
            unsafe { libc::pause() };
        },
        ForkResult::Parent { child } => child,
    };
    let result = (|| -> Result<()> {
        ptrace::seize(child, ptrace::Options::empty()).map_err(SyscallError::of("PTRACE_SEIZE"))?;
        ptrace::interrupt(child).map_err(SyscallError::of("PTRACE_INTERRUPT"))?;
        waitpid(child, None).map_err(SyscallError::of("waitpid"))?;
        super::ptrace::rseq_configuration(child.as_raw() as u32)
            .map_err(SyscallError::of("PTRACE_GET_RSEQ_CONFIGURATION"))?;
        Ok(())
    })();
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    result
}

/// `userfaultfd(2)` (user-mode faults only, as an unprivileged process could).
pub fn userfaultfd() -> Result<()> {
    const UFFD_USER_MODE_ONLY: libc::c_int = 1;
    // SAFETY: userfaultfd takes flags and returns an fd we close at once.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | UFFD_USER_MODE_ONLY) };
    if fd < 0 {
        return Err(SyscallError::last("userfaultfd"));
    }
    // SAFETY: closing the fd we just got.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

/// Soft-dirty page tracking: after `clear_refs` 4, a written page must show
/// bit 55 in its pagemap entry. Without `CONFIG_MEM_SOFT_DIRTY` the write
/// to `clear_refs` succeeds but the bit never appears. (File reads and
/// writes of `/proc/self`, not a call of this module's: an `io::Error`.)
pub fn soft_dirty() -> io::Result<()> {
    use std::{fs::File, os::unix::fs::FileExt as _};
    let page = Box::new([0u8; 8192]);
    let addr = (page.as_ptr() as usize + 4095) & !4095;
    std::fs::write("/proc/self/clear_refs", "4")?;
    // SAFETY: `addr` is inside the boxed buffer (aligned up by less than a
    // page in an 8 KiB buffer); a volatile write so it is not elided.
    unsafe { std::ptr::write_volatile(addr as *mut u8, 1) };
    let mut entry = [0u8; 8];
    File::open("/proc/self/pagemap")?.read_exact_at(&mut entry, (addr / 4096 * 8) as u64)?;
    drop(page);
    if u64::from_le_bytes(entry) & (1 << 55) != 0 {
        Ok(())
    } else {
        Err(io::Error::other(
            "written page not marked soft-dirty (CONFIG_MEM_SOFT_DIRTY off)",
        ))
    }
}
