//! The one-feature workloads of `tests/c/features` (`feature_NAME`), in
//! the manner of a C/R project's regression suite: each sets up one kind
//! of kernel state and says what to expect (protocol in
//! `tests/c/features/feature.h`).
//!
//! - `expect restored`: `suspend --exit` exits 0, `resume` brings it back,
//!   and the program's own check passes (exit 0, `ok`); and again, a
//!   second run of it, held (the default suspension).
//! - `expect refused WORDS`: `suspend --exit` refuses (exit 8) naming
//!   WORDS, before anything is frozen; then a held suspension keeps the
//!   state and the program's own check passes after `resume`.
//! - `expect refused-always WORDS`: refused before freezing, and a hold is
//!   refused too (a thread that cannot wait parked); the program is then
//!   stopped by the harness.
//! - `skip REASON`: this kernel cannot have the state; said loudly (a NOTE
//!   on stderr and in the summary), never counted as passed.
//!
//! `SUSPEND_FEATURES=a,b` runs only those (names without `feature_`).
//!
//! A held process is resumed as a user's would be: lazily, its pages
//! served as it runs (many of these programs fork or change their memory
//! map right after the resume, as the refill goes on).

use std::panic::{AssertUnwindSafe, catch_unwind};

use suspend_tests::{Daemon, ImageDir, Proc, agent, agent_with, bin_dir, note, suspend, vdso};

const UNSUPPORTED: i32 = 8;
const SKIP: i32 = 77;

enum Verdict {
    Restored,
    Refused,
    Skipped(String),
}

/// The feature programs in the bin directory, by name.
fn features() -> Vec<String> {
    let only: Option<Vec<String>> = std::env::var("SUSPEND_FEATURES")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    let mut names: Vec<String> = std::fs::read_dir(bin_dir())
        .expect("the bin directory")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("feature_")
                .map(str::to_owned)
        })
        .filter(|n| only.as_ref().is_none_or(|o| o.contains(n)))
        .collect();
    names.sort();
    names
}

/// Runs one feature program through its suspension (`held`: a hold, for
/// a program that expects to be restored); panics on any difference from
/// what it said to expect.
fn run(name: &str, held: bool) -> Verdict {
    let mut w = Proc::spawn(bin_dir().join(format!("feature_{name}")), &[]);
    let first = w.expect("");
    if let Some(why) = first.strip_prefix("skip ") {
        assert_eq!(w.wait_exit(), SKIP, "{name}: {:#?}", w.seen);
        return Verdict::Skipped(why.to_owned());
    }
    let expect = first
        .strip_prefix("expect ")
        .unwrap_or_else(|| panic!("{name}: first line {first:?}, not `expect …`"))
        .to_owned();
    let line = w.expect("");
    if let Some(why) = line.strip_prefix("skip ") {
        assert_eq!(w.wait_exit(), SKIP, "{name}: {:#?}", w.seen);
        return Verdict::Skipped(why.to_owned());
    }
    let pid: u32 = line
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{name}: {line:?}, not `ready PID`; {:#?}", w.seen));
    let dir = ImageDir::new(&format!("feature-{name}"));
    if held {
        assert_eq!(
            expect, "restored",
            "{name}: only a restored one is run held"
        );
        held_comes_back(name, &mut w, pid, &dir);
        return Verdict::Restored;
    }
    let out = suspend(pid, &dir, &[]);
    if expect == "restored" {
        assert_eq!(out.code, 0, "{name}: suspend --exit: {out:?}");
        comes_back(name, &mut w, pid, &dir);
        return Verdict::Restored;
    }
    let (words, always) = match expect.split_once(' ') {
        Some(("refused", words)) => (words, false),
        Some(("refused-always", words)) => (words, true),
        _ => panic!("{name}: expects {expect:?}"),
    };
    let said = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, UNSUPPORTED, "{name}: suspend --exit: {out:?}");
    assert!(
        said.contains(words),
        "{name}: the refusal must name {words:?}: {said}"
    );
    assert!(
        said.contains("nothing was frozen"),
        "{name}: refused before freezing: {said}"
    );
    assert!(!dir.path.exists(), "{name}: no image is left");
    if always {
        let out = suspend(pid, &dir, &["--hold"]);
        assert_eq!(out.code, UNSUPPORTED, "{name}: suspend --hold: {out:?}");
        assert!(
            format!("{}{}", out.stdout, out.stderr).contains("nothing was frozen"),
            "{name}: {out:?}"
        );
        return Verdict::Refused; // `w` is killed when dropped
    }
    // Held, it keeps the state.
    held_comes_back(name, &mut w, pid, &dir);
    Verdict::Refused
}

