//! Cgroups: a resumed process goes back into the cgroups it was in (one
//! per hierarchy, `/proc/PID/cgroup`) where they differ from the resume
//! command's: the resume command moves itself into each one (writing its
//! pid into its `cgroup.procs`) before it loads the process's memory, so
//! that the pages are charged there (a charge stays with the cgroup of
//! whoever first touched the page), and the process it makes is born in
//! them. A cgroup
//! that is gone, or a hierarchy this machine does not mount, is refused
//! before anything is created. (The save half is one field of the process
//! record, read in `dump::process`.)

use std::path::{Path, PathBuf};

use super::validate::Refusal;
use crate::image::Image;

/// The `cgroup.procs` files the process must be written into: one per
/// hierarchy where its cgroup is not the resume command's.
pub fn targets(image: &Image) -> Result<Vec<PathBuf>, Refusal> {
    let ours = crate::procfs::cgroups(std::process::id()).unwrap_or_default();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut targets = Vec::new();
    for line in &image.process.cgroups {
        if ours.contains(line) {
            continue;
        }
        let refused = |why: &'static str| Refusal::KernelLacks {
            what: format!("cgroup {line}"),
            why,
        };
        if line.splitn(3, ':').nth(2).is_none() {
            return Err(refused("not a cgroup line"));
        }
        let dir = crate::procfs::cgroup_dir(&mountinfo, line)
            .ok_or(refused("its hierarchy is not mounted here"))?;
        if !dir.is_dir() {
            return Err(refused("that cgroup does not exist here"));
        }
        let own = crate::procfs::tids(std::process::id()).map_or(1, |t| t.len());
        let tasks = (image.threads.len() + own) as u64;
        if let Some((dir, max, current)) = pids_short(&dir, tasks) {
            return Err(Refusal::CgroupFull {
                cgroup: line.clone(),
                dir,
                current,
                max,
                tasks,
            });
        }
        targets.push(dir.join("cgroup.procs"));
    }
    Ok(targets)
}

/// The first of `dir` and its parents (as far as they have `pids.max`)
/// whose `pids.max` leaves no room for `tasks` more, with its limit and
/// its count now.
fn pids_short(dir: &Path, tasks: u64) -> Option<(PathBuf, u64, u64)> {
    let read = |dir: &Path, name| -> Option<String> {
        std::fs::read_to_string(dir.join(name))
            .ok()
            .map(|t| t.trim().to_owned())
    };
    let mut at = Some(dir);
    while let Some(dir) = at {
        let Some(max) = read(dir, "pids.max") else {
            break; // no pids controller here, or the hierarchy's root
        };
        if let (Ok(max), Some(current)) = (
            max.parse::<u64>(),
            read(dir, "pids.current").and_then(|c| c.parse::<u64>().ok()),
        ) && current + tasks > max
        {
            return Some((dir.to_path_buf(), max, current));
        }
        at = dir.parent();
    }
    None
}

/// Moves process `pid` (every thread) into `targets`.
pub fn join(pid: u32, targets: &[PathBuf]) -> Result<(), String> {
    for procs in targets {
        std::fs::write(procs, pid.to_string())
            .map_err(|e| format!("writing {pid} into {}: {e}", procs.display()))?;
    }
    Ok(())
}
