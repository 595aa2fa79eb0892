//! Pre-copy for a suspend that lets the process run on (`--leave-running`):
//! its private anonymous memory is copied while it runs; the freeze then
//! copies only what it wrote since.
//!
//! What was written is told by the kernel's asynchronous write-protection
//! (`UFFD_FEATURE_WP_ASYNC` and `PAGEMAP_SCAN`, Linux 6.7): the process
//! makes a userfaultfd (through its main thread, during a first short
//! freeze, [`crate::tracee::uffd`]), the agent keeps the only copy of it,
//! registers the process's private anonymous mappings for write-protection
//! and protects every page, and lets it go. A write to a protected page
//! only lifts its protection, in the kernel, with no message and no wait,
//! and `PAGEMAP_SCAN` shows it as written from then on. A page the process
//! discarded since (`MADV_DONTNEED`) shows as written too, and is present
//! no more.
//!
//! Then every page is copied to its own place in the page file (its
//! *slot*) while the process runs. At the freeze ([`Precopy::place`]), the
//! dump plans as always (the pages present now); a planned page whose
//! mapping is still registered, that was never written since the
//! protection and that has a slot keeps it and is not copied again; every
//! other page is copied, into its slot or a new one at the end of the file.
//! A mapping made, moved (`mremap` drops the registration) or replaced
//! since the first freeze is not registered, and is copied whole.
//!
//! One round, never protected again: a page written once is copied at the
//! freeze, whatever the rounds could have copied. Rounds that protect the
//! written pages again and copy them while the process runs would leave
//! the freeze less to copy, but a page the kernel writes through a pin
//! taken before such a protection (a direct I/O read in flight: the pin's
//! own fault is what shows it written) would then keep the stale copy with
//! nothing to tell. Once written, a page stays written here, so a write
//! through a short pin (taken after the first freeze, when no system call
//! is in flight) is always copied at the freeze. A long pin taken before
//! it (an io_uring fixed buffer, an AIO ring's transfer, a device's DMA)
//! writes with no fault at all: a process with an io_uring, an AIO ring,
//! a file open with `O_DIRECT` or a descriptor of a device or an anonymous
//! inode not made again is not pre-copied (looked at when it starts and
//! again at the freeze, [`reason_not`]).
//!
//! Not pre-copied either (one freeze copies everything, as without it): a
//! kernel without asynchronous write-protection (before 6.7; soft-dirty is
//! not used yet), and a process that uses userfaultfd itself (its own
//! registration would fail with `EBUSY` while the agent's holds). A
//! mapping much larger than what it holds (a reservation, a sanitizer's
//! shadow) is not registered: protecting the pages it does not have
//! would make the kernel fill in page tables for all of it. The agent's
//! userfaultfd is closed when the suspend ends, which lifts every
//! registration and protection: the process keeps nothing of it.

use std::{
    collections::BTreeMap,
    fs::File,
    os::fd::{AsFd as _, OwnedFd},
    time::{Duration, Instant},
};

use super::{
    DumpError,
    memory::{Memory, Place, Plan, Planned, Sink},
};
use crate::{
    freeze::Frozen,
    image::{
        ImageWriter,
        format::{MAX_RUN_PAGES, MappingKind, PAGE_SIZE},
    },
    procfs::vmas::{self, Vma},
    state::{io_uring, mappings},
    sys::{
        SyscallError,
        pagemap::{self, Ask},
        uffd,
    },
    tracee::{
        inject::{Borrowed, InjectError, Site},
        uffd::MakeError,
    },
};

/// A mapping up to this long is registered whatever it holds; a longer
/// one only if it holds at least a quarter of its length.
const SMALL_MAPPING: u64 = 64 << 20;

