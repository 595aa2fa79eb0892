//! The one place the agent makes raw system calls: every call of a `libc`
//! function is in this module or one below it (`layers.rs` checks it).
//! Where `nix` has a wrapper it is used; the rest (`pidfd_send_signal`
//! with a `siginfo`, `clone3` probing, the ptrace requests `nix` lacks)
//! is here with its `SAFETY` reasoning.
//!
//! A wrapper that can fail returns a [`SyscallError`]: the call's name
//! and its errno, so a message names the call once and a caller that
//! decides on the errno asks `raw_os_error()`. Two exceptions: [`raw`],
//! for a child between `fork` and the end of its copy of the agent, returns
//! raw results and allocates nothing; [`ptrace`] returns `nix`'s `Errno`,
//! as `nix::sys::ptrace` does for the requests it has: its callers name
//! the request in one `PtraceError` for both, and decide on the errno
//! (`EINVAL` for an option the kernel lacks, `EIO` for no rseq, `ENOENT`
//! past the last seccomp filter). What makes no call of its own keeps an
//! `io::Error`: `PidFd::exited` (tokio's wait), `probe::soft_dirty` (file
//! reads and writes of `/proc/self`).

pub mod cpu;
pub mod creds;
pub mod dev;
mod error;
pub mod fd;
#[cfg(test)]
pub mod lease;
pub mod mem;
pub mod pagemap;
mod pidfd;
pub mod pipe;
pub mod probe;
pub mod process;
pub mod ptrace;
pub mod raw;
pub mod sched;
pub mod sockdiag;
mod time;
pub mod uffd;

pub use creds::random;
pub use error::{Result, SyscallError};
pub use pidfd::{PidFd, SigQueueInfo};
pub use time::{boottime_ns, clock_ns};

use std::{
    io,
    os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
};

use nix::{sys::uio, unistd::Pid};

/// Queues `signal` to thread `tid` of `pid` with `si_code = SI_QUEUE`, this
/// process as sender and `value` (a registration's token) as `si_value`:
/// how a parked client thread is told that its process was resumed.
pub fn queue_signal(pid: u32, tid: u32, signal: i32, value: u64) -> Result<()> {
    let mut info = [0u8; 128];
    info[0..4].copy_from_slice(&signal.to_ne_bytes());
    info[8..12].copy_from_slice(&libc::SI_QUEUE.to_ne_bytes());
    // SAFETY: getpid/getuid have no preconditions.
    let (me, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    info[16..20].copy_from_slice(&me.to_ne_bytes());
    info[20..24].copy_from_slice(&uid.to_ne_bytes());
    info[24..32].copy_from_slice(&value.to_ne_bytes());
    // SAFETY: rt_tgsigqueueinfo reads the 128-byte siginfo.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            pid as libc::pid_t,
            tid as libc::pid_t,
            signal,
            info.as_ptr(),
        )
    };
    if ret < 0 {
        return Err(SyscallError::last("rt_tgsigqueueinfo"));
    }
    Ok(())
}

/// `kcmp(pid1, pid2, kind, idx1, idx2) == 0`: the two name the same kernel
/// object.
fn kcmp_same(pid1: u32, pid2: u32, kind: libc::c_int, idx1: u64, idx2: u64) -> Result<bool> {
    // SAFETY: kcmp takes no pointers for the kinds used here (KCMP_FILE,
    // KCMP_VM): the indexes are fd numbers or ignored.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid1 as libc::pid_t,
            pid2 as libc::pid_t,
            kind,
            idx1 as libc::c_ulong,
            idx2 as libc::c_ulong,
        )
    };
    if ret < 0 {
        return Err(SyscallError::last("kcmp"));
    }
    Ok(ret == 0)
}

/// Whether fd `a` of process `pid_a` and fd `b` of process `pid_b` are one
/// open file (`KCMP_FILE`).
pub fn same_file_of(pid_a: u32, a: i32, pid_b: u32, b: i32) -> Result<bool> {
    kcmp_same(pid_a, pid_b, 0, a as u64, b as u64)
}

/// Whether the file epoll instance `efd` of process `pid` watches under fd
/// number `tfd` is the file `tfd` is now (`KCMP_EPOLL_TFD`): `Ok(false)`
/// if `tfd` is another file, an error (`EBADF`) if it is closed.
pub fn epoll_target_is(pid: u32, efd: i32, tfd: i32) -> Result<bool> {
    const KCMP_EPOLL_TFD: libc::c_int = 7;
    let slot: [u32; 3] = [efd as u32, tfd as u32, 0]; // struct kcmp_epoll_slot
    // SAFETY: kcmp reads the 12-byte slot; it writes nothing.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid as libc::pid_t,
            pid as libc::pid_t,
            KCMP_EPOLL_TFD,
            tfd as libc::c_ulong,
            slot.as_ptr(),
        )
    };
    if ret < 0 {
        return Err(SyscallError::last("kcmp"));
    }
    Ok(ret == 0)
}

