//! `cargo xtask bench`: how long a process stays frozen while it is dumped,
//! how fast the dump is, and how fast the image is brought back, for
//! synthetic workloads of several sizes held by one or eight threads
//! (`synthetic.rs`), and for realistic ones (`program.rs`: Python, a
//! JVM). Medians, least and greatest values over several runs
//! (`figures.rs`): this machine's memory and disk speeds vary from run to
//! run. The agent's own peak memory (`memory.rs`). Also written as JSON
//! (`report.rs`) and plotted (`plot.rs`) on request.

mod figures;
mod memory;
mod plot;
mod program;
mod report;
mod synthetic;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use suspend_harness::{poll, procfs::pid_alive};

use self::{
    figures::{Figure, table},
    memory::DaemonPeak,
    program::{Program, ProgramRun},
    synthetic::{FIGURES, Group, LIMITS, Run, TIMES, one_run},
};
use crate::{
    build,
    live::{Workload, become_subreaper, resume_workload, start_daemon},
    setup, util,
};

/// Benchmark the dump and the restore (needs root)
///
/// For every size and thread count, starts a workload holding that much
/// written memory (split among the threads), then, in every run:
///
/// - dump: suspends it with --leave-running into a fresh image and records
///   how long it stayed frozen, how long copying took, the whole command's
///   wall time (with fsync) and the image size;
///
/// - held: suspends it with --hold and records that command's wall time,
///   its resident memory while held, then `suspend-agent resume PID`'s wall
///   time (until it runs again: its memory comes back lazily) and the time
///   until every page is back (its held record gone); the workload is
///   checked to answer intact;
///
/// - disk: writes as many bytes as the image's pages to a fresh file in
///   the image's filesystem and `fdatasync`s it: the time this disk needs
///   to make those bytes durable, the limit a durable suspend is held to;
///   and again starting each 2 MiB's write-back as it is written (as the
///   agent does), the best this disk does;
///
/// - restore: suspends it again, this time with --exit (it is
///   killed once the image is durable), records how long after its
///   `ready` the image was durable (the agent reports it), reaps it, runs
///   `suspend-agent resume` on the image and records that command's wall
///   time (spawn to exit) and the time it reports itself; the cycle is the
///   killing suspend's wall time plus the resume's. The resumed process is
///   checked to be alive and answering, then killed by its pid;
///
/// - the agent's peak memory: the daemon's (which dumps) over the run, the
///   `resume` command's (which brings an image back) and the refill
///   agent's (which gives a held process its pages back).
///
/// Then, for every --python and --jvm size, a realistic workload: python3
/// holding that much in dicts, strings and lists, or a JVM whose heap
/// holds that much in strings and byte arrays, under the preload shim
/// (`suspend-agent run`). Every run suspends it with --exit and resumes it
/// from the image, and records its resident memory, the image's length and
/// the space it takes on disk (zero pages are holes), how long after
/// `ready` the image was durable, what this disk needs to write and
/// `fdatasync` the whole resident memory (what an image that stored every
/// page would cost), the resume's wall time and the agent's peak memory;
/// it is checked to answer intact.
///
/// Prints medians with the least and greatest value of each figure, and
/// the ratios to the limits measured in the same runs; --json writes every
/// run's figures, --svg plots time against size.
#[derive(clap::Args)]
pub struct Args {
    /// Memory sizes (K, M, G suffixes).
    #[arg(long, value_delimiter = ',', default_value = "16M,256M,1G")]
    sizes: Vec<String>,
    /// Thread counts holding the memory.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    threads: Vec<usize>,
    /// Sizes of the Python workload (`none` for none).
    #[arg(long, value_delimiter = ',', default_value = "256M")]
    python: Vec<String>,
    /// Sizes of the JVM workload's heap data (`none` for none; skipped,
    /// saying so, where there is no `java`).
    #[arg(long, value_delimiter = ',', default_value = "256M")]
    jvm: Vec<String>,
    /// Runs per combination.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Where the images are written (removed after each run).
    #[arg(long, default_value = "/var/tmp/suspend-bench")]
    dir: String,
    /// Also write every run's figures, their least, median and greatest
    /// values and the machine's description to this file, as JSON.
    #[arg(long, value_name = "PATH")]
    json: Option<String>,
    /// Also plot time against size (durable suspend, resume, held cycle,
    /// the disk's limit) to this file, as SVG.
    #[arg(long, value_name = "PATH")]
    svg: Option<String>,
}

const MIB: f64 = 1048576.0;

