//! The signal handlers. They only act on a signal that the agent queued
//! (`si_code == SI_QUEUE`) carrying this registration's token; anything else
//! — a `kill` from a shell, another process's `sigqueue` — is ignored.

use std::sync::atomic::Ordering;

use suspend_common::registry::CONTEXT_THREAD;

use crate::{request, state::STATE, sys};

/// Whether `info` is a signal the agent sent to this registration.
///
/// # Safety
/// `info` must be the `siginfo_t` the kernel passed to an `SA_SIGINFO`
/// handler.
unsafe fn from_agent(info: *const libc::siginfo_t) -> bool {
    if info.is_null() || !STATE.registered_here() {
        return false;
    }
    // SAFETY: the kernel's siginfo_t is valid for reads (caller's contract).
    let code = unsafe { (*info).si_code };
    // `si_value` of the `_rt` union member: offset 24 on 64-bit Linux.
    // SAFETY: offset 24 + 8 is inside the 128-byte siginfo_t.
    let value = unsafe { info.cast::<u8>().add(24).cast::<u64>().read_unaligned() };
    code == libc::SI_QUEUE && value == STATE.token.load(Ordering::Acquire)
}

/// Handler of the suspend signal.
pub extern "C" fn on_suspend_signal(
    _sig: libc::c_int,
    info: *mut libc::siginfo_t,
    _ctx: *mut libc::c_void,
) {
    let _errno = sys::ErrnoGuard::new();
    // SAFETY: installed with SA_SIGINFO, so `info` is the kernel's siginfo.
    if !unsafe { from_agent(info) } {
        return;
    }
    if STATE.context.load(Ordering::Acquire) == CONTEXT_THREAD {
        STATE.pending_suspend.fetch_add(1, Ordering::SeqCst);
        STATE.wake_helper();
    } else {
        request::serve();
    }
}

/// Handler of the resume signal: after a restore, tells the parked request
/// that it was restored (the signal interrupts the parked thread's wait).
pub extern "C" fn on_resume_signal(
    _sig: libc::c_int,
    info: *mut libc::siginfo_t,
    _ctx: *mut libc::c_void,
) {
    let _errno = sys::ErrnoGuard::new();
    // SAFETY: installed with SA_SIGINFO, so `info` is the kernel's siginfo.
    if unsafe { from_agent(info) } && STATE.serving.load(Ordering::SeqCst) {
        STATE.restored.store(true, Ordering::SeqCst);
    }
}

/// Installs both handlers.
pub fn install(suspend_signal: i32, resume_signal: i32) -> Result<(), i32> {
    for (signal, handler) in [
        (suspend_signal, on_suspend_signal as *const () as usize),
        (resume_signal, on_resume_signal as *const () as usize),
    ] {
        // SAFETY: sigaction is plain data; zero is a valid starting value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
        // SAFETY: initialising the mask we own.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: installing a handler that only does async-signal-safe work.
        if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } < 0 {
            return Err(sys::errno());
        }
    }
    Ok(())
}
