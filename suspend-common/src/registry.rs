//! The registry: one entry per process that opted in, keyed by its pid (the
//! thread-group id). The agent writes an entry when a client registers; the
//! eBPF programs keep it true (exec drops it, exit removes it, a reset
//! handler marks it unusable) and count the suspend and resume signals.

/// Name of the pinned registry map (`/sys/fs/bpf/suspend/registry`).
pub const REGISTRY_MAP: &str = "registry";
/// Entries the registry holds at most.
pub const REGISTRY_MAX_ENTRIES: u32 = 16384;

/// Registered and ready to be asked.
pub const STATE_REGISTERED: u32 = 1;
/// The suspend or resume handler was replaced (reset to `SIG_DFL`/`SIG_IGN`,
/// or another function): asking would kill or confuse the process.
pub const STATE_UNUSABLE: u32 = 2;
/// The agent is running the suspend handshake with it.
pub const STATE_SUSPENDING: u32 = 3;
/// The agent is stopping its threads (eBPF records every thread it creates
/// meanwhile, `new_threads`), then runs a few syscalls inside them.
pub const STATE_FREEZING: u32 = 4;
/// Every thread is stopped for good and being dumped; eBPF counts any of
/// them that runs (`frozen_tasks`).
pub const STATE_FROZEN: u32 = 5;
/// Held: its image is written, every thread is parked in the client's
/// trampoline with every signal blocked, its memory is released; the
/// process keeps its pid and every kernel object until it is resumed.
pub const STATE_HELD: u32 = 6;

/// Callbacks run on the client library's helper thread.
pub const CONTEXT_THREAD: u32 = 0;
/// Callbacks run inside the signal handler (async-signal-safe only).
pub const CONTEXT_SIGNAL: u32 = 1;

/// A process that opted in, as the kernel and the agent know it.
///
/// Times are `CLOCK_BOOTTIME` nanoseconds (`bpf_ktime_get_boot_ns`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registration {
    /// Thread-group id (the pid users see).
    pub pid: u32,
    /// Real uid of the process when it registered.
    pub uid: u32,
    /// One of the `STATE_*` constants.
    pub state: u32,
    /// Signal that asks the process to suspend.
    pub suspend_signal: u32,
    /// Signal that tells the process how a suspension ended.
    pub resume_signal: u32,
    /// `CONTEXT_THREAD` or `CONTEXT_SIGNAL`.
    pub context: u32,
    /// The client's [`crate::ABI_VERSION`].
    pub abi_version: u32,
    /// Number of times the eBPF programs saw a handler change that made the
    /// registration unusable.
    pub handler_resets: u32,
    /// When the agent recorded the registration.
    pub registered_ns: u64,
    /// Start time of the process (field 22 of `/proc/PID/stat`, clock ticks
    /// since boot): a reused pid has another start time.
    pub start_time: u64,
    /// Address of the client's block in its own memory.
    pub block_addr: u64,
    /// Address of the client's suspend-signal handler; any other handler
    /// installed for that signal makes the registration unusable.
    pub handler_addr: u64,
    /// Suspend signals generated for the process (seen by `signal_generate`).
    pub suspend_sent: u32,
    /// Suspend signals that reached a handler (seen by `signal_deliver`).
    pub suspend_delivered: u32,
    /// Resume signals generated for the process.
    pub resume_sent: u32,
    /// Resume signals that reached a handler.
    pub resume_delivered: u32,
    /// When the last suspend signal was generated.
    pub last_sent_ns: u64,
    /// When the last suspend signal reached the process's handler.
    pub last_delivered_ns: u64,
}

const _: () = assert!(core::mem::size_of::<Registration>() == 96);

#[cfg(feature = "user")]
// SAFETY: `Registration` is `repr(C)`, `Copy`, has no padding (checked by
// the size assertion) and every bit pattern is a valid value.
unsafe impl aya::Pod for Registration {}

/// Human name of a `STATE_*` value.
pub const fn state_name(state: u32) -> &'static str {
    match state {
        STATE_REGISTERED => "registered",
        STATE_UNUSABLE => "unusable",
        STATE_SUSPENDING => "suspending",
        STATE_FREEZING => "freezing",
        STATE_FROZEN => "frozen",
        STATE_HELD => "held",
        _ => "unknown",
    }
}

/// Human name of a `CONTEXT_*` value.
pub const fn context_name(context: u32) -> &'static str {
    match context {
        CONTEXT_THREAD => "thread",
        CONTEXT_SIGNAL => "signal",
        _ => "unknown",
    }
}

/// Name of the pinned map of replaced handlers
/// (`/sys/fs/bpf/suspend/replaced_handlers`).
pub const REPLACED_MAP: &str = "replaced_handlers";
/// Entries it holds at most (least recently changed dropped first).
pub const REPLACED_MAX_ENTRIES: u32 = 4096;

/// The last handler change that made a registration unusable, by pid: so
/// that the agent can say which signal and what took it (the handler's
/// address, found in the process's mappings). A separate map, so the
/// registry's layout, which held processes depend on, stays as it is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replaced {
    /// The signal whose handler changed.
    pub signal: u32,
    pub _pad: u32,
    /// The new handler: 0 `SIG_DFL`, 1 `SIG_IGN`, else its address.
    pub handler: u64,
}

const _: () = assert!(core::mem::size_of::<Replaced>() == 16);

#[cfg(feature = "user")]
// SAFETY: `Replaced` is `repr(C)`, `Copy`, has no padding (the explicit
// `_pad`, checked by the size assertion) and every bit pattern is valid.
unsafe impl aya::Pod for Replaced {}
