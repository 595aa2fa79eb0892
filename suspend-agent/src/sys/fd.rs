//! Descriptors of this process: opened, moved, asked about.

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd, RawFd},
    path::Path,
};

use super::{Result, SyscallError};

/// Opens `path` (`open` with `flags`, and `mode` for a file it creates).
pub fn open(path: &Path, flags: i32, mode: u32) -> Result<OwnedFd> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| SyscallError::of("open")(io::ErrorKind::InvalidInput))?;
    // SAFETY: open with a valid C string; the descriptor is ours.
    let fd = unsafe { libc::open(cpath.as_ptr(), flags, mode as libc::c_uint) };
    if fd < 0 {
        return Err(SyscallError::last("open"));
    }
    // SAFETY: a descriptor open just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A copy of `fd` at the lowest free number from `min` up, close-on-exec
/// (`F_DUPFD_CLOEXEC`).
pub fn dup_at_least(fd: BorrowedFd<'_>, min: RawFd) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer, no pointer.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if new < 0 {
        return Err(SyscallError::last("F_DUPFD_CLOEXEC"));
    }
    // SAFETY: `new` was just returned by F_DUPFD and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// What `fstat` says of the file `fd` refers to.
pub fn stat(fd: BorrowedFd<'_>) -> Result<libc::stat> {
    // SAFETY: a zeroed `struct stat` is a valid value (plain integers).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one struct stat.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(SyscallError::last("fstat"));
    }
    Ok(st)
}

/// `lseek` of `fd` to `offset` with `whence` (`SEEK_SET`, `SEEK_DATA`,
/// `SEEK_HOLE`, …): the offset it lands on.
pub fn seek(fd: BorrowedFd<'_>, offset: u64, whence: libc::c_int) -> Result<u64> {
    // SAFETY: lseek takes no memory.
    let rc = unsafe { libc::lseek(fd.as_raw_fd(), offset as libc::off_t, whence) };
    if rc < 0 {
        return Err(SyscallError::last("lseek"));
    }
    Ok(rc as u64)
}

#[cfg(test)]
mod tests {
    use std::os::{fd::AsFd as _, unix::fs::MetadataExt as _};

    use super::*;

    #[test]
    fn a_descriptor_moved_up_is_the_same_file() {
        let dir = std::env::temp_dir().join(format!("suspend-sys-fd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("file");
        let fd = open(
            &path,
            libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
            0o600,
        )
        .expect("open");
        let meta = std::fs::metadata(&path).expect("stat");
        assert_eq!(meta.mode() & 0o777, 0o600);
        let up = dup_at_least(fd.as_fd(), 200).expect("F_DUPFD_CLOEXEC");
        assert!(up.as_raw_fd() >= 200);
        let st = stat(up.as_fd()).expect("fstat");
        assert_eq!((st.st_dev, st.st_ino), (meta.dev(), meta.ino()));
        assert_eq!(seek(up.as_fd(), 5, libc::SEEK_SET).expect("lseek"), 5);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
