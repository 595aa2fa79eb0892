//! Unpark: a held process brought back at `resume` — its threads seized
//! in the park loop, its memory written back (or served lazily), each
//! thread given its image's registers and mask and let go.

use std::{
    fs, io,
    time::{Duration, Instant, SystemTime},
};

use log::{debug, warn};
use nix::errno::Errno;

use super::{
    HeldRecord, HoldError, Refill, io_err, lazy, meta_hash, record, releasable, site, sys_err,
    vmas_of,
};
use crate::{
    image::{
        Image,
        format::{META_FILE, PAGE_SIZE},
    },
    procfs,
    tracee::{
        inject::{Borrowed, Site},
        ptrace::{self, Stop},
    },
};

/// What an unpark did.
#[derive(Debug)]
pub struct Unparked {
    pub pid: u32,
    pub threads: usize,
    /// Pages written back before it ran.
    pub pages: u64,
    /// Pages left to be served while it runs (a lazy refill), if any.
    pub lazy_pages: Option<u64>,
    pub told_client: bool,
    /// The hold had been cut short: only `threads` parked threads were
    /// let go, nothing written back.
    pub cut_short: bool,
    pub took: Duration,
}

/// Brings held process `record.pid` back from `image` (read and verified
/// by the caller). Any failure before its threads are let go leaves it
/// held. `lazy`: its private anonymous memory is served while it runs
/// ([`refill`]); `start_server` is called, with every range registered and
/// the record saying so, to start the agent that serves it, just before
/// the threads are let go. Without `lazy`, or where the kernel cannot, every
/// page is written back first.
pub fn unpark(
    image: &Image,
    record: &HeldRecord,
    lazy: bool,
    start_server: &mut dyn FnMut(u32) -> io::Result<()>,
) -> Result<Unparked, HoldError> {
    let started = Instant::now();
    let pid = record.pid;
    if meta_hash(&image.dir).ok().as_ref() != Some(&record.meta_blake3) {
        return Err(HoldError::NotHeld {
            pid,
            why: format!(
                "{} is not the image it was held with (its {META_FILE} changed since)",
                image.dir.display()
            ),
        });
    }
    if image.process.pid != pid {
        return Err(HoldError::NotHeld {
            pid,
            why: format!("its record names an image of pid {}", image.process.pid),
        });
    }
    let mut tids = procfs::tids(pid).map_err(|e| HoldError::Proc {
        pid,
        what: e.to_string(),
    })?;
    tids.sort_unstable();
    let mut expected: Vec<u32> = image.threads.iter().map(|t| t.tid).collect();
    expected.sort_unstable();
    if tids != expected {
        return Err(HoldError::NotHeld {
            pid,
            why: format!("its threads are {tids:?}, the image's {expected:?}"),
        });
    }
    debug!("pid {pid}: unpark: checked at {:?}", started.elapsed());
    let seized = Seized::take(pid, &tids)?;
    let site = site(pid)?;
    let mut running = Vec::new();
    for &tid in &tids {
        let regs = ptrace::regs(tid).map_err(|source| HoldError::Ptrace {
            pid,
            tid,
            call: "PTRACE_GETREGS",
            source,
        })?;
        if !Borrowed::parked(&site, &regs) {
            running.push(tid);
        }
    }
    if running.len() == tids.len() {
        // The hold was cut short before any thread was parked (its agent
        // was killed): it runs, and its record is stale.
        drop(seized);
        record.remove();
        forget(record);
        registered_again(pid);
        return Err(HoldError::NotHeld {
            pid,
            why: "none of its threads is parked: its hold was cut short and it runs on (its record is removed)".into(),
        });
    }
    if !running.is_empty() {
        return let_parked_go(image, record, seized, site, &running, started);
    }
    let mut uffd = None;
    if lazy {
        debug!("pid {pid}: unpark: seized at {:?}", started.elapsed());
        match lazy::make_uffd(pid, tids[0], site) {
            Ok(made) => uffd = Some(made),
            Err(e) => warn!("pid {pid}: its memory is written back before it runs: {e}"),
        }
    }
    debug!(
        "pid {pid}: unpark: userfaultfd made at {:?}",
        started.elapsed()
    );
    let mut pages = match uffd {
        None => refill(image, pid)?,
        Some(_) => {
            same_mappings(image, pid)?;
            0
        }
    };

    // Each thread registers its rseq again and waits in the trampoline
    // (a killed agent lets it go back to the park loop).
    let mut borrowed = Vec::new();
    for thread in &image.threads {
        let mut b = Borrowed::on_own_stack(thread.tid, site, None)?;
        if let Some(rseq) = &thread.rseq {
            let ret = b.syscall(
                libc::SYS_rseq,
                [rseq.addr, rseq.len as u64, 0, rseq.signature as u64, 0, 0],
            )?;
            // EBUSY: still registered (a park cut short).
            if ret < 0 && ret != -(libc::EBUSY as i64) {
                return Err(HoldError::Rseq {
                    pid,
                    tid: thread.tid,
                    op: "register",
                    source: Errno::from_raw(-ret as i32),
                });
            }
        } else {
            b.syscall(libc::SYS_getpid, [0; 6])?;
        }
        borrowed.push(b);
    }
    debug!(
        "pid {pid}: unpark: rseq registered at {:?}",
        started.elapsed()
    );
    let resume = image.parked_client();
    let mut told_client = false;
    if let Some((tid, signal, token)) = resume {
        crate::sys::queue_signal(pid, tid, signal, token).map_err(sys_err(
            pid,
            format!("sending the resume signal {signal} to thread {tid}"),
        ))?;
        told_client = true;
    }
    for (b, thread) in borrowed.into_iter().zip(&image.threads) {
        b.restore_to((&thread.regs).into(), thread.sigmask)?;
    }
    // Every thread is stopped where its image has it; none is borrowed.
    let mut lazy_pages = None;
    if let Some((number, fd)) = uffd {
        debug!(
            "pid {pid}: unpark: registers back at {:?}",
            started.elapsed()
        );
        match serve_lazily(image, record, number, &fd, start_server) {
            Ok((written, left)) => {
                pages += written;
                lazy_pages = Some(left);
            }
            Err(e) => {
                warn!("pid {pid}: its memory is written back before it runs: {e}");
                drop(fd);
                let eager = (|| {
                    let mut b = Borrowed::on_own_stack(tids[0], site, None)?;
                    b.syscall(libc::SYS_close, [number as u64, 0, 0, 0, 0, 0])?;
                    b.restore()?;
                    refill(image, pid)
                })();
                match eager {
                    Ok(written) => pages = written,
                    Err(e) => {
                        // Its threads must not run on memory not all back:
                        // parked again, it stays held.
                        for &tid in &tids {
                            if let Err(e) =
                                Borrowed::on_own_stack(tid, site, None).and_then(|mut b| b.park())
                            {
                                warn!("pid {pid}: thread {tid} could not be parked again: {e}");
                            }
                        }
                        return Err(e);
                    }
                }
            }
        }
    }
    debug!("pid {pid}: unpark: memory ready at {:?}", started.elapsed());
    super::park::fault_pause("SUSPEND_FAULT_UNPARK_DELAY_MS");
    settle_timers(image, site);
    seized.release();
    forget(record);
    registered_again(pid);
    if lazy_pages.is_none() {
        record.remove();
    }
    Ok(Unparked {
        pid,
        threads: tids.len(),
        pages,
        lazy_pages,
        told_client,
        cut_short: false,
        took: started.elapsed(),
    })
}

