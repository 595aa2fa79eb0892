//! Builds what the agent embeds:
//!
//! - the eBPF programs (`suspend-ebpf`) with the pinned nightly named in
//!   `suspend-ebpf/rust-toolchain.toml` and `bpf-linker`, both installed by
//!   `cargo xtask setup`; the object goes to `OUT_DIR` for
//!   `include_bytes_aligned!`;
//! - the restorer stub (`suspend-restorer`) for `x86_64-unknown-none` with
//!   this same toolchain, checked (entry at offset 0, nothing to relocate)
//!   and flattened into `OUT_DIR/restorer.bin`.

use std::{env, fs, path::PathBuf, process::Command};

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    build_restorer(&manifest_dir)?;
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

/// The restorer's target and code generation: position-independent, small
/// code model, linked by `restorer.ld` into one image starting at 0.
const RESTORER_TARGET: &str = "x86_64-unknown-none";

fn build_restorer(manifest_dir: &std::path::Path) -> anyhow::Result<()> {
    let root = manifest_dir
        .join("../suspend-restorer")
        .canonicalize()
        .context("suspend-restorer directory")?;
    let common = manifest_dir.join("../suspend-common/src").canonicalize()?;
    for path in [
        root.join("src"),
        root.join("restorer.ld"),
        root.join("Cargo.toml"),
        common,
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let target_dir = out_dir.join("restorer-target");
    // Linking (restorer.ld) is the restorer's own build script's part.
    let flags = ["-Ccode-model=small", "-Crelocation-model=pie"];
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--release",
            "--package",
            "suspend-restorer",
        ])
        .args(["--target", RESTORER_TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        // The workspace's release profile is for the agent; the stub wants
        // small code, no unwinding, and no LTO (the prebuilt `core` for this
        // target does not mix with it).
        .args([
            "--config=profile.release.opt-level='s'",
            "--config=profile.release.panic='abort'",
            "--config=profile.release.codegen-units=1",
            "--config=profile.release.lto=false",
            "--config=profile.release.debug=false",
        ])
        .env_remove("RUSTFLAGS")
        // Under `cargo clippy` the stub is built, not linted here (`./x
        // test` lints it for its own target).
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
        .output()
        .context("running cargo for the restorer stub")?;
    if !output.status.success() {
        return Err(anyhow!(
            "building the restorer stub failed (if the {RESTORER_TARGET} target is missing, \
             run `cargo xtask setup`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let elf_path = target_dir
        .join(RESTORER_TARGET)
        .join("release")
        .join("suspend-restorer");
    let elf = fs::read(&elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
    let blob = flatten(&elf).with_context(|| format!("checking {}", elf_path.display()))?;
    fs::write(out_dir.join("restorer.bin"), blob)?;
    Ok(())
}

/// The loaded image of a position-independent ELF as one flat blob, after
/// checking that it can run wherever it is copied: entry at 0, no
/// relocation, no GOT (`-pie` still emits an empty dynamic section).
fn flatten(elf: &[u8]) -> anyhow::Result<Vec<u8>> {
    use object::{Object as _, ObjectSection as _, ObjectSegment as _, SectionKind};
    let file = object::File::parse(elf)?;
    if file.entry() != 0 {
        return Err(anyhow!(
            "entry point at {:#x}, not 0: restorer.ld must put _start first",
            file.entry()
        ));
    }
    for section in file.sections() {
        let name = section.name().unwrap_or("?");
        let relocation = matches!(
            section.kind(),
            SectionKind::Elf(object::elf::SHT_REL | object::elf::SHT_RELA | object::elf::SHT_RELR)
        );
        if relocation || name.starts_with(".rel") || name.starts_with(".got") {
            return Err(anyhow!(
                "section {name} in the restorer: it would need relocating (a static holding a \
                 pointer or a trait object brings these in)"
            ));
        }
        if section.relocations().next().is_some() {
            return Err(anyhow!("section {name} of the restorer has relocations"));
        }
    }
    let end = file
        .segments()
        .map(|s| s.address() + s.size())
        .max()
        .ok_or_else(|| anyhow!("no loadable segment"))?;
    let mut blob = vec![0u8; end as usize];
    for segment in file.segments() {
        let data = segment.data()?;
        let at = segment.address() as usize;
        blob[at..at + data.len()].copy_from_slice(data);
    }
    Ok(blob)
}
