//! File locks held through open files: every flock, POSIX record lock,
//! OFD lock and lease.
//!
//! Saved: the `lock:` lines of each fdinfo (as in `/proc/locks`), on the
//! files the image holds ([`parse_fd_locks`]). Refused before the freeze
//! ([`refusal`]): a lease being broken, an NFS delegation, a lock of a kind
//! not known, a write lease on a file the process also maps, or a lock on a
//! file a resume cannot give back, by name.
//!
//! Restored: every lock is taken again before any of its threads runs —
//! each through the fd it was held by, by the process itself (a POSIX lock
//! belongs to the process, an flock, OFD lock or lease to its open file):
//! [`take`]. Checked first, before anything is created ([`check`]): a lock
//! another process holds now is refused, naming the holder; so is a lease
//! the kernel would not grant now (another open of the file that conflicts,
//! another's lease, a file no longer the process's own), and a lock on a
//! file another process holds a write lease on (found in `/proc/locks`
//! before the file is opened to ask about the lock: that open would start
//! breaking the lease). The restore names each [`Conflict`] as its refusal.
//!
//! With `--exit` the locks are let go while the process is away: another
//! process may take one, change the file and let it go meanwhile. So a
//! process that held a lock resumes only if none of the files it had open
//! or mapped shared changed since (size and modification time): a lock's
//! protection may have been broken, and that is refused, named. (A held
//! process keeps its locks throughout.)

use std::{
    fs,
    os::{
        fd::{AsFd as _, OwnedFd},
        unix::fs::MetadataExt as _,
    },
};

use crate::{
    image::{
        Image,
        format::{File, FileId, FileKind, FileLock, LockKind, Mapping, MappingKind},
    },
    procfs::ProcLease,
    tracee::inject::{Borrowed, InjectError, Site},
};

// Save: the locks of each fdinfo, and what an image cannot hold.

/// The locks of a fdinfo text (`lock:` lines, as in `/proc/locks`):
/// those an image holds, and those it cannot (named).
pub fn parse_fd_locks(info: &str) -> (Vec<FileLock>, Vec<String>) {
    let (mut locks, mut other) = (Vec::new(), Vec::new());
    for l in info.lines().filter_map(|l| l.strip_prefix("lock:")) {
        let words: Vec<&str> = l.split_whitespace().collect();
        match parse_lock(&words) {
            Ok(lock) => locks.push(lock),
            Err(name) => other.push(name),
        }
    }
    (locks, other)
}

/// One `lock:` line, in words, as `lock_get_status` (`fs/locks.c`) writes
/// it: `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`, `1: POSIX
/// ADVISORY  READ 1234 08:01:5678 0 99`, `1: OFDLCK ADVISORY  …`, `1:
/// LEASE  ACTIVE    READ 1234 08:01:5678 0 EOF` — a lease's state is
/// `ACTIVE`, `BREAKING` (someone opened the file: it is being let go or
/// made a read lease, and the type shown is what it is being broken to)
/// or `BREAKER` (the one waiting), and an NFS delegation says `DELEG`
/// instead of `LEASE`. The lock, or how to name what an image cannot hold.
fn parse_lock(words: &[&str]) -> Result<FileLock, String> {
    let mode = words.get(3).copied().unwrap_or("");
    let write = mode == "WRITE";
    let (kind, state) = (words.get(1).copied(), words.get(2).copied());
    let kind = match kind {
        Some("FLOCK") => LockKind::Flock,
        Some("POSIX") => LockKind::Posix,
        Some("OFDLCK") => LockKind::Ofd,
        Some("LEASE") if state == Some("ACTIVE") && matches!(mode, "READ" | "WRITE") => {
            return Ok(FileLock {
                kind: LockKind::Lease,
                write,
                start: 0,
                end: None,
            });
        }
        Some("LEASE") => {
            return Err(format!(
                "a lease being broken ({} {mode})",
                state.unwrap_or("")
            ));
        }
        Some("DELEG") => return Err(format!("an NFS delegation ({mode})")),
        _ => return Err(format!("a lock of an unknown kind ({mode})")),
    };
    let start = words.get(6).and_then(|w| w.parse().ok());
    let end: Option<Option<u64>> = match words.get(7) {
        Some(&"EOF") => Some(None),
        Some(w) => w.parse().ok().map(Some),
        None => None,
    };
    match (start, end) {
        (Some(start), Some(end)) => Ok(FileLock {
            kind,
            write,
            start,
            end,
        }),
        _ => Err(format!("a lock of an unknown kind ({mode})")),
    }
}