/// The lazy half of an unpark, with every thread stopped where its image
/// has it: pages the agent touched are made the image's, every served
/// range is registered with the process's userfaultfd `fd` (its number
/// `number` there), the record says it is being refilled, and the serving
/// agent is started. Returns the pages written now and those left to serve.
/// On an error nothing is registered any more.
fn serve_lazily(
    image: &Image,
    record: &HeldRecord,
    number: i32,
    fd: &std::os::fd::OwnedFd,
    start_server: &mut dyn FnMut(u32) -> io::Result<()>,
) -> Result<(u64, u64), HoldError> {
    let pid = record.pid;
    let mut written = lazy::write_present(image, pid)?;
    let (ranges, more) = lazy::register(image, pid, fd)?;
    written += more;
    let unregister = || {
        for &(s, e) in &ranges {
            let _ = crate::sys::uffd::unregister(std::os::fd::AsFd::as_fd(fd), s, e - s);
        }
    };
    let mut refilling = record.clone();
    refilling.refill = Some(Refill {
        uffd: number,
        since: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    });
    let started = fs::File::create(record::journal_path(pid))
        .and_then(|_| refilling.write())
        .map_err(io_err(
            pid,
            format!("writing its record in {}", record::DIR),
        ))
        .and_then(|()| {
            start_server(pid).map_err(io_err(pid, "starting the agent that serves its memory"))
        });
    if let Err(e) = started {
        unregister();
        let _ = record.write();
        let _ = fs::remove_file(record::journal_path(pid));
        return Err(e);
    }
    let (_, chunks) = lazy::plan(image);
    let left = chunks.iter().map(|c| c.len / PAGE_SIZE).sum::<u64>();
    Ok((written, left))
}

