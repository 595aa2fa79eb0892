//! What the kernel says of one unix socket, by inode, through
//! `NETLINK_SOCK_DIAG` (`linux/unix_diag.h`): its type and state, its
//! peer's inode, its queues, its buffer sizes, its shutdown bits. Asked
//! without touching the socket: a copy taken with `pidfd_getfd` would
//! re-tag it with the agent's cgroup.
//!
//! Only the agent's network namespace is searched (the kernel keeps unix
//! sockets per namespace); a process in another one is refused before.

use std::os::fd::AsRawFd as _;

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send, socket,
};

use super::{Result, SyscallError};

/// `SOCK_DIAG_BY_FAMILY`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_HDRLEN: usize = 16;
const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_PEER: u32 = 0x04;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UDIAG_SHOW_MEMINFO: u32 = 0x20;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_MEMINFO: u16 = 5;
const UNIX_DIAG_SHUTDOWN: u16 = 6;
/// `SK_MEMINFO_RCVBUF` and `SK_MEMINFO_SNDBUF`: indexes in the meminfo
/// attribute's array of `u32`.
const MEMINFO_RCVBUF: usize = 1;
const MEMINFO_SNDBUF: usize = 3;

/// One unix socket, as `unix_diag` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnixSocket {
    /// `SOCK_STREAM`, `SOCK_DGRAM`, `SOCK_SEQPACKET`.
    pub sock_type: u8,
    /// A TCP state number: 1 (`TCP_ESTABLISHED`) for a connected socket,
    /// 10 (`TCP_LISTEN`), 7 (`TCP_CLOSE`) for one never connected.
    pub state: u8,
    /// Whether it is bound to a name (a path or an abstract one).
    pub named: bool,
    /// Its peer's inode: `Some(0)` when the peer has been closed (its
    /// socket is gone), `None` when it has no peer.
    pub peer: Option<u32>,
    /// Messages waiting to be read, and bytes written not yet read.
    pub queued: Option<(u32, u32)>,
    /// `SO_RCVBUF` and `SO_SNDBUF`, as the kernel keeps them.
    pub buffers: Option<(u32, u32)>,
    /// `sk_shutdown`: 1 for reading, 2 for writing.
    pub shutdown: Option<u8>,
}

/// Asks the kernel about the unix socket with inode `inode`. `Ok(None)`:
/// no such socket (closed meanwhile, or not a unix socket of this network
/// namespace). A kernel without `unix_diag` (a module, `CONFIG_UNIX_DIAG=m`,
/// not loaded and not loadable) answers every request "no such socket":
/// that is told apart by asking about a socket of the agent's own, and is
/// an error.
pub fn unix_socket(inode: u64) -> Result<Option<UnixSocket>> {
    let Ok(inode) = u32::try_from(inode) else {
        return Ok(None);
    };
    let found = ask(inode)?;
    if found.is_none() && !answers()? {
        return Err(SyscallError {
            call: "unix_diag (the kernel has no unix_diag: its module is not loaded)",
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        });
    }
    Ok(found)
}

/// Whether the kernel describes unix sockets: asked once about a fresh
/// pair of the agent's own (a yes is remembered).
fn answers() -> Result<bool> {
    static ANSWERS: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if ANSWERS.get().is_some() {
        return Ok(true);
    }
    let (probe, _other) = nix::sys::socket::socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(SyscallError::of("socketpair"))?;
    let inode = super::fd::stat(std::os::fd::AsFd::as_fd(&probe))?.st_ino;
    let Ok(inode) = u32::try_from(inode) else {
        return Ok(true);
    };
    let answered = ask(inode)?.is_some();
    if answered {
        let _ = ANSWERS.set(());
    }
    Ok(answered)
}

fn ask(inode: u32) -> Result<Option<UnixSocket>> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )
    .map_err(SyscallError::of("socket (NETLINK_SOCK_DIAG)"))?;
    send(fd.as_raw_fd(), &request(inode), MsgFlags::empty())
        .map_err(SyscallError::of("send (unix_diag)"))?;
    let mut buf = vec![0u8; 8192];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())
        .map_err(SyscallError::of("recv (unix_diag)"))?;
    parse(&buf[..n]).map_err(|errno| SyscallError {
        call: "unix_diag",
        source: std::io::Error::from_raw_os_error(errno),
    })
}

