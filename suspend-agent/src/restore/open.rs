//! Every file a resume takes from the file system, opened before anything
//! is created — and opened *as the process*: on a thread with its fsuid,
//! fsgid and groups (see [`crate::sys::creds`]), never following a
//! symbolic link, and each checked on the descriptor it got, not on the
//! path beforehand. A file swapped, linked or raced in is refused; a file
//! its owner may not open is refused; nothing is opened as root on the
//! process's behalf.
//!
//! What is opened: the executable, the file of every file mapping, every
//! regular file, directory and device the process had open, what each
//! inotify watch is on (opened for reading, as a watch needs), its working
//! directory, and the files `--stdin/--stdout/--stderr` name (those without
//! following a final symbolic link, as the command's user meant them).
//!
//! Before any of the process's files is opened, one another process holds
//! a lease on that the open would start breaking (a write lease, for an
//! open for reading; any, for one for writing) is refused, naming the
//! holder (`/proc/locks`), instead of breaking it.
//!
//! How each file must match the image, its check on the descriptor, the
//! lease refusal and the naming of an open that failed are the files
//! kind's ([`crate::state::files`]); a deleted file is made again, and
//! refused where it cannot be, by its kind ([`crate::state::unlinked`]).
//! This is the flow: what is opened, in which order, as whom, and where
//! each goes.

use std::{
    collections::HashMap,
    io,
    os::fd::{AsFd as _, OwnedFd},
    path::{Path, PathBuf},
};

use super::{Options, Refusal, RestoreError};
use crate::{
    image::{Image, format::FileKind},
    state::{
        carried,
        files::{self, Match, Want},
        mappings, unlinked,
    },
    sys::creds::{self, FsUser},
};

/// What was opened, each checked.
#[derive(Debug, Default)]
pub struct Opened {
    pub exe: Option<OwnedFd>,
    /// By (path, opened for writing).
    pub mapped: HashMap<(String, bool), OwnedFd>,
    /// By the process's fd number.
    pub files: HashMap<i32, OwnedFd>,
    /// What each inotify watch watches, by (fd number, watch descriptor):
    /// opened for reading, as a watch needs.
    pub watched: HashMap<(i32, i32), OwnedFd>,
    pub cwd: Option<OwnedFd>,
    pub stdio: [Option<OwnedFd>; 3],
    /// Carried files made here (`state::carried`): removed if the resume
    /// fails.
    pub placed: carried::Made,
}

/// Where an opened file goes in [`Opened`].
#[derive(Debug, Clone)]
enum Into {
    Exe,
    Mapped(String, bool),
    Fd(i32),
    Watch(i32, i32),
    Cwd,
}

/// Which files mapped or open files of `image` a resume opens, in order,
/// each with where it goes.
fn wanted(image: &Image) -> Vec<(Want, Into)> {
    let mut wants = Vec::new();
    let here = nix::sys::utsname::uname()
        .map(|u| u.nodename().to_string_lossy().into_owned())
        .unwrap_or_default();
    let elsewhere = files::elsewhere(
        &image.header.hostname,
        image.header.created_unix,
        &here,
        crate::procfs::boot_time(),
    );
    if let Some(exe) = &image.process.exe {
        wants.push((
            Want {
                what: "executable",
                path: exe.path.clone(),
                flags: libc::O_RDONLY,
                id: Some(exe.clone()),
                how: Match::Contents,
            },
            Into::Exe,
        ));
    }
    for m in &image.mappings {
        let Some((path, write)) = mappings::opened_as(m) else {
            continue;
        };
        if wants
            .iter()
            .any(|(_, into)| matches!(into, Into::Mapped(p, w2) if *p == path && *w2 == write))
        {
            continue;
        }
        wants.push((
            Want {
                what: "mapped file",
                flags: if write { libc::O_RDWR } else { libc::O_RDONLY },
                id: m.file.clone(),
                how: Match::Contents,
                path: path.clone(),
            },
            Into::Mapped(path, write),
        ));
    }
    for f in &image.files {
        for w in f.inotify.iter().flatten() {
            let Some(target) = &w.target else { continue };
            wants.push((
                Want {
                    what: "file an inotify watch is on",
                    path: target.path.clone(),
                    flags: libc::O_RDONLY | libc::O_NONBLOCK,
                    id: Some(target.clone()),
                    how: Match::Inode,
                },
                Into::Watch(f.fd, w.wd),
            ));
        }
        // Stdio is the resume command's; the other kinds are made.
        if let Some(mut want) = files::reopened(f) {
            if elsewhere && f.kind == FileKind::Directory {
                want.how = Match::Place;
            }
            wants.push((want, Into::Fd(f.fd)));
        }
    }
    wants.push((
        Want {
            what: "working directory",
            path: image.process.cwd.clone(),
            flags: libc::O_PATH | libc::O_DIRECTORY,
            id: image.process.cwd_id.clone(),
            how: if elsewhere {
                Match::Place
            } else {
                Match::Inode
            },
        },
        Into::Cwd,
    ));
    wants
}

