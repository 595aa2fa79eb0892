//! The block a client keeps in its own memory.
//!
//! `register()` maps one page of a memfd named
//! [`crate::paths::CLIENT_MEMFD_NAME`] (`MADV_DONTFORK`, so a child never
//! inherits it) and writes this block at its start. The agent finds it in
//! `/proc/PID/maps` and reads it with `process_vm_readv`: only the process
//! itself can put it there, so it proves the registration came from that
//! process even when the agent was not running when it registered. It also
//! holds the token that the agent's suspend and resume signals must carry.

/// `"SUSPCLNT"` as a little-endian u64.
pub const CLIENT_BLOCK_MAGIC: u64 = u64::from_le_bytes(*b"SUSPCLNT");

/// Registration data, written by the client, read by the agent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientBlock {
    /// [`CLIENT_BLOCK_MAGIC`].
    pub magic: u64,
    /// The client's [`crate::ABI_VERSION`].
    pub abi_version: u32,
    /// Pid of the process that wrote the block (a mismatch means a stale
    /// block: the agent ignores it).
    pub pid: u32,
    /// Secret the agent's signals carry in `si_value`; random, non-zero.
    pub token: u64,
    /// Signal the client handles as "suspend requested".
    pub suspend_signal: u32,
    /// Signal the client handles as "suspension ended".
    pub resume_signal: u32,
    /// `CONTEXT_THREAD` or `CONTEXT_SIGNAL` (see [`crate::registry`]).
    pub context: u32,
    /// `1` while registered; `0` after `unregister()`.
    pub active: u32,
    /// Address of the suspend-signal handler the client installed.
    pub handler_addr: u64,
    /// Address of the resume-signal handler the client installed.
    pub resume_handler_addr: u64,
    /// `CLOCK_BOOTTIME` ns when the client registered.
    pub registered_ns: u64,
    /// Thread id of the thread parked after answering `READY` (0 when none):
    /// the resume signal is sent to it.
    pub parked_tid: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// Address of the client's copy of the [`crate::trampoline`], through
    /// which the agent runs system calls inside its stopped threads.
    pub trampoline: u64,
}

const _: () = assert!(core::mem::size_of::<ClientBlock>() == 80);

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, `Copy`, no padding (size asserted), any bits are valid.
unsafe impl aya::Pod for ClientBlock {}
