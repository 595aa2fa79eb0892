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
    PageSink,
    format::{End, META_FILE, PAGE_SIZE, PAGES_FILE, Record, xxh3_hex},
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
    pages: File,
    page_bytes: u64,
    /// Bytes of `pages.img` written ahead of the dump (see `prewarm`).
    prewarmed: u64,
    records: u64,
    finished: bool,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WriteError {
    let path = path.to_path_buf();
    move |source| WriteError::Io { op, path, source }
}

fn create_file(path: &Path) -> Result<File, WriteError> {
    OpenOptions::new()
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
        Ok(Self {
            target: target.to_path_buf(),
            partial,
            meta: BufWriter::with_capacity(1 << 16, meta),
            pages,
            page_bytes: 0,
            prewarmed: 0,
            records: 0,
            finished: false,
        })
    }

    /// Appends one metadata record.
    pub fn record(&mut self, record: &Record) -> Result<(), WriteError> {
        let json = serde_json::to_string(record)?;
        let path = self.partial.join(META_FILE);
        writeln!(self.meta, "{} {json}", xxh3_hex(json.as_bytes()))
            .map_err(io_err("writing", &path))?;
        self.records += 1;
        Ok(())
    }

    pub fn page_bytes(&self) -> u64 {
        self.page_bytes
    }

    /// Makes the page-cache pages of the first `bytes` of `pages.img` exist
    /// before the process is frozen. Copying into pages that exist is far
    /// cheaper than into fresh ones (on this kind of machine the difference
    /// dominates a dump), and this way the frozen process waits for none of
    /// the allocation. What the dump does not use is cut off at `finish`.
    /// Never more than nine tenths of the free space: an estimate must not
    /// fail a dump that would have fitted.
    pub fn prewarm(&mut self, bytes: u64) -> Result<(), WriteError> {
        use std::os::unix::fs::FileExt as _;
        let free = nix::sys::statvfs::statvfs(&self.partial)
            .map(|s| s.blocks_available() * s.fragment_size())
            .unwrap_or(0);
        let bytes = bytes.min(free / 10 * 9) / PAGE_SIZE * PAGE_SIZE;
        let path = self.partial.join(PAGES_FILE);
        let zeros = vec![0u8; 16 << 20];
        let mut at = 0u64;
        while at < bytes {
            let n = (bytes - at).min(zeros.len() as u64) as usize;
            self.pages
                .write_all_at(&zeros[..n], at)
                .map_err(io_err("writing", &path))?;
            at += n as u64;
        }
        self.prewarmed = bytes;
        Ok(())
    }

    /// A [`PageSink`] appending to the page file on a thread of its own;
    /// hand it back with [`Self::end_pages`].
    pub fn page_sink(&mut self) -> Result<PageSink, WriteError> {
        let path = self.partial.join(PAGES_FILE);
        let file = self.pages.try_clone().map_err(io_err("opening", &path))?;
        Ok(PageSink::start(file, path, self.page_bytes))
    }

    /// Waits for `sink` to finish writing.
    pub fn end_pages(&mut self, sink: PageSink) -> Result<(), WriteError> {
        self.page_bytes = sink.finish()?;
        Ok(())
    }

    /// Writes the end record, makes everything durable and renames the
    /// image into place.
    pub fn finish(mut self) -> Result<PathBuf, WriteError> {
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
        let pages_path = self.partial.join(PAGES_FILE);
        if self.prewarmed > self.page_bytes {
            self.pages
                .set_len(self.page_bytes)
                .map_err(io_err("truncating", &pages_path))?;
        }
        self.pages
            .sync_all()
            .map_err(io_err("fsync", &pages_path))?;
        sync_dir(&self.partial)?;
        if self.target.exists() {
            return Err(WriteError::Exists {
                path: self.target.clone(),
            });
        }
        fs::rename(&self.partial, &self.target)
            .map_err(io_err("renaming into place", &self.target))?;
        self.finished = true;
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
