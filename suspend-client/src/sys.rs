//! The few raw system calls the library makes, all async-signal-safe.

use std::sync::atomic::AtomicU32;

/// The calling thread's `errno`.
pub fn errno() -> i32 {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}

pub fn set_errno(value: i32) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = value };
}

/// Keeps `errno` unchanged across a signal handler.
pub struct ErrnoGuard(i32);

impl ErrnoGuard {
    pub fn new() -> Self {
        Self(errno())
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        set_errno(self.0);
    }
}

pub fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

pub fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// Sleeps while `*word == expected` (spurious wake-ups are possible).
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 that outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes every thread sleeping on `word`.
pub fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid, aligned u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}

/// `CLOCK_BOOTTIME` in nanoseconds.
/// The inode of what `fd` refers to, if it is open (async-signal-safe).
pub fn fd_inode(fd: libc::c_int) -> Option<u64> {
    // SAFETY: fstat writes a `stat` we own; any fd number is fine.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st.st_ino)
    }
}

pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// 8 random bytes from `getrandom(2)`, never zero.
pub fn random_token() -> Result<u64, i32> {
    loop {
        let mut token = 0u64;
        // SAFETY: getrandom writes at most 8 bytes into `token`.
        let n = unsafe { libc::getrandom((&raw mut token).cast(), 8, 0) };
        if n == 8 && token != 0 {
            return Ok(token);
        }
        if n < 0 && errno() != libc::EINTR {
            return Err(errno());
        }
    }
}
