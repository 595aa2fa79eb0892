//! File locks and leases as `/proc` shows them: `/proc/locks` (every
//! lock of the machine; each read waits for an RCU grace period, about
//! 20 ms here) and a process's own fdinfo `lock:` lines (cheap, where the
//! holder to ask is known).

use std::{fs, os::unix::fs::MetadataExt as _};

/// A lease (or an NFS delegation) `/proc/locks` shows on a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcLease {
    /// Its holder, in the reader's pid namespace (0 if not seen there).
    pub pid: u32,
    /// `DELEG` rather than `LEASE`.
    pub delegation: bool,
    /// A write lease (not being broken).
    pub write: bool,
    /// Being broken: `BREAKING` (or `UNLCK`, `BREAKER`).
    pub breaking: bool,
}

/// The leases and delegations of a `/proc/locks` text held on the file of
/// device `dev` (`st_dev`), inode `ino`: lines as
/// `3: LEASE  ACTIVE    WRITE 8456 fe:00:10142481 0 EOF` (the device's
/// major and minor in hex); those waiting on another (`3: -> …`) hold
/// nothing and are left out.
pub fn parse_leases_on(text: &str, dev: u64, ino: u64) -> Vec<ProcLease> {
    let file = format!("{}:{ino}", crate::sys::dev::hex(dev));
    text.lines()
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            let delegation = match w.get(1).copied() {
                Some("LEASE") => false,
                Some("DELEG") => true,
                _ => return None, // other locks, and `->` waiters
            };
            if w.get(5).copied() != Some(file.as_str()) {
                return None;
            }
            let (state, kind) = (w.get(2).copied(), w.get(3).copied());
            let breaking = state != Some("ACTIVE") || kind == Some("UNLCK");
            Some(ProcLease {
                pid: w.get(4)?.parse().ok()?,
                delegation,
                write: !breaking && kind == Some("WRITE"),
                breaking,
            })
        })
        .collect()
}

/// The `lock:` lines (in `/proc/locks`' form, without the prefix) of
/// every fd of `pid` open on the file with device `dev` and inode `ino`,
/// from its fdinfo. Cheaper than `/proc/locks`, whose every read waits for
/// an RCU grace period (about 20 ms here), and enough where the holder to
/// ask about is known.
pub fn fd_locks_on(pid: u32, dev: u64, ino: u64) -> String {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return String::new();
    };
    let mut lines = String::new();
    for fd in fds.flatten() {
        let on_file = fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino);
        if !on_file {
            continue;
        }
        let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
        for line in fs::read_to_string(info).unwrap_or_default().lines() {
            if let Some(lock) = line.strip_prefix("lock:") {
                lines.push_str(lock.trim_start());
                lines.push('\n');
            }
        }
    }
    lines
}

/// The holders of flocks (`flock(2)`) of a `/proc/locks` text on the file
/// of device `dev` (`st_dev`), inode `ino`, each with whether its lock is
/// exclusive: lines as `1: FLOCK  ADVISORY  WRITE 812 00:19:1234 0 EOF`;
/// those waiting on another (`1: -> …`) hold nothing and are left out.
pub fn parse_flocks_on(text: &str, dev: u64, ino: u64) -> Vec<(u32, bool)> {
    let file = format!("{}:{ino}", crate::sys::dev::hex(dev));
    text.lines()
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.get(1).copied() != Some("FLOCK") || w.get(5).copied() != Some(file.as_str()) {
                return None;
            }
            Some((w.get(4)?.parse().ok()?, w.get(3).copied() == Some("WRITE")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flock_shows_in_the_holders_own_fdinfo() {
        let path = std::env::temp_dir().join(format!("suspend-fdlock-{}", std::process::id()));
        let file = std::fs::File::create(&path).expect("temp file");
        let meta = file.metadata().expect("metadata");
        let me = std::process::id();
        assert_eq!(
            parse_flocks_on(
                &fd_locks_on(me, meta.dev(), meta.ino()),
                meta.dev(),
                meta.ino()
            ),
            Vec::<(u32, bool)>::new(),
            "no lock yet"
        );
        assert!(crate::sys::try_lock(&file));
        let lines = fd_locks_on(me, meta.dev(), meta.ino());
        assert_eq!(
            parse_flocks_on(&lines, meta.dev(), meta.ino()),
            vec![(me, true)],
            "{lines}"
        );
        drop(file);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn leases_on_a_file() {
        // The first two as a 6.18 kernel wrote them (a write lease being
        // made a read one, a read lease being let go); the rest made up in
        // the same format: another's write lease, a waiter, a delegation,
        // a flock, and a lease on the same inode number of another device.
        let text = "1: LEASE  BREAKING  READ 8456 fe:00:10142481 0 EOF\n\
                    2: LEASE  BREAKING  UNLCK 8456 fe:00:10142465 0 EOF\n\
                    3: LEASE  ACTIVE    WRITE 8457 fe:00:10142465 0 EOF\n\
                    3: -> LEASE  BREAKER   UNLCK 8460 fe:00:10142465 0 EOF\n\
                    4: DELEG  ACTIVE    READ 900 fe:00:10142465 0 EOF\n\
                    5: FLOCK  ADVISORY  WRITE 8458 fe:00:10142465 0 EOF\n\
                    6: LEASE  ACTIVE    READ 8459 08:01:10142465 0 EOF\n";
        let lease = |pid, delegation, write, breaking| ProcLease {
            pid,
            delegation,
            write,
            breaking,
        };
        assert_eq!(
            parse_leases_on(text, crate::sys::dev::makedev(0xfe, 0), 10142465),
            [
                lease(8456, false, false, true),
                lease(8457, false, true, false),
                lease(900, true, false, false),
            ]
        );
        assert_eq!(
            parse_leases_on(text, crate::sys::dev::makedev(0xfe, 0), 10142481),
            [lease(8456, false, false, true)]
        );
        assert_eq!(parse_leases_on(text, crate::sys::dev::makedev(8, 1), 1), []);
    }

    #[test]
    fn flocks_on_a_file() {
        // The first as a 6.12 kernel wrote it for the daemon's lock; the
        // rest made up in the same format: a waiter, a shared flock, a
        // POSIX lock and an flock on the same inode number of another
        // device.
        let text = "1: FLOCK  ADVISORY  WRITE 812 00:19:1234 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 900 00:19:1234 0 EOF\n\
                    2: FLOCK  ADVISORY  READ 813 00:19:1234 0 EOF\n\
                    3: POSIX  ADVISORY  WRITE 814 00:19:1234 0 EOF\n\
                    4: FLOCK  ADVISORY  WRITE 815 08:01:1234 0 EOF\n";
        assert_eq!(
            parse_flocks_on(text, crate::sys::dev::makedev(0, 0x19), 1234),
            [(812, true), (813, false)]
        );
        assert_eq!(
            parse_flocks_on(text, crate::sys::dev::makedev(0, 0x19), 1235),
            []
        );
    }
}
