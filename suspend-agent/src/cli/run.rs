//! `suspend-agent run -- PROGRAM ARGS…`.

use std::{
    env,
    ffi::OsString,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use suspend_common::paths::{PRELOAD_ENV, PRELOAD_SIGNALS_ENV};

/// Name of the client library that doubles as the preload shim.
const SHIM: &str = "libsuspend_client.so";

/// Run a program opted in through the preload shim
///
/// The program (unmodified, dynamically linked) keeps this process's pid,
/// registers with
/// default handlers (always ready; nothing to do on resume), and can then
/// be suspended like any client. Programs it starts are not opted in.
///
/// The shim is libsuspend_client.so, looked up in $SUSPEND_PRELOAD_LIB, next
/// to this executable, then in /usr/local/lib and /usr/lib. Statically
/// linked programs ignore LD_PRELOAD and cannot be opted in this way: they
/// are refused (exit 8) instead of run un-registered.
#[derive(clap::Args)]
pub struct Args {
    /// The program to run, then its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM"
    )]
    command: Vec<OsString>,
    /// The suspend and resume signals it registers with, `S,R`: two
    /// distinct real-time signals in 34..64 (default 44,43). For a program
    /// that uses the defaults itself.
    #[arg(long, value_name = "S,R", value_parser = parse_signals)]
    signals: Option<(i32, i32)>,
}

fn parse_signals(text: &str) -> Result<(i32, i32), String> {
    let (s, r) = text
        .split_once(',')
        .ok_or("two signal numbers, S,R (e.g. 40,41)")?;
    let number = |v: &str| -> Result<i32, String> {
        v.trim()
            .parse()
            .ok()
            .filter(|n| (34..=64).contains(n))
            .ok_or(format!("{v:?} is not a real-time signal number (34..64)"))
    };
    let (s, r) = (number(s)?, number(r)?);
    if s == r {
        return Err("the suspend and resume signals must differ".into());
    }
    Ok((s, r))
}

fn find_shim() -> anyhow::Result<PathBuf> {
    if let Some(path) = env::var_os("SUSPEND_PRELOAD_LIB") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("SUSPEND_PRELOAD_LIB={} is not a file", path.display());
        }
        return Ok(path);
    }
    let exe = env::current_exe().context("finding this executable")?;
    let mut candidates: Vec<PathBuf> = exe.parent().map(|d| d.join(SHIM)).into_iter().collect();
    candidates.extend(
        ["/usr/local/lib", "/usr/lib"]
            .iter()
            .map(|d| Path::new(d).join(SHIM)),
    );
    candidates.iter().find(|p| p.is_file()).cloned().with_context(|| {
        format!(
            "the preload shim {SHIM} is in none of: {} (build it with `cargo build -p suspend-client`, or set SUSPEND_PRELOAD_LIB)",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// `program` as `execvp` would find it (through `PATH` unless it names a
/// path).
fn resolve(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The program the kernel runs for `path`: `path` itself, or the
/// interpreter of a `#!` script (through `env` if it names it).
fn loaded(path: &Path) -> Option<PathBuf> {
    let head = std::fs::read(path).ok()?;
    let Some(line) = head.strip_prefix(b"#!") else {
        return Some(path.to_path_buf());
    };
    let line = String::from_utf8_lossy(line.split(|b| *b == b'\n').next()?).into_owned();
    let mut words = line.split_whitespace();
    let interpreter = PathBuf::from(words.next()?);
    match (interpreter.file_name(), words.next()) {
        (Some(name), Some(program)) if name == "env" => resolve(Path::new(program)),
        _ => Some(interpreter),
    }
}

/// Whether the ELF file at `path` asks for a program interpreter
/// (`PT_INTERP`): only then does the dynamic loader, which honours
/// `LD_PRELOAD`, run at all. `None` when it is not a 64-bit ELF file.
fn dynamically_linked(path: &Path) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    let elf = std::fs::read(path).ok()?;
    if elf.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    let (phoff, phentsize, phnum) = (u64_at(0x20)? as usize, u16_at(0x36)?, u16_at(0x38)?);
    Some((0..phnum as usize).any(|i| {
        let at = phoff + i * phentsize as usize;
        elf.get(at..at + 4)
            .is_some_and(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) == PT_INTERP)
    }))
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let shim = find_shim()?
        .canonicalize()
        .context("resolving the shim's path")?;
    let (program, rest) = args.command.split_first().context("no program given")?;
    // A statically linked program never runs the loader that would load
    // the shim: it would run without opting in. Refused instead.
    if let Some(elf) = resolve(Path::new(program)).and_then(|p| loaded(&p))
        && dynamically_linked(&elf) == Some(false)
    {
        eprintln!(
            "suspend-agent: {} is statically linked: LD_PRELOAD cannot enter it, so `run` cannot \
             opt it in (it would run, not suspendable). Link the client library into it instead \
             (the Rust crate suspend-client, or libsuspend_client.a for C: README, \"Opting in\")",
            elf.display()
        );
        return Ok(crate::exit::UNSUPPORTED);
    }
    let mut preload = shim.into_os_string();
    if let Some(existing) = env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(" ");
        preload.push(existing);
    }
    let mut command = Command::new(program);
    command
        .args(rest)
        .env("LD_PRELOAD", preload)
        .env(PRELOAD_ENV, std::process::id().to_string());
    if let Some((suspend, resume)) = args.signals {
        command.env(PRELOAD_SIGNALS_ENV, format!("{suspend},{resume}"));
    }
    let err = command.exec();
    Err(err).with_context(|| format!("executing {}", Path::new(program).display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_two_distinct_real_time_ones() {
        assert_eq!(parse_signals("40,41"), Ok((40, 41)));
        assert!(parse_signals("40").is_err());
        assert!(parse_signals("40,40").is_err());
        assert!(parse_signals("10,41").is_err());
        assert!(parse_signals("40,65").is_err());
    }

    #[test]
    fn tells_static_from_dynamic() {
        let me = env::current_exe().unwrap();
        assert_eq!(
            dynamically_linked(&me),
            Some(true),
            "a test binary has an interpreter"
        );
        let sh = resolve(Path::new("sh")).expect("sh in PATH");
        assert_eq!(loaded(&sh).as_deref(), Some(sh.as_path()));
        assert_eq!(dynamically_linked(Path::new("/proc/self/status")), None);
        let script = env::temp_dir().join(format!("suspend-run-test-{}", std::process::id()));
        std::fs::write(&script, "#!/usr/bin/env sh\necho\n").unwrap();
        assert_eq!(loaded(&script), resolve(Path::new("sh")));
        let _ = std::fs::remove_file(&script);
    }

    /// A 64-bit ELF file with one program header of type `kind`.
    fn elf_with(kind: u32) -> Vec<u8> {
        let mut elf = vec![0u8; 64 + 56];
        elf[..5].copy_from_slice(b"\x7fELF\x02");
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        elf[64..68].copy_from_slice(&kind.to_le_bytes());
        elf
    }

    #[test]
    fn a_program_without_an_interpreter_is_static() {
        let path = env::temp_dir().join(format!("suspend-run-elf-{}", std::process::id()));
        std::fs::write(&path, elf_with(1)).unwrap(); // PT_LOAD only
        assert_eq!(dynamically_linked(&path), Some(false));
        std::fs::write(&path, elf_with(3)).unwrap(); // PT_INTERP
        assert_eq!(dynamically_linked(&path), Some(true));
        let _ = std::fs::remove_file(&path);
    }
}
