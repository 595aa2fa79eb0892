//! Saving memory contents: only pages that exist (from `/proc/PID/pagemap`),
//! read with `process_vm_readv` in large batches (short reads, also inside
//! one iovec, are resumed), through `/proc/PID/mem` where a mapping is not
//! readable (`PROT_NONE` pages still hold data), and for shared anonymous
//! memory (memfd, SysV shm) from the object itself, skipping its holes.

use std::{
    fs::File,
    io::{self, IoSliceMut},
    os::unix::fs::FileExt as _,
    path::PathBuf,
};

use nix::{sys::uio, unistd::Pid};

use super::{DumpError, vmas::Vma};
use crate::image::{
    PageSink,
    format::{MAX_RUN_PAGES, MappingKind, PAGE_SIZE, PageRun, xxh3_hex},
};

/// Bytes read per batch: large enough to amortise the syscalls.
const BATCH_BYTES: usize = 16 << 20;
/// Pagemap entries read at a time (256 MiB of address space).
const PAGEMAP_BATCH: u64 = 65536;
/// `process_vm_readv` takes at most this many remote iovecs (`IOV_MAX`).
const MAX_IOVS: usize = 1024;

const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;
const PM_FILE: u64 = 1 << 61;

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

    /// Saves what `vma` needs saved; returns its page runs.
    pub fn save(&mut self, vma: &Vma, sink: &mut PageSink) -> Result<Vec<PageRun>, DumpError> {
        let runs = match vma.kind() {
            MappingKind::Kernel | MappingKind::SharedFile => return Ok(Vec::new()),
            MappingKind::SharedAnonymous => return self.save_shared(vma, sink),
            MappingKind::Anonymous => self.runs(vma, |e| e & (PM_PRESENT | PM_SWAPPED) != 0)?,
            // Written pages of a private file mapping are anonymous copies;
            // the others are still the file's.
            MappingKind::PrivateFile => self.runs(vma, |e| {
                e & PM_SWAPPED != 0 || (e & PM_PRESENT != 0 && e & PM_FILE == 0)
            })?,
        };
        self.read_runs(vma, &runs, sink)
    }

    /// Runs of pages whose pagemap entry satisfies `keep`, at most
    /// [`MAX_RUN_PAGES`] long.
    fn runs(&self, vma: &Vma, keep: impl Fn(u64) -> bool) -> Result<Vec<Run>, DumpError> {
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
    /// mapping (`SEEK_DATA`/`SEEK_HOLE` on `/proc/PID/map_files/…`).
    fn save_shared(&mut self, vma: &Vma, sink: &mut PageSink) -> Result<Vec<PageRun>, DumpError> {
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
        let mut saved = Vec::with_capacity(runs.len());
        for (first, count) in runs {
            let bytes = (count * PAGE_SIZE) as usize;
            let mut buf = sink.buffer(bytes);
            let offset = vma.offset + first * PAGE_SIZE;
            // Past the end of the object reads short: the rest is zeros.
            let mut got = 0;
            while got < bytes {
                match file.read_at(&mut buf[got..bytes], offset + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(source) => {
                        return Err(DumpError::Proc {
                            pid: self.pid,
                            path,
                            source,
                        });
                    }
                }
            }
            buf[got..bytes].fill(0);
            let xxh3 = xxh3_hex(&buf);
            let at = sink.put(buf)?;
            saved.push(PageRun {
                first_page: first,
                pages: count,
                at,
                xxh3,
            });
        }
        Ok(saved)
    }

    /// Reads `runs` of `vma` in batches and appends them to the image.
    fn read_runs(
        &mut self,
        vma: &Vma,
        runs: &[Run],
        sink: &mut PageSink,
    ) -> Result<Vec<PageRun>, DumpError> {
        let mut saved = Vec::with_capacity(runs.len());
        let mut rest = runs;
        while !rest.is_empty() {
            // A batch: as many runs as fit in the buffer and one syscall.
            let mut bytes = 0usize;
            let mut n = 0;
            while n < rest.len() && n < MAX_IOVS {
                let run_bytes = (rest[n].1 * PAGE_SIZE) as usize;
                if n > 0 && bytes + run_bytes > BATCH_BYTES {
                    break;
                }
                bytes += run_bytes;
                n += 1;
            }
            let (batch, tail) = rest.split_at(n);
            rest = tail;
            let mut buf = sink.buffer(bytes);
            self.read_batch(vma, batch, &mut buf)?;
            // Checksums here, on the reading core; the writer only writes.
            let mut offset = 0;
            let mut pending = Vec::with_capacity(batch.len());
            for &(first, count) in batch {
                let len = (count * PAGE_SIZE) as usize;
                pending.push((
                    first,
                    count,
                    offset as u64,
                    xxh3_hex(&buf[offset..offset + len]),
                ));
                offset += len;
            }
            let base = sink.put(buf)?;
            saved.extend(
                pending
                    .into_iter()
                    .map(|(first_page, pages, offset, xxh3)| PageRun {
                        first_page,
                        pages,
                        at: base + offset,
                        xxh3,
                    }),
            );
        }
        Ok(saved)
    }

    /// Fills `buf` with the pages of `batch`.
    fn read_batch(&mut self, vma: &Vma, batch: &[Run], buf: &mut [u8]) -> Result<(), DumpError> {
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
            let n = if vma.readable() {
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
        Ok(())
    }
}

fn seek(file: &File, offset: u64, whence: libc::c_int) -> Option<u64> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: lseek on an fd we own; no memory is passed.
    let rc = unsafe { libc::lseek(file.as_raw_fd(), offset as libc::off_t, whence) };
    (rc >= 0).then_some(rc as u64)
}
