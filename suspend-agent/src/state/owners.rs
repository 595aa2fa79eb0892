//! Signal owners: who a file's I/O signals go to (`F_GETOWN_EX`: the
//! process, one of its threads, a process group) and which signal
//! (`F_GETSIG`).
//!
//! Saved: asked through a copy of the open file, since fdinfo does not say
//! ([`read`]). (`O_ASYNC`, which turns them on, is among the file's
//! flags.) Refused by name, before the freeze: one outside the process
//! ([`refusal`]).
//!
//! Restored: given back by a borrowed thread of the process once every
//! thread exists, with `O_ASYNC` cleared and set again so that it takes
//! effect ([`give_back`]).

use std::os::fd::OwnedFd;

use crate::{
    image::{
        Image,
        format::{File, FileOwner},
    },
    sys::SyscallError,
    tracee::inject::{Borrowed, InjectError, Site},
};

const F_OWNER_TID: u32 = 0;
const F_OWNER_PID: u32 = 1;

/// The signal owner of `copy` (a copy of an fd whose flags are `flags`),
/// if it has one.
pub fn read(copy: Option<OwnedFd>, flags: u32) -> Result<Option<FileOwner>, SyscallError> {
    // An O_PATH file has no signal owner (nor can it be asked).
    let owner = match copy {
        _ if flags & libc::O_PATH as u32 != 0 => None,
        None => None,
        Some(copy) => {
            use std::os::fd::AsFd as _;
            let (kind, owner, signal) = crate::sys::file_owner(copy.as_fd())?;
            (owner != 0 || signal != 0).then_some(FileOwner {
                kind,
                pid: owner,
                signal,
            })
        }
    };
    Ok(owner)
}

/// Why `f` cannot come back, if its signal owner is outside `pid` (whose
/// threads are `tids`).
pub fn refusal(pid: u32, f: &File, tids: &[u32]) -> Option<String> {
    // A signal owner is given back only if it is the process itself,
    // one of its threads, or the process group it leads.
    if let Some(o) = &f.owner
        && o.pid != 0
        && !match o.kind {
            F_OWNER_TID => tids.contains(&o.pid),
            F_OWNER_PID => o.pid == pid,
            _ => o.pid == pid && crate::procfs::session(pid).is_ok_and(|(g, _, _)| g == pid),
        }
    {
        let whose = match o.kind {
            F_OWNER_TID => "thread",
            F_OWNER_PID => "process",
            _ => "process group",
        };
        return Some(format!(
            "fd {} ({}, its I/O signals go to {whose} {} (F_SETOWN), not to this process)",
            f.fd, f.path, o.pid
        ));
    }
    None
}

/// Gives each file above stdio (stdio is the resume command's own, or what
/// `--stdin`… gave) its signal owner, signal and `O_ASYNC`, through `main`
/// (a thread of the process, borrowed): an open file's `O_ASYNC` takes
/// effect only through `F_SETFL`, which also needs the owner set first.
pub fn give_back(image: &Image, main: &mut Borrowed, site: &Site) -> Result<(), InjectError> {
    const F_GETFL: u64 = 3;
    const F_SETFL: u64 = 4;
    const F_SETSIG: u64 = 10;
    const F_SETOWN_EX: u64 = 15;
    for f in image.files.iter().filter(|f| f.fd > 2) {
        let fd = f.fd as u64;
        if let Some(o) = f.owner {
            if o.pid != 0 {
                let mut owner = [0u8; 8];
                owner[..4].copy_from_slice(&o.kind.to_ne_bytes());
                owner[4..].copy_from_slice(&o.pid.to_ne_bytes());
                site.write(0, &owner)?;
                let what = format!("fd {}: F_SETOWN_EX {} {}", f.fd, o.kind, o.pid);
                main.call(
                    &what,
                    libc::SYS_fcntl,
                    [fd, F_SETOWN_EX, site.scratch(), 0, 0, 0],
                )?;
                site.write(0, &[0; 8])?;
            }
            if o.signal != 0 {
                let what = format!("fd {}: F_SETSIG {}", f.fd, o.signal);
                main.call(
                    &what,
                    libc::SYS_fcntl,
                    [fd, F_SETSIG, o.signal as u64, 0, 0, 0],
                )?;
            }
        }
        if f.flags & libc::O_ASYNC as u32 != 0 {
            let what = format!("fd {}: O_ASYNC", f.fd);
            let flags = main.call(&what, libc::SYS_fcntl, [fd, F_GETFL, 0, 0, 0, 0])?;
            let without = flags & !(libc::O_ASYNC as u64);
            main.call(&what, libc::SYS_fcntl, [fd, F_SETFL, without, 0, 0, 0])?;
            main.call(
                &what,
                libc::SYS_fcntl,
                [fd, F_SETFL, without | libc::O_ASYNC as u64, 0, 0, 0],
            )?;
        }
    }
    Ok(())
}
