//! A thread's scheduling: its policy, the flags it keeps, nice value,
//! priority, deadline parameters, utilization clamps and CPU affinity,
//! saved per thread (the kernel keeps them per thread) and given back by
//! the restorer stub with the thread's other arguments.
//!
//! Saved: `sched_getattr` and `sched_getaffinity` from outside ([`save`],
//! its record made by [`from_attr`]). Restored: the `sched_setattr`
//! argument ([`setattr`]) and the mask, pushed on the argument block by
//! the planner (`restore/plan/threads.rs`), and the stub's arguments that
//! point to them ([`thread_args`]).

use suspend_common::restore::{THREAD_HAS_SCHED, ThreadArgs};

use crate::{
    image::format::Sched,
    sys::{
        SyscallError,
        sched::{self, FLAG_UTIL_CLAMP, SIZE_VER0, SchedAttr},
    },
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

#[cfg(test)]
mod tests {
    use suspend_common::restore::{THREAD_HAS_SCHED, ThreadArgs};

    use super::{from_attr, setattr, thread_args};
    use crate::{
        image::format::Sched,
        sys::sched::{FLAG_UTIL_CLAMP, SIZE_VER0, SchedAttr},
    };

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
}
