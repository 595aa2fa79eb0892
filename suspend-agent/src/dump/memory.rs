//! Saving memory contents: only pages that exist (from `/proc/PID/pagemap`),
//! read with `process_vm_readv` in large batches (short reads, also inside
//! one iovec, are resumed), through `/proc/PID/mem` where a mapping is not
//! readable (`PROT_NONE` pages still hold data), and for shared anonymous
//! memory (memfd, SysV shm) from the object itself, skipping its holes.
//!
//! First every mapping's runs are planned and given their place in the page
//! file; then one worker per core takes the next batch as it finishes one
//! and puts it where the [`Sink`] says: straight into its place in the
//! mapped page file (checksummed later, once the process runs again), or
//! into the worker's own buffer, checksummed there, compressed if asked
//! (each run one frame, the batch's frames and raw runs written together
//! with one `pwritev` at the next free place in the file), written to the
//! page file and handed to the disk at once (the process stays frozen
//! until the image is durable, so the disk must start as early as it can).
//!
//! Only the thread that froze the process reads through `/proc/PID/mem`:
//! kernels built with `CONFIG_PROC_MEM_FORCE_PTRACE` (Debian's 7.x) let
//! nobody else read a `PROT_NONE` page there, not even another thread of
//! the tracer. The other workers leave such batches to it.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, IoSliceMut},
    os::unix::fs::FileExt as _,
    path::PathBuf,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use nix::{sys::uio, unistd::Pid};

use super::DumpError;
use crate::{
    image::{
        WriteError,
        format::{MAX_RUN_PAGES, MappingKind, PAGE_SIZE, PageRun, blake3_hex},
        pages::{HOLE_MIN_PAGES, Packer, Probe, is_zero, leave_out, zero_stretches},
    },
    procfs::vmas::Vma,
    state::mappings::{self, anonymous_page_saved, private_file_page_saved},
};

/// Bytes per batch: enough to amortise the syscall, small enough that the
/// workers finish together.
const BATCH_BYTES: usize = 2 << 20;
/// Workers copying at once, at most.
const MAX_WORKERS: usize = 4;
/// Pagemap entries read at a time (256 MiB of address space).
const PAGEMAP_BATCH: u64 = 65536;
/// `process_vm_readv` takes at most this many remote iovecs (`IOV_MAX`).
const MAX_IOVS: usize = 1024;

/// A run of pages to save: (first page index in the mapping, count).
type Run = (u64, u64);

/// Reads the pages of one process.
pub struct Memory {
    pid: u32,
    pagemap: File,
    mem: File,
}

impl Memory {
    pub fn open(pid: u32) -> Result<Self, DumpError> {
        let open = |name: &str| {
            let path = PathBuf::from(format!("/proc/{pid}/{name}"));
            File::open(&path).map_err(|source| DumpError::Proc { pid, path, source })
        };
        Ok(Self {
            pid,
            pagemap: open("pagemap")?,
            mem: open("mem")?,
        })
    }

    /// Which pages of each of `vmas` to save, and where each run goes in
    /// the page file (one after the other, from offset 0).
    pub fn plan(&self, vmas: &[Vma]) -> Result<Plan, DumpError> {
        let mut mappings = Vec::with_capacity(vmas.len());
        let mut at = 0;
        for vma in vmas {
            let (source, runs) = match mappings::kind(vma) {
                MappingKind::Kernel | MappingKind::SharedFile => (Source::Nothing, Vec::new()),
                MappingKind::SharedAnonymous => self.shared_runs(vma)?,
                MappingKind::Anonymous => (Source::Process, self.runs(vma, anonymous_page_saved)?),
                MappingKind::PrivateFile => {
                    (Source::Process, self.runs(vma, private_file_page_saved)?)
                }
            };
            let bytes: u64 = runs.iter().map(|r| r.1 * PAGE_SIZE).sum();
            mappings.push(Planned {
                source,
                runs,
                at,
                placed: None,
                start: vma.start,
                offset: vma.offset,
                readable: vma.readable(),
            });
            at += bytes;
        }
        Ok(Plan {
            mappings,
            bytes: at,
        })
    }

