//! Saving one stopped thread: registers, the full xstate, the signal mask,
//! pending signals, rseq, the robust futex list and its scheduling
//! (`state::sched`).

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};

use super::DumpError;
use crate::{
    freeze::Thread as FrozenThread,
    image::format::{Rseq, Thread},
    state::{sched, signals},
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
    let syscall = |source| DumpError::Syscall { pid, tid, source };
    let robust_list = ptrace::robust_list(tid).map_err(syscall)?;
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
        ioprio: Some(crate::sys::sched::ioprio(tid).map_err(syscall)?),
    })
}
