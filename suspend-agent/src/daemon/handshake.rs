//! The suspend handshake (steps 1–3 of the "Suspend" flow): check that the
//! process opted in and can be asked, send it the suspend signal with its
//! token, and take its answer.
//!
//! Nothing is sent to a process that is not registered, whose registration
//! is stale or unusable, or that has no handler for the signal: those are
//! `NotOptedIn`, and the process is left untouched.

use std::{fmt, sync::Arc, time::Duration};

use log::{info, warn};
use suspend_common::{
    registry::{Registration, STATE_REGISTERED, STATE_SUSPENDING, STATE_UNUSABLE},
    wire::{
        DECISION_BUSY, DECISION_HELD, DECISION_READY, DECISION_REFUSE, DETAIL_CRITICAL_SECTION,
        MSG_ANSWER, MSG_OK, MSG_OUTCOME, MSG_REQUEST, Message, REASON_CONTINUED, REQUEST_DRY_RUN,
        REQUEST_WAIT, reason_name,
    },
};
use tokio::{
    net::UnixStream,
    sync::{mpsc, oneshot},
    time::{Instant, timeout_at},
};

use super::{
    State,
    clients::{read_message, write_message},
    register,
};
use crate::{
    control::Outcome,
    procfs::{self, ProcError},
    sys::{PidFd, SigQueueInfo},
};

/// What the CLI asked for.
#[derive(Clone, Debug)]
pub struct SuspendArgs {
    pub pid: u32,
    /// Bounds the handshake (not the dump).
    pub timeout: Duration,
    pub wait: bool,
    pub dry_run: bool,
    pub dir: Option<std::path::PathBuf>,
    pub leave_running: bool,
    pub drop_unsupported_fds: bool,
    pub hold: bool,
    pub new_session: bool,
    /// How many bytes of deleted files' contents the image may carry.
    pub unlinked_max: u64,
}

pub type Progress = mpsc::UnboundedSender<String>;

/// A suspend request that did what was asked: its one-line message.
#[derive(Debug)]
pub struct Done {
    pub message: String,
}

/// Runs the handshake; returns the outcome and a one-line message.
pub async fn suspend(
    state: &Arc<State>,
    args: SuspendArgs,
    progress: &Progress,
) -> (Outcome, String) {
    let pid = args.pid;
    let result = run(state, args, progress).await;
    let (outcome, message) = match result {
        Ok(done) => done,
        Err(done) => done,
    };
    info!("suspend pid {pid}: {outcome:?}: {message}");
    (outcome, message)
}

type Step<T> = Result<T, (Outcome, String)>;

fn not_opted_in(pid: u32, why: impl std::fmt::Display) -> (Outcome, String) {
    (
        Outcome::NotOptedIn,
        format!("pid {pid} cannot be asked to suspend: {why}; nothing was sent"),
    )
}

/// Checks everything that must hold before a signal may be sent.
fn check(state: &State, pid: u32) -> Step<(Registration, u64)> {
    let entry = state
        .registry(|r| r.get(pid))
        .map_err(|e| (Outcome::Error, e.to_string()))?
        .ok_or_else(|| not_opted_in(pid, "it has not opted in (not in the registry)"))?;
    let start_time = procfs::start_time(pid).map_err(|e| match e {
        ProcError::Gone { .. } => (Outcome::Error, format!("pid {pid}: no such process")),
        e => (Outcome::Error, e.to_string()),
    })?;
    if start_time != entry.start_time {
        let _ = state.registry(|r| r.remove(pid));
        return Err(not_opted_in(
            pid,
            "the registered process is gone and its pid was reused",
        ));
    }
    match entry.state {
        STATE_REGISTERED => {}
        STATE_UNUSABLE => {
            let what = match crate::registry::replaced_handler(pid) {
                Some(r) => format!(
                    "the handler of its {} signal {} was {}",
                    if r.signal == entry.suspend_signal {
                        "suspend"
                    } else {
                        "resume"
                    },
                    r.signal,
                    crate::registry::describe_handler(pid, r.handler)
                ),
                None => "its suspend or resume handler was reset or replaced".into(),
            };
            return Err(not_opted_in(pid, &what));
        }
        STATE_SUSPENDING => {
            return Err((
                Outcome::Error,
                format!("pid {pid} is already being suspended"),
            ));
        }
        other => {
            return Err((
                Outcome::Error,
                format!("pid {pid}: unknown registry state {other}"),
            ));
        }
    }
    // Its memory still coming back from its last resume (a lazy refill):
    // not all there, and its handler may wait on a page.
    if crate::hold::refilling(pid) {
        return Err((
            Outcome::Unsupported,
            format!(
                "pid {pid} is still getting its memory back from its last resume (`suspend-agent list` shows it until done); it was not asked"
            ),
        ));
    }
    let status = procfs::status(pid).map_err(|e| (Outcome::Error, e.to_string()))?;
    if !status.catches(entry.suspend_signal) {
        let _ = state.registry(|r| r.set_state(pid, None, STATE_UNUSABLE));
        return Err(not_opted_in(
            pid,
            format_args!(
                "no handler is installed for signal {}",
                entry.suspend_signal
            ),
        ));
    }
    let block = register::read_block(pid, entry.block_addr).map_err(|e| {
        let _ = state.registry(|r| r.remove(pid));
        not_opted_in(pid, format_args!("its registration is gone ({e})"))
    })?;
    Ok((entry, block.token))
}

