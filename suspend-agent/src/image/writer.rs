//! Writing an image durably: everything goes to a temporary directory next
//! to the target (`.NAME.partial-PID`), every file is `fsync`ed, then the
//! directory is renamed into place and its parent `fsync`ed. An image that
//! is not finished is removed; a half-written image never has the final
//! name.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, Write as _},
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use super::{
    PageFile,
    format::{End, META_FILE, PAGE_SIZE, PAGES_FILE, Record, SIG_FILE, xxh3_hex},
    leftovers::Marker,
    sign,
};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path} exists: choose another image directory or remove it")]
    Exists { path: PathBuf },
    #[error("{path}: the parent directory does not exist")]
    NoParent { path: PathBuf },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("serializing a record: {0}")]
    Json(#[from] serde_json::Error),
}

pub struct ImageWriter {
    target: PathBuf,
    partial: PathBuf,
    meta: BufWriter<File>,
    /// BLAKE3 of everything written to `meta.jsonl`, for the signature.
    meta_hash: blake3::Hasher,
    pages: Option<PageFile>,
    /// Names the partial directory for the next daemon, should this agent
    /// be killed before the image is finished.
    marker: Marker,
    page_bytes: u64,
    records: u64,
    finished: bool,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WriteError {
    let path = path.to_path_buf();
    move |source| WriteError::Io { op, path, source }
}

/// Creates `path`, 0600, readable too (the page file is mapped shared,
/// which needs both).
fn create_file(path: &Path) -> Result<File, WriteError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("creating", path))
}

impl ImageWriter {
    /// Starts an image that will be called `target`.
    pub fn create(target: &Path) -> Result<Self, WriteError> {
        if target.exists() {
            return Err(WriteError::Exists {
                path: target.to_path_buf(),
            });
        }
        let parent = match target.parent() {
            Some(p) if p.as_os_str().is_empty() => Path::new("."),
            Some(p) => p,
            None => {
                return Err(WriteError::NoParent {
                    path: target.to_path_buf(),
                });
            }
        };
        if !parent.is_dir() {
            return Err(WriteError::NoParent {
                path: target.to_path_buf(),
            });
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
        let _ = fs::remove_dir_all(&partial); // a leftover of an agent that died
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&partial)
            .map_err(io_err("creating", &partial))?;
        let meta = create_file(&partial.join(META_FILE));
        let pages = create_file(&partial.join(PAGES_FILE));
        let (meta, pages) = match (meta, pages) {
            (Ok(m), Ok(p)) => (m, p),
            (Err(e), _) | (_, Err(e)) => {
                let _ = fs::remove_dir_all(&partial);
                return Err(e);
            }
        };
        let pages = PageFile::new(pages, partial.join(PAGES_FILE));
        let marker = Marker::new(&fs::canonicalize(&partial).unwrap_or_else(|_| partial.clone()));
        Ok(Self {
            marker,
            target: target.to_path_buf(),
            partial,
            meta: BufWriter::with_capacity(1 << 16, meta),
            meta_hash: blake3::Hasher::new(),
            pages: Some(pages),
            page_bytes: 0,
            records: 0,
            finished: false,
        })
    }

    /// Appends one metadata record.
    pub fn record(&mut self, record: &Record) -> Result<(), WriteError> {
        let json = serde_json::to_string(record)?;
        let path = self.partial.join(META_FILE);
        let line = format!("{} {json}\n", xxh3_hex(json.as_bytes()));
        self.meta_hash.update(line.as_bytes());
        self.meta
            .write_all(line.as_bytes())
            .map_err(io_err("writing", &path))?;
        self.records += 1;
        Ok(())
    }

    pub fn page_bytes(&self) -> u64 {
        self.page_bytes
    }

    /// Makes the first `bytes` of `pages.img` ready before the process is
    /// frozen (allocated, mapped, populated: see [`PageFile`]), so the
    /// frozen process waits for none of it. What the dump does not use is
    /// cut off at `finish`. Never more than nine tenths of the free space:
    /// an estimate must not fail a dump that would have fitted.
    pub fn prewarm(&mut self, bytes: u64) -> Result<(), WriteError> {
        let bytes = self.at_most_free(bytes);
        self.page_file()?.reserve(bytes)
    }

