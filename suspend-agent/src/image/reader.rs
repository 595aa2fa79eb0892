//! Reading and verifying an image: only regular files, of bounded size;
//! every record's checksum, the header's format and version, then the
//! signature over the whole metadata (nothing in a record is believed
//! before that), the end record's counts, every record's ranges, and (with
//! `verify_pages`) every page run's hash. A bad image is refused with what
//! is wrong and where.

use std::{
    io,
    path::{Path, PathBuf},
};

use ed25519_dalek::VerifyingKey;

use super::{
    format::{
        FORMAT, FORMAT_VERSION, FORMAT_VERSION_OLDEST, File as FdRecord, Header, MAX_META_BYTES,
        MAX_RUN_PAGES, META_FILE, Mapping, PAGE_SIZE, PAGES_FILE, Process, Record, SIG_FILE,
        Thread, Witness, blake3_hex, xxh3_hex,
    },
    pages::RunReader,
    sign::{self, AuthError},
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
    #[error(
        "{path}: image format version {found}; this agent reads versions {FORMAT_VERSION_OLDEST} to {FORMAT_VERSION}"
    )]
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
    #[error("{path}: mapping {start:#x}: {reason}")]
    BadMapping {
        path: PathBuf,
        start: u64,
        reason: String,
    },
    #[error("{path}: {what}")]
    BadRecord { path: PathBuf, what: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
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
    /// The id of the key that signed it.
    pub signer: String,
}

/// Splits `meta.jsonl` into its lines, each checked against its checksum:
/// `(line number, JSON text)`.
fn checked_lines<'a>(path: &Path, bytes: &'a [u8]) -> Result<Vec<(usize, &'a str)>, ReadError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ReadError::Malformed {
        path: path.to_path_buf(),
        line: bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1,
        reason: "not UTF-8".into(),
    })?;
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let (hash, json) = line.split_once(' ').ok_or_else(|| ReadError::Malformed {
            path: path.to_path_buf(),
            line: line_no,
            reason: "no checksum".into(),
        })?;
        if xxh3_hex(json.as_bytes()) != hash {
            return Err(ReadError::Checksum {
                path: path.to_path_buf(),
                line: line_no,
            });
        }
        lines.push((line_no, json));
    }
    Ok(lines)
}

