//! The exit codes of `suspend-agent` (its `src/exit.rs`, which `--help`
//! lists), as the callers of the command compare them.

/// Done.
pub const OK: i32 = 0;
/// An error (the message says which pid, file or syscall).
pub const ERROR: i32 = 1;
/// The process has not opted in: cancelled, nothing was sent.
pub const NOT_OPTED_IN: i32 = 3;
/// The process answered "busy" (or is inside a critical section).
pub const BUSY: i32 = 4;
/// The process refused.
pub const REFUSED: i32 = 5;
/// No answer within the timeout.
pub const TIMEOUT: i32 = 6;
/// No agent daemon is running.
pub const NO_DAEMON: i32 = 7;
/// The process holds something the suspend cannot keep (named).
pub const UNSUPPORTED: i32 = 8;
/// `resume`: the image was refused; nothing was created.
pub const BAD_IMAGE: i32 = 9;
/// `resume`: a pid or thread id the image needs is in use; nothing was
/// created.
pub const PID_IN_USE: i32 = 10;
