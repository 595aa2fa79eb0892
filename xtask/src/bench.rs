//! `cargo xtask bench`: how long a process stays frozen while it is dumped,
//! and how fast the dump is, for synthetic workloads of several sizes held
//! by one or eight threads. Medians over several runs: this machine's
//! memory and disk speeds vary from run to run.

use std::{path::Path, process::Command, time::Instant};

use anyhow::{Context as _, Result, bail};

use crate::{
    build,
    live::{start_daemon, start_workload},
    setup, util,
};

/// Benchmark the dump (needs root)
///
/// For every size and thread count, starts a workload holding that much
/// written memory (split among the threads), suspends it with
/// --leave-running into a fresh image, and records how long it stayed
/// frozen, how long copying took, the whole command's wall time (with
/// fsync) and the image size. Prints medians.
#[derive(clap::Args)]
pub struct Args {
    /// Memory sizes (K, M, G suffixes).
    #[arg(long, value_delimiter = ',', default_value = "16M,256M,1G")]
    sizes: Vec<String>,
    /// Thread counts holding the memory.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    threads: Vec<usize>,
    /// Runs per combination.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Where the images are written (removed after each run).
    #[arg(long, default_value = "/var/tmp/suspend-bench")]
    dir: String,
}

/// One run's figures, in seconds and bytes.
struct Run {
    frozen: f64,
    copy: f64,
    total: f64,
    bytes: u64,
}

/// The number before `unit` that follows `after` in `text`
/// (`"… frozen for 0.123 s"` → 0.123).
fn number_after(text: &str, after: &str) -> Option<f64> {
    let rest = &text[text.find(after)? + after.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn one_run(bin: &Path, size: &str, threads: usize, image: &Path) -> Result<Run> {
    let workload = start_workload(bin, &["--fill", size, "--threads", &threads.to_string()])?;
    let pid = workload
        .expect("ready")?
        .trim_start_matches("ready pid=")
        .to_owned();
    let _ = std::fs::remove_dir_all(image);
    let started = Instant::now();
    let out = Command::new(bin.join("suspend-agent"))
        .args(["suspend", &pid, "-D"])
        .arg(image)
        .args(["--leave-running"])
        .output()
        .context("running suspend-agent")?;
    let total = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "suspend of the workload failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bytes = std::fs::metadata(image.join("pages.img"))
        .map(|m| m.len())
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(image);
    Ok(Run {
        frozen: number_after(&text, "frozen for ").context("no frozen time in the summary")?,
        copy: number_after(&text, " in ").context("no copy time in the summary")?,
        total,
        bytes,
    })
}

pub fn run(args: Args) -> Result<()> {
    setup::ensure()?;
    let bin = build::build(true)?;
    if !util::is_root()? {
        bail!("the benchmark freezes processes and needs root: run `sudo -E cargo xtask bench`");
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir))?;
    let _daemon = start_daemon(&bin)?;
    let image = Path::new(&args.dir).join("image");
    let mut rows = Vec::new();
    for size in &args.sizes {
        for &threads in &args.threads {
            util::stage(format!(
                "{size} held by {threads} thread(s): {} runs",
                args.runs
            ));
            let mut runs = Vec::new();
            for _ in 0..args.runs.max(1) {
                let run = one_run(&bin, size, threads, &image)?;
                println!(
                    "  frozen {:.3} s, copy {:.3} s, total {:.3} s, {:.1} MiB",
                    run.frozen,
                    run.copy,
                    run.total,
                    run.bytes as f64 / 1048576.0
                );
                runs.push(run);
            }
            let copy = median(runs.iter().map(|r| r.copy).collect());
            let bytes = runs[0].bytes;
            rows.push((
                size.clone(),
                threads,
                median(runs.iter().map(|r| r.frozen).collect()),
                copy,
                median(runs.iter().map(|r| r.total).collect()),
                bytes as f64 / copy / 1e9,
                bytes,
            ));
        }
    }
    println!(
        "\nmedians of {} runs (suspend --leave-running; total includes the handshake and fsync):",
        args.runs
    );
    println!(
        "{:>6} {:>7} {:>10} {:>9} {:>9} {:>10} {:>10}",
        "size", "threads", "frozen s", "copy s", "total s", "copy GB/s", "image MiB"
    );
    for (size, threads, frozen, copy, total, rate, bytes) in rows {
        println!(
            "{size:>6} {threads:>7} {frozen:>10.3} {copy:>9.3} {total:>9.3} {rate:>10.2} {:>10.1}",
            bytes as f64 / 1048576.0
        );
    }
    println!(
        "\nreference: the issue quotes about 0.55 s frozen for 1 GiB with a well-known C/R tool on this kind of machine"
    );
    println!(
        "(Debian's CRIU 3.17 does not run on this kernel, so it is not measured side by side here)."
    );
    Ok(())
}