/// Its timers ran on while it was held: undoes what being traced and parked
/// did to those whose signal it ignores (`state::timers::settle`). Done
/// last, just before its threads are let go: an expiry while it is still
/// traced is queued, not dropped, and the first taken once it runs would
/// count every period since as its overrun (a lazy unpark starts a server
/// in between, longer than [`crate::state::timers::QUIET`] on a slow
/// machine). A failure is logged: every thread is back where its image has
/// it, and it goes on all the same.
fn settle_timers(image: &Image, site: Site) {
    let p = &image.process;
    let pid = p.pid;
    if !crate::state::timers::any_unsettled(&p.posix_timers, &p.sigactions)
        || !image.threads.iter().any(|t| t.tid == pid)
    {
        return;
    }
    let settled = Borrowed::new(pid, site, None).and_then(|mut main| {
        let settled =
            crate::state::timers::settle(&p.posix_timers, &p.sigactions, &mut main, &site);
        main.restore()?;
        settled
    });
    let settled = settled.and(site.clear());
    if let Err(e) = settled {
        warn!(
            "pid {pid}: a periodic timer whose signal it ignores may count the hold as overruns: {e}"
        );
    }
}

/// Its mappings must be those of the image, each private one where the
/// image has it with the same protections.
fn same_mappings(image: &Image, pid: u32) -> Result<(), HoldError> {
    let vmas = vmas_of(pid)?;
    for mapping in image
        .mappings
        .iter()
        .filter(|m| releasable(m.kind) && !m.pages.is_empty())
    {
        if !vmas
            .iter()
            .any(|v| v.start == mapping.start && v.end == mapping.end && v.perms == mapping.perms)
        {
            return Err(HoldError::NotHeld {
                pid,
                why: format!(
                    "its mapping {:#x}-{:#x} {} {} is not there as the image has it",
                    mapping.start, mapping.end, mapping.perms, mapping.path
                ),
            });
        }
    }
    Ok(())
}

/// A held process runs again: no longer witnessed nor guarded.
fn forget(record: &HeldRecord) {
    match crate::freeze::FreezeMaps::open() {
        Ok(mut maps) => maps.forget_held(record.pid, &record.tids),
        Err(e) => warn!("pid {}: {e}", record.pid),
    }
}

/// What the run witness saw of held process `record.pid`'s parked threads
/// since they were parked: `(tid, times switched in)` of those that ran.
pub fn ran_while_held(record: &HeldRecord) -> Option<Vec<(u32, u32)>> {
    let maps = crate::freeze::FreezeMaps::open().ok()?;
    let ran = maps.witnessed(&record.tids).ok()?;
    Some(ran.into_iter().map(|(tid, t)| (tid, t.switches)).collect())
}