/// Why `f` cannot come back, if it holds what an image cannot (read from
/// `pid`'s fdinfo now: a lease being broken, a delegation), locks on a
/// file a resume cannot give back, or a write lease on a file `pid` also
/// maps.
pub fn refusal(pid: u32, f: &File) -> Option<String> {
    let other = fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", f.fd))
        .map(|info| parse_fd_locks(&info).1)
        .unwrap_or_default();
    if !other.is_empty() {
        return Some(format!(
            "fd {} ({}, holds {})",
            f.fd,
            f.path,
            other.join(" and ")
        ));
    }
    if !f.locks.is_empty() && !f.restorable() {
        let names: Vec<&str> = f.locks.iter().map(|l| l.kind.name()).collect();
        return Some(format!(
            "fd {} ({}, holds {})",
            f.fd,
            f.path,
            names.join(" and ")
        ));
    }
    // A write lease is granted only to the one open of a file, so a
    // mapping of it is one made through that open file (`mmap` opens
    // nothing). A resume maps a file through an open of its own: the
    // lease could not be taken again.
    if f.dup_of.is_none()
        && f.locks.iter().any(|l| l.kind == LockKind::Lease && l.write)
        && let Some(id) = &f.id
        && let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps"))
        && maps_file(&maps, &f.path, id.dev, id.ino)
    {
        return Some(format!(
            "fd {} ({}, holds a write lease on a file it also maps: a resume maps it through an \
             open file of its own, and a write lease needs the file open once)",
            f.fd, f.path
        ));
    }
    None
}

/// Whether a `/proc/PID/maps` text maps the file at `path`, of device
/// `dev` (the kernel writes its `MAJOR:MINOR` in hex), inode `ino` (by
/// either: on overlayfs a mapping shows the inode beneath).
fn maps_file(maps: &str, path: &str, dev: u64, ino: u64) -> bool {
    let dev = crate::sys::dev::hex(dev);
    crate::procfs::vmas::parse(maps)
        .unwrap_or_default()
        .iter()
        .any(|v| (v.inode == ino && v.dev == dev) || v.path == path)
}

// Restore: checked before anything is created, taken again through a
// borrowed thread.

/// What stands in the way of taking the locks again: the restore refuses
/// the image with it (its `Refusal::Lock`).
#[derive(Debug, thiserror::Error)]
pub enum Conflict {
    /// A file it had open while it held a lock changed while it was away:
    /// named as the files kind names one (its `FileChanged`).
    #[error(transparent)]
    FileChanged(super::files::Conflict),
    /// Another process holds a lease on the file that opening it would
    /// start breaking.
    #[error(
        "it held {what}; pid {pid} holds {whose} on that file now, which opening the file (to \
         check the lock, and to resume) would start breaking; resume it once that is let go"
    )]
    FileLeased {
        what: String,
        pid: u32,
        whose: &'static str,
    },
    /// Another process holds the lock now.
    #[error("it held {what}, which {holder} holds now; resume it once that is let go")]
    LockTaken { what: String, holder: String },
    /// The kernel would not give the lease now.
    #[error("it held {what}, which the kernel would not give it now: {why}")]
    LeaseRefused { what: String, why: String },
}

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
pub fn check(image: &Image) -> Result<(), Conflict> {
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
        let Ok(now) = std::fs::metadata(&id.path) else {
            continue; // refused as a file by the open step, by name
        };
        let mtime_ns = now.mtime() * 1_000_000_000 + now.mtime_nsec();
        if now.ino() == id.ino && (now.size() != id.size || mtime_ns != id.mtime_ns) {
            return Err(Conflict::FileChanged(super::files::Conflict::FileChanged {
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
            }));
        }
    }
    // Read once for all: who holds leases, before any file is opened.
    let proc_locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    for (f, lock) in locks(image) {
        // Asked of the file at its path (as root: only whether a lock is
        // free, or a lease could be had, taken and let go at once): no
        // symbolic link followed, a regular file only (nothing that
        // opening could set off, no FIFO to wait on), and not a deleted
        // one (made again by the resume, its own).
        if f.unlinked.is_some() || f.path.ends_with(" (deleted)") {
            continue;
        }
        let file = crate::sys::creds::open_no_symlinks(std::path::Path::new(&f.path), libc::O_PATH)
            .ok()
            .and_then(|fd| {
                let meta = fd
                    .try_clone()
                    .ok()
                    .map(std::fs::File::from)
                    .and_then(|f| f.metadata().ok())
                    .filter(|m| m.is_file())?;
                Some((fd, meta))
            });
        let Some((file, meta)) = file else {
            continue; // refused as a file by the open step, by name
        };
        let reopen =
            || crate::sys::creds::reopen(file.as_fd(), libc::O_RDONLY | libc::O_NONBLOCK).ok();
        match lock.kind {
            LockKind::Lease => lease(image, f, lock.write, &meta, &proc_locks, reopen)?,
            _ => lock_free(f, lock, &meta, &proc_locks, reopen)?,
        }
    }
    Ok(())
}

