//! The page file, mapped into the agent. A dump reads the frozen process's
//! pages straight into their place in the page cache (`process_vm_readv`
//! with the mapping as its destination): one copy, on as many cores as
//! there are, instead of a copy into a buffer and a second one by `write`.
//!
//! Copying into page-cache pages that do not exist yet costs far more than
//! the copy itself (allocating, zeroing, a fault per page), so the space is
//! made ready before the freeze: allocated on disk with `fallocate` (a full
//! filesystem fails there, with `ENOSPC`, never later as a `SIGBUS` in the
//! mapping), mapped, and populated for writing (`MADV_POPULATE_WRITE`).
//!
//! That is for a dump that lets the process run on (`--leave-running`),
//! where only the frozen time counts. A dump that keeps the process frozen
//! until the image is durable writes instead ([`PageFile::file`]): each
//! batch is written, hashed and handed to the disk as it is read, so the
//! disk starts at once and nothing is pre-faulted; only the space is
//! allocated ahead ([`PageFile::allocate_to`]).
//!
//! Zero pages are not stored, either way: a written-through batch skips
//! them (the file is new and its allocated space reads as zeros), and a
//! stretch of [`HOLE_MIN_PAGES`] or more is punched out of the file
//! ([`leave_out`]), as is one copied into the mapped file, once hashed. A
//! reader sees zeros there, and each run's hash covers them as before.
//!
//! A written-through dump compresses its runs ([`Packer`]): each run is one
//! Zstandard frame, the frames of a batch are written one after the other
//! at the next free place in the file (no longer page-aligned), and a run
//! that would not shrink by a tenth is stored raw. Zero pages cost almost
//! nothing in a frame, so such a dump punches no holes. [`RunReader`] reads
//! a run back either way.

use std::{fs::File, io, os::unix::fs::FileExt as _, path::PathBuf};

use memmap2::{Advice, MmapMut, MmapOptions, RemapOptions};

use super::{WriteError, format::PAGE_SIZE};

/// The Zstandard level page runs are compressed at: the fastest of the
/// standard levels (about 0.9 GB/s per core here on a Python heap, at an
/// eighth of its size; random data is recognised at several GB/s).
const ZSTD_LEVEL: i32 = 1;

/// Compresses page runs, one frame each, with a buffer of its own.
pub struct Packer {
    zstd: zstd::bulk::Compressor<'static>,
    out: Vec<u8>,
}

impl Packer {
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            zstd: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
            out: Vec::new(),
        })
    }

    /// `run` as one compressed frame, or `None` where that would not save
    /// a tenth of it (it is then stored raw).
    pub fn pack(&mut self, run: &[u8]) -> Option<&[u8]> {
        // A frame that does not fit in nine tenths of the run fails to be
        // made: that is the answer, not an error.
        let limit = run.len() - run.len() / 10;
        self.out.resize(self.out.len().max(limit), 0);
        let n = self
            .zstd
            .compress_to_buffer(run, &mut self.out[..limit])
            .ok()?;
        Some(&self.out[..n])
    }
}

/// Runs in a row that did not shrink after which [`Probe`] stops trying
/// each one.
pub const GIVE_UP_AFTER: u32 = 8;
/// Once [`Probe`] has given up, one run in this many is still tried.
pub const RETRY_EVERY: u32 = 64;

/// Which runs of a stream are worth trying to compress: every one, until
/// [`GIVE_UP_AFTER`] in a row did not shrink (random or already
/// compressed memory: trying costs a pass over each run for nothing);
/// then one in [`RETRY_EVERY`], so that a stream whose later part
/// compresses is compressed again from the first run that shrinks.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    give_up_after: u32,
    retry_every: u32,
    /// Runs tried in a row that did not shrink.
    misses: u32,
    /// Runs not tried since the last one that was, once given up.
    skipped: u32,
}

impl Default for Probe {
    fn default() -> Self {
        Self::new(GIVE_UP_AFTER, RETRY_EVERY)
    }
}

