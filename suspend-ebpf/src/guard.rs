//! The freeze guard (BPF LSM, only where `bpf` is an active LSM): while a
//! process is frozen, nobody but the agent may signal it (`SIGKILL` from
//! root excepted) or trace or read it. The guard is a lease: past its
//! deadline it no longer holds, so a dead agent's guard lapses on its own.
//!
//! A held process is guarded with no lease (no agent runs for it): no one
//! but root may signal it (`SIGKILL` excepted), trace it or read its
//! memory; root's tools resume it.

use aya_ebpf::{
    Global,
    helpers::{bpf_get_current_uid_gid, bpf_ktime_get_boot_ns, bpf_probe_read_kernel},
    programs::LsmContext,
};
use suspend_common::freeze::{FreezeGuard, GUARD_HELD, TaskLayout};

use crate::{layout::current_tgid, maps::freeze_guard};

#[unsafe(no_mangle)]
static TASK_LAYOUT: Global<TaskLayout> = Global::new(TaskLayout { tgid: 0, _pad: 0 });

const SIGKILL: i32 = 9;

/// The guard of the process `task` belongs to, if one holds now and the
/// caller is neither its agent nor the process itself (a frozen process
/// runs only where the agent borrows a thread, e.g. to queue a signal it
/// held back to itself).
fn guard_against_caller(task: *const u8) -> Option<FreezeGuard> {
    let offset = TASK_LAYOUT.load().tgid;
    if offset == 0 || task.is_null() {
        return None;
    }
    // SAFETY: `task` is the kernel's task_struct pointer from the hook's
    // arguments; bpf_probe_read_kernel checks the read.
    let tgid = unsafe { bpf_probe_read_kernel(task.wrapping_add(offset as usize).cast::<i32>()) }
        .ok()? as u32;
    // SAFETY: a copy of a live map value.
    let guard = unsafe { *freeze_guard.get(&tgid)? };
    // SAFETY: a plain helper call.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    let caller = current_tgid();
    (now < guard.deadline_ns && caller != guard.agent_tgid && caller != tgid).then_some(guard)
}

fn caller_is_root() -> bool {
    bpf_get_current_uid_gid() as u32 == 0
}

/// An LSM program's verdict: 0, or `-EPERM` when `deny`. Written in
/// assembly so the verifier sees each exit set by an immediate move: LLVM
/// would otherwise compute it as `-(deny & 1)`, whose range the 6.12
/// verifier cannot follow (it wants the return value provably in
/// `-4095..=0`).
#[inline(always)]
fn verdict(deny: bool) -> i32 {
    let out: i64;
    // SAFETY: register moves and one forward branch; no memory is touched.
    unsafe {
        core::arch::asm!(
            "{out} = 0",
            "if {deny} == 0 goto +1",
            "{out} = -1",
            deny = in(reg) deny as u64,
            out = out(reg) out,
            options(pure, nomem, nostack),
        );
    }
    out as i32
}

/// `task_kill(struct task_struct *p, struct kernel_siginfo *info, int sig,
/// const struct cred *cred)`, then the previous program's verdict.
pub fn task_kill(ctx: &LsmContext) -> i32 {
    let previous: i32 = ctx.arg(4);
    if previous != 0 {
        return verdict(true); // a previous program refused: so do we
    }
    let task: *const u8 = ctx.arg(0);
    let sig: i32 = ctx.arg(2);
    let Some(guard) = guard_against_caller(task) else {
        return 0;
    };
    let root = caller_is_root();
    if guard.flags & GUARD_HELD != 0 {
        return verdict(!(root || sig == SIGKILL));
    }
    verdict(!(sig == SIGKILL && root))
}

/// `ptrace_access_check(struct task_struct *child, unsigned int mode)`, then
/// the previous verdict: attaching, and reading its memory
/// (`process_vm_readv`, `/proc/PID/mem`), go through it.
pub fn ptrace_access_check(ctx: &LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != 0 {
        return verdict(true); // a previous program refused: so do we
    }
    let child: *const u8 = ctx.arg(0);
    let deny = match guard_against_caller(child) {
        None => false,
        Some(guard) => guard.flags & GUARD_HELD == 0 || !caller_is_root(),
    };
    verdict(deny)
}
