//! Open files: what each fd is, and whether it can be restored. Regular
//! files, directories and devices can; so can stdio, whatever it is (a
//! resume attaches the resume command's own), eventfds (their counter) and
//! epoll instances (what they watch: an async runtime such as tokio needs
//! both). Sockets, pipes, signalfd, timerfd and the like cannot (yet): a
//! suspend refuses them by name, before anything is frozen, unless asked to
//! drop them.

use std::{fs, os::unix::fs::FileTypeExt as _, path::Path};

use super::{DumpError, process::file_id};
use crate::image::format::{EpollTarget, EventFd, File, FileKind};

const EVENTFD: &str = "anon_inode:[eventfd]";
const EVENTPOLL: &str = "anon_inode:[eventpoll]";

/// `eventfd-count:` (hex) and `eventfd-semaphore:` of an eventfd's fdinfo.
pub fn parse_eventfd(text: &str) -> Option<EventFd> {
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

/// The `tfd: N events: HEX data: HEX …` lines of an epoll's fdinfo.
pub fn parse_epoll(text: &str) -> Option<Vec<EpollTarget>> {
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

/// What a `/proc/PID/fd/N` link (and the file behind it) is.
fn kind(link: &str, target: &Path) -> FileKind {
    if link.starts_with("socket:[") {
        return FileKind::Socket;
    }
    if link.starts_with("pipe:[") {
        return FileKind::Pipe;
    }
    if link.starts_with("anon_inode:") {
        return FileKind::AnonInode;
    }
    match fs::metadata(target).map(|m| m.file_type()) {
        Ok(t) if t.is_file() => FileKind::Regular,
        Ok(t) if t.is_dir() => FileKind::Directory,
        Ok(t) if t.is_char_device() => FileKind::CharDevice,
        Ok(t) if t.is_block_device() => FileKind::BlockDevice,
        Ok(t) if t.is_fifo() => FileKind::Pipe,
        Ok(t) if t.is_socket() => FileKind::Socket,
        _ => FileKind::Other,
    }
}

impl File {
    /// Whether a resume can give this fd back.
    pub fn restorable(&self) -> bool {
        let stdio = (0..=2).contains(&self.fd);
        let deleted = self.path.ends_with(" (deleted)");
        stdio
            || self.eventfd.is_some()
            || self.epoll.is_some()
            || matches!(self.kind, FileKind::Directory | FileKind::CharDevice)
            || (self.kind == FileKind::Regular && !deleted)
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
        let Ok(info) = fs::read_to_string(&info_path) else {
            continue;
        };
        let (pos, flags) = parse_fdinfo(&info).ok_or(DumpError::Parse {
            pid,
            what: "/proc/PID/fdinfo",
        })?;
        let kind = kind(&link, &target);
        let id = matches!(
            kind,
            FileKind::Regular | FileKind::Directory | FileKind::CharDevice
        )
        .then(|| file_id(&target, &link))
        .flatten();
        let eventfd = (link == EVENTFD).then(|| parse_eventfd(&info)).flatten();
        let epoll = (link == EVENTPOLL).then(|| parse_epoll(&info)).flatten();
        files.push(File {
            fd,
            kind,
            path: link,
            flags,
            pos,
            id,
            eventfd,
            epoll,
        });
    }
    files.sort_by_key(|f| f.fd);
    Ok(files)
}

/// The fds a resume could not give back, described for a person.
pub fn unrestorable(files: &[File]) -> Vec<String> {
    files
        .iter()
        .filter(|f| !f.restorable())
        .map(|f| format!("fd {} ({})", f.fd, f.path))
        .collect()
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
            fd,
            kind,
            path: path.into(),
            flags: 0,
            pos: 0,
            id: None,
            eventfd: None,
            epoll: None,
        }
    }

    #[test]
    fn eventfd_and_epoll() {
        let text = "pos:\t0\nflags:\t02004002\neventfd-count:                3\neventfd-id: 1\neventfd-semaphore: 1\n";
        assert_eq!(
            parse_eventfd(text),
            Some(EventFd {
                count: 3,
                semaphore: true
            })
        );
        let text = "pos:\t0\nflags:\t02000002\ntfd:        5 events:       19 data:     7f0700000005  pos:0 ino:52968 sdev:f\ntfd:        3 events: 80000019 data:                3  pos:0 ino:1a sdev:10\n";
        let targets = parse_epoll(text).unwrap();
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
    fn what_can_be_restored() {
        assert!(file(0, FileKind::Pipe, "pipe:[1]").restorable(), "stdio is");
        assert!(
            file(2, FileKind::Socket, "socket:[1]").restorable(),
            "stdio is"
        );
        assert!(file(3, FileKind::Regular, "/tmp/log").restorable());
        assert!(file(4, FileKind::CharDevice, "/dev/null").restorable());
        assert!(!file(5, FileKind::Pipe, "pipe:[2]").restorable());
        assert!(!file(6, FileKind::Socket, "socket:[3]").restorable());
        assert!(!file(7, FileKind::AnonInode, "anon_inode:[signalfd]").restorable());
        assert!(!file(8, FileKind::Regular, "/tmp/gone (deleted)").restorable());
        let all = [
            file(5, FileKind::Pipe, "pipe:[2]"),
            file(3, FileKind::Regular, "/x"),
        ];
        assert_eq!(unrestorable(&all), ["fd 5 (pipe:[2])"]);
    }
}
