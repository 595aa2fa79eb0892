//! The control protocol between the CLI and the daemon, on the root-only
//! [`CONTROL_SOCKET`]: one JSON request line, then JSON event lines, the last
//! of which is a `result`.

use std::{
    io::{self, BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use suspend_common::paths::CONTROL_SOCKET;

use crate::exit;

/// A request from the CLI.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Ask `pid` to suspend.
    Suspend {
        pid: u32,
        /// How long the whole handshake may take.
        timeout_ms: u64,
        /// Wait for critical sections to end instead of reporting `busy`.
        wait: bool,
        /// Run the handshake to `ready`, then let the process go.
        dry_run: bool,
        /// Write the image to this (absolute) directory.
        #[serde(default)]
        dir: Option<std::path::PathBuf>,
        /// Let the process go after the image is written instead of killing it.
        #[serde(default)]
        leave_running: bool,
        /// Leave out fds that cannot be restored instead of refusing.
        #[serde(default)]
        drop_unsupported_fds: bool,
        /// Hold the process (park it, release its memory) instead of
        /// killing it.
        #[serde(default)]
        hold: bool,
        /// Accept that a resume from the image puts the process in the
        /// resume command's session and process group.
        #[serde(default)]
        new_session: bool,
        /// How many bytes of deleted files' contents the image may carry
        /// (`None`: the default).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unlinked_max: Option<u64>,
        /// Store the pages raw rather than compressed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        no_compress: bool,
        /// With `leave_running`: copy everything in one freeze, not while
        /// it runs first.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        no_precopy: bool,
        /// With `hold`: refuse, before anything is frozen, what an image
        /// cannot hold, as without it (the image is to resume elsewhere:
        /// `suspend --to`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        portable: bool,
        /// Regular files it has open whose bytes the image carries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        carry: Vec<std::path::PathBuf>,
    },
    /// Is the daemon there?
    Ping,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Did what was asked.
    Done,
    /// The process did not opt in (or cannot be asked): nothing was sent.
    NotOptedIn,
    /// The process said "not now".
    Busy,
    /// The process refused.
    Refused,
    /// No answer in time.
    Timeout,
    /// The process holds something an image cannot hold (named in the
    /// message): refused before anything was frozen.
    Unsupported,
    /// Anything else went wrong.
    Error,
}

impl Outcome {
    /// The CLI's exit code for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Done => exit::OK,
            Self::NotOptedIn => exit::NOT_OPTED_IN,
            Self::Busy => exit::BUSY,
            Self::Refused => exit::REFUSED,
            Self::Timeout => exit::TIMEOUT,
            Self::Unsupported => exit::UNSUPPORTED,
            Self::Error => exit::ERROR,
        }
    }
}

/// What the daemon sends back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Something happened; more follows.
    Progress { message: String },
    /// The end.
    Result { outcome: Outcome, message: String },
}

/// How a request ended, as the daemon said it (the daemon's typed error
/// does not cross the socket: its outcome and its message do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub outcome: Outcome,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "no agent daemon at {CONTROL_SOCKET}: {0} (start it with `suspend-agent daemon`, \
         or `systemctl start suspend-agent`)"
    )]
    NoDaemon(#[source] io::Error),
    #[error("talking to the agent daemon: {0}")]
    Io(#[from] io::Error),
    #[error("the agent daemon sent something unreadable: {0}")]
    Protocol(#[from] serde_json::Error),
    #[error("the agent daemon closed the connection without a result")]
    NoResult,
}

/// Sends `request` and calls `on_progress` for each progress message;
/// returns the result.
pub fn call(
    request: &Request,
    read_timeout: Duration,
    mut on_progress: impl FnMut(&str),
) -> Result<Reply, ControlError> {
    let mut stream = UnixStream::connect(CONTROL_SOCKET).map_err(ControlError::NoDaemon)?;
    stream.set_read_timeout(Some(read_timeout))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    for line in BufReader::new(stream).lines() {
        match serde_json::from_str(&line?)? {
            Event::Progress { message } => on_progress(&message),
            Event::Result { outcome, message } => return Ok(Reply { outcome, message }),
        }
    }
    Err(ControlError::NoResult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_stable() {
        let req = Request::Suspend {
            pid: 7,
            timeout_ms: 5000,
            wait: true,
            dry_run: false,
            dir: Some("/img".into()),
            leave_running: true,
            drop_unsupported_fds: false,
            hold: false,
            new_session: true,
            unlinked_max: None,
            no_compress: false,
            no_precopy: false,
            portable: false,
            carry: Vec::new(),
        };
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(
            text,
            r#"{"op":"suspend","pid":7,"timeout_ms":5000,"wait":true,"dry_run":false,"dir":"/img","leave_running":true,"drop_unsupported_fds":false,"hold":false,"new_session":true}"#
        );
        // Older CLIs send no image fields.
        let old = r#"{"op":"suspend","pid":7,"timeout_ms":1,"wait":false,"dry_run":true}"#;
        assert!(matches!(
            serde_json::from_str::<Request>(old).unwrap(),
            Request::Suspend { dir: None, .. }
        ));
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), req);
        let ev = Event::Result {
            outcome: Outcome::NotOptedIn,
            message: "x".into(),
        };
        assert_eq!(
            serde_json::to_string(&ev).unwrap(),
            r#"{"event":"result","outcome":"not_opted_in","message":"x"}"#
        );
    }

    #[test]
    fn exit_codes_are_distinct() {
        let all = [
            Outcome::Done,
            Outcome::NotOptedIn,
            Outcome::Busy,
            Outcome::Refused,
            Outcome::Timeout,
            Outcome::Unsupported,
            Outcome::Error,
        ];
        let mut codes: Vec<u8> = all.iter().map(|o| o.exit_code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert!(!codes.contains(&exit::USAGE));
        assert!(!codes.contains(&exit::NO_DAEMON));
    }
}
