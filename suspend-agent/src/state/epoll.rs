//! Epoll instances: what each watches (an async runtime such as tokio
//! needs both), by fd number, with its events and data.
//!
//! Saved: the `tfd:` lines of the fdinfo ([`parse`]). Refused by name: a
//! target registered under a number that is closed now, or another file's
//! ([`refusal`]): a resume registers each by its number.
//!
//! Restored: planned with what it watched of what is made again
//! ([`plan`]); made by the restore child after the files it watches
//! ([`make`]), and what it watches added once every fd exists ([`add`]).

use std::os::fd::RawFd;

use crate::{
    image::format::{EpollTarget, File},
    sys::raw,
};

/// What an epoll instance links to.
pub const LINK: &str = "anon_inode:[eventpoll]";

/// The `tfd: N events: HEX data: HEX …` lines of an epoll's fdinfo.
pub fn parse(text: &str) -> Option<Vec<EpollTarget>> {
    let mut targets = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("tfd:")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let value = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1))
                .copied()
        };
        targets.push(EpollTarget {
            fd: value("tfd:")?.parse().ok()?,
            events: u32::from_str_radix(value("events:")?, 16).ok()?,
            data: u64::from_str_radix(value("data:")?, 16).ok()?,
        });
    }
    Some(targets)
}

/// Why epoll instance `f` of `pid` cannot come back, if it cannot: epoll
/// targets are registered by fd number, and one whose number is closed
/// now, or another file's, would be given back wrong.
pub fn refusal(pid: u32, f: &File) -> Option<String> {
    if f.fd <= 2 {
        return None;
    }
    let targets = f.epoll.as_ref()?;
    let t = targets
        .iter()
        .find(|t| t.fd > 2 && !crate::sys::epoll_target_is(pid, f.fd, t.fd).unwrap_or(false))?;
    Some(format!(
        "fd {} ({}, watches a file it registered as fd {}, which is closed or another \
         file now: a resume would register the wrong one)",
        f.fd, f.path, t.fd
    ))
}

// Restore: planned, made by the restore child, then given its targets.

/// What is made at an epoll instance's fd.
#[derive(Debug, PartialEq, Eq)]
pub struct Made {
    /// `epoll_create1` flags.
    pub flags: i32,
    /// `(fd, events, data)` it watches.
    pub targets: Vec<(RawFd, u32, u64)>,
}

/// Epoll instance `f` of `files`, watching again what it watched of what
/// is made again (stdio and the image's fds).
pub fn plan(files: &[File], f: &File, targets: &[EpollTarget]) -> Made {
    let reopened = |fd: RawFd| fd <= 2 || files.iter().any(|g| g.fd == fd);
    let mut kept = Vec::new();
    for t in targets {
        if reopened(t.fd) {
            kept.push((t.fd, t.events, t.data));
        } else {
            log::warn!(
                "epoll fd {} watched fd {}, which is not restored; it no longer does",
                f.fd,
                t.fd
            );
        }
    }
    Made {
        flags: f.flags as i32 & libc::O_CLOEXEC,
        targets: kept,
    }
}

/// Makes an epoll instance with `flags`, watching nothing yet. Returns the
/// new fd, or -1 (its errno left for the child's report). Runs in the
/// restore child: no allocation.
pub fn make(flags: i32) -> RawFd {
    raw::epoll_create(flags)
}

/// Adds `targets` (`(fd, events, data)`) to epoll instance `epfd`, once
/// every fd exists (an epoll may watch another, or a copy of one). Returns
/// the target whose adding failed, right after the call (its errno left
/// for the child's report). Runs in the restore child: no allocation.
pub fn add(epfd: RawFd, targets: &[(RawFd, u32, u64)]) -> Result<(), RawFd> {
    for &(target, events, data) in targets {
        if raw::epoll_add(epfd, target, events, data) < 0 {
            return Err(target);
        }
    }
    Ok(())
}

impl super::MakeFd for Made {
    unsafe fn make(&self, fd: RawFd, _scratch: RawFd) -> Result<(), super::Unmade> {
        // SAFETY: in the restore child (the caller's promise).
        unsafe { super::place(make(self.flags), fd, self.flags) }
    }

    fn once_all_made(&self, fd: RawFd) -> Result<(), super::Unmade> {
        add(fd, &self.targets).map_err(super::Unmade::Watch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::fixtures::file;

    #[test]
    fn epoll_fdinfo() {
        let text = "pos:\t0\nflags:\t02000002\ntfd:        5 events:       19 data:     7f0700000005  pos:0 ino:52968 sdev:f\ntfd:        3 events: 80000019 data:                3  pos:0 ino:1a sdev:10\n";
        let targets = parse(text).unwrap();
        assert_eq!(
            targets,
            [
                EpollTarget {
                    fd: 5,
                    events: 0x19,
                    data: 0x7f07_0000_0005
                },
                EpollTarget {
                    fd: 3,
                    events: 0x8000_0019,
                    data: 3
                }
            ]
        );
    }

    #[test]
    fn an_epoll_forgets_what_is_not_made_again() {
        let target = |fd| EpollTarget {
            fd,
            events: libc::EPOLLIN as u32,
            data: fd as u64,
        };
        let ep = File {
            epoll: Some(vec![target(0), target(4), target(7)]),
            flags: (libc::O_RDWR | libc::O_CLOEXEC) as u32,
            ..file(3)
        };
        let files = [ep.clone(), file(4)];
        assert_eq!(
            plan(&files, &ep, ep.epoll.as_deref().expect("targets")),
            Made {
                flags: libc::O_CLOEXEC,
                targets: vec![(0, libc::EPOLLIN as u32, 0), (4, libc::EPOLLIN as u32, 4)],
            }
        );
    }
}
