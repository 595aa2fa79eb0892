//! The process's own attributes, one of each per process: its name
//! (`comm`), its `oom_score_adj`, its audit login uid, whether it is a
//! child subreaper and has transparent huge pages disabled, whether it is
//! dumpable, its memory-deny-write-execute flags (MDWE), its `membarrier`
//! registrations, its core dump filter and its autogroup's nice value.
//!
//! Saved: the name from `/proc/PID/comm` ([`name`]) and the
//! `oom_score_adj` from its file ([`oom_score_adj`]), both read by
//! `dump::process`; the login uid, the core dump filter and the autogroup
//! nice from `/proc/PID/loginuid`, `coredump_filter` and `autogroup`
//! (`procfs`, read by `dump`); asked from inside, called by
//! `dump::inside`: the two flags ([`ask_flags`]), dumpable and MDWE
//! ([`ask_dumpable`], [`ask_mdwe`]), the `membarrier` registrations
//! ([`ask_membarrier`]), each thread's parent-death signal
//! ([`ask_pdeath_signal`], for its refusal). They are the process record's `comm` and part of
//! its `attributes`.
//!
//! Restored: the restore child sets the name ([`comm`]) and writes the
//! login uid while still root, where it differs from its own
//! ([`loginuid`]); the stub sets the flags ([`flags`]: its `RESTORE_*`
//! bits); the borrowed main thread registers for `membarrier` again
//! ([`register_membarrier`]), sets MDWE ([`set_mdwe`]) and, last of what
//! it does, dumpable ([`set_dumpable`]), called by `restore::finish`; the
//! `oom_score_adj`, the core dump filter and the autogroup nice are
//! written from outside once every thread is ready
//! ([`give_back_oom_score_adj`], [`give_back_coredump_filter`],
//! [`give_back_autogroup_nice`], called by `restore::finish`).
//! An `oom_score_adj` below the resume command's without
//! `CAP_SYS_RESOURCE` ([`check_oom_score`]) and a login uid where the
//! kernel has no audit ([`check_loginuid`]) are refused before anything
//! is created: the restore refuses the image with their [`Conflict`].
//!
//! Refused by the dump, before the freeze from what the task iterator
//! shows and again once frozen from what the process is asked: a thread's
//! parent-death signal ([`pdeath_signal_refusal`]) and dumpable mode 2
//! ([`dumpable_refusal`]), which a resume cannot give back.

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

const PR_GET_PDEATHSIG: u64 = 2;
const PR_GET_CHILD_SUBREAPER: u64 = 37;
const PR_GET_THP_DISABLE: u64 = 42;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_MDWE: u64 = 65;
const PR_GET_MDWE: u64 = 66;

/// `MEMBARRIER_CMD_QUERY`, `_GET_REGISTRATIONS` (Linux 6.3) and
/// `_REGISTER_GLOBAL_EXPEDITED`.
const MEMBARRIER_QUERY: u64 = 0;
const MEMBARRIER_GET_REGISTRATIONS: u64 = 1 << 9;
const MEMBARRIER_REGISTER_GLOBAL_EXPEDITED: u32 = 1 << 2;
/// Each private expedited barrier, and the registration it needs: without
/// it the barrier fails with `EPERM`.
const MEMBARRIER_PROBES: [(u64, u32); 3] = [(1 << 3, 1 << 4), (1 << 5, 1 << 6), (1 << 7, 1 << 8)];

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

/// Whether `b`'s process is dumpable (`PR_GET_DUMPABLE`; `None` where
/// the call fails).
pub fn ask_dumpable(b: &mut Borrowed) -> Result<Option<u32>, InjectError> {
    let dumpable = b.syscall(libc::SYS_prctl, [PR_GET_DUMPABLE, 0, 0, 0, 0, 0])?;
    Ok(u32::try_from(dumpable).ok())
}

