//! `suspend-agent resume DIR`.

use std::path::PathBuf;

use crate::{
    exit,
    restore::{self, Options, RestoreError, Stdio},
};

/// Bring a suspended process back from its image
///
/// The whole image is checked first — format version, every checksum, its
/// signature (this machine's key or one `key trust` added: an image changed
/// by anyone else is refused), who owns its directory (root or the
/// process's user, on every directory of the path), its pid and thread ids
/// (free), this CPU (has the image's xstate features) and kernel (same
/// vDSO layout). Every file it needs is opened as the process's user,
/// without following symbolic links, and checked on the open descriptor
/// (the same file, or the same size and modification time). A bad image is
/// refused with what is wrong, before anything is created: exit 9, or 10
/// when a pid it needs is in use.
///
/// The process then gets its original pid and thread ids, every mapping at
/// its address, its files at their descriptor numbers and offsets, its
/// signal handlers, pending signals, timers and credentials, and every
/// thread its registers; a thread that was inside a system call restarts it
/// (or sees EINTR) as after a signal. Its stdin, stdout and stderr are this
/// command's own unless --stdin/--stdout/--stderr name files. A client that
/// was parked for the suspension gets the resume signal: its on_resume runs
/// with "restored" and it registers with the agent again.
///
/// The resumed process is a child of this command until it returns, then
/// of init (or of the nearest subreaper), like `criu restore -d`. Any
/// failure kills what was created: nothing half-made stays behind.
#[derive(clap::Args)]
pub struct Args {
    /// The image directory (as written by `suspend -D`).
    dir: PathBuf,
    /// Give the process this file as stdin instead of ours (opened as the
    /// process's user; a final symbolic link is not followed).
    #[arg(long, value_name = "FILE")]
    stdin: Option<PathBuf>,
    /// Append the process's stdout to this file instead of ours (created
    /// as the process's user if missing).
    #[arg(long, value_name = "FILE")]
    stdout: Option<PathBuf>,
    /// Append the process's stderr to this file instead of ours.
    #[arg(long, value_name = "FILE")]
    stderr: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    super::require_root("resuming a process")?;
    let options = Options {
        stdio: Stdio {
            files: [args.stdin, args.stdout, args.stderr],
        },
        skip_vdso: std::env::var_os("SUSPEND_FAULT_SKIP_VDSO").is_some_and(|v| v == "1"),
    };
    match restore::resume(&args.dir, &options) {
        Ok(r) => {
            eprintln!(
                "suspend-agent: resumed pid {}: {} thread(s), {} mappings, {} pages ({:.1} MiB) in {:.3} s{}",
                r.pid,
                r.threads,
                r.mappings,
                r.pages,
                (r.pages * 4096) as f64 / (1 << 20) as f64,
                r.took.as_secs_f64(),
                if r.told_client {
                    "; its on_resume runs with \"restored\""
                } else {
                    ""
                }
            );
            Ok(exit::OK)
        }
        Err(e @ (RestoreError::Read(_) | RestoreError::Refused(_))) => {
            let code = match &e {
                RestoreError::Refused(restore::Refusal::PidInUse { .. }) => exit::PID_IN_USE,
                _ => exit::BAD_IMAGE,
            };
            eprintln!("suspend-agent: image refused, nothing was created: {e}");
            Ok(code)
        }
        Err(e) => Err(e.into()),
    }
}
