//! userfaultfd(2): the ioctls a held process's lazy refill uses, on a
//! userfaultfd the process itself created (its memory), driven from here.
//!
//! Every ioctl acts on the memory of the process that created the
//! userfaultfd, whoever calls it: the agent registers, copies and reads
//! events for the resumed process.

use std::{
    fs, io,
    os::fd::{AsRawFd as _, BorrowedFd, OwnedFd},
};

use super::{Result, SyscallError};

const UFFDIO: u64 = 0xAA;
const UFFD_API: u64 = 0xAA;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (UFFDIO << 8) | nr
}
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

/// `USERFAULTFD_IOC_NEW` on `/dev/userfaultfd`: `_IO(0xAA, 0)`.
pub const IOC_NEW: u64 = ioc(0, 0, 0);
const UFFDIO_API: u64 = ioc(IOC_READ | IOC_WRITE, 0x3F, 24);
const UFFDIO_REGISTER: u64 = ioc(IOC_READ | IOC_WRITE, 0x00, 32);
const UFFDIO_UNREGISTER: u64 = ioc(IOC_READ, 0x01, 16);
const UFFDIO_WAKE: u64 = ioc(IOC_READ, 0x02, 16);
const UFFDIO_COPY: u64 = ioc(IOC_READ | IOC_WRITE, 0x03, 40);
const UFFDIO_ZEROPAGE: u64 = ioc(IOC_READ | IOC_WRITE, 0x04, 32);
const UFFDIO_WRITEPROTECT: u64 = ioc(IOC_READ | IOC_WRITE, 0x06, 24);

const REGISTER_MODE_MISSING: u64 = 1;
const REGISTER_MODE_WP: u64 = 1 << 1;
const WRITEPROTECT_MODE_WP: u64 = 1;

/// Write-protection that the kernel resolves itself (Linux 6.7): a write
/// to a protected page only clears its protection, which `PAGEMAP_SCAN`
/// then shows as written — how a dump tells the pages a running process
/// wrote since it last looked.
pub const FEATURE_WP_ASYNC: u64 = 1 << 15;
/// Pages not there yet are protected too (Linux 6.4): first written, they
/// show as written like the others.
pub const FEATURE_WP_UNPOPULATED: u64 = 1 << 13;

/// The events asked for: the process's own changes to its memory map
/// while its pages are served (a page it discarded must not be filled from
/// the image, a moved one is served at its new address, a child's memory
/// is served too).
pub const FEATURE_EVENT_FORK: u64 = 1 << 1;
pub const FEATURE_EVENT_REMAP: u64 = 1 << 2;
pub const FEATURE_EVENT_REMOVE: u64 = 1 << 3;
pub const FEATURE_EVENT_UNMAP: u64 = 1 << 6;
pub const FEATURES: u64 =
    FEATURE_EVENT_FORK | FEATURE_EVENT_REMAP | FEATURE_EVENT_REMOVE | FEATURE_EVENT_UNMAP;

/// Opens `/dev/userfaultfd` (root's): a userfaultfd made through it
/// handles faults taken inside the kernel too (a `read(2)` into a page not
/// yet there waits instead of failing with `EFAULT`).
pub fn open_device() -> Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/userfaultfd")
        .map_err(SyscallError::of("open"))?;
    Ok(f.into())
}

fn ioctl(fd: BorrowedFd<'_>, request: u64, arg: *mut u8, name: &'static str) -> Result<()> {
    // SAFETY: every request here is given a pointer to a live struct of the
    // size its number encodes, which the kernel reads and writes.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
    if ret < 0 {
        return Err(SyscallError::last(name));
    }
    Ok(())
}

/// `UFFDIO_API` with [`FEATURES`]; returns the features granted.
pub fn api(fd: BorrowedFd<'_>) -> Result<u64> {
    let mut a = [UFFD_API, FEATURES, 0u64];
    ioctl(fd, UFFDIO_API, a.as_mut_ptr().cast(), "UFFDIO_API")?;
    Ok(a[1])
}