    /// Copies what `plan` says into `sink` (the page file's first
    /// `plan.bytes`, or fewer where runs are compressed); returns every
    /// mapping's page runs, hashed if the sink is [`Sink::File`], and the
    /// bytes of the page file they take. Must run on the thread that froze
    /// the process.
    /// `tick` is called on this thread after each of its batches, with the
    /// bytes copied so far by all the workers; an error from it stops the
    /// copy.
    pub fn copy(
        &self,
        plan: &Plan,
        sink: Sink<'_>,
        tick: &mut dyn FnMut(u64) -> Result<(), DumpError>,
    ) -> Result<(Vec<Vec<PageRun>>, u64), DumpError> {
        let (batches, file, pack) = match sink {
            Sink::Area(area) => {
                assert_eq!(area.len() as u64, plan.bytes, "the area is the plan's size");
                (plan.batches(Some(area)), None, false)
            }
            Sink::File { file, path, pack } => (plan.batches(None), Some((file, path)), pack),
        };
        let packed_to = AtomicU64::new(0);
        let queue = Mutex::new(batches.into_iter());
        let deferred = Mutex::new(Vec::new());
        let hashes = Mutex::new(HashMap::new());
        let shared = Shared {
            plan,
            deferred: &deferred,
            copied: &AtomicU64::new(0),
            failed: &AtomicBool::new(false),
            file,
            hashes: &hashes,
            writeback_failed: &AtomicBool::new(false),
            packed_to: pack.then_some(&packed_to),
        };
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, MAX_WORKERS);
        let mut results = std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..workers)
                .filter_map(|i| {
                    std::thread::Builder::new()
                        .name(format!("suspend-copy-{i}"))
                        .spawn_scoped(scope, || self.work(&shared, &queue, None))
                        .ok()
                })
                .collect();
            let mut results = vec![self.work(&shared, &queue, Some(&mut *tick))];
            for helper in helpers {
                results.push(helper.join().unwrap_or_else(|_| {
                    Err(DumpError::Read {
                        pid: self.pid,
                        addr: 0,
                        source: io::Error::other("a copying thread panicked"),
                    })
                }));
            }
            results
        });
        // What only this thread may read, now that the others are done.
        let left = std::mem::take(&mut *deferred.lock().unwrap_or_else(|e| e.into_inner()));
        if !left.is_empty() {
            let queue = Mutex::new(left.into_iter());
            results.push(self.work(&shared, &queue, Some(tick)));
        }
        for result in results {
            result?;
        }
        let mut hashes = hashes.into_inner().unwrap_or_else(|e| e.into_inner());
        let saved: Vec<Vec<PageRun>> = plan
            .mappings
            .iter()
            .enumerate()
            .map(|(index, m)| {
                let mut at = m.at;
                m.runs
                    .iter()
                    .enumerate()
                    .map(|(run_index, &(first_page, pages))| {
                        let written = hashes.remove(&(index, run_index)).unwrap_or_default();
                        let run = PageRun {
                            first_page,
                            pages,
                            at: written.at.unwrap_or(m.place_of(run_index, at).at),
                            blake3: written.blake3,
                            stored: written.stored,
                        };
                        at += pages * PAGE_SIZE;
                        run
                    })
                    .collect()
            })
            .collect();
        // Written through, every run was hashed on the way: one that was
        // not must not reach the image with no hash.
        if file.is_some()
            && let Some((m, run)) = plan
                .mappings
                .iter()
                .zip(&saved)
                .find_map(|(m, runs)| runs.iter().find(|r| r.blake3.is_empty()).map(|r| (m, r)))
        {
            return Err(DumpError::Read {
                pid: self.pid,
                addr: m.start + run.first_page * PAGE_SIZE,
                source: io::Error::other("a page run was written without its hash"),
            });
        }
        let bytes = if pack {
            packed_to.into_inner()
        } else {
            plan.bytes
        };
        Ok((saved, bytes))
    }

    /// Takes batches from `queue` until it is empty or a worker failed.
    /// The tracer's worker is the one with a `tick`; the others leave what
    /// needs `/proc/PID/mem` to it.
    fn work<'a>(
        &self,
        shared: &Shared<'_, 'a>,
        queue: &Mutex<std::vec::IntoIter<Batch<'a>>>,
        mut tick: Option<&mut dyn FnMut(u64) -> Result<(), DumpError>>,
    ) -> Result<(), DumpError> {
        let tracer = tick.is_some();
        // This worker's buffer, for a sink that is a file, and its
        // compression, for one that packs.
        let mut own = Vec::new();
        let mut packing = None;
        while !shared.failed.load(Ordering::Relaxed) {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
            let Some(mut batch) = next else { break };
            let mapping = &shared.plan.mappings[batch.mapping];
            let runs = &mapping.runs[batch.runs.clone()];
            let (index, first_run, at) = (batch.mapping, batch.runs.start, batch.at);
            let buf: &mut [u8] = match batch.area.as_deref_mut() {
                Some(area) => area,
                None => {
                    own.resize(own.len().max(batch.len), 0);
                    &mut own[..batch.len]
                }
            };
            let outcome = match &mapping.source {
                Source::Process => self.read_batch(mapping, runs, buf, tracer),
                Source::Object(file, path) => self
                    .read_object(file, path, mapping, runs, buf)
                    .map(|()| true),
                Source::Nothing => Ok(true),
            };
            let outcome = match (outcome, shared.file, shared.packed_to) {
                (Ok(true), Some((file, path)), Some(packed_to)) => {
                    let packing = match &mut packing {
                        Some(p) => p,
                        None => packing.insert(Packing::new().map_err(|source| {
                            DumpError::Write(WriteError::Io {
                                op: "making a compressor for",
                                path: path.to_path_buf(),
                                source,
                            })
                        })?),
                    };
                    Self::pack_batch(
                        (index, first_run),
                        runs,
                        buf,
                        Out {
                            file,
                            path,
                            hashes: shared.hashes,
                            writeback_failed: shared.writeback_failed,
                        },
                        packing,
                        packed_to,
                    )
                    .map(|()| true)
                }
                (Ok(true), Some((file, path)), None) => Self::write_batch(
                    (index, first_run),
                    at,
                    runs,
                    buf,
                    Out {
                        file,
                        path,
                        hashes: shared.hashes,
                        writeback_failed: shared.writeback_failed,
                    },
                )
                .map(|()| true),
                (outcome, _, _) => outcome,
            };
            let outcome = match outcome {
                Ok(false) => {
                    shared
                        .deferred
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(batch);
                    continue;
                }
                Ok(true) => {
                    let len = batch.len as u64;
                    let copied = shared.copied.fetch_add(len, Ordering::Relaxed) + len;
                    tick.as_mut().map_or(Ok(()), |t| t(copied))
                }
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                shared.failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Hashes the runs of `batch`, read into `buf`, writes them at their
    /// place in the page file and starts their write-back.
    /// `first` is (mapping, run) of the batch's first run, `at` its place.
    /// Starting the write-back is only advice, to have the disk busy early:
    /// where it fails the batch is written all the same (the final `fsync`
    /// makes it durable, or fails the dump), and the first such failure of
    /// a dump is logged (`writeback_failed` says whether one was).
    fn write_batch(
        first: (usize, usize),
        at: u64,
        runs: &[Run],
        buf: &[u8],
        out: Out<'_>,
    ) -> Result<(), DumpError> {
        let Out { file, .. } = out;
        let mut done = 0;
        let mut hashed = Vec::with_capacity(runs.len());
        for (i, &(_, pages)) in runs.iter().enumerate() {
            let bytes = (pages * PAGE_SIZE) as usize;
            let written = Written {
                blake3: blake3_hex(&buf[done..done + bytes]),
                at: None,
                stored: None,
            };
            hashed.push(((first.0, first.1 + i), written));
            done += bytes;
        }
        // Zero pages are not written (the new file's allocated space reads
        // as zeros), and a long stretch of them is punched out of it.
        let mut from = 0;
        for (zero, len) in zero_stretches(buf).into_iter().chain([(buf.len(), 0)]) {
            if zero > from {
                file.write_all_at(&buf[from..zero], at + from as u64)
                    .map_err(out.failed("writing"))?;
            }
            if len >= HOLE_MIN_PAGES * PAGE_SIZE as usize {
                leave_out(file, at + zero as u64, len as u64);
            }
            from = zero + len;
        }
        out.written(at, buf.len() as u64, hashed);
        Ok(())
    }

    /// Hashes the runs of a batch, read into `buf`, compresses each into
    /// one frame (or keeps it raw where that would not save a tenth, or
    /// where the worker's [`Probe`] says its mapping is not worth trying
    /// and the run holds no zero page), writes them together at the next
    /// free place in the page file (`packed_to`, shared by the workers)
    /// and starts their write-back, as [`Self::write_batch`]. The frames
    /// are gathered in the worker's `packing`; a raw run is written from
    /// `buf`, where it was read (one `pwritev` of both, nothing copied).
    fn pack_batch(
        first: (usize, usize),
        runs: &[Run],
        buf: &[u8],
        out: Out<'_>,
        packing: &mut Packing,
        packed_to: &AtomicU64,
    ) -> Result<(), DumpError> {
        if packing.mapping != Some(first.0) {
            packing.mapping = Some(first.0);
            packing.probe = packing.fresh;
        }
        let Packing {
            packer,
            frames,
            probe,
            ..
        } = packing;
        frames.clear();
        let mut placed = Vec::with_capacity(runs.len());
        // What is written, in order: a frame's bytes in `frames`, or a
        // raw run's in `buf` (raw runs one after the other merged).
        let mut pieces: Vec<Piece> = Vec::with_capacity(runs.len());
        let (mut done, mut offset) = (0, 0u64);
        for (i, &(_, pages)) in runs.iter().enumerate() {
            let bytes = (pages * PAGE_SIZE) as usize;
            let run = &buf[done..done + bytes];
            // Zero pages shrink to almost nothing: a run with one is worth
            // trying even in a mapping given up on.
            let policy = probe.wants();
            let frame = if policy || run.chunks(PAGE_SIZE as usize).any(is_zero) {
                packer.pack(run)
            } else {
                None
            };
            if policy || frame.is_some() {
                probe.tried(frame.is_some());
            }
            let stored = match frame {
                Some(frame) => {
                    let from = frames.len();
                    frames.extend_from_slice(frame);
                    pieces.push(Piece::Frame(from..frames.len()));
                    Some(frame.len() as u64)
                }
                None => {
                    match pieces.last_mut() {
                        Some(Piece::Raw(raw)) if raw.end == done => raw.end += bytes,
                        _ => pieces.push(Piece::Raw(done..done + bytes)),
                    }
                    None
                }
            };
            placed.push((i, blake3_hex(run), offset, stored));
            offset += stored.unwrap_or(bytes as u64);
            done += bytes;
        }
        let slices: Vec<&[u8]> = pieces
            .into_iter()
            .map(|piece| match piece {
                Piece::Frame(r) => &frames[r],
                Piece::Raw(r) => &buf[r],
            })
            .collect();
        let len = offset;
        let at = packed_to.fetch_add(len, Ordering::Relaxed);
        crate::sys::fd::write_all_vectored_at(std::os::fd::AsFd::as_fd(out.file), &slices, at)
            .map_err(|e| out.failed("writing")(io::Error::new(e.kind(), e)))?;
        let hashed = placed.into_iter().map(|(i, blake3, offset, stored)| {
            let written = Written {
                blake3,
                at: Some(at + offset),
                stored,
            };
            ((first.0, first.1 + i), written)
        });
        out.written(at, len, hashed);
        Ok(())
    }

    /// Runs of pages whose pagemap entry satisfies `keep`, at most
    /// [`MAX_RUN_PAGES`] long.
    pub(super) fn runs(
        &self,
        vma: &Vma,
        keep: impl Fn(u64) -> bool,
    ) -> Result<Vec<Run>, DumpError> {
        let mut runs: Vec<Run> = Vec::new();
        let mut entries = vec![0u8; (PAGEMAP_BATCH * 8) as usize];
        let total = vma.pages();
        let mut page = 0;
        while page < total {
            let n = (total - page).min(PAGEMAP_BATCH);
            let bytes = &mut entries[..(n * 8) as usize];
            let offset = (vma.start / PAGE_SIZE + page) * 8;
            self.pagemap
                .read_exact_at(bytes, offset)
                .map_err(|source| DumpError::Proc {
                    pid: self.pid,
                    path: format!("/proc/{}/pagemap", self.pid).into(),
                    source,
                })?;
            for (i, entry) in bytes.as_chunks::<8>().0.iter().enumerate() {
                let entry = u64::from_le_bytes(*entry);
                if !keep(entry) {
                    continue;
                }
                let index = page + i as u64;
                match runs.last_mut() {
                    Some((first, count)) if *first + *count == index && *count < MAX_RUN_PAGES => {
                        *count += 1
                    }
                    _ => runs.push((index, 1)),
                }
            }
            page += n;
        }
        Ok(runs)
    }

    /// Shared anonymous memory: the data regions of the object behind the
    /// mapping (`SEEK_DATA`/`SEEK_HOLE` on `/proc/PID/map_files/…`), read
    /// from the object itself.
    fn shared_runs(&self, vma: &Vma) -> Result<(Source, Vec<Run>), DumpError> {
        let path = PathBuf::from(format!(
            "/proc/{}/map_files/{:x}-{:x}",
            self.pid, vma.start, vma.end
        ));
        let file = File::open(&path).map_err(|source| DumpError::Proc {
            pid: self.pid,
            path: path.clone(),
            source,
        })?;
        let len = vma.end - vma.start;
        let mut runs: Vec<Run> = Vec::new();
        let mut at = 0u64;
        while at < len {
            let Some(data) = seek(&file, vma.offset + at, libc::SEEK_DATA) else {
                break;
            };
            let data = data.saturating_sub(vma.offset);
            if data >= len {
                break;
            }
            let hole = seek(&file, vma.offset + data, libc::SEEK_HOLE)
                .map_or(len, |h| h.saturating_sub(vma.offset))
                .min(len);
            let (first, last) = (data / PAGE_SIZE, hole.div_ceil(PAGE_SIZE));
            let mut page = first;
            while page < last {
                let count = (last - page).min(MAX_RUN_PAGES);
                runs.push((page, count));
                page += count;
            }
            at = hole.max(data + PAGE_SIZE);
        }
        Ok((Source::Object(file, path), runs))
    }

    /// Fills `buf` with `runs` of a shared object; past its end reads
    /// short, and the rest is zeros.
    fn read_object(
        &self,
        file: &File,
        path: &std::path::Path,
        mapping: &Planned,
        runs: &[Run],
        buf: &mut [u8],
    ) -> Result<(), DumpError> {
        let mut done = 0;
        for &(first, count) in runs {
            let bytes = (count * PAGE_SIZE) as usize;
            let run = &mut buf[done..done + bytes];
            let offset = mapping.offset + first * PAGE_SIZE;
            let mut got = 0;
            while got < bytes {
                match file.read_at(&mut run[got..], offset + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(source) => {
                        return Err(DumpError::Proc {
                            pid: self.pid,
                            path: path.to_path_buf(),
                            source,
                        });
                    }
                }
            }
            run[got..].fill(0);
            done += bytes;
        }
        Ok(())
    }

    /// Fills `buf` with the pages of `batch`; `false` if a page needs
    /// `/proc/PID/mem` and this is not the tracer's thread.
    fn read_batch(
        &self,
        vma: &Planned,
        batch: &[Run],
        buf: &mut [u8],
        tracer: bool,
    ) -> Result<bool, DumpError> {
        let bytes = buf.len();
        // Remote segments as (address, length), consumed as they are read.
        let mut remote: Vec<(u64, usize)> = batch
            .iter()
            .map(|&(first, count)| (vma.start + first * PAGE_SIZE, (count * PAGE_SIZE) as usize))
            .collect();
        let mut done = 0usize;
        let mut next = 0usize; // first unread segment
        let pid = Pid::from_raw(self.pid as i32);
        while done < bytes {
            let n = if vma.readable {
                let iovs: Vec<uio::RemoteIoVec> = remote[next..]
                    .iter()
                    .map(|&(base, len)| uio::RemoteIoVec {
                        base: base as usize,
                        len,
                    })
                    .collect();
                let mut local = [IoSliceMut::new(&mut buf[done..bytes])];
                uio::process_vm_readv(pid, &mut local, &iovs).unwrap_or(0)
            } else {
                0
            };
            if n == 0 && !tracer {
                return Ok(false);
            }
            let n = if n == 0 {
                // Not readable through process_vm_readv (PROT_NONE, or a
                // page it refuses): one page through /proc/PID/mem, which
                // reads any page that holds data.
                let (addr, _) = remote[next];
                let page = &mut buf[done..done + PAGE_SIZE as usize];
                self.mem
                    .read_exact_at(page, addr)
                    .map_err(|source| DumpError::Read {
                        pid: self.pid,
                        addr,
                        source,
                    })?;
                PAGE_SIZE as usize
            } else {
                n
            };
            done += n;
            // Advance the remote segments by `n` bytes (a short read may
            // stop inside one).
            let mut left = n;
            while left > 0 {
                let (base, len) = &mut remote[next];
                if left >= *len {
                    left -= *len;
                    next += 1;
                } else {
                    *base += left as u64;
                    *len -= left;
                    left = 0;
                }
            }
        }
        Ok(true)
    }
}

fn seek(file: &File, offset: u64, whence: libc::c_int) -> Option<u64> {
    use std::os::fd::AsFd as _;
    crate::sys::fd::seek(file.as_fd(), offset, whence).ok()
}

/// Where a batch is written, and what is kept of it.
#[derive(Clone, Copy)]
struct Out<'p> {
    file: &'p File,
    path: &'p std::path::Path,
    hashes: &'p Mutex<HashMap<(usize, usize), Written>>,
    writeback_failed: &'p AtomicBool,
}

impl Out<'_> {
    /// The error of a failed `op` on the page file.
    fn failed(&self, op: &'static str) -> impl FnOnce(io::Error) -> DumpError + use<> {
        let path = self.path.to_path_buf();
        move |source| DumpError::Write(WriteError::Io { op, path, source })
    }

    /// Starts the write-back of the `len` bytes written at `at` and keeps
    /// their runs' hashes and places. Starting the write-back is only
    /// advice (see [`Memory::write_batch`]).
    fn written(
        &self,
        at: u64,
        len: u64,
        runs: impl IntoIterator<Item = ((usize, usize), Written)>,
    ) {
        if let Err(e) = crate::sys::start_writeback(self.file, at, len)
            && !self.writeback_failed.swap(true, Ordering::Relaxed)
        {
            log::warn!(
                "starting the write-back of {}: {e}; the final fsync writes it",
                self.path.display()
            );
        }
        self.hashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(runs);
    }
}

