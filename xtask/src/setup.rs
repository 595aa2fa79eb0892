//! `cargo xtask setup`: installs, idempotently, everything a fresh Debian
//! machine lacks to build and test suspend.
//!
//! 1. Debian packages ([`DEBIAN_PACKAGES`]), through `apt-get` (needs root).
//! 2. The host toolchain of `rust-toolchain.toml` with its components.
//! 3. The eBPF nightly of `suspend-ebpf/rust-toolchain.toml` with `rust-src`.
//! 4. `bpf-linker` built against that nightly's own LLVM, installed under
//!    `$CARGO_HOME/suspend/<nightly>/`, where `suspend-agent/build.rs`
//!    looks for it.
//!
//! Every step checks before it installs; [`ensure`] runs the checks only and
//! installs what is missing, so every other command can call it cheaply.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::util::{self, fmt_duration};

/// Debian packages the build and the tests need. Add new ones here.
pub const DEBIAN_PACKAGES: &[&str] = &[
    "bpftool",
    "gcc",
    "pkg-config",
    "python3",
    "libc6-dev",
    // `cargo xtask vm-test` (busybox-static is only unpacked, not installed).
    "qemu-system-x86",
];

/// The `bpf-linker` release built by step 4.
const BPF_LINKER_VERSION: &str = "0.13.0";

/// What `setup` does with each step.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Check each step, install what is missing, one line per step.
    Install,
    /// Only report; fail if something is missing.
    Check,
}

/// `cargo xtask setup [--check]`.
pub fn setup(mode: Mode) -> Result<()> {
    let cx = Context::new()?;
    let started = Instant::now();
    let mut missing = 0;
    for (index, step) in Step::ALL.iter().enumerate() {
        let line = format!("[{}/{}] {}", index + 1, Step::ALL.len(), step.label(&cx));
        let state = step.check(&cx, mode == Mode::Install)?;
        match (state, mode) {
            (None, Mode::Install) => println!("{line} ... already installed"),
            (None, Mode::Check) => println!("{line} ... ok"),
            (Some(why), Mode::Check) => {
                println!("{line} ... missing: {why}");
                missing += 1;
            }
            (Some(why), Mode::Install) => {
                println!("{line} ... installing ({why})");
                let started = Instant::now();
                step.install(&cx)
                    .with_context(|| format!("setup step {line} failed"))?;
                println!("{line} ... done ({})", fmt_duration(started.elapsed()));
            }
        }
    }
    if missing > 0 {
        bail!(
            "{missing} of {} setup steps are missing: run `cargo xtask setup`",
            Step::ALL.len()
        );
    }
    if mode == Mode::Install {
        println!("setup complete ({})", fmt_duration(started.elapsed()));
    }
    Ok(())
}

/// The cheap check every command runs first: one line if everything is
/// installed, otherwise the full `setup` for the missing steps.
pub fn ensure() -> Result<()> {
    let cx = Context::new()?;
    for step in Step::ALL {
        if step.check(&cx, true)?.is_some() {
            println!("setup: something is missing, installing it");
            return setup(Mode::Install);
        }
    }
    println!(
        "setup: packages, toolchains {} + {}, bpf-linker {BPF_LINKER_VERSION} present",
        cx.host.channel, cx.ebpf.channel
    );
    Ok(())
}

/// The eBPF crate's pinned nightly (`suspend-ebpf/rust-toolchain.toml`).
pub fn ebpf_channel() -> Result<String> {
    let root = util::workspace_root();
    Ok(Toolchain::read(&root.join("suspend-ebpf/rust-toolchain.toml"))?.channel)
}

/// Facts shared by the steps.
struct Context {
    /// `rust-toolchain.toml` of the workspace.
    host: Toolchain,
    /// `suspend-ebpf/rust-toolchain.toml`.
    ebpf: Toolchain,
    /// `$CARGO_HOME/suspend/<nightly>`: bpf-linker and its LLVM links.
    linker_root: PathBuf,
}

