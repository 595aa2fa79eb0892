//! `cargo xtask`: the developer commands of suspend.
//!
//! - `cargo xtask demo` asks an opted-in workload to suspend (busy, held by a
//!   critical section, ready) and shows that a process that did not opt in
//!   is left alone.
//! - `cargo xtask bench` measures how long a dump keeps a process frozen.
//! - `cargo xtask setup [--check]` installs what a fresh Debian machine
//!   lacks: packages, the host toolchain, the eBPF nightly and a bpf-linker
//!   built against that nightly's LLVM.
//! - `cargo xtask build [--debug]` builds the workspace and the C tests.
//! - `cargo xtask test [-- FILTER...]` builds, runs the unit tests, then the
//!   root-only integration suite.
//!
//! Every command but `setup` first checks the setup and installs only what
//! is missing.

mod bench;
mod build;
mod demo;
mod live;
mod setup;
mod test;
mod util;
mod vmtest;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer tasks for suspend: set up the machine, build, demo, test.
///
/// `setup` installs the Debian packages, toolchains and bpf-linker the build
/// needs; `build` builds the agent, the client library and the tests;
/// `test` runs the unit tests and, as root, the integration suite. `build`
/// and `test` first check the setup and install only what is missing. Run
/// `cargo xtask <COMMAND> --help` for the details of a command.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing need, skipping what is present.
    ///
    /// Steps, one progress line each: (1) Debian packages (bpftool, gcc, …:
    /// `--check` lists them; installing them needs root), (2) the
    /// host toolchain of rust-toolchain.toml, (3) the eBPF nightly of
    /// suspend-ebpf/rust-toolchain.toml with rust-src, (4) bpf-linker built
    /// against that nightly's LLVM, in $CARGO_HOME/suspend/<nightly>/bin,
    /// where suspend-agent/build.rs finds it. Every other command runs these
    /// checks first and installs only what is missing.
    Setup {
        /// Only report what is missing (exit status 1 if anything is).
        #[arg(long)]
        check: bool,
    },
    Bench(bench::Args),
    /// The demo: an opted-in process asked to suspend (needs root).
    ///
    /// Starts the agent daemon (unless one runs), a workload that opts in and
    /// sleep(1), which does not. Asks sleep (cancelled: nothing is sent),
    /// then the workload while it says busy, while it is inside a critical
    /// section (with --wait, the request is held until the section ends) and
    /// when it is ready (a dry run: it is let go and its on_resume runs).
    /// The workload then checks its own memory and threads.
    Demo,
    /// Build the workspace and the C tests.
    ///
    /// Builds the agent (with its eBPF programs), libsuspend_client.{so,a}
    /// and the test binaries into target/release, then compiles every
    /// tests/c/*.c there, linked against libsuspend_client.so.
    Build {
        /// Build without optimizations, into target/debug.
        #[arg(long)]
        debug: bool,
    },
    /// Build, run the unit tests, then the integration suite (needs root).
    ///
    /// The unit tests run as any user; the integration suite (crate
    /// suspend-tests) loads eBPF programs and needs root: `sudo -E cargo
    /// xtask test`. It runs one test at a time with SUSPEND_BIN_DIR set to
    /// target/release.
    Test {
        /// Only run the integration tests whose names contain one of these
        /// (passed to the test harness).
        #[arg(last = true, value_name = "FILTER")]
        filters: Vec<String>,
    },
    VmTest(vmtest::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Setup { check } => setup::setup(if check {
            setup::Mode::Check
        } else {
            setup::Mode::Install
        }),
        Cmd::Build { debug } => build::run(!debug),
        Cmd::Demo => demo::run(),
        Cmd::Bench(args) => bench::run(args),
        Cmd::Test { filters } => test::run(&filters),
        Cmd::VmTest(args) => vmtest::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The chain of contexts, without the backtrace anyhow's Debug
            // would add under RUST_BACKTRACE: the failed command says enough.
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
