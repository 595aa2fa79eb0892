//! The calls made in a child between `fork`/`clone` and the end of its
//! copy of the agent (the restore child's jump into the stub, a spawned
//! command's `exec`): async-signal-safe thin wrappers, each one call,
//! that allocate nothing, take no lock and cannot panic. Each returns
//! what the call returns (-1 or a negative value on failure), with errno
//! left for [`errno`] to read: the restore child reports it as its
//! step's failure. Everywhere else, the `io::Result` wrappers of the
//! other modules.
//!
//! They take raw descriptor numbers: in such a child every descriptor is
//! its own, and none is used again by the code it copied. Those that
//! close or replace a descriptor (which could pull it from under an
//! `OwnedFd`) are `unsafe fn`s.

use std::{ffi::CStr, os::fd::RawFd};

/// `_IOW('T', 0, u64)`: a timerfd's count of unread expirations.
const TFD_IOC_SET_TICKS: libc::c_ulong = 0x4008_5400;
/// glibc's rseq signature on x86-64.
const RSEQ_SIG: u32 = 0x5305_3053;
const RSEQ_FLAG_UNREGISTER: i32 = 1;

unsafe extern "C" {
    /// glibc (2.35+): where this thread's rseq area is, from the thread
    /// pointer, and its size (0: not registered).
    static __rseq_offset: isize;
    static __rseq_size: libc::c_uint;
}

/// This thread's errno: why the call just made failed.
#[inline]
pub fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() }
}

/// Ends the process with `code` at once (`_exit`: no exit handler, no
/// destructor, nothing flushed).
#[inline]
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and never returns.
    unsafe { libc::_exit(code) }
}

/// `write` of `buf` to `fd`.
#[inline]
pub fn write(fd: RawFd, buf: &[u8]) -> isize {
    // SAFETY: the kernel reads at most `buf.len()` bytes of `buf`.
    unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }
}

/// `write` of the bytes of `value` to `fd`.
#[inline]
pub fn write_value<T: Copy>(fd: RawFd, value: &T) -> isize {
    // SAFETY: the kernel reads the `size_of::<T>()` bytes of `value`.
    unsafe { libc::write(fd, (value as *const T).cast(), size_of::<T>()) }
}

/// `read` from `fd` into `buf`.
#[inline]
pub fn read(fd: RawFd, buf: &mut [u8]) -> isize {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }
}

/// `close` of `fd`.
///
/// # Safety
/// Nothing that will run again owns `fd` (an `OwnedFd`, a `File`).
#[inline]
pub unsafe fn close(fd: RawFd) -> libc::c_int {
    // SAFETY: the caller vouches for `fd`; no memory is passed.
    unsafe { libc::close(fd) }
}

/// `close_range(first, last, 0)`: closes every descriptor from `first` to
/// `last`.
///
/// # Safety
/// As for [`close`], for each of them.
#[inline]
pub unsafe fn close_range(first: u32, last: u32) -> libc::c_long {
    // SAFETY: the caller vouches for the descriptors; no memory is passed.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) }
}

/// `dup2(from, to)`: `to` (closed first if open) is `from`'s open file.
///
/// # Safety
/// As for [`close`], for `to`.
#[inline]
pub unsafe fn dup2(from: RawFd, to: RawFd) -> libc::c_int {
    // SAFETY: the caller vouches for `to`; no memory is passed.
    unsafe { libc::dup2(from, to) }
}

/// `dup3(from, to, flags)` (`flags`: `O_CLOEXEC` or 0).
///
/// # Safety
/// As for [`close`], for `to`.
#[inline]
pub unsafe fn dup3(from: RawFd, to: RawFd, flags: i32) -> libc::c_int {
    // SAFETY: the caller vouches for `to`; no memory is passed.
    unsafe { libc::dup3(from, to, flags) }
}

/// `fcntl(fd, F_DUPFD, min)`: a copy of `fd` at the lowest free number
/// from `min` up.
#[inline]
pub fn dup_at_least(fd: RawFd, min: RawFd) -> libc::c_int {
    // SAFETY: F_DUPFD takes an integer; it takes a free number only.
    unsafe { libc::fcntl(fd, libc::F_DUPFD, min) }
}

/// `fcntl(fd, F_SETFL, flags)`: the open file's status flags
/// (`O_NONBLOCK`, `O_APPEND`, …).
#[inline]
pub fn set_status_flags(fd: RawFd, flags: i32) -> libc::c_int {
    // SAFETY: F_SETFL takes an integer, no pointer.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }
}

/// `pipe2` into `fds` (read end, write end) with `flags`.
#[inline]
pub fn pipe(fds: &mut [RawFd; 2], flags: i32) -> libc::c_int {
    // SAFETY: pipe2 writes two ints into `fds`.
    unsafe { libc::pipe2(fds.as_mut_ptr(), flags) }
}

/// `fcntl(fd, F_GETPIPE_SZ)`: how many bytes the pipe holds.
#[inline]
pub fn pipe_capacity(fd: RawFd) -> libc::c_int {
    // SAFETY: F_GETPIPE_SZ takes no argument.
    unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) }
}

