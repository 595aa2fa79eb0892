//! pidfds: a handle on one process that a reused pid cannot redirect.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
};

use super::{Result, SyscallError};

/// An open pidfd (`pidfd_open(2)`).
#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
}

/// What a queued signal carries (`rt_sigqueueinfo` semantics: `si_code` is
/// `SI_QUEUE`, the payload is in `si_value`).
#[derive(Clone, Copy, Debug)]
pub struct SigQueueInfo {
    pub signal: u32,
    pub value: u64,
}

impl PidFd {
    /// Opens a pidfd for `pid`; fails with `ESRCH` if it does not exist.
    pub fn open(pid: u32) -> Result<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(SyscallError::last("pidfd_open"));
        }
        // SAFETY: the kernel just returned this fd to us; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Self { fd })
    }

    /// The process at the other end of the connected Unix socket `socket`,
    /// as it was when it connected (`SO_PEERPIDFD`, Linux 6.5): unlike
    /// the pid `SO_PEERCRED` gives, it cannot come to mean another process
    /// once that one exits. `None` where the kernel does not have it.
    pub fn of_peer(socket: BorrowedFd<'_>) -> Result<Option<Self>> {
        const SO_PEERPIDFD: libc::c_int = 77;
        let mut fd: libc::c_int = -1;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes one int into `fd` and its size into
        // `len`.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERPIDFD,
                (&raw mut fd).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            let e = SyscallError::last("getsockopt(SO_PEERPIDFD)");
            return match e.raw_os_error() {
                Some(libc::ENOPROTOOPT | libc::EINVAL) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: the kernel just returned this fd to us; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Some(Self { fd }))
    }

    /// A copy of the process's fd `fd` (`pidfd_getfd(2)`: the same open
    /// file description, close-on-exec here).
    pub fn get_fd(&self, fd: i32) -> Result<OwnedFd> {
        // SAFETY: pidfd_getfd with a valid pidfd, no flags; returns a new fd.
        let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, self.fd.as_raw_fd(), fd, 0u32) };
        if got < 0 {
            return Err(SyscallError::last("pidfd_getfd"));
        }
        // SAFETY: the kernel just returned this fd to us.
        Ok(unsafe { OwnedFd::from_raw_fd(got as i32) })
    }

    /// Sends `signal` (as `kill(2)` would) through the pidfd.
    pub fn send_signal(&self, signal: i32) -> Result<()> {
        // SAFETY: pidfd_send_signal with a valid fd, no siginfo, no flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0u32,
            )
        };
        if rc < 0 {
            return Err(SyscallError::last("pidfd_send_signal"));
        }
        Ok(())
    }

    /// Queues `info.signal` to the process with `si_code = SI_QUEUE` and
    /// `si_value = info.value`, as `sigqueue(3)` would, but through the pidfd.
    pub fn send_queued(&self, info: SigQueueInfo) -> Result<()> {
        // SAFETY: siginfo_t is plain data; all-zero is a valid value.
        let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
        si.si_signo = info.signal as i32;
        si.si_code = libc::SI_QUEUE;
        let raw = (&raw mut si).cast::<u8>();
        // The `_rt` member of the union: si_pid (4 bytes) and si_uid (4) at
        // offset 16, then si_value (8) at offset 24 (x86-64 and every other
        // 64-bit Linux ABI).
        // SAFETY: the offsets are inside the 128-byte siginfo_t.
        unsafe {
            raw.add(16)
                .cast::<i32>()
                .write_unaligned(std::process::id() as i32);
            raw.add(20).cast::<u32>().write_unaligned(libc::getuid());
            raw.add(24).cast::<u64>().write_unaligned(info.value);
        }
        // SAFETY: pidfd_send_signal(pidfd, sig, info, flags) with a valid fd
        // and a pointer to an initialised siginfo_t.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                info.signal as i32,
                &raw const si,
                0u32,
            )
        };
        if rc < 0 {
            return Err(SyscallError::last("pidfd_send_signal"));
        }
        Ok(())
    }

    /// Resolves when the process has exited (the pidfd becomes readable):
    /// tokio's wait, whose `io::Error` it passes on.
    pub async fn exited(&self) -> io::Result<()> {
        // SAFETY: the borrowed fd is our pidfd, which stays open and the same
        // for as long as `self` lives, and the AsyncFd is dropped first.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                self.fd.as_fd(),
                tokio::io::Interest::READABLE,
            )
        }
        .map_err(io::Error::from)?;
        let _ready = fd.readable().await?;
        Ok(())
    }

    /// Whether the process is still alive (the pidfd is not yet readable).
    pub fn is_alive(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
        rc == 0
    }
}

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_of_a_socket_is_its_process_while_it_lives() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        match PidFd::of_peer(a.as_fd()).expect("SO_PEERPIDFD") {
            Some(peer) => {
                assert!(peer.is_alive(), "our own process");
                // The pidfd names this process: it can signal it (signal 0).
                peer.send_signal(0).expect("signal 0 to ourselves");
            }
            None => eprintln!("NOTE: this kernel has no SO_PEERPIDFD (before 6.5)"),
        }
    }
}
