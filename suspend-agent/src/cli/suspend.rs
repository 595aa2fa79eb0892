//! `suspend-agent suspend PID`.

use std::time::Duration;

use crate::control::{self, Outcome, Request};

/// Ask a process to suspend
///
/// The process is checked first: if it did not opt in, its registration is
/// stale, or it has no handler for its suspend signal, nothing is sent and
/// the exit status is 3. Otherwise it gets its suspend signal (carrying its
/// registration token), runs its on_suspend callback and answers ready
/// (exit 0), busy (4) or refuse (5); no answer within --timeout is 6.
///
/// Writing an image comes in a later version: today --dry-run is required;
/// it runs the handshake to "ready" and then lets the process go, which runs
/// its on_resume callback with the reason "continued".
#[derive(clap::Args)]
pub struct Args {
    /// Process id (of any process; one that did not opt in is left alone).
    pid: u32,
    /// How long the whole handshake may take (e.g. 500ms, 10s, 1m).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// If the process is inside a critical section, wait for it to end
    /// (bounded by --timeout) instead of reporting busy.
    #[arg(long)]
    wait: bool,
    /// Run the handshake only: ask, and when the process is ready, let it
    /// go again (its on_resume runs with reason "continued").
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    super::require_root("asking a process to suspend")?;
    let request = Request::Suspend {
        pid: args.pid,
        timeout_ms: u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX),
        wait: args.wait,
        dry_run: args.dry_run,
    };
    let (outcome, message) = control::call(
        &request,
        args.timeout + Duration::from_secs(10),
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
