//! `suspend-agent unload`.

use std::{fs, io};

use anyhow::{Context as _, bail};
use nix::fcntl::{Flock, FlockArg};
use suspend_common::paths::LOCK_FILE;

use crate::{daemon::ebpf, exit};

/// Remove the pinned eBPF programs and maps
///
/// Removes /sys/fs/bpf/suspend/: the registry is forgotten and nothing
/// tracks registrations until the daemon starts again. Refused while a
/// daemon runs.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(Args {}: Args) -> anyhow::Result<u8> {
    super::require_root("removing the pinned programs and maps")?;
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(LOCK_FILE)
    {
        Ok(file) => {
            if let Err((_, e)) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                let pid = fs::read_to_string(LOCK_FILE).unwrap_or_default();
                bail!(
                    "the agent daemon is running (pid {}, {e}); stop it first",
                    pid.trim()
                );
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("opening {LOCK_FILE}")),
    }
    let removed = ebpf::unload().context("removing /sys/fs/bpf/suspend")?;
    if removed.is_empty() {
        println!("nothing pinned");
    }
    for path in removed {
        println!("removed {}", path.display());
    }
    Ok(exit::OK)
}
