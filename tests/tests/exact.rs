//! Exact or refused: what an image cannot hold yet makes a suspend that
//! kills the process refuse before freezing anything, naming it (exit 8;
//! the process goes on, told `aborted`), and `suspend --check` says so too;
//! a held suspension keeps it, and the process checks itself afterwards.

use suspend_tests::{
    Daemon, ImageDir, KillOnDrop, Proc, agent, agent_with, bin, field, lockable, pid_alive,
    ready_pid, state_after, suspend,
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
fn posix_timers_come_back_with_their_ids() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let timer = w.ask("timer", "timer");
    let id = field(&timer, "id").to_owned();
    assert_ne!(id, "-1", "{timer}");
    let dir = ImageDir::new("posix-timers");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    w.wait_exit();
    let mut r = Proc::resume(&dir.path, pid, &[]);
    assert_eq!(
        r.ask(&format!("timer-check {id}"), "timer-check"),
        "timer-check ok",
        "the same id, armed with the time it had left"
    );
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn every_kind_of_lock_comes_back_and_one_taken_meanwhile_is_refused_by_name() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let locks = w.ask("locks", "locks");
    assert!(locks.ends_with("rc=[0, 0, 0]"), "{locks}");
    let path = field(&locks, "path").to_owned();
    let dir = ImageDir::new("locks");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    w.wait_exit();
    // Let go while it is away: another open file takes the flock.
    let other = std::fs::File::open(&path).expect("the lock file");
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock on our own descriptor (let go when it closes).
    let rc = unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0, "the flock is free once the process is gone");
    let refused = agent(&["resume", dir.arg()]);
    assert_eq!(refused.code, 9, "{refused:?}");
    assert!(
        refused.stderr.contains("it held an flock (write)") && refused.stderr.contains("holds now"),
        "the refusal names the lock and that it is taken: {refused:?}"
    );
    assert!(!pid_alive(pid), "nothing was created");
    drop(other);
    let mut r = Proc::resume(&dir.path, pid, &[]);
    assert_eq!(
        lockable(&path),
        (false, false, false),
        "its flock, POSIX and OFD locks are its own again"
    );
    let state = r.ask("check", "state");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    r.exit_ok();
    assert_eq!(lockable(&path), (true, true, true), "let go when it exits");
    let _ = std::fs::remove_file(&path);
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

