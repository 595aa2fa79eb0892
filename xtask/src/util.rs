//! Running commands with clear errors, printing progress, and the few facts
//! about the machine every command needs (workspace root, `CARGO_HOME`, root
//! or not).
//!
//! Every command is echoed before it runs (`  $ cargo build …`) unless it is
//! a quiet probe, and every failure names the command line and its exit
//! status.

use std::{
    env,
    ffi::OsStr,
    fs, io,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set (relative to the
/// workspace root), else `<root>/target`.
pub fn target_dir() -> PathBuf {
    let root = workspace_root();
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// `$CARGO_HOME`, defaulting to `$HOME/.cargo` like cargo and
/// `suspend-agent/build.rs` do.
pub fn cargo_home() -> Result<PathBuf> {
    if let Some(home) = env::var_os("CARGO_HOME").filter(|home| !home.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".cargo"))
        .ok_or_else(|| anyhow!("neither CARGO_HOME nor HOME is set"))
}

/// A `cargo` command (the cargo that runs this xtask) started in the
/// workspace root, so `rust-toolchain.toml` picks the host toolchain.
pub fn cargo() -> Command {
    let program = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    cmd.current_dir(workspace_root());
    cmd
}

/// Whether this process runs with effective user id 0 (read from
/// `/proc/self/status`, no `unsafe` needed).
pub fn is_root() -> Result<bool> {
    let status = fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    // "Uid:\t<real>\t<effective>\t<saved>\t<fs>"
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .ok_or_else(|| anyhow!("no effective uid in /proc/self/status"))?;
    Ok(euid == "0")
}

/// The command line as a user would type it: `VAR=value program args…`.
pub fn display(cmd: &Command) -> String {
    let envs = cmd
        .get_envs()
        .filter_map(|(key, value)| Some((key, value?)))
        .map(|(key, value)| format!("{}={}", key.to_string_lossy(), quote(value)));
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program());
    let words = std::iter::once(quote(program)).chain(cmd.get_args().map(quote));
    envs.chain(words).collect::<Vec<_>>().join(" ")
}

/// Shell-style quoting, only where needed to read the command back.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The error for a command that could not even start.
fn spawn_error(cmd: &Command, error: io::Error) -> anyhow::Error {
    let program = cmd.get_program().to_string_lossy();
    if error.kind() == io::ErrorKind::NotFound {
        anyhow!(
            "cannot run `{}`: `{program}` is not installed or not in PATH",
            display(cmd)
        )
    } else {
        anyhow::Error::new(error).context(format!("cannot run `{}`", display(cmd)))
    }
}

/// Runs `cmd` with the terminal as its stdin/stdout/stderr after echoing
/// it; fails unless it exits successfully.
pub fn run(cmd: &mut Command) -> Result<()> {
    println!("  $ {}", display(cmd));
    let status = cmd.status().map_err(|error| spawn_error(cmd, error))?;
    if !status.success() {
        bail!("`{}` failed: {status}", display(cmd));
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its captured output, whatever its exit
/// status; fails only if it cannot start.
pub fn capture(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|error| spawn_error(cmd, error))
}

/// Runs `cmd` quietly and returns its stdout; fails, with its stderr, unless
/// it exits successfully.
pub fn output(cmd: &mut Command) -> Result<String> {
    let stdout = output_bytes(cmd)?;
    String::from_utf8(stdout).with_context(|| format!("`{}`: non-UTF-8 output", display(cmd)))
}

/// [`output`], as bytes.
pub fn output_bytes(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = capture(cmd)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        if stderr.is_empty() {
            bail!("`{}` failed: {}", display(cmd), out.status);
        }
        bail!("`{}` failed: {}:\n{stderr}", display(cmd), out.status);
    }
    Ok(out.stdout)
}

/// Runs `cmd` quietly as a yes/no check: its stdout if it succeeds, `None`
/// if it exits with an error. Fails only if it cannot start.
pub fn probe(cmd: &mut Command) -> Result<Option<String>> {
    let out = capture(cmd)?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// A duration for people: `0.4 s`, `41 s`, `2 min 05 s`.
pub fn fmt_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.1} s")
    } else if secs < 60.0 {
        format!("{secs:.0} s")
    } else {
        let secs = duration.as_secs();
        format!("{} min {:02} s", secs / 60, secs % 60)
    }
}

/// Prints a headline for a stage of a command (`==> building`).
pub fn stage(message: impl std::fmt::Display) {
    println!("==> {message}");
}
