//! A thread's confinement: its five capability sets, securebits and
//! `no_new_privs`, saved per thread (the kernel keeps them per thread) and
//! given back by the restorer stub as each thread's last step
//! (`restore_creds` in `suspend-restorer`); and its seccomp filters, read
//! with ptrace and installed again by the agent inside each restored
//! thread before it runs (`restore::finish`). What a resume could not give
//! back is refused before the process is frozen ([`refusals`]): strict
//! seccomp, and filters a thread could not install again — installed with
//! `CAP_SYS_ADMIN` it has since dropped, without `no_new_privs`.
//!
//! Saved: the sets and `no_new_privs` from `/proc/PID/task/TID/status`,
//! the securebits asked from inside ([`securebits`]), the filters with
//! `PTRACE_SECCOMP_GET_FILTER` ([`save`]). Restored: the stub's arguments
//! for each thread ([`thread_args`]); each filter's instructions
//! ([`programs`]), pushed on the argument block by the planner and
//! installed from inside the thread ([`install`]).

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};

use nix::errno::Errno;
use suspend_common::restore::{THREAD_HAS_CAPS, THREAD_NO_NEW_PRIVS, ThreadArgs};

use crate::{
    image::format::{Confinement, SeccompFilter, Thread},
    procfs,
    tracee::{
        inject::{Borrowed, InjectError},
        ptrace,
    },
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

/// `PR_GET_SECUREBITS`.
const PR_GET_SECUREBITS: u64 = 27;

/// The securebits of `b` (a borrowed thread), `None` if it cannot tell.
pub fn securebits(b: &mut Borrowed) -> Result<Option<u32>, InjectError> {
    let securebits = b.syscall(libc::SYS_prctl, [PR_GET_SECUREBITS, 0, 0, 0, 0, 0])?;
    Ok(u32::try_from(securebits).ok())
}

/// Why a thread's confinement was not saved.
#[derive(Debug)]
pub enum SaveError {
    /// Its `/proc/PID/task/TID/status` could not be read.
    Status(procfs::ProcError),
    /// What cannot be given back, found now (changed after the check
    /// before the freeze).
    Unholdable(String),
    /// Its seccomp filters could not be read.
    Ptrace(ptrace::PtraceError),
}

/// Thread `tid`'s confinement, with the securebits it told from inside,
/// and its seccomp filters (it must be stopped, by this thread).
pub fn save(
    pid: u32,
    tid: u32,
    securebits: u32,
) -> Result<(Confinement, Vec<SeccompFilter>), SaveError> {
    let c = procfs::confinement(pid, tid).map_err(SaveError::Status)?;
    if let Some(why) = unholdable(&c) {
        // Changed after the check before the freeze.
        return Err(SaveError::Unholdable(why));
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
fn filters(pid: u32, tid: u32) -> Result<Vec<SeccompFilter>, SaveError> {
    let filters = ptrace::seccomp_filters(tid)
        .map_err(ptrace::PtraceError::of(
            pid,
            tid,
            "PTRACE_SECCOMP_GET_FILTER",
        ))
        .map_err(SaveError::Ptrace)?;
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

// Restore: the stub gives the sets back, the agent the filters.

/// This thread's capabilities: what the restore starts from.
pub fn own() -> procfs::Confinement {
    procfs::confinement(std::process::id(), nix::unistd::gettid().as_raw() as u32)
        .unwrap_or_default()
}

/// Capabilities a thread had that this agent cannot give: the restore
/// refuses the image with it (its `Refusal::Capabilities`).
#[derive(Debug, thiserror::Error)]
#[error(
    "thread {tid} had capabilities this agent cannot give (mask {missing:#x} of its {which} set \
     is not in the agent's own sets)"
)]
pub struct Conflict {
    pub tid: u32,
    pub which: &'static str,
    pub missing: u64,
}

/// Every thread's capabilities must be the agent's to give (`own`): the
/// restorer starts from the agent's own sets and can only drop.
pub fn check(threads: &[Thread], own: &procfs::Confinement) -> Result<(), Conflict> {
    let can = own.permitted & own.bounding;
    for t in threads {
        let Some(c) = &t.confinement else { continue };
        for (which, set, can) in [
            ("permitted", c.permitted, can),
            ("inheritable", c.inheritable, can),
            ("ambient", c.ambient, can),
            ("bounding", c.bounding, own.bounding),
        ] {
            let missing = set & !can;
            if missing != 0 {
                return Err(Conflict {
                    tid: t.tid,
                    which,
                    missing,
                });
            }
        }
    }
    Ok(())
}

/// Sets `a`'s capability sets and securebits to `c`'s; the flags that say
/// so (`THREAD_HAS_CAPS`, and `THREAD_NO_NEW_PRIVS` where it had it).
pub fn thread_args(c: &Confinement, a: &mut ThreadArgs) -> u32 {
    let mut flags = THREAD_HAS_CAPS;
    a.cap_inheritable = c.inheritable;
    a.cap_permitted = c.permitted;
    a.cap_effective = c.effective;
    a.cap_bounding = c.bounding;
    a.cap_ambient = c.ambient;
    a.securebits = c.securebits;
    if c.no_new_privs {
        flags |= THREAD_NO_NEW_PRIVS;
    }
    flags
}

/// Thread `t`'s seccomp filters, oldest first: each one's flags and its
/// instructions (8 bytes each), for the planner to push on the argument
/// block as a `struct sock_fprog`.
pub fn programs(t: &Thread) -> Result<Vec<(u64, Vec<u64>)>, base64::DecodeError> {
    t.seccomp
        .iter()
        .map(|f| {
            let program = B64.decode(&f.program)?;
            let instructions: Vec<u64> = program
                .as_chunks::<8>()
                .0
                .iter()
                .map(|i| u64::from_ne_bytes(*i))
                .collect();
            Ok((f.flags, instructions))
        })
        .collect()
}

/// `seccomp(2)`'s operation.
const SECCOMP_SET_MODE_FILTER: u64 = 1;

/// Why a thread's seccomp filters were not installed.
#[derive(Debug)]
pub enum InstallError {
    /// The thread could not be made to call `seccomp`.
    Inject(InjectError),
    /// It called it, and the kernel refused filter `filter` (0: the
    /// oldest).
    Refused { filter: usize, errno: Errno },
}

/// Installs `filters` (each one's flags and the address of its
/// `struct sock_fprog` in the process), oldest first, from inside
/// `thread`. The threads are seized with their filters suspended, so
/// neither the installing nor anything after it meets them until they are
/// let go.
pub fn install(thread: &mut Borrowed, filters: &[(u64, u64)]) -> Result<(), InstallError> {
    for (i, &(flags, fprog)) in filters.iter().enumerate() {
        let ret = thread
            .syscall(
                libc::SYS_seccomp,
                [SECCOMP_SET_MODE_FILTER, flags, fprog, 0, 0, 0],
            )
            .map_err(InstallError::Inject)?;
        if ret < 0 {
            return Err(InstallError::Refused {
                filter: i,
                errno: Errno::from_raw(-ret as i32),
            });
        }
    }
    Ok(())
}
