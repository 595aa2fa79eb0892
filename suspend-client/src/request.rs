//! Serving one suspend request, from the agent's signal to `on_resume`.
//! Runs on the helper thread ([`Context::Thread`](crate::Context)) or inside
//! the signal handler ([`Context::Signal`](crate::Context)); everything here
//! is async-signal-safe except the application's own callbacks.

use std::{sync::atomic::Ordering, time::Duration};

use suspend_common::wire::{
    DECISION_BUSY, DECISION_HELD, DETAIL_CRITICAL_SECTION, MSG_ANSWER, MSG_HELLO, MSG_OK,
    MSG_OUTCOME, MSG_REQUEST, Message, REASON_ABORTED, REQUEST_WAIT,
};

use crate::{
    api::{Decision, Reason, ResumeInfo, SuspendRequest},
    protocol::Conn,
    state::STATE,
    sys,
};

/// How long the agent may take to send the request after `HELLO`.
const AGENT_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Ends the "serving" state however serving ends.
struct Serving;

impl Drop for Serving {
    fn drop(&mut self) {
        STATE.suspending_tid.store(0, Ordering::SeqCst);
        sys::futex_wake_all(&STATE.suspending_tid);
        STATE.serving.store(false, Ordering::SeqCst);
    }
}

/// A valid suspend signal arrived: fetch the request and answer it.
pub fn serve() {
    if STATE.serving.swap(true, Ordering::SeqCst) && !drop_abandoned_held() {
        return; // one request at a time; the agent serialises them too
    }
    let serving = Serving;
    let Ok(conn) = Conn::connect() else { return };
    conn.set_timeout(Some(AGENT_REPLY_TIMEOUT));
    let hello = Message {
        token: STATE.token.load(Ordering::Acquire),
        ..Message::new(MSG_HELLO)
    };
    if conn.send(&hello).is_err() {
        return;
    }
    let request = match conn.recv(false) {
        Ok(Some(m)) if m.kind == MSG_REQUEST => m,
        _ => return, // the agent gave up, or this was a stale signal
    };
    let request = SuspendRequest {
        id: request.request_id,
        flags: request.flags,
        timeout_ms: request.timeout_ms,
    };

    // Dekker with `critical::enter`: publish that we are deciding, then look
    // at the critical-section count (both sequentially consistent).
    STATE.suspending_tid.store(sys::gettid(), Ordering::SeqCst);
    if STATE.critical_depth.load(Ordering::SeqCst) > 0 {
        if request.flags & REQUEST_WAIT == 0 {
            let busy = Message {
                request_id: request.id,
                code: DECISION_BUSY,
                flags: DETAIL_CRITICAL_SECTION,
                ..Message::new(MSG_ANSWER)
            };
            let _ = conn.send(&busy);
            return;
        }
        let held = Message {
            request_id: request.id,
            code: DECISION_HELD,
            ..Message::new(MSG_ANSWER)
        };
        if conn.send(&held).is_err() {
            return;
        }
        // Let sections end (and new ones start) while held; the last one to
        // end finishes the request (`critical::leave`).
        STATE.suspending_tid.store(0, Ordering::SeqCst);
        sys::futex_wake_all(&STATE.suspending_tid);
        STATE.held_id.store(request.id, Ordering::SeqCst);
        STATE.held_flags.store(request.flags, Ordering::SeqCst);
        STATE
            .held_timeout_ms
            .store(request.timeout_ms, Ordering::SeqCst);
        STATE.held_fd.store(conn.into_raw(), Ordering::SeqCst);
        std::mem::forget(serving); // still serving
        // The last section may have ended before `held_fd` was visible.
        if STATE.critical_depth.load(Ordering::SeqCst) == 0 {
            crate::critical::release_held();
        }
        return;
    }
    finish(conn, request, serving);
}

/// A request is being served. If it is one held for a critical section
/// whose requester has given up (its connection is closed), drops it and
/// returns `true`: the caller serves the new request instead.
fn drop_abandoned_held() -> bool {
    let fd = STATE.held_fd.load(Ordering::SeqCst);
    if fd < 0 {
        return false;
    }
    let held = Conn(fd);
    let alive = held.is_alive();
    let fd = held.into_raw();
    if alive
        || STATE
            .held_fd
            .compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    {
        return false; // still wanted, or the last section just took it
    }
    drop(Conn(fd));
    true
}

/// Finishes a request that was held until the last critical section ended.
pub fn finish_held(fd: libc::c_int) {
    let request = SuspendRequest {
        id: STATE.held_id.load(Ordering::SeqCst),
        flags: STATE.held_flags.load(Ordering::SeqCst),
        timeout_ms: STATE.held_timeout_ms.load(Ordering::SeqCst),
    };
    STATE.suspending_tid.store(sys::gettid(), Ordering::SeqCst);
    let conn = Conn(fd);
    conn.set_timeout(Some(AGENT_REPLY_TIMEOUT));
    finish(conn, request, Serving);
}

