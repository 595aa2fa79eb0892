//! Cgroups: the cgroups a process is in, one per hierarchy.
//!
//! Saved: the lines of `/proc/PID/cgroup`, one field of the process record
//! ([`save`], called by `dump::process`).
//!
//! Restored: a resumed process goes back into the cgroups it was in where
//! they differ from the resume command's: the resume command moves itself
//! into each one (writing its pid into its `cgroup.procs`, [`join`]) before
//! it loads the process's memory, so that the pages are charged there (a
//! charge stays with the cgroup of whoever first touched the page), and the
//! process it makes is born in them. A cgroup that is gone, or a hierarchy
//! this machine does not mount, is refused before anything is created, and
//! so is one without room for the process's threads ([`targets`]: the
//! restore refuses the image with its [`Conflict`]).

use std::path::{Path, PathBuf};

use crate::{image::Image, procfs::ProcError};

/// The cgroups `pid` is in: the lines of `/proc/PID/cgroup`.
pub fn save(pid: u32) -> Result<Vec<String>, ProcError> {
    crate::procfs::cgroups(pid)
}

/// Why the process cannot go back into its cgroups: the restore refuses the
/// image with it (its `Refusal::Cgroup`).
#[derive(Debug, thiserror::Error)]
pub enum Conflict {
    /// A cgroup that is gone, or a hierarchy this machine does not mount.
    #[error("the process had {what}, which this kernel cannot give back ({why})")]
    KernelLacks { what: String, why: &'static str },
    /// A cgroup (or one above it) whose `pids.max` has no room for it.
    #[error(
        "its cgroup {cgroup} has no room: {} holds {current} tasks of its pids.max {max}, and the \
         resume needs {tasks} more there (the process's threads, and the resume command's own \
         unless it is there already); raise pids.max or resume it later", dir.display()
    )]
    CgroupFull {
        cgroup: String,
        dir: PathBuf,
        current: u64,
        max: u64,
        tasks: u64,
    },
}

/// The `cgroup.procs` files the process must be written into: one per
/// hierarchy where its cgroup is not the resume command's.
pub fn targets(image: &Image) -> Result<Vec<PathBuf>, Conflict> {
    let ours = crate::procfs::cgroups(std::process::id()).unwrap_or_default();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own = crate::procfs::tids(std::process::id()).map_or(1, |t| t.len()) as u64;
    let threads = image.threads.len() as u64;
    let mut targets = Vec::new();
    for line in &image.process.cgroups {
        if ours.contains(line) {
            continue;
        }
        let refused = |why: &'static str| Conflict::KernelLacks {
            what: format!("cgroup {line}"),
            why,
        };
        let mut parts = line.splitn(3, ':');
        let (Some(controllers), Some(_)) = (parts.nth(1), parts.next()) else {
            return Err(refused("not a cgroup line"));
        };
        let dir = crate::procfs::cgroup_dir(&mountinfo, line)
            .ok_or(refused("its hierarchy is not mounted here"))?;
        if !dir.is_dir() {
            return Err(refused("that cgroup does not exist here"));
        }
        // The resume command's cgroup in the same hierarchy (found by its
        // controllers, as the mount is: the numbers may differ from the
        // machine the image was taken on).
        let here = ours.iter().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            (parts.nth(1)? == controllers).then_some(parts.next()?)
        });
        let read = |file: &Path| std::fs::read_to_string(file).ok();
        if let Some(short) = pids_short(line, here, (threads, own), &mountinfo, read) {
            return Err(Conflict::CgroupFull {
                cgroup: line.clone(),
                dir: short.dir,
                current: short.current,
                max: short.max,
                tasks: short.tasks,
            });
        }
        targets.push(dir.join("cgroup.procs"));
    }
    Ok(targets)
}

/// A cgroup whose `pids.max` has no room for the process.
#[derive(Debug, PartialEq, Eq)]
struct Short {
    /// Its directory.
    dir: PathBuf,
    max: u64,
    /// `pids.current` now.
    current: u64,
    /// The tasks the resume would add to it.
    tasks: u64,
}

