//! The ptrace requests `nix` has no wrapper for, one function each, on a
//! thread the caller traces (and has stopped): a thread's state read or
//! set whole. An error is the request's errno, a `nix` `Errno` as
//! `nix::sys::ptrace` gives for the requests it has: the caller names the
//! request (`tracee::ptrace::PtraceError`, for both alike) and decides on
//! the errno. Also `get_robust_list`, the one piece of a thread's state
//! read by a system call of its own, which names itself (`SyscallError`).

use nix::errno::Errno;

use super::SyscallError;

const PTRACE_GETSIGMASK: libc::c_uint = 0x420a;
const PTRACE_SETSIGMASK: libc::c_uint = 0x420b;
const PTRACE_PEEKSIGINFO: libc::c_uint = 0x4209;
const PTRACE_PEEKSIGINFO_SHARED: u32 = 1;
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;
const PTRACE_GET_SECCOMP_METADATA: libc::c_uint = 0x420d;
const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_uint = 0x420f;
const NT_X86_XSTATE: libc::c_int = 0x202;
/// `BPF_MAXINSNS`: the most instructions a seccomp filter can have.
const BPF_MAXINSNS: usize = 4096;

/// `PTRACE_SEIZE` of `tid` with `options` (`PTRACE_O_*` bits, some of
/// which `nix` does not have): attached, not stopped.
pub fn seize(tid: u32, options: libc::c_long) -> Result<(), Errno> {
    // SAFETY: PTRACE_SEIZE takes the options in `data`; no memory is
    // passed.
    let rc = unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid as libc::pid_t, 0, options) };
    Errno::result(rc).map(drop)
}

/// `PTRACE_DETACH` of `tid`, delivering signal `signal` (0: none) as it
/// goes: any signal number, a realtime one too (`nix`'s `Signal` has only
/// the standard ones, and would lose one).
pub fn detach(tid: u32, signal: i32) -> Result<(), Errno> {
    // SAFETY: PTRACE_DETACH takes the signal in `data`; no memory is
    // passed.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_DETACH,
            tid as libc::pid_t,
            0,
            signal as libc::c_long,
        )
    };
    Errno::result(rc).map(drop)
}

/// What one wait on a traced thread said, decoded from its raw status
/// (so a stop for a realtime signal is one too: `nix`'s `WaitStatus`
/// cannot hold one, and its `waitpid` fails with `EINVAL` after it has
/// taken the status — the stop then seen by nobody, its signal lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// Nothing to report yet (`WNOHANG`).
    StillAlive,
    /// A ptrace event stop (`PTRACE_EVENT_STOP`: an interrupt or a group
    /// stop, or another event), with the event's number.
    Event(i32),
    /// A system call stop (`PTRACE_O_TRACESYSGOOD`).
    Syscall,
    /// Stopped on its way to deliver this signal.
    Signal(i32),
    /// Exited or killed.
    Exited,
}

/// Decodes a raw wait status.
pub fn decode_wait(status: i32) -> Waited {
    if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
        return Waited::Exited;
    }
    if !libc::WIFSTOPPED(status) {
        return Waited::StillAlive; // continued: nothing to act on
    }
    let signal = libc::WSTOPSIG(status);
    let event = status >> 16;
    if event != 0 {
        Waited::Event(event)
    } else if signal == libc::SIGTRAP | 0x80 {
        Waited::Syscall
    } else {
        Waited::Signal(signal)
    }
}

/// `waitpid(tid, __WALL | WNOHANG)`, decoded.
pub fn wait_nohang(tid: u32) -> Result<Waited, Errno> {
    let mut status = 0;
    // SAFETY: waitpid writes one int.
    let rc = unsafe {
        libc::waitpid(
            tid as libc::pid_t,
            &mut status,
            libc::__WALL | libc::WNOHANG,
        )
    };
    match Errno::result(rc)? {
        0 => Ok(Waited::StillAlive),
        _ => Ok(decode_wait(status)),
    }
}