/// What `lock` (a flock, POSIX or OFD lock) on `f` is called in a refusal.
fn describe(f: &File, lock: &FileLock) -> String {
    format!(
        "{} ({}) on {} (fd {})",
        lock.kind.name(),
        if lock.write { "write" } else { "read" },
        f.path,
        f.fd
    )
}

/// Refuses a flock, POSIX or OFD `lock` of `f` that another process holds
/// now, asked on an open of ours of the file at its path (`meta`,
/// `reopen`: for reading). Before that open, a lease of another's on the
/// file (`proc_locks`, the text of `/proc/locks`) that the open would start
/// breaking — a write lease, or one being broken — is refused, naming its
/// holder, and nothing is opened: the holder would be told to let go of it
/// for a resume that is then refused (and the resume's own open would
/// break it too).
fn lock_free(
    f: &File,
    lock: &FileLock,
    meta: &std::fs::Metadata,
    proc_locks: &str,
    reopen: impl FnOnce() -> Option<OwnedFd>,
) -> Result<(), Conflict> {
    let leases = crate::procfs::parse_leases_on(proc_locks, meta.dev(), meta.ino());
    if let Some((pid, whose)) = in_the_way(&leases, false) {
        return Err(Conflict::FileLeased {
            what: describe(f, lock),
            pid,
            whose,
        });
    }
    let taken = |holder: String| Conflict::LockTaken {
        what: describe(f, lock),
        holder,
    };
    let Some(file) = reopen() else {
        return Ok(()); // refused as a file by the open step, by name
    };
    if lock.kind == LockKind::Flock {
        if !crate::sys::flock_free(file.as_fd(), lock.write).unwrap_or(true) {
            return Err(taken("another open file".into()));
        }
        return Ok(());
    }
    let holder = crate::sys::record_lock_holder(file.as_fd(), lock.write, lock.start, len(lock))
        .unwrap_or(None);
    match holder {
        Some(-1) => Err(taken("an OFD lock of another open file".into())),
        Some(pid) => Err(taken(format!("pid {pid}"))),
        None => Ok(()),
    }
}

/// The first of `leases` (other processes' on one file, from
/// `/proc/locks`) that conflicts with a lease of the resume's own or with
/// an open of the file for reading, with its holder and what it is. A
/// write lease (`exclusive`) conflicts with any; a read lease, or an open
/// for reading (`!exclusive`), with a write lease or one being broken.
pub fn in_the_way(leases: &[ProcLease], exclusive: bool) -> Option<(u32, &'static str)> {
    leases
        .iter()
        .find(|o| exclusive || o.write || o.breaking)
        .map(|o| {
            let whose = match o {
                o if o.breaking && o.delegation => "an NFS delegation being broken",
                o if o.breaking => "a lease being broken",
                o if o.delegation => "an NFS delegation",
                o if o.write => "a write lease",
                _ => "a read lease",
            };
            (o.pid, whose)
        })
}

