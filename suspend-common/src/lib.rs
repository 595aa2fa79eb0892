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
pub mod tasks;
pub mod tracepoints;
pub mod trampoline;
pub mod wire;

/// Version of every layout in this crate. The client puts it in its block and
/// in every message; the agent refuses a peer with another version.
pub const ABI_VERSION: u32 = 2;

/// Default signal a client is asked to suspend with: 44 (`SIGRTMIN + 10`
/// with glibc). In the middle of the real-time range on purpose: runtimes
/// take its ends — glibc 32 and 33, musl 32 to 34, .NET and Mono the first
/// free ones from `SIGRTMIN`, programs' own POSIX timers `SIGRTMIN + n` for
/// small n, the JVM's networking 62 (`SIGRTMAX - 2`, the default before),
/// Valgrind 64.
pub const DEFAULT_SUSPEND_SIGNAL: u32 = 44;
/// Default signal that tells a client how a suspension ended: 43
/// (`SIGRTMIN + 9`).
pub const DEFAULT_RESUME_SIGNAL: u32 = 43;
/// The range a client may choose its signals from: the real-time signals
/// that glibc leaves to applications (`SIGRTMIN` is 34 with glibc).
pub const MIN_SIGNAL: u32 = 34;
/// Highest real-time signal on Linux (`SIGRTMAX`).
pub const MAX_SIGNAL: u32 = 64;
