//! Signal state: the suspend signal as the tests make the workload treat
//! it (`--own-handler`, `--block-suspend-signal`, `reset-handler`), and,
//! for `--layout`, kernel state only the process itself can report (a
//! handler, an alternate stack, an interval timer, the program break).

use std::sync::atomic::{AtomicU32, Ordering};

/// The last signal `--own-handler`'s handler got.
static GOT_SIGNAL: AtomicU32 = AtomicU32::new(0);
/// How often `--own-handler`'s handler ran.
static OWN_HANDLER_CALLS: AtomicU32 = AtomicU32::new(0);

extern "C" fn own_handler(sig: libc::c_int) {
    GOT_SIGNAL.store(sig as u32, Ordering::SeqCst);
    OWN_HANDLER_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// `--own-handler`: a handler of its own on the default suspend signal,
/// counting the signals it gets.
pub fn install_own_handler() {
    // SAFETY: installing a handler that only touches atomics.
    unsafe {
        libc::signal(
            suspend_common::DEFAULT_SUSPEND_SIGNAL as i32,
            own_handler as *const () as libc::sighandler_t,
        )
    };
}

/// How often `--own-handler`'s handler ran (for the `check` answer).
pub fn own_handler_calls() -> u32 {
    OWN_HANDLER_CALLS.load(Ordering::SeqCst)
}

/// `--block-suspend-signal`: blocks the default suspend signal in this
/// thread's mask (before any other thread starts, so every thread
/// inherits it).
pub fn block_suspend_signal() {
    // SAFETY: building and installing a signal mask we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, suspend_common::DEFAULT_SUSPEND_SIGNAL as i32);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// `reset-handler`: the default suspend signal back to `SIG_DFL`.
pub fn reset_handler() {
    // SAFETY: resetting a signal's disposition.
    unsafe { libc::signal(suspend_common::DEFAULT_SUSPEND_SIGNAL as i32, libc::SIG_DFL) };
}

extern "C" fn on_usr1(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
extern "C" fn on_alarm(_: libc::c_int) {}

/// Kernel state only the process can report: a SIGUSR1 handler
/// (`SA_SIGINFO | SA_RESTART`, masking SIGUSR2), an alternate signal stack
/// on the main thread, an interval timer every 1000 s (SIGALRM caught), and
/// the program break moved by 3 pages. Returns (handler, altstack, brk).
pub fn set_up_signals() -> (usize, usize, usize) {
    // SAFETY: plain libc calls on state this process owns; the handlers do
    // nothing.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_usr1 as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaddset(&mut action.sa_mask, libc::SIGUSR2);
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
        libc::signal(libc::SIGALRM, on_alarm as *const () as libc::sighandler_t);
        let stack = Box::leak(vec![0u8; 64 * 1024].into_boxed_slice());
        let ss = libc::stack_t {
            ss_sp: stack.as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: stack.len(),
        };
        libc::sigaltstack(&ss, std::ptr::null_mut());
        let every = libc::timeval {
            tv_sec: 1000,
            tv_usec: 0,
        };
        let timer = libc::itimerval {
            it_interval: every,
            it_value: every,
        };
        libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
        libc::sbrk(3 * 4096);
        (
            on_usr1 as *const () as usize,
            stack.as_ptr() as usize,
            libc::sbrk(0) as usize,
        )
    }
}
