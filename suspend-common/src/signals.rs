//! Signal accounting: the eBPF programs count each real-time signal
//! generated for and delivered to a registered process, and each one root
//! sends to any process. This is how a test proves that the agent sent
//! nothing to a process that did not opt in. Signals users send to
//! unregistered processes are not counted, so that no user can evict the
//! entries of this LRU map.

/// Name of the pinned signal-accounting map (`/sys/fs/bpf/suspend/signals`).
pub const SIGNALS_MAP: &str = "signals";
/// Entries the (LRU) signal map holds at most.
pub const SIGNALS_MAX_ENTRIES: u32 = 8192;
/// Signals below this number are not counted (they are frequent and never
/// used by suspend).
pub const FIRST_COUNTED_SIGNAL: u32 = 32;

/// Key of the signal map: a process and a signal number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SignalKey {
    /// Target pid as the `signal_generate` tracepoint reports it (the
    /// thread-group id for process-directed signals); the receiving
    /// thread-group id for deliveries.
    pub pid: u32,
    /// Signal number.
    pub signal: u32,
}

const _: () = assert!(core::mem::size_of::<SignalKey>() == 8);

/// Counts for one (process, signal) pair.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalStats {
    /// Times the signal was generated for the process.
    pub generated: u64,
    /// Times it was delivered to one of the process's threads.
    pub delivered: u64,
    /// When it was last generated (`CLOCK_BOOTTIME` ns).
    pub last_generated_ns: u64,
    /// When it was last delivered.
    pub last_delivered_ns: u64,
    /// Thread-group id of the last sender.
    pub last_sender: u32,
    /// `si_code` of the last generated signal (`SI_QUEUE` is -1).
    pub last_code: i32,
    /// Handler the last delivery ran (0 = `SIG_DFL`, 1 = `SIG_IGN`).
    pub last_handler: u64,
}

const _: () = assert!(core::mem::size_of::<SignalStats>() == 48);

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, `Copy`, no padding (size asserted), any bits are valid.
unsafe impl aya::Pod for SignalKey {}
#[cfg(feature = "user")]
// SAFETY: `repr(C)`, `Copy`, no padding (size asserted), any bits are valid.
unsafe impl aya::Pod for SignalStats {}