/// A worker's compression: its compressor, the buffer a batch's frames
/// are gathered in, and which runs are worth trying in the mapping it
/// packed last (a batch of another mapping starts afresh).
struct Packing {
    packer: Packer,
    frames: Vec<u8>,
    probe: Probe,
    mapping: Option<usize>,
    /// The probe a mapping starts with.
    fresh: Probe,
}

impl Packing {
    fn new() -> io::Result<Self> {
        Ok(Self {
            packer: Packer::new()?,
            frames: Vec::new(),
            probe: Probe::default(),
            mapping: None,
            fresh: Probe::default(),
        })
    }
}

/// A part of a packed batch's write: bytes of the worker's frames, or of
/// the batch's buffer (raw runs).
enum Piece {
    Frame(std::ops::Range<usize>),
    Raw(std::ops::Range<usize>),
}

/// A run as it was written: its hash, and, where it was compressed (and so
/// placed where the batch found room), its place and stored size.
#[derive(Default)]
struct Written {
    blake3: String,
    at: Option<u64>,
    stored: Option<u64>,
}

/// Where a mapping's saved pages come from.
enum Source {
    /// Nothing is saved (kernel mappings, shared file mappings).
    Nothing,
    /// The process's memory.
    Process,
    /// The shared object behind the mapping, and its path for errors.
    Object(File, PathBuf),
}

