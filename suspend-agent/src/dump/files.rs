//! Open files: what each fd is, and whether it can be restored. Regular
//! files, directories and devices can; so can stdio, whatever it is (a
//! resume attaches the resume command's own), eventfds (their counter),
//! epoll instances (what they watch: an async runtime such as tokio needs
//! both), signalfds, timerfds and pipes whose every end the process holds
//! (a self-pipe: with what is buffered in it, read without consuming it),
//! inotify instances with no event queued, a unix socket whose peer is
//! gone, and deleted files' contents (up to a cap). Other sockets, pipes
//! shared with another process and the like cannot (yet): a suspend
//! refuses them by name, before anything is frozen, unless asked to drop
//! them (a held process keeps them). Regular files (what an fd is, a
//! file's identity), file locks, signal owners, terminals, inotify,
//! sockets, epoll instances and unlinked files are kinds of `state/`, each
//! with its module; files shared with other processes have a module below.

mod sharing;

pub use crate::state::unlinked::over_cap as unlinked_over_cap;

use std::{collections::BTreeSet, fs};

use self::sharing::shared_with_others;
use super::DumpError;
use crate::{
    image::format::{File, FileKind},
    procfs::file_id,
    state::{
        epoll, eventfd, files, inotify,
        locks::{self, parse_fd_locks},
        owners, pipes, signalfd, sockets, terminals, timerfd, unlinked,
    },
    sys::PidFd,
};

/// Reads the bytes of every deleted file of `files` ([`unlinked::read`]),
/// its failure named as the dump's.
pub fn read_unlinked(pid: u32, files: &mut [File], cap: u64) -> Result<(), DumpError> {
    unlinked::read(pid, files, cap).map_err(|e| match e {
        unlinked::ReadError::Refused(fds) => DumpError::Unsupported { pid, fds },
        unlinked::ReadError::Syscall(source) => DumpError::Syscall {
            pid,
            tid: pid,
            source,
        },
        unlinked::ReadError::Proc { path, source } => DumpError::Proc {
            pid,
            path: path.into(),
            source,
        },
    })
}

/// `pos:` and `flags:` (octal) of `/proc/PID/fdinfo/N`.
pub fn parse_fdinfo(text: &str) -> Option<(u64, u32)> {
    let mut pos = None;
    let mut flags = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("pos:") {
            pos = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("flags:") {
            flags = u32::from_str_radix(v.trim(), 8).ok();
        }
    }
    Some((pos?, flags?))
}

impl File {
    /// Whether a resume can give this fd back, on its own (a pipe end also
    /// needs its other end: see [`unrestorable`]).
    pub fn restorable(&self) -> bool {
        let stdio = (0..=2).contains(&self.fd);
        let deleted = self.path.ends_with(" (deleted)");
        stdio
            || self.made_again()
            || matches!(self.kind, FileKind::Directory | FileKind::CharDevice)
            || (self.kind == FileKind::Regular && (!deleted || self.unlinked.is_some()))
    }
}

