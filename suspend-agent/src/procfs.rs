//! Reading `/proc`: pure parsers (unit-tested on captured text) and thin
//! readers that name the pid and file in every error.

pub mod locks;
pub mod vmas;

pub use locks::{ProcLease, fd_locks_on, parse_flocks_on, parse_leases_on};

use std::{
    fs, io,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use suspend_common::paths::CLIENT_MEMFD_NAME;

use crate::image::format::{FileId, MmFields};

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("pid {pid}: no such process")]
    Gone { pid: u32 },
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: cannot parse {what}")]
    Parse { path: PathBuf, what: &'static str },
}

/// Whether thread `tid` is gone or on its way out (state `Z` or `X`).
pub fn exiting(tid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{tid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

/// What the agent uses from `/proc/PID/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    pub tgid: u32,
    /// Real uid.
    pub uid: u32,
    /// Signals with a handler installed (`SigCgt`), bit `n - 1` for signal `n`.
    pub caught: u64,
    /// Signals ignored (`SigIgn`).
    pub ignored: u64,
}

impl Status {
    /// Whether `signal` has a handler installed.
    pub fn catches(&self, signal: u32) -> bool {
        (1..=64).contains(&signal) && self.caught & (1 << (signal - 1)) != 0
    }
}

/// Parses the text of `/proc/PID/status`.
pub fn parse_status(text: &str) -> Option<Status> {
    let mut status = Status::default();
    let (mut tgid, mut uid, mut caught) = (false, false, false);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => status.name = value.to_owned(),
            "Tgid" => {
                status.tgid = value.parse().ok()?;
                tgid = true;
            }
            "Uid" => {
                status.uid = value.split_whitespace().next()?.parse().ok()?;
                uid = true;
            }
            "SigCgt" => {
                status.caught = u64::from_str_radix(value, 16).ok()?;
                caught = true;
            }
            "SigIgn" => status.ignored = u64::from_str_radix(value, 16).ok()?,
            _ => {}
        }
    }
    (tgid && uid && caught).then_some(status)
}

/// Start time (field 22 of `/proc/PID/stat`, clock ticks since boot). The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat_start_time(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    // After the `)`: field 3 (state) is the first; field 22 is the 20th.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Start address of the client block mapping in `/proc/PID/maps` text: the
/// line of the memfd named [`CLIENT_MEMFD_NAME`].
pub fn find_client_block(maps: &str) -> Option<u64> {
    let needle = format!("/memfd:{CLIENT_MEMFD_NAME}");
    maps.lines()
        .find(|line| {
            line.split_whitespace()
                .nth(5)
                .is_some_and(|path| path == needle)
        })
        .and_then(|line| line.split('-').next())
        .and_then(|start| u64::from_str_radix(start, 16).ok())
}

fn read(pid: u32, file: &str) -> Result<String, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/{file}"));
    fs::read_to_string(&path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound || source.raw_os_error() == Some(libc::ESRCH) {
            ProcError::Gone { pid }
        } else {
            ProcError::Io { path, source }
        }
    })
}

/// What confines one thread, from `/proc/PID/task/TID/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confinement {
    /// `CapInh`, `CapPrm`, `CapEff`, `CapBnd`, `CapAmb`.
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
    pub no_new_privs: bool,
    /// `Seccomp`: 0 none, 1 strict, 2 filter.
    pub seccomp: u32,
}

/// Parses the capability, `NoNewPrivs` and `Seccomp` lines of a status
/// file (every one must be there; `CapAmb` since 4.3, `NoNewPrivs` 4.10).
pub fn parse_confinement(text: &str) -> Option<Confinement> {
    let mut c = Confinement::default();
    let mut seen = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let hex = || u64::from_str_radix(value, 16).ok();
        match key {
            "CapInh" => c.inheritable = hex()?,
            "CapPrm" => c.permitted = hex()?,
            "CapEff" => c.effective = hex()?,
            "CapBnd" => c.bounding = hex()?,
            "CapAmb" => c.ambient = hex()?,
            "NoNewPrivs" => c.no_new_privs = value == "1",
            "Seccomp" => c.seccomp = value.parse().ok()?,
            _ => continue,
        }
        seen += 1;
    }
    (seen == 7).then_some(c)
}

