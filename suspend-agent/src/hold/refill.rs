//! Serving a resumed held process's memory from its image while it runs
//! (`suspend-agent refill PID`, started by `resume`): each page a thread
//! waits for is served first (the whole saved run it is in, at most 1 MiB),
//! everything else is copied in behind it, then the ranges are unregistered
//! and the process's own userfaultfd closed (one of its threads borrowed
//! for a `close`, as at suspend), its events still read meanwhile: a fork
//! waits until its event is read, and the thread borrowed may be forking.
//!
//! What the process does to its memory map meanwhile comes as events, and
//! is never undone by a late copy: a range it discarded (`MADV_DONTNEED`,
//! `munmap`) is not filled from the image, a range it moved (`mremap`) is
//! served at its new address, and a child it forked gets the pages still
//! missing in it (its memory is served first; the child never holds its
//! own userfaultfd, so a refill cut short then loses the child's missing
//! pages — the one window a killed agent is not harmless in, logged).
//!
//! Every event is written to the refill journal before anything else is
//! done, between two marks (`r` before each read, `k` after it): the next
//! agent replays it on the image's runs and finishes the refill exactly.
//! Cut short inside a read (the last mark an `r`), it cannot know whether
//! an event was lost: it kills the process with a log line, as it does
//! when a run of the image no longer matches its hash — a process is never
//! handed a page it did not have.

use std::{
    collections::{BTreeMap, VecDeque},
    fs,
    io::{self, BufRead as _, Write as _},
    os::fd::{AsFd as _, OwnedFd},
    time::{Duration, Instant},
};

use log::{info, warn};

use super::{
    HeldRecord, HoldError, io_err,
    lazy::{self, Chunk, Pages},
    record, site, sys_err,
};
use crate::{
    image::{Image, format::PAGE_SIZE},
    sys::{
        PidFd,
        uffd::{self, Filled, Msg},
    },
    tracee::{
        inject::Borrowed,
        ptrace::{self, Stop},
    },
};

/// What a refill did.
#[derive(Debug, Default)]
pub struct Served {
    pub pages: u64,
    pub faults: u64,
    pub children: u64,
    pub took: Duration,
    /// It was finished after another agent was cut short.
    pub recovered: bool,
}

/// The memory of one process being served.
struct Mm {
    uffd: OwnedFd,
    /// Still to be copied, by address.
    chunks: BTreeMap<u64, Chunk>,
    /// Registered ranges.
    ranges: Vec<(u64, u64)>,
    /// A child forked meanwhile.
    child: bool,
}

impl Mm {
    /// Drops what is still to be copied in `[start, end)`.
    fn cut(&mut self, start: u64, end: u64) {
        let hit: Vec<Chunk> = self
            .chunks
            .values()
            .filter(|c| c.within(start, end).is_some())
            .copied()
            .collect();
        for c in hit {
            self.chunks.remove(&c.addr);
            for part in [c.within(c.addr, start), c.within(end, c.end())]
                .into_iter()
                .flatten()
            {
                self.chunks.insert(part.addr, part);
            }
        }
    }

    /// Moves what is still to be copied in `[from, from+len)` to `to`.
    fn moved(&mut self, from: u64, to: u64, len: u64) {
        let end = from + len;
        let inside: Vec<Chunk> = self
            .chunks
            .values()
            .filter_map(|c| c.within(from, end))
            .collect();
        self.cut(from, end);
        for mut c in inside {
            c.addr = c.addr - from + to;
            self.chunks.insert(c.addr, c);
        }
        for r in &mut self.ranges {
            if r.0 >= from && r.1 <= end {
                *r = (r.0 - from + to, r.1 - from + to);
            }
        }
    }

    fn unmapped(&mut self, start: u64, end: u64) {
        self.cut(start, end);
        self.ranges = std::mem::take(&mut self.ranges)
            .into_iter()
            .flat_map(|(s, e)| {
                [(s, e.min(start)), (s.max(end), e)]
                    .into_iter()
                    .filter(|(a, b)| a < b)
            })
            .collect();
    }

    fn chunk_at(&self, addr: u64) -> Option<Chunk> {
        self.chunks
            .range(..=addr)
            .next_back()
            .map(|(_, c)| *c)
            .filter(|c| c.end() > addr)
    }

