//! The open files above stdio: what the restore child makes at each fd
//! number of the image, and in which order. A file opened beforehand (as
//! the process) is put at its number from its helper; an eventfd,
//! signalfd, timerfd, inotify instance, self-pipe or epoll instance is
//! made again from what the image says of it; a `dup` is made from the fd
//! it copies. Every fd of the image is made again: what could not be was
//! refused, or left out on request.

use std::{
    collections::HashMap,
    ffi::CString,
    os::fd::{OwnedFd, RawFd},
};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};

use super::{fds::Helpers, prepare_err};
use crate::{
    image::format::{EpollTarget, EventFd, File, InotifyWatch, PipeEnd, TimerFd},
    restore::RestoreError,
};

/// A file the process had open, to open again at its number.
#[derive(Debug)]
pub struct Open {
    pub fd: RawFd,
    pub what: OpenKind,
}

/// In the order they are made: an epoll instance watches the others.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpenKind {
    /// A file opened (as the process) and checked beforehand: helper fd
    /// `from`, put at its number and position.
    File {
        from: RawFd,
        flags: i32,
        pos: u64,
    },
    EventFd {
        count: u64,
        flags: i32,
    },
    /// `signalfd4(-1, mask, flags)`.
    SignalFd {
        mask: u64,
        flags: i32,
    },
    /// `timerfd_create(clock, flags)`, then `timerfd_settime(settime,
    /// spec)` if `spec` arms it (interval s, ns, value s, ns) and
    /// `TFD_IOC_SET_TICKS` if `ticks`.
    TimerFd {
        clock: i32,
        flags: i32,
        settime: i32,
        spec: [i64; 4],
        ticks: u64,
    },
    /// `inotify_init1(flags)`, then each watch `(wd, mask, path)` added
    /// under its number, in order (`path`: `/proc/self/fd/N` of a helper
    /// the process's user opened; lower numbers are reached by adding and
    /// removing it).
    Inotify {
        flags: i32,
        watches: Vec<(i32, u32, CString)>,
    },
    /// A pipe: its read end at this fd, its write end at `write_fd`, with
    /// `data` in it.
    Pipe {
        read_flags: i32,
        write_fd: RawFd,
        write_flags: i32,
        size: u32,
        data: Vec<u8>,
    },
    /// Another fd of the same open file as `from` (made before it).
    Dup {
        from: RawFd,
        flags: i32,
    },
    /// `(fd, events, data)` it watches.
    Epoll {
        flags: i32,
        targets: Vec<(RawFd, u32, u64)>,
    },
}

/// The status flags a made-again anonymous file takes at creation.
const CREATE_FLAGS: i32 = libc::O_NONBLOCK | libc::O_CLOEXEC;

/// What to make at each fd of `files` above stdio, in the order to make
/// them ([`order`]). The files opened beforehand (`opened`, by fd) and
/// what each inotify watch is on (`watched`, by fd and watch descriptor)
/// become helpers.
pub fn opens(
    files: &[File],
    opened: &mut HashMap<RawFd, OwnedFd>,
    watched: &mut HashMap<(RawFd, i32), OwnedFd>,
    helpers: &mut Helpers,
) -> Result<Vec<Open>, RestoreError> {
    let mut opens = Vec::new();
    for f in files.iter().filter(|f| f.fd > 2) {
        let flags = f.flags as i32;
        let what = if let Some(from) = f.dup_of {
            OpenKind::Dup { from, flags }
        } else if let Some(p) = &f.pipe {
            match pipe(files, f, p)? {
                Some(what) => what,
                None => continue, // made with its read end
            }
        } else if let Some(mask) = f.signalfd {
            OpenKind::SignalFd {
                mask,
                flags: flags & CREATE_FLAGS,
            }
        } else if let Some(t) = &f.timerfd {
            timerfd(t, flags)
        } else if let Some(watches) = &f.inotify {
            inotify(f, watches, watched, helpers)?
        } else if let Some(e) = &f.eventfd {
            eventfd(e, flags)
        } else if let Some(targets) = &f.epoll {
            epoll(files, f, targets)
        } else if let Some(file) = opened.remove(&f.fd) {
            OpenKind::File {
                from: helpers.add(file)?,
                flags,
                pos: f.pos,
            }
        } else {
            log::warn!("fd {} ({}) cannot be reopened; left closed", f.fd, f.path);
            continue;
        };
        opens.push(Open { fd: f.fd, what });
    }
    order(&mut opens);
    Ok(opens)
}

fn fd_err(f: &File) -> impl FnOnce(std::io::Error) -> RestoreError {
    prepare_err(format!("fd {} ({})", f.fd, f.path))
}