/// Starts feature program `name` (one that expects to be restored) with a
/// daemon, waits for its `ready PID`; `None` (noted) when it is not among
/// `SUSPEND_FEATURES`.
fn started(name: &str) -> Option<(Daemon, Proc, u32)> {
    if !selected(name) {
        return None;
    }
    let daemon = Daemon::start();
    let (w, pid) = spawned(name);
    Some((daemon, w, pid))
}

/// Starts feature program `name` (one that expects to be restored), the
/// daemon running; waits for its `ready PID`.
fn spawned(name: &str) -> (Proc, u32) {
    suspend_tests::feature(name, "expect restored")
}

/// `w` (ready as `pid`), killed once its image in `dir` was durable, is
/// reaped and resumed from that image; panics unless it then passes its
/// own check (exit 0, `ok`).
fn comes_back(name: &str, w: &mut Proc, pid: u32, dir: &ImageDir) {
    w.wait_exit(); // reaped: its pid is free for the resume
    let mut back = Proc::resume(&dir.path, pid, &[]);
    let code = back.wait_exit();
    assert!(
        code == 0 && back.seen.iter().any(|l| l == "ok"),
        "{name}: after the resume it exited {code}: {:#?}",
        back.seen
    );
}

/// Holds `w` (ready as `pid`) in `dir`, resumes it (lazily), and
/// panics unless it then passes its own check (exit 0, `ok`).
fn held_comes_back(name: &str, w: &mut Proc, pid: u32, dir: &ImageDir) {
    held_comes_back_with(name, w, pid, dir, &[]);
}

/// [`held_comes_back`], with `env` added to the resume's environment.
fn held_comes_back_with(name: &str, w: &mut Proc, pid: u32, dir: &ImageDir, env: &[(&str, &str)]) {
    let out = suspend(pid, dir, &["--hold"]);
    assert_eq!(out.code, 0, "{name}: suspend --hold: {out:?}");
    let back = agent_with(&["resume", dir.arg()], env);
    assert_eq!(back.code, 0, "{name}: resume of the held process: {back:?}");
    let code = w.wait_exit();
    assert!(
        code == 0 && w.seen.iter().any(|l| l == "ok"),
        "{name}: after the held resume it exited {code}: {:#?}",
        w.seen
    );
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn every_one_feature_workload_comes_back_exactly_or_is_refused() {
    let _daemon = Daemon::start();
    let names = features();
    assert!(
        !names.is_empty(),
        "no feature_* program in {}: `cargo xtask build` compiles tests/c/features",
        bin_dir().display()
    );
    let (mut restored, mut refused, mut skipped, mut failed) = (0, 0, Vec::new(), Vec::new());
    for name in &names {
        let verdict = catch_unwind(AssertUnwindSafe(|| match run(name, false) {
            // The same state, held.
            Verdict::Restored => run(name, true),
            other => other,
        }));
        match verdict {
            Ok(Verdict::Restored) => restored += 1,
            Ok(Verdict::Refused) => refused += 1,
            Ok(Verdict::Skipped(why)) => {
                note(&format!("feature {name} NOT RUN on this kernel: {why}"));
                skipped.push(name.clone());
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                eprintln!("FEATURE {name} FAILED: {message}");
                failed.push(name.clone());
            }
        }
    }
    note(&format!(
        "{} feature workloads: {restored} restored exactly (from the image, and held), {refused} \
         refused by name (and kept when held), {} not run on this kernel {skipped:?}, {} failed \
         {failed:?}",
        names.len(),
        skipped.len(),
        failed.len()
    ));
    assert!(failed.is_empty(), "failed: {failed:?}");
}

/// A periodic timer whose signal is ignored, through a suspend that lets
/// it run on (`--leave-running`) and then a hold: its expiries while it
/// was frozen or parked were queued (a traced thread, or one that blocks
/// the signal, never ignores it) and, before Linux 6.13, the first one
/// taken counted every period since as its overrun. Its own check after
/// the hold finds none.
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn an_ignored_timer_counts_no_overrun_after_a_suspend_that_left_it_running_and_a_hold() {
    let name = "posix_timer_ignored";
    let Some((_daemon, mut w, pid)) = started(name) else {
        return;
    };
    let dir = ImageDir::new("ignored-timer-left-running");
    let out = suspend(pid, &dir, &["--leave-running"]);
    assert_eq!(out.code, 0, "{out:?}");
    // Its threads are let go 300 ms (3 × QUIET) after they are back where
    // the image has them, still traced: an expiry meanwhile is queued, and
    // would count every period since as an overrun unless its timer is
    // settled last (the 7.3 guest's lazy unpark took that long).
    held_comes_back_with(
        name,
        &mut w,
        pid,
        &ImageDir::new("ignored-timer-held"),
        &[("SUSPEND_FAULT_UNPARK_DELAY_MS", "300")],
    );
}

/// Whether the running kernel is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// `precopy_churn` (given `args`) suspended with `--leave-running` while
/// it writes, killed and resumed from the image: its own check must find
/// every page as the last step before the freeze left it. Returns the
/// suspend's summary. On a kernel before 6.7 the suspend must say it
/// copied in one freeze.
fn churns_back(args: &[&str], label: &str) -> Option<String> {
    let name = "precopy_churn";
    if !selected(name) {
        return None;
    }
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin_dir().join(format!("feature_{name}")), args);
    assert_eq!(w.expect(""), "expect restored");
    let line = w.expect("");
    let pid: u32 = line
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line:?}, not `ready PID`"));
    // Let it write a while first.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let dir = ImageDir::new(&format!("precopy-churn-{label}"));
    let out = suspend(pid, &dir, &["--leave-running"]);
    assert_eq!(out.code, 0, "{out:?}");
    if kernel_at_least(6, 7) {
        assert!(
            out.stdout.contains("pre-copied while it ran"),
            "Linux 6.7 or later pre-copies: {out:?}"
        );
    } else {
        assert!(
            out.stdout.contains("copied in one freeze"),
            "before Linux 6.7 the freeze copies everything: {out:?}"
        );
        note("precopy_churn: NOT pre-copied on this kernel (before 6.7): one freeze copied all");
    }
    // SAFETY: kill(2) of the workload's own pid.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    w.wait_exit(); // reaped: its pid is free for the resume
    let mut back = Proc::resume(&dir.path, pid, &[]);
    let code = back.wait_exit();
    assert!(
        code == 0 && back.seen.iter().any(|l| l == "ok"),
        "{name} {label}: after the resume it exited {code}: {:#?}",
        back.seen
    );
    note(&format!(
        "precopy_churn {label}: {}; after the resume: {}",
        out.stdout.trim(),
        back.seen.join("; ")
    ));
    Some(out.stdout)
}

