//! `suspend-agent suspend PID --to HOST[:DIR]`: a process moved to another
//! machine. It is held here first, its image checked as one that must
//! resume elsewhere (what an image cannot hold refused before anything is
//! frozen); the image goes as one `send` stream into a command run on
//! HOST through ssh (`suspend-agent resume -`, or `receive DIR` and
//! `resume DIR`), which says when the process runs there. Only then is it
//! ended here. If the other machine says it refused it with nothing
//! created (the exit codes of its receive or resume that mean so), or the
//! stream broke before it was all sent, it is resumed here (exit 11).
//! Anything else — the transport failed once the whole stream was sent,
//! the command there died without a word — and whether it runs there
//! cannot be told from here: it stays held, and the message says so (exit
//! 1). Two copies of a process are worse than a wait.

use std::{
    io::{BufRead as _, BufReader, BufWriter, Write as _},
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use crate::{
    exit,
    hold::{self, HeldRecord},
    image::{sign::Keys, stream},
};

/// What the remote command prints once the process runs there (its
/// resume exited 0, which it does only then).
const RUNNING: &str = "suspend-agent-moved: running";
/// What it prints when its receive or resume exited with a code that
/// means nothing was created (followed by the code).
const REFUSED: &str = "suspend-agent-moved: refused";

/// Where to, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    /// Where the image goes there; `None`: `resume -` (a directory under
    /// `/var/lib/suspend/received`, removed once it runs).
    pub dir: Option<String>,
    /// The command that runs a command on `host`, split on blanks
    /// (`ssh`, `ssh -p 2222`, …): run as `SSH HOST COMMAND`.
    pub ssh: String,
    /// `suspend-agent` there.
    pub remote_agent: String,
    /// The file its stdout and stderr go to there (`/dev/null` if none).
    pub output: Option<String>,
}

/// The ssh command when none is given: no prompt (its stdin is the
/// stream), and a dead peer noticed within a minute.
pub const DEFAULT_SSH: &str =
    "ssh -o BatchMode=yes -o ServerAliveInterval=15 -o ServerAliveCountMax=4";

/// `HOST[:DIR]` as `--to` takes it: DIR absolute.
pub fn parse_target(text: &str) -> Result<(String, Option<String>), String> {
    let (host, dir) = match text.split_once(':') {
        Some((host, dir)) => (host, Some(dir)),
        None => (text, None),
    };
    if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) {
        return Err(format!("{text:?}: not HOST or HOST:DIR"));
    }
    if let Some(dir) = dir
        && !dir.starts_with('/')
    {
        return Err(format!(
            "{text:?}: the directory on the other machine must be absolute"
        ));
    }
    Ok((host.to_owned(), dir.map(str::to_owned)))
}

/// `word` single-quoted for a POSIX shell (what ssh hands the command to).
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The command run on the other machine: the stream on its stdin, made
/// an image and resumed; then [`RUNNING`] on its stdout if the resume
/// exited 0, or [`REFUSED`] and the code if the receive or the resume
/// exited with one that means nothing was created: 1 and 9 from
/// `receive` (a target that exists, a stream refused), 2, 9 and 10 from
/// `resume` (a bad command line, an image refused, a pid in use; `resume
/// -` answers as `receive` for the stream). Any other ending says nothing.
pub fn remote_command(t: &Target) -> String {
    let agent = quote(&t.remote_agent);
    let output = quote(t.output.as_deref().unwrap_or("/dev/null"));
    let stdio = format!("--stdin /dev/null --stdout {output} --stderr {output}");
    let refused = quote(REFUSED);
    let resume = format!(
        "{agent} resume {stdio} {}; rc=$?; case $rc in 0) echo {};; 2|9|10) echo {refused} \
         $rc;; esac; exit $rc",
        t.dir.as_deref().map_or("-".to_owned(), quote),
        quote(RUNNING)
    );
    match &t.dir {
        None => resume,
        Some(dir) => format!(
            "{agent} receive {}; rc=$?; case $rc in 0) ;; 1|9) echo {refused} $rc; exit $rc;; \
             *) exit $rc;; esac; {resume}",
            quote(dir)
        ),
    }
}

/// What the other side said, from its stdout: [`RUNNING`], [`REFUSED`],
/// or neither.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Said {
    #[default]
    Nothing,
    Running,
    Refused,
}

/// How the other machine's side ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// It said the process runs there.
    Running,
    /// Nothing of it runs there: it said it refused it, or the stream
    /// broke before its end.
    NotThere(String),
    /// Neither is known: it may run there or not.
    Unknown(String),
}