    fn registered(&self, addr: u64) -> bool {
        self.ranges.iter().any(|&(s, e)| (s..e).contains(&addr))
    }
}

/// The refill journal, locked while this agent serves.
struct Journal {
    file: fs::File,
}

impl Journal {
    /// Opens and locks it; `None` if another agent holds it (it serves).
    fn open(pid: u32) -> Result<Option<(Self, Vec<String>)>, HoldError> {
        let path = record::journal_path(pid);
        let file = fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_err(pid, format!("opening {}", path.display())))?;
        if !crate::sys::try_lock(&file) {
            return Ok(None);
        }
        let lines = io::BufReader::new(&file)
            .lines()
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_err(pid, format!("reading {}", path.display())))?;
        Ok(Some((Self { file }, lines)))
    }

    fn note(&mut self, line: &str) -> Result<(), HoldError> {
        self.file
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|source| HoldError::Io {
                pid: 0,
                what: "writing the refill journal".into(),
                source,
            })
    }
}

/// Whether another agent serves `pid` now.
pub fn being_served(pid: u32) -> bool {
    fs::File::open(record::journal_path(pid)).is_ok_and(|f| !crate::sys::try_lock(&f))
}

/// Replays journal `lines` on `mm`. Returns the number of children forked
/// whose serving was cut short, or an error if the journal ends inside a
/// read (an event may be lost).
fn replay(mm: &mut Mm, lines: &[String]) -> Result<u64, String> {
    let mut open_read = false;
    let mut children = 0u64;
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| {
            words
                .get(i)
                .and_then(|w| u64::from_str_radix(w, 16).ok())
                .ok_or_else(|| format!("the refill journal line {line:?} is not understood"))
        };
        match words.first().copied() {
            Some("r") => open_read = true,
            Some("k") => open_read = false,
            Some("remove") => mm.cut(n(1)?, n(2)?),
            Some("unmap") => mm.unmapped(n(1)?, n(2)?),
            Some("remap") => mm.moved(n(1)?, n(2)?, n(3)?),
            Some("fork") => children += 1,
            Some("child-done") => children = children.saturating_sub(1),
            _ => {
                return Err(format!(
                    "the refill journal line {line:?} is not understood"
                ));
            }
        }
    }
    if open_read {
        return Err(
            "the agent serving it was killed while reading its events: one may be lost".into(),
        );
    }
    Ok(children)
}

