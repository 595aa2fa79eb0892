//! What goes into the guest besides `/init`: the agent and the client
//! library, the suite's workloads and compiled integration tests, the tools
//! the tests call from `PATH` (`bpftool`, `bash`, `python3`, busybox for the
//! rest),
//! and every shared library those need, found the way `ldd` finds them.

use std::{
    collections::BTreeSet,
    ffi::OsStr,
    fs,
    io::Read as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, anyhow, bail};

use super::{
    debian::{self, Apt},
    initramfs::{Node, Tree},
};
use crate::util;

/// Where the agent, the client library and the workloads go
/// (`SUSPEND_BIN_DIR` in the guest).
pub const GUEST_BIN: &str = "/vmtest/bin";
/// Where the integration test executables go, one per `tests/tests/*.rs`.
pub const GUEST_TESTS: &str = "/vmtest/tests";

/// The crate of the integration suite.
const SUITE: &str = "suspend-tests";

/// Parts of Python's standard library the tests never import. Also skipped:
/// every `__pycache__`, and `config-*` (libpython's static archive and
/// build files, 25 MB).
const PYTHON_SKIP: &[&str] = &["test", "idlelib", "tkinter", "ensurepip"];

/// The compiled suite: its integration tests and the binaries it runs.
pub struct Suite {
    /// `(name, executable)` of each integration test target.
    pub tests: Vec<(String, PathBuf)>,
    /// The crate's own binaries (the workloads).
    pub bins: Vec<PathBuf>,
}

/// Builds the suite's test executables (`cargo test --no-run`) and reads
/// their paths from cargo's JSON messages.
pub fn build_suite() -> Result<Suite> {
    let mut cargo = util::cargo();
    cargo.args([
        "test",
        "--release",
        "-p",
        SUITE,
        "--no-run",
        "--message-format=json",
    ]);
    println!("  $ {}", util::display(&cargo));
    let messages = util::output(&mut cargo).context("building the integration tests failed")?;
    let mut suite = Suite {
        tests: Vec::new(),
        bins: Vec::new(),
    };
    for line in messages.lines().filter(|line| line.starts_with('{')) {
        let message: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("cargo printed: {line}"))?;
        if message.get("reason").and_then(serde_json::Value::as_str) != Some("compiler-artifact") {
            continue;
        }
        let Some(executable) = message
            .get("executable")
            .and_then(serde_json::Value::as_str)
        else {
            continue;
        };
        let target = message.get("target");
        let kinds = target
            .and_then(|t| t.get("kind"))
            .and_then(serde_json::Value::as_array);
        let is =
            |kind: &str| kinds.is_some_and(|kinds| kinds.iter().any(|k| k.as_str() == Some(kind)));
        let name = target
            .and_then(|t| t.get("name"))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| anyhow!("an artifact without a target name: {line}"))?;
        // A bin is built twice: itself, and its unit-test harness.
        let harness = message
            .get("profile")
            .and_then(|p| p.get("test"))
            .is_some_and(|test| *test == serde_json::Value::Bool(true));
        if is("test") {
            suite.tests.push((name.to_owned(), executable.into()));
        } else if is("bin") && !harness {
            suite.bins.push(executable.into());
        }
    }
    if suite.tests.is_empty() {
        bail!("`cargo test -p {SUITE} --no-run` named no integration test executable");
    }
    suite.tests.sort();
    Ok(suite)
}

/// The static busybox of Debian's `busybox-static`, unpacked into the
/// cache (not installed: it would replace a dynamic busybox).
pub fn busybox(cache: &Path) -> Result<PathBuf> {
    let apt = Apt::system();
    let package = "busybox-static".to_owned();
    let version = apt.version(&package)?;
    let dir = cache.join(format!("busybox_{version}").replace(['/', ':'], "_"));
    debian::cached(&dir, |partial| {
        let tree = partial.join("unpacked");
        apt.fetch(std::slice::from_ref(&package), &tree)?;
        let found = debian::files_under(&tree)?
            .into_iter()
            .find(|path| path.file_name() == Some(OsStr::new("busybox")))
            .ok_or_else(|| anyhow!("no busybox in {package} {version}"))?;
        fs::copy(&found, partial.join("busybox"))?;
        fs::remove_dir_all(&tree)?;
        Ok(())
    })?;
    Ok(dir.join("busybox"))
}

