//! File locks held through open files: the `lock:` lines of each fdinfo
//! (as in `/proc/locks`). Flock, POSIX record and OFD locks go in the
//! image, on the files it holds (taken again in `restore/locks.rs`); a
//! lease, or a lock on a file a resume cannot give back, is refused by
//! name.

use std::fs;

use crate::image::format::{File, FileLock, LockKind};

/// The locks of a fdinfo text (`lock:` lines, as in `/proc/locks`):
/// those an image holds, and those it cannot (leases, named).
pub fn parse_fd_locks(info: &str) -> (Vec<FileLock>, Vec<String>) {
    let (mut locks, mut other) = (Vec::new(), Vec::new());
    for l in info.lines().filter_map(|l| l.strip_prefix("lock:")) {
        // `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`
        let words: Vec<&str> = l.split_whitespace().collect();
        let kind = match words.get(1).copied() {
            Some("FLOCK") => Some(LockKind::Flock),
            Some("POSIX") => Some(LockKind::Posix),
            Some("OFDLCK") => Some(LockKind::Ofd),
            _ => None,
        };
        let write = words.get(3) == Some(&"WRITE");
        let start = words.get(6).and_then(|w| w.parse().ok());
        let end: Option<Option<u64>> = match words.get(7) {
            Some(&"EOF") => Some(None),
            Some(w) => w.parse().ok().map(Some),
            None => None,
        };
        match (kind, start, end) {
            (Some(kind), Some(start), Some(end)) => locks.push(FileLock {
                kind,
                write,
                start,
                end,
            }),
            _ => {
                let name = match words.get(1).copied() {
                    Some("LEASE") | Some("DELEG") => "a lease",
                    _ => "a lock of an unknown kind",
                };
                let mode = words.get(3).map_or(String::new(), |m| format!(" ({m})"));
                other.push(format!("{name}{mode}"));
            }
        }
    }
    (locks, other)
}

/// Why `f` cannot come back, if it holds a lease (read from `pid`'s fdinfo
/// now) or locks on a file a resume cannot give back.
pub fn refusal(pid: u32, f: &File) -> Option<String> {
    // Leases: not in an image (a held process keeps them). Other
    // locks are, on the files an image holds.
    let leases = fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", f.fd))
        .map(|info| parse_fd_locks(&info).1)
        .unwrap_or_default();
    if !leases.is_empty() {
        return Some(format!(
            "fd {} ({}, holds {})",
            f.fd,
            f.path,
            leases.join(" and ")
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
    None
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
        let lease = "lock:\t3: LEASE  ACTIVE    READ 1234 08:01:5678 0 EOF\n";
        assert_eq!(parse_fd_locks(lease).1, ["a lease (READ)"]);
        assert!(parse_fd_locks("pos:\t0\nflags:\t02\n").0.is_empty());
    }
}