/// Why a pre-copy could not start or go on (the suspend goes on without
/// it: one freeze copies everything).
#[derive(Debug, thiserror::Error)]
pub enum PrecopyError {
    #[error(transparent)]
    Inject(#[from] InjectError),
    #[error(transparent)]
    Make(#[from] MakeError),
    #[error(transparent)]
    Sys(#[from] SyscallError),
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error("{0}")]
    Skipped(String),
}

/// Whether this kernel can tell the pages a running process writes.
pub fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(uffd::wp_async)
}

/// The copy made while the process ran.
#[derive(Clone, Copy, Debug)]
pub struct Round {
    pub bytes: u64,
    pub took: Duration,
}

/// A registered mapping (as it was at the first freeze) and its slots.
struct Tracked {
    start: u64,
    end: u64,
    readable: bool,
    /// Pages with a slot: first page (from `start`) → (pages, place).
    slots: BTreeMap<u64, (u64, u64)>,
    /// One bit per page: its slot holds what it held when last protected.
    valid: Vec<u64>,
}

impl Tracked {
    fn new(vma: &Vma) -> Self {
        let pages = vma.pages();
        Self {
            start: vma.start,
            end: vma.end,
            readable: vma.readable(),
            slots: BTreeMap::new(),
            valid: vec![0; pages.div_ceil(64) as usize],
        }
    }

    fn is_valid(&self, page: u64) -> bool {
        self.valid[(page / 64) as usize] & (1 << (page % 64)) != 0
    }

    fn set_valid(&mut self, page: u64, valid: bool) {
        let (word, bit) = ((page / 64) as usize, 1u64 << (page % 64));
        if valid {
            self.valid[word] |= bit;
        } else {
            self.valid[word] &= !bit;
        }
    }

    /// The place of page `page`'s slot, if it has one.
    #[cfg(test)]
    fn slot(&self, page: u64) -> Option<u64> {
        let (&first, &(pages, at)) = self.slots.range(..=page).next_back()?;
        (page < first + pages).then(|| at + (page - first) * PAGE_SIZE)
    }
}

/// A process being pre-copied: the agent's copy of its userfaultfd, and
/// where each page it copied went.
pub struct Precopy {
    pid: u32,
    /// Kept open, never read: the registrations and protections last as
    /// long as it does.
    _uffd: OwnedFd,
    pagemap: File,
    tracked: Vec<Tracked>,
    /// The page file's length so far: every slot lies below it.
    end: u64,
    pub round: Option<Round>,
    /// Bytes the freeze copied ([`Precopy::place`]).
    at_freeze: Option<u64>,
    /// Why the freeze did not use the pre-copy, if it did not.
    given_up: Option<String>,
}

/// Anonymous inodes a process may have open that the kernel never
/// writes its memory through.
const HARMLESS_ANON: &[&str] = &[
    "anon_inode:[eventfd]",
    "anon_inode:[signalfd]",
    "anon_inode:[timerfd]",
    "anon_inode:inotify",
    "anon_inode:[eventpoll]",
    "anon_inode:[pidfd]",
];

/// Devices a process may have open that never write its memory but
/// through its own calls: the memory-like ones and terminals (the console
/// too: a process started at boot, or in a vm-test guest, has it as its
/// stdio).
fn harmless_device(path: &str) -> bool {
    matches!(
        path,
        "/dev/null"
            | "/dev/zero"
            | "/dev/full"
            | "/dev/random"
            | "/dev/urandom"
            | "/dev/tty"
            | "/dev/console"
            | "/dev/ptmx"
    ) || path.starts_with("/dev/pts/")
        || path.starts_with("/dev/tty")
}

/// Whether `path` (an fd's `/proc` link) is a device.
fn is_device(path: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    std::fs::metadata(path).is_ok_and(|m| {
        let t = m.file_type();
        t.is_char_device() || t.is_block_device()
    })
}

/// Why `pid` is not pre-copied, if it is not: what lets the kernel write
/// its memory without a fault the write-protection would see (an
/// io_uring, one only registered too as the task iterator shows it, or
/// one it cannot tell of; an AIO ring, a file open with `O_DIRECT`, a device or an
/// anonymous inode of another kind), or its own use of userfaultfd.
pub fn reason_not(pid: u32) -> Option<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    if maps.lines().any(|l| l.contains("/[aio]")) {
        return Some("it has an AIO ring".into());
    }
    if maps.lines().any(|l| l.contains("[io_uring]")) {
        return Some("it has an io_uring".into());
    }
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.starts_with("iou-") {
                return Some(format!("it has an io_uring (thread {})", comm.trim()));
            }
        }
    }
    // A ring only registered shows nowhere in /proc.
    match crate::tasks::of_process(pid) {
        Ok(threads) => match io_uring::holder(&threads) {
            Some((tid, Some(_))) => {
                return Some(format!("it has an io_uring (thread {tid}'s, registered)"));
            }
            Some((tid, None)) => {
                return Some(format!(
                    "whether it has an io_uring could not be told (thread {tid})"
                ));
            }
            None => {}
        },
        Err(e) => {
            return Some(format!("whether it has an io_uring could not be told: {e}"));
        }
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    for fd in fds.flatten() {
        let name = fd.file_name().to_string_lossy().into_owned();
        let target = std::fs::read_link(fd.path())
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default();
        if target == "anon_inode:[userfaultfd]" {
            return Some("it uses userfaultfd itself".into());
        }
        if target.starts_with("anon_inode:") && !HARMLESS_ANON.contains(&target.as_str()) {
            return Some(format!("fd {name} is {target}"));
        }
        if is_device(&fd.path()) && !harmless_device(&target) {
            return Some(format!("fd {name} is the device {target}"));
        }
        let info =
            std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{name}")).unwrap_or_default();
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u64::from_str_radix(f.trim(), 8).ok())
            .unwrap_or(0);
        if flags & libc::O_DIRECT as u64 != 0 {
            return Some(format!("fd {name} is open with O_DIRECT"));
        }
    }
    None
}

