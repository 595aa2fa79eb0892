//! Critical sections: while one is active anywhere in the process, a
//! suspend request is answered `Busy`, or held until the last one ends when
//! the requester asked to wait. Entering and leaving are async-signal-safe
//! (atomics and a futex) and nest freely.

use std::{marker::PhantomData, sync::atomic::Ordering};

use suspend_common::registry::CONTEXT_THREAD;

use crate::{request, state::STATE, sys};

/// An active critical section; it ends when dropped.
#[must_use = "the critical section ends when this guard is dropped"]
pub struct CriticalSection {
    // Not Send: a section is entered and left on the same thread.
    _not_send: PhantomData<*const ()>,
}

/// Enters a critical section. If this process has just agreed to be
/// suspended (on another thread), waits until that is over, so no section
/// starts inside a suspension.
pub fn critical_section() -> CriticalSection {
    enter();
    CriticalSection {
        _not_send: PhantomData,
    }
}

impl Drop for CriticalSection {
    fn drop(&mut self) {
        leave();
    }
}

pub(crate) fn enter() {
    let me = sys::gettid();
    loop {
        STATE.critical_depth.fetch_add(1, Ordering::SeqCst);
        let deciding = STATE.suspending_tid.load(Ordering::SeqCst);
        if deciding == 0 || deciding == me {
            return;
        }
        // A request is being decided or is parked: step back and wait.
        leave();
        sys::futex_wait(&STATE.suspending_tid, deciding);
    }
}

pub(crate) fn leave() {
    if STATE.critical_depth.fetch_sub(1, Ordering::SeqCst) == 1 {
        release_held();
    }
}

/// The last section ended: finish a held request, if there is one.
pub(crate) fn release_held() {
    let fd = STATE.held_fd.swap(-1, Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    if STATE.context.load(Ordering::Acquire) == CONTEXT_THREAD {
        STATE.held_ready_fd.store(fd, Ordering::SeqCst);
        STATE.wake_helper();
    } else {
        request::finish_held(fd);
    }
}
