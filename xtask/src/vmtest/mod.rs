//! `cargo xtask vm-test [--kernel 6.1|6.12|7|all] [--keep] [-- FILTER...]`:
//! the root-only integration suite inside qemu guests running Debian's own
//! kernels, so it is checked on the kernels users run, not only the host's.
//!
//! 1. Setup, the release build, and the suite's test executables.
//! 2. The kernels ([`kernels`]): Debian cloud packages, cached outside the
//!    clone ([`debian::cache_dir`]).
//! 3. One initramfs per kernel ([`initramfs`]): the suite, its tools and
//!    their libraries ([`payload`]), and an `/init` that runs every test
//!    executable and reports a verdict on a serial port of its own.
//! 4. Every boot of the matrix ([`qemu`]): 6.1 and 6.12 with and without the
//!    BPF LSM, 7.x with its default LSM list. Each console log is kept in
//!    `target/vmtest/<kernel>-<variant>.console.log` and judged
//!    ([`report`]): the tests' status, and no panic, oops or stall.
//!
//! All boots run, then one table; the command fails if any boot did.

mod carry;
mod debian;
mod initramfs;
mod kernels;
mod payload;
mod qemu;
mod report;

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use self::{
    initramfs::{Node, Tree},
    kernels::{Kernel, Series, Variant},
    qemu::{Accel, Guest},
    report::{Console, Run},
};
use crate::{
    build, setup,
    util::{self, fmt_duration},
};

/// Run the root-only integration suite in qemu guests on Debian kernels.
///
/// Boots Debian's 6.1 (bookworm), 6.12 (bookworm-security) and newest 7.x
/// (trixie-backports) cloud kernels under qemu (KVM where this machine has
/// it, TCG otherwise) with a busybox initramfs holding the agent, the
/// workloads and the compiled integration tests; 6.1 and 6.12 boot once
/// with the BPF LSM active and once without. Kernels are cached in
/// ${XDG_CACHE_HOME:-~/.cache}/suspend/vmtest; console logs are kept in
/// target/vmtest/<kernel>-<variant>.console.log. Needs no root on the host.
#[derive(clap::Args)]
pub struct Args {
    /// Which kernels to boot (comma-separated or repeated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    kernel: Vec<KernelArg>,
    /// Keep the work directory (initramfs, qemu command lines) in
    /// target/vmtest/work after the run.
    #[arg(long)]
    keep: bool,
    /// Wall-clock limit per boot, in seconds (guest code runs 8-10 times
    /// slower than the host under TCG; the 7.x boot, which runs every
    /// suite, took 9.5 min on one machine and about twice that on
    /// another).
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    timeout: u64,
    /// Extra kernel parameters (also $VMTEST_APPEND), for testing the
    /// harness itself, e.g. `rdinit=/nonexistent` for a boot failure.
    #[arg(long, hide = true, value_name = "PARAMS")]
    append: Option<String>,
    /// Only run the integration tests whose names contain one of these
    /// (passed to the test harness).
    #[arg(last = true, value_name = "FILTER")]
    filters: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum KernelArg {
    #[value(name = "6.1")]
    V6_1,
    #[value(name = "6.12")]
    V6_12,
    #[value(name = "7")]
    V7,
    All,
}

impl Args {
    fn series(&self) -> Vec<Series> {
        let mut series: Vec<_> = self
            .kernel
            .iter()
            .flat_map(|arg| match arg {
                KernelArg::V6_1 => vec![Series::V6_1],
                KernelArg::V6_12 => vec![Series::V6_12],
                KernelArg::V7 => vec![Series::V7],
                KernelArg::All => Series::ALL.to_vec(),
            })
            .collect();
        series.sort();
        series.dedup();
        series
    }

    fn extra_params(&self) -> String {
        self.append
            .clone()
            .or_else(|| std::env::var("VMTEST_APPEND").ok())
            .unwrap_or_default()
    }
}

/// `cargo xtask vm-test`.
pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    setup::ensure()?;
    let profile_dir = build::build(true)?;
    util::stage("integration test executables");
    let suite = payload::build_suite()?;
    let names: Vec<_> = suite.tests.iter().map(|(name, _)| name.as_str()).collect();
    println!(
        "vmtest: {} test executables: {}",
        names.len(),
        names.join(" ")
    );

    let cache = debian::cache_dir()?;
    util::stage(format!(
        "kernels (cache: {}, reused when present)",
        cache.display()
    ));
    let mut kernels = Vec::new();
    for series in args.series() {
        let kernel = kernels::fetch(&cache, series)
            .with_context(|| format!("getting the {series} kernel failed"))?;
        println!("{}", kernel.summary());
        kernels.push(kernel);
    }

