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

use std::{
    collections::HashMap,
    io,
    os::fd::{AsFd as _, OwnedFd},
    path::{Path, PathBuf},
};

use super::{Options, Refusal, RestoreError};
use crate::{
    image::{
        Image,
        format::{FileId, FileKind},
    },
    procfs::ProcLease,
    state::{mappings, unlinked},
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
}

/// How a file must match its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Match {
    /// The very same file: device and inode.
    Inode,
    /// The same contents: the same inode with the same size and mtime, or
    /// (a copy: another machine, a package installed again) another inode
    /// with the same size and the same mtime to the second.
    Contents,
}

/// One file to open.
#[derive(Debug)]
struct Want {
    what: &'static str,
    path: String,
    flags: i32,
    id: Option<FileId>,
    how: Match,
    into: Into,
}

#[derive(Debug, Clone)]
enum Into {
    Exe,
    Mapped(String, bool),
    Fd(i32),
    Watch(i32, i32),
    Cwd,
}

/// Which files mapped or open files of `image` a resume opens, in order.
fn wanted(image: &Image) -> Vec<Want> {
    let mut wants = Vec::new();
    if let Some(exe) = &image.process.exe {
        wants.push(Want {
            what: "executable",
            path: exe.path.clone(),
            flags: libc::O_RDONLY,
            id: Some(exe.clone()),
            how: Match::Contents,
            into: Into::Exe,
        });
    }
    for m in &image.mappings {
        let Some((path, write)) = mappings::opened_as(m) else {
            continue;
        };
        if wants
            .iter()
            .any(|w: &Want| matches!(&w.into, Into::Mapped(p, w2) if *p == path && *w2 == write))
        {
            continue;
        }
        wants.push(Want {
            what: "mapped file",
            flags: if write { libc::O_RDWR } else { libc::O_RDONLY },
            id: m.file.clone(),
            how: Match::Contents,
            into: Into::Mapped(path.clone(), write),
            path,
        });
    }
    for f in &image.files {
        for w in f.inotify.iter().flatten() {
            let Some(target) = &w.target else { continue };
            wants.push(Want {
                what: "file an inotify watch is on",
                path: target.path.clone(),
                flags: libc::O_RDONLY | libc::O_NONBLOCK,
                id: Some(target.clone()),
                how: Match::Inode,
                into: Into::Watch(f.fd, w.wd),
            });
        }
        if f.fd <= 2
            || f.unlinked.is_some()
            || f.pipe.is_some()
            || f.eventfd.is_some()
            || f.epoll.is_some()
            || f.signalfd.is_some()
            || f.timerfd.is_some()
            || f.dup_of.is_some()
        {
            continue; // stdio is the resume command's; the others are made
        }
        if !matches!(
            f.kind,
            FileKind::Regular | FileKind::Directory | FileKind::CharDevice
        ) {
            continue;
        }
        wants.push(Want {
            what: "open file",
            path: f.path.clone(),
            flags: f.flags as i32 & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC),
            id: f.id.clone(),
            how: Match::Inode,
            into: Into::Fd(f.fd),
        });
    }
    wants.push(Want {
        what: "working directory",
        path: image.process.cwd.clone(),
        flags: libc::O_PATH | libc::O_DIRECTORY,
        id: image.process.cwd_id.clone(),
        how: Match::Inode,
        into: Into::Cwd,
    });
    wants
}

/// Whether what `fd` is matches `id` (see [`Match`]).
fn check(fd: &OwnedFd, want: &Want) -> Result<(), Refusal> {
    let Some(id) = &want.id else {
        return Ok(());
    };
    let changed = |how: String| Refusal::FileChanged {
        what: want.what,
        path: want.path.clone(),
        how,
    };
    let meta = crate::sys::fd::stat(fd.as_fd()).map_err(|e| changed(e.to_string()))?;
    let same_inode = meta.st_dev == id.dev && meta.st_ino == id.ino;
    if want.how == Match::Inode {
        return if same_inode {
            Ok(())
        } else {
            Err(changed("it is another file now".into()))
        };
    }
    let mut how = Vec::new();
    if meta.st_size as u64 != id.size {
        how.push(format!("size {} then, {} now", id.size, meta.st_size));
    }
    let mtime_ns = meta.st_mtime * 1_000_000_000 + meta.st_mtime_nsec;
    // A copy may keep only whole seconds (`tar` in ustar format, `scp -p`,
    // busybox `cp -p`).
    let same_mtime = if same_inode {
        mtime_ns == id.mtime_ns
    } else {
        meta.st_mtime == id.mtime_ns.div_euclid(1_000_000_000)
    };
    if !same_mtime {
        how.push("modified".to_owned());
    }
    if how.is_empty() {
        return Ok(());
    }
    if !same_inode {
        how.insert(0, "it is another file now".to_owned());
    }
    Err(changed(how.join(", ")))
}

