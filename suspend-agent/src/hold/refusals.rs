//! What cannot be held: kernel objects that write into the process's
//! memory behind its back (io_uring, among it a ring only registered that
//! the task iterator shows, AIO, a userfaultfd), device mappings,
//! a thread in strict seccomp mode and a `vfork` child running on its
//! memory, refused before anything is frozen ([`refusals`]: a suspend's
//! outcome exits 8 naming them); and, once frozen, seccomp filters that
//! would not let a parked thread wait in the park loop ([`parks_allowed`]:
//! [`HoldError::Refused`], exit 8).

use std::{fs, os::unix::fs::FileTypeExt as _};

use super::{HoldError, io_err, seccomp};
use crate::{
    freeze::Frozen,
    procfs::{self, vmas},
    state::io_uring::{self, Consequence},
    tracee::{inject::Site, ptrace},
};

/// What keeps `pid` from being held safely, one line each (empty: nothing).
pub fn refusals(pid: u32) -> Result<Vec<String>, HoldError> {
    let mut refused = Vec::new();
    let fd_dir = format!("/proc/{pid}/fd");
    for entry in fs::read_dir(&fd_dir)
        .map_err(io_err(pid, format!("listing {fd_dir}")))?
        .flatten()
    {
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let fd = entry.file_name().to_string_lossy().into_owned();
        match target.to_string_lossy().as_ref() {
            "anon_inode:[io_uring]" => refused.push(format!(
                "fd {fd}: an io_uring (its requests would write into memory released while held)"
            )),
            "anon_inode:[userfaultfd]" => refused.push(format!(
                "fd {fd}: a userfaultfd (its ranges would fault on memory released while held)"
            )),
            _ => {}
        }
    }
    // A ring only registered (its fd closed, used through
    // IORING_ENTER_REGISTERED_RING; with IORING_SETUP_NO_MMAP no mapping
    // either) shows only in the kernel's task structures. Where the task
    // iterator cannot run at all, only what /proc shows is refused.
    match crate::tasks::of_process(pid) {
        Ok(threads) => refused.extend(io_uring::refusals(&threads, Consequence::Held)),
        Err(e) => log::warn!(
            "pid {pid}: whether a thread holds an io_uring ring it only registered is not \
             checked before a hold: {e}"
        ),
    }
    let maps_path = format!("/proc/{pid}/maps");
    let maps = fs::read_to_string(&maps_path).map_err(io_err(pid, maps_path.clone()))?;
    let vmas = vmas::parse(&maps).ok_or(HoldError::Proc {
        pid,
        what: format!("{maps_path}: not understood"),
    })?;
    for vma in &vmas {
        if vma.path.starts_with("/[aio]") {
            refused.push(format!(
                "an AIO context at {:#x} (its completions would write into memory released while held)",
                vma.start
            ));
        } else if vma.inode != 0
            && vma.path.starts_with("/dev/")
            && !vma.path.starts_with("/dev/zero")
            && !vma.path.starts_with("/dev/shm/")
        {
            let files = format!("/proc/{pid}/map_files/{:x}-{:x}", vma.start, vma.end);
            let device = fs::metadata(&files)
                .map(|m| m.file_type().is_char_device() || m.file_type().is_block_device())
                .unwrap_or(true);
            if device {
                refused.push(format!(
                    "a mapping of device {} at {:#x} (device memory cannot be released and given back)",
                    vma.path, vma.start
                ));
            }
        }
    }
    // A thread in strict seccomp mode cannot wait in the park loop's
    // `pause` (the call would kill it): known before anything is frozen.
    for tid in procfs::tids(pid).unwrap_or_default() {
        if procfs::confinement(pid, tid).is_ok_and(|c| c.seccomp == 1) {
            refused.push(format!(
                "thread {tid} runs in strict seccomp mode (it could not wait parked)"
            ));
        }
    }
    for child in children(pid) {
        if crate::sys::same_memory(pid, child).unwrap_or(false) {
            refused.push(format!(
                "child {child} runs on its memory (vfork): releasing it would pull the memory from under the child"
            ));
        }
    }
    Ok(refused)
}

/// The children of every thread of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut all = Vec::new();
    for tid in procfs::tids(pid).unwrap_or_default() {
        if let Ok(text) = fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")) {
            all.extend(
                text.split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    all
}

/// Checks that every thread's seccomp filters let it wait in the park
/// loop (`pause`): held, the filters are in force. Filters can only be
/// read from a stopped thread, so this comes once frozen.
pub(super) fn parks_allowed(pid: u32, frozen: &Frozen<'_>, site: &Site) -> Result<(), HoldError> {
    for tid in frozen.tids() {
        let filters = match ptrace::seccomp_filters(tid) {
            Ok(f) if f.is_empty() => continue,
            Ok(f) => f,
            // No filters to read (EINVAL), or no CONFIG_CHECKPOINT_RESTORE:
            // only the status line can say.
            Err(_) => {
                let mode = procfs::confinement(pid, tid)
                    .map(|c| c.seccomp)
                    .unwrap_or(0);
                if mode == 0 {
                    continue;
                }
                return Err(HoldError::Refused {
                    pid,
                    what: format!(
                        "thread {tid} is under seccomp (mode {mode}) and its filters cannot be read to know whether its parked thread may wait in pause(2)"
                    ),
                });
            }
        };
        let regs = ptrace::regs(tid).map_err(|source| HoldError::Ptrace {
            pid,
            tid,
            call: "PTRACE_GETREGS",
            source,
        })?;
        let call = seccomp::Call {
            nr: libc::SYS_pause as u32,
            ip: site.park_address() + 7,
            args: [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9],
        };
        let programs: Vec<Vec<u8>> = filters.into_iter().map(|(_, f)| f).collect();
        if !seccomp::allows(&programs, &call) {
            return Err(HoldError::Refused {
                pid,
                what: format!(
                    "thread {tid}'s seccomp filters do not allow pause(2), which a held thread waits in"
                ),
            });
        }
    }
    Ok(())
}
