//! The suspend handshake (steps 1–3 of the "Suspend" flow): check that the
//! process opted in and can be asked, send it the suspend signal with its
//! token, and take its answer.
//!
//! Nothing is sent to a process that is not registered, whose registration
//! is stale or unusable, or that has no handler for the signal: those are
//! `NotOptedIn`, and the process is left untouched.

use std::{fmt, io, sync::Arc, time::Duration};

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
    register::{self, RegisterError},
    suspend::Aborted,
};
use crate::{
    control::Outcome,
    procfs::{self, ProcError},
    registry::RegistryError,
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
    /// Store the pages raw rather than compressed.
    pub no_compress: bool,
    pub no_precopy: bool,
    /// With `hold`: what an image cannot hold is refused as without it.
    pub portable: bool,
    /// Regular files it has open to carry in the image.
    pub carry: Vec<std::path::PathBuf>,
}

pub type Progress = mpsc::UnboundedSender<String>;

/// A suspend request that did what was asked: its one-line message.
#[derive(Debug)]
pub struct Done {
    pub message: String,
}

/// Why a suspend request ended without doing what was asked: its message
/// is the CLI's, its [`outcome`](Self::outcome) the CLI's exit code.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Nothing was sent: it did not opt in, or its registration cannot be
    /// used.
    #[error("pid {pid} cannot be asked to suspend: {why}; nothing was sent")]
    NotOptedIn { pid: u32, why: Unaskable },
    /// Reading its registration failed.
    #[error(transparent)]
    Registry(RegistryError),
    #[error("pid {pid}: no such process")]
    Gone { pid: u32 },
    /// Reading its `/proc` files failed.
    #[error(transparent)]
    Proc(ProcError),
    #[error("pid {pid} is already being suspended")]
    AlreadySuspending { pid: u32 },
    #[error("pid {pid}: unknown registry state {state}")]
    UnknownState { pid: u32, state: u32 },
    /// Its memory is still coming back from its last resume (a lazy
    /// refill): its handler may wait on a page. Nothing was sent.
    #[error(
        "pid {pid} is still getting its memory back from its last resume (`suspend-agent list` \
         shows it until done); it was not asked"
    )]
    Refilling { pid: u32 },
    #[error("pid {pid}: no image directory given (nothing was sent)")]
    NoImageDir { pid: u32 },
    #[error("pid {pid}: {source}")]
    PidFd {
        pid: u32,
        source: crate::sys::SyscallError,
    },
    #[error("pid {pid}: its registration changed while checking it")]
    RegistrationChanged { pid: u32 },
    #[error("pid {pid}: signal {signal}: {source}")]
    Signal {
        pid: u32,
        signal: u32,
        source: crate::sys::SyscallError,
    },
    #[error("pid {pid}: handshake cancelled")]
    Cancelled { pid: u32 },
    #[error("pid {pid} exited during the handshake")]
    Exited { pid: u32 },
    /// The client never connected back.
    #[error("pid {pid} did not answer within {}: {why}", within(.timeout))]
    NoAnswer {
        pid: u32,
        timeout: Duration,
        why: Unanswered,
    },
    #[error("pid {pid}: answered with the wrong token")]
    WrongToken { pid: u32 },
    #[error("pid {pid}: sending the request: {source}")]
    Request { pid: u32, source: io::Error },
    /// Its `on_suspend` did not decide in time.
    #[error(
        "pid {pid} did not decide within {} (on_suspend still running?)",
        within(.timeout)
    )]
    Undecided { pid: u32, timeout: Duration },
    /// `--wait`: its critical section did not end in time.
    #[error(
        "pid {pid} was still inside a critical section after {}",
        within(.timeout)
    )]
    StillInside { pid: u32, timeout: Duration },
    #[error("pid {pid}: reading its answer: {source}")]
    Answer { pid: u32, source: io::Error },
    #[error("pid {pid} closed the connection without answering")]
    Closed { pid: u32 },
    #[error("pid {pid}: unexpected message kind {kind}")]
    UnexpectedMessage { pid: u32, kind: u32 },
    #[error("pid {pid} is busy: inside a critical section (--wait waits for it to end)")]
    InCriticalSection { pid: u32 },
    #[error("pid {pid} is busy: on_suspend said not now")]
    Busy { pid: u32 },
    #[error("pid {pid} refused to be suspended")]
    Refused { pid: u32 },
    #[error("pid {pid}: unknown decision {code}")]
    UnknownDecision { pid: u32, code: u32 },
    /// It answered ready, and was let go instead of suspended.
    #[error(transparent)]
    Aborted(#[from] Aborted),
}

