//! Resume: workloads suspended (killed), resumed from their image, then
//! checking themselves; bad images refused before anything is created.

use std::{os::unix::fs::OpenOptionsExt as _, path::Path, process::Command};

use suspend_tests::{
    Daemon, ImageDir, Proc, agent, bin, field, flip_byte, inspect, note, pid_alive, ready_pid,
    refused, registry_entry, rewrite_record, state_after, suspend, wait_for,
};

/// The process's fds and what they are (sockets left out: the client's
/// short-lived connections to the agent come and go; so is glibc's
/// `/sys/devices/system/cpu/online`, which a thread's first `malloc` opens
/// and closes at once while it picks an arena).
fn fds(pid: u32) -> Vec<(u32, String)> {
    let mut fds: Vec<(u32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e.file_name().to_str()?.parse().ok()?;
            let link = std::fs::read_link(e.path())
                .ok()?
                .to_string_lossy()
                .into_owned();
            (!link.starts_with("socket:") && link != "/sys/devices/system/cpu/online")
                .then_some((n, link))
        })
        .collect();
    fds.sort();
    fds
}

/// Suspends `w` (pid `pid`) to a new image, reaps it, resumes it; the
/// resumed process has the same fd numbers as before (pipes and ttys are
/// the resume command's own, so only the numbers and kinds are compared).
fn suspend_and_resume(w: &mut Proc, pid: u32, name: &str) -> (Proc, ImageDir) {
    let kind = |fds: Vec<(u32, String)>| -> Vec<(u32, String)> {
        fds.into_iter()
            .map(|(n, link)| (n, link.split(':').next().unwrap_or("").to_owned()))
            .collect()
    };
    let before = kind(fds(pid));
    let dir = ImageDir::new(name);
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "suspend: {out:?}");
    w.wait_exit();
    assert!(!pid_alive(pid), "pid {pid} is gone after the suspend");
    let resumed = Proc::resume(&dir.path, pid, &[]);
    let after = kind(fds(pid));
    assert_eq!(after, before, "pid {pid}: its descriptors after the resume");
    (resumed, dir)
}

/// The resumable workload, started and suspended (killed) to a new image
/// `name`; not reaped yet.
fn resumable_suspended(name: &str) -> (Proc, u32, ImageDir) {
    let mut w = Proc::spawn(bin("resumable"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new(name);
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "suspend: {out:?}");
    (w, pid, dir)
}

/// A resumed workload was told "restored" (`resumes` times in all) and
/// passes its own check.
fn restored_intact(r: &mut Proc, resumes: u32) {
    let state = state_after(r, "state", resumes);
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    check_ok(r);
}

fn check_ok(w: &mut Proc) {
    let line = w.ask("check", "check");
    assert_eq!(line, "check ok", "the workload's own check: {line}");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn resumed_workload_finds_all_its_state_intact() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("resumable"), &[]);
    let pid = ready_pid(&mut w);
    check_ok(&mut w);
    let (mut r, _dir) = suspend_and_resume(&mut w, pid, "resumable");
    let state = state_after(&mut r, "state", 1);
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    assert_eq!(field(&state, "suspend"), "1", "{state}");
    assert_eq!(field(&state, "resume"), "1", "{state}");
    check_ok(&mut r);
    // The last check ends the waiting threads: the pending signal, the
    // held mutex, the condvar, joins.
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn the_same_process_is_suspended_and_resumed_three_times() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("resumable"), &[]);
    let pid = ready_pid(&mut w);
    for round in 1..=3 {
        let (mut r, _dir) = suspend_and_resume(&mut w, pid, &format!("round{round}"));
        restored_intact(&mut r, round);
        // It registered with the agent again, so it can be suspended again.
        let entry = wait_for("the resumed process to register again", || {
            registry_entry(pid)
        });
        assert_eq!(entry["state"], "registered", "{entry}");
        w = r;
    }
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn c_program_resumes_through_the_c_api() {
    let _daemon = Daemon::start();
    let mut c = Proc::spawn(bin("c_workload"), &[]);
    let pid = ready_pid(&mut c);
    let (mut r, _dir) = suspend_and_resume(&mut c, pid, "c");
    let state = state_after(&mut r, "check", 1);
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    assert_eq!(field(&state, "resume"), "1", "{state}");
    r.exit_ok();
}