/// Reads the confinement of thread `tid` of `pid`.
pub fn confinement(pid: u32, tid: u32) -> Result<Confinement, ProcError> {
    let file = format!("task/{tid}/status");
    parse_confinement(&read(pid, &file)?).ok_or_else(|| ProcError::Parse {
        path: format!("/proc/{pid}/{file}").into(),
        what: "Cap*/NoNewPrivs/Seccomp",
    })
}

/// Thread ids of `pid` (`/proc/PID/task`).
pub fn tids(pid: u32) -> Result<Vec<u32>, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/task"));
    let entries = fs::read_dir(&path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            ProcError::Gone { pid }
        } else {
            ProcError::Io {
                path: path.clone(),
                source,
            }
        }
    })?;
    Ok(entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect())
}

/// `/proc/PID/limits`: every resource limit as (resource, soft, hard), in
/// resource order (`RLIMIT_CPU` = 0 …), `RLIM_INFINITY` for "unlimited".
/// Unlike `prlimit`, it can be read for a process of another user without
/// `CAP_SYS_RESOURCE`.
pub fn parse_limits(text: &str) -> Option<Vec<(u32, u64, u64)>> {
    let value = |word: &str| {
        if word == "unlimited" {
            Some(u64::MAX)
        } else {
            word.parse().ok()
        }
    };
    let mut limits = Vec::new();
    for (resource, line) in text.lines().skip(1).enumerate() {
        // "%-25s %-20s %-20s %-10s": the name may hold spaces, the values
        // start at column 26.
        let mut words = line.get(26..)?.split_whitespace();
        let soft = value(words.next()?)?;
        let hard = value(words.next()?)?;
        limits.push((resource as u32, soft, hard));
    }
    (limits.len() >= 16).then_some(limits)
}

/// Reads and parses `/proc/PID/limits`.
pub fn limits(pid: u32) -> Result<Vec<(u32, u64, u64)>, ProcError> {
    parse_limits(&read(pid, "limits")?).ok_or_else(|| ProcError::Parse {
        path: format!("/proc/{pid}/limits").into(),
        what: "the limits table",
    })
}

/// Reads and parses `/proc/PID/status`.
pub fn status(pid: u32) -> Result<Status, ProcError> {
    parse_status(&read(pid, "status")?).ok_or_else(|| ProcError::Parse {
        path: format!("/proc/{pid}/status").into(),
        what: "Tgid/Uid/SigCgt",
    })
}

/// Reads the start time of `pid` from `/proc/PID/stat`.
pub fn start_time(pid: u32) -> Result<u64, ProcError> {
    parse_stat_start_time(&read(pid, "stat")?).ok_or_else(|| ProcError::Parse {
        path: format!("/proc/{pid}/stat").into(),
        what: "start time (field 22)",
    })
}

/// The address of the client block of `pid`, if it has one.
pub fn client_block_addr(pid: u32) -> Result<Option<u64>, ProcError> {
    Ok(find_client_block(&read(pid, "maps")?))
}

/// Resident anonymous and shared-memory bytes of `pid` (`RssAnon` +
/// `RssShmem` of `/proc/PID/status`): about what a dump will save.
pub fn resident_bytes(pid: u32) -> Result<u64, ProcError> {
    let text = read(pid, "status")?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("RssAnon:") || l.starts_with("RssShmem:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>()
        * 1024)
}

/// Identity of the file at `path` (following links, so `/proc/PID/exe` and
/// `/proc/PID/fd/N` give the open file's).
pub fn file_id(path: &Path, shown_as: &str) -> Option<FileId> {
    let meta = fs::metadata(path).ok()?;
    Some(FileId {
        path: shown_as.to_owned(),
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        identity: None,
    })
}

