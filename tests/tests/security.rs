//! What a local user must not reach through a resume: root's files (a
//! mapped file swapped for a symbolic link or for a root-only file), an
//! image she changed, an image in a directory she (or anyone else) could
//! have swapped. Each case is what a user could arrange with her own
//! process; each must end in a refusal with nothing created — and the same
//! image, left alone, must resume with the process checking itself.

use std::{
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::Path,
    process::Command,
};

use suspend_tests::{
    Daemon, ImageDir, Proc, agent, bin, field, ready_pid, refused, registry_entry, rewrite_record,
    scale::kill_loop_rounds, signal_counts, sigqueue, state_after, suspend, wait_for,
};

/// The unprivileged user the tests' processes run as (no passwd entry is
/// needed: the kernel knows users by number).
const USER: u32 = 2001;
const OTHER_USER: u32 = 2002;

/// Sets `path`'s modification time to `other`'s, to the nanosecond.
fn same_mtime(path: &Path, other: &Path) {
    let meta = std::fs::metadata(other).expect("stat");
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    ];
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: utimensat with a valid C string and two timespecs.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, cpath.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat: {}", std::io::Error::last_os_error());
}

/// A process of uid [`USER`] mapping a file of its own (the `--layout`
/// workload), suspended; returns it reaped, with its pid, its file, the
/// image and its resource limits (`/proc/PID/limits`).
fn users_process_suspended(name: &str) -> (u32, String, ImageDir, String) {
    let uid = USER.to_string();
    let mut w = Proc::spawn(bin("workload"), &["--uid", &uid, "--layout"]);
    let layout = w.expect("layout");
    let file = field(&layout, "file").to_owned();
    let pid = ready_pid(&mut w);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains(&uid)),
        "the workload runs as uid {uid}"
    );
    assert_eq!(
        std::fs::metadata(&file).expect("its file").uid(),
        USER,
        "the mapped file is the user's"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 777 ")),
        "the user's own limit: {limits}"
    );
    let dir = ImageDir::new(name);
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    w.wait_exit();
    (pid, file, dir, limits)
}

struct Remove(Vec<String>);