/// sqlite3 (WAL mode) with a transaction open, suspended with `--exit`:
/// `(the writer, its pid, the database, another writer's attempt)`.
fn sqlite_suspended(name: &str) -> (Proc, u32, std::path::PathBuf, ImageDir) {
    let db_dir = std::env::temp_dir().join(format!("suspend-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&db_dir);
    std::fs::create_dir_all(&db_dir).expect("temp dir");
    let db = db_dir.join("t.db");
    let mut cmd = std::process::Command::new(bin("suspend-agent"));
    cmd.args(["run", "--", "python3", "-c", suspend_tests::SQLITE_WRITER])
        .env("DB", &db);
    let mut py = Proc::spawn_command(cmd);
    let pid = ready_pid(&mut py);
    suspend_tests::wait_for("the preloaded python to register", || {
        suspend_tests::registry_entry(pid)
    });
    assert_eq!(sqlite_other(&db), "busy", "the writer holds the write lock");
    let image = ImageDir::new(name);
    let out = suspend(pid, &image, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    py.wait_exit();
    (py, pid, db, image)
}

fn sqlite_other(db: &std::path::Path) -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", suspend_tests::SQLITE_OTHER])
        .arg(db)
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_sqlite_transaction_comes_back_from_its_image_with_its_locks() {
    let _daemon = Daemon::start();
    let (_gone, pid, db, image) = sqlite_suspended("exit-sqlite");
    let mut py = Proc::resume(&image.path, pid, &[]);
    assert_eq!(
        sqlite_other(&db),
        "busy",
        "resumed, it holds its locks again"
    );
    py.send("");
    let done = py.expect("committed");
    assert_eq!(field(&done, "rows"), "501", "every row of the transaction");
    assert_eq!(
        sqlite_other(&db),
        "wrote",
        "the lock is free once it committed"
    );
    py.send("");
    assert_eq!(py.wait_exit(), 0);
    let _ = std::fs::remove_dir_all(db.parent().expect("its directory"));
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_sqlite_database_written_while_its_writer_was_away_is_refused_by_name() {
    let _daemon = Daemon::start();
    let (_gone, pid, db, image) = sqlite_suspended("exit-sqlite-written");
    // Its locks went with it: another connection writes meanwhile.
    assert_eq!(sqlite_other(&db), "wrote");
    let refused = agent(&["resume", image.arg()]);
    assert_eq!(refused.code, 9, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("a file it had open while it held a lock")
            && refused.stderr.contains("t.db"),
        "the refusal names the changed file: {refused:?}"
    );
    assert!(!pid_alive(pid), "nothing was created");
    let _ = std::fs::remove_dir_all(db.parent().expect("its directory"));
}

/// Python holding a `multiprocessing.Lock` (a POSIX semaphore: a deleted
/// `/dev/shm/sem.*` it maps shared) and a `tempfile.TemporaryFile` (an
/// `O_TMPFILE` file only its fd reaches), both in use.
const PYTHON_UNLINKED: &str = r#"
import multiprocessing, os, sys, tempfile
lock = multiprocessing.Lock()
lock.acquire()
spill = tempfile.TemporaryFile()
spill.write(b"spilled " * 50000)
spill.seek(123)
print(f"ready pid={os.getpid()}", flush=True)
sys.stdin.readline()
held = not lock.acquire(block=False)
lock.release()
again = lock.acquire(block=False)
at = spill.tell()
spill.seek(0)
data = spill.read()
ok = held and again and at == 123 and data == b"spilled " * 50000
print(f"checked held={held} again={again} at={at} size={len(data)} {'ok' if ok else 'FAIL'}", flush=True)
sys.exit(0 if ok else 1)
"#;

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_multiprocessing_lock_and_a_temporary_file_come_back_from_the_image() {
    let _daemon = Daemon::start();
    let mut cmd = std::process::Command::new(bin("suspend-agent"));
    cmd.args(["run", "--", "python3", "-c", PYTHON_UNLINKED]);
    let mut py = Proc::spawn_command(cmd);
    let pid = ready_pid(&mut py);
    suspend_tests::wait_for("the preloaded python to register", || {
        suspend_tests::registry_entry(pid)
    });
    let image = ImageDir::new("exit-python-unlinked");
    let out = suspend(pid, &image, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    py.wait_exit();
    let mut py = Proc::resume(&image.path, pid, &[]);
    py.send("");
    let checked = py.expect("checked");
    assert!(checked.ends_with(" ok"), "{checked}");
    assert_eq!(py.wait_exit(), 0);
}

/// A JVM that never touched the network. It still holds a socket: NIO's
/// "pre-close" socket, one end of a pair whose other end it closed, which
/// an image holds (made again as such a pair). Suspended with `--exit`,
/// it comes back from its image and counts on, its heap as it was.
const JVM_QUIET: &str = r#"
import java.io.*;
import java.util.*;

public class Quiet {
    public static void main(String[] args) throws Exception {
        List<String> kept = new ArrayList<>();
        for (int i = 0; i < 100000; i++) kept.add("entry " + i);
        System.out.println("ready pid=" + ProcessHandle.current().pid());
        long n = 0;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null && !line.equals("exit");) {
            // A new thread, garbage and a collection: the runtime works.
            long[] sum = new long[1];
            Thread t = new Thread(() -> { for (String e : kept) sum[0] += e.length(); });
            t.start();
            t.join();
            System.gc();
            System.out.println("count " + (++n) + " last=" + kept.get(kept.size() - 1) + " sum=" + sum[0]);
        }
    }
}
"#;

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_jvm_comes_back_from_its_image() {
    if std::process::Command::new("java")
        .arg("-version")
        .output()
        .is_err()
    {
        suspend_tests::note("a JVM NOT RUN: no `java` on this machine");
        return;
    }
    let _daemon = Daemon::start();
    let dir = std::env::temp_dir().join(format!("suspend-test-exit-jvm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let source = dir.join("Quiet.java");
    std::fs::write(&source, JVM_QUIET).expect("writing the JVM's program");
    let mut cmd = std::process::Command::new(bin("suspend-agent"));
    cmd.arg("run").arg("--").arg("java").arg(&source);
    let mut jvm = Proc::spawn_command(cmd);
    let pid = ready_pid(&mut jvm);
    suspend_tests::wait_for("the preloaded JVM to register", || {
        suspend_tests::registry_entry(pid)
    });
    assert_eq!(
        jvm.ask("one", "count"),
        "count 1 last=entry 99999 sum=1088890"
    );

    let image = ImageDir::new("exit-jvm");
    let out = suspend(pid, &image, &["--new-session"]);
    assert_eq!(out.code, 0, "{out:?}");
    jvm.wait_exit();
    let mut jvm = Proc::resume(&image.path, pid, &[]);
    assert_eq!(
        jvm.ask("two", "count"),
        "count 2 last=entry 99999 sum=1088890"
    );

    // Held, the resumed JVM comes back too.
    let held = ImageDir::new("held-jvm");
    let out = suspend(pid, &held, &["--hold"]);
    assert_eq!(out.code, 0, "{out:?}");
    let back = agent(&["resume", held.arg()]);
    assert_eq!(back.code, 0, "{back:?}");
    assert_eq!(
        jvm.ask("three", "count"),
        "count 3 last=entry 99999 sum=1088890"
    );
    jvm.send("exit");
    assert_eq!(jvm.wait_exit(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where the kernel's task iterator cannot run (injected here: the
/// daemon's `SUSPEND_FAULT_NO_TASK_ITERATOR`), nothing can tell whether
/// the process's session keyring is its own: a resume would give it a new
/// one and lose what its own linked. A suspend that kills it refuses,
/// saying so, before anything is frozen; `--check` says so too; held, it
/// keeps its keyring and comes back.
#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_session_keyring_that_cannot_be_checked_is_refused_not_lost() {
    let _daemon = Daemon::start_with(&[("SUSPEND_FAULT_NO_TASK_ITERATOR", "1")]);
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("keyring-unchecked");
    let out = suspend(pid, &dir, &[]);
    assert_eq!(out.code, UNSUPPORTED, "{out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("session keyring, which could not be checked")
            && said.contains("task iterator is turned off"),
        "the refusal says what and why: {out:?}"
    );
    assert!(said.contains("nothing was frozen"), "{out:?}");
    assert!(!dir.path.exists(), "no image");
    let state = state_after(&mut w, "check", 1);
    assert_eq!(field(&state, "reason"), "aborted", "{state}");

    // `--check` reads the process itself, without the daemon.
    let check = agent_with(
        &["suspend", &pid.to_string(), "--check"],
        &[("SUSPEND_FAULT_NO_TASK_ITERATOR", "1")],
    );
    assert_eq!(check.code, UNSUPPORTED, "{check:?}");
    assert!(
        check
            .stdout
            .contains("session keyring, which could not be checked"),
        "{check:?}"
    );

    let out = suspend(pid, &dir, &["--hold"]);
    assert_eq!(out.code, 0, "{out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(
        said.matches("session keyring, which could not be checked")
            .count(),
        1,
        "held, the image lacks it (said once): {out:?}"
    );
    let back = agent(&["resume", dir.arg()]);
    assert_eq!(back.code, 0, "{back:?}");
    let state = state_after(&mut w, "check", 2);
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    w.exit_ok();
}