/// What `/proc/PID/smaps` says of one mapping that the agent uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Smaps {
    /// Pages present or swapped out (`Rss` or `Swap` above 0).
    pub resident: bool,
    /// `VmFlags`: two-letter flags (`dc`, `hg`, `sl`, …).
    pub flags: Vec<String>,
    /// `ProtectionKey` (only where the CPU has them), 0 for none.
    pub protection_key: u32,
}

/// Every mapping of the text of `/proc/PID/smaps`, by start address.
pub fn parse_smaps(text: &str) -> std::collections::HashMap<u64, Smaps> {
    let mut found = std::collections::HashMap::new();
    let mut current: Option<(u64, Smaps)> = None;
    let number = |v: &str| {
        v.split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
    };
    for line in text.lines() {
        if let Some(kib) = line
            .strip_prefix("Rss:")
            .or_else(|| line.strip_prefix("Swap:"))
        {
            if let Some((_, m)) = &mut current {
                m.resident |= number(kib).unwrap_or(1) > 0;
            }
        } else if let Some(key) = line.strip_prefix("ProtectionKey:") {
            if let Some((_, m)) = &mut current {
                m.protection_key = number(key).unwrap_or(0) as u32;
            }
        } else if let Some(list) = line.strip_prefix("VmFlags:") {
            if let Some((start, mut m)) = current.take() {
                m.flags = list.split_whitespace().map(str::to_owned).collect();
                found.insert(start, m);
            }
        } else if let Some((range, _)) = line.split_once(' ')
            && let Some((start, end)) = range.split_once('-')
            && !end.is_empty()
            && let Ok(start) = u64::from_str_radix(start, 16)
            && let Some((start, m)) = current.replace((start, Smaps::default()))
        {
            found.insert(start, m); // a kernel without VmFlags
        }
    }
    if let Some((start, m)) = current {
        found.insert(start, m);
    }
    found
}

/// Every mapping of `pid`, by start address (see [`parse_smaps`]).
pub fn smaps(pid: u32) -> Result<std::collections::HashMap<u64, Smaps>, ProcError> {
    Ok(parse_smaps(&read(pid, "smaps")?))
}

/// The start address of every mapping of `pid` with pages present or
/// swapped out.
pub fn resident_mappings(pid: u32) -> Result<std::collections::HashSet<u64>, ProcError> {
    Ok(smaps(pid)?
        .into_iter()
        .filter(|(_, m)| m.resident)
        .map(|(start, _)| start)
        .collect())
}

/// Its whole resident memory (`VmRSS`), bytes.
pub fn rss_bytes(pid: u32) -> Result<u64, ProcError> {
    let text = read(pid, "status")?;
    Ok(text
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024)
}

/// The mm fields of `/proc/PID/stat` (fields 26–28 and 45–51).
pub fn parse_stat_mm(text: &str) -> Option<MmFields> {
    let rest = &text[text.rfind(')')? + 1..];
    // Field n (1-based) is at index n - 3 after the `)`.
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let at = |n: usize| f.get(n - 3).copied();
    Some(MmFields {
        start_code: at(26)?,
        end_code: at(27)?,
        start_stack: at(28)?,
        start_data: at(45)?,
        end_data: at(46)?,
        start_brk: at(47)?,
        arg_start: at(48)?,
        arg_end: at(49)?,
        env_start: at(50)?,
        env_end: at(51)?,
    })
}

/// The process group, session and controlling terminal (`tty_nr`, 0 for
/// none) of a `/proc/PID/stat` line: fields 5, 6 and 7.
pub fn parse_stat_session(text: &str) -> Option<(u32, u32, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(2);
    let pgid = f.next()?.parse().ok()?;
    let sid = f.next()?.parse().ok()?;
    let tty = f.next()?.parse::<i64>().ok()?;
    Some((pgid, sid, tty as u64))
}

/// The process group, session and controlling terminal of `pid` (see
/// [`parse_stat_session`]).
pub fn session(pid: u32) -> Result<(u32, u32, u64), ProcError> {
    let text = read(pid, "stat")?;
    parse_stat_session(&text).ok_or(ProcError::Parse {
        path: format!("/proc/{pid}/stat").into(),
        what: "its session",
    })
}

