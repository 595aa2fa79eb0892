//! Pipes: made, sized, and copied from without being drained (`tee`).

use std::os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd};

use super::{Result, SyscallError};

/// A new pipe (`pipe2` with `flags`: `O_CLOEXEC`, `O_NONBLOCK`): its
/// read end, then its write end.
pub fn make(flags: i32) -> Result<(OwnedFd, OwnedFd)> {
    let mut ends = [0; 2];
    // SAFETY: pipe2 fills two ints.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), flags) } < 0 {
        return Err(SyscallError::last("pipe2"));
    }
    // SAFETY: both just made, owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) })
}

/// How many bytes the pipe `end` is one end of can hold
/// (`F_GETPIPE_SZ`).
pub fn capacity(end: BorrowedFd<'_>) -> Result<u32> {
    // SAFETY: F_GETPIPE_SZ takes no argument.
    let size = unsafe { libc::fcntl(end.as_raw_fd(), libc::F_GETPIPE_SZ) };
    if size < 0 {
        return Err(SyscallError::last("F_GETPIPE_SZ"));
    }
    Ok(size as u32)
}

/// Makes the pipe `end` is one end of hold `size` bytes (at least:
/// `F_SETPIPE_SZ` rounds up to whole pages).
pub fn set_capacity(end: BorrowedFd<'_>, size: u32) -> Result<()> {
    // SAFETY: F_SETPIPE_SZ takes an integer, no pointer.
    if unsafe { libc::fcntl(end.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) } < 0 {
        return Err(SyscallError::last("F_SETPIPE_SZ"));
    }
    Ok(())
}

/// Copies up to `len` bytes waiting in the pipe `from` reads from into
/// the pipe `to` writes to, leaving them in `from` (`tee` with `flags`:
/// `SPLICE_F_NONBLOCK`); how many it copied.
pub fn tee(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    len: usize,
    flags: libc::c_uint,
) -> Result<usize> {
    // SAFETY: tee between two pipes; no memory is passed.
    let copied = unsafe { libc::tee(from.as_raw_fd(), to.as_raw_fd(), len, flags) };
    if copied < 0 {
        return Err(SyscallError::last("tee"));
    }
    Ok(copied as usize)
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read as _, Write as _},
        os::fd::AsFd as _,
    };

    use super::*;

    #[test]
    fn a_tee_copies_what_waits_and_leaves_it() {
        let (read, write) = make(libc::O_CLOEXEC | libc::O_NONBLOCK).expect("pipe");
        assert!(capacity(read.as_fd()).expect("F_GETPIPE_SZ") >= 4096);
        std::fs::File::from(write)
            .write_all(b"waiting")
            .expect("write");
        let (copy_read, copy_write) = make(libc::O_CLOEXEC | libc::O_NONBLOCK).expect("pipe");
        set_capacity(copy_write.as_fd(), 1 << 16).expect("F_SETPIPE_SZ");
        assert!(capacity(copy_write.as_fd()).expect("F_GETPIPE_SZ") >= 1 << 16);
        let n = tee(read.as_fd(), copy_write.as_fd(), 7, libc::SPLICE_F_NONBLOCK).expect("tee");
        assert_eq!(n, 7);
        drop(copy_write);
        let mut copied = Vec::new();
        std::fs::File::from(copy_read)
            .read_to_end(&mut copied)
            .expect("read the copy");
        assert_eq!(copied, b"waiting");
        let mut left = [0u8; 16];
        let n = std::fs::File::from(read)
            .read(&mut left)
            .expect("read the original");
        assert_eq!(&left[..n], b"waiting", "tee left it");
    }
}
