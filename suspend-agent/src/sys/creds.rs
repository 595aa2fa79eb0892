//! Acting on the file system as another user: a resume opens every file
//! the process had with the process's own file-system credentials, so an
//! image can never hand a process a file its owner could not open.
//!
//! Credentials on Linux belong to a thread; glibc makes `setfsuid` and
//! `setgroups` process-wide, the raw system calls do not. [`as_user`]
//! runs a closure on a thread of its own that takes the user's fsuid,
//! fsgid and groups (and no capabilities, unless the user is root), and
//! ends with it: the agent's other threads never change.

use std::{
    ffi::CString,
    io,
    os::fd::{FromRawFd as _, OwnedFd},
    path::Path,
};

use super::{Result, SyscallError};

/// Whose files: the file-system ids and supplementary groups of a process.
#[derive(Clone, Debug)]
pub struct FsUser {
    pub fsuid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    /// The effective capabilities it may use (a root process that dropped
    /// some opens no more than it could); all of them when unknown.
    pub effective: Option<u64>,
}

/// `CAP_SYS_RESOURCE`: raising a hard resource limit, lowering an
/// `oom_score_adj` below one's own.
pub const CAP_SYS_RESOURCE: u64 = 24;

/// `_LINUX_CAPABILITY_VERSION_3`.
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Takes `user`'s credentials on this thread (see the module doc).
fn become_user(user: &FsUser) -> Result<()> {
    // SAFETY: raw setgroups changes this thread's groups only; the slice
    // outlives the call.
    if unsafe { libc::syscall(libc::SYS_setgroups, user.groups.len(), user.groups.as_ptr()) } < 0 {
        return Err(SyscallError::last("setgroups"));
    }
    // SAFETY: setfsgid/setfsuid take an id and change this thread only;
    // each returns the previous value, so a second call tells whether the
    // first took.
    let (gid, uid) = unsafe {
        libc::syscall(libc::SYS_setfsgid, user.fsgid);
        let gid = libc::syscall(libc::SYS_setfsgid, user.fsgid);
        libc::syscall(libc::SYS_setfsuid, user.fsuid);
        (gid, libc::syscall(libc::SYS_setfsuid, user.fsuid))
    };
    if gid != i64::from(user.fsgid) || uid != i64::from(user.fsuid) {
        return Err(SyscallError {
            call: "setfsuid",
            source: io::Error::other(format!(
                "could not take fsuid {} / fsgid {}",
                user.fsuid, user.fsgid
            )),
        });
    }
    if user.fsuid == 0 && user.effective.is_none() {
        return Ok(());
    }
    // An fsuid other than 0 already drops the file-system capabilities;
    // drop the rest of the effective set too (CAP_SYS_PTRACE opens other
    // processes' /proc files). Root keeps what the process had.
    let keep = if user.fsuid == 0 {
        user.effective.unwrap_or(!0)
    } else {
        0
    };
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget/capset on this thread with a v3 header and two data
    // words, as capabilities(7) documents.
    unsafe {
        if libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) < 0 {
            return Err(SyscallError::last("capget"));
        }
        data[0].effective &= keep as u32;
        data[1].effective &= (keep >> 32) as u32;
        if libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) < 0 {
            return Err(SyscallError::last("capset"));
        }
    }
    Ok(())
}

/// Runs `f` on a new thread with `user`'s file-system credentials: an
/// error if the thread could not be made, or take them (the call that
/// failed named in its message).
pub fn as_user<R: Send>(user: &FsUser, f: impl FnOnce() -> R + Send) -> io::Result<R> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("suspend-as-user".into())
            .spawn_scoped(scope, || {
                become_user(user)?;
                Ok(f())
            })
            .map_err(io::Error::other)?
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the opening thread panicked")))
    })
}

/// `struct open_how` of `openat2(2)`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;

/// Opens the absolute `path` with `flags` without following any symbolic
/// link on the way (`openat2` with `RESOLVE_NO_SYMLINKS`): a link planted
/// anywhere in the path fails with `ELOOP`. The paths a process's files
/// had (`/proc/PID/fd`, `/proc/PID/maps`) never contain one.
pub fn open_no_symlinks(path: &Path, flags: i32) -> Result<OwnedFd> {
    create_no_symlinks(path, flags, 0)
}

/// [`open_no_symlinks`] with the `mode` a file it creates gets (with
/// `O_CREAT` or `O_TMPFILE` among `flags`).
pub fn create_no_symlinks(path: &Path, flags: i32, mode: u32) -> Result<OwnedFd> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| SyscallError::of("openat2")(io::ErrorKind::InvalidInput))?;
    // With O_PATH, openat2 takes only the flags that mean something to it.
    let flags = if flags & libc::O_PATH != 0 {
        flags & (libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
    } else {
        flags | libc::O_NOCTTY
    };
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u32 as u64,
        mode: u64::from(mode),
        resolve: RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 with a valid C string and a `struct open_how` of the
    // size passed; the returned descriptor is ours.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            cpath.as_ptr(),
            &raw const how,
            size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(SyscallError::last("openat2"));
    }
    // SAFETY: a descriptor openat2 just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Opens the file `fd` refers to again, with `flags` (a new open file,
