//! Kinds of process state: one module per kind, each with its save half
//! (what is read from `/proc`, fdinfo or a copy of an fd while the process
//! is frozen, and what is refused, by name), its restore half (what a
//! resume checks, plans and does for it) and the unit tests of both, side
//! by side. The flows (`dump`, `restore`, `hold`) call them.

pub mod cgroup;
pub mod confinement;
#[cfg(test)]
pub mod fixtures;
pub mod inotify;
pub mod locks;
pub mod owners;
pub mod sockets;
pub mod terminals;
pub mod timers;
