//! A held process's memory given back lazily: the process runs again at
//! once, and its pages are served from the image as it touches them (a
//! userfaultfd), the rest copied in behind it ([`super::refill`]).
//!
//! The userfaultfd must be the process's own (it acts on the memory of
//! whoever creates it) and must stay open in it while pages are missing:
//! if the agent serving it dies, faulting threads then wait for the next
//! one instead of being handed zero pages (which closing the last copy
//! would do). It is made through `/dev/userfaultfd`, which the agent opens
//! and hands into the process over a socket the process connects to
//! (`SCM_RIGHTS`): one made by `userfaultfd(2)` in a process without
//! `CAP_SYS_PTRACE` handles only user-mode faults, and a `read(2)` into a
//! page not yet back would fail with `EFAULT` instead of waiting. It is
//! moved to a high descriptor number, so the process's next `open` gets
//! the number it would have got.
//!
//! Only anonymous private memory can be served so (`UFFDIO_REGISTER` takes
//! no private file mapping); a private file mapping's saved pages are
//! written back before the process runs, as are the few pages the agent
//! itself touched while the process was held (its threads' stacks below
//! their stack pointers), so that nothing present differs from the image.

use std::{
    collections::{HashMap, VecDeque},
    fs,
    os::{
        fd::{AsFd as _, OwnedFd},
        unix::fs::FileExt as _,
    },
};

use log::debug;

use super::{HoldError, io_err, releasable, sys_err};
use crate::{
    image::{
        Image,
        format::{MappingKind, PAGE_SIZE, PAGES_FILE, blake3_hex},
        pages::{RunError, RunReader},
    },
    sys::uffd,
    tracee::inject::{Borrowed, Site},
};

/// Part of a saved run still to be served: `len` bytes at `addr`, which
/// are bytes `skip..skip+len` of run `run` of mapping `mapping`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Chunk {
    pub addr: u64,
    pub len: u64,
    pub mapping: usize,
    pub run: usize,
    pub skip: u64,
}

impl Chunk {
    pub fn end(&self) -> u64 {
        self.addr + self.len
    }

    /// The part of it in `[start, end)`, if any.
    pub fn within(&self, start: u64, end: u64) -> Option<Chunk> {
        let (s, e) = (self.addr.max(start), self.end().min(end));
        (s < e).then(|| Chunk {
            addr: s,
            len: e - s,
            skip: self.skip + (s - self.addr),
            ..*self
        })
    }
}

/// Whether mapping kind `kind` is served lazily.
pub(super) fn served(kind: MappingKind) -> bool {
    kind == MappingKind::Anonymous
}

/// The mappings served lazily (registered) and their saved runs, in
/// address order.
pub(super) fn plan(image: &Image) -> (Vec<(u64, u64)>, Vec<Chunk>) {
    let mut ranges = Vec::new();
    let mut chunks = Vec::new();
    for (mi, m) in image.mappings.iter().enumerate() {
        if !served(m.kind) || m.pages.is_empty() {
            continue;
        }
        ranges.push((m.start, m.end));
        for (ri, run) in m.pages.iter().enumerate() {
            chunks.push(Chunk {
                addr: m.start + run.first_page * PAGE_SIZE,
                len: run.pages * PAGE_SIZE,
                mapping: mi,
                run: ri,
                skip: 0,
            });
        }
    }
    chunks.sort_by_key(|c| c.addr);
    (ranges, chunks)
}

/// Runs kept read (and decompressed) by [`Pages`].
const CACHED_RUNS: usize = 8;

/// The runs read last, most recent first, by (mapping, run): faults that
/// go back and forth among a few runs (a loop over two buffers, threads'
/// stacks) read and decompress each once.
pub(super) struct RunCache {
    runs: VecDeque<((usize, usize), Vec<u8>)>,
    capacity: usize,
}

