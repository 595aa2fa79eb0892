//! Park: a frozen process, its image durable, held — every thread waiting
//! in the client's park loop, its private memory released.

use std::{
    fs,
    path::Path,
    time::{Duration, Instant, SystemTime},
};

use log::{debug, warn};
use nix::errno::Errno;

use super::{
    HeldRecord, HoldError, io_err, meta_hash, record, refusals::parks_allowed, releasable, site,
    vmas_of,
};
use crate::{
    freeze::Frozen,
    image::format::{META_FILE, PAGE_SIZE},
    procfs,
    state::mappings,
    tracee::{
        inject::{Borrowed, Site},
        ptrace,
    },
};

/// `rseq(2)`: `RSEQ_FLAG_UNREGISTER`.
const RSEQ_FLAG_UNREGISTER: u64 = 1;

/// A process just held.
#[derive(Debug)]
pub struct Parked {
    pub record: HeldRecord,
    /// Mappings left resident, with the reason.
    pub kept: Vec<String>,
    pub took: Duration,
}

/// Parks every thread of `frozen` and releases its private memory; its
/// image in `image` is durable. `held_only`: what the image does not hold
/// (recorded). On an error before the threads are parked, every thread is
/// as it was (still frozen) and the record is gone; after it, the process
/// is held all the same (with some memory not released), and the error is
/// only logged.
pub fn park(
    frozen: &mut Frozen<'_>,
    image: &Path,
    held_only: Vec<String>,
) -> Result<Parked, HoldError> {
    let started = Instant::now();
    let pid = frozen.pid();
    let resident_before = procfs::rss_bytes(pid).unwrap_or(0);
    let site = site(pid)?;
    parks_allowed(pid, frozen, &site)?;

    // Every thread waits in the trampoline: a killed agent lets it go back
    // to where it was.
    let mut borrowed = Vec::new();
    for thread in frozen.threads().to_vec() {
        let mut b = Borrowed::on_own_stack(thread.tid, site, thread.stopped_with)?;
        b.syscall(libc::SYS_getpid, [0; 6])?;
        borrowed.push(b);
    }
    let record = HeldRecord {
        pid,
        start_time: procfs::start_time(pid).map_err(|e| HoldError::Proc {
            pid,
            what: e.to_string(),
        })?,
        image: fs::canonicalize(image).map_err(io_err(pid, image.display().to_string()))?,
        meta_blake3: meta_hash(image).map_err(io_err(pid, format!("reading {META_FILE}")))?,
        since: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        threads: borrowed.len() as u32,
        tids: frozen.tids(),
        resident_before,
        resident_after: 0,
        held_only,
        refill: None,
    };
    record.write().map_err(io_err(
        pid,
        format!("writing its record in {}", record::DIR),
    ))?;
    frozen.set_held(true);

    // Parked, all of them, in one short stretch.
    for (i, b) in borrowed.iter_mut().enumerate() {
        if i == 1 {
            fault_pause("SUSPEND_FAULT_HOLD_DELAY_MS");
        }
        if let Err(e) = b.park() {
            // Only a process killed meanwhile gets here.
            record.remove();
            frozen.set_held(false);
            return Err(e.into());
        }
    }
    // The signal a thread was caught on its way to deliver is queued to it
    // again (blocked while parked): let go, it must not be given twice.
    // Until here, a failure put each thread back into its stop, and the
    // release delivers that signal.
    for tid in frozen.tids() {
        frozen.set_stopped_with(tid, None);
    }
    drop(borrowed);

    // From here on it is held whatever happens: what fails only keeps
    // memory resident.
    let mut kept = Vec::new();
    if let Err(e) = release(pid, site, frozen, &mut kept) {
        warn!("pid {pid}: held, but releasing its memory failed: {e}");
        kept.push(format!("releasing memory failed: {e}"));
    }
    let mut record = record;
    record.resident_after = procfs::rss_bytes(pid).unwrap_or(0);
    if let Err(e) = record.write() {
        warn!("pid {pid}: updating its held record: {e}");
    }
    Ok(Parked {
        record,
        kept,
        took: started.elapsed(),
    })
}

