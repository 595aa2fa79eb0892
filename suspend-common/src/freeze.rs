//! The maps of a freeze: threads created while the agent stops a process,
//! and the run witness over the stopped threads.

/// Name of the map of threads created while their process is `FREEZING`
/// (`/sys/fs/bpf/suspend/new_threads`): thread id → thread-group id.
pub const NEW_THREADS_MAP: &str = "new_threads";
/// Entries `new_threads` holds at most.
pub const NEW_THREADS_MAX_ENTRIES: u32 = 16384;

/// Name of the map of stopped threads (`/sys/fs/bpf/suspend/frozen_tasks`):
/// thread id → [`FrozenTask`]. The agent fills it once every thread is
/// stopped and empties it when the dump is over.
pub const FROZEN_TASKS_MAP: &str = "frozen_tasks";
/// Entries `frozen_tasks` holds at most.
pub const FROZEN_TASKS_MAX_ENTRIES: u32 = 65536;

/// Name of the one-element array counting freezes in progress
/// (`/sys/fs/bpf/suspend/freeze_active`): `sched_switch` does nothing while
/// it is zero.
pub const FREEZE_ACTIVE_MAP: &str = "freeze_active";

/// A stopped thread, and whether it ran since.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrozenTask {
    /// Its thread-group id.
    pub tgid: u32,
    /// Times it was switched in (`sched_switch` with it as `next`) since
    /// the agent recorded it. Anything but 0 means it ran.
    pub switches: u32,
    /// When it was first switched in (`CLOCK_BOOTTIME` ns), 0 if never.
    pub first_switch_ns: u64,
}

const _: () = assert!(core::mem::size_of::<FrozenTask>() == 16);

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, `Copy`, no padding (size asserted), any bits are valid.
unsafe impl aya::Pod for FrozenTask {}

/// Name of the map of guarded processes (`/sys/fs/bpf/suspend/freeze_guard`):
/// thread-group id → [`FreezeGuard`]. Written by the agent for the whole
/// freeze; read by the BPF LSM programs.
pub const FREEZE_GUARD_MAP: &str = "freeze_guard";
/// Entries `freeze_guard` holds at most.
pub const FREEZE_GUARD_MAX_ENTRIES: u32 = 1024;

/// While a process is frozen, the BPF LSM refuses other senders' signals
/// (`SIGKILL` from root excepted) and other tracers, until `deadline_ns`: a
/// lease the agent renews while it works, so a dead agent's guard lapses.
///
/// A held process ([`GUARD_HELD`]) is guarded with no lease and no agent:
/// every caller but root is refused its signals (`SIGKILL` excepted: it
/// still kills), tracing and reading its memory, until it is resumed.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreezeGuard {
    /// The agent's thread-group id: it may signal and trace.
    pub agent_tgid: u32,
    /// [`GUARD_HELD`] or 0.
    pub flags: u32,
    /// `CLOCK_BOOTTIME` ns after which the guard no longer holds.
    pub deadline_ns: u64,
}

/// [`FreezeGuard::flags`]: the process is held (root may act on it; no
/// lease).
pub const GUARD_HELD: u32 = 1;

const _: () = assert!(core::mem::size_of::<FreezeGuard>() == 16);

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, `Copy`, no padding (size asserted), any bits are valid.
unsafe impl aya::Pod for FreezeGuard {}

/// Name of the global with [`TaskLayout`].
pub const TASK_LAYOUT_GLOBAL: &str = "TASK_LAYOUT";

/// Where `struct task_struct` keeps the thread-group id on the running
/// kernel (read from its BTF by the agent).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskLayout {
    /// Byte offset of `task_struct.tgid`.
    pub tgid: u32,
    /// Explicit padding.
    pub _pad: u32,
}

const _: () = assert!(core::mem::size_of::<TaskLayout>() == 8);

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, `Copy`, `u32` fields, no padding (size asserted).
unsafe impl aya::Pod for TaskLayout {}
