//! Sockets an image can hold: a unix stream or seqpacket socket whose peer
//! has been closed (one end of a `socketpair` whose other end the process
//! closed, as the JVM's NIO keeps for its "pre-close" trick). It reads end
//! of file and fails writes with `EPIPE`, and that is all it can ever do:
//! a pair made again with its other end closed is the same. Asked of the
//! kernel through `unix_diag` (`sys::sockdiag`), never through a copy of
//! the socket. Anything queued in it, a name, buffer sizes of its own or a
//! peer still there leave it a socket the image cannot hold (refused).
//!
//! Restored: the restore child makes a pair again, as the process's
//! effective ids, and closes its other end at once ([`make`]; planned as
//! `OpenKind::OrphanSocket` in `restore/plan/files.rs`).

use std::os::fd::RawFd;

use crate::{
    image::format::OrphanSocket,
    sys::{raw, sockdiag},
};

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
    examine(link).ok()
}

/// Why the socket behind `link` is not one an image can hold, as words to
/// put after its name in a refusal (`", its peer is open"`); empty when
/// the kernel does not report it as a unix socket (its name says what it
/// is).
pub fn why_not(link: &str) -> String {
    match examine(link) {
        Ok(_) | Err(Unheld::NotUnix) => String::new(),
        Err(Unheld::Because(why)) => format!(", {why}"),
        Err(Unheld::Unasked(error)) => format!(
            ", which the kernel could not describe ({error}; a Debian kernel loads the \
             unix_diag module on demand)"
        ),
    }
}

enum Unheld {
    /// Not a unix socket of the agent's network namespace.
    NotUnix,
    /// A unix socket an image cannot hold, and why.
    Because(&'static str),
    /// The kernel could not be asked.
    Unasked(crate::sys::SyscallError),
}

fn examine(link: &str) -> Result<OrphanSocket, Unheld> {
    let inode = inode(link).ok_or(Unheld::NotUnix)?;
    let socket = sockdiag::unix_socket(inode)
        .map_err(Unheld::Unasked)?
        .ok_or(Unheld::NotUnix)?;
    judge(&socket, default_buffers()).map_err(Unheld::Because)
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

fn judge(
    s: &sockdiag::UnixSocket,
    defaults: Option<(u32, u32)>,
) -> Result<OrphanSocket, &'static str> {
    if !matches!(
        i32::from(s.sock_type),
        libc::SOCK_STREAM | libc::SOCK_SEQPACKET
    ) {
        return Err("a datagram socket");
    }
    if s.state != CONNECTED || s.peer.is_none() {
        return Err("not connected");
    }
    if s.peer != Some(0) {
        return Err("its peer is open");
    }
    if s.shutdown != Some(BOTH_SHUT) {
        return Err("not shut both ways");
    }
    if s.queued != Some((0, 0)) {
        return Err("data queued in it");
    }
    if defaults.is_none() || s.buffers != defaults {
        return Err("buffer sizes of its own");
    }
    if s.named {
        return Err("bound to a name");
    }
    Ok(OrphanSocket {
        sock_type: i32::from(s.sock_type),
    })
}

// Restore: made again by the restore child.

/// Makes a unix socket pair (`sock_type`, with its flags) as effective
/// `uid` and `gid` (its peer credentials name them), then root again, and
/// closes the other end at once: its peer gone, as it was. Returns the
/// socket, or -1 right after the call that failed (its errno left for the
/// child's report). Runs in the restore child: no allocation.
///
/// # Safety
/// Only in the restore child, while it makes its files.
pub unsafe fn make(sock_type: i32, uid: u32, gid: u32) -> RawFd {
    let mut ends = [-1; 2];
    if raw::effective_ids(uid, gid) < 0
        || raw::unix_socketpair(sock_type, &mut ends) < 0
        || raw::effective_ids(0, 0) < 0
    {
        return -1;
    }
    // SAFETY: the other end of the pair this function just made, which
    // nothing else holds.
    unsafe { raw::close(ends[1]) };
    ends[0]
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
            Ok(OrphanSocket {
                sock_type: libc::SOCK_STREAM
            })
        );
        let with = |f: fn(&mut sockdiag::UnixSocket)| {
            let mut s = orphan_stream();
            f(&mut s);
            judge(&s, d).err()
        };
        assert_eq!(with(|s| s.peer = Some(4242)), Some("its peer is open"));
        assert_eq!(with(|s| s.peer = None), Some("not connected"));
        assert_eq!(with(|s| s.queued = Some((1, 0))), Some("data queued in it"));
        assert_eq!(with(|s| s.queued = None), Some("data queued in it"));
        assert_eq!(with(|s| s.named = true), Some("bound to a name"));
        assert_eq!(with(|s| s.shutdown = Some(1)), Some("not shut both ways"));
        assert_eq!(
            with(|s| s.buffers = Some((4096, 212_992))),
            Some("buffer sizes of its own")
        );
        assert_eq!(
            with(|s| s.sock_type = libc::SOCK_DGRAM as u8),
            Some("a datagram socket")
        );
        assert_eq!(
            judge(&orphan_stream(), None),
            Err("buffer sizes of its own"),
            "defaults unknown"
        );
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
        assert_eq!(orphan(&link(&a)), None);
        assert_eq!(why_not(&link(&a)), ", its peer is open");
        drop(b);
        assert_eq!(
            orphan(&link(&a)),
            Some(OrphanSocket {
                sock_type: libc::SOCK_STREAM
            })
        );
    }
}