impl HandshakeError {
    /// How the request ends (the CLI's exit code).
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::NotOptedIn { .. } => Outcome::NotOptedIn,
            Self::Refilling { .. } => Outcome::Unsupported,
            Self::NoAnswer { .. } | Self::Undecided { .. } | Self::StillInside { .. } => {
                Outcome::Timeout
            }
            Self::InCriticalSection { .. } | Self::Busy { .. } => Outcome::Busy,
            Self::Refused { .. } => Outcome::Refused,
            Self::Aborted(aborted) => aborted.outcome(),
            Self::Registry(_)
            | Self::Gone { .. }
            | Self::Proc(_)
            | Self::AlreadySuspending { .. }
            | Self::UnknownState { .. }
            | Self::NoImageDir { .. }
            | Self::PidFd { .. }
            | Self::RegistrationChanged { .. }
            | Self::Signal { .. }
            | Self::Cancelled { .. }
            | Self::Exited { .. }
            | Self::WrongToken { .. }
            | Self::Request { .. }
            | Self::Answer { .. }
            | Self::Closed { .. }
            | Self::UnexpectedMessage { .. }
            | Self::UnknownDecision { .. } => Outcome::Error,
        }
    }
}

/// Why a process cannot be asked to suspend (nothing is sent to it).
#[derive(Debug, thiserror::Error)]
pub enum Unaskable {
    #[error("it has not opted in (not in the registry)")]
    NotRegistered,
    #[error("the registered process is gone and its pid was reused")]
    PidReused,
    /// The eBPF programs saw which handler took its place.
    #[error("the handler of its {which} signal {signal} was {handler}")]
    HandlerReplaced {
        /// "suspend" or "resume".
        which: &'static str,
        signal: u32,
        /// What took it, in words ([`crate::registry::describe_handler`]).
        handler: String,
    },
    /// Unusable, and nothing says which handler took its place.
    #[error("its suspend or resume handler was reset or replaced")]
    HandlerChanged,
    #[error("no handler is installed for signal {signal}")]
    NoHandler { signal: u32 },
    #[error("its registration is gone ({0})")]
    Unregistered(#[source] RegisterError),
}

/// What the registry saw of a suspend signal whose process never
/// connected back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unanswered {
    #[error("its handler ran but the client did not connect back")]
    NotConnected,
    #[error("the signal was not delivered (blocked in every thread?)")]
    NotDelivered,
    #[error("its registration disappeared")]
    Unregistered,
}

/// Runs the handshake (and the suspend, if the process is ready).
pub async fn suspend(
    state: &Arc<State>,
    args: SuspendArgs,
    progress: &Progress,
) -> Result<Done, HandshakeError> {
    let pid = args.pid;
    let result = run(state, args, progress).await;
    match &result {
        Ok(done) => info!("suspend pid {pid}: {:?}: {}", Outcome::Done, done.message),
        Err(e) => info!("suspend pid {pid}: {:?}: {e}", e.outcome()),
    }
    result
}

fn not_opted_in(pid: u32, why: Unaskable) -> HandshakeError {
    HandshakeError::NotOptedIn { pid, why }
}