/// `fcntl(fd, F_SETPIPE_SZ, size)`.
#[inline]
pub fn set_pipe_capacity(fd: RawFd, size: i32) -> libc::c_int {
    // SAFETY: F_SETPIPE_SZ takes an integer, no pointer.
    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size) }
}

/// How many bytes a read of `fd` would find waiting (`FIONREAD`); -1 if
/// the `ioctl` failed.
#[inline]
pub fn bytes_waiting(fd: RawFd) -> libc::c_int {
    let mut queued: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut queued) } != 0 {
        return -1;
    }
    queued
}

/// `eventfd(initval, flags)`.
#[inline]
pub fn eventfd(initval: u32, flags: i32) -> libc::c_int {
    // SAFETY: eventfd takes integers and no memory.
    unsafe { libc::eventfd(initval, flags) }
}

/// `epoll_create1(flags)`.
#[inline]
pub fn epoll_create(flags: i32) -> libc::c_int {
    // SAFETY: epoll_create1 takes an integer and no memory.
    unsafe { libc::epoll_create1(flags) }
}

/// `epoll_ctl(epfd, EPOLL_CTL_ADD, fd)` with `events` and `data`.
#[inline]
pub fn epoll_add(epfd: RawFd, fd: RawFd, events: u32, data: u64) -> libc::c_int {
    let mut event = libc::epoll_event { events, u64: data };
    // SAFETY: epoll_ctl reads one epoll_event.
    unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut event) }
}

/// `inotify_init1(flags)`.
#[inline]
pub fn inotify_init(flags: i32) -> libc::c_int {
    // SAFETY: inotify_init1 takes an integer and no memory.
    unsafe { libc::inotify_init1(flags) }
}

/// `inotify_add_watch(fd, path, mask)`: the watch's number.
#[inline]
pub fn inotify_add_watch(fd: RawFd, path: &CStr, mask: u32) -> libc::c_int {
    // SAFETY: the kernel reads the C string `path`.
    unsafe { libc::inotify_add_watch(fd, path.as_ptr(), mask) }
}

/// `inotify_rm_watch(fd, wd)`.
#[inline]
pub fn inotify_rm_watch(fd: RawFd, wd: i32) -> libc::c_int {
    // SAFETY: inotify_rm_watch takes integers and no memory.
    unsafe { libc::inotify_rm_watch(fd, wd) }
}

/// A new signalfd for the signals of `mask` (`signalfd4(-1, mask, 8,
/// `socketpair(AF_UNIX, sock_type, 0)`, its ends in `ends`.
#[inline]
pub fn unix_socketpair(sock_type: i32, ends: &mut [RawFd; 2]) -> libc::c_int {
    // SAFETY: the kernel writes two descriptors into `ends`.
    unsafe { libc::socketpair(libc::AF_UNIX, sock_type, 0, ends.as_mut_ptr()) }
}

/// Sets this thread's effective uid and gid only (`setresgid`, then
/// `setresuid`, each with -1 for the real and saved ids, as raw system
/// calls: this thread alone). A root thread whose saved uid stays 0 gets
/// root back with [`effective_ids`]`(0, 0)` (uid first, then gid).
#[inline]
pub fn effective_ids(uid: u32, gid: u32) -> libc::c_long {
    let keep = u32::MAX as libc::c_long;
    // SAFETY: two plain credential calls.
    unsafe {
        if uid == 0 {
            let ret = libc::syscall(libc::SYS_setresuid, keep, 0, keep);
            if ret < 0 {
                return ret;
            }
            libc::syscall(libc::SYS_setresgid, keep, gid as libc::c_long, keep)
        } else {
            let ret = libc::syscall(libc::SYS_setresgid, keep, gid as libc::c_long, keep);
            if ret < 0 {
                return ret;
            }
            libc::syscall(libc::SYS_setresuid, keep, uid as libc::c_long, keep)
        }
    }
}

/// flags)`).
#[inline]
pub fn signalfd(mask: &u64, flags: i32) -> RawFd {
    // SAFETY: signalfd4 reads the 8-byte mask.
    let fd = unsafe { libc::syscall(libc::SYS_signalfd4, -1, mask as *const u64, 8, flags) };
    fd as RawFd
}

/// `timerfd_create(clock, flags)`.
#[inline]
pub fn timerfd_create(clock: i32, flags: i32) -> libc::c_int {
    // SAFETY: timerfd_create takes integers and no memory.
    unsafe { libc::timerfd_create(clock, flags) }
}

/// `timerfd_settime(fd, flags, spec)`, `spec` a `struct itimerspec`
/// (interval s, ns, value s, ns); the old value is not asked for.
#[inline]
pub fn timerfd_settime(fd: RawFd, flags: i32, spec: &[i64; 4]) -> libc::c_long {
    // SAFETY: the kernel reads the 32-byte itimerspec; the old value's
    // pointer is null.
    unsafe {
        libc::syscall(
            libc::SYS_timerfd_settime,
            fd,
            flags,
            spec.as_ptr(),
            std::ptr::null_mut::<u8>(),
        )
    }
}

