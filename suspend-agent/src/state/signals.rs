//! Signals: the action the stub gives each signal again, and the signals
//! pending for the whole process and for each thread (raw `siginfo_t`s,
//! queued again by the stub).
//!
//! Saved: every action asked from inside ([`ask_actions`]), each thread's
//! alternate signal stack too ([`ask_altstack`]: given back by the stub
//! with the thread's other arguments, [`altstack_args`]), the
//! pending signals with ptrace ([`read_shared_pending`],
//! [`read_thread_pending`]). The signal mask is saved and set with the
//! thread's registers (`dump/thread.rs`, `restore/finish.rs`).

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use suspend_common::restore::{SigAction, SigInfo, THREAD_HAS_ALTSTACK, ThreadArgs};

use super::u64_at;
use crate::{
    image::format::{self, AltStack, Thread},
    tracee::{
        inject::{Borrowed, InjectError, Site},
        ptrace::{self, PtraceError},
    },
};

// Save: asked from inside, and with ptrace.

/// `sizeof(sigset_t)` for the kernel.
const KERNEL_SIGSET: u64 = 8;

/// Every signal's action (1 to 64, those the kernel tells), asked of `b`
/// (a borrowed thread) through `site`'s scratch page.
pub fn ask_actions(b: &mut Borrowed, site: &Site) -> Result<Vec<format::SigAction>, InjectError> {
    let s = site.scratch();
    let mut buf = [0u8; 32];
    let mut actions = Vec::new();
    for signal in 1..=64u64 {
        if b.syscall(libc::SYS_rt_sigaction, [signal, 0, s, KERNEL_SIGSET, 0, 0])? != 0 {
            continue;
        }
        site.read(0, &mut buf)?;
        actions.push(format::SigAction {
            signal: signal as u32,
            handler: u64_at(&buf, 0),
            flags: u64_at(&buf, 8),
            restorer: u64_at(&buf, 16),
            mask: u64_at(&buf, 24),
        });
    }
    Ok(actions)
}

/// The alternate signal stack of `b` (a borrowed thread), if it has one
/// enabled.
pub fn ask_altstack(b: &mut Borrowed, site: &Site) -> Result<Option<AltStack>, InjectError> {
    let mut buf = [0u8; 24];
    Ok(
        (b.syscall(libc::SYS_sigaltstack, [0, site.scratch(), 0, 0, 0, 0])? == 0)
            .then(|| -> Result<AltStack, InjectError> {
                site.read(0, &mut buf)?;
                Ok(AltStack {
                    sp: u64_at(&buf, 0),
                    flags: u64_at(&buf, 8) as u32,
                    size: u64_at(&buf, 16),
                })
            })
            .transpose()?
            .filter(|a| a.flags & libc::SS_DISABLE as u32 == 0),
    )
}

/// The signals pending for the whole process `pid` (asked through
/// `leader`, a thread it holds with ptrace), each `siginfo_t` base64.
pub fn read_shared_pending(pid: u32, leader: u32) -> Result<Vec<String>, PtraceError> {
    let shared_pending = ptrace::pending_signals(leader, true).map_err(PtraceError::of(
        pid,
        leader,
        "PTRACE_PEEKSIGINFO(shared)",
    ))?;
    Ok(shared_pending.iter().map(|s| B64.encode(s)).collect())
}

/// The signals pending for thread `tid` of `pid`, each `siginfo_t`
/// base64; first, if it was `stopped` on its way to deliver one, that one.
pub fn read_thread_pending(pid: u32, tid: u32, stopped: bool) -> Result<Vec<String>, PtraceError> {
    let err = |call| PtraceError::of(pid, tid, call);
    let mut pending = ptrace::pending_signals(tid, false).map_err(err("PTRACE_PEEKSIGINFO"))?;
    // A signal it was stopped on its way to deliver is saved, with its
    // siginfo, as the first of its pending signals: the restored thread
    // takes it as soon as it runs.
    if stopped {
        let info = ptrace::siginfo(tid).map_err(err("PTRACE_GETSIGINFO"))?;
        pending.insert(0, info);
    }
    Ok(pending.iter().map(|s| B64.encode(s)).collect())
}

// Restore: what the stub is given.

/// Every signal's action but `SIGKILL`'s and `SIGSTOP`'s (which cannot
/// have one).
pub fn actions(saved: &[format::SigAction]) -> Vec<SigAction> {
    saved
        .iter()
        .filter(|a| a.signal != libc::SIGKILL as u32 && a.signal != libc::SIGSTOP as u32)
        .map(|a| SigAction {
            handler: a.handler,
            flags: a.flags,
            restorer: a.restorer,
            mask: a.mask,
            signal: a.signal,
            _pad: 0,
        })
        .collect()
}

