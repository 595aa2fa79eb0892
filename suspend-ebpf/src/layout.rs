//! Tracepoint field offsets, overridden by the agent at load time from the
//! running kernel's format files (see `suspend_common::tracepoints`).

use aya_ebpf::{Global, programs::TracePointContext};
use suspend_common::tracepoints::TracepointLayout;

#[unsafe(no_mangle)]
static TRACEPOINT_LAYOUT: Global<TracepointLayout> = Global::new(TracepointLayout::DEFAULT);

/// The layout the agent set for this kernel.
#[inline(always)]
pub fn get() -> TracepointLayout {
    TRACEPOINT_LAYOUT.load()
}

/// Reads a `T` at `offset` of the tracepoint record.
#[inline(always)]
pub fn read<T>(ctx: &TracePointContext, offset: u32) -> Result<T, i32> {
    // SAFETY: `read_at` copies with `bpf_probe_read_kernel` from the record;
    // the offset comes from the kernel's own format file and `T` matches the
    // field's declared size there.
    unsafe { ctx.read_at::<T>(offset as usize) }
}

/// The calling task's thread-group id (the pid users see).
#[inline(always)]
pub fn current_tgid() -> u32 {
    (aya_ebpf::helpers::bpf_get_current_pid_tgid() >> 32) as u32
}

/// The calling task's thread id.
#[inline(always)]
pub fn current_tid() -> u32 {
    aya_ebpf::helpers::bpf_get_current_pid_tgid() as u32
}
