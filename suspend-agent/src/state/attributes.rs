//! The process's own attributes, one of each per process: its name
//! (`comm`), its `oom_score_adj`, its audit login uid, and whether it is
//! a child subreaper and has transparent huge pages disabled.
//!
//! Saved: the name from `/proc/PID/comm` ([`name`]) and the
//! `oom_score_adj` from its file ([`oom_score_adj`]), both read by
//! `dump::process`; the login uid from `/proc/PID/loginuid`
//! (`procfs::loginuid`, read by `dump`); the two flags asked from inside
//! ([`ask_flags`], called by `dump::inside`). They are the process
//! record's `comm` and part of its `attributes`.
//!
//! Restored: the restore child sets the name ([`comm`]) and writes the
//! login uid while still root, where it differs from its own
//! ([`loginuid`]); the stub sets the flags ([`flags`]: its `RESTORE_*`
//! bits); the `oom_score_adj` is written from outside once every thread
//! is ready ([`give_back_oom_score_adj`], called by `restore::finish`).
//! An `oom_score_adj` below the resume command's without
//! `CAP_SYS_RESOURCE` ([`check_oom_score`]) and a login uid where the
//! kernel has no audit ([`check_loginuid`]) are refused before anything
//! is created: the restore refuses the image with their [`Conflict`].

use std::ffi::CString;

use suspend_common::restore::{RESTORE_CHILD_SUBREAPER, RESTORE_THP_DISABLE};

use crate::{
    image::{
        Image,
        format::{Attributes, Process},
    },
    sys::creds::CAP_SYS_RESOURCE,
    tracee::inject::{Borrowed, InjectError, Site},
};

const PR_GET_CHILD_SUBREAPER: u64 = 37;
const PR_GET_THP_DISABLE: u64 = 42;

/// Its name: the text of `/proc/PID/comm`, without the newline.
pub fn name(comm: &str) -> String {
    comm.trim_end().to_owned()
}

/// The text of `/proc/PID/oom_score_adj`, parsed.
pub fn oom_score_adj(text: &str) -> Option<i32> {
    text.trim().parse().ok()
}

/// Whether `b`'s process is a child subreaper (`PR_GET_CHILD_SUBREAPER`,
/// asked through `site`'s scratch page; no when that fails) and has THP
/// disabled (`PR_GET_THP_DISABLE`).
pub fn ask_flags(b: &mut Borrowed, site: &Site) -> Result<(bool, bool), InjectError> {
    let mut child_subreaper = false;
    let s = site.scratch();
    if b.syscall(libc::SYS_prctl, [PR_GET_CHILD_SUBREAPER, s, 0, 0, 0, 0])? == 0 {
        let mut buf = [0u8; 4];
        site.read(0, &mut buf)?;
        child_subreaper = buf != [0; 4];
    }
    let thp_disable = b.syscall(libc::SYS_prctl, [PR_GET_THP_DISABLE, 0, 0, 0, 0, 0])? > 0;
    Ok((child_subreaper, thp_disable))
}

/// Why the resume cannot give an attribute back: the restore refuses the
/// image with it (its `Refusal::Attributes`).
#[derive(Debug, thiserror::Error)]
pub enum Conflict {
    /// An `oom_score_adj` below the resume command's, which only
    /// `CAP_SYS_RESOURCE` may lower.
    #[error(
        "its oom_score_adj was {want}, below this command's {here}; lowering it needs \
         CAP_SYS_RESOURCE"
    )]
    OomScore { want: i32, here: i32 },
    /// A login uid where this kernel has no audit.
    #[error("the process had {what}, which this kernel cannot give back ({why})")]
    KernelLacks { what: String, why: &'static str },
}

/// The oom_score_adj must be the agent's to set: the process starts with
/// this command's, and going below it needs `CAP_SYS_RESOURCE`.
pub fn check_oom_score(image: &Image) -> Result<(), Conflict> {
    let Some(a) = &image.process.attributes else {
        return Ok(());
    };
    let own = super::confinement::own();
    let here: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if a.oom_score_adj < here && own.effective & (1 << CAP_SYS_RESOURCE) == 0 {
        return Err(Conflict::OomScore {
            want: a.oom_score_adj,
            here,
        });
    }
    Ok(())
}

/// A saved login uid needs a kernel with audit (`/proc/self/loginuid`).
pub fn check_loginuid(image: &Image) -> Result<(), Conflict> {
    if let Some(uid) = image.process.attributes.as_ref().and_then(|a| a.loginuid)
        && crate::procfs::loginuid(std::process::id())
            .ok()
            .flatten()
            .is_none()
    {
        return Err(Conflict::KernelLacks {
            what: format!("login uid {uid}"),
            why: "no audit support: /proc/self/loginuid is missing",
        });
    }
    Ok(())
}

/// Its name (empty if it holds a NUL).
pub fn comm(p: &Process) -> CString {
    CString::new(p.comm.clone()).unwrap_or_default()
}

/// `/proc/self/loginuid`'s new text: the `saved` login uid, unless
/// `ours` (asked only then) is the same already.
pub fn loginuid(saved: Option<u32>, ours: impl FnOnce() -> Option<u32>) -> Option<Vec<u8>> {
    saved
        .filter(|&uid| ours() != Some(uid))
        .map(|uid| uid.to_string().into_bytes())
}

/// The stub's `RESTORE_*` flags for the child subreaper and THP
/// attributes.
pub fn flags(a: Option<&Attributes>) -> u32 {
    a.map_or(0, |a| {
        (if a.child_subreaper {
            RESTORE_CHILD_SUBREAPER
        } else {
            0
        }) | if a.thp_disable {
            RESTORE_THP_DISABLE
        } else {
            0
        }
    })
}

/// Writes the saved `oom_score_adj` into `/proc/PID/oom_score_adj`.
pub fn give_back_oom_score_adj(pid: u32, a: &Attributes) -> std::io::Result<()> {
    std::fs::write(
        format!("/proc/{pid}/oom_score_adj"),
        a.oom_score_adj.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn the_name_and_oom_score_adj_are_read_from_their_files() {
        assert_eq!(name("bash\n"), "bash");
        assert_eq!(oom_score_adj("-500\n"), Some(-500));
        assert_eq!(oom_score_adj("x\n"), None);
    }

    #[test]
    fn the_login_uid_is_written_only_where_it_differs() {
        let asked = &Cell::new(0);
        let ours = |uid| {
            move || {
                asked.set(asked.get() + 1);
                uid
            }
        };
        assert_eq!(loginuid(Some(1000), ours(Some(0))), Some(b"1000".to_vec()));
        assert_eq!(loginuid(Some(1000), ours(None)), Some(b"1000".to_vec()));
        assert_eq!(loginuid(Some(1000), ours(Some(1000))), None);
        assert_eq!(asked.get(), 3);
        assert_eq!(loginuid(None, ours(Some(1000))), None);
        assert_eq!(asked.get(), 3, "not asked without a saved one");
    }

    #[test]
    fn the_flags_say_subreaper_and_thp() {
        assert_eq!(flags(None), 0);
        let both = Attributes {
            child_subreaper: true,
            thp_disable: true,
            ..Attributes::default()
        };
        assert_eq!(
            flags(Some(&both)),
            RESTORE_CHILD_SUBREAPER | RESTORE_THP_DISABLE
        );
        let thp = Attributes {
            thp_disable: true,
            ..Attributes::default()
        };
        assert_eq!(flags(Some(&thp)), RESTORE_THP_DISABLE);
    }
}
