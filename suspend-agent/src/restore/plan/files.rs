//! The open files above stdio: what the restore child makes at each fd
//! number of the image, and in which order. A file opened beforehand (as
//! the process) is put at its number from its helper; an eventfd,
//! signalfd, timerfd, inotify instance, self-pipe or epoll instance is
//! made again from what the image says of it; a `dup` is made from the fd
//! it copies. Every fd of the image is made again: what could not be was
//! refused, or left out on request.

use std::{
    collections::HashMap,
    os::fd::{OwnedFd, RawFd},
};

use super::{fds::Helpers, prepare_err};
use crate::{
    image::format::{File, InotifyWatch, PipeEnd},
    restore::RestoreError,
    state::{
        Dup, MakeFd, epoll, eventfd, files::Reopened, inotify, pipes, signalfd, sockets, timerfd,
    },
};

/// A file the process had open, to open again at its number.
#[derive(Debug)]
pub struct Open {
    pub fd: RawFd,
    pub what: OpenKind,
}

/// Declares [`OpenKind`] from the list of kinds: each with what it is made
/// from and its rank in the order they are made ([`order`]), and its
/// [`OpenKind::maker`].
macro_rules! open_kinds {
    ($($kind:ident($made:ty) = $rank:literal,)*) => {
        /// Each kind of fd the restore child makes, with what it is made
        /// from (its kind's, in `state/`, which makes it: [`MakeFd`]).
        #[derive(Debug, PartialEq, Eq)]
        pub enum OpenKind {
            $($kind($made),)*
        }

        impl OpenKind {
            /// Its kind's maker, which the restore child calls.
            pub fn maker(&self) -> &dyn MakeFd {
                match self {
                    $(Self::$kind(k) => k,)*
                }
            }

            /// Its rank in the order they are made ([`order`]).
            fn rank(&self) -> u32 {
                match self {
                    $(Self::$kind(_) => $rank,)*
                }
            }
        }
    };
}

// The kinds of fd, one line each: what it is made from and its rank in
// the order they are made ([`order`]). Each is planned from what the image
// says of an fd in [`opens`], which tells them apart in its own order.
open_kinds! {
    File(Reopened) = 0,
    EventFd(eventfd::Made) = 2,
    SignalFd(signalfd::Made) = 2,
    TimerFd(timerfd::Made) = 2,
    Inotify(inotify::Made) = 2,
    OrphanSocket(sockets::Made) = 2,
    Pipe(pipes::Pipe) = 4,
    Epoll(epoll::Made) = 6,
    Dup(Dup) = 4, // a pipe end's (a copy goes right after what it copies: see `order`)
}

