//! Every mapping's contents, prepared in the zone before the process is
//! created, and checked on the way: each page run is read from
//! `pages.img` straight into its place and its hash verified there,
//! by as many threads as there are CPUs (first-touch memory is the slow
//! part), each taking the next run as it finishes one and decompressing
//! it if it was compressed. The restore child, a copy of this process,
//! inherits the prepared memory copy-on-write; once this process unmaps
//! the zone, the child's pages are its own and nothing was copied twice.

use std::{
    fs::File,
    os::unix::fs::FileExt as _,
    path::Path,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
};

use super::{
    RestoreError,
    plan::{Premap, Source},
};
use crate::image::{format::blake3_hex, pages::RunReader, reader::ReadError};

/// One page run to read in.
#[derive(Clone, Debug)]
pub struct Run {
    /// Where it goes (in the zone).
    pub to: u64,
    pub len: u64,
    /// Offset in `pages.img`.
    pub from: u64,
    /// Bytes of its compressed frame there; none: raw.
    pub stored: Option<u64>,
    pub blake3: String,
    /// The mapping it belongs to, for messages.
    pub mapping: u64,
}

/// Maps every premap at its place in the (reserved) zone.
fn map(premaps: &[Premap]) -> Result<(), RestoreError> {
    for premap in premaps {
        let (prot, flags, fd, offset) = match premap.source {
            Source::Anonymous { grows_down } => (
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE
                    | libc::MAP_ANONYMOUS
                    | if grows_down { libc::MAP_GROWSDOWN } else { 0 },
                -1,
                0,
            ),
            Source::File {
                fd,
                offset,
                shared,
                prot,
            } => (
                prot,
                if shared {
                    libc::MAP_SHARED
                } else {
                    libc::MAP_PRIVATE
                },
                fd,
                offset,
            ),
        };
        // SAFETY: replaces part of our own reservation (the zone).
        unsafe { crate::sys::mem::map_fixed(premap.at, premap.len, prot, flags, fd, offset) }
            .map_err(|source| RestoreError::PrepareCall {
                what: format!("preparing the mapping for {:#x}", premap.target),
                source,
            })?;
    }
    Ok(())
}

/// Reads and checks one run in place, decompressing a compressed one with
/// `reader`. Into `fresh` memory (a private anonymous premap, untouched:
/// it reads as zeros) only the pages that hold data are written: a raw
/// run's data in `pages.img` (its holes are zero pages the dump did not
/// store), a compressed run's pages that are not all zeros. Its zero pages
/// stay untouched (the hash reads them as the kernel's zero page).
fn read_run(
    pages: &File,
    path: &Path,
    run: &Run,
    fresh: bool,
    reader: &mut RunReader,
) -> Result<(), RestoreError> {
    // SAFETY: `to..to+len` lies in a premap just mapped read-write, owned
    // by this restore; no other thread touches the same run.
    let dst = unsafe { std::slice::from_raw_parts_mut(run.to as *mut u8, run.len as usize) };
    let bad = |reason: String| {
        RestoreError::Read(ReadError::Pages {
            path: path.to_path_buf(),
            start: run.mapping,
            at: run.from,
            reason,
        })
    };
    let end = run.from + run.len;
    let mut at = run.from;
    if let Some(stored) = run.stored {
        let read = if fresh {
            reader.read_sparse(pages, run.from, stored, dst)
        } else {
            reader.read(pages, run.from, run.stored, dst)
        };
        read.map_err(|e| bad(e.to_string()))?;
        at = end;
    }
    while at < end {
        let (data, hole) = if fresh {
            let fd = std::os::fd::AsFd::as_fd(pages);
            let data = match crate::sys::fd::seek(fd, at, libc::SEEK_DATA) {
                Ok(data) => data,
                // No data from `at` to the end of the file.
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break,
                Err(e) => return Err(bad(e.to_string())),
            };
            if data >= end {
                break;
            }
            let hole = crate::sys::fd::seek(fd, data, libc::SEEK_HOLE).map_or(end, |h| h.min(end));
            (data, hole)
        } else {
            (at, end)
        };
        let (from, to) = ((data - run.from) as usize, (hole - run.from) as usize);
        pages
            .read_exact_at(&mut dst[from..to], data)
            .map_err(|e| bad(e.to_string()))?;
        at = hole.max(data + 1);
    }
    if blake3_hex(dst) != run.blake3 {
        return Err(bad("hash mismatch".into()));
    }
    Ok(())
}

