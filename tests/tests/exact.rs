//! Exact or refused: what an image cannot hold yet makes a suspend that
//! kills the process refuse before freezing anything, naming it (exit 8;
//! the process goes on, told `aborted`), and `suspend --check` says so too;
//! a held suspension keeps it, and the process checks itself afterwards.

use suspend_tests::{
    Daemon, ImageDir, KillOnDrop, Proc, agent, bin, field, ready_pid, state_after, suspend,
};

const UNSUPPORTED: i32 = 8;

/// The workload runs `command` (answering a line starting with `prefix`),
/// then: a suspend refuses it naming `named`; `--check` too; `--hold`
/// keeps it (naming it as held only where the image lacks it) and the
/// process comes back intact.
fn refused_then_held(command: &str, prefix: &str, named: &str) -> Proc {
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let line = w.ask(command, prefix);
    assert!(
        !line.contains("=-1"),
        "`{command}` failed in the workload: {line}"
    );
    let dir = ImageDir::new(command);
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, UNSUPPORTED, "{out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains(named), "the refusal names {named:?}: {out:?}");
    assert!(said.contains("nothing was frozen"), "{out:?}");
    assert!(!dir.path.exists(), "no image");
    let state = state_after(&mut w, "check", 1);
    assert_eq!(field(&state, "reason"), "aborted", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");

    let check = agent(&["suspend", &pid.to_string(), "--check"]);
    assert_eq!(check.code, UNSUPPORTED, "{check:?}");
    assert!(check.stdout.contains(named), "--check names it: {check:?}");
    assert!(
        check
            .stdout
            .contains("held (the default): possible, keeping what is refused above"),
        "--check says it can be held: {check:?}"
    );

    let out = suspend(pid, &dir, &["--hold"]);
    assert_eq!(out.code, 0, "{out:?}");
    let back = agent(&["resume", dir.arg()]);
    assert_eq!(back.code, 0, "{back:?}");
    let state = state_after(&mut w, "check", 2);
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    w
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn posix_timers_are_refused_not_lost() {
    let _daemon = Daemon::start();
    refused_then_held("timer", "timer", "POSIX timer").exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn file_locks_are_refused_not_lost() {
    let _daemon = Daemon::start();
    refused_then_held("flock", "flock", "an flock (WRITE)").exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn signal_driven_io_to_another_process_is_refused_not_lost() {
    let _daemon = Daemon::start();
    refused_then_held("async", "async", "its I/O signals go to process").exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn locked_memory_is_refused_not_lost() {
    let _daemon = Daemon::start();
    refused_then_held("mlock", "mlock", "locked memory (mlock)").exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_pipe_end_opened_twice_is_refused_not_turned_into_a_dup() {
    let _daemon = Daemon::start();
    refused_then_held("reopen-pipe", "reopen-pipe", "opened again apart from fd").exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn children_are_refused_not_orphaned() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let line = w.ask("fork", "child");
    let child: u32 = field(&line, "pid").parse().expect("child pid");
    let _child = KillOnDrop::new(child);
    let dir = ImageDir::new("children");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, UNSUPPORTED, "{out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains(&format!("child process(es) {child}")),
        "{out:?}"
    );
    let state = state_after(&mut w, "check", 1);
    assert_eq!(field(&state, "reason"), "aborted", "{state}");
    // Held, it keeps its child.
    let out = suspend(pid, &dir, &["--hold"]);
    assert_eq!(out.code, 0, "{out:?}");
    let back = agent(&["resume", dir.arg()]);
    assert_eq!(back.code, 0, "{back:?}");
    let ppid = std::fs::read_to_string(format!("/proc/{child}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse::<u32>()
                .ok()
        });
    assert_eq!(ppid, Some(pid), "the child is still its child");
    let state = state_after(&mut w, "check", 2);
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    w.exit_ok();
}
