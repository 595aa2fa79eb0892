//! Booting a guest: the accelerator this machine can use, the qemu command
//! line of the recipe (`panic=-1` with `-no-reboot`, so a crashed guest
//! ends qemu at once), a wall-clock limit, and the console echoed live
//! while it is written to its log.

use std::{
    fs::{self, File, OpenOptions},
    io::{Read as _, Seek as _, SeekFrom},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use super::initramfs::VERDICT;
use crate::util;

/// How qemu runs guest code.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// KVM when the hardware module (`kvm_intel`, `kvm_amd`) is loaded and
/// `/dev/kvm` is read/write; TCG otherwise. A `/dev/kvm` of `kvm_pvm` alone
/// (a paravirtual hypervisor) cannot run a stock kernel: qemu aborts or
/// stalls in emulation there. Returns the choice and why.
pub fn detect_accel() -> (Accel, String) {
    let module = ["kvm_intel", "kvm_amd"]
        .into_iter()
        .find(|module| Path::new("/sys/module").join(module).exists());
    let usable = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    match (module, usable) {
        (Some(module), true) => (Accel::Kvm, format!("KVM ({module}, /dev/kvm read/write)")),
        (Some(module), false) => (
            Accel::Tcg,
            format!("TCG ({module} is loaded but /dev/kvm is not read/write)"),
        ),
        (None, _) if Path::new("/sys/module/kvm_pvm").exists() => (
            Accel::Tcg,
            "TCG (/dev/kvm comes from kvm_pvm, which cannot run a stock kernel)".into(),
        ),
        (None, _) => (Accel::Tcg, "TCG (no kvm_intel or kvm_amd)".into()),
    }
}

/// What boot `label` wrote on its third serial port, the carry port
/// ([`super::carry`]).
pub fn carry_path(work: &Path, label: &str) -> PathBuf {
    work.join(format!("{label}.carry"))
}

/// One boot.
pub struct Guest<'a> {
    /// `6.12-lsm`: the prefix of its console lines and file names.
    pub label: &'a str,
    pub accel: Accel,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// Extra kernel parameters (`lsm=…`).
    pub append: &'a str,
    /// The console (first serial port).
    pub console_log: &'a Path,
    /// Where the other files of this boot go.
    pub work: &'a Path,
    pub timeout: Duration,
}

/// How a boot ended.
pub struct Outcome {
    /// The status `/init` reported, if it got that far.
    pub verdict: Option<i32>,
    pub timed_out: bool,
    pub qemu: ExitStatus,
    /// qemu's own stderr, if it said anything.
    pub qemu_stderr: String,
    pub duration: Duration,
}