impl Precopy {
    /// Starts tracking the writes of `frozen` (frozen: its main thread
    /// makes the userfaultfd, closed there again before it is let go).
    pub fn start(frozen: &mut Frozen<'_>) -> Result<Self, PrecopyError> {
        let pid = frozen.pid();
        if let Some(why) = reason_not(pid) {
            return Err(PrecopyError::Skipped(why));
        }
        let Some(&main) = frozen.threads().iter().find(|t| t.tid == pid) else {
            return Err(PrecopyError::Skipped("its main thread has exited".into()));
        };
        let block = crate::procfs::client_block_addr(pid)
            .ok()
            .flatten()
            .ok_or_else(|| PrecopyError::Skipped("no client block in /proc/PID/maps".into()))?;
        let site = Site::find(pid, block)?;
        let mut b = Borrowed::new(main.tid, site, main.stopped_with)?;
        let made = crate::tracee::uffd::make(pid, &mut b, &site, crate::tracee::uffd::high_fd(pid));
        // Its own copy is closed again: only the agent's stays.
        let closed = match &made {
            Ok((there, _)) => b
                .syscall(libc::SYS_close, [*there as u64, 0, 0, 0, 0, 0])
                .map(|_| ()),
            Err(_) => Ok(()),
        };
        let held = b.restore()?;
        frozen.set_stopped_with(main.tid, held);
        site.clear()?;
        closed?;
        let (_, uffd) = made?;
        uffd::api_with(
            uffd.as_fd(),
            uffd::FEATURE_WP_ASYNC | uffd::FEATURE_WP_UNPOPULATED,
        )?;
        let pagemap =
            File::open(format!("/proc/{pid}/pagemap")).map_err(|source| DumpError::Proc {
                pid,
                path: format!("/proc/{pid}/pagemap").into(),
                source,
            })?;
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|source| {
            DumpError::Proc {
                pid,
                path: format!("/proc/{pid}/maps").into(),
                source,
            }
        })?;
        let mut tracked = Vec::new();
        for vma in vmas::parse(&maps).unwrap_or_default() {
            if mappings::kind(&vma) != MappingKind::Anonymous || !vma.readable() {
                continue;
            }
            let len = vma.end - vma.start;
            // A long mapping that holds little is left alone: protecting
            // the pages it does not have would fill in page tables for
            // all of it (2 MiB a GiB). Copied at the freeze.
            if len > SMALL_MAPPING && bytes_held(&pagemap, &vma)? < len / 4 {
                continue;
            }
            // A mapping that cannot be registered (the kernel's rules
            // for it) is copied at the freeze, as without a pre-copy.
            if uffd::register_wp(uffd.as_fd(), vma.start, len).is_err() {
                continue;
            }
            uffd::write_protect(uffd.as_fd(), vma.start, len, true)?;
            tracked.push(Tracked::new(&vma));
        }
        Ok(Self {
            pid,
            _uffd: uffd,
            pagemap,
            tracked,
            end: 0,
            round: None,
            at_freeze: None,
            given_up: None,
        })
    }

    /// Bytes of memory tracked (the registered mappings' length).
    pub fn tracked_bytes(&self) -> u64 {
        self.tracked.iter().map(|t| t.end - t.start).sum()
    }

    /// Copies, while the process runs, every page it has into `image`'s
    /// page file (each page its slot). `progress` is told how long it took.
    pub fn run(
        &mut self,
        image: &mut ImageWriter,
        progress: &dyn Fn(String),
    ) -> Result<(), PrecopyError> {
        let memory = Memory::open(self.pid)?;
        let started = Instant::now();
        let plan = self.first_round(&memory)?;
        let bytes: u64 = plan
            .mappings
            .iter()
            .flat_map(|m| &m.runs)
            .map(|r| r.1 * PAGE_SIZE)
            .sum();
        if bytes > 0 {
            let area = image.page_area(self.end).map_err(DumpError::from)?;
            memory.copy(&plan, Sink::Area(area), &mut |_| Ok(()))?;
        }
        let round = Round {
            bytes,
            took: started.elapsed(),
        };
        progress(format!(
            "pid {}: pre-copied {:.1} MiB in {:.0} ms while it ran",
            self.pid,
            bytes as f64 / (1 << 20) as f64,
            round.took.as_secs_f64() * 1000.0
        ));
        self.round = Some(round);
        Ok(())
    }

    /// Every present page of the tracked mappings, each given a slot.
    fn first_round(&mut self, memory: &Memory) -> Result<Plan, PrecopyError> {
        let mut mappings = Vec::new();
        for t in &mut self.tracked {
            let vma = Vma {
                start: t.start,
                end: t.end,
                ..Vma::default()
            };
            let runs = memory.runs(&vma, mappings::anonymous_page_saved)?;
            let mut places = Vec::with_capacity(runs.len());
            for &(first, pages) in &runs {
                t.slots.insert(first, (pages, self.end));
                places.push(Place {
                    at: self.end,
                    copy: true,
                });
                self.end += pages * PAGE_SIZE;
                for page in first..first + pages {
                    t.set_valid(page, true);
                }
            }
            mappings.push(Planned::placed(t.start, t.readable, runs, places));
        }
        Ok(Plan::placed(mappings, self.end))
    }

    /// Places `plan` (the freeze's, of `vmas`: every mapping in order)
    /// in the page file: a page of a mapping still registered, not written
    /// since it was last protected and with a valid slot keeps its slot and
    /// is not copied again; every other page is copied, into its slot or
    /// a new one past the end; mappings not tracked follow. Returns the
    /// bytes the freeze copies.
    /// `None`, the plan left as it is (everything copied), where the
    /// process now has what lets the kernel write its memory unseen
    /// ([`reason_not`]).
    pub fn place(&mut self, plan: &mut Plan, vmas: &[Vma]) -> Result<Option<u64>, PrecopyError> {
        if let Some(why) = reason_not(self.pid) {
            self.given_up = Some(why);
            return Ok(None);
        }
        let mut copied = 0;
        for (planned, vma) in plan.mappings.iter_mut().zip(vmas) {
            let tracked = self
                .tracked
                .iter_mut()
                .find(|t| t.start <= vma.start && vma.end <= t.end);
            let runs = std::mem::take(&mut planned.runs);
            let (runs, places) = match tracked {
                Some(t) if mappings::kind(vma) == MappingKind::Anonymous => {
                    // Registered and not written since: the only pages that
                    // may keep what the pre-copy copied (regions in address
                    // order, the planned pages too).
                    let mut clean = Vec::new();
                    let ask = Ask {
                        flags: 0,
                        all_of: pagemap::IS_WPALLOWED,
                        any_of: 0,
                        report: pagemap::IS_WRITTEN,
                    };
                    pagemap::scan(self.pagemap.as_fd(), vma.start, vma.end, ask, &mut clean)?;
                    clean.retain(|r| r.categories & pagemap::IS_WRITTEN == 0);
                    let offset = (vma.start - t.start) / PAGE_SIZE;
                    let pages: Vec<u64> = runs
                        .iter()
                        .flat_map(|&(first, n)| first + offset..first + offset + n)
                        .collect();
                    let mut regions = clean.iter().peekable();
                    let keep: Vec<bool> = pages
                        .iter()
                        .map(|&page| {
                            let addr = t.start + page * PAGE_SIZE;
                            while regions.next_if(|r| r.end <= addr).is_some() {}
                            t.is_valid(page) && regions.peek().is_some_and(|r| r.start <= addr)
                        })
                        .collect();
                    let mut k = keep.iter();
                    let (runs, places) =
                        place_pages(t, &pages, &mut self.end, |_| !*k.next().unwrap_or(&false));
                    // Runs are the mapping's own, from its first page.
                    let runs = runs.into_iter().map(|(p, n)| (p - offset, n)).collect();
                    (runs, places)
                }
                _ => {
                    let mut places = Vec::with_capacity(runs.len());
                    for &(_, pages) in &runs {
                        places.push(Place {
                            at: self.end,
                            copy: true,
                        });
                        self.end += pages * PAGE_SIZE;
                    }
                    (runs, places)
                }
            };
            copied += runs
                .iter()
                .zip(&places)
                .filter(|(_, p)| p.copy)
                .map(|(r, _)| r.1 * PAGE_SIZE)
                .sum::<u64>();
            planned.runs = runs;
            planned.placed = Some(places);
        }
        plan.bytes = self.end;
        self.at_freeze = Some(copied);
        Ok(Some(copied))
    }

    /// How the memory was copied, for a summary.
    pub fn summary(&self) -> String {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        if let Some(why) = &self.given_up {
            return format!("copied in one freeze (the pre-copy was not used: now {why})");
        }
        format!(
            "pre-copied while it ran ({:.1} MiB; userfaultfd write-protect), then {:.1} MiB \
             it wrote since copied frozen",
            mib(self.round.map_or(0, |r| r.bytes)),
            mib(self.at_freeze.unwrap_or(0))
        )
    }
}