impl Context {
    fn new() -> Result<Self> {
        let root = util::workspace_root();
        let host = Toolchain::read(&root.join("rust-toolchain.toml"))?;
        let ebpf = Toolchain::read(&root.join("suspend-ebpf/rust-toolchain.toml"))?;
        let linker_root = util::cargo_home()?.join("suspend").join(&ebpf.channel);
        Ok(Self {
            host,
            ebpf,
            linker_root,
        })
    }

    fn linker_bin(&self) -> PathBuf {
        self.linker_root.join("bin/bpf-linker")
    }

    fn llvm_prefix(&self) -> PathBuf {
        self.linker_root.join("llvm")
    }

    fn stamp(&self) -> PathBuf {
        self.linker_root.join("bpf-linker.stamp")
    }
}

#[derive(Clone, Copy)]
enum Step {
    Packages,
    HostToolchain,
    EbpfToolchain,
    BpfLinker,
}

impl Step {
    const ALL: [Self; 4] = [
        Self::Packages,
        Self::HostToolchain,
        Self::EbpfToolchain,
        Self::BpfLinker,
    ];

    fn label(self, cx: &Context) -> String {
        match self {
            Self::Packages => format!("Debian packages {}", DEBIAN_PACKAGES.join(" ")),
            Self::HostToolchain => format!("host toolchain {}", cx.host),
            Self::EbpfToolchain => format!("eBPF toolchain {}", cx.ebpf),
            Self::BpfLinker => {
                format!("bpf-linker {BPF_LINKER_VERSION} for {}", cx.ebpf.channel)
            }
        }
    }

    /// `None` if the step is done, else what is missing. `repair` allows
    /// harmless fixes that need no install (writing a missing stamp).
    fn check(self, cx: &Context, repair: bool) -> Result<Option<String>> {
        match self {
            Self::Packages => Ok(missing_packages()?.map(|missing| missing.join(" "))),
            Self::HostToolchain => cx.host.missing(),
            Self::EbpfToolchain => cx.ebpf.missing(),
            Self::BpfLinker => bpf_linker_missing(cx, repair),
        }
    }

    fn install(self, cx: &Context) -> Result<()> {
        match self {
            Self::Packages => install_packages(),
            Self::HostToolchain => cx.host.install(),
            Self::EbpfToolchain => cx.ebpf.install(),
            Self::BpfLinker => install_bpf_linker(cx),
        }
    }
}

// ---------------------------------------------------------------------------
// Step 1: Debian packages

/// The packages of [`DEBIAN_PACKAGES`] that `dpkg` does not report as
/// installed; `None` if all are (or if this is no Debian: then nothing can
/// be checked and nothing is installed).
fn missing_packages() -> Result<Option<Vec<&'static str>>> {
    if which("dpkg-query").is_none() {
        // Not Debian: nothing to check; the build names whatever is missing.
        return Ok(None);
    }
    let out = util::capture(
        Command::new("dpkg-query")
            .args(["-W", "-f=${Package} ${Status}\\n"])
            .args(DEBIAN_PACKAGES),
    )?;
    // dpkg-query exits 1 if some package is unknown; its stdout still lists
    // the others.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let installed = |package: &str| {
        stdout.lines().any(|line| {
            line.split_once(' ')
                .is_some_and(|(name, status)| name == package && status == "install ok installed")
        })
    };
    let missing: Vec<_> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|package| !installed(package))
        .collect();
    Ok((!missing.is_empty()).then_some(missing))
}

fn install_packages() -> Result<()> {
    let Some(missing) = missing_packages()? else {
        return Ok(());
    };
    if !util::is_root()? {
        bail!(
            "missing Debian packages: {0}; installing them needs root: run \
             `sudo apt-get install {0}` (or `sudo -E cargo xtask setup`)",
            missing.join(" ")
        );
    }
    util::run(Command::new("apt-get").arg("update"))?;
    util::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )?;
    if let Some(still) = missing_packages()? {
        bail!("apt-get did not install {}", still.join(" "));
    }
    Ok(())
}