/// Every open fd of `pid` but `skip` (the client's connection to us).
pub fn list(pid: u32, skip: Option<i32>) -> Result<Vec<File>, DumpError> {
    let dir = format!("/proc/{pid}/fd");
    let proc_err = |path: String| {
        move |source| DumpError::Proc {
            pid,
            path: path.into(),
            source,
        }
    };
    let mut files = Vec::new();
    // Copies of its files, to ask each who its signal owner is.
    let pidfd = PidFd::open(pid).map_err(|source| DumpError::Syscall {
        pid,
        tid: pid,
        source,
    })?;
    for entry in fs::read_dir(&dir).map_err(proc_err(dir.clone()))? {
        let entry = entry.map_err(proc_err(dir.clone()))?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if Some(fd) == skip {
            continue;
        }
        let target = entry.path();
        let Ok(link) = fs::read_link(&target) else {
            continue;
        }; // closed meanwhile
        let link = link.to_string_lossy().into_owned();
        let info_path = format!("/proc/{pid}/fdinfo/{fd}");
        // A copy of the open file, to ask it what fdinfo does not say (not
        // of a socket: receiving one re-tags it with our cgroup's classid).
        let copy = if link.starts_with("socket:") {
            None
        } else {
            match pidfd.get_fd(fd) {
                Ok(copy) => Some(copy),
                Err(e) if e.raw_os_error() == Some(libc::EBADF) => continue, // closed meanwhile
                Err(source) => {
                    return Err(DumpError::Proc {
                        pid,
                        path: format!("/proc/{pid}/fd/{fd} (pidfd_getfd)").into(),
                        source: source.into(),
                    });
                }
            }
        };
        // A timerfd's fdinfo counts the expirations it missed only once
        // something asks it (as its next read would).
        if link == timerfd::LINK
            && let Some(copy) = &copy
        {
            use std::os::fd::AsFd as _;
            timerfd::refresh(copy.as_fd());
        }
        let Ok(info) = fs::read_to_string(&info_path) else {
            continue;
        };
        let (pos, flags) = parse_fdinfo(&info).ok_or(DumpError::Parse {
            pid,
            what: "/proc/PID/fdinfo",
        })?;
        let kind = files::kind(&link, &target);
        let id = matches!(
            kind,
            FileKind::Regular | FileKind::Directory | FileKind::CharDevice
        )
        .then(|| file_id(&target, &link))
        .flatten();
        let unlinked = link
            .ends_with(" (deleted)")
            .then(|| {
                use std::os::unix::fs::MetadataExt as _;
                let stat = fs::metadata(&target).map_or((0, 1), |m| (m.mode(), m.nlink()));
                unlinked::describe(fd, kind, &link, id.as_ref(), stat)
            })
            .flatten();
        let eventfd = (link == eventfd::LINK)
            .then(|| eventfd::parse(&info))
            .flatten();
        let epoll = (link == epoll::LINK).then(|| epoll::parse(&info)).flatten();
        let signalfd = (link == signalfd::LINK)
            .then(|| signalfd::parse(&info))
            .flatten();
        let timerfd = (link == timerfd::LINK)
            .then(|| timerfd::parse(&info, crate::sys::clock_ns))
            .flatten();
        let inotify = (link == inotify::LINK)
            .then(|| inotify::watches(&info))
            .flatten();
        let pipe = (fd > 2).then(|| pipes::end(&link, flags)).flatten();
        let orphan_socket = (kind == FileKind::Socket && fd > 2)
            .then(|| sockets::orphan(&link))
            .flatten();
        let owner = owners::read(copy, flags).map_err(|source| DumpError::Proc {
            pid,
            path: info_path.clone().into(),
            source: source.into(),
        })?;
        files.push(File {
            fd,
            kind,
            path: link,
            flags,
            pos,
            id,
            eventfd,
            epoll,
            pipe,
            owner,
            dup_of: None,
            locks: parse_fd_locks(&info).0,
            signalfd,
            timerfd,
            inotify,
            unlinked,
            orphan_socket,
            carried: None,
        });
    }
    files.sort_by_key(|f| f.fd);
    sharing::mark_dups(pid, &mut files);
    unlinked::mark_same(&mut files);
    Ok(files)
}

