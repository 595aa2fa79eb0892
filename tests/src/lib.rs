//! The harness of the root-only integration suite (`tests/tests/*.rs`):
//! finding the binaries, an agent daemon per test, workloads driven over
//! stdin/stdout, and readers for what the agent and eBPF report. What
//! `cargo xtask demo` and `bench` do as well (start a daemon, talk to a
//! workload, adopt a resumed process, read `/proc`) is `suspend-harness`;
//! this crate adds the assertions.
//!
//! Every helper that waits has a deadline and fails with what it saw; every
//! process a test starts is killed and reaped when its guard drops.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

pub use serde_json::Value;
use suspend_harness::{Piped, StartError, workload_command};
pub use suspend_harness::{WAIT, exit, procfs::pid_alive};

pub mod crash;
pub mod held;
pub mod scale;
pub mod vdso;

/// Says something about a test that must be seen even when it passes (the
/// test harness captures `eprintln!` of passing tests; a direct write to
/// stderr is not captured): what could not be checked on this kernel.
pub fn note(message: &str) {
    use std::io::Write as _;
    let name = thread::current().name().unwrap_or("test").to_owned();
    let _ = writeln!(std::io::stderr(), "NOTE [{name}]: {message}");
}

/// Fails the test unless it runs as root (it never skips silently).
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the integration suite needs root: run it with `cargo xtask test` as root"
    );
}

/// Where the built binaries are: `$SUSPEND_BIN_DIR` (set by `cargo xtask
/// test`), else the directory above this test executable's `deps/`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SUSPEND_BIN_DIR") {
        return dir.into();
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target profile directory")
        .to_path_buf()
}

/// A binary in [`bin_dir`]; fails with how to build it when missing.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build everything with `cargo xtask build`",
        path.display()
    );
    path
}

/// A finished command.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `suspend-agent suspend PID -D DIR EXTRA…`, with `--exit` added unless
/// `extra` says `--hold` or `--leave-running`: most tests resume the
/// process from its image, after the suspend killed it.
pub fn suspend(pid: u32, dir: &ImageDir, extra: &[&str]) -> Output {
    let pid = pid.to_string();
    let mut args = vec!["suspend", pid.as_str(), "-D", dir.arg()];
    if !extra
        .iter()
        .any(|a| matches!(*a, "--hold" | "--leave-running"))
    {
        args.push("--exit");
    }
    args.extend_from_slice(extra);
    agent(&args)
}

/// Runs `suspend-agent ARGS` to completion.
pub fn agent(args: &[&str]) -> Output {
    agent_with(args, &[])
}

