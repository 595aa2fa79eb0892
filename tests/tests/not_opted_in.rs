//! Seed case 1: a process that does not support suspension is never
//! touched. The agent cancels, sends nothing (eBPF's signal accounting
//! proves it), and the process keeps running.

use suspend_common::DEFAULT_SUSPEND_SIGNAL;
use suspend_tests::{
    Daemon, Proc, bin, dry_run, exit::NOT_OPTED_IN, ready_pid, signal_counts, suspend,
};

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn plain_sleep_is_cancelled_and_untouched() {
    let _daemon = Daemon::start();
    let mut sleep = Proc::spawn("sleep", &["1000"]);
    let pid = sleep.pid;

    let out = dry_run(pid, &[]);
    assert_eq!(out.code, NOT_OPTED_IN, "{out:?}");
    assert!(out.stderr.contains("has not opted in"), "{out:?}");
    assert!(out.stderr.contains("nothing was sent"), "{out:?}");

    // Not even a real request (with an image directory) sends anything,
    // or writes anything.
    let dir = suspend_tests::ImageDir::new("sleep");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, NOT_OPTED_IN, "{out:?}");
    assert!(
        dir.leftovers().is_empty(),
        "no image of a process that did not opt in"
    );

    assert_eq!(
        signal_counts(pid, DEFAULT_SUSPEND_SIGNAL),
        (0, 0),
        "eBPF saw a suspend signal for pid {pid}"
    );
    assert!(sleep.alive(), "sleep must keep running");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn own_handler_on_the_signal_is_not_an_opt_in() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--no-register", "--own-handler"]);
    let pid = ready_pid(&mut w);

    let out = dry_run(pid, &[]);
    assert_eq!(out.code, NOT_OPTED_IN, "{out:?}");
    assert!(out.stderr.contains("has not opted in"), "{out:?}");

    assert_eq!(
        signal_counts(pid, DEFAULT_SUSPEND_SIGNAL),
        (0, 0),
        "eBPF saw a suspend signal for pid {pid}"
    );
    let state = w.ask("check", "state");
    assert!(
        state.contains("own_handler=0"),
        "its own handler ran: {state}"
    );
    assert!(state.contains("memory=intact"), "{state}");
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn vanished_pid_is_a_clear_error() {
    let _daemon = Daemon::start();
    let mut gone = Proc::spawn("true", &[]);
    let pid = gone.pid;
    gone.wait_exit();
    drop(gone);
    let out = dry_run(pid, &[]);
    assert_eq!(
        out.code, NOT_OPTED_IN,
        "a pid that never registered: {out:?}"
    );
    assert!(
        out.stderr.contains(&pid.to_string()),
        "the message names the pid: {out:?}"
    );
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn no_daemon_has_its_own_exit_code() {
    suspend_tests::require_root();
    let out = dry_run(1, &[]);
    assert_eq!(out.code, 7, "{out:?}");
    assert!(out.stderr.contains("no agent daemon"), "{out:?}");
}
