//! inotify instances: each watch (its watch descriptor, mask and the inode
//! it watches) from the instance's fdinfo, the inode found again by its
//! file handle, so that a file renamed since it was watched is found under
//! its new name ([`watches`]). A resume opens what each watch is on as the
//! process (`restore/open.rs`), its planner puts each on a helper
//! descriptor ([`plan`], given the helpers by `restore/plan/files.rs`), and
//! its restore child makes the instance again and adds each watch under
//! its number ([`make`]).
//!
//! Refused by name, before anything is frozen: events queued and not yet
//! read (a resume cannot queue them again), a watch no path reaches now
//! (its file removed), a watch on anything but a regular file or a
//! directory, and a watch descriptor too high to reach by adding and
//! removing watches. Events that happen while the process is away are not
//! reported to it (as for a process started again).

use std::{
    fs,
    os::{
        fd::{AsFd as _, RawFd},
        unix::fs::MetadataExt as _,
    },
};

use crate::{
    image::format::{File, FileId, INOTIFY_MAX_WD as MAX_WD, InotifyWatch},
    sys::{PidFd, dev, raw},
};

/// What an inotify fd links to.
pub const LINK: &str = "anon_inode:inotify";

/// One `inotify wd:… ino:… sdev:… mask:… … fhandle-bytes:… fhandle-type:…
/// f_handle:…` line of an fdinfo.
#[derive(Debug, PartialEq, Eq)]
struct Line {
    wd: i32,
    ino: u64,
    /// The kernel's device number (major in the top 12 bits of 32).
    sdev: u32,
    mask: u32,
    handle_type: i32,
    handle: Vec<u8>,
}

fn parse(text: &str) -> Option<Vec<Line>> {
    let mut lines = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("inotify ") else {
            continue;
        };
        let field = |key: &str| {
            rest.split_whitespace()
                .find_map(|f| f.strip_prefix(key)?.strip_prefix(':'))
        };
        let hex = |key: &str| u64::from_str_radix(field(key)?, 16).ok();
        let handle_hex = field("f_handle").filter(|h| h.is_ascii())?;
        let handle = (0..handle_hex.len() / 2)
            .map(|i| u8::from_str_radix(&handle_hex[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        if handle.len() as u64 != hex("fhandle-bytes")? {
            return None;
        }
        lines.push(Line {
            wd: hex("wd")? as i32,
            ino: hex("ino")?,
            sdev: hex("sdev")? as u32,
            mask: hex("mask")? as u32,
            handle_type: hex("fhandle-type")? as i32,
            handle,
        });
    }
    lines.sort_by_key(|l| l.wd);
    Some(lines)
}

/// The user-space `dev_t` of a kernel device number.
fn dev_of(sdev: u32) -> u64 {
    dev::makedev(sdev >> 20, sdev & 0xf_ffff)
}

/// A directory of ours on the file system of device `dev` (a mount of it,
/// its root preferred), to open file handles against.
fn mount_of(dev: u64) -> Option<fs::File> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (major, minor) = (dev::major(dev), dev::minor(dev));
    let mut found: Vec<(bool, std::path::PathBuf)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (root, point) = (f.get(3)?, f.get(4)?);
            (f.get(2)? == &format!("{major}:{minor}"))
                .then(|| (*root != "/", crate::procfs::mountinfo_path(point)))
        })
        .collect();
    found.sort();
    found.into_iter().find_map(|(_, point)| {
        use std::os::unix::fs::OpenOptionsExt as _;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(point)
            .ok()
    })
}