/// The pages of one mapping to save, and where they go.
pub struct Planned {
    source: Source,
    pub(super) runs: Vec<Run>,
    /// Offset in the page file of the first run; the others follow —
    /// unless `placed` says where each goes.
    at: u64,
    /// Each run's own place in the page file, and whether it is to be
    /// copied now (`false`: its bytes are there already, copied by a
    /// pre-copy and not written since).
    pub(super) placed: Option<Vec<Place>>,
    pub(super) start: u64,
    offset: u64,
    readable: bool,
}

/// Where a run goes in the page file, and whether it is copied now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub at: u64,
    pub copy: bool,
}

impl Planned {
    /// Private anonymous memory of the process at `start`, whose `runs`
    /// go to their own `places` (a pre-copy's).
    pub(super) fn placed(start: u64, readable: bool, runs: Vec<Run>, places: Vec<Place>) -> Self {
        debug_assert_eq!(runs.len(), places.len());
        Self {
            source: Source::Process,
            runs,
            at: 0,
            placed: Some(places),
            start,
            offset: 0,
            readable,
        }
    }

    /// The place of run `i`, given the place of the runs before it when
    /// they follow each other.
    fn place_of(&self, i: usize, following: u64) -> Place {
        self.placed.as_ref().map_or(
            Place {
                at: following,
                copy: true,
            },
            |p| p[i],
        )
    }
}

