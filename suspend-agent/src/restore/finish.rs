//! The last step: every thread waits in the stub; the agent seizes them,
//! borrows the main thread for a few system calls (through the client's
//! trampoline, [`crate::tracee::inject`]) (unmap the zone, drop the
//! tie to the agent, give each mapping back what `madvise` said of it and
//! its name), gives every thread its registers, xstate and signal
//! mask, queues the resume signal for the parked client thread and lets
//! them go. The kernel then restarts (or fails with `EINTR`) any system
//! call a thread was in, from its restored registers, as it would have
//! after a signal.

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use nix::errno::Errno;
use suspend_common::paths::CLIENT_MEMFD_NAME;

use super::{RestoreError, child::Created, plan::Plan};
use crate::{
    image::{Image, format::Regs},
    procfs::vmas,
    state::confinement::InstallError,
    tracee::{
        inject::{Borrowed, InjectError, Site},
        ptrace::{self, Stop},
    },
};

/// `prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, len, name)`.
const PR_SET_VMA: u64 = 0x5356_4d41;
const PR_SET_VMA_ANON_NAME: u64 = 0;
/// Bytes of a mapping's name with its NUL (`ANON_VMA_NAME_MAX_LEN`).
const ANON_NAME_MAX: usize = 80;
/// `mseal(2)` (Linux 6.10).
const SYS_MSEAL: i64 = 462;
const PR_SET_NAME: u64 = 15;

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

    let site = client_block(pid)
        .and_then(|block| Site::find(pid, block).map_err(|e| e.to_string()))
        .map_err(|e| failed("finding the client's trampoline", e))?;

    // Seccomp filters, oldest first, installed by each thread itself
    // (see `state::confinement::install`).
    for (tid, filters) in &plan.seccomp {
        let mut thread = Borrowed::new(*tid, site, None)
            .map_err(|e| failed("installing seccomp filters", format!("thread {tid}: {e}")))?;
        crate::state::confinement::install(&mut thread, filters).map_err(|e| match e {
            InstallError::Inject(e) => failed("installing seccomp filters", e.to_string()),
            InstallError::Refused { filter, errno } => failed(
                "installing seccomp filters",
                format!("thread {tid}, filter {filter}: {}", errno.desc()),
            ),
        })?;
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
    // What madvise said of each mapping, and the names of anonymous ones:
    // the kernel keeps both with the mapping, which the restorer made anew.
    for m in &image.mappings {
        let len = m.end - m.start;
        for advice in &m.advice {
            let what = format!("madvise {:#x}-{:#x} {advice:?}", m.start, m.end);
            let ret = main
                .syscall(
                    libc::SYS_madvise,
                    [m.start, len, advice.madvise() as u64, 0, 0, 0],
                )
                .map_err(|e| failed(&what, e.to_string()))?;
            if ret < 0 {
                return Err(failed(&what, Errno::from_raw(-ret as i32).desc().into()));
            }
        }
        if let Some(name) = m.anon_name() {
            let what = format!("naming {:#x}-{:#x} {name:?}", m.start, m.end);
            let mut bytes = name.as_bytes().to_vec();
            bytes.push(0);
            if bytes.len() > ANON_NAME_MAX {
                return Err(failed(&what, "the name is too long".into()));
            }
            site.write(0, &bytes)
                .map_err(|e| failed(&what, e.to_string()))?;
            let ret = main
                .syscall(
                    libc::SYS_prctl,
                    [
                        PR_SET_VMA,
                        PR_SET_VMA_ANON_NAME,
                        m.start,
                        len,
                        site.scratch(),
                        0,
                    ],
                )
                .map_err(|e| failed(&what, e.to_string()))?;
            let _ = site.write(0, &vec![0u8; bytes.len()]);
            if ret < 0 {
                return Err(failed(&what, Errno::from_raw(-ret as i32).desc().into()));
            }
        }
    }
    // Seals last among the mappings' attributes: a sealed mapping takes
    // no more advice.
    for m in image.mappings.iter().filter(|m| m.sealed) {
        let what = format!("sealing {:#x}-{:#x} (mseal)", m.start, m.end);
        main.call(&what, SYS_MSEAL, [m.start, m.end - m.start, 0, 0, 0, 0])
            .map_err(|e| failed(&what, e.to_string()))?;
    }
    process_wide(image, &mut main, &site)
        .map_err(|e| failed("restoring its files and registrations", e.to_string()))?;
    main.restore()
        .map_err(|e| failed("borrowing the main thread", e.to_string()))?;

    per_thread(image, &site)
        .map_err(|e| failed("restoring what each thread sets", e.to_string()))?;
    from_outside(image, pid).map_err(|e| failed("restoring process attributes", e))?;
    if let Some(a) = &image.process.attributes {
        crate::state::attributes::give_back_oom_score_adj(pid, a)
            .map_err(|e| failed("setting oom_score_adj", e.to_string()))?;
    }

    let resume = image.parked_client();
    // The main thread last: just before it is let go (first), it arms the
    // POSIX timers (see `state::timers`: a signal they send while it is
    // traced would be counted as overruns).
    for thread in super::plan::main_first(image).into_iter().rev() {
        let tid = thread.tid;
        if tid == pid && crate::state::timers::any_armed(image) {
            let mut main = Borrowed::new(pid, site, None)
                .map_err(|e| failed("arming the POSIX timers", e.to_string()))?;
            crate::state::timers::arm(image, &mut main, &site)
                .and_then(|()| main.restore())
                .map_err(|e| failed("arming the POSIX timers", e.to_string()))?;
        }
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
            crate::sys::queue_signal(pid, tid, signal, token).map_err(|e| {
                failed(
                    "sending the resume signal",
                    format!("signal {signal} to thread {tid}: {e}"),
                )
            })?;
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

/// What only the process itself can set, now that every thread exists:
/// its `membarrier` registrations, its file locks, its POSIX timers, and
/// each file's signal owner, signal and `O_ASYNC`
/// ([`crate::state::owners::give_back`]).
fn process_wide(image: &Image, main: &mut Borrowed, site: &Site) -> Result<(), InjectError> {
    crate::state::attributes::register_membarrier(image, main)?;
    crate::state::attributes::set_mdwe(image, main)?;
    crate::state::locks::take(image, main, site)?;
    crate::state::timers::create(image, main, site)?;
    crate::state::owners::give_back(image, main, site)?;
    // Last: a process that is not dumpable has its /proc files owned by
    // root, which nothing above needs any more.
    crate::state::attributes::set_dumpable(image, main)?;
    Ok(())
}

/// What each thread keeps of its own that it must set itself: a
/// `PR_SET_TSC` other than the default, a name other than the process's
/// (threads are made with the main thread's; only the thread itself may
/// name it, `/proc/PID/task/TID/comm` refuses others), its speculation
/// controls.
fn per_thread(image: &Image, site: &Site) -> Result<(), InjectError> {
    for t in &image.threads {
        let name = t
            .comm
            .as_ref()
            .filter(|c| t.tid != image.process.pid && **c != image.process.comm);
        if t.tsc.is_none() && name.is_none() && t.speculation.is_empty() {
            continue;
        }
        let mut thread = Borrowed::new(t.tid, *site, None)?;
        for &(which, state) in &t.speculation {
            crate::state::speculation::give_back(&mut thread, t.tid, which, state)?;
        }
        crate::state::threads::give_back_tsc(&mut thread, t)?;
        if let Some(name) = name {
            let mut bytes = name.as_bytes().to_vec();
            bytes.truncate(15);
            bytes.push(0);
            site.write(0, &bytes)?;
            let what = format!("thread {}: naming it {name:?}", t.tid);
            let set = [PR_SET_NAME, site.scratch(), 0, 0, 0, 0];
            thread.call(&what, libc::SYS_prctl, set)?;
        }
        thread.restore()?;
    }
    Ok(())
}

/// What the agent sets from outside: each thread's I/O priority, the
/// process's core dump filter and its autogroup's nice value.
fn from_outside(image: &Image, pid: u32) -> Result<(), String> {
    for t in &image.threads {
        crate::state::sched::restore_ioprio(t)?;
    }
    let Some(a) = &image.process.attributes else {
        return Ok(());
    };
    crate::state::attributes::give_back_coredump_filter(pid, a)?;
    crate::state::attributes::give_back_autogroup_nice(image, pid, a)?;
    Ok(())
}

/// Where the restored process's client block is mapped.
fn client_block(pid: u32) -> Result<u64, String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| e.to_string())?;
    let needle = format!("/memfd:{CLIENT_MEMFD_NAME}");
    vmas::parse(&maps)
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.path.starts_with(&needle))
        .map(|v| v.start)
        .ok_or_else(|| "the process has no client block".into())
}

fn set_thread(tid: u32, regs: &Regs, xstate: &[u8], sigmask: u64) -> Result<(), String> {
    let p = nix::unistd::Pid::from_raw(tid as i32);
    nix::sys::ptrace::setregs(p, regs.into()).map_err(|e| format!("PTRACE_SETREGS: {e}"))?;
    crate::sys::ptrace::set_xstate(tid, xstate).map_err(|e| {
        format!(
            "PTRACE_SETREGSET(NT_X86_XSTATE, {} bytes): {}",
            xstate.len(),
            std::io::Error::from(e)
        )
    })?;
    ptrace::set_sigmask(tid, sigmask).map_err(|e| format!("PTRACE_SETSIGMASK: {e}"))?;
    Ok(())
}
