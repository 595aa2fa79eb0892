//! What a thread registered with the kernel for itself: its rseq area, its
//! robust futex list, its tid address (`set_tid_address`) and its timer
//! slack, saved per thread and given back by the restorer stub with the
//! thread's other arguments; and its TSC mode (`PR_SET_TSC`), which only
//! the thread itself may set. Its registers, xstate and signal mask are
//! the tracee's (`tracee/ptrace.rs`), saved by `dump/thread.rs` and set by
//! `restore/finish.rs`.
//!
//! Saved: the rseq area and the robust list with ptrace ([`read_rseq`],
//! [`read_robust_list`]), the tid address, the timer slack and the TSC
//! mode asked from inside ([`ask_tid_address`], [`ask_timer_slack`],
//! [`ask_tsc`]; a TSC mode only where it is not the default,
//! [`tsc_saved`]). Restored: the stub's arguments for each thread
//! ([`thread_args`]); the TSC mode set from inside the thread
//! ([`give_back_tsc`]), which `restore/finish.rs` borrows once every
//! thread waits in the stub. Refused by the dump: a local descriptor
//! table, which an image does not hold, asked from inside ([`ask_ldt`])
//! and refused ([`ldt_refusal`]).

use suspend_common::restore::{
    THREAD_HAS_RSEQ, THREAD_HAS_TID_ADDRESS, THREAD_HAS_TIMER_SLACK, ThreadArgs,
};

use super::u64_at;
use crate::{
    image::format::{Rseq, Thread},
    sys::SyscallError,
    tracee::{
        inject::{Borrowed, InjectError, Site},
        ptrace::{self, PtraceError},
    },
};

// Save: with ptrace, and asked from inside.

const PR_GET_TID_ADDRESS: u64 = 40;
const PR_GET_TIMERSLACK: u64 = 30;
const PR_GET_TSC: u64 = 25;
/// `PR_TSC_ENABLE`: the default of `PR_GET_TSC`.
const PR_TSC_ENABLE: u32 = 1;
/// `modify_ldt(0, …)` reads the process's LDT: 0 bytes when it has none.
const SYS_MODIFY_LDT: i64 = 154;

/// Thread `tid` of `pid`'s rseq registration, `None` where it has none or
/// the kernel cannot say.
pub fn read_rseq(pid: u32, tid: u32) -> Result<Option<Rseq>, PtraceError> {
    match ptrace::rseq(tid) {
        Ok(r) => Ok(r.map(|(addr, len, signature)| Rseq {
            addr,
            len,
            signature,
        })),
        // Kernels before 5.13 cannot say; glibc before 2.35 has none.
        Err(nix::errno::Errno::EIO) => Ok(None),
        Err(source) => Err(PtraceError::of(pid, tid, "PTRACE_GET_RSEQ_CONFIGURATION")(
            source,
        )),
    }
}

/// Thread `tid`'s robust futex list: (head, length).
pub fn read_robust_list(tid: u32) -> Result<(u64, u64), SyscallError> {
    ptrace::robust_list(tid)
}

/// The tid address of `b` (a borrowed thread), asked through `site`'s
/// scratch page; `None` where the kernel does not tell it.
pub fn ask_tid_address(b: &mut Borrowed, site: &Site) -> Result<Option<u64>, InjectError> {
    let mut buf = [0u8; 8];
    (b.syscall(
        libc::SYS_prctl,
        [PR_GET_TID_ADDRESS, site.scratch(), 0, 0, 0, 0],
    )? == 0)
        .then(|| -> Result<u64, InjectError> {
            site.read(0, &mut buf)?;
            Ok(u64_at(&buf, 0))
        })
        .transpose()
}

/// The timer slack of `b` (a borrowed thread), in nanoseconds; `None`
/// where the kernel refuses to tell it.
pub fn ask_timer_slack(b: &mut Borrowed) -> Result<Option<u64>, InjectError> {
    let slack = b.syscall(libc::SYS_prctl, [PR_GET_TIMERSLACK, 0, 0, 0, 0, 0])?;
    Ok(u64::try_from(slack).ok())
}

/// The TSC mode of `b` (a borrowed thread), asked through `site`'s
/// scratch page: 1 `PR_TSC_ENABLE`, 2 `PR_TSC_SIGSEGV`; `None` where the
/// kernel does not tell it.
pub fn ask_tsc(b: &mut Borrowed, site: &Site) -> Result<Option<u32>, InjectError> {
    if b.syscall(libc::SYS_prctl, [PR_GET_TSC, site.scratch(), 0, 0, 0, 0])? == 0 {
        let mut buf = [0u8; 4];
        site.read(0, &mut buf)?;
        Ok(Some(u32::from_ne_bytes(buf)))
    } else {
        Ok(None)
    }
}