/// Test hook: a refill that serves only faults for as many milliseconds as
/// `SUSPEND_FAULT_REFILL_DELAY_MS` says before it copies anything else.
fn prefetch_delay() -> Duration {
    std::env::var("SUSPEND_FAULT_REFILL_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::ZERO, Duration::from_millis)
}

/// Serves held process `record.pid`, resumed lazily from `image`, until
/// every saved page is back. `Ok(None)`: another agent serves it.
pub fn serve(image: &Image, record: &HeldRecord) -> Result<Option<Served>, HoldError> {
    let started = Instant::now();
    let pid = record.pid;
    let Some(refill) = &record.refill else {
        return Err(HoldError::NotHeld {
            pid,
            why: "it is not being refilled".into(),
        });
    };
    let Some((mut journal, lines)) = Journal::open(pid)? else {
        return Ok(None);
    };
    let pidfd = PidFd::open(pid).map_err(sys_err(pid, "the held process"))?;
    if super::meta_hash(&image.dir).ok().as_ref() != Some(&record.meta_blake3) {
        let why = format!(
            "{} is not the image it was held with (its {} changed since)",
            image.dir.display(),
            crate::image::format::META_FILE
        );
        kill(&pidfd, pid, &why);
        record.remove();
        return Err(HoldError::Pages { pid, what: why });
    }
    let fd = pidfd.get_fd(refill.uffd).map_err(sys_err(
        pid,
        format!("its userfaultfd (fd {})", refill.uffd),
    ))?;
    uffd::set_nonblocking(fd.as_fd()).map_err(sys_err(pid, "its userfaultfd"))?;
    log::debug!(
        "pid {pid}: serving through its fd {} ({})",
        refill.uffd,
        fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", refill.uffd))
            .unwrap_or_default()
            .replace('\n', " ")
    );
    let (ranges, chunks) = lazy::plan(image);
    let mut parent = Mm {
        uffd: fd,
        chunks: chunks.into_iter().map(|c| (c.addr, c)).collect(),
        ranges,
        child: false,
    };
    let recovered = !lines.is_empty();
    if recovered {
        match replay(&mut parent, &lines) {
            Ok(0) => info!("pid {pid}: finishing the refill another agent began"),
            Ok(n) => warn!(
                "pid {pid}: finishing the refill another agent began; {n} child(ren) it forked meanwhile may have lost pages still missing in them"
            ),
            Err(why) => {
                kill(&pidfd, pid, &why);
                record.remove();
                return Err(HoldError::Pages { pid, what: why });
            }
        }
    }
    let mut pages = Pages::open(image)?;
    let mut mms = vec![parent];
    let mut served = Served {
        recovered,
        ..Served::default()
    };
    let delay = prefetch_delay();
    let copied = run(
        &mut mms,
        &mut pages,
        &mut journal,
        &mut served,
        started + delay,
        &pidfd,
        &|| true,
    );
    let closed = copied.and_then(|()| {
        for mm in &mms {
            for &(s, e) in &mm.ranges {
                let _ = uffd::unregister(mm.uffd.as_fd(), s, e - s);
            }
        }
        // No fork copies a registered range to a child any more, but one
        // that already did waits in the kernel until its event is read:
        // events are read (and a child so made is served) until the
        // process's own userfaultfd is closed. The close borrows one of its
        // threads, from another thread of ours: the thread borrowed may be
        // in that very fork, and stops only once its event is read.
        std::thread::scope(|scope| {
            let closer = scope.spawn(|| close_in_process(pid, refill.uffd));
            let read = run(
                &mut mms,
                &mut pages,
                &mut journal,
                &mut served,
                Instant::now(),
                &pidfd,
                &|| closer.is_finished(),
            );
            if read.is_err() {
                // A thread waiting in `fork` for its event stops only once
                // it is read, or killed: one that nobody reads any more
                // would keep the close (and us) waiting for ever.
                let deadline = Instant::now() + Duration::from_secs(5);
                while !closer.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if !closer.is_finished() {
                    kill(
                        &pidfd,
                        pid,
                        "its refill failed while a thread of it waited in fork for the refill",
                    );
                }
            }
            match closer.join() {
                Ok(Err(e)) => warn!(
                    "pid {pid}: every page is back, but closing its userfaultfd (fd {}) failed: {e}",
                    refill.uffd
                ),
                Ok(Ok(())) => {}
                Err(_) => warn!("pid {pid}: closing its userfaultfd panicked"),
            }
            read
        })
    });
    match closed {
        Ok(()) => {}
        Err(e @ HoldError::Pages { .. }) => {
            kill(&pidfd, pid, &e.to_string());
            record.remove();
            return Err(e);
        }
        Err(e) => return Err(e),
    }
    drop(mms);
    record.remove();
    served.took = started.elapsed();
    Ok(Some(served))
}

/// The serving loop: events and faults first, then one chunk copied, until
/// nothing is left to copy in any process and `finished()` (until then it
/// waits for events).
fn run(
    mms: &mut Vec<Mm>,
    pages: &mut Pages<'_>,
    journal: &mut Journal,
    served: &mut Served,
    prefetch_from: Instant,
    pidfd: &PidFd,
    finished: &dyn Fn() -> bool,
) -> Result<(), HoldError> {
    let mut faults: VecDeque<(usize, u64)> = VecDeque::new();
    loop {
        for i in 0..mms.len() {
            take_messages(mms, i, journal, &mut faults, served)?;
        }
        // Faults: whoever waits goes first.
        let mut retry = VecDeque::new();
        while let Some((i, page)) = faults.pop_front() {
            if !serve_fault(&mut mms[i], pages, page, served)? {
                retry.push_back((i, page));
            }
        }
        faults = retry;
        if !faults.is_empty() {
            continue;
        }
        // A child done: its ranges go, its userfaultfd closes.
        if let Some(done) = mms.iter().position(|m| m.child && m.chunks.is_empty()) {
            let mm = mms.remove(done);
            for &(s, e) in &mm.ranges {
                let _ = uffd::unregister(mm.uffd.as_fd(), s, e - s);
            }
            journal.note("child-done")?;
            continue;
        }
        if Instant::now() < prefetch_from {
            if !pidfd.is_alive() {
                return Ok(()); // nothing left to serve
            }
            let fds: Vec<_> = mms.iter().map(|m| m.uffd.as_fd()).collect();
            uffd::wait(&fds, 10).map_err(sys_err(0, "its userfaultfds"))?;
            continue;
        }
        // Copy one chunk: a child's first (its memory has no one else).
        let Some(i) = mms
            .iter()
            .position(|m| m.child && !m.chunks.is_empty())
            .or_else(|| (!mms[0].chunks.is_empty()).then_some(0))
        else {
            // Everything copied: a last look for faults on pages never
            // saved, then done (unregistering wakes any waiter).
            let mut left = false;
            for i in 0..mms.len() {
                left |= take_messages(mms, i, journal, &mut faults, served)? > 0;
            }
            if !left {
                if finished() {
                    return Ok(());
                }
                let fds: Vec<_> = mms.iter().map(|m| m.uffd.as_fd()).collect();
                uffd::wait(&fds, 5).map_err(sys_err(0, "its userfaultfds"))?;
            }
            continue;
        };
        let Some((_, &chunk)) = mms[i].chunks.iter().next() else {
            continue;
        };
        fill(&mut mms[i], pages, chunk, served)?;
    }
}

/// Reads the messages waiting on `mms[i]`'s userfaultfd: faults are
/// queued, events applied. Returns how many came.
///
/// Marked in the journal only around a read that returns something (an
/// agent killed while idle leaves a complete journal), and everything a
/// read returned is journaled in one write right after it, before anything
/// else: the window in which a killed agent leaves an event consumed but
/// not journaled (the process's call returned as soon as it was read) is
/// that of one system call. A child's events are not journaled: a child's
/// memory cannot be finished by another agent.
fn take_messages(
    mms: &mut Vec<Mm>,
    i: usize,
    journal: &mut Journal,
    faults: &mut VecDeque<(usize, u64)>,
    served: &mut Served,
) -> Result<usize, HoldError> {
    if !uffd::readable(mms[i].uffd.as_fd()).map_err(sys_err(0, "its userfaultfds"))? {
        return Ok(0);
    }
    if i == 0 {
        journal.note("r")?;
    }
    let msgs = uffd::read_msgs(mms[i].uffd.as_fd()).map_err(sys_err(0, "its userfaultfd"))?;
    if i == 0 {
        let mut lines = String::new();
        for msg in &msgs {
            match msg {
                Msg::Remove { start, end } => lines += &format!("remove {start:x} {end:x}\n"),
                Msg::Unmap { start, end } => lines += &format!("unmap {start:x} {end:x}\n"),
                Msg::Remap { from, to, len } => {
                    lines += &format!("remap {from:x} {to:x} {len:x}\n")
                }
                Msg::Fork { .. } => lines += "fork\n",
                Msg::Fault { .. } | Msg::Other(_) => {}
            }
        }
        lines += "k";
        journal.note(&lines)?;
    }
    let n = msgs.len();
    for msg in msgs {
        log::debug!("mm {i}: {msg:?}");
        match msg {
            Msg::Fault { address } => {
                served.faults += 1;
                faults.push_back((i, address & !(PAGE_SIZE - 1)));
            }
            Msg::Remove { start, end } => mms[i].cut(start, end),
            Msg::Unmap { start, end } => mms[i].unmapped(start, end),
            Msg::Remap { from, to, len } => mms[i].moved(from, to, len),
            Msg::Fork { ufd } => {
                served.children += 1;
                let child = Mm {
                    uffd: ufd,
                    chunks: mms[i].chunks.clone(),
                    ranges: mms[i].ranges.clone(),
                    child: true,
                };
                mms.push(child);
            }
            Msg::Other(kind) => warn!("a userfaultfd event of kind {kind:#x} was ignored"),
        }
    }
    Ok(n)
}

/// Serves the page at `page`; `false` if it must be tried again (the
/// process is changing its memory map: events first).
fn serve_fault(
    mm: &mut Mm,
    pages: &mut Pages<'_>,
    page: u64,
    served: &mut Served,
) -> Result<bool, HoldError> {
    if let Some(chunk) = mm.chunk_at(page) {
        return fill(mm, pages, chunk, served);
    }
    let fd = mm.uffd.as_fd();
    if mm.registered(page) {
        // Not saved (it was never touched, or the process discarded it
        // since): a zero page, as the kernel would give.
        return match uffd::zero(fd, page, PAGE_SIZE).map_err(sys_err(0, "its userfaultfd"))? {
            Filled::Changing { .. } => Ok(false),
            _ => Ok(true),
        };
    }
    let _ = uffd::wake(fd, page, PAGE_SIZE);
    Ok(true)
}

/// Copies `chunk` in; `false` if the process is changing its memory map
/// (the rest stays to be copied after its events).
fn fill(
    mm: &mut Mm,
    pages: &mut Pages<'_>,
    mut chunk: Chunk,
    served: &mut Served,
) -> Result<bool, HoldError> {
    mm.chunks.remove(&chunk.addr);
    loop {
        let bytes = pages.run(chunk.mapping, chunk.run)?;
        let src = &bytes[chunk.skip as usize..(chunk.skip + chunk.len) as usize];
        let outcome =
            uffd::copy(mm.uffd.as_fd(), chunk.addr, src).map_err(sys_err(0, "its userfaultfd"))?;
        let (done, next) = match outcome {
            Filled::All => {
                served.pages += chunk.len / PAGE_SIZE;
                return Ok(true);
            }
            Filled::Gone => return Ok(true),
            Filled::Exists { done } => (done, done + PAGE_SIZE),
            Filled::Changing { done } => (done, done),
        };
        served.pages += done / PAGE_SIZE;
        let rest = chunk.within(chunk.addr + next, chunk.end());
        if let Filled::Changing { .. } = outcome {
            if let Some(rest) = rest {
                mm.chunks.insert(rest.addr, rest);
            }
            return Ok(false);
        }
        match rest {
            Some(rest) => chunk = rest,
            None => return Ok(true),
        }
    }
}

/// Where the agents serving refills log.
pub const LOG: &str = "/run/suspend/refill.log";

/// Starts the agent that serves `pid`'s refill (`suspend-agent refill
/// PID`, in a session of its own, logging to [`LOG`]).
pub fn spawn(pid: u32) -> io::Result<std::process::Child> {
    use std::os::unix::{fs::OpenOptionsExt as _, process::CommandExt as _};
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(LOG)?;
    let mut command = std::process::Command::new("/proc/self/exe");
    command
        .arg("refill")
        .arg(pid.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    // SAFETY: the closure runs between fork and exec: setsid is
    // async-signal-safe and touches no memory.
    unsafe {
        command.pre_exec(|| {
            crate::sys::raw::setsid();
            Ok(())
        })
    };
    command.spawn()
}

/// Kills `pid` (its memory cannot be given back exactly), with a log line
/// here and in the kernel's log.
fn kill(pidfd: &PidFd, pid: u32, why: &str) {
    let line = format!(
        "suspend-agent: pid {pid} was killed while its memory was given back from its image: {why}"
    );
    log::error!("{line}");
    if let Ok(mut kmsg) = fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        let _ = kmsg.write_all(format!("<3>{line}\n").as_bytes());
    }
    let _ = pidfd.send_signal(libc::SIGKILL);
}

/// Kills a process being refilled whose image cannot serve it any more
/// (its record goes too).
pub fn give_up(record: &HeldRecord, why: &str) {
    if let Ok(pidfd) = PidFd::open(record.pid) {
        kill(&pidfd, record.pid, why);
    }
    record.remove();
}

/// Closes fd `fd` (its userfaultfd) in running process `pid`, through one
/// of its threads stopped for it.
fn close_in_process(pid: u32, fd: i32) -> Result<(), HoldError> {
    let link = fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok();
    if link.as_deref() != Some(std::path::Path::new("anon_inode:[userfaultfd]")) {
        return Ok(()); // closed (or the process is gone) already
    }
    let site = site(pid)?;
    let tids = crate::procfs::tids(pid).map_err(|e| HoldError::Proc {
        pid,
        what: e.to_string(),
    })?;
    let tid = tids.iter().copied().find(|&t| t == pid).unwrap_or(tids[0]);
    let err = |call| {
        move |source| HoldError::Ptrace {
            pid,
            tid,
            call,
            source,
        }
    };
    // The resume that started us may still hold the threads (a small
    // refill ends before it lets them go): EPERM until it has.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match ptrace::seize(tid) {
            Ok(()) => break,
            Err(nix::errno::Errno::EPERM) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(err("PTRACE_SEIZE")(e)),
        }
    }
    let outcome = (|| {
        ptrace::interrupt(tid).map_err(err("PTRACE_INTERRUPT"))?;
        let held = match ptrace::wait_stop(tid).map_err(err("waitpid"))? {
            Stop::Interrupted => None,
            Stop::Signal(s) => Some(s),
            Stop::Exited => return Ok(None),
        };
        let mut b = Borrowed::new(tid, site, held)?;
        let ret = b.syscall(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0])?;
        if ret < 0 {
            warn!(
                "pid {pid}: close({fd}) of its userfaultfd: {}",
                nix::errno::Errno::from_raw(-ret as i32)
            );
        }
        Ok(b.restore()?)
    })();
    let signal = match &outcome {
        Ok(s) => *s,
        Err(_) => None,
    };
    if let Err(e) = ptrace::detach(tid, signal) {
        log::debug!("letting thread {tid} go: {e}");
    }
    outcome.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mm(chunks: &[(u64, u64)]) -> Mm {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        Mm {
            uffd: a.into(),
            chunks: chunks
                .iter()
                .enumerate()
                .map(|(i, &(addr, len))| {
                    (
                        addr,
                        Chunk {
                            addr,
                            len,
                            mapping: 0,
                            run: i,
                            skip: 0,
                        },
                    )
                })
                .collect(),
            ranges: vec![(0x10000, 0x40000)],
            child: false,
        }
    }

    fn spans(m: &Mm) -> Vec<(u64, u64, u64)> {
        m.chunks.values().map(|c| (c.addr, c.len, c.skip)).collect()
    }

    #[test]
    fn a_discarded_range_is_never_filled() {
        let mut m = mm(&[(0x10000, 0x4000), (0x20000, 0x2000)]);
        m.cut(0x11000, 0x13000);
        assert_eq!(
            spans(&m),
            vec![
                (0x10000, 0x1000, 0),
                (0x13000, 0x1000, 0x3000),
                (0x20000, 0x2000, 0)
            ]
        );
        assert_eq!(m.chunk_at(0x12000), None);
        assert_eq!(m.chunk_at(0x13fff).map(|c| c.skip), Some(0x3000));
    }

    #[test]
    fn a_moved_range_is_served_at_its_new_address() {
        let mut m = mm(&[(0x10000, 0x4000)]);
        m.moved(0x12000, 0x80000, 0x2000);
        assert_eq!(
            spans(&m),
            vec![(0x10000, 0x2000, 0), (0x80000, 0x2000, 0x2000)]
        );
        let mut whole = mm(&[(0x10000, 0x4000)]);
        whole.moved(0x10000, 0x90000, 0x30000);
        assert_eq!(whole.ranges, vec![(0x90000, 0xc0000)]);
    }

    #[test]
    fn the_journal_replays_and_a_read_cut_short_is_refused() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut m = mm(&[(0x10000, 0x4000)]);
        assert_eq!(
            replay(
                &mut m,
                &lines(&["r", "k", "r", "remove 10000 11000", "k", "r", "k"])
            ),
            Ok(0)
        );
        assert_eq!(m.chunk_at(0x10000), None);
        assert!(m.chunk_at(0x11000).is_some());
        let mut m = mm(&[(0x10000, 0x4000)]);
        assert!(replay(&mut m, &lines(&["r", "k", "r"])).is_err());
        let mut m = mm(&[(0x10000, 0x4000)]);
        assert_eq!(replay(&mut m, &lines(&["r", "fork", "k"])), Ok(1));
        m.unmapped(0x10000, 0x20000);
        assert_eq!(m.ranges, vec![(0x20000, 0x40000)]);
        assert!(m.chunks.is_empty());
    }
}