/// Whether processes `a` and `b` share one address space (`KCMP_VM`): a
/// `vfork` child runs on its parent's memory.
pub fn same_memory(a: u32, b: u32) -> Result<bool> {
    kcmp_same(a, b, 1, 0, 0)
}

/// Whether this kernel has `kcmp` (`CONFIG_KCMP`), asked once.
pub fn kcmp_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let me = std::process::id();
        kcmp_same(me, me, 1, 0, 0).is_ok() // KCMP_VM
    })
}

/// Whether fds `a` and `b` of `pid` are one open file description (a dup)
/// rather than two opens (`KCMP_FILE`).
pub fn same_open_file(pid: u32, a: i32, b: i32) -> Result<bool> {
    kcmp_same(pid, pid, 0, a as u64, b as u64)
}

/// The signal owner of the open file `fd` refers to (`F_GETOWN_EX`: kind
/// `F_OWNER_TID` 0, `_PID` 1, `_PGRP` 2, and the id, 0 for none) and the
/// signal it sends (`F_GETSIG`, 0 for `SIGIO`).
pub fn file_owner(fd: BorrowedFd<'_>) -> Result<(u32, u32, u32)> {
    const F_GETOWN_EX: libc::c_int = 16;
    let mut owner = [0i32; 2]; // struct f_owner_ex { int type; pid_t pid; }
    // SAFETY: F_GETOWN_EX writes one struct f_owner_ex (8 bytes) into `owner`.
    if unsafe { libc::fcntl(fd.as_raw_fd(), F_GETOWN_EX, owner.as_mut_ptr()) } < 0 {
        return Err(SyscallError::last("F_GETOWN_EX"));
    }
    const F_GETSIG: libc::c_int = 11;
    // SAFETY: F_GETSIG takes no argument.
    let signal = unsafe { libc::fcntl(fd.as_raw_fd(), F_GETSIG) };
    if signal < 0 {
        return Err(SyscallError::last("F_GETSIG"));
    }
    Ok((owner[0] as u32, owner[1] as u32, signal as u32))
}

/// `struct flock` for a record lock of `len` bytes from `start` (0: to
/// the end of the file), as `F_SETLK`, `F_OFD_SETLK` and their `GETLK`
/// take it (x86-64 layout, 32 bytes).
pub fn flock_struct(write: bool, start: u64, len: u64) -> [u8; 32] {
    let mut raw = [0u8; 32];
    let kind = if write { libc::F_WRLCK } else { libc::F_RDLCK } as i16;
    raw[0..2].copy_from_slice(&kind.to_ne_bytes());
    raw[2..4].copy_from_slice(&(libc::SEEK_SET as i16).to_ne_bytes());
    raw[8..16].copy_from_slice(&start.to_ne_bytes());
    raw[16..24].copy_from_slice(&len.to_ne_bytes());
    raw
}

/// Whether another open file holds a record lock (POSIX or OFD) that
/// conflicts with the one described, on the file `fd` refers to: the
/// holder's pid (-1 for an OFD lock), from `F_OFD_GETLK`.
pub fn record_lock_holder(
    fd: BorrowedFd<'_>,
    write: bool,
    start: u64,
    len: u64,
) -> Result<Option<i32>> {
    const F_OFD_GETLK: libc::c_int = 36;
    let mut raw = flock_struct(write, start, len);
    // SAFETY: F_OFD_GETLK reads and writes one struct flock (32 bytes).
    if unsafe { libc::fcntl(fd.as_raw_fd(), F_OFD_GETLK, raw.as_mut_ptr()) } < 0 {
        return Err(SyscallError::last("F_OFD_GETLK"));
    }
    let kind = i16::from_ne_bytes([raw[0], raw[1]]);
    let pid = i32::from_ne_bytes([raw[24], raw[25], raw[26], raw[27]]);
    Ok((kind != libc::F_UNLCK as i16).then_some(pid))
}

/// Whether an flock of the kind described could be taken on the file `fd`
/// refers to (taken and let go at once, through `fd`'s own open file).
pub fn flock_free(fd: BorrowedFd<'_>, write: bool) -> Result<bool> {
    let how = if write { libc::LOCK_EX } else { libc::LOCK_SH } | libc::LOCK_NB;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(fd.as_raw_fd(), how) } < 0 {
        let e = SyscallError::last("flock");
        return match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => Ok(false),
            _ => Err(e),
        };
    }
    // SAFETY: as above.
    unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_UN) };
    Ok(true)
}

