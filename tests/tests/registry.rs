//! The registry stays true without polling: exec drops a registration, exit
//! removes it, fork does not inherit it, a reset handler makes it unusable;
//! spoofed signals are ignored; the daemon can restart, start late, or die
//! mid-handshake without losing a registration or a process.

use suspend_common::DEFAULT_SUSPEND_SIGNAL;
use suspend_tests::{
    Daemon, KillOnDrop, Proc, bin, dry_run, exit::NOT_OPTED_IN, field, pid_alive, ready_pid,
    registry_entry, signal_counts, sigqueue, wait_for,
};

fn registered_workload() -> (Proc, u32) {
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    assert!(registry_entry(pid).is_some(), "pid {pid} registered");
    (w, pid)
}

fn calls(w: &mut Proc) -> (String, String) {
    let state = w.ask("check", "state");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    (
        field(&state, "suspend").to_owned(),
        field(&state, "resume").to_owned(),
    )
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn unprivileged_process_registers_and_answers() {
    use std::os::unix::{fs::PermissionsExt as _, process::CommandExt as _};
    let _daemon = Daemon::start();
    // A copy nobody may run (the build tree may sit under /root).
    let dir = std::env::temp_dir().join(format!("suspend-test-nobody-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("workload");
    std::fs::copy(bin("workload"), &exe).unwrap();
    for path in [&dir, &exe] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = std::process::Command::new(&exe);
    cmd.uid(65534).gid(65534);
    let mut w = Proc::spawn_command(cmd);
    let pid = ready_pid(&mut w);
    let entry = registry_entry(pid).expect("an unprivileged process registers");
    assert_eq!(entry["uid"], 65534, "{entry}");
    assert_eq!(dry_run(pid, &[]).code, 0);
    assert_eq!(calls(&mut w), ("1".into(), "1".into()));
    w.exit_ok();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn spoofed_signals_are_ignored() {
    let _daemon = Daemon::start();
    let (mut w, pid) = registered_workload();
    let sig = DEFAULT_SUSPEND_SIGNAL as i32;

    // A shell's `kill -44` (SI_USER) and a sigqueue with a guessed token.
    // SAFETY: signalling a process this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
    sigqueue(pid, sig, 0x1234_5678);
    let (_, delivered) = wait_for("both spoofed signals delivered", || {
        let counts = signal_counts(pid, sig as u32);
        (counts.1 >= 2).then_some(counts)
    });
    assert!(delivered >= 2);
    assert_eq!(
        calls(&mut w),
        ("0".into(), "0".into()),
        "a spoofed signal must not reach on_suspend"
    );
    assert!(w.alive());

    // The real thing still works.
    assert_eq!(dry_run(pid, &[]).code, 0);
    assert_eq!(calls(&mut w), ("1".into(), "1".into()));
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn exec_drops_the_registration() {
    let _daemon = Daemon::start();
    let (mut w, pid) = registered_workload();
    w.send("exec /bin/sleep 1000");
    wait_for("the registration to go on exec", || {
        registry_entry(pid).is_none().then_some(())
    });
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "sleep"
    );
    let before = signal_counts(pid, DEFAULT_SUSPEND_SIGNAL);
    let out = dry_run(pid, &[]);
    assert_eq!(out.code, NOT_OPTED_IN, "{out:?}");
    assert_eq!(
        signal_counts(pid, DEFAULT_SUSPEND_SIGNAL),
        before,
        "nothing sent after exec"
    );
    assert!(w.alive(), "the exec'd sleep keeps running");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn exit_removes_the_registration() {
    let _daemon = Daemon::start();
    let (w, pid) = registered_workload();
    w.exit_ok();
    wait_for("the registration to go on exit", || {
        registry_entry(pid).is_none().then_some(())
    });
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn fork_does_not_inherit() {
    let _daemon = Daemon::start();
    let (mut w, pid) = registered_workload();
    let line = w.ask("fork", "child");
    let child: u32 = field(&line, "pid").parse().unwrap();
    let _child = KillOnDrop::new(child);
    assert!(
        registry_entry(child).is_none(),
        "the child of a registered process is not registered"
    );
    // It has inherited the handler (SigCgt), which is not an opt-in.
    let out = dry_run(child, &[]);
    assert_eq!(out.code, NOT_OPTED_IN, "{out:?}");
    assert_eq!(signal_counts(child, DEFAULT_SUSPEND_SIGNAL), (0, 0));
    assert!(pid_alive(child));
    assert!(
        registry_entry(pid).is_some(),
        "the parent is still registered"
    );
    assert_eq!(dry_run(pid, &[]).code, 0);
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn handler_reset_makes_it_unusable() {
    let _daemon = Daemon::start();
    let (mut w, pid) = registered_workload();
    w.ask("reset-handler", "ok");
    let entry = wait_for("eBPF to mark the registration unusable", || {
        registry_entry(pid).filter(|e| e["state"] == "unusable")
    });
    assert_eq!(entry["handler_resets"], 1, "{entry}");
    let out = dry_run(pid, &[]);
    assert_eq!(out.code, NOT_OPTED_IN, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "the handler of its suspend signal {DEFAULT_SUSPEND_SIGNAL} was reset to the default \
             action (SIG_DFL)"
        )),
        "{out:?}"
    );
    assert_eq!(
        signal_counts(pid, DEFAULT_SUSPEND_SIGNAL),
        (0, 0),
        "SIG_DFL would have killed it"
    );
    assert!(w.alive());
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_replaced_handler_is_named_with_its_file() {
    let _daemon = Daemon::start();
    let (mut w, pid) = registered_workload();
    w.ask("replace-handler", "ok");
    wait_for("eBPF to mark the registration unusable", || {
        registry_entry(pid).filter(|e| e["state"] == "unusable")
    });
    let out = dry_run(pid, &[]);
    assert_eq!(out.code, NOT_OPTED_IN, "{out:?}");
    // The workload's own handler: an address in the workload binary.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("its executable");
    let said = format!(
        "the handler of its suspend signal {DEFAULT_SUSPEND_SIGNAL} was replaced by a handler at 0x"
    );
    assert!(out.stderr.contains(&said), "{out:?}");
    assert!(
        out.stderr.contains(&format!(", in {}", exe.display())),
        "the message names {}: {out:?}",
        exe.display()
    );
    assert_eq!(signal_counts(pid, DEFAULT_SUSPEND_SIGNAL), (0, 0));
    assert!(w.alive());
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn unregister_withdraws() {
    let _daemon = Daemon::start();
    let (mut w, pid) = registered_workload();
    w.ask("unregister", "ok");
    assert!(registry_entry(pid).is_none());
    assert_eq!(dry_run(pid, &[]).code, NOT_OPTED_IN);
    assert_eq!(calls(&mut w), ("0".into(), "0".into()));
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn daemon_restart_keeps_registrations() {
    let daemon = Daemon::start();
    let (mut w, pid) = registered_workload();
    daemon.stop();
    // No daemon: the pinned map still says so.
    assert!(
        registry_entry(pid).is_some(),
        "list reads the pinned registry without a daemon"
    );
    let _daemon = Daemon::start();
    assert!(registry_entry(pid).is_some());
    assert_eq!(dry_run(pid, &[]).code, 0);
    assert_eq!(calls(&mut w), ("1".into(), "1".into()));
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn registered_while_no_daemon_is_picked_up() {
    Daemon::start().stop(); // the programs stay pinned; no daemon runs now
    let mut w = Proc::spawn(bin("workload"), &[]);
    let registered = w.expect("registered");
    assert_eq!(field(&registered, "agent"), "Pending", "{registered}");
    let pid = ready_pid(&mut w);
    assert!(registry_entry(pid).is_none(), "nobody wrote the entry yet");
    let _daemon = Daemon::start();
    assert!(
        registry_entry(pid).is_some(),
        "the daemon picked it up when it started"
    );
    assert_eq!(dry_run(pid, &[]).code, 0);
    assert_eq!(calls(&mut w), ("1".into(), "1".into()));
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn daemon_killed_mid_handshake_loses_nothing() {
    let daemon = Daemon::start();
    let (mut w, pid) = registered_workload();
    w.ask("decide slow", "ok");
    let cli = std::thread::spawn(move || dry_run(pid, &["--timeout", "30s"]));
    w.expect("on_suspend started");
    daemon.kill();
    let out = cli.join().unwrap();
    assert_ne!(out.code, 0, "the CLI reports the lost daemon: {out:?}");
    // The client answered ready to a dead agent: on_resume(aborted), and on.
    let state = wait_for("on_resume(aborted)", || {
        let line = w.ask("check", "state");
        (field(&line, "resume") == "1").then_some(line)
    });
    assert_eq!(field(&state, "reason"), "aborted", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");

    // A new daemon finds the handshake left unfinished and carries on.
    let _daemon = Daemon::start();
    assert_eq!(
        registry_entry(pid).expect("still registered")["state"],
        "registered"
    );
    w.ask("decide ready", "ok");
    assert_eq!(dry_run(pid, &[]).code, 0);
    w.exit_ok();
}