impl Image {
    /// Reads `dir`, checking every record and that a key in `trusted`
    /// signed it; with `verify_pages`, also every page run against
    /// `pages.img`.
    pub fn read(
        dir: &Path,
        verify_pages: bool,
        trusted: &[VerifyingKey],
    ) -> Result<Self, ReadError> {
        let path = dir.join(META_FILE);
        let bytes = sign::read_bounded(&path, MAX_META_BYTES).map_err(|source| ReadError::Io {
            path: path.clone(),
            source,
        })?;
        let lines = checked_lines(&path, &bytes)?;
        let malformed = |line: usize, reason: String| ReadError::Malformed {
            path: path.clone(),
            line,
            reason,
        };
        let truncated = |reason: &str| ReadError::Truncated {
            path: path.clone(),
            reason: reason.into(),
        };
        // The header first, for a clear word on another format or version.
        let header = match lines.first().map(|(_, json)| serde_json::from_str(json)) {
            Some(Ok(Record::Header(h))) => h,
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
        if !(FORMAT_VERSION_OLDEST..=FORMAT_VERSION).contains(&header.version) {
            return Err(ReadError::Version {
                path: path.clone(),
                found: header.version,
            });
        }
        // Nothing else is believed before this.
        let signer = sign::verify(&dir.join(SIG_FILE), &blake3::hash(&bytes), trusted)?;

        let mut records = Vec::new();
        let mut end = None;
        for &(line_no, json) in &lines[1..] {
            let record: Record =
                serde_json::from_str(json).map_err(|e| malformed(line_no, e.to_string()))?;
            if end.is_some() {
                return Err(malformed(line_no, "a record after the end record".into()));
            }
            match record {
                Record::End(e) => end = Some(e),
                r => records.push(r),
            }
        }
        let end = end.ok_or_else(|| truncated("no end record"))?;
        if end.records != 1 + records.len() as u64 {
            return Err(truncated(
                "the end record counts a different number of records",
            ));
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
            signer,
        };
        image.check_mappings()?;
        image.check_records()?;
        image.check_pages(verify_pages)?;
        Ok(image)
    }

    /// Checks that `pages.img` is a regular file of the size the end record
    /// says and every run lies in it and in its mapping; with `verify`,
    /// every run's hash too.
    fn check_pages(&self, verify: bool) -> Result<(), ReadError> {
        let path = self.dir.join(PAGES_FILE);
        let io_err = |source| ReadError::Io {
            path: path.clone(),
            source,
        };
        let file = sign::open_regular(&path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        if len != self.page_bytes {
            return Err(ReadError::Truncated {
                path,
                reason: format!("{len} bytes, the image says {}", self.page_bytes),
            });
        }
        let mut buf = Vec::new();
        let mut reader = RunReader::default();
        for mapping in &self.mappings {
            for run in &mapping.pages {
                let bad = |reason: String| ReadError::Pages {
                    path: path.clone(),
                    start: mapping.start,
                    at: run.at,
                    reason,
                };
                if run.pages == 0 || run.pages > MAX_RUN_PAGES {
                    return Err(bad(format!("{} pages in one run", run.pages)));
                }
                let bytes = run.pages * PAGE_SIZE;
                match (run.stored, self.header.codec) {
                    (Some(_), None) => {
                        return Err(bad("compressed, in an image that names no codec".into()));
                    }
                    // A frame is kept only where it is smaller than the run.
                    (Some(stored), Some(_)) if stored == 0 || stored >= bytes => {
                        return Err(bad(format!("a frame of {stored} bytes for {bytes}")));
                    }
                    // Runs are page-aligned unless frames are packed in.
                    (None, None) if run.at % PAGE_SIZE != 0 => {
                        return Err(bad("not page-aligned".into()));
                    }
                    _ => {}
                }
                if run.at.checked_add(run.stored_len()).is_none_or(|e| e > len) {
                    return Err(bad("outside pages.img".into()));
                }
                if run
                    .first_page
                    .checked_add(run.pages)
                    .is_none_or(|e| e > (mapping.end - mapping.start) / PAGE_SIZE)
                {
                    return Err(bad("outside its mapping".into()));
                }
                if verify {
                    buf.resize(bytes as usize, 0);
                    reader
                        .read(&file, run.at, run.stored, &mut buf)
                        .map_err(|e| bad(e.to_string()))?;
                    if blake3_hex(&buf) != run.blake3 {
                        return Err(bad("hash mismatch".into()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads every page run in turn and gives `look` its address in the
    /// process and its pages, until `look` finds something: that, or
    /// `None`. An unreadable run is an error naming it.
    pub fn find_in_pages<T>(
        &self,
        mut look: impl FnMut(u64, &[u8]) -> Option<T>,
    ) -> Result<Option<T>, ReadError> {
        let path = self.dir.join(PAGES_FILE);
        let file = sign::open_regular(&path).map_err(|source| ReadError::Io {
            path: path.clone(),
            source,
        })?;
        let mut buf = Vec::new();
        let mut reader = RunReader::default();
        for mapping in &self.mappings {
            for run in &mapping.pages {
                buf.resize((run.pages * PAGE_SIZE) as usize, 0);
                reader
                    .read(&file, run.at, run.stored, &mut buf)
                    .map_err(|e| ReadError::Pages {
                        path: path.clone(),
                        start: mapping.start,
                        at: run.at,
                        reason: e.to_string(),
                    })?;
                let at = mapping.start + run.first_page * PAGE_SIZE;
                if let Some(found) = look(at, &buf) {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// `(parked tid, resume signal, token)` from the client block saved in
    /// the image, if a client thread was parked for this suspension.
    pub fn parked_client(&self) -> Option<(u32, i32, u64)> {
        use suspend_common::{
            client_block::{CLIENT_BLOCK_MAGIC, ClientBlock},
            paths::CLIENT_MEMFD_NAME,
        };
        let needle = format!("/memfd:{CLIENT_MEMFD_NAME}");
        let mapping = self.mappings.iter().find(|m| m.path.starts_with(&needle))?;
        let run = mapping.pages.iter().find(|r| r.first_page == 0)?;
        let pages = std::fs::File::open(self.dir.join(PAGES_FILE)).ok()?;
        let mut bytes = vec![0u8; (run.pages * PAGE_SIZE) as usize];
        RunReader::default()
            .read(&pages, run.at, run.stored, &mut bytes)
            .ok()?;
        let raw = bytes.get(..size_of::<ClientBlock>())?;
        // SAFETY: `ClientBlock` is plain data; any bytes are a valid value.
        let block: ClientBlock = unsafe { std::ptr::read_unaligned(raw.as_ptr().cast()) };
        let valid = block.magic == CLIENT_BLOCK_MAGIC
            && block.pid == self.process.pid
            && block.active == 1
            && block.parked_tid != 0;
        valid.then_some((block.parked_tid, block.resume_signal as i32, block.token))
    }

    pub fn saved_pages(&self) -> u64 {
        self.mappings.iter().map(Mapping::saved_pages).sum()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::fs;

    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::image::{
        ImageWriter,
        format::{
            Codec, Cpu, End, FileId, MappingKind, MmFields, PageRun, Regs, Witness, xxh3_hex,
        },
    };
    use std::os::unix::fs::FileExt as _;

    /// The key these tests sign with.
    pub(crate) fn key() -> SigningKey {
        SigningKey::from_bytes(&[5u8; 32])
    }

    fn trusted() -> Vec<VerifyingKey> {
        vec![key().verifying_key()]
    }

    /// A small but complete image in a fresh temporary directory.
    fn write_image(name: &str) -> (PathBuf, PathBuf) {
        write_image_with(name, None)
    }

    /// The same, its one run compressed with `codec`.
    pub(crate) fn write_image_with(name: &str, codec: Option<Codec>) -> (PathBuf, PathBuf) {
        let root =
            std::env::temp_dir().join(format!("suspend-image-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let dir = root.join("img");
        let mut w = ImageWriter::create(&dir).unwrap();
        w.record(&Record::Header(Header {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            created_unix: 1,
            agent_version: "test".into(),
            kernel: "6.18".into(),
            hostname: "h".into(),
            cpu: Cpu {
                vendor: "AuthenticAMD".into(),
                xcr0: 0xe7,
                xstate_size: 2696,
            },
            page_size: PAGE_SIZE,
            codec,
        }))
        .unwrap();
        w.record(&Record::Process(Process {
            pid: 42,
            ppid: 1,
            comm: "w".into(),
            exe: Some(FileId {
                path: "/bin/w".into(),
                dev: 1,
                ino: 2,
                size: 3,
                mtime_ns: 4,
                identity: None,
            }),
            cwd: "/".into(),
            cwd_id: None,
            root: "/".into(),
            umask: 0o22,
            creds: Default::default(),
            rlimits: vec![],
            personality: 0,
            auxv: vec![(6, 4096)],
            mm: MmFields::default(),
            shared_pending: vec![],
            threads: 1,
            sigactions: vec![],
            brk: Some(0x20000),
            itimers: vec![],
            attributes: None,
            held_only: Vec::new(),
            session: None,
            cgroups: Vec::new(),
            vdso: None,
            posix_timers: Vec::new(),
        }))
        .unwrap();
        w.record(&Record::Thread(Thread {
            tid: 42,
            regs: Regs {
                rip: 0x1234,
                ..Default::default()
            },
            xstate: "AAAA".into(),
            sigmask: 0,
            pending: vec![],
            rseq: None,
            robust_list: (0, 24),
            stopped_with: None,
            sigaltstack: None,
            tid_address: Some(0x7000),
            confinement: None,
            seccomp: vec![],
            sched: None,
            timer_slack_ns: None,
            tsc: None,
            speculation: Vec::new(),
            ioprio: None,
            comm: None,
        }))
        .unwrap();
        let pages: Vec<u8> = (0..2 * PAGE_SIZE).map(|i| (i % 251) as u8).collect();
        let stored = match codec {
            None => {
                w.page_area(pages.len() as u64)
                    .unwrap()
                    .copy_from_slice(&pages);
                None
            }
            Some(Codec::Zstd) => {
                let mut packer = crate::image::pages::Packer::new().unwrap();
                let frame = packer.pack(&pages).expect("the pattern packs");
                w.page_sink(pages.len() as u64)
                    .unwrap()
                    .0
                    .write_all_at(frame, 0)
                    .unwrap();
                w.pages_took(frame.len() as u64);
                Some(frame.len() as u64)
            }
        };
        let at = 0;
        w.record(&Record::Mapping(Mapping {
            start: 0x10000,
            end: 0x14000,
            perms: "rw-p".into(),
            offset: 0,
            path: String::new(),
            kind: MappingKind::Anonymous,
            file: None,
            pages: vec![PageRun {
                first_page: 1,
                pages: 2,
                at,
                blake3: blake3_hex(&pages),
                stored,
            }],
            advice: Vec::new(),
            sealed: false,
        }))
        .unwrap();
        w.record(&Record::Witness(Witness {
            consistent: true,
            ran: vec![],
            frozen_threads: 1,
        }))
        .unwrap();
        assert_eq!(w.finish(&key()).unwrap(), dir);
        (root, dir)
    }

    #[test]
    fn round_trip() {
        let (root, dir) = write_image("roundtrip");
        let image = Image::read(&dir, true, &trusted()).unwrap();
        assert_eq!(image.process.pid, 42);
        assert_eq!(image.threads[0].regs.rip, 0x1234);
        assert_eq!(image.mappings[0].saved_pages(), 2);
        assert_eq!(image.page_bytes, 2 * PAGE_SIZE);
        assert!(image.witness.consistent);
        // No partial directory is left next to it.
        let names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["img"]);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn existing_target_is_refused() {
        let (root, dir) = write_image("exists");
        assert!(matches!(
            ImageWriter::create(&dir),
            Err(crate::image::WriteError::Exists { .. })
        ));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn unfinished_image_leaves_nothing() {
        let root = std::env::temp_dir().join(format!(
            "suspend-image-test-{}-unfinished",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let mut w = ImageWriter::create(&root.join("img")).unwrap();
        w.page_area(PAGE_SIZE).unwrap().fill(1);
        drop(w);
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
        fs::remove_dir_all(root).unwrap();
    }

    /// Changes the metadata and signs it again, as only the key's holder
    /// could: what is then refused is refused for what changed.
    fn edit_meta(dir: &Path, f: impl FnOnce(&mut Vec<String>)) {
        let path = edit_meta_unsigned(dir, f);
        let meta = fs::read(&path).unwrap();
        fs::write(dir.join(SIG_FILE), sign::sign(&key(), &blake3::hash(&meta))).unwrap();
    }

    /// Changes the metadata as anyone able to write the directory could.
    fn edit_meta_unsigned(dir: &Path, f: impl FnOnce(&mut Vec<String>)) -> PathBuf {
        let path = dir.join(META_FILE);
        let mut lines: Vec<String> = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        f(&mut lines);
        fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    /// Re-checksums a record line after changing its JSON.
    fn rewrite(line: &str, from: &str, to: &str) -> String {
        let (_, json) = line.split_once(' ').unwrap();
        let json = json.replace(from, to);
        format!("{} {json}", xxh3_hex(json.as_bytes()))
    }

    #[test]
    fn flipped_byte_in_a_record_is_refused() {
        let (root, dir) = write_image("flip");
        edit_meta(&dir, |l| l[2] = l[2].replace("4660", "4661")); // rip 0x1234
        let err = Image::read(&dir, false, &trusted()).unwrap_err();
        assert!(matches!(err, ReadError::Checksum { line: 3, .. }), "{err}");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn flipped_byte_in_the_pages_is_refused() {
        let (root, dir) = write_image("pages");
        let path = dir.join(PAGES_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes[100] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(
            Image::read(&dir, false, &trusted()).is_ok(),
            "sizes alone still match"
        );
        let err = Image::read(&dir, true, &trusted()).unwrap_err();
        assert!(
            matches!(err, ReadError::Pages { start: 0x10000, .. }),
            "{err}"
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_compressed_run_reads_back_and_any_flipped_byte_of_it_is_refused() {
        let (root, dir) = write_image_with("packed", Some(Codec::Zstd));
        let image = Image::read(&dir, true, &trusted()).unwrap();
        let stored = image.mappings[0].pages[0]
            .stored
            .expect("stored compressed");
        assert!(stored < PAGE_SIZE, "{stored} bytes for two pages");
        assert_eq!(image.page_bytes, stored);
        let path = dir.join(PAGES_FILE);
        let bytes = fs::read(&path).unwrap();
        // A flip the decoder ignores (a bit of the frame's header it does
        // not use) gives the run's very pages back: that one reads. Every
        // other is refused, by the decoder or by the run's hash.
        let mut refused = 0;
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            fs::write(&path, &bad).unwrap();
            match Image::read(&dir, true, &trusted()) {
                Err(ReadError::Pages { start: 0x10000, .. }) => refused += 1,
                Err(e) => panic!("byte {at}: {e}"),
                Ok(image) => assert_eq!(image.page_bytes, stored),
            }
        }
        assert!(
            refused >= bytes.len() - 4,
            "{refused} of {} refused",
            bytes.len()
        );
        fs::write(&path, &bytes).unwrap();
        // Signed, but not what a writer makes: a frame in an image that
        // names no codec, and a frame as long as its run.
        let cases = [
            (r#","codec":"zstd""#, "", "names no codec"),
            (
                &format!(r#""stored":{stored}"#)[..],
                r#""stored":8192"#,
                "a frame of 8192",
            ),
        ];
        let meta = fs::read(dir.join(META_FILE)).unwrap();
        let sig = fs::read(dir.join(SIG_FILE)).unwrap();
        for (from, to, says) in cases {
            edit_meta(&dir, |l| {
                for line in l.iter_mut() {
                    *line = rewrite(line, from, to);
                }
            });
            let err = Image::read(&dir, false, &trusted()).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
            fs::write(dir.join(META_FILE), &meta).unwrap();
            fs::write(dir.join(SIG_FILE), &sig).unwrap();
        }
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn truncated_images_are_refused() {
        let (root, dir) = write_image("trunc");
        fs::OpenOptions::new()
            .write(true)
            .open(dir.join(PAGES_FILE))
            .unwrap()
            .set_len(PAGE_SIZE)
            .unwrap();
        let err = Image::read(&dir, false, &trusted()).unwrap_err();
        assert!(matches!(err, ReadError::Truncated { .. }), "{err}");
        edit_meta(&dir, |l| {
            l.pop();
        });
        let err = Image::read(&dir, false, &trusted()).unwrap_err();
        assert!(err.to_string().contains("no end record"), "{err}");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn wrong_version_and_wrong_format_are_refused() {
        let (root, dir) = write_image("version");
        // The oldest version still read is read.
        edit_meta(&dir, |l| {
            l[0] = rewrite(
                &l[0],
                &format!("\"version\":{FORMAT_VERSION}"),
                "\"version\":2",
            )
        });
        Image::read(&dir, false, &trusted()).expect("a version 2 image is read");
        edit_meta(&dir, |l| {
            l[0] = rewrite(&l[0], "\"version\":2", "\"version\":99")
        });
        let err = Image::read(&dir, false, &trusted()).unwrap_err();
        assert!(matches!(err, ReadError::Version { found: 99, .. }), "{err}");
        edit_meta(&dir, |l| l[0] = rewrite(&l[0], "suspend-image", "other"));
        let err = Image::read(&dir, false, &trusted()).unwrap_err();
        assert!(matches!(err, ReadError::NotAnImage { .. }), "{err}");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_miscounting_end_record_is_refused() {
        let (root, dir) = write_image("count");
        edit_meta(&dir, |l| {
            let last = l.len() - 1;
            let end = serde_json::to_string(&Record::End(End {
                records: 99,
                page_bytes: 2 * PAGE_SIZE,
            }))
            .unwrap();
            l[last] = format!("{} {end}", xxh3_hex(end.as_bytes()));
        });
        let err = Image::read(&dir, false, &trusted()).unwrap_err();
        assert!(
            err.to_string().contains("counts a different number"),
            "{err}"
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn an_image_changed_after_signing_is_refused() {
        let (root, dir) = write_image("forged");
        // Every checksum right, the signature not.
        edit_meta_unsigned(&dir, |l| l[1] = rewrite(&l[1], "\"pid\":42", "\"pid\":43"));
        let err = Image::read(&dir, false, &trusted()).unwrap_err();
        assert!(
            matches!(err, ReadError::Auth(AuthError::Altered { .. })),
            "{err}"
        );
        // Signed by a key nobody trusts.
        edit_meta(&dir, |_| {});
        let other = [SigningKey::from_bytes(&[6u8; 32]).verifying_key()];
        let err = Image::read(&dir, false, &other).unwrap_err();
        assert!(
            matches!(err, ReadError::Auth(AuthError::Untrusted { .. })),
            "{err}"
        );
        // Not signed at all.
        fs::remove_file(dir.join(SIG_FILE)).unwrap();
        let err = Image::read(&dir, false, &trusted()).unwrap_err();
        assert!(
            matches!(err, ReadError::Auth(AuthError::Unsigned { .. })),
            "{err}"
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn only_regular_files_are_read() {
        let (root, dir) = write_image("fifo");
        let pages = dir.join(PAGES_FILE);
        fs::remove_file(&pages).unwrap();
        nix::unistd::mkfifo(&pages, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = Image::read(&dir, false, &trusted()).unwrap_err();
        assert!(matches!(err, ReadError::Io { .. }), "{err}");
        fs::remove_file(&pages).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &pages).unwrap();
        let err = Image::read(&dir, false, &trusted()).unwrap_err();
        assert!(matches!(err, ReadError::Io { .. }), "{err}");
        let meta = dir.join(META_FILE);
        fs::remove_file(&meta).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &meta).unwrap();
        let err = Image::read(&dir, false, &trusted()).unwrap_err();
        assert!(matches!(err, ReadError::Io { .. }), "{err}");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn records_out_of_range_are_refused() {
        for (name, from, to, what) in [
            (
                "unaligned",
                "\"start\":65536",
                "\"start\":65537",
                "page-aligned",
            ),
            (
                "shared",
                "\"kind\":\"anonymous\"",
                "\"kind\":\"shared_file\"",
                "never writes a file",
            ),
            (
                "runlong",
                "\"pages\":2",
                "\"pages\":9999",
                "pages in one run",
            ),
            (
                "runout",
                "\"first_page\":1",
                "\"first_page\":3",
                "outside its mapping",
            ),
        ] {
            let (root, dir) = write_image(name);
            edit_meta(&dir, |l| {
                let i = l.iter().position(|l| l.contains("\"mapping\"")).unwrap();
                l[i] = rewrite(&l[i], from, to);
            });
            let err = Image::read(&dir, false, &trusted()).unwrap_err();
            assert!(err.to_string().contains(what), "{name}: {err}");
            fs::remove_dir_all(root).unwrap();
        }
    }

    #[test]
    fn records_a_process_cannot_have_are_refused() {
        use base64::Engine as _;
        let siginfo = |signal: i32| {
            let mut raw = [0u8; 128];
            raw[..4].copy_from_slice(&signal.to_ne_bytes());
            base64::engine::general_purpose::STANDARD.encode(raw)
        };
        let stop = format!("\"pending\":[\"{}\"]", siginfo(libc::SIGSTOP));
        let usr1 = format!("\"pending\":[\"{}\"]", siginfo(libc::SIGUSR1));
        let short = "\"pending\":[\"AAAA\"]".to_owned();
        for (name, kind, from, to, what) in [
            (
                "sigstop",
                "thread",
                "\"pending\":[]",
                stop.as_str(),
                "signal 19 is queued",
            ),
            (
                "short",
                "thread",
                "\"pending\":[]",
                short.as_str(),
                "cut short",
            ),
            ("tid", "thread", "\"tid\":42", "\"tid\":0", "out of range"),
            (
                "pid",
                "process",
                "\"pid\":42",
                "\"pid\":41",
                "no thread has the process's pid",
            ),
        ] {
            let (root, dir) = write_image(name);
            edit_meta(&dir, |l| {
                let tag = format!("{{\"record\":\"{kind}\"");
                let i = l.iter().position(|l| l.contains(&tag)).unwrap();
                l[i] = rewrite(&l[i], from, to);
            });
            let err = Image::read(&dir, false, &trusted()).unwrap_err();
            assert!(matches!(err, ReadError::BadRecord { .. }), "{name}: {err}");
            assert!(err.to_string().contains(what), "{name}: {err}");
            fs::remove_dir_all(root).unwrap();
        }
        // A queued signal the process handles is fine.
        let (root, dir) = write_image("usr1");
        edit_meta(&dir, |l| {
            let i = l
                .iter()
                .position(|l| l.contains("\"record\":\"thread\""))
                .unwrap();
            l[i] = rewrite(&l[i], "\"pending\":[]", &usr1);
        });
        Image::read(&dir, false, &trusted()).unwrap();
        fs::remove_dir_all(root).unwrap();
    }

    /// Adds `files` as records before the end record (its count raised),
    /// signed again.
    fn add_files(dir: &Path, files: &[crate::image::format::File]) {
        edit_meta(dir, |l| {
            let end = l.len() - 1;
            for f in files {
                let json = serde_json::to_string(&Record::File(f.clone())).unwrap();
                l.insert(end, format!("{} {json}", xxh3_hex(json.as_bytes())));
            }
            let records = format!("\"records\":{end}");
            let more = format!("\"records\":{}", end + files.len());
            l[end + files.len()] = rewrite(&l[end + files.len()], &records, &more);
        });
    }

    #[test]
    fn files_an_image_cannot_hold_are_refused() {
        use crate::image::format::{InotifyWatch, Unlinked};
        let unlinked = |size, data: &str, same_as| Unlinked {
            name: "/tmp/x".into(),
            mode: 0o600,
            size,
            mtime_ns: 0,
            data: data.into(),
            same_as,
        };
        let watch = |wd| InotifyWatch {
            wd,
            mask: 2,
            ino: 1,
            target: None,
        };
        let with = |fd, f: &dyn Fn(&mut crate::image::format::File)| {
            let mut file = crate::image::format::File::bare(
                fd,
                crate::image::format::FileKind::Regular,
                &format!("/tmp/f{fd}"),
            );
            f(&mut file);
            file
        };
        let cases: Vec<(&str, Vec<crate::image::format::File>, &str)> = vec![
            (
                "wd0",
                vec![with(3, &|f| f.inotify = Some(vec![watch(0)]))],
                "inotify watch numbers",
            ),
            (
                "wdtwice",
                vec![with(3, &|f| f.inotify = Some(vec![watch(2), watch(2)]))],
                "inotify watch numbers",
            ),
            (
                "wdhigh",
                vec![with(3, &|f| f.inotify = Some(vec![watch(1 << 30)]))],
                "inotify watch numbers",
            ),
            (
                "nocarrier",
                vec![with(3, &|f| f.unlinked = Some(unlinked(0, "", Some(9))))],
                "does not carry it",
            ),
            (
                "toomuch",
                vec![with(3, &|f| {
                    f.unlinked = Some(unlinked(1, "AAAAAAAA", None))
                })],
                "holding about 6",
            ),
        ];
        // A dup of a second open naming that open (as images did before
        // dups named the carrier) is read.
        let (root, dir) = write_image("dupofsecond");
        let files = [
            with(3, &|f| f.unlinked = Some(unlinked(1, "AA==", None))),
            with(4, &|f| f.unlinked = Some(unlinked(1, "", Some(3)))),
            with(5, &|f| {
                f.dup_of = Some(4);
                f.unlinked = Some(unlinked(1, "", Some(4)));
            }),
        ];
        add_files(&dir, &files);
        Image::read(&dir, false, &trusted()).expect("a dup of a second open is read");
        fs::remove_dir_all(root).unwrap();
        for (name, files, what) in cases {
            let (root, dir) = write_image(name);
            add_files(&dir, &files);
            let err = Image::read(&dir, false, &trusted()).unwrap_err();
            assert!(matches!(err, ReadError::BadRecord { .. }), "{name}: {err}");
            assert!(err.to_string().contains(what), "{name}: {err}");
            fs::remove_dir_all(root).unwrap();
        }
    }

    /// xorshift64*: a fixed sequence, so a failing mutant is found again.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// One mutant of a metadata line: a number swapped for an extreme
    /// one, a byte changed, a piece cut out or doubled.
    fn mutate_line(rng: &mut Rng, line: &str) -> String {
        let (_, json) = line.split_once(' ').unwrap_or(("", line));
        let mut json = json.to_owned();
        match rng.below(4) {
            0 => {
                // Replace the n-th run of digits.
                let runs: Vec<(usize, usize)> = {
                    let b = json.as_bytes();
                    let mut runs = Vec::new();
                    let mut i = 0;
                    while i < b.len() {
                        if b[i].is_ascii_digit() {
                            let start = i;
                            while i < b.len() && b[i].is_ascii_digit() {
                                i += 1;
                            }
                            runs.push((start, i));
                        }
                        i += 1;
                    }
                    runs
                };
                if let Some(&(a, b)) = runs.get(rng.below(runs.len())) {
                    let extreme = [
                        "0",
                        "1",
                        "4095",
                        "4096",
                        "18446744073709551615",
                        "18446744073709551616",
                        "-1",
                        "2147483648",
                        "140737488351232",
                        "99999999999999999999999",
                    ];
                    json.replace_range(a..b, extreme[rng.below(extreme.len())]);
                }
            }
            1 if !json.is_empty() => {
                let at = rng.below(json.len());
                let mut bytes = json.into_bytes();
                bytes[at] = (rng.next() & 0x7f) as u8;
                json = String::from_utf8_lossy(&bytes).into_owned();
            }
            2 if !json.is_empty() => {
                let a = rng.below(json.len());
                let b = (a + rng.below(40)).min(json.len());
                if json.is_char_boundary(a) && json.is_char_boundary(b) {
                    json.replace_range(a..b, "");
                }
            }
            _ if !json.is_empty() => {
                let a = rng.below(json.len());
                let b = (a + rng.below(40)).min(json.len());
                if json.is_char_boundary(a) && json.is_char_boundary(b) {
                    let piece = json[a..b].to_owned();
                    json.insert_str(b, &piece);
                }
            }
            _ => {}
        }
        format!("{} {json}", xxh3_hex(json.as_bytes()))
    }

    /// Thousands of signed, checksummed mutants of a real image: the
    /// reader refuses or accepts each, within bounds — no panic, no hang,
    /// no huge allocation.
    #[test]
    fn mutated_images_are_refused_or_read_never_crash() {
        let (root, dir) = write_image("mutants");
        let meta_path = dir.join(META_FILE);
        let original: Vec<String> = fs::read_to_string(&meta_path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let pages = fs::read(dir.join(PAGES_FILE)).unwrap();
        let mut rng = Rng(0x5eed_0f01_2345_6789);
        let started = std::time::Instant::now();
        let (mut tried, mut refused) = (0u32, 0u32);
        while tried < 4000 && started.elapsed() < std::time::Duration::from_secs(10) {
            let mut lines = original.clone();
            for _ in 0..1 + rng.below(3) {
                match rng.below(10) {
                    0 if lines.len() > 1 => {
                        let i = rng.below(lines.len());
                        lines.remove(i);
                    }
                    1 => {
                        let i = rng.below(lines.len());
                        let copy = lines[i].clone();
                        lines.insert(rng.below(lines.len()), copy);
                    }
                    _ => {
                        let i = rng.below(lines.len());
                        lines[i] = mutate_line(&mut rng, &lines[i]);
                    }
                }
            }
            fs::write(&meta_path, lines.join("\n") + "\n").unwrap();
            let meta = fs::read(&meta_path).unwrap();
            fs::write(dir.join(SIG_FILE), sign::sign(&key(), &blake3::hash(&meta))).unwrap();
            if rng.below(8) == 0 {
                let mut cut = pages.clone();
                cut.truncate(rng.below(pages.len() + 1));
                fs::write(dir.join(PAGES_FILE), cut).unwrap();
            }
            if Image::read(&dir, true, &trusted()).is_err() {
                refused += 1;
            }
            fs::write(dir.join(PAGES_FILE), &pages).unwrap();
            tried += 1;
        }
        eprintln!("{tried} mutants, {refused} refused");
        // 4000 take about 3 s in a release build here; a debug build on a
        // busy machine does fewer in its 10 s.
        assert!(tried >= 200, "only {tried} mutants in the time given");
        assert!(
            refused > tried / 2,
            "most mutants must be refused: {refused}/{tried}"
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn not_json_is_malformed() {
        let (root, dir) = write_image("garbage");
        edit_meta(&dir, |l| {
            l.insert(1, format!("{} not json", xxh3_hex(b"not json")))
        });
        let err = Image::read(&dir, false, &trusted()).unwrap_err();
        assert!(matches!(err, ReadError::Malformed { line: 2, .. }), "{err}");
        fs::remove_dir_all(root).unwrap();
    }
}