impl RunCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            runs: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    /// The bytes of run `key`: kept, or read by `load` into a buffer (the
    /// least recently used one's, when the cache is full). A run that
    /// failed to load is not kept.
    pub fn get_or_load<E>(
        &mut self,
        key: (usize, usize),
        load: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<&[u8], E> {
        if let Some(i) = self.runs.iter().position(|(k, _)| *k == key) {
            if i > 0 {
                let hit = self.runs.remove(i).expect("found above");
                self.runs.push_front(hit);
            }
        } else {
            let mut buf = if self.runs.len() >= self.capacity {
                self.runs.pop_back().map(|(_, b)| b).unwrap_or_default()
            } else {
                Vec::new()
            };
            load(&mut buf)?;
            self.runs.push_front((key, buf));
        }
        Ok(&self.runs[0].1)
    }
}

/// The image's saved pages, each run checked against its hash the first
/// time any of it is used.
pub(super) struct Pages<'i> {
    image: &'i Image,
    file: fs::File,
    verified: std::collections::HashSet<(usize, usize)>,
    reader: RunReader,
    cache: RunCache,
}

impl<'i> Pages<'i> {
    pub fn open(image: &'i Image) -> Result<Self, HoldError> {
        let pid = image.process.pid;
        Ok(Self {
            image,
            file: fs::File::open(image.dir.join(PAGES_FILE))
                .map_err(io_err(pid, format!("opening {PAGES_FILE}")))?,
            verified: Default::default(),
            reader: RunReader::default(),
            cache: RunCache::new(CACHED_RUNS),
        })
    }

    /// The bytes of run `run` of mapping `mapping`.
    pub fn run(&mut self, mapping: usize, run: usize) -> Result<&[u8], HoldError> {
        let Self {
            image,
            file,
            verified,
            reader,
            cache,
        } = self;
        cache.get_or_load((mapping, run), |buf| {
            let pid = image.process.pid;
            let m = &image.mappings[mapping];
            let r = &m.pages[run];
            buf.resize((r.pages * PAGE_SIZE) as usize, 0);
            // A failed read may be the disk's: the process stays held for
            // another try. A run that is no frame of its pages is damage.
            reader
                .read(file, r.at, r.stored, buf)
                .map_err(|e| match e {
                    RunError::Io(source) => HoldError::Io {
                        pid,
                        what: format!("reading {PAGES_FILE} at {}", r.at),
                        source,
                    },
                    RunError::Damaged(why) => HoldError::Pages {
                        pid,
                        what: format!(
                            "{PAGES_FILE}: the run at byte {} (mapping {:#x}): {why}: the image was damaged since it was written",
                            r.at, m.start
                        ),
                    },
                })?;
            if !verified.contains(&(mapping, run)) {
                if blake3_hex(buf) != r.blake3 {
                    return Err(HoldError::Pages {
                        pid,
                        what: format!(
                            "{PAGES_FILE}: the run at byte {} (mapping {:#x}) does not match its hash: the image was damaged since it was written",
                            r.at, m.start
                        ),
                    });
                }
                verified.insert((mapping, run));
            }
            Ok(())
        })
    }

    /// The saved bytes of the page at `addr` in mapping `mapping`, or
    /// `None` if it was not saved (zero).
    fn page(&mut self, mapping: usize, addr: u64) -> Result<Option<&[u8]>, HoldError> {
        let m = &self.image.mappings[mapping];
        let index = (addr - m.start) / PAGE_SIZE;
        let Some(run) = m
            .pages
            .iter()
            .position(|r| (r.first_page..r.first_page + r.pages).contains(&index))
        else {
            return Ok(None);
        };
        let at = ((index - m.pages[run].first_page) * PAGE_SIZE) as usize;
        let bytes = self.run(mapping, run)?;
        Ok(Some(&bytes[at..at + PAGE_SIZE as usize]))
    }
}

