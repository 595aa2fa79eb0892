//! Driving the agent and its workloads, shared by the integration suite
//! (`suspend-tests`) and by `cargo xtask demo` and `bench`: an agent daemon
//! started and stopped ([`Daemon`]), a child talked to over its stdin and
//! stdout ([`Piped`]), a resumed process adopted through the child
//! subreaper ([`Adopted`]), what `/proc` says of a process ([`procfs`]),
//! the agent's exit codes ([`exit`]) and waits with a deadline ([`poll`]).
//!
//! Nothing here asserts or decides what a failure means: the suite panics
//! with what it saw, xtask reports an error. Every process started here is
//! killed and reaped when its guard drops.

mod adopted;
mod daemon;
pub mod exit;
mod piped;
pub mod procfs;
mod wait;

pub use adopted::{Adopted, become_subreaper, exit_code, kill_and_reap, try_reap};
pub use daemon::{Daemon, StartError};
pub use piped::{ChildGuard, Piped, field, workload_command};
pub use wait::{WAIT, poll};