/// What a dump saves of every mapping, in `/proc/PID/maps` order.
pub struct Plan {
    pub(super) mappings: Vec<Planned>,
    /// Bytes in all: the page file's length.
    pub bytes: u64,
}

/// Where a dump's pages go.
pub enum Sink<'a> {
    /// The mapped page file, made ready before the freeze: one copy, the
    /// hashing left for later.
    Area(&'a mut [u8]),
    /// The page file itself (and its path, for errors): each batch is read
    /// into a worker's buffer, hashed, compressed if `pack`, written and
    /// its write-back started.
    File {
        file: &'a File,
        path: &'a std::path::Path,
        pack: bool,
    },
}

/// Runs of one mapping read together, and where they go.
struct Batch<'a> {
    mapping: usize,
    runs: std::ops::Range<usize>,
    /// Where in the page file, and how many bytes.
    at: u64,
    len: usize,
    /// Their place in the mapped page file, for [`Sink::Area`].
    area: Option<&'a mut [u8]>,
}

/// What the workers share.
struct Shared<'p, 'a> {
    plan: &'p Plan,
    /// Batches only the tracer's thread may read.
    deferred: &'p Mutex<Vec<Batch<'a>>>,
    copied: &'p AtomicU64,
    failed: &'p AtomicBool,
    /// The page file, for [`Sink::File`].
    file: Option<(&'p File, &'p std::path::Path)>,
    /// Each written run's BLAKE3 (and place, if compressed), by (mapping,
    /// run) index.
    hashes: &'p Mutex<HashMap<(usize, usize), Written>>,
    /// Starting a batch's write-back failed (logged once).
    writeback_failed: &'p AtomicBool,
    /// For a sink that packs: the end of what the workers wrote so far.
    packed_to: Option<&'p AtomicU64>,
}

impl Plan {
    /// A plan of `mappings` whose runs have their own places
    /// ([`Planned::placed`]) in a page file `bytes` long.
    pub(super) fn placed(mappings: Vec<Planned>, bytes: u64) -> Self {
        Self { mappings, bytes }
    }

