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

use std::{fs::File, io, os::unix::fs::FileExt as _, path::PathBuf};

use memmap2::{Advice, MmapMut, MmapOptions, RemapOptions};

use super::{WriteError, format::PAGE_SIZE};

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
