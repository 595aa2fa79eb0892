//! Kinds of process state: one module per kind, each with its save half
//! (what is read from `/proc`, fdinfo or a copy of an fd while the process
//! is frozen, and what is refused, by name), its restore half (what a
//! resume checks, plans and does for it) and the unit tests of both, side
//! by side. The flows (`dump`, `restore`, `hold`) call them.
//!
//! A kind of fd the restore child makes again implements [`MakeFd`] on
//! what its planning gives (`restore/plan/files.rs` lists the kinds, one
//! line each, in `open_kinds!`, which declares `OpenKind`); the child
//! calls it through `OpenKind::maker`, knowing none of them.

pub mod attributes;
pub mod carried;
pub mod cgroup;
pub mod children;
pub mod confinement;
pub mod credentials;
pub mod epoll;
pub mod eventfd;
pub mod files;
#[cfg(test)]
pub mod fixtures;
pub mod identity;
pub mod inotify;
pub mod io_uring;
pub mod ipc;
pub mod limits;
pub mod locks;
pub mod mappings;
pub mod namespaces;
pub mod owners;
pub mod pipes;
pub mod sched;
pub mod session;
pub mod signalfd;
pub mod signals;
pub mod sockets;
pub mod speculation;
pub mod terminals;
pub mod threads;
pub mod timerfd;
pub mod timers;
pub mod unlinked;
pub mod vdso;

use std::os::fd::RawFd;

use crate::sys::raw;

/// Why the restore child could not make an fd again: the step its report
/// names. Returned right after the call that failed, its errno left for
/// the report.
#[derive(Debug, PartialEq, Eq)]
pub enum Unmade {
    /// Making it, or putting it at its number.
    Open,
    /// Seeking a reopened file to its position.
    Seek,
    /// Adding this target to what an epoll instance watches.
    Watch(RawFd),
}

/// A kind of fd the restore child makes again at its number, from what
/// the planner (`restore/plan/files.rs`) gave it: one implementation per
/// kind, in its module.
pub trait MakeFd {
    /// Makes it at number `fd` (through numbers from `scratch` up, where
    /// it needs some). Runs in the restore child: no allocation.
    ///
    /// # Safety
    /// Only in the restore child, while it makes its files: the numbers
    /// it takes and closes are its own.
    unsafe fn make(&self, fd: RawFd, scratch: RawFd) -> Result<(), Unmade>;

    /// What it does at `fd` once every fd exists (an epoll instance adds
    /// what it watches, which may be another epoll, or a copy of one).
    /// Runs in the restore child: no allocation.
    fn once_all_made(&self, _fd: RawFd) -> Result<(), Unmade> {
        Ok(())
    }
}

/// Puts `made`, a new fd (-1: making it failed), at number `fd`, with the
/// `O_CLOEXEC` of `flags`.
///
/// # Safety
/// As [`MakeFd::make`]: `fd` and `made` are the restore child's own.
unsafe fn place(made: RawFd, fd: RawFd, flags: i32) -> Result<(), Unmade> {
    if made < 0 {
        return Err(Unmade::Open);
    }
    if made != fd {
        // SAFETY: the restore child's own numbers (the caller's promise).
        unsafe {
            if raw::dup3(made, fd, flags & libc::O_CLOEXEC) < 0 {
                return Err(Unmade::Open);
            }
            raw::close(made);
        }
    }
    Ok(())
}

/// Another fd of the same open file as `from` (made before it), with the
/// `O_CLOEXEC` of `flags`.
#[derive(Debug, PartialEq, Eq)]
pub struct Dup {
    pub from: RawFd,
    pub flags: i32,
}

impl MakeFd for Dup {
    unsafe fn make(&self, fd: RawFd, _scratch: RawFd) -> Result<(), Unmade> {
        // SAFETY: the restore child's own numbers (the caller's promise).
        if unsafe { raw::dup3(self.from, fd, self.flags & libc::O_CLOEXEC) } < 0 {
            return Err(Unmade::Open);
        }
        Ok(())
    }
}

/// The status flags a made-again anonymous file (an eventfd, a signalfd,
/// a timerfd, an inotify instance, a socket) takes at creation.
pub const CREATE_FLAGS: i32 = libc::O_NONBLOCK | libc::O_CLOEXEC;

/// The little-endian `u64` at `at` of `b` (what a borrowed thread wrote
/// to the scratch page).
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::{os::fd::AsRawFd as _, path::Path};

    use super::{Dup, MakeFd as _, Unmade, place, raw};

    #[test]
    fn an_fd_is_put_at_its_number_and_a_failure_names_the_step() {
        let null = std::fs::File::open("/dev/null").expect("/dev/null");
        let at = 901;
        let link = || std::fs::read_link(format!("/proc/self/fd/{at}"));
        // SAFETY: numbers 901 and up are this test's alone (nothing else in
        // the test binary opens that many files); `null` stays open.
        unsafe {
            let dup = Dup {
                from: null.as_raw_fd(),
                flags: libc::O_CLOEXEC,
            };
            assert_eq!(dup.make(at, -1), Ok(()));
            assert_eq!(link().expect("made"), Path::new("/dev/null"));
            raw::close(at);
            let bad = Dup { from: -1, flags: 0 };
            assert_eq!(bad.make(at, -1), Err(Unmade::Open));
            assert_eq!(place(-1, at, 0), Err(Unmade::Open), "making it failed");
            let made = raw::dup_at_least(null.as_raw_fd(), 902);
            assert!(made >= 902);
            assert_eq!(place(made, at, 0), Ok(()));
            assert_eq!(link().expect("placed"), Path::new("/dev/null"));
            raw::close(at);
        }
    }
}
