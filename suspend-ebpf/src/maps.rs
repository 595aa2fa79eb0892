//! Every map of the eBPF programs. All are BTF maps pinned by name under
//! `/sys/fs/bpf/suspend/`, so `bpftool map dump` prints named fields and the
//! maps outlive the agent.
#![allow(non_upper_case_globals)]

use aya_ebpf::{
    btf_maps::{Array, HashMap, LruHashMap},
    macros::btf_map,
};
use suspend_common::{
    freeze::{
        FREEZE_GUARD_MAX_ENTRIES, FROZEN_TASKS_MAX_ENTRIES, FreezeGuard, FrozenTask,
        NEW_THREADS_MAX_ENTRIES,
    },
    registry::{REGISTRY_MAX_ENTRIES, REPLACED_MAX_ENTRIES, Registration, Replaced},
    signals::{SIGNALS_MAX_ENTRIES, SignalKey, SignalStats},
};

/// Processes that opted in, by pid.
/// Written by the agent (register, state changes, unregister); updated by
/// `registry.rs` (exec and exit remove, a handler change marks unusable) and
/// `signal.rs` (suspend/resume signal counters). Read by the agent.
#[btf_map(pin_by_name)]
pub static registry: HashMap<u32, Registration, { REGISTRY_MAX_ENTRIES as usize }> = HashMap::new();

/// The handler change that last made a registration unusable, by pid.
/// Written by `registry.rs` (a handler change); read by the agent, to name
/// what took the signal. Least recently written entries go first.
#[btf_map(pin_by_name)]
pub static replaced_handlers: LruHashMap<u32, Replaced, { REPLACED_MAX_ENTRIES as usize }> =
    LruHashMap::new();

/// Real-time signals generated for and delivered to registered processes,
/// and those root sends to any process, by (pid, signal). Written by `signal.rs`; read by the agent and the tests.
#[btf_map(pin_by_name)]
pub static signals: LruHashMap<SignalKey, SignalStats, { SIGNALS_MAX_ENTRIES as usize }> =
    LruHashMap::new();

/// Threads created by a process in the `FREEZING` state: tid → tgid.
/// Written by `freeze.rs` (`task_newtask`); read and emptied by the agent,
/// which stops each of them too.
#[btf_map(pin_by_name)]
pub static new_threads: HashMap<u32, u32, { NEW_THREADS_MAX_ENTRIES as usize }> = HashMap::new();

/// Stopped threads of processes being dumped: tid → [`FrozenTask`].
/// Filled and emptied by the agent; `freeze.rs` (`sched_switch`) counts
/// every time one of them runs.
#[btf_map(pin_by_name)]
pub static frozen_tasks: HashMap<u32, FrozenTask, { FROZEN_TASKS_MAX_ENTRIES as usize }> =
    HashMap::new();

/// Number of freezes in progress (element 0). Written by the agent; read by
/// `freeze.rs`, which returns at once while it is zero.
#[btf_map(pin_by_name)]
pub static freeze_active: Array<u32, 1> = Array::new();

/// Processes guarded while frozen: tgid → [`FreezeGuard`]. Written by the
/// agent (set, renewed, removed); read by `guard.rs` (BPF LSM).
#[btf_map(pin_by_name)]
pub static freeze_guard: HashMap<u32, FreezeGuard, { FREEZE_GUARD_MAX_ENTRIES as usize }> =
    HashMap::new();