/// The full xstate (`PTRACE_GETREGSET` of `NT_X86_XSTATE`) into `buf`;
/// returns the bytes the kernel filled.
pub fn xstate(tid: u32, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: PTRACE_GETREGSET writes at most iov_len bytes into our buffer.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            tid as libc::pid_t,
            NT_X86_XSTATE,
            &mut iov,
        )
    };
    Errno::result(rc)?;
    Ok(iov.iov_len)
}

/// Sets the thread's xstate (`PTRACE_SETREGSET` of `NT_X86_XSTATE`) from
/// `xstate`.
pub fn set_xstate(tid: u32, xstate: &[u8]) -> Result<(), Errno> {
    let mut iov = libc::iovec {
        iov_base: xstate.as_ptr() as *mut libc::c_void,
        iov_len: xstate.len(),
    };
    // SAFETY: PTRACE_SETREGSET reads `iov_len` bytes from `iov_base`.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGSET,
            tid as libc::pid_t,
            NT_X86_XSTATE as usize,
            &raw mut iov,
        )
    };
    Errno::result(rc).map(drop)
}

/// The thread's blocked-signal mask (`PTRACE_GETSIGMASK`).
pub fn sigmask(tid: u32) -> Result<u64, Errno> {
    let mut mask = 0u64;
    // SAFETY: PTRACE_GETSIGMASK writes 8 bytes into `mask`.
    let rc = unsafe { libc::ptrace(PTRACE_GETSIGMASK, tid as libc::pid_t, 8usize, &raw mut mask) };
    Errno::result(rc)?;
    Ok(mask)
}

/// Sets the thread's blocked-signal mask (`PTRACE_SETSIGMASK`).
pub fn set_sigmask(tid: u32, mask: u64) -> Result<(), Errno> {
    // SAFETY: PTRACE_SETSIGMASK reads 8 bytes from `mask`.
    let rc = unsafe {
        libc::ptrace(
            PTRACE_SETSIGMASK,
            tid as libc::pid_t,
            8usize,
            &raw const mask,
        )
    };
    Errno::result(rc).map(drop)
}

/// The siginfo of the signal a thread is stopped on its way to deliver
/// (`PTRACE_GETSIGINFO`, raw 128 bytes).
pub fn siginfo(tid: u32) -> Result<[u8; 128], Errno> {
    let mut info = [0u8; 128];
    // SAFETY: PTRACE_GETSIGINFO writes one 128-byte siginfo_t.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GETSIGINFO,
            tid as libc::pid_t,
            0usize,
            info.as_mut_ptr(),
        )
    };
    Errno::result(rc)?;
    Ok(info)
}

/// Copies pending signals, from the `from`th on, into `into` as raw
/// 128-byte `siginfo_t`s without dequeuing them (`PTRACE_PEEKSIGINFO`:
/// the thread's own queue, or with `shared` its process's); how many it
/// copied (fewer than fit: the queue's end).
pub fn peek_siginfo(
    tid: u32,
    shared: bool,
    from: u64,
    into: &mut [[u8; 128]],
) -> Result<usize, Errno> {
    #[repr(C)]
    struct PeekArgs {
        off: u64,
        flags: u32,
        nr: i32,
    }
    let args = PeekArgs {
        off: from,
        flags: if shared { PTRACE_PEEKSIGINFO_SHARED } else { 0 },
        nr: into.len().min(i32::MAX as usize) as i32,
    };
    // SAFETY: PTRACE_PEEKSIGINFO copies at most `nr` siginfos into `into`.
    let n = unsafe {
        libc::ptrace(
            PTRACE_PEEKSIGINFO,
            tid as libc::pid_t,
            &raw const args,
            into.as_mut_ptr(),
        )
    };
    Ok(Errno::result(n)? as usize)
}

