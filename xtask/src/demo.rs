//! `cargo xtask demo`: the README's first command. An opted-in workload is
//! asked to suspend while it says busy, while it is inside a critical
//! section (the request waits for it), and when it is ready; `sleep`, which
//! never opted in, is asked too and left alone. Then the full cycle: the
//! workload is suspended to an image with `--exit` (and killed), the image
//! is inspected, the workload is resumed from it and reports that its state
//! is intact. Last, held (the default): a TCP client connects to it, it is
//! held while the client sends more, resumed in place, and the client gets
//! every answer.
//! Each step prints the command, its output and what its exit status
//! means.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use suspend_harness::{
    ChildGuard,
    exit::{BAD_IMAGE, BUSY, NO_DAEMON, NOT_OPTED_IN, OK, PID_IN_USE, REFUSED, TIMEOUT},
    field,
};

use crate::{
    build,
    live::{become_subreaper, resume_workload, start_daemon, start_workload},
    setup, util,
};

fn meaning(code: i32) -> &'static str {
    match code {
        OK => "done",
        NOT_OPTED_IN => "not opted in: cancelled, nothing was sent",
        BUSY => "busy",
        REFUSED => "refused",
        TIMEOUT => "timeout",
        NO_DAEMON => "no agent daemon",
        BAD_IMAGE => "image refused",
        PID_IN_USE => "pid in use",
        _ => "error",
    }
}

/// Runs `suspend-agent ARGS`, printing it and its output like a terminal:
/// progress (stderr) as it comes, then the result (stdout).
fn agent(bin: &Path, args: &[&str]) -> Result<i32> {
    println!("  $ suspend-agent {}", args.join(" "));
    let mut child = Command::new(bin.join("suspend-agent"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running suspend-agent")?;
    let stderr = child.stderr.take().context("stderr")?;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        println!("    {line}");
    }
    let out = child
        .wait_with_output()
        .context("waiting for suspend-agent")?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("    {line}");
    }
    let code = out.status.code().unwrap_or(-1);
    println!("    (exit {code}: {})", meaning(code));
    Ok(code)
}

fn expect_code(code: i32, want: i32) -> Result<()> {
    if code != want {
        bail!("expected exit {want} ({}), got {code}", meaning(want));
    }
    Ok(())
}

/// Asks the workload for its state until its on_resume has run (on the
/// client's helper thread, just after the resume: it may take a moment),
/// prints it, and fails unless it says restored and intact.
fn restored_intact(workload: &mut crate::live::Workload, what: &str) -> Result<()> {
    let mut state = workload.ask("check", "state")?;
    for _ in 0..100 {
        if state.contains("reason=restored") {
            break;
        }
        thread::sleep(Duration::from_millis(50));
        state = workload.ask("check", "state")?;
    }
    println!("  {state}");
    if !state.contains("memory=intact") || !state.contains("reason=restored") {
        bail!("{what} did not come back intact: {state}");
    }
    Ok(())
}

/// The held suspension (the default): a TCP client of the workload stays
/// connected while it is held, and what it sent meanwhile is answered
/// after the resume.
fn held(bin: &Path, workload: &mut crate::live::Workload, pid: &str, image: &Path) -> Result<()> {
    use std::io::Write as _;
    util::stage("a TCP client connects to the workload, which echoes what it is sent");
    let serving = workload.ask("serve", "serving")?;
    let port: u16 = field(&serving, "port")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no port in {serving:?}"))?;
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).context("connecting")?;
    client.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut replies = BufReader::new(client.try_clone()?);
    let mut read = || -> Result<()> {
        let mut line = String::new();
        replies.read_line(&mut line).context("reading the echo")?;
        println!("  client reads {:?}", line.trim_end());
        Ok(())
    };
    writeln!(client, "hello")?;
    println!("  client sends \"hello\"");
    read()?;

    util::stage(
        "suspend it, held (the default): written to an image, its memory released; the process and its connection stay",
    );
    let image_arg = image.to_string_lossy().into_owned();
    expect_code(agent(bin, &["suspend", pid, "-D", &image_arg])?, OK)?;
    agent(bin, &["list"])?;
    writeln!(client, "sent while held")?;
    println!("  client sends \"sent while held\" (it waits in the kernel)");

    util::stage(
        "resume it in place: its threads let go at once, its memory served from the image as it runs",
    );
    expect_code(agent(bin, &["resume", pid])?, OK)?;
    read()?;
    writeln!(client, "and after")?;
    println!("  client sends \"and after\"");
    read()?;
    restored_intact(workload, "the held workload")?;
    let _ = std::fs::remove_dir_all(image);
    Ok(())
}

