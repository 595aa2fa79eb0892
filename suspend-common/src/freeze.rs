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