/// `b`'s process's MDWE flags (`PR_GET_MDWE`; `None` before Linux 6.3 or
/// where none is set).
pub fn ask_mdwe(b: &mut Borrowed) -> Result<Option<u32>, InjectError> {
    let mdwe = b.syscall(libc::SYS_prctl, [PR_GET_MDWE, 0, 0, 0, 0, 0])?;
    Ok(u32::try_from(mdwe).ok().filter(|&f| f != 0))
}

/// `b`'s process's `membarrier` registrations (`MEMBARRIER_CMD_REGISTER_*`
/// bits).
pub fn ask_membarrier(b: &mut Borrowed) -> Result<u32, InjectError> {
    let membarrier = |b: &mut Borrowed, cmd| b.syscall(libc::SYS_membarrier, [cmd, 0, 0, 0, 0, 0]);
    let registered = membarrier(b, MEMBARRIER_GET_REGISTRATIONS)?;
    Ok(if registered >= 0 {
        registered as u32
    } else {
        // Before 6.3: each private barrier succeeds only if the
        // process registered for it (it is frozen: the barrier
        // reaches no running thread). The global registration
        // cannot be read there; it only adds barriers sent by
        // others, so it is given whenever the kernel has it.
        let mut mask = 0;
        for (barrier, registration) in MEMBARRIER_PROBES {
            if membarrier(b, barrier)? == 0 {
                mask |= registration;
            }
        }
        let supported = membarrier(b, MEMBARRIER_QUERY)?;
        if supported > 0 && supported as u32 & MEMBARRIER_REGISTER_GLOBAL_EXPEDITED != 0 {
            mask |= MEMBARRIER_REGISTER_GLOBAL_EXPEDITED;
        }
        mask
    })
}

/// The parent-death signal of `b` (a borrowed thread; `PR_GET_PDEATHSIG`,
/// asked through `site`'s scratch page; 0: none, or the call failed).
pub fn ask_pdeath_signal(b: &mut Borrowed, site: &Site) -> Result<i32, InjectError> {
    if b.syscall(
        libc::SYS_prctl,
        [PR_GET_PDEATHSIG, site.scratch(), 0, 0, 0, 0],
    )? != 0
    {
        return Ok(0);
    }
    let mut buf = [0u8; 4];
    site.read(0, &mut buf)?;
    Ok(i32::from_ne_bytes(buf))
}

/// A thread's parent-death signal (`signal`, `PR_SET_PDEATHSIG`; 0: none),
/// as the task iterator or `PR_GET_PDEATHSIG` asked from inside shows it:
/// refused. It is relative to the parent, which a resume from the image
/// does not give back (the resume command is the new one, and it exits at
/// once).
pub fn pdeath_signal_refusal(tid: u32, signal: i32) -> Option<String> {
    (signal != 0).then(|| {
        format!(
            "thread {tid} has a parent-death signal ({signal}, PR_SET_PDEATHSIG): its parent is \
             not restored from an image"
        )
    })
}

