//! Talking to the agent on its client socket with raw, async-signal-safe
//! calls: no allocation, fixed-size messages, `MSG_NOSIGNAL` so a vanished
//! agent is an error and not a `SIGPIPE`.

use std::time::Duration;

use suspend_common::{paths::CLIENT_SOCKET_C, wire::Message};

use crate::sys;

/// An open connection; closed on drop.
pub struct Conn(pub libc::c_int);

impl Drop for Conn {
    fn drop(&mut self) {
        if self.0 >= 0 {
            // SAFETY: closing the fd this Conn owns.
            unsafe { libc::close(self.0) };
        }
    }
}

impl Conn {
    /// Connects to the agent; `Err(errno)` if none listens.
    pub fn connect() -> Result<Self, i32> {
        // SAFETY: creating a socket; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(sys::errno());
        }
        let conn = Self(fd);
        // SAFETY: sockaddr_un is plain data; zero is a valid value.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (dst, &src) in addr.sun_path.iter_mut().zip(CLIENT_SOCKET_C) {
            *dst = src as libc::c_char;
        }
        loop {
            // SAFETY: connect with a valid, initialised sockaddr_un.
            let rc = unsafe {
                libc::connect(
                    fd,
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_un>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                return Ok(conn);
            }
            if sys::errno() != libc::EINTR {
                return Err(sys::errno());
            }
        }
    }

    /// Gives up ownership of the fd (to hold the connection elsewhere).
    pub fn into_raw(mut self) -> libc::c_int {
        std::mem::replace(&mut self.0, -1)
    }

    /// Sets how long `recv` may block (`None`: forever).
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        let tv = match timeout {
            Some(t) => libc::timeval {
                tv_sec: t.as_secs() as libc::time_t,
                tv_usec: t.subsec_micros() as libc::suseconds_t,
            },
            None => libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        };
        // SAFETY: setsockopt with a timeval we own.
        unsafe {
            libc::setsockopt(
                self.0,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
    }

    pub fn send(&self, message: &Message) -> Result<(), i32> {
        let bytes = message.as_bytes();
        let mut sent = 0;
        while sent < bytes.len() {
            // SAFETY: sending from a buffer we own, within its bounds.
            let n = unsafe {
                libc::send(
                    self.0,
                    bytes[sent..].as_ptr().cast(),
                    bytes.len() - sent,
                    libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                if sys::errno() == libc::EINTR {
                    continue;
                }
                return Err(sys::errno());
            }
            sent += n as usize;
        }
        Ok(())
    }

    /// Receives one message. `Ok(None)` at end of file. With
    /// `interruptible`, a signal makes it return `Err(EINTR)` instead of
    /// retrying.
    pub fn recv(&self, interruptible: bool) -> Result<Option<Message>, i32> {
        let mut buf = [0u8; size_of::<Message>()];
        let mut got = 0;
        while got < buf.len() {
            // SAFETY: receiving into a buffer we own, within its bounds.
            let n =
                unsafe { libc::recv(self.0, buf[got..].as_mut_ptr().cast(), buf.len() - got, 0) };
            if n == 0 {
                return Ok(None);
            }
            if n < 0 {
                let e = sys::errno();
                if e == libc::EINTR && !interruptible {
                    continue;
                }
                return Err(e);
            }
            got += n as usize;
        }
        Ok(Message::from_bytes(&buf))
    }

    /// Waits until a message (or end of file) can be read; `Err(EINTR)` when
    /// a signal handler ran on this thread meanwhile.
    pub fn wait_readable(&self) -> Result<(), i32> {
        let mut pfd = libc::pollfd {
            fd: self.0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd we own; no timeout.
        let rc = unsafe { libc::poll(&mut pfd, 1, -1) };
        if rc < 0 { Err(sys::errno()) } else { Ok(()) }
    }

    /// Whether the agent still holds its end (no hang-up, nothing unread
    /// that would be an end of file).
    pub fn is_alive(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.0,
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: poll on one pollfd we own, zero timeout.
        let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
        rc == 0 || (rc > 0 && pfd.revents & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLERR) == 0)
    }
}
