//! A held suspension: the process keeps its pid and every kernel object
//! (sockets with their peers, locks, pipes, timers, children, terminal);
//! only its memory and CPU are released. Both halves live here: [`park`]
//! after the image is durable, [`unpark`] at `resume`.
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

mod lazy;
pub mod record;
pub mod refill;
mod seccomp;

use std::{
    fs, io,
    os::unix::fs::FileTypeExt as _,
    path::Path,
    time::{Duration, Instant, SystemTime},
};

use log::{debug, warn};
use nix::errno::Errno;

pub use self::record::{HeldRecord, Refill};
use crate::{
    exit,
    freeze::Frozen,
    image::{
        Image,
        format::{META_FILE, MappingKind, PAGE_SIZE, blake3_hex},
    },
    procfs::{self, vmas},
    tracee::{
        inject::{Borrowed, InjectError, Site},
        ptrace::{self, Stop},
    },
};

/// `rseq(2)`: `RSEQ_FLAG_UNREGISTER`.
const RSEQ_FLAG_UNREGISTER: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error(transparent)]
    Inject(#[from] InjectError),
    #[error("pid {pid}: thread {tid}: {call}: {source}")]
    Ptrace {
        pid: u32,
        tid: u32,
        call: &'static str,
        source: Errno,
    },
    #[error("pid {pid}: {what}: {source}")]
    Io {
        pid: u32,
        what: String,
        source: io::Error,
    },
    /// A call of `sys/` failed (it names itself); `what` says on what.
    #[error("pid {pid}: {what}: {source}")]
    Syscall {
        pid: u32,
        what: String,
        source: crate::sys::SyscallError,
    },
    #[error("pid {pid}: {what}")]
    Proc { pid: u32, what: String },
    #[error("pid {pid}: thread {tid}: rseq({op}): {source}")]
    Rseq {
        pid: u32,
        tid: u32,
        op: &'static str,
        source: Errno,
    },
    #[error("pid {pid} is not held as its record says: {why}")]
    NotHeld { pid: u32, why: String },
    #[error("pid {pid}: {what}")]
    Pages { pid: u32, what: String },
    /// Found once frozen: it cannot be held (nothing was lost; it goes on).
    #[error("pid {pid} cannot be held: {what}")]
    Refused { pid: u32, what: String },
}

impl HoldError {
    /// The exit code of a command that failed with it (`resume` of a held
    /// process): 9 when the process or its image is not as held (a page
    /// the image can no longer give included), 8 for what a held process
    /// cannot keep (as a suspend's outcome says), 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotHeld { .. } | Self::Pages { .. } => exit::BAD_IMAGE,
            Self::Refused { .. } => exit::UNSUPPORTED,
            Self::Inject(_)
            | Self::Ptrace { .. }
            | Self::Io { .. }
            | Self::Syscall { .. }
            | Self::Proc { .. }
            | Self::Rseq { .. } => exit::ERROR,
        }
    }
}

fn io_err(pid: u32, what: impl Into<String>) -> impl FnOnce(io::Error) -> HoldError {
    let what = what.into();
    move |source| HoldError::Io { pid, what, source }
}

fn sys_err(
    pid: u32,
    what: impl Into<String>,
) -> impl FnOnce(crate::sys::SyscallError) -> HoldError {
    let what = what.into();
    move |source| HoldError::Syscall { pid, what, source }
}

/// Whether `pid` runs again with its memory still being given back (a
/// lazy refill under way, or waiting for an agent).
pub fn refilling(pid: u32) -> bool {
    HeldRecord::find(pid)
        .ok()
        .flatten()
        .is_some_and(|r| r.refill.is_some())
}

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

