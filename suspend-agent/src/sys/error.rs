//! The one error of `sys/`: a call that failed, named, with its errno (as
//! aya's `SyscallError`). A subsystem's error embeds it (`#[from]`), so
//! its message names the call exactly once, and a caller that decides on
//! the errno asks [`SyscallError::raw_os_error`].

use std::io;

/// A call of `sys/` that failed: which (`pidfd_open`, `F_OFD_GETLK`,
/// `UFFDIO_COPY`, …) and the error it gave, an errno but for the rare
/// short transfer or mapping the kernel put elsewhere, which says so in
/// the error's text.
#[derive(Debug, thiserror::Error)]
#[error("{call}: {source}")]
pub struct SyscallError {
    /// The call that failed, as its man page names it (for an `fcntl`,
    /// `ioctl` or `ptrace`, its request).
    pub call: &'static str,
    /// The call's errno, as an `io::Error`.
    #[source]
    pub source: io::Error,
}

/// What a fallible wrapper of `sys/` returns.
pub type Result<T> = std::result::Result<T, SyscallError>;

impl SyscallError {
    /// `call` failed with the errno the thread has now.
    pub fn last(call: &'static str) -> Self {
        Self {
            call,
            source: io::Error::last_os_error(),
        }
    }

    /// Maps an error `call` gave (a `nix` errno, an `io::Error`) to this
    /// error.
    pub fn of<E: Into<io::Error>>(call: &'static str) -> impl FnOnce(E) -> Self {
        move |e| Self {
            call,
            source: e.into(),
        }
    }

    /// The errno, for a caller that decides on it.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// The kind of error the errno is.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

/// The error the call gave, for code that deals in `io::Error`s (`?` in a
/// function that also reads files): its `raw_os_error()` still decides,
/// but the call's name is left behind. An error that reaches a message
/// keeps the `SyscallError` (a subsystem's variant embeds it).
impl From<SyscallError> for io::Error {
    fn from(e: SyscallError) -> Self {
        e.source
    }
}

#[cfg(test)]
mod tests {
    use std::{os::fd::AsFd as _, path::Path};

    use super::*;

    #[test]
    fn it_says_the_call_and_its_error() {
        let e = SyscallError {
            call: "pidfd_open",
            source: io::Error::from_raw_os_error(libc::ESRCH),
        };
        assert_eq!(e.to_string(), "pidfd_open: No such process (os error 3)");
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
        // As an io::Error, the errno still decides.
        assert_eq!(io::Error::from(e).raw_os_error(), Some(libc::ESRCH));
    }

    #[test]
    fn a_failed_wrapper_names_its_call() {
        // No process has a pid above 2^22 (the highest `pid_max`).
        let e = super::super::PidFd::open((1 << 22) + 1).expect_err("no such pid");
        assert_eq!(
            (e.call, e.raw_os_error()),
            ("pidfd_open", Some(libc::ESRCH))
        );
        let missing = Path::new("/nonexistent/suspend-sys-error");
        let e = super::super::fd::open(missing, libc::O_RDONLY, 0).expect_err("missing");
        assert_eq!((e.call, e.raw_os_error()), ("open", Some(libc::ENOENT)));
        let e =
            super::super::creds::open_no_symlinks(missing, libc::O_RDONLY).expect_err("missing");
        assert_eq!((e.call, e.raw_os_error()), ("openat2", Some(libc::ENOENT)));
        // A descriptor that is no pipe's.
        let file = std::fs::File::open("/proc/self/stat").expect("open");
        let e = super::super::pipe::capacity(file.as_fd()).expect_err("not a pipe");
        assert_eq!(
            (e.call, e.raw_os_error()),
            ("F_GETPIPE_SZ", Some(libc::EBADF))
        );
        assert_eq!(
            e.to_string(),
            "F_GETPIPE_SZ: Bad file descriptor (os error 9)"
        );
    }
}