/// An end of a self-pipe. Each pipe is made at its lowest read end, with
/// its lowest write end (`None` for that one: made with the read end);
/// its other fds are copies of those.
fn pipe(files: &[File], f: &File, p: &PipeEnd) -> Result<Option<OpenKind>, RestoreError> {
    let first_end = |write: bool| {
        files
            .iter()
            .filter(|g| {
                g.pipe
                    .as_ref()
                    .is_some_and(|q| q.id == p.id && q.write == write)
            })
            .map(|g| g.fd)
            .min()
    };
    let (Some(read_fd), Some(write_fd)) = (first_end(false), first_end(true)) else {
        return Err(fd_err(f)(std::io::Error::other(
            "the image holds only one end of this pipe",
        )));
    };
    let flags = f.flags as i32;
    let first = if p.write { write_fd } else { read_fd };
    Ok(if f.fd != first {
        Some(OpenKind::Dup { from: first, flags })
    } else if p.write {
        None
    } else {
        let write_flags = files
            .iter()
            .find(|g| g.fd == write_fd)
            .map_or(0, |g| g.flags as i32);
        Some(OpenKind::Pipe {
            read_flags: flags,
            write_fd,
            write_flags,
            size: p.size,
            data: B64
                .decode(&p.data)
                .map_err(|e| fd_err(f)(std::io::Error::other(e)))?,
        })
    })
}

/// A timerfd, armed as it was. An expired timer waiting for a read to
/// re-arm it by its interval shows no time left: armed one interval on.
/// One set with `TFD_TIMER_ABSTIME` is armed at its deadline, with its
/// `settime` flags.
fn timerfd(t: &TimerFd, flags: i32) -> OpenKind {
    let value = match (t.deadline_ns, t.value_ns, t.interval_ns) {
        (Some(deadline), _, _) => deadline,
        (None, 0, interval) => interval,
        (None, value, _) => value,
    };
    let split = |ns: u64| [(ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64];
    let (interval, value) = (split(t.interval_ns), split(value));
    OpenKind::TimerFd {
        clock: t.clockid,
        flags: flags & CREATE_FLAGS,
        settime: if t.deadline_ns.is_some() {
            t.settime_flags
        } else {
            0
        },
        spec: [interval[0], interval[1], value[0], value[1]],
        ticks: t.ticks,
    }
}

/// An inotify instance: each watch on a helper (what it watched, opened
/// beforehand), reached through `/proc/self/fd`.
fn inotify(
    f: &File,
    watches: &[InotifyWatch],
    watched: &mut HashMap<(RawFd, i32), OwnedFd>,
    helpers: &mut Helpers,
) -> Result<OpenKind, RestoreError> {
    let mut made = Vec::new();
    for w in watches {
        let Some(file) = watched.remove(&(f.fd, w.wd)) else {
            return Err(fd_err(f)(std::io::Error::other(format!(
                "watch {} is on no file the image names",
                w.wd
            ))));
        };
        let from = helpers.add(file)?;
        let path = CString::new(format!("/proc/self/fd/{from}")).expect("no NUL in a number");
        made.push((w.wd, w.mask, path));
    }
    Ok(OpenKind::Inotify {
        flags: f.flags as i32 & CREATE_FLAGS,
        watches: made,
    })
}

/// An eventfd, with its count and its semaphore mode.
fn eventfd(e: &EventFd, flags: i32) -> OpenKind {
    OpenKind::EventFd {
        count: e.count,
        flags: (flags & CREATE_FLAGS) | if e.semaphore { libc::EFD_SEMAPHORE } else { 0 },
    }
}

/// An epoll instance, watching again what it watched of what is made
/// again (stdio and the image's fds).
fn epoll(files: &[File], f: &File, targets: &[EpollTarget]) -> OpenKind {
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
    OpenKind::Epoll {
        flags: f.flags as i32 & libc::O_CLOEXEC,
        targets: kept,
    }
}

/// Files first, then eventfds, signalfds, timerfds and inotify instances,
/// pipes, then the epolls that watch them; each copy (`dup`) right after
/// the kind it copies (the copy of an epoll after the epolls). The order
/// of the image is kept within each. (What each epoll watches is added
/// once every fd exists.)
fn order(opens: &mut [Open]) {
    let rank = |what: &OpenKind| match what {
        OpenKind::File { .. } => 0,
        OpenKind::EventFd { .. }
        | OpenKind::SignalFd { .. }
        | OpenKind::TimerFd { .. }
        | OpenKind::Inotify { .. } => 2,
        OpenKind::Pipe { .. } => 4,
        OpenKind::Epoll { .. } => 6,
        OpenKind::Dup { .. } => 4, // a pipe end's (see below)
    };
    let ranks: HashMap<RawFd, u32> = opens.iter().map(|o| (o.fd, rank(&o.what))).collect();
    opens.sort_by_key(|o| match o.what {
        OpenKind::Dup { from, .. } => ranks.get(&from).copied().unwrap_or(4) + 1,
        ref what => rank(what),
    });
}
