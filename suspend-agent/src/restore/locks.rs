//! File locks: every flock, POSIX record lock and OFD lock the process
//! held is taken again before any of its threads runs — each through the
//! fd it was held by, by the process itself (a POSIX lock belongs to the
//! process, an flock or OFD lock to its open file). A lock another process
//! holds now is refused before anything is created, naming the holder.
//! (The save half is `dump::files`: the `lock:` lines of each fdinfo.)
//!
//! With `--exit` the locks are let go while the process is away: another
//! process may take one, change the file and let it go meanwhile. So a
//! process that held a lock resumes only if none of the files it had open
//! or mapped shared changed since (size and modification time): a lock's
//! protection may have been broken, and that is refused, named. (A held
//! process keeps its locks throughout.)

use std::os::fd::AsFd as _;

use super::validate::Refusal;
use crate::{
    image::{
        Image,
        format::{File, FileKind, FileLock, LockKind, MappingKind},
    },
    tracee::inject::{Borrowed, InjectError, Site},
};

const F_SETLK: u64 = 6;
const F_OFD_SETLK: u64 = 37;

/// The locks to take: each with its file (a copy's, `dup_of`, is taken
/// through the fd it copies).
fn locks(image: &Image) -> impl Iterator<Item = (&File, &FileLock)> {
    image
        .files
        .iter()
        .filter(|f| f.fd > 2 && f.dup_of.is_none())
        .flat_map(|f| f.locks.iter().map(move |l| (f, l)))
}

fn len(lock: &FileLock) -> u64 {
    lock.end.map_or(0, |end| end + 1 - lock.start)
}

/// Refuses an image whose locks another process holds now, or whose files
/// changed while the process was away without them.
pub fn check(image: &Image) -> Result<(), Refusal> {
    if locks(image).next().is_none() {
        return Ok(());
    }
    let ids = image
        .files
        .iter()
        .filter(|f| f.fd > 2 && f.dup_of.is_none() && f.kind == FileKind::Regular)
        .filter_map(|f| f.id.as_ref())
        .chain(
            image
                .mappings
                .iter()
                .filter(|m| m.kind == MappingKind::SharedFile)
                .filter_map(|m| m.file.as_ref()),
        );
    for id in ids {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(now) = std::fs::metadata(&id.path) else {
            continue; // refused as a file by the open step, by name
        };
        let mtime_ns = now.mtime() * 1_000_000_000 + now.mtime_nsec();
        if now.ino() == id.ino && (now.size() != id.size || mtime_ns != id.mtime_ns) {
            return Err(Refusal::FileChanged {
                what: "a file it had open while it held a lock",
                path: id.path.clone(),
                how: format!(
                    "{}: another process may have taken the lock, which was let go while it \
                     was away",
                    if now.size() == id.size {
                        "modified".to_owned()
                    } else {
                        format!("{} bytes, was {}", now.size(), id.size)
                    }
                ),
            });
        }
    }
    for (f, lock) in locks(image) {
        let taken = |holder: String| Refusal::LockTaken {
            what: format!(
                "{} ({}) on {} (fd {})",
                lock.kind.name(),
                if lock.write { "write" } else { "read" },
                f.path,
                f.fd
            ),
            holder,
        };
        // Asked of the file at its path (as root: only whether a lock is
        // free): no symbolic link followed, a regular file only (nothing
        // that opening could set off, no FIFO to wait on), and not a
        // deleted one (made again by the resume, its own).
        if f.unlinked.is_some() || f.path.ends_with(" (deleted)") {
            continue;
        }
        let file = crate::sys::creds::open_no_symlinks(std::path::Path::new(&f.path), libc::O_PATH)
            .ok()
            .filter(|fd| {
                fd.try_clone()
                    .ok()
                    .map(std::fs::File::from)
                    .and_then(|f| f.metadata().ok())
                    .is_some_and(|m| m.is_file())
            })
            .and_then(|fd| {
                crate::sys::creds::reopen(fd.as_fd(), libc::O_RDONLY | libc::O_NONBLOCK).ok()
            });
        let Some(file) = file else {
            continue; // refused as a file by the open step, by name
        };
        match lock.kind {
            LockKind::Flock => {
                if !crate::sys::flock_free(file.as_fd(), lock.write).unwrap_or(true) {
                    return Err(taken("another open file".into()));
                }
            }
            LockKind::Posix | LockKind::Ofd => {
                let holder =
                    crate::sys::record_lock_holder(file.as_fd(), lock.write, lock.start, len(lock))
                        .unwrap_or(None);
                match holder {
                    Some(-1) => return Err(taken("an OFD lock of another open file".into())),
                    Some(pid) => return Err(taken(format!("pid {pid}"))),
                    None => {}
                }
            }
        }
    }
    Ok(())
}

/// Takes every lock, through `main` (a thread of the process, borrowed).
pub fn take(image: &Image, main: &mut Borrowed, site: &Site) -> Result<(), InjectError> {
    for (f, lock) in locks(image) {
        let fd = f.fd as u64;
        let what = format!(
            "taking {} ({}) on fd {} again",
            lock.kind.name(),
            if lock.write { "write" } else { "read" },
            f.fd
        );
        match lock.kind {
            LockKind::Flock => {
                let how = if lock.write {
                    libc::LOCK_EX
                } else {
                    libc::LOCK_SH
                } | libc::LOCK_NB;
                main.call(&what, libc::SYS_flock, [fd, how as u64, 0, 0, 0, 0])?;
            }
            LockKind::Posix | LockKind::Ofd => {
                let cmd = if lock.kind == LockKind::Posix {
                    F_SETLK
                } else {
                    F_OFD_SETLK
                };
                site.write(
                    0,
                    &crate::sys::flock_struct(lock.write, lock.start, len(lock)),
                )?;
                main.call(&what, libc::SYS_fcntl, [fd, cmd, site.scratch(), 0, 0, 0])?;
            }
        }
    }
    Ok(())
}
