//! Running a system call inside a stopped thread, for the kernel state that
//! neither `/proc` nor ptrace shows: sigactions, `brk`, the tid address,
//! sigaltstacks, interval timers. Never guessed: asked from inside.
//!
//! The thread's registers are saved, a `syscall` instruction is borrowed
//! from the vDSO (no memory of the process is written for it), the thread
//! is single-stepped over it with the arguments in its registers, and the
//! registers are put back bit for bit. `orig_rax = -1` keeps the kernel from
//! treating the borrowed step as a syscall restart; the saved registers,
//! put back, restart an interrupted syscall exactly as they would have.
//! Results land in a scratch area of the client block page (its own page,
//! mapped in every registered process), which is cleared afterwards.
//!
//! Runs before the run witness starts: the thread does run, on purpose.
//!
//! The one window this cannot close: if the agent is killed (SIGKILL) in
//! the milliseconds a thread is borrowed, the kernel lets that thread go
//! with the borrowed registers (and, stopped after the single-step, with a
//! SIGTRAP to deliver): the process dies. Every ptrace-based C/R tool shares
//! it; it is kept short, and never open while the dump copies memory.

use nix::{
    errno::Errno,
    sys::{ptrace, wait::WaitStatus},
    unistd::Pid,
};

/// Where in the client block page the scratch area starts (the block itself
/// is 72 bytes at the start of the page).
const SCRATCH_OFFSET: u64 = 2048;
/// Bytes of scratch space.
pub const SCRATCH_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("thread {tid}: {call}: {source}")]
    Ptrace {
        tid: u32,
        call: &'static str,
        source: Errno,
    },
    #[error("thread {tid}: stopped with {what} instead of the single-step trap")]
    Unexpected { tid: u32, what: String },
    #[error("pid {pid}: no `syscall` instruction found in its vDSO")]
    NoSyscall { pid: u32 },
    #[error("pid {pid}: scratch memory at {addr:#x}: {source}")]
    Scratch {
        pid: u32,
        addr: u64,
        source: std::io::Error,
    },
}

/// Borrowed instruction and scratch memory of one process.
#[derive(Clone, Copy, Debug)]
pub struct Site {
    pid: u32,
    syscall_at: u64,
    scratch: u64,
}

impl Site {
    /// Finds a `syscall` instruction (0f 05) in the vDSO of `pid`; the
    /// scratch area is in the client block page at `block_addr`.
    pub fn find(pid: u32, vdso: (u64, u64), block_addr: u64) -> Result<Self, InjectError> {
        let (start, end) = vdso;
        let mut code = vec![0u8; (end - start) as usize];
        crate::sys::read_process_memory(pid, start, &mut code).map_err(|source| {
            InjectError::Scratch {
                pid,
                addr: start,
                source,
            }
        })?;
        let at = code
            .windows(2)
            .position(|w| w == [0x0f, 0x05])
            .ok_or(InjectError::NoSyscall { pid })?;
        Ok(Self {
            pid,
            syscall_at: start + at as u64,
            scratch: block_addr + SCRATCH_OFFSET,
        })
    }

    /// The scratch area's address in the process.
    pub fn scratch(&self) -> u64 {
        self.scratch
    }

    /// Reads `len` bytes of the scratch area at `offset`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), InjectError> {
        let addr = self.scratch + offset;
        crate::sys::read_process_memory(self.pid, addr, buf).map_err(|source| {
            InjectError::Scratch {
                pid: self.pid,
                addr,
                source,
            }
        })
    }

    /// Zeroes the scratch area again.
    pub fn clear(&self) -> Result<(), InjectError> {
        let zeros = [0u8; SCRATCH_LEN];
        crate::sys::write_process_memory(self.pid, self.scratch, &zeros).map_err(|source| {
            InjectError::Scratch {
                pid: self.pid,
                addr: self.scratch,
                source,
            }
        })
    }
}

/// A thread borrowed for system calls; its registers go back when done
/// (also on drop).
pub struct Borrowed {
    tid: u32,
    saved: libc::user_regs_struct,
    /// Its signal mask: every signal is blocked while it is borrowed, so
    /// that none (an interval timer's, say) is delivered on our registers.
    mask: u64,
    site: Site,
    restored: bool,
}