/// The cgroups of `pid`, one `ID:CONTROLLERS:PATH` line of
/// `/proc/PID/cgroup` per hierarchy (`0::PATH` for the unified one).
pub fn cgroups(pid: u32) -> Result<Vec<String>, ProcError> {
    Ok(read(pid, "cgroup")?.lines().map(str::to_owned).collect())
}

/// A path field of `mountinfo` (a mount's root or its mount point) as the
/// path it names: the kernel writes a space, tab, newline and backslash in
/// them as `\040`, `\011`, `\012` and `\134` (any byte `\ooo`, three
/// octal digits, is taken back; a backslash the kernel wrote is always one
/// of those, so no other stands for itself but a malformed one).
pub fn mountinfo_path(field: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStringExt as _;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| {
            matches!(d[0], b'0'..=b'3') && d[1..].iter().all(|c| matches!(c, b'0'..=b'7'))
        });
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out).into()
}

/// Where this process sees the cgroup of a `/proc/PID/cgroup` line, from
/// its `mountinfo` text: in the cgroup2 mount for `0::…`, else in the
/// cgroup mount whose options name every controller of the line. A mount
/// of part of a hierarchy (its root, mountinfo's fourth field, not `/`)
/// holds only the cgroups under that root. Root and mount point are read
/// with their escapes undone ([`mountinfo_path`]).
pub fn cgroup_dir(mountinfo: &str, line: &str) -> Option<std::path::PathBuf> {
    let mut parts = line.splitn(3, ':');
    let (controllers, path) = (parts.nth(1)?, parts.next()?);
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut left = left.split_whitespace();
        let (root, mount_point) = (mountinfo_path(left.nth(3)?), mountinfo_path(left.next()?));
        // A root that is not UTF-8 cannot begin a cgroup line's path.
        let root = root.to_str()?;
        let below = if root == "/" {
            path.trim_start_matches('/')
        } else {
            match path.strip_prefix(root)? {
                "" => "",
                rest => rest.strip_prefix('/')?,
            }
        };
        let mut right = right.split_whitespace();
        let (fstype, options) = (right.next()?, right.nth(1)?);
        let found = if controllers.is_empty() {
            fstype == "cgroup2"
        } else {
            fstype == "cgroup"
                && controllers
                    .split(',')
                    .all(|c| options.split(',').any(|o| o == c))
        };
        found.then(|| match below {
            "" => mount_point,
            below => mount_point.join(below),
        })
    })
}

/// `/proc/PID/coredump_filter` (hexadecimal), where the kernel has it.
pub fn coredump_filter(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/coredump_filter")).ok()?;
    u32::from_str_radix(text.trim(), 16).ok()
}

/// The nice value of `pid`'s autogroup (`/autogroup-N nice V`), where the
/// kernel has autogroups.
pub fn autogroup_nice(pid: u32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/autogroup")).ok()?;
    text.split_whitespace().last()?.parse().ok()
}

/// One timer of `/proc/PID/timers`: (id, clock, notify as in `sigev_notify`,
/// signal, `sigev_value`, the pid or tid it notifies).
pub type ProcTimer = (i32, i32, i32, i32, u64, u32);

/// The POSIX timers of a `/proc/PID/timers` text.
pub fn parse_timers(text: &str) -> Option<Vec<ProcTimer>> {
    let mut timers = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let id = line.strip_prefix("ID:")?.trim().parse().ok()?;
        let (signal, value) = lines
            .next()?
            .strip_prefix("signal:")?
            .trim()
            .split_once('/')?;
        let (how, target) = lines
            .next()?
            .strip_prefix("notify:")?
            .trim()
            .split_once('/')?;
        let clock = lines
            .next()?
            .strip_prefix("ClockID:")?
            .trim()
            .parse()
            .ok()?;
        let (whom, target) = target.split_once('.')?;
        let notify = match how {
            "signal" => 0,
            "none" => 1,
            "thread" => 2,
            _ => return None,
        } | if whom == "tid" { 4 } else { 0 };
        timers.push((
            id,
            clock,
            notify,
            signal.parse().ok()?,
            u64::from_str_radix(value, 16).ok()?,
            target.parse().ok()?,
        ));
    }
    Some(timers)
}