impl Guest<'_> {
    /// The kernel command line. A soft lockup panics the guest
    /// (`softlockup_panic=1`): a run with one fails anyway, this ends it
    /// at once instead of at the boot's timeout, and the panic prints the
    /// locked-up CPU's stack, which `loglevel=4` hides otherwise.
    pub fn cmdline(&self) -> String {
        let mut cmdline = String::from(
            "console=ttyS0 panic=-1 oops=panic softlockup_panic=1 quiet loglevel=4 \
             mitigations=off no_timer_check tsc=reliable rdinit=/init",
        );
        if !self.append.is_empty() {
            cmdline.push(' ');
            cmdline.push_str(self.append);
        }
        cmdline
    }

    fn status_path(&self) -> PathBuf {
        self.work.join(format!("{}.status", self.label))
    }

    pub fn command(&self) -> Command {
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args(["-M", "pc"]);
        match self.accel {
            Accel::Kvm => qemu.args(["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => qemu.args(["-accel", "tcg,thread=multi", "-cpu", "max"]),
        };
        qemu.args(["-smp", "2", "-m", "2G", "-kernel"])
            .arg(self.kernel)
            .arg("-initrd")
            .arg(self.initrd)
            .arg("-append")
            .arg(self.cmdline())
            .args([
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-vga",
                "none",
                "-no-reboot",
                "-monitor",
                "none",
            ])
            .arg("-serial")
            .arg(format!("file:{}", self.console_log.display()))
            .arg("-serial")
            .arg(format!("file:{}", self.status_path().display()))
            .arg("-serial")
            .arg(format!(
                "file:{}",
                carry_path(self.work, self.label).display()
            ));
        qemu
    }

    /// Boots, echoes the console as it comes (each line prefixed with the
    /// label), and waits for qemu to end, for at most the timeout.
    pub fn run(&self) -> Result<Outcome> {
        for file in [
            self.console_log.to_path_buf(),
            self.status_path(),
            carry_path(self.work, self.label),
        ] {
            if file.exists() {
                fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
            }
        }
        let stderr_path = self.work.join(format!("{}.qemu.log", self.label));
        let stderr = File::create(&stderr_path)
            .with_context(|| format!("creating {}", stderr_path.display()))?;
        let mut qemu = self.command();
        qemu.stdin(Stdio::null())
            .stdout(stderr.try_clone()?)
            .stderr(stderr);
        println!("  $ {}", util::display(&qemu));
        let started = Instant::now();
        let child = qemu.spawn().context("starting qemu-system-x86_64")?;
        let mut child = Running { child, done: false };
        let mut console = Tail::new(self.console_log, self.label);
        let deadline = started + self.timeout;
        let mut verdict_seen: Option<Instant> = None;
        let mut timed_out = false;
        let status = loop {
            console.echo();
            if let Some(status) = child.try_wait()? {
                break status;
            }
            let now = Instant::now();
            if verdict_seen.is_none() && self.verdict_on_status_port().is_some() {
                verdict_seen = Some(now);
            }
            // The guest powers off right after its verdict; give it 30 s.
            let powered_off_late =
                verdict_seen.is_some_and(|at| now - at > Duration::from_secs(30));
            if now > deadline || powered_off_late {
                timed_out = now > deadline;
                break child.stop()?;
            }
            thread::sleep(Duration::from_millis(200));
        };
        console.echo();
        console.finish();
        Ok(Outcome {
            verdict: self.verdict(),
            timed_out,
            qemu: status,
            qemu_stderr: fs::read_to_string(&stderr_path).unwrap_or_default(),
            duration: started.elapsed(),
        })
    }

    /// The status `/init` reported: on the status port, else anywhere in
    /// the console log (the recipe's fallback: it once saw the status port
    /// miss it).
    fn verdict(&self) -> Option<i32> {
        self.verdict_on_status_port().or_else(|| {
            let console = fs::read(self.console_log).ok()?;
            find_verdict(&String::from_utf8_lossy(&console))
        })
    }

    /// The status on the second serial port, which carries nothing else.
    fn verdict_on_status_port(&self) -> Option<i32> {
        find_verdict(&fs::read_to_string(self.status_path()).ok()?)
    }
}

/// The status of the first `VMTEST_EXIT=<status>` in `text`.
fn find_verdict(text: &str) -> Option<i32> {
    text.lines().find_map(|line| {
        let (_, rest) = line.split_once(VERDICT)?;
        rest.trim().parse().ok()
    })
}

/// qemu while it runs: stopped with SIGTERM (it exits cleanly), then
/// SIGKILL, on every path out.
struct Running {
    child: Child,
    done: bool,
}

impl Running {
    fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let status = self.child.try_wait().context("waiting for qemu")?;
        self.done |= status.is_some();
        Ok(status)
    }

    fn stop(&mut self) -> Result<ExitStatus> {
        // `kill` by pid, for SIGTERM without unsafe code.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let status = self.child.wait().context("waiting for qemu")?;
        self.done = true;
        Ok(status)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.stop();
        }
    }
}

/// Follows a growing log file and prints its complete lines.
struct Tail<'a> {
    path: &'a Path,
    label: &'a str,
    offset: u64,
    partial: Vec<u8>,
}

impl<'a> Tail<'a> {
    fn new(path: &'a Path, label: &'a str) -> Self {
        Self {
            path,
            label,
            offset: 0,
            partial: Vec::new(),
        }
    }

    fn echo(&mut self) {
        let Ok(mut file) = File::open(self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut new = Vec::new();
        if let Ok(read) = file.read_to_end(&mut new) {
            self.offset += read as u64;
        }
        self.partial.extend_from_slice(&new);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.print(&line);
        }
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.print(&line);
        }
    }

    fn print(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        println!("[{}] {}", self.label, line.trim_end_matches(['\r', '\n']));
    }
}
