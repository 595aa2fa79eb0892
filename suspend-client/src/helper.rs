//! The helper thread of [`Context::Thread`](crate::Context): the signal
//! handler only wakes it; it fetches the request and runs the callbacks in a
//! normal thread context.

use std::sync::atomic::Ordering;

use crate::{api::Error, request, state::STATE, sys};

/// Starts the helper thread in this process if it has none (a forked child
/// has none even if its parent had).
pub fn ensure() -> Result<(), Error> {
    let me = sys::getpid();
    if STATE.helper_pid.load(Ordering::Acquire) == me {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("suspend-client".into())
        .spawn(run)
        .map_err(|e| Error::Os {
            call: "pthread_create",
            errno: e.raw_os_error().unwrap_or(libc::EAGAIN),
        })?;
    STATE.helper_pid.store(me, Ordering::Release);
    Ok(())
}

fn run() {
    block_signals();
    loop {
        let seen = STATE.wake.load(Ordering::SeqCst);
        if STATE.pending_suspend.swap(0, Ordering::SeqCst) > 0 {
            request::serve();
            continue;
        }
        let fd = STATE.held_ready_fd.swap(-1, Ordering::SeqCst);
        if fd >= 0 {
            request::finish_held(fd);
            continue;
        }
        sys::futex_wait(&STATE.wake, seen);
    }
}

/// The helper takes none of the application's signals, except the resume
/// signal, which interrupts its wait when it is the parked thread.
fn block_signals() {
    // SAFETY: sigset_t is plain data; the calls initialise and fill it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for keep in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGABRT,
            libc::SIGTRAP,
        ] {
            libc::sigdelset(&mut set, keep);
        }
        libc::sigdelset(&mut set, STATE.resume_signal.load(Ordering::Acquire));
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
