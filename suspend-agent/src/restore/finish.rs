//! The last step: every thread waits in the stub; the agent seizes them,
//! borrows the main thread for two system calls (unmap the zone, drop the
//! tie to the agent), gives every thread its registers, xstate and signal
//! mask, queues the resume signal for the parked client thread and lets
//! them go. The kernel then restarts (or fails with `EINTR`) any system
//! call a thread was in, from its restored registers, as it would have
//! after a signal.

use std::os::unix::fs::FileExt as _;

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use nix::errno::Errno;
use suspend_common::{
    client_block::{CLIENT_BLOCK_MAGIC, ClientBlock},
    paths::CLIENT_MEMFD_NAME,
};

use super::{RestoreError, child::Created, plan::Plan};
use crate::{
    image::{
        Image,
        format::{PAGES_FILE, Regs},
    },
    procfs::vmas,
    tracee::{
        inject::{Borrowed, Site},
        ptrace::{self, Stop},
    },
};

const NT_X86_XSTATE: libc::c_int = 0x202;
/// `seccomp(2)`'s operation.
const SECCOMP_SET_MODE_FILTER: u64 = 1;

/// Takes the process over and lets it run. Returns whether a parked client
/// thread was sent the resume signal.
pub fn take_over(image: &Image, plan: &Plan, created: Created) -> Result<bool, RestoreError> {
    let pid = created.pid;
    let failed = |step: &str, detail: String| {
        let status = super::child::kill_and_reap(pid, &plan.tids);
        RestoreError::Failed {
            pid,
            step: step.into(),
            detail: format!("{detail}; {status}"),
        }
    };
    for &tid in &plan.tids {
        ptrace::seize(tid)
            .and_then(|()| ptrace::interrupt(tid))
            .map_err(|e| failed("seizing the threads", format!("thread {tid}: {e}")))?;
    }
    for &tid in &plan.tids {
        match ptrace::wait_stop(tid) {
            Ok(Stop::Interrupted) => {}
            other => {
                return Err(failed(
                    "seizing the threads",
                    format!("thread {tid} did not stop as expected: {other:?}"),
                ));
            }
        }
    }

    let site = vdso(pid)
        .and_then(|range| Site::find(pid, range, 0).map_err(|e| e.to_string()))
        .map_err(|e| failed("finding the vDSO", e))?;

    // Seccomp filters, oldest first, installed by each thread itself: the
    // threads are seized with their filters suspended, so neither the
    // installing nor anything after it meets them until they are let go.
    for (tid, filters) in &plan.seccomp {
        let mut thread = Borrowed::new(*tid, site, None)
            .map_err(|e| failed("installing seccomp filters", format!("thread {tid}: {e}")))?;
        for (i, &(flags, fprog)) in filters.iter().enumerate() {
            let ret = thread
                .syscall(
                    libc::SYS_seccomp,
                    [SECCOMP_SET_MODE_FILTER, flags, fprog, 0, 0, 0],
                )
                .map_err(|e| failed("installing seccomp filters", e.to_string()))?;
            if ret < 0 {
                return Err(failed(
                    "installing seccomp filters",
                    format!(
                        "thread {tid}, filter {i}: {}",
                        Errno::from_raw(-ret as i32).desc()
                    ),
                ));
            }
        }
        thread
            .restore()
            .map_err(|e| failed("installing seccomp filters", e.to_string()))?;
    }

    // The main thread runs two system calls for us (its registers are
    // replaced below anyway). No scratch memory is needed.
    let mut main = Borrowed::new(pid, site, None)
        .map_err(|e| failed("borrowing the main thread", e.to_string()))?;
    let (zone, zone_len) = plan.zone;
    let calls: [(&str, i64, [u64; 6]); 2] = [
        (
            "unmapping the restorer",
            libc::SYS_munmap,
            [zone, zone_len, 0, 0, 0, 0],
        ),
        (
            "PR_SET_PDEATHSIG",
            libc::SYS_prctl,
            [libc::PR_SET_PDEATHSIG as u64, 0, 0, 0, 0, 0],
        ),
    ];
    for (what, nr, args) in calls {
        let ret = main
            .syscall(nr, args)
            .map_err(|e| failed(what, e.to_string()))?;
        if ret < 0 {
            return Err(failed(what, Errno::from_raw(-ret as i32).desc().into()));
        }
    }
    main.restore()
        .map_err(|e| failed("borrowing the main thread", e.to_string()))?;

    if let Some(a) = &image.process.attributes {
        std::fs::write(
            format!("/proc/{pid}/oom_score_adj"),
            a.oom_score_adj.to_string(),
        )
        .map_err(|e| failed("setting oom_score_adj", e.to_string()))?;
    }

    let resume = resume_signal(image);
    for thread in super::plan::main_first(image) {
        let tid = thread.tid;
        let xstate = B64
            .decode(&thread.xstate)
            .map_err(|e| failed("restoring registers", format!("thread {tid}: xstate: {e}")))?;
        set_thread(tid, &thread.regs, &xstate, thread.sigmask)
            .map_err(|e| failed("restoring registers", format!("thread {tid}: {e}")))?;
    }
    // Every thread is ready: let them go, the parked one with its news.
    let mut told = false;
    for &tid in &plan.tids {
        if let Some((signal, token)) = resume.filter(|r| r.0 == tid).map(|r| (r.1, r.2)) {
            queue_resume(pid, tid, signal, token)
                .map_err(|e| failed("sending the resume signal", e))?;
            told = true;
        }
        // From the first detach on, the process runs: it may even have
        // exited before the last thread is let go. Nothing to undo then.
        if let Err(e) = ptrace::detach(tid, None) {
            log::debug!("letting thread {tid} go: {e} (the process runs already)");
        }
    }
    Ok(told)
}

