//! eventfds: their counter and whether it counts as a semaphore.
//!
//! Saved: `eventfd-count:` and `eventfd-semaphore:` of the fdinfo
//! ([`parse`]); where the fdinfo does not say the mode (before Linux 6.4),
//! it is found by trying a copy of the eventfd while the process is frozen
//! ([`probe_semaphores`]).
//!
//! Restored: made again by the restore child with its mode, its count
//! written back ([`make`]; the flags from [`create_flags`]).

use std::{
    fs,
    os::fd::{AsFd as _, RawFd},
};

use super::CREATE_FLAGS;
use crate::{
    image::format::{EventFd, File},
    sys::{PidFd, SyscallError, raw},
};

/// What an eventfd links to.
pub const LINK: &str = "anon_inode:[eventfd]";

/// `eventfd-count:` (hex) and `eventfd-semaphore:` of an eventfd's fdinfo.
pub fn parse(text: &str) -> Option<EventFd> {
    let mut count = None;
    let mut semaphore = false;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("eventfd-count:") {
            count = u64::from_str_radix(v.trim(), 16).ok();
        } else if let Some(v) = line.strip_prefix("eventfd-semaphore:") {
            semaphore = v.trim() == "1";
        }
    }
    Some(EventFd {
        count: count?,
        semaphore,
    })
}

/// Why [`probe_semaphores`] could not tell.
#[derive(Debug)]
pub enum ProbeError {
    /// An eventfd's fdinfo could not be read.
    Fdinfo {
        path: String,
        source: std::io::Error,
    },
    /// A call on the process or on a copy of its eventfd failed.
    Call(SyscallError),
}

/// Finds whether each eventfd counts as a semaphore where its fdinfo does
/// not say (before Linux 6.4, the mode is nowhere to be read): through a
/// copy of it, while the process is frozen, raises its count to at least
/// 2, reads once (a semaphore gives 1, a plain counter all of it) and puts
/// the count back as it was.
pub fn probe_semaphores(pid: u32, files: &mut [File]) -> Result<(), ProbeError> {
    let err = ProbeError::Call;
    let mut pidfd = None;
    for f in files.iter_mut() {
        let Some(e) = &mut f.eventfd else { continue };
        let path = format!("/proc/{pid}/fdinfo/{}", f.fd);
        let info =
            fs::read_to_string(&path).map_err(|source| ProbeError::Fdinfo { path, source })?;
        if info.contains("eventfd-semaphore:") {
            continue;
        }
        if pidfd.is_none() {
            pidfd = Some(PidFd::open(pid).map_err(err)?);
        }
        let copy = pidfd
            .as_ref()
            .expect("opened above")
            .get_fd(f.fd)
            .map_err(err)?;
        let copy = copy.as_fd();
        let count = e.count;
        let probe = || -> crate::sys::Result<bool> {
            if count < 2 {
                crate::sys::eventfd_write(copy, 2 - count)?;
            }
            let got = crate::sys::eventfd_read(copy)?;
            let semaphore = got == 1;
            let now = count.max(2) - got;
            if now > count {
                for _ in count..now {
                    crate::sys::eventfd_read(copy)?; // a semaphore: 1 each
                }
            } else if now < count {
                crate::sys::eventfd_write(copy, count - now)?;
            }
            Ok(semaphore)
        };
        e.semaphore = probe().map_err(err)?;
    }
    Ok(())
}

// Restore: made again by the restore child.

/// The flags to make `e` with, from its status flags `flags`: those a new
/// one takes ([`CREATE_FLAGS`]), and its semaphore mode.
fn create_flags(e: &EventFd, flags: i32) -> i32 {
    (flags & CREATE_FLAGS) | if e.semaphore { libc::EFD_SEMAPHORE } else { 0 }
}

/// Makes an eventfd with `flags` and `count` in it. Returns the new fd,
/// or -1 right after the call that failed (its errno left for the child's
/// report). Runs in the restore child: no allocation.
pub fn make(count: u64, flags: i32) -> RawFd {
    let fd = raw::eventfd(0, flags);
    if fd >= 0 && count != 0 && raw::write_value(fd, &count) != 8 {
        return -1;
    }
    fd
}

/// An eventfd as the restore child makes it again ([`make`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Made {
    pub count: u64,
    pub flags: i32,
}

/// Eventfd `e`, with status flags `flags`, made again with its count and
/// mode.
pub fn plan(e: &EventFd, flags: i32) -> Made {
    Made {
        count: e.count,
        flags: create_flags(e, flags),
    }
}

impl super::MakeFd for Made {
    unsafe fn make(&self, fd: RawFd, _scratch: RawFd) -> Result<(), super::Unmade> {
        // SAFETY: in the restore child (the caller's promise).
        unsafe { super::place(make(self.count, self.flags), fd, self.flags) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fdinfo_gives_the_count_and_the_mode() {
        let text = "pos:\t0\nflags:\t02004002\neventfd-count:                3\neventfd-id: 1\neventfd-semaphore: 1\n";
        assert_eq!(
            parse(text),
            Some(EventFd {
                count: 3,
                semaphore: true
            })
        );
    }

    #[test]
    fn a_semaphore_is_made_with_efd_semaphore() {
        let e = EventFd {
            count: 3,
            semaphore: true,
        };
        assert_eq!(
            create_flags(&e, libc::O_RDWR | libc::O_CLOEXEC),
            libc::O_CLOEXEC | libc::EFD_SEMAPHORE
        );
        let plain = EventFd {
            semaphore: false,
            ..e
        };
        assert_eq!(create_flags(&plain, libc::O_RDWR), 0);
    }
}