/// `program` in `$PATH`, if any.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

// ---------------------------------------------------------------------------
// Steps 2 and 3: rustup toolchains

/// A toolchain as named by a `rust-toolchain.toml`.
struct Toolchain {
    channel: String,
    components: Vec<String>,
    /// Extra targets (the restorer stub's `x86_64-unknown-none`).
    targets: Vec<String>,
}

impl std::fmt::Display for Toolchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.channel)?;
        if !self.components.is_empty() {
            write!(f, " + {}", self.components.join(", "))?;
        }
        if !self.targets.is_empty() {
            write!(f, " + target {}", self.targets.join(", "))?;
        }
        Ok(())
    }
}

impl Toolchain {
    /// Reads `channel = "…"` and `components = ["…", …]` (on one line) of a
    /// `rust-toolchain.toml`: a tiny parser, these files are that simple.
    fn read(path: &Path) -> Result<Self> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let channel = toml_value(&text, "channel")
            .map(|value| value.trim_matches('"').to_owned())
            .filter(|channel| !channel.is_empty())
            .ok_or_else(|| anyhow!("no `channel = \"…\"` line in {}", path.display()))?;
        let list = |key: &str| -> Result<Vec<String>> {
            Ok(match toml_value(&text, key) {
                None => Vec::new(),
                Some(list) => list
                    .strip_prefix('[')
                    .and_then(|list| list.strip_suffix(']'))
                    .ok_or_else(|| {
                        anyhow!("{}: write `{key} = [\"…\", …]` on one line", path.display())
                    })?
                    .split(',')
                    .map(|item| item.trim().trim_matches('"').to_owned())
                    .filter(|item| !item.is_empty())
                    .collect(),
            })
        };
        Ok(Self {
            channel,
            components: list("components")?,
            targets: list("targets")?,
        })
    }

    /// `None` if rustup has the toolchain and all its components, else what
    /// is missing.
    fn missing(&self) -> Result<Option<String>> {
        if !self.is_installed()? {
            return Ok(Some("toolchain not installed".into()));
        }
        let missing = self.missing_components()?;
        if !missing.is_empty() {
            return Ok(Some(format!("components {} missing", missing.join(", "))));
        }
        let missing = self.missing_targets()?;
        Ok((!missing.is_empty()).then(|| format!("targets {} missing", missing.join(", "))))
    }

    fn is_installed(&self) -> Result<bool> {
        let list = util::output(Command::new("rustup").args(["toolchain", "list"]))?;
        // Lines look like `1.98.0-x86_64-unknown-linux-gnu (active)`.
        Ok(list
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .any(|name| names(name, &self.channel)))
    }

    fn missing_components(&self) -> Result<Vec<&str>> {
        self.missing_of("component", &self.components)
    }

    fn missing_targets(&self) -> Result<Vec<&str>> {
        self.missing_of("target", &self.targets)
    }

    /// Which of `wanted` `rustup KIND list --installed` does not list
    /// (`clippy-x86_64-unknown-linux-gnu` names `clippy`; `rust-src` is
    /// listed alone).
    fn missing_of<'a>(&self, kind: &str, wanted: &'a [String]) -> Result<Vec<&'a str>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let installed = util::output(Command::new("rustup").args([
            kind,
            "list",
            "--installed",
            "--toolchain",
            &self.channel,
        ]))?;
        Ok(wanted
            .iter()
            .map(String::as_str)
            .filter(|item| !installed.lines().any(|line| names(line.trim(), item)))
            .collect())
    }

    fn install(&self) -> Result<()> {
        if !self.is_installed()? {
            let mut cmd = Command::new("rustup");
            cmd.args([
                "toolchain",
                "install",
                &self.channel,
                "--profile",
                "minimal",
                // Never update rustup itself as a side effect of a build.
                "--no-self-update",
            ]);
            if !self.components.is_empty() {
                cmd.args(["--component", &self.components.join(",")]);
            }
            util::run(&mut cmd)?;
        }
        for (kind, missing) in [
            ("component", self.missing_components()?),
            ("target", self.missing_targets()?),
        ] {
            if !missing.is_empty() {
                util::run(
                    Command::new("rustup")
                        .args([kind, "add", "--toolchain", &self.channel])
                        .args(&missing),
                )?;
            }
        }
        if let Some(still) = self.missing()? {
            bail!("rustup did not install {}: {still}", self.channel);
        }
        Ok(())
    }

    /// The toolchain's sysroot, or `None` if rustup does not have it.
    fn sysroot(&self) -> Result<Option<PathBuf>> {
        let sysroot = util::probe(Command::new("rustup").args([
            "run",
            &self.channel,
            "rustc",
            "--print",
            "sysroot",
        ]))?;
        Ok(sysroot.map(|sysroot| PathBuf::from(sysroot.trim())))
    }
}

