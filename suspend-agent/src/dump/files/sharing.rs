//! Open files shared. Within the process: fds that are copies of one open
//! file (`dup`, told apart from two opens by `kcmp`), given back as copies.
//! With other processes: an open file `kcmp` finds in another's fd table
//! (inherited across a fork, or sent); a resume cannot share it again, so
//! it is refused by name (a pipe another process holds is refused by its
//! kind, `state/pipes.rs`).

use std::collections::BTreeMap;

use crate::image::format::{File, FileKind};

/// Sets `dup_of` on each fd of `files` (sorted by fd) whose open file an
/// earlier one has too (`dup`); stdio and pipes are left alone.
pub fn mark_dups(pid: u32, files: &mut [File]) {
    // Copies of one open file (`dup`), by the lowest fd of each.
    for i in 0..files.len() {
        let f = &files[i];
        if f.fd <= 2 || f.pipe.is_some() {
            continue;
        }
        files[i].dup_of = files[..i]
            .iter()
            .find(|g| {
                g.fd > 2
                    && g.pipe.is_none()
                    && g.dup_of.is_none()
                    && g.path == files[i].path
                    && crate::sys::same_open_file(pid, g.fd, files[i].fd).unwrap_or(false)
            })
            .map(|g| g.fd);
    }
}

/// The fds of `files` (above stdio, other than pipes) whose open file
/// another process shares (it inherited it across a fork, or was sent
/// it): a resume would give the process a file of its own, with its own
/// offset and flags. By fd, how it is shared (with which process, or why
/// it cannot be told).
pub fn shared_with_others(pid: u32, files: &[File]) -> BTreeMap<i32, String> {
    let ours: Vec<&File> = files
        .iter()
        .filter(|f| {
            // A device's open file has no state a copy would lose that
            // matters (its terminals are refused apart).
            f.fd > 2 && f.pipe.is_none() && f.restorable() && f.kind != FileKind::CharDevice
        })
        .collect();
    let links = ours.iter().map(|f| f.path.clone()).collect();
    let mut shared = BTreeMap::new();
    if ours.is_empty() {
        return shared;
    }
    for (other, their_fd, link) in crate::procfs::others_holding(pid, &links) {
        for f in ours.iter().filter(|f| f.path == link) {
            if shared.contains_key(&f.fd) {
                continue;
            }
            let how = match crate::sys::same_file_of(pid, f.fd, other, their_fd) {
                Ok(true) => format!("its open file is shared with pid {other}"),
                Ok(false) => continue,
                // Gone, or closed, meanwhile.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ESRCH | libc::EBADF)) => continue,
                Err(e) => format!(
                    "pid {other} has the same file open, and whether as this very open file \
                     cannot be told (kcmp: {e})"
                ),
            };
            shared.insert(f.fd, how);
        }
    }
    shared
}

/// Why `f` cannot come back, if its open file is shared with another
/// process (`shared`, from [`shared_with_others`]), or if this kernel
/// cannot say whether it is (no `kcmp`: `CONFIG_KCMP`), nor whether it is
/// a copy (`dup`) of another of its fds.
pub fn refusal(f: &File, shared: &BTreeMap<i32, String>) -> Option<String> {
    if f.fd > 2 && !crate::sys::kcmp_available() {
        return Some(format!(
            "fd {} ({}, this kernel has no kcmp (CONFIG_KCMP): whether it is a copy of another \
             fd, or shared with another process, cannot be told)",
            f.fd, f.path
        ));
    }
    let how = shared.get(&f.fd)?;
    Some(format!(
        "fd {} ({}, {how}: a resume would give it one of its own)",
        f.fd, f.path
    ))
}