/// The signals pending for the whole process (what does not decode is
/// left out).
pub fn shared_pending(saved: &[String]) -> Vec<SigInfo> {
    saved.iter().filter_map(|s| siginfo(s)).collect()
}

/// The signals pending for thread `t` of process `pid`; then, from an
/// image older than that field's siginfo, the signal it was stopped on
/// its way to deliver, as `kill` from the process itself sends it (but
/// with `si_uid` 0).
pub fn thread_pending(t: &Thread, pid: u32) -> Vec<SigInfo> {
    let mut pending: Vec<SigInfo> = t.pending.iter().filter_map(|s| siginfo(s)).collect();
    if let Some(signal) = t.stopped_with {
        let mut info = SigInfo { bytes: [0; 128] };
        info.bytes[..4].copy_from_slice(&signal.to_ne_bytes());
        info.bytes[16..20].copy_from_slice(&pid.to_ne_bytes());
        pending.push(info);
    }
    pending
}

/// Sets the stub's arguments for a thread's alternate signal stack `s`;
/// returns the flag that says it has one.
pub fn altstack_args(s: &AltStack, a: &mut ThreadArgs) -> u32 {
    a.altstack_sp = s.sp;
    a.altstack_size = s.size;
    a.altstack_flags = s.flags;
    THREAD_HAS_ALTSTACK
}

/// A saved `siginfo_t` (base64): zero-filled or cut to its 128 bytes;
/// `None` if it is not base64.
fn siginfo(b64: &str) -> Option<SigInfo> {
    let raw = B64.decode(b64).ok()?;
    let mut info = SigInfo { bytes: [0; 128] };
    let n = raw.len().min(128);
    info.bytes[..n].copy_from_slice(&raw[..n]);
    Some(info)
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
    use suspend_common::restore::{THREAD_HAS_ALTSTACK, ThreadArgs};

    use super::{actions, altstack_args, shared_pending, siginfo, thread_pending};
    use crate::{image::format, state::fixtures::thread};

    #[test]
    fn a_siginfo_is_zero_filled_or_cut_to_128_bytes() {
        let short = siginfo(&B64.encode([1, 2, 3])).expect("decoded");
        assert_eq!(short.bytes[..3], [1, 2, 3]);
        assert!(short.bytes[3..].iter().all(|&b| b == 0));
        let long: Vec<u8> = (0..200).map(|i| i as u8).collect();
        let cut = siginfo(&B64.encode(&long)).expect("decoded");
        assert_eq!(cut.bytes[..], long[..128]);
        assert!(siginfo("not base64!").is_none());
        assert_eq!(
            shared_pending(&["!".into(), B64.encode([9])]).len(),
            1,
            "what does not decode is left out"
        );
    }

    #[test]
    fn a_signal_a_thread_was_stopped_with_is_queued_last_as_from_the_process() {
        let mut t = thread(43);
        t.pending = vec![B64.encode(10i32.to_ne_bytes())];
        t.stopped_with = Some(libc::SIGUSR2);
        let got = thread_pending(&t, 42);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].bytes[..4], 10i32.to_ne_bytes());
        let stopped = &got[1].bytes;
        assert_eq!(stopped[..4], libc::SIGUSR2.to_ne_bytes());
        // si_errno, si_code (SI_USER: 0) and padding, then si_pid.
        assert!(stopped[4..16].iter().all(|&b| b == 0));
        assert_eq!(stopped[16..20], 42u32.to_ne_bytes());
        assert!(stopped[20..].iter().all(|&b| b == 0));
        assert!(thread_pending(&thread(44), 42).is_empty());
    }

    #[test]
    fn sigkill_and_sigstop_get_no_action() {
        let action = |signal: i32| format::SigAction {
            signal: signal as u32,
            handler: 0x401000,
            flags: 0x0400_0000,
            restorer: 0x402000,
            mask: 1 << 3,
        };
        let got = actions(&[
            action(libc::SIGINT),
            action(libc::SIGKILL),
            action(libc::SIGSTOP),
            action(libc::SIGTERM),
        ]);
        let signals: Vec<u32> = got.iter().map(|a| a.signal).collect();
        assert_eq!(signals, [libc::SIGINT as u32, libc::SIGTERM as u32]);
        assert_eq!(
            (got[0].handler, got[0].flags, got[0].restorer, got[0].mask),
            (0x401000, 0x0400_0000, 0x402000, 1 << 3)
        );
    }

    #[test]
    fn an_alternate_stack_is_given_to_the_stub() {
        let mut a = ThreadArgs::default();
        let s = format::AltStack {
            sp: 0x7000,
            flags: 1 << 31, // SS_AUTODISARM
            size: 8192,
        };
        assert_eq!(altstack_args(&s, &mut a), THREAD_HAS_ALTSTACK);
        assert_eq!(
            (a.altstack_sp, a.altstack_size, a.altstack_flags),
            (0x7000, 8192, 1 << 31)
        );
    }
}
