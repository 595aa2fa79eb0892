//! The pseudo filesystems the agent needs, mounted when absent.

use std::{io, path::Path};

use nix::mount::{MsFlags, mount};

/// (filesystem type, mount point).
const NEEDED: &[(&str, &str)] = &[
    ("bpf", "/sys/fs/bpf"),
    ("tracefs", "/sys/kernel/tracing"),
    ("securityfs", "/sys/kernel/security"),
];

/// Whether `path` is a mount point of its own (its device differs from its
/// parent's, or it is `/`).
fn is_mount_point(path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path)?;
    let Some(parent) = path.parent() else {
        return Ok(true);
    };
    Ok(std::fs::metadata(parent)?.dev() != meta.dev())
}

/// Mounts bpffs, tracefs and securityfs where they are missing. Returns
/// what it mounted, for the log.
pub fn ensure() -> io::Result<Vec<&'static str>> {
    let mut mounted = Vec::new();
    for &(fstype, target) in NEEDED {
        let path = Path::new(target);
        if is_mount_point(path).unwrap_or(false) {
            continue;
        }
        mount(
            Some(fstype),
            path,
            Some(fstype),
            MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| io::Error::other(format!("mount -t {fstype} {fstype} {target}: {e}")))?;
        mounted.push(target);
    }
    Ok(mounted)
}