/// Checks everything that must hold before a signal may be sent.
fn check(state: &State, pid: u32) -> Result<(Registration, u64), HandshakeError> {
    let entry = state
        .registry(|r| r.get(pid))
        .map_err(HandshakeError::Registry)?
        .ok_or_else(|| not_opted_in(pid, Unaskable::NotRegistered))?;
    let start_time = procfs::start_time(pid).map_err(|e| match e {
        ProcError::Gone { .. } => HandshakeError::Gone { pid },
        e => HandshakeError::Proc(e),
    })?;
    if start_time != entry.start_time {
        let _ = state.registry(|r| r.remove(pid));
        return Err(not_opted_in(pid, Unaskable::PidReused));
    }
    match entry.state {
        STATE_REGISTERED => {}
        STATE_UNUSABLE => {
            let why = match crate::registry::replaced_handler(pid) {
                Some(r) => Unaskable::HandlerReplaced {
                    which: if r.signal == entry.suspend_signal {
                        "suspend"
                    } else {
                        "resume"
                    },
                    signal: r.signal,
                    handler: crate::registry::describe_handler(pid, r.handler),
                },
                None => Unaskable::HandlerChanged,
            };
            return Err(not_opted_in(pid, why));
        }
        STATE_SUSPENDING => return Err(HandshakeError::AlreadySuspending { pid }),
        other => return Err(HandshakeError::UnknownState { pid, state: other }),
    }
    // Its memory still coming back from its last resume (a lazy refill):
    // not all there, and its handler may wait on a page.
    if crate::hold::refilling(pid) {
        return Err(HandshakeError::Refilling { pid });
    }
    let status = procfs::status(pid).map_err(HandshakeError::Proc)?;
    if !status.catches(entry.suspend_signal) {
        let _ = state.registry(|r| r.set_state(pid, None, STATE_UNUSABLE));
        return Err(not_opted_in(
            pid,
            Unaskable::NoHandler {
                signal: entry.suspend_signal,
            },
        ));
    }
    let block = register::read_block(pid, entry.block_addr).map_err(|e| {
        let _ = state.registry(|r| r.remove(pid));
        not_opted_in(pid, Unaskable::Unregistered(e))
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
) -> Result<Done, HandshakeError> {
    let pid = args.pid;
    let deadline = Instant::now() + args.timeout;
    let (entry, token) = check(state, pid)?;
    if !args.dry_run && args.dir.is_none() {
        return Err(HandshakeError::NoImageDir { pid });
    }
    let pidfd = PidFd::open(pid).map_err(|source| HandshakeError::PidFd { pid, source })?;

    let (tx, rx) = oneshot::channel();
    {
        let mut pending = state.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.contains_key(&pid) {
            return Err(HandshakeError::AlreadySuspending { pid });
        }
        pending.insert(pid, tx);
    }
    let changed = state.registry(|r| r.set_state(pid, Some(STATE_REGISTERED), STATE_SUSPENDING));
    let _cleanup = Cleanup { state, pid };
    if !matches!(changed, Ok(true)) {
        return Err(HandshakeError::RegistrationChanged { pid });
    }

    pidfd
        .send_queued(SigQueueInfo {
            signal: entry.suspend_signal,
            value: token,
        })
        .map_err(|source| HandshakeError::Signal {
            pid,
            signal: entry.suspend_signal,
            source,
        })?;
    let _ = progress.send(format!(
        "sent signal {} to pid {pid}; waiting for its answer",
        entry.suspend_signal
    ));

    let hello = tokio::select! {
        hello = timeout_at(deadline, rx) => match hello {
            Ok(Ok(hello)) => hello,
            Ok(Err(_)) => return Err(HandshakeError::Cancelled { pid }),
            Err(_) => return Err(no_hello(state, pid, &entry, args.timeout, &pidfd)),
        },
        Ok(()) = pidfd.exited() => {
            return Err(HandshakeError::Exited { pid });
        }
    };
    let mut stream = hello.stream;
    if hello.message.token != token {
        return Err(HandshakeError::WrongToken { pid });
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
    write_message(&mut stream, &request)
        .await
        .map_err(|source| HandshakeError::Request { pid, source })?;

    let mut held = false;
    let ready = loop {
        let answer = match timeout_at(deadline, read_message(&mut stream)).await {
            Err(_) if held => {
                return Err(HandshakeError::StillInside {
                    pid,
                    timeout: args.timeout,
                });
            }
            Err(_) => {
                return Err(HandshakeError::Undecided {
                    pid,
                    timeout: args.timeout,
                });
            }
            Ok(Err(source)) => return Err(HandshakeError::Answer { pid, source }),
            Ok(Ok(None)) => return Err(HandshakeError::Closed { pid }),
            Ok(Ok(Some(answer))) => answer,
        };
        if answer.kind != MSG_ANSWER || answer.request_id != request_id {
            return Err(HandshakeError::UnexpectedMessage {
                pid,
                kind: answer.kind,
            });
        }
        match answer.code {
            DECISION_READY => break answer,
            DECISION_BUSY if answer.flags == DETAIL_CRITICAL_SECTION => {
                return Err(HandshakeError::InCriticalSection { pid });
            }
            DECISION_BUSY => return Err(HandshakeError::Busy { pid }),
            DECISION_REFUSE => return Err(HandshakeError::Refused { pid }),
            DECISION_HELD => {
                held = true;
                let _ = progress.send(format!(
                    "pid {pid} is inside a critical section; waiting for it to end"
                ));
            }
            other => return Err(HandshakeError::UnknownDecision { pid, code: other }),
        }
    };
    let _ = progress.send(format!("pid {pid} is ready"));
    if args.dry_run {
        // Nothing is frozen or written; let the process go.
        let told = tell(&mut stream, request_id, REASON_CONTINUED).await;
        return Ok(Done {
            message: format!("pid {pid} was ready; dry run: let go, {told}"),
        });
    }
    Ok(super::suspend::take(
        state,
        &args,
        &mut stream,
        request_id,
        ready.fd,
        pidfd,
        progress,
    )
    .await?)
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

/// Why the client never connected: whether it is gone, and what eBPF saw
/// of the signal.
fn no_hello(
    state: &State,
    pid: u32,
    before: &Registration,
    timeout: Duration,
    pidfd: &PidFd,
) -> HandshakeError {
    if !pidfd.is_alive() {
        return HandshakeError::Exited { pid };
    }
    let after = state.registry(|r| r.get(pid)).ok().flatten();
    let why = match after {
        Some(after) if after.suspend_delivered > before.suspend_delivered => {
            Unanswered::NotConnected
        }
        Some(_) => Unanswered::NotDelivered,
        None => Unanswered::Unregistered,
    };
    HandshakeError::NoAnswer { pid, timeout, why }
}

/// A timeout, as the messages say it ("5s", "1m 30s").
fn within(d: &Duration) -> humantime::FormattedDuration {
    humantime::format_duration(*d)
}

#[cfg(test)]
mod tests {
    use suspend_common::wire::{REASON_ABORTED, REASON_CONTINUED};

    use super::*;
    use crate::daemon::suspend::TakeError;

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

    fn esrch() -> io::Error {
        io::Error::from_raw_os_error(libc::ESRCH)
    }

    /// Every variant, its outcome and its message, as the CLI prints it.
    fn every_error() -> Vec<(HandshakeError, Outcome, &'static str)> {
        use HandshakeError as E;
        let pid = 7;
        let timeout = Duration::from_secs(5);
        let not_opted_in = |why| E::NotOptedIn { pid, why };
        vec![
            (
                not_opted_in(Unaskable::NotRegistered),
                Outcome::NotOptedIn,
                "pid 7 cannot be asked to suspend: it has not opted in (not in the registry); \
                 nothing was sent",
            ),
            (
                not_opted_in(Unaskable::PidReused),
                Outcome::NotOptedIn,
                "pid 7 cannot be asked to suspend: the registered process is gone and its pid was \
                 reused; nothing was sent",
            ),
            (
                not_opted_in(Unaskable::HandlerReplaced {
                    which: "suspend",
                    signal: 34,
                    handler: "reset to the default action (SIG_DFL)".into(),
                }),
                Outcome::NotOptedIn,
                "pid 7 cannot be asked to suspend: the handler of its suspend signal 34 was reset \
                 to the default action (SIG_DFL); nothing was sent",
            ),
            (
                not_opted_in(Unaskable::HandlerChanged),
                Outcome::NotOptedIn,
                "pid 7 cannot be asked to suspend: its suspend or resume handler was reset or \
                 replaced; nothing was sent",
            ),
            (
                not_opted_in(Unaskable::NoHandler { signal: 34 }),
                Outcome::NotOptedIn,
                "pid 7 cannot be asked to suspend: no handler is installed for signal 34; nothing \
                 was sent",
            ),
            (
                not_opted_in(Unaskable::Unregistered(RegisterError::Inactive { pid })),
                Outcome::NotOptedIn,
                "pid 7 cannot be asked to suspend: its registration is gone (pid 7: the client \
                 unregistered); nothing was sent",
            ),
            (
                E::Registry(RegistryError::Entry {
                    pid,
                    source: aya::maps::MapError::KeyNotFound,
                }),
                Outcome::Error,
                "registry: pid 7: key not found",
            ),
            (E::Gone { pid }, Outcome::Error, "pid 7: no such process"),
            (
                E::Proc(ProcError::Parse {
                    path: "/proc/7/status".into(),
                    what: "Tgid/Uid/SigCgt",
                }),
                Outcome::Error,
                "/proc/7/status: cannot parse Tgid/Uid/SigCgt",
            ),
            (
                E::AlreadySuspending { pid },
                Outcome::Error,
                "pid 7 is already being suspended",
            ),
            (
                E::UnknownState { pid, state: 9 },
                Outcome::Error,
                "pid 7: unknown registry state 9",
            ),
            (
                E::Refilling { pid },
                Outcome::Unsupported,
                "pid 7 is still getting its memory back from its last resume (`suspend-agent \
                 list` shows it until done); it was not asked",
            ),
            (
                E::NoImageDir { pid },
                Outcome::Error,
                "pid 7: no image directory given (nothing was sent)",
            ),
            (
                E::PidFd {
                    pid,
                    source: crate::sys::SyscallError::of("pidfd_open")(esrch()),
                },
                Outcome::Error,
                "pid 7: pidfd_open: No such process (os error 3)",
            ),
            (
                E::RegistrationChanged { pid },
                Outcome::Error,
                "pid 7: its registration changed while checking it",
            ),
            (
                E::Signal {
                    pid,
                    signal: 34,
                    source: crate::sys::SyscallError::of("pidfd_send_signal")(esrch()),
                },
                Outcome::Error,
                "pid 7: signal 34: pidfd_send_signal: No such process (os error 3)",
            ),
            (
                E::Cancelled { pid },
                Outcome::Error,
                "pid 7: handshake cancelled",
            ),
            (
                E::Exited { pid },
                Outcome::Error,
                "pid 7 exited during the handshake",
            ),
            (
                E::NoAnswer {
                    pid,
                    timeout,
                    why: Unanswered::NotConnected,
                },
                Outcome::Timeout,
                "pid 7 did not answer within 5s: its handler ran but the client did not connect \
                 back",
            ),
            (
                E::NoAnswer {
                    pid,
                    timeout: Duration::from_millis(90_500),
                    why: Unanswered::NotDelivered,
                },
                Outcome::Timeout,
                "pid 7 did not answer within 1m 30s 500ms: the signal was not delivered (blocked \
                 in every thread?)",
            ),
            (
                E::NoAnswer {
                    pid,
                    timeout,
                    why: Unanswered::Unregistered,
                },
                Outcome::Timeout,
                "pid 7 did not answer within 5s: its registration disappeared",
            ),
            (
                E::WrongToken { pid },
                Outcome::Error,
                "pid 7: answered with the wrong token",
            ),
            (
                E::Request {
                    pid,
                    source: io::Error::from(io::ErrorKind::BrokenPipe),
                },
                Outcome::Error,
                "pid 7: sending the request: broken pipe",
            ),
            (
                E::Undecided { pid, timeout },
                Outcome::Timeout,
                "pid 7 did not decide within 5s (on_suspend still running?)",
            ),
            (
                E::StillInside { pid, timeout },
                Outcome::Timeout,
                "pid 7 was still inside a critical section after 5s",
            ),
            (
                E::Answer {
                    pid,
                    source: io::Error::from(io::ErrorKind::UnexpectedEof),
                },
                Outcome::Error,
                "pid 7: reading its answer: unexpected end of file",
            ),
            (
                E::Closed { pid },
                Outcome::Error,
                "pid 7 closed the connection without answering",
            ),
            (
                E::UnexpectedMessage { pid, kind: 9 },
                Outcome::Error,
                "pid 7: unexpected message kind 9",
            ),
            (
                E::InCriticalSection { pid },
                Outcome::Busy,
                "pid 7 is busy: inside a critical section (--wait waits for it to end)",
            ),
            (
                E::Busy { pid },
                Outcome::Busy,
                "pid 7 is busy: on_suspend said not now",
            ),
            (
                E::Refused { pid },
                Outcome::Refused,
                "pid 7 refused to be suspended",
            ),
            (
                E::UnknownDecision { pid, code: 9 },
                Outcome::Error,
                "pid 7: unknown decision 9",
            ),
            (
                E::Aborted(Aborted {
                    error: Box::new(TakeError::Files {
                        pid,
                        files: vec!["fd 3 (socket)".into()],
                    }),
                    told: OnResume {
                        reason: "aborted",
                        ran: true,
                    },
                }),
                Outcome::Unsupported,
                "pid 7 holds files a resume could not give back: fd 3 (socket); nothing was \
                 frozen (--hold keeps them; --drop-unsupported-fds leaves them out); \
                 on_resume(aborted) ran",
            ),
        ]
    }

    #[test]
    fn every_error_knows_its_outcome_and_says_it_as_before() {
        for (error, outcome, message) in every_error() {
            assert_eq!(error.outcome(), outcome, "{error}");
            assert_eq!(error.to_string(), message);
        }
    }
}