/// Dumpable mode 2 (`suid_dumpable`), as the task iterator or
/// `PR_GET_DUMPABLE` asked from inside shows it: refused, `PR_SET_DUMPABLE`
/// cannot set it.
pub fn dumpable_refusal(dumpable: Option<u32>) -> Option<String> {
    (dumpable == Some(2))
        .then(|| "dumpable mode 2 (suid_dumpable: PR_SET_DUMPABLE cannot set it)".into())
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

/// Each registration of `mask`, one bit each, lowest first.
fn registrations(mask: u32) -> impl Iterator<Item = u32> {
    (0..32)
        .map(move |bit| mask & (1 << bit))
        .filter(|&r| r != 0)
}

/// Registers the process for each of its saved `membarrier`
/// registrations again, through its borrowed `main` thread.
pub fn register_membarrier(image: &Image, main: &mut Borrowed) -> Result<(), InjectError> {
    if let Some(a) = &image.process.attributes {
        for registration in registrations(a.membarrier) {
            let what = format!("membarrier registration {registration:#x}");
            main.call(
                &what,
                libc::SYS_membarrier,
                [registration as u64, 0, 0, 0, 0, 0],
            )?;
        }
    }
    Ok(())
}

/// Sets the process's saved MDWE flags again, through its borrowed `main`
/// thread.
pub fn set_mdwe(image: &Image, main: &mut Borrowed) -> Result<(), InjectError> {
    if let Some(flags) = image.process.attributes.as_ref().and_then(|a| a.mdwe) {
        let what = format!("PR_SET_MDWE {flags:#x}");
        main.call(
            &what,
            libc::SYS_prctl,
            [PR_SET_MDWE, flags as u64, 0, 0, 0, 0],
        )?;
    }
    Ok(())
}

/// Sets whether the process is dumpable again, through its borrowed
/// `main` thread: last of what it does, since a process that is not
/// dumpable has its /proc files owned by root.
pub fn set_dumpable(image: &Image, main: &mut Borrowed) -> Result<(), InjectError> {
    if let Some(dumpable) = image.process.attributes.as_ref().and_then(|a| a.dumpable) {
        let what = format!("PR_SET_DUMPABLE {dumpable}");
        main.call(
            &what,
            libc::SYS_prctl,
            [PR_SET_DUMPABLE, dumpable as u64, 0, 0, 0, 0],
        )?;
    }
    Ok(())
}

/// Writes the saved core dump filter into `/proc/PID/coredump_filter`.
pub fn give_back_coredump_filter(pid: u32, a: &Attributes) -> Result<(), String> {
    if let Some(filter) = a.coredump_filter {
        std::fs::write(
            format!("/proc/{pid}/coredump_filter"),
            format!("{filter:#x}"),
        )
        .map_err(|e| format!("coredump_filter {filter:#x}: {e}"))?;
    }
    Ok(())
}

/// Writes the saved autogroup nice value into `/proc/PID/autogroup`,
/// where the process leads its session and has another one now.
pub fn give_back_autogroup_nice(image: &Image, pid: u32, a: &Attributes) -> Result<(), String> {
    // An autogroup is its session's: only one the process leads is its own
    // to set (in the resume command's, it would change others' too).
    let leads = image.process.session.is_some_and(|s| s.sid == pid);
    if let Some(nice) = a.autogroup_nice.filter(|_| leads)
        && crate::procfs::autogroup_nice(pid) != Some(nice)
    {
        // The kernel takes one change of any autogroup per 100 ms
        // (EAGAIN meanwhile).
        let path = format!("/proc/{pid}/autogroup");
        let mut tries = 0;
        loop {
            match std::fs::write(&path, nice.to_string()) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < 30 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(format!("autogroup nice {nice}: {e}")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn a_parent_death_signal_and_dumpable_2_are_refused_by_name() {
        assert_eq!(pdeath_signal_refusal(7, 0), None);
        assert_eq!(
            pdeath_signal_refusal(7, 9).as_deref(),
            Some(
                "thread 7 has a parent-death signal (9, PR_SET_PDEATHSIG): its parent is not \
                 restored from an image"
            )
        );
        assert_eq!(dumpable_refusal(Some(1)), None);
        assert_eq!(dumpable_refusal(None), None);
        assert_eq!(
            dumpable_refusal(Some(2)).as_deref(),
            Some("dumpable mode 2 (suid_dumpable: PR_SET_DUMPABLE cannot set it)")
        );
    }

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

    #[test]
    fn each_membarrier_registration_is_made_on_its_own_lowest_first() {
        assert_eq!(registrations(0).count(), 0);
        let mask = MEMBARRIER_REGISTER_GLOBAL_EXPEDITED | 1 << 4 | 1 << 31;
        assert_eq!(
            registrations(mask).collect::<Vec<_>>(),
            [1 << 2, 1 << 4, 1 << 31]
        );
    }
}
