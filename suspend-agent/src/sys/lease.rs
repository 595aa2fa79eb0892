//! A lease of this process's own, for tests that need a file someone holds
//! a lease on (the agent itself only probes leases: `lease_free`).

use std::{
    io,
    os::fd::{AsRawFd as _, BorrowedFd},
};

/// Takes a lease (`F_SETLEASE`, a write one if `write`) on `fd` and keeps
/// it; its break is signalled with `SIGURG` (ignored unless handled), not
/// `SIGIO`, which kills.
pub fn hold(fd: BorrowedFd<'_>, write: bool) -> io::Result<()> {
    const F_SETSIG: libc::c_int = 10;
    // SAFETY: F_SETSIG takes an integer, no pointer; `fd` is open.
    if unsafe { libc::fcntl(fd.as_raw_fd(), F_SETSIG, libc::SIGURG) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let kind = if write { libc::F_WRLCK } else { libc::F_RDLCK };
    // SAFETY: F_SETLEASE takes an integer, no pointer; `fd` is open.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETLEASE, kind) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The lease held through `fd` (`F_GETLEASE`): `F_WRLCK`, `F_RDLCK`, or
/// `F_UNLCK`; while one is being broken, what it is being broken to.
pub fn held(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: F_GETLEASE takes no argument; `fd` is open.
    let kind = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETLEASE) };
    if kind < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(kind)
}
