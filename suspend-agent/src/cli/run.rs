//! `suspend-agent run -- PROGRAM ARGS…`.

use std::{
    env,
    ffi::OsString,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use suspend_common::paths::PRELOAD_ENV;

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
/// linked programs ignore LD_PRELOAD and cannot be opted in this way.
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

pub fn run(args: Args) -> anyhow::Result<u8> {
    let shim = find_shim()?
        .canonicalize()
        .context("resolving the shim's path")?;
    let (program, rest) = args.command.split_first().context("no program given")?;
    let mut preload = shim.into_os_string();
    if let Some(existing) = env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(" ");
        preload.push(existing);
    }
    let err = Command::new(program)
        .args(rest)
        .env("LD_PRELOAD", preload)
        .env(PRELOAD_ENV, std::process::id().to_string())
        .exec();
    Err(err).with_context(|| format!("executing {}", Path::new(program).display()))
}
