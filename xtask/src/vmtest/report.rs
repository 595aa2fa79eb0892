//! Reading a guest's console log (what the kernel and the test harness
//! said), judging the boot, and the final table.

use std::{path::PathBuf, time::Duration};

use super::initramfs::{KERNEL_WARNING, LSM, UNAME, VERDICT};
use crate::util::fmt_duration;

/// Kernel messages that fail a run whatever the tests said.
const KERNEL_TROUBLE: &[&str] = &[
    "Kernel panic",
    "soft lockup",
    "hard LOCKUP",
    "self-detected stall",
    "detected stalls",
    "RCU stall",
    "BUG:",
    "Oops:",
];

/// What a console log says.
#[derive(Debug, Default)]
pub struct Console {
    /// `uname -r` and `/sys/kernel/security/lsm`, as `/init` printed them.
    pub uname: Option<String>,
    pub lsm: Option<String>,
    /// Whether `/init` started a test executable.
    pub tests_started: bool,
    /// Sums of the harness's `test result:` lines.
    pub passed: u32,
    pub failed: u32,
    /// `test NAME ... FAILED`.
    pub failed_tests: Vec<String>,
    /// Kernel warnings logged during the tests (`/init` prints them after
    /// the tests; they do not fail the run).
    pub kernel_warnings: Vec<String>,
    /// The first line that reports kernel trouble.
    pub kernel_trouble: Option<String>,
    /// The verdict line, if the console has it.
    pub verdict: Option<i32>,
    /// The last 30 lines.
    pub tail: Vec<String>,
}

impl Console {
    pub fn parse(text: &str) -> Self {
        let mut console = Self::default();
        let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
        for line in &lines {
            if let Some(uname) = line.strip_prefix(UNAME) {
                console.uname = Some(uname.trim().to_owned());
            } else if let Some(lsm) = line.strip_prefix(LSM) {
                console.lsm = Some(lsm.trim().to_owned());
            } else if let Some(warning) = line.strip_prefix(KERNEL_WARNING) {
                console.kernel_warnings.push(warning.to_owned());
                continue;
            } else if line.starts_with("VMTEST_RUN=") {
                console.tests_started = true;
            } else if let Some(counts) = line.strip_prefix("test result: ") {
                console.passed += count(counts, "passed");
                console.failed += count(counts, "failed");
            } else if let Some(test) = line
                .strip_prefix("test ")
                .and_then(|rest| rest.strip_suffix(" ... FAILED"))
            {
                console.failed_tests.push(test.to_owned());
            }
            if let Some((_, rest)) = line.split_once(VERDICT) {
                console.verdict = console.verdict.or(rest.trim().parse().ok());
            }
            if console.kernel_trouble.is_none()
                && KERNEL_TROUBLE.iter().any(|pattern| line.contains(pattern))
            {
                console.kernel_trouble = Some(line.trim().to_owned());
            }
        }
        let tail_from = lines.len().saturating_sub(30);
        console.tail = lines[tail_from..].iter().map(|l| (*l).to_owned()).collect();
        console
    }

    /// Whether `bpf` is among the active LSMs (`None` if `/init` did not say).
    pub fn bpf_lsm_active(&self) -> Option<bool> {
        self.lsm
            .as_ref()
            .map(|lsm| lsm.split(',').any(|name| name.trim() == "bpf"))
    }
}

/// `N` of `… N passed; M failed; …`.
fn count(counts: &str, what: &str) -> u32 {
    counts
        .split(';')
        .filter_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(what)
        })
        .find_map(|number| number.trim().parse().ok())
        .unwrap_or(0)
}

/// How one boot of the matrix went.
pub struct Run {
    /// `6.12.117+deb12-cloud-amd64`.
    pub kernel: String,
    /// `lsm`, `nolsm`, `default`.
    pub variant: String,
    pub ok: bool,
    /// `passed`, `FAILED: tests (exit 101)`, `FAILED: no verdict (boot failure)`, …
    pub result: String,
    pub passed: u32,
    pub failed: u32,
    pub duration: Duration,
    pub console_log: PathBuf,
}

/// The final table, one line per boot.
pub fn print_table(runs: &[Run]) {
    let kernel_width = runs
        .iter()
        .map(|r| r.kernel.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let result_width = runs
        .iter()
        .map(|r| r.result.len())
        .max()
        .unwrap_or(0)
        .max(6);
    println!(
        "{:kernel_width$}  {:8}  {:result_width$}  {:>6}  {:>6}  time",
        "kernel", "variant", "result", "passed", "failed"
    );
    for run in runs {
        println!(
            "{:kernel_width$}  {:8}  {:result_width$}  {:>6}  {:>6}  {}",
            run.kernel,
            run.variant,
            run.result,
            run.passed,
            run.failed,
            fmt_duration(run.duration)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::Console;

    #[test]
    fn reads_the_harness_and_the_kernel() {
        let log = "VMTEST_UNAME=6.1.0-56-cloud-amd64\r\n\
                   VMTEST_LSM=lockdown,capability,landlock,yama,apparmor,tomoyo,bpf\r\n\
                   VMTEST_RUN=busy\r\n\
                   running 2 tests\r\n\
                   test a ... ok\r\n\
                   test b ... FAILED\r\n\
                   test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 3 filtered out; finished in 1.00s\r\n\
                   VMTEST_RUN=ready\r\n\
                   test result: ok. 4 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 9.10s\r\n\
                   [   41.1] BUG: kernel NULL pointer dereference, address: 0000000000000008\r\n\
                   vmtest: kernel warning: [   42.0] WARNING: CPU: 1 PID: 7 at kernel/bpf/x.c:1\r\n\
                   VMTEST_EXIT=101\r\n";
        let console = Console::parse(log);
        assert_eq!(console.uname.as_deref(), Some("6.1.0-56-cloud-amd64"));
        assert_eq!(console.bpf_lsm_active(), Some(true));
        assert!(console.tests_started);
        assert_eq!((console.passed, console.failed), (5, 1));
        assert_eq!(console.failed_tests, ["b"]);
        assert!(console.kernel_trouble.unwrap().contains("BUG: kernel NULL"));
        assert_eq!(console.verdict, Some(101));
        assert_eq!(console.kernel_warnings.len(), 1);
    }

    #[test]
    fn a_quiet_boot_has_no_trouble() {
        let console = Console::parse("VMTEST_LSM=capability,yama\nVMTEST_EXIT=0\n");
        assert_eq!(console.bpf_lsm_active(), Some(false));
        assert!(console.kernel_trouble.is_none());
        assert!(!console.tests_started);
    }
}
