//! A thread's scheduling: its policy, the flags it keeps, nice value,
//! priority, deadline parameters, utilization clamps and CPU affinity,
//! saved per thread (the kernel keeps them per thread) and given back by
//! the restorer stub with the thread's other arguments.
//!
//! Saved: `sched_getattr` and `sched_getaffinity` from outside ([`save`],
//! its record made by [`from_attr`]). Restored: the `sched_setattr`
//! argument ([`setattr`]) and the mask, pushed on the argument block by
//! the planner (`restore/plan/threads.rs`), and the stub's arguments that
//! point to them ([`thread_args`]). Refused before anything is created: a
//! thread that may run on no CPU this command may, or has clamps this
//! kernel lacks ([`check`]). A thread's own NUMA memory policy, which an
//! image does not hold yet, is asked from inside ([`ask_mempolicy`]) and
//! refused by the dump ([`mempolicy_refusal`]), as are the policies its
//! mappings are under, the process's or their own ([`numa_maps_refusal`]).
//!
//! A thread's I/O priority too: saved from outside ([`save_ioprio`]), set
//! again from outside by the agent once the process is made
//! ([`restore_ioprio`]).

use suspend_common::restore::{THREAD_HAS_SCHED, ThreadArgs};

use crate::{
    image::{
        Image,
        format::{Sched, Thread},
    },
    sys::{
        SyscallError,
        sched::{self, FLAG_UTIL_CLAMP, SIZE_VER0, SchedAttr},
    },
    tracee::inject::{Borrowed, InjectError, Site},
};

// Save: asked from outside.

/// The scheduling flags a thread keeps: `SCHED_FLAG_RESET_ON_FORK`, and
/// `SCHED_FLAG_RECLAIM` and `SCHED_FLAG_DL_OVERRUN` of a deadline thread
/// (the clamps are saved as values: `Sched::util_clamp`).
const SCHED_FLAGS_KEPT: u64 = 0x01 | 0x02 | 0x04;

/// Thread `tid`'s scheduling.
pub fn save(tid: u32) -> Result<Sched, SyscallError> {
    let attr = sched::attr(tid)?;
    let affinity = sched::affinity(tid)?;
    let clamp_default = sched::has_util_clamp().then(|| sched::util_default(attr.policy));
    Ok(from_attr(&attr, affinity, clamp_default))
}

/// The record of `attr` with CPU mask `affinity`: the flags a thread
/// keeps, and its utilization clamps where they are not `clamp_default`
/// (the clamps a thread of its policy has when none was asked for; `None`
/// where the kernel has no clamps).
fn from_attr(attr: &SchedAttr, affinity: Vec<u64>, clamp_default: Option<(u32, u32)>) -> Sched {
    let clamp = (attr.util_min, attr.util_max);
    Sched {
        policy: attr.policy,
        flags: attr.flags & SCHED_FLAGS_KEPT,
        nice: attr.nice,
        priority: attr.priority,
        runtime: attr.runtime,
        deadline: attr.deadline,
        period: attr.period,
        affinity,
        util_clamp: clamp_default
            .is_some_and(|default| clamp != default)
            .then_some(clamp),
    }
}

/// Thread `tid`'s I/O priority (`ioprio_get(IOPRIO_WHO_PROCESS, tid)`).
pub fn save_ioprio(tid: u32) -> Result<u32, SyscallError> {
    sched::ioprio(tid)
}

/// The NUMA memory policy mode of `b` (a borrowed thread; `get_mempolicy`,
/// asked through `site`'s scratch page; 0, `MPOL_DEFAULT`: none, or a
/// kernel without NUMA).
pub fn ask_mempolicy(b: &mut Borrowed, site: &Site) -> Result<i32, InjectError> {
    if b.syscall(libc::SYS_get_mempolicy, [site.scratch(), 0, 0, 0, 0, 0])? != 0 {
        return Ok(0);
    }
    let mut buf = [0u8; 4];
    site.read(0, &mut buf)?;
    Ok(i32::from_ne_bytes(buf))
}

