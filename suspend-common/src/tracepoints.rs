//! Where the eBPF programs find the tracepoint fields they read.
//!
//! Tracepoint records are a kernel ABI described by
//! `/sys/kernel/tracing/events/<category>/<name>/format`, and they do change
//! between kernels (`sched_process_exit` gained `group_dead` in 6.x). The
//! agent reads the format files when it loads the programs and passes the
//! offsets in this global; the defaults are the layout of 6.1 – 6.18.

/// Name of the global the agent overrides with the layout it read.
pub const TRACEPOINT_LAYOUT_GLOBAL: &str = "TRACEPOINT_LAYOUT";

/// Offsets (bytes from the start of the record) of the fields the eBPF
/// programs use. `0` means "this kernel does not have the field".
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TracepointLayout {
    /// `sched/sched_process_exit`: `group_dead` (bool); 0 before it existed.
    pub exit_group_dead: u32,
    /// `signal/signal_generate`: `sig` (int).
    pub generate_sig: u32,
    /// `signal/signal_generate`: `code` (int).
    pub generate_code: u32,
    /// `signal/signal_generate`: `pid` (target pid_t).
    pub generate_pid: u32,
    /// `signal/signal_deliver`: `sig` (int).
    pub deliver_sig: u32,
    /// `signal/signal_deliver`: `sa_handler` (unsigned long).
    pub deliver_handler: u32,
    /// `syscalls/sys_enter_rt_sigaction`: `sig` (8 bytes).
    pub sigaction_sig: u32,
    /// `syscalls/sys_enter_rt_sigaction`: `act` (user pointer).
    pub sigaction_act: u32,
    /// `task/task_newtask`: `pid` (the new task).
    pub newtask_pid: u32,
    /// `task/task_newtask`: `clone_flags` (u64).
    pub newtask_flags: u32,
    /// `sched/sched_switch`: `next_pid`.
    pub switch_next_pid: u32,
    /// Explicit padding.
    pub _pad: u32,
}

impl TracepointLayout {
    /// The layout of the kernels this was written against (6.18).
    pub const DEFAULT: Self = Self {
        exit_group_dead: 32,
        generate_sig: 8,
        generate_code: 16,
        generate_pid: 36,
        deliver_sig: 8,
        deliver_handler: 24,
        sigaction_sig: 16,
        sigaction_act: 24,
        newtask_pid: 8,
        newtask_flags: 32,
        switch_next_pid: 56,
        _pad: 0,
    };
}

const _: () = assert!(core::mem::size_of::<TracepointLayout>() == 48);

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, `Copy`, only `u32` fields, no padding (size asserted).
unsafe impl aya::Pod for TracepointLayout {}
