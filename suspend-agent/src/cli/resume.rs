//! `suspend-agent resume DIR`.

use std::path::PathBuf;

use crate::{
    exit,
    hold::{self, HeldRecord, HoldError},
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
///
/// A held process (a suspend's default) is resumed in place instead: given its
/// image directory or its pid, its parked threads are seized, every saved
/// page of its private memory is written back from the image (each run's
/// hash checked), and each thread goes on from where it was frozen — same
/// process, same parent, every socket, lock, pipe and timer it kept. If
/// that fails it stays held (exit 9 when it or its image is not as held).
/// A held process that is gone (killed, or the machine rebooted) is
/// resumed from its image like any other, unless parts of it lived only in
/// the held process (named; exit 9).
#[derive(clap::Args)]
pub struct Args {
    /// The image directory (as written by `suspend -D`), or the pid of a
    /// held process.
    #[arg(value_name = "DIR|PID")]
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

/// The held process `target` names (its pid, or its image directory).
fn held(target: &std::path::Path) -> anyhow::Result<Option<HeldRecord>> {
    if !target.exists()
        && let Some(pid) = target.to_str().and_then(|t| t.parse::<u32>().ok())
    {
        return match HeldRecord::find(pid)? {
            Some(record) => Ok(Some(record)),
            None => anyhow::bail!(
                "pid {pid} is not held (resume takes an image directory, or the pid of a held process)"
            ),
        };
    }
    Ok(HeldRecord::for_image(target).unwrap_or(None))
}

fn unpark(args: &Args, record: &HeldRecord) -> anyhow::Result<u8> {
    let pid = record.pid;
    if args.stdin.is_some() || args.stdout.is_some() || args.stderr.is_some() {
        anyhow::bail!(
            "pid {pid} is held: it keeps its own stdin, stdout and stderr (--stdin/--stdout/--stderr apply to a resume from an image)"
        );
    }
    let image = match restore::read_for_refill(&record.image) {
        Ok(image) => image,
        Err(e) => {
            eprintln!("suspend-agent: the image of held pid {pid} was refused, it stays held: {e}");
            return Ok(exit::BAD_IMAGE);
        }
    };
    match hold::unpark(&image, record) {
        Ok(u) if u.cut_short => {
            eprintln!(
                "suspend-agent: the hold of pid {} had been cut short (its agent was killed while parking it): its {} parked thread(s) went on from where they were, nothing was written back; it runs, and its on_resume runs with \"aborted\"",
                u.pid, u.threads
            );
            Ok(exit::OK)
        }
        Ok(u) => {
            eprintln!(
                "suspend-agent: resumed held pid {}: {} thread(s), {} pages ({:.1} MiB) written back in {:.3} s{}",
                u.pid,
                u.threads,
                u.pages,
                (u.pages * 4096) as f64 / (1 << 20) as f64,
                u.took.as_secs_f64(),
                if u.told_client {
                    "; its on_resume runs with \"restored\""
                } else {
                    ""
                }
            );
            Ok(exit::OK)
        }
        Err(e @ (HoldError::NotHeld { .. } | HoldError::Pages { .. })) => {
            eprintln!("suspend-agent: {e}; it stays held");
            Ok(exit::BAD_IMAGE)
        }
        Err(e) => Err(anyhow::anyhow!("{e}; it stays held")),
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    super::require_root("resuming a process")?;
    if let Some(record) = held(&args.dir)? {
        return unpark(&args, &record);
    }
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