/// Adds to `bad` every fd that stands on one in it: a `dup` of it,
/// another open of a deleted file it carries the bytes of (`same_as`), and
/// every other end of a pipe it is an end of (a resume makes a pipe whole
/// or not at all). Left in the image without it, a resume would lose or
/// refuse them.
pub fn with_dependents(files: &[File], bad: &mut Vec<(i32, String)>) {
    loop {
        let dropped: BTreeSet<i32> = bad.iter().map(|(fd, _)| *fd).collect();
        let pipes: BTreeSet<u64> = files
            .iter()
            .filter(|f| dropped.contains(&f.fd))
            .filter_map(|f| f.pipe.as_ref().map(|p| p.id))
            .collect();
        let more: Vec<(i32, String)> = files
            .iter()
            .filter(|f| !dropped.contains(&f.fd))
            .filter_map(|f| {
                if f.pipe.as_ref().is_some_and(|p| pipes.contains(&p.id)) {
                    return Some((
                        f.fd,
                        format!("fd {} ({}, an end of a pipe left out)", f.fd, f.path),
                    ));
                }
                let on = f
                    .dup_of
                    .or_else(|| f.unlinked.as_ref().and_then(|u| u.same_as))
                    .filter(|of| dropped.contains(of))?;
                Some((
                    f.fd,
                    format!("fd {} ({}, the same file as fd {on})", f.fd, f.path),
                ))
            })
            .collect();
        if more.is_empty() {
            return;
        }
        bad.extend(more);
    }
}