/// The POSIX timers of `pid` (see [`parse_timers`]).
pub fn timers(pid: u32) -> Result<Vec<ProcTimer>, ProcError> {
    parse_timers(&read(pid, "timers")?).ok_or(ProcError::Parse {
        path: format!("/proc/{pid}/timers").into(),
        what: "its POSIX timers",
    })
}

/// `/proc/PID/loginuid`, or `None` where the kernel has no audit.
pub fn loginuid(pid: u32) -> Result<Option<u32>, ProcError> {
    if !std::path::Path::new("/proc/self/loginuid").exists() {
        return Ok(None);
    }
    read(pid, "loginuid")?
        .trim()
        .parse()
        .map(Some)
        .map_err(|_| ProcError::Parse {
            path: format!("/proc/{pid}/loginuid").into(),
            what: "a login uid",
        })
}

/// The mm fields of `pid` (see [`parse_stat_mm`]).
pub fn mm_fields(pid: u32) -> Result<MmFields, ProcError> {
    let text = read(pid, "stat")?;
    parse_stat_mm(&text).ok_or(ProcError::Parse {
        path: format!("/proc/{pid}/stat").into(),
        what: "its mm fields",
    })
}

/// The ids of the SysV semaphore sets of `sets` (`/proc/sysvipc/sem`)
/// that a process with `status` (`/proc/PID/status`) may alter: the
/// write bit of the owner's, group's or others' permissions, as the
/// kernel's `ipcperms` chooses them, or any set with `CAP_IPC_OWNER`.
pub fn alterable_semaphore_sets(sets: &str, status: &str) -> Vec<i32> {
    const CAP_IPC_OWNER: u32 = 15;
    let field = |name: &str| -> Vec<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    // The effective uid (the second of `Uid:`) and, as `in_group_p` has
    // it, the filesystem gid (the fourth of `Gid:`) and the other groups.
    let euid = field("Uid:").get(1).copied();
    let egid = field("Gid:").get(3).copied();
    let groups = field("Groups:");
    let owner = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_IPC_OWNER) != 0);
    let (Some(euid), Some(egid)) = (euid, egid) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    // `key semid perms nsems uid gid cuid cgid otime ctime`
    for line in sets.lines().skip(1) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
        let (Some(id), Some(perms), Some(uid), Some(gid), Some(cuid), Some(cgid)) = (
            words.get(1).and_then(|w| w.parse::<i32>().ok()),
            words.get(2).and_then(|w| u32::from_str_radix(w, 8).ok()),
            number(4),
            number(5),
            number(6),
            number(7),
        ) else {
            continue;
        };
        let granted = if euid == uid || euid == cuid {
            perms >> 6
        } else if [gid, cgid].iter().any(|g| *g == egid || groups.contains(g)) {
            perms >> 3
        } else {
            perms
        };
        if owner || granted & 0o2 != 0 {
            ids.push(id);
        }
    }
    ids
}

/// `btime` of `/proc/stat`: when this machine booted, in seconds since
/// the epoch.
pub fn parse_boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|t| t.trim().parse().ok())
}