    /// Cuts the plan into batches of at most [`BATCH_BYTES`] (or one run)
    /// and `IOV_MAX` runs, each of runs that follow each other in the page
    /// file and are to be copied, each with its part of `area` if there is
    /// one.
    fn batches<'a>(&self, area: Option<&'a mut [u8]>) -> Vec<Batch<'a>> {
        let mut batches = Vec::new();
        for (index, mapping) in self.mappings.iter().enumerate() {
            let mut first = 0;
            // Where the next run goes when the runs follow each other.
            let mut following = mapping.at;
            while first < mapping.runs.len() {
                let place = mapping.place_of(first, following);
                let run_bytes = |i: usize| (mapping.runs[i].1 * PAGE_SIZE) as usize;
                if !place.copy {
                    following += run_bytes(first) as u64;
                    first += 1;
                    continue;
                }
                let mut bytes = 0usize;
                let mut end = first;
                while end < mapping.runs.len() && end - first < MAX_IOVS {
                    let next = mapping.place_of(end, following + bytes as u64);
                    let joins = next.copy && next.at == place.at + bytes as u64;
                    if end > first && (!joins || bytes + run_bytes(end) > BATCH_BYTES) {
                        break;
                    }
                    bytes += run_bytes(end);
                    end += 1;
                }
                batches.push(Batch {
                    mapping: index,
                    runs: first..end,
                    at: place.at,
                    len: bytes,
                    area: None,
                });
                following += bytes as u64;
                first = end;
            }
        }
        if let Some(area) = area {
            // Each batch its own part of the area: cut in the order of
            // their places, which never overlap.
            let mut order: Vec<usize> = (0..batches.len()).collect();
            order.sort_unstable_by_key(|&i| batches[i].at);
            let mut rest = area;
            let mut cut = 0u64;
            let mut parts: Vec<Option<&'a mut [u8]>> = Vec::new();
            parts.resize_with(batches.len(), || None);
            for i in order {
                let (at, len) = (batches[i].at, batches[i].len);
                assert!(at >= cut, "page file places overlap at {at}");
                let (_, tail) = std::mem::take(&mut rest).split_at_mut((at - cut) as usize);
                let (place, tail) = tail.split_at_mut(len);
                rest = tail;
                cut = at + len as u64;
                parts[i] = Some(place);
            }
            for (batch, part) in batches.iter_mut().zip(parts) {
                batch.area = part;
            }
        }
        batches
    }
}

