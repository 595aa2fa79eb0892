//! Every type that crosses a boundary in suspend: the eBPF maps' keys and
//! values, the client ⇄ agent wire messages, the block a client keeps in its
//! own memory, and the paths both sides agree on.
//!
//! Rules for everything in here: `#[repr(C)]`, `Copy`, explicit `_pad` fields
//! (no implicit padding), `u32` plus constants instead of Rust enums or `bool`,
//! and a size assertion per type. Changing a layout means bumping
//! [`ABI_VERSION`].
#![no_std]

pub mod client_block;
pub mod freeze;
pub mod paths;
pub mod registry;
pub mod restore;
pub mod signals;
pub mod tracepoints;
pub mod trampoline;
pub mod wire;

/// Version of every layout in this crate. The client puts it in its block and
/// in every message; the agent refuses a peer with another version.
pub const ABI_VERSION: u32 = 2;

/// Default signal a client is asked to suspend with: `SIGRTMAX - 2` (62 on
/// x86-64 Linux). Rarely used by applications; glibc reserves the low
/// real-time signals, not the high ones.
pub const DEFAULT_SUSPEND_SIGNAL: u32 = 62;
/// Default signal that tells a client how a suspension ended (`SIGRTMAX - 3`,
/// 61).
pub const DEFAULT_RESUME_SIGNAL: u32 = 61;
/// The range a client may choose its signals from: the real-time signals
/// that glibc leaves to applications (`SIGRTMIN` is 34 with glibc).
pub const MIN_SIGNAL: u32 = 34;
/// Highest real-time signal on Linux (`SIGRTMAX`).
pub const MAX_SIGNAL: u32 = 64;
