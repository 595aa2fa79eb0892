//! The synthetic workload: the `workload` binary holding N bytes of
//! written memory among its threads, dumped, held and resumed, and
//! suspended and resumed from its image in every run; the figures each
//! run yields.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use suspend_harness::{
    poll,
    procfs::{held_record, rss_kib},
};

use super::{
    ExitCycle, MIB, disk_limit, exit_and_resume,
    figures::Figure,
    memory::{DaemonPeak, Refill},
    number_after, suspend,
};
use crate::live::start_workload;

/// One run's figures, in seconds and bytes.
pub struct Run {
    /// Dump (suspend --leave-running): frozen time, copy time, wall time.
    /// Pre-copied where the kernel can (the default).
    pub frozen: f64,
    /// The same dump with --no-precopy: frozen time, all copied in one
    /// freeze.
    pub frozen_one: f64,
    pub copy: f64,
    pub total: f64,
    pub bytes: u64,
    /// Wall time of `suspend --hold` and of the held resume (until it runs
    /// again), and the time from that resume's start until every page was
    /// back.
    pub hold: f64,
    pub unhold: f64,
    pub resident: f64,
    /// Resident memory while held (bytes).
    pub held_rss: u64,
    /// The suspend that kills the process and the resume from its image.
    pub cycle: ExitCycle,
    /// Writing and `fdatasync`ing the image's page bytes to a fresh file
    /// on the same filesystem; and the same, each 2 MiB's write-back
    /// started as it is written.
    pub disk: f64,
    pub disk_best: f64,
    /// The daemon's peak resident memory over the run, and the refill
    /// agent's (KiB; 0 where it was not found).
    pub daemon_peak_kib: u64,
    pub refill_peak_kib: u64,
}

impl Run {
    /// Suspend (killing) plus resume: the round trip.
    pub fn cycle(&self) -> f64 {
        self.cycle.suspend + self.cycle.restore
    }

    /// Held suspend plus its resume.
    pub fn held_cycle(&self) -> f64 {
        self.hold + self.unhold
    }
}

/// The figures of a run of the synthetic workload.
pub const FIGURES: &[Figure<Run>] = &[
    Figure {
        key: "frozen_s",
        header: "frozen s",
        decimals: 3,
        value: |r| r.frozen,
    },
    Figure {
        key: "frozen_one_freeze_s",
        header: "1-freeze s",
        decimals: 3,
        value: |r| r.frozen_one,
    },
    Figure {
        key: "copy_s",
        header: "copy s",
        decimals: 3,
        value: |r| r.copy,
    },
    Figure {
        key: "dump_s",
        header: "total s",
        decimals: 3,
        value: |r| r.total,
    },
    Figure {
        key: "copy_gb_per_s",
        header: "copy GB/s",
        decimals: 2,
        value: |r| r.bytes as f64 / r.copy / 1e9,
    },
    Figure {
        key: "image_mib",
        header: "image MiB",
        decimals: 1,
        value: |r| r.bytes as f64 / MIB,
    },
    Figure {
        key: "restore_s",
        header: "restore s",
        decimals: 3,
        value: |r| r.cycle.restore,
    },
    Figure {
        key: "restore_reported_s",
        header: "(in s)",
        decimals: 3,
        value: |r| r.cycle.restore_in,
    },
    Figure {
        key: "cycle_s",
        header: "cycle s",
        decimals: 3,
        value: Run::cycle,
    },
    Figure {
        key: "hold_s",
        header: "hold s",
        decimals: 3,
        value: |r| r.hold,
    },
    Figure {
        key: "held_kib",
        header: "held KiB",
        decimals: 0,
        value: |r| (r.held_rss / 1024) as f64,
    },
    Figure {
        key: "unhold_s",
        header: "unhold s",
        decimals: 3,
        value: |r| r.unhold,
    },
    Figure {
        key: "refilled_s",
        header: "resident s",
        decimals: 3,
        value: |r| r.resident,
    },
    Figure {
        key: "held_cycle_s",
        header: "held cyc s",
        decimals: 3,
        value: Run::held_cycle,
    },
    Figure {
        key: "suspend_exit_s",
        header: "suspend s",
        decimals: 3,
        value: |r| r.cycle.suspend,
    },
    Figure {
        key: "durable_s",
        header: "durable s",
        decimals: 3,
        value: |r| r.cycle.durable,
    },
    Figure {
        key: "disk_s",
        header: "disk s",
        decimals: 3,
        value: |r| r.disk,
    },
    Figure {
        key: "disk_best_s",
        header: "best s",
        decimals: 3,
        value: |r| r.disk_best,
    },
    Figure {
        key: "durable_per_disk",
        header: "durable/disk",
        decimals: 2,
        value: |r| r.cycle.durable / r.disk,
    },
    Figure {
        key: "durable_per_best",
        header: "durable/best",
        decimals: 2,
        value: |r| r.cycle.durable / r.disk_best,
    },
    Figure {
        key: "held_per_cycle",
        header: "held/cycle",
        decimals: 2,
        value: |r| r.held_cycle() / r.cycle(),
    },
    Figure {
        key: "agent_peak_mib",
        header: "agent MiB",
        decimals: 1,
        value: |r| r.daemon_peak_kib as f64 / 1024.0,
    },
    Figure {
        key: "resume_peak_mib",
        header: "resume MiB",
        decimals: 1,
        value: |r| r.cycle.resume_peak_kib as f64 / 1024.0,
    },
    Figure {
        key: "refill_peak_mib",
        header: "refill MiB",
        decimals: 1,
        value: |r| r.refill_peak_kib as f64 / 1024.0,
    },
];

