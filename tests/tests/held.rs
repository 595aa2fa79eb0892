//! Held suspensions (`suspend --hold`): the process keeps its pid and every
//! kernel object, its threads wait parked, its private memory is released;
//! `resume` (by image directory or pid) lets it go on, its memory given back
//! as it runs (that refill is `held_refill.rs`). Each workload checks itself
//! afterwards; what only a held process can keep (a TCP connection, a lock
//! another process waits on, children that finished meanwhile, a signal
//! sent while held) is checked from both sides.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::TcpStream,
    process::Command,
    time::Duration,
};

use suspend_tests::{
    Daemon, ImageDir, Proc, agent, bin,
    exit::{BAD_IMAGE, UNSUPPORTED},
    field,
    held::{check_ok, fds, hold, intact, resume_held, rss_kib, wait_refilled},
    pid_alive, python, ready_pid, registry_entry,
    scale::{big_hold_mib, long_hold},
    state_after, suspend, wait_for,
};

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn the_resumable_workload_is_held_and_resumed_three_times() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("resumable"), &[]);
    let pid = ready_pid(&mut w);
    check_ok(&mut w);
    let fds_before = fds(pid);
    for round in 1..=3u32 {
        let dir = ImageDir::new(&format!("held-{round}"));
        let out = hold(pid, &dir);
        assert!(out.stdout.contains(" held, image in "), "{out:?}");
        let list = agent(&["list"]);
        assert!(
            list.stdout
                .lines()
                .any(|l| l.contains(&pid.to_string()) && l.contains("held")),
            "list shows it held: {list:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
        // By directory, then by pid, then by directory.
        let target = if round == 2 {
            pid.to_string()
        } else {
            dir.arg().to_owned()
        };
        let back = resume_held(&target);
        assert_eq!(back.code, 0, "resume {target}: {back:?}");
        assert!(back.stderr.contains("resumed held pid"), "{back:?}");
        let state = state_after(&mut w, "state", round);
        assert_eq!(field(&state, "reason"), "restored", "{state}");
        check_ok(&mut w);
        wait_refilled(pid);
        assert_eq!(fds(pid), fds_before, "the same open files, all of them");
        let entry = registry_entry(pid).expect("registered");
        assert_eq!(entry["state"], "registered", "{entry}");
    }
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_tcp_connection_survives_a_hold() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let serving = w.ask("serve", "serving");
    let port: u16 = field(&serving, "port").parse().expect("port");
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        (s, r)
    };
    let ask = |s: &mut TcpStream, r: &mut BufReader<TcpStream>, what: &str| {
        writeln!(s, "{what}").unwrap();
        let mut line = String::new();
        r.read_line(&mut line).expect("an answer");
        line.trim_end().to_owned()
    };
    let (mut a, mut ar) = connect();
    assert_eq!(ask(&mut a, &mut ar, "one"), "echo one");

    let dir = ImageDir::new("held-tcp");
    let out = hold(pid, &dir);
    assert!(
        out.stdout.contains("only the held process has") && out.stdout.contains("socket"),
        "the sockets stay in the held process, and it says so: {out:?}"
    );
    assert!(
        out.stdout
            .contains(&format!("TCP listening on 127.0.0.1:{port}")),
        "named by address: {out:?}"
    );
    // While held: bytes sent on the open connection wait in the kernel;
    // a new client connects (the backlog takes it).
    writeln!(a, "two").unwrap();
    let (mut b, mut br) = connect();
    std::thread::sleep(long_hold());
    assert!(pid_alive(pid));
    let back = resume_held(dir.arg());
    assert_eq!(back.code, 0, "{back:?}");
    let mut line = String::new();
    ar.read_line(&mut line)
        .expect("the answer to what was sent while held");
    assert_eq!(line.trim_end(), "echo two");
    assert_eq!(ask(&mut b, &mut br, "three"), "echo three");
    assert_eq!(ask(&mut a, &mut ar, "four"), "echo four");
    let state = state_after(&mut w, "check", 1);
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_sqlite_transaction_keeps_its_locks_while_held() {
    let _daemon = Daemon::start();
    let dir = tempdir("held-sqlite");
    let db = dir.join("t.db");
    let mut cmd = Command::new(bin("suspend-agent"));
    cmd.args(["run", "--", "python3", "-c", suspend_tests::SQLITE_WRITER])
        .env("DB", &db);
    let mut py = Proc::spawn_command(cmd);
    let pid = ready_pid(&mut py);
    wait_for("the preloaded python to register", || registry_entry(pid));
    let other = || {
        let out = Command::new("python3")
            .args(["-c", suspend_tests::SQLITE_OTHER])
            .arg(&db)
            .output()
            .expect("python3");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(other(), "busy", "the writer holds the write lock");
    let image = ImageDir::new("held-sqlite");
    hold(pid, &image);
    assert_eq!(other(), "busy", "held, it still holds the lock");
    let back = resume_held(image.arg());
    assert_eq!(back.code, 0, "{back:?}");
    py.send("");
    let done = py.expect("committed");
    assert_eq!(field(&done, "rows"), "501", "every row of the transaction");
    assert_eq!(other(), "wrote", "the lock is free once it committed");
    py.send("");
    assert_eq!(py.wait_exit(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A JVM's own check: it has done network I/O (its libnet, once loaded,
/// takes signal 62 for itself), then answers `count` with `count N`.
const JVM_PROGRAM: &str = r#"
import java.io.*;
import java.net.*;

public class Suspendable {
    public static void main(String[] args) throws Exception {
        InetAddress lo = InetAddress.getLoopbackAddress();
        ServerSocket server = new ServerSocket(0, 1, lo);
        Socket client = new Socket(lo, server.getLocalPort());
        Socket accepted = server.accept();
        client.getOutputStream().write(7);
        System.out.println("ready pid=" + ProcessHandle.current().pid() + " got=" + accepted.getInputStream().read());
        long n = 0;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null && !line.equals("exit");) {
            client.getOutputStream().write(line.length());
            int back = accepted.getInputStream().read();
            System.out.println("count " + (++n) + " echo=" + back);
        }
    }
}
"#;

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_jvm_that_did_network_io_is_held_and_resumed() {
    // Its networking takes signal 62 the first time it does I/O: with 62 as
    // the default suspend signal, the registration became unusable.
    if Command::new("java").arg("-version").output().is_err() {
        suspend_tests::note("a JVM NOT RUN: no `java` on this machine");
        return;
    }
    let _daemon = Daemon::start();
    let dir = tempdir("held-jvm");
    let source = dir.join("Suspendable.java");
    std::fs::write(&source, JVM_PROGRAM).expect("writing the JVM's program");
    let mut cmd = Command::new(bin("suspend-agent"));
    cmd.arg("run").arg("--").arg("java").arg(&source);
    let mut jvm = Proc::spawn_command(cmd);
    let pid = ready_pid(&mut jvm);
    let entry = wait_for("the preloaded JVM to register", || registry_entry(pid));
    assert_eq!(
        entry["suspend_signal"].as_u64(),
        Some(u64::from(suspend_common::DEFAULT_SUSPEND_SIGNAL))
    );
    assert_eq!(jvm.ask("one", "count"), "count 1 echo=3");
    for round in 0..2 {
        let image = ImageDir::new(&format!("held-jvm-{round}"));
        // (Not `hold`: what javac read of the JDK's `modules`, mapped
        // shared, stays resident.)
        let out = suspend(pid, &image, &["--hold"]);
        assert_eq!(out.code, 0, "round {round}: {out:?}");
        let back = resume_held(image.arg());
        assert_eq!(back.code, 0, "round {round}: {back:?}");
        assert_eq!(
            jvm.ask("three", "count"),
            format!("count {} echo=5", round + 2),
            "its loopback connection and its count survived the hold"
        );
    }
    assert_eq!(
        registry_entry(pid).expect("still registered")["state"],
        "registered",
        "its handlers are still the client's"
    );
    jvm.send("exit");
    assert_eq!(jvm.wait_exit(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("suspend-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_bash_pipeline_finishes_its_children_while_held() {
    let _daemon = Daemon::start();
    let mut cmd = Command::new(bin("suspend-agent"));
    cmd.args([
        "run",
        "--",
        "bash",
        "-c",
        "echo ready pid=$$; sleep 2 | cat; echo rc=$?",
    ]);
    let mut sh = Proc::spawn_command(cmd);
    let pid = ready_pid(&mut sh);
    wait_for("the preloaded bash to register", || registry_entry(pid));
    let dir = ImageDir::new("held-bash");
    hold(pid, &dir);
    // Its children finish while it is held; their exit waits for it.
    std::thread::sleep(Duration::from_secs(4));
    let back = resume_held(dir.arg());
    assert_eq!(back.code, 0, "{back:?}");
    let rc = sh.expect("rc=");
    assert_eq!(
        rc, "rc=0",
        "the pipeline's status, after its children ended while held"
    );
    assert_eq!(sh.wait_exit(), 0);
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_signal_sent_while_held_is_delivered_after() {
    let _daemon = Daemon::start();
    let (mut py, pid) = python(
        r#"
import os, signal, sys
got = []
signal.signal(signal.SIGTERM, lambda *a: got.append(1))
print(f"ready pid={os.getpid()}", flush=True)
for line in sys.stdin:
    print(f"got sigterm={len(got)}", flush=True)
"#,
    );
    let dir = ImageDir::new("held-sigterm");
    hold(pid, &dir);
    // SAFETY: signalling the process this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(pid_alive(pid), "pending while held, not acted on");
    let back = resume_held(dir.arg());
    assert_eq!(back.code, 0, "{back:?}");
    let got = py.ask("", "got");
    assert_eq!(got, "got sigterm=1", "delivered once it runs again");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_held_process_needs_no_daemon() {
    let daemon = Daemon::start();
    let mut w = Proc::spawn(bin("resumable"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("held-nodaemon");
    hold(pid, &dir);
    daemon.kill();
    std::thread::sleep(Duration::from_millis(500));
    assert!(pid_alive(pid));
    assert!(
        rss_kib(pid) < 1024,
        "still parked, its memory still released"
    );
    let _daemon = Daemon::start();
    let entry = registry_entry(pid).expect("the next daemon finds it");
    assert_eq!(entry["state"], "held", "{entry}");
    let back = resume_held(&pid.to_string());
    assert_eq!(back.code, 0, "{back:?}");
    let state = state_after(&mut w, "state", 1);
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    check_ok(&mut w);
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_held_process_that_was_killed_comes_back_from_its_image() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("resumable"), &[]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("held-killed");
    hold(pid, &dir);
    // SAFETY: killing the process this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    w.wait_exit();
    let mut r = Proc::resume(&dir.path, pid, &[]);
    let state = state_after(&mut r, "state", 1);
    assert_eq!(field(&state, "reason"), "restored", "{state}");
    check_ok(&mut r);
    r.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn what_lived_only_in_a_killed_held_process_is_named_not_lost() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    w.ask("socket", "socket");
    let dir = ImageDir::new("held-socket");
    hold(pid, &dir);
    // SAFETY: killing the process this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    w.wait_exit();
    let out = agent(&["resume", dir.arg()]);
    assert_eq!(out.code, BAD_IMAGE, "{out:?}");
    assert!(
        out.stderr.contains("only in the held process") && out.stderr.contains("socket"),
        "{out:?}"
    );
    assert!(!pid_alive(pid), "nothing was created");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn what_writes_into_a_held_processs_memory_is_refused_before_freezing() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let uffd = w.ask("uffd", "uffd");
    assert!(
        !field(&uffd, "fd").starts_with('-'),
        "userfaultfd(2) is not available here: {uffd}"
    );
    let check = agent(&["suspend", &pid.to_string(), "--check"]);
    assert_eq!(check.code, UNSUPPORTED, "{check:?}");
    assert!(
        check.stdout.contains("held (the default): refused: fd")
            && check.stdout.contains("a userfaultfd"),
        "{check:?}"
    );
    let dir = ImageDir::new("held-uffd");
    let out = suspend(pid, &dir, &["--hold"]);
    assert_eq!(out.code, UNSUPPORTED, "{out:?}");
    assert!(out.stderr.contains("userfaultfd"), "{out:?}");
    assert!(!dir.path.exists(), "no image");
    let state = state_after(&mut w, "check", 1);
    assert_eq!(field(&state, "reason"), "aborted", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_seccomp_filtered_process_is_held_and_stays_filtered() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--seccomp"]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("held-seccomp");
    hold(pid, &dir);
    let back = resume_held(dir.arg());
    assert_eq!(back.code, 0, "{back:?}");
    // Its check includes its filter (getpriority still fails with EPERM).
    let state = state_after(&mut w, "check", 1);
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_filter_that_denies_the_park_loop_is_refused_and_nothing_is_lost() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--seccomp-deny-pause"]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("held-deny-pause");
    let out = suspend(pid, &dir, &["--hold"]);
    assert_eq!(out.code, UNSUPPORTED, "{out:?}");
    assert!(
        out.stdout.contains("pause(2)") || out.stderr.contains("pause(2)"),
        "{out:?}"
    );
    assert!(!dir.path.exists(), "no image left");
    let state = state_after(&mut w, "check", 1);
    assert_eq!(field(&state, "reason"), "aborted", "{state}");
    assert_eq!(field(&state, "memory"), "intact", "{state}");
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_hold_cut_short_by_a_killed_daemon_lets_the_process_go_on() {
    // The hook holds the agent with one thread parked and the others still
    // waiting in the trampoline, where a killed agent leaves them.
    let daemon = Daemon::start_with(&[("SUSPEND_FAULT_HOLD_DELAY_MS", "3000")]);
    let mut w = Proc::spawn(bin("workload"), &["--threads", "3"]);
    let pid = ready_pid(&mut w);
    let dir = ImageDir::new("held-cut-short");
    let image = dir.arg().to_owned();
    let cli =
        std::thread::spawn(move || agent(&["suspend", &pid.to_string(), "-D", &image, "--hold"]));
    wait_for("the process to be held", || {
        registry_entry(pid).filter(|e| e["state"] == "held")
    });
    std::thread::sleep(Duration::from_millis(500));
    daemon.kill();
    let out = cli.join().unwrap();
    assert_ne!(out.code, 0, "{out:?}");
    let _daemon = Daemon::start();
    let back = resume_held(&pid.to_string());
    assert_eq!(back.code, 0, "{back:?}");
    assert!(back.stderr.contains("cut short"), "{back:?}");
    // The threads that were not parked go on by themselves (within the
    // trampoline's 5 s); the process is whole, and told it was aborted.
    // Two independent events: the worker ticking again, and the client
    // thread seeing its connection closed (then on_resume runs).
    let state = wait_for("every thread to go on, and on_resume to run", || {
        let s = w.ask("check", "state");
        (field(&s, "memory") == "intact" && field(&s, "reason") != "none").then_some(s)
    });
    assert_eq!(field(&state, "reason"), "aborted", "{state}");
    let entry = registry_entry(pid).expect("registered");
    assert_eq!(entry["state"], "registered", "{entry}");
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_multiprocessing_pool_parent_is_held_and_its_workers_wait_for_it() {
    let _daemon = Daemon::start();
    let (mut py, pid) = python(
        r#"
import multiprocessing as mp, os, sys
def square(x):
    return x * x
pool = mp.Pool(2)
first = sum(pool.map(square, range(10)))
print(f"ready pid={os.getpid()} first={first}", flush=True)
for line in sys.stdin:
    print(f"sum={sum(pool.map(square, range(100)))}", flush=True)
"#,
    );
    assert_eq!(py.ask("", "sum"), "sum=328350");
    let dir = ImageDir::new("held-pool");
    let out = hold(pid, &dir);
    // Its workers are its children: an image alone could not keep them.
    assert!(out.stdout.contains("child process(es)"), "{out:?}");
    std::thread::sleep(Duration::from_secs(1));
    let back = resume_held(dir.arg());
    assert_eq!(back.code, 0, "{back:?}");
    assert_eq!(py.ask("", "sum"), "sum=328350", "the pool works on");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_held_process_is_guarded_and_witnessed_with_no_agent_running() {
    let daemon = Daemon::start();
    let guard = daemon.log_tail().contains("freeze guard on");
    if std::env::var_os("SUSPEND_EXPECT_LSM_GUARD").is_some_and(|v| v == "1") {
        assert!(guard, "this kernel must run the guard");
    }
    if !guard {
        suspend_tests::note(
            "the BPF LSM guard cannot act on this kernel: checking the run witness only \
             (`cargo xtask vm-test` checks the guard of a held process)",
        );
    }
    let mut w = Proc::spawn(bin("workload"), &["--uid", "2001"]);
    let pid = ready_pid(&mut w);
    let mut other = Proc::spawn(bin("workload"), &["--uid", "2001", "--no-register"]);
    ready_pid(&mut other);
    let poke = |other: &mut Proc| other.ask(&format!("poke {pid}"), "poke");
    assert_eq!(poke(&mut other), "poke kill=0 read=14", "allowed before");
    let dir = ImageDir::new("held-guard");
    hold(pid, &dir);
    // No agent runs from here on.
    daemon.kill();
    let refused = |line: &str| {
        field(line, "kill") == libc::EPERM.to_string()
            && [libc::EPERM, libc::EACCES]
                .map(|e| e.to_string())
                .contains(&field(line, "read").to_owned())
    };
    let witnessed = |what: &str| {
        let list = agent(&["list"]);
        assert!(
            list.stdout.contains("no thread has run since"),
            "{what}: list says its parked threads have not run: {list:?}"
        );
    };
    witnessed("no agent");
    if guard {
        let line = poke(&mut other);
        assert!(
            refused(&line),
            "another process of its user is kept off it: {line}"
        );
    }
    // A new daemon keeps it guarded and witnessed.
    let _daemon = Daemon::start();
    witnessed("a new daemon");
    if guard {
        let line = poke(&mut other);
        assert!(
            refused(&line),
            "still kept off it under a new daemon: {line}"
        );
    }
    let back = resume_held(&pid.to_string());
    assert_eq!(back.code, 0, "{back:?}");
    wait_refilled(pid);
    assert_eq!(
        poke(&mut other),
        "poke kill=0 read=14",
        "allowed again once it runs"
    );
    intact(&mut w);
    w.exit_ok();
    other.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_raw_terminal_and_shared_memory_come_back_as_they_were() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &["--uid", "2001"]);
    let pid = ready_pid(&mut w);
    assert_eq!(w.ask("pty", "pty"), "pty ok");
    assert_eq!(w.ask("shared", "shared"), "shared ok");
    assert_eq!(w.ask("region 4M", "region"), "region ok");
    for round in 1..=2 {
        let dir = ImageDir::new(&format!("held-pty-shm-{round}"));
        hold(pid, &dir);
        let back = resume_held(dir.arg());
        assert_eq!(back.code, 0, "{back:?}");
        assert_eq!(w.ask("pty-check", "pty-check"), "pty-check ok", "still raw");
        assert_eq!(w.ask("shared-check", "shared-check"), "shared-check ok");
        assert_eq!(w.ask("region-check", "region-check"), "region-check ok");
        wait_refilled(pid);
        intact(&mut w);
    }
    w.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn an_asyncio_server_and_its_timers_go_on_after_a_hold() {
    let _daemon = Daemon::start();
    let (mut py, pid) = python(
        r#"
import asyncio, os, sys
async def handle(r, w):
    line = await r.readline()
    w.write(b"echo " + line)
    await w.drain()
    w.close()
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    ticks = 0
    async def tick():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1
    asyncio.get_running_loop().create_task(tick())
    print(f"ready pid={os.getpid()} port={port}", flush=True)
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        print(f"ticks={ticks}", flush=True)
asyncio.run(main())
"#,
    );
    let port: u16 = field(&py.seen.join(" "), "port").parse().expect("port");
    let before: u64 = field(&py.ask("", "ticks"), "ticks").parse().unwrap();
    let dir = ImageDir::new("held-asyncio");
    hold(pid, &dir);
    // A client connects and writes while it is held: the kernel queues both.
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect while held");
    client.write_all(b"while held\n").expect("write");
    std::thread::sleep(Duration::from_millis(500));
    let back = resume_held(dir.arg());
    assert_eq!(back.code, 0, "{back:?}");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut echo = String::new();
    BufReader::new(&client).read_line(&mut echo).expect("echo");
    assert_eq!(echo, "echo while held\n", "served after the resume");
    std::thread::sleep(Duration::from_millis(200));
    let after: u64 = field(&py.ask("", "ticks"), "ticks").parse().unwrap();
    assert!(after > before, "its timers go on: {before} -> {after}");
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn posix_timers_and_every_kind_of_lock_stay_its_own_while_held() {
    let _daemon = Daemon::start();
    let mut w = Proc::spawn(bin("workload"), &[]);
    let pid = ready_pid(&mut w);
    let locks = w.ask("locks", "locks");
    assert!(locks.ends_with("rc=[0, 0, 0]"), "{locks}");
    let path = field(&locks, "path").to_owned();
    let timer = w.ask("timer", "timer");
    let id = field(&timer, "id").to_owned();
    assert_eq!(
        suspend_tests::lockable(&path),
        (false, false, false),
        "its locks, before"
    );
    let dir = ImageDir::new("held-locks");
    hold(pid, &dir);
    assert_eq!(
        suspend_tests::lockable(&path),
        (false, false, false),
        "still its own while held"
    );
    let back = resume_held(dir.arg());
    assert_eq!(back.code, 0, "{back:?}");
    assert_eq!(
        suspend_tests::lockable(&path),
        (false, false, false),
        "still its own after"
    );
    assert_eq!(
        w.ask(&format!("timer-check {id}"), "timer-check"),
        "timer-check ok"
    );
    intact(&mut w);
    w.exit_ok();
    assert_eq!(
        suspend_tests::lockable(&path),
        (true, true, true),
        "released when it exits"
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn every_kind_of_client_is_held_and_resumed_three_times() {
    let _daemon = Daemon::start();
    // (program, arguments, the line its check answers with when intact)
    for (program, args) in [
        (
            "workload",
            &["--layout", "--threads", "4", "--fill", "8M"][..],
        ),
        ("c_workload", &[][..]),
        ("c_workload_static", &[][..]),
    ] {
        let mut w = Proc::spawn(bin(program), args);
        let pid = ready_pid(&mut w);
        for round in 1..=3u32 {
            let dir = ImageDir::new(&format!("held-{program}-{round}"));
            hold(pid, &dir);
            let back = resume_held(&pid.to_string());
            assert_eq!(back.code, 0, "{program}, round {round}: {back:?}");
            let state = state_after(&mut w, "check", round);
            assert_eq!(field(&state, "reason"), "restored", "{program}: {state}");
            assert_eq!(field(&state, "memory"), "intact", "{program}: {state}");
        }
        w.exit_ok();
    }
    let mut t = Proc::spawn(bin("tokio_workload"), &[]);
    let pid = ready_pid(&mut t);
    for round in 1..=3u32 {
        let dir = ImageDir::new(&format!("held-tokio-{round}"));
        hold(pid, &dir);
        let back = resume_held(dir.arg());
        assert_eq!(back.code, 0, "tokio, round {round}: {back:?}");
        let state = state_after(&mut t, "state", round);
        assert_eq!(field(&state, "reason"), "restored", "tokio: {state}");
        check_ok(&mut t);
    }
    t.exit_ok();
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn a_held_gigabyte_keeps_under_a_mebibyte_resident() {
    let _daemon = Daemon::start();
    let mib = big_hold_mib();
    let mut w = Proc::spawn(
        bin("workload"),
        &["--fill", &format!("{mib}M"), "--threads", "2"],
    );
    let pid = ready_pid(&mut w);
    assert!(rss_kib(pid) > mib * 1024, "filled: {} KiB", rss_kib(pid));
    let dir = ImageDir::new("held-big");
    hold(pid, &dir); // asserts under 1 MiB resident
    suspend_tests::note(&format!(
        "a held process of {mib} MiB: {} KiB resident",
        rss_kib(pid)
    ));
    let back = resume_held(dir.arg());
    assert_eq!(back.code, 0, "{back:?}");
    wait_refilled(pid);
    assert!(rss_kib(pid) > mib * 1024, "all back: {} KiB", rss_kib(pid));
    intact(&mut w);
    w.exit_ok();
}
