//! `suspend-agent resume DIR`.

use std::path::PathBuf;

use crate::{
    exit,
    hold::{self, HeldRecord},
    restore::{self, Options, Stdio},
};

/// Bring a suspended process back from its image
///
/// The whole image is checked first — format version, every checksum, its
/// signature (this machine's key or one `key trust` added: an image changed
/// by anyone else is refused), who owns its directory (root or the
/// process's user, on every directory of the path), its pid and thread ids
/// (free), this CPU (has the image's xstate features) and kernel (its
/// vDSO moved in place, or a proxy of the image's standing in for it).
/// Every file it needs is opened as the process's user,
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
/// image directory or its pid, its parked threads are seized and each goes
/// on from where it was frozen — same process, same parent, every socket,
/// lock, pipe and timer it kept — within milliseconds whatever its size:
/// its private anonymous memory is given back lazily, each page served
/// from the image (its run's hash checked) when a thread first touches it
/// and the rest copied in behind it by a background agent (`list` shows
/// `refilling` until it is done; --wait waits for it). Private file
/// mappings' saved pages are written back before it runs; --eager writes
/// everything first. If it cannot be resumed it stays held (exit 9 when it
/// or its image is not as held). A refill whose agent was killed is
/// finished by `resume PID` (or the next daemon); a page the image can no
/// longer give (damaged since) kills the process, with a log line in
/// /run/suspend/refill.log and the kernel log — it is never handed a page
/// it did not have.
/// A held process that is gone (killed, or the machine rebooted) is
/// resumed from its image like any other, unless parts of it lived only in
/// the held process (named; exit 9).
///
/// `resume -` reads the image as a stream `send` wrote, from stdin, as
/// `receive` does (the same checks; a key this machine trusts), into
/// /var/lib/suspend/received/, and resumes it; the image is removed once
/// the process runs, and kept (its directory named) if the resume is
/// refused. Its stdin is then /dev/null unless --stdin names a file:
///
///     suspend-agent send /var/lib/img/w1 | ssh other suspend-agent resume -
#[derive(clap::Args)]
pub struct Args {
    /// The image directory (as written by `suspend -D`), the pid of a
    /// held process, or `-`: an image stream (`send`) on stdin.
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
    /// A held process: write all its memory back before it runs, instead of
    /// serving it as it is touched.
    #[arg(long)]
    eager: bool,
    /// A held process: return only once all its memory is back.
    #[arg(long)]
    wait: bool,
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

/// Waits for the agent serving a refill, if asked to.
fn wait_for(args: &Args, pid: u32, server: Option<std::process::Child>) -> anyhow::Result<u8> {
    let Some(mut server) = server.filter(|_| args.wait) else {
        return Ok(exit::OK);
    };
    let started = std::time::Instant::now();
    let status = server.wait()?;
    if status.success() {
        eprintln!(
            "suspend-agent: every page of pid {pid} is back ({:.3} s more)",
            started.elapsed().as_secs_f64()
        );
        Ok(exit::OK)
    } else {
        eprintln!(
            "suspend-agent: serving the memory of pid {pid} failed ({status}): see {}",
            hold::refill::LOG
        );
        Ok(exit::BAD_IMAGE)
    }
}

/// A held process resumed lazily whose refill is not finished: its agent
/// was killed (or it still runs).
fn refilling(args: &Args, record: &HeldRecord) -> anyhow::Result<u8> {
    let pid = record.pid;
    if hold::refill::being_served(pid) {
        eprintln!("suspend-agent: pid {pid} runs; its memory is still being given back");
        return Ok(exit::OK);
    }
    let server = hold::refill::spawn(pid)?;
    eprintln!(
        "suspend-agent: pid {pid} runs; the agent giving its memory back was cut short: finishing it (pid {})",
        server.id()
    );
    wait_for(args, pid, Some(server))
}

fn unpark(args: &Args, record: &HeldRecord) -> anyhow::Result<u8> {
    let pid = record.pid;
    if args.stdin.is_some() || args.stdout.is_some() || args.stderr.is_some() {
        anyhow::bail!(
            "pid {pid} is held: it keeps its own stdin, stdout and stderr (--stdin/--stdout/--stderr apply to a resume from an image)"
        );
    }
    if record.refill.is_some() {
        return refilling(args, record);
    }
    let image = match restore::read_for_refill(&record.image) {
        Ok(image) => image,
        Err(e) => {
            let what = match e.exit_code() {
                exit::ERROR => "could not be checked",
                _ => "was refused",
            };
            eprintln!("suspend-agent: the image of held pid {pid} {what}, it stays held: {e}");
            return Ok(e.exit_code());
        }
    };
    let mut server = None;
    let mut start = |pid| {
        server = Some(hold::refill::spawn(pid)?);
        Ok(())
    };
    match hold::unpark(&image, record, !args.eager, &mut start) {
        Ok(u) if u.cut_short => {
            eprintln!(
                "suspend-agent: the hold of pid {} had been cut short (its agent was killed while parking it): its {} parked thread(s) went on from where they were, nothing was written back; it runs, and its on_resume runs with \"aborted\"",
                u.pid, u.threads
            );
            Ok(exit::OK)
        }
        Ok(u) => {
            let mib = |pages: u64| (pages * 4096) as f64 / (1 << 20) as f64;
            let lazy = match u.lazy_pages {
                Some(left) => format!(
                    "; {left} more ({:.1} MiB) are given back as it runs (served by pid {})",
                    mib(left),
                    server.as_ref().map_or(0, |s| s.id())
                ),
                None => String::new(),
            };
            eprintln!(
                "suspend-agent: resumed held pid {}: {} thread(s) running again in {:.3} s, {} pages ({:.1} MiB) written back first{lazy}{}",
                u.pid,
                u.threads,
                u.took.as_secs_f64(),
                u.pages,
                mib(u.pages),
                if u.told_client {
                    "; its on_resume runs with \"restored\""
                } else {
                    ""
                }
            );
            wait_for(args, pid, server)
        }
        Err(e) => {
            eprintln!("suspend-agent: {e}; it stays held");
            Ok(e.exit_code())
        }
    }
}

/// Where `resume -` receives an image.
pub const RECEIVED: &str = "/var/lib/suspend/received";

/// `resume -`: the stream on stdin received into [`RECEIVED`], then
/// resumed; the image removed once the process runs, kept if not.
fn from_stream(mut args: Args) -> anyhow::Result<u8> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        eprintln!(
            "suspend-agent: `resume -` reads an image stream from stdin, not a terminal: pipe one \
             in (`suspend-agent send DIR | …`)"
        );
        return Ok(exit::USAGE);
    }
    let dir = super::fresh_dir(
        std::path::Path::new(RECEIVED),
        &format!("image-{}", std::process::id()),
    )?;
    let received = super::receive::run(super::receive::Args {
        dir: dir.clone(),
        input: None,
    })?;
    if received != exit::OK {
        return Ok(received);
    }
    args.dir = dir.clone();
    if args.stdin.is_none() {
        // Ours is the stream, read to its end.
        args.stdin = Some("/dev/null".into());
    }
    let code = match from_image(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "suspend-agent: the received image is kept in {}",
                dir.display()
            );
            return Err(e);
        }
    };
    if code == exit::OK {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!(
                "suspend-agent: removing the received image {}: {e}",
                dir.display()
            );
        }
    } else {
        eprintln!(
            "suspend-agent: the received image is kept in {}: `suspend-agent resume {}` once \
             what refused it is mended, or remove it",
            dir.display(),
            dir.display()
        );
    }
    Ok(code)
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    super::require_root("resuming a process")?;
    if args.dir.as_os_str() == "-" {
        return from_stream(args);
    }
    if let Some(record) = held(&args.dir)? {
        return unpark(&args, &record);
    }
    from_image(args)
}

