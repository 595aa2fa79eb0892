//! The tracee layer: a thread of another process held with ptrace —
//! seized, interrupted, its registers and signal state read and written, a
//! system call run inside it while it is stopped ([`inject`]), let go. Both
//! flows use it: a suspend freezes and asks the process's threads, a
//! resume takes over the threads the restorer parked (as CRIU's `compel`
//! serves both its dump and its restore).

pub mod inject;
pub mod ptrace;
pub mod uffd;
