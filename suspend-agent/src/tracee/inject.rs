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
//! A thread the freeze caught on its way to deliver a signal (a
//! signal-delivery stop) is borrowed too: stepping it drops that signal, so
//! before its registers go back it queues the very same siginfo to itself
//! (`rt_tgsigqueueinfo`, which lets a thread queue any siginfo to itself),
//! and is let run into the stop again: it stops on its way to deliver that
//! signal, exactly as it was found.
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
    #[error("thread {tid}: queueing signal {signal} it was about to take back to it: {source}")]
    Requeue {
        tid: u32,
        signal: i32,
        source: Errno,
    },
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

    /// Writes `bytes` into the scratch area at `offset`.
    pub fn write(&self, offset: u64, bytes: &[u8]) -> Result<(), InjectError> {
        let addr = self.scratch + offset;
        crate::sys::write_process_memory(self.pid, addr, bytes).map_err(|source| {
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
    /// The siginfo of the signal it was stopped on its way to deliver.
    held: Option<[u8; 128]>,
    restored: bool,
}

/// Where in the scratch area a held signal's siginfo is put to be queued.
const HELD_SIGINFO_AT: u64 = (SCRATCH_LEN - 128) as u64;

impl Borrowed {
    /// Saves the registers of stopped thread `tid`; `held` is the signal
    /// it is stopped on its way to deliver, if it is.
    pub fn new(tid: u32, site: Site, held: Option<i32>) -> Result<Self, InjectError> {
        let saved =
            ptrace::getregs(Pid::from_raw(tid as i32)).map_err(|source| InjectError::Ptrace {
                tid,
                call: "PTRACE_GETREGS",
                source,
            })?;
        let ptrace_err = |call| move |source| InjectError::Ptrace { tid, call, source };
        let held = held
            .map(|_| super::ptrace::siginfo(tid))
            .transpose()
            .map_err(ptrace_err("PTRACE_GETSIGINFO"))?;
        let mask = super::ptrace::sigmask(tid).map_err(ptrace_err("PTRACE_GETSIGMASK"))?;
        super::ptrace::set_sigmask(tid, !0).map_err(ptrace_err("PTRACE_SETSIGMASK"))?;
        Ok(Self {
            tid,
            saved,
            mask,
            site,
            held,
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
            match super::ptrace::wait_tid(tid) {
                Ok(WaitStatus::Stopped(_, nix::sys::signal::Signal::SIGTRAP)) => break,
                // An interrupt still pending (one that came while the thread
                // was stopping for a signal) stops it before it steps: step
                // on.
                Ok(WaitStatus::PtraceEvent(..)) => {
                    ptrace::step(pid, None).map_err(|source| InjectError::Ptrace {
                        tid,
                        call: "PTRACE_SINGLESTEP",
                        source,
                    })?;
                }
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
    /// was in. Returns the signal it is now stopped on its way to deliver:
    /// the one it held, or (rarely) one that came meanwhile and is
    /// dequeued first, the held one then waiting in its queue.
    pub fn restore(mut self) -> Result<Option<i32>, InjectError> {
        self.restored = true;
        let stops_for = self.requeue_held()?;
        put_back(self.tid, self.saved, self.mask, stops_for)
    }

    /// Has the thread queue the signal it held, with its siginfo, to itself
    /// (blocked until its mask goes back). Says whether it will stop on its
    /// way to deliver it again: its mask lets it through, as it did.
    fn requeue_held(&mut self) -> Result<bool, InjectError> {
        let Some(info) = self.held else {
            return Ok(false);
        };
        let signal = i32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
        self.site.write(HELD_SIGINFO_AT, &info)?;
        let at = self.site.scratch + HELD_SIGINFO_AT;
        let (pid, tid) = (self.site.pid as u64, self.tid as u64);
        let ret = self.syscall(
            libc::SYS_rt_tgsigqueueinfo,
            [pid, tid, signal as u64, at, 0, 0],
        )?;
        if ret < 0 {
            return Err(InjectError::Requeue {
                tid: self.tid,
                signal,
                source: Errno::from_raw(-ret as i32),
            });
        }
        Ok((1..=64).contains(&signal) && self.mask & (1 << (signal - 1)) == 0)
    }
}

/// Restores `regs` and turns the single-step trap's stop (a SIGTRAP on its
/// way to delivery) back into the stop the thread was in. Left as it is, a
/// tracer that dies would let the thread go with SIGTRAP delivered: the
/// process would die of it. Continue without the signal: a thread that was
/// in an interrupt stop is interrupted first and stops again at once; one
/// that held a signal (queued again, and `held`: its mask lets it through)
/// stops on its way to deliver it, before returning to user space either
/// way.
fn put_back(
    tid: u32,
    regs: libc::user_regs_struct,
    mask: u64,
    held: bool,
) -> Result<Option<i32>, InjectError> {
    let pid = Pid::from_raw(tid as i32);
    let err = |call| move |source| InjectError::Ptrace { tid, call, source };
    ptrace::setregs(pid, regs).map_err(err("PTRACE_SETREGS"))?;
    super::ptrace::set_sigmask(tid, mask).map_err(err("PTRACE_SETSIGMASK"))?;
    if !held {
        ptrace::interrupt(pid).map_err(err("PTRACE_INTERRUPT"))?;
    }
    ptrace::cont(pid, None).map_err(err("PTRACE_CONT"))?;
    loop {
        match super::ptrace::wait_tid(tid) {
            Ok(WaitStatus::PtraceEvent(..)) if !held => return Ok(None),
            // A pending interrupt stops it first: on to the signal.
            Ok(WaitStatus::PtraceEvent(..)) => {
                ptrace::cont(pid, None).map_err(err("PTRACE_CONT"))?;
            }
            Ok(WaitStatus::Stopped(_, signal)) if held => return Ok(Some(signal as i32)),
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
            let stops_for = self.requeue_held().unwrap_or(false);
            let _ = put_back(self.tid, self.saved, self.mask, stops_for);
        }
    }
}