/// The bytes `vma` of the process whose pagemap is `pagemap` holds
/// (present or swapped out), before anything is protected.
fn bytes_held(pagemap: &File, vma: &Vma) -> Result<u64, PrecopyError> {
    let mut regions = Vec::new();
    let ask = Ask {
        flags: 0,
        all_of: 0,
        any_of: pagemap::IS_PRESENT | pagemap::IS_SWAPPED,
        report: 0,
    };
    pagemap::scan(pagemap.as_fd(), vma.start, vma.end, ask, &mut regions)?;
    Ok(regions.iter().map(|r| r.end - r.start).sum())
}

/// Runs of `pages` (ascending page numbers of `t`) split where their
/// slots do not follow each other, where `copy` changes, and at
/// [`MAX_RUN_PAGES`]; a page with no slot gets one at `end`. `copy` says,
/// in order, whether each page is copied now.
fn place_pages(
    t: &mut Tracked,
    pages: &[u64],
    end: &mut u64,
    mut copy: impl FnMut(u64) -> bool,
) -> (Vec<(u64, u64)>, Vec<Place>) {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut places: Vec<Place> = Vec::new();
    // The slot the last page was in (first page, pages, place): the pages
    // come in order, so most are in the same one as the page before.
    let mut current: Option<(u64, u64, u64)> = None;
    let mut last: Option<u64> = None;
    for &page in pages {
        // A page listed twice (or out of order) would be given two runs
        // in one place: only the first is kept.
        if last.is_some_and(|l| page <= l) {
            log::warn!("pre-copy: page {page} listed after page {last:?}: left out");
            continue;
        }
        last = Some(page);
        let in_current = current
            .filter(|&(first, n, _)| first <= page && page < first + n)
            .map(|(first, _, at)| at + (page - first) * PAGE_SIZE);
        let found = in_current.or_else(|| {
            let (&first, &(n, at)) = t.slots.range(..=page).next_back()?;
            current = Some((first, n, at));
            (page < first + n).then(|| at + (page - first) * PAGE_SIZE)
        });
        let at = match found {
            Some(at) => at,
            None => {
                current = None;
                // A new slot: grows the last one when it ends right here.
                let at = *end;
                *end += PAGE_SIZE;
                match t.slots.range_mut(..page).next_back() {
                    Some((&first, (n, slot_at)))
                        if first + *n == page && *slot_at + *n * PAGE_SIZE == at =>
                    {
                        *n += 1
                    }
                    _ => {
                        t.slots.insert(page, (1, at));
                    }
                }
                at
            }
        };
        let now = copy(page);
        match (runs.last_mut(), places.last()) {
            (Some((first, n)), Some(place))
                if *first + *n == page
                    && place.at + *n * PAGE_SIZE == at
                    && place.copy == now
                    && *n < MAX_RUN_PAGES =>
            {
                *n += 1
            }
            _ => {
                runs.push((page, 1));
                places.push(Place { at, copy: now });
            }
        }
    }
    (runs, places)
}