/// Makes a userfaultfd in the process through thread `tid` (parked, seized
/// and stopped; put back as it was). Returns its number there and a copy.
pub(super) fn make_uffd(pid: u32, tid: u32, site: Site) -> Result<(i32, OwnedFd), HoldError> {
    let mut b = Borrowed::on_own_stack(tid, site, None)?;
    let made = crate::tracee::uffd::make(pid, &mut b, &site, crate::tracee::uffd::high_fd(pid));
    b.restore()?;
    made.map_err(|e| match e {
        crate::tracee::uffd::MakeError::Inject(e) => HoldError::Inject(e),
        crate::tracee::uffd::MakeError::Sys { what, source } => HoldError::Syscall {
            pid,
            what: what.into(),
            source,
        },
        e @ crate::tracee::uffd::MakeError::Call { .. } => HoldError::Proc {
            pid,
            what: e.to_string(),
        },
    })
}

/// Before the registration: every page present in a mapping to be served
/// (touched by the agent while held) gets the image's bytes (or zeros, if
/// it was not saved), and every other private mapping all its saved pages.
/// Returns the pages written.
pub(super) fn write_present(image: &Image, pid: u32) -> Result<u64, HoldError> {
    let mem = fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/mem"))
        .map_err(io_err(pid, "opening /proc/PID/mem"))?;
    let pagemap = fs::File::open(format!("/proc/{pid}/pagemap"))
        .map_err(io_err(pid, "opening /proc/PID/pagemap"))?;
    let mut pages = Pages::open(image)?;
    let mut written = 0;
    let zero = [0u8; PAGE_SIZE as usize];
    // Only mappings with resident pages need their page map read.
    let resident = crate::procfs::resident_mappings(pid).map_err(|e| HoldError::Proc {
        pid,
        what: e.to_string(),
    })?;
    for (mi, m) in image.mappings.iter().enumerate() {
        if !releasable(m.kind) || m.pages.is_empty() {
            continue;
        }
        if !served(m.kind) {
            written += write_mapping(&mut pages, &mem, mi)?;
            continue;
        }
        if !resident.contains(&m.start) {
            continue;
        }
        const BATCH: u64 = 65536;
        let mut entries = vec![0u8; (BATCH * 8) as usize];
        let mut addr = m.start;
        while addr < m.end {
            let n = ((m.end - addr) / PAGE_SIZE).min(BATCH);
            let bytes = &mut entries[..(n * 8) as usize];
            pagemap
                .read_exact_at(bytes, addr / PAGE_SIZE * 8)
                .map_err(io_err(pid, "reading /proc/PID/pagemap"))?;
            for (i, e) in bytes.as_chunks::<8>().0.iter().enumerate() {
                let e = u64::from_le_bytes(*e);
                if e & (3 << 62) == 0 {
                    continue;
                }
                let at = addr + i as u64 * PAGE_SIZE;
                let page = pages.page(mi, at)?.unwrap_or(&zero);
                mem.write_all_at(page, at)
                    .map_err(io_err(pid, format!("writing its memory at {at:#x}")))?;
                written += 1;
            }
            addr += n * PAGE_SIZE;
        }
    }
    Ok(written)
}

/// Writes every saved page of mapping `mapping` (through `/proc/PID/mem`).
pub(super) fn write_mapping(
    pages: &mut Pages<'_>,
    mem: &fs::File,
    mapping: usize,
) -> Result<u64, HoldError> {
    let m = &pages.image.mappings[mapping];
    let (pid, start, count) = (pages.image.process.pid, m.start, m.pages.len());
    let mut written = 0;
    for run in 0..count {
        let (first, n) = {
            let r = &pages.image.mappings[mapping].pages[run];
            (r.first_page, r.pages)
        };
        let bytes = pages.run(mapping, run)?;
        let addr = start + first * PAGE_SIZE;
        mem.write_all_at(bytes, addr)
            .map_err(io_err(pid, format!("writing its memory at {addr:#x}")))?;
        written += n;
    }
    Ok(written)
}

