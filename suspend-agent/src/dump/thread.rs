//! Saving one stopped thread: registers, the full xstate, the signal mask,
//! pending signals, rseq, the robust futex list and its scheduling.

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};

use super::DumpError;
use crate::{
    freeze::Thread as FrozenThread,
    image::format::{Rseq, Sched, Thread},
    state::signals,
    sys::sched,
    tracee::ptrace,
};

/// The scheduling flags a thread keeps: `SCHED_FLAG_RESET_ON_FORK`, and
/// `SCHED_FLAG_RECLAIM` and `SCHED_FLAG_DL_OVERRUN` of a deadline thread
/// (the clamps are saved as values: `Sched::util_clamp`).
const SCHED_FLAGS_KEPT: u64 = 0x01 | 0x02 | 0x04;

/// Thread `tid`'s scheduling.
fn save_sched(pid: u32, tid: u32) -> Result<Sched, DumpError> {
    let syscall = |source| DumpError::Syscall { pid, tid, source };
    let attr = sched::attr(tid).map_err(syscall)?;
    let affinity = sched::affinity(tid).map_err(syscall)?;
    Ok(Sched {
        policy: attr.policy,
        flags: attr.flags & SCHED_FLAGS_KEPT,
        nice: attr.nice,
        priority: attr.priority,
        runtime: attr.runtime,
        deadline: attr.deadline,
        period: attr.period,
        affinity,
        util_clamp: (sched::has_util_clamp()
            && (attr.util_min, attr.util_max) != sched::util_default(attr.policy))
        .then_some((attr.util_min, attr.util_max)),
    })
}

/// Saves `thread` of `pid`; `xstate_size` is the CPU's xstate size.
pub fn save(pid: u32, thread: &FrozenThread, xstate_size: usize) -> Result<Thread, DumpError> {
    let tid = thread.tid;
    let err = |call| ptrace::PtraceError::of(pid, tid, call);
    let r = ptrace::regs(tid).map_err(err("PTRACE_GETREGS"))?;
    let mut xstate = vec![0u8; xstate_size.max(4096)];
    let len = ptrace::xstate(tid, &mut xstate).map_err(err("PTRACE_GETREGSET(NT_X86_XSTATE)"))?;
    xstate.truncate(len);
    let sigmask = ptrace::sigmask(tid).map_err(err("PTRACE_GETSIGMASK"))?;
    let pending = signals::read_thread_pending(pid, tid, thread.stopped_with.is_some())?;
    let rseq = match ptrace::rseq(tid) {
        Ok(r) => r.map(|(addr, len, signature)| Rseq {
            addr,
            len,
            signature,
        }),
        // Kernels before 5.13 cannot say; glibc before 2.35 has none.
        Err(nix::errno::Errno::EIO) => None,
        Err(source) => return Err(err("PTRACE_GET_RSEQ_CONFIGURATION")(source).into()),
    };
    let robust_list =
        ptrace::robust_list(tid).map_err(|source| DumpError::Syscall { pid, tid, source })?;
    Ok(Thread {
        tid,
        regs: (&r).into(),
        xstate: B64.encode(&xstate),
        sigmask,
        pending,
        rseq,
        robust_list,
        // Saved in `pending` (older images: here, without its siginfo).
        stopped_with: None,
        // Asked from inside the thread (dump::inside).
        sigaltstack: None,
        tid_address: None,
        // From /proc and the securebits asked from inside (state::confinement).
        confinement: None,
        seccomp: Vec::new(),
        sched: Some(save_sched(pid, tid)?),
        // Asked from inside the thread (dump::inside).
        timer_slack_ns: None,
        tsc: None,
        speculation: Vec::new(),
        comm: std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
            .ok()
            .map(|c| c.trim_end_matches('\n').to_owned()),
        ioprio: Some(sched::ioprio(tid).map_err(|source| DumpError::Syscall {
            pid,
            tid,
            source,
        })?),
    })
}