/// What the other side's ending means, from what was seen: what it said,
/// whether the whole stream was written (a stream cut short is never
/// resumed: `receive` checks its end first), and the transport's exit
/// code (`None`: killed by a signal).
pub fn ending(said: Said, sent_whole: bool, code: Option<i32>) -> Ending {
    match (said, sent_whole, code) {
        (Said::Running, ..) => Ending::Running,
        (Said::Refused, ..) => Ending::NotThere(format!(
            "it refused it, nothing created there (exit {})",
            code.map_or("by a signal".to_owned(), |c| c.to_string())
        )),
        (Said::Nothing, false, _) => Ending::NotThere("the stream broke before its end".into()),
        (Said::Nothing, true, Some(code)) => Ending::Unknown(format!(
            "the command there ended with {code} without saying whether it runs"
        )),
        (Said::Nothing, true, None) => {
            Ending::Unknown("the transport was killed by a signal".into())
        }
    }
}

/// Checks, before anything is asked of the process, what the move needs
/// here: the keys an image is sent with.
pub fn preflight() -> anyhow::Result<()> {
    Keys::system()?.trusted()?;
    Ok(())
}

/// Moves held process `pid` (its image in `image`) to `t.host`; `made`:
/// the image directory was made for the move (removed once it runs
/// there). An error on the way leaves it held here, and says so.
pub fn finish(t: &Target, pid: u32, image: &Path, made: bool) -> anyhow::Result<u8> {
    // Interrupted from the terminal now, the move still ends with a word:
    // the transport (in the same process group) ends, and what is then
    // known decides.
    if let Err(e) = crate::sys::process::ignore_terminal_signals() {
        eprintln!("suspend-agent: {e}: an interrupt now would leave pid {pid} held, unsaid");
    }
    move_held(t, pid, image, made).map_err(|e| {
        e.context(format!(
            "pid {pid} stays held here, its image in {}: `suspend-agent resume {pid}` brings it \
             back here",
            image.display()
        ))
    })
}

fn move_held(t: &Target, pid: u32, image: &Path, made: bool) -> anyhow::Result<u8> {
    let Some(record) = HeldRecord::find(pid)? else {
        anyhow::bail!("pid {pid} is not held after its suspend: nothing was moved");
    };
    let trusted = Keys::system()?.trusted()?;
    let argv: Vec<&str> = t.ssh.split_whitespace().collect();
    let Some((program, options)) = argv.split_first() else {
        anyhow::bail!("--ssh is empty");
    };
    let command = remote_command(t);
    eprintln!(
        "suspend-agent: pid {pid} held; sending its image to {} (`{} {} {command}`)",
        t.host, t.ssh, t.host
    );
    let started = Instant::now();
    let mut child = match Command::new(program)
        .args(options)
        .arg(&t.host)
        .arg(&command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("suspend-agent: running {program}: {e}");
            let why = format!("{program} could not be run");
            return back_here(pid, &t.host, &why, image, made);
        }
    };
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut said = Said::Nothing;
        let mut input = BufReader::new(stdout);
        let mut line = Vec::new();
        // To the end, whatever the bytes: the last word counts.
        while input.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if text == RUNNING {
                said = Said::Running;
            } else if text.starts_with(REFUSED) {
                said = Said::Refused;
            } else {
                eprintln!("{text}");
            }
            line.clear();
        }
        said
    });
    let mut progress = super::Meter::new("sent");
    let sent = {
        let mut input = BufWriter::with_capacity(1 << 20, child.stdin.take().expect("piped"));
        stream::send(image, &mut input, &trusted, &mut |p| progress.tell(p)).and_then(|m| {
            input
                .flush()
                .map(|()| m)
                .map_err(stream::StreamError::Write)
        })
        // Dropped: the other side sees its end.
    };
    let status = child.wait()?;
    let said = reader.join().unwrap_or_default();
    if let Err(e) = &sent {
        eprintln!("suspend-agent: sending {}: {e}", image.display());
    }
    match ending(said, sent.is_ok(), status.code()) {
        Ending::Running => {
            let bytes = sent.as_ref().map_or(0, |m| m.bytes);
            hold::end(&record, std::time::Duration::from_secs(10)).map_err(|e| {
                anyhow::anyhow!(
                    "pid {pid} runs on {} now, but ending it here failed: {e}; it is still held \
                     here: `kill -9 {pid}` (never resume it here)",
                    t.host
                )
            })?;
            if made && let Err(e) = std::fs::remove_dir_all(image) {
                eprintln!("suspend-agent: removing {}: {e}", image.display());
            }
            let kept = if made {
                String::new()
            } else {
                format!(
                    " (its image stays in {}: never resume it here while it runs there)",
                    image.display()
                )
            };
            println!(
                "pid {pid} moved to {}: it runs there; {:.1} MiB sent in {:.3} s; here it is \
                 ended{kept}",
                t.host,
                bytes as f64 / 1048576.0,
                started.elapsed().as_secs_f64(),
            );
            Ok(exit::OK)
        }
        Ending::NotThere(why) => back_here(pid, &t.host, &why, image, made),
        Ending::Unknown(why) => {
            eprintln!(
                "suspend-agent: pid {pid}: whether it runs on {} cannot be told from here ({why}); \
                 it stays held here, its image in {}: look there (`suspend-agent list`), then \
                 either `suspend-agent resume {pid}` here or end it here (`kill -9 {pid}`)",
                t.host,
                image.display()
            );
            Ok(exit::ERROR)
        }
    }
}