/// An unmodified Python interpreter under the preload shim: a thread keeps
/// counting, the main loop checks its data.
const PYTHON: &str = r#"
import os, sys, threading, time
data = {i: str(i * i) for i in range(200000)}
ticks = [0]
def tick():
    while True:
        time.sleep(0.05)
        ticks[0] += 1
threading.Thread(target=tick, daemon=True).start()
print(f"ready pid={os.getpid()}", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd == ["check"]:
        ok = all(data[i] == str(i * i) for i in range(200000))
        before = ticks[0]
        time.sleep(0.5)
        moving = ticks[0] > before
        print(f"state memory={'intact' if ok else 'changed'} ticking={moving}", flush=True)
    elif cmd == ["exit"]:
        sys.exit(0)
"#;

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn unmodified_python_under_the_preload_shim_resumes() {
    let _daemon = Daemon::start();
    let mut cmd = Command::new(bin("suspend-agent"));
    cmd.args(["run", "--", "python3", "-c", PYTHON]);
    let mut py = Proc::spawn_command(cmd);
    let pid = ready_pid(&mut py);
    wait_for("the preloaded python to register", || registry_entry(pid));
    let (mut r, _dir) = suspend_and_resume(&mut py, pid, "python");
    let state = r.ask("check", "state");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    assert_eq!(field(&state, "ticking"), "True", "{state}");
    r.exit_ok();
}

/// Rewrites the header record of `meta.jsonl` with `version`, checksum
/// recomputed, so that only the version is wrong.
fn set_version(dir: &Path, version: u32) {
    // Whatever version the agent writes now.
    let meta = std::fs::read_to_string(dir.join("meta.jsonl")).expect("reading meta.jsonl");
    let header = meta.lines().next().expect("a header line");
    let at = header
        .find("\"version\":")
        .expect("a version in the header")
        + 10;
    let digits: String = header[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    rewrite_record(
        dir,
        "header",
        &format!("\"version\":{digits}"),
        &format!("\"version\":{version}"),
    );
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn bad_images_are_refused_before_anything_is_created() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--layout"]);
    let layout = w.expect("layout");
    let file = field(&layout, "file").to_owned();
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _file = Remove(file.clone());
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("good");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    w.wait_exit();
    let image = dir.path.clone();
    let pages = std::fs::metadata(image.join("pages.img")).unwrap().len();

    refused(&image, pid, "truncated", 9, "pages.img", |d| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(d.join("pages.img"))
            .unwrap();
        // A compressed page file may be shorter than a page.
        f.set_len(pages.saturating_sub(4096).max(pages / 2))
            .unwrap();
    });
    // In a frame the decoder may find it (a frame that does not
    // decompress), or the run's hash: a damaged run either way.
    refused(&image, pid, "flipped", 9, "page run at byte", |d| {
        flip_byte(&d.join("pages.img"), pages / 2 + 7);
    });
    refused(&image, pid, "version", 9, "version 7", |d| {
        set_version(d, 7)
    });
    // Every checksum right, but changed after the agent signed it.
    refused(&image, pid, "forged", 9, "changed after key", |d| {
        rewrite_record(d, "process", "\"comm\":\"", "\"comm\":\"x");
    });
    refused(&image, pid, "unsigned", 9, "not signed", |d| {
        std::fs::remove_file(d.join("meta.sig")).unwrap();
    });
    // The layout file is mapped privately (and written): changed, then gone.
    std::fs::write(&file, b"not what it was").unwrap();
    refused(
        &image,
        pid,
        "changed",
        9,
        "changed since the image was taken",
        |_| {},
    );
    std::fs::remove_file(&file).unwrap();
    refused(&image, pid, "gone", 9, "is gone", |_| {});

    // A pid in use: resume another image of a live process's pid.
    let mut other = Proc::spawn(bin("workload"), &[]);
    let other_pid = ready_pid(&mut other);
    let other_dir = ImageDir::new("other");
    let out = suspend(other_pid, &other_dir, &["--leave-running"]);
    assert_eq!(out.code, 0, "{out:?}");
    refused(
        &other_dir.path,
        other_pid,
        "pid-in-use",
        10,
        &format!("pid {other_pid} is in use"),
        |_| {},
    );
    assert!(other.alive(), "the running process was not touched");
    other.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_mapped_file_copied_with_its_times_is_accepted() {
    // What another machine looks like to a mapped file: the same contents,
    // size and modification time under another inode.
    let _daemon = Daemon::start();
    let (mut w, pid, dir) = resumable_suspended("copied");
    w.wait_exit();
    let file = format!("/tmp/suspend-resumable-private-{pid}");
    let copy = format!("{file}.copy");
    let ino = |p: &str| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let before = ino(&file);
    let status = Command::new("cp")
        .args(["-p", &file, &copy])
        .status()
        .unwrap();
    assert!(status.success(), "cp -p");
    std::fs::rename(&copy, &file).unwrap();
    assert_ne!(ino(&file), before, "the file is another inode now");
    let mut r = Proc::resume(&dir.path, pid, &[]);
    // Its check reads the private mapping (now of the copy) and the file.
    restored_intact(&mut r, 1);
    r.exit_ok();
}

/// A directory of this test's own, removed with what it holds.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("suspend-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ino(path: &str) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
}

/// Puts `bytes` at `path` as another file (another inode) with its mode
/// and the modification time `mtime`, to the nanosecond.
fn replace(path: &str, bytes: &[u8], mtime: std::time::SystemTime) {
    let new = format!("{path}.new");
    std::fs::write(&new, bytes).unwrap();
    std::fs::set_permissions(&new, std::fs::metadata(path).unwrap().permissions()).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&new)
        .and_then(|f| f.set_modified(mtime))
        .unwrap();
    let before = ino(path);
    std::fs::rename(&new, path).unwrap();
    assert_ne!(ino(path), before, "{path} is another inode now");
}

