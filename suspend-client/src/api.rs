//! The public types of the Rust API. `SuspendRequest` and `ResumeInfo` are
//! `repr(C)` and are the very structs the C API passes
//! (`struct suspend_request`, `struct suspend_resume_info`).

use std::{fmt, time::Duration};

use suspend_common::{
    DEFAULT_RESUME_SIGNAL, DEFAULT_SUSPEND_SIGNAL,
    wire::{
        REASON_ABORTED, REASON_CONTINUED, REASON_RESTORED, REQUEST_DRY_RUN, REQUEST_LEAVE_RUNNING,
        REQUEST_WAIT,
    },
};

/// What `on_suspend` answers.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Suspend me now. The callback has tidied up; `on_resume` will run
    /// when it is over, whatever the outcome.
    Ready = 0,
    /// Not now; ask again later. The process carries on untouched.
    Busy = 1,
    /// Do not suspend me. The process carries on untouched.
    Refuse = 2,
}

/// Why `on_resume` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The process was restored from an image.
    Restored,
    /// The process was never stopped (a dry run, or an image written with
    /// the process left running): carry on.
    Continued,
    /// The suspension failed after `Ready`: the process carries on as if
    /// nothing happened; re-acquire what `on_suspend` let go.
    Aborted,
}

impl Reason {
    pub(crate) fn from_code(code: u32) -> Self {
        match code {
            REASON_RESTORED => Self::Restored,
            REASON_CONTINUED => Self::Continued,
            _ => Self::Aborted,
        }
    }

    pub(crate) fn code(self) -> u32 {
        match self {
            Self::Restored => REASON_RESTORED,
            Self::Continued => REASON_CONTINUED,
            Self::Aborted => REASON_ABORTED,
        }
    }
}

/// A suspend request, as `on_suspend` sees it (C: `struct suspend_request`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuspendRequest {
    /// Request id (also in the matching [`ResumeInfo`]).
    pub id: u64,
    /// `SUSPEND_REQUEST_*` flags (C); see the methods.
    pub flags: u32,
    /// How long the requester waits in all, in milliseconds.
    pub timeout_ms: u32,
}

impl SuspendRequest {
    /// The requester waits for critical sections to end.
    pub fn wait(&self) -> bool {
        self.flags & REQUEST_WAIT != 0
    }
    /// A dry run: nothing will be frozen or written; `on_resume` follows
    /// with [`Reason::Continued`].
    pub fn dry_run(&self) -> bool {
        self.flags & REQUEST_DRY_RUN != 0
    }
    /// The process keeps running after its image is written.
    pub fn leave_running(&self) -> bool {
        self.flags & REQUEST_LEAVE_RUNNING != 0
    }
    /// How long the requester waits in all.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.into())
    }
}

/// What `on_resume` is told (C: `struct suspend_resume_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeInfo {
    /// The id of the request that was answered `Ready`.
    pub request_id: u64,
    /// `SUSPEND_RESTORED`, `SUSPEND_CONTINUED` or `SUSPEND_ABORTED`.
    pub reason_code: u32,
    /// Reserved, zero.
    pub _reserved: u32,
}

impl ResumeInfo {
    pub fn reason(&self) -> Reason {
        Reason::from_code(self.reason_code)
    }
}

/// The application's callbacks: plain function pointers.
#[derive(Clone, Copy, Debug)]
pub struct Handlers {
    /// Asked before a suspension. Runs once per request.
    pub on_suspend: fn(&SuspendRequest) -> Decision,
    /// Told after a suspension it agreed to, however it ended.
    pub on_resume: fn(&ResumeInfo),
}

fn always_ready(_: &SuspendRequest) -> Decision {
    Decision::Ready
}

fn nothing_to_do(_: &ResumeInfo) {}

impl Default for Handlers {
    /// Always ready; nothing to do on resume (what the preload shim uses).
    fn default() -> Self {
        Self {
            on_suspend: always_ready,
            on_resume: nothing_to_do,
        }
    }
}

/// Where the callbacks run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Context {
    /// On a helper thread the library starts (BLCR's "thread context"):
    /// callbacks may lock, allocate and do I/O.
    #[default]
    Thread,
    /// Inside the signal handler, on whichever thread took the signal; no
    /// helper thread. Callbacks must be async-signal-safe.
    Signal,
}

/// Registration options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Signal that asks this process to suspend (default 44, `SIGRTMIN+10`).
    pub suspend_signal: i32,
    /// Signal that tells it a restore finished (default 43, `SIGRTMIN+9`).
    pub resume_signal: i32,
    /// Where the callbacks run.
    pub context: Context,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            suspend_signal: DEFAULT_SUSPEND_SIGNAL as i32,
            resume_signal: DEFAULT_RESUME_SIGNAL as i32,
            context: Context::Thread,
        }
    }
}