/// The thread's rseq registration (`PTRACE_GET_RSEQ_CONFIGURATION`):
/// (address, length, signature), address 0 when it has none.
pub fn rseq_configuration(tid: u32) -> Result<(u64, u32, u32), Errno> {
    #[repr(C)]
    #[derive(Default)]
    struct RseqConfig {
        rseq_abi_pointer: u64,
        rseq_abi_size: u32,
        signature: u32,
        flags: u32,
        pad: u32,
    }
    let mut config = RseqConfig::default();
    // SAFETY: the kernel writes at most `size_of::<RseqConfig>()` bytes.
    let rc = unsafe {
        libc::ptrace(
            PTRACE_GET_RSEQ_CONFIGURATION,
            tid as libc::pid_t,
            size_of::<RseqConfig>(),
            &raw mut config,
        )
    };
    Errno::result(rc)?;
    Ok((
        config.rseq_abi_pointer,
        config.rseq_abi_size,
        config.signature,
    ))
}

/// The thread's `index`th seccomp filter counting from the newest
/// (`PTRACE_SECCOMP_GET_FILTER`): its `struct sock_filter` array as
/// bytes; `ENOENT` past the oldest.
pub fn seccomp_filter(tid: u32, index: u64) -> Result<Vec<u8>, Errno> {
    // The kernel copies the whole filter, however long, and no filter is
    // longer than BPF_MAXINSNS: a buffer that size always holds it (asking
    // for the count first would not do: a filter added meanwhile moves
    // the indexes).
    let mut program = vec![0u8; BPF_MAXINSNS * 8];
    // SAFETY: the buffer holds BPF_MAXINSNS 8-byte instructions, the most
    // the kernel writes.
    let count = unsafe {
        libc::ptrace(
            PTRACE_SECCOMP_GET_FILTER,
            tid as libc::pid_t,
            index,
            program.as_mut_ptr(),
        )
    };
    let count = Errno::result(count)? as usize;
    program.truncate(count.min(BPF_MAXINSNS) * 8);
    program.shrink_to_fit();
    Ok(program)
}

/// The flags (`SECCOMP_FILTER_FLAG_LOG`) of the thread's `index`th
/// seccomp filter counting from the newest (`PTRACE_GET_SECCOMP_METADATA`).
pub fn seccomp_filter_flags(tid: u32, index: u64) -> Result<u64, Errno> {
    #[repr(C)]
    struct Metadata {
        filter_off: u64,
        flags: u64,
    }
    let mut meta = Metadata {
        filter_off: index,
        flags: 0,
    };
    // SAFETY: the kernel reads `filter_off` and writes `flags`.
    let rc = unsafe {
        libc::ptrace(
            PTRACE_GET_SECCOMP_METADATA,
            tid as libc::pid_t,
            size_of::<Metadata>(),
            &raw mut meta,
        )
    };
    Errno::result(rc)?;
    Ok(meta.flags)
}

/// The thread's robust futex list (`get_robust_list`): (head, length).
pub fn robust_list(tid: u32) -> super::Result<(u64, u64)> {
    let mut head = 0u64;
    let mut len = 0usize;
    // SAFETY: get_robust_list writes one pointer and one size into our
    // variables.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            tid as libc::c_int,
            &raw mut head,
            &raw mut len,
        )
    };
    if rc < 0 {
        return Err(SyscallError::last("get_robust_list"));
    }
    Ok((head, len as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_status_is_decoded_whatever_the_signal() {
        let stopped = |signal: i32| (signal << 8) | 0x7f;
        // A realtime signal on its way: nix's WaitStatus cannot hold it.
        assert_eq!(decode_wait(stopped(44)), Waited::Signal(44));
        assert_eq!(
            decode_wait(stopped(libc::SIGUSR1)),
            Waited::Signal(libc::SIGUSR1)
        );
        // PTRACE_EVENT_STOP (128), as an interrupt or a group stop reports it.
        let event = ((128 << 8 | libc::SIGTRAP) << 8) | 0x7f;
        assert_eq!(decode_wait(event), Waited::Event(128));
        assert_eq!(decode_wait(stopped(libc::SIGTRAP | 0x80)), Waited::Syscall);
        assert_eq!(decode_wait(3 << 8), Waited::Exited);
        assert_eq!(decode_wait(libc::SIGKILL), Waited::Exited);
    }
}
