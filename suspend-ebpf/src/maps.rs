//! Every map of the eBPF programs. All are BTF maps pinned by name under
//! `/sys/fs/bpf/suspend/`, so `bpftool map dump` prints named fields and the
//! maps outlive the agent.
#![allow(non_upper_case_globals)]

use aya_ebpf::{
    btf_maps::{HashMap, LruHashMap},
    macros::btf_map,
};
use suspend_common::{
    registry::{REGISTRY_MAX_ENTRIES, Registration},
    signals::{SIGNALS_MAX_ENTRIES, SignalKey, SignalStats},
};

/// Processes that opted in, by pid.
/// Written by the agent (register, state changes, unregister); updated by
/// `registry.rs` (exec and exit remove, a handler change marks unusable) and
/// `signal.rs` (suspend/resume signal counters). Read by the agent.
#[btf_map(pin_by_name)]
pub static registry: HashMap<u32, Registration, { REGISTRY_MAX_ENTRIES as usize }> = HashMap::new();

/// Real-time signals generated for and delivered to every process, by
/// (pid, signal). Written by `signal.rs`; read by the agent and the tests.
#[btf_map(pin_by_name)]
pub static signals: LruHashMap<SignalKey, SignalStats, { SIGNALS_MAX_ENTRIES as usize }> =
    LruHashMap::new();