    /// Allocates the first `bytes` of `pages.img` on disk before the
    /// process is frozen, for a dump that writes its pages
    /// ([`Self::page_sink`]) rather than copying them into the mapped file.
    /// The same cap as [`Self::prewarm`].
    pub fn preallocate(&mut self, bytes: u64) -> Result<(), WriteError> {
        let bytes = self.at_most_free(bytes);
        self.page_file()?.allocate_to(bytes)
    }

    /// `bytes`, whole pages, but never more than nine tenths of the free
    /// space.
    fn at_most_free(&self, bytes: u64) -> u64 {
        let free = nix::sys::statvfs::statvfs(&self.partial)
            .map(|s| s.blocks_available() * s.fragment_size())
            .unwrap_or(0);
        bytes.min(free / 10 * 9) / PAGE_SIZE * PAGE_SIZE
    }

    /// The page file, to write the first `len` bytes into (`pwrite`); its
    /// space is allocated first, so a full disk fails here. The page file
    /// is that long when the image is finished.
    pub fn page_sink(&mut self, len: u64) -> Result<(&File, &Path), WriteError> {
        self.page_bytes = len;
        let pages = self.page_file()?;
        pages.allocate_to(len)?;
        Ok(pages.file())
    }

    /// The page file takes only its first `len` bytes (fewer than
    /// [`Self::page_sink`] was given: its runs were compressed).
    pub fn pages_took(&mut self, len: u64) {
        self.page_bytes = len;
    }

    /// The page file's first `len` bytes, to copy the pages into; the page
    /// file is that long when the image is finished.
    pub fn page_area(&mut self, len: u64) -> Result<&mut [u8], WriteError> {
        self.page_bytes = len;
        self.page_file()?.area(len)
    }

    /// The pages copied so far (the first [`Self::page_bytes`] of the page
    /// file), to hash.
    pub fn pages_written(&mut self) -> Result<&[u8], WriteError> {
        let len = self.page_bytes;
        let area: &[u8] = self.page_file()?.area(len)?;
        Ok(area)
    }

    /// Punches `stretches` (first byte, length) of zero pages out of the
    /// page file (see [`super::pages`]).
    pub fn leave_out(&mut self, stretches: &[(u64, u64)]) -> Result<(), WriteError> {
        self.page_file()?.leave_out(stretches);
        Ok(())
    }

    fn page_file(&mut self) -> Result<&mut PageFile, WriteError> {
        let path = self.partial.join(PAGES_FILE);
        self.pages.as_mut().ok_or_else(|| WriteError::Io {
            op: "writing",
            path,
            source: io::Error::other("the page file is closed"),
        })
    }

    /// Writes the end record, signs the metadata with `key`, makes
    /// everything durable and renames the image into place.
    pub fn finish(mut self, key: &ed25519_dalek::SigningKey) -> Result<PathBuf, WriteError> {
        let end = Record::End(End {
            records: self.records,
            page_bytes: self.page_bytes,
        });
        self.record(&end)?;
        let meta_path = self.partial.join(META_FILE);
        self.meta.flush().map_err(io_err("writing", &meta_path))?;
        self.meta
            .get_ref()
            .sync_all()
            .map_err(io_err("fsync", &meta_path))?;
        let sig_path = self.partial.join(SIG_FILE);
        let mut sig = create_file(&sig_path)?;
        sig.write_all(sign::sign(key, &self.meta_hash.finalize()).as_bytes())
            .and_then(|()| sig.sync_all())
            .map_err(io_err("writing", &sig_path))?;
        let pages_path = self.partial.join(PAGES_FILE);
        self.page_file()?;
        let pages = self
            .pages
            .take()
            .expect("checked above")
            .close(self.page_bytes)?;
        pages.sync_all().map_err(io_err("fsync", &pages_path))?;
        sync_dir(&self.partial)?;
        if self.target.exists() {
            return Err(WriteError::Exists {
                path: self.target.clone(),
            });
        }
        fs::rename(&self.partial, &self.target)
            .map_err(io_err("renaming into place", &self.target))?;
        self.finished = true;
        self.marker.clear();
        if let Some(parent) = self.target.parent() {
            sync_dir(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            })?;
        }
        Ok(self.target.clone())
    }
}

fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

impl Drop for ImageWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_dir_all(&self.partial);
        }
    }
}