    util::stage("guest file system");
    let busybox = payload::busybox(&cache).context("getting busybox-static failed")?;
    let mut base = payload::collect(&profile_dir, &suite, &busybox)?;
    base.insert(
        "/init",
        Node::Data {
            bytes: initramfs::init_script(
                &args.filters,
                std::env::var("SUSPEND_FEATURES").ok().as_deref(),
            )
            .into_bytes(),
            mode: 0o755,
        },
    );
    let out_dir = util::target_dir().join("vmtest");
    let work = out_dir.join("work");
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let (accel, why) = qemu::detect_accel();
    println!("vmtest: accelerator: {why}");
    let timeout = Duration::from_secs(args.timeout);
    let extra = args.extra_params();
    let initrds = kernels
        .iter()
        .map(|kernel| initramfs_for(&base, kernel, &work))
        .collect::<Result<Vec<_>>>()?;
    // The first boot of each kernel, then the others: each first boot
    // carries images out, and every later boot of another kernel resumes
    // them (with 6.1, 6.12 and 7: 6.1 -> 6.12, 6.1 and 6.12 -> 7, then
    // 6.12 and 7 -> 6.1, 6.1 and 7 -> 6.12).
    let (mut order, rest): (Vec<_>, Vec<_>) = kernels
        .iter()
        .zip(&initrds)
        .flat_map(|(kernel, initrd)| {
            let variants = kernel.variants();
            variants
                .into_iter()
                .enumerate()
                .map(move |(n, variant)| (kernel, initrd, variant, n == 0))
        })
        .partition(|(_, _, _, first)| *first);
    order.extend(rest);
    let moving = kernels.len() > 1;
    let mut carried: Vec<(String, Series, carry::Files)> = Vec::new();
    let mut runs = Vec::new();
    for (kernel, base_initrd, variant, first) in order {
        let label = format!("{}-{}", kernel.series, variant.name);
        let carry_out = moving && first;
        let from: Vec<_> = carried
            .iter()
            .filter(|(_, series, _)| *series != kernel.series)
            .collect();
        let mut params = extra.clone();
        if carry_out {
            params = format!("{params} {}", carry::OUT_PARAM);
        }
        let initrd = if from.is_empty() {
            base_initrd.clone()
        } else {
            let labels: Vec<_> = from.iter().map(|(label, _, _)| label.as_str()).collect();
            params = format!("{params} {}={}", carry::IN_PARAM, labels.join(","));
            let tree = carry::tree(from.iter().map(|(label, _, files)| (label.as_str(), files)));
            with_carried(base_initrd, &tree, &work, &label)?
        };
        let boot = Boot {
            kernel,
            variant: &variant,
            initrd: &initrd,
            accel,
            timeout,
            extra: params.trim(),
            out_dir: &out_dir,
            work: &work,
            keep: args.keep,
        };
        // An error of the harness (qemu cannot start, a file cannot
        // be written) fails this boot; the others still run.
        let run = boot.run().unwrap_or_else(|error| {
            println!("vmtest: {}: ERROR: {error:#}", boot.label());
            Run {
                kernel: kernel.release.clone(),
                variant: variant.name.to_owned(),
                ok: false,
                result: "ERROR (see above)".into(),
                passed: 0,
                failed: 0,
                duration: Duration::ZERO,
                console_log: boot.console_log(),
            }
        });
        runs.push(run);
        if carry_out {
            let port = qemu::carry_path(&work, &label);
            let text = fs::read(&port).unwrap_or_default();
            match carry::parse(&String::from_utf8_lossy(&text)) {
                Ok(Some(files)) => {
                    let bytes: usize = files.values().map(Vec::len).sum();
                    println!(
                        "vmtest: {label}: carried out {} files ({} KiB) for the boots of other kernels",
                        files.len(),
                        bytes / 1024
                    );
                    carried.push((label, kernel.series, files));
                }
                Ok(None) => println!(
                    "vmtest: {label}: carried nothing out (its moved_between_kernels_out test did not run or did not finish)"
                ),
                Err(error) => println!("vmtest: {label}: its carry port is damaged: {error:#}"),
            }
        }
    }