/// The MiB a `--leave-running` summary says the freeze copied after a
/// pre-copy (`…, then 0.1 MiB it wrote since copied frozen`).
fn copied_frozen(summary: &str) -> Option<f64> {
    let (before, _) = summary.split_once(" MiB it wrote since copied frozen")?;
    before.rsplit(' ').next()?.parse().ok()
}

/// A process that writes eight pages a millisecond (and discards some)
/// while it is saved with `--leave-running`: where the kernel tells which
/// pages a running process writes (Linux 6.7), its memory is pre-copied
/// while it runs and the freeze copies only what it wrote since, far less
/// than its 64 MiB; resumed, every page is as the last step before the
/// freeze left it.
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_process_writing_while_it_is_pre_copied_comes_back_as_it_was_at_the_freeze() {
    let Some(summary) = churns_back(&[], "slow") else {
        return;
    };
    if kernel_at_least(6, 7) {
        let frozen = copied_frozen(&summary).expect("the MiB copied frozen in the summary");
        assert!(
            frozen < 32.0,
            "a few MiB a second leaves the freeze little to copy: {summary}"
        );
    }
}

/// The same, writing as fast as it can: every page is written again
/// after the pre-copy copied it, and each must be copied again at the
/// freeze — a page saved from the pre-copy after it was written would be
/// caught by the workload's check.
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_process_writing_faster_than_it_is_pre_copied_comes_back_as_it_was_at_the_freeze() {
    churns_back(&["fast"], "fast");
}

/// The vDSO's clocks through glibc, its vDSO moved in place: this
/// kernel's is the image's (the same bytes), so nothing stands in for it.
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn the_vdso_clocks_come_back_with_this_kernels_vdso_moved_in_place() {
    if !selected("vdso_clock") {
        return;
    }
    let _daemon = Daemon::start();
    let dir = ImageDir::new("vdso-in-place");
    let (_w, pid) = vdso::clock_suspended(&dir);
    vdso::clock_resumed(&dir, pid, &[], vdso::IN_PLACE);
}

