//! Resource limits: every limit of the process, soft and hard.
//!
//! Saved: the table of `/proc/PID/limits` ([`save`], called by
//! `dump::process`), one field of the process record.
//!
//! Restored: set again by the restore child (`setrlimit`), each as it was
//! ([`for_child`]: what the plan holds). The child starts from the resume
//! command's limits, and raising a hard one above those needs
//! `CAP_SYS_RESOURCE`: an image with such a limit is refused before
//! anything is created ([`check`]: the restore refuses the image with its
//! [`Conflict`]).

use crate::{
    image::{
        Image,
        format::{Process, Rlimit},
    },
    procfs::ProcError,
    sys::creds::CAP_SYS_RESOURCE,
};

/// Every limit of `pid`, also of another user's process (prlimit would
/// need `CAP_SYS_RESOURCE` for that, and a limit must never be left out).
pub fn save(pid: u32) -> Result<Vec<Rlimit>, ProcError> {
    Ok(crate::procfs::limits(pid)?
        .into_iter()
        .map(|(resource, soft, hard)| Rlimit {
            resource,
            soft,
            hard,
        })
        .collect())
}

/// A hard limit the resume cannot raise: the restore refuses the image
/// with it (its `Refusal::Rlimit`).
#[derive(Debug, thiserror::Error)]
#[error(
    "resource limit {resource} had a hard limit of {want}, above this command's {can}, and \
     raising one needs CAP_SYS_RESOURCE (resume from a shell whose limits are as high)"
)]
pub struct Conflict {
    pub resource: u32,
    pub want: u64,
    pub can: u64,
}

/// Every limit must be the restore's to set: it starts from this
/// command's limits and may raise a hard one only with `CAP_SYS_RESOURCE`.
pub fn check(image: &Image) -> Result<(), Conflict> {
    let own = super::confinement::own();
    if own.effective & (1 << CAP_SYS_RESOURCE) != 0 {
        return Ok(());
    }
    for r in &image.process.rlimits {
        if let Ok((_, can)) = crate::sys::process::rlimit(r.resource)
            && r.hard > can
        {
            return Err(Conflict {
                resource: r.resource,
                want: r.hard,
                can,
            });
        }
    }
    Ok(())
}

/// Each limit as (resource, soft, hard), for the restore child.
pub fn for_child(p: &Process) -> Vec<(u32, u64, u64)> {
    p.rlimits
        .iter()
        .map(|r| (r.resource, r.soft, r.hard))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_is_saved_and_given_to_the_child_as_it_was() {
        let saved = save(std::process::id()).expect("our own limits");
        assert!(saved.len() >= 16, "{saved:?}");
        let nofile = saved
            .iter()
            .find(|r| r.resource == libc::RLIMIT_NOFILE)
            .expect("RLIMIT_NOFILE");
        let mut p = crate::state::fixtures::process(42);
        p.rlimits = saved.clone();
        let planned = for_child(&p);
        assert_eq!(planned.len(), saved.len());
        assert!(planned.contains(&(nofile.resource, nofile.soft, nofile.hard)));
    }
}
