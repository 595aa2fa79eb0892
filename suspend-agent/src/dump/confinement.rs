//! A thread's confinement: its five capability sets, securebits and
//! `no_new_privs`, saved per thread (the kernel keeps them per thread) and
//! given back by the restorer stub as each thread's last step
//! (`restore_creds` in `suspend-restorer`); and its seccomp filters, read
//! with ptrace and installed again by the agent inside each restored
//! thread before it runs (`restore::finish`). What a resume could not give
//! back is refused before the process is frozen ([`refusals`]): strict
//! seccomp, and filters a thread could not install again — installed with
//! `CAP_SYS_ADMIN` it has since dropped, without `no_new_privs`.

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};

use super::DumpError;
use crate::{
    image::format::{Confinement, SeccompFilter},
    procfs,
    tracee::ptrace,
};

/// `CAP_SYS_ADMIN`.
const CAP_SYS_ADMIN: u64 = 21;

/// Why `c`'s seccomp state cannot be given back, if it cannot.
fn unholdable(c: &procfs::Confinement) -> Option<String> {
    match c.seccomp {
        0 => None,
        2 if c.no_new_privs || c.effective & (1 << CAP_SYS_ADMIN) != 0 => None,
        2 => Some(
            "its seccomp filters were installed with CAP_SYS_ADMIN, which it has dropped (and \
             it has no no_new_privs): a resume could not install them again"
                .into(),
        ),
        _ => Some("it runs in strict seccomp mode, which a resume cannot set".into()),
    }
}

/// Thread `tid`'s confinement, with the securebits it told from inside,
/// and its seccomp filters (it must be stopped, by this thread).
pub fn save(
    pid: u32,
    tid: u32,
    securebits: u32,
) -> Result<(Confinement, Vec<SeccompFilter>), DumpError> {
    let c = procfs::confinement(pid, tid).map_err(|e| DumpError::Proc {
        pid,
        path: format!("/proc/{pid}/task/{tid}/status").into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    if let Some(why) = unholdable(&c) {
        // Changed after the check before the freeze.
        return Err(DumpError::Confined {
            pid,
            what: format!("thread {tid}: {why}"),
        });
    }
    let filters = if c.seccomp == 2 {
        filters(pid, tid)?
    } else {
        Vec::new()
    };
    let confinement = Confinement {
        inheritable: c.inheritable,
        permitted: c.permitted,
        effective: c.effective,
        bounding: c.bounding,
        ambient: c.ambient,
        securebits,
        no_new_privs: c.no_new_privs,
    };
    Ok((confinement, filters))
}

/// Thread `tid`'s seccomp filters, oldest first.
fn filters(pid: u32, tid: u32) -> Result<Vec<SeccompFilter>, DumpError> {
    let filters = ptrace::seccomp_filters(tid).map_err(ptrace::PtraceError::of(
        pid,
        tid,
        "PTRACE_SECCOMP_GET_FILTER",
    ))?;
    Ok(filters
        .into_iter()
        .map(|(flags, program)| SeccompFilter {
            flags,
            program: B64.encode(program),
        })
        .collect())
}

/// What about `pid`'s confinement an image cannot hold, one line each
/// (empty: nothing).
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
        if let Some(why) = unholdable(&c) {
            refused.push(format!("thread {tid}: {why}"));
        }
    }
    Ok(refused)
}
