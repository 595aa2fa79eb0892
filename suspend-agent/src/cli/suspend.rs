//! `suspend-agent suspend PID`.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;

use crate::control::{self, Outcome, Reply, Request};

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
/// and only then is the process held: its threads parked, its private
/// memory released, every kernel object it has kept (`resume` refills it
/// in place). With --exit it is killed instead, and the image alone
/// carries it (with its POSIX timers, file locks, self-pipes, eventfds…):
/// what an image cannot hold (a socket with a peer, a pipe to another
/// process, a child, a pseudo-terminal…) then makes it refuse before
/// freezing (exit 8); --drop-unsupported-fds leaves such files out
/// instead. With --leave-running it is let go (its on_resume runs with
/// "continued"). Any failure after "ready" lets the process go and runs its
/// on_resume with "aborted".
///
/// --to HOST[:DIR] moves it to another machine running the agent: held
/// here, what an image cannot hold refused first (as with --exit), its
/// image streamed through ssh into `suspend-agent resume -` there (or
/// `receive DIR` and `resume DIR`); ended here only once it runs there.
/// If the other machine refuses it (another kernel's vDSO it cannot
/// stand in for, a file that differs, its pid taken, an untrusted key…)
/// or the stream breaks, it is resumed here (exit 11). The other machine
/// must trust this one's key (`key show` here, `key trust` there); there
/// its stdin, stdout and stderr are /dev/null, or --output FILE.
///
/// --dry-run runs the handshake only: ask, and when the process is ready,
/// let it go again (on_resume with "continued").
///
/// --check asks nothing and freezes nothing: it lists what an image of the
/// process would hold — each open file and how it is treated, timers,
/// locked memory and children, each thread's confinement — with the same
/// checks a suspend with --exit makes before it freezes, and whether it can
/// be held (the default); exit 0, or 8 when something would be refused
/// either way (3 when the process did not opt in). What only a frozen
/// process shows (a parent-death signal, seccomp filters denying pause) is
/// not in it.
#[derive(clap::Args)]
pub struct Args {
    /// Process id (of any process; one that did not opt in is left alone).
    pid: u32,
    /// The image directory to create.
    #[arg(
        short = 'D',
        long = "images-dir",
        value_name = "DIR",
        required_unless_present_any = ["dry_run", "check", "to"]
    )]
    dir: Option<PathBuf>,
    /// Keep the process running after its image is written.
    #[arg(long, requires = "dir", conflicts_with_all = ["hold", "exit", "to"])]
    leave_running: bool,
    /// Move it to HOST (another machine running the agent, reached with
    /// ssh): resumed there, ended here only once it runs there; if not,
    /// resumed here (exit 11). DIR: where the image goes there (default:
    /// a directory under /var/lib/suspend/received, removed once it
    /// runs). -D keeps the image here too.
    #[arg(long, value_name = "HOST[:DIR]", value_parser = parse_to, conflicts_with_all = ["hold", "exit", "dry_run", "check"])]
    to: Option<(String, Option<String>)>,
    /// With --to: the command that runs a command on HOST, as `SSH HOST
    /// COMMAND` (split on blanks: `ssh -p 2222`); $SUSPEND_SSH, else `ssh
    /// -o BatchMode=yes -o ServerAliveInterval=15 -o ServerAliveCountMax=4`.
    #[arg(long, value_name = "COMMAND", requires = "to")]
    ssh: Option<String>,
    /// With --to: the agent's path on HOST.
    #[arg(
        long,
        value_name = "PATH",
        requires = "to",
        default_value = "suspend-agent"
    )]
    remote_agent: String,
    /// With --to: append the process's stdout and stderr to this file on
    /// HOST (created as its user), instead of /dev/null.
    #[arg(long, value_name = "FILE", requires = "to")]
    output: Option<String>,
    /// Hold the process (the default with -D): it keeps its pid and every
    /// kernel object (sockets, locks, pipes, timers, children, terminal),
    /// its threads wait parked, its private memory is released. `resume`
    /// refills it. Sockets, pipes and other files an image cannot hold do
    /// not prevent it (they stay in the held process).
    #[arg(long, requires = "dir", conflicts_with = "exit")]
    hold: bool,
    /// Kill the process once its image is durable, instead of holding it:
    /// the image alone carries it (before a reboot, or to move it). What an
    /// image cannot hold is then refused before anything is frozen.
    #[arg(long, requires = "dir")]
    exit: bool,
    /// Leave files an image cannot hold out of it instead of refusing.
    #[arg(long, requires = "dir")]
    drop_unsupported_fds: bool,
    /// Accept that a resume from the image starts the process in the resume
    /// command's session and process group. Without it, a process that does
    /// not lead its own session and process group (one started from a
    /// shell) is refused with --exit and --leave-running; one that leads them
    /// leads them again after a resume.
    #[arg(long)]
    new_session: bool,
    /// How many bytes of deleted files' contents (files the process has
    /// open that were deleted since, or made with O_TMPFILE) the image may
    /// carry, e.g. 64M (default 16M, at most 128M). More is refused before anything
    /// is frozen, naming the files.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    unlinked_max: Option<u64>,
    /// Carry this regular file the process has open in the image (again
    /// for more): a resume where its path does not exist makes it there
    /// first, as the process's user, with its bytes, mode and mtime; where
    /// it exists, it must be equal, as any file (refused, named, if not).
    /// For files only this machine has (a log, a scratch file) when the
    /// image is to move. Its bytes count with the deleted files' under
    /// --unlinked-max. A PATH it has not open (or only as stdin, stdout
    /// or stderr) is refused before anything is frozen (exit 8).
    #[arg(long, value_name = "PATH")]
    carry: Vec<PathBuf>,
    /// Store the image's pages raw. By default each run of pages is
    /// compressed (Zstandard, on every core, as it is written; a run that
    /// would not shrink by a tenth is stored raw). With --leave-running
    /// the pages are always raw: the process runs again before they are
    /// written.
    #[arg(long, requires = "dir")]
    no_compress: bool,
    /// With --leave-running: copy all its memory in one freeze. By default,
    /// where the kernel can tell which pages a running process writes
    /// (userfaultfd asynchronous write-protection, Linux 6.7), its memory
    /// is first copied while it runs, and the freeze copies only what it
    /// wrote since. The summary says which was done.
    #[arg(long, requires = "leave_running")]
    no_precopy: bool,
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
    /// Only say what an image of it would hold and what would be refused;
    /// nothing is sent, nothing frozen.
    #[arg(long, conflicts_with_all = ["dir", "dry_run"])]
    check: bool,
}

