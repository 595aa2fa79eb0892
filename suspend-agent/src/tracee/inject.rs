//! Running a system call inside a stopped thread, for the kernel state that
//! neither `/proc` nor ptrace shows: sigactions, `brk`, the tid address,
//! sigaltstacks, interval timers. Never guessed: asked from inside.
//!
//! The thread runs the call through the client's trampoline
//! ([`suspend_common::trampoline`]): its registers and signal mask are
//! saved (here, and in the save area of the client block's page, together
//! with the registers it would go on with by itself), every signal is
//! blocked, it is pointed at the trampoline with the call in its registers
//! and let run; once it has stored the result it waits, and is stopped
//! there again (`PTRACE_INTERRUPT`). Its registers and mask are put back
//! bit for bit at the end, in the same kind of stop it was found in: an
//! interrupted system call restarts exactly as it would have.
//!
//! A killed agent leaves nothing behind: the kernel lets the thread go,
//! the trampoline's wait times out ([`suspend_common::trampoline::WAIT_S`])
//! and it puts itself back — mask, registers, an interrupted system call
//! turned into its restart — and goes on. Before, a tracer killed in this
//! window let the thread go with borrowed registers and a SIGTRAP to
//! deliver: the process died.
//!
//! Runs before the run witness starts: the thread does run, on purpose.
//!
//! A thread the freeze caught on its way to deliver a signal (a
//! signal-delivery stop) is borrowed too: letting it run drops that signal,
//! so its first call queues the very same siginfo to itself
//! (`rt_tgsigqueueinfo`, which lets a thread queue any siginfo to itself),
//! blocked until its mask goes back; at the end it is let run into the
//! stop again and stops on its way to deliver that signal, exactly as it
//! was found. If the agent dies, the signal is delivered as the trampoline
//! puts the mask back.

use std::time::{Duration, Instant};

use super::ptrace::Waited;
use nix::{errno::Errno, sys::ptrace, unistd::Pid};
use suspend_common::{
    client_block::{CLIENT_BLOCK_MAGIC, ClientBlock},
    trampoline::{self, WAIT_S, save},
};

/// Where in the client block page the scratch area starts (the block itself
/// is 80 bytes at the start of the page).
const SCRATCH_OFFSET: u64 = 2048;
/// Bytes of scratch space.
pub const SCRATCH_LEN: usize = 1024;
/// Where in the client block page the trampoline's save area is.
const SAVE_OFFSET: u64 = SCRATCH_OFFSET + SCRATCH_LEN as u64;
/// How long a call may take before the agent gives up on it (well under
/// the trampoline's own wait).
const CALL_LIMIT: Duration = Duration::from_secs(2);

const _: () = assert!(SAVE_OFFSET as usize + save::LEN <= 4096);

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("thread {tid}: {call}: {source}")]
    Ptrace {
        tid: u32,
        call: &'static str,
        source: Errno,
    },
    #[error("thread {tid}: stopped with {what} while it ran a system call for the agent")]
    Unexpected { tid: u32, what: String },
    #[error("thread {tid}: queueing signal {signal} it was about to take back to it: {source}")]
    Requeue {
        tid: u32,
        signal: i32,
        source: Errno,
    },
    #[error(
        "pid {pid}: its client block has no trampoline, or not this agent's (client library of another version?)"
    )]
    Trampoline { pid: u32 },
    #[error("thread {tid}: system call {nr} did not complete within {CALL_LIMIT:?}")]
    Slow { tid: u32, nr: i64 },
    #[error(
        "thread {tid}: waited {WAIT_S} s for the agent and went on by itself: the freeze is broken"
    )]
    WentOn { tid: u32 },
    #[error("thread {tid}: {what}: {}", .errno.desc())]
    Failed {
        tid: u32,
        what: String,
        errno: Errno,
    },
    #[error("pid {pid}: memory at {addr:#x}: {source}")]
    Scratch {
        pid: u32,
        addr: u64,
        source: crate::sys::SyscallError,
    },
}

/// The trampoline and scratch memory of one process.
#[derive(Clone, Copy, Debug)]
pub struct Site {
    pid: u32,
    entry: u64,
    park: u64,
    scratch: u64,
    save: u64,
}