/// The runs of one size of a realistic workload.
pub struct ProgramGroup {
    pub program: Program,
    pub size: String,
    pub runs: Vec<ProgramRun>,
}

/// The number before `unit` that follows `after` in `text`
/// (`"… frozen for 0.123 s"` → 0.123).
fn number_after(text: &str, after: &str) -> Option<f64> {
    let rest = &text[text.find(after)? + after.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// `suspend-agent suspend PID -D IMAGE [extra]`: the summary on stdout and
/// the wall time.
fn suspend(bin: &Path, pid: &str, image: &Path, extra: &[&str]) -> Result<(String, f64)> {
    let _ = std::fs::remove_dir_all(image);
    let started = Instant::now();
    let out = Command::new(bin.join("suspend-agent"))
        .args(["suspend", pid, "-D"])
        .arg(image)
        .args(extra)
        .output()
        .context("running suspend-agent suspend")?;
    let wall = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "suspend {} of the workload failed: {}{}",
            extra.join(" "),
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((text, wall))
}

/// A suspend with --exit (the process killed once its image is durable)
/// and the resume from its image, in seconds and bytes.
pub struct ExitCycle {
    /// The suspend's wall time, and from the process's `ready` to its
    /// image durable, as the agent reports it.
    pub suspend: f64,
    pub durable: f64,
    /// `pages.img`: its length, and the space it takes (zero pages are
    /// holes).
    pub image: u64,
    pub on_disk: u64,
    /// Wall time of `suspend-agent resume`, spawn to exit, and the time it
    /// reports itself ("… in X s").
    pub restore: f64,
    pub restore_in: f64,
    /// The `resume` command's peak resident memory (KiB).
    pub resume_peak_kib: u64,
}

/// Suspends `workload` (pid `pid`) with --exit into `image`, checks it is
/// gone, reaps it, resumes it from the image, checks that it answers
/// intact, kills it and removes the image.
fn exit_and_resume(bin: &Path, workload: Workload, pid: &str, image: &Path) -> Result<ExitCycle> {
    use std::os::unix::fs::MetadataExt as _;
    let pid_number: u32 = pid.parse().context("the workload's pid")?;
    let (text, suspend_wall) = suspend(bin, pid, image, &["--exit"])?;
    let durable = number_after(&text, "image durable ")
        .with_context(|| format!("no durable time in the summary: {text}"))?;
    let pages = std::fs::metadata(image.join("pages.img")).context("the image's pages.img")?;
    let (image_len, on_disk) = (pages.len(), pages.blocks() * 512);
    let gone = poll(Duration::from_secs(10), Duration::from_millis(5), || {
        (!pid_alive(pid_number)).then_some(())
    });
    if gone.is_none() {
        bail!("suspend --exit left the workload (pid {pid}) running");
    }
    // Reaped: its pid is free for the resume.
    drop(workload);
    let resumed = resume_workload(bin, pid, image);
    let _ = std::fs::remove_dir_all(image);
    let r = resumed?;
    let restore_in = number_after(&r.summary, ") in ")
        .with_context(|| format!("no restore time in the summary: {}", r.summary))?;
    // Alive and answering (its memory checked), then killed.
    let mut workload = r.workload;
    let line = workload.ask("check", "state ")?;
    if !line.contains(" memory=intact") {
        bail!("the resumed workload (pid {pid}) is damaged: {line}");
    }
    Ok(ExitCycle {
        suspend: suspend_wall,
        durable,
        image: image_len,
        on_disk,
        restore: r.wall,
        restore_in,
        resume_peak_kib: r.peak_kib,
    })
}

/// Seconds to write `bytes` of incompressible data to a new file next to
/// `image` (2 MiB writes) and `fdatasync` it: what this disk needs to make
/// an image's pages durable, measured now since its speed drifts. With
/// `writeback`, each chunk's write-back is started as it is written
/// (`sync_file_range`).
pub(crate) fn disk_limit(image: &Path, bytes: u64, writeback: bool) -> Result<f64> {
    use std::os::{fd::AsRawFd as _, unix::fs::FileExt as _};
    let path = image.with_extension("disk-probe");
    let _ = std::fs::remove_file(&path);
    let mut chunk = vec![0u8; 2 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for word in chunk.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        word.copy_from_slice(&x.to_le_bytes());
    }
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let started = Instant::now();
    let mut at = 0u64;
    while at < bytes {
        let n = (bytes - at).min(chunk.len() as u64) as usize;
        // A different first word per chunk: no two chunks alike.
        chunk[..8].copy_from_slice(&at.to_le_bytes());
        file.write_all_at(&chunk[..n], at)
            .with_context(|| format!("writing {}", path.display()))?;
        if writeback {
            // SAFETY: sync_file_range takes no pointers; the fd is `file`'s.
            unsafe {
                libc::sync_file_range(
                    file.as_raw_fd(),
                    at as libc::off64_t,
                    n as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
        }
        at += n as u64;
    }
    file.sync_data()
        .with_context(|| format!("fdatasync {}", path.display()))?;
    let took = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(took)
}

/// The dump is done by the daemon: one of another build (a debug one left
/// by a test run, say) makes the dump figures meaningless.
fn warn_if_foreign_daemon(bin: &Path) {
    let exe = std::fs::read_to_string("/run/suspend/agent.pid")
        .ok()
        .and_then(|pid| std::fs::read_link(format!("/proc/{}/exe", pid.trim())).ok());
    let ours = bin.join("suspend-agent");
    if let Some(exe) = exe
        && std::fs::canonicalize(&ours).is_ok_and(|ours| ours != exe)
    {
        println!(
            "warning: the running agent daemon is {}, not {}: the dump figures are its",
            exe.display(),
            ours.display()
        );
    }
}

/// Whether `java` runs here.
fn java_runs() -> bool {
    Command::new("java")
        .arg("-version")
        .output()
        .is_ok_and(|out| out.status.success())
}

pub fn run(args: Args) -> Result<()> {
    setup::ensure()?;
    let bin = build::build(true)?;
    if !util::is_root()? {
        bail!("the benchmark freezes processes and needs root: run `sudo -E cargo xtask bench`");
    }
    // A --json or --svg that cannot be written is said now, not after
    // the runs.
    for path in args.json.iter().chain(&args.svg) {
        let dir = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            bail!("{path}: its directory does not exist");
        }
    }
    become_subreaper()?;
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir))?;
    let _daemon = start_daemon(&bin)?;
    warn_if_foreign_daemon(&bin);
    let mut daemon = DaemonPeak::find();
    let image = Path::new(&args.dir).join("image");
    let started = std::time::SystemTime::now();
    let mut groups = Vec::new();
    for size in &args.sizes {
        for &threads in &args.threads {
            util::stage(format!(
                "{size} held by {threads} thread(s): {} runs",
                args.runs
            ));
            let mut runs = Vec::new();
            for _ in 0..args.runs.max(1) {
                let run = one_run(&bin, size, threads, &image, &mut daemon)?;
                println!(
                    "  dump: frozen {:.3} s, copy {:.3} s, total {:.3} s, {:.1} MiB; \
                     suspend {:.3} s + resume {:.3} s (restore in {:.3} s) = cycle {:.3} s; \
                     held: suspend --hold {:.3} s ({} KiB resident) + resume {:.3} s (all back after {:.3} s); \
                     durable {:.3} s after ready, disk {:.3} s (with write-back as it goes {:.3} s); \
                     peak memory: daemon {:.1} MiB, resume {:.1} MiB, refill {:.1} MiB",
                    run.frozen,
                    run.copy,
                    run.total,
                    run.bytes as f64 / MIB,
                    run.cycle.suspend,
                    run.cycle.restore,
                    run.cycle.restore_in,
                    run.cycle(),
                    run.hold,
                    run.held_rss / 1024,
                    run.unhold,
                    run.resident,
                    run.cycle.durable,
                    run.disk,
                    run.disk_best,
                    run.daemon_peak_kib as f64 / 1024.0,
                    run.cycle.resume_peak_kib as f64 / 1024.0,
                    run.refill_peak_kib as f64 / 1024.0,
                );
                runs.push(run);
            }
            groups.push(Group {
                size: size.clone(),
                threads,
                runs,
            });
        }
    }
    let has_java = java_runs();
    let mut programs = Vec::new();
    let mut failures = Vec::new();
    let wanted = [(Program::Python, &args.python), (Program::Jvm, &args.jvm)];
    for (program, sizes) in wanted {
        for size in sizes.iter().filter(|s| *s != "none") {
            if program == Program::Jvm && !has_java {
                println!(
                    "warning: no `java` on this machine: the JVM workload ({size}) is skipped"
                );
                continue;
            }
            util::stage(format!("{}: {} runs", program.holding(size), args.runs));
            let mut runs = Vec::new();
            for _ in 0..args.runs.max(1) {
                // A realistic workload that fails is named and its size
                // skipped, the figures so far kept (the bench fails at the
                // end).
                let run = match program::run(&bin, program, size, &image, &mut daemon) {
                    Ok(run) => run,
                    Err(e) => {
                        let failure = format!("the {} workload ({size}): {e:#}", program.name());
                        println!("  failed, its other runs skipped: {failure}");
                        failures.push(failure);
                        break;
                    }
                };
                println!(
                    "  resident {:.1} MiB; image {:.1} MiB, {:.1} MiB on disk; suspend --exit {:.3} s, \
                     durable {:.3} s after ready (writing the resident memory: {:.3} s); resume {:.3} s; \
                     peak memory: daemon {:.1} MiB, resume {:.1} MiB",
                    run.rss as f64 / MIB,
                    run.cycle.image as f64 / MIB,
                    run.cycle.on_disk as f64 / MIB,
                    run.cycle.suspend,
                    run.cycle.durable,
                    run.disk_rss,
                    run.cycle.restore,
                    run.daemon_peak_kib as f64 / 1024.0,
                    run.cycle.resume_peak_kib as f64 / 1024.0,
                );
                runs.push(run);
            }
            if !runs.is_empty() {
                programs.push(ProgramGroup {
                    program,
                    size: size.clone(),
                    runs,
                });
            }
        }
    }
    print!("{}", tables(&groups, &programs, args.runs, daemon.reset));
    println!(
        "\nreference: the issue quotes about 0.55 s frozen for 1 GiB with a well-known C/R tool on this kind of machine,"
    );
    println!(
        "and targets a restore of 1 GiB within about 0.8 s (what that tool needs here) and a 16 MiB process"
    );
    println!("suspended and resumed in under 75 ms in total (the cycle column).");
    println!(
        "(Debian's CRIU 3.17 does not run on this kernel, so it is not measured side by side here)."
    );
    if let Some(path) = &args.json {
        let machine = report::Machine::this(started);
        let mut json = report::json(
            &machine,
            &args_json(&args),
            &groups,
            &programs,
            daemon.reset,
        );
        json["failures"] = failures.clone().into();
        let text = serde_json::to_string_pretty(&json).context("serializing the figures")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {path}"))?;
        println!("the figures, as JSON: {path}");
    }
    if let Some(path) = &args.svg {
        let svg = plot::svg(&plot::series(&groups));
        std::fs::write(path, svg).with_context(|| format!("writing {path}"))?;
        println!("time against size, plotted: {path}");
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

/// The options a run was made with, for the JSON.
fn args_json(args: &Args) -> serde_json::Value {
    serde_json::json!({
        "sizes": args.sizes,
        "threads": args.threads,
        "python": args.python,
        "jvm": args.jvm,
        "runs": args.runs,
        "dir": args.dir,
    })
}

/// The final tables: the synthetic workload's times, then against the
/// limits and the agent's memory, then the realistic workloads.
fn tables(groups: &[Group], programs: &[ProgramGroup], runs: usize, reset: bool) -> String {
    let pick = |keys: &[&str]| -> Vec<&Figure<Run>> {
        keys.iter().map(|k| figures::by_key(FIGURES, k)).collect()
    };
    let rows: Vec<(Vec<String>, &[Run])> = groups
        .iter()
        .map(|g| (vec![g.size.clone(), g.threads.to_string()], &g.runs[..]))
        .collect();
    let mut out = format!(
        "\nmedians of {runs} runs, the least and greatest under each (dump: suspend --leave-running, pre-copied where the kernel can, total includes the handshake and fsync;\n\
         1-freeze: the same dump with --no-precopy, everything copied frozen;\n\
         restore: wall time of `suspend-agent resume`, and the time it reports itself;\n\
         cycle: wall time of a suspend that kills the process plus the resume;\n\
         hold: wall time of suspend --hold, its resident KiB while held; unhold: of the held resume, until it runs again;\n\
         resident: from that resume's start until every page is back):\n"
    );
    out += &table(&["size", "threads"], &pick(TIMES), &rows);
    out += &format!(
        "\nagainst limits measured in the same runs (each run's ratio):\n\
         durable: from the process's ready to its image durable, in the suspend that kills it;\n\
         disk: writing and fdatasyncing as many bytes to a fresh file on the same filesystem;\n\
         best: the same, each 2 MiB's write-back started as it is written (sync_file_range);\n\
         held/cycle: the held cycle over the killing suspend + resume cycle;\n\
         the agent's peak resident memory: agent: the daemon, which dumps ({});\n\
         resume: the `resume` command, which brings an image back; refill: the agent that gives a held process its pages back (0: not found):\n",
        if reset {
            "its high-water mark reset before each run"
        } else {
            "a high-water mark since the daemon started: it could not be reset"
        }
    );
    out += &table(&["size", "threads"], &pick(LIMITS), &rows);
    for program in [Program::Python, Program::Jvm] {
        let rows: Vec<(Vec<String>, &[ProgramRun])> = programs
            .iter()
            .filter(|g| g.program == program)
            .map(|g| (vec![g.size.clone()], &g.runs[..]))
            .collect();
        if rows.is_empty() {
            continue;
        }
        out += &format!(
            "\nthe {} workload (on disk: the space pages.img takes, zero pages being holes;\n\
             durable: from ready to the image durable with --exit; disk: writing and fdatasyncing its\n\
             resident memory, write-back started as it goes, on the same filesystem in the same run;\n\
             agent and resume: peak resident memory of the daemon and of the resume command):\n",
            program.name()
        );
        out += &table(
            &["size"],
            &program::FIGURES.iter().collect::<Vec<_>>(),
            &rows,
        );
    }
    out
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A run made up: its durable suspend and the disk's limit as given,
    /// every other time derived from them.
    pub fn run(durable: f64, disk: f64) -> Run {
        Run {
            frozen: durable / 4.0,
            frozen_one: durable / 3.0,
            copy: durable / 5.0,
            total: durable / 2.0,
            bytes: 16 << 20,
            hold: durable / 3.0,
            unhold: 0.002,
            resident: durable,
            held_rss: 4 << 20,
            cycle: ExitCycle {
                suspend: durable * 1.1,
                durable,
                image: 16 << 20,
                on_disk: 16 << 20,
                restore: durable / 2.0,
                restore_in: durable / 3.0,
                resume_peak_kib: 20 * 1024,
            },
            disk,
            disk_best: disk / 2.0,
            daemon_peak_kib: 30 * 1024,
            refill_peak_kib: 10 * 1024,
        }
    }

    /// A realistic workload's run made up, its resident size unknown (0).
    pub fn program_run(durable: f64) -> ProgramRun {
        ProgramRun {
            rss: 0,
            cycle: run(durable, 1.0).cycle,
            disk_rss: 2.0,
            daemon_peak_kib: 40 * 1024,
        }
    }

    #[test]
    fn the_summary_is_parsed() {
        let text = "suspended pid 7: 1 thread(s), 12 mappings, 4096 pages (16.0 MiB) in 0.050 s; \
                    frozen for 0.123 s; image durable 0.210 s after ready";
        assert_eq!(number_after(text, "frozen for "), Some(0.123));
        assert_eq!(number_after(text, " in "), Some(0.05));
        assert_eq!(number_after(text, "image durable "), Some(0.21));
        assert_eq!(number_after(text, "resumed "), None);
    }

    #[test]
    fn the_tables_give_medians_with_min_and_max_and_the_agents_memory() {
        let groups = [Group {
            size: "16M".into(),
            threads: 8,
            runs: vec![run(0.3, 0.2), run(0.1, 0.2), run(0.2, 0.4)],
        }];
        let programs = [ProgramGroup {
            program: Program::Python,
            size: "256M".into(),
            runs: vec![program_run(1.0), program_run(2.0)],
        }];
        let text = tables(&groups, &programs, 3, true);
        assert!(text.contains("the least and greatest under each"), "{text}");
        assert!(
            text.contains("high-water mark reset before each run"),
            "{text}"
        );
        let line = |start: &str| {
            text.lines()
                .filter(|l| l.trim_start().starts_with(start))
                .map(str::split_whitespace)
                .map(Iterator::collect::<Vec<_>>)
                .collect::<Vec<_>>()
        };
        // The first table: frozen s is the first figure (durable / 4).
        let medians = line("16M");
        assert_eq!(medians[0][..3], ["16M", "8", "0.050"]);
        assert_eq!(line("min")[0][1], "0.025");
        assert_eq!(line("max")[0][1], "0.075");
        // The second: durable 0.2 (0.1–0.3); the agent's memory.
        assert_eq!(medians[1][..3], ["16M", "8", "0.200"]);
        assert_eq!(medians[1][medians[1].len() - 3..], ["30.0", "20.0", "10.0"]);
        // The Python workload, no JVM table.
        assert!(text.contains("the python workload"), "{text}");
        assert!(!text.contains("the jvm workload"), "{text}");
        assert_eq!(line("256M")[0][..2], ["256M", "0.0"]);
    }
}