/// The move failed and nothing of it runs on `host`: `pid` is resumed
/// here, its memory written back first (exit 11; the image made for the
/// move removed), or stays held if that fails (its own exit code).
fn back_here(pid: u32, host: &str, why: &str, image: &Path, made: bool) -> anyhow::Result<u8> {
    eprintln!("suspend-agent: pid {pid} not moved to {host} ({why}); resuming it here");
    let code = super::resume::resume_held(pid, true)?;
    if code != exit::OK {
        return Ok(code);
    }
    if made && let Err(e) = std::fs::remove_dir_all(image) {
        eprintln!("suspend-agent: removing {}: {e}", image.display());
    }
    eprintln!("suspend-agent: pid {pid} was not moved: it runs here again");
    Ok(exit::NOT_MOVED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_a_host_and_perhaps_an_absolute_directory() {
        assert_eq!(parse_target("b"), Ok(("b".into(), None)));
        assert_eq!(
            parse_target("root@b:/var/lib/img/w1"),
            Ok(("root@b".into(), Some("/var/lib/img/w1".into())))
        );
        assert!(parse_target("b:img").is_err());
        assert!(parse_target(":/x").is_err());
        assert!(parse_target("-oProxyCommand=x").is_err());
    }

    /// The remote command, run by sh with a stand-in for the agent whose
    /// receive and resume exit with the codes given: what it prints.
    fn said(receive: i32, resume: i32, dir: bool) -> (String, Option<i32>) {
        let t = Target {
            host: "b".into(),
            dir: dir.then(|| "/img/it's".into()),
            ssh: "ssh".into(),
            remote_agent: "agent".into(),
            output: None,
        };
        let script = format!(
            "agent() {{ case $1 in receive) return {receive};; resume) return {resume};; esac; }}; {}",
            remote_command(&t).replace("'agent'", "agent")
        );
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh");
        (
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            out.status.code(),
        )
    }

    #[test]
    fn the_remote_command_says_running_or_refused_only_when_it_knows() {
        let refused = |code: i32| format!("{REFUSED} {code}");
        assert_eq!(said(0, 0, false), (RUNNING.into(), Some(0)));
        assert_eq!(said(0, 10, false), (refused(10), Some(10)));
        assert_eq!(said(0, 9, false), (refused(9), Some(9)));
        // Killed, or an error that may come after the process ran: no word.
        assert_eq!(said(0, 137, false), (String::new(), Some(137)));
        assert_eq!(said(0, 1, false), (String::new(), Some(1)));
        assert_eq!(said(9, 0, true), (refused(9), Some(9)));
        assert_eq!(said(1, 0, true), (refused(1), Some(1)));
        assert_eq!(said(0, 0, true), (RUNNING.into(), Some(0)));
        assert_eq!(said(0, 10, true), (refused(10), Some(10)));
        assert_eq!(said(0, 139, true), (String::new(), Some(139)));
    }

    #[test]
    fn the_remote_command_quotes_what_it_is_given() {
        let t = Target {
            host: "b".into(),
            dir: Some("/img/it's".into()),
            ssh: "ssh".into(),
            remote_agent: "suspend-agent".into(),
            output: Some("/tmp/out".into()),
        };
        let c = remote_command(&t);
        assert!(
            c.starts_with(r"'suspend-agent' receive '/img/it'\''s'; rc=$?;"),
            "{c}"
        );
        assert!(
            c.contains(r"--stdout '/tmp/out' --stderr '/tmp/out' '/img/it'\''s'; rc=$?"),
            "{c}"
        );
    }

    #[test]
    fn only_a_failure_known_to_be_there_resumes_it_here() {
        assert_eq!(ending(Said::Running, true, Some(255)), Ending::Running);
        assert!(matches!(
            ending(Said::Refused, true, Some(9)),
            Ending::NotThere(_)
        ));
        assert!(matches!(
            ending(Said::Nothing, false, Some(255)),
            Ending::NotThere(_)
        ));
        // An exit code alone does not say: its agent may have died after
        // the process ran.
        assert!(matches!(
            ending(Said::Nothing, true, Some(9)),
            Ending::Unknown(_)
        ));
        assert!(matches!(
            ending(Said::Nothing, true, Some(255)),
            Ending::Unknown(_)
        ));
        assert!(matches!(
            ending(Said::Nothing, true, None),
            Ending::Unknown(_)
        ));
        assert!(matches!(
            ending(Said::Nothing, true, Some(0)),
            Ending::Unknown(_)
        ));
    }
}