impl Site {
    /// Reads the client block at `block_addr` in `pid` and checks that the
    /// trampoline it names is, byte for byte, this agent's. Call it with
    /// the process frozen: nothing of it can change the bytes afterwards.
    pub fn find(pid: u32, block_addr: u64) -> Result<Self, InjectError> {
        let mut raw = [0u8; size_of::<ClientBlock>()];
        read(pid, block_addr, &mut raw)?;
        // SAFETY: `ClientBlock` is plain data; any bytes are a valid value.
        let block: ClientBlock = unsafe { std::ptr::read_unaligned(raw.as_ptr().cast()) };
        if block.magic != CLIENT_BLOCK_MAGIC || block.trampoline == 0 {
            return Err(InjectError::Trampoline { pid });
        }
        let ours = trampoline::code();
        let mut theirs = vec![0u8; ours.len()];
        read(pid, block.trampoline, &mut theirs).map_err(|_| InjectError::Trampoline { pid })?;
        if theirs != ours {
            return Err(InjectError::Trampoline { pid });
        }
        Ok(Self {
            pid,
            entry: block.trampoline,
            park: block.trampoline + trampoline::park_offset() as u64,
            scratch: block_addr + SCRATCH_OFFSET,
            save: block_addr + SAVE_OFFSET,
        })
    }

    /// Where the park loop is in the process.
    pub fn park_address(&self) -> u64 {
        self.park
    }

    /// The scratch area's address in the process.
    pub fn scratch(&self) -> u64 {
        self.scratch
    }

    /// Reads `len` bytes of the scratch area at `offset`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), InjectError> {
        read(self.pid, self.scratch + offset, buf)
    }

    /// Writes `bytes` into the scratch area at `offset`.
    pub fn write(&self, offset: u64, bytes: &[u8]) -> Result<(), InjectError> {
        write(self.pid, self.scratch + offset, bytes)
    }

    /// Zeroes the scratch and save areas again.
    pub fn clear(&self) -> Result<(), InjectError> {
        write(self.pid, self.scratch, &[0u8; SCRATCH_LEN])?;
        write(self.pid, self.save, &[0u8; save::LEN])
    }
}

/// Reads a `u64` of the save area at `area` in `pid`.
fn area_u64(pid: u32, area: u64, offset: u64) -> Result<u64, InjectError> {
    let mut b = [0u8; 8];
    read(pid, area + offset, &mut b)?;
    Ok(u64::from_ne_bytes(b))
}

fn read(pid: u32, addr: u64, buf: &mut [u8]) -> Result<(), InjectError> {
    crate::sys::read_process_memory(pid, addr, buf).map_err(|source| InjectError::Scratch {
        pid,
        addr,
        source,
    })
}

fn write(pid: u32, addr: u64, bytes: &[u8]) -> Result<(), InjectError> {
    crate::sys::write_process_memory(pid, addr, bytes).map_err(|source| InjectError::Scratch {
        pid,
        addr,
        source,
    })
}

/// The save area's contents for a thread with registers `regs` and signal
/// mask `mask`: the registers it goes on with if it puts itself back. A
/// system call it was stopped in is restarted as the kernel would have
/// (`-ERESTART*` in `rax`: back over the `syscall` instruction, the call's
/// number, or `restart_syscall`, in `rax`).
fn save_area(regs: &libc::user_regs_struct, mask: u64) -> [u8; save::LEN] {
    const ERESTARTSYS: i64 = -512;
    const ERESTARTNOINTR: i64 = -513;
    const ERESTARTNOHAND: i64 = -514;
    const ERESTART_RESTARTBLOCK: i64 = -516;
    let mut r = *regs;
    if r.orig_rax as i64 >= 0 {
        match r.rax as i64 {
            ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => {
                r.rax = r.orig_rax;
                r.rip -= 2;
            }
            ERESTART_RESTARTBLOCK => {
                r.rax = libc::SYS_restart_syscall as u64;
                r.rip -= 2;
            }
            _ => {}
        }
    }
    let mut area = [0u8; save::LEN];
    let mut put = |at: u64, v: u64| {
        area[at as usize..at as usize + 8].copy_from_slice(&v.to_ne_bytes());
    };
    put(save::TIMEOUT, WAIT_S);
    put(save::MASK, mask);
    put(save::RIP, r.rip);
    put(save::RFLAGS, r.eflags);
    put(save::RSP, r.rsp);
    let gprs = [
        r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13,
        r.r14, r.r15,
    ];
    for (i, v) in gprs.into_iter().enumerate() {
        put(save::GPRS + 8 * i as u64, v);
    }
    area
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
    /// It was stopped on its way to deliver a signal, now queued to it
    /// again.
    held: bool,
    /// Its save area: the shared one in the client block page, or one
    /// below its own stack.
    area: u64,
    /// `done` as last seen in the save area.
    done: u64,
    /// Its mask is the agent's (every signal blocked).
    masked: bool,
    /// Put back already, or went on by itself: nothing to do on drop.
    finished: bool,
}