/// Runs `suspend-agent ARGS` to completion with `env` added (the test
/// hooks, `RUST_LOG`).
pub fn agent_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(bin("suspend-agent"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running suspend-agent");
    let output = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let env: String = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!(
        "$ {env}suspend-agent {} -> {}\n{}{}",
        args.join(" "),
        output.code,
        output.stdout,
        output.stderr
    );
    output
}

/// `suspend-agent suspend PID --dry-run [EXTRA…]`.
pub fn dry_run(pid: u32, extra: &[&str]) -> Output {
    let pid = pid.to_string();
    let mut args = vec!["suspend", pid.as_str(), "--dry-run"];
    args.extend_from_slice(extra);
    agent(&args)
}

/// Polls `f` until it returns `Some`, for at most [`WAIT`].
pub fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    suspend_harness::poll(WAIT, Duration::from_millis(20), f)
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// The agent daemon, started for a test and stopped (SIGTERM, then SIGKILL)
/// when dropped; its log is printed if the test fails.
pub struct Daemon {
    daemon: suspend_harness::Daemon,
    log: PathBuf,
}

impl Daemon {
    /// Starts a daemon and waits until it answers on its control socket.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a daemon with extra environment (the test hooks).
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        Self::start_limited(env, None)
    }

    /// Starts a daemon with extra environment and, with `max_fds`, at most
    /// that many open descriptors (soft and hard limit).
    pub fn start_limited(env: &[(&str, &str)], max_fds: Option<u64>) -> Self {
        require_root();
        assert!(
            !suspend_harness::Daemon::answering(),
            "an agent daemon is already running: stop it before running the suspend integration suite"
        );
        // One log per daemon, named after the test (libtest names the
        // thread after it); a failing test prints it.
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let test = thread::current()
            .name()
            .unwrap_or("test")
            .replace("::", "-");
        let log = std::env::temp_dir().join(format!("suspend-test-daemon-{test}-{n}.log"));
        let file = std::fs::File::create(&log).expect("daemon log");
        match suspend_harness::Daemon::start(&bin("suspend-agent"), env, max_fds, file) {
            Ok(daemon) => Self { daemon, log },
            Err(StartError::Spawn { source, .. }) => panic!("starting the agent daemon: {source}"),
            Err(e) => panic!("{e}\n--- its log:\n{}", log_tail(&log)),
        }
    }

    /// Everything the daemon logged (debug lines left out).
    pub fn log(&self) -> String {
        log_lines(&self.log).join("\n")
    }

    /// The last lines of this daemon's log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Stops the daemon (SIGTERM) and waits for it.
    pub fn stop(mut self) {
        self.daemon.stop();
    }

    /// Kills the daemon with SIGKILL (no clean-up at all) and reaps it.
    pub fn kill(mut self) {
        self.daemon.kill();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.daemon.stop();
        if thread::panicking() {
            eprintln!(
                "--- agent daemon log ({}):\n{}\n---",
                self.log.display(),
                self.log_tail()
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// The lines of a daemon's log, debug lines left out.
fn log_lines(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| !l.contains(" DEBUG]"))
        .map(str::to_owned)
        .collect()
}

/// The last 40 lines of [`log_lines`].
fn log_tail(log: &Path) -> String {
    let lines = log_lines(log);
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A process under test, talked to over stdin/stdout; killed and reaped when
/// dropped.
pub struct Proc {
    /// The process itself, or for a resumed one the `resume` command that
    /// created it (the process is then our child through the subreaper).
    piped: Piped,
    resumed: bool,
    /// A resumed process's exit was collected: its pid may be reused (by
    /// its own next resume), so it must not be killed by pid again.
    reaped: bool,
    pub pid: u32,
    /// Everything it printed so far.
    pub seen: Vec<String>,
}

impl Proc {
    /// Starts `program ARGS`.
    pub fn spawn(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Self {
        let mut cmd = Command::new(program);
        cmd.args(args);
        Self::spawn_command(cmd)
    }

    pub fn spawn_command(mut cmd: Command) -> Self {
        // Only stdio: whatever else the test runner inherited (a CI's
        // pipes) is not the workload's.
        let piped = Piped::spawn(workload_command(&mut cmd).stderr(Stdio::inherit()))
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let pid = piped.id();
        Self {
            piped,
            resumed: false,
            reaped: false,
            pid,
            seen: Vec::new(),
        }
    }

    /// Runs `suspend-agent resume DIR` with piped stdio (which the resumed
    /// process takes over) and returns the resumed process, `pid`. Panics
    /// unless the command succeeds. This test process becomes a child
    /// subreaper, so the resumed process is our child once `resume` exits.
    pub fn resume(dir: &Path, pid: u32, env: &[(&str, &str)]) -> Self {
        let code = Self::try_resume(dir, env).map(|mut p| {
            p.pid = pid;
            p
        });
        match code {
            Ok(p) => p,
            Err(code) => panic!("suspend-agent resume {} exited with {code}", dir.display()),
        }
    }

    /// Like [`Proc::resume`]; `Err(exit code)` when the command fails.
    pub fn try_resume(dir: &Path, env: &[(&str, &str)]) -> Result<Self, i32> {
        let mut cmd = Command::new(bin("suspend-agent"));
        cmd.arg("resume").arg(dir).envs(env.iter().copied());
        Self::try_resume_command(cmd)
    }

    /// Like [`Proc::resume`], the resume command in a session keyring of
    /// its own holding one key, `description` (what root's login session
    /// may hold).
    pub fn resume_with_session_key(
        dir: &Path,
        pid: u32,
        description: &'static std::ffi::CStr,
    ) -> Self {
        use std::os::unix::process::CommandExt as _;
        let mut cmd = Command::new(bin("suspend-agent"));
        cmd.arg("resume").arg(dir);
        // SAFETY: two system calls between fork and exec, no allocation.
        unsafe {
            cmd.pre_exec(move || {
                let secret = b"secret";
                let name = c"suspend-test:resume-session";
                let ring = libc::syscall(libc::SYS_keyctl, 1 as libc::c_long, name.as_ptr());
                let key = libc::syscall(
                    libc::SYS_add_key,
                    c"user".as_ptr(),
                    description.as_ptr(),
                    secret.as_ptr(),
                    secret.len(),
                    -3 as libc::c_long,
                );
                if ring < 0 || key < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut proc = Self::try_resume_command(cmd)
            .unwrap_or_else(|code| panic!("suspend-agent resume exited with {code}"));
        proc.pid = pid;
        proc
    }

    fn try_resume_command(cmd: Command) -> Result<Self, i32> {
        suspend_harness::become_subreaper().expect("prctl(PR_SET_CHILD_SUBREAPER)");
        let mut proc = Self::spawn_command(cmd);
        let status = proc
            .piped
            .child()
            .wait()
            .expect("waiting for suspend-agent resume");
        match status.code() {
            Some(0) => {
                proc.resumed = true;
                proc.pid = 0;
                Ok(proc)
            }
            code => Err(code.unwrap_or(-1)),
        }
    }

    /// For a resumed process: its exit status if it has ended.
    fn try_wait_resumed(&mut self) -> Option<i32> {
        if self.reaped {
            return Some(-1);
        }
        let status = suspend_harness::try_reap(self.pid);
        // Ended, or not ours (already reaped): never to be killed by pid.
        self.reaped = status.is_some();
        status
    }

    /// The next line starting with `prefix` (earlier lines are kept in
    /// `seen`).
    pub fn expect(&mut self, prefix: &str) -> String {
        let got = self.piped.expect(prefix, WAIT, |line| {
            eprintln!("[pid {}] {line}", self.pid);
            self.seen.push(line.to_owned());
        });
        match got {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "pid {}: no line starting with {prefix:?} within {WAIT:?}; it printed: {:#?}",
                self.pid, self.seen
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Its output ended: it exited or died. Say how.
                let mut how = "its output was closed".to_owned();
                for _ in 0..200 {
                    if let Some(code) = self.try_status() {
                        how = match code {
                            c if c > 128 => format!("it died of signal {}", c - 128),
                            -1 => "it ended (its status was collected elsewhere)".into(),
                            c => format!("it exited with status {c}"),
                        };
                        break;
                    }
                    thread::sleep(Duration::from_millis(10));
                }
                panic!(
                    "pid {}: ended before a line starting with {prefix:?}: {how}; it printed: {:#?}",
                    self.pid, self.seen
                )
            }
        }
    }

    /// Whether it prints nothing for `d` (a line that comes is kept in
    /// `seen` and makes it `false`).
    pub fn silent_for(&mut self, d: Duration) -> bool {
        match self.piped.next_line(d) {
            Ok(line) => {
                eprintln!("[pid {}] {line}", self.pid);
                self.seen.push(line);
                false
            }
            Err(_) => true,
        }
    }

    /// Sends one command line.
    pub fn send(&mut self, command: &str) {
        self.piped.send(command).unwrap_or_else(|e| {
            panic!(
                "pid {}: writing {command:?}: {e}; it printed: {:#?}",
                self.pid, self.seen
            )
        });
    }

    /// Sends one command line to a process that may already have been
    /// killed: whether it could be written.
    pub fn try_send(&mut self, command: &str) -> bool {
        self.piped.send(command).is_ok()
    }

    /// Sends `command` and returns the next line starting with `prefix`.
    pub fn ask(&mut self, command: &str, prefix: &str) -> String {
        self.send(command);
        self.expect(prefix)
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        if self.resumed {
            return self.try_wait_resumed().is_none();
        }
        matches!(self.piped.child().try_wait(), Ok(None))
    }

    /// Sends `exit` and asserts that the workload's own final check passed
    /// (exit status 0).
    pub fn exit_ok(mut self) {
        self.send("exit");
        let code = self.wait_exit();
        assert_eq!(
            code, 0,
            "pid {}: its own final check failed: {:#?}",
            self.pid, self.seen
        );
    }

    /// Its exit status if it has ended: the exit code, 128 + the signal
    /// that killed it, or -1 if it was collected elsewhere.
    fn try_status(&mut self) -> Option<i32> {
        if self.resumed {
            return self.try_wait_resumed();
        }
        let status = self.piped.child().try_wait().ok().flatten()?;
        Some(suspend_harness::exit_code(status))
    }

    /// Waits for it to exit; its exit status as [`Proc::try_status`] says.
    pub fn wait_exit(&mut self) -> i32 {
        self.piped.close_stdin();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(code) = self.try_status() {
                // Collect what is left of its output.
                while let Ok(line) = self.piped.next_line(Duration::from_millis(100)) {
                    eprintln!("[pid {}] {line}", self.pid);
                    self.seen.push(line);
                }
                return code;
            }
            assert!(Instant::now() < deadline, "pid {} did not exit", self.pid);
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.resumed && self.pid != 0 && self.try_wait_resumed().is_none() {
            // Killed and reaped by its pid: the process this test resumed.
            suspend_harness::kill_and_reap(self.pid);
        }
        // Then `piped` kills and reaps the process (or the `resume`
        // command, reaped already).
    }
}

/// Kills a process that is not our child (e.g. a workload's fork) when
/// dropped.
pub struct KillOnDrop(Option<std::os::fd::OwnedFd>);

impl KillOnDrop {
    /// Holds `pid` through a pidfd taken now, so that the kill on drop
    /// reaches this process and never one that got its pid later.
    pub fn new(pid: u32) -> Self {
        use std::os::fd::FromRawFd as _;
        // SAFETY: pidfd_open takes no pointers.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0u32) };
        if fd < 0 {
            return Self(None); // already gone
        }
        // SAFETY: a new fd, ours alone.
        Self(Some(unsafe {
            std::os::fd::OwnedFd::from_raw_fd(fd as i32)
        }))
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd as _;
        if let Some(fd) = &self.0 {
            // SAFETY: a signal through a pidfd we own; no siginfo passed.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0u32,
                )
            };
        }
    }
}

/// Queues `signal` to `pid` with `si_code = SI_QUEUE` and `value`, the way
/// the agent does, but with whatever value a test chooses.
pub fn sigqueue(pid: u32, signal: i32, value: u64) {
    // SAFETY: siginfo_t is plain data; zero is valid.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    si.si_signo = signal;
    si.si_code = libc::SI_QUEUE;
    // SAFETY: si_pid/si_uid at 16/20 and si_value at 24 are inside siginfo_t.
    unsafe {
        let raw = (&raw mut si).cast::<u8>();
        raw.add(16)
            .cast::<i32>()
            .write_unaligned(std::process::id() as i32);
        raw.add(24).cast::<u64>().write_unaligned(value);
    }
    // SAFETY: rt_sigqueueinfo with a valid siginfo.
    let rc = unsafe { libc::syscall(libc::SYS_rt_sigqueueinfo, pid as i32, signal, &raw const si) };
    assert_eq!(
        rc,
        0,
        "rt_sigqueueinfo({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// Parses `key=value` words of a line.
pub fn field<'a>(line: &'a str, key: &str) -> &'a str {
    suspend_harness::field(line, key).unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

/// The `ready pid=N` line's pid.
pub fn ready_pid(proc: &mut Proc) -> u32 {
    field(&proc.expect("ready"), "pid").parse().expect("pid")
}

/// Starts one-feature program `name` (`tests/c/features`), checks the first
/// line it says (`expect` as given: `expect restored`, `expect refused
/// …`) and waits for its `ready PID`: it and its pid. A daemon must run.
pub fn feature(name: &str, expect: &str) -> (Proc, u32) {
    let mut w = Proc::spawn(bin_dir().join(format!("feature_{name}")), &[]);
    assert_eq!(w.expect(""), expect, "{name}: {:#?}", w.seen);
    let line = w.expect("");
    let pid = line
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{name}: {line:?}, not `ready PID`"));
    (w, pid)
}

/// Python under the preload shim running `script`; returns it and its pid
/// once registered.
pub fn python(script: &str) -> (Proc, u32) {
    let mut cmd = Command::new(bin("suspend-agent"));
    cmd.args(["run", "--", "python3", "-c", script]);
    let mut py = Proc::spawn_command(cmd);
    let pid = ready_pid(&mut py);
    wait_for("the preloaded python to register", || registry_entry(pid));
    (py, pid)
}

/// The registry entry of `pid` as `suspend-agent list --json` shows it.
pub fn registry_entry(pid: u32) -> Option<Value> {
    let out = agent(&["list", "--json"]);
    assert_eq!(out.code, 0, "list --json failed: {}", out.stderr);
    let all: Value = serde_json::from_str(&out.stdout).expect("list --json is JSON");
    all.as_array()
        .expect("array")
        .iter()
        .find(|e| e["pid"] == pid)
        .cloned()
}

/// Counts eBPF kept for real-time signal `signal` to `pid`, read with
/// `bpftool -j map dump` on the pinned map (named BTF fields): (generated,
/// delivered).
pub fn signal_counts(pid: u32, signal: u32) -> (u64, u64) {
    let out = Command::new("bpftool")
        .args(["-j", "map", "dump", "pinned", "/sys/fs/bpf/suspend/signals"])
        .output()
        .expect("running bpftool (installed by `cargo xtask setup`)");
    assert!(
        out.status.success(),
        "bpftool map dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    all.as_array()
        .expect("array")
        .iter()
        .map(|e| &e["formatted"])
        .find(|f| f["key"]["pid"] == pid && f["key"]["signal"] == signal)
        .map(|f| {
            (
                f["value"]["generated"].as_u64().unwrap_or(0),
                f["value"]["delivered"].as_u64().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0))
}

/// A fresh path for an image, in a directory removed when dropped.
pub struct ImageDir {
    root: PathBuf,
    pub path: PathBuf,
}

impl ImageDir {
    pub fn new(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("suspend-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("image parent");
        Self {
            path: root.join("image"),
            root,
        }
    }

    /// The parent directory (to look for leftovers).
    pub fn parent(&self) -> &Path {
        &self.root
    }

    pub fn arg(&self) -> &str {
        self.path.to_str().expect("UTF-8 path")
    }

    /// Entries of the parent directory: empty when a failed dump left
    /// nothing behind.
    pub fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(&self.root)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for ImageDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A copy of the image in `image`, changed by `edit`, must be refused by
/// `resume` with `code` and a message containing `needle`, and nothing
/// created (no process `pid` unless `code` is 10, pid in use).
pub fn refused(
    image: &Path,
    pid: u32,
    name: &str,
    code: i32,
    needle: &str,
    edit: impl FnOnce(&Path),
) {
    let copy = ImageDir::new(name);
    let status = Command::new("cp")
        .arg("-a")
        .arg(image)
        .arg(&copy.path)
        .status()
        .expect("cp");
    assert!(status.success());
    edit(&copy.path);
    let out = agent(&["resume", copy.arg()]);
    assert_eq!(out.code, code, "{name}: {out:?}");
    assert!(
        out.stderr.contains(needle),
        "{name}: the message must say {needle:?}: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("nothing was created"),
        "{name}: {}",
        out.stderr
    );
    if code != 10 {
        assert!(!pid_alive(pid), "{name}: a process was created");
    }
}

/// Flips one bit of the byte at `at` of `path`.
pub fn flip_byte(path: &Path, at: u64) {
    use std::os::unix::fs::FileExt as _;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).expect("read");
    b[0] ^= 0x40;
    f.write_all_at(&b, at).expect("write");
}

/// Replaces `from` by `to` in the first `kind` record of the image in
/// `dir` and recomputes that line's checksum, as anyone able to write the
/// image could (its signature cannot be made again without the key).
pub fn rewrite_record(dir: &Path, kind: &str, from: &str, to: &str) {
    let meta = dir.join("meta.jsonl");
    let text = std::fs::read_to_string(&meta).expect("meta.jsonl");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let tag = format!("{{\"record\":\"{kind}\"");
    let line = lines
        .iter_mut()
        .find(|l| l.split_once(' ').is_some_and(|(_, j)| j.starts_with(&tag)))
        .unwrap_or_else(|| panic!("no {kind} record"));
    let (_, json) = line.split_once(' ').expect("a record line");
    assert!(json.contains(from), "the {kind} record holds no {from:?}");
    let json = json.replacen(from, to, 1);
    *line = format!(
        "{:016x} {json}",
        xxhash_rust::xxh3::xxh3_64(json.as_bytes())
    );
    std::fs::write(&meta, lines.join("\n") + "\n").expect("write meta.jsonl");
}

/// The workload's `state` line (the answer to `command`) once its
/// on_resume has run `resumes` times (on_resume runs on the client's helper
/// thread, just after the resume).
pub fn state_after(w: &mut Proc, command: &str, resumes: u32) -> String {
    let mut last = String::new();
    for _ in 0..250 {
        last = w.ask(command, "state");
        if field(&last, "resume") == resumes.to_string() {
            return last;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("on_resume did not run {resumes} time(s): {last}");
}

/// `suspend-agent inspect DIR --json`, which verifies every checksum.
pub fn inspect(dir: &Path) -> Value {
    let out = agent(&["inspect", dir.to_str().expect("UTF-8"), "--json"]);
    assert_eq!(out.code, 0, "inspect refused the image: {}", out.stderr);
    serde_json::from_str(&out.stdout).expect("inspect --json is JSON")
}

/// The bytes of page `page` of the mapping starting at `start`, as the
/// image holds them (its run decompressed, if it was compressed); `None`
/// if that page was not saved.
pub fn image_page(dir: &Path, start: u64, page: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt as _;
    let meta = std::fs::read_to_string(dir.join("meta.jsonl")).expect("meta.jsonl");
    for line in meta.lines() {
        let (_, json) = line.split_once(' ')?;
        let record: Value = serde_json::from_str(json).ok()?;
        if record["record"] != "mapping" || record["start"] != start {
            continue;
        }
        for run in record["pages"].as_array()? {
            let first = run["first_page"].as_u64()?;
            let count = run["pages"].as_u64()?;
            if (first..first + count).contains(&page) {
                let pages = std::fs::File::open(dir.join("pages.img")).ok()?;
                let at = run["at"].as_u64()?;
                let mut buf = vec![0u8; run["stored"].as_u64().unwrap_or(count * 4096) as usize];
                pages.read_exact_at(&mut buf, at).ok()?;
                if run["stored"].is_u64() {
                    buf = zstd::bulk::decompress(&buf, (count * 4096) as usize).ok()?;
                }
                let from = ((page - first) * 4096) as usize;
                return Some(buf[from..from + 4096].to_vec());
            }
        }
        return None;
    }
    None
}

/// The byte that fills page `page` of the workload's `--layout` region
/// `region` (the workload must fill them with it; the dump tests look for it
/// in the image).
pub fn layout_byte(region: u8, page: usize) -> u8 {
    region.wrapping_mul(31).wrapping_add((page % 251) as u8) | 1
}

/// What the self-checking workloads record of the handshake: they agree to
/// every suspension and count both callbacks; `state` reports the counts.
pub mod handshake {
    use std::sync::atomic::{AtomicU32, Ordering};

    use suspend_client::{Decision, Handlers, ResumeInfo, SuspendRequest};

    static SUSPENDS: AtomicU32 = AtomicU32::new(0);
    static RESUMES: AtomicU32 = AtomicU32::new(0);
    static REASON: AtomicU32 = AtomicU32::new(u32::MAX);

    fn on_suspend(_: &SuspendRequest) -> Decision {
        SUSPENDS.fetch_add(1, Ordering::SeqCst);
        Decision::Ready
    }

    fn on_resume(info: &ResumeInfo) {
        // The reason first: the count tells a reader this resume is done.
        REASON.store(info.reason_code, Ordering::SeqCst);
        RESUMES.fetch_add(1, Ordering::SeqCst);
    }

    /// Callbacks that say ready and count.
    pub fn counting() -> Handlers {
        Handlers {
            on_suspend,
            on_resume,
        }
    }

    /// The line a workload answers `state` with:
    /// `state suspend=N resume=N reason=NAME`.
    pub fn state() -> String {
        format!(
            "state suspend={} resume={} reason={}",
            SUSPENDS.load(Ordering::SeqCst),
            RESUMES.load(Ordering::SeqCst),
            reason_name(REASON.load(Ordering::SeqCst))
        )
    }

    /// A resume reason code as the tests spell it (`none`: not told yet).
    pub fn reason_name(code: u32) -> &'static str {
        match code {
            0 => "restored",
            1 => "continued",
            2 => "aborted",
            _ => "none",
        }
    }
}

/// `fcntl(fd, cmd, …)` with a write lock on bytes `start..start+len`
/// (`cmd`: `F_SETLK` for a POSIX record lock, `F_OFD_SETLK` for an OFD
/// lock); the call's result.
pub fn write_lock(fd: i32, cmd: i32, start: i64, len: i64) -> i32 {
    // SAFETY: a flock struct on the stack for fcntl.
    unsafe {
        let mut l: libc::flock = std::mem::zeroed();
        l.l_type = libc::F_WRLCK as i16;
        l.l_whence = libc::SEEK_SET as i16;
        l.l_start = start;
        l.l_len = len;
        libc::fcntl(fd, cmd, &l)
    }
}

/// Which of the three locks `locks` took on `path` another process can
/// take now: `(flock, posix, ofd)`, each `true` if it got it.
pub fn lockable(path: &str) -> (bool, bool, bool) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("the lock file");
    use std::os::fd::AsRawFd as _;
    let fd = f.as_raw_fd();
    let try_lock = |cmd, start| write_lock(fd, cmd, start, 10) == 0;
    // SAFETY: flock on our own descriptor (released when it closes).
    let flock = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0;
    (
        flock,
        try_lock(libc::F_SETLK, 0),
        try_lock(libc::F_OFD_SETLK, 10),
    )
}

/// A WAL-mode sqlite database with a transaction open (500 rows inserted,
/// not committed), waiting for a line on stdin to commit.
pub const SQLITE_WRITER: &str = r#"
import os, sqlite3, sys
db = sys.argv[1] if len(sys.argv) > 1 else os.environ["DB"]
c = sqlite3.connect(db, isolation_level=None)
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
c.execute("INSERT INTO t VALUES (0)")
c.execute("BEGIN IMMEDIATE")
for i in range(500):
    c.execute("INSERT INTO t VALUES (?)", (i + 1,))
print(f"ready pid={os.getpid()}", flush=True)
sys.stdin.readline()
c.execute("COMMIT")
print(f"committed rows={c.execute('SELECT COUNT(*) FROM t').fetchone()[0]}", flush=True)
sys.stdin.readline()
"#;

/// Tries to write to `db` from another process: `busy`, or `wrote`.
pub const SQLITE_OTHER: &str = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=0.2, isolation_level=None)
try:
    c.execute("INSERT INTO t VALUES (-1)")
    print("wrote")
except sqlite3.OperationalError as e:
    print("busy" if "locked" in str(e) or "busy" in str(e) else f"error {e}")
"#;