/// Hashes every run (BLAKE3) from `pages`, the page file they were copied
/// into, on as many threads as there are cores. Returns the stretches
/// (first byte in the page file, length) of at least [`HOLE_MIN_PAGES`]
/// zero pages inside a run: not to be stored.
pub fn hash_runs<'a>(
    pages: &[u8],
    runs: impl IntoIterator<Item = &'a mut PageRun>,
) -> Vec<(u64, u64)> {
    let mut runs: Vec<&mut PageRun> = runs.into_iter().collect();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, MAX_WORKERS);
    let share = runs.len().div_ceil(workers).max(1);
    let zeros = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for group in runs.chunks_mut(share) {
            let zeros = &zeros;
            scope.spawn(move || {
                let mut found = Vec::new();
                for run in group {
                    let from = run.at as usize;
                    let to = from + (run.pages * PAGE_SIZE) as usize;
                    run.blake3 = blake3_hex(&pages[from..to]);
                    found.extend(
                        zero_stretches(&pages[from..to])
                            .into_iter()
                            .filter(|&(_, len)| len >= HOLE_MIN_PAGES * PAGE_SIZE as usize)
                            .map(|(at, len)| (run.at + at as u64, len as u64)),
                    );
                }
                zeros
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(found);
            });
        }
    });
    let mut zeros = zeros.into_inner().unwrap_or_else(|e| e.into_inner());
    zeros.sort_unstable();
    zeros
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_pages_are_not_written_and_a_long_stretch_of_them_takes_no_space() {
        use std::os::unix::fs::MetadataExt as _;
        let (file, path) = crate::sys::fd::scratch_file("memory-zero-pages");
        let page = PAGE_SIZE as usize;
        // Runs of 1 + 64 + 1 + 2 pages: data, 64 zero pages, data, a zero
        // page then data — as a fresh page file, allocated ahead.
        let mut buf = vec![0u8; 68 * page];
        buf[..page].fill(3);
        buf[65 * page..66 * page].fill(4);
        buf[67 * page + 100] = 5;
        let at = 4 * page as u64;
        nix::fcntl::fallocate(
            std::os::fd::AsFd::as_fd(&file),
            nix::fcntl::FallocateFlags::empty(),
            0,
            (at as usize + buf.len()) as libc::off_t,
        )
        .expect("fallocate");
        let before = file.metadata().expect("stat").blocks() * 512;
        let runs = [(0, 1), (10, 64), (80, 1), (90, 2)];
        let hashes = Mutex::new(HashMap::new());
        let failed = AtomicBool::new(false);
        let out = Out {
            file: &file,
            path: &path,
            hashes: &hashes,
            writeback_failed: &failed,
        };
        Memory::write_batch((0, 0), at, &runs, &buf, out).expect("the batch is written");
        let mut back = vec![1u8; buf.len()];
        file.read_exact_at(&mut back, at).expect("read back");
        assert!(back == buf, "the page file reads back as the batch");
        let hashes = hashes.into_inner().expect("hashes");
        assert_eq!(
            hashes[&(0, 1)].blake3,
            blake3_hex(&buf[page..65 * page]),
            "zeros hashed"
        );
        let after = file.metadata().expect("stat").blocks() * 512;
        // Where the filesystem punches holes, the 64 zero pages' space is
        // given back (tmpfs and ext4 do; an extent block may be taken).
        assert!(
            after + 60 * PAGE_SIZE <= before,
            "{before} bytes allocated before, {after} after"
        );
    }

    #[test]
    fn a_write_back_that_cannot_start_does_not_fail_the_batch_but_a_write_does() {
        // `/dev/null` takes the write, but `sync_file_range` refuses a
        // character device (`ESPIPE`).
        let path = std::path::Path::new("/dev/null");
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("/dev/null");
        let buf = vec![7u8; 3 * PAGE_SIZE as usize];
        let runs = [(0, 1), (5, 2)];
        let hashes = Mutex::new(HashMap::new());
        let failed = AtomicBool::new(false);
        let write = |file| {
            let out = Out {
                file,
                path,
                hashes: &hashes,
                writeback_failed: &failed,
            };
            Memory::write_batch((4, 1), 0, &runs, &buf, out)
        };
        write(&null).expect("the batch is written");
        assert!(
            failed.load(Ordering::Relaxed),
            "sync_file_range on /dev/null did not fail: this test shows nothing"
        );
        // Both runs hashed, under their (mapping, run) index.
        let page = PAGE_SIZE as usize;
        let hashes_now: HashMap<_, _> = (hashes.lock().expect("hashes").iter())
            .map(|(k, w)| (*k, w.blake3.clone()))
            .collect();
        assert_eq!(hashes_now.len(), 2);
        assert_eq!(hashes_now[&(4, 1)], blake3_hex(&buf[..page]));
        assert_eq!(hashes_now[&(4, 2)], blake3_hex(&buf[page..]));
        // A write that fails still fails it.
        let read_only = File::open(path).expect("/dev/null");
        assert!(matches!(
            write(&read_only),
            Err(DumpError::Write(WriteError::Io { op: "writing", .. }))
        ));
    }

    #[test]
    fn a_packed_batch_is_its_frames_and_raw_runs_one_after_the_other() {
        let path = std::env::temp_dir().join(format!("suspend-pieces-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("a scratch file");
        let _ = std::fs::remove_file(&path);
        let page = PAGE_SIZE as usize;
        // Runs: noise, noise (raw, written from the buffer as one piece),
        // text (a frame), noise (raw), zeros (a frame).
        let mut x = 0x853c_49e6_748f_ea9bu64;
        let mut noise = |pages: usize| -> Vec<u8> {
            (0..pages * page)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        let text: Vec<u8> = (0..2 * page).map(|i| b"pieces"[i % 6]).collect();
        let parts = [noise(1), noise(2), text, noise(1), vec![0u8; 3 * page]];
        let buf = parts.concat();
        let runs: Vec<Run> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| (10 * i as u64, (p.len() / page) as u64))
            .collect();
        let hashes = Mutex::new(HashMap::new());
        let failed = AtomicBool::new(false);
        let packed_to = AtomicU64::new(0);
        let out = Out {
            file: &file,
            path: &path,
            hashes: &hashes,
            writeback_failed: &failed,
        };
        Memory::pack_batch(
            (0, 0),
            &runs,
            &buf,
            out,
            &mut Packing::new().expect("a compressor"),
            &packed_to,
        )
        .expect("the batch is packed");
        // The page file holds exactly what gathering it in one buffer
        // wrote: each run's frame, or the run itself, in order, dense.
        let mut check = Packer::new().expect("a compressor");
        let expected: Vec<u8> = parts
            .iter()
            .flat_map(|p| check.pack(p).map_or(p.clone(), <[u8]>::to_vec))
            .collect();
        let mut back = vec![0u8; expected.len()];
        file.read_exact_at(&mut back, 0).expect("read back");
        assert!(back == expected, "the page file differs");
        assert_eq!(packed_to.load(Ordering::Relaxed), expected.len() as u64);
        assert_eq!(file.metadata().expect("stat").len(), expected.len() as u64);
        let hashes = hashes.into_inner().expect("hashes");
        let stored: Vec<_> = (0..parts.len()).map(|r| hashes[&(0, r)].stored).collect();
        assert!(stored[0].is_none() && stored[1].is_none() && stored[3].is_none());
        assert!(stored[2].is_some() && stored[4].is_some());
        let mut at = 0;
        for (r, p) in parts.iter().enumerate() {
            assert_eq!(hashes[&(0, r)].at, Some(at), "run {r}");
            at += stored[r].unwrap_or(p.len() as u64);
        }
    }

    /// `pages` pages of xorshift noise from `seed`.
    fn noise(seed: u64, pages: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..pages * PAGE_SIZE as usize)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn a_mapping_given_up_on_stores_its_runs_raw_but_those_with_zero_pages() {
        let page = PAGE_SIZE as usize;
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .expect("/dev/null");
        let text: Vec<u8> = (0..page).map(|i| b"probes"[i % 6]).collect();
        let mut zeros = vec![0u8; 4 * page];
        zeros[..page].copy_from_slice(&noise(7, 1));
        // Mapping 0: ten runs of noise, text, a run with zero pages, text.
        // Mapping 1: text.
        let first: Vec<Vec<u8>> = (0..10)
            .map(|i| noise(i + 1, 1))
            .chain([text.clone(), zeros, text.clone()])
            .collect();
        let hashes = Mutex::new(HashMap::new());
        let failed = AtomicBool::new(false);
        let out = Out {
            file: &null,
            path: std::path::Path::new("/dev/null"),
            hashes: &hashes,
            writeback_failed: &failed,
        };
        let mut packing = Packing::new().expect("a compressor");
        let packed_to = AtomicU64::new(0);
        let mut pack = |first: (usize, usize), parts: &[Vec<u8>]| {
            let runs: Vec<Run> = parts.iter().map(|p| (0, (p.len() / page) as u64)).collect();
            Memory::pack_batch(first, &runs, &parts.concat(), out, &mut packing, &packed_to)
                .expect("packed");
        };
        // Two batches of one mapping share the probe.
        pack((0, 0), &first[..9]);
        pack((0, 9), &first[9..]);
        let hashes_of = |mapping| {
            let hashes = hashes.lock().expect("hashes");
            let mut stored: Vec<_> = (hashes.iter())
                .filter(|(k, _)| k.0 == mapping)
                .map(|(k, w)| (k.1, w.stored.is_some()))
                .collect();
            stored.sort_unstable();
            stored.into_iter().map(|(_, s)| s).collect::<Vec<_>>()
        };
        // After eight misses the text is not tried; the run with zero
        // pages is, and packs, so the text after it is tried again.
        let expected: Vec<bool> = [false; 11].into_iter().chain([true, true]).collect();
        assert_eq!(hashes_of(0), expected);
        pack((1, 0), std::slice::from_ref(&text));
        assert_eq!(hashes_of(1), [true], "a new mapping starts afresh");
    }

    /// Packs 256 MiB of noise in batches of one mapping, written to
    /// `/dev/null`, as a worker would: with the probe, and trying every run.
    /// `cargo test --release -p suspend-agent --bin suspend-agent -- --ignored --nocapture bench_pack_noise`
    #[test]
    #[ignore = "a micro-benchmark"]
    fn bench_pack_noise() {
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .expect("/dev/null");
        let buf = noise(0x9e37_79b9, BATCH_BYTES / PAGE_SIZE as usize);
        let runs: Vec<Run> = (0..BATCH_BYTES as u64 / (MAX_RUN_PAGES * PAGE_SIZE))
            .map(|i| (i * MAX_RUN_PAGES, MAX_RUN_PAGES))
            .collect();
        let batches = (256 << 20) / BATCH_BYTES;
        for (what, fresh) in [
            ("probed", Probe::default()),
            ("every run tried", Probe::new(u32::MAX, 1)),
        ] {
            let mut times: Vec<f64> = (0..5)
                .map(|_| {
                    let hashes = Mutex::new(HashMap::new());
                    let failed = AtomicBool::new(false);
                    let out = Out {
                        file: &null,
                        path: std::path::Path::new("/dev/null"),
                        hashes: &hashes,
                        writeback_failed: &failed,
                    };
                    let mut packing = Packing::new().expect("a compressor");
                    packing.fresh = fresh;
                    let packed_to = AtomicU64::new(0);
                    let start = std::time::Instant::now();
                    for b in 0..batches {
                        Memory::pack_batch((0, b), &runs, &buf, out, &mut packing, &packed_to)
                            .expect("packed");
                    }
                    start.elapsed().as_secs_f64()
                })
                .collect();
            times.sort_by(f64::total_cmp);
            eprintln!(
                "256 MiB of noise, {what}: median {:.3} s (min {:.3}, max {:.3})",
                times[2], times[0], times[4]
            );
        }
    }

    #[test]
    fn packed_batches_take_their_own_places_and_read_back_as_their_runs() {
        use crate::image::pages::RunReader;
        let (file, path) = crate::sys::fd::scratch_file("memory-packed");
        let page = PAGE_SIZE as usize;
        // Two batches: zeros and text (packed), then noise (kept raw) and
        // zeros again.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..2 * page)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let text: Vec<u8> = (0..3 * page).map(|i| b"frames"[i % 6]).collect();
        let first = [vec![0u8; 2 * page], text].concat();
        let second = [noise.clone(), vec![0u8; page]].concat();
        let hashes = Mutex::new(HashMap::new());
        let failed = AtomicBool::new(false);
        let packed_to = AtomicU64::new(0);
        let out = Out {
            file: &file,
            path: &path,
            hashes: &hashes,
            writeback_failed: &failed,
        };
        let mut packing = Packing::new().expect("a compressor");
        let batches: [(&[Run], &[u8]); 2] =
            [(&[(0, 2), (7, 3)], &first), (&[(20, 2), (30, 1)], &second)];
        for (i, (runs, buf)) in batches.iter().enumerate() {
            Memory::pack_batch((i, 0), runs, buf, out, &mut packing, &packed_to)
                .expect("the batch is packed");
        }
        let end = packed_to.load(Ordering::Relaxed);
        assert_eq!(file.metadata().expect("stat").len(), end);
        assert!(end < (noise.len() + page) as u64, "{end} bytes for 9 pages");
        let hashes = hashes.into_inner().expect("hashes");
        let mut reader = RunReader::default();
        let mut places = Vec::new();
        for (i, (runs, buf)) in batches.iter().enumerate() {
            let mut done = 0;
            for (r, &(_, pages)) in runs.iter().enumerate() {
                let written = &hashes[&(i, r)];
                let bytes = &buf[done..done + pages as usize * page];
                done += bytes.len();
                assert_eq!(written.blake3, blake3_hex(bytes));
                let at = written.at.expect("placed");
                let mut back = vec![1u8; bytes.len()];
                reader
                    .read(&file, at, written.stored, &mut back)
                    .expect("reads back");
                assert!(back == bytes, "batch {i} run {r}");
                places.push((at, written.stored.unwrap_or(bytes.len() as u64)));
            }
        }
        // The noise stays raw; the others are frames. No two overlap.
        assert_eq!(hashes[&(1, 0)].stored, None);
        assert!(hashes[&(0, 0)].stored.is_some() && hashes[&(1, 1)].stored.is_some());
        places.sort_unstable();
        assert!(
            places.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0),
            "{places:?}"
        );
    }
}