/// Refuses a lease the kernel would not give the process now (`F_SETLEASE`
/// fails with `EAGAIN` or `EACCES`): the file at the path of `f` (`meta`)
/// is no longer the process's and it lacks `CAP_LEASE`, another process
/// holds a lease on it that conflicts (read from `/proc/locks` before the
/// file is opened: an open would start breaking a write lease), or another
/// open of it conflicts — for a read lease, one for writing anywhere; for
/// a write lease, any other (tried on an open of ours, `reopen`, and let
/// go at once).
fn lease(
    image: &Image,
    f: &File,
    write: bool,
    meta: &std::fs::Metadata,
    proc_locks: &str,
    reopen: impl FnOnce() -> Option<OwnedFd>,
) -> Result<(), Conflict> {
    const CAP_LEASE: u32 = 28;
    let refused = |why: String| Conflict::LeaseRefused {
        what: format!(
            "a {} lease on {} (fd {})",
            if write { "write" } else { "read" },
            f.path,
            f.fd
        ),
        why,
    };
    let fsuid = image.process.creds.uid[3];
    let lacks_cap_lease = image
        .threads
        .iter()
        .find(|t| t.tid == image.process.pid)
        .and_then(|t| t.confinement.as_ref())
        .is_some_and(|c| c.effective & (1 << CAP_LEASE) == 0);
    if meta.uid() != fsuid && lacks_cap_lease {
        return Err(refused(format!(
            "the file is owned by uid {} now, not by the process's user (uid {fsuid}), and it \
             has no CAP_LEASE",
            meta.uid()
        )));
    }
    let others = crate::procfs::parse_leases_on(proc_locks, meta.dev(), meta.ino());
    if let Some((pid, whose)) = in_the_way(&others, write) {
        return Err(refused(format!("pid {pid} holds {whose} on it")));
    }
    // A write lease is granted to the one open of a file only: where the
    // image has it open more than once (or maps it, or runs it), the
    // original could not have held it either; `take` says what the kernel
    // says.
    let exe = image.process.exe.as_ref();
    if write && opens(f, &image.files, &image.mappings, exe) != 1 {
        return Ok(());
    }
    let Some(file) = reopen() else {
        return Ok(()); // refused as a file by the open step, by name
    };
    match crate::sys::lease_free(file.as_fd(), write) {
        Ok(false) if write => Err(refused(
            "another process has the file open now (a write lease needs it open by no one else)"
                .into(),
        )),
        Ok(false) => Err(refused(
            "the file is open for writing now (a read lease needs no writer anywhere)".into(),
        )),
        // Not one of the conflicts above: `take` says what the kernel says.
        Ok(true) | Err(_) => Ok(()),
    }
}

