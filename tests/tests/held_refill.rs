//! The refill of a held process (the agent's `hold/lazy.rs` and
//! `hold/refill.rs`): once `resume` lets it go, its memory comes back as it
//! runs, each page from the image it was held with. A page is served
//! however the process first touches it; a refill whose agent is killed
//! leaves the process waiting, never handed a zero page, until `resume` or
//! the next daemon finishes it; a page the image cannot give (damaged, or
//! another image) kills the process, or leaves it held, and says so.

use std::time::Duration;

use suspend_tests::{
    Daemon, ImageDir, Output, Proc, agent, agent_with, bin,
    exit::{BAD_IMAGE, UNSUPPORTED},
    field,
    held::{check_ok, fds, hold, intact, refilling, resume_held, wait_refilled},
    pid_alive, ready_pid, state_after, suspend, wait_for,
};

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn only_the_image_it_was_held_with_refills_it() {
    // An older image of the very same process, signed by this machine,
    // put where the hold's image is: its pages are not the process's now.
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("resumable"), &[]);
    let pid = ready_pid(&mut w);
    let older = ImageDir::new("held-older");
    hold(pid, &older);
    assert_eq!(resume_held(older.arg()).code, 0);
    state_after(&mut w, "state", 1);
    let now = ImageDir::new("held-now");
    hold(pid, &now);
    let aside = now.parent().join("aside");
    std::fs::rename(&now.path, &aside).expect("moving the image aside");
    std::fs::rename(&older.path, &now.path).expect("putting the older image in its place");
    let out = resume_held(&pid.to_string());
    assert_eq!(out.code, BAD_IMAGE, "{out:?}");
    assert!(
        out.stderr.contains("not the image it was held with") && out.stderr.contains("stays held"),
        "{out:?}"
    );
    std::fs::remove_dir_all(&now.path).expect("removing the older image");
    std::fs::rename(&aside, &now.path).expect("putting the image back");
    let back = resume_held(&pid.to_string());
    assert_eq!(back.code, 0, "{back:?}");
    let state = state_after(&mut w, "state", 2);
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    check_ok(&mut w);
    w.exit_ok();
}

/// `suspend-agent resume TARGET`, its refill copying nothing ahead of the
/// process for `delay_ms` (only what it touches is served meanwhile).
fn resume_lazily(target: &str, delay_ms: u64) -> Output {
    agent_with(
        &["resume", target],
        &[
            ("SUSPEND_FAULT_REFILL_DELAY_MS", &delay_ms.to_string()),
            ("RUST_LOG", "info,suspend_agent=debug"),
        ],
    )
}