/// The vDSO's clocks through glibc, the resume made to stand in for its
/// vDSO with a proxy (`SUSPEND_FAULT_VDSO_PROXY=1`): a copy of the
/// image's vDSO at its address, each function's entry a jump into this
/// kernel's, which went elsewhere with its data pages. What a resume on
/// another kernel does, on this one.
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn the_vdso_clocks_come_back_through_a_proxy_standing_in_for_the_vdso() {
    if !selected("vdso_clock") {
        return;
    }
    let _daemon = Daemon::start();
    let dir = ImageDir::new("vdso-proxy");
    let (_w, pid) = vdso::clock_suspended(&dir);
    vdso::clock_resumed(&dir, pid, &[vdso::FORCE_PROXY], vdso::PROXIED);
}

/// `suspend --carry`: the file `feature_carried_file` writes is carried
/// in its image. Resumed where the file is gone (as on another machine),
/// it is made from the image and the process finds it as it was (offsets,
/// flags, size, mode, mtime, contents); resumed where another file of the
/// same length is at its path, the resume is refused naming it and that
/// file is left as it is; a --carry of a file the process has not open is
/// refused before anything is frozen.
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_carried_file_is_made_where_it_is_missing_and_never_replaces_one() {
    let name = "carried_file";
    let Some((_daemon, mut w, pid)) = started(name) else {
        return;
    };
    let path = format!("/tmp/feature-carried-{pid}");
    let not_open = agent(&[
        "suspend",
        &pid.to_string(),
        "-D",
        "/nonexistent-carry-test",
        "--exit",
        "--carry",
        "/etc/hostname",
    ]);
    assert_eq!(not_open.code, 8, "--carry of a file not open: {not_open:?}");
    assert!(
        not_open.stderr.contains("--carry /etc/hostname")
            && not_open.stderr.contains("nothing was frozen"),
        "{not_open:?}"
    );
    let dir = ImageDir::new("carried");
    let out = suspend(pid, &dir, &["--carry", &path]);
    assert_eq!(out.code, 0, "suspend --carry: {out:?}");
    w.wait_exit();
    // Another file at its path: refused, named, left alone.
    let other = vec![b'x'; 5000];
    std::fs::write(&path, &other).expect("another file");
    let refused = agent(&["resume", dir.arg()]);
    assert_eq!(refused.code, 9, "resume over another file: {refused:?}");
    assert!(refused.stderr.contains(&path), "names it: {refused:?}");
    assert_eq!(
        std::fs::read(&path).expect("still there"),
        other,
        "never replaced"
    );
    // Gone, as on another machine: made from the image.
    std::fs::remove_file(&path).expect("removed");
    comes_back(name, &mut w, pid, &dir);
}

/// Resumed on a kernel whose vDSO lacks a function nothing stands in for
/// (`SUSPEND_FAULT_VDSO_HIDE`: what a resume on an older kernel meets),
/// an image whose process cached that function's address: glibc caches
/// `getcpu`'s at start, so the workload's memory holds it, and the resume
/// is refused naming the function and where its address is, with nothing
/// created; the same image then resumes as it was.
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_vdso_function_with_no_stand_in_whose_address_the_process_holds_is_refused_by_name() {
    if !selected("vdso_clock") {
        return;
    }
    let _daemon = Daemon::start();
    let dir = ImageDir::new("vdso-hidden-held");
    let (_w, pid) = vdso::clock_suspended(&dir);
    let out = agent_with(
        &["resume", dir.arg()],
        &[("SUSPEND_FAULT_VDSO_HIDE", "__vdso_getcpu,getcpu")],
    );
    assert_eq!(out.code, 9, "resume with getcpu hidden: {out:?}");
    note(&format!("refused as it must be: {}", out.stderr.trim()));
    assert!(
        out.stderr.contains("`__vdso_getcpu`")
            && out
                .stderr
                .contains("the process holds its address (in its memory at 0x"),
        "the refusal names the function and where its address is: {out:?}"
    );
    assert!(
        !suspend_harness::procfs::pid_alive(pid),
        "the refused resume created pid {pid}"
    );
    vdso::clock_resumed(&dir, pid, &[], vdso::IN_PLACE);
}