/// Where in the scratch area a held signal's siginfo is put to be queued.
const HELD_SIGINFO_AT: u64 = (SCRATCH_LEN - 128) as u64;

impl Borrowed {
    /// Saves the registers of stopped thread `tid`; `held` is the signal
    /// it is stopped on its way to deliver, if it is: it is queued to it
    /// again at once.
    /// Its save area is the client block page's: one thread at a time.
    pub fn new(tid: u32, site: Site, held: Option<i32>) -> Result<Self, InjectError> {
        Self::borrow(tid, site, held, false)
    }

    /// Like [`Borrowed::new`], with its save area below its own stack, so
    /// that any number of threads may be borrowed at once.
    pub fn on_own_stack(tid: u32, site: Site, held: Option<i32>) -> Result<Self, InjectError> {
        Self::borrow(tid, site, held, true)
    }

    fn borrow(tid: u32, site: Site, held: Option<i32>, own: bool) -> Result<Self, InjectError> {
        let ptrace_err = |call| move |source| InjectError::Ptrace { tid, call, source };
        let saved =
            ptrace::getregs(Pid::from_raw(tid as i32)).map_err(ptrace_err("PTRACE_GETREGS"))?;
        let info = held
            .map(|_| super::ptrace::siginfo(tid))
            .transpose()
            .map_err(ptrace_err("PTRACE_GETSIGINFO"))?;
        let mask = super::ptrace::sigmask(tid).map_err(ptrace_err("PTRACE_GETSIGMASK"))?;
        let area = if own {
            saved
                .rsp
                .wrapping_sub(trampoline::STACK_BELOW + 64 + save::LEN as u64)
                & !63
        } else {
            site.save
        };
        write(site.pid, area, &save_area(&saved, mask))?;
        let done = area_u64(site.pid, area, save::DONE)?;
        let mut borrowed = Self {
            tid,
            saved,
            mask,
            site,
            held: false,
            area,
            done,
            masked: false,
            finished: false,
        };
        if let Some(info) = info {
            borrowed.requeue(&info)?;
        }
        Ok(borrowed)
    }

    /// Runs system call `nr` with `args` in the thread, for `what` (as
    /// people name it, for the error); a negative result is an error
    /// naming `what` and the errno.
    pub fn call(&mut self, what: &str, nr: i64, args: [u64; 6]) -> Result<u64, InjectError> {
        let ret = self.syscall(nr, args)?;
        if ret < 0 {
            return Err(InjectError::Failed {
                tid: self.tid,
                what: what.to_owned(),
                errno: Errno::from_raw(-ret as i32),
            });
        }
        Ok(ret as u64)
    }

    /// Runs system call `nr` with `args` in the thread; returns its result
    /// (a negative errno on failure, as the kernel returns it).
    pub fn syscall(&mut self, nr: i64, args: [u64; 6]) -> Result<i64, InjectError> {
        let tid = self.tid;
        let pid = Pid::from_raw(tid as i32);
        let err = |call| move |source| InjectError::Ptrace { tid, call, source };
        let mut regs = self.saved;
        regs.rip = self.site.entry;
        regs.rax = nr as u64;
        regs.orig_rax = u64::MAX; // -1: not a system call to restart
        regs.rdi = args[0];
        regs.rsi = args[1];
        regs.rdx = args[2];
        regs.r10 = args[3];
        regs.r8 = args[4];
        regs.r9 = args[5];
        regs.rbx = self.area;
        // Below the red zone and the save area, aligned: the trampoline
        // itself uses no stack.
        regs.rsp = (self
            .area
            .min(self.saved.rsp.wrapping_sub(trampoline::STACK_BELOW))
            .wrapping_sub(64))
            & !15;
        ptrace::setregs(pid, regs).map_err(err("PTRACE_SETREGS"))?;
        // Blocked only now, with the thread pointed at the trampoline: let
        // go by a killed agent, it puts its own mask back from there.
        if !self.masked {
            super::ptrace::set_sigmask(tid, !0).map_err(err("PTRACE_SETSIGMASK"))?;
            self.masked = true;
        }
        ptrace::cont(pid, None).map_err(err("PTRACE_CONT"))?;
        let started = Instant::now();
        let mut pause = Duration::from_micros(2);
        let done = loop {
            let done = area_u64(self.site.pid, self.area, save::DONE)?;
            if done != self.done {
                break done;
            }
            // An interrupt still pending (one that came while the thread
            // was stopping for a signal) stops it again before it runs:
            // let it go on.
            match crate::sys::ptrace::wait_nohang(tid) {
                Ok(Waited::StillAlive) | Err(Errno::EINTR) => {}
                Ok(Waited::Event(_)) => {
                    ptrace::cont(pid, None).map_err(err("PTRACE_CONT"))?;
                    continue;
                }
                Ok(other) => {
                    return Err(InjectError::Unexpected {
                        tid,
                        what: format!("{other:?}"),
                    });
                }
                Err(source) => return Err(err("waitpid")(source)),
            }
            if crate::procfs::exiting(tid) {
                return Err(InjectError::Unexpected {
                    tid,
                    what: "its exit".into(),
                });
            }
            if started.elapsed() > CALL_LIMIT {
                // Stop it wherever it is; whatever it did, its registers
                // go back (on drop).
                let _ = self.stop();
                return Err(InjectError::Slow { tid, nr });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_micros(500));
        };
        self.done = done;
        self.stop()?;
        Ok(area_u64(self.site.pid, self.area, save::RESULT)? as i64)
    }

