//! What a hold or an unpark fails with, each knowing the exit code of the
//! command that fails with it ([`HoldError::exit_code`]).

use std::io;

use nix::errno::Errno;

use crate::{exit, tracee::inject::InjectError};

#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error(transparent)]
    Inject(#[from] InjectError),
    #[error("pid {pid}: thread {tid}: {call}: {source}")]
    Ptrace {
        pid: u32,
        tid: u32,
        call: &'static str,
        source: Errno,
    },
    #[error("pid {pid}: {what}: {source}")]
    Io {
        pid: u32,
        what: String,
        source: io::Error,
    },
    /// A call of `sys/` failed (it names itself); `what` says on what.
    #[error("pid {pid}: {what}: {source}")]
    Syscall {
        pid: u32,
        what: String,
        source: crate::sys::SyscallError,
    },
    #[error("pid {pid}: {what}")]
    Proc { pid: u32, what: String },
    #[error("pid {pid}: thread {tid}: rseq({op}): {source}")]
    Rseq {
        pid: u32,
        tid: u32,
        op: &'static str,
        source: Errno,
    },
    #[error("pid {pid} is not held as its record says: {why}")]
    NotHeld { pid: u32, why: String },
    #[error("pid {pid}: {what}")]
    Pages { pid: u32, what: String },
    /// Found once frozen: it cannot be held (nothing was lost; it goes on).
    #[error("pid {pid} cannot be held: {what}")]
    Refused { pid: u32, what: String },
}

impl HoldError {
    /// The exit code of a command that failed with it (`resume` of a held
    /// process): 9 when the process or its image is not as held (a page
    /// the image can no longer give included), 8 for what a held process
    /// cannot keep (as a suspend's outcome says), 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotHeld { .. } | Self::Pages { .. } => exit::BAD_IMAGE,
            Self::Refused { .. } => exit::UNSUPPORTED,
            Self::Inject(_)
            | Self::Ptrace { .. }
            | Self::Io { .. }
            | Self::Syscall { .. }
            | Self::Proc { .. }
            | Self::Rseq { .. } => exit::ERROR,
        }
    }
}

pub(super) fn io_err(pid: u32, what: impl Into<String>) -> impl FnOnce(io::Error) -> HoldError {
    let what = what.into();
    move |source| HoldError::Io { pid, what, source }
}

pub(super) fn sys_err(
    pid: u32,
    what: impl Into<String>,
) -> impl FnOnce(crate::sys::SyscallError) -> HoldError {
    let what = what.into();
    move |source| HoldError::Syscall { pid, what, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant, the exit code of a command that fails with it, and
    /// its message.
    fn every_error() -> Vec<(HoldError, u8, &'static str)> {
        use HoldError as E;
        let (pid, tid) = (7, 8);
        vec![
            (
                E::Inject(InjectError::Trampoline { pid }),
                exit::ERROR,
                "pid 7: its client block has no trampoline, or not this agent's (client library \
                 of another version?)",
            ),
            (
                E::Ptrace {
                    pid,
                    tid,
                    call: "PTRACE_SEIZE",
                    source: Errno::EPERM,
                },
                exit::ERROR,
                "pid 7: thread 8: PTRACE_SEIZE: EPERM: Operation not permitted",
            ),
            (
                E::Io {
                    pid,
                    what: "opening /proc/PID/mem".into(),
                    source: io::Error::from_raw_os_error(libc::EACCES),
                },
                exit::ERROR,
                "pid 7: opening /proc/PID/mem: Permission denied (os error 13)",
            ),
            (
                E::Syscall {
                    pid,
                    what: "its userfaultfd".into(),
                    source: crate::sys::SyscallError::of("UFFDIO_API")(
                        io::Error::from_raw_os_error(libc::EINVAL),
                    ),
                },
                exit::ERROR,
                "pid 7: its userfaultfd: UFFDIO_API: Invalid argument (os error 22)",
            ),
            (
                E::Proc {
                    pid,
                    what: "no client block in /proc/PID/maps".into(),
                },
                exit::ERROR,
                "pid 7: no client block in /proc/PID/maps",
            ),
            (
                E::Rseq {
                    pid,
                    tid,
                    op: "unregister",
                    source: Errno::EINVAL,
                },
                exit::ERROR,
                "pid 7: thread 8: rseq(unregister): EINVAL: Invalid argument",
            ),
            (
                E::NotHeld {
                    pid,
                    why: "its threads are [7, 9], the image's [7, 8]".into(),
                },
                exit::BAD_IMAGE,
                "pid 7 is not held as its record says: its threads are [7, 9], the image's [7, 8]",
            ),
            (
                E::Pages {
                    pid,
                    what: "mapping 0x1000: run 2 does not match its hash".into(),
                },
                exit::BAD_IMAGE,
                "pid 7: mapping 0x1000: run 2 does not match its hash",
            ),
            (
                E::Refused {
                    pid,
                    what: "thread 8's seccomp filters do not allow pause(2)".into(),
                },
                exit::UNSUPPORTED,
                "pid 7 cannot be held: thread 8's seccomp filters do not allow pause(2)",
            ),
        ]
    }

    #[test]
    fn every_hold_error_knows_its_exit_code_and_says_it_as_before() {
        for (error, code, message) in every_error() {
            assert_eq!(error.exit_code(), code, "{error}");
            assert_eq!(error.to_string(), message);
        }
    }
}
