//! Moving a process between kernels (issue 15). In `cargo xtask vm-test`
//! each guest is a machine with a kernel of its own: the first boot of
//! each kernel series suspends one-feature workloads (`suspend --exit`)
//! and carries their images out, as `send` streams, with its public key,
//! on a serial port of their own ([`PORT`]); a later boot of another
//! kernel finds them in its initramfs under `/carry/LABEL/`, trusts that
//! key (`key trust`, as a user moving an image would), receives each
//! stream and resumes it; each workload then checks itself (threads, FPU
//! and AVX registers, timers, signals, the vDSO's clocks, descriptors of
//! kinds made again; its executable and libraries are files present on
//! both machines, equal but other inodes). One workload's open file is
//! written on the target with other bytes: its resume is refused naming
//! the file. Another's open file, which only the machine it left has, is
//! carried in its image (`suspend --carry`) and made on the target.
//!
//! The kernel command line says what a boot does: `vmtest.carry_out=1`
//! (suspend and carry out) and `vmtest.carried=LABEL,…` (the boots whose
//! images must be in `/carry`). Elsewhere (the host's `./x test`) both
//! tests say in a NOTE that there is nothing to move.

use std::{
    fmt::Write as _,
    fs,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use suspend_tests::{Daemon, ImageDir, Proc, agent, note, suspend};

/// The serial port the host reads carried files from (the third: the
/// console and the verdict have the first two).
const PORT: &str = "/dev/ttyS2";

/// Where a boot finds what earlier boots carried out, one directory each.
const CARRIED: &str = "/carry";

/// Workloads moved, each of them `expect restored` and holding no file
/// that exists only on the machine it left.
const PROGRAMS: &[&str] = &[
    "threads",
    "fpu_modes",
    "avx_regs",
    "fs_base",
    "posix_timer",
    "itimer",
    "timerfd",
    "vdso_clock",
    "sigaction",
    "altstack",
    "pending",
    "rseq",
    "eventfd",
    "epoll",
    "selfpipe",
    "brk",
];

/// Suspended with `--carry` of the file it writes, which only the machine
/// it left has: the resume makes it on the target from the image.
const CARRIED_FILE: &str = "carried_file";

/// Restored on the machine it left; on the target its open file,
/// `/tmp/feature-file-PID`, holds other bytes (the same length), so the
/// resume is refused naming it.
const DIFFERS: &str = "regular_file";

/// Where the workloads moved out get their pids (`ns_last_pid`): near the
/// top of the default `pid_max` (32768), far from the pids a target boot
/// gives its test and agent, which start again from [`IN_PIDS`].
const OUT_PIDS: u32 = 32_400;
const IN_PIDS: u32 = 1_000;

/// The next process made gets a pid above `last` (or the next free one).
fn next_pids_above(last: u32) {
    fs::write("/proc/sys/kernel/ns_last_pid", last.to_string())
        .unwrap_or_else(|e| panic!("ns_last_pid: {e}"));
}

/// A `NAME=VALUE` of the kernel command line.
fn cmdline(name: &str) -> Option<String> {
    let line = fs::read_to_string("/proc/cmdline").ok()?;
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

fn release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Writes `bytes` as file `name` on the carry port: hex lines, then its
/// length (what `xtask/src/vmtest/carry.rs` parses).
fn carry(port: &mut fs::File, name: &str, bytes: &[u8]) {
    for chunk in bytes.chunks(2048) {
        let mut line = format!("VMTEST_CARRY {name} ");
        for b in chunk {
            write!(line, "{b:02x}").unwrap();
        }
        line.push('\n');
        port.write_all(line.as_bytes())
            .expect("writing the carry port");
    }
    writeln!(port, "VMTEST_CARRY_END {name} {}", bytes.len()).expect("writing the carry port");
}

/// Starts feature program `name`, waits for its `ready PID`.
fn ready(name: &str) -> (Proc, u32) {
    suspend_tests::feature(name, "expect restored")
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn moved_between_kernels_out() {
    if cmdline("vmtest.carry_out").is_none() {
        note(
            "this boot carries no image out (only the first vm-test boot of each kernel \
             does, for a boot of another kernel to resume): nothing moved from here",
        );
        return;
    }
    let _daemon = Daemon::start();
    let mut port = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(PORT)
        .unwrap_or_else(|e| panic!("{PORT}, the carry port: {e}"));
    let key = agent(&["key", "show"]);
    assert_eq!(key.code, 0, "key show: {key:?}");
    let public = key
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("public key"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no public key in {key:?}"))
        .to_owned();
    carry(&mut port, "key", public.as_bytes());
    carry(&mut port, "release", release().as_bytes());

    let mut programs = String::new();
    next_pids_above(OUT_PIDS);
    for name in PROGRAMS.iter().chain([&DIFFERS, &CARRIED_FILE]) {
        let (mut w, pid) = ready(name);
        let dir = ImageDir::new(&format!("moved-{name}"));
        let carried = format!("/tmp/feature-carried-{pid}");
        let extra: &[&str] = if *name == CARRIED_FILE {
            &["--carry", &carried]
        } else {
            &[]
        };
        let out = suspend(pid, &dir, extra);
        assert_eq!(out.code, 0, "{name}: suspend --exit: {out:?}");
        w.wait_exit();
        let stream = ImageDir::new(&format!("moved-{name}-stream"));
        let sent = agent(&["send", dir.arg(), "-o", stream.arg()]);
        assert_eq!(sent.code, 0, "{name}: send: {sent:?}");
        let bytes = fs::read(&stream.path).expect("the stream");
        carry(&mut port, &format!("{name}.stream"), &bytes);
        writeln!(programs, "{name} {pid}").unwrap();
    }
    carry(&mut port, "programs", programs.as_bytes());
    writeln!(port, "VMTEST_CARRY_DONE").expect("writing the carry port");
    port.sync_all().ok();
    note(&format!(
        "{} images carried out of {} for boots of other kernels",
        PROGRAMS.len() + 2,
        release()
    ));
}

/// What one moved image came to.
enum Moved {
    /// Resumed and passed its own check (or, for [`DIFFERS`], refused as
    /// it had to be); what it said of its vDSO.
    Back(Option<String>),
    Failed(String),
}

/// Resumes the image in `dir` (as pid `pid`, our child through the
/// subreaper) and waits for it to end: its exit status and what it
/// printed; or the resume's exit code and what it said.
fn resumed(dir: &Path, pid: u32) -> Result<(i32, Vec<String>), (i32, String)> {
    use std::{
        io::Read as _,
        process::{Command, Stdio},
        time::{Duration, Instant},
    };
    suspend_harness::become_subreaper().expect("PR_SET_CHILD_SUBREAPER");
    let mut resume = Command::new(suspend_tests::bin("suspend-agent"))
        .arg("resume")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running resume");
    let mut stdout = resume.stdout.take().expect("its stdout");
    let mut stderr = resume.stderr.take().expect("its stderr");
    let status = resume.wait().expect("waiting for resume");
    if !status.success() {
        let mut said = String::new();
        let _ = stderr.read_to_string(&mut said);
        return Err((status.code().unwrap_or(-1), said));
    }
    // The resumed process writes to the same pipes; read until it ends.
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(code) = suspend_harness::try_reap(pid) {
            break code;
        }
        if Instant::now() > deadline {
            suspend_harness::kill_and_reap(pid);
            break -1;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stderr);
    let out = reader.join().unwrap_or_default();
    Ok((code, out.lines().map(str::to_owned).collect()))
}

/// Receives `name`'s stream from `from` and resumes it as `pid`.
fn resume_moved(from: &Path, name: &str, pid: u32) -> Moved {
    let image = ImageDir::new(&format!("moved-in-{name}"));
    let stream = from.join(format!("{name}.stream"));
    let received = agent(&[
        "receive",
        image.arg(),
        "-i",
        stream.to_str().expect("UTF-8"),
    ]);
    if received.code != 0 {
        return Moved::Failed(format!("receive exited {}: {received:?}", received.code));
    }
    if name == DIFFERS {
        // Present on the target too, but not the same file.
        let file = PathBuf::from(format!("/tmp/feature-file-{pid}"));
        fs::write(&file, vec![b'x'; 4096]).expect("the file that differs");
        let out = agent(&["resume", image.arg()]);
        let _ = fs::remove_file(&file);
        let said = format!("{}{}", out.stdout, out.stderr);
        return if out.code == 9 && said.contains(file.to_str().unwrap()) {
            Moved::Back(None)
        } else {
            Moved::Failed(format!(
                "its open file {} differs on this machine: the resume must be refused \
                 (exit 9) naming it, it exited {}: {said}",
                file.display(),
                out.code
            ))
        };
    }
    let (code, lines) = match resumed(&image.path, pid) {
        Ok(done) => done,
        Err((code, said)) => return Moved::Failed(format!("resume exited {code}: {said}")),
    };
    if code != 0 || !lines.iter().any(|l| l == "ok") {
        return Moved::Failed(format!("after the resume it exited {code}: {lines:#?}"));
    }
    Moved::Back(lines.iter().find(|l| l.starts_with("vdso ")).cloned())
}

#[test]
#[ignore = "root-only integration test: run `cargo xtask test`"]
fn moved_between_kernels_in() {
    let Some(labels) = cmdline("vmtest.carried") else {
        note(
            "no image was carried into this boot (a vm-test boot of another kernel carries \
             its images into the later ones): nothing to resume here",
        );
        return;
    };
    next_pids_above(IN_PIDS);
    let _daemon = Daemon::start();
    let here = release();
    let mut failures = Vec::new();
    for label in labels.split(',').filter(|l| !l.is_empty()) {
        let from = Path::new(CARRIED).join(label);
        let read = |name: &str| {
            fs::read_to_string(from.join(name))
                .unwrap_or_else(|e| panic!("{label} carried no {name} into {CARRIED}: {e}"))
        };
        let source = read("release");
        let trusted = agent(&["key", "trust", read("key").trim()]);
        assert_eq!(trusted.code, 0, "key trust: {trusted:?}");
        let mut back = 0;
        let mut vdso = None;
        for line in read("programs").lines() {
            let (name, pid) = line.split_once(' ').expect("NAME PID");
            let pid: u32 = pid.parse().expect("a pid");
            match resume_moved(&from, name, pid) {
                Moved::Back(said) => {
                    back += 1;
                    vdso = vdso.or(said);
                }
                Moved::Failed(why) => {
                    failures.push(format!("{name}, moved from {source} to {here}: {why}"))
                }
            }
        }
        note(&format!(
            "moved from {source} ({label}) to {here}: {back} of {} came back as they were \
             or were refused as they had to be; vdso_clock said {:?}",
            PROGRAMS.len() + 2,
            vdso.as_deref().unwrap_or("nothing of its vDSO")
        ));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
