//! `cargo xtask test [-- FILTER...]`: setup, a release build, the lints
//! (`rustfmt --check`, and clippy with warnings denied for the host crates,
//! the restorer stub on its own target and the eBPF programs on theirs),
//! the unit tests of every crate (any user), then the root-only integration
//! suite (`suspend-tests`) one test at a time, with `SUSPEND_BIN_DIR`
//! pointing at the built binaries.

use std::time::Instant;

use anyhow::{Result, bail};

use crate::{
    build, setup,
    util::{self, fmt_duration},
};

/// The crate of the root-only integration suite.
const SUITE: &str = "suspend-tests";

/// `cargo xtask test`.
pub fn run(filters: &[String]) -> Result<()> {
    let started = Instant::now();
    let mut ran = Vec::new();
    let result = run_stages(filters, &mut ran);
    let ran = if ran.is_empty() {
        "nothing".to_owned()
    } else {
        ran.join(", ")
    };
    let elapsed = fmt_duration(started.elapsed());
    match &result {
        Ok(()) => println!("test: passed: {ran} in {elapsed}"),
        Err(_) => println!("test: FAILED after {elapsed}; passed before the failure: {ran}"),
    }
    result
}

/// Runs the stages in order, naming each finished one in `ran`.
fn run_stages(filters: &[String], ran: &mut Vec<String>) -> Result<()> {
    setup::ensure()?;
    let bin_dir = build::build(true)?;
    ran.push("release build".into());

    lint()?;
    ran.push("lints".into());

    util::stage("unit tests");
    let mut unit = util::cargo();
    unit.args(["test", "--release", "--workspace", "--exclude", SUITE]);
    for package in build::NOT_FOR_HOST {
        unit.args(["--exclude", package]);
    }
    util::run(&mut unit)?;
    ran.push("unit tests".into());

    if !util::is_root()? {
        bail!(
            "the integration suite needs root: run `sudo -E cargo xtask test` \
             (the build and the unit tests passed)"
        );
    }
    util::stage(if filters.is_empty() {
        "integration suite (root)".to_owned()
    } else {
        format!("integration suite (root), filter: {}", filters.join(" "))
    });
    util::run(
        util::cargo()
            .env("SUSPEND_BIN_DIR", &bin_dir)
            // The suite's tests are #[ignore]d for plain `cargo test`.
            .args([
                "test",
                "--release",
                "-p",
                SUITE,
                "--",
                "--include-ignored",
                "--test-threads=1",
            ])
            .args(filters),
    )?;
    ran.push(if filters.is_empty() {
        "integration suite".to_owned()
    } else {
        format!("integration suite ({})", filters.join(" "))
    });
    Ok(())
}

/// The restorer stub's target and the code generation `suspend-agent/build.rs`
/// builds it with (the lints must see the same `cfg`s).
const RESTORER_TARGET: &str = "x86_64-unknown-none";
const RESTORER_FLAGS: [&str; 2] = ["-Ccode-model=small", "-Crelocation-model=pie"];

/// Everything that ships is formatted and lint-free (warnings denied).
fn lint() -> Result<()> {
    let root = util::workspace_root();
    util::stage("lints: rustfmt --check");
    util::run(util::cargo().args(["fmt", "--all", "--", "--check"]))?;

    util::stage("lints: clippy, host crates");
    util::run(util::cargo().args([
        "clippy",
        "--release",
        "--workspace",
        "--exclude",
        "suspend-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    util::stage(format!(
        "lints: clippy, the restorer stub ({RESTORER_TARGET})"
    ));
    util::run(
        util::cargo()
            .env("CARGO_ENCODED_RUSTFLAGS", RESTORER_FLAGS.join("\x1f"))
            .args([
                "clippy",
                "--release",
                "-p",
                "suspend-restorer",
                "--target",
                RESTORER_TARGET,
                "--config=profile.release.panic='abort'",
                "--",
                "-D",
                "warnings",
            ]),
    )?;

    let nightly = setup::ebpf_channel()?;
    util::stage(format!("lints: clippy, the eBPF programs ({nightly})"));
    let mut ebpf = std::process::Command::new("cargo");
    ebpf.current_dir(root.join("suspend-ebpf"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .arg(format!("+{nightly}"))
        .args([
            "clippy",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--",
            "-D",
            "warnings",
        ]);
    util::run(&mut ebpf)?;
    Ok(())
}
