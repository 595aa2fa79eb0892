//! The `Ready` path with `--dry-run`: each callback runs exactly once, the
//! program continues and checks its own state. Also the C API and the
//! preload shim, which must register and answer the same way.

use std::process::Command;

use suspend_tests::{
    Daemon, Proc, agent, bin, dry_run, field, ready_pid, registry_entry, wait_for,
};

fn ready_once(context: &str) {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--context", context]);
    let pid = ready_pid(&mut w);
    let entry = registry_entry(pid).expect("registered");
    assert_eq!(entry["context"], context);
    assert_eq!(entry["state"], "registered");

    for round in 1..=3u32 {
        let out = dry_run(pid, &[]);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.contains("on_resume(continued) ran"), "{out:?}");
        let state = w.ask("check", "state");
        assert_eq!(
            field(&state, "suspend"),
            round.to_string(),
            "on_suspend once per request: {state}"
        );
        assert_eq!(
            field(&state, "resume"),
            round.to_string(),
            "on_resume once per request: {state}"
        );
        assert_eq!(field(&state, "reason"), "continued", "{state}");
        assert_eq!(field(&state, "memory"), "intact", "{state}");
    }
    let entry = registry_entry(pid).expect("still registered");
    assert_eq!(
        entry["suspend_sent"], 3,
        "eBPF counted the suspend signals: {entry}"
    );
    assert_eq!(
        entry["suspend_delivered"], 3,
        "eBPF saw them delivered: {entry}"
    );
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn ready_dry_run_thread_context() {
    ready_once("thread");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn ready_dry_run_signal_context() {
    ready_once("signal");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn signals_chosen_at_registration() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--signals", "50,51"]);
    let pid = ready_pid(&mut w);
    let entry = registry_entry(pid).expect("registered");
    assert_eq!(
        (
            entry["suspend_signal"].as_u64(),
            entry["resume_signal"].as_u64()
        ),
        (Some(50), Some(51))
    );
    let out = dry_run(pid, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("sent signal 50"), "{out:?}");
    assert_eq!(
        suspend_tests::signal_counts(pid, 50),
        (1, 1),
        "the chosen signal was used"
    );
    assert_eq!(
        suspend_tests::signal_counts(pid, suspend_common::DEFAULT_SUSPEND_SIGNAL),
        (0, 0),
        "the default signal was not"
    );
    let state = w.ask("check", "state");
    assert_eq!(field(&state, "resume"), "1", "{state}");
    // Out of range or equal signals are refused at registration.
    let mut bad = Proc::spawn(bin("workload"), &["--signals", "62,62"]);
    let line = bad.expect("register failed");
    assert!(
        line.contains("not two distinct real-time signals"),
        "{line}"
    );
    assert_eq!(bad.wait_exit(), 1);
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn c_program_registers_and_answers() {
    c_program("c_workload");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn c_program_linked_statically_registers_and_answers() {
    c_program("c_workload_static");
}

fn c_program(binary: &str) {
    let _daemon = Daemon::start();
    let mut c = Proc::spawn(bin(binary), &[]);
    let pid = ready_pid(&mut c);
    assert!(registry_entry(pid).is_some(), "the C program is registered");

    let out = dry_run(pid, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let state = c.ask("check", "state");
    assert_eq!(field(&state, "suspend"), "1", "{state}");
    assert_eq!(field(&state, "resume"), "1", "{state}");
    assert_eq!(field(&state, "reason"), "continued", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");

    c.ask("decide busy", "ok");
    assert_eq!(dry_run(pid, &[]).code, 4);
    c.ask("enter", "ok");
    c.ask("decide ready", "ok");
    assert_eq!(
        dry_run(pid, &[]).code,
        4,
        "critical section through the C API"
    );
    c.ask("leave", "ok");
    assert_eq!(dry_run(pid, &[]).code, 0);
    let state = c.ask("check", "state");
    assert_eq!(field(&state, "suspend"), "3", "{state}");
    assert_eq!(field(&state, "resume"), "2", "{state}");
    c.exit_ok();
}

/// A Python interpreter, unmodified, opted in by the preload shim; it keeps
/// its own state and checks it.
const PYTHON: &str = r#"
import os, subprocess, sys
data = [i * i for i in range(100000)]
print(f"ready pid={os.getpid()}", flush=True)
child = None
for line in sys.stdin:
    cmd = line.split()
    if cmd == ["check"]:
        ok = data == [i * i for i in range(100000)]
        print(f"state memory={'intact' if ok else 'changed'}", flush=True)
    elif cmd == ["spawn"]:
        child = subprocess.Popen(["sleep", "1000"])
        print(f"child pid={child.pid}", flush=True)
    elif cmd == ["exit"]:
        if child:
            child.kill()
        sys.exit(0)
"#;

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn preload_shim_opts_in_an_unmodified_python() {
    let _daemon = Daemon::start();
    let mut cmd = Command::new(bin("suspend-agent"));
    cmd.args(["run", "--", "python3", "-c", PYTHON]);
    let mut py = Proc::spawn_command(cmd);
    let pid = ready_pid(&mut py);
    assert_eq!(pid, py.pid, "`run` execs the program in place: same pid");
    let entry = wait_for("the preloaded python to register", || registry_entry(pid));
    assert_eq!(entry["state"], "registered", "{entry}");
    assert_eq!(entry["command"], "python3", "{entry}");

    let out = dry_run(pid, &[]);
    assert_eq!(
        out.code, 0,
        "the shim's default handler is always ready: {out:?}"
    );
    assert_eq!(field(&py.ask("check", "state"), "memory"), "intact");

    // Programs it starts are not opted in.
    let child: u32 = field(&py.ask("spawn", "child"), "pid").parse().unwrap();
    let _child = suspend_tests::KillOnDrop::new(child);
    assert!(
        registry_entry(child).is_none(),
        "the preloaded program's child must not be registered"
    );
    assert_eq!(dry_run(child, &[]).code, 3);

    py.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn bpftool_prints_the_registry_with_named_fields() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let out = Command::new("bpftool")
        .args(["map", "dump", "pinned", "/sys/fs/bpf/suspend/registry"])
        .output()
        .expect("bpftool");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(out.status.success());
    for needle in [
        format!("\"pid\": {pid}"),
        "\"state\": 1".into(),
        format!(
            "\"suspend_signal\": {}",
            suspend_common::DEFAULT_SUSPEND_SIGNAL
        ),
        "\"registered_ns\":".into(),
    ] {
        assert!(
            text.contains(&needle),
            "bpftool output lacks {needle}:\n{text}"
        );
    }
    let _ = agent(&["list"]);
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn run_takes_the_signals_it_is_given() {
    let _daemon = Daemon::start();
    let mut cmd = Command::new(bin("suspend-agent"));
    cmd.args(["run", "--signals", "40,41", "--", "python3", "-c", PYTHON]);
    let mut py = Proc::spawn_command(cmd);
    let pid = ready_pid(&mut py);
    let entry = wait_for("the preloaded python to register", || registry_entry(pid));
    assert_eq!(
        (
            entry["suspend_signal"].as_u64(),
            entry["resume_signal"].as_u64()
        ),
        (Some(40), Some(41)),
        "{entry}"
    );
    let out = dry_run(pid, &[]);
    assert_eq!(out.code, 0, "asked with signal 40: {out:?}");
    py.exit_ok();

    let bad = agent(&["run", "--signals", "40,40", "--", "true"]);
    assert_eq!(bad.code, 2, "two equal signals are a usage error: {bad:?}");
}
