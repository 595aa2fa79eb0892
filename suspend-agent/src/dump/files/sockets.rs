//! Sockets an image can hold: a unix stream or seqpacket socket whose peer
//! has been closed (one end of a `socketpair` whose other end the process
//! closed, as the JVM's NIO keeps for its "pre-close" trick). It reads end
//! of file and fails writes with `EPIPE`, and that is all it can ever do:
//! a pair made again with its other end closed is the same. Asked of the
//! kernel through `unix_diag` (`sys::sockdiag`), never through a copy of
//! the socket. Anything queued in it, a name, buffer sizes of its own or a
//! peer still there leave it a socket the image cannot hold (refused).

use crate::{image::format::OrphanSocket, sys::sockdiag};

/// `TCP_ESTABLISHED`: a connected unix socket's state.
const CONNECTED: u8 = 1;
/// Both ways shut (`SHUTDOWN_MASK`): what its peer's close leaves.
const BOTH_SHUT: u8 = 3;

/// The inode of a `socket:[N]` link.
pub fn inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The socket behind `link` if it is one whose peer is gone and that an
/// image can hold.
pub fn orphan(link: &str) -> Option<OrphanSocket> {
    let socket = sockdiag::unix_socket(inode(link)?).ok()??;
    judge(&socket, default_buffers())
}

/// The buffer sizes a new unix socket gets (`net.core.rmem_default`,
/// `wmem_default`).
fn default_buffers() -> Option<(u32, u32)> {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some((read("rmem_default")?, read("wmem_default")?))
}

fn judge(s: &sockdiag::UnixSocket, defaults: Option<(u32, u32)>) -> Option<OrphanSocket> {
    let kind_ok = matches!(
        i32::from(s.sock_type),
        libc::SOCK_STREAM | libc::SOCK_SEQPACKET
    );
    let orphaned = s.state == CONNECTED && s.peer == Some(0) && s.shutdown == Some(BOTH_SHUT);
    let empty = s.queued == Some((0, 0));
    let buffers = defaults.is_some() && s.buffers == defaults;
    (kind_ok && orphaned && empty && buffers && !s.named).then_some(OrphanSocket {
        sock_type: i32::from(s.sock_type),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orphan_stream() -> sockdiag::UnixSocket {
        sockdiag::UnixSocket {
            sock_type: libc::SOCK_STREAM as u8,
            state: CONNECTED,
            named: false,
            peer: Some(0),
            queued: Some((0, 0)),
            buffers: Some((212_992, 212_992)),
            shutdown: Some(BOTH_SHUT),
        }
    }

    #[test]
    fn only_an_empty_unnamed_socket_whose_peer_is_gone_is_held() {
        let d = Some((212_992, 212_992));
        assert_eq!(
            judge(&orphan_stream(), d),
            Some(OrphanSocket {
                sock_type: libc::SOCK_STREAM
            })
        );
        let with = |f: fn(&mut sockdiag::UnixSocket)| {
            let mut s = orphan_stream();
            f(&mut s);
            judge(&s, d)
        };
        assert!(with(|s| s.peer = Some(4242)).is_none(), "its peer is there");
        assert!(with(|s| s.peer = None).is_none(), "never connected");
        assert!(
            with(|s| s.queued = Some((1, 0))).is_none(),
            "a message to read"
        );
        assert!(with(|s| s.queued = None).is_none(), "queues unknown");
        assert!(with(|s| s.named = true).is_none(), "bound to a name");
        assert!(with(|s| s.shutdown = Some(1)).is_none(), "half shut");
        assert!(
            with(|s| s.buffers = Some((4096, 212_992))).is_none(),
            "SO_RCVBUF set"
        );
        assert!(
            with(|s| s.sock_type = libc::SOCK_DGRAM as u8).is_none(),
            "datagrams"
        );
        assert!(judge(&orphan_stream(), None).is_none(), "defaults unknown");
    }

    #[test]
    fn a_real_pair_with_one_end_closed_is_one() {
        use std::os::unix::fs::MetadataExt as _;
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let link = |fd: &std::os::unix::net::UnixStream| {
            use std::os::fd::AsRawFd as _;
            let ino = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .expect("fd")
                .ino();
            format!("socket:[{ino}]")
        };
        assert_eq!(orphan(&link(&a)), None, "its peer is open");
        drop(b);
        assert_eq!(
            orphan(&link(&a)),
            Some(OrphanSocket {
                sock_type: libc::SOCK_STREAM
            })
        );
    }
}
