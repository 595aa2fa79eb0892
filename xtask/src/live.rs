//! Running the agent and workloads for `demo` and `bench`: a daemon
//! started (or the running one used) and stopped, workloads driven over
//! stdin/stdout, and children killed and reaped however the command ends.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
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

/// The workload, driven over stdin/stdout.
pub struct Workload {
    _child: Guard,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Workload {
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
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(Workload {
        _child: Guard(child),
        stdin,
        lines,
    })
}