impl Probe {
    /// Gives up after `give_up_after` misses in a row, then tries one run
    /// in `retry_every` (at least 1: every run).
    pub fn new(give_up_after: u32, retry_every: u32) -> Self {
        Self {
            give_up_after,
            retry_every: retry_every.max(1),
            misses: 0,
            skipped: 0,
        }
    }

    /// Whether to try compressing the next run; a run not tried is stored
    /// raw.
    pub fn wants(&mut self) -> bool {
        if self.misses < self.give_up_after {
            return true;
        }
        self.skipped += 1;
        if self.skipped >= self.retry_every {
            self.skipped = 0;
            return true;
        }
        false
    }

    /// What trying a run gave: `packed` if it shrank.
    pub fn tried(&mut self, packed: bool) {
        if packed {
            self.misses = 0;
            self.skipped = 0;
        } else {
            self.misses = self.misses.saturating_add(1);
        }
    }
}

/// Why a run could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Reading the page file failed (the disk, not the image, may be at
    /// fault).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// What the page file holds there is no frame of this run.
    #[error("{0}")]
    Damaged(String),
}

/// Reads page runs back from a page file, raw or compressed.
#[derive(Default)]
pub struct RunReader {
    frame: Vec<u8>,
    /// A compressed run decompressed, for [`Self::read_sparse`].
    aside: Vec<u8>,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl RunReader {
    /// Reads the run at `at` into `pages`, its pages (uncompressed):
    /// `stored` bytes of one compressed frame, or (`None`) `pages.len()`
    /// bytes raw. The error says what went wrong; the caller names the
    /// file and the run, and checks the hash.
    pub fn read(
        &mut self,
        file: &File,
        at: u64,
        stored: Option<u64>,
        pages: &mut [u8],
    ) -> Result<(), RunError> {
        let Some(stored) = stored else {
            return Ok(file.read_exact_at(pages, at)?);
        };
        // The reader's bounds check keeps a frame below its run's size.
        let len = usize::try_from(stored)
            .ok()
            .filter(|&n| n < pages.len())
            .ok_or_else(|| {
                RunError::Damaged(format!(
                    "a frame of {stored} bytes for {} bytes",
                    pages.len()
                ))
            })?;
        // Kept as long as the longest frame so far: resized to each, it
        // would be filled with zeros each time it grows.
        if self.frame.len() < len {
            self.frame.resize(len, 0);
        }
        let frame = &mut self.frame[..len];
        file.read_exact_at(frame, at)?;
        let zstd = match &mut self.zstd {
            Some(z) => z,
            None => self.zstd.insert(zstd::bulk::Decompressor::new()?),
        };
        match zstd.decompress_to_buffer(&*frame, pages) {
            Ok(n) if n == pages.len() => Ok(()),
            Ok(n) => Err(RunError::Damaged(format!(
                "the frame holds {n} bytes, not {}",
                pages.len()
            ))),
            Err(e) => Err(RunError::Damaged(format!(
                "the frame does not decompress: {e}"
            ))),
        }
    }

    /// [`Self::read`] of a compressed run into `pages`, memory that reads
    /// as zeros and was never touched: decompressed aside, only its pages
    /// that are not all zeros are copied in, so its zero pages stay
    /// untouched (not made resident), as a raw run's holes do.
    pub fn read_sparse(
        &mut self,
        file: &File,
        at: u64,
        stored: u64,
        pages: &mut [u8],
    ) -> Result<(), RunError> {
        // As long as the longest run so far (see `frame`).
        let mut aside = std::mem::take(&mut self.aside);
        if aside.len() < pages.len() {
            aside.resize(pages.len(), 0);
        }
        let read = self.read(file, at, Some(stored), &mut aside[..pages.len()]);
        if read.is_ok() {
            let page = PAGE_SIZE as usize;
            for (from, to) in aside.chunks(page).zip(pages.chunks_mut(page)) {
                if !is_zero(from) {
                    to.copy_from_slice(from);
                }
            }
        }
        self.aside = aside;
        read
    }
}

/// The shortest stretch of zero pages worth a hole (`fallocate`): shorter
/// ones are only not written.
pub const HOLE_MIN_PAGES: usize = 16;

/// Whether `page` holds only zeros.
pub fn is_zero(page: &[u8]) -> bool {
    // OR-folded 64 bytes at a time (vectorised), stopping at the first
    // block that is not zero.
    let (blocks, rest) = page.as_chunks::<64>();
    blocks
        .iter()
        .all(|b| b.iter().fold(0u8, |acc, &x| acc | x) == 0)
        && rest.iter().all(|&x| x == 0)
}

/// The stretches of whole pages of `bytes` (page-aligned, whole pages)
/// that hold only zeros: (first byte, length), in order.
pub fn zero_stretches(bytes: &[u8]) -> Vec<(usize, usize)> {
    let page = PAGE_SIZE as usize;
    let mut stretches: Vec<(usize, usize)> = Vec::new();
    for (i, p) in bytes.chunks(page).enumerate() {
        if !is_zero(p) {
            continue;
        }
        let at = i * page;
        match stretches.last_mut() {
            Some((from, len)) if *from + *len == at => *len += p.len(),
            _ => stretches.push((at, p.len())),
        }
    }
    stretches
}

/// Punches `len` bytes at `at` out of `file`: the space goes back to the
/// filesystem and the range reads as zeros. Where the filesystem cannot,
/// nothing changes (the range holds zeros already).
pub fn leave_out(file: &File, at: u64, len: u64) {
    use nix::fcntl::FallocateFlags as F;
    let fd = std::os::fd::AsFd::as_fd(file);
    let flags = F::FALLOC_FL_PUNCH_HOLE | F::FALLOC_FL_KEEP_SIZE;
    if let Err(e) = nix::fcntl::fallocate(fd, flags, at as libc::off_t, len as libc::off_t) {
        log::debug!("punching {len} bytes of zeros at {at} out of the page file: {e}");
    }
}

pub struct PageFile {
    file: File,
    path: PathBuf,
    map: Option<MmapMut>,
    /// Bytes at the start of the file that are allocated, mapped and
    /// populated.
    ready: u64,
    /// Bytes at the start of the file that are allocated (at least
    /// `ready`); what the image does not use is cut off at `close`.
    allocated: u64,
}

impl PageFile {
    pub fn new(file: File, path: PathBuf) -> Self {
        Self {
            file,
            path,
            map: None,
            ready: 0,
            allocated: 0,
        }
    }