/// The first of `leases` (other processes' on one file, from
/// `/proc/locks`) that an open of the file with `flags` would start
/// breaking, with its holder and what it is: an open for reading breaks a
/// write lease (or one being broken), an open for writing any lease, an
/// `O_PATH` open none (as the kernel's `break_lease` on open).
fn broken_by(leases: &[ProcLease], flags: i32) -> Option<(u32, &'static str)> {
    if flags & libc::O_PATH != 0 {
        return None;
    }
    crate::state::locks::in_the_way(leases, flags & libc::O_ACCMODE != libc::O_RDONLY)
}

/// Refuses, before any is opened, a file of `wants` that another process
/// holds a lease on which its open would start breaking (even a failing
/// `O_NONBLOCK` open does): the holder would be told to let go of it for
/// the resume. The file is found as the open will find it, through an
/// `O_PATH` open (which breaks nothing), as root: one the process's user
/// may not open is refused by the open itself, by name. A lease taken
/// after this is broken by the open, as by any.
fn leased(wants: &[Want]) -> Result<(), Refusal> {
    let proc_locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    // No lease or delegation on any file: nothing to look up.
    if !proc_locks.contains("LEASE") && !proc_locks.contains("DELEG") {
        return Ok(());
    }
    for want in wants {
        let Some(meta) = creds::open_no_symlinks(Path::new(&want.path), libc::O_PATH)
            .ok()
            .and_then(|fd| crate::sys::fd::stat(fd.as_fd()).ok())
        else {
            continue; // refused as a file by the open, by name
        };
        let leases = crate::procfs::parse_leases_on(&proc_locks, meta.st_dev, meta.st_ino);
        if let Some((pid, whose)) = broken_by(&leases, want.flags) {
            return Err(Refusal::OpenLeased {
                what: want.what,
                path: want.path.clone(),
                pid,
                whose,
                how: if want.flags & libc::O_ACCMODE == libc::O_RDONLY {
                    "for reading"
                } else {
                    "for writing"
                },
            });
        }
    }
    Ok(())
}

/// The refusal for a file that could not be opened as `user`.
fn refusal(want: &Want, user: &FsUser, e: io::Error) -> Refusal {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => Refusal::FileGone {
            what: want.what,
            path: want.path.clone(),
            source: e,
        },
        Some(libc::ELOOP) => Refusal::FileChanged {
            what: want.what,
            path: want.path.clone(),
            how: "a symbolic link is on its path now".into(),
        },
        _ => Refusal::FileDenied {
            what: want.what,
            path: want.path.clone(),
            uid: user.fsuid,
            source: e,
        },
    }
}