pub fn run() -> Result<()> {
    setup::ensure()?;
    let bin = build::build(true)?;
    if !util::is_root()? {
        bail!("the demo loads eBPF programs and needs root: run `sudo -E cargo xtask demo`");
    }
    let _daemon = start_daemon(&bin)?;

    util::stage("two processes: a workload that opts in, and sleep(1), which does not");
    let mut workload = start_workload(&bin, &[])?;
    let pid = workload.ready_pid()?;
    let sleep = ChildGuard(
        Command::new("sleep")
            .arg("600")
            .spawn()
            .context("starting sleep")?,
    );
    let sleep_pid = sleep.0.id().to_string();
    println!("  workload: pid {pid}; sleep: pid {sleep_pid}");
    agent(&bin, &["list"])?;

    util::stage("ask sleep, which never opted in");
    expect_code(
        agent(&bin, &["suspend", &sleep_pid, "--dry-run"])?,
        NOT_OPTED_IN,
    )?;

    util::stage("ask the workload while its on_suspend says busy");
    workload.ask("decide busy", "ok")?;
    expect_code(agent(&bin, &["suspend", &pid, "--dry-run"])?, BUSY)?;

    util::stage("ask it inside a critical section, with --wait: it is held until the section ends");
    workload.ask("decide ready", "ok")?;
    workload.ask("enter", "ok")?;
    let waiting = {
        let (bin, pid) = (bin.clone(), pid.clone());
        thread::spawn(move || agent(&bin, &["suspend", &pid, "--dry-run", "--wait"]))
    };
    thread::sleep(Duration::from_secs(1));
    println!("  (the workload leaves its critical section)");
    workload.ask("leave", "ok")?;
    let code = waiting
        .join()
        .map_err(|_| anyhow::anyhow!("the waiting request panicked"))??;
    expect_code(code, OK)?;

    util::stage("ask it once more: ready; the dry run lets it go and its on_resume runs");
    expect_code(agent(&bin, &["suspend", &pid, "--dry-run"])?, OK)?;

    util::stage("the workload checks itself");
    let state = workload.ask("check", "state")?;
    println!("  {state}");
    if !state.contains("memory=intact") {
        bail!("the workload reports damage: {state}");
    }

    util::stage("suspend it with --exit: frozen, written to an image, then killed");
    let image = util::target_dir().join("demo-image");
    let _ = std::fs::remove_dir_all(&image);
    let image_arg = image.to_string_lossy().into_owned();
    expect_code(
        agent(&bin, &["suspend", &pid, "-D", &image_arg, "--exit"])?,
        OK,
    )?;
    drop(workload); // reaped: its pid is free again

    util::stage("what the image holds (every checksum verified first)");
    expect_code(agent(&bin, &["inspect", &image_arg])?, OK)?;

    util::stage("resume it from the image: same pid, same memory, same threads");
    become_subreaper()?;
    println!("  $ suspend-agent resume {image_arg}");
    let resumed = resume_workload(&bin, &pid, &image)?;
    println!("    {}", resumed.summary);
    let mut workload = resumed.workload;

    util::stage("the resumed workload checks itself");
    restored_intact(&mut workload, "the resumed workload")?;
    agent(&bin, &["list"])?;
    let _ = std::fs::remove_dir_all(&image);

    held(&bin, &mut workload, &pid, &image)?;
    println!(
        "\ndemo: done. The workload was suspended to an image, resumed from it where it left off, registered again (`list`), then held with a TCP client connected and resumed in place, the connection intact. The registry is pinned at /sys/fs/bpf/suspend/registry (try `bpftool map dump pinned /sys/fs/bpf/suspend/registry`)."
    );
    drop(sleep);
    Ok(())
}
