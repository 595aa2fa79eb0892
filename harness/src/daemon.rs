//! The agent daemon a test or `cargo xtask demo`/`bench` starts, and stops
//! when it is done.

use std::{
    fs::File,
    io,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

use suspend_common::paths::CONTROL_SOCKET;

use crate::wait::poll;

/// How long a daemon asked to stop (SIGTERM) has before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often a starting or stopping daemon is looked at.
const EVERY: Duration = Duration::from_millis(20);

/// How long a daemon may take to answer at start: it loads and verifies
/// its eBPF programs, which in a TCG guest beside busy workloads took more
/// than the 20 s every other wait allows (twice in one CI run, with the
/// host loaded).
const START_WAIT: Duration = Duration::from_secs(60);

/// Why [`Daemon::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `suspend-agent daemon` could not be started at all.
    #[error("starting {} daemon", agent.display())]
    Spawn {
        agent: PathBuf,
        #[source]
        source: io::Error,
    },
    /// It exited before it answered on the control socket.
    #[error("the agent daemon exited ({0}) at start")]
    Exited(ExitStatus),
    /// It did not answer on the control socket in time (it was stopped);
    /// where each of its threads was waiting then.
    #[error("the agent daemon did not answer on {CONTROL_SOCKET} within {0:?}; its threads: {1}")]
    Silent(Duration, String),
}

/// An agent daemon this process started: stopped (SIGTERM, then SIGKILL
/// after 10 s) when dropped.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    /// Whether an agent daemon, ours or not, answers on the control socket.
    pub fn answering() -> bool {
        UnixStream::connect(CONTROL_SOCKET).is_ok()
    }

    /// Runs `AGENT daemon` with `env` added and its stderr into `log`, and
    /// with `max_fds`, at most that many open descriptors (soft and hard
    /// limit); returns once it answers on the control socket, within
    /// [`START_WAIT`].
    pub fn start(
        agent: &Path,
        env: &[(&str, &str)],
        max_fds: Option<u64>,
        log: File,
    ) -> Result<Self, StartError> {
        let mut cmd = Command::new(agent);
        if let Some(max) = max_fds {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: setrlimit is async-signal-safe and touches only the
            // child's limits.
            unsafe {
                cmd.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: max,
                        rlim_max: max,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::last_os_error())
                    }
                })
            };
        }
        let child = cmd
            .arg("daemon")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|source| StartError::Spawn {
                agent: agent.to_owned(),
                source,
            })?;
        // Stopped on every early return from here on.
        let mut daemon = Self { child: Some(child) };
        let answered = poll(START_WAIT, EVERY, || {
            if let Some(Ok(Some(status))) = daemon.child.as_mut().map(Child::try_wait) {
                return Some(Err(StartError::Exited(status)));
            }
            Self::answering().then_some(Ok(()))
        });
        answered.unwrap_or_else(|| {
            let pid = daemon.child.as_ref().map_or(0, Child::id);
            Err(StartError::Silent(START_WAIT, threads_waiting(pid)))
        })?;
        Ok(daemon)
    }

    /// Asks it to stop (SIGTERM) and waits for it; kills it if it has not
    /// stopped after 10 s. Does nothing once it has ended or been stopped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return; // reaped: its pid may be another process's now
        }
        // SAFETY: signalling our own child, not reaped yet (its pid is
        // still its own).
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        if poll(STOP_GRACE, EVERY, || child.try_wait().ok().flatten()).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it with SIGKILL (no clean-up at all) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Each thread of `pid`: its tid, name, state and the kernel function it
/// waits in (`wchan`), and its kernel stack where readable; for a daemon
/// that does not answer.
fn threads_waiting(pid: u32) -> String {
    let read = |path: String| std::fs::read_to_string(path).unwrap_or_default();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("pid {pid} has no /proc entry");
    };
    let mut said = Vec::new();
    for task in tasks.flatten() {
        let dir = task.path().display().to_string();
        let state = read(format!("{dir}/stat"));
        let state = state
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').next())
            .unwrap_or("?")
            .to_owned();
        said.push(format!(
            "\n  {} {} {state} in {}\n{}",
            task.file_name().to_string_lossy(),
            read(format!("{dir}/comm")).trim(),
            read(format!("{dir}/wchan")),
            read(format!("{dir}/stack"))
        ));
    }
    said.concat()
}
