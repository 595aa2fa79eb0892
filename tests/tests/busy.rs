//! Seed case 3: a process that supports suspension but cannot be suspended
//! now. It says so (busy), or is inside a critical section; `--wait` holds
//! the request until the section ends; the timeout is reported. In every
//! case the process keeps running and its own check passes.

use suspend_tests::{
    Daemon, Proc, bin, dry_run,
    exit::{BUSY, REFUSED, TIMEOUT},
    field, ready_pid,
};

fn workload(context: &str) -> (Proc, u32) {
    let mut w = Proc::spawn(bin("workload"), &["--context", context]);
    let pid = ready_pid(&mut w);
    (w, pid)
}

/// Asks the workload to check itself; returns (suspend calls, resume calls,
/// last reason) and asserts its memory and threads are intact.
fn check(w: &mut Proc) -> (u32, u32, String) {
    let state = w.ask("check", "state");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    (
        field(&state, "suspend").parse().unwrap(),
        field(&state, "resume").parse().unwrap(),
        field(&state, "reason").to_owned(),
    )
}

fn busy_and_refuse(context: &str) {
    let _daemon = Daemon::start();
    let (mut w, pid) = workload(context);

    w.ask("decide busy", "ok");
    let out = dry_run(pid, &[]);
    assert_eq!(out.code, BUSY, "{out:?}");
    assert!(out.stderr.contains("on_suspend said not now"), "{out:?}");
    assert_eq!(
        check(&mut w),
        (1, 0, "none".into()),
        "busy: on_suspend once, no on_resume"
    );

    w.ask("decide refuse", "ok");
    let out = dry_run(pid, &[]);
    assert_eq!(out.code, REFUSED, "{out:?}");
    assert_eq!(
        check(&mut w),
        (2, 0, "none".into()),
        "refuse: on_suspend once more, no on_resume"
    );
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn busy_and_refuse_thread_context() {
    busy_and_refuse("thread");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn busy_and_refuse_signal_context() {
    busy_and_refuse("signal");
}

fn critical_section(context: &str) {
    let _daemon = Daemon::start();
    let (mut w, pid) = workload(context);

    w.ask("enter", "ok depth=1");
    w.ask("enter", "ok depth=2"); // nested
    let out = dry_run(pid, &[]);
    assert_eq!(out.code, BUSY, "{out:?}");
    assert!(out.stderr.contains("inside a critical section"), "{out:?}");
    assert_eq!(
        check(&mut w),
        (0, 0, "none".into()),
        "on_suspend must not run inside a critical section"
    );

    w.ask("leave", "ok depth=1");
    let out = dry_run(pid, &[]);
    assert_eq!(out.code, BUSY, "still one section open: {out:?}");
    w.ask("leave", "ok depth=0");
    let out = dry_run(pid, &[]);
    assert_eq!(out.code, 0, "no section open: {out:?}");
    assert_eq!(check(&mut w), (1, 1, "continued".into()));
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn critical_section_thread_context() {
    critical_section("thread");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn critical_section_signal_context() {
    critical_section("signal");
}

fn wait_for_section(context: &str) {
    let _daemon = Daemon::start();
    let (mut w, pid) = workload(context);

    w.ask("enter", "ok depth=1");
    // Ask with --wait in the background, leave the section while it waits.
    let agent = std::thread::spawn(move || dry_run(pid, &["--wait", "--timeout", "30s"]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        check(&mut w).0,
        0,
        "on_suspend ran while the section was open"
    );
    w.ask("leave", "ok depth=0");
    let out = agent.join().unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("waiting for it to end"),
        "the CLI reports the wait: {out:?}"
    );
    assert_eq!(
        check(&mut w),
        (1, 1, "continued".into()),
        "held request finished once the section ended"
    );
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn wait_completes_when_section_ends_thread_context() {
    wait_for_section("thread");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn wait_completes_when_section_ends_signal_context() {
    wait_for_section("signal");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn wait_times_out_and_process_carries_on() {
    let _daemon = Daemon::start();
    let (mut w, pid) = workload("thread");
    w.ask("enter", "ok depth=1");
    let out = dry_run(pid, &["--wait", "--timeout", "1s"]);
    assert_eq!(out.code, TIMEOUT, "{out:?}");
    assert!(
        out.stderr.contains("still inside a critical section"),
        "{out:?}"
    );
    // Still inside the section: a new request is served (busy), not
    // swallowed by the one the agent gave up on.
    let out = dry_run(pid, &[]);
    assert_eq!(out.code, BUSY, "{out:?}");
    // The request the agent gave up on must not run on_suspend later.
    w.ask("leave", "ok depth=0");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(check(&mut w), (0, 0, "none".into()));
    // And the process can be asked again.
    assert_eq!(dry_run(pid, &[]).code, 0);
    assert_eq!(check(&mut w), (1, 1, "continued".into()));
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn slow_answer_times_out_then_aborts() {
    let _daemon = Daemon::start();
    let (mut w, pid) = workload("thread");
    w.ask("decide slow", "ok");
    let out = dry_run(pid, &["--timeout", "1s"]);
    assert_eq!(out.code, TIMEOUT, "{out:?}");
    assert!(out.stderr.contains("did not decide"), "{out:?}");
    // on_suspend said ready after the agent had gone: on_resume(aborted).
    let state = suspend_tests::wait_for("on_resume after the late answer", || {
        let line = w.ask("check", "state");
        (field(&line, "resume") == "1").then_some(line)
    });
    assert_eq!(field(&state, "reason"), "aborted", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn blocked_signal_times_out_with_the_reason() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--block-suspend-signal"]);
    let pid = ready_pid(&mut w);
    let out = dry_run(pid, &["--timeout", "1s"]);
    assert_eq!(out.code, TIMEOUT, "{out:?}");
    assert!(
        out.stderr.contains("not delivered"),
        "eBPF tells why: {out:?}"
    );
    assert_eq!(check(&mut w), (0, 0, "none".into()));
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn process_exiting_mid_handshake_is_reported_at_once() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--block-suspend-signal"]);
    let pid = ready_pid(&mut w);
    let started = std::time::Instant::now();
    let agent = std::thread::spawn(move || dry_run(pid, &["--timeout", "60s"]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(w); // SIGKILL while the agent waits for it
    let out = agent.join().unwrap();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("exited during the handshake"),
        "{out:?}"
    );
    // Not a timing assertion on performance: it must not have waited out
    // the 60 s timeout.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the agent waited for the timeout"
    );
}