/// Whether a lease of the kind described (`F_SETLEASE`, read or write)
/// could be taken on the file `fd` refers to now: taken through `fd`'s
/// own open file and let go at once. `false` when the kernel says another
/// open of the file conflicts (`EAGAIN`: a writer, for a read lease; any
/// other open, for a write lease; another's lease being broken). Needs
/// the file's owner or `CAP_LEASE`; leaves `fd`'s signal (`F_SETSIG`)
/// `SIGURG`.
pub fn lease_free(fd: BorrowedFd<'_>, write: bool) -> Result<bool> {
    const F_SETSIG: libc::c_int = 10;
    // Taking it makes this process the file's signal owner: were it
    // broken in the moment it is held, the break would be signalled here,
    // and `SIGIO` (the default) kills. `SIGURG` is ignored unless handled.
    // SAFETY: F_SETSIG takes an integer, no pointer; `fd` is open.
    if unsafe { libc::fcntl(fd.as_raw_fd(), F_SETSIG, libc::SIGURG) } < 0 {
        return Err(SyscallError::last("F_SETSIG"));
    }
    let kind = if write { libc::F_WRLCK } else { libc::F_RDLCK };
    // SAFETY: F_SETLEASE takes an integer, no pointer; `fd` is open.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETLEASE, kind) } < 0 {
        let e = SyscallError::last("F_SETLEASE");
        return match e.raw_os_error() {
            Some(libc::EAGAIN) => Ok(false),
            _ => Err(e),
        };
    }
    // SAFETY: as above.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
    Ok(true)
}

/// Whether `timer_create` can be told the id to take
/// (`PR_TIMER_CREATE_RESTORE_IDS`, Linux 6.15).
pub fn timer_restore_ids() -> bool {
    const PR_TIMER_CREATE_RESTORE_IDS: libc::c_int = 77;
    const GET: libc::c_ulong = 2;
    // SAFETY: a prctl that only reads a flag of this process.
    unsafe { libc::prctl(PR_TIMER_CREATE_RESTORE_IDS, GET, 0, 0, 0) >= 0 }
}

/// `timerfd_gettime` on `fd`: the time to its next expiry (what it also
/// does, as a read would: count the expirations it missed, re-arm it).
pub fn timerfd_gettime(fd: BorrowedFd<'_>) -> Result<[i64; 4]> {
    let mut spec = [0i64; 4];
    // SAFETY: timerfd_gettime writes one struct itimerspec (32 bytes).
    if unsafe { libc::syscall(libc::SYS_timerfd_gettime, fd.as_raw_fd(), spec.as_mut_ptr()) } < 0 {
        return Err(SyscallError::last("timerfd_gettime"));
    }
    Ok(spec)
}

/// How many bytes a read of `fd` would find waiting (`FIONREAD`).
pub fn readable_bytes(fd: BorrowedFd<'_>) -> Result<u32> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) } < 0 {
        return Err(SyscallError::last("FIONREAD"));
    }
    Ok(n as u32)
}

/// Opens (`O_PATH`) the file a file handle names (`open_by_handle_at`):
/// `kind` and `bytes` as `name_to_handle_at` gave them, `mount` any
/// directory of the same file system.
pub fn open_by_handle(mount: BorrowedFd<'_>, kind: i32, bytes: &[u8]) -> Result<OwnedFd> {
    // `struct file_handle`: handle_bytes (u32), handle_type (i32), then
    // the handle.
    let mut handle = Vec::with_capacity(8 + bytes.len());
    handle.extend_from_slice(&(bytes.len() as u32).to_ne_bytes());
    handle.extend_from_slice(&kind.to_ne_bytes());
    handle.extend_from_slice(bytes);
    // SAFETY: the buffer holds a whole struct file_handle of that size;
    // the descriptor returned is ours.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount.as_raw_fd(),
            handle.as_mut_ptr(),
            libc::O_PATH | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(SyscallError::last("open_by_handle_at"));
    }
    // SAFETY: a descriptor open_by_handle_at just returned.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Reads an eventfd's 8-byte value (`eventfd_read`).
pub fn eventfd_read(fd: BorrowedFd<'_>) -> Result<u64> {
    let mut value = 0u64;
    // SAFETY: reads 8 bytes into `value`.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&raw mut value).cast(), 8) };
    match n {
        8 => Ok(value),
        n if n < 0 => Err(SyscallError::last("read (eventfd)")),
        _ => Err(SyscallError::of("read (eventfd)")(io::Error::other(
            "a short read",
        ))),
    }
}