#[cfg(test)]
mod tests {

    #[test]
    fn terminals_and_the_console_do_not_stop_a_pre_copy() {
        for path in [
            "/dev/console",
            "/dev/pts/3",
            "/dev/ttyS0",
            "/dev/null",
            "/dev/ptmx",
        ] {
            assert!(super::harmless_device(path), "{path}");
        }
        for path in ["/dev/sda", "/dev/dri/card0", "/dev/vfio/1", "/dev/fuse"] {
            assert!(!super::harmless_device(path), "{path}");
        }
    }
    use super::*;

    fn tracked(pages: u64) -> Tracked {
        Tracked::new(&Vma {
            start: 0x10_0000,
            end: 0x10_0000 + pages * PAGE_SIZE,
            ..Vma::default()
        })
    }

    #[test]
    fn pages_keep_their_slots_and_new_ones_go_past_the_end() {
        let mut t = tracked(16);
        let mut end = 0;
        // First round: pages 0..4 and 8..10.
        let (runs, places) = place_pages(&mut t, &[0, 1, 2, 3, 8, 9], &mut end, |_| true);
        assert_eq!(runs, [(0, 4), (8, 2)]);
        assert_eq!(
            places.iter().map(|p| p.at).collect::<Vec<_>>(),
            [0, 4 * PAGE_SIZE]
        );
        assert_eq!(end, 6 * PAGE_SIZE);
        // Later: 2, 3 written again, 4 and 5 new: 4 and 5 go past the end,
        // 2 and 3 where they were.
        let (runs, places) = place_pages(&mut t, &[2, 3, 4, 5], &mut end, |_| true);
        assert_eq!(runs, [(2, 2), (4, 2)]);
        assert_eq!(
            places.iter().map(|p| p.at).collect::<Vec<_>>(),
            [2 * PAGE_SIZE, 6 * PAGE_SIZE]
        );
        assert_eq!(t.slot(5), Some(7 * PAGE_SIZE));
        assert_eq!(t.slot(6), None);
        // The freeze: 0..6 planned, 1 and 4 clean: runs split where
        // copying changes, never across slots that do not follow.
        let clean = [1, 4];
        let (runs, places) = place_pages(&mut t, &[0, 1, 2, 3, 4, 5], &mut end, |p| {
            !clean.contains(&p)
        });
        assert_eq!(runs, [(0, 1), (1, 1), (2, 2), (4, 1), (5, 1)]);
        assert_eq!(
            places
                .iter()
                .map(|p| (p.at / PAGE_SIZE, p.copy))
                .collect::<Vec<_>>(),
            [(0, true), (1, false), (2, true), (6, false), (7, true)]
        );
        assert_eq!(end, 8 * PAGE_SIZE, "no page got a second slot");
    }