    /// Stops the thread (in the trampoline's wait) and checks that it has
    /// not started putting itself back.
    fn stop(&mut self) -> Result<(), InjectError> {
        let tid = self.tid;
        let pid = Pid::from_raw(tid as i32);
        let err = |call| move |source| InjectError::Ptrace { tid, call, source };
        super::ptrace::interrupt(tid).map_err(err("PTRACE_INTERRUPT"))?;
        loop {
            match super::ptrace::wait_tid(tid) {
                Ok(Waited::Event(_)) => break,
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
        let rip = ptrace::getregs(pid).map_err(err("PTRACE_GETREGS"))?.rip;
        let end = self.site.entry + trampoline::code().len() as u64;
        if !(self.site.entry..end).contains(&rip) {
            // It put itself back and ran on: its registers are its own.
            self.finished = true;
            return Err(InjectError::WentOn { tid });
        }
        // Stopped anywhere in the trampoline (also partway through putting
        // itself back): the registers put back at the end overwrite all of
        // it, and nothing of the thread's own code has run.
        Ok(())
    }

    /// Puts the saved registers back, and the thread back into the stop it
    /// was in. Returns the signal it is now stopped on its way to deliver:
    /// the one it held, or (rarely) one that came meanwhile and is
    /// dequeued first, the held one then waiting in its queue.
    pub fn restore(mut self) -> Result<Option<i32>, InjectError> {
        self.finished = true;
        put_back(self.tid, self.saved, self.mask, self.held)
    }

    /// Leaves the thread in the trampoline's park loop (`pause` with every
    /// signal blocked) instead of putting it back: let go, it waits there
    /// without touching memory until a tracer takes it over again. The
    /// signal it held stays queued.
    pub fn park(&mut self) -> Result<(), InjectError> {
        let tid = self.tid;
        let pid = Pid::from_raw(tid as i32);
        let err = |call| move |source| InjectError::Ptrace { tid, call, source };
        let mut regs = self.saved;
        regs.rip = self.site.park;
        regs.orig_rax = u64::MAX;
        regs.rax = 0;
        ptrace::setregs(pid, regs).map_err(err("PTRACE_SETREGS"))?;
        super::ptrace::set_sigmask(tid, !0).map_err(err("PTRACE_SETSIGMASK"))?;
        self.finished = true;
        Ok(())
    }

    /// Puts the registers and signal mask `regs` and `mask` on the thread
    /// instead of those it was borrowed with (a held thread going back to
    /// where it was when its image was taken).
    pub fn restore_to(
        mut self,
        regs: libc::user_regs_struct,
        mask: u64,
    ) -> Result<(), InjectError> {
        self.finished = true;
        put_back(self.tid, regs, mask, false).map(|_| ())
    }

    /// Whether the thread is in the trampoline's park loop.
    pub fn parked(site: &Site, regs: &libc::user_regs_struct) -> bool {
        let end = site.entry + trampoline::code().len() as u64;
        (site.park..end).contains(&regs.rip)
    }

    /// Has the thread queue the signal it held, with its siginfo, to itself
    /// (blocked until its mask goes back), and remembers whether it will
    /// stop on its way to deliver it again: its mask lets it through, as it
    /// did.
    fn requeue(&mut self, info: &[u8; 128]) -> Result<(), InjectError> {
        let signal = i32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
        self.site.write(HELD_SIGINFO_AT, info)?;
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
        self.held = (1..=64).contains(&signal) && self.mask & (1 << (signal - 1)) == 0;
        Ok(())
    }
}

/// Puts `mask` and `regs` back on a thread stopped in the trampoline (an
/// interrupt stop, as the freeze's own). The mask goes first: a thread let
/// go between the two (a killed agent) then puts itself back from the
/// trampoline with a mask that is already its own. A thread that `held` a
/// signal is let run into the stop on its way to deliver it.
fn put_back(
    tid: u32,
    regs: libc::user_regs_struct,
    mask: u64,
    held: bool,
) -> Result<Option<i32>, InjectError> {
    let pid = Pid::from_raw(tid as i32);
    let err = |call| move |source| InjectError::Ptrace { tid, call, source };
    super::ptrace::set_sigmask(tid, mask).map_err(err("PTRACE_SETSIGMASK"))?;
    ptrace::setregs(pid, regs).map_err(err("PTRACE_SETREGS"))?;
    if !held {
        return Ok(None);
    }
    ptrace::cont(pid, None).map_err(err("PTRACE_CONT"))?;
    loop {
        match super::ptrace::wait_tid(tid) {
            // An interrupt still pending stops it first: on to the signal.
            Ok(Waited::Event(_)) => {
                ptrace::cont(pid, None).map_err(err("PTRACE_CONT"))?;
            }
            Ok(Waited::Signal(signal)) => return Ok(Some(signal)),
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
        if !self.finished {
            let _ = put_back(self.tid, self.saved, self.mask, self.held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> libc::user_regs_struct {
        // SAFETY: plain integers; all zeroes is a valid value.
        let mut r: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        r.rip = 0x1000;
        r.rsp = 0x7fff_0000;
        r.eflags = 0x246;
        r.rbx = 7;
        r.r15 = 9;
        r
    }

    fn at(area: &[u8], offset: u64) -> u64 {
        u64::from_ne_bytes(
            area[offset as usize..offset as usize + 8]
                .try_into()
                .unwrap(),
        )
    }

    #[test]
    fn a_thread_outside_a_system_call_goes_on_where_it_was() {
        let mut r = regs();
        r.orig_rax = u64::MAX;
        r.rax = 42;
        let area = save_area(&r, 0b101);
        assert_eq!(at(&area, save::RIP), 0x1000);
        assert_eq!(at(&area, save::GPRS), 42);
        assert_eq!(at(&area, save::GPRS + 8), 7);
        assert_eq!(at(&area, save::GPRS + 14 * 8), 9);
        assert_eq!(at(&area, save::MASK), 0b101);
        assert_eq!(at(&area, save::RFLAGS), 0x246);
        assert_eq!(at(&area, save::RSP), 0x7fff_0000);
        assert_eq!(at(&area, save::TIMEOUT), WAIT_S);
    }

    #[test]
    fn an_interrupted_system_call_is_restarted() {
        for (rax, expect) in [(-512i64, 202u64), (-513, 202), (-514, 202)] {
            let mut r = regs();
            r.orig_rax = 202;
            r.rax = rax as u64;
            let area = save_area(&r, 0);
            assert_eq!(at(&area, save::RIP), 0x1000 - 2);
            assert_eq!(at(&area, save::GPRS), expect);
        }
        let mut r = regs();
        r.orig_rax = 35;
        r.rax = -516i64 as u64;
        let area = save_area(&r, 0);
        assert_eq!(at(&area, save::RIP), 0x1000 - 2);
        assert_eq!(at(&area, save::GPRS), libc::SYS_restart_syscall as u64);
    }

    #[test]
    fn a_finished_system_call_is_not_restarted() {
        let mut r = regs();
        r.orig_rax = 0;
        r.rax = -4i64 as u64; // EINTR: the call returned
        let area = save_area(&r, 0);
        assert_eq!(at(&area, save::RIP), 0x1000);
        assert_eq!(at(&area, save::GPRS), -4i64 as u64);
    }

    #[test]
    fn the_trampoline_is_linked_into_the_agent() {
        let code = trampoline::code();
        assert!(code.len() > 64);
        assert_eq!(&code[..2], &[0x0f, 0x05], "starts with `syscall`");
        assert!(trampoline::fallback_offset() < code.len());
    }
}