/// The file a watch's handle names, if a path reaches it: its path and
/// identity.
fn target(line: &Line) -> Option<FileId> {
    let dev = dev_of(line.sdev);
    let mount = mount_of(dev)?;
    let fd = crate::sys::open_by_handle(mount.as_fd(), line.handle_type, &line.handle).ok()?;
    let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    let path = fs::read_link(&link).ok()?.to_string_lossy().into_owned();
    if !path.starts_with('/') || path.ends_with(" (deleted)") {
        return None;
    }
    let meta = fs::metadata(&link).ok()?;
    // The path must reach that very inode (not through a symbolic link,
    // not hidden under another mount).
    let there = fs::symlink_metadata(&path).ok()?;
    if (there.ino(), there.dev()) != (meta.ino(), meta.dev()) {
        return None;
    }
    (meta.ino() == line.ino && meta.dev() == dev).then(|| FileId {
        path,
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        identity: None,
    })
}

/// The watches of an inotify fd whose fdinfo is `info`, each target found
/// (or `None`); `None` if the fdinfo cannot be read as one.
pub fn watches(info: &str) -> Option<Vec<InotifyWatch>> {
    Some(
        parse(info)?
            .into_iter()
            .map(|line| InotifyWatch {
                wd: line.wd,
                mask: line.mask,
                ino: line.ino,
                target: target(&line),
            })
            .collect(),
    )
}

/// Whether this kernel's fdinfo shows a watch's flags (`IN_ONESHOT`,
/// `IN_EXCL_UNLINK`): 5.19 and later.
fn flags_shown() -> bool {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) >= (5, 19)
}

/// Why inotify fd `f` of `pid` cannot come back, if it cannot.
pub fn refusal(pid: u32, f: &File) -> Option<String> {
    let watches = f.inotify.as_ref()?;
    let named = |why: String| Some(format!("fd {} ({}, {why})", f.fd, f.path));
    if !flags_shown() {
        return named(
            "this kernel's fdinfo does not show a watch's IN_ONESHOT or IN_EXCL_UNLINK (before \
             5.19)"
                .into(),
        );
    }
    if let Some(w) = watches.iter().find(|w| w.target.is_none()) {
        return named(format!(
            "watch {} is on inode {}, which no path reaches now",
            w.wd, w.ino
        ));
    }
    if let Some(w) = watches.iter().find(|w| {
        w.target
            .as_ref()
            .is_some_and(|t| !fs::metadata(&t.path).is_ok_and(|m| m.is_file() || m.is_dir()))
    }) {
        return named(format!(
            "watch {} is on {}, neither a regular file nor a directory",
            w.wd,
            w.target.as_ref().map_or("", |t| t.path.as_str())
        ));
    }
    if let Some(w) = watches.iter().find(|w| w.wd > MAX_WD) {
        return named(format!(
            "watch descriptor {} is above {MAX_WD}: a resume could not give it that number",
            w.wd
        ));
    }
    let queued = PidFd::open(pid)
        .and_then(|p| p.get_fd(f.fd))
        .and_then(|copy| crate::sys::readable_bytes(copy.as_fd()));
    match queued {
        Ok(0) => None,
        Ok(n) => named(format!(
            "{n} bytes of events not yet read: a resume cannot queue them again"
        )),
        Err(e) => named(format!("its queue could not be read: {e}")),
    }
}

// Restore: made again by the restore child.

/// Makes an inotify instance (`flags`: `IN_NONBLOCK`, `IN_CLOEXEC`) with
/// each of `watches` (`(wd, mask, path)`, by number) under its number: the
/// kernel hands numbers out upwards, so a lower one is added, removed and
/// added again until it has it; then the `IN_IGNORED` events the removals
/// queued are read away. Returns the new fd, or -1. Runs in the restore
/// child: no allocation.
///
/// # Safety
/// Only in the restore child, while it makes its files.
pub unsafe fn make(flags: i32, watches: &[(i32, u32, std::ffi::CString)]) -> RawFd {
    /// What a watch keeps of its mask (the other flags act only as it is
    /// added).
    const KEPT: u32 = libc::IN_ALL_EVENTS | libc::IN_ONESHOT | libc::IN_EXCL_UNLINK;
    let fd = raw::inotify_init(flags);
    if fd < 0 {
        return -1;
    }
    let mut removed = false;
    for (wd, mask, path) in watches {
        let mut tries = 0;
        loop {
            let got = raw::inotify_add_watch(fd, path, mask & KEPT);
            if got == *wd {
                break;
            }
            if got < 0 || got > *wd || tries > crate::image::format::INOTIFY_MAX_WD {
                // SAFETY: the instance this function just made.
                unsafe { raw::close(fd) };
                return -1;
            }
            raw::inotify_rm_watch(fd, got);
            removed = true;
            tries += 1;
        }
    }
    let mut buf = [0u8; 4096];
    while removed && raw::bytes_waiting(fd) > 0 && raw::read(fd, &mut buf) > 0 {}
    fd
}

