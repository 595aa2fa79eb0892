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

#[cfg(test)]
pub(crate) mod tests {
    use suspend_common::wire::{MSG_ANSWER, MSG_HELLO, MSG_OUTCOME, REASON_CONTINUED};

    use super::*;

    /// Both ends of a connected stream socket pair: (agent, client).
    pub(crate) fn pair() -> (Conn, Conn) {
        let mut fds = [-1; 2];
        // SAFETY: socketpair writes two fds into the array we own.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0, "socketpair: errno {}", sys::errno());
        (Conn(fds[0]), Conn(fds[1]))
    }

    #[test]
    fn a_message_arrives_whole_and_in_order() {
        let (agent, client) = pair();
        let hello = Message {
            token: 0x1234_5678_9abc_def0,
            ..Message::new(MSG_HELLO)
        };
        let outcome = Message {
            request_id: 7,
            code: REASON_CONTINUED,
            ..Message::new(MSG_OUTCOME)
        };
        client.send(&hello).unwrap();
        agent.send(&outcome).unwrap();
        assert_eq!(agent.recv(false), Ok(Some(hello)));
        assert_eq!(client.recv(false), Ok(Some(outcome)));
    }

    #[test]
    fn a_message_cut_short_by_the_end_of_file_is_none() {
        let (agent, client) = pair();
        let bytes = Message::new(MSG_ANSWER);
        let half = &bytes.as_bytes()[..size_of::<Message>() / 2];
        // SAFETY: writing a buffer we own to a socket we own.
        let n = unsafe { libc::send(agent.0, half.as_ptr().cast(), half.len(), 0) };
        assert_eq!(n, half.len() as isize);
        drop(agent);
        assert_eq!(client.recv(false), Ok(None));
        assert_eq!(client.recv(false), Ok(None));
    }

    #[test]
    fn a_connection_is_alive_until_the_agent_hangs_up() {
        let (agent, client) = pair();
        assert!(client.is_alive());
        // A message waiting is no hang-up.
        agent.send(&Message::new(MSG_OUTCOME)).unwrap();
        assert!(client.is_alive());
        drop(agent);
        assert!(!client.is_alive());
        // Sending to a vanished agent is an error, not a SIGPIPE.
        assert_eq!(client.send(&Message::new(MSG_ANSWER)), Err(libc::EPIPE));
    }

    #[test]
    fn a_receive_gives_up_after_its_timeout() {
        let (_agent, client) = pair();
        client.set_timeout(Some(Duration::from_millis(20)));
        let started = std::time::Instant::now();
        assert_eq!(client.recv(false), Err(libc::EAGAIN));
        assert!(started.elapsed() >= Duration::from_millis(15));
    }

    #[test]
    fn a_connection_given_away_is_not_closed() {
        let (agent, client) = pair();
        let fd = client.into_raw();
        // Still open: the agent end sees no hang-up.
        assert!(agent.is_alive());
        let client = Conn(fd);
        agent.send(&Message::new(MSG_OUTCOME)).unwrap();
        assert_eq!(
            client.recv(false).map(|m| m.map(|m| m.kind)),
            Ok(Some(MSG_OUTCOME))
        );
    }
}