    /// The file, to write pages into with `pwrite`, and its path.
    pub fn file(&self) -> (&File, &std::path::Path) {
        (&self.file, &self.path)
    }

    /// Allocates the first `bytes` (whole pages) on disk, without mapping
    /// them: a full filesystem fails here, before any page is copied.
    pub fn allocate_to(&mut self, bytes: u64) -> Result<(), WriteError> {
        let bytes = bytes.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        if bytes > self.allocated {
            self.allocate(self.allocated, bytes - self.allocated)?;
            self.allocated = bytes;
        }
        Ok(())
    }

    /// Makes the first `bytes` (whole pages) ready to be copied into.
    pub fn reserve(&mut self, bytes: u64) -> Result<(), WriteError> {
        let bytes = bytes.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        if bytes <= self.ready {
            return Ok(());
        }
        let (from, more) = (self.ready, bytes - self.ready);
        self.allocate_to(bytes)?;
        let len = usize::try_from(bytes)
            .map_err(|_| self.error("mapping", io::ErrorKind::InvalidInput.into()))?;
        match &mut self.map {
            // SAFETY: nothing borrows the mapping while it moves (`&mut
            // self`), and the file is at least `len` long.
            Some(map) => unsafe { map.remap(len, RemapOptions::new().may_move(true)) }
                .map_err(|e| self.error("mapping", e))?,
            None => {
                // SAFETY: the file is ours alone (created in a 0700
                // directory) and nothing truncates it while it is mapped.
                let map = unsafe { MmapOptions::new().len(len).map_mut(&self.file) }
                    .map_err(|e| self.error("mapping", e))?;
                self.map = Some(map);
            }
        }
        let map = self.map.as_ref().expect("mapped above");
        // Populated for writing; where the kernel cannot (before 5.14), the
        // first copy into each page pays for it instead.
        match map.advise_range(Advice::PopulateWrite, from as usize, more as usize) {
            Err(e) if e.raw_os_error() != Some(libc::EINVAL) => {
                return Err(self.error("populating", e));
            }
            _ => {}
        }
        self.ready = bytes;
        Ok(())
    }