/// Registers every served range with `fd`; a range the kernel will not
/// take gets its pages written at once instead. Returns the ranges
/// registered and the pages written.
pub(super) fn register(
    image: &Image,
    pid: u32,
    fd: &OwnedFd,
) -> Result<(Vec<(u64, u64)>, u64), HoldError> {
    let features = uffd::api(fd.as_fd()).map_err(sys_err(pid, "its userfaultfd"))?;
    if features & uffd::FEATURES != uffd::FEATURES {
        return Err(HoldError::Proc {
            pid,
            what: format!(
                "this kernel's userfaultfd lacks events {:#x}",
                uffd::FEATURES & !features
            ),
        });
    }
    let mem = fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/mem"))
        .map_err(io_err(pid, "opening /proc/PID/mem"))?;
    let mut pages = Pages::open(image)?;
    let by_start: HashMap<u64, usize> = image
        .mappings
        .iter()
        .enumerate()
        .map(|(i, m)| (m.start, i))
        .collect();
    let (ranges, _) = plan(image);
    let mut registered = Vec::new();
    let mut written = 0;
    for (start, end) in ranges {
        match uffd::register(fd.as_fd(), start, end - start) {
            Ok(()) => registered.push((start, end)),
            Err(e) => {
                debug!("pid {pid}: {start:#x}-{end:#x} not served lazily ({e}): written now");
                match write_mapping(&mut pages, &mem, by_start[&start]) {
                    Ok(n) => written += n,
                    Err(e) => {
                        for &(s, e) in &registered {
                            let _ = uffd::unregister(fd.as_fd(), s, e - s);
                        }
                        return Err(e);
                    }
                }
            }
        }
    }
    Ok((registered, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_cut_to_a_range() {
        let c = Chunk {
            addr: 0x10000,
            len: 0x4000,
            mapping: 1,
            run: 2,
            skip: 0x1000,
        };
        assert_eq!(
            c.within(0x11000, 0x12000),
            Some(Chunk {
                addr: 0x11000,
                len: 0x1000,
                skip: 0x2000,
                ..c
            })
        );
        assert_eq!(c.within(0x14000, 0x20000), None);
        assert_eq!(c.within(0, u64::MAX), Some(c));
    }

    #[test]
    fn faults_back_and_forth_between_runs_read_each_once() {
        let mut cache = RunCache::new(CACHED_RUNS);
        let mut loads = Vec::new();
        // Run `key` through the cache; a read of it is noted in `loads`.
        fn get(cache: &mut RunCache, loads: &mut Vec<(usize, usize)>, key: (usize, usize)) {
            let bytes = cache
                .get_or_load(key, |buf| {
                    loads.push(key);
                    buf.clear();
                    buf.extend_from_slice(&[key.0 as u8, key.1 as u8]);
                    Ok::<(), ()>(())
                })
                .expect("loads")
                .to_vec();
            assert_eq!(bytes, [key.0 as u8, key.1 as u8], "the bytes of {key:?}");
        }
        // Alternating between two runs: each read once.
        for _ in 0..10 {
            get(&mut cache, &mut loads, (0, 1));
            get(&mut cache, &mut loads, (3, 0));
        }
        assert_eq!(loads, [(0, 1), (3, 0)]);
        // Eight runs fit; a ninth puts out the one used least recently,
        // not the one put in first.
        loads.clear();
        for run in 2..8 {
            get(&mut cache, &mut loads, (0, run));
        }
        get(&mut cache, &mut loads, (0, 1));
        get(&mut cache, &mut loads, (9, 9));
        assert_eq!(loads.len(), 7, "{loads:?}");
        loads.clear();
        get(&mut cache, &mut loads, (0, 1));
        assert!(loads.is_empty(), "(0, 1) was used last but one");
        get(&mut cache, &mut loads, (3, 0));
        assert_eq!(loads, [(3, 0)], "(3, 0) was used least recently");
        // A run that fails to load is not kept, and its error is the
        // caller's.
        let failed = cache.get_or_load((5, 5), |_| Err("disk"));
        assert_eq!(failed.map(<[u8]>::to_vec), Err("disk"));
        assert!(cache.get_or_load((5, 5), |_| Err("again")).is_err());
    }
}