/// Makes each deleted file of `image` again, as `user`: with `O_TMPFILE`
/// in its directory (no name ever reaches it, so nobody else can open it
/// meanwhile), with its bytes, size, mode and mtime; each fd that had it
/// open gets an open of it of its own (`out.files`).
fn made_again(image: &Image, user: &FsUser, out: &mut Opened) -> Result<(), Refusal> {
    use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
    for f in &image.files {
        let Some(u) = f.unlinked.as_ref().filter(|u| u.same_as.is_none()) else {
            continue;
        };
        let what = "deleted file";
        let denied = |e: io::Error| {
            refusal(
                &Want {
                    what,
                    path: u.name.clone(),
                    flags: 0,
                    id: None,
                    how: Match::Inode,
                    into: Into::Fd(f.fd),
                },
                user,
                e,
            )
        };
        let bytes = B64.decode(&u.data).map_err(|e| Refusal::FileChanged {
            what,
            path: u.name.clone(),
            how: format!("its bytes in the image are not base64: {e}"),
        })?;
        // The fds that had it open: this one and its other opens.
        let opens = unlinked::opens(&image.files, f.fd);
        let made = creds::as_user(user, || unlinked::make(u, &bytes, &opens))
            .and_then(|r| r)
            .map_err(denied)?;
        out.files.extend(made);
    }
    Ok(())
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
pub fn files(image: &Image, options: &Options) -> Result<Opened, RestoreError> {
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
    let wants = wanted(image);
    leased(&wants)?;
    let stdio: Vec<(usize, PathBuf)> = options
        .stdio
        .files
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.clone()?)))
        .collect();
    let opened = creds::as_user(&user, || {
        let fds = wants
            .iter()
            .map(|w| creds::open_no_symlinks(Path::new(&w.path), w.flags))
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
    for (want, fd) in wants.iter().zip(fds) {
        let fd = fd.map_err(|e| refusal(want, &user, e.into()))?;
        check(&fd, want)?;
        match want.into.clone() {
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
                let path = creds::reopen(std::os::fd::AsFd::as_fd(&fd), libc::O_PATH)
                    .map_err(|e| refusal(want, &user, e.into()))?;
                drop(fd);
                out.watched.insert((n, wd), path);
            }
            Into::Cwd => out.cwd = Some(fd),
        }
    }
    made_again(image, &user, &mut out)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_for_reading_breaks_a_write_lease_one_for_writing_any() {
        let lease = |write, breaking, delegation| ProcLease {
            pid: 5,
            delegation,
            write,
            breaking,
        };
        let (read, write, breaking) = (
            lease(false, false, false),
            lease(true, false, false),
            lease(false, true, false),
        );
        let (read_deleg, write_deleg) = (lease(false, false, true), lease(true, false, true));
        let reading = [libc::O_RDONLY, libc::O_RDONLY | libc::O_NONBLOCK];
        let writing = [
            libc::O_WRONLY,
            libc::O_RDWR,
            libc::O_WRONLY | libc::O_APPEND,
        ];
        for flags in reading {
            assert_eq!(broken_by(&[read], flags), None, "{flags:#o}");
            assert_eq!(broken_by(&[read_deleg], flags), None, "{flags:#o}");
            assert_eq!(broken_by(&[write], flags), Some((5, "a write lease")));
            assert_eq!(
                broken_by(&[write_deleg], flags),
                Some((5, "an NFS delegation"))
            );
            assert_eq!(
                broken_by(&[breaking], flags),
                Some((5, "a lease being broken"))
            );
        }
        for flags in writing {
            assert_eq!(broken_by(&[read], flags), Some((5, "a read lease")));
            assert_eq!(
                broken_by(&[read_deleg], flags),
                Some((5, "an NFS delegation"))
            );
            assert_eq!(broken_by(&[write], flags), Some((5, "a write lease")));
            assert_eq!(
                broken_by(&[breaking], flags),
                Some((5, "a lease being broken"))
            );
        }
        // An `O_PATH` open (the working directory) breaks none.
        for kind in [read, write, breaking, write_deleg] {
            assert_eq!(broken_by(&[kind], libc::O_PATH | libc::O_DIRECTORY), None);
        }
        assert_eq!(broken_by(&[], libc::O_RDWR), None);
    }

    #[test]
    fn a_file_another_holds_a_lease_on_is_refused_before_it_is_opened() {
        let dir = std::env::temp_dir().join(format!("suspend-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let (written, read) = (dir.join("write-leased"), dir.join("read-leased"));
        std::fs::write(&written, b"leased").expect("file");
        std::fs::write(&read, b"leased").expect("file");
        // The other process: this one, holding a write lease on one file
        // and a read lease on the other.
        let holders = [&written, &read].map(|p| std::fs::File::open(p).expect("open"));
        let held = crate::sys::lease::hold(holders[0].as_fd(), true)
            .and_then(|()| crate::sys::lease::hold(holders[1].as_fd(), false));
        if let Err(e) = held {
            eprintln!(
                "NOTE: no lease on {} ({e}); the open's lease test is not run",
                dir.display()
            );
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        let want = |path: &Path, flags| Want {
            what: "open file",
            path: path.display().to_string(),
            flags,
            id: None,
            how: Match::Inode,
            into: Into::Fd(3),
        };
        let refused = [
            leased(&[want(&written, libc::O_RDONLY)]),
            leased(&[want(&read, libc::O_RDONLY), want(&read, libc::O_WRONLY)]),
        ];
        let allowed = [
            leased(&[want(&read, libc::O_RDONLY)]),
            leased(&[want(&written, libc::O_PATH)]),
        ];
        // Asked first: nothing was opened in a way that breaks them.
        let still = holders
            .each_ref()
            .map(|h| crate::sys::lease::held(h.as_fd()).expect("F_GETLEASE"));
        drop(holders);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            still,
            [libc::F_WRLCK, libc::F_RDLCK],
            "a lease is being broken"
        );
        let me = std::process::id();
        assert!(
            matches!(&refused[0], Err(Refusal::OpenLeased { pid, whose: "a write lease", how: "for reading", .. }) if *pid == me),
            "{:?}",
            refused[0]
        );
        assert!(
            matches!(&refused[1], Err(Refusal::OpenLeased { pid, whose: "a read lease", how: "for writing", .. }) if *pid == me),
            "{:?}",
            refused[1]
        );
        for a in allowed {
            assert!(a.is_ok(), "{a:?}");
        }
    }
}
