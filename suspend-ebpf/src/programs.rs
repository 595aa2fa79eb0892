//! The entry points, one per tracepoint. Each hands its context to the
//! module that owns the concern.

use aya_ebpf::{
    macros::{lsm, tracepoint},
    programs::{LsmContext, TracePointContext},
};

use crate::{freeze, guard, registry, signal, tasks};

/// `sched/sched_process_exec`: exec resets the handlers, so the registration
/// is gone.
#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn suspend_exec(ctx: TracePointContext) -> u32 {
    registry::on_exec(&ctx);
    0
}

/// `sched/sched_process_exit`: the last thread of a registered process left.
#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn suspend_exit(ctx: TracePointContext) -> u32 {
    registry::on_exit(&ctx);
    0
}

/// `syscalls/sys_enter_rt_sigaction`: a registered process changes the
/// handler of its suspend or resume signal.
#[tracepoint(category = "syscalls", name = "sys_enter_rt_sigaction")]
pub fn suspend_sigaction(ctx: TracePointContext) -> u32 {
    registry::on_sigaction(&ctx);
    0
}

/// `signal/signal_generate`: a signal is queued for a process.
#[tracepoint(category = "signal", name = "signal_generate")]
pub fn suspend_signal_generate(ctx: TracePointContext) -> u32 {
    signal::on_generate(&ctx);
    0
}

/// `signal/signal_deliver`: a signal reaches a thread's handler (or its
/// default action).
#[tracepoint(category = "signal", name = "signal_deliver")]
pub fn suspend_signal_deliver(ctx: TracePointContext) -> u32 {
    signal::on_deliver(&ctx);
    0
}

/// `task/task_newtask`: a thread is created in a process being frozen.
#[tracepoint(category = "task", name = "task_newtask")]
pub fn suspend_newtask(ctx: TracePointContext) -> u32 {
    freeze::on_newtask(&ctx);
    0
}

/// `sched/sched_switch`: the run witness over stopped threads.
#[tracepoint(category = "sched", name = "sched_switch")]
pub fn suspend_switch(ctx: TracePointContext) -> u32 {
    freeze::on_switch(&ctx);
    0
}

/// LSM `task_kill`: no signals from others to a frozen process.
#[lsm(hook = "task_kill")]
pub fn suspend_task_kill(ctx: LsmContext) -> i32 {
    guard::task_kill(&ctx)
}

/// LSM `ptrace_access_check`: no other tracer or reader of a frozen
/// process.
#[lsm(hook = "ptrace_access_check")]
pub fn suspend_ptrace_access(ctx: LsmContext) -> i32 {
    guard::ptrace_access_check(&ctx)
}

/// `iter/task`: one record per thread, for the checks a suspend makes
/// before freezing (`tasks.rs`). Run by reading its pinned link.
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/task")]
pub fn suspend_task_facts(ctx: *mut core::ffi::c_void) -> i32 {
    tasks::on_task(ctx)
}