/// Whether the agent has acknowledged the registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentStatus {
    /// The agent recorded it.
    Acknowledged,
    /// No agent runs now; it picks the registration up when it starts.
    Pending,
}

/// A successful registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registration {
    pub agent: AgentStatus,
}

/// Why registering or unregistering failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// The signals are not two distinct real-time signals in 34..=64.
    InvalidSignals { suspend: i32, resume: i32 },
    /// This process is registered already.
    AlreadyRegistered,
    /// This process is not registered.
    NotRegistered,
    /// The agent refused the registration (`ERROR_*` code of the wire
    /// protocol: 1 ABI version, 2 bad block, 6 agent-side failure).
    Refused { code: u32 },
    /// A system call failed.
    Os { call: &'static str, errno: i32 },
}

impl Error {
    /// The negative errno-style code the C API returns for this error.
    pub fn code(&self) -> i32 {
        match self {
            Self::InvalidSignals { .. } => -libc::EINVAL,
            Self::AlreadyRegistered => -libc::EALREADY,
            Self::NotRegistered => -libc::ENOENT,
            Self::Refused { .. } => -libc::EPROTO,
            Self::Os { errno, .. } => -errno,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSignals { suspend, resume } => write!(
                f,
                "signals {suspend}/{resume} are not two distinct real-time signals in 34..=64"
            ),
            Self::AlreadyRegistered => f.write_str("this process is registered already"),
            Self::NotRegistered => f.write_str("this process is not registered"),
            Self::Refused { code } => write!(
                f,
                "the suspend agent refused the registration (code {code})"
            ),
            Self::Os { call, errno } => {
                write!(f, "{call}: {}", std::io::Error::from_raw_os_error(*errno))
            }
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_goes_by_its_wire_code_and_an_unknown_one_is_aborted() {
        for reason in [Reason::Restored, Reason::Continued, Reason::Aborted] {
            assert_eq!(Reason::from_code(reason.code()), reason);
            let info = ResumeInfo {
                request_id: 1,
                reason_code: reason.code(),
                _reserved: 0,
            };
            assert_eq!(info.reason(), reason);
        }
        let codes = [Reason::Restored, Reason::Continued, Reason::Aborted].map(Reason::code);
        assert!(codes[0] != codes[1] && codes[1] != codes[2] && codes[0] != codes[2]);
        // An agent newer than this library: carry on as after a failure.
        assert_eq!(Reason::from_code(99), Reason::Aborted);
    }

    #[test]
    fn a_request_reads_each_of_its_flags_alone() {
        let request = |flags| SuspendRequest {
            id: 1,
            flags,
            timeout_ms: 2_500,
        };
        let none = request(0);
        assert!(!none.wait() && !none.dry_run() && !none.leave_running());
        assert!(request(REQUEST_WAIT).wait());
        assert!(!request(REQUEST_WAIT).dry_run() && !request(REQUEST_WAIT).leave_running());
        assert!(request(REQUEST_DRY_RUN).dry_run());
        assert!(!request(REQUEST_DRY_RUN).wait() && !request(REQUEST_DRY_RUN).leave_running());
        assert!(request(REQUEST_LEAVE_RUNNING).leave_running());
        assert!(!request(REQUEST_LEAVE_RUNNING).wait());
        let all = request(REQUEST_WAIT | REQUEST_DRY_RUN | REQUEST_LEAVE_RUNNING);
        assert!(all.wait() && all.dry_run() && all.leave_running());
        assert_eq!(none.timeout(), Duration::from_millis(2_500));
    }

    #[test]
    fn every_error_has_its_own_c_code_and_says_what_failed() {
        let errors = [
            (
                Error::InvalidSignals {
                    suspend: 44,
                    resume: 44,
                },
                -libc::EINVAL,
                "signals 44/44 are not two distinct real-time signals in 34..=64",
            ),
            (
                Error::AlreadyRegistered,
                -libc::EALREADY,
                "this process is registered already",
            ),
            (
                Error::NotRegistered,
                -libc::ENOENT,
                "this process is not registered",
            ),
            (
                Error::Refused { code: 2 },
                -libc::EPROTO,
                "the suspend agent refused the registration (code 2)",
            ),
            (
                Error::Os {
                    call: "sigaction",
                    errno: libc::EINVAL,
                },
                -libc::EINVAL,
                "sigaction: Invalid argument (os error 22)",
            ),
            (
                Error::Os {
                    call: "memfd_create",
                    errno: libc::EMFILE,
                },
                -libc::EMFILE,
                "memfd_create: Too many open files (os error 24)",
            ),
        ];
        for (error, code, message) in errors {
            assert_eq!(error.code(), code, "{error}");
            assert!(code < 0);
            assert_eq!(error.to_string(), message);
        }
    }
}
