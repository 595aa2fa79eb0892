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
    let value = unsafe { queued_value(info) };
    value == Some(STATE.token.load(Ordering::Acquire))
}

/// The value `info`'s signal was queued with (`sigqueue`: `SI_QUEUE`), if
/// it was.
///
/// # Safety
/// `info` must be valid for reads of a whole `siginfo_t`.
unsafe fn queued_value(info: *const libc::siginfo_t) -> Option<u64> {
    // SAFETY: valid for reads (the caller's contract).
    let code = unsafe { (*info).si_code };
    // `si_value` of the `_rt` union member: offset 24 on 64-bit Linux.
    // SAFETY: offset 24 + 8 is inside the 128-byte siginfo_t.
    let value = unsafe { info.cast::<u8>().add(24).cast::<u64>().read_unaligned() };
    (code == libc::SI_QUEUE).then_some(value)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `send` to this thread with `signal` blocked, and takes the
    /// signal back with the `siginfo_t` the kernel made for it.
    fn taken(signal: i32, send: impl FnOnce()) -> libc::siginfo_t {
        // SAFETY: sigset_t and siginfo_t are plain data; the calls
        // initialise them; the signal is blocked in this thread only, so
        // it stays pending here until taken.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            send();
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let timeout = libc::timespec {
                tv_sec: 5,
                tv_nsec: 0,
            };
            let got = libc::sigtimedwait(&set, &mut info, &timeout);
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            assert_eq!(got, signal, "errno {}", sys::errno());
            info
        }
    }

    #[test]
    fn the_value_of_a_queued_signal_is_read_where_the_kernel_puts_it() {
        let signal = 60;
        let token = 0x5eed_f00d_0bad_cafe_u64;
        let info = taken(signal, || {
            let value = libc::sigval {
                sival_ptr: token as usize as *mut libc::c_void,
            };
            // SAFETY: a signal queued to this very thread, which blocks it.
            let rc = unsafe { libc::pthread_sigqueue(libc::pthread_self(), signal, value) };
            assert_eq!(rc, 0);
        });
        // SAFETY: a siginfo_t the kernel filled in.
        assert_eq!(unsafe { queued_value(&info) }, Some(token));
    }

    #[test]
    fn a_signal_that_was_not_queued_carries_no_value() {
        let signal = 61;
        let info = taken(signal, || {
            // SAFETY: a signal to this very thread, which blocks it.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    sys::getpid(),
                    sys::gettid() as i32,
                    signal,
                )
            };
            assert_eq!(rc, 0);
        });
        // SAFETY: a siginfo_t the kernel filled in.
        assert_eq!(unsafe { queued_value(&info) }, None);
    }
}