/// How many open files of `f`'s file a resume makes: the image's fds
/// of it (`files` that are not copies of another, `dup_of`; stdio is the
/// resume command's), one for its `mappings` of it, one for its `exe`.
fn opens(f: &File, files: &[File], mappings: &[Mapping], exe: Option<&FileId>) -> usize {
    let same = |path: &str, id: Option<&FileId>| {
        path == f.path
            || matches!((id, &f.id), (Some(a), Some(b)) if a.dev == b.dev && a.ino == b.ino)
    };
    let fds = files
        .iter()
        .filter(|o| o.fd > 2 && o.dup_of.is_none() && same(&o.path, o.id.as_ref()))
        .count();
    let mapped = mappings.iter().any(|m| {
        matches!(m.kind, MappingKind::PrivateFile | MappingKind::SharedFile)
            && same(
                m.file.as_ref().map_or(&m.path, |id| &id.path),
                m.file.as_ref(),
            )
    });
    let exe = exe.is_some_and(|e| same(&e.path, Some(e)));
    fds + usize::from(mapped) + usize::from(exe)
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
            LockKind::Lease => {
                // The break is signalled to the file's owner with its
                // signal (`F_SETSIG`). Taking the lease makes the process
                // the owner only if the file has none (`lease_setup`:
                // `__f_setown` without force), and the owner saved — the
                // process, which the lease made it, unless it named
                // another — is given after this by `F_SETOWN_EX`, which
                // replaces any (`owners::give_back`): the same owner
                // either way, whichever comes first. The lease also sets
                // the file's `O_ASYNC`, which the image has among its
                // flags and which does not carry the break.
                let kind = if lock.write {
                    libc::F_WRLCK
                } else {
                    libc::F_RDLCK
                };
                main.call(
                    &what,
                    libc::SYS_fcntl,
                    [fd, libc::F_SETLEASE as u64, kind as u64, 0, 0, 0],
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_are_named() {
        let info = "pos:\t0\nflags:\t02\nmnt_id:\t26\nino:\t5678\n\
                    lock:\t1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF\n\
                    lock:\t2: POSIX  ADVISORY  READ 1234 08:01:5678 0 99\n";
        let (locks, other) = parse_fd_locks(info);
        assert_eq!(
            locks,
            [
                FileLock {
                    kind: LockKind::Flock,
                    write: true,
                    start: 0,
                    end: None
                },
                FileLock {
                    kind: LockKind::Posix,
                    write: false,
                    start: 0,
                    end: Some(99)
                }
            ]
        );
        assert!(other.is_empty());
        assert!(parse_fd_locks("pos:\t0\nflags:\t02\n").0.is_empty());
    }

    /// Lines a 6.18 kernel wrote: a read and a write lease, then the same
    /// two after a child opened each file (`O_NONBLOCK`): the read lease
    /// is being let go, the write lease made a read one.
    #[test]
    fn active_leases_are_saved_and_leases_being_broken_are_named() {
        let lease = |write| FileLock {
            kind: LockKind::Lease,
            write,
            start: 0,
            end: None,
        };
        let info = "pos:\t0\nflags:\t0120000\nmnt_id:\t27\nino:\t10142465\n\
                    lock:\t1: LEASE  ACTIVE    READ 8456 fe:00:10142465 0 EOF\n";
        assert_eq!(parse_fd_locks(info), (vec![lease(false)], vec![]));
        let info = "lock:\t1: LEASE  ACTIVE    WRITE 8456 fe:00:10142481 0 EOF\n";
        assert_eq!(parse_fd_locks(info), (vec![lease(true)], vec![]));
        let info = "lock:\t1: LEASE  BREAKING  UNLCK 8456 fe:00:10142465 0 EOF\n";
        assert_eq!(
            parse_fd_locks(info),
            (
                vec![],
                vec!["a lease being broken (BREAKING UNLCK)".to_owned()]
            )
        );
        let info = "lock:\t1: LEASE  BREAKING  READ 8456 fe:00:10142481 0 EOF\n";
        assert_eq!(
            parse_fd_locks(info).1,
            ["a lease being broken (BREAKING READ)"]
        );
        // What lock_get_status can write besides (not seen in a fdinfo
        // here): the breaker's own entry, an active lease of no type, an
        // NFS delegation, a kind it does not know.
        let info = "lock:\t1: LEASE  BREAKER   READ 8456 fe:00:10142481 0 EOF\n\
                    lock:\t2: LEASE  ACTIVE    UNLCK 8456 fe:00:10142481 0 EOF\n\
                    lock:\t3: DELEG  ACTIVE    READ 8456 fe:00:10142481 0 EOF\n\
                    lock:\t4: UNKNOWN UNKNOWN  WRITE 8456 fe:00:10142481 0 EOF\n\
                    lock:\t5: FLOCK  ADVISORY  WRITE 8456 fe:00:10142481 0 EOF\n";
        let (locks, other) = parse_fd_locks(info);
        assert_eq!(
            other,
            [
                "a lease being broken (BREAKER READ)",
                "a lease being broken (ACTIVE UNLCK)",
                "an NFS delegation (READ)",
                "a lock of an unknown kind (WRITE)",
            ]
        );
        assert_eq!(locks.len(), 1);
        assert_eq!(locks[0].kind, LockKind::Flock);
    }

    #[test]
    fn a_mapping_of_the_file_is_found_by_inode_or_path() {
        let maps = "\
7f0000000000-7f0000001000 r--s 00000000 fe:00 10142481                   /tmp/d/leased
7f0000001000-7f0000002000 rw-p 00000000 00:00 0
";
        let dev = crate::sys::dev::makedev(0xfe, 0);
        assert!(maps_file(maps, "/elsewhere", dev, 10142481));
        assert!(maps_file(maps, "/tmp/d/leased", dev, 1));
        assert!(!maps_file(maps, "/tmp/d/other", dev, 10142465));
        assert!(!maps_file(
            maps,
            "/tmp/d/other",
            crate::sys::dev::makedev(8, 1),
            10142481
        ));
    }

    #[test]
    fn an_open_for_reading_is_in_the_way_of_a_write_lease_or_one_being_broken() {
        let lease = |pid, delegation, write, breaking| ProcLease {
            pid,
            delegation,
            write,
            breaking,
        };
        let read = [lease(5, false, false, false), lease(6, true, false, false)];
        assert_eq!(in_the_way(&read, false), None);
        assert_eq!(in_the_way(&read, true), Some((5, "a read lease")));
        let write = [lease(5, false, false, false), lease(7, false, true, false)];
        assert_eq!(in_the_way(&write, false), Some((7, "a write lease")));
        let breaking = [lease(8, false, false, true)];
        assert_eq!(
            in_the_way(&breaking, false),
            Some((8, "a lease being broken"))
        );
        let delegation = [lease(9, true, true, false)];
        assert_eq!(
            in_the_way(&delegation, false),
            Some((9, "an NFS delegation"))
        );
        assert_eq!(in_the_way(&[], true), None);
    }

    #[test]
    fn a_lock_is_not_checked_through_an_open_that_would_break_anothers_write_lease() {
        let dir = std::env::temp_dir().join(format!("suspend-locks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("leased");
        std::fs::write(&path, b"leased").expect("file");
        // The other process: this one, holding a write lease.
        let holder = std::fs::File::open(&path).expect("open");
        if let Err(e) = crate::sys::lease::hold(holder.as_fd(), true) {
            eprintln!(
                "NOTE: no write lease on {} ({e}); the lock check's lease test is not run",
                dir.display()
            );
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        let proc_locks = std::fs::read_to_string("/proc/locks").expect("/proc/locks");
        let meta = std::fs::metadata(&path).expect("stat");
        let f = File::bare(3, FileKind::Regular, &path.display().to_string());
        let mut opened = false;
        let refused: Vec<_> = [LockKind::Flock, LockKind::Posix, LockKind::Ofd]
            .into_iter()
            .map(|kind| {
                let lock = FileLock {
                    kind,
                    write: true,
                    start: 0,
                    end: None,
                };
                let reopen = || {
                    opened = true;
                    crate::sys::creds::reopen(holder.as_fd(), libc::O_RDONLY | libc::O_NONBLOCK)
                        .ok()
                };
                (kind, lock_free(&f, &lock, &meta, &proc_locks, reopen))
            })
            .collect();
        // Asked first, so that without the check the test says what broke.
        assert_eq!(
            crate::sys::lease::held(holder.as_fd()).expect("F_GETLEASE"),
            libc::F_WRLCK,
            "the write lease is being broken"
        );
        assert!(!opened, "the file was opened");
        for (kind, refused) in refused {
            assert!(
                matches!(
                    &refused,
                    Err(Conflict::FileLeased { pid, whose: "a write lease", .. })
                        if *pid == std::process::id()
                ),
                "{kind:?}: {refused:?}"
            );
        }
        drop(holder);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    fn file(fd: i32, path: &str, ino: u64) -> File {
        File {
            id: Some(FileId {
                path: path.into(),
                dev: 0xfe00,
                ino,
                size: 6,
                mtime_ns: 0,
                identity: None,
            }),
            ..File::bare(fd, FileKind::Regular, path)
        }
    }

    #[test]
    fn a_write_lease_is_tried_only_on_a_file_a_resume_opens_once() {
        let leased = file(3, "/tmp/d/w", 7);
        let mut files = vec![leased.clone(), file(4, "/tmp/d/r", 8)];
        assert_eq!(opens(&leased, &files, &[], None), 1);
        // A dup of it is the same open file; stdio is not the process's.
        files.push(File {
            dup_of: Some(3),
            ..file(5, "/tmp/d/w", 7)
        });
        files.push(file(1, "/tmp/d/w", 7));
        assert_eq!(opens(&leased, &files, &[], None), 1);
        // Another open of it, by another name (a hard link).
        files.push(file(6, "/tmp/d/link", 7));
        assert_eq!(opens(&leased, &files, &[], None), 2);
        // Its mappings (one open for all) and its executable.
        let mapped = |path: &str| Mapping {
            start: 0x7f00_0000_0000,
            end: 0x7f00_0000_1000,
            perms: "r--s".into(),
            offset: 0,
            path: path.into(),
            kind: MappingKind::SharedFile,
            file: leased.id.clone(),
            pages: Vec::new(),
            advice: Vec::new(),
            sealed: false,
        };
        let maps = [mapped("/tmp/d/w"), mapped("/tmp/d/w")];
        assert_eq!(opens(&leased, &files[..2], &maps, None), 2);
        assert_eq!(opens(&leased, &files[..2], &[], leased.id.as_ref()), 2);
    }

    #[test]
    fn a_file_changed_while_its_lock_was_let_go_is_named_as_the_files_kind_names_one() {
        let err = Conflict::FileChanged(crate::state::files::Conflict::FileChanged {
            what: "a file it had open while it held a lock",
            path: "/tmp/db".into(),
            how: "modified".into(),
        });
        assert_eq!(
            err.to_string(),
            "a file it had open while it held a lock /tmp/db changed since the image was taken \
             (modified)"
        );
    }
}