/// `--to`'s `HOST[:DIR]`.
fn parse_to(text: &str) -> Result<(String, Option<String>), String> {
    super::to::parse_target(text)
}

/// Where `--to` writes the image here when -D names none.
const SENT: &str = "/var/lib/suspend/sent";

/// A size: bytes, or a number with K, M, G or T (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 30),
        Some(b'T' | b't') => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    let size = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{text:?} is not a size (bytes, or a number with K, M, G or T)"))?;
    let limit = crate::image::format::UNLINKED_MAX_LIMIT;
    if size > limit {
        return Err(format!(
            "{text} is more than an image carries ({} MiB at most)",
            limit >> 20
        ));
    }
    Ok(size)
}

/// `--check`: the inventory, read only (see the command's help).
fn check(pid: u32, new_session: bool, unlinked_max: u64) -> anyhow::Result<u8> {
    use crate::{dump, exit, registry::Registry};
    let opted_in = match Registry::open_pinned().and_then(|r| r.get(pid)) {
        Ok(Some(_)) => "opted in",
        Ok(None) => "not opted in: a suspend would be cancelled, nothing sent",
        Err(_) => "unknown (no registry pinned: start the daemon)",
    };
    println!("pid {pid}: {opted_in}");
    let files = dump::list_files(pid, None)?;
    let mut refused = dump::unrestorable(pid, &files);
    refused.extend(dump::unlinked_over_cap(&files, unlinked_max));
    let mut any = !refused.is_empty();
    for f in &files {
        let treatment = match refused.iter().find(|(fd, _)| *fd == f.fd) {
            Some((_, why)) => format!("refused: {why}"),
            None if f.fd <= 2 => "the resume command's own (or --stdin/--stdout/--stderr)".into(),
            None => "saved".into(),
        };
        println!("  fd {:>4}  {:<40} {treatment}", f.fd, f.path);
    }
    if let Err(e) = crate::tasks::of_process(pid) {
        println!(
            "  not checked before the freeze ({e}): parent-death signal, a thread's NUMA \
             policy, thread and process keyrings, LDT, dumpable mode, timer overruns (a suspend \
             checks them once the process is frozen); its session keyring cannot be checked at \
             all, nor an io_uring ring it only registered (both refused below)"
        );
    }
    for what in dump::unrestorable_state(pid, new_session) {
        any = true;
        println!("  refused: {what} (an image cannot hold it; --hold keeps it)");
    }
    let confinement = crate::state::confinement::refusals(pid)?;
    if confinement.is_empty() {
        println!(
            "  threads: capabilities, securebits, no_new_privs, seccomp filters, scheduling: saved"
        );
    }
    for why in &confinement {
        any = true;
        println!("  refused: {why}");
    }
    // The lines above are what an image holds (`--exit`); a held process
    // keeps all of it, and has refusals of its own.
    let unholdable = crate::hold::refusals(pid)?;
    if unholdable.is_empty() {
        println!(
            "  held (the default): possible{}",
            if any {
                ", keeping what is refused above"
            } else {
                ""
            }
        );
    }
    for why in &unholdable {
        any = true;
        println!("  held (the default): refused: {why}");
    }
    Ok(if opted_in.starts_with("not") {
        exit::NOT_OPTED_IN
    } else if any {
        exit::UNSUPPORTED
    } else {
        exit::OK
    })
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    super::require_root("asking a process to suspend")?;
    if args.check {
        return check(
            args.pid,
            args.new_session,
            args.unlinked_max
                .unwrap_or(crate::image::format::UNLINKED_MAX_DEFAULT),
        );
    }
    let mut dir = args
        .dir
        .map(|d| std::path::absolute(&d).with_context(|| format!("resolving {}", d.display())))
        .transpose()?;
    // Moved: its image here goes where -D says, else in a directory made
    // for the move (removed once it runs there).
    let made = args.to.is_some() && dir.is_none();
    if made {
        dir = Some(super::fresh_dir(
            std::path::Path::new(SENT),
            &format!("pid-{}", args.pid),
        )?);
    }
    // A process just resumed lazily is asked once all its memory is back
    // (the daemon refuses it until then): within the request's timeout.
    if crate::hold::refilling(args.pid) {
        eprintln!(
            "suspend-agent: pid {} is still getting its memory back from its last resume; waiting for that first",
            args.pid
        );
        let deadline = std::time::Instant::now() + args.timeout;
        while crate::hold::refilling(args.pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // A move needs this machine's keys to send the image: checked before
    // the process is asked anything.
    if args.to.is_some() {
        super::to::preflight()?;
    }
    // Held unless told otherwise.
    let hold = dir.is_some() && !args.exit && !args.leave_running;
    let image = dir.clone();
    let request = Request::Suspend {
        pid: args.pid,
        timeout_ms: u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX),
        wait: args.wait,
        dry_run: args.dry_run,
        dir,
        leave_running: args.leave_running,
        drop_unsupported_fds: args.drop_unsupported_fds,
        hold,
        new_session: args.new_session,
        unlinked_max: args.unlinked_max,
        no_compress: args.no_compress,
        no_precopy: args.no_precopy,
        portable: args.to.is_some(),
        // As the process's fds name them: absolute, symbolic links
        // resolved.
        carry: args
            .carry
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect(),
    };
    // The dump itself may take long: progress lines keep coming meanwhile.
    let Reply { outcome, message } = control::call(
        &request,
        args.timeout + Duration::from_secs(600),
        |progress| {
            eprintln!("suspend-agent: {progress}");
        },
    )?;
    if outcome != Outcome::Done {
        eprintln!("suspend-agent: {message}");
        return Ok(outcome.exit_code());
    }
    let (Some((host, remote_dir)), Some(image)) = (args.to, image) else {
        println!("{message}");
        return Ok(outcome.exit_code());
    };
    eprintln!("suspend-agent: {message}");
    let target = super::to::Target {
        host,
        dir: remote_dir,
        ssh: args
            .ssh
            .or_else(|| std::env::var("SUSPEND_SSH").ok())
            .unwrap_or_else(|| super::to::DEFAULT_SSH.into()),
        remote_agent: args.remote_agent,
        output: args.output,
    };
    super::to::finish(&target, args.pid, &image, made)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("100m"), Ok(100 << 20));
        assert!(parse_size("2g").is_err(), "above what an image carries");
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