/// Adds `value` to an eventfd's count (`eventfd_write`).
pub fn eventfd_write(fd: BorrowedFd<'_>, value: u64) -> Result<()> {
    // SAFETY: writes the 8 bytes of `value`.
    let n = unsafe { libc::write(fd.as_raw_fd(), (&raw const value).cast(), 8) };
    match n {
        8 => Ok(()),
        n if n < 0 => Err(SyscallError::last("write (eventfd)")),
        _ => Err(SyscallError::of("write (eventfd)")(io::Error::other(
            "a short write",
        ))),
    }
}

/// Writes `buf` at `addr` in process `pid` (`process_vm_writev`), whole.
pub fn write_process_memory(pid: u32, addr: u64, buf: &[u8]) -> Result<()> {
    let local = [io::IoSlice::new(buf)];
    let remote = [uio::RemoteIoVec {
        base: addr as usize,
        len: buf.len(),
    }];
    let n = uio::process_vm_writev(Pid::from_raw(pid as i32), &local, &remote)
        .map_err(SyscallError::of("process_vm_writev"))?;
    if n != buf.len() {
        return Err(SyscallError::of("process_vm_writev")(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("wrote {n} of {} bytes", buf.len()),
        )));
    }
    Ok(())
}

/// Reads `buf.len()` bytes at `addr` in process `pid` (`process_vm_readv`).
/// A short read is an error: callers read small records that must be whole.
pub fn read_process_memory(pid: u32, addr: u64, buf: &mut [u8]) -> Result<()> {
    let len = buf.len();
    let mut local = [io::IoSliceMut::new(buf)];
    let remote = [uio::RemoteIoVec {
        base: addr as usize,
        len,
    }];
    let n = uio::process_vm_readv(Pid::from_raw(pid as i32), &mut local, &remote)
        .map_err(SyscallError::of("process_vm_readv"))?;
    if n != len {
        return Err(SyscallError::of("process_vm_readv")(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("read {n} of {len} bytes"),
        )));
    }
    Ok(())
}

/// Takes an exclusive `flock` on `file` without waiting: `false` if
/// another open file holds it (released when `file` closes).
pub fn try_lock(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock on a descriptor `file` owns.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Starts write-back of `len` bytes of `file` at `offset` without waiting
/// for it (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`): a dump hands
/// each batch to the disk as soon as it is written, so the final `fsync`
/// has little left to wait for. It waits only when the device's queue is
/// full, which paces the copy to the disk.
pub fn start_writeback(file: &std::fs::File, offset: u64, len: u64) -> Result<()> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: sync_file_range takes no pointers; the fd is `file`'s.
    let ret = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if ret < 0 {
        return Err(SyscallError::last("sync_file_range"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{fs, os::fd::AsFd as _};

    use super::*;

    #[test]
    fn a_lease_probe_sees_the_opens_that_conflict_and_leaves_no_lease() {
        let dir = std::env::temp_dir().join(format!("suspend-lease-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("leased");
        fs::write(&path, b"leased").expect("file");
        let ours = fs::File::open(&path).expect("open");
        let lease_now = || {
            // SAFETY: F_GETLEASE takes no argument; `ours` is open.
            unsafe { libc::fcntl(ours.as_raw_fd(), libc::F_GETLEASE) }
        };
        match lease_free(ours.as_fd(), false) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                eprintln!(
                    "NOTE: {} has no leases; the lease probe is not tested",
                    dir.display()
                );
                let _ = fs::remove_dir_all(&dir);
                return;
            }
            free => assert!(free.expect("a read lease"), "nothing conflicts"),
        }
        assert!(
            lease_free(ours.as_fd(), true).expect("a write lease"),
            "its only open"
        );
        assert_eq!(lease_now(), libc::F_UNLCK, "let go");
        let reader = fs::File::open(&path).expect("open");
        assert!(
            lease_free(ours.as_fd(), false).expect("a read lease"),
            "a reader"
        );
        assert!(
            !lease_free(ours.as_fd(), true).expect("a write lease"),
            "another open"
        );
        drop(reader);
        let writer = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        assert!(
            !lease_free(ours.as_fd(), false).expect("a read lease"),
            "a writer"
        );
        drop(writer);
        assert!(
            lease_free(ours.as_fd(), true).expect("a write lease"),
            "alone again"
        );
        assert_eq!(lease_now(), libc::F_UNLCK, "let go");
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