    util::stage(format!(
        "vm-test: {} boots in {}",
        runs.len(),
        fmt_duration(started.elapsed())
    ));
    report::print_table(&runs);
    for run in &runs {
        println!("  {}", run.console_log.display());
    }
    if args.keep {
        println!("vmtest: work directory kept: {}", work.display());
    } else {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    let ran: u32 = runs.iter().map(|run| run.passed + run.failed).sum();
    if ran == 0 && !args.filters.is_empty() {
        println!("vmtest: note: no test matched {}", args.filters.join(" "));
    }
    let failed: Vec<_> = runs
        .iter()
        .filter(|run| !run.ok)
        .map(|run| format!("{} {}", run.kernel, run.variant))
        .collect();
    if !failed.is_empty() {
        bail!("vm-test failed on {}", failed.join(", "));
    }
    Ok(())
}

/// The base tree plus the kernel's config at `/boot/config-<release>`
/// (where `bpftool feature` and `suspend-agent check` look), written to
/// `<work>/initramfs-<series>.cpio`.
fn initramfs_for(base: &Tree, kernel: &Kernel, work: &Path) -> Result<PathBuf> {
    let mut tree = base.clone();
    tree.insert(
        format!("/boot/config-{}", kernel.release),
        Node::file(&kernel.config_path)?,
    );
    for module in &kernel.modules {
        let name = module.file_name().expect("a module file has a name");
        let guest = Path::new("/lib/modules").join(&kernel.release).join(name);
        tree.insert(guest, Node::file(module)?);
    }
    let path = work.join(format!("initramfs-{}.cpio", kernel.series));
    let started = Instant::now();
    let size = tree.write_cpio(&path)?;
    println!(
        "vmtest: {} ({} MB) written in {}",
        path.display(),
        size / 1_000_000,
        fmt_duration(started.elapsed())
    );
    Ok(path)
}

/// `base` followed by a second cpio archive of `tree` (the kernel unpacks
/// one after the other), written to `<work>/initramfs-<label>.cpio`.
fn with_carried(base: &Path, tree: &Tree, work: &Path, label: &str) -> Result<PathBuf> {
    let extra = work.join(format!("carried-{label}.cpio"));
    tree.write_cpio(&extra)?;
    let path = work.join(format!("initramfs-{label}.cpio"));
    fs::copy(base, &path)
        .with_context(|| format!("copying {} to {}", base.display(), path.display()))?;
    let mut out = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut carried =
        fs::File::open(&extra).with_context(|| format!("opening {}", extra.display()))?;
    std::io::copy(&mut carried, &mut out)
        .with_context(|| format!("appending to {}", path.display()))?;
    fs::remove_file(&extra).with_context(|| format!("removing {}", extra.display()))?;
    Ok(path)
}

/// One boot of the matrix.
struct Boot<'a> {
    kernel: &'a Kernel,
    variant: &'a Variant,
    initrd: &'a Path,
    accel: Accel,
    timeout: Duration,
    extra: &'a str,
    out_dir: &'a Path,
    work: &'a Path,
    keep: bool,
}

