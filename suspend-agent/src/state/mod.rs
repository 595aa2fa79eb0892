//! Kinds of process state: one module per kind, each with its save half
//! (what is read from `/proc`, fdinfo or a copy of an fd while the process
//! is frozen, and what is refused, by name), its restore half (what a
//! resume checks, plans and does for it) and the unit tests of both, side
//! by side. The flows (`dump`, `restore`, `hold`) call them.

pub mod attributes;
pub mod cgroup;
pub mod confinement;
pub mod credentials;
pub mod epoll;
pub mod eventfd;
pub mod files;
#[cfg(test)]
pub mod fixtures;
pub mod identity;
pub mod inotify;
pub mod limits;
pub mod locks;
pub mod mappings;
pub mod owners;
pub mod pipes;
pub mod sched;
pub mod signalfd;
pub mod signals;
pub mod sockets;
pub mod terminals;
pub mod threads;
pub mod timerfd;
pub mod timers;
pub mod unlinked;

/// The status flags a made-again anonymous file (an eventfd, a signalfd,
/// a timerfd, an inotify instance, a socket) takes at creation.
pub const CREATE_FLAGS: i32 = libc::O_NONBLOCK | libc::O_CLOEXEC;

/// The little-endian `u64` at `at` of `b` (what a borrowed thread wrote
/// to the scratch page).
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default())
}