/// The first of the cgroup of `line` (`ID:CONTROLLERS:PATH`) and the
/// cgroups above it whose `pids.max` leaves no room for the process's
/// `threads` and the resume command's `own` tasks — those only where they
/// are not in its `pids.current` already (they are when the resume
/// command's cgroup in that hierarchy, `here`, is that cgroup or one below
/// it). Each is looked for in whichever mount of the hierarchy shows it
/// (`mountinfo`): a mount of part of a hierarchy shows nothing above its
/// root, where a limit may still be set, but another mount may show it.
/// A cgroup no mount shows, or with no `pids.max` (no pids controller
/// there, the hierarchy's root), or `max`, sets no limit here. `read`
/// gives a file's text.
fn pids_short(
    line: &str,
    here: Option<&str>,
    (threads, own): (u64, u64),
    mountinfo: &str,
    read: impl Fn(&Path) -> Option<String>,
) -> Option<Short> {
    let mut parts = line.splitn(3, ':');
    let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
    let within = |cgroup: &str| {
        here.is_some_and(|h| {
            cgroup == "/"
                || h == cgroup
                || h.strip_prefix(cgroup).is_some_and(|r| r.starts_with('/'))
        })
    };
    fn above<'a>(cgroup: &&'a str) -> Option<&'a str> {
        match cgroup.rfind('/') {
            Some(0) if *cgroup != "/" => Some("/"),
            Some(at) if at > 0 => Some(&cgroup[..at]),
            _ => None,
        }
    }
    std::iter::successors(Some(path), above).find_map(|cgroup| {
        let dir = crate::procfs::cgroup_dir(mountinfo, &format!("{id}:{controllers}:{cgroup}"))?;
        let number = |name: &str| read(&dir.join(name))?.trim().parse::<u64>().ok();
        let (max, current) = (number("pids.max")?, number("pids.current")?);
        let tasks = threads + if within(cgroup) { 0 } else { own };
        (current + tasks > max).then_some(Short {
            dir,
            max,
            current,
            tasks,
        })
    })
}

/// Moves process `pid` (every thread) into `targets`.
pub fn join(pid: u32, targets: &[PathBuf]) -> Result<(), String> {
    for procs in targets {
        std::fs::write(procs, pid.to_string())
            .map_err(|e| format!("writing {pid} into {}: {e}", procs.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A fake tree: `pids.max` and `pids.current` of each directory.
    fn tree(dirs: &[(&str, &str, u64)]) -> HashMap<PathBuf, String> {
        let mut files = HashMap::new();
        for &(dir, max, current) in dirs {
            files.insert(Path::new(dir).join("pids.max"), format!("{max}\n"));
            files.insert(Path::new(dir).join("pids.current"), format!("{current}\n"));
        }
        files
    }

    #[test]
    fn the_resume_commands_own_tasks_are_counted_only_where_they_are_not_already() {
        let info = "41 25 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let files = tree(&[
            ("/sys/fs/cgroup/a", "10", 5),
            ("/sys/fs/cgroup/a/b", "max", 0),
        ]);
        let read = |p: &Path| files.get(p).cloned();
        // 5 threads, and the resume command's 3 tasks, which /a counts
        // already (they are in /a/c): 5 + 5 fit in 10.
        let short = |here| pids_short("0::/a/b", here, (5, 3), info, read);
        assert_eq!(short(Some("/a/c")), None);
        assert_eq!(short(Some("/a")), None);
        // From outside /a they are 3 more: 5 + 8.
        let full = Some(Short {
            dir: "/sys/fs/cgroup/a".into(),
            max: 10,
            current: 5,
            tasks: 8,
        });
        assert_eq!(short(Some("/ab")), full);
        assert_eq!(short(Some("/")), full);
        assert_eq!(short(None), full);
    }

    #[test]
    fn a_resume_already_in_the_cgroup_under_another_hierarchy_number_is_counted_once() {
        // The pids hierarchy is number 5 in the image, 7 here; the resume
        // command's 3 tasks are in /a already.
        let info = "30 25 0:26 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let files = tree(&[("/sys/fs/cgroup/pids/a", "8", 3)]);
        let read = |p: &Path| files.get(p).cloned();
        assert_eq!(
            pids_short("5:pids:/a", Some("/a"), (5, 3), info, read),
            None
        );
        assert!(pids_short("5:pids:/a", Some("/b"), (5, 3), info, read).is_some());
    }

    #[test]
    fn a_limit_above_the_root_of_the_mount_that_holds_the_cgroup_is_seen() {
        // /box/inner is mounted at /mnt/inner (and found there first); its
        // parent /box, with the limit, only under the whole hierarchy's
        // mount. The hierarchy's root has no pids.max.
        let info = "40 25 0:30 /box/inner /mnt/inner rw - cgroup2 cgroup2 rw\n\
                    41 25 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let files = tree(&[
            ("/mnt/inner/app", "max", 0),
            ("/mnt/inner", "max", 0),
            ("/sys/fs/cgroup/box", "3", 1),
        ]);
        let read = |p: &Path| files.get(p).cloned();
        assert_eq!(
            pids_short("0::/box/inner/app", None, (2, 1), info, read),
            Some(Short {
                dir: "/sys/fs/cgroup/box".into(),
                max: 3,
                current: 1,
                tasks: 3,
            })
        );
        // Where no mount shows it, nothing can be read: no limit found.
        let info = "40 25 0:30 /box/inner /mnt/inner rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            pids_short("0::/box/inner/app", None, (2, 1), info, read),
            None
        );
    }
}
