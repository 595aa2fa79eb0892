//! The restorer stub: the code that runs in the process being restored once
//! none of the agent's code may stay mapped.
//!
//! `suspend-agent resume` creates the process (original pid), opens its
//! files, prepares every mapping's contents at a free place, maps this
//! blob and its [`RestoreArgs`](suspend_common::restore::RestoreArgs) and
//! jumps here. The stub then, in the order CRIU's restorer also follows:
//!
//! 1. blocks every signal;
//! 2. unmaps everything but itself and the prepared contents;
//! 3. moves the vDSO/vvar to where the process had them;
//! 4. moves every mapping into place and sets its protection;
//! 5. `PR_SET_MM_MAP` (brk, stack, arg/env, auxv, exe);
//! 6. sigactions;
//! 7. creates the other threads with their tids (`clone3` `set_tid`);
//! 8. in every thread: rseq, robust list, tid address, sigaltstack, the
//!    thread's pending signals, credentials;
//! 9. in the main thread, once every thread is done: the process's pending
//!    signals, interval timers, dumpable;
//! 10. reports on its pipe and parks every thread.
//!
//! The agent then takes over with ptrace: registers, xstate and signal mask
//! of every thread, the stub's region unmapped, and lets the process go. An
//! interrupted system call restarts (or fails with `EINTR`) exactly as the
//! kernel decides from the restored registers.
//!
//! No libc, no allocation, no relocations (the build checks): raw system
//! calls from the table in `sys`.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod stub;
#[cfg(target_os = "none")]
mod sys;

/// The host build is an empty program; the blob is built for
/// `x86_64-unknown-none`.
#[cfg(not(target_os = "none"))]
fn main() {}