/// The registry says `registered` again (from `held`).
fn registered_again(pid: u32) {
    if let Ok(mut registry) = crate::registry::Registry::open_pinned() {
        let _ = registry.set_state(
            pid,
            Some(suspend_common::registry::STATE_HELD),
            suspend_common::registry::STATE_REGISTERED,
        );
    }
}

/// A hold cut short while the threads were being parked (its agent was
/// killed): the threads not parked went back to where they were and ran
/// on, and no memory was released (that comes only after every thread is
/// parked). The parked ones have not run since the image was taken: they
/// get their registers and mask back from it and go on, as after a long
/// preemption. Nothing is written into memory; the client is not told
/// `restored` (its connection closed: it runs `on_resume` with `aborted`).
fn let_parked_go(
    image: &Image,
    record: &HeldRecord,
    seized: Seized,
    site: Site,
    running: &[u32],
    started: Instant,
) -> Result<Unparked, HoldError> {
    let pid = record.pid;
    let mut borrowed = Vec::new();
    for thread in image.threads.iter().filter(|t| !running.contains(&t.tid)) {
        let mut b = Borrowed::on_own_stack(thread.tid, site, None)?;
        b.syscall(libc::SYS_getpid, [0; 6])?;
        borrowed.push((b, thread));
    }
    let threads = borrowed.len();
    for (b, thread) in borrowed {
        b.restore_to((&thread.regs).into(), thread.sigmask)?;
    }
    seized.release();
    forget(record);
    registered_again(pid);
    record.remove();
    Ok(Unparked {
        pid,
        threads,
        pages: 0,
        lazy_pages: None,
        told_client: false,
        cut_short: true,
        took: started.elapsed(),
    })
}

/// Writes every saved page of the image's private mappings back into the
/// process (whose mappings must be the image's), each run's hash checked
/// before it is written. Returns the pages written.
fn refill(image: &Image, pid: u32) -> Result<u64, HoldError> {
    same_mappings(image, pid)?;
    // Only this (tracer) thread may write read-only pages through it.
    let mem = fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/mem"))
        .map_err(io_err(pid, "opening /proc/PID/mem"))?;
    let mut pages = lazy::Pages::open(image)?;
    let mut written = 0;
    for (i, mapping) in image.mappings.iter().enumerate() {
        if releasable(mapping.kind) && !mapping.pages.is_empty() {
            written += lazy::write_mapping(&mut pages, &mem, i)?;
        }
    }
    Ok(written)
}

/// Every thread of a held process, seized and stopped; let go (still
/// parked, unless their registers were changed) when dropped.
struct Seized {
    tids: Vec<u32>,
}

impl Seized {
    fn take(pid: u32, tids: &[u32]) -> Result<Self, HoldError> {
        let mut seized = Self { tids: Vec::new() };
        for &tid in tids {
            ptrace::seize(tid).map_err(|source| HoldError::Ptrace {
                pid,
                tid,
                call: "PTRACE_SEIZE",
                source,
            })?;
            seized.tids.push(tid);
            ptrace::interrupt(tid).map_err(|source| HoldError::Ptrace {
                pid,
                tid,
                call: "PTRACE_INTERRUPT",
                source,
            })?;
            match ptrace::wait_stop(tid) {
                Ok(Stop::Interrupted) => {}
                other => {
                    return Err(HoldError::NotHeld {
                        pid,
                        why: format!("thread {tid} did not stop as a parked thread: {other:?}"),
                    });
                }
            }
        }
        Ok(seized)
    }

    fn release(mut self) {
        for tid in std::mem::take(&mut self.tids) {
            if let Err(e) = ptrace::detach(tid, None) {
                debug!("letting thread {tid} go: {e}");
            }
        }
    }
}

impl Drop for Seized {
    fn drop(&mut self) {
        for &tid in &self.tids {
            let _ = ptrace::detach(tid, None);
        }
    }
}
