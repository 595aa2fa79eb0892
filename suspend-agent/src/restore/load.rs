//! Every mapping's contents, prepared in the zone before the process is
//! created, and checked on the way: each page run is read from
//! `pages.img` straight into its place and its hash verified there,
//! by as many threads as there are CPUs (first-touch memory is the slow
//! part), each decompressing the runs it reads that were compressed. The restore child, a copy of this process, inherits the prepared
//! memory copy-on-write; once this process unmaps the zone, the child's
//! pages are its own and nothing was copied twice.

use std::{fs::File, os::unix::fs::FileExt as _, path::Path};

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
    let total: u64 = runs.iter().map(|r| r.0.len).sum();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    // Contiguous shares of about equal size.
    let share = total.div_ceil(workers as u64).max(1);
    let mut groups: Vec<Vec<(&Run, bool)>> = vec![Vec::new(); workers];
    let mut taken = 0u64;
    for run in runs {
        let i = ((taken / share) as usize).min(workers - 1);
        groups[i].push(run);
        taken += run.0.len;
    }
    let read = |group: &Vec<(&Run, bool)>| {
        let mut reader = RunReader::default();
        group
            .iter()
            .try_for_each(|&(run, fresh)| read_run(pages, path, run, fresh, &mut reader))
    };
    std::thread::scope(|scope| {
        // A share no thread can be had for (a cgroup at its `pids.max`) is
        // read on this one.
        let mut here = Vec::new();
        let handles: Vec<_> = groups
            .iter()
            .filter(|g| !g.is_empty())
            .filter_map(|group| {
                let spawned = std::thread::Builder::new()
                    .name("suspend-load".into())
                    .spawn_scoped(scope, move || read(group));
                spawned.map_err(|_| here.push(group)).ok()
            })
            .collect();
        let mut result = here.into_iter().try_for_each(read);
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