/// The TSC mode a thread that told `told` ([`ask_tsc`]) is saved with:
/// none where it is the default, `PR_TSC_ENABLE`.
pub fn tsc_saved(told: Option<u32>) -> Option<u32> {
    told.filter(|&t| t != PR_TSC_ENABLE)
}

/// Whether `b`'s process set up a local descriptor table: `modify_ldt`
/// reads up to 16 bytes of it into `site`'s scratch page.
pub fn ask_ldt(b: &mut Borrowed, site: &Site) -> Result<bool, InjectError> {
    Ok(b.syscall(SYS_MODIFY_LDT, [0, site.scratch(), 16, 0, 0, 0])? > 0)
}

/// A local descriptor table (`modify_ldt`), the process's, which its
/// threads' segment selectors index, as the task iterator or `modify_ldt`
/// asked from inside shows it: an image holds none, refused.
pub fn ldt_refusal(has: bool) -> Option<String> {
    has.then(|| "a local descriptor table (modify_ldt)".into())
}

// Restore: what the stub is given, and what the thread sets itself.

const PR_SET_TSC: u64 = 26;

/// Sets the stub's arguments for what thread `t` registered; returns the
/// flags that say which it has.
pub fn thread_args(t: &Thread, a: &mut ThreadArgs) -> u32 {
    let mut flags = 0;
    a.robust_head = t.robust_list.0;
    a.robust_len = t.robust_list.1;
    if let Some(r) = &t.rseq {
        flags |= THREAD_HAS_RSEQ;
        a.rseq_addr = r.addr;
        a.rseq_len = r.len;
        a.rseq_signature = r.signature;
    }
    if let Some(addr) = t.tid_address {
        flags |= THREAD_HAS_TID_ADDRESS;
        a.tid_address = addr;
    }
    if let Some(slack) = t.timer_slack_ns {
        flags |= THREAD_HAS_TIMER_SLACK;
        a.timer_slack_ns = slack;
    }
    flags
}

/// Gives thread `t`, borrowed as `thread`, its saved TSC mode, if it has
/// one ([`tsc_saved`]).
pub fn give_back_tsc(thread: &mut Borrowed, t: &Thread) -> Result<(), InjectError> {
    if let Some(tsc) = t.tsc {
        let what = format!("thread {}: PR_SET_TSC {tsc}", t.tid);
        thread.call(&what, libc::SYS_prctl, [PR_SET_TSC, tsc as u64, 0, 0, 0, 0])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use suspend_common::restore::{
        THREAD_HAS_RSEQ, THREAD_HAS_TID_ADDRESS, THREAD_HAS_TIMER_SLACK, ThreadArgs,
    };

    use super::{thread_args, tsc_saved};
    use crate::{image::format::Rseq, state::fixtures::thread};

    #[test]
    fn a_thread_gives_the_stub_what_it_registered() {
        let mut t = thread(43);
        t.robust_list = (0x7200, 24);
        t.rseq = Some(Rseq {
            addr: 0x7000,
            len: 32,
            signature: 0x5305_3053,
        });
        t.tid_address = Some(0x7100);
        t.timer_slack_ns = Some(50_000);
        let mut a = ThreadArgs::default();
        assert_eq!(
            thread_args(&t, &mut a),
            THREAD_HAS_RSEQ | THREAD_HAS_TID_ADDRESS | THREAD_HAS_TIMER_SLACK
        );
        assert_eq!((a.robust_head, a.robust_len), (0x7200, 24));
        assert_eq!(
            (a.rseq_addr, a.rseq_len, a.rseq_signature),
            (0x7000, 32, 0x5305_3053)
        );
        assert_eq!((a.tid_address, a.timer_slack_ns), (0x7100, 50_000));
    }

    #[test]
    fn a_thread_that_registered_nothing_gets_only_its_robust_list() {
        let mut a = ThreadArgs::default();
        assert_eq!(thread_args(&thread(43), &mut a), 0);
        assert_eq!((a.robust_head, a.robust_len), (0, 24));
        assert_eq!((a.rseq_addr, a.tid_address, a.timer_slack_ns), (0, 0, 0));
    }

    #[test]
    fn only_a_tsc_mode_other_than_the_default_is_saved() {
        // PR_TSC_ENABLE 1 (the default), PR_TSC_SIGSEGV 2.
        assert_eq!(tsc_saved(Some(1)), None);
        assert_eq!(tsc_saved(Some(2)), Some(2));
        assert_eq!(tsc_saved(None), None, "the kernel did not tell it");
    }
}