impl Drop for Remove {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_users_mapped_file_swapped_for_roots_is_refused() {
    let _daemon = Daemon::start();
    let (pid, file, dir, limits) = users_process_suspended("swap");
    // Root's secret, shaped like her file: same size, same mtime.
    let secret = format!("{file}.root-secret");
    let aside = format!("{file}.aside");
    let _cleanup = Remove(vec![file.clone(), secret.clone(), aside.clone()]);
    std::fs::write(&secret, vec![b'S'; 4 * 4096]).expect("secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    same_mtime(Path::new(&secret), Path::new(&file));
    std::fs::rename(&file, &aside).expect("her file aside");

    // A symbolic link to root's file where hers was.
    std::os::unix::fs::symlink(&secret, &file).expect("symlink");
    refused(&dir.path, pid, "symlink", 9, "symbolic link", |_| {});
    std::fs::remove_file(&file).expect("rm symlink");

    // Root's file itself in its place (as a hard link would put it): the
    // same size and mtime, so only who may open it stops it.
    std::fs::hard_link(&secret, &file).expect("link");
    refused(
        &dir.path,
        pid,
        "root-file",
        9,
        &format!("cannot be opened as the process's user (uid {USER})"),
        |_| {},
    );
    std::fs::remove_file(&file).expect("rm link");

    // Her own file back: the process resumes, as her, and checks itself
    // (its file mapping included).
    std::fs::rename(&aside, &file).expect("her file back");
    let mut r = Proc::resume(&dir.path, pid, &[]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uids = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    assert_eq!(
        uids.split_whitespace().skip(1).collect::<Vec<_>>(),
        vec![USER.to_string(); 4],
        "the resumed process is the user's: {uids}"
    );
    // Its limits too (read from /proc: root without CAP_SYS_RESOURCE may
    // not prlimit another user's process).
    let after = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    assert_eq!(after, limits, "its resource limits after the resume");
    let state = r.ask("check", "state");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_users_process_resumed_by_root_does_not_get_roots_session_keyring() {
    // Root's login session has a keyring (pam_keyinit) with her keys; a
    // process created by her `resume` would possess it, and so read them.
    let _daemon = Daemon::start();
    let (pid, _file, dir, _limits) = users_process_suspended("keyring");
    let mut r = Proc::resume_with_session_key(&dir.path, pid, c"suspend-test:roots-key");
    let said = r.ask("session-keyring", "session-keyring");
    if said.contains("FAIL") && said.contains("not implemented") {
        suspend_tests::note(&format!("this kernel has no keys (CONFIG_KEYS): {said}"));
        r.exit_ok();
        return;
    }
    assert_eq!(
        said,
        format!("session-keyring owner={USER} roots-key=absent"),
        "a session keyring of its own, the user's, without root's key"
    );
    let state = r.ask("check", "state");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn images_changed_or_kept_where_others_could_swap_them_are_refused() {
    let _daemon = Daemon::start();
    let (pid, file, dir, _) = users_process_suspended("forged");
    let _cleanup = Remove(vec![file]);

    // Made root's by editing the record (its checksum recomputed).
    refused(&dir.path, pid, "root-forged", 9, "changed after key", |d| {
        let uid = USER.to_string();
        rewrite_record(
            d,
            "process",
            &format!("\"uid\":[{uid},{uid},{uid},{uid}]"),
            "\"uid\":[0,0,0,0]",
        );
    });
    refused(&dir.path, pid, "no-signature", 9, "not signed", |d| {
        std::fs::remove_file(d.join("meta.sig")).expect("rm meta.sig");
    });
    // Another user's directory on the path, or one anyone may write to.
    refused(
        &dir.path,
        pid,
        "others-dir",
        9,
        &format!("is owned by uid {OTHER_USER}"),
        |d| {
            let parent = d.parent().expect("parent");
            std::os::unix::fs::chown(parent, Some(OTHER_USER), None).expect("chown");
        },
    );
    refused(&dir.path, pid, "open-dir", 9, "writable by others", |d| {
        let parent = d.parent().expect("parent");
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    });
    // A sticky directory anyone may write to (as /tmp) is fine, and so is
    // one of the process's own user: the image resumes from there.
    let copy = ImageDir::new("users-dir");
    let parent = copy.path.parent().expect("parent").to_path_buf();
    std::os::unix::fs::chown(&parent, Some(USER), None).expect("chown");
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&dir.path)
        .arg(&copy.path)
        .status()
        .expect("cp");
    assert!(status.success());
    let mut r = Proc::resume(&copy.path, pid, &[]);
    let state = r.ask("check", "state");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn the_signing_key_is_roots_and_named() {
    let out = agent(&["key", "show"]);
    assert_eq!(out.code, 0, "{out:?}");
    let id = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("id"))
        .map(str::trim)
        .expect("an id line")
        .to_owned();
    assert_eq!(id.len(), 16, "{id}");
    let key = Path::new("/var/lib/suspend/signing.key");
    let meta = std::fs::metadata(key).expect("the key file");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
    let dir = std::fs::metadata("/var/lib/suspend").expect("the key directory");
    assert_eq!(dir.uid(), 0);
    assert_eq!(
        dir.mode() & 0o022,
        0,
        "nobody else may write the key directory"
    );
    let list = agent(&["key", "list"]);
    assert!(list.stdout.contains(&format!("{id}  ")), "{list:?}");
    let bad = agent(&["key", "trust", "not-a-key"]);
    assert_ne!(bad.code, 0, "{bad:?}");
    assert!(bad.stderr.contains("not a key"), "{bad:?}");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_users_connection_flood_neither_stops_nor_starves_the_daemon() {
    // A daemon that may hold 256 descriptors: without a limit per user, the
    // flood below would use them all up.
    let daemon = Daemon::start_limited(&[], Some(256));
    let mut root_process = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut root_process);
    // Far more idle connections than the daemon has descriptors.
    let uid = USER.to_string();
    let mut flooder = Proc::spawn(bin("workload"), &["--uid", &uid, "--no-register"]);
    ready_pid(&mut flooder);
    flooder.send("flood 3000");
    let held = flooder.expect("flood");
    let held: usize = field(&held, "held").parse().expect("a count");
    assert!(held >= 1000, "the flooder opened {held} connections");
    // Root's suspend of another process goes through, and the daemon lives.
    let dir = ImageDir::new("flood");
    let out = suspend(pid, &dir, &["--leave-running"]);
    assert_eq!(out.code, 0, "root's suspend during the flood: {out:?}");
    let list = agent(&["list"]);
    assert_eq!(list.code, 0, "the daemon answers: {list:?}");
    assert!(
        daemon.log().contains("holds 64 connections already"),
        "the daemon says it closed the user's extra connections"
    );
    let state = root_process.ask("check", "state");
    assert_eq!(field(&state, "reason"), "continued", "{state}");
    root_process.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_pin_directory_a_user_made_first_is_refused() {
    // What a user could do before the daemon's first start.
    let unload = agent(&["unload"]);
    assert_eq!(unload.code, 0, "{unload:?}");
    let pin = Path::new("/sys/fs/bpf/suspend");
    std::fs::create_dir(pin).expect("a user's pin directory");
    std::os::unix::fs::chown(pin, Some(USER), Some(USER)).expect("chown");
    let log = std::env::temp_dir().join(format!("suspend-pin-{}.log", std::process::id()));
    let mut daemon = Command::new(bin("suspend-agent"))
        .arg("daemon")
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("running the daemon");
    // It must give up at once; one that runs is stopped after 10 s.
    let mut status = None;
    for _ in 0..200 {
        status = daemon.try_wait().expect("wait");
        if status.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if status.is_none() {
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let _ = agent(&["unload"]);
    let _ = std::fs::remove_dir(pin);
    assert!(
        status.is_some_and(|s| !s.success()),
        "the daemon did not refuse the directory: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "is not the daemon's own: it is owned by uid {USER}"
        )),
        "{stderr}"
    );
    // Its own, made anew, is root's and closed to others.
    let daemon = Daemon::start();
    let meta = std::fs::metadata(pin).expect("the pin directory");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o700));
    daemon.stop();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn check_says_what_the_daemon_finds_about_the_freeze_guard() {
    let out = agent(&["check", "--json"]);
    let features: serde_json::Value = serde_json::from_str(&out.stdout).expect("check --json");
    let lsm = features
        .as_array()
        .expect("a list")
        .iter()
        .find(|f| f["name"] == "bpf-lsm")
        .expect("a bpf-lsm line")
        .clone();
    let daemon = Daemon::start();
    let on = daemon.log().contains("freeze guard on");
    assert_eq!(
        lsm["available"].as_bool(),
        Some(on),
        "check says {lsm}, the daemon's guard is {}",
        if on { "on" } else { "off" }
    );
    daemon.stop();
}

/// The `Cap*`, `NoNewPrivs` and `Seccomp` lines of every thread of `pid`,
/// by tid.
fn confinement_of(pid: u32) -> Vec<(String, Vec<String>)> {
    let mut threads: Vec<(String, Vec<String>)> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("tasks")
        .flatten()
        .map(|t| {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            let lines = status
                .lines()
                .filter(|l| {
                    l.starts_with("Cap") || l.starts_with("NoNewPrivs") || l.starts_with("Seccomp")
                })
                .map(str::to_owned)
                .collect();
            (t.file_name().to_string_lossy().into_owned(), lines)
        })
        .collect();
    threads.sort();
    threads
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_root_process_with_capabilities_dropped_comes_back_confined() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--confine"]);
    let pid = ready_pid(&mut w);
    let before = confinement_of(pid);
    assert!(
        before.iter().all(|(_, l)| l
            .iter()
            .any(|l| l.starts_with("CapEff:") && l.ends_with("0000000000000401"))),
        "the workload dropped its capabilities: {before:?}"
    );
    let dir = ImageDir::new("confined");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    w.wait_exit();
    let mut r = Proc::resume(&dir.path, pid, &[]);
    // Every thread as it was (the client's helper thread may come and go
    // with its registration: compare the main thread and every other one
    // that was there before).
    let after = confinement_of(pid);
    for (tid, lines) in &before {
        if let Some((_, now)) = after.iter().find(|(t, _)| t == tid) {
            assert_eq!(now, lines, "thread {tid}: its confinement after the resume");
        }
    }
    let state = r.ask("check", "state");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_seccomp_filtered_process_comes_back_filtered() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--seccomp"]);
    let pid = ready_pid(&mut w);
    let state = w.ask("check", "state");
    assert_eq!(
        field(&state, "memory"),
        "intact",
        "the filter acts: {state}"
    );
    let before = confinement_of(pid);
    assert!(
        before[0].1.iter().any(|l| l == "Seccomp:\t2"),
        "filtered: {before:?}"
    );
    let dir = ImageDir::new("seccomp");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    w.wait_exit();
    let mut r = Proc::resume(&dir.path, pid, &[]);
    let after = confinement_of(pid);
    for (tid, lines) in &before {
        if let Some((_, now)) = after.iter().find(|(t, _)| t == tid) {
            assert_eq!(
                now, lines,
                "thread {tid}: its seccomp state after the resume"
            );
        }
    }
    // Its own check calls getpriority: still EPERM from the filter.
    let state = state_after(&mut r, "check", 1);
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn filters_a_thread_could_not_install_again_are_refused_before_freezing() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--seccomp-no-nnp"]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("seccomp-no-nnp");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 8, "{out:?}");
    assert!(out.stderr.contains("CAP_SYS_ADMIN"), "{out:?}");
    assert!(out.stderr.contains("nothing was frozen"), "{out:?}");
    assert!(!dir.path.exists(), "no image");
    let state = state_after(&mut w, "check", 1);
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    assert_eq!(field(&state, "reason"), "aborted", "{state}");
    w.exit_ok();
}

/// Runs `sh -c script` as uid [`USER`] with piped stdout.
fn users_shell(script: &str) -> Proc {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script]);
    // SAFETY: setgroups/setresgid/setresuid are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(USER, USER, USER) != 0
                || libc::setresuid(USER, USER, USER) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    Proc::spawn_command(cmd)
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn signals_users_send_their_own_processes_take_no_room_in_the_accounting() {
    let _daemon = Daemon::start();
    // 40 is SIGRTMIN+6: a real-time signal, counted when root sends it.
    let mut sh = users_shell(
        "trap '' 40; i=0; while [ $i -lt 200 ]; do kill -40 $$; i=$((i+1)); done; echo sent pid=$$; read x",
    );
    let sent = sh.expect("sent");
    let pid: u32 = field(&sent, "pid").parse().expect("pid");
    assert_eq!(
        signal_counts(pid, 40),
        (0, 0),
        "a user's signals to her own unregistered process are not counted"
    );
    // Root's are (the proof that the agent sent nothing to a process that
    // did not opt in rests on it).
    sigqueue(pid, 40, 1);
    let (generated, _) = wait_for("root's signal to be counted", || {
        let counts = signal_counts(pid, 40);
        (counts.0 >= 1).then_some(counts)
    });
    assert_eq!(generated, 1);
    sh.send("");
    assert_eq!(sh.wait_exit(), 0);
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_killed_daemon_kills_no_process() {
    // 20 processes suspended at once, the daemon SIGKILLed 5–250 ms later,
    // round after round: every process either was suspended (its image
    // then resumes it) or goes on; none dies, none stays frozen.
    const PROCESSES: usize = 20;
    let rounds = kill_loop_rounds();
    let mut procs: Vec<(Proc, u32)> = (0..PROCESSES)
        .map(|_| {
            let mut w = Proc::spawn(bin("workload"), &["--threads", "2"]);
            let pid = ready_pid(&mut w);
            (w, pid)
        })
        .collect();
    let (mut suspended, mut aborted, mut caught) = (0, 0, 0);
    for round in 0..rounds {
        let daemon = Daemon::start();
        for (_, pid) in &procs {
            wait_for(&format!("pid {pid} registered"), || {
                registry_entry(*pid).filter(|e| e["state"] == "registered")
            });
        }
        let dirs: Vec<ImageDir> = (0..PROCESSES)
            .map(|i| ImageDir::new(&format!("kill-loop-{round}-{i}")))
            .collect();
        let clients: Vec<_> = procs
            .iter()
            .zip(&dirs)
            .map(|((_, pid), dir)| {
                let (pid, image) = (pid.to_string(), dir.arg().to_owned());
                std::thread::spawn(move || agent(&["suspend", &pid, "-D", &image, "--exit"]))
            })
            .collect();
        // A spread of moments, the same in every run.
        let after = 5 + (round as u64 * 97 + 13) % 246;
        std::thread::sleep(std::time::Duration::from_millis(after));
        daemon.kill();
        let outs: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        let _daemon = Daemon::start();
        for (i, out) in outs.iter().enumerate() {
            let pid = procs[i].1;
            // Suspended before the kill (told so, or killed right after
            // its image was complete and before the answer): the image
            // brings it back.
            let in_image = out.code == 0 || (dirs[i].path.exists() && !procs[i].0.alive());
            if in_image {
                procs[i].0.wait_exit();
                procs[i].0 = Proc::resume(&dirs[i].path, pid, &[]);
                suspended += 1;
            } else {
                aborted += 1;
            }
            let w = &mut procs[i].0;
            assert!(
                w.alive(),
                "round {round} (daemon killed after {after} ms): pid {pid} died; its suspend said {out:?}"
            );
            // A thread the agent was running a system call in when it was
            // killed waits in the trampoline (5 s) before it goes on by
            // itself: its work stalls until then.
            let first = w.ask("check", "state");
            if field(&first, "memory") != "intact" {
                assert_eq!(
                    field(&first, "memory"),
                    "worker_thread_stopped",
                    "pid {pid}: {first}"
                );
                caught += 1;
                let state = wait_for(&format!("pid {pid} to go on by itself"), || {
                    let s = w.ask("check", "state");
                    (field(&s, "memory") == "intact").then_some(s)
                });
                assert_eq!(field(&state, "memory"), "intact", "pid {pid}: {state}");
            }
        }
    }
    suspend_tests::note(&format!(
        "{rounds} round(s) of {PROCESSES} suspends, daemon killed each time: {suspended} suspended and resumed, {aborted} aborted ({caught} with a thread caught inside a system call for the agent, which went on by itself), none died"
    ));
    for (w, _) in procs {
        w.exit_ok();
    }
}