/// Test hook: sleeps as many milliseconds as the environment variable
/// `var` says: the daemon's `SUSPEND_FAULT_HOLD_DELAY_MS`, with one thread
/// parked and the others waiting in the trampoline, so a test can kill the
/// daemon right then; `resume`'s `SUSPEND_FAULT_UNPARK_DELAY_MS`, with
/// every thread back where its image has it, still traced (a slow start of
/// the agent that serves its memory).
pub(super) fn fault_pause(var: &str) {
    if let Some(ms) = std::env::var(var).ok().and_then(|v| v.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// The pages holding the command line and environment (`ps` and
/// `/proc/PID/cmdline` read them while it is held): page-aligned.
fn argv_pages(pid: u32) -> Option<(u64, u64)> {
    let mm = procfs::mm_fields(pid).ok()?;
    let page = PAGE_SIZE;
    let start = mm.arg_start.min(mm.env_start) & !(page - 1);
    let end = (mm.arg_end.max(mm.env_end) + page - 1) & !(page - 1);
    (start < end).then_some((start, end))
}

/// `[start, end)` without `keep`: zero, one or two ranges.
fn without(start: u64, end: u64, keep: Option<(u64, u64)>) -> Vec<(u64, u64)> {
    let Some((ks, ke)) = keep.filter(|&(ks, ke)| ks < end && ke > start) else {
        return vec![(start, end)];
    };
    [(start, ks.max(start)), (ke.min(end), end)]
        .into_iter()
        .filter(|(s, e)| s < e)
        .collect()
}

/// Drops every parked thread's rseq registration and the process's private
/// memory (through the last thread), but for the command line's pages.
fn release(
    pid: u32,
    site: Site,
    frozen: &Frozen<'_>,
    kept: &mut Vec<String>,
) -> Result<(), HoldError> {
    let threads = frozen.tids();
    let vmas = vmas_of(pid)?;
    for (i, &tid) in threads.iter().enumerate() {
        let mut b = Borrowed::new(tid, site, None)?;
        if let Some((addr, len, sig)) = ptrace::rseq(tid).ok().flatten() {
            let ret = b.syscall(
                libc::SYS_rseq,
                [addr, len as u64, RSEQ_FLAG_UNREGISTER, sig as u64, 0, 0],
            )?;
            if ret < 0 {
                return Err(HoldError::Rseq {
                    pid,
                    tid,
                    op: "unregister",
                    source: Errno::from_raw(-ret as i32),
                });
            }
        }
        if i + 1 == threads.len() {
            let keep = argv_pages(pid);
            for vma in vmas.iter().filter(|v| releasable(mappings::kind(v))) {
                let mut ret = 0;
                for (start, end) in without(vma.start, vma.end, keep) {
                    ret = b.syscall(
                        libc::SYS_madvise,
                        [start, end - start, libc::MADV_DONTNEED as u64, 0, 0, 0],
                    )?;
                    if ret < 0 {
                        break;
                    }
                }
                if ret < 0 {
                    let why = match Errno::from_raw(-ret as i32) {
                        Errno::EINVAL => "locked (mlock) or special".to_owned(),
                        e => e.desc().to_owned(),
                    };
                    debug!(
                        "pid {pid}: {:#x}-{:#x} {} stays resident: {why}",
                        vma.start, vma.end, vma.path
                    );
                    kept.push(format!(
                        "{:#x}-{:#x} {} ({why})",
                        vma.start, vma.end, vma.path
                    ));
                }
            }
        }
        b.park()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_lines_pages_are_cut_out() {
        assert_eq!(without(0x1000, 0x9000, None), vec![(0x1000, 0x9000)]);
        assert_eq!(
            without(0x1000, 0x9000, Some((0x3000, 0x5000))),
            vec![(0x1000, 0x3000), (0x5000, 0x9000)]
        );
        assert_eq!(
            without(0x1000, 0x9000, Some((0x8000, 0xa000))),
            vec![(0x1000, 0x8000)]
        );
        assert_eq!(without(0x1000, 0x2000, Some((0x0, 0x3000))), vec![]);
        assert_eq!(
            without(0x1000, 0x2000, Some((0x5000, 0x6000))),
            vec![(0x1000, 0x2000)]
        );
    }
}