    #[test]
    fn a_run_is_never_longer_than_the_image_allows() {
        let mut t = tracked(MAX_RUN_PAGES + 10);
        let mut end = 0;
        let pages: Vec<u64> = (0..MAX_RUN_PAGES + 10).collect();
        let (runs, _) = place_pages(&mut t, &pages, &mut end, |_| true);
        assert_eq!(runs, [(0, MAX_RUN_PAGES), (MAX_RUN_PAGES, 10)]);
    }

    /// Places of the runs `runs`/`places` as page ranges in the file.
    fn file_pages(runs: &[(u64, u64)], places: &[Place]) -> Vec<(u64, u64)> {
        runs.iter()
            .zip(places)
            .map(|(&(_, n), p)| (p.at / PAGE_SIZE, p.at / PAGE_SIZE + n))
            .collect()
    }

    #[test]
    fn random_calls_never_give_two_pages_one_place() {
        // xorshift64: the same sequence every run.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50 {
            let len = 1 + next() % 600;
            let mut t = tracked(len);
            let mut end = 0;
            // page → its place, once it has one: never changes.
            let mut placed = std::collections::HashMap::new();
            for call in 0..8 {
                let density = 1 + next() % 8;
                let mut pages: Vec<u64> = (0..len).filter(|_| next() % density == 0).collect();
                if call % 3 == 2 && !pages.is_empty() {
                    // A page listed twice: kept once.
                    let i = (next() % pages.len() as u64) as usize;
                    pages.insert(i, pages[i]);
                }
                let copy = next();
                let (runs, places) =
                    place_pages(&mut t, &pages, &mut end, |p| (copy >> (p % 64)) & 1 == 1);
                let mut ranges = file_pages(&runs, &places);
                ranges.sort_unstable();
                for pair in ranges.windows(2) {
                    assert!(pair[0].1 <= pair[1].0, "places overlap: {pair:?}");
                }
                assert!(ranges.last().is_none_or(|r| r.1 * PAGE_SIZE <= end));
                for (&(first, n), place) in runs.iter().zip(&places) {
                    for page in first..first + n {
                        let at = place.at + (page - first) * PAGE_SIZE;
                        assert_eq!(*placed.entry(page).or_insert(at), at, "page {page} moved");
                        assert_eq!(t.slot(page), Some(at));
                    }
                }
            }
            assert_eq!(end, placed.len() as u64 * PAGE_SIZE, "one slot a page");
        }
    }

    #[test]
    fn validity_is_one_bit_a_page() {
        let mut t = tracked(130);
        t.set_valid(129, true);
        t.set_valid(0, true);
        t.set_valid(0, false);
        assert!(t.is_valid(129) && !t.is_valid(0) && !t.is_valid(128));
    }
}