/// The pid of the agent serving the refill, from `resume`'s message.
fn server_pid(out: &Output) -> u32 {
    let at = out.stderr.find("served by pid ").expect("served by pid") + "served by pid ".len();
    out.stderr[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a pid")
}

/// A process of uid 2001 (not root: its own userfaultfd could not wait on a
/// fault taken inside the kernel), held with a region of 32 MiB.
fn users_region_held(name: &str) -> (Proc, u32, ImageDir) {
    let mut w = Proc::spawn(bin("workload"), &["--uid", "2001"]);
    let pid = ready_pid(&mut w);
    assert_eq!(w.ask("region 32M", "region"), "region ok");
    let dir = ImageDir::new(name);
    hold(pid, &dir);
    (w, pid, dir)
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_lazily_refilled_process_gets_every_page_however_it_first_touches_it() {
    let _daemon = Daemon::start();
    let (mut w, pid, dir) = users_region_held("lazy-touch");
    let fds_before = fds(pid);
    let back = resume_lazily(dir.arg(), 5000);
    assert_eq!(back.code, 0, "{back:?}");
    assert!(back.stderr.contains("given back as it runs"), "{back:?}");
    // Nothing is copied ahead for 5 s: each of these is the region's first
    // touch since the resume, served page by page.
    assert_eq!(
        w.ask("region-read", "region-read"),
        "region-read ok",
        "read(2) into a page not yet back"
    );
    assert_eq!(
        w.ask("region-fork", "region-fork"),
        "region-fork ok",
        "a child forked while pages were missing"
    );
    assert_eq!(w.ask("region-remap", "region-remap"), "region-remap ok");
    assert_eq!(
        w.ask("region-discard", "region-discard"),
        "region-discard ok"
    );
    assert!(
        refilling(pid),
        "all of it ran while the refill was still under way"
    );
    wait_refilled(pid);
    // What moved was filled at its new place; what was discarded stayed zero.
    assert_eq!(w.ask("region-check", "region-check"), "region-check ok");
    intact(&mut w);
    assert!(
        fds(pid)
            .iter()
            .all(|(_, link)| !link.contains("userfaultfd")),
        "its userfaultfd is closed again: {:?} (before: {fds_before:?})",
        fds(pid)
    );
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_process_forking_as_its_refill_ends_does_not_hang_in_fork() {
    // A fork of a process with ranges registered waits until its event is
    // read: one that starts as the refill ends (after its last read) must
    // still be read, or its thread waits for ever. The main thread forks
    // without pause, so that it is the thread the refill borrows to close
    // the userfaultfd, across every round.
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    assert_eq!(w.ask("region 4M", "region"), "region ok");
    for round in 0..6 {
        w.send("fork-for 1500");
        std::thread::sleep(Duration::from_millis(100));
        let dir = ImageDir::new(&format!("fork-as-refill-ends-{round}"));
        hold(pid, &dir);
        let back = resume_held(dir.arg());
        assert_eq!(back.code, 0, "round {round}: {back:?}");
        let forked = w.expect("fork-for");
        assert!(forked.starts_with("fork-for ok"), "round {round}: {forked}");
        wait_refilled(pid);
    }
    assert_eq!(w.ask("region-check", "region-check"), "region-check ok");
    intact(&mut w);
    w.exit_ok();
}

/// A lazy refill whose serving agent is SIGKILLed after the process moved
/// and discarded memory: its threads wait for their pages (never a zero
/// page, never killed) until `finish` brings a new agent, which replays
/// what the process did and gives back the rest exactly.
fn killed_refill(name: &str, finish: impl FnOnce(u32, Daemon) -> Daemon) {
    let daemon = Daemon::start();
    let (mut w, pid, dir) = users_region_held(name);
    let back = resume_lazily(dir.arg(), 600_000);
    assert_eq!(back.code, 0, "{back:?}");
    let server = server_pid(&back);
    let log = || {
        eprintln!(
            "/run/suspend/refill.log:\n{}",
            std::fs::read_to_string("/run/suspend/refill.log").unwrap_or_default()
        )
    };
    // Events the next agent must replay: a move, a discard.
    assert_eq!(w.ask("region-remap", "region-remap"), "region-remap ok");
    assert_eq!(
        w.ask("region-discard", "region-discard"),
        "region-discard ok"
    );
    // Killed once it has journaled them (the process's calls return as
    // soon as the agent has read their events: killed within that one
    // system call, the next agent could not know what it missed, and
    // would kill the process — `the_journal_replays_and_a_read_cut_short_is_refused`).
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: killing the serving agent, a process of this test's.
    unsafe { libc::kill(server as i32, libc::SIGKILL) };
    wait_for("the killed agent to be gone", || {
        (!pid_alive(server)).then_some(())
    });
    // The region's pages are missing and no one serves them: the check
    // waits (never sees a zero page, never dies).
    w.send("region-check");
    assert!(
        w.silent_for(Duration::from_millis(1500)),
        "the workload waits for its pages"
    );
    assert!(pid_alive(pid), "the process lives");
    assert!(refilling(pid));
    let list = agent(&["list"]);
    assert!(
        list.stdout.contains("not served"),
        "list says no one serves it: {list:?}"
    );
    let again = ImageDir::new(&format!("{name}-again"));
    let refused = suspend(pid, &again, &["--hold"]);
    assert_eq!(refused.code, UNSUPPORTED, "not all there yet: {refused:?}");
    assert!(
        refused.stderr.contains("still getting its memory back"),
        "{refused:?}"
    );
    let _daemon = finish(pid, daemon);
    let checked =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.expect("region-check")));
    log();
    assert_eq!(checked.as_deref().ok(), Some("region-check ok"));
    wait_refilled(pid);
    intact(&mut w);
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_refill_whose_agent_is_killed_waits_and_resume_finishes_it() {
    killed_refill("lazy-killed-resume", |pid, daemon| {
        let again = resume_held(&pid.to_string());
        assert_eq!(again.code, 0, "{again:?}");
        assert!(again.stderr.contains("finishing it"), "{again:?}");
        daemon
    });
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_refill_whose_agent_is_killed_waits_and_the_next_daemon_finishes_it() {
    killed_refill("lazy-killed-daemon", |_, daemon| {
        daemon.kill();
        Daemon::start()
    });
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_page_the_damaged_image_cannot_give_kills_the_process_with_a_log_line() {
    let _daemon = Daemon::start();
    let (mut w, pid, dir) = users_region_held("lazy-damaged");
    // A byte of the region's saved pages, flipped after the hold: the
    // middle of a run's compressed frame (or, raw, of its second page).
    let meta = std::fs::read_to_string(dir.path.join("meta.jsonl")).expect("meta");
    let (at, stored) = meta
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.split_once(' ')?.1).ok())
        .find(|r| {
            r["record"] == "mapping"
                && r["end"].as_u64().unwrap_or(0) - r["start"].as_u64().unwrap_or(0) == 32 << 20
        })
        .and_then(|r| {
            let run = &r["pages"][3];
            Some((run["at"].as_u64()?, run["stored"].as_u64()))
        })
        .expect("the region's runs in meta.jsonl");
    let into = stored.map_or(5000, |n| n / 2);
    suspend_tests::flip_byte(&dir.path.join("pages.img"), at + into);
    let back = resume_lazily(dir.arg(), 0);
    assert_eq!(
        back.code, 0,
        "it ran again before the damage was found: {back:?}"
    );
    // The refill may find the damage (and kill it) before the command
    // arrives, or while the process reads the region for it.
    w.try_send("region-check");
    let code = w.wait_exit();
    assert_eq!(
        code,
        128 + libc::SIGKILL,
        "killed, not handed a wrong page: {:#?}",
        w.seen
    );
    assert!(
        !w.seen.iter().any(|l| l == "region-check ok"),
        "it never said the damaged region was intact: {:#?}",
        w.seen
    );
    let log = std::fs::read_to_string("/run/suspend/refill.log").expect("refill log");
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("pid {pid} was killed"))
                && l.contains("does not match its hash")),
        "the log names it and why: {log}"
    );
    // The record goes just after the kill (`hold::refill::give_up`): the
    // exit may be seen first.
    wait_refilled(pid);
}