/// Resumes held process `pid` in place, as `resume PID` does (`eager`:
/// all its memory written back before it runs, so its image is no longer
/// needed once this returns 0): its exit code (it stays held unless 0).
pub fn resume_held(pid: u32, eager: bool) -> anyhow::Result<u8> {
    let args = Args {
        dir: pid.to_string().into(),
        stdin: None,
        stdout: None,
        stderr: None,
        eager,
        wait: false,
    };
    match held(&args.dir)? {
        Some(record) => unpark(&args, &record),
        None => anyhow::bail!("pid {pid} is no longer held"),
    }
}

/// A resume from an image directory (not a held process).
fn from_image(args: Args) -> anyhow::Result<u8> {
    let options = Options {
        stdio: Stdio {
            files: [args.stdin, args.stdout, args.stderr],
        },
        skip_vdso: std::env::var_os("SUSPEND_FAULT_SKIP_VDSO").is_some_and(|v| v == "1"),
        vdso_proxy: std::env::var_os("SUSPEND_FAULT_VDSO_PROXY").is_some_and(|v| v == "1"),
        vdso_hide: std::env::var("SUSPEND_FAULT_VDSO_HIDE")
            .unwrap_or_default()
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
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
        Err(e) => match e.exit_code() {
            // Said with its causes, as every other error is.
            exit::ERROR => Err(e.into()),
            // Refused before anything was created (9, 10).
            code => {
                eprintln!("suspend-agent: image refused, nothing was created: {e}");
                Ok(code)
            }
        },
    }
}
