//! A held suspension: the process keeps its pid and every kernel object
//! (sockets with their peers, locks, pipes, timers, children, terminal);
//! only its memory and CPU are released. Its halves: [`park`] (`park.rs`)
//! after the image is durable, [`unpark`] (`unpark.rs`) at `resume`; what
//! cannot be held is `refusals.rs`, what a hold fails with `error.rs`.
//!
//! **Park.** Every thread is borrowed through the client's trampoline
//! ([`crate::tracee::inject`]) and left waiting in it, so a killed agent
//! lets each go back to exactly where it was. Then the record is written
//! ([`record`]) and the registry says `held`, and only then is each thread
//! moved into the trampoline's park loop (`pause` with every signal
//! blocked: signals sent meanwhile stay pending, `SIGKILL` still kills).
//! Last, with every thread parked, their rseq registrations are dropped
//! (the kernel must not write into memory that is about to go) and the
//! process's private memory is released (`MADV_DONTNEED` on every private
//! mapping, run by one of its threads): the pages are in the image. Shared
//! memory stays (others may use it); so do locked mappings (`mlock`), named
//! in the summary. The threads are let go parked: no agent is needed while
//! it is held.
//!
//! **Unpark.** The threads are seized again and must all be in the park
//! loop (else the process ran, and its image is not its state: refused);
//! its mappings must be those of the image. Every saved page of its private
//! mappings is written back (`/proc/PID/mem`, each run's hash checked
//! first); a killed agent leaves it parked, to be refilled again. Then each
//! thread registers its rseq again, the parked client thread gets the
//! resume signal, and every thread gets back its registers and signal mask
//! as the image has them — the same values it had when it was frozen — and
//! is let go.
//!
//! What cannot be held is refused before anything is frozen
//! ([`refusals`]): kernel objects that write into the process's memory
//! behind its back (io_uring, AIO, a userfaultfd), device mappings, and a
//! `vfork` child running on its memory.

mod error;
mod lazy;
mod park;
pub mod record;
pub mod refill;
mod refusals;
mod seccomp;
mod unpark;

use std::{fs, io, path::Path};

use self::error::{io_err, sys_err};
pub use self::{
    error::HoldError,
    park::{Parked, park},
    record::{HeldRecord, Refill},
    refusals::refusals,
    unpark::{ran_while_held, unpark},
};
use crate::{
    image::format::{META_FILE, MappingKind, blake3_hex},
    procfs::{self, vmas},
    tracee::inject::Site,
};

/// Ends the hold of `record.pid` by killing it (`SIGKILL`): it was moved,
/// and runs elsewhere now. Only the very process held (its start time
/// checked on a pidfd opened first, so a reused pid is never hit); waits
/// up to `within` for it to be gone, then drops its record. `Ok(false)`:
/// it was gone already.
pub fn end(record: &HeldRecord, within: std::time::Duration) -> io::Result<bool> {
    // Gone (or never the process held): no longer witnessed nor guarded,
    // and no longer held.
    let forget = || {
        if let Ok(mut maps) = crate::freeze::FreezeMaps::open() {
            maps.forget_held(record.pid, &record.tids);
        }
        record.remove();
    };
    let pidfd = match crate::sys::PidFd::open(record.pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
            forget();
            return Ok(false);
        }
        Err(e) => return Err(io::Error::other(e)),
    };
    if procfs::start_time(record.pid).ok() != Some(record.start_time) {
        forget();
        return Ok(false);
    }
    pidfd.send_signal(libc::SIGKILL).map_err(io::Error::other)?;
    let deadline = std::time::Instant::now() + within;
    while pidfd.is_alive() {
        if std::time::Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "pid {} was sent SIGKILL but is still there after {:?}",
                record.pid, within
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Gone (a zombie until its parent reaps it).
    forget();
    Ok(true)
}

/// Whether `pid` runs again with its memory still being given back (a
/// lazy refill under way, or waiting for an agent).
pub fn refilling(pid: u32) -> bool {
    HeldRecord::find(pid)
        .ok()
        .flatten()
        .is_some_and(|r| r.refill.is_some())
}

/// The BLAKE3 hash of an image's `meta.jsonl` (which its signature covers,
/// and which names every page run's hash): the image a hold was written
/// with, so that its refill takes no other (signed) image put in its
/// place.
fn meta_hash(image: &Path) -> io::Result<String> {
    Ok(blake3_hex(&fs::read(image.join(META_FILE))?))
}

/// The client's trampoline in `pid` (checked to be this agent's).
fn site(pid: u32) -> Result<Site, HoldError> {
    let block = procfs::client_block_addr(pid)
        .ok()
        .flatten()
        .ok_or(HoldError::Proc {
            pid,
            what: "no client block in /proc/PID/maps".into(),
        })?;
    Ok(Site::find(pid, block)?)
}

/// The mappings of `pid` (`/proc/PID/maps`).
fn vmas_of(pid: u32) -> Result<Vec<vmas::Vma>, HoldError> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(io_err(pid, "reading /proc/PID/maps"))?;
    vmas::parse(&maps).ok_or(HoldError::Proc {
        pid,
        what: "/proc/PID/maps not understood".into(),
    })
}

/// Whether a mapping's memory is the process's own and saved in the image
/// (private), so it may be released while held and written back after.
fn releasable(kind: MappingKind) -> bool {
    matches!(kind, MappingKind::Anonymous | MappingKind::PrivateFile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_private_memory_is_released() {
        assert!(releasable(MappingKind::Anonymous));
        assert!(releasable(MappingKind::PrivateFile));
        assert!(!releasable(MappingKind::SharedAnonymous));
        assert!(!releasable(MappingKind::SharedFile));
        assert!(!releasable(MappingKind::Kernel));
    }
}