/// through `/proc/self/fd`): as whoever calls it.
pub fn reopen(fd: std::os::fd::BorrowedFd<'_>, flags: i32) -> Result<OwnedFd> {
    use std::os::fd::AsRawFd as _;
    let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| SyscallError::of("open")(io::ErrorKind::InvalidInput))?;
    // SAFETY: open with a valid C string; the descriptor is ours.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOCTTY) };
    if fd < 0 {
        return Err(SyscallError::last("open"));
    }
    // SAFETY: a descriptor open just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Removes the file at the absolute `path` if it is still the one the
/// caller made: device, inode and change time (ns) `(dev, ino, ctime_ns)`
/// — an inode number is reused at once on some file systems, a change
/// time nobody sets back. Its directory is opened without following a
/// symbolic link ([`open_no_symlinks`]), the name looked at and removed
/// in that very directory (`fstatat`, `unlinkat`), so a link planted
/// since reaches nothing. `Ok(false)`: something else is there now (left
/// alone), or nothing.
pub fn unlink_if_same(path: &Path, (dev, ino, ctime_ns): (u64, u64, i64)) -> Result<bool> {
    use std::os::fd::AsRawFd as _;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(false);
    };
    let dir = open_no_symlinks(dir, libc::O_PATH | libc::O_DIRECTORY)?;
    let name = CString::new(name.as_encoded_bytes())
        .map_err(|_| SyscallError::of("fstatat")(io::ErrorKind::InvalidInput))?;
    // SAFETY: stat is plain data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstatat with a valid directory fd and C string, writing one
    // stat.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &raw mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc < 0 {
        let e = SyscallError::last("fstatat");
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(false),
            _ => Err(e),
        };
    }
    if st.st_dev != dev
        || st.st_ino != ino
        || st.st_ctime * 1_000_000_000 + st.st_ctime_nsec != ctime_ns
    {
        return Ok(false);
    }
    // SAFETY: unlinkat with a valid directory fd and C string.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } < 0 {
        return Err(SyscallError::last("unlinkat"));
    }
    Ok(true)
}

/// Fills `buf` with random bytes from the kernel (`getrandom`).
pub fn random(buf: &mut [u8]) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: getrandom writes at most the given length into our
        // buffer.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n < 0 {
            let e = SyscallError::last("getrandom");
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        done += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn symlinks_anywhere_in_the_path_are_refused() {
        let dir = std::env::temp_dir().join(format!("suspend-creds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real")).expect("dir");
        std::fs::write(dir.join("real/file"), b"x").expect("file");
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).expect("link");
        std::os::unix::fs::symlink(dir.join("real/file"), dir.join("real/flink")).expect("link");
        assert!(open_no_symlinks(&dir.join("real/file"), libc::O_RDONLY).is_ok());
        for through in ["link/file", "real/flink"] {
            let e = open_no_symlinks(&dir.join(through), libc::O_RDONLY).expect_err(through);
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{through}");
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_user_thread_opens_only_what_the_user_may() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("NOTE: not root; the credential switch is not tested here");
            return;
        }
        let dir = std::env::temp_dir().join(format!("suspend-creds-user-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let secret = dir.join("secret");
        std::fs::write(&secret, b"root only").expect("file");
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let user = FsUser {
            fsuid: 2001,
            fsgid: 2001,
            groups: vec![],
            effective: None,
        };
        let denied = as_user(&user, || open_no_symlinks(&secret, libc::O_RDONLY)).expect("thread");
        assert_eq!(
            denied
                .expect_err("uid 2001 opened a root 0600 file")
                .raw_os_error(),
            Some(libc::EACCES)
        );
        // A file it creates is its own.
        let mine = dir.join("mine");
        as_user(&user, || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&mine)
        })
        .expect("thread")
        .expect_err("uid 2001 cannot write a root 0755 directory");
        let root = FsUser {
            fsuid: 0,
            fsgid: 0,
            groups: vec![0],
            effective: None,
        };
        let fd = as_user(&root, || open_no_symlinks(&secret, libc::O_RDONLY))
            .expect("thread")
            .expect("root opens it");
        assert_eq!(
            std::fs::File::from(fd).metadata().expect("stat").uid(),
            0,
            "the file is root's"
        );
        // Root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: a file of
        // another user's, 0600, is closed to it.
        let theirs = dir.join("theirs");
        std::fs::write(&theirs, b"2001's").expect("file");
        std::os::unix::fs::chown(&theirs, Some(2001), Some(2001)).expect("chown");
        std::fs::set_permissions(&theirs, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let confined = FsUser {
            effective: Some(0),
            ..root.clone()
        };
        let denied =
            as_user(&confined, || open_no_symlinks(&theirs, libc::O_RDONLY)).expect("thread");
        assert_eq!(
            denied
                .expect_err("root without DAC capabilities opened it")
                .raw_os_error(),
            Some(libc::EACCES)
        );
        assert!(
            as_user(&root, || open_no_symlinks(&theirs, libc::O_RDONLY))
                .expect("thread")
                .is_ok()
        );
        // This thread kept its own credentials.
        assert!(std::fs::File::open(&secret).is_ok());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
