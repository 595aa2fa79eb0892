//! A child process talked to a line at a time: commands written to its
//! stdin, its stdout read on a thread of its own.

use std::{
    io::{self, BufRead as _, BufReader, Write as _},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc::{self, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

/// Starts `cmd`'s process as a workload: nothing but stdio (descriptors
/// this process inherited, a CI's pipes, are not a workload's, and a
/// suspend would refuse some of them), in a session of its own, as a
/// service or a shell's job would be (a resume from an image gives back
/// the session and group a process leads, and refuses the others).
pub fn workload_command(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: close_range and setsid are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            libc::setsid();
            Ok(())
        })
    }
}

/// The value of the first `key=value` word of `line`.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// A child process killed and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Once reaped, `kill` sends nothing: no other process is hit.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child with piped stdin and stdout, killed and reaped when dropped.
#[derive(Debug)]
pub struct Piped {
    child: ChildGuard,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Piped {
    /// Starts `cmd` with its stdin and stdout piped (its stderr is what
    /// `cmd` says).
    pub fn spawn(cmd: &mut Command) -> io::Result<Self> {
        let child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        Ok(Self::new(child))
    }

    /// Takes over `child` (started with piped stdin and stdout): its stdout
    /// is read from now on.
    pub fn new(mut child: Child) -> Self {
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            stdin: child.stdin.take(),
            child: ChildGuard(child),
            lines,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.0.id()
    }

    /// The process itself (to wait for it).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child.0
    }

    /// Writes `line` and a newline to its stdin.
    pub fn send(&mut self, line: &str) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "its stdin is closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    /// Closes its stdin: a reader of it sees the end.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next line it prints, within `limit`.
    pub fn next_line(&self, limit: Duration) -> Result<String, RecvTimeoutError> {
        self.lines.recv_timeout(limit)
    }

    /// The next line starting with `prefix`, within `limit`; every line
    /// read, that one included, is given to `seen` first.
    pub fn expect(
        &self,
        prefix: &str,
        limit: Duration,
        mut seen: impl FnMut(&str),
    ) -> Result<String, RecvTimeoutError> {
        let deadline = Instant::now() + limit;
        loop {
            let line = self.next_line(deadline.saturating_duration_since(Instant::now()))?;
            seen(&line);
            if line.starts_with(prefix) {
                return Ok(line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WAIT;

    #[test]
    fn fields_are_key_value_words() {
        let line = "state suspend=1 resume=2 reason=restored";
        assert_eq!(field(line, "resume"), Some("2"));
        assert_eq!(field(line, "reason"), Some("restored"));
        assert_eq!(field(line, "state"), None);
        assert_eq!(field("ready pid=42", "pid"), Some("42"));
    }

    #[test]
    fn a_child_is_asked_and_answers() {
        let mut cat = Piped::spawn(workload_command(&mut Command::new("cat"))).expect("cat");
        let mut seen = Vec::new();
        cat.send("one").unwrap();
        cat.send("ready pid=7").unwrap();
        let line = cat.expect("ready", WAIT, |l| seen.push(l.to_owned()));
        assert_eq!(line.as_deref(), Ok("ready pid=7"));
        assert_eq!(seen, ["one", "ready pid=7"]);
        cat.close_stdin();
        assert!(cat.send("gone").is_err());
        assert_eq!(
            cat.next_line(WAIT),
            Err(RecvTimeoutError::Disconnected),
            "its output ends with it"
        );
        assert!(cat.child().wait().unwrap().success());
    }
}
