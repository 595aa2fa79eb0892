//! Running the agent and workloads for `demo` and `bench`, through
//! `suspend-harness` as the integration suite does: the daemon that runs is
//! used, or one is started and stopped; a workload is started, or brought
//! back by `suspend-agent resume` and adopted, and driven over
//! stdin/stdout. Failures are errors here, not panics; children are killed
//! and reaped however the command ends.

use std::{
    io::Read as _,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use suspend_harness::{Adopted, Daemon, Piped, WAIT, field, workload_command};

use crate::util;

/// A workload, driven over stdin/stdout.
pub struct Workload {
    /// For a resumed workload, the process itself (dropped first: killed
    /// before the `resume` command, reaped already, is let go).
    _resumed: Option<Adopted>,
    /// The workload, or the `resume` command that brought it back.
    piped: Piped,
}

impl Workload {
    pub fn expect(&self, prefix: &str) -> Result<String> {
        self.piped
            .expect(prefix, WAIT, |_| {})
            .with_context(|| format!("the workload did not print {prefix:?}"))
    }

    pub fn ask(&mut self, command: &str, prefix: &str) -> Result<String> {
        self.piped.send(command)?;
        self.expect(prefix)
    }

    /// The pid its `ready pid=N` line says.
    pub fn ready_pid(&self) -> Result<String> {
        let line = self.expect("ready")?;
        let pid = field(&line, "pid").with_context(|| format!("no pid in {line:?}"))?;
        Ok(pid.to_owned())
    }
}

/// The daemon that is running, or else a new one (`None`: it was running
/// already, and is left running).
pub fn start_daemon(bin: &Path) -> Result<Option<Daemon>> {
    if Daemon::answering() {
        util::stage("using the agent daemon that is already running");
        return Ok(None);
    }
    let log = util::target_dir().join("demo-daemon.log");
    util::stage(format!(
        "starting the agent daemon (log: {})",
        log.display()
    ));
    let file =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let daemon = Daemon::start(&bin.join("suspend-agent"), &[], None, file)
        .with_context(|| format!("the agent daemon did not start; see {}", log.display()))?;
    Ok(Some(daemon))
}

/// Starts `command` (a program that answers `check` as the workload does)
/// with only stdio, as its own session's leader.
pub fn start_program(command: &mut Command) -> Result<Workload> {
    let piped = Piped::spawn(workload_command(command)).context("starting the program")?;
    Ok(Workload {
        _resumed: None,
        piped,
    })
}

pub fn start_workload(bin: &Path, args: &[&str]) -> Result<Workload> {
    let mut command = Command::new(bin.join("workload"));
    // Only stdio: fds this command inherited are not the workload's (a
    // suspend would refuse them).
    let piped =
        Piped::spawn(workload_command(&mut command).args(args)).context("starting the workload")?;
    Ok(Workload {
        _resumed: None,
        piped,
    })
}

/// How long a resume may take before it is killed (a hang must not stall
/// the benchmark).
pub const RESUME_LIMIT: Duration = Duration::from_secs(120);

/// How a child ended: its status, the moment, and its peak resident memory.
pub struct Ended {
    pub status: ExitStatus,
    pub at: Instant,
    /// Its `ru_maxrss` (KiB): its own high-water mark, and its reaped
    /// children's (none for `resume`: the process it brings back is not
    /// reaped by it).
    pub peak_kib: u64,
}

/// Waits for `child` to end, killing it after `limit`. It is waited without
/// being reaped first (`WNOWAIT`), so the watchdog can never signal a
/// reused pid; that wait also reads its resource usage (the raw `waitid`
/// takes a fifth argument for it, which the kernel fills even with
/// `WNOWAIT`).
pub fn wait_limited(child: &mut Child, limit: Duration) -> Result<Ended> {
    let pid = child.id() as libc::pid_t;
    let (stop, stopped) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if stopped.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            // SAFETY: our child, not reaped until this thread is joined.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    let ended = loop {
        // SAFETY: waiting (without reaping) for our own child; `info` and
        // `usage` are ours, and the kernel writes only them.
        let (got, usage) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let mut usage: libc::rusage = std::mem::zeroed();
            let got = libc::syscall(
                libc::SYS_waitid,
                libc::P_PID,
                pid as libc::id_t,
                &mut info as *mut libc::siginfo_t,
                libc::WEXITED | libc::WNOWAIT,
                &mut usage as *mut libc::rusage,
            );
            (got, usage)
        };
        if got == 0 {
            break Ok((Instant::now(), usage.ru_maxrss.max(0) as u64));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            break Err(e);
        }
    };
    drop(stop);
    let timed_out = watchdog.join().unwrap_or(false);
    let status = child.wait()?;
    let (at, peak_kib) = ended?;
    if timed_out {
        bail!("it did not end within {limit:?} and was killed ({status})");
    }
    Ok(Ended {
        status,
        at,
        peak_kib,
    })
}

/// A workload brought back by `suspend-agent resume`, and the command's
/// summary line and wall time.
pub struct Resumption {
    pub workload: Workload,
    pub summary: String,
    pub wall: f64,
    /// The `resume` command's peak resident memory (KiB): the resume from
    /// an image runs in it, not in the daemon.
    pub peak_kib: u64,
}

/// Makes this process the child subreaper: a resumed process is a child of
/// `resume` until that exits, then ours, so it can be killed and reaped by
/// its pid.
pub fn become_subreaper() -> Result<()> {
    suspend_harness::become_subreaper().map_err(|e| anyhow!("prctl(PR_SET_CHILD_SUBREAPER): {e}"))
}

/// Runs `suspend-agent resume IMAGE` for the workload that had `pid`
/// (call [`become_subreaper`] first). The resumed process takes over the
/// command's stdin and stdout: pipes we hold and talk to it through. Its
/// stderr is /dev/null, so the command's stderr pipe closes when the
/// command ends.
pub fn resume_workload(bin: &Path, pid: &str, image: &Path) -> Result<Resumption> {
    let started = Instant::now();
    let mut child = Command::new(bin.join("suspend-agent"))
        .arg("resume")
        .arg(image)
        .args(["--stderr", "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting suspend-agent resume")?;
    // Taken before the wait, which would close it; given back after.
    let stdin = child.stdin.take().context("resume stdin")?;
    let waited = wait_limited(&mut child, RESUME_LIMIT);
    // From here on, whatever happens, the resumed process is killed.
    let mut resumed = Adopted::new(pid.parse().context("the workload's pid")?);
    let Ended {
        status,
        at: ended,
        peak_kib,
    } = waited.context("suspend-agent resume")?;
    let wall = ended.duration_since(started).as_secs_f64();
    let mut stderr = child.stderr.take().context("resume stderr")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let text = rx
        .recv_timeout(Duration::from_secs(10))
        .context("the stderr of suspend-agent resume stayed open")?;
    if !status.success() {
        bail!(
            "suspend-agent resume failed ({status}): {}",
            text.trim_end()
        );
    }
    let summary = text
        .lines()
        .find(|l| l.contains("resumed pid "))
        .with_context(|| format!("no summary from suspend-agent resume: {text}"))?
        .to_owned();
    if !summary.contains(&format!("resumed pid {pid}:")) {
        bail!("resume brought back another pid than {pid}: {summary}");
    }
    if resumed.try_status().is_some() {
        bail!("the resumed workload (pid {pid}) died right after the resume");
    }
    child.stdin = Some(stdin);
    Ok(Resumption {
        workload: Workload {
            _resumed: Some(resumed),
            piped: Piped::new(child),
        },
        summary,
        wall,
        peak_kib,
    })
}