/// Opens a `--stdin/--stdout/--stderr` file as `user`: stdin read-only,
/// the others appended to (created, 0644, if missing); a final symbolic
/// link is not followed.
fn open_stdio(path: &Path, index: usize) -> crate::sys::Result<OwnedFd> {
    let flags = libc::O_NOFOLLOW
        | libc::O_CLOEXEC
        | libc::O_NOCTTY
        | if index == 0 {
            libc::O_RDONLY
        } else {
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT
        };
    crate::sys::fd::open(path, flags, 0o644)
}

/// Opens everything `image` needs from the file system, as its process.
pub fn all(image: &Image, options: &Options) -> Result<Opened, RestoreError> {
    let creds = &image.process.creds;
    // The main thread's capabilities: a root process that dropped some
    // opens no more than it could.
    let effective = super::plan::main_first(image)
        .first()
        .and_then(|t| t.confinement.as_ref())
        .map(|c| c.effective);
    let user = FsUser {
        fsuid: creds.uid[3],
        fsgid: creds.gid[3],
        groups: creds.groups.clone(),
        effective,
    };
    // Carried files missing here are made first: then opened and checked
    // as any other.
    let placed = carried::place(&image.files, &user).map_err(Refusal::from)?;
    let opened = opened(image, options, &user);
    match opened {
        Ok(mut out) => {
            out.placed = placed;
            Ok(out)
        }
        Err(e) => {
            placed.undo();
            Err(e)
        }
    }
}

/// [`all`], once the carried files are there.
fn opened(image: &Image, options: &Options, user: &FsUser) -> Result<Opened, RestoreError> {
    let wants = wanted(image);
    files::leased(wants.iter().map(|(want, _)| want)).map_err(Refusal::from)?;
    let stdio: Vec<(usize, PathBuf)> = options
        .stdio
        .files
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.clone()?)))
        .collect();
    let opened = creds::as_user(user, || {
        // Checked as the user too: a copy's contents are read to compare
        // them (through an open of its own, for one opened to write only).
        let fds = wants
            .iter()
            .map(|(w, _)| {
                creds::open_no_symlinks(Path::new(&w.path), w.flags).map(|fd| {
                    let checked = files::check(fd.as_fd(), w);
                    (fd, checked)
                })
            })
            .collect::<Vec<_>>();
        let stdio = stdio
            .iter()
            .map(|(i, path)| (*i, path.clone(), open_stdio(path, *i)))
            .collect::<Vec<_>>();
        (fds, stdio)
    })
    .map_err(|source| RestoreError::Prepare {
        what: format!("taking uid {} to open the process's files", user.fsuid),
        source,
    })?;
    let (fds, stdio) = opened;
    let mut out = Opened::default();
    let not_opened = |want: &Want, e: io::Error| {
        Refusal::from(files::not_opened(want.what, &want.path, user.fsuid, e))
    };
    for ((want, into), fd) in wants.iter().zip(fds) {
        let (fd, checked) = fd.map_err(|e| not_opened(want, e.into()))?;
        checked.map_err(Refusal::from)?;
        match into.clone() {
            Into::Exe => out.exe = Some(fd),
            Into::Mapped(path, write) => {
                out.mapped.insert((path, write), fd);
            }
            Into::Fd(n) => {
                out.files.insert(n, fd);
            }
            Into::Watch(n, wd) => {
                // Opened for reading to prove the user may watch it; kept
                // as `O_PATH`, whose close the new watch does not see (an
                // `IN_CLOSE_NOWRITE` would be queued when the restore
                // child closes its helpers).
                let path = creds::reopen(fd.as_fd(), libc::O_PATH)
                    .map_err(|e| not_opened(want, e.into()))?;
                drop(fd);
                out.watched.insert((n, wd), path);
            }
            Into::Cwd => out.cwd = Some(fd),
        }
    }
    out.files
        .extend(unlinked::make_each(&image.files, user).map_err(Refusal::from)?);
    for (i, path, fd) in stdio {
        out.stdio[i] = Some(fd.map_err(|source| RestoreError::PrepareCall {
            what: format!(
                "opening {} as uid {} (a final symbolic link is not followed)",
                path.display(),
                user.fsuid
            ),
            source,
        })?);
    }
    Ok(out)
}
