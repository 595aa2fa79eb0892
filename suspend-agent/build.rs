//! Builds the eBPF programs (`suspend-ebpf`) with the pinned nightly named in
//! `suspend-ebpf/rust-toolchain.toml` and `bpf-linker`, both installed by
//! `cargo xtask setup`, and leaves the object in `OUT_DIR` for
//! `include_bytes_aligned!`.

use std::{env, fs, path::PathBuf};

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let ebpf_dir = manifest_dir.join("../suspend-ebpf");
    let toolchain_file = ebpf_dir.join("rust-toolchain.toml");
    println!("cargo:rerun-if-changed={}", toolchain_file.display());
    let toolchain = read_channel(&toolchain_file)?;

    // `cargo xtask setup` installs bpf-linker under
    // $CARGO_HOME/suspend/<nightly>/bin, built against that nightly's LLVM.
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .ok_or_else(|| anyhow!("neither CARGO_HOME nor HOME is set"))?;
    let tools = cargo_home.join("suspend").join(&toolchain).join("bin");
    if !tools.join("bpf-linker").exists() {
        return Err(anyhow!(
            "bpf-linker for {toolchain} is not installed at {}: run `cargo xtask setup` \
             (every `cargo xtask` command runs it when something is missing)",
            tools.display()
        ));
    }
    let path = env::var_os("PATH").unwrap_or_default();
    let path = env::join_paths(std::iter::once(tools).chain(env::split_paths(&path)))?;
    // SAFETY: build scripts are single-threaded; nothing reads the
    // environment concurrently. A quiet inner cargo: aya-build turns every
    // line it prints into a cargo warning, and "Compiling …" is not one.
    unsafe {
        env::set_var("PATH", path);
        env::set_var("CARGO_TERM_QUIET", "true");
    }

    let ebpf_dir = ebpf_dir.canonicalize().context("suspend-ebpf directory")?;
    let root_dir = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow!("non-UTF-8 path {}", ebpf_dir.display()))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "suspend-ebpf",
            root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(&toolchain),
    )
    .context(
        "building the eBPF programs failed; if the toolchain is missing, run `cargo xtask setup`",
    )
}

/// The `channel = "…"` line of a rust-toolchain.toml.
fn read_channel(path: &std::path::Path) -> anyhow::Result<String> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.trim().strip_prefix('='))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .next()
        .ok_or_else(|| anyhow!("no `channel = \"…\"` in {}", path.display()))
}