/// The request: a `nlmsghdr` and a `unix_diag_req` for one inode, any
/// state, with its name, peer, queues and memory.
fn request(inode: u32) -> Vec<u8> {
    let mut r = Vec::with_capacity(40);
    r.extend(40u32.to_ne_bytes()); // nlmsg_len
    r.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    r.extend(NLM_F_REQUEST.to_ne_bytes());
    r.extend(1u32.to_ne_bytes()); // nlmsg_seq
    r.extend(0u32.to_ne_bytes()); // nlmsg_pid
    r.push(libc::AF_UNIX as u8); // sdiag_family
    r.push(0); // sdiag_protocol
    r.extend(0u16.to_ne_bytes()); // pad
    r.extend(u32::MAX.to_ne_bytes()); // udiag_states: all
    r.extend(inode.to_ne_bytes());
    r.extend(
        (UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO).to_ne_bytes(),
    );
    r.extend(u32::MAX.to_ne_bytes()); // udiag_cookie: INET_DIAG_NOCOOKIE
    r.extend(u32::MAX.to_ne_bytes());
    r
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// The answer: a `unix_diag_msg` and its attributes, or an error message
/// (`Err(errno)`; `ENOENT`, no such socket, is `Ok(None)`).
fn parse(b: &[u8]) -> std::result::Result<Option<UnixSocket>, i32> {
    let malformed = libc::EBADMSG;
    let len = u32_at(b, 0).ok_or(malformed)? as usize;
    let kind = u16_at(b, 4).ok_or(malformed)?;
    let b = b.get(..len).ok_or(malformed)?;
    if kind == NLMSG_ERROR {
        let errno = -(u32_at(b, NLMSG_HDRLEN).ok_or(malformed)? as i32);
        return if errno == libc::ENOENT || errno == 0 {
            Ok(None)
        } else {
            Err(errno)
        };
    }
    if kind != SOCK_DIAG_BY_FAMILY {
        return Err(malformed);
    }
    let msg = b.get(NLMSG_HDRLEN..NLMSG_HDRLEN + 16).ok_or(malformed)?;
    let mut socket = UnixSocket {
        sock_type: msg[1],
        state: msg[2],
        ..UnixSocket::default()
    };
    let mut at = NLMSG_HDRLEN + 16;
    while at + 4 <= b.len() {
        let attr_len = u16_at(b, at).ok_or(malformed)? as usize;
        let attr = u16_at(b, at + 2).ok_or(malformed)? & 0x3fff;
        if attr_len < 4 {
            return Err(malformed);
        }
        let data = b.get(at + 4..at + attr_len).ok_or(malformed)?;
        match attr {
            UNIX_DIAG_NAME => socket.named = true,
            UNIX_DIAG_PEER => socket.peer = u32_at(data, 0),
            UNIX_DIAG_RQLEN => socket.queued = u32_at(data, 0).zip(u32_at(data, 4)),
            UNIX_DIAG_MEMINFO => {
                socket.buffers =
                    u32_at(data, 4 * MEMINFO_RCVBUF).zip(u32_at(data, 4 * MEMINFO_SNDBUF))
            }
            UNIX_DIAG_SHUTDOWN => socket.shutdown = data.first().copied(),
            _ => {}
        }
        at += attr_len.div_ceil(4) * 4;
    }
    Ok(Some(socket))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    fn inode(fd: &impl std::os::fd::AsRawFd) -> u64 {
        std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .expect("fd")
            .ino()
    }

    #[test]
    fn a_socket_whose_peer_is_closed_says_so() {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let alive = unix_socket(inode(&a)).expect("unix_diag").expect("found");
        assert_eq!(alive.sock_type, libc::SOCK_STREAM as u8);
        assert_eq!(alive.state, 1, "connected");
        assert_eq!(alive.peer.map(u64::from), Some(inode(&b)));
        assert!(!alive.named);
        drop(b);
        let orphan = unix_socket(inode(&a)).expect("unix_diag").expect("found");
        assert_eq!(orphan.peer, Some(0), "{orphan:?}");
        assert_eq!(orphan.queued, Some((0, 0)));
        assert_eq!(orphan.shutdown, Some(3), "{orphan:?}");
        assert!(orphan.buffers.is_some_and(|(r, s)| r > 0 && s > 0));
        drop(a);
    }

    #[test]
    fn a_socket_that_is_gone_is_none() {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let gone = inode(&a);
        drop((a, b));
        assert_eq!(unix_socket(gone).expect("unix_diag"), None);
    }

    #[test]
    fn an_error_answer_is_its_errno_and_garbage_is_refused() {
        let mut error = vec![0u8; 36];
        error[0..4].copy_from_slice(&36u32.to_ne_bytes());
        error[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        error[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(parse(&error), Err(libc::EPERM));
        error[16..20].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        assert_eq!(parse(&error), Ok(None));
        assert_eq!(parse(&[1, 2, 3]), Err(libc::EBADMSG));
    }
}
