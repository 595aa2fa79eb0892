//! Freeze and dump: the image holds what the process is (its mappings,
//! threads and files as /proc showed them before the freeze, and the very
//! bytes it wrote), is written durably with the right permissions, and every
//! failure between "ready" and "image durable" lets the process go with
//! on_resume(aborted) and leaves no image behind.

use std::{collections::BTreeSet, os::unix::fs::PermissionsExt as _, path::Path, time::Duration};

use suspend_tests::{
    Daemon, ImageDir, Proc, Value, agent, bin, exit::UNSUPPORTED, field, image_page, inspect,
    layout_byte, ready_pid, registry_entry, suspend, wait_for,
};

/// (start, end, perms, path) of every line of `/proc/PID/maps`.
fn proc_maps(pid: u32) -> BTreeSet<(u64, u64, String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(6, ' ').collect();
            let (s, e) = f[0].split_once('-').unwrap();
            (
                u64::from_str_radix(s, 16).unwrap(),
                u64::from_str_radix(e, 16).unwrap(),
                f[1].to_owned(),
                f.get(5).map_or("", |p| p.trim()).to_owned(),
            )
        })
        .collect()
}

fn proc_numbers(pid: u32, dir: &str) -> BTreeSet<u64> {
    std::fs::read_dir(format!("/proc/{pid}/{dir}"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn mapping(image: &Value, start: u64) -> &Value {
    image["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["start"] == start)
        .unwrap_or_else(|| panic!("no mapping at {start:#x}"))
}

/// The workload's self-check after a suspend it survived: `reason` is what
/// on_resume said.
fn survived(w: &mut Proc, reason: &str) {
    let state = w.ask("check", "state");
    assert_eq!(field(&state, "resume"), "1", "{state}");
    assert_eq!(field(&state, "reason"), reason, "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn image_holds_what_the_process_is() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--layout"]);
    let layout = w.expect("layout");
    let pid = ready_pid(&mut w);
    let at =
        |key: &str| u64::from_str_radix(field(&layout, key).trim_start_matches("0x"), 16).unwrap();
    let (a, b, c, d) = (at("a"), at("b"), at("c"), at("d"));
    let _file = scopeguard(field(&layout, "file").to_owned());

    // What /proc says before the freeze, once the process has settled.
    let maps = wait_for("the workload's mappings to settle", || {
        let before = proc_maps(pid);
        std::thread::sleep(std::time::Duration::from_millis(200));
        (proc_maps(pid) == before).then_some(before)
    });
    let tids = proc_numbers(pid, "task");
    let fds = proc_numbers(pid, "fd");

    let dir = ImageDir::new("layout");
    let out = suspend(pid, &dir, &["--leave-running"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("left running, on_resume(continued) ran"),
        "{out:?}"
    );

    let image = inspect(&dir.path);
    let image_maps: BTreeSet<_> = image["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["start"].as_u64().unwrap(),
                m["end"].as_u64().unwrap(),
                m["perms"].as_str().unwrap().to_owned(),
                m["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(image_maps, maps, "every mapping, as /proc showed it");
    let image_tids: BTreeSet<u64> = image["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tid"].as_u64().unwrap())
        .collect();
    assert_eq!(image_tids, tids, "every thread");
    let image_fds: BTreeSet<u64> = image["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].as_u64().unwrap())
        .collect();
    assert_eq!(
        image_fds, fds,
        "every fd (the client's connection left out)"
    );
    assert_eq!(image["witness"]["consistent"], true);
    assert_eq!(
        image["witness"]["frozen_threads"].as_u64(),
        Some(tids.len() as u64)
    );
    assert_eq!(image["process"]["pid"], pid);

    // Its vDSO: the functions glibc calls, inside the [vdso] mapping, and
    // its bytes (base64), all of them (a resume on another kernel makes
    // a proxy of them).
    let vdso = maps
        .iter()
        .find(|(.., path)| path == "[vdso]")
        .expect("a [vdso] mapping");
    let vdso_len = vdso.1 - vdso.0;
    let record = &image["process"]["vdso"];
    let functions = record["symbols"].as_array().expect("the vDSO's functions");
    for name in [
        "__vdso_clock_gettime",
        "__vdso_gettimeofday",
        "__vdso_time",
        "__vdso_getcpu",
    ] {
        let f = functions
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} among {functions:?}"));
        let (offset, size) = (f["offset"].as_u64().unwrap(), f["size"].as_u64().unwrap());
        assert!(size > 0 && offset + size <= vdso_len, "{f}");
    }
    assert_eq!(
        record["bytes"].as_str().expect("its bytes").len() as u64,
        vdso_len.div_ceil(3) * 4,
        "every byte of the vDSO, base64"
    );
    assert_eq!(record["blake3"].as_str().map(str::len), Some(64));

    // Only pages that exist are saved, and they hold what was written.
    assert_eq!(
        mapping(&image, a)["saved_pages"],
        10,
        "10 of 64 anonymous pages written"
    );
    assert_eq!(
        mapping(&image, b)["saved_pages"],
        3,
        "3 pages of a 1 GiB reservation"
    );
    assert_eq!(
        mapping(&image, c)["saved_pages"],
        1,
        "the PROT_NONE page holding data"
    );
    assert_eq!(mapping(&image, c)["perms"], "---p");
    assert_eq!(
        mapping(&image, d)["saved_pages"],
        1,
        "only the written page of the private file mapping"
    );
    for (region, start, page) in [
        (1, a, 3),
        (1, a, 9),
        (2, b, 0),
        (2, b, 1000),
        (2, b, 200_000),
        (3, c, 0),
        (4, d, 1),
    ] {
        let bytes = image_page(&dir.path, start, page)
            .unwrap_or_else(|| panic!("page {page} of {start:#x} not saved"));
        let want = layout_byte(region, page as usize);
        assert!(
            bytes.iter().all(|&x| x == want),
            "page {page} of region {region} holds other bytes"
        );
    }
    assert!(
        image_page(&dir.path, a, 10).is_none(),
        "an untouched page is not saved"
    );
    assert!(
        image_page(&dir.path, d, 0).is_none(),
        "an unwritten file page is the file's"
    );

    // Only root can read it.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path), 0o700);
    assert_eq!(mode(&dir.path.join("meta.jsonl")), 0o600);
    assert_eq!(mode(&dir.path.join("pages.img")), 0o600);

    // Kernel state asked from inside the threads.
    let process = &image["process"];
    let action = |signal: u64| {
        process["sigactions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["signal"] == signal)
            .cloned()
            .unwrap()
    };
    let usr1 = action(libc::SIGUSR1 as u64);
    assert_eq!(
        usr1["handler"].as_u64(),
        Some(at("usr1")),
        "the SIGUSR1 handler"
    );
    let flags = usr1["flags"].as_u64().unwrap();
    assert_eq!(
        flags & (libc::SA_SIGINFO | libc::SA_RESTART) as u64,
        (libc::SA_SIGINFO | libc::SA_RESTART) as u64
    );
    assert_eq!(
        usr1["mask"].as_u64(),
        Some(1 << (libc::SIGUSR2 - 1)),
        "SIGUSR2 masked in the handler"
    );
    assert_eq!(
        action(libc::SIGPIPE as u64)["handler"],
        1,
        "SIGPIPE ignored (Rust's runtime does)"
    );
    assert_eq!(
        action(libc::SIGTERM as u64)["handler"],
        0,
        "SIGTERM default"
    );
    assert_eq!(
        process["brk"].as_u64(),
        Some(at("brk")),
        "the exact program break"
    );
    let timer = &process["itimers"][0];
    assert_eq!(
        (timer["which"].as_u64(), timer["interval_us"].as_u64()),
        (Some(0), Some(1_000_000_000))
    );
    assert!(timer["value_us"].as_u64().unwrap() <= 1_000_000_000);
    let threads = image["threads"].as_array().unwrap();
    let main = threads.iter().find(|t| t["tid"] == pid).unwrap();
    assert_eq!(
        main["sigaltstack"]["sp"].as_u64(),
        Some(at("altstack")),
        "the main thread's sigaltstack"
    );
    assert_eq!(main["sigaltstack"]["size"], 65536);
    assert!(
        threads
            .iter()
            .all(|t| t["tid_address"].as_u64().is_some_and(|a| a != 0)),
        "glibc sets every thread's tid address"
    );

    survived(&mut w, "continued");
    w.exit_ok();
}

/// Removes a file when dropped.
fn scopeguard(path: String) -> impl Drop {
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    Remove(path)
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn suspend_kills_only_after_the_image_is_durable() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("kill");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("the process was killed"), "{out:?}");
    assert!(out.stdout.contains("frozen for"), "a summary line: {out:?}");
    assert_ne!(w.wait_exit(), 0, "killed");
    let image = inspect(&dir.path);
    assert_eq!(image["process"]["pid"], pid);
    assert_eq!(image["witness"]["consistent"], true);
    wait_for("the registration to go with the process", || {
        registry_entry(pid).is_none().then_some(())
    });
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn threads_spawning_threads_are_all_frozen() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--spawner"]);
    let pid = ready_pid(&mut w);
    for round in 0..5 {
        let dir = ImageDir::new(&format!("spawner{round}"));
        let out = suspend(pid, &dir, &["--leave-running"]);
        assert_eq!(out.code, 0, "round {round}: {out:?}");
        let image = inspect(&dir.path);
        assert_eq!(image["witness"]["consistent"], true, "round {round}");
        assert!(
            image["threads"].as_array().unwrap().len() >= 3,
            "round {round}: main, worker, helper and spawners"
        );
    }
    let state = w.ask("check", "state");
    assert_eq!(field(&state, "resume"), "5", "{state}");
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn unsupported_fds_are_refused_before_freezing() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let fds = w.ask("socket", "socket");
    let (s1, s2) = field(&fds, "fds").split_once(',').unwrap();
    let dir = ImageDir::new("socket");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, UNSUPPORTED, "{out:?}");
    for fd in [s1, s2] {
        assert!(
            out.stderr.contains(&format!("fd {fd} (socket:[")),
            "names fd {fd}: {out:?}"
        );
    }
    assert!(out.stderr.contains("nothing was frozen"), "{out:?}");
    assert!(
        out.stderr.contains("unix, unnamed"),
        "each socket is named by what it is: {out:?}"
    );
    assert!(
        dir.leftovers().is_empty(),
        "no image: {:?}",
        dir.leftovers()
    );
    survived(&mut w, "aborted");

    let out = suspend(pid, &dir, &["--leave-running", "--drop-unsupported-fds"]);
    assert_eq!(out.code, 0, "{out:?}");
    let image = inspect(&dir.path);
    let saved: Vec<String> = image["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].to_string())
        .collect();
    assert!(
        !saved.contains(&s1.to_owned()) && !saved.contains(&s2.to_owned()),
        "dropped: {saved:?}"
    );
    w.exit_ok();
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Mount(std::path::PathBuf);

impl Mount {
    fn tmpfs(at: &Path, options: &str) -> Self {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "suspend-test"])
            .arg(at)
            .status()
            .expect("mount");
        assert!(status.success(), "mount -t tmpfs -o {options}");
        Self(at.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn failed_dump_lets_go(
    dir: &ImageDir,
    w: &mut Proc,
    pid: u32,
    out: &suspend_tests::Output,
    why: &str,
) {
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains(why), "says why ({why}): {out:?}");
    assert!(
        out.stderr
            .contains("the process was let go, on_resume(aborted) ran"),
        "{out:?}"
    );
    assert!(!dir.path.exists(), "no image");
    assert!(
        dir.leftovers().is_empty(),
        "nothing half-written left: {:?}",
        dir.leftovers()
    );
    assert_eq!(
        registry_entry(pid).expect("still registered")["state"],
        "registered"
    );
    survived(w, "aborted");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn full_filesystem_lets_the_process_go() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("full");
    let _mount = Mount::tmpfs(dir.parent(), "size=128k,mode=0755");
    let out = suspend(pid, &dir, &[]);
    failed_dump_lets_go(&dir, &mut w, pid, &out, "No space left on device");
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn unwritable_directory_lets_the_process_go() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("readonly");
    let _mount = Mount::tmpfs(dir.parent(), "ro,size=1m");
    let out = suspend(pid, &dir, &[]);
    failed_dump_lets_go(&dir, &mut w, pid, &out, "Read-only file system");
    w.exit_ok();
}

/// Starts `suspend -D` in the background against a daemon whose test hooks
/// hold the dump, and waits until `pid` is in registry state `state`
/// (`freezing`: threads stopped, syscalls being run inside them; `frozen`:
/// nothing runs any more, memory is being copied).
fn suspend_in_background(
    pid: u32,
    dir: &ImageDir,
    state: &str,
) -> std::thread::JoinHandle<suspend_tests::Output> {
    let image = dir.arg().to_owned();
    let cli =
        std::thread::spawn(move || agent(&["suspend", &pid.to_string(), "-D", &image, "--exit"]));
    wait_for(&format!("the process to be {state}"), || {
        registry_entry(pid).filter(|e| e["state"] == state)
    });
    cli
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn witness_refuses_a_dump_whose_process_ran() {
    // The hook lets one frozen thread run mid-dump, as an agent bug or an
    // outside wake-up would; ptrace itself keeps ordinary signals from
    // waking a stopped thread.
    let _daemon = Daemon::start_with(&[("SUSPEND_FAULT_WAKE_THREAD", "1")]);
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("witness");
    let out = suspend(pid, &dir, &[]);
    failed_dump_lets_go(&dir, &mut w, pid, &out, "ran while frozen");
    w.exit_ok();
}

/// Kills the process once the dump is in registry state `state` (held
/// there by the test hook `hook`): the dump fails, no image is left, the
/// process is reaped (no thread stays traced by the daemon), and the daemon
/// still works.
fn killed_mid_dump(hook: &str, state: &str, name: &str) {
    let _daemon = Daemon::start_with(&[(hook, "1500")]);
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new(name);
    let cli = suspend_in_background(pid, &dir, state);
    // SAFETY: killing the process this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let out = cli.join().unwrap();
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        !dir.path.exists(),
        "no image of a process that died mid-dump"
    );
    assert!(dir.leftovers().is_empty(), "{:?}", dir.leftovers());
    w.wait_exit();
    let mut other = Proc::spawn(bin("workload"), &[]);
    let other_pid = ready_pid(&mut other);
    assert_eq!(
        suspend_tests::dry_run(other_pid, &[]).code,
        0,
        "the daemon still works"
    );
    other.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn process_killed_mid_dump_leaves_no_image() {
    killed_mid_dump("SUSPEND_FAULT_DUMP_DELAY_MS", "frozen", "killed");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn process_killed_while_its_threads_are_asked_leaves_no_image() {
    // Killed while a thread is borrowed for a syscall: the leader's exit is
    // reported only after its other threads are reaped, so a blocking wait
    // on it would hang the daemon (found in a 6.1 guest).
    killed_mid_dump("SUSPEND_FAULT_INSIDE_DELAY_MS", "freezing", "killed-inside");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn daemon_killed_mid_dump_does_not_leave_the_process_frozen() {
    let daemon = Daemon::start_with(&[("SUSPEND_FAULT_DUMP_DELAY_MS", "3000")]);
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("daemon");
    let cli = suspend_in_background(pid, &dir, "frozen");
    daemon.kill();
    let out = cli.join().unwrap();
    assert_ne!(out.code, 0, "{out:?}");
    // It answers (a frozen process would not), and says how it ended.
    let state = wait_for("on_resume(aborted)", || {
        let line = w.ask("check", "state");
        (field(&line, "resume") == "1").then_some(line)
    });
    assert_eq!(field(&state, "reason"), "aborted", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains("TracerPid:\t0"),
        "nobody traces it any more"
    );
    assert!(!dir.path.exists(), "no image");
    // The killed agent left its partial image; the next daemon removes it
    // and finds the process registered and usable.
    let left = dir.leftovers();
    assert!(
        left.iter().any(|n| n.starts_with(".image.partial-")),
        "a killed agent leaves its partial image: {left:?}"
    );
    let _daemon = Daemon::start();
    assert_eq!(
        dir.leftovers(),
        Vec::<String>::new(),
        "the next daemon removes it"
    );
    assert_eq!(
        registry_entry(pid).expect("registered")["state"],
        "registered"
    );
    w.exit_ok();
}

/// Errno of the last failed libc call.
fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Reads 8 bytes of `pid`'s memory at the start of its first mapping:
/// `Ok` or the errno.
fn peek(pid: u32) -> Result<(), i32> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| e.raw_os_error().unwrap_or(0))?;
    let start = u64::from_str_radix(maps.split('-').next().unwrap(), 16).unwrap();
    let mut buf = [0u8; 8];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: 8,
    };
    let remote = libc::iovec {
        iov_base: start as *mut libc::c_void,
        iov_len: 8,
    };
    // SAFETY: one local buffer we own; the kernel checks the remote side.
    let n = unsafe { libc::process_vm_readv(pid as i32, &local, 1, &remote, 1, 0) };
    if n == 8 { Ok(()) } else { Err(errno()) }
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn guard_refuses_other_senders_and_readers_while_frozen() {
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    let listed = lsm.trim().split(',').any(|l| l == "bpf");
    let daemon = Daemon::start_with(&[("SUSPEND_FAULT_DUMP_DELAY_MS", "1500")]);
    let log = daemon.log_tail();
    let guard = log.contains("freeze guard on");
    if std::env::var_os("SUSPEND_EXPECT_LSM_GUARD").is_some_and(|v| v == "1") {
        assert!(
            guard,
            "this kernel must run the freeze guard; the daemon said:\n{log}"
        );
    }
    if !guard {
        let why = log
            .lines()
            .find(|l| l.contains("freeze guard off"))
            .unwrap_or("(no reason logged)");
        suspend_tests::note(&format!(
            "the freeze guard cannot act on this kernel (LSMs: {}; bpf listed: {listed}): {why}; \
             checking only that the agent says so (`cargo xtask vm-test` checks the guard itself)",
            lsm.trim()
        ));
        assert!(
            why.contains("freeze guard off"),
            "the daemon says why the guard is off"
        );
    }
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("guard");
    let image = dir.arg().to_owned();
    let cli = std::thread::spawn(move || {
        agent(&["suspend", &pid.to_string(), "-D", &image, "--leave-running"])
    });
    wait_for("the process to be frozen", || {
        registry_entry(pid).filter(|e| e["state"] == "frozen")
    });
    if guard {
        // SAFETY: signalling the process this test started.
        let sent = unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        assert_eq!(
            (sent, errno()),
            (-1, libc::EPERM),
            "SIGTERM from another process is refused"
        );
        // EPERM, or EACCES before 6.2 (process_vm_readv's own mapping).
        let read = peek(pid);
        assert!(
            matches!(read, Err(libc::EPERM | libc::EACCES)),
            "reading its memory is refused: {read:?}"
        );
    }
    let out = cli.join().unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    let said = if guard {
        "freeze guard on"
    } else {
        "freeze guard off"
    };
    assert!(out.stderr.contains(said), "{out:?}");
    // The guard is lifted with the freeze.
    assert_eq!(peek(pid), Ok(()), "readable again");
    survived(&mut w, "continued");
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn check_lists_what_an_image_would_hold_and_sends_nothing() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let before = suspend_tests::signal_counts(pid, suspend_common::DEFAULT_SUSPEND_SIGNAL);
    let pid_arg = pid.to_string();
    let out = agent(&["suspend", &pid_arg, "--check"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("opted in"), "{out:?}");
    assert!(out.stdout.contains("saved"), "{out:?}");
    // A socket: the same refusal a suspend makes before freezing.
    let line = w.ask("socket", "socket");
    let out = agent(&["suspend", &pid_arg, "--check"]);
    assert_eq!(out.code, 8, "{line}: {out:?}");
    assert!(out.stdout.contains("refused"), "{out:?}");
    assert!(out.stdout.contains("socket"), "{out:?}");
    assert_eq!(
        suspend_tests::signal_counts(pid, suspend_common::DEFAULT_SUSPEND_SIGNAL),
        before,
        "nothing was sent"
    );
    let state = w.ask("check", "state");
    assert_eq!(field(&state, "suspend"), "0", "never asked: {state}");
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn daemon_killed_while_a_thread_runs_a_call_for_it_does_not_kill_the_process() {
    // The hook holds the agent while the first thread is borrowed, stopped
    // in the client's trampoline with the agent's registers: a tracer
    // killed then used to let it go with them (and a SIGTRAP).
    let daemon = Daemon::start_with(&[("SUSPEND_FAULT_INSIDE_DELAY_MS", "3000")]);
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("daemon-inside");
    let cli = suspend_in_background(pid, &dir, "freezing");
    std::thread::sleep(Duration::from_millis(1000));
    daemon.kill();
    let out = cli.join().unwrap();
    assert_ne!(out.code, 0, "{out:?}");
    let state = wait_for("on_resume(aborted)", || {
        let line = w.ask("check", "state");
        (field(&line, "resume") == "1").then_some(line)
    });
    assert_eq!(field(&state, "reason"), "aborted", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    // The borrowed thread put itself back: the trampoline says so in the
    // save area of the client block (untouched since: no agent ran).
    // Where the freeze guard is on, its lease outlives the dead agent by
    // up to 10 s: readers of its maps and memory are refused until then.
    let released = wait_for("the freeze guard's lease to lapse", || {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
        let block = maps
            .lines()
            .find(|l| l.contains("/memfd:suspend-client"))
            .and_then(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
            .expect("the client block");
        let mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
        let mut released = [0u8; 8];
        std::os::unix::fs::FileExt::read_exact_at(&mem, &mut released, block + 3072 + 32).ok()?;
        Some(released)
    });
    assert_eq!(
        u64::from_ne_bytes(released),
        1,
        "the thread waited for the agent, then put itself back"
    );
    // And the process suspends and resumes whole with the next daemon.
    let _daemon = Daemon::start();
    wait_for("registered again", || {
        registry_entry(pid).filter(|e| e["state"] == "registered")
    });
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    w.wait_exit();
    let mut back = Proc::resume(&dir.path, pid, &[]);
    let state = back.ask("check", "state");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    back.exit_ok();
}