/// The fds of `pid` a resume could not give back, each with how it is
/// described to a person. A pipe end is one only if the process holds both
/// ends and no other process holds either.
pub fn unrestorable(pid: u32, files: &[File]) -> Vec<(i32, String)> {
    let pipes = pipes::Holders::of(pid, files);
    let tids = crate::procfs::tids(pid).unwrap_or_default();
    let shared = shared_with_others(pid, files);
    let mut bad = Vec::new();
    for f in files {
        // Stdio is the resume command's: what the process set on its own
        // stdio (a lock, a signal owner, O_ASYNC) cannot come back.
        if f.fd <= 2 {
            let mut set = f.locks.iter().map(|l| l.kind.name()).collect::<Vec<_>>();
            if f.owner.is_some() {
                set.push("a signal owner (F_SETOWN)");
            }
            if f.flags & libc::O_ASYNC as u32 != 0 {
                set.push("O_ASYNC");
            }
            if !set.is_empty() {
                bad.push((
                    f.fd,
                    format!(
                        "fd {} ({}, holds {}: stdio is the resume command's own)",
                        f.fd,
                        f.path,
                        set.join(" and ")
                    ),
                ));
                continue;
            }
        }
        if let Some(why) = terminals::refusal(pid, f) {
            bad.push((f.fd, why));
            continue;
        }
        if let Some(why) = epoll::refusal(pid, f) {
            bad.push((f.fd, why));
            continue;
        }
        if let Some(why) = unlinked::refusal(pid, f) {
            bad.push((f.fd, why));
            continue;
        }
        if let Some(why) = inotify::refusal(pid, f) {
            bad.push((f.fd, why));
            continue;
        }
        if let Some(why) = sharing::refusal(f, &shared) {
            bad.push((f.fd, why));
            continue;
        }
        if let Some(why) = locks::refusal(pid, f) {
            bad.push((f.fd, why));
            continue;
        }
        if let Some(why) = owners::refusal(pid, f, &tids) {
            bad.push((f.fd, why));
            continue;
        }
        if let Some(why) = pipes::twin_refusal(pid, f, files) {
            bad.push((f.fd, why));
            continue;
        }
        if f.restorable() {
            bad.extend(pipes::holder_refusal(f, &pipes).map(|why| (f.fd, why)));
            continue;
        }
        let why = if f.kind == FileKind::Socket {
            sockets::why_not(&f.path)
        } else {
            String::new()
        };
        let named = match sockets::name(pid, &f.path) {
            Some(name) => format!("{}: {name}", f.path),
            None => f.path.clone(),
        };
        bad.push((f.fd, format!("fd {} ({named}{why})", f.fd)));
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo() {
        let text = "pos:\t1234\nflags:\t02100002\nmnt_id:\t26\nino:\t5678\n";
        assert_eq!(parse_fdinfo(text), Some((1234, 0o2100002)));
        assert_eq!(parse_fdinfo("pos:\t1\n"), None);
    }

    fn file(fd: i32, kind: FileKind, path: &str) -> File {
        File {
            pipe: pipes::end(path, if fd % 2 == 0 { 0 } else { 1 }).filter(|_| fd > 2),
            ..File::bare(fd, kind, path)
        }
    }

    #[test]
    fn what_stands_on_a_dropped_fd_is_dropped_with_it() {
        let deleted = |fd, same_as| {
            let mut f = file(fd, FileKind::Regular, "/tmp/x (deleted)");
            f.unlinked = Some(crate::image::format::Unlinked {
                name: "/tmp/x".into(),
                mode: 0o600,
                size: 1,
                mtime_ns: 0,
                data: String::new(),
                same_as,
            });
            f
        };
        let mut dup_of_dup = file(9, FileKind::Regular, "/tmp/y");
        dup_of_dup.dup_of = Some(8);
        let mut dup = file(8, FileKind::Regular, "/tmp/y");
        dup.dup_of = Some(7);
        let files = vec![
            deleted(4, None),
            deleted(5, Some(4)),
            file(6, FileKind::Regular, "/tmp/z"),
            file(7, FileKind::Regular, "/tmp/y"),
            dup,
            dup_of_dup,
        ];
        let mut bad = vec![
            (4, "fd 4 (over the cap)".to_owned()),
            (7, "fd 7".to_owned()),
        ];
        with_dependents(&files, &mut bad);
        let mut fds: Vec<i32> = bad.iter().map(|(fd, _)| *fd).collect();
        fds.sort();
        assert_eq!(fds, [4, 5, 7, 8, 9]);
        assert!(
            bad.iter()
                .any(|(fd, why)| *fd == 5 && why.contains("the same file as fd 4"))
        );
        let mut none = Vec::new();
        with_dependents(&files, &mut none);
        assert!(none.is_empty());
        // A self-pipe one end of which is left out: the other goes too.
        let files = vec![
            file(10, FileKind::Pipe, "pipe:[77]"),
            file(11, FileKind::Pipe, "pipe:[77]"),
            file(12, FileKind::Pipe, "pipe:[78]"),
            file(13, FileKind::Pipe, "pipe:[78]"),
        ];
        let mut bad = vec![(11, "fd 11 (O_ASYNC)".to_owned())];
        with_dependents(&files, &mut bad);
        let fds: Vec<i32> = bad.iter().map(|(fd, _)| *fd).collect();
        assert_eq!(fds, [11, 10]);
    }

    #[test]
    fn what_can_be_restored() {
        assert!(file(0, FileKind::Pipe, "pipe:[1]").restorable(), "stdio is");
        assert!(
            file(2, FileKind::Socket, "socket:[1]").restorable(),
            "stdio is"
        );
        assert!(file(3, FileKind::Regular, "/tmp/log").restorable());
        assert!(file(4, FileKind::CharDevice, "/dev/null").restorable());
        assert!(
            file(5, FileKind::Pipe, "pipe:[2]").restorable(),
            "with its other end"
        );
        assert!(
            !file(5, FileKind::Pipe, "pipe:[x]").restorable(),
            "not a pipe(2) end"
        );
        assert!(!file(6, FileKind::Socket, "socket:[3]").restorable());
        assert!(!file(7, FileKind::AnonInode, "anon_inode:[signalfd]").restorable());
        assert!(!file(8, FileKind::Regular, "/tmp/gone (deleted)").restorable());
        let all = [
            file(5, FileKind::Pipe, "pipe:[2]"),
            file(3, FileKind::Regular, "/x"),
            file(7, FileKind::AnonInode, "anon_inode:[signalfd]"),
        ];
        assert_eq!(
            unrestorable(0, &all),
            [
                (
                    5,
                    "fd 5 (pipe:[2], its other end is not the process's)".into()
                ),
                (7, "fd 7 (anon_inode:[signalfd])".into())
            ]
        );
        // Both ends (odd fds write, even fds read here), held by no one else.
        let pipe = [
            file(9, FileKind::Pipe, "pipe:[4294967295]"),
            file(10, FileKind::Pipe, "pipe:[4294967295]"),
        ];
        assert_eq!(unrestorable(0, &pipe), []);
    }
}