/// Everything but `/init` and the kernel's config: the suite, its tools and
/// their libraries, busybox with a link for every applet, and a minimal
/// `/etc` and `/dev`.
pub fn collect(profile_dir: &Path, suite: &Suite, busybox: &Path) -> Result<Tree> {
    let mut tree = Tree::default();
    for dir in ["/proc", "/sys", "/dev", "/tmp", "/run", "/root", "/boot"] {
        tree.insert(dir, Node::Dir);
    }
    tree.insert(
        "/dev/console",
        Node::CharDevice {
            major: 5,
            minor: 1,
            mode: 0o600,
        },
    );
    tree.insert(
        "/etc/passwd",
        Node::data(
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
    );
    tree.insert("/etc/group", Node::data(b"root:x:0:\nnogroup:x:65534:\n"));

    // Busybox first: the real programs below replace any applet link.
    tree.insert("/bin/busybox", Node::file(busybox)?);
    let applets = util::output(Command::new(busybox).arg("--list-full"))
        .with_context(|| format!("listing the applets of {}", busybox.display()))?;
    // The list has `bin/busybox` itself.
    for applet in applets.lines().filter(|line| !line.is_empty()) {
        let path = Path::new("/").join(applet);
        if !tree.contains(&path) {
            tree.insert(path, Node::Symlink("/bin/busybox".into()));
        }
    }

    // The agent and the library it preloads sit side by side (`run` looks
    // for the library next to itself); the workloads next to them.
    let mut bins = vec![
        profile_dir.join("suspend-agent"),
        profile_dir.join("libsuspend_client.so"),
    ];
    bins.extend(suite.bins.iter().cloned());
    bins.extend(c_programs(profile_dir)?);
    let mut elves = Vec::new();
    for bin in bins {
        let name = bin
            .file_name()
            .ok_or_else(|| anyhow!("no file name in {}", bin.display()))?;
        let guest = Path::new(GUEST_BIN).join(name);
        tree.insert(&guest, Node::file(&bin)?);
        elves.push(bin);
    }
    for (name, exe) in &suite.tests {
        tree.insert(Path::new(GUEST_TESTS).join(name), Node::file(exe)?);
        elves.push(exe.clone());
    }

    // bpftool, and bash (busybox has none: the held-suspension suite runs
    // a bash pipeline).
    for tool in ["bpftool", "bash"] {
        let path = which(tool)?;
        tree.insert(&path, Node::file(&path)?);
        elves.push(path);
    }
    let python = which_python()?;
    tree.insert(&python.0, Node::file(&python.0)?);
    if let Some(link) = &python.1 {
        tree.insert(link, Node::Symlink(python.0.clone()));
    }
    elves.push(python.0.clone());
    let modules = python_stdlib(&mut tree, &python.0)?;

    // Libraries: the loader and every library at the path ldd found it
    // (the loader's default search path, as on the host). Libraries among
    // the payload itself (the client library of the C workloads) are
    // already in place.
    let own: BTreeSet<PathBuf> = elves
        .iter()
        .filter_map(|elf| elf.canonicalize().ok())
        .collect();
    let mut libraries = BTreeSet::new();
    for elf in &elves {
        libraries.extend(needed_libraries(elf)?);
    }
    // An extension module whose library is missing here only fails its
    // own import.
    for module in &modules {
        match needed_libraries(module) {
            Ok(found) => libraries.extend(found),
            Err(error) => println!("vmtest: warning: skipping the libraries of {error:#}"),
        }
    }
    for library in libraries {
        if library.canonicalize().is_ok_and(|real| own.contains(&real)) {
            continue;
        }
        tree.insert(&library, Node::file(&library)?);
    }
    Ok(tree)
}

/// The C test programs `cargo xtask build` compiled from `tests/c/*.c`:
/// `<stem>` and `<stem>_static`, in `profile_dir`.
fn c_programs(profile_dir: &Path) -> Result<Vec<PathBuf>> {
    let c_dir = util::workspace_root().join("tests/c");
    let mut programs = Vec::new();
    if !c_dir.is_dir() {
        return Ok(programs);
    }
    for entry in fs::read_dir(&c_dir).with_context(|| format!("listing {}", c_dir.display()))? {
        let source = entry?.path();
        if source.extension() != Some(OsStr::new("c")) {
            continue;
        }
        let Some(stem) = source.file_stem().and_then(OsStr::to_str) else {
            continue;
        };
        for name in [stem.to_owned(), format!("{stem}_static")] {
            let program = profile_dir.join(name);
            if !program.is_file() {
                bail!(
                    "{} is missing: `cargo xtask build` should have compiled {}",
                    program.display(),
                    source.display()
                );
            }
            programs.push(program);
        }
    }
    for source in crate::build::c_sources(&c_dir.join("features"))? {
        let Some(stem) = source.file_stem().and_then(OsStr::to_str) else {
            continue;
        };
        let program = profile_dir.join(format!("feature_{stem}"));
        if !program.is_file() {
            bail!(
                "{} is missing: `cargo xtask build` should have compiled {}",
                program.display(),
                source.display()
            );
        }
        programs.push(program);
    }
    programs.sort();
    Ok(programs)
}

/// The real `python3` (`/usr/bin/python3.11`, not a pyenv shim earlier in
/// `PATH`), and `/usr/bin/python3` if that is a link to it.
fn which_python() -> Result<(PathBuf, Option<PathBuf>)> {
    let link = Path::new("/usr/bin/python3");
    let real = link
        .canonicalize()
        .with_context(|| format!("{} is missing: install python3", link.display()))?;
    let link = (real != link).then(|| link.to_path_buf());
    Ok((real, link))
}

/// Python's standard library (`/usr/lib/python3.11` for
/// `/usr/bin/python3.11`) at its host path, without what [`PYTHON_SKIP`]
/// names; returns its extension modules.
fn python_stdlib(tree: &mut Tree, python: &Path) -> Result<Vec<PathBuf>> {
    let name = python
        .file_name()
        .ok_or_else(|| anyhow!("odd python path {}", python.display()))?;
    let stdlib = Path::new("/usr/lib").join(name);
    let mut modules = Vec::new();
    let mut pending = vec![stdlib.clone()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            let file = entry.file_name();
            let file = file.to_string_lossy();
            let skipped = dir == stdlib
                && (PYTHON_SKIP.contains(&file.as_ref()) || file.starts_with("config-"));
            if skipped || file == "__pycache__" {
                continue;
            }
            // Symlinks are followed (sitecustomize.py points into /etc).
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() {
                if is_elf(&path)? {
                    modules.push(path.clone());
                }
                tree.insert(&path, Node::file(&path)?);
            }
        }
    }
    Ok(modules)
}