/// What to make at each fd of `files` above stdio, in the order to make
/// them ([`order`]). The files opened beforehand (`opened`, by fd) and
/// what each inotify watch is on (`watched`, by fd and watch descriptor)
/// become helpers.
pub fn opens(
    files: &[File],
    euid_egid: (u32, u32),
    opened: &mut HashMap<RawFd, OwnedFd>,
    watched: &mut HashMap<(RawFd, i32), OwnedFd>,
    helpers: &mut Helpers,
) -> Result<Vec<Open>, RestoreError> {
    let mut opens = Vec::new();
    for f in files.iter().filter(|f| f.fd > 2) {
        let flags = f.flags as i32;
        let what = if let Some(from) = f.dup_of {
            OpenKind::Dup(Dup { from, flags })
        } else if let Some(p) = &f.pipe {
            match pipe(files, f, p)? {
                Some(what) => what,
                None => continue, // made with its read end
            }
        } else if let Some(socket) = &f.orphan_socket {
            OpenKind::OrphanSocket(sockets::plan(socket, flags, euid_egid))
        } else if let Some(mask) = f.signalfd {
            OpenKind::SignalFd(signalfd::plan(mask, flags))
        } else if let Some(t) = &f.timerfd {
            OpenKind::TimerFd(timerfd::plan(t, flags))
        } else if let Some(watches) = &f.inotify {
            inotify(f, watches, watched, helpers)?
        } else if let Some(e) = &f.eventfd {
            OpenKind::EventFd(eventfd::plan(e, flags))
        } else if let Some(targets) = &f.epoll {
            OpenKind::Epoll(epoll::plan(files, f, targets))
        } else if let Some(file) = opened.remove(&f.fd) {
            OpenKind::File(Reopened {
                from: helpers.add(file)?,
                flags,
                pos: f.pos,
            })
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

/// An end of a self-pipe ([`pipes::plan`]): the pipe, a copy of an end,
/// or nothing (its lowest write end: made with the read end).
fn pipe(files: &[File], f: &File, p: &PipeEnd) -> Result<Option<OpenKind>, RestoreError> {
    let flags = f.flags as i32;
    Ok(pipes::plan(files, f, p)
        .map_err(fd_err(f))?
        .map(|made| match made {
            pipes::Made::Copy { from } => OpenKind::Dup(Dup { from, flags }),
            pipes::Made::Pipe(pipe) => OpenKind::Pipe(pipe),
        }))
}

/// An inotify instance ([`inotify::plan`]): what each watch is on, opened
/// beforehand, made a helper.
fn inotify(
    f: &File,
    watches: &[InotifyWatch],
    watched: &mut HashMap<(RawFd, i32), OwnedFd>,
    helpers: &mut Helpers,
) -> Result<OpenKind, RestoreError> {
    let mut on = Vec::new();
    for w in watches {
        let Some(file) = watched.remove(&(f.fd, w.wd)) else {
            return Err(fd_err(f)(std::io::Error::other(format!(
                "watch {} is on no file the image names",
                w.wd
            ))));
        };
        on.push(helpers.add(file)?);
    }
    Ok(OpenKind::Inotify(inotify::plan(
        watches,
        f.flags as i32,
        &on,
    )))
}

/// By the rank of each kind ([`OpenKind`]'s list): files first, then
/// eventfds, signalfds, timerfds, inotify instances and orphaned sockets,
/// pipes, then the epolls that watch them; each copy (`dup`) right after
/// the kind it copies (the copy of an epoll after the epolls). The order
/// of the image is kept within each. (What each epoll watches is added
/// once every fd exists.)
fn order(opens: &mut [Open]) {
    let ranks: HashMap<RawFd, u32> = opens.iter().map(|o| (o.fd, o.what.rank())).collect();
    opens.sort_by_key(|o| match o.what {
        OpenKind::Dup(Dup { from, .. }) => ranks.get(&from).copied().unwrap_or(4) + 1,
        ref what => what.rank(),
    });
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, os::fd::AsRawFd as _};

    use super::{Open, OpenKind, opens, order, pipe};
    use crate::{
        image::format::{EventFd, File, InotifyWatch, PipeEnd},
        restore::plan::fds::Helpers,
        state::{Dup, epoll, eventfd, files::Reopened, fixtures::file, inotify, pipes, signalfd},
    };

    fn pipe_end(fd: i32, id: u64, write: bool, data: &str) -> File {
        File {
            pipe: Some(PipeEnd {
                id,
                write,
                size: 65536,
                data: data.into(),
            }),
            flags: if write {
                libc::O_WRONLY as u32
            } else {
                (libc::O_RDONLY | libc::O_NONBLOCK) as u32
            },
            ..file(fd)
        }
    }

    #[test]
    fn a_pipe_is_made_at_its_lowest_read_end_with_its_lowest_write_end() {
        // "aGk=" is "hi".
        let files = [
            pipe_end(5, 9, true, ""),
            pipe_end(4, 9, false, "aGk="),
            pipe_end(3, 9, true, ""),
            pipe_end(6, 9, false, ""),
        ];
        let plan = |f: &File| pipe(&files, f, f.pipe.as_ref().expect("a pipe end"));
        assert_eq!(
            plan(&files[1]).expect("planned"),
            Some(OpenKind::Pipe(pipes::Pipe {
                read_flags: libc::O_NONBLOCK,
                write_fd: 3,
                write_flags: libc::O_WRONLY,
                size: 65536,
                data: b"hi".to_vec(),
            }))
        );
        assert_eq!(plan(&files[2]).expect("planned"), None, "made with 4");
        assert_eq!(
            plan(&files[0]).expect("planned"),
            Some(OpenKind::Dup(Dup {
                from: 3,
                flags: libc::O_WRONLY
            }))
        );
        assert_eq!(
            plan(&files[3]).expect("planned"),
            Some(OpenKind::Dup(Dup {
                from: 4,
                flags: libc::O_NONBLOCK
            }))
        );
    }

    #[test]
    fn a_pipe_with_one_end_in_the_image_is_an_error_naming_the_fd() {
        let files = [pipe_end(3, 9, false, ""), pipe_end(4, 10, true, "")];
        let err =
            pipe(&files, &files[0], files[0].pipe.as_ref().expect("an end")).expect_err("one end");
        assert!(err.to_string().starts_with("fd 3 (/tmp/f3): "), "{err}");
        let bad = [
            pipe_end(3, 9, false, "not base64!"),
            pipe_end(4, 9, true, ""),
        ];
        assert!(pipe(&bad, &bad[0], bad[0].pipe.as_ref().expect("an end")).is_err());
    }

    #[test]
    fn files_are_made_before_what_watches_them_and_copies_after_what_they_copy() {
        let open = |fd, what| Open { fd, what };
        let dup = |from| OpenKind::Dup(Dup { from, flags: 0 });
        let event = || OpenKind::EventFd(eventfd::Made { count: 0, flags: 0 });
        let mut opens = vec![
            open(
                3,
                OpenKind::Epoll(epoll::Made {
                    flags: 0,
                    targets: vec![],
                }),
            ),
            open(4, dup(3)),
            open(
                5,
                OpenKind::File(Reopened {
                    from: 20,
                    flags: 0,
                    pos: 0,
                }),
            ),
            open(
                6,
                OpenKind::Pipe(pipes::Pipe {
                    read_flags: 0,
                    write_fd: 7,
                    write_flags: 0,
                    size: 0,
                    data: vec![],
                }),
            ),
            open(8, dup(6)),
            open(9, event()),
            open(10, dup(5)),
            open(11, dup(9)),
            open(12, event()),
        ];
        order(&mut opens);
        let fds: Vec<i32> = opens.iter().map(|o| o.fd).collect();
        assert_eq!(fds, [5, 10, 9, 12, 11, 6, 8, 3, 4]);
    }

    #[test]
    fn every_fd_above_stdio_is_planned_from_what_the_image_says_of_it() {
        let files = [
            file(1),
            File {
                dup_of: Some(5),
                ..file(6)
            },
            File {
                eventfd: Some(EventFd {
                    count: 7,
                    semaphore: true,
                }),
                flags: (libc::O_RDWR | libc::O_NONBLOCK) as u32,
                ..file(4)
            },
            file(5),
            File {
                signalfd: Some(1u64 << (libc::SIGCHLD - 1)),
                flags: (libc::O_RDONLY | libc::O_CLOEXEC) as u32,
                ..file(8)
            },
            File {
                inotify: Some(vec![InotifyWatch {
                    wd: 2,
                    mask: libc::IN_MODIFY,
                    ino: 1,
                    target: None,
                }]),
                ..file(9)
            },
            // Not opened beforehand: left closed.
            file(7),
        ];
        let null = || std::fs::File::open("/dev/null").expect("/dev/null").into();
        let mut opened = HashMap::from([(5, null())]);
        let mut watched = HashMap::from([((9, 2), null())]);
        let mut helpers = Helpers::above(&files);
        let got = opens(&files, (0, 0), &mut opened, &mut watched, &mut helpers).expect("planned");
        let fds = helpers.into_fds();
        assert_eq!(fds.len(), 2, "the file and the watched one");
        // Made helpers in the image's order: fd 5, then 9's watch.
        let (file5, watch) = (fds[0].as_raw_fd(), fds[1].as_raw_fd());
        let got: Vec<(i32, &OpenKind)> = got.iter().map(|o| (o.fd, &o.what)).collect();
        let path = std::ffi::CString::new(format!("/proc/self/fd/{watch}")).expect("a path");
        assert_eq!(
            got,
            [
                (
                    5,
                    &OpenKind::File(Reopened {
                        from: file5,
                        flags: libc::O_RDWR,
                        pos: 0
                    })
                ),
                (
                    6,
                    &OpenKind::Dup(Dup {
                        from: 5,
                        flags: libc::O_RDWR
                    })
                ),
                (
                    4,
                    &OpenKind::EventFd(eventfd::Made {
                        count: 7,
                        flags: libc::O_NONBLOCK | libc::EFD_SEMAPHORE
                    })
                ),
                (
                    8,
                    &OpenKind::SignalFd(signalfd::Made {
                        mask: 1u64 << (libc::SIGCHLD - 1),
                        flags: libc::O_CLOEXEC
                    })
                ),
                (
                    9,
                    &OpenKind::Inotify(inotify::Made {
                        flags: 0,
                        watches: vec![(2, libc::IN_MODIFY, path)]
                    })
                ),
            ]
        );
    }

    #[test]
    fn an_inotify_watch_on_nothing_opened_is_an_error() {
        let files = [File {
            inotify: Some(vec![InotifyWatch {
                wd: 1,
                mask: libc::IN_MODIFY,
                ino: 1,
                target: None,
            }]),
            ..file(3)
        }];
        let err = opens(
            &files,
            (0, 0),
            &mut HashMap::new(),
            &mut HashMap::new(),
            &mut Helpers::above(&files),
        )
        .expect_err("nothing watched");
        assert!(err.to_string().contains("watch 1"), "{err}");
    }
}