/// Whether this kernel tracks the pages a process writes with
/// asynchronous write-protection ([`FEATURE_WP_ASYNC`], with
/// `PAGEMAP_SCAN`: both Linux 6.7): asked of a userfaultfd made for the
/// agent's own memory, only to ask.
pub fn wp_async() -> bool {
    let Ok(device) = open_device() else {
        return false;
    };
    // SAFETY: USERFAULTFD_IOC_NEW takes its flags as the argument and
    // returns a new descriptor, owned here at once.
    let fd = unsafe { libc::ioctl(device.as_raw_fd(), IOC_NEW as _, libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    // SAFETY: the descriptor was just made for us.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    use std::os::fd::AsFd as _;
    api_with(fd.as_fd(), 0).is_ok_and(|f| f & FEATURE_WP_ASYNC != 0)
}

/// `UFFDIO_API` asking for `features` exactly; returns the features
/// granted. With `features` 0, on a userfaultfd made only to ask, returns
/// every feature this kernel has.
pub fn api_with(fd: BorrowedFd<'_>, features: u64) -> Result<u64> {
    let mut a = [UFFD_API, features, 0u64];
    ioctl(fd, UFFDIO_API, a.as_mut_ptr().cast(), "UFFDIO_API")?;
    Ok(a[1])
}

/// `UFFDIO_REGISTER` of `[start, start+len)` for write-protection.
pub fn register_wp(fd: BorrowedFd<'_>, start: u64, len: u64) -> Result<()> {
    let mut r = [start, len, REGISTER_MODE_WP, 0u64];
    ioctl(
        fd,
        UFFDIO_REGISTER,
        r.as_mut_ptr().cast(),
        "UFFDIO_REGISTER (write-protect)",
    )
}

/// `UFFDIO_WRITEPROTECT` of `[start, start+len)`: protects its pages
/// (`on`), or lifts their protection.
pub fn write_protect(fd: BorrowedFd<'_>, start: u64, len: u64, on: bool) -> Result<()> {
    let mode = if on { WRITEPROTECT_MODE_WP } else { 0 };
    let mut w = [start, len, mode];
    ioctl(
        fd,
        UFFDIO_WRITEPROTECT,
        w.as_mut_ptr().cast(),
        "UFFDIO_WRITEPROTECT",
    )
}

/// `UFFDIO_REGISTER` of `[start, start+len)` for missing pages.
pub fn register(fd: BorrowedFd<'_>, start: u64, len: u64) -> Result<()> {
    let mut r = [start, len, REGISTER_MODE_MISSING, 0u64];
    ioctl(
        fd,
        UFFDIO_REGISTER,
        r.as_mut_ptr().cast(),
        "UFFDIO_REGISTER",
    )
}

/// `UFFDIO_UNREGISTER` of `[start, start+len)` (waiting faults retry,
/// served by the kernel as usual).
pub fn unregister(fd: BorrowedFd<'_>, start: u64, len: u64) -> Result<()> {
    let mut r = [start, len];
    ioctl(
        fd,
        UFFDIO_UNREGISTER,
        r.as_mut_ptr().cast(),
        "UFFDIO_UNREGISTER",
    )
}

/// `UFFDIO_WAKE` of `[start, start+len)`.
pub fn wake(fd: BorrowedFd<'_>, start: u64, len: u64) -> Result<()> {
    let mut r = [start, len];
    ioctl(fd, UFFDIO_WAKE, r.as_mut_ptr().cast(), "UFFDIO_WAKE")
}

/// How an `UFFDIO_COPY` or `UFFDIO_ZEROPAGE` ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Filled {
    /// All of it.
    All,
    /// `done` bytes, then a page already there (`EEXIST`).
    Exists { done: u64 },
    /// `done` bytes, then the process changed its memory map (an event is
    /// waiting to be read): read it, then try the rest again (`EAGAIN`).
    Changing { done: u64 },
    /// The range is not registered (any more) with this userfaultfd
    /// (`ENOENT`), or its process is gone (`ESRCH`).
    Gone,
}

fn filled(ret: i32, done: i64, name: &'static str) -> Result<Filled> {
    if ret == 0 {
        return Ok(Filled::All);
    }
    let e = SyscallError::last(name);
    let done = done.max(0) as u64;
    match e.raw_os_error() {
        Some(libc::EEXIST) => Ok(Filled::Exists { done }),
        Some(libc::EAGAIN) => Ok(Filled::Changing { done }),
        Some(libc::ENOENT | libc::ESRCH) => Ok(Filled::Gone),
        _ => Err(e),
    }
}

/// `UFFDIO_COPY` of `src` to `dst` in the process, waking what waits on it.
pub fn copy(fd: BorrowedFd<'_>, dst: u64, src: &[u8]) -> Result<Filled> {
    let mut c = [dst, src.as_ptr() as u64, src.len() as u64, 0u64, 0u64];
    // SAFETY: as in `ioctl`: a 40-byte uffdio_copy; the kernel reads `len`
    // bytes from `src`, which lives for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_COPY as _, c.as_mut_ptr()) };
    filled(ret, c[4] as i64, "UFFDIO_COPY")
}

/// `UFFDIO_ZEROPAGE` of `[start, start+len)`.
pub fn zero(fd: BorrowedFd<'_>, start: u64, len: u64) -> Result<Filled> {
    let mut z = [start, len, 0u64, 0u64];
    // SAFETY: as in `ioctl`: a 32-byte uffdio_zeropage.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_ZEROPAGE as _, z.as_mut_ptr()) };
    filled(ret, z[3] as i64, "UFFDIO_ZEROPAGE")
}

/// A message read from a userfaultfd.
#[derive(Debug)]
pub enum Msg {
    /// A thread waits for the page at `address`.
    Fault {
        address: u64,
    },
    /// The process forked: `ufd` (now ours) serves the child's memory.
    Fork {
        ufd: OwnedFd,
    },
    /// `mremap` moved `[from, from+len)` to `to`.
    Remap {
        from: u64,
        to: u64,
        len: u64,
    },
    /// `MADV_DONTNEED`/`MADV_REMOVE` discarded `[start, end)`.
    Remove {
        start: u64,
        end: u64,
    },
    /// `munmap` (or a mapping over it) took `[start, end)` away.
    Unmap {
        start: u64,
        end: u64,
    },
    Other(u8),
}

const MSG_LEN: usize = 32;

fn parse(raw: &[u8; MSG_LEN]) -> Msg {
    let u64_at = |at: usize| u64::from_ne_bytes(raw[at..at + 8].try_into().unwrap_or([0; 8]));
    match raw[0] {
        0x12 => Msg::Fault {
            address: u64_at(16),
        },
        0x13 => {
            let fd = i32::from_ne_bytes(raw[8..12].try_into().unwrap_or([0; 4]));
            // SAFETY: the kernel installed this fd in our table for the
            // message we just read; nothing else owns it.
            let ufd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
            Msg::Fork { ufd }
        }
        0x14 => Msg::Remap {
            from: u64_at(8),
            to: u64_at(16),
            len: u64_at(24),
        },
        0x15 => Msg::Remove {
            start: u64_at(8),
            end: u64_at(16),
        },
        0x16 => Msg::Unmap {
            start: u64_at(8),
            end: u64_at(16),
        },
        other => Msg::Other(other),
    }
}

/// Reads the messages waiting (none: an empty list; the fd is
/// non-blocking).
pub fn read_msgs(fd: BorrowedFd<'_>) -> Result<Vec<Msg>> {
    let mut buf = [[0u8; MSG_LEN]; 16];
    // SAFETY: reading into a buffer of exactly that many bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), size_of_val(&buf)) };
    if n < 0 {
        let e = SyscallError::last("read (userfaultfd)");
        return match e.raw_os_error() {
            Some(libc::EAGAIN | libc::EINTR) => Ok(Vec::new()),
            _ => Err(e),
        };
    }
    Ok(buf[..n as usize / MSG_LEN].iter().map(parse).collect())
}

/// Makes reads of `fd` (the open file, shared with its other copies) return
/// `EAGAIN` instead of waiting when no message is there.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: fcntl get/set of file status flags on a live descriptor.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 {
            return Err(SyscallError::last("F_GETFL"));
        }
        if libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(SyscallError::last("F_SETFL"));
        }
    }
    Ok(())
}