    /// The first `len` bytes of the file, ready and writable.
    pub fn area(&mut self, len: u64) -> Result<&mut [u8], WriteError> {
        if len == 0 {
            return Ok(&mut []);
        }
        self.reserve(len)?;
        let map = self.map.as_mut().expect("reserve maps");
        Ok(&mut map[..len as usize])
    }

    /// Punches each of `stretches` (first byte, length) of zero pages out
    /// of the file, once what was copied into the mapped file there is
    /// hashed.
    pub fn leave_out(&self, stretches: &[(u64, u64)]) {
        for &(at, len) in stretches {
            leave_out(&self.file, at, len);
        }
    }

    /// Unmaps the file and cuts it to `len` bytes; returns it.
    pub fn close(mut self, len: u64) -> Result<File, WriteError> {
        self.map = None;
        if self.allocated > len {
            self.file
                .set_len(len)
                .map_err(|e| self.error("truncating", e))?;
        }
        Ok(self.file)
    }

    /// Allocates `more` bytes at `from`: `fallocate`, or zeros written
    /// where the filesystem cannot.
    fn allocate(&self, from: u64, more: u64) -> Result<(), WriteError> {
        let fd = std::os::fd::AsFd::as_fd(&self.file);
        match nix::fcntl::fallocate(
            fd,
            nix::fcntl::FallocateFlags::empty(),
            from as libc::off_t,
            more as libc::off_t,
        ) {
            Ok(()) => return Ok(()),
            // Not supported by this filesystem.
            Err(
                nix::errno::Errno::EOPNOTSUPP
                | nix::errno::Errno::ENOSYS
                | nix::errno::Errno::EINVAL,
            ) => {}
            Err(e) => return Err(self.error("allocating space for", e.into())),
        }
        let zeros = vec![0u8; (16 << 20).min(more as usize)];
        let mut at = from;
        while at < from + more {
            let n = (from + more - at).min(zeros.len() as u64) as usize;
            self.file
                .write_all_at(&zeros[..n], at)
                .map_err(|e| self.error("writing", e))?;
            at += n as u64;
        }
        Ok(())
    }

