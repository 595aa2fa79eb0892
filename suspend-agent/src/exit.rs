//! Exit codes of `suspend-agent`. Each outcome has its own, so scripts can
//! tell them apart; they are listed in `--help` and in the README.

/// Done.
pub const OK: u8 = 0;
/// An error (the message says which pid, file or syscall).
pub const ERROR: u8 = 1;
/// Bad command line (clap's own code; also `send` to, or `receive` from,
/// a terminal).
pub const USAGE: u8 = 2;
/// The process has not opted in (or cannot be asked now): cancelled,
/// nothing was sent.
pub const NOT_OPTED_IN: u8 = 3;
/// The process answered "busy" (not now; maybe inside a critical section).
pub const BUSY: u8 = 4;
/// The process refused.
pub const REFUSED: u8 = 5;
/// No answer within the timeout.
pub const TIMEOUT: u8 = 6;
/// No agent daemon is running.
pub const NO_DAEMON: u8 = 7;
/// The process holds something an image cannot hold (the message names
/// it): refused before anything was frozen.
pub const UNSUPPORTED: u8 = 8;
/// `resume`: the image was refused (damaged, another version, a file it
/// maps changed or gone, this CPU or kernel cannot run it); nothing was
/// created. `send`, `receive`: the image, or the stream, was refused
/// (damaged, cut short, not signed by a trusted key); nothing was sent or
/// kept.
pub const BAD_IMAGE: u8 = 9;
/// `resume`: a pid or thread id the image needs is in use; nothing was
/// created.
pub const PID_IN_USE: u8 = 10;
/// `suspend --to`: the other machine said it refused the process, nothing
/// created there (or the stream broke before its end); it was resumed
/// here.
pub const NOT_MOVED: u8 = 11;

/// The table printed at the end of `--help`.
pub const HELP: &str = "\
Exit status:
  0  done
  1  error (the message names the pid, file or syscall)
  2  bad command line
  3  not opted in: the process did not register, or its handler is gone; nothing was sent
  4  busy: the process said \"not now\" (or is inside a critical section)
  5  refused: the process said no
  6  timeout: no answer in time
  7  no agent daemon is running
  8  unsupported: the process holds something an image cannot hold (named); nothing was frozen
  9  resume: image refused (damaged, other version, a mapped file changed or gone, CPU/kernel cannot run it); nothing created
 10  resume: a pid or thread id the image needs is in use; nothing created
 11  suspend --to: not moved (the other machine refused it, nothing created there, or the stream broke); it runs here again
    (send, receive: 9 is an image or stream refused, nothing sent or kept; 1 an existing target)";
