//! What the tests of held suspensions (`tests/held.rs`, park and unpark;
//! `tests/held_refill.rs`, the memory given back as the process runs)
//! share: a hold checked to have parked the process, its resume, the
//! workloads' own checks, and the refill's end.

use crate::{ImageDir, Output, Proc, agent, field, pid_alive, registry_entry, suspend, wait_for};

/// Holds `pid` into `dir`; asserts it worked and the process is still
/// there, parked, with under 1 MiB resident.
pub fn hold(pid: u32, dir: &ImageDir) -> Output {
    let out = suspend(pid, dir, &["--hold"]);
    assert_eq!(out.code, 0, "suspend --hold: {out:?}");
    assert!(pid_alive(pid), "pid {pid} is still there, held");
    let rss = rss_kib(pid);
    assert!(
        rss < 1024,
        "pid {pid} held with {rss} KiB resident: {out:?}"
    );
    let entry = registry_entry(pid).expect("still registered");
    assert_eq!(entry["state"], "held", "{entry}");
    out
}

/// `VmRSS` of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    suspend_harness::procfs::rss_kib(pid)
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// `suspend-agent resume TARGET` (an image directory or a pid).
pub fn resume_held(target: &str) -> Output {
    agent(&["resume", target])
}

/// The `resumable` (or `tokio_workload`) workload's own check.
pub fn check_ok(w: &mut Proc) {
    let line = w.ask("check", "check");
    assert_eq!(line, "check ok", "the workload's own check: {line}");
}

/// The `workload`'s own check of its memory and threads.
pub fn intact(w: &mut Proc) {
    let state = w.ask("check", "state");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
}

/// `(fd, link)` of every open file of `pid`.
pub fn fds(pid: u32) -> Vec<(String, String)> {
    let mut all: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .flatten()
        .map(|e| {
            let link = std::fs::read_link(e.path()).unwrap_or_default();
            (
                e.file_name().to_string_lossy().into_owned(),
                link.to_string_lossy().into_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

/// Whether `pid`'s held record (kept while it is refilled) is there.
pub fn refilling(pid: u32) -> bool {
    suspend_harness::procfs::held_record(pid).exists()
}

/// Waits until every page of `pid` is back (its record is gone).
pub fn wait_refilled(pid: u32) {
    wait_for(&format!("the refill of pid {pid} to end"), || {
        (!refilling(pid)).then_some(())
    });
}