/// Test hook: sleeps as many milliseconds as the daemon's environment
/// variable `var` says (`SUSPEND_FAULT_HOLD_DELAY_MS`: with one thread
/// parked and the others waiting in the trampoline, so a test can kill
/// the daemon right then).
fn fault_pause(var: &str) {
    if let Some(ms) = std::env::var(var).ok().and_then(|v| v.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Checks that every thread's seccomp filters let it wait in the park
/// loop (`pause`): held, the filters are in force. Filters can only be
/// read from a stopped thread, so this comes once frozen.
fn parks_allowed(pid: u32, frozen: &Frozen<'_>, site: &Site) -> Result<(), HoldError> {
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
            for vma in vmas.iter().filter(|v| releasable(v.kind())) {
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

/// Whether a mapping's memory is the process's own and saved in the image
/// (private), so it may be released while held and written back after.
fn releasable(kind: MappingKind) -> bool {
    matches!(kind, MappingKind::Anonymous | MappingKind::PrivateFile)
}

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

/// The mappings of `pid` (`/proc/PID/maps`).
fn vmas_of(pid: u32) -> Result<Vec<vmas::Vma>, HoldError> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(io_err(pid, "reading /proc/PID/maps"))?;
    vmas::parse(&maps).ok_or(HoldError::Proc {
        pid,
        what: "/proc/PID/maps not understood".into(),
    })
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

    /// Every variant, the exit code of a command that fails with it, and
    /// its message.
    fn every_error() -> Vec<(HoldError, u8, &'static str)> {
        use HoldError as E;
        let (pid, tid) = (7, 8);
        vec![
            (
                E::Inject(InjectError::Trampoline { pid }),
                exit::ERROR,
                "pid 7: its client block has no trampoline, or not this agent's (client library \
                 of another version?)",
            ),
            (
                E::Ptrace {
                    pid,
                    tid,
                    call: "PTRACE_SEIZE",
                    source: Errno::EPERM,
                },
                exit::ERROR,
                "pid 7: thread 8: PTRACE_SEIZE: EPERM: Operation not permitted",
            ),
            (
                E::Io {
                    pid,
                    what: "opening /proc/PID/mem".into(),
                    source: io::Error::from_raw_os_error(libc::EACCES),
                },
                exit::ERROR,
                "pid 7: opening /proc/PID/mem: Permission denied (os error 13)",
            ),
            (
                E::Syscall {
                    pid,
                    what: "its userfaultfd".into(),
                    source: crate::sys::SyscallError::of("UFFDIO_API")(
                        io::Error::from_raw_os_error(libc::EINVAL),
                    ),
                },
                exit::ERROR,
                "pid 7: its userfaultfd: UFFDIO_API: Invalid argument (os error 22)",
            ),
            (
                E::Proc {
                    pid,
                    what: "no client block in /proc/PID/maps".into(),
                },
                exit::ERROR,
                "pid 7: no client block in /proc/PID/maps",
            ),
            (
                E::Rseq {
                    pid,
                    tid,
                    op: "unregister",
                    source: Errno::EINVAL,
                },
                exit::ERROR,
                "pid 7: thread 8: rseq(unregister): EINVAL: Invalid argument",
            ),
            (
                E::NotHeld {
                    pid,
                    why: "its threads are [7, 9], the image's [7, 8]".into(),
                },
                exit::BAD_IMAGE,
                "pid 7 is not held as its record says: its threads are [7, 9], the image's [7, 8]",
            ),
            (
                E::Pages {
                    pid,
                    what: "mapping 0x1000: run 2 does not match its hash".into(),
                },
                exit::BAD_IMAGE,
                "pid 7: mapping 0x1000: run 2 does not match its hash",
            ),
            (
                E::Refused {
                    pid,
                    what: "thread 8's seccomp filters do not allow pause(2)".into(),
                },
                exit::UNSUPPORTED,
                "pid 7 cannot be held: thread 8's seccomp filters do not allow pause(2)",
            ),
        ]
    }

    #[test]
    fn every_hold_error_knows_its_exit_code_and_says_it_as_before() {
        for (error, code, message) in every_error() {
            assert_eq!(error.exit_code(), code, "{error}");
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn only_private_memory_is_released() {
        assert!(releasable(MappingKind::Anonymous));
        assert!(releasable(MappingKind::PrivateFile));
        assert!(!releasable(MappingKind::SharedAnonymous));
        assert!(!releasable(MappingKind::SharedFile));
        assert!(!releasable(MappingKind::Kernel));
    }
}