/// Asks `on_suspend` and, after `Ready`, parks until the agent says how the
/// suspension ended, then runs `on_resume`.
fn finish(conn: Conn, request: SuspendRequest, _serving: Serving) {
    if !conn.is_alive() {
        return; // the agent gave up waiting (timeout): nothing was asked
    }
    // Which socket the connection is: after a resume it tells a held
    // process (the same socket) from one restored from its image (the
    // number is not open, or is another file).
    let socket = sys::fd_inode(conn.0);
    let decision = STATE.call_on_suspend(&request);
    let answer = Message {
        request_id: request.id,
        code: decision as u32,
        fd: conn.0 as u32,
        ..Message::new(MSG_ANSWER)
    };
    if decision == Decision::Ready {
        // Parked from before the agent can see the answer: it freezes the
        // process as soon as it reads it, and an image whose parked thread
        // is not named gets no resume signal (the thread would be told
        // `aborted` after a resume).
        STATE.restored.store(false, Ordering::SeqCst);
        STATE.set_parked_tid(sys::gettid());
    }
    let sent = conn.send(&answer).is_ok();
    if decision != Decision::Ready {
        return;
    }
    let delay = STATE.park_delay_ms.load(Ordering::Relaxed);
    if delay != 0 {
        let pause = libc::timespec {
            tv_sec: (delay / 1000) as libc::time_t,
            tv_nsec: (delay % 1000) as libc::c_long * 1_000_000,
        };
        // SAFETY: nanosleep (async-signal-safe) with a valid timespec.
        unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
    }
    let reason = if sent {
        park(&conn, request.id)
    } else {
        STATE.set_parked_tid(0);
        REASON_ABORTED
    };
    let info = ResumeInfo {
        request_id: request.id,
        reason_code: reason,
        _reserved: 0,
    };
    if reason == Reason::Restored.code() {
        // Restored from its image, a new process as far as the kernel and
        // the agent know: the connection's fd number is not open in it (or
        // is another file), and the agent must hear of the registration
        // again before anyone asks to suspend it. Held, it is the same
        // process, and its connection is closed as usual.
        if socket.is_none() || sys::fd_inode(conn.0) != socket {
            let _ = conn.into_raw();
        }
        crate::registration::announce_again();
        STATE.call_on_resume(&info);
        return;
    }
    STATE.call_on_resume(&info);
    // Tell the agent on_resume is done (it may be gone: that is fine).
    let done = Message {
        request_id: request.id,
        ..Message::new(MSG_OK)
    };
    let _ = conn.send(&done);
}

/// Waits for the outcome of a suspension this process agreed to. The agent
/// tells it on the connection; a restored process learns it from the resume
/// signal (sent to the parked thread, whose wait it interrupts); an agent
/// that died or gave up closes the connection: aborted.
/// The caller named itself the parked thread before it answered.
fn park(conn: &Conn, request_id: u64) -> u32 {
    conn.set_timeout(None);
    let reason = loop {
        if STATE.restored.swap(false, Ordering::SeqCst) {
            break Reason::Restored.code();
        }
        match conn.wait_readable() {
            Err(libc::EINTR) => continue,
            Err(_) => break REASON_ABORTED,
            Ok(()) => {}
        }
        match conn.recv(true) {
            Ok(Some(m)) if m.kind == MSG_OUTCOME && m.request_id == request_id => break m.code,
            Ok(Some(_)) => continue,
            Err(libc::EINTR) => continue,
            Ok(None) | Err(_) => {
                if STATE.restored.swap(false, Ordering::SeqCst) {
                    break Reason::Restored.code();
                }
                break REASON_ABORTED;
            }
        }
    };
    STATE.set_parked_tid(0);
    reason
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use suspend_common::wire::{REASON_CONTINUED, REASON_RESTORED};

    use super::*;
    use crate::protocol::tests::pair;

    /// `STATE.restored` is the process's: one test at a time uses it.
    static RESTORED: Mutex<()> = Mutex::new(());

    fn outcome(request_id: u64, code: u32) -> Message {
        Message {
            request_id,
            code,
            ..Message::new(MSG_OUTCOME)
        }
    }

    #[test]
    fn a_parked_request_takes_its_own_outcome_and_skips_the_rest() {
        let _one = RESTORED.lock().unwrap_or_else(|e| e.into_inner());
        let (agent, client) = pair();
        agent.send(&outcome(6, REASON_ABORTED)).unwrap();
        agent.send(&Message::new(MSG_OK)).unwrap();
        agent.send(&outcome(7, REASON_CONTINUED)).unwrap();
        assert_eq!(park(&client, 7), REASON_CONTINUED);
    }

    #[test]
    fn an_agent_that_hangs_up_means_aborted() {
        let _one = RESTORED.lock().unwrap_or_else(|e| e.into_inner());
        let (agent, client) = pair();
        agent.send(&outcome(6, REASON_CONTINUED)).unwrap();
        drop(agent);
        assert_eq!(park(&client, 7), REASON_ABORTED);
    }

    #[test]
    fn the_resume_signal_wins_over_the_connection() {
        let _one = RESTORED.lock().unwrap_or_else(|e| e.into_inner());
        let (agent, client) = pair();
        // Restored from its image: the agent that took it is long gone.
        STATE.restored.store(true, Ordering::SeqCst);
        drop(agent);
        assert_eq!(park(&client, 7), REASON_RESTORED);
        assert!(!STATE.restored.load(Ordering::SeqCst), "used up");
    }
}
