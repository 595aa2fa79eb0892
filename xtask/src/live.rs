//! Running the agent and workloads for `demo` and `bench`: a daemon
//! started (or the running one used) and stopped, workloads driven over
//! stdin/stdout, and children killed and reaped however the command ends.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::util;

const CONTROL_SOCKET: &str = "/run/suspend/control.sock";

/// A child process killed and reaped when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The daemon the demo started: stopped with SIGTERM when dropped.
pub struct DaemonGuard(Child);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        // `kill` from procps: no unsafe needed to send SIGTERM.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What keeps a workload's process from outliving us (held for its drop).
#[allow(dead_code, reason = "held only to be dropped with the workload")]
enum Owner {
    Started(Guard),
    Resumed(Resumed),
}

/// The workload, driven over stdin/stdout.
pub struct Workload {
    _owner: Owner,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Workload {
    fn new(owner: Owner, stdin: ChildStdin, stdout: ChildStdout) -> Self {
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            _owner: owner,
            stdin,
            lines,
        }
    }

    pub fn expect(&self, prefix: &str) -> Result<String> {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .with_context(|| format!("the workload did not print {prefix:?}"))?;
            if line.starts_with(prefix) {
                return Ok(line);
            }
        }
    }

    pub fn ask(&mut self, command: &str, prefix: &str) -> Result<String> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        self.expect(prefix)
    }
}

pub fn start_daemon(bin: &Path) -> Result<Option<DaemonGuard>> {
    if UnixStream::connect(CONTROL_SOCKET).is_ok() {
        util::stage("using the agent daemon that is already running");
        return Ok(None);
    }
    let log: PathBuf = util::target_dir().join("demo-daemon.log");
    util::stage(format!(
        "starting the agent daemon (log: {})",
        log.display()
    ));
    let child = Command::new(bin.join("suspend-agent"))
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?)
        .spawn()
        .context("starting suspend-agent daemon")?;
    let guard = DaemonGuard(child);
    for _ in 0..200 {
        if UnixStream::connect(CONTROL_SOCKET).is_ok() {
            return Ok(Some(guard));
        }
        thread::sleep(Duration::from_millis(50));
    }
    bail!("the agent daemon did not start; see {}", log.display())
}

pub fn start_workload(bin: &Path, args: &[&str]) -> Result<Workload> {
    let mut command = Command::new(bin.join("workload"));
    // Only stdio: fds this command inherited are not the workload's (a
    // suspend would refuse them).
    // SAFETY: close_range is async-signal-safe and touches only fds.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the workload")?;
    let stdin = child.stdin.take().context("workload stdin")?;
    let stdout = child.stdout.take().context("workload stdout")?;
    Ok(Workload::new(Owner::Started(Guard(child)), stdin, stdout))
}

/// The process a `resume` brought back: our child (we are a child
/// subreaper), killed with SIGKILL by its pid and reaped when dropped —
/// only if it is still our child, so no other process is ever hit.
pub struct Resumed(pub libc::pid_t);

impl Resumed {
    /// Whether it has ended (and is now reaped), or is not our child.
    pub fn ended(&self) -> bool {
        let mut status = 0;
        // SAFETY: a non-blocking wait for one pid; `status` is ours.
        unsafe { libc::waitpid(self.0, &mut status, libc::WNOHANG) != 0 }
    }
}

impl Drop for Resumed {
    fn drop(&mut self) {
        if self.ended() {
            return;
        }
        // SAFETY: signalling and reaping our own child by its pid: until it
        // is reaped the pid cannot be reused.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(self.0, &mut status, 0);
        }
    }
}

/// How long a resume may take before it is killed (a hang must not stall
/// the benchmark).
pub const RESUME_LIMIT: Duration = Duration::from_secs(120);

/// Waits for `child` to end, killing it after `limit`; returns its status
/// and the moment it ended. It is waited without being reaped first
/// (`WNOWAIT`), so the watchdog can never signal a reused pid.
pub fn wait_limited(child: &mut Child, limit: Duration) -> Result<(ExitStatus, Instant)> {
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
        // SAFETY: waiting (without reaping) for our own child; `info` is
        // ours.
        let got = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if got == 0 {
            break Ok(Instant::now());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            break Err(e);
        }
    };
    drop(stop);
    let timed_out = watchdog.join().unwrap_or(false);
    let status = child.wait()?;
    let ended = ended?;
    if timed_out {
        bail!("it did not end within {limit:?} and was killed ({status})");
    }
    Ok((status, ended))
}

/// A workload brought back by `suspend-agent resume`, and the command's
/// summary line and wall time.
pub struct Resumption {
    pub workload: Workload,
    pub summary: String,
    pub wall: f64,
}

/// Makes this process the child subreaper: a resumed process is a child of
/// `resume` until that exits, then ours, so it can be killed and reaped by
/// its pid.
pub fn become_subreaper() -> Result<()> {
    // SAFETY: a plain prctl on this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) } != 0 {
        bail!(
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
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
    // Taken before the wait, which would close it.
    let stdin = child.stdin.take().context("resume stdin")?;
    let waited = wait_limited(&mut child, RESUME_LIMIT);
    // From here on, whatever happens, the resumed process is killed.
    let resumed = Resumed(pid.parse().context("the workload's pid")?);
    let (status, ended) = waited.context("suspend-agent resume")?;
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
    if resumed.ended() {
        bail!("the resumed workload (pid {pid}) died right after the resume");
    }
    let stdout = child.stdout.take().context("resume stdout")?;
    Ok(Resumption {
        workload: Workload::new(Owner::Resumed(resumed), stdin, stdout),
        summary,
        wall,
    })
}