/// When this machine booted ([`parse_boot_time`]).
pub fn boot_time() -> Option<u64> {
    parse_boot_time(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Every process (thread-group) id in `/proc`.
pub fn pids() -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc")? {
        if let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// Every process but `pid` and this agent (what the scans for state
/// `pid` shares with others walk).
pub fn other_pids(pid: u32) -> Vec<u32> {
    let me = std::process::id();
    let mut others = pids().unwrap_or_default();
    others.retain(|&p| p != pid && p != me);
    others
}

/// Every fd of a process other than `pid` (and this agent) whose link is
/// one of `links`: (that process, its fd, the link).
pub fn others_holding(
    pid: u32,
    links: &std::collections::BTreeSet<String>,
) -> Vec<(u32, i32, String)> {
    let mut found = Vec::new();
    for other in other_pids(pid) {
        let Ok(fds) = fs::read_dir(format!("/proc/{other}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Some(number) = fd.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let Ok(link) = fs::read_link(fd.path()) else {
                continue;
            };
            let link = link.to_string_lossy();
            if links.contains(link.as_ref()) {
                found.push((other, number, link.into_owned()));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_boot_time_is_btime() {
        let stat = "cpu  1 2 3\nintr 5\nbtime 1796170000\nprocesses 9\n";
        assert_eq!(super::parse_boot_time(stat), Some(1_796_170_000));
        assert_eq!(super::parse_boot_time("cpu 1\n"), None);
    }
    #[test]
    fn posix_timers() {
        let text = "ID: 4\nsignal: 10/0000000000001234\nnotify: signal/pid.8344\nClockID: 0\n\
                    ID: 0\nsignal: 34/0000000000000000\nnotify: thread/tid.8345\nClockID: 1\n";
        assert_eq!(
            parse_timers(text),
            Some(vec![(4, 0, 0, 10, 0x1234, 8344), (0, 1, 6, 34, 0, 8345)])
        );
        assert_eq!(parse_timers(""), Some(vec![]));
        assert_eq!(parse_timers("ID: x\n"), None);
    }

    #[test]
    fn smaps_fields() {
        let text = "7f00-7f01 rw-p 00000000 00:00 0\nRss:                   4 kB\nSwap:                  0 kB\n\
                    ProtectionKey:         3\nVmFlags: rd wr mr mw me ac sl\n\
                    7f02-7f03 rw-p 00000000 00:00 0 [anon:x y]\nRss:                   0 kB\nSwap:                  0 kB\n\
                    VmFlags: rd wr dc\n";
        let m = parse_smaps(text);
        assert_eq!(m.len(), 2);
        assert!(m[&0x7f00].resident && m[&0x7f00].protection_key == 3);
        assert!(m[&0x7f00].flags.contains(&"sl".to_owned()));
        assert!(!m[&0x7f02].resident && m[&0x7f02].flags == ["rd", "wr", "dc"]);
    }

    #[test]
    fn cgroup_mounts() {
        let info = "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                    31 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
                    32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let dir = |line| cgroup_dir(info, line).map(|p| p.display().to_string());
        assert_eq!(
            dir("4:memory:/a").as_deref(),
            Some("/sys/fs/cgroup/memory/a")
        );
        assert_eq!(
            dir("9:name=systemd:/").as_deref(),
            Some("/sys/fs/cgroup/systemd")
        );
        assert_eq!(dir("0::/b").as_deref(), Some("/sys/fs/cgroup/unified/b"));
        assert_eq!(dir("3:cpuset:/"), None);
        // A mount of part of the hierarchy: only what is under its root,
        // and relative to it (a first mount that does not hold it is
        // passed over).
        let part = "40 25 0:30 /box /mnt/box rw - cgroup2 cgroup2 rw\n\
                    41 25 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let dir = |line| cgroup_dir(part, line).map(|p| p.display().to_string());
        assert_eq!(dir("0::/box/app").as_deref(), Some("/mnt/box/app"));
        assert_eq!(dir("0::/box").as_deref(), Some("/mnt/box"));
        assert_eq!(dir("0::/boxer").as_deref(), Some("/sys/fs/cgroup/boxer"));
    }

    #[test]
    fn mountinfo_paths_have_their_escapes_undone() {
        assert_eq!(
            mountinfo_path(r"/mnt/a\040b\011c\012d\134e"),
            std::path::Path::new("/mnt/a b\tc\nd\\e")
        );
        assert_eq!(mountinfo_path("/plain"), std::path::Path::new("/plain"));
        // A byte that is not UTF-8 stays that byte; what is not an escape
        // (too short, not octal, above 255) stays as it is.
        use std::os::unix::ffi::OsStrExt as _;
        assert_eq!(mountinfo_path(r"/x\377").as_os_str().as_bytes(), b"/x\xff");
        assert_eq!(
            mountinfo_path(r"/a\04\8000\400\").as_os_str().as_bytes(),
            br"/a\04\8000\400\"
        );
    }

    #[test]
    fn cgroup_mounts_with_escaped_roots_and_mount_points() {
        // `mount -t cgroup2 none '/mnt/cg roups'`, and a mount of the
        // cgroup `/my box` (a bind mount of a part of the hierarchy) at
        // `/mnt/back\slash`, as mountinfo shows them.
        let info = "40 25 0:30 /my\\040box /mnt/back\\134slash rw - cgroup2 cgroup2 rw\n\
                    41 25 0:30 / /mnt/cg\\040roups rw - cgroup2 cgroup2 rw\n";
        let dir = |line| cgroup_dir(info, line).map(|p| p.display().to_string());
        assert_eq!(
            dir("0::/my box/app").as_deref(),
            Some("/mnt/back\\slash/app")
        );
        assert_eq!(dir("0::/my box").as_deref(), Some("/mnt/back\\slash"));
        assert_eq!(dir("0::/other").as_deref(), Some("/mnt/cg roups/other"));
    }

    #[test]
    fn session_fields() {
        let stat = "4242 (a (b) c) S 1 4240 4100 34816 4242 4194560 0";
        assert_eq!(parse_stat_session(stat), Some((4240, 4100, 34816)));
        assert_eq!(parse_stat_session("7 (x) S 1"), None);
    }

    use super::*;

    #[test]
    fn limits_table() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max file size             unlimited            unlimited            bytes     \n\
Max data size             unlimited            unlimited            bytes     \n\
Max stack size            8388608              unlimited            bytes     \n\
Max core file size        0                    unlimited            bytes     \n\
Max resident set          unlimited            unlimited            bytes     \n\
Max processes             96365                96365                processes \n\
Max open files            1024                 20000                files     \n\
Max locked memory         8388608              8388608              bytes     \n\
Max address space         unlimited            unlimited            bytes     \n\
Max file locks            unlimited            unlimited            locks     \n\
Max pending signals       96365                96365                signals   \n\
Max msgqueue size         819200               819200               bytes     \n\
Max nice priority         0                    0                    \n\
Max realtime priority     0                    0                    \n\
Max realtime timeout      unlimited            unlimited            us        \n";
        let limits = parse_limits(text).unwrap();
        assert_eq!(limits.len(), 16);
        assert_eq!(limits[0], (0, u64::MAX, u64::MAX));
        assert_eq!(limits[3], (3, 8_388_608, u64::MAX));
        assert_eq!(limits[7], (7, 1024, 20000));
        assert_eq!(limits[15], (15, u64::MAX, u64::MAX));
        assert!(parse_limits("Limit\nMax cpu time  x\n").is_none());
    }

    #[test]
    fn confinement_lines() {
        let text = "Name:\tw\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\nCapInh:\t0000000000000400\n\
                    CapPrm:\t00000000000004c1\nCapEff:\t0000000000000001\nCapBnd:\t000001fffffeffff\nCapAmb:\t0000000000000400\n";
        let c = parse_confinement(text).unwrap();
        assert_eq!(
            c,
            Confinement {
                inheritable: 0x400,
                permitted: 0x4c1,
                effective: 1,
                bounding: 0x1ff_fffe_ffff,
                ambient: 0x400,
                no_new_privs: true,
                seccomp: 2,
            }
        );
        assert!(parse_confinement("CapInh:\t0\n").is_none(), "lines missing");
    }

    const STATUS: &str = "Name:\tworkload\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\n\
        Ngid:\t0\nPid:\t4242\nPPid:\t1\nUid:\t1000\t1001\t1002\t1003\nGid:\t0\t0\t0\t0\n\
        SigQ:\t0/95542\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n\
        SigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\nSigCgt:\t3000000000000002\n";

    #[test]
    fn status_fields() {
        let s = parse_status(STATUS).unwrap();
        assert_eq!(s.name, "workload");
        assert_eq!(s.tgid, 4242);
        assert_eq!(s.uid, 1000);
        assert!(s.catches(2)); // SIGINT
        assert!(s.catches(62)); // bit 61
        assert!(s.catches(61)); // bit 60
        assert!(!s.catches(60));
        assert!(!s.catches(0));
        assert!(!s.catches(65));
        assert_eq!(s.ignored, 0x1000);
    }

    #[test]
    fn status_missing_fields_is_none() {
        assert_eq!(parse_status("Name:\tx\nTgid:\t1\n"), None);
        assert_eq!(
            parse_status("Name:\tx\nTgid:\tnope\nUid:\t0\nSigCgt:\t0\n"),
            None
        );
    }

    #[test]
    fn stat_start_time_with_hostile_comm() {
        let stat = "4242 (a) b) c (d) S 1 4242 4242 0 -1 4194560 139 0 0 0 0 0 0 0 20 0 1 0 \
                    987654 2318336 219 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        assert_eq!(parse_stat_start_time(stat), Some(987654));
        assert_eq!(parse_stat_start_time("4242 (x) S 1"), None);
        assert_eq!(parse_stat_start_time("no parens"), None);
    }

    #[test]
    fn client_block_in_maps() {
        let maps = "55d0c0a00000-55d0c0a02000 r--p 00000000 fd:00 1234 /usr/bin/workload\n\
            7f1c2e400000-7f1c2e401000 rw-s 00000000 00:01 5678 /memfd:suspend-client (deleted)\n\
            7f1c2e500000-7f1c2e501000 rw-s 00000000 00:01 5679 /memfd:suspend-client-other (deleted)\n\
            7ffd6a9e0000-7ffd6aa01000 rw-p 00000000 00:00 0 [stack]\n";
        assert_eq!(find_client_block(maps), Some(0x7f1c2e400000));
        assert_eq!(find_client_block("7f00-7f01 rw-p 0 00:00 0 [heap]\n"), None);
    }

    #[test]
    fn stat_mm_fields() {
        // A real line (kernel 6.18), with a command name holding ") (".
        let stat = "4242 (a) (b) S 1 4242 4242 0 -1 4194560 139 0 0 0 0 0 0 0 20 0 1 0 987654 2318336 219 \
            18446744073709551615 94000000000000 94000000100000 140730000000000 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 \
            94000000200000 94000000300000 94000001000000 140730000001000 140730000002000 140730000002000 140730000003000 0";
        let mm = parse_stat_mm(stat).unwrap();
        assert_eq!(mm.start_code, 94000000000000);
        assert_eq!(mm.end_code, 94000000100000);
        assert_eq!(mm.start_stack, 140730000000000);
        assert_eq!(mm.start_data, 94000000200000);
        assert_eq!(mm.end_data, 94000000300000);
        assert_eq!(mm.start_brk, 94000001000000);
        assert_eq!(mm.arg_start, 140730000001000);
        assert_eq!(mm.env_end, 140730000003000);
    }

    #[test]
    fn semaphore_sets_a_process_may_alter() {
        let sets = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n\
                    0 0 600 1 1000 1000 1000 1000 0 1\n\
                    0 1 640 1 70 70 70 70 0 1\n\
                    0 2 660 1 70 27 70 70 0 1\n\
                    0 3 666 1 70 70 70 70 0 1\n\
                    0 4 644 1 70 70 70 70 0 1\n";
        let user = "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n\
                    Groups:\t27 1000\nCapEff:\t0000000000000000\n";
        // Its own set, a group-writable set of a group it is in, and a
        // world-writable one; not a group-readable or world-readable one.
        assert_eq!(alterable_semaphore_sets(sets, user), [0, 2, 3]);
        let root = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\nCapEff:\t000001ffffffffff\n";
        assert_eq!(alterable_semaphore_sets(sets, root), [0, 1, 2, 3, 4]);
        let header_only = "       key      semid perms\n";
        assert!(alterable_semaphore_sets(header_only, user).is_empty());
    }
}
