//! The restore child: created with the image's pid, it takes the image's
//! files, cwd and limits and jumps into the restorer stub (every mapping's
//! contents are ready in the zone, inherited from the agent). It runs as a copy of the agent and must
//! not allocate: everything it needs is in the [`Plan`], made beforehand.

use std::{io::Read as _, os::fd::AsRawFd as _};

use suspend_common::restore::{REPORT_FAILED, REPORT_READY, Report, step_name};

use super::{
    RestoreError,
    plan::{Open, Plan, SessionPlan, StdioPlan},
};
use crate::{
    image::Image,
    state::Unmade,
    sys::{process, raw},
};

/// Steps of the child before the stub (the stub's own are below 100).
const STEP_PDEATHSIG: u32 = 100;
const STEP_RSEQ_OFF: u32 = 101;
const STEP_CLOSE_FDS: u32 = 102;
const STEP_OPEN: u32 = 103;
const STEP_SEEK: u32 = 104;
const STEP_STDIO: u32 = 105;
const STEP_CWD: u32 = 106;
const STEP_RLIMIT: u32 = 109;
const STEP_PERSONALITY: u32 = 110;
const STEP_EPOLL: u32 = 111;
const STEP_SESSION: u32 = 112;
const STEP_LOGINUID: u32 = 113;

fn child_step_name(step: u32) -> &'static str {
    match step {
        STEP_PDEATHSIG => "tying the child to the agent (PR_SET_PDEATHSIG)",
        STEP_RSEQ_OFF => "unregistering the agent's rseq area",
        STEP_CLOSE_FDS => "closing the agent's descriptors",
        STEP_OPEN => "putting a file at its number",
        STEP_SEEK => "seeking a reopened file",
        STEP_STDIO => "attaching stdio",
        STEP_CWD => "changing to the working directory",
        STEP_RLIMIT => "setting a resource limit",
        STEP_PERSONALITY => "setting the personality",
        STEP_EPOLL => "adding an fd to a restored epoll instance",
        STEP_SESSION => "leading its session or process group again (setsid, setpgid)",
        STEP_LOGINUID => "setting its login uid (/proc/self/loginuid)",
        other => step_name(other),
    }
}

/// The process, created and waiting in the stub.
#[derive(Debug)]
pub struct Created {
    pub pid: u32,
}

