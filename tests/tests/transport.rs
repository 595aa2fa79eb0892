//! Moving an image: `send` piped into `receive` makes the same image in
//! another directory, and the process resumes from that copy alone;
//! `resume -` resumes a stream; `suspend --to` moves a process, ended here
//! only once the other side says it runs, resumed here when the other side
//! refuses it (issue 15's transport, on one machine: the other side is
//! this one through a stand-in for ssh).

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use suspend_tests::{
    Daemon, ImageDir, Proc, agent, bin, field, flip_byte, note, pid_alive, ready_pid, state_after,
    suspend,
};

const FILES: [&str; 3] = ["meta.jsonl", "meta.sig", "pages.img"];

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn image_sent_and_received_resumes_from_the_copy() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("resumable"), &[]);
    let pid = ready_pid(&mut w);
    assert_eq!(w.ask("check", "check"), "check ok");
    let first = ImageDir::new("sent");
    let out = suspend(pid, &first, &[]); // with --exit
    assert_eq!(out.code, 0, "suspend: {out:?}");
    w.wait_exit();
    assert!(!pid_alive(pid), "pid {pid} is gone after the suspend");

    // send | receive, as over ssh.
    let second = ImageDir::new("received");
    let mut send = Command::new(bin("suspend-agent"))
        .arg("send")
        .arg(&first.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running send");
    let received = Command::new(bin("suspend-agent"))
        .arg("receive")
        .arg(&second.path)
        .stdin(send.stdout.take().expect("send's stdout"))
        .output()
        .expect("running receive");
    let sent = send.wait_with_output().expect("send");
    assert!(
        sent.status.success(),
        "send: {:?}: {}",
        sent.status,
        String::from_utf8_lossy(&sent.stderr)
    );
    let said = String::from_utf8_lossy(&received.stderr);
    assert!(
        received.status.success(),
        "receive: {:?}: {said}",
        received.status
    );
    assert!(said.contains("verified"), "{said}");
    for name in FILES {
        assert!(
            fs::read(first.path.join(name)).unwrap() == fs::read(second.path.join(name)).unwrap(),
            "{name} differs after the move"
        );
    }
    assert_eq!(second.leftovers(), ["image"], "no partial directory left");

    // Into a directory that exists: refused before reading (exit 1).
    let again = agent(&["receive", second.arg(), "-i", "/dev/null"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("exists"), "{again:?}");

    // Through a file, one byte of its pages damaged: refused, nothing kept.
    let file = ImageDir::new("stream-file");
    let out = agent(&["send", first.arg(), "-o", file.arg()]);
    assert_eq!(out.code, 0, "send -o: {out:?}");
    let len = fs::metadata(&file.path).unwrap().len();
    flip_byte(&file.path, len - 100);
    let damaged = ImageDir::new("damaged");
    let out = agent(&["receive", damaged.arg(), "-i", file.arg()]);
    assert_eq!(out.code, 9, "{out:?}");
    assert!(out.stderr.contains("damaged in transit"), "{out:?}");
    assert!(damaged.leftovers().is_empty(), "{:?}", damaged.leftovers());

    // Only the received copy is left; the process resumes from it and
    // checks itself.
    fs::remove_dir_all(&first.path).unwrap();
    let mut r = Proc::resume(&second.path, pid, &[]);
    let state = state_after(&mut r, "state", 1);
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    assert_eq!(field(&state, "resume"), "1", "{state}");
    assert_eq!(
        r.ask("check", "check"),
        "check ok",
        "the workload's own check"
    );
    r.exit_ok();
}

/// Starts feature program `name`, which expects to be restored.
fn feature(name: &str) -> (Proc, u32) {
    suspend_tests::feature(name, "expect restored")
}

/// An executable shell script `name` in `dir` with `body`.
fn script(dir: &ImageDir, name: &str, body: &str) -> PathBuf {
    fs::create_dir_all(&dir.path).expect("the scripts' directory");
    let path = dir.path.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("a script");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// What `--ssh` runs for "another machine" in a test on one: `SSH HOST
/// COMMAND` runs COMMAND here, with sh, as ssh runs it there.
fn local_ssh(dir: &ImageDir) -> PathBuf {
    script(dir, "ssh", r#"shift; exec /bin/sh -c "$1""#)
}

/// Waits (up to a minute) for `pid`, our child through the subreaper, to
/// end: its exit code.
fn reaped(pid: u32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(code) = suspend_harness::try_reap(pid) {
            return code;
        }
        if Instant::now() > deadline {
            suspend_harness::kill_and_reap(pid);
            return -1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `resume -`: an image stream on stdin is received (under
/// /var/lib/suspend/received), resumed, and removed once the process
/// runs; the process checks itself (its output to a file: its stdin is
/// /dev/null, ours being the stream).
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn resume_dash_resumes_a_stream_and_keeps_nothing_once_it_runs() {
    let _daemon = Daemon::start();
    suspend_harness::become_subreaper().expect("PR_SET_CHILD_SUBREAPER");
    let (mut w, pid) = feature("threads");
    let image = ImageDir::new("resume-dash");
    let out = suspend(pid, &image, &[]); // --exit
    assert_eq!(out.code, 0, "suspend: {out:?}");
    w.wait_exit();
    let received_before = received_entries();
    let output = ImageDir::new("resume-dash-output");
    let mut send = Command::new(bin("suspend-agent"))
        .arg("send")
        .arg(&image.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running send");
    let resumed = Command::new(bin("suspend-agent"))
        .args([
            "resume",
            "--stdout",
            output.arg(),
            "--stderr",
            output.arg(),
            "-",
        ])
        .stdin(send.stdout.take().expect("send's stdout"))
        .output()
        .expect("running resume -");
    let sent = send.wait_with_output().expect("send");
    assert!(sent.status.success(), "send: {sent:?}");
    let said = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        resumed.status.success(),
        "resume -: {:?}: {said}",
        resumed.status
    );
    assert!(
        said.contains("received") && said.contains("resumed pid"),
        "{said}"
    );
    let code = reaped(pid);
    let printed = fs::read_to_string(&output.path).unwrap_or_default();
    assert!(
        code == 0 && printed.lines().any(|l| l == "ok"),
        "after `resume -` it exited {code}: {printed}"
    );
    assert_eq!(
        received_entries(),
        received_before,
        "the received image is removed once it runs"
    );
}

/// What /var/lib/suspend/received holds.
fn received_entries() -> Vec<String> {
    entries("/var/lib/suspend/received")
}

/// What directory `dir` holds, sorted (nothing if it is not there).
fn entries(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `suspend --to HOST:DIR` whose other side takes the image (a real
/// `receive` into DIR) and says the process runs there: the process is
/// ended here only then (its held record gone, the image made for the
/// move removed), exit 0 — and the image DIR received resumes (as the
/// other machine would) into a process that checks itself. The other side
/// here is this machine through a stand-in ssh whose agent's `resume` is
/// played by the test afterwards (the pid is this machine's until the
/// process is ended here).
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn moved_with_to_is_ended_here_once_it_runs_there() {
    let _daemon = Daemon::start();
    let tools = ImageDir::new("to-tools");
    let ssh = local_ssh(&tools);
    let agent_path = bin("suspend-agent");
    let there = script(
        &tools,
        "agent-there",
        &format!(
            r#"if [ "$1" = resume ]; then exit 0; fi; exec {} "$@""#,
            agent_path.display()
        ),
    );
    let (mut w, pid) = feature("threads");
    let remote = ImageDir::new("to-there");
    let sent_before = sent_entries();
    let out = agent(&[
        "suspend",
        &pid.to_string(),
        "--to",
        &format!("other:{}", remote.arg()),
        "--ssh",
        ssh.to_str().unwrap(),
        "--remote-agent",
        there.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "suspend --to: {out:?}");
    note(&format!("moved: {}{}", out.stderr, out.stdout.trim()));
    assert!(
        out.stdout
            .contains(&format!("pid {pid} moved to other: it runs there")),
        "{out:?}"
    );
    let code = w.wait_exit();
    assert_ne!(code, 0, "ended here (killed): {:#?}", w.seen);
    assert!(!pid_alive(pid), "pid {pid} is gone here");
    assert!(
        !Path::new(&format!("/run/suspend/held/{pid}.json")).exists(),
        "no longer held"
    );
    assert_eq!(
        sent_entries(),
        sent_before,
        "the image made for the move is removed"
    );
    let mut back = Proc::resume(&remote.path, pid, &[]);
    let code = back.wait_exit();
    assert!(
        code == 0 && back.seen.iter().any(|l| l == "ok"),
        "resumed from what the other side received, it exited {code}: {:#?}",
        back.seen
    );
}

/// What /var/lib/suspend/sent holds.
fn sent_entries() -> Vec<String> {
    entries("/var/lib/suspend/sent")
}

/// `suspend --to HOST` whose other side refuses the process (here: its
/// pid is in use there, as this machine is the other side too): resumed
/// here, exit 11, and it then checks itself; nothing is left received.
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn to_a_machine_that_refuses_it_resumes_it_here() {
    let _daemon = Daemon::start();
    let tools = ImageDir::new("to-refused-tools");
    let ssh = local_ssh(&tools);
    let (mut w, pid) = feature("threads");
    let received_before = received_entries();
    let sent_before = sent_entries();
    let out = agent(&[
        "suspend",
        &pid.to_string(),
        "--to",
        "other",
        "--ssh",
        ssh.to_str().unwrap(),
        "--remote-agent",
        bin("suspend-agent").to_str().unwrap(),
    ]);
    assert_eq!(out.code, 11, "suspend --to, refused there: {out:?}");
    note(&format!(
        "not moved, as it must not be: {}",
        out.stderr.trim()
    ));
    assert!(
        out.stderr.contains("in use") && out.stderr.contains("resuming it here"),
        "the other side's refusal is shown, then the resume here: {out:?}"
    );
    let code = w.wait_exit();
    assert!(
        code == 0 && w.seen.iter().any(|l| l == "ok"),
        "resumed here, it exited {code}: {:#?}",
        w.seen
    );
    assert_eq!(
        sent_entries(),
        sent_before,
        "the image made for the move is removed"
    );
    // The refused image was kept there, named: remove it (a test's own).
    for name in received_entries() {
        if !received_before.contains(&name) {
            assert!(
                out.stderr.contains(&name),
                "the kept image {name} is named: {out:?}"
            );
            let _ = fs::remove_dir_all(Path::new("/var/lib/suspend/received").join(name));
        }
    }
}

/// `suspend --to` of a process holding what an image cannot hold (a
/// child) is refused before anything is frozen, naming it (exit 8), as
/// with --exit: the process runs on, not held; nothing is sent.
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn to_refuses_what_an_image_cannot_hold_before_freezing() {
    let _daemon = Daemon::start();
    let tools = ImageDir::new("to-child-tools");
    let ssh = script(&tools, "ssh", "echo ran >> \"$0.ran\"; exit 1");
    let (mut w, pid) = suspend_tests::feature("child", "expect refused child process");
    let out = agent(&[
        "suspend",
        &pid.to_string(),
        "--to",
        "other",
        "--ssh",
        ssh.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 8, "suspend --to with a child: {out:?}");
    assert!(
        out.stderr.contains("cannot be moved") && out.stderr.contains("child"),
        "names the child: {out:?}"
    );
    assert!(!tools.path.join("ssh.ran").exists(), "nothing was sent");
    assert!(
        !Path::new(&format!("/run/suspend/held/{pid}.json")).exists(),
        "not held"
    );
    assert!(pid_alive(pid), "it runs on");
    // It still suspends (held) and comes back as it was.
    let dir = ImageDir::new("to-child-held");
    let held = suspend(pid, &dir, &["--hold"]);
    assert_eq!(held.code, 0, "{held:?}");
    let back = agent(&["resume", dir.arg()]);
    assert_eq!(back.code, 0, "{back:?}");
    let code = w.wait_exit();
    assert!(
        code == 0 && w.seen.iter().any(|l| l == "ok"),
        "it exited {code}: {:#?}",
        w.seen
    );
}
