//! Saving one stopped thread: registers, the full xstate and the signal
//! mask (the tracee's), then what each kind of state reads of it with
//! ptrace or from `/proc`: pending signals (`state::signals`), rseq and
//! the robust futex list (`state::threads`) and its scheduling
//! (`state::sched`).

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};

use super::DumpError;
use crate::{
    freeze::Thread as FrozenThread,
    image::format::Thread,
    state::{sched, signals, threads},
    tracee::ptrace,
};

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
    let rseq = threads::read_rseq(pid, tid)?;
    let syscall = |source| DumpError::Syscall { pid, tid, source };
    let robust_list = threads::read_robust_list(tid).map_err(syscall)?;
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
        sched: Some(sched::save(tid).map_err(syscall)?),
        // Asked from inside the thread (dump::inside).
        timer_slack_ns: None,
        tsc: None,
        speculation: Vec::new(),
        comm: std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
            .ok()
            .map(|c| c.trim_end_matches('\n').to_owned()),
        ioprio: Some(sched::save_ioprio(tid).map_err(syscall)?),
    })
}