/// Where the process's vDSO is now (a `syscall` instruction is borrowed
/// from it).
fn vdso(pid: u32) -> Result<(u64, u64), String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| e.to_string())?;
    vmas::parse(&maps)
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.path == "[vdso]")
        .map(|v| (v.start, v.end))
        .ok_or_else(|| "the process has no vDSO".into())
}

fn set_thread(tid: u32, regs: &Regs, xstate: &[u8], sigmask: u64) -> Result<(), String> {
    let p = nix::unistd::Pid::from_raw(tid as i32);
    nix::sys::ptrace::setregs(p, regs.into()).map_err(|e| format!("PTRACE_SETREGS: {e}"))?;
    let mut iov = libc::iovec {
        iov_base: xstate.as_ptr() as *mut libc::c_void,
        iov_len: xstate.len(),
    };
    // SAFETY: PTRACE_SETREGSET reads `iov_len` bytes from `iov_base`.
    if unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGSET,
            tid as libc::pid_t,
            NT_X86_XSTATE as usize,
            &raw mut iov,
        )
    } < 0
    {
        return Err(format!(
            "PTRACE_SETREGSET(NT_X86_XSTATE, {} bytes): {}",
            xstate.len(),
            std::io::Error::last_os_error()
        ));
    }
    ptrace::set_sigmask(tid, sigmask).map_err(|e| format!("PTRACE_SETSIGMASK: {e}"))?;
    Ok(())
}

/// `(parked tid, resume signal, token)` from the client block saved in the
/// image, if a client thread was parked for this suspension.
fn resume_signal(image: &Image) -> Option<(u32, i32, u64)> {
    let needle = format!("/memfd:{CLIENT_MEMFD_NAME}");
    let mapping = image
        .mappings
        .iter()
        .find(|m| m.path.starts_with(&needle))?;
    let run = mapping.pages.iter().find(|r| r.first_page == 0)?;
    let pages = std::fs::File::open(image.dir.join(PAGES_FILE)).ok()?;
    let mut raw = [0u8; size_of::<ClientBlock>()];
    pages.read_exact_at(&mut raw, run.at).ok()?;
    // SAFETY: `ClientBlock` is plain data; any bytes are a valid value.
    let block: ClientBlock = unsafe { std::ptr::read_unaligned(raw.as_ptr().cast()) };
    let valid = block.magic == CLIENT_BLOCK_MAGIC
        && block.pid == image.process.pid
        && block.active == 1
        && block.parked_tid != 0;
    valid.then_some((block.parked_tid, block.resume_signal as i32, block.token))
}

/// Queues the resume signal (`SI_QUEUE`, the registration's token) to the
/// parked thread while it is still stopped: it is the first thing the
/// thread sees.
fn queue_resume(pid: u32, tid: u32, signal: i32, token: u64) -> Result<(), String> {
    let mut info = [0u8; 128];
    info[0..4].copy_from_slice(&signal.to_ne_bytes());
    info[8..12].copy_from_slice(&libc::SI_QUEUE.to_ne_bytes());
    // SAFETY: getpid/getuid have no preconditions.
    let (me, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    info[16..20].copy_from_slice(&me.to_ne_bytes());
    info[20..24].copy_from_slice(&uid.to_ne_bytes());
    info[24..32].copy_from_slice(&token.to_ne_bytes());
    // SAFETY: rt_tgsigqueueinfo reads the 128-byte siginfo.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            pid as libc::pid_t,
            tid as libc::pid_t,
            signal,
            info.as_ptr(),
        )
    };
    if ret < 0 {
        return Err(format!(
            "rt_tgsigqueueinfo(signal {signal} to thread {tid}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