/// The columns of the first table (the dump, the restore, the hold).
pub const TIMES: &[&str] = &[
    "frozen_s",
    "frozen_one_freeze_s",
    "copy_s",
    "dump_s",
    "copy_gb_per_s",
    "image_mib",
    "restore_s",
    "restore_reported_s",
    "cycle_s",
    "hold_s",
    "held_kib",
    "unhold_s",
    "refilled_s",
    "held_cycle_s",
];

/// The columns of the second (against the limits; the agent's memory).
pub const LIMITS: &[&str] = &[
    "durable_s",
    "disk_s",
    "disk_best_s",
    "durable_per_disk",
    "durable_per_best",
    "held_per_cycle",
    "agent_peak_mib",
    "resume_peak_mib",
    "refill_peak_mib",
];

/// The runs of one size and thread count of the synthetic workload.
pub struct Group {
    pub size: String,
    pub threads: usize,
    pub runs: Vec<Run>,
}

pub fn one_run(
    bin: &Path,
    size: &str,
    threads: usize,
    image: &Path,
    daemon: &mut DaemonPeak,
) -> Result<Run> {
    let workload = start_workload(bin, &["--fill", size, "--threads", &threads.to_string()])?;
    let pid = workload.ready_pid()?;
    let pid_number: u32 = pid.parse().context("the workload's pid")?;
    daemon.start();

    // The dump, the process left running.
    let (text, total) = suspend(bin, &pid, image, &["--leave-running"])?;
    let bytes = std::fs::metadata(image.join("pages.img"))
        .map(|m| m.len())
        .unwrap_or(0);
    let frozen = number_after(&text, "frozen for ").context("no frozen time in the summary")?;
    let copy = number_after(&text, " in ").context("no copy time in the summary")?;
    // The same, copied in one freeze.
    let (text, _) = suspend(bin, &pid, image, &["--leave-running", "--no-precopy"])?;
    let frozen_one = number_after(&text, "frozen for ").context("no frozen time in the summary")?;

    // Held, then resumed in place.
    let (_, hold) = suspend(bin, &pid, image, &["--hold"])?;
    // VmRSS, bytes.
    let held_rss = rss_kib(pid_number).unwrap_or(0) * 1024;
    let started = Instant::now();
    let out = Command::new(bin.join("suspend-agent"))
        .args(["resume", &pid])
        .output()
        .context("running suspend-agent resume PID")?;
    let unhold = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "resuming the held workload (pid {pid}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // `resume` returned: the refill agent it started is ours now.
    let refill = Refill::find(daemon.pid(), pid_number);
    let record = held_record(pid_number);
    let refilled = poll(Duration::from_secs(120), Duration::from_micros(500), || {
        (!record.exists()).then_some(())
    });
    if refilled.is_none() {
        bail!("the held workload (pid {pid}) is still being refilled after 120 s");
    }
    let resident = started.elapsed().as_secs_f64();
    let refill_peak_kib = refill
        .and_then(|r| r.reap(Duration::from_secs(10)))
        .unwrap_or(0);
    let mut workload = workload;
    let line = workload.ask("check", "state ")?;
    if !line.contains(" memory=intact") {
        bail!("the workload (pid {pid}) is damaged after a held resume: {line}");
    }

    let disk = disk_limit(image, bytes, false)?;
    let disk_best = disk_limit(image, bytes, true)?;
    // The cycle: suspend (killed once the image is durable), then resume.
    let cycle = exit_and_resume(bin, workload, &pid, image)?;
    let daemon_peak_kib = daemon.read();
    Ok(Run {
        frozen,
        frozen_one,
        copy,
        total,
        bytes,
        hold,
        unhold,
        resident,
        held_rss,
        cycle,
        disk,
        disk_best,
        daemon_peak_kib,
        refill_peak_kib,
    })
}