impl Boot<'_> {
    /// `6.12-lsm`: the prefix of its console lines and file names.
    fn label(&self) -> String {
        format!("{}-{}", self.kernel.series, self.variant.name)
    }

    fn console_log(&self) -> PathBuf {
        self.out_dir.join(format!("{}.console.log", self.label()))
    }

    /// Boots, retrying once when no verdict came and no test had started
    /// (a boot failure, which the recipe saw flake), and judges the result.
    fn run(&self) -> Result<Run> {
        let label = self.label();
        util::stage(format!(
            "{label}: {} {}",
            self.kernel.release,
            self.variant
                .lsm_param
                .as_ref()
                .map_or("(default LSM list)".to_owned(), |lsm| format!("lsm={lsm}"))
        ));
        let console_log = self.console_log();
        let mut append = self
            .variant
            .lsm_param
            .as_ref()
            .map(|lsm| format!("lsm={lsm}"))
            .unwrap_or_default();
        if !self.extra.is_empty() {
            append = format!("{append} {}", self.extra).trim().to_owned();
        }
        let guest = Guest {
            label: &label,
            accel: self.accel,
            kernel: &self.kernel.vmlinuz,
            initrd: self.initrd,
            append: &append,
            console_log: &console_log,
            work: self.work,
            timeout: self.timeout,
        };
        if self.keep {
            let script = self.work.join(format!("{label}.qemu.sh"));
            fs::write(&script, format!("{}\n", util::display(&guest.command())))
                .with_context(|| format!("writing {}", script.display()))?;
        }

        let first = self.out_dir.join(format!("{label}.boot1.console.log"));
        if first.exists() {
            fs::remove_file(&first).with_context(|| format!("removing {}", first.display()))?;
        }
        let mut total = Duration::ZERO;
        let mut attempt = 1;
        let (outcome, console) = loop {
            let outcome = guest.run()?;
            total += outcome.duration;
            let text = fs::read(&console_log).unwrap_or_default();
            let console = Console::parse(&String::from_utf8_lossy(&text));
            let boot_failure =
                outcome.verdict.is_none() && !outcome.timed_out && !console.tests_started;
            if boot_failure && attempt == 1 {
                if console_log.exists() {
                    fs::rename(&console_log, &first).with_context(|| {
                        format!("renaming {} to {}", console_log.display(), first.display())
                    })?;
                }
                println!(
                    "vmtest: {label}: no verdict and no test started (boot failure?) after {}; \
                     retrying once (the first console log is {})",
                    fmt_duration(outcome.duration),
                    first.display()
                );
                attempt += 1;
                continue;
            }
            break (outcome, console);
        };

        let failure = judge(&outcome, &console, self.variant, self.timeout);
        if let Some(failure) = &failure {
            println!("vmtest: {label}: FAILED: {}", failure.detail);
            if outcome.verdict.is_none() || console.kernel_trouble.is_some() {
                println!("vmtest: the last 30 lines of {}:", console_log.display());
                for line in &console.tail {
                    println!("    {line}");
                }
            }
            let qemu_said = outcome.qemu_stderr.trim();
            if !qemu_said.is_empty() {
                println!("vmtest: qemu said ({}):\n{qemu_said}", outcome.qemu);
            }
            for test in &console.failed_tests {
                println!("vmtest: {label}: failed test: {test}");
            }
        }
        if !console.kernel_warnings.is_empty() {
            println!(
                "vmtest: {label}: the kernel logged {} warnings during the tests (not a failure):",
                console.kernel_warnings.len()
            );
            for warning in console.kernel_warnings.iter().take(10) {
                println!("    {warning}");
            }
        }
        let mut result = failure.as_ref().map_or("passed".to_owned(), |failure| {
            format!("FAILED: {}", failure.short)
        });
        if attempt > 1 {
            result.push_str(" (2 boots)");
        }
        println!(
            "vmtest: {label}: {result}: {} passed, {} failed, in {}; console log: {}",
            console.passed,
            console.failed,
            fmt_duration(total),
            console_log.display()
        );
        Ok(Run {
            kernel: console
                .uname
                .clone()
                .unwrap_or_else(|| self.kernel.release.clone()),
            variant: self.variant.name.to_owned(),
            ok: failure.is_none(),
            result,
            passed: console.passed,
            failed: console.failed,
            duration: total,
            console_log,
        })
    }
}

/// Why a boot failed: a few words for the table, and the whole story.
struct Failure {
    short: String,
    detail: String,
}

/// `None` if the boot passed.
fn judge(
    outcome: &qemu::Outcome,
    console: &Console,
    variant: &Variant,
    timeout: Duration,
) -> Option<Failure> {
    let fail = |short: &str, detail: String| {
        let detail = match &console.kernel_trouble {
            Some(line) => format!("{detail}; the kernel said: {line}"),
            None => detail,
        };
        Some(Failure {
            short: short.to_owned(),
            detail,
        })
    };
    let Some(verdict) = outcome.verdict else {
        if outcome.timed_out {
            return fail(
                "timeout",
                format!("no verdict within {}", fmt_duration(timeout)),
            );
        }
        if console.tests_started {
            return fail(
                "guest died",
                "the guest stopped during the tests, without a verdict".into(),
            );
        }
        return fail(
            "boot failure",
            "boot failure: no verdict and no test started".into(),
        );
    };
    if console.kernel_trouble.is_some() {
        return fail("kernel error", format!("the tests exited {verdict}"));
    }
    if verdict != 0 {
        return fail(
            &format!("tests failed ({verdict})"),
            format!("the tests failed: exit status {verdict}"),
        );
    }
    let lsm = console.lsm.as_deref().unwrap_or_default();
    match console.bpf_lsm_active() {
        Some(active) if active != variant.expect_bpf_lsm => fail(
            "wrong LSMs",
            format!(
                "the BPF LSM is {} (active LSMs: {lsm})",
                if active { "active" } else { "not active" }
            ),
        ),
        None => fail("no LSM list", "/init did not print the active LSMs".into()),
        Some(_) => None,
    }
}
