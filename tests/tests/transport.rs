//! Moving an image: `send` piped into `receive` makes the same image in
//! another directory, and the process resumes from that copy alone (issue
//! 15's transport, on one machine).

use std::{
    fs,
    process::{Command, Stdio},
};

use suspend_tests::{
    Daemon, ImageDir, Proc, agent, bin, field, flip_byte, pid_alive, ready_pid, state_after,
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
