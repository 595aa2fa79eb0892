//! File locks held through open files: the `lock:` lines of each fdinfo
//! (as in `/proc/locks`). Flock, POSIX record and OFD locks and leases go
//! in the image, on the files it holds (taken again in `restore/locks.rs`);
//! a lease being broken, an NFS delegation, a lock of a kind not known, a
//! write lease on a file the process also maps, or a lock on a file a
//! resume cannot give back, is refused by name.

use std::fs;

use crate::image::format::{File, FileLock, LockKind};

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
}