/// Sets a timerfd's count of unread expirations (`TFD_IOC_SET_TICKS`).
#[inline]
pub fn timerfd_set_ticks(fd: RawFd, ticks: &u64) -> libc::c_int {
    // SAFETY: TFD_IOC_SET_TICKS reads one u64.
    unsafe { libc::ioctl(fd, TFD_IOC_SET_TICKS, ticks as *const u64) }
}

/// `lseek(fd, offset, whence)`.
#[inline]
pub fn seek(fd: RawFd, offset: i64, whence: i32) -> i64 {
    // SAFETY: lseek takes integers and no memory.
    unsafe { libc::lseek(fd, offset, whence) }
}

/// `open(path, flags)` (no mode: not for a file it creates).
#[inline]
pub fn open(path: &CStr, flags: i32) -> libc::c_int {
    // SAFETY: the kernel reads the C string `path`.
    unsafe { libc::open(path.as_ptr(), flags) }
}

/// `fchdir(fd)`.
#[inline]
pub fn fchdir(fd: RawFd) -> libc::c_int {
    // SAFETY: fchdir takes an integer and no memory.
    unsafe { libc::fchdir(fd) }
}

/// `umask(mask)`: the previous one.
#[inline]
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask takes an integer and no memory.
    unsafe { libc::umask(mask as libc::mode_t) }
}

/// `personality(persona)`: the previous one (0xffff_ffff only asks).
#[inline]
pub fn personality(persona: libc::c_ulong) -> libc::c_int {
    // SAFETY: personality takes an integer and no memory.
    unsafe { libc::personality(persona) }
}

/// `prctl(PR_SET_NAME, name)`: the thread's name (`comm`, 15 bytes kept).
#[inline]
pub fn set_name(name: &CStr) -> libc::c_int {
    // SAFETY: the kernel reads the C string `name`, 16 bytes at most.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) }
}

/// `prctl(PR_SET_PDEATHSIG, signal)`: `signal` when the parent dies.
#[inline]
pub fn set_parent_death_signal(signal: i32) -> libc::c_int {
    // SAFETY: PR_SET_PDEATHSIG takes an integer, no pointer.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal) }
}

/// `getppid()`.
#[inline]
pub fn getppid() -> libc::pid_t {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() }
}

/// `setsid()`: leads a new session.
#[inline]
pub fn setsid() -> libc::pid_t {
    // SAFETY: setsid takes nothing and touches no memory.
    unsafe { libc::setsid() }
}

/// `setpgid(pid, pgid)`.
#[inline]
pub fn setpgid(pid: libc::pid_t, pgid: libc::pid_t) -> libc::c_int {
    // SAFETY: setpgid takes integers and no memory.
    unsafe { libc::setpgid(pid, pgid) }
}

/// Sets this process's limit `resource` (`RLIMIT_*`) to `soft` and
/// `hard` (`prlimit64`).
#[inline]
pub fn set_rlimit(resource: u32, soft: u64, hard: u64) -> libc::c_int {
    let limit = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: prlimit64 reads the new limit; the old one is not asked for.
    unsafe { libc::prlimit64(0, resource, &limit, std::ptr::null_mut()) }
}

/// Blocks every signal on this thread (`sigfillset`, then
/// `sigprocmask(SIG_SETMASK)`).
#[inline]
pub fn block_all_signals() -> libc::c_int {
    // SAFETY: sigset_t is plain data; all-zero is a valid value.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigfillset fills the set; sigprocmask reads it, and the old
    // mask is not asked for.
    unsafe {
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut())
    }
}

/// Where glibc registered this thread's rseq area, and its size
/// (`__rseq_offset` from the thread pointer, `__rseq_size`); `None` when
/// it registered none.
#[inline]
pub fn rseq_area() -> Option<(u64, u32)> {
    // SAFETY: reading two glibc variables, set once at startup.
    let (offset, size) = unsafe { (__rseq_offset, __rseq_size) };
    if size == 0 {
        return None;
    }
    let tp: u64;
    // SAFETY: fs:0 holds the thread pointer on x86-64 (TLS ABI).
    unsafe { core::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly)) };
    Some(((tp as i64 + offset as i64) as u64, size))
}

/// Unregisters this thread's rseq area at `area`, `len` bytes (`rseq`
/// with `RSEQ_FLAG_UNREGISTER` and glibc's signature).
///
/// # Safety
/// Nothing that runs on this thread afterwards relies on the kernel
/// keeping the area up to date (glibc does: only in a child about to
/// leave the agent's code).
#[inline]
pub unsafe fn rseq_unregister(area: u64, len: u32) -> libc::c_long {
    // SAFETY: the kernel compares `area`, `len` and the signature with
    // the registration and writes nothing; the caller vouches for the rest.
    unsafe { libc::syscall(libc::SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) }
}
