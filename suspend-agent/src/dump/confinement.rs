//! A thread's confinement: its five capability sets, securebits and
//! `no_new_privs`, saved per thread (the kernel keeps them per thread) and
//! given back by the restorer stub as each thread's last step
//! (`restore_creds` in `suspend-restorer`). Seccomp filters are not in the
//! image yet: a process under seccomp is refused before it is frozen
//! ([`refusals`]), never resumed unfiltered.

use super::DumpError;
use crate::{image::format::Confinement, procfs};

/// Thread `tid`'s confinement, with the securebits it told from inside.
pub fn save(pid: u32, tid: u32, securebits: u32) -> Result<Confinement, DumpError> {
    let c = procfs::confinement(pid, tid).map_err(|e| DumpError::Proc {
        pid,
        path: format!("/proc/{pid}/task/{tid}/status").into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    if c.seccomp != 0 {
        // Installed after the check before the freeze.
        return Err(DumpError::Confined {
            pid,
            what: format!("thread {tid} runs under seccomp: its filters are not in the image yet"),
        });
    }
    Ok(Confinement {
        inheritable: c.inheritable,
        permitted: c.permitted,
        effective: c.effective,
        bounding: c.bounding,
        ambient: c.ambient,
        securebits,
        no_new_privs: c.no_new_privs,
    })
}

/// What about `pid`'s confinement an image cannot hold, one line each
/// (empty: nothing): a thread under seccomp, strict or filtered.
pub fn refusals(pid: u32) -> Result<Vec<String>, procfs::ProcError> {
    let mut refused = Vec::new();
    let mut tids = procfs::tids(pid)?;
    tids.sort_unstable();
    for tid in tids {
        let c = match procfs::confinement(pid, tid) {
            Ok(c) => c,
            // A thread that ended meanwhile confines nothing.
            Err(procfs::ProcError::Gone { .. }) => continue,
            Err(e) => return Err(e),
        };
        if c.seccomp != 0 {
            let mode = if c.seccomp == 1 { "strict" } else { "filter" };
            refused.push(format!(
                "thread {tid} runs under seccomp ({mode} mode): its filters are not in the \
                 image yet, and a resume must not give it back unfiltered"
            ));
        }
    }
    Ok(refused)
}