/// Removes the pending entry and puts the registration back to
/// `REGISTERED`, however the handshake ends.
struct Cleanup<'a> {
    state: &'a State,
    pid: u32,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.state
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.pid);
        if let Err(e) = self
            .state
            .registry(|r| r.set_state(self.pid, Some(STATE_SUSPENDING), STATE_REGISTERED))
        {
            warn!("{e}");
        }
    }
}

async fn run(
    state: &Arc<State>,
    args: SuspendArgs,
    progress: &Progress,
) -> Step<(Outcome, String)> {
    let pid = args.pid;
    let deadline = Instant::now() + args.timeout;
    let (entry, token) = check(state, pid)?;
    if !args.dry_run && args.dir.is_none() {
        return Err((
            Outcome::Error,
            format!("pid {pid}: no image directory given (nothing was sent)"),
        ));
    }
    let pidfd =
        PidFd::open(pid).map_err(|e| (Outcome::Error, format!("pid {pid}: pidfd_open: {e}")))?;

    let (tx, rx) = oneshot::channel();
    {
        let mut pending = state.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.contains_key(&pid) {
            return Err((
                Outcome::Error,
                format!("pid {pid} is already being suspended"),
            ));
        }
        pending.insert(pid, tx);
    }
    let changed = state.registry(|r| r.set_state(pid, Some(STATE_REGISTERED), STATE_SUSPENDING));
    let _cleanup = Cleanup { state, pid };
    if !matches!(changed, Ok(true)) {
        return Err((
            Outcome::Error,
            format!("pid {pid}: its registration changed while checking it"),
        ));
    }

    pidfd
        .send_queued(SigQueueInfo {
            signal: entry.suspend_signal,
            value: token,
        })
        .map_err(|e| {
            (
                Outcome::Error,
                format!(
                    "pid {pid}: pidfd_send_signal({}): {e}",
                    entry.suspend_signal
                ),
            )
        })?;
    let _ = progress.send(format!(
        "sent signal {} to pid {pid}; waiting for its answer",
        entry.suspend_signal
    ));

    let hello = tokio::select! {
        hello = timeout_at(deadline, rx) => match hello {
            Ok(Ok(hello)) => hello,
            Ok(Err(_)) => return Err((Outcome::Error, format!("pid {pid}: handshake cancelled"))),
            Err(_) => return Err(no_hello(state, pid, &entry, args.timeout, &pidfd)),
        },
        Ok(()) = pidfd.exited() => {
            return Err((Outcome::Error, format!("pid {pid} exited during the handshake")));
        }
    };
    let mut stream = hello.stream;
    if hello.message.token != token {
        return Err((
            Outcome::Error,
            format!("pid {pid}: answered with the wrong token"),
        ));
    }

    let request_id = state
        .next_request_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut flags = 0;
    if args.wait {
        flags |= REQUEST_WAIT;
    }
    if args.dry_run {
        flags |= REQUEST_DRY_RUN;
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    let request = Message {
        request_id,
        flags,
        timeout_ms: u32::try_from(remaining.as_millis()).unwrap_or(u32::MAX),
        ..Message::new(MSG_REQUEST)
    };
    write_message(&mut stream, &request).await.map_err(|e| {
        (
            Outcome::Error,
            format!("pid {pid}: sending the request: {e}"),
        )
    })?;

    let mut held = false;
    let ready = loop {
        let answer = match timeout_at(deadline, read_message(&mut stream)).await {
            Err(_) if held => {
                return Err((
                    Outcome::Timeout,
                    format!(
                        "pid {pid} was still inside a critical section after {}",
                        fmt(args.timeout)
                    ),
                ));
            }
            Err(_) => {
                return Err((
                    Outcome::Timeout,
                    format!(
                        "pid {pid} did not decide within {} (on_suspend still running?)",
                        fmt(args.timeout)
                    ),
                ));
            }
            Ok(Err(e)) => {
                return Err((
                    Outcome::Error,
                    format!("pid {pid}: reading its answer: {e}"),
                ));
            }
            Ok(Ok(None)) => {
                return Err((
                    Outcome::Error,
                    format!("pid {pid} closed the connection without answering"),
                ));
            }
            Ok(Ok(Some(answer))) => answer,
        };
        if answer.kind != MSG_ANSWER || answer.request_id != request_id {
            return Err((
                Outcome::Error,
                format!("pid {pid}: unexpected message kind {}", answer.kind),
            ));
        }
        match answer.code {
            DECISION_READY => break answer,
            DECISION_BUSY if answer.flags == DETAIL_CRITICAL_SECTION => {
                return Err((
                    Outcome::Busy,
                    format!(
                        "pid {pid} is busy: inside a critical section (--wait waits for it to end)"
                    ),
                ));
            }
            DECISION_BUSY => {
                return Err((
                    Outcome::Busy,
                    format!("pid {pid} is busy: on_suspend said not now"),
                ));
            }
            DECISION_REFUSE => {
                return Err((
                    Outcome::Refused,
                    format!("pid {pid} refused to be suspended"),
                ));
            }
            DECISION_HELD => {
                held = true;
                let _ = progress.send(format!(
                    "pid {pid} is inside a critical section; waiting for it to end"
                ));
            }
            other => {
                return Err((
                    Outcome::Error,
                    format!("pid {pid}: unknown decision {other}"),
                ));
            }
        }
    };
    let _ = progress.send(format!("pid {pid} is ready"));
    if args.dry_run {
        // Nothing is frozen or written; let the process go.
        let told = tell(&mut stream, request_id, REASON_CONTINUED).await;
        return Ok((
            Outcome::Done,
            format!("pid {pid} was ready; dry run: let go, {told}"),
        ));
    }
    Ok(
        match super::suspend::take(
            state,
            &args,
            &mut stream,
            request_id,
            ready.fd,
            pidfd,
            progress,
        )
        .await
        {
            Ok(done) => (Outcome::Done, done.message),
            Err(aborted) => (aborted.outcome(), aborted.to_string()),
        },
    )
}

/// How long a client that was told the outcome has to report that its
/// `on_resume` ran.
const ON_RESUME_REPORT: Duration = Duration::from_secs(10);

/// Tells a ready client how its suspension ended (`reason`) and waits until
/// its `on_resume` has run; returns whether it reported back, in words.
///
/// Every message of a request that got as far as `ready` ends with it.
pub async fn tell(stream: &mut UnixStream, request_id: u64, reason: u32) -> OnResume {
    let outcome = Message {
        request_id,
        code: reason,
        ..Message::new(MSG_OUTCOME)
    };
    let ran = write_message(stream, &outcome).await.is_ok()
        && matches!(
            tokio::time::timeout(ON_RESUME_REPORT, read_message(stream)).await,
            Ok(Ok(Some(m))) if m.kind == MSG_OK
        );
    OnResume {
        reason: reason_name(reason),
        ran,
    }
}

/// What a ready client said once told how its suspension ended: the tail
/// of the request's message, "on_resume(REASON) ran" or that it did not
/// report back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnResume {
    /// The `REASON_*` it was told, by name.
    pub reason: &'static str,
    /// Whether it reported back that its `on_resume` ran.
    pub ran: bool,
}

