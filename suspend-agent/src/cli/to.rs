//! `suspend-agent suspend PID --to HOST[:DIR]`: a process moved to another
//! machine. It is held here first, its image checked as one that must
//! resume elsewhere (what an image cannot hold refused before anything is
//! frozen); the image goes as one `send` stream into a command run on
//! HOST through ssh (`suspend-agent resume -`, or `receive DIR` and
//! `resume DIR`), which says when the process runs there. Only then is it
//! ended here. If the other machine refuses or fails it, or the stream
//! breaks before it was all sent, it is resumed here (exit 11). If the
//! transport itself failed once the whole stream was sent, whether it
//! runs there cannot be told from here: it stays held, and the message
//! says so (exit 1) — two copies of a process are worse than a wait.

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

/// What the remote command prints once the process runs there.
const RUNNING: &str = "suspend-agent-moved: running";

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
/// an image and resumed, then [`RUNNING`] on its stdout.
pub fn remote_command(t: &Target) -> String {
    let agent = quote(&t.remote_agent);
    let output = quote(t.output.as_deref().unwrap_or("/dev/null"));
    let stdio = format!("--stdin /dev/null --stdout {output} --stderr {output}");
    let resume = match &t.dir {
        None => format!("{agent} resume {stdio} -"),
        Some(dir) => {
            let dir = quote(dir);
            format!("{agent} receive {dir} && {agent} resume {stdio} {dir}")
        }
    };
    format!("{resume} && echo {}", quote(RUNNING))
}

/// How the other machine's side ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// It said the process runs there.
    Running,
    /// It did not take it (its exit code, or the stream broke before its
    /// end): nothing of it runs there.
    NotThere(String),
    /// The whole stream went and the transport failed (ssh's 255, a
    /// signal) before it said: it may run there or not.
    Unknown(String),
}

/// What the other side's ending means, from what was seen: whether
/// [`RUNNING`] came, whether the whole stream was written, and the
/// transport's exit code (`None`: killed by a signal).
pub fn ending(said_running: bool, sent_whole: bool, code: Option<i32>) -> Ending {
    match (said_running, sent_whole, code) {
        (true, ..) => Ending::Running,
        (false, false, _) => Ending::NotThere("the stream broke before its end".into()),
        (false, true, Some(code)) if code != 0 && code != 255 => {
            Ending::NotThere(format!("it exited {code}"))
        }
        (false, true, Some(0)) => {
            Ending::Unknown("the command there ended well but never said the process runs".into())
        }
        (false, true, Some(code)) => Ending::Unknown(format!("the transport exited {code}")),
        (false, true, None) => Ending::Unknown("the transport was killed by a signal".into()),
    }
}

/// Moves held process `pid` (its image in `image`) to `t.host`; `made`:
/// the image directory was made for the move (removed once it runs
/// there).
pub fn finish(t: &Target, pid: u32, image: &Path, made: bool) -> anyhow::Result<u8> {
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
            return back_here(
                pid,
                &t.host,
                &format!("{program} could not be run"),
                image,
                made,
            );
        }
    };
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut said = false;
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) if l.trim() == RUNNING => said = true,
                Ok(l) => eprintln!("{l}"),
                Err(_) => break,
            }
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
    let said_running = reader.join().unwrap_or(false);
    if let Err(e) = &sent {
        eprintln!("suspend-agent: sending {}: {e}", image.display());
    }
    match ending(said_running, sent.is_ok(), status.code()) {
        Ending::Running => {
            let bytes = sent.as_ref().map_or(0, |m| m.bytes);
            hold::end(&record, std::time::Duration::from_secs(10)).map_err(|e| {
                anyhow::anyhow!(
                    "pid {pid} runs on {} now, but ending it here failed: {e}; it is still held \
                     here: kill it (never resume it here)",
                    t.host
                )
            })?;
            if made && let Err(e) = std::fs::remove_dir_all(image) {
                eprintln!("suspend-agent: removing {}: {e}", image.display());
            }
            println!(
                "pid {pid} moved to {}: it runs there; {:.1} MiB sent in {:.3} s; here it is ended{}",
                t.host,
                bytes as f64 / 1048576.0,
                started.elapsed().as_secs_f64(),
                if made {
                    String::new()
                } else {
                    format!(" (its image stays in {})", image.display())
                }
            );
            Ok(exit::OK)
        }
        Ending::NotThere(why) => back_here(pid, &t.host, &why, image, made),
        Ending::Unknown(why) => {
            eprintln!(
                "suspend-agent: pid {pid}: whether it runs on {} cannot be told from here ({why}); \
                 it stays held here, its image in {}: look there (`suspend-agent list`), then \
                 either `suspend-agent resume {pid}` here or end it here (kill {pid})",
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

    #[test]
    fn the_remote_command_resumes_the_stream_and_says_so_only_then() {
        let mut t = Target {
            host: "b".into(),
            dir: None,
            ssh: "ssh".into(),
            remote_agent: "suspend-agent".into(),
            output: None,
        };
        assert_eq!(
            remote_command(&t),
            "'suspend-agent' resume --stdin /dev/null --stdout '/dev/null' --stderr '/dev/null' - \
             && echo 'suspend-agent-moved: running'"
        );
        t.dir = Some("/img/it's".into());
        t.output = Some("/tmp/out".into());
        let c = remote_command(&t);
        assert!(
            c.starts_with("'suspend-agent' receive '/img/it'\\''s' && 'suspend-agent' resume"),
            "{c}"
        );
        assert!(c.contains("--stdout '/tmp/out' --stderr '/tmp/out' '/img/it'\\''s' && echo"));
    }

    #[test]
    fn only_a_failure_known_to_be_there_resumes_it_here() {
        assert_eq!(ending(true, true, Some(255)), Ending::Running);
        assert!(matches!(
            ending(false, false, Some(255)),
            Ending::NotThere(_)
        ));
        assert!(matches!(ending(false, true, Some(9)), Ending::NotThere(_)));
        assert!(matches!(ending(false, true, Some(255)), Ending::Unknown(_)));
        assert!(matches!(ending(false, true, None), Ending::Unknown(_)));
        assert!(matches!(ending(false, true, Some(0)), Ending::Unknown(_)));
    }
}
