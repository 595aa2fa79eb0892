//! `suspend-agent suspend PID`.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;

use crate::control::{self, Outcome, Request};

/// Ask a process to suspend
///
/// The process is checked first: if it did not opt in, its registration is
/// stale, or it has no handler for its suspend signal, nothing is sent and
/// the exit status is 3. Otherwise it gets its suspend signal (carrying its
/// registration token), runs its on_suspend callback and answers ready,
/// busy (exit 4) or refuse (5); no answer within --timeout is 6.
///
/// When it is ready, every thread is frozen (ptrace, invisible to the
/// process), its state is written to the image directory -D (created; mode
/// 0700, files 0600; written elsewhere, fsynced, then renamed into place),
/// and only then is the process killed — or, with --leave-running, let go
/// (its on_resume runs with "continued"). Files an image cannot hold
/// (sockets, pipes other than stdio, eventfds…) make it refuse before
/// freezing (exit 8) unless --drop-unsupported-fds. Any failure after
/// "ready" lets the process go and runs its on_resume with "aborted".
///
/// --dry-run runs the handshake only: ask, and when the process is ready,
/// let it go again (on_resume with "continued").
#[derive(clap::Args)]
pub struct Args {
    /// Process id (of any process; one that did not opt in is left alone).
    pid: u32,
    /// The image directory to create.
    #[arg(
        short = 'D',
        long = "images-dir",
        value_name = "DIR",
        required_unless_present = "dry_run"
    )]
    dir: Option<PathBuf>,
    /// Keep the process running after its image is written.
    #[arg(long, requires = "dir")]
    leave_running: bool,
    /// Leave files an image cannot hold out of it instead of refusing.
    #[arg(long, requires = "dir")]
    drop_unsupported_fds: bool,
    /// How long the handshake may take (not the dump), e.g. 500ms, 10s, 1m.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// If the process is inside a critical section, wait for it to end
    /// (bounded by --timeout) instead of reporting busy.
    #[arg(long)]
    wait: bool,
    /// Run the handshake only: ask, and when the process is ready, let it
    /// go again (its on_resume runs with reason "continued").
    #[arg(long, conflicts_with = "dir")]
    dry_run: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    super::require_root("asking a process to suspend")?;
    let dir = args
        .dir
        .map(|d| std::path::absolute(&d).with_context(|| format!("resolving {}", d.display())))
        .transpose()?;
    let request = Request::Suspend {
        pid: args.pid,
        timeout_ms: u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX),
        wait: args.wait,
        dry_run: args.dry_run,
        dir,
        leave_running: args.leave_running,
        drop_unsupported_fds: args.drop_unsupported_fds,
    };
    // The dump itself may take long: progress lines keep coming meanwhile.
    let (outcome, message) = control::call(
        &request,
        args.timeout + Duration::from_secs(600),
        |progress| {
            eprintln!("suspend-agent: {progress}");
        },
    )?;
    if outcome == Outcome::Done {
        println!("{message}");
    } else {
        eprintln!("suspend-agent: {message}");
    }
    Ok(outcome.exit_code())
}