    fn error(&self, op: &'static str, source: io::Error) -> WriteError {
        WriteError::Io {
            op,
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = PAGE_SIZE as usize;

    #[test]
    fn a_run_packed_reads_back_and_one_that_does_not_shrink_stays_raw() {
        let (file, _) = crate::sys::fd::scratch_file("pages-pack");
        let mut packer = Packer::new().expect("a compressor");
        // Text-like pages shrink; pseudo-random ones do not.
        let text: Vec<u8> = (0..8 * PAGE)
            .map(|i| b"pages "[i % 6] ^ (i / 4096) as u8)
            .collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..4 * PAGE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(packer.pack(&noise).is_none(), "random bytes were packed");
        let frame = packer.pack(&text).expect("text packs").to_vec();
        assert!(frame.len() < text.len() / 10, "{} bytes", frame.len());
        file.write_all_at(&noise, 0).expect("write");
        file.write_all_at(&frame, noise.len() as u64)
            .expect("write");
        let mut reader = RunReader::default();
        let mut back = vec![0u8; text.len()];
        reader
            .read(
                &file,
                noise.len() as u64,
                Some(frame.len() as u64),
                &mut back,
            )
            .expect("the frame reads back");
        assert!(back == text);
        let mut raw = vec![0u8; noise.len()];
        reader
            .read(&file, 0, None, &mut raw)
            .expect("raw reads back");
        assert!(raw == noise);
        // A damaged frame, a frame too short and one claiming the whole run
        // are errors, never pages.
        let mut bad = frame.clone();
        bad[frame.len() / 2] ^= 0x55;
        file.write_all_at(&bad, noise.len() as u64).expect("write");
        let damaged = reader.read(
            &file,
            noise.len() as u64,
            Some(frame.len() as u64),
            &mut back,
        );
        let short = reader.read(&file, noise.len() as u64, Some(3), &mut back);
        let whole = reader.read(&file, 0, Some(text.len() as u64), &mut back);
        for (what, result) in [("damaged", damaged), ("short", short), ("whole", whole)] {
            // A flipped byte may still decompress (zstd frames here carry
            // no checksum): then the run's hash is what catches it.
            if what == "damaged" && result.is_ok() {
                assert!(back != text, "a damaged frame gave the run's bytes back");
                continue;
            }
            assert!(result.is_err(), "{what}: {result:?}");
        }
    }

    #[test]
    fn a_sparse_read_leaves_the_zero_pages_of_fresh_memory_untouched() {
        let (file, _) = crate::sys::fd::scratch_file("pages-sparse-read");
        // Pages: data, six zero pages, data.
        let mut run = vec![0u8; 8 * PAGE];
        run[..PAGE].fill(7);
        run[7 * PAGE + 9] = 1;
        let frame = Packer::new()
            .expect("a compressor")
            .pack(&run)
            .expect("packs")
            .to_vec();
        file.write_all_at(&frame, 0).expect("write");
        let mut fresh = MmapMut::map_anon(run.len()).expect("anonymous memory");
        RunReader::default()
            .read_sparse(&file, 0, frame.len() as u64, &mut fresh)
            .expect("reads back");
        // Asked before anything reads it (a read maps the zero page).
        let resident =
            crate::sys::mem::resident(fresh.as_ptr() as u64, run.len() as u64).expect("mincore");
        assert_eq!(
            resident,
            [true, false, false, false, false, false, false, true],
            "which pages were touched"
        );
        assert!(fresh[..] == run[..]);
    }

    #[test]
    fn a_probe_gives_up_after_misses_in_a_row_and_tries_again_now_and_then() {
        // Which of `n` runs are tried, each answering as `shrinks` says.
        let tried = |probe: &mut Probe, n: usize, shrinks: &dyn Fn(usize) -> bool| {
            (0..n)
                .filter(|&i| {
                    let wants = probe.wants();
                    if wants {
                        probe.tried(shrinks(i));
                    }
                    wants
                })
                .collect::<Vec<_>>()
        };
        // Nothing shrinks: the first 8, then one in 64.
        let mut probe = Probe::default();
        let never = tried(&mut probe, 8 + 3 * 64, &|_| false);
        let expected: Vec<usize> = (0..8).chain([71, 135, 199]).collect();
        assert_eq!(never, expected);
        // Everything shrinks: every run is tried.
        let mut probe = Probe::default();
        assert_eq!(tried(&mut probe, 500, &|_| true).len(), 500);
        // A miss now and then never makes it give up.
        let mut probe = Probe::default();
        assert_eq!(tried(&mut probe, 500, &|i| i % 8 != 7).len(), 500);
        // Incompressible, then compressible from run 100 on: the retry at
        // 135 finds it, and from there every run is tried again.
        let mut probe = Probe::default();
        let later = tried(&mut probe, 300, &|i| i >= 100);
        let expected: Vec<usize> = (0..8).chain([71]).chain(135..300).collect();
        assert_eq!(later, expected);
        // Given up again after new misses in a row (here 2, retrying one
        // run in 3).
        let mut probe = Probe::new(2, 3);
        let mixed = tried(&mut probe, 12, &|i| i == 7);
        assert_eq!(mixed, [0, 1, 4, 7, 8, 9]);
        // A retry of every run is no probing at all.
        let mut probe = Probe::new(0, 1);
        assert_eq!(tried(&mut probe, 10, &|_| false).len(), 10);
    }

    #[test]
    fn a_reader_reused_for_runs_of_every_size_reads_each_back() {
        let path = std::env::temp_dir().join(format!("suspend-reuse-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("a scratch file");
        let _ = std::fs::remove_file(&path);
        let mut packer = Packer::new().expect("a compressor");
        // Runs of 1, 256, 3 and 2 pages, each with a zero page or more but
        // the first: (at, stored, bytes).
        let mut runs = Vec::new();
        let mut at = 0u64;
        for (pages, seed) in [(1usize, 3u8), (256, 5), (3, 7), (2, 11)] {
            let mut run: Vec<u8> = (0..pages * PAGE)
                .map(|i| seed.wrapping_mul((i % 251) as u8))
                .collect();
            if pages > 1 {
                run[PAGE..2 * PAGE].fill(0);
            }
            let frame = packer.pack(&run).expect("packs").to_vec();
            file.write_all_at(&frame, at).expect("write");
            runs.push((at, frame.len() as u64, run));
            at += frame.len() as u64;
        }
        let mut reader = RunReader::default();
        // Small after large and large after small, both ways of reading.
        for &i in &[0, 1, 2, 3, 1, 0, 3, 2] {
            let (at, stored, run) = &runs[i];
            let mut back = vec![0u8; run.len()];
            reader
                .read(&file, *at, Some(*stored), &mut back)
                .expect("read");
            assert!(back == *run, "read of run {i}");
            let mut fresh = MmapMut::map_anon(run.len()).expect("anonymous memory");
            reader
                .read_sparse(&file, *at, *stored, &mut fresh)
                .expect("read_sparse");
            assert!(fresh[..] == run[..], "sparse read of run {i}");
        }
        // A frame given for a run of another size is damage, even with the
        // reader's buffers longer than either.
        let (at, stored, _) = &runs[2];
        let mut wrong = vec![0u8; 2 * PAGE];
        assert!(matches!(
            reader.read(&file, *at, Some(*stored), &mut wrong),
            Err(RunError::Damaged(_))
        ));
    }

    #[test]
    fn a_page_is_zero_only_if_every_byte_is() {
        let mut page = vec![0u8; PAGE];
        assert!(is_zero(&page));
        for at in [0, 63, 64, 2048, PAGE - 1] {
            page[at] = 1;
            assert!(!is_zero(&page), "a 1 at byte {at}");
            page[at] = 0;
        }
    }

    #[test]
    fn zero_stretches_are_whole_pages_merged_in_order() {
        // Pages: data, zero, zero, data, zero.
        let mut bytes = vec![0u8; 5 * PAGE];
        bytes[17] = 9;
        bytes[3 * PAGE + PAGE - 1] = 9;
        assert_eq!(
            zero_stretches(&bytes),
            vec![(PAGE, 2 * PAGE), (4 * PAGE, PAGE)]
        );
        assert_eq!(zero_stretches(&vec![0u8; 3 * PAGE]), vec![(0, 3 * PAGE)]);
        assert!(zero_stretches(&vec![1u8; 2 * PAGE]).is_empty());
        assert!(zero_stretches(&[]).is_empty());
    }

    /// A heap-like run: 64-byte objects of a small type id, a pointer
    /// into one region, a counter and ASCII words from a small
    /// vocabulary (zstd level 1 keeps about a fifth of it).
    fn heap_like(x: &mut u64, bytes: usize) -> Vec<u8> {
        const WORDS: [&str; 16] = [
            "self", "None", "value", "items", "__init__", "return", "key", "len", "append", "dict",
            "list", "str", "object", "index", "True", "name",
        ];
        let mut next = move || {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            *x
        };
        let mut out = Vec::with_capacity(bytes);
        while out.len() < bytes {
            let r = next();
            out.extend_from_slice(&(r % 12).to_le_bytes());
            out.extend_from_slice(&(0x7f3a_2c00_0000 | (r >> 40) << 4).to_le_bytes());
            out.extend_from_slice(&((r >> 20) % 1000).to_le_bytes());
            let mut text = Vec::with_capacity(40);
            while text.len() < 40 {
                text.extend_from_slice(WORDS[(next() % 16) as usize].as_bytes());
                text.push(b' ');
            }
            out.extend_from_slice(&text[..40]);
        }
        out.truncate(bytes);
        out
    }

    /// A run of the benchmark: where it goes, where it is, how it is kept.
    struct Placed {
        to: usize,
        len: usize,
        at: u64,
        stored: Option<u64>,
    }

    /// How a pass of the benchmark reads the runs.
    #[derive(Clone, Copy, Debug)]
    enum Mode {
        /// `RunReader::read` of every run.
        Read,
        /// `RunReader::read_sparse` of the compressed runs (`read` of raw).
        Sparse,
        /// Only touches each page (a write of one byte): the faults.
        Touch,
        /// Only populates each run (`MADV_POPULATE_WRITE`).
        Populate,
        /// `RunReader::read` of every run into one buffer of the thread's,
        /// not into `dst`: the reading and decompressing alone.
        Aside,
    }

    /// Reads `runs` from `file` into `dst` with `threads` threads (two
    /// contiguous halves, as the loader shares them): seconds of wall time
    /// and of CPU time, the threads' added (this machine is shared: the
    /// CPU time is what other load changes least).
    fn pass(
        file: &File,
        runs: &[Placed],
        dst: &mut [u8],
        threads: usize,
        mode: Mode,
    ) -> (f64, f64) {
        let start = std::time::Instant::now();
        let cpu = std::sync::atomic::AtomicU64::new(0);
        let cpu = &cpu;
        let share = runs.len().div_ceil(threads);
        let base = dst.as_mut_ptr() as usize;
        std::thread::scope(|scope| {
            for group in runs.chunks(share) {
                scope.spawn(move || {
                    let thread_ns =
                        || crate::sys::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID).expect("clock");
                    let began = thread_ns();
                    let mut reader = RunReader::default();
                    let mut aside = vec![0u8; 256 * PAGE];
                    for run in group {
                        // SAFETY: each run is its own part of `dst`, which
                        // outlives the scope; no two threads share a run.
                        let to = unsafe {
                            std::slice::from_raw_parts_mut((base + run.to) as *mut u8, run.len)
                        };
                        match (mode, run.stored) {
                            (Mode::Touch, _) => to.iter_mut().step_by(PAGE).for_each(|b| *b = 1),
                            (Mode::Populate, _) => {
                                crate::sys::mem::populate_write(
                                    to.as_ptr() as u64,
                                    to.len() as u64,
                                )
                                .expect("populate");
                            }
                            (Mode::Aside, _) => reader
                                .read(file, run.at, run.stored, &mut aside[..run.len])
                                .expect("read"),
                            (Mode::Sparse, Some(stored)) => {
                                reader.read_sparse(file, run.at, stored, to).expect("read")
                            }
                            _ => reader.read(file, run.at, run.stored, to).expect("read"),
                        }
                    }
                    cpu.fetch_add(thread_ns() - began, std::sync::atomic::Ordering::Relaxed);
                });
            }
        });
        let cpu = cpu.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9;
        (start.elapsed().as_secs_f64(), cpu)
    }

    /// Packs 256 MiB of a mix (heap-like runs, some with zero pages, random
    /// runs, zero runs, runs half heap-like half random) with [`Packer`],
    /// then reads it back into fresh anonymous memory and into memory
    /// already touched, on one thread and on two: medians of 5.
    /// `cargo test --release -p suspend-agent --bin suspend-agent -- --ignored --nocapture bench_read_runs`
    #[test]
    #[ignore = "a micro-benchmark"]
    fn bench_read_runs() {
        let path = std::env::temp_dir().join(format!("suspend-bench-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("a scratch file");
        let _ = std::fs::remove_file(&path);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut packer = Packer::new().expect("a compressor");
        let (mut runs, mut at, mut to, mut zero_pages) = (Vec::new(), 0u64, 0, 0);
        let start = std::time::Instant::now();
        // Runs of 256 pages, and of 1 to 64 pages (a third each way).
        let mut i = 0u64;
        while to < 256 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pages = if i.is_multiple_of(3) {
                256
            } else {
                1 + (x % 64) as usize
            };
            let run_len = (pages * PAGE).min((256 << 20) - to);
            i += 1;
            let run = match i % 10 {
                // Heap-like with every fourth page zero.
                4 | 5 => {
                    let mut run = heap_like(&mut x, run_len);
                    run.chunks_mut(PAGE).step_by(4).for_each(|p| p.fill(0));
                    run
                }
                // Random.
                6 | 7 => {
                    let mut y = x ^ i;
                    (0..run_len)
                        .map(|_| {
                            y ^= y << 13;
                            y ^= y >> 7;
                            y ^= y << 17;
                            y as u8
                        })
                        .collect()
                }
                8 => vec![0u8; run_len],
                // Heap-like pages and random ones.
                9 => {
                    let mut run = heap_like(&mut x, run_len);
                    let mut y = x;
                    for p in run.chunks_mut(PAGE).skip(1).step_by(2) {
                        for b in p {
                            y ^= y << 13;
                            y ^= y >> 7;
                            y ^= y << 17;
                            *b = y as u8;
                        }
                    }
                    run
                }
                _ => heap_like(&mut x, run_len),
            };
            zero_pages += run.chunks(PAGE).filter(|p| is_zero(p)).count();
            let (bytes, stored) = match packer.pack(&run) {
                Some(frame) => (frame.to_vec(), Some(frame.len() as u64)),
                None => (run, None),
            };
            file.write_all_at(&bytes, at).expect("write");
            runs.push(Placed {
                to,
                len: run_len,
                at,
                stored,
            });
            at += bytes.len() as u64;
            to += run_len;
        }
        let total = to;
        eprintln!(
            "packed {} MiB ({} runs) into {} MiB in {:.3} s; {} runs raw, {zero_pages} zero pages",
            total >> 20,
            runs.len(),
            at >> 20,
            start.elapsed().as_secs_f64(),
            runs.iter().filter(|r| r.stored.is_none()).count(),
        );
        let median = |f: &mut dyn FnMut() -> (f64, f64)| {
            let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..5).map(|_| f()).unzip();
            wall.sort_by(f64::total_cmp);
            cpu.sort_by(f64::total_cmp);
            (wall[2], cpu[2])
        };
        let mut warm = MmapMut::map_anon(total).expect("anonymous memory");
        warm.fill(1);
        for threads in [1, 2] {
            for (mode, fresh) in [
                (Mode::Touch, true),
                (Mode::Populate, true),
                (Mode::Aside, false),
                (Mode::Read, true),
                (Mode::Sparse, true),
                (Mode::Read, false),
                (Mode::Sparse, false),
            ] {
                let (wall, cpu) = median(&mut || {
                    if fresh {
                        let mut dst = MmapMut::map_anon(total).expect("anonymous memory");
                        pass(&file, &runs, &mut dst, threads, mode)
                    } else {
                        pass(&file, &runs, &mut warm, threads, mode)
                    }
                });
                eprintln!(
                    "{threads} thread(s), {mode:?} into {} memory: {wall:.3} s ({:.2} GB/s), CPU {cpu:.3} s",
                    if fresh { "fresh" } else { "touched" },
                    total as f64 / wall / 1e9
                );
            }
        }
    }
}