/// Resumed with its vDSO's `getrandom` hidden (as on a kernel before
/// 6.11, and nothing standing in for it): glibc 2.36 never asked for that
/// function, so nothing in the process points to it; the proxy takes it
/// out of its symbol table and the process runs through the proxy.
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_vdso_function_the_process_never_cached_is_hidden_and_it_runs() {
    if !selected("vdso_clock") {
        return;
    }
    if !own_vdso_exports("__vdso_getrandom") {
        note(
            "a_vdso_function_the_process_never_cached_is_hidden_and_it_runs NOT RUN on this \
             kernel: its vDSO has no getrandom (came in 6.11) to hide",
        );
        return;
    }
    let _daemon = Daemon::start();
    let dir = ImageDir::new("vdso-hidden-unused");
    let (_w, pid) = vdso::clock_suspended(&dir);
    vdso::clock_resumed(
        &dir,
        pid,
        &[("SUSPEND_FAULT_VDSO_HIDE", "__vdso_getrandom,getrandom")],
        vdso::PROXIED,
    );
}

/// Whether this process's vDSO exports `name` (its dynamic string table
/// holds it: the vDSO is small, a search of its bytes will do).
fn own_vdso_exports(name: &str) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let Some((start, end)) = maps.lines().find(|l| l.ends_with("[vdso]")).and_then(|l| {
        let (range, _) = l.split_once(' ')?;
        let (a, b) = range.split_once('-')?;
        Some((
            u64::from_str_radix(a, 16).ok()?,
            u64::from_str_radix(b, 16).ok()?,
        ))
    }) else {
        return false;
    };
    // SAFETY: the vDSO is mapped readable for its whole length while this
    // process lives.
    let bytes = unsafe { std::slice::from_raw_parts(start as *const u8, (end - start) as usize) };
    let needle = format!("\0{name}\0");
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Whether feature program `name` is among `SUSPEND_FEATURES` (noted when
/// it is not).
fn selected(name: &str) -> bool {
    let selected = features().iter().any(|n| n == name);
    if !selected {
        note(&format!("{name} NOT RUN: not among SUSPEND_FEATURES"));
    }
    selected
}

/// The bytes `dir`'s page file takes on disk, and its length.
fn page_file_space(dir: &ImageDir) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(dir.path.join("pages.img")).expect("the image's pages.img");
    (meta.blocks() * 512, meta.len())
}

/// Zero pages are not stored: `feature_zero_pages` holds at least 8 MiB of
/// written zeros (32 MiB more with transparent huge pages, 16 of them
/// touched at one byte each), which its page file must not take on disk,
/// whether the dump copies into the mapped file (`--leave-running`), writes
/// through raw (`--exit --no-compress`) or compressed (`--exit`, where the
/// file itself is short); resumed from the last two, its own check finds
/// every byte as it was (a private file mapping's zeros too, not the
/// file's bytes).
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn zero_pages_are_not_stored() {
    let name = "zero_pages";
    let Some((_daemon, mut w, mut pid)) = started(name) else {
        return;
    };
    const MIB: u64 = 1 << 20;
    // `suspend` adds --exit where no other mode is given.
    let modes: [(&str, &[&str]); 3] = [
        ("--leave-running", &["--leave-running"]),
        ("--no-compress", &["--no-compress"]),
        ("--exit", &[]),
    ];
    // The raw page file's length: every saved page.
    let mut raw_len = 0;
    for (extra, args) in modes {
        let dir = ImageDir::new(&format!("zero-pages{extra}"));
        let out = suspend(pid, &dir, args);
        assert_eq!(out.code, 0, "suspend {extra}: {out:?}");
        let (on_disk, len) = page_file_space(&dir);
        note(&format!(
            "{extra}: pages.img is {:.1} MiB long, {:.1} MiB on disk",
            len as f64 / MIB as f64,
            on_disk as f64 / MIB as f64
        ));
        if extra == "--exit" {
            // Compressed: short, and dense.
            assert!(
                len + 8 * MIB <= raw_len && on_disk <= len + MIB,
                "{extra}: pages.img is {len} bytes long and takes {on_disk}, raw {raw_len}: the zeros are stored"
            );
        } else {
            assert!(
                len >= 12 * MIB && on_disk + 8 * MIB <= len,
                "{extra}: pages.img is {len} bytes long and takes {on_disk}: the 8 MiB of zeros are stored"
            );
            raw_len = len;
        }
        if extra != "--leave-running" {
            comes_back(name, &mut w, pid, &dir);
        }
        if extra == "--no-compress" {
            (w, pid) = spawned(name); // for the last mode
        }
    }
}
