//! Sockets an image can hold: a unix stream or seqpacket socket whose peer
//! has been closed (one end of a `socketpair` whose other end the process
//! closed, as the JVM's NIO keeps for its "pre-close" trick). It reads end
//! of file and fails writes with `EPIPE`, and that is all it can ever do:
//! a pair made again with its other end closed is the same. Asked of the
//! kernel through `unix_diag` (`sys::sockdiag`), never through a copy of
//! the socket. Anything queued in it, a name, buffer sizes of its own or a
//! peer still there leave it a socket the image cannot hold (refused),
//! and any other socket is refused named by its protocol and addresses
//! ([`name`], from the tables of the process's network namespace).
//!
//! Restored: the restore child makes a pair again, as the process's
//! effective ids, and closes its other end at once ([`make`]; planned as
//! `OpenKind::OrphanSocket` in `restore/plan/files.rs`).

use std::{fs, os::fd::RawFd};

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

// Any other socket: named in a refusal, as people name it.

/// What a `socket:[N]` of `pid` is, as people name it: its protocol and
/// addresses (`TCP 127.0.0.1:4242 -> 127.0.0.1:51000`, `TCP listening on
/// 0.0.0.0:80`, `UDP 0.0.0.0:53`, `unix /run/x.sock`, `unix, unnamed`),
/// from the tables of the process's network namespace.
pub fn name(pid: u32, link: &str) -> Option<String> {
    let inode = inode(link)?;
    for (table, proto) in [
        ("tcp", "TCP"),
        ("tcp6", "TCP"),
        ("udp", "UDP"),
        ("udp6", "UDP"),
    ] {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        if let Some(name) = parse_inet_table(&text, inode, proto) {
            return Some(name);
        }
    }
    let unix = fs::read_to_string(format!("/proc/{pid}/net/unix")).ok()?;
    parse_unix_table(&unix, inode)
}

/// `ADDR:PORT` from a `/proc/net/tcp{,6}` address (hex, each 32-bit word
/// in host order).
fn inet_address(hex: &str) -> Option<String> {
    let (addr, port) = hex.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..addr.len() / 8)
        .map(|i| u32::from_str_radix(&addr[8 * i..8 * i + 8], 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let ip = match bytes.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some(match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        v4 => format!("{v4}:{port}"),
    })
}

/// How the socket with inode `inode` is named from a `/proc/net/tcp{,6}`
/// or `udp{,6}` table (`text`, of protocol `proto`), if it is in it.
fn parse_inet_table(text: &str, inode: u64, proto: &str) -> Option<String> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(9)?.parse::<u64>().ok()? != inode {
            return None;
        }
        let local = inet_address(f.get(1)?)?;
        let remote = inet_address(f.get(2)?)?;
        let state = u8::from_str_radix(f.get(3)?, 16).ok()?;
        Some(match (proto, state) {
            ("TCP", 0x0a) => format!("TCP listening on {local}"),
            ("TCP", 0x01) => format!("TCP {local} -> {remote}"),
            ("TCP", _) => format!("TCP {local} -> {remote} (state {state:#x})"),
            (_, _) if remote.ends_with(":0") => format!("{proto} {local}"),
            _ => format!("{proto} {local} -> {remote}"),
        })
    })
}

/// How the socket with inode `inode` is named from a `/proc/net/unix`
/// table (`text`), if it is in it: its path, or unnamed.
fn parse_unix_table(text: &str, inode: u64) -> Option<String> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(6)?.parse::<u64>().ok()? != inode {
            return None;
        }
        Some(match f.get(7) {
            Some(path) => format!("unix {path}"),
            None => "unix, unnamed".into(),
        })
    })
}

/// A unix socket whose peer is gone: `socketpair(AF_UNIX, sock_type |
/// flags)`, the other end closed at once, made with the process's
/// effective `uid` and `gid`, which its peer credentials (`SO_PEERCRED`)
/// name, as the restore child makes it again ([`make`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Made {
    pub sock_type: i32,
    pub flags: i32,
    pub uid: u32,
    pub gid: u32,
}

/// Orphan socket `socket`, with status flags `flags`, made again as the
/// process's effective `(uid, gid)`.
pub fn plan(socket: &OrphanSocket, flags: i32, (uid, gid): (u32, u32)) -> Made {
    Made {
        sock_type: socket.sock_type,
        flags: flags & super::CREATE_FLAGS,
        uid,
        gid,
    }
}

impl super::MakeFd for Made {
    unsafe fn make(&self, fd: RawFd, _scratch: RawFd) -> Result<(), super::Unmade> {
        // SAFETY: in the restore child, while it makes its files (the
        // caller's promise).
        unsafe {
            let made = make(self.sock_type | self.flags, self.uid, self.gid);
            super::place(made, fd, self.flags)
        }
    }
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
    fn sockets_are_named() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1092 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1092 0100007F:C738 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(
            parse_inet_table(tcp, 4242, "TCP").as_deref(),
            Some("TCP listening on 127.0.0.1:4242")
        );
        assert_eq!(
            parse_inet_table(tcp, 4243, "TCP").as_deref(),
            Some("TCP 127.0.0.1:4242 -> 127.0.0.1:51000")
        );
        assert_eq!(parse_inet_table(tcp, 1, "TCP"), None);
        let v6 = "  sl  local_address                         remote_address                        st\n\
   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1\n";
        assert_eq!(
            parse_inet_table(v6, 77, "TCP").as_deref(),
            Some("TCP listening on [::1]:80")
        );
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n\
0000000000000000: 00000002 00000000 00010000 0001 01 555 /run/suspend/client.sock\n\
0000000000000000: 00000003 00000000 00000000 0001 03 556\n";
        assert_eq!(
            parse_unix_table(unix, 555).as_deref(),
            Some("unix /run/suspend/client.sock")
        );
        assert_eq!(
            parse_unix_table(unix, 556).as_deref(),
            Some("unix, unnamed")
        );
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