/// A thread's own NUMA memory policy (`set_mempolicy`), which an image
/// does not hold yet: refused. `mode` is what `get_mempolicy` asked from
/// inside gave (0, `MPOL_DEFAULT`: none); `None` where the task iterator
/// saw that it has one (it does not show the mode).
pub fn mempolicy_refusal(tid: u32, mode: Option<i32>) -> Option<String> {
    match mode {
        Some(0) => None,
        Some(mode) => Some(format!(
            "thread {tid} has a NUMA memory policy (mode {mode}, set_mempolicy)"
        )),
        None => Some(format!(
            "thread {tid} has a NUMA memory policy (set_mempolicy)"
        )),
    }
}

/// The NUMA memory policies `pid`'s mappings are under, the process's or
/// a mapping's own (`set_mempolicy`, `mbind`), which an image does not
/// hold yet: refused, all in one line. `/proc/PID/numa_maps` shows the one
/// in force for every mapping.
pub fn numa_maps_refusal(pid: u32) -> Option<String> {
    numa_maps_refusal_of(&std::fs::read_to_string(format!("/proc/{pid}/numa_maps")).ok()?)
}

/// [`numa_maps_refusal`] of the text of `/proc/PID/numa_maps`: each policy
/// other than `default`, once, in order.
fn numa_maps_refusal_of(numa_maps: &str) -> Option<String> {
    let policies: std::collections::BTreeSet<&str> = numa_maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|p| *p != "default")
        .collect();
    (!policies.is_empty()).then(|| {
        format!(
            "NUMA memory policy {} (set_mempolicy, mbind)",
            policies.into_iter().collect::<Vec<_>>().join(", ")
        )
    })
}

// Restore: checked first; what the stub is given; the I/O priority set
// from outside.

/// A thread's scheduling this machine cannot give back: the restore
/// refuses the image with it (its `Refusal::Sched`).
#[derive(Debug, thiserror::Error)]
pub enum Conflict {
    /// Its affinity is set as it was, and an empty one cannot be.
    #[error(
        "thread {tid} may run only on CPUs this machine does not give the resume (its mask \
         {mask})"
    )]
    Cpus { tid: u32, mask: String },
    /// Utilization clamps on a kernel without them.
    #[error("the process had {what}, which this kernel cannot give back ({why})")]
    KernelLacks { what: String, why: &'static str },
}

/// Every thread must be able to run on one of the CPUs this command may:
/// its affinity is set as it was, and an empty one cannot be.
pub fn check(image: &Image) -> Result<(), Conflict> {
    let here = sched::affinity(0).unwrap_or_default();
    check_against(&image.threads, &here, sched::has_util_clamp)
}

/// [`check`] of `threads` against this command's CPU mask `here`, on a
/// kernel that has utilization clamps if `has_util_clamp` says so (asked
/// only of a thread with clamps).
fn check_against(
    threads: &[Thread],
    here: &[u64],
    has_util_clamp: impl Fn() -> bool,
) -> Result<(), Conflict> {
    for t in threads {
        let Some(s) = &t.sched else { continue };
        if let Some((min, max)) = s.util_clamp
            && !has_util_clamp()
        {
            return Err(Conflict::KernelLacks {
                what: format!("utilization clamps {min}-{max} on thread {}", t.tid),
                why: "no CONFIG_UCLAMP_TASK",
            });
        }
        if !s.affinity.iter().zip(here).any(|(a, b)| a & b != 0) {
            let mask = s
                .affinity
                .iter()
                .rev()
                .map(|w| format!("{w:016x}"))
                .collect::<String>();
            return Err(Conflict::Cpus {
                tid: t.tid,
                mask: mask.trim_start_matches('0').to_owned(),
            });
        }
    }
    Ok(())
}

// Restore: what the stub is given.