/// `inotify_init1(flags)`, then each watch `(wd, mask, path)` added under
/// its number, in order (`path`: `/proc/self/fd/N` of a helper the
/// process's user opened), as the restore child makes it again
/// ([`make`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Made {
    pub flags: i32,
    pub watches: Vec<(i32, u32, std::ffi::CString)>,
}

/// Inotify instance `watches`, with status flags `flags`, planned to be
/// made again with each watch on its helper of `helpers` (the same order:
/// what it watched, opened beforehand as the process and kept above the
/// image's fds by the restore), reached through `/proc/self/fd`.
pub fn plan(watches: &[InotifyWatch], flags: i32, helpers: &[RawFd]) -> Made {
    Made {
        flags: flags & super::CREATE_FLAGS,
        watches: watches
            .iter()
            .zip(helpers)
            .map(|(w, from)| {
                let path = std::ffi::CString::new(format!("/proc/self/fd/{from}"))
                    .expect("no NUL in a number");
                (w.wd, w.mask, path)
            })
            .collect(),
    }
}

impl super::MakeFd for Made {
    unsafe fn make(&self, fd: RawFd, _scratch: RawFd) -> Result<(), super::Unmade> {
        // SAFETY: in the restore child, while it makes its files (the
        // caller's promise).
        unsafe { super::place(make(self.flags, &self.watches), fd, self.flags) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fdinfo_gives_each_watch_in_order() {
        let text = "pos:\t0\nflags:\t02004000\nmnt_id:\t15\nino:\t1057\n\
            inotify wd:4 ino:2a0f sdev:800001 mask:80000002 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:0f2a00003e2b9c11\n\
            inotify wd:1 ino:2a01 sdev:800001 mask:100 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:012a00003d2b9c11\n";
        let lines = parse(text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].wd, 1);
        assert_eq!(lines[0].mask, 0x100);
        assert_eq!(lines[1].wd, 4);
        assert_eq!(lines[1].ino, 0x2a0f);
        assert_eq!(lines[1].mask, 0x8000_0002);
        assert_eq!(lines[1].sdev, 0x80_0001);
        assert_eq!(lines[1].handle, [0x0f, 0x2a, 0, 0, 0x3e, 0x2b, 0x9c, 0x11]);
        assert_eq!(dev_of(0x80_0001), crate::sys::dev::makedev(8, 1));
        // A handle shorter than it says is not read as one.
        assert!(parse("inotify wd:1 ino:1 sdev:1 mask:2 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:0f\n").is_none());
    }
    #[test]
    fn each_watch_is_planned_on_its_helper_in_order() {
        let watch = |wd, mask| InotifyWatch {
            wd,
            mask,
            ino: 1,
            target: None,
        };
        let made = plan(
            &[watch(1, libc::IN_MODIFY), watch(4, libc::IN_CREATE)],
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_APPEND,
            &[40, 41],
        );
        let path = |n: i32| std::ffi::CString::new(format!("/proc/self/fd/{n}")).unwrap();
        assert_eq!(
            made,
            Made {
                flags: libc::O_NONBLOCK | libc::O_CLOEXEC,
                watches: vec![
                    (1, libc::IN_MODIFY, path(40)),
                    (4, libc::IN_CREATE, path(41))
                ],
            }
        );
    }
}
