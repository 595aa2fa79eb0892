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

use std::path::PathBuf;

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
        let path = line
            .splitn(3, ':')
            .nth(2)
            .ok_or(refused("not a cgroup line"))?;
        let mount = crate::procfs::cgroup_mount(&mountinfo, line)
            .ok_or(refused("its hierarchy is not mounted here"))?;
        let dir = PathBuf::from(mount).join(path.trim_start_matches('/'));
        if !dir.is_dir() {
            return Err(refused("that cgroup does not exist here"));
        }
        targets.push(dir.join("cgroup.procs"));
    }
    Ok(targets)
}

/// Moves process `pid` (every thread) into `targets`.
pub fn join(pid: u32, targets: &[PathBuf]) -> Result<(), String> {
    for procs in targets {
        std::fs::write(procs, pid.to_string())
            .map_err(|e| format!("writing {pid} into {}: {e}", procs.display()))?;
    }
    Ok(())
}