/// Whether `fd` has messages waiting (or is in error: a read says which).
pub fn readable(fd: BorrowedFd<'_>) -> Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll over one live pollfd.
    let ret = unsafe { libc::poll(&mut p, 1, 0) };
    if ret < 0 {
        let e = SyscallError::last("poll");
        return if e.raw_os_error() == Some(libc::EINTR) {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(p.revents != 0)
}

/// Waits up to `timeout_ms` for any of `fds` to have messages.
pub fn wait(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> Result<()> {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: poll over a live array of that length.
    let ret = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as _, timeout_ms) };
    if ret < 0 {
        let e = SyscallError::last("poll");
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
    Ok(())
}

/// A listening socket (abstract, in this network namespace) through which
/// one descriptor is handed to a process that connects to it: how a
/// `/dev/userfaultfd` opened here gets into a process that could not open
/// it itself.
pub struct Handoff {
    listener: std::os::unix::net::UnixListener,
    name: Vec<u8>,
}

impl Handoff {
    pub fn new() -> Result<Self> {
        use std::os::linux::net::SocketAddrExt as _;
        let mut random = [0u8; 8];
        super::random(&mut random)?;
        let name = format!(
            "suspend-handoff-{}-{}",
            std::process::id(),
            random
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
        .into_bytes();
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name)
            .map_err(SyscallError::of("bind"))?;
        let listener =
            std::os::unix::net::UnixListener::bind_addr(&addr).map_err(SyscallError::of("bind"))?;
        listener
            .set_nonblocking(true)
            .map_err(SyscallError::of("FIONBIO"))?;
        Ok(Self { listener, name })
    }

    /// Its address as a `struct sockaddr_un` (to write into the process)
    /// and that address's length.
    pub fn sockaddr(&self) -> (Vec<u8>, u64) {
        let mut raw = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        raw.push(0);
        raw.extend_from_slice(&self.name);
        let len = raw.len() as u64;
        (raw, len)
    }

    /// Accepts the connection process `pid` made (no one else's) and sends
    /// it `fd` (`SCM_RIGHTS`).
    pub fn send(&self, pid: u32, fd: BorrowedFd<'_>) -> Result<()> {
        use nix::sys::socket::{ControlMessage, MsgFlags, getsockopt, sendmsg, sockopt};
        let (stream, _) = self.listener.accept().map_err(SyscallError::of("accept"))?;
        let cred = getsockopt(&stream, sockopt::PeerCredentials)
            .map_err(SyscallError::of("getsockopt(SO_PEERCRED)"))?;
        if cred.pid() as u32 != pid {
            return Err(SyscallError::of("getsockopt(SO_PEERCRED)")(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("pid {} connected, not pid {pid}", cred.pid()),
            )));
        }
        let fds = [fd.as_raw_fd()];
        let iov = [io::IoSlice::new(&[0u8])];
        sendmsg::<()>(
            stream.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .map_err(SyscallError::of("sendmsg"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ioctl_numbers_are_the_kernels() {
        // From <linux/userfaultfd.h> as the C compiler expands them.
        assert_eq!(IOC_NEW, 0xAA00);
        assert_eq!(UFFDIO_API, 0xc018_aa3f);
        assert_eq!(UFFDIO_REGISTER, 0xc020_aa00);
        assert_eq!(UFFDIO_UNREGISTER, 0x8010_aa01);
        assert_eq!(UFFDIO_WAKE, 0x8010_aa02);
        assert_eq!(UFFDIO_COPY, 0xc028_aa03);
        assert_eq!(UFFDIO_ZEROPAGE, 0xc020_aa04);
        assert_eq!(UFFDIO_WRITEPROTECT, 0xc018_aa06);
    }

    #[test]
    fn messages_are_read_as_the_kernel_lays_them_out() {
        let mut raw = [0u8; MSG_LEN];
        raw[0] = 0x12;
        raw[16..24].copy_from_slice(&0x7000_1000u64.to_ne_bytes());
        assert!(matches!(
            parse(&raw),
            Msg::Fault {
                address: 0x7000_1000
            }
        ));
        raw[0] = 0x14;
        raw[8..16].copy_from_slice(&0x1000u64.to_ne_bytes());
        raw[16..24].copy_from_slice(&0x9000u64.to_ne_bytes());
        raw[24..32].copy_from_slice(&0x2000u64.to_ne_bytes());
        assert!(matches!(
            parse(&raw),
            Msg::Remap {
                from: 0x1000,
                to: 0x9000,
                len: 0x2000
            }
        ));
        raw[0] = 0x15;
        assert!(matches!(
            parse(&raw),
            Msg::Remove {
                start: 0x1000,
                end: 0x9000
            }
        ));
    }
}
