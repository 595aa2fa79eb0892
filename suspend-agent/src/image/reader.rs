//! Reading and verifying an image: every record's checksum, the header's
//! format and version, the end record's counts, and (with `verify_pages`)
//! every page run's checksum. A bad image is refused with what is wrong and
//! where.

use std::{
    fs::File,
    io::{self, BufRead as _, BufReader},
    os::unix::fs::FileExt as _,
    path::{Path, PathBuf},
};

use super::format::{
    FORMAT, FORMAT_VERSION, File as FdRecord, Header, META_FILE, Mapping, PAGE_SIZE, PAGES_FILE,
    Process, Record, Thread, Witness, xxh3_hex,
};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}:{line}: checksum mismatch (the record was changed or damaged)")]
    Checksum { path: PathBuf, line: usize },
    #[error("{path}:{line}: not a record: {reason}")]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: not a suspend image (format {found:?})")]
    NotAnImage { path: PathBuf, found: String },
    #[error("{path}: image format version {found}; this agent reads version {FORMAT_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("{path}: truncated: {reason}")]
    Truncated { path: PathBuf, reason: String },
    #[error("{path}: page run at byte {at} of mapping {start:#x}: {reason}")]
    Pages {
        path: PathBuf,
        start: u64,
        at: u64,
        reason: String,
    },
}

/// A whole image, read and checked.
#[derive(Debug)]
pub struct Image {
    pub dir: PathBuf,
    pub header: Header,
    pub process: Process,
    pub threads: Vec<Thread>,
    pub mappings: Vec<Mapping>,
    pub files: Vec<FdRecord>,
    pub witness: Witness,
    pub page_bytes: u64,
}

impl Image {
    /// Reads `dir`, checking every record; with `verify_pages`, also every
    /// page run against `pages.img`.
    pub fn read(dir: &Path, verify_pages: bool) -> Result<Self, ReadError> {
        let path = dir.join(META_FILE);
        let io = |source| ReadError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        let mut records = Vec::new();
        let mut end = None;
        for (index, line) in BufReader::new(file).lines().enumerate() {
            let line_no = index + 1;
            let line = line.map_err(io)?;
            let malformed = |reason: String| ReadError::Malformed {
                path: path.clone(),
                line: line_no,
                reason,
            };
            let (hash, json) = line
                .split_once(' ')
                .ok_or_else(|| malformed("no checksum".into()))?;
            if xxh3_hex(json.as_bytes()) != hash {
                return Err(ReadError::Checksum {
                    path: path.clone(),
                    line: line_no,
                });
            }
            let record: Record =
                serde_json::from_str(json).map_err(|e| malformed(e.to_string()))?;
            if let Some(_end) = &end {
                return Err(malformed("a record after the end record".into()));
            }
            match record {
                Record::End(e) => end = Some(e),
                r => records.push(r),
            }
        }
        let truncated = |reason: &str| ReadError::Truncated {
            path: path.clone(),
            reason: reason.into(),
        };
        let end = end.ok_or_else(|| truncated("no end record"))?;
        if end.records != records.len() as u64 {
            return Err(truncated(
                "the end record counts a different number of records",
            ));
        }
        let mut records = records.into_iter();
        let header = match records.next() {
            Some(Record::Header(h)) => h,
            _ => {
                return Err(ReadError::NotAnImage {
                    path: path.clone(),
                    found: "no header".into(),
                });
            }
        };
        if header.format != FORMAT {
            return Err(ReadError::NotAnImage {
                path: path.clone(),
                found: header.format,
            });
        }
        if header.version != FORMAT_VERSION {
            return Err(ReadError::Version {
                path: path.clone(),
                found: header.version,
            });
        }
        let (mut process, mut witness) = (None, None);
        let (mut threads, mut mappings, mut files) = (Vec::new(), Vec::new(), Vec::new());
        for record in records {
            match record {
                Record::Process(p) => process = Some(p),
                Record::Thread(t) => threads.push(t),
                Record::Mapping(m) => mappings.push(m),
                Record::File(f) => files.push(f),
                Record::Witness(w) => witness = Some(w),
                Record::Header(_) | Record::End(_) => {
                    return Err(truncated("a second header or end"));
                }
            }
        }
        let image = Self {
            dir: dir.to_path_buf(),
            header,
            process: process.ok_or_else(|| truncated("no process record"))?,
            threads,
            mappings,
            files,
            witness: witness.ok_or_else(|| truncated("no witness record"))?,
            page_bytes: end.page_bytes,
        };
        image.check_pages(verify_pages)?;
        Ok(image)
    }

    /// Checks that `pages.img` has the size the end record says and, with
    /// `verify`, every run's checksum.
    fn check_pages(&self, verify: bool) -> Result<(), ReadError> {
        let path = self.dir.join(PAGES_FILE);
        let file = File::open(&path).map_err(|source| ReadError::Io {
            path: path.clone(),
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|source| ReadError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        if len != self.page_bytes {
            return Err(ReadError::Truncated {
                path,
                reason: format!("{len} bytes, the image says {}", self.page_bytes),
            });
        }
        let mut buf = Vec::new();
        for mapping in &self.mappings {
            for run in &mapping.pages {
                let bytes = run.pages * PAGE_SIZE;
                let bad = |reason: String| ReadError::Pages {
                    path: path.clone(),
                    start: mapping.start,
                    at: run.at,
                    reason,
                };
                if run.at % PAGE_SIZE != 0 || run.at + bytes > len {
                    return Err(bad("outside pages.img".into()));
                }
                if run.first_page + run.pages > (mapping.end - mapping.start) / PAGE_SIZE {
                    return Err(bad("outside its mapping".into()));
                }
                if verify {
                    buf.resize(bytes as usize, 0);
                    file.read_exact_at(&mut buf, run.at)
                        .map_err(|e| bad(e.to_string()))?;
                    if xxh3_hex(&buf) != run.xxh3 {
                        return Err(bad("checksum mismatch".into()));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn saved_pages(&self) -> u64 {
        self.mappings.iter().map(Mapping::saved_pages).sum()
    }
}