impl fmt::Display for OnResume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ran {
            write!(f, "on_resume({}) ran", self.reason)
        } else {
            write!(f, "on_resume({}) did not report back", self.reason)
        }
    }
}

/// The timeout message when the client never connected, with what eBPF saw
/// of the signal.
fn no_hello(
    state: &State,
    pid: u32,
    before: &Registration,
    timeout: Duration,
    pidfd: &PidFd,
) -> (Outcome, String) {
    if !pidfd.is_alive() {
        return (
            Outcome::Error,
            format!("pid {pid} exited during the handshake"),
        );
    }
    let after = state.registry(|r| r.get(pid)).ok().flatten();
    let why = match after {
        Some(after) if after.suspend_delivered > before.suspend_delivered => {
            "its handler ran but the client did not connect back"
        }
        Some(_) => "the signal was not delivered (blocked in every thread?)",
        None => "its registration disappeared",
    };
    (
        Outcome::Timeout,
        format!("pid {pid} did not answer within {}: {why}", fmt(timeout)),
    )
}

fn fmt(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use suspend_common::wire::{REASON_ABORTED, REASON_CONTINUED};

    use super::*;

    #[test]
    fn on_resume_says_whether_the_client_reported_back() {
        let told = |reason, ran| {
            OnResume {
                reason: reason_name(reason),
                ran,
            }
            .to_string()
        };
        assert_eq!(told(REASON_ABORTED, true), "on_resume(aborted) ran");
        assert_eq!(
            told(REASON_ABORTED, false),
            "on_resume(aborted) did not report back"
        );
        assert_eq!(told(REASON_CONTINUED, true), "on_resume(continued) ran");
        assert_eq!(
            told(REASON_CONTINUED, false),
            "on_resume(continued) did not report back"
        );
    }
}
