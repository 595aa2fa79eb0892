//! Threads: the main thread first (the stub starts in it and creates the
//! others), and each thread's part of the argument block — its stub
//! stack, pending signals, rseq area, robust list, tid address, alternate
//! stack, timer slack, scheduling and confinement — and its seccomp
//! filters, placed in the block for the agent to install from inside the
//! thread (`finish`). Registers, xstate and signal masks are not planned
//! here: the agent sets them with ptrace once the stub is done.

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use suspend_common::restore::{
    STUB_STACK, THREAD_HAS_ALTSTACK, THREAD_HAS_CAPS, THREAD_HAS_RSEQ, THREAD_HAS_SCHED,
    THREAD_HAS_TID_ADDRESS, THREAD_HAS_TIMER_SLACK, THREAD_NO_NEW_PRIVS, ThreadArgs,
};

use super::{args::Block, prepare_err, signals};
use crate::{
    image::{
        Image,
        format::{Sched, Thread},
    },
    restore::RestoreError,
    sys::sched::{FLAG_UTIL_CLAMP, SIZE_VER0, SchedAttr},
};

/// The image's threads with the main thread (tid = pid) first.
pub fn main_first(image: &Image) -> Vec<&Thread> {
    ordered(&image.threads, image.process.pid)
}

/// `threads`, the one whose tid is `pid` first, then by tid.
fn ordered(threads: &[Thread], pid: u32) -> Vec<&Thread> {
    let mut threads: Vec<_> = threads.iter().collect();
    threads.sort_by_key(|t| (t.tid != pid, t.tid));
    threads
}

/// A thread's seccomp filters, oldest first: each one's flags and the
/// address of its `struct sock_fprog`.
type Filters = Vec<(u64, u64)>;

/// Each thread's seccomp filters pushed on `block`: per thread that has
/// any, its tid and its filters.
pub fn seccomp(
    threads: &[&Thread],
    block: &mut Block,
) -> Result<Vec<(u32, Filters)>, RestoreError> {
    let mut seccomp = Vec::new();
    for t in threads {
        let mut filters = Vec::new();
        for f in &t.seccomp {
            let program = B64.decode(&f.program).map_err(|e| {
                prepare_err(format!("thread {}: a seccomp filter", t.tid))(std::io::Error::other(e))
            })?;
            let instructions: Vec<u64> = program
                .as_chunks::<8>()
                .0
                .iter()
                .map(|i| u64::from_ne_bytes(*i))
                .collect();
            let at = block.push(&instructions);
            // `struct sock_fprog`: the count (u16, padded), the pointer.
            let fprog = block.push(&[instructions.len() as u64, at]);
            filters.push((f.flags, fprog));
        }
        if !filters.is_empty() {
            seccomp.push((t.tid, filters));
        }
    }
    Ok(seccomp)
}

/// Each thread's arguments, in the order of `threads` (the `i`th's stub
/// stack tops out `STUB_STACK * (i + 1)` above `stacks`), what they point
/// to pushed on `block`.
pub fn args(threads: &[&Thread], pid: u32, stacks: u64, block: &mut Block) -> Vec<ThreadArgs> {
    let mut thread_args = Vec::new();
    for (i, t) in threads.iter().enumerate() {
        let pending = signals::thread_pending(t, pid);
        let mut flags = 0;
        let mut a = ThreadArgs {
            tid: t.tid,
            stack_top: stacks + STUB_STACK * (i as u64 + 1),
            robust_head: t.robust_list.0,
            robust_len: t.robust_list.1,
            pending_count: pending.len() as u32,
            pending: block.push(&pending),
            ..ThreadArgs::default()
        };
        if let Some(r) = &t.rseq {
            flags |= THREAD_HAS_RSEQ;
            a.rseq_addr = r.addr;
            a.rseq_len = r.len;
            a.rseq_signature = r.signature;
        }
        if let Some(addr) = t.tid_address {
            flags |= THREAD_HAS_TID_ADDRESS;
            a.tid_address = addr;
        }
        if let Some(s) = &t.sigaltstack {
            flags |= THREAD_HAS_ALTSTACK;
            a.altstack_sp = s.sp;
            a.altstack_size = s.size;
            a.altstack_flags = s.flags;
        }
        if let Some(slack) = t.timer_slack_ns {
            flags |= THREAD_HAS_TIMER_SLACK;
            a.timer_slack_ns = slack;
        }
        if let Some(s) = &t.sched {
            flags |= THREAD_HAS_SCHED;
            a.sched_attr = block.push(&[sched_attr(s)]);
            a.affinity = block.push(&s.affinity);
            a.affinity_len = (s.affinity.len() * 8) as u32;
        }
        if let Some(c) = &t.confinement {
            flags |= THREAD_HAS_CAPS;
            a.cap_inheritable = c.inheritable;
            a.cap_permitted = c.permitted;
            a.cap_effective = c.effective;
            a.cap_bounding = c.bounding;
            a.cap_ambient = c.ambient;
            a.securebits = c.securebits;
            if c.no_new_privs {
                flags |= THREAD_NO_NEW_PRIVS;
            }
        }
        a.flags = flags;
        thread_args.push(a);
    }
    thread_args
}

/// The `sched_setattr` argument for `s`: the first version's size, or the
/// second's with the utilization clamps where it has them.
fn sched_attr(s: &Sched) -> SchedAttr {
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