/// Whether rustup's `item` (`1.98.0-x86_64-unknown-linux-gnu`, `rust-src`)
/// is `name`, with or without a target triple. Triples never start with a
/// digit, so `nightly` does not match `nightly-2026-10-29-x86_64-…`.
fn names(item: &str, name: &str) -> bool {
    item == name
        || item
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|triple| !triple.starts_with(|c: char| c.is_ascii_digit()))
}

/// The value of a top-level `key = value` line, value trimmed, quotes kept.
fn toml_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix(key))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .map(str::trim)
        .next()
}

// ---------------------------------------------------------------------------
// Step 4: bpf-linker against the nightly's LLVM

/// The file name of the real LLVM shared library in the nightly's
/// `<sysroot>/lib`, e.g. `libLLVM.so.23.1-rust-1.101.0-nightly` (also its
/// soname). The `libLLVM-23-rust-….so` next to it is a linker script.
fn nightly_llvm(sysroot: &Path) -> Result<String> {
    let lib = sysroot.join("lib");
    let mut found = Vec::new();
    for entry in fs::read_dir(&lib).with_context(|| format!("listing {}", lib.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("libLLVM.so.") && entry.file_type()?.is_file() {
            found.push(name);
        }
    }
    match found.as_slice() {
        [name] => Ok(name.clone()),
        [] => bail!(
            "no libLLVM.so.* in {}: does this nightly ship a shared LLVM?",
            lib.display()
        ),
        _ => bail!(
            "several libLLVM.so.* in {}: {}",
            lib.display(),
            found.join(", ")
        ),
    }
}

/// What the stamp records about an installed bpf-linker.
#[derive(PartialEq, Eq)]
struct Stamp {
    channel: String,
    llvm: String,
    version: String,
}

impl Stamp {
    fn current(cx: &Context, llvm: String) -> Self {
        Self {
            channel: cx.ebpf.channel.clone(),
            llvm,
            version: BPF_LINKER_VERSION.to_owned(),
        }
    }

    fn read(path: &Path) -> Option<Self> {
        let text = fs::read_to_string(path).ok()?;
        let field = |key| Some(toml_value(&text, key)?.trim_matches('"').to_owned());
        Some(Self {
            channel: field("channel")?,
            llvm: field("llvm")?,
            version: field("bpf-linker")?,
        })
    }

    fn write(&self, path: &Path) -> Result<()> {
        let text = format!(
            "# Written by `cargo xtask setup`: bpf-linker in ./bin was built against\n\
             # the LLVM of this nightly; a different LLVM means rebuild.\n\
             channel = \"{}\"\nllvm = \"{}\"\nbpf-linker = \"{}\"\n",
            self.channel, self.llvm, self.version
        );
        fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// `None` if bpf-linker is installed, runs, and was built against the LLVM
/// the nightly ships now.
fn bpf_linker_missing(cx: &Context, repair: bool) -> Result<Option<String>> {
    let Some(sysroot) = cx.ebpf.sysroot()? else {
        return Ok(Some(format!(
            "needs the {} toolchain first",
            cx.ebpf.channel
        )));
    };
    let llvm = nightly_llvm(&sysroot)?;
    let bin = cx.linker_bin();
    if !bin.is_file() {
        return Ok(Some(format!("no {}", bin.display())));
    }
    let Some(version) = util::probe(Command::new(&bin).arg("--version"))? else {
        return Ok(Some(format!(
            "`{} --version` fails (LLVM link broken?)",
            bin.display()
        )));
    };
    if !version
        .split_whitespace()
        .any(|word| word == BPF_LINKER_VERSION)
    {
        return Ok(Some(format!("installed version is `{}`", version.trim())));
    }
    let want = Stamp::current(cx, llvm);
    match Stamp::read(&cx.stamp()) {
        Some(stamp) if stamp == want => Ok(None),
        Some(stamp) => Ok(Some(format!(
            "built against {} of {}, the nightly now ships {}",
            stamp.llvm, stamp.channel, want.llvm
        ))),
        None => {
            // Installed before stamps existed: trust the LLVM link if it
            // names the same library, and record it.
            let linked = fs::read_link(cx.llvm_prefix().join("lib/libLLVM.so")).ok();
            let linked = linked.as_deref().and_then(Path::file_name);
            if linked.is_some_and(|name| *name == *want.llvm) {
                if repair {
                    want.write(&cx.stamp())?;
                }
                Ok(None)
            } else {
                Ok(Some(format!("no stamp and no link to {}", want.llvm)))
            }
        }
    }
}

fn install_bpf_linker(cx: &Context) -> Result<()> {
    let sysroot = cx
        .ebpf
        .sysroot()?
        .ok_or_else(|| anyhow!("the {} toolchain is not installed", cx.ebpf.channel))?;
    let llvm = nightly_llvm(&sysroot)?;
    let stamp = cx.stamp();
    if stamp.exists() {
        fs::remove_file(&stamp).with_context(|| format!("removing {}", stamp.display()))?;
    }

    // LLVM_PREFIX/lib/libLLVM.so for bpf-linker's build script, and the
    // soname for the binary's runpath: both point into the nightly.
    let prefix = cx.llvm_prefix();
    if prefix.exists() {
        fs::remove_dir_all(&prefix).with_context(|| format!("removing {}", prefix.display()))?;
    }
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    let target = sysroot.join("lib").join(&llvm);
    for name in ["libLLVM.so", llvm.as_str()] {
        let link = lib.join(name);
        symlink(&target, &link)
            .with_context(|| format!("linking {} -> {}", link.display(), target.display()))?;
    }

    // Built with the host toolchain, named explicitly: started outside the
    // workspace and without the toolchain-file variables rustup gave this
    // process, so cargo does not warn about a toolchain file override.
    // --force replaces a broken binary cargo's records still list. Without
    // CARGO_TARGET_DIR cargo builds in a temporary directory it removes.
    util::run(
        Command::new("rustup")
            .current_dir(&cx.linker_root)
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTUP_TOOLCHAIN_SOURCE")
            .env_remove("CARGO_TARGET_DIR")
            .env("LLVM_PREFIX", &prefix)
            .args(["run", &cx.host.channel, "cargo", "install", "bpf-linker"])
            .args([
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--force",
                "--root",
            ])
            .arg(&cx.linker_root),
    )?;

    let bin = cx.linker_bin();
    util::output(Command::new(&bin).arg("--version"))
        .with_context(|| format!("the new {} does not run", bin.display()))?;
    Stamp::current(cx, llvm).write(&stamp)
}
