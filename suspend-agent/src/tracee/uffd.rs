//! A userfaultfd made inside another process, through one of its stopped
//! threads: a userfaultfd serves the memory of the process that made it,
//! so the agent has the process make one and takes a copy
//! (`pidfd_getfd`). `/dev/userfaultfd` (opened here, as root) is handed
//! over through an abstract socket, and its `USERFAULTFD_IOC_NEW` made
//! there: the process may not be allowed `userfaultfd(2)` itself, and a
//! userfaultfd made through the device also handles faults the kernel
//! takes for it. Used by a held process's refill and by a pre-copy.

use std::{fs, os::fd::OwnedFd};

use super::inject::{Borrowed, InjectError, Site};
use crate::sys::{self, PidFd, SyscallError, uffd};

/// Why a userfaultfd could not be made in a process.
#[derive(Debug, thiserror::Error)]
pub enum MakeError {
    #[error(transparent)]
    Inject(#[from] InjectError),
    /// A call of the agent's own (it names itself); `what` says on what.
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: SyscallError,
    },
    /// A call the process made for it failed, or gave nothing.
    #[error("making its userfaultfd: {what}")]
    Call { what: String },
}

fn sys_err(what: &'static str) -> impl FnOnce(SyscallError) -> MakeError {
    move |source| MakeError::Sys { what, source }
}

/// Has borrowed thread `b` of `pid` make a userfaultfd (close-on-exec,
/// non-blocking) at descriptor `high` or above, through `site`'s scratch
/// page. Returns its number there and the agent's copy; on failure every
/// descriptor it opened there is closed again. `b` stays borrowed.
pub fn make(
    pid: u32,
    b: &mut Borrowed,
    site: &Site,
    high: u64,
) -> Result<(i32, OwnedFd), MakeError> {
    let device = uffd::open_device().map_err(sys_err("/dev/userfaultfd"))?;
    let handoff = sys::uffd::Handoff::new().map_err(sys_err("a handoff socket"))?;
    let mut opened: Vec<i64> = Vec::new();
    let made = (|| -> Result<(i32, OwnedFd), MakeError> {
        let call = |b: &mut Borrowed, nr: i64, args: [u64; 6], what: &str| {
            let ret = b.syscall(nr, args)?;
            if ret < 0 {
                return Err(MakeError::Call {
                    what: format!(
                        "{what}: {}",
                        nix::errno::Errno::from_raw(-ret as i32).desc()
                    ),
                });
            }
            Ok(ret)
        };
        const ADDR: u64 = 0;
        const MSGHDR: u64 = 128;
        const IOVEC: u64 = 192;
        const BYTE: u64 = 208;
        const CONTROL: u64 = 216;
        const CONTROL_LEN: u64 = 24;
        let scratch = site.scratch();
        let (addr, addr_len) = handoff.sockaddr();
        site.write(ADDR, &addr)?;
        let flags = (libc::SOCK_STREAM | libc::SOCK_CLOEXEC) as u64;
        let s = call(
            b,
            libc::SYS_socket,
            [libc::AF_UNIX as u64, flags, 0, 0, 0, 0],
            "socket",
        )?;
        opened.push(s);
        call(
            b,
            libc::SYS_connect,
            [s as u64, scratch + ADDR, addr_len, 0, 0, 0],
            "connect",
        )?;
        use std::os::fd::AsFd as _;
        handoff
            .send(pid, device.as_fd())
            .map_err(sys_err("handing /dev/userfaultfd over"))?;
        let mut msg = [0u8; 64];
        let put =
            |buf: &mut [u8], at: usize, v: u64| buf[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        put(&mut msg, 16, scratch + IOVEC); // msg_iov
        put(&mut msg, 24, 1); // msg_iovlen
        put(&mut msg, 32, scratch + CONTROL); // msg_control
        put(&mut msg, 40, CONTROL_LEN); // msg_controllen
        site.write(MSGHDR, &msg[..56])?;
        let mut iov = [0u8; 16];
        put(&mut iov, 0, scratch + BYTE);
        put(&mut iov, 8, 1);
        site.write(IOVEC, &iov)?;
        site.write(CONTROL, &[0u8; CONTROL_LEN as usize])?;
        let flags = (libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT) as u64;
        call(
            b,
            libc::SYS_recvmsg,
            [s as u64, scratch + MSGHDR, flags, 0, 0, 0],
            "recvmsg",
        )?;
        let mut cmsg = [0u8; CONTROL_LEN as usize];
        site.read(CONTROL, &mut cmsg)?;
        let level = i32::from_ne_bytes(cmsg[8..12].try_into().unwrap_or_default());
        let kind = i32::from_ne_bytes(cmsg[12..16].try_into().unwrap_or_default());
        if level != libc::SOL_SOCKET || kind != libc::SCM_RIGHTS {
            return Err(MakeError::Call {
                what: "no descriptor came through the handoff".into(),
            });
        }
        let device_there = i32::from_ne_bytes(cmsg[16..20].try_into().unwrap_or_default()) as i64;
        opened.push(device_there);
        call(b, libc::SYS_close, [s as u64, 0, 0, 0, 0, 0], "close")?;
        opened.retain(|&f| f != s);
        let flags = (libc::O_CLOEXEC | libc::O_NONBLOCK) as u64;
        let low = call(
            b,
            libc::SYS_ioctl,
            [device_there as u64, uffd::IOC_NEW, flags, 0, 0, 0],
            "USERFAULTFD_IOC_NEW",
        )?;
        opened.push(low);
        let high = call(
            b,
            libc::SYS_fcntl,
            [low as u64, libc::F_DUPFD_CLOEXEC as u64, high, 0, 0, 0],
            "F_DUPFD_CLOEXEC",
        )?;
        opened.push(high);
        for fd in [low, device_there] {
            call(b, libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0], "close")?;
            opened.retain(|&f| f != fd);
        }
        site.write(0, &[0u8; 256])?;
        let ours = PidFd::open(pid)
            .and_then(|p| p.get_fd(high as i32))
            .map_err(sys_err("its userfaultfd"))?;
        Ok((high as i32, ours))
    })();
    if made.is_err() {
        for fd in opened {
            let _ = b.syscall(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
        }
        let _ = site.write(0, &[0u8; 256]);
    }
    made
}

/// The lowest descriptor number a userfaultfd may take in `pid`: near
/// the top of its descriptor table as it is (`FDSize`), out of the way of
/// the numbers its own `open`s get, and without growing the table (which
/// waits for an RCU grace period in a threaded process: 15 ms here).
pub fn high_fd(pid: u32) -> u64 {
    let size = fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("FDSize:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .unwrap_or(64);
    size.saturating_sub(16).max(3)
}
