//! `cargo xtask build [--debug]`: the whole workspace for the host (the
//! agent with its embedded eBPF object, `libsuspend_client.{so,a}`, the test
//! binaries), then the C test programs of `tests/c/` linked against
//! `libsuspend_client.so`.

use std::{
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, Result};

use crate::{
    setup,
    util::{self, fmt_duration},
};

/// Workspace members that cannot be built for the host: the eBPF crate is
/// built for `bpfel-unknown-none` by `suspend-agent/build.rs` with its own
/// nightly (its library still gets built as the agent's build dependency).
pub const NOT_FOR_HOST: &[&str] = &["suspend-ebpf"];

/// `cargo xtask build`: setup, then [`build`].
pub fn run(release: bool) -> Result<()> {
    setup::ensure()?;
    let started = Instant::now();
    let dir = build(release)?;
    println!(
        "build: done in {}, binaries in {}",
        fmt_duration(started.elapsed()),
        dir.display()
    );
    Ok(())
}

/// Builds everything and returns the target profile directory
/// (`target/release` or `target/debug`, absolute). Expects
/// [`setup::ensure`] to have run.
pub fn build(release: bool) -> Result<PathBuf> {
    let profile_dir = util::target_dir().join(if release { "release" } else { "debug" });

    util::stage(format!(
        "cargo build ({})",
        if release { "release" } else { "debug" }
    ));
    let mut cargo = util::cargo();
    cargo.args(["build", "--workspace"]);
    // xtask is built already: it is running.
    for package in NOT_FOR_HOST.iter().chain(&["xtask"]) {
        cargo.args(["--exclude", package]);
    }
    if release {
        cargo.arg("--release");
    }
    util::run(&mut cargo).context("building the workspace failed")?;

    write_pkg_config(&profile_dir)?;
    build_c_tests(&profile_dir)?;
    Ok(profile_dir)
}

/// Writes `suspend-client.pc` (for the installed layout under /usr/local,
/// see the README) and `suspend-client-uninstalled.pc` (this build tree) from
/// `suspend-client/suspend-client.pc.in`.
fn write_pkg_config(profile_dir: &Path) -> Result<()> {
    let root = util::workspace_root();
    let template_path = root.join("suspend-client/suspend-client.pc.in");
    let template = fs::read_to_string(&template_path)
        .with_context(|| format!("reading {}", template_path.display()))?;
    let version = env!("CARGO_PKG_VERSION");
    let include = root.join("suspend-client/include");
    for (name, prefix, libdir, includedir) in [
        (
            "suspend-client.pc",
            "/usr/local".to_owned(),
            "${prefix}/lib".to_owned(),
            "${prefix}/include".to_owned(),
        ),
        (
            "suspend-client-uninstalled.pc",
            profile_dir.display().to_string(),
            "${prefix}".to_owned(),
            include.display().to_string(),
        ),
    ] {
        let text = template
            .replace("@PREFIX@", &prefix)
            .replace("@LIBDIR@", &libdir)
            .replace("@INCLUDEDIR@", &includedir)
            .replace("@VERSION@", version);
        let path = profile_dir.join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Compiles every `tests/c/*.c` into `<profile_dir>/<stem>`, linked against
/// the `libsuspend_client.so` next to it (rpath `$ORIGIN`), and into
/// `<stem>_static`, linked against `libsuspend_client.a`.
fn build_c_tests(profile_dir: &Path) -> Result<()> {
    let root = util::workspace_root();
    let c_dir = root.join("tests/c");
    if !c_dir.is_dir() {
        return Ok(());
    }
    let sources = c_sources(&c_dir)?;
    if sources.is_empty() {
        return Ok(());
    }

    util::stage(format!("C tests: {} file(s) in tests/c", sources.len()));
    // Flags from the uninstalled pkg-config file, as a C user would get them.
    let flags = util::output(
        Command::new("pkg-config")
            .env("PKG_CONFIG_PATH", profile_dir)
            .args(["--cflags", "--libs", "suspend-client-uninstalled"]),
    )
    .context("pkg-config suspend-client-uninstalled")?;
    let archive = profile_dir.join("libsuspend_client.a");
    for source in &sources {
        let stem = source
            .file_stem()
            .with_context(|| format!("no file name in {}", source.display()))?;
        let gcc = || {
            let mut gcc = Command::new("gcc");
            gcc.current_dir(&root)
                .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"]);
            gcc
        };
        // Against the shared library, as pkg-config says.
        let output = profile_dir.join(stem);
        util::run(
            gcc()
                .arg(&output)
                .arg(source)
                .args(flags.split_whitespace())
                .args(["-Wl,-rpath,$ORIGIN", "-lpthread"]),
        )
        .with_context(|| format!("compiling {} failed", source.display()))?;
        // And against the static archive (`<stem>_static`).
        let mut static_output = output.into_os_string();
        static_output.push("_static");
        util::run(
            gcc()
                .arg(&static_output)
                .arg(source)
                .arg("-I")
                .arg(root.join("suspend-client/include"))
                .arg(&archive)
                .args(["-lpthread", "-ldl", "-lm"]),
        )
        .with_context(|| {
            format!(
                "compiling {} against {} failed",
                source.display(),
                archive.display()
            )
        })?;
    }

    // The one-feature workloads: `feature_<stem>`, against the shared
    // library only.
    let features_dir = c_dir.join("features");
    let features = c_sources(&features_dir)?;
    util::stage(format!(
        "C feature workloads: {} file(s) in tests/c/features",
        features.len()
    ));
    for source in &features {
        let stem = source
            .file_stem()
            .and_then(OsStr::to_str)
            .with_context(|| format!("no file name in {}", source.display()))?;
        let output = profile_dir.join(format!("feature_{stem}"));
        let mut gcc = Command::new("gcc");
        gcc.current_dir(&root)
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&output)
            .arg(source)
            .arg("-I")
            .arg(&features_dir)
            .args(flags.split_whitespace())
            .args(["-Wl,-rpath,$ORIGIN", "-lpthread", "-lrt"]);
        util::output(&mut gcc).with_context(|| format!("compiling {} failed", source.display()))?;
    }
    Ok(())
}

/// The `*.c` files of `dir` (none if it does not exist), sorted.
pub fn c_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut sources = Vec::new();
    if !dir.is_dir() {
        return Ok(sources);
    }
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.extension() == Some(OsStr::new("c")) && path.is_file() {
            sources.push(path);
        }
    }
    sources.sort();
    Ok(sources)
}