/// The `sched_setattr` argument for `s`: the first version's size, or the
/// second's with the utilization clamps where it has them.
pub fn setattr(s: &Sched) -> SchedAttr {
    let clamp = s.util_clamp;
    SchedAttr {
        size: if clamp.is_some() { 56 } else { SIZE_VER0 },
        policy: s.policy,
        flags: s.flags | if clamp.is_some() { FLAG_UTIL_CLAMP } else { 0 },
        nice: s.nice,
        priority: s.priority,
        runtime: s.runtime,
        deadline: s.deadline,
        period: s.period,
        util_min: clamp.map_or(0, |c| c.0),
        util_max: clamp.map_or(0, |c| c.1),
    }
}

/// Sets the stub's arguments for a thread scheduled as `s`, whose
/// [`setattr`] argument the planner pushed at `attr` and whose mask at
/// `affinity`; returns the flag that says it has them.
pub fn thread_args(s: &Sched, attr: u64, affinity: u64, a: &mut ThreadArgs) -> u32 {
    a.sched_attr = attr;
    a.affinity = affinity;
    a.affinity_len = (s.affinity.len() * 8) as u32;
    THREAD_HAS_SCHED
}

/// Gives thread `t` its I/O priority again, from outside, where it has
/// another.
pub fn restore_ioprio(t: &Thread) -> Result<(), String> {
    if let Some(prio) = t.ioprio
        && sched::ioprio(t.tid).ok() != Some(prio)
    {
        sched::set_ioprio(t.tid, prio)
            .map_err(|e| format!("thread {}: I/O priority {prio:#x}: {e}", t.tid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use suspend_common::restore::{THREAD_HAS_SCHED, ThreadArgs};

    use super::{
        Conflict, check_against, from_attr, mempolicy_refusal, numa_maps_refusal_of, setattr,
        thread_args,
    };
    use crate::{
        image::format::{Sched, Thread},
        sys::sched::{FLAG_UTIL_CLAMP, SIZE_VER0, SchedAttr},
    };

    #[test]
    fn the_numa_policies_of_its_mappings_are_refused_each_once() {
        let text = "55d0c0000000 default file=/usr/bin/w mapped=2 N0=2 kernelpagesize_kB=4\n\
                    7f0000000000 bind:1 anon=4 dirty=4 N1=4 kernelpagesize_kB=4\n\
                    7f0000100000 interleave:0-1 anon=2 dirty=2 N0=1 N1=1 kernelpagesize_kB=4\n\
                    7f0000200000 bind:1 anon=1 dirty=1 N1=1 kernelpagesize_kB=4\n\
                    7ffd00000000 default stack anon=3 dirty=3 N0=3 kernelpagesize_kB=4\n";
        assert_eq!(
            numa_maps_refusal_of(text).as_deref(),
            Some("NUMA memory policy bind:1, interleave:0-1 (set_mempolicy, mbind)")
        );
        assert_eq!(numa_maps_refusal_of("7f0000000000 default anon=1\n"), None);
    }

    #[test]
    fn a_numa_policy_is_refused_with_its_mode_where_known() {
        assert_eq!(mempolicy_refusal(5, Some(0)), None);
        assert_eq!(
            mempolicy_refusal(5, Some(2)).as_deref(),
            Some("thread 5 has a NUMA memory policy (mode 2, set_mempolicy)")
        );
        assert_eq!(
            mempolicy_refusal(5, None).as_deref(),
            Some("thread 5 has a NUMA memory policy (set_mempolicy)")
        );
    }

    #[test]
    fn utilization_clamps_need_the_longer_sched_attr() {
        let plain = Sched {
            policy: libc::SCHED_RR as u32,
            priority: 10,
            flags: 1,
            ..Sched::default()
        };
        let attr = setattr(&plain);
        assert_eq!((attr.size, attr.flags, attr.priority), (SIZE_VER0, 1, 10));
        assert_eq!((attr.util_min, attr.util_max), (0, 0));
        let clamped = setattr(&Sched {
            util_clamp: Some((128, 512)),
            ..plain
        });
        assert_eq!((clamped.size, clamped.flags), (56, 1 | FLAG_UTIL_CLAMP));
        assert_eq!((clamped.util_min, clamped.util_max), (128, 512));
    }

    #[test]
    fn the_flags_kept_and_the_clamps_asked_for_come_back() {
        let read = SchedAttr {
            size: 56,
            policy: libc::SCHED_FIFO as u32,
            // RESET_ON_FORK and DL_OVERRUN, and the clamps' flags.
            flags: 0x01 | 0x04 | FLAG_UTIL_CLAMP,
            nice: -5,
            priority: 30,
            runtime: 1,
            deadline: 2,
            period: 3,
            util_min: 128,
            util_max: 512,
        };
        let saved = from_attr(&read, vec![0b11], Some((1024, 1024)));
        assert_eq!(saved.flags, 0x01 | 0x04);
        assert_eq!(saved.util_clamp, Some((128, 512)));
        assert_eq!(setattr(&saved), read, "given back as it was read");
        let keep_policy = SchedAttr {
            flags: read.flags | 0x08,
            ..read
        };
        assert_eq!(
            from_attr(&keep_policy, vec![0b11], Some((1024, 1024))),
            saved,
            "SCHED_FLAG_KEEP_POLICY is not kept"
        );

        let defaults = SchedAttr {
            util_min: 1024,
            util_max: 1024,
            ..read
        };
        let unclamped = from_attr(&defaults, vec![0b11], Some((1024, 1024)));
        assert_eq!(unclamped.util_clamp, None, "the policy's own clamps");
        let back = setattr(&unclamped);
        assert_eq!((back.size, back.flags), (SIZE_VER0, 0x01 | 0x04));
        assert_eq!((back.util_min, back.util_max), (0, 0));
        let no_clamps = from_attr(&read, vec![0b11], None);
        assert_eq!(no_clamps.util_clamp, None, "a kernel without clamps");
    }

    #[test]
    fn the_stub_is_pointed_at_the_attr_and_the_mask() {
        let s = Sched {
            affinity: vec![0b1010, 0],
            ..Sched::default()
        };
        let mut a = ThreadArgs::default();
        assert_eq!(thread_args(&s, 0x5000, 0x5040, &mut a), THREAD_HAS_SCHED);
        assert_eq!(
            (a.sched_attr, a.affinity, a.affinity_len),
            (0x5000, 0x5040, 16)
        );
    }

    #[test]
    fn a_thread_that_may_run_on_no_cpu_here_or_with_clamps_this_kernel_lacks_is_refused() {
        let thread = |tid, affinity: Vec<u64>, util_clamp| Thread {
            tid,
            sched: Some(Sched {
                affinity,
                util_clamp,
                ..Sched::default()
            }),
            ..crate::state::fixtures::thread(tid)
        };
        let here = [0b0011, 0];
        let fits = [thread(7, vec![0b0110], None), thread(8, vec![0, 1], None)];
        assert!(check_against(&fits[..1], &here, || true).is_ok());
        let err = check_against(&fits, &here, || true).expect_err("no CPU of 8's here");
        assert!(matches!(err, Conflict::Cpus { tid: 8, .. }));
        assert_eq!(
            err.to_string(),
            "thread 8 may run only on CPUs this machine does not give the resume (its mask \
             10000000000000000)"
        );
        let clamped = [thread(9, vec![1], Some((128, 512)))];
        assert!(check_against(&clamped, &here, || true).is_ok());
        assert_eq!(
            check_against(&clamped, &here, || false)
                .expect_err("no clamps here")
                .to_string(),
            "the process had utilization clamps 128-512 on thread 9, which this kernel cannot \
             give back (no CONFIG_UCLAMP_TASK)"
        );
    }
}