/// Creates the process and waits for the stub's report.
pub fn spawn(image: &Image, plan: &mut Plan) -> Result<Created, RestoreError> {
    let pid = image.process.pid;
    let agent = std::process::id() as libc::pid_t;
    // SAFETY: the child gets a copy of this (single-threaded) process and
    // only runs `run`, which never returns and neither allocates nor locks.
    let created = unsafe { process::clone_with_pid(pid) };
    if let Ok(0) = created {
        run(plan, agent);
    }
    super::plan::release_zone(plan.zone);
    // Our copies: the child has its own; the report pipe must see the end
    // of file when the child is gone.
    plan.helpers.clear();
    if let Err(err) = created {
        return Err(match err.raw_os_error() {
            Some(libc::EEXIST) => super::Refusal::PidInUse {
                pid,
                by: "a process that appeared meanwhile".into(),
                what: "process",
            }
            .into(),
            _ => RestoreError::PrepareCall {
                what: format!("creating pid {pid} (with set_tid)"),
                source: err,
            },
        });
    }
    let mut buf = [0u8; size_of::<Report>()];
    let mut got = 0;
    let mut pipe = std::fs::File::from(plan.report_read.try_clone().map_err(|source| {
        RestoreError::Prepare {
            what: "report pipe".into(),
            source,
        }
    })?);
    while got < buf.len() {
        match pipe.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // SAFETY: `Report` is plain data; any bytes are a valid value.
    let report: Report = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
    if got == buf.len() && report.kind == REPORT_READY {
        // The stub closes the pipe right after the report: wait for that
        // end of file, or the agent could take the thread over between the
        // two and the pipe would stay open in the process.
        let mut rest = [0u8; 1];
        loop {
            match pipe.read(&mut rest) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        return Ok(Created { pid });
    }
    let detail = if got == buf.len() && report.kind == REPORT_FAILED {
        let errno = -report.error as i32;
        format!(
            "{} (item {}: {})",
            child_step_name(report.step),
            report.index,
            if errno > 0 {
                nix::errno::Errno::from_raw(errno).desc().to_string()
            } else {
                "invalid argument block".into()
            }
        )
    } else {
        "the child died without a report".into()
    };
    let status = kill_and_reap(pid, &[]);
    Err(RestoreError::Failed {
        pid,
        step: if got == buf.len() {
            child_step_name(report.step).into()
        } else {
            "preparing".into()
        },
        detail: format!("{detail}; {status}"),
    })
}

/// Kills the half-made process and says how it ended. `traced`: its
/// threads other than the main one, which we trace and so must reap
/// ourselves before the main thread can be.
pub fn kill_and_reap(pid: u32, traced: &[u32]) -> String {
    // Our own child.
    let _ = process::kill(pid, libc::SIGKILL);
    for &tid in traced.iter().filter(|&&t| t != pid) {
        // Reaping a killed thread we trace (blocks until it is a zombie;
        // SIGKILL ends any ptrace stop).
        let _ = process::wait(tid);
    }
    let Ok(status) = process::wait(pid) else {
        return "already reaped".into();
    };
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        if sig == libc::SIGKILL {
            "killed".into()
        } else {
            format!("it had died of signal {sig}")
        }
    } else {
        format!("it had exited with status {}", libc::WEXITSTATUS(status))
    }
}

/// Reports a failure on the pipe and exits.
fn fail(plan: &Plan, step: u32, index: usize) -> ! {
    // Errno right after the failed call.
    let errno = raw::errno();
    let report = Report {
        kind: REPORT_FAILED,
        step,
        error: -(errno as i64),
        index: index as u64,
    };
    // A plain value to our pipe, then leaving without running any of the
    // agent's exit handlers.
    raw::write_value(plan.report_write, &report);
    raw::exit_now(126)
}

/// The child's inherited rseq area (the agent's thread's) goes away with
/// the agent's memory; the kernel would fault writing it.
fn unregister_rseq(plan: &Plan) {
    let Some((area, size)) = raw::rseq_area() else {
        return;
    };
    for len in [32, size] {
        // SAFETY: unregistering our own rseq area; the child leaves the
        // agent's code (and glibc) for the stub.
        if unsafe { raw::rseq_unregister(area, len) } == 0 {
            return;
        }
    }
    fail(plan, STEP_RSEQ_OFF, 0);
}

/// The child's life: never returns.
fn run(plan: &Plan, agent: libc::pid_t) -> ! {
    // SAFETY: everything below is plain system calls on data the plan
    // holds; the child is single-threaded and owns its copy of memory. The
    // descriptors it closes and replaces are its own: nothing of the
    // agent's that owns one runs again here.
    unsafe {
        raw::block_all_signals();
        // If the agent dies before it took over, so does the child.
        if raw::set_parent_death_signal(libc::SIGKILL) < 0 || raw::getppid() != agent {
            fail(plan, STEP_PDEATHSIG, 0);
        }
        unregister_rseq(plan);

        // Descriptors: only stdio and the helpers survive, then the image's
        // files take their numbers.
        let mut from = 3;
        for &fd in &plan.keep {
            if fd > from {
                raw::close_range(from as u32, (fd - 1) as u32);
            }
            from = fd + 1;
        }
        raw::close_range(from as u32, u32::MAX);

        // Each kind makes its own (`state::MakeFd`), in the planned order.
        let failed = |open: &Open, unmade| match unmade {
            Unmade::Open => fail(plan, STEP_OPEN, open.fd as usize),
            Unmade::Seek => fail(plan, STEP_SEEK, open.fd as usize),
            Unmade::Watch(target) => fail(plan, STEP_EPOLL, target as usize),
        };
        for open in &plan.opens {
            if let Err(unmade) = open.what.maker().make(open.fd, plan.scratch_fd) {
                failed(open, unmade);
            }
        }
        // What each epoll instance watches, once every fd exists (an epoll
        // may watch another, or a copy of one).
        for open in &plan.opens {
            if let Err(unmade) = open.what.maker().once_all_made(open.fd) {
                failed(open, unmade);
            }
        }
        for (i, stdio) in plan.stdio.iter().enumerate() {
            let ok = match stdio {
                StdioPlan::Inherit => true,
                StdioPlan::From(fd) => raw::dup2(*fd, i as i32) >= 0,
                StdioPlan::Close => {
                    raw::close(i as i32);
                    true
                }
            };
            if !ok {
                fail(plan, STEP_STDIO, i);
            }
        }
        if raw::fchdir(plan.cwd) < 0 {
            fail(plan, STEP_CWD, 0);
        }
        raw::umask(plan.umask);
        if raw::personality(0xffff_ffff) as u32 != plan.personality
            && raw::personality(plan.personality as libc::c_ulong) < 0
        {
            fail(plan, STEP_PERSONALITY, 0);
        }
        raw::set_name(&plan.comm);
        let led = match plan.session {
            SessionPlan::Lead => raw::setsid() >= 0,
            SessionPlan::LeadGroup => raw::setpgid(0, 0) >= 0,
            SessionPlan::Join => true,
        };
        if !led {
            fail(plan, STEP_SESSION, 0);
        }
        if let Some(text) = &plan.loginuid {
            let fd = raw::open(c"/proc/self/loginuid", libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || raw::write(fd, text) != text.len() as isize {
                fail(plan, STEP_LOGINUID, 0);
            }
            raw::close(fd);
        }

        // The helpers the stub does not use (it closes the exe and the
        // report pipe itself).
        for fd in &plan.helpers {
            let fd = fd.as_raw_fd();
            if fd != plan.report_write && Some(fd) != plan.exe_fd {
                raw::close(fd);
            }
        }
        for (i, &(resource, soft, hard)) in plan.rlimits.iter().enumerate() {
            if raw::set_rlimit(resource, soft, hard) < 0 {
                fail(plan, STEP_RLIMIT, i);
            }
        }

        // Into the stub, on the main thread's stub stack, never to return.
        core::arch::asm!(
            "mov rsp, {sp}",
            "push 0",
            "jmp {entry}",
            sp = in(reg) plan.stack_top,
            entry = in(reg) plan.entry,
            in("rdi") plan.args_addr,
            options(noreturn),
        );
    }
}
