//! Signal owners: who a file's I/O signals go to (`F_GETOWN_EX`: the
//! process, one of its threads, a process group) and which signal
//! (`F_GETSIG`), asked through a copy of the open file, since fdinfo does
//! not say. (`O_ASYNC`, which turns them on, is among the file's flags.)
//! One outside the process cannot come back, and is refused by name.

use std::os::fd::OwnedFd;

use crate::{
    dump::DumpError,
    image::format::{File, FileOwner},
};

const F_OWNER_TID: u32 = 0;
const F_OWNER_PID: u32 = 1;

/// The signal owner of `copy` (a copy of an fd of `pid` whose flags are
/// `flags`; `info_path` names it in an error), if it has one.
pub fn read(
    pid: u32,
    copy: Option<OwnedFd>,
    flags: u32,
    info_path: &str,
) -> Result<Option<FileOwner>, DumpError> {
    // An O_PATH file has no signal owner (nor can it be asked).
    let owner = match copy {
        _ if flags & libc::O_PATH as u32 != 0 => None,
        None => None,
        Some(copy) => {
            use std::os::fd::AsFd as _;
            let (kind, owner, signal) =
                crate::sys::file_owner(copy.as_fd()).map_err(|source| DumpError::Proc {
                    pid,
                    path: info_path.to_owned().into(),
                    source: source.into(),
                })?;
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