impl Borrowed {
    /// Saves the registers of stopped thread `tid`.
    pub fn new(tid: u32, site: Site) -> Result<Self, InjectError> {
        let saved =
            ptrace::getregs(Pid::from_raw(tid as i32)).map_err(|source| InjectError::Ptrace {
                tid,
                call: "PTRACE_GETREGS",
                source,
            })?;
        let ptrace_err = |call| move |source| InjectError::Ptrace { tid, call, source };
        let mask = crate::sys::ptrace::sigmask(tid).map_err(ptrace_err("PTRACE_GETSIGMASK"))?;
        crate::sys::ptrace::set_sigmask(tid, !0).map_err(ptrace_err("PTRACE_SETSIGMASK"))?;
        Ok(Self {
            tid,
            saved,
            mask,
            site,
            restored: false,
        })
    }

    /// Runs system call `nr` with `args` in the thread; returns its result
    /// (a negative errno on failure, as the kernel returns it).
    pub fn syscall(&mut self, nr: i64, args: [u64; 6]) -> Result<i64, InjectError> {
        let tid = self.tid;
        let pid = Pid::from_raw(tid as i32);
        let mut regs = self.saved;
        regs.rip = self.site.syscall_at;
        regs.rax = nr as u64;
        regs.orig_rax = u64::MAX; // -1: not a syscall to restart
        regs.rdi = args[0];
        regs.rsi = args[1];
        regs.rdx = args[2];
        regs.r10 = args[3];
        regs.r8 = args[4];
        regs.r9 = args[5];
        ptrace::setregs(pid, regs).map_err(|source| InjectError::Ptrace {
            tid,
            call: "PTRACE_SETREGS",
            source,
        })?;
        ptrace::step(pid, None).map_err(|source| InjectError::Ptrace {
            tid,
            call: "PTRACE_SINGLESTEP",
            source,
        })?;
        loop {
            match crate::sys::ptrace::wait_tid(tid) {
                Ok(WaitStatus::Stopped(_, nix::sys::signal::Signal::SIGTRAP)) => break,
                Ok(WaitStatus::PtraceEvent(..)) => continue, // a stale interrupt
                Ok(other) => {
                    return Err(InjectError::Unexpected {
                        tid,
                        what: format!("{other:?}"),
                    });
                }
                Err(Errno::EINTR) => continue,
                Err(source) => {
                    return Err(InjectError::Ptrace {
                        tid,
                        call: "waitpid",
                        source,
                    });
                }
            }
        }
        let after = ptrace::getregs(pid).map_err(|source| InjectError::Ptrace {
            tid,
            call: "PTRACE_GETREGS",
            source,
        })?;
        Ok(after.rax as i64)
    }

    /// Puts the saved registers back, and the thread back into the stop it
    /// was in.
    pub fn restore(mut self) -> Result<(), InjectError> {
        self.restored = true;
        put_back(self.tid, self.saved, self.mask)
    }
}

/// Restores `regs` and turns the single-step trap's stop (a SIGTRAP on its
/// way to delivery) back into an interrupt stop. Left as it is, a tracer
/// that dies would let the thread go with SIGTRAP delivered: the process
/// would die of it. Interrupt, then continue without the signal: the thread
/// stops again at once, before returning to user space.
fn put_back(tid: u32, regs: libc::user_regs_struct, mask: u64) -> Result<(), InjectError> {
    let pid = Pid::from_raw(tid as i32);
    let err = |call| move |source| InjectError::Ptrace { tid, call, source };
    ptrace::setregs(pid, regs).map_err(err("PTRACE_SETREGS"))?;
    crate::sys::ptrace::set_sigmask(tid, mask).map_err(err("PTRACE_SETSIGMASK"))?;
    ptrace::interrupt(pid).map_err(err("PTRACE_INTERRUPT"))?;
    ptrace::cont(pid, None).map_err(err("PTRACE_CONT"))?;
    loop {
        match crate::sys::ptrace::wait_tid(tid) {
            Ok(WaitStatus::PtraceEvent(..)) => return Ok(()),
            Ok(other) => {
                return Err(InjectError::Unexpected {
                    tid,
                    what: format!("{other:?}"),
                });
            }
            Err(Errno::EINTR) => continue,
            Err(source) => return Err(err("waitpid")(source)),
        }
    }
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        if !self.restored {
            let _ = put_back(self.tid, self.saved, self.mask);
        }
    }
}