/// The resumable workload run from a private copy of its executable (in
/// `dir`), suspended (killed) to a new image `name` and reaped; with the
/// copy's path.
fn resumable_copy_suspended(dir: &Scratch, name: &str) -> (u32, ImageDir, String) {
    let exe = dir.0.join("resumable");
    std::fs::copy(bin("resumable"), &exe).unwrap();
    let mut w = Proc::spawn(&exe, &[]);
    let pid = ready_pid(&mut w);
    let image = ImageDir::new(name);
    let out = suspend(pid, &image, &[]);
    assert_eq!(out.code, 0, "suspend: {out:?}");
    w.wait_exit();
    (pid, image, exe.display().to_string())
}

/// The offset of the descriptor of the GNU build-id note in `elf` (a
/// 20-byte one: namesz 4, descsz 20, type 3, "GNU").
fn build_id_at(elf: &[u8]) -> Option<usize> {
    let note: &[u8] = b"\x04\0\0\0\x14\0\0\0\x03\0\0\0GNU\0";
    elf.windows(note.len())
        .position(|w| w == note)
        .map(|at| at + note.len())
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn an_executable_installed_again_as_an_equal_copy_is_accepted() {
    // A package installed again, or another machine: the executable is
    // another inode with the same bytes (`cp -p`).
    let _daemon = Daemon::start();
    let dir = Scratch::new("exe-copy");
    let (pid, image, exe) = resumable_copy_suspended(&dir, "exe-copy");
    let before = ino(&exe);
    let copy = format!("{exe}.copy");
    let status = Command::new("cp")
        .args(["-p", &exe, &copy])
        .status()
        .unwrap();
    assert!(status.success(), "cp -p");
    std::fs::rename(&copy, &exe).unwrap();
    assert_ne!(ino(&exe), before, "the executable is another inode now");
    let mut r = Proc::resume(&image.path, pid, &[]);
    restored_intact(&mut r, 1);
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn another_executable_of_the_same_size_is_refused_by_name() {
    let _daemon = Daemon::start();
    let dir = Scratch::new("exe-other");
    let (pid, image, exe) = resumable_copy_suspended(&dir, "exe-other");
    let bytes = std::fs::read(&exe).unwrap();
    let mtime = std::fs::metadata(&exe).unwrap().modified().unwrap();
    // Another build of it: the same size and mtime, another build-id (or,
    // built without one, other bytes early in the file, which a sample
    // always reads).
    let mut other = bytes.clone();
    let needle = match build_id_at(&bytes) {
        Some(at) => {
            other[at] ^= 0xff;
            format!(
                "executable {exe} changed since the image was taken (it is another file now, \
                 build-id "
            )
        }
        None => {
            note("the workload has no build-id: its contents are compared");
            other[0x2000] ^= 0xff;
            format!(
                "executable {exe} changed since the image was taken (it is another file now, \
                 contents differ)"
            )
        }
    };
    replace(&exe, &other, mtime);
    refused(&image.path, pid, "exe-other-refused", 9, &needle, |_| {});
    // The same bytes again (another inode still): it resumes.
    replace(&exe, &bytes, mtime);
    let mut r = Proc::resume(&image.path, pid, &[]);
    restored_intact(&mut r, 1);
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn an_open_file_copied_with_its_mtime_is_accepted() {
    // The offset file is open for writing only: the resume reads the
    // copy, to compare it, through an open of its own as the process.
    let _daemon = Daemon::start();
    let (mut w, pid, dir) = resumable_suspended("open-copy");
    w.wait_exit();
    let file = format!("/tmp/suspend-resumable-offset-{pid}");
    let copy = format!("{file}.copy");
    let before = ino(&file);
    let status = Command::new("cp")
        .args(["-p", &file, &copy])
        .status()
        .unwrap();
    assert!(status.success(), "cp -p");
    std::fs::rename(&copy, &file).unwrap();
    assert_ne!(ino(&file), before, "the file is another inode now");
    let mut r = Proc::resume(&dir.path, pid, &[]);
    // Its check writes through the fd it had and reads the file by name:
    // they must be one file.
    restored_intact(&mut r, 1);
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn an_open_file_with_other_bytes_under_its_size_and_mtime_is_refused_by_name() {
    let _daemon = Daemon::start();
    let (mut w, pid, dir) = resumable_suspended("open-other");
    w.wait_exit();
    let file = format!("/tmp/suspend-resumable-offset-{pid}");
    let bytes = std::fs::read(&file).unwrap();
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let mut other = bytes.clone();
    other[30] = b'X';
    // Written in place, its mtime set back (`touch -d`).
    std::fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| {
            use std::os::unix::fs::FileExt as _;
            f.write_all_at(&other, 0)?;
            f.set_modified(mtime)
        })
        .unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        mtime,
        "its mtime is set back"
    );
    refused(
        &dir.path,
        pid,
        "open-written-refused",
        9,
        &format!("open file {file} changed since the image was taken (contents differ)"),
        |_| {},
    );
    // Another file with those bytes, size and mtime.
    replace(&file, &other, mtime);
    refused(
        &dir.path,
        pid,
        "open-other-refused",
        9,
        &format!(
            "open file {file} changed since the image was taken (it is another file now, \
             contents differ)"
        ),
        |_| {},
    );
    // Its own bytes back, in another file: it resumes.
    replace(&file, &bytes, mtime);
    let mut r = Proc::resume(&dir.path, pid, &[]);
    restored_intact(&mut r, 1);
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_pipe_another_process_also_holds_is_refused() {
    // The resumable workload's self-pipe is restorable (the other tests
    // resume it); held by this test process too, it is not.
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("resumable"), &[]);
    let pid = ready_pid(&mut w);
    let (fd, link) = fds(pid)
        .into_iter()
        .find(|(fd, link)| *fd > 2 && link.starts_with("pipe:["))
        .expect("the workload's self-pipe");
    let ours = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/{pid}/fd/{fd}"))
        .expect("opening the workload's pipe");
    let dir = ImageDir::new("sharedpipe");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 8, "{out:?}");
    let me = std::process::id();
    assert!(
        out.stderr
            .contains(&format!("({link}, also held by pid {me})")),
        "names the pipe and who else holds it: {out:?}"
    );
    assert!(out.stderr.contains("nothing was frozen"), "{out:?}");
    state_after(&mut w, "state", 1);
    check_ok(&mut w);
    // Let go of it: the pipe is the process's alone again.
    drop(ours);
    let out = suspend(pid, &dir, &["--leave-running"]);
    assert_eq!(out.code, 0, "{out:?}");
    state_after(&mut w, "state", 2);
    check_ok(&mut w);
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn resume_waits_for_a_zombie_to_be_reaped_then_refuses_it() {
    // A suspend that kills the process returns before its parent reaps it.
    let _daemon = Daemon::start();
    let (mut w, pid, dir) = resumable_suspended("zombie");
    let zombie = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
    };
    wait_for("the killed workload to be a zombie", || {
        zombie().then_some(())
    });
    // The agent waited for every thread it traced: none is left a traced
    // zombie, which its parent could never reap (a race: slow guests hit it).
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.lines().any(|l| l == "TracerPid:\t0"),
        "the zombie is still traced: {status}"
    );
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    assert_eq!(tasks, 1, "only the zombie leader is left");

    // Never reaped: refused after the grace, naming the zombie's parent.
    let out = agent(&["resume", dir.arg()]);
    assert_eq!(out.code, 10, "{out:?}");
    let parent = std::process::id();
    assert!(
        out.stderr.contains(&format!(
            "a zombie its parent, pid {parent}, has not reaped"
        )),
        "{out:?}"
    );
    assert!(out.stderr.contains("nothing was created"), "{out:?}");
    assert!(zombie(), "the zombie was left alone");

    // Reaped a moment after the resume started: the resume goes ahead.
    let path = dir.path.clone();
    let started = std::time::Instant::now();
    let resume = std::thread::spawn(move || Proc::resume(&path, pid, &[]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let slept = started.elapsed();
    w.wait_exit();
    let reaped = started.elapsed();
    let resumed = resume.join();
    eprintln!(
        "zombie test: slept until {slept:?}, reaped at {reaped:?}, resume ended at {:?}",
        started.elapsed()
    );
    let mut r = resumed.expect("the resume, run while the zombie was reaped, succeeds");
    restored_intact(&mut r, 1);
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn threads_caught_on_their_way_to_a_signal_are_saved_whole() {
    // The freeze may catch a thread on its way to deliver a signal (the
    // workload's interval timer makes that happen now and then). The hook
    // makes it happen to every thread that lets SIGALRM through: each must
    // still be asked for its sigaltstack and tid address (and the process
    // for its sigactions, brk and timers), and keep the signal, with its
    // siginfo, for after the resume. Before, such a thread was skipped: the
    // main thread came back with the agent's alternate stack and died of
    // SIGSEGV at its next SIGUSR1.
    let _daemon = Daemon::start_with(&[("SUSPEND_FAULT_FREEZE_SIGNAL", "14")]);
    let mut w = Proc::spawn(bin("resumable"), &[]);
    let pid = ready_pid(&mut w);
    let (mut r, dir) = suspend_and_resume(&mut w, pid, "held-signal");
    let image = inspect(&dir.path);
    let main = image["threads"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["tid"] == pid))
        .unwrap_or_else(|| panic!("no main thread in {image:#}"))
        .clone();
    assert!(main["sigaltstack"].is_object(), "main thread: {main:#}");
    assert!(main["tid_address"].is_u64(), "main thread: {main:#}");
    assert!(
        main["pending"].as_u64().is_some_and(|n| n >= 1),
        "the held SIGALRM is saved as pending: {main:#}"
    );
    let sigactions = image["process"]["sigactions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        sigactions.iter().any(|a| a["signal"] == libc::SIGALRM),
        "the process's sigactions were asked: {sigactions:#?}"
    );
    restored_intact(&mut r, 1);
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn resume_without_the_vdso_moved_fails_the_workload() {
    // The deliberately broken restore (SUSPEND_FAULT_SKIP_VDSO=1): the
    // process's code still points into the vDSO where it was. Its own
    // checks (clock reads, sleeps) must fail: it dies or reports a failure.
    let _daemon = Daemon::start();
    let (mut w, pid, dir) = resumable_suspended("novdso");
    w.wait_exit();
    let broken = match Proc::try_resume(&dir.path, &[("SUSPEND_FAULT_SKIP_VDSO", "1")]) {
        Ok(mut p) => {
            p.pid = pid;
            p
        }
        Err(code) => {
            suspend_tests::note(&format!(
                "the deliberately broken restore (vDSO left unmoved) failed outright (exit {code})"
            ));
            return;
        }
    };
    let mut r = broken;
    r.send("check");
    let code = r.wait_exit();
    assert_ne!(
        code, 0,
        "a restore that leaves the vDSO behind must not pass the workload's checks: {:#?}",
        r.seen
    );
    assert!(
        !r.seen.iter().any(|l| l == "check ok"),
        "its check passed: {:#?}",
        r.seen
    );
    let how = if code > 128 {
        format!("died of signal {}", code - 128)
    } else {
        format!("exited with {code}")
    };
    suspend_tests::note(&format!(
        "the deliberately broken restore (vDSO left unmoved) was caught: the workload {how}"
    ));
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn tokio_runtime_resumes_with_its_epoll_and_eventfd() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("tokio_workload"), &[]);
    let pid = ready_pid(&mut w);
    check_ok(&mut w);
    let (mut r, _dir) = suspend_and_resume(&mut w, pid, "tokio");
    restored_intact(&mut r, 1);
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_process_frozen_between_its_answer_and_its_wait_is_told_restored() {
    // The client names its parked thread before it answers ready: frozen
    // right after the answer (held there 500 ms by a test hook), the image
    // still says which thread gets the resume signal.
    let _daemon = Daemon::start();
    let mut cmd = Command::new(bin("workload"));
    cmd.env("SUSPEND_FAULT_PARK_DELAY_MS", "500");
    let mut w = Proc::spawn_command(cmd);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("park-race");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    w.wait_exit();
    let mut r = Proc::resume(&dir.path, pid, &[]);
    let state = state_after(&mut r, "check", 1);
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    r.exit_ok();
}

/// The workload started with `option`, checking itself (the state that
/// option sets included) before a suspend, then resumed: it must check
/// itself intact again.
fn comes_back_checked(option: &str, name: &str) {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[option]);
    let pid = ready_pid(&mut w);
    let state = w.ask("check", "state");
    assert_eq!(field(&state, "memory"), "intact", "set up: {state}");
    let dir = ImageDir::new(name);
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    w.wait_exit();
    let mut r = Proc::resume(&dir.path, pid, &[]);
    let state = state_after(&mut r, "check", 1);
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn every_threads_scheduling_comes_back() {
    // SCHED_BATCH, nice 7, CPU 0 only: before this, a resumed process ran
    // as the resume command did.
    comes_back_checked("--sched", "sched");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn process_attributes_come_back() {
    // A child subreaper with THP disabled, a timer slack and an
    // oom_score_adj of its own: each was lost on resume before.
    comes_back_checked("--attributes", "attributes");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_parent_death_signal_is_refused_not_lost() {
    // Relative to a parent a resume does not give back: refused before
    // the freeze, the process told so.
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--pdeathsig"]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("pdeathsig");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 8, "{out:?}");
    assert!(out.stderr.contains("parent-death signal"), "{out:?}");
    // The task iterator reads it: refused before anything is frozen.
    assert!(out.stderr.contains("nothing was frozen"), "{out:?}");
    assert!(!dir.path.exists(), "no image");
    let state = state_after(&mut w, "check", 1);
    assert_eq!(field(&state, "reason"), "aborted", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn what_madvise_said_and_mapping_names_come_back() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let advised = w.ask("advise", "advise");
    if advised != "advise ok" {
        suspend_tests::note(&format!(
            "this kernel lacks some of it ({advised}): checking the rest"
        ));
    }
    assert_eq!(w.ask("advise-check", "advise-check"), "advise-check ok");
    let (mut r, _dir) = suspend_and_resume(&mut w, pid, "advise");
    assert_eq!(
        r.ask("advise-check", "advise-check"),
        "advise-check ok",
        "DONTFORK, WIPEONFORK, DONTDUMP, NOHUGEPAGE and the name are back"
    );
    r.exit_ok();
}

/// A pids cgroup of the test's own (the v1 `pids` hierarchy, or a child
/// of the cgroup2 root with the controller enabled), removed on drop.
struct PidsCgroup(std::path::PathBuf);

impl PidsCgroup {
    fn new(name: &str) -> Option<Self> {
        let v1 = Path::new("/sys/fs/cgroup/pids");
        let root = if v1.join("cgroup.procs").exists() {
            v1.to_path_buf()
        } else {
            let root = Path::new("/sys/fs/cgroup");
            let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
            if !controllers.split_whitespace().any(|c| c == "pids") {
                return None;
            }
            std::fs::write(root.join("cgroup.subtree_control"), "+pids").ok()?;
            root.to_path_buf()
        };
        let dir = root.join(format!("suspend-test-{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        Some(Self(dir))
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string())
            .expect("moving the workload into the pids cgroup");
    }

    fn set_max(&self, max: &str) {
        std::fs::write(self.0.join("pids.max"), max).expect("writing pids.max");
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Empty by now (the workload exited or was killed and reaped).
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_cgroup_without_room_for_the_process_is_refused_before_anything_is_created() {
    let _daemon = Daemon::start();
    let Some(cgroup) = PidsCgroup::new("pids") else {
        suspend_tests::note("NOT RUN: no pids cgroup controller here");
        return;
    };
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    cgroup.add(pid);
    let dir = ImageDir::new("pids");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    w.wait_exit();
    // Its cgroup now holds nothing, and takes one task: the workload has
    // two threads, and the resume command moves itself in too.
    cgroup.set_max("1");
    let out = agent(&["resume", dir.arg()]);
    assert_eq!(out.code, 9, "{out:?}");
    assert!(out.stderr.contains("has no room"), "{out:?}");
    assert!(out.stderr.contains("of its pids.max 1"), "{out:?}");
    assert!(!pid_alive(pid), "nothing was created");
    // Room again: it comes back, into that cgroup.
    cgroup.set_max("max");
    let mut r = Proc::resume(&dir.path, pid, &[]);
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cgroups.contains(&format!(
            "{}",
            cgroup.0.file_name().unwrap().to_string_lossy()
        )),
        "{cgroups}"
    );
    let state = state_after(&mut r, "check", 1);
    assert!(state.contains("memory=intact"), "{state}");
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_resume_in_other_namespaces_than_the_agents_is_refused() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("namespaces");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    w.wait_exit();
    // The resume command in a UTS namespace of its own: the process would
    // come back with another host name.
    let out = Command::new("unshare")
        .arg("--uts")
        .arg(bin("suspend-agent"))
        .arg("resume")
        .arg(&dir.path)
        .output()
        .expect("running unshare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    assert!(
        stderr.contains("other namespaces than the agent's") && stderr.contains("uts:["),
        "{stderr}"
    );
    assert!(!pid_alive(pid), "nothing was created");
    // In the agent's, it comes back.
    let mut r = Proc::resume(&dir.path, pid, &[]);
    let state = state_after(&mut r, "check", 1);
    assert!(state.contains("memory=intact"), "{state}");
    r.exit_ok();
}