/// Whether `path` starts with the ELF magic.
fn is_elf(path: &Path) -> Result<bool> {
    let mut magic = [0; 4];
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(file.read_exact(&mut magic).is_ok() && magic == *b"\x7fELF")
}

/// The shared libraries `elf` needs, and its dynamic loader, as `ldd`
/// resolves them on this machine. Nothing for a static executable.
fn needed_libraries(elf: &Path) -> Result<Vec<PathBuf>> {
    let out = util::capture(Command::new("ldd").arg(elf))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stdout.contains("not a dynamic executable")
        || stderr.contains("not a dynamic executable")
        || stdout.contains("statically linked")
    {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        bail!("`ldd {}` failed: {}", elf.display(), stderr.trim());
    }
    parse_ldd(&stdout).with_context(|| format!("`ldd {}`", elf.display()))
}

/// The paths in `ldd`'s output: `libc.so.6 => /lib/…/libc.so.6 (0x…)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vDSO has no path.
fn parse_ldd(output: &str) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for line in output
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        let resolved = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    bail!("{} is not found", name.trim());
                }
                rest
            }
            None => line,
        };
        let path = resolved.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            paths.push(PathBuf::from(path));
        }
    }
    Ok(paths)
}

/// `program` in `$PATH`.
fn which(program: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| anyhow!("`{program}` is not in PATH: run `cargo xtask setup`"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::parse_ldd;

    #[test]
    fn reads_ldd_output() {
        let out = "\tlinux-vdso.so.1 (0x00007f17b17a7000)\n\
                   \tlibelf.so.1 => /lib/x86_64-linux-gnu/libelf.so.1 (0x00007f17b16f5000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f17b17a9000)\n";
        assert_eq!(
            parse_ldd(out).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libelf.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert!(parse_ldd("\tlibfoo.so.1 => not found\n").is_err());
    }
}