/// Writes `bytes` at the start of `premap`, an anonymous premap
/// [`load`] mapped (the vDSO's proxy, whose contents the agent makes
/// rather than reads).
pub fn fill(premap: &Premap, bytes: &[u8]) {
    assert!(
        matches!(premap.source, Source::Anonymous { .. }) && bytes.len() as u64 <= premap.len,
        "a fill of {} bytes into a premap of {}",
        bytes.len(),
        premap.len
    );
    // SAFETY: `load` mapped the premap at `premap.at`, `premap.len` bytes
    // of private anonymous memory read+write in this process's zone, which
    // nothing else refers to; `bytes` fits in it (checked above).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), premap.at as *mut u8, bytes.len());
    }
}

/// Maps the premaps and reads every run into them, checking each.
pub fn load(premaps: &[Premap], pages: &File, path: &Path) -> Result<(), RestoreError> {
    map(premaps)?;
    // Each run, and whether it goes into fresh memory.
    let runs: Vec<(&Run, bool)> = premaps
        .iter()
        .flat_map(|p| {
            let fresh = matches!(p.source, Source::Anonymous { .. });
            p.runs.iter().map(move |r| (r, fresh))
        })
        .collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    // Each thread takes the next run as it finishes one: equal shares by
    // size finish apart (a compressed run costs more than a raw one, a
    // raw run's holes nothing).
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let read = || {
        let mut reader = RunReader::default();
        while !failed.load(Ordering::Relaxed) {
            let Some(&(run, fresh)) = runs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            if let Err(e) = read_run(pages, path, run, fresh, &mut reader) {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        // This thread reads too, and alone where no other thread can be
        // had (a cgroup at its `pids.max`).
        let handles: Vec<_> = (1..workers)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("suspend-load".into())
                    .spawn_scoped(scope, read)
                    .ok()
            })
            .collect();
        let mut result = read();
        for handle in handles {
            let joined = handle.join().unwrap_or_else(|_| {
                Err(RestoreError::Failed {
                    pid: 0,
                    step: "loading memory".into(),
                    detail: "a page reader panicked".into(),
                })
            });
            if result.is_ok() {
                result = joined;
            }
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{format::PAGE_SIZE, pages::Packer};

    const PAGE: usize = PAGE_SIZE as usize;

    /// `len` bytes of xorshift noise from `seed`.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// `len` bytes like a heap's: words, small numbers, a zero page in
    /// eight.
    fn heap_like(seed: u64, len: usize) -> Vec<u8> {
        const WORDS: [&str; 8] = [
            "self", "None", "value", "items", "key", "len", "dict", "name",
        ];
        let picks = noise(seed, len / 4);
        let mut out = Vec::with_capacity(len + 8);
        for (i, &p) in picks.iter().cycle().enumerate() {
            if out.len() >= len {
                break;
            }
            out.extend_from_slice(WORDS[(p % 8) as usize].as_bytes());
            out.push(if i % 5 == 0 { p } else { b' ' });
        }
        out.truncate(len);
        out.chunks_mut(PAGE).step_by(8).for_each(|p| p.fill(0));
        out
    }

    /// A page file of `contents`, a run each (packed where it shrinks),
    /// and the premap of fresh anonymous memory they go into, at a place
    /// of its own: anonymous memory left mapped (never let go, so no other
    /// test's mapping can take it), which `load` maps over; the caller
    /// unmaps it.
    fn image(file: &File, contents: &[Vec<u8>]) -> Premap {
        let total: usize = contents.iter().map(Vec::len).sum();
        let place = memmap2::MmapMut::map_anon(total).expect("anonymous memory");
        let at = place.as_ptr() as u64;
        std::mem::forget(place);
        let mut packer = Packer::new().expect("a compressor");
        let (mut runs, mut from, mut to) = (Vec::new(), 0u64, at);
        for (i, bytes) in contents.iter().enumerate() {
            let (kept, stored) = match packer.pack(bytes) {
                Some(frame) => (frame.to_vec(), Some(frame.len() as u64)),
                None => (bytes.clone(), None),
            };
            file.write_all_at(&kept, from).expect("write");
            runs.push(Run {
                to,
                len: bytes.len() as u64,
                from,
                stored,
                blake3: blake3_hex(bytes),
                mapping: i as u64,
            });
            from += kept.len() as u64;
            to += bytes.len() as u64;
        }
        Premap {
            at,
            len: total as u64,
            target: at,
            source: Source::Anonymous { grows_down: false },
            runs,
        }
    }

    #[test]
    fn every_run_is_loaded_and_checked_whatever_thread_reads_it() {
        let (file, path) = crate::sys::fd::scratch_file("load");
        // Compressed and raw runs of several sizes, in no order.
        let contents: Vec<Vec<u8>> = (0..40u64)
            .map(|i| {
                let len = PAGE * (1 + (i as usize * 7) % 19);
                if i % 3 == 0 {
                    noise(i + 1, len)
                } else {
                    heap_like(i + 1, len)
                }
            })
            .collect();
        let premap = image(&file, &contents);
        load(std::slice::from_ref(&premap), &file, &path).expect("loads");
        // SAFETY: the premap was just mapped by `load` and is read only here.
        let loaded =
            unsafe { std::slice::from_raw_parts(premap.at as *const u8, premap.len as usize) };
        assert!(loaded == contents.concat(), "the memory differs");
        // A run whose hash does not match fails the load.
        let mut bad = image(&file, &contents);
        bad.runs[17].blake3 = blake3_hex(b"another run");
        let err = load(std::slice::from_ref(&bad), &file, &path).expect_err("a bad hash");
        assert!(err.to_string().contains("hash mismatch"), "{err}");
        for p in [&premap, &bad] {
            // SAFETY: nothing refers to the premaps any more.
            unsafe { crate::sys::mem::unmap(p.at, p.len) }.expect("munmap");
        }
    }

    /// Loads 256 MiB into fresh memory, as a resume does (its hashes
    /// checked): heap-like runs (compressed) then random ones (raw), and
    /// the two mixed: medians of 5.
    /// `cargo test --release -p suspend-agent --bin suspend-agent -- --ignored --nocapture bench_load`
    #[test]
    #[ignore = "a micro-benchmark"]
    fn bench_load() {
        let (file, path) = crate::sys::fd::scratch_file("bench-load");
        let run = 256 * PAGE;
        let heap: Vec<Vec<u8>> = (0..128).map(|i| heap_like(i + 1, run)).collect();
        let random: Vec<Vec<u8>> = (0..128).map(|i| noise(i + 1000, run)).collect();
        let halves: Vec<Vec<u8>> = heap.iter().chain(&random).cloned().collect();
        let mixed: Vec<Vec<u8>> = heap
            .iter()
            .zip(&random)
            .flat_map(|(h, r)| [h.clone(), r.clone()])
            .collect();
        for (what, contents) in [("heap then random", &halves), ("mixed", &mixed)] {
            let mut times: Vec<f64> = (0..5)
                .map(|_| {
                    let premap = image(&file, contents);
                    let start = std::time::Instant::now();
                    load(std::slice::from_ref(&premap), &file, &path).expect("loads");
                    let took = start.elapsed().as_secs_f64();
                    // SAFETY: nothing refers to the premap any more.
                    unsafe { crate::sys::mem::unmap(premap.at, premap.len) }.expect("munmap");
                    took
                })
                .collect();
            times.sort_by(f64::total_cmp);
            eprintln!(
                "load of 256 MiB, {what}: median {:.3} s (min {:.3}, max {:.3})",
                times[2], times[0], times[4]
            );
        }
    }
}
