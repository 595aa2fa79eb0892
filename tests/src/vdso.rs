//! The vDSO flows (issue 15), named so that a test across kernels (a
//! suspend on one, a resume on another) runs the same halves: the
//! workload `feature_vdso_clock` (`tests/c/features/vdso_clock.c`) is
//! started and suspended ([`clock_suspended`]), then resumed from its
//! image ([`clock_resumed`]), which passes only if its own check of
//! `clock_gettime`, `gettimeofday`, `time`, `getcpu` and `clock_getres`
//! through glibc passes, and says where its vDSO was after the resume:
//! [`IN_PLACE`] (this kernel's moved where the image had it) or
//! [`PROXIED`] (a copy of the image's standing in for it there, jumping
//! into this kernel's placed elsewhere).

use crate::{ImageDir, Proc, bin_dir, suspend};

/// The workload's program.
pub const PROGRAM: &str = "feature_vdso_clock";
/// What it says when its vDSO address still holds the kernel's `[vdso]`.
pub const IN_PLACE: &str = "vdso in place";
/// What it says when a copy stands in for it there.
pub const PROXIED: &str = "vdso proxied";
/// The resume's test hook that takes the proxy for a vDSO that is the
/// same: on one kernel, the process runs through the proxy's jumps.
pub const FORCE_PROXY: (&str, &str) = ("SUSPEND_FAULT_VDSO_PROXY", "1");

/// Starts the workload (a daemon must run), waits for its `ready PID`
/// and suspends it into `dir` (`suspend --exit`); returns it, reaped, and
/// its pid, free for the resume.
pub fn clock_suspended(dir: &ImageDir) -> (Proc, u32) {
    let mut w = Proc::spawn(bin_dir().join(PROGRAM), &[]);
    assert_eq!(w.expect(""), "expect restored");
    let line = w.expect("");
    let pid: u32 = line
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line:?}, not `ready PID`: {:#?}", w.seen));
    let out = suspend(pid, dir, &[]);
    assert_eq!(out.code, 0, "suspend --exit: {out:?}");
    w.wait_exit(); // reaped: its pid is free for the resume
    (w, pid)
}

/// Resumes the workload (`pid`) from `dir` with `env` added to the resume
/// command's environment; panics unless it passes its own check (exit 0,
/// `ok`) and says `where_` ([`IN_PLACE`] or [`PROXIED`]).
pub fn clock_resumed(dir: &ImageDir, pid: u32, env: &[(&str, &str)], where_: &str) {
    let mut back = Proc::resume(&dir.path, pid, env);
    let code = back.wait_exit();
    assert!(
        code == 0 && back.seen.iter().any(|l| l == "ok"),
        "after the resume it exited {code}: {:#?}",
        back.seen
    );
    assert!(
        back.seen.iter().any(|l| l == where_),
        "its vDSO after the resume: expected {where_:?}: {:#?}",
        back.seen
    );
}
