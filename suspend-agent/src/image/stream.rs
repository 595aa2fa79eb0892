//! An image as one byte stream, to move it between machines (`send` and
//! `receive`): a pipe, `ssh`, a file.
//!
//! The stream is a header, the image's three files in a fixed order, and
//! an end:
//!
//! - [`MAGIC`], then the stream version ([`STREAM_VERSION`], `u32`
//!   little-endian);
//! - for each of `meta.jsonl`, `meta.sig` and `pages.img`, in that order:
//!   the byte `F`, the name's length (one byte), the name, the file's
//!   length (`u64` little-endian) and its bytes;
//! - the byte `E` and the BLAKE3 hash of every byte of the stream before
//!   the hash (32 bytes), which finds damage in transit; nothing follows.
//!
//! It is bounded before a byte is stored: no name but those three, each in
//! its place; `meta.jsonl` at most [`MAX_META_BYTES`], `meta.sig` at most
//! [`MAX_SIG_BYTES`]; and once those two are in, the signature is checked
//! against the trusted keys (an image from an untrusted key is refused
//! before its pages are read) and `pages.img` must be as long as the
//! signed end record says. The receiver writes into a partial directory
//! next to the target, as [`super::ImageWriter`] does, reads the result
//! back as a resume would ([`Image::read`], every page run verified) and
//! only then renames it into place; anything else removes the partial.
//!
//! The sender reads the image through the reader's safe opens and sends
//! nothing of an image that does not verify.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::{DirBuilderExt as _, FileExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use ed25519_dalek::VerifyingKey;

use super::{
    Image,
    format::{End, MAX_META_BYTES, META_FILE, PAGE_SIZE, PAGES_FILE, Record, SIG_FILE, xxh3_hex},
    leftovers::Marker,
    reader::ReadError,
    sign::{self, AuthError, MAX_SIG_BYTES},
};
use crate::exit;

/// What every stream starts with.
pub const MAGIC: &[u8; 21] = b"suspend-image-stream\n";
/// The stream version this agent sends and reads.
pub const STREAM_VERSION: u32 = 1;
/// The files of a stream, in their order.
const FILES: [&str; 3] = [META_FILE, SIG_FILE, PAGES_FILE];
/// Says a file follows.
const TAG_FILE: u8 = b'F';
/// Says the end hash follows.
const TAG_END: u8 = b'E';
/// How much is copied at once.
const CHUNK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The target directory exists (checked before reading, and again
    /// before the rename).
    #[error("{path} exists: choose another image directory or remove it")]
    Exists { path: PathBuf },
    /// The target's parent directory does not exist.
    #[error("{path}: the parent directory does not exist")]
    NoParent { path: PathBuf },
    /// A local file could not be made, written or synced.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Reading the stream failed (not its end: that is [`Self::Truncated`]).
    #[error("reading the stream: {0}")]
    Read(#[source] io::Error),
    /// Writing the stream failed.
    #[error("writing the stream: {0}")]
    Write(#[source] io::Error),
    /// It does not start with [`MAGIC`].
    #[error("not an image stream (it does not start with `suspend-image-stream`)")]
    NotAStream,
    /// Another stream version.
    #[error("image stream version {found}; this agent reads version {STREAM_VERSION}")]
    Version { found: u32 },
    /// The stream ends early.
    #[error("the stream is cut short: it ends {what}")]
    Truncated { what: String },
    /// Something no sender writes: an unknown name, a file out of its
    /// place, a length over its cap or against the end record, bytes after
    /// the end.
    #[error("not an image stream as `send` writes it: {what}")]
    Malformed { what: String },
    /// The end hash is not that of what was received.
    #[error("the stream was damaged in transit: its end hash does not match what was received")]
    Damaged,
    /// Signed by a key this machine does not trust.
    #[error(
        "the image is signed by key {id}, which this machine does not trust: run `suspend-agent \
         key show` on the machine that wrote it and `suspend-agent key trust PUBLIC_KEY` here, \
         then send it again"
    )]
    Untrusted { id: String },
    /// The image does not verify (sent: nothing was sent; received:
    /// nothing was kept).
    #[error("the image was refused: {0}")]
    Image(#[from] ReadError),
}

impl StreamError {
    /// The exit code of a `send` or `receive` that failed with it: the
    /// image's or the stream's fault is 9, as `resume` says of a bad image;
    /// the rest (an existing target, as `suspend` says it, I/O, this
    /// machine's keys) is 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Exists { .. }
            | Self::NoParent { .. }
            | Self::Io { .. }
            | Self::Read(_)
            | Self::Write(_)
            | Self::Image(ReadError::Auth(AuthError::Key(_))) => exit::ERROR,
            Self::NotAStream
            | Self::Version { .. }
            | Self::Truncated { .. }
            | Self::Malformed { .. }
            | Self::Damaged
            | Self::Untrusted { .. }
            | Self::Image(_) => exit::BAD_IMAGE,
        }
    }
}

impl From<AuthError> for StreamError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Untrusted { id, .. } => Self::Untrusted { id },
            e => Self::Image(ReadError::Auth(e)),
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StreamError {
    let path = path.to_path_buf();
    move |source| StreamError::Io { op, path, source }
}

/// How far a transfer is: bytes of the stream so far, and all it will
/// hold once that is known.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
}

/// A sent or received image.
#[derive(Debug)]
pub struct Moved {
    /// The image directory (received: its final name).
    pub dir: PathBuf,
    /// Bytes of the stream.
    pub bytes: u64,
    /// The id of the key that signed it.
    pub signer: String,
}

/// Bytes of a stream holding files of these lengths.
fn stream_len(lengths: [u64; 3]) -> u64 {
    let files: u64 = FILES
        .iter()
        .zip(lengths)
        .map(|(name, len)| 1 + 1 + name.len() as u64 + 8 + len)
        .sum();
    MAGIC.len() as u64 + 4 + files + 1 + 32
}

/// Writes to the stream, hashing what is written.
struct Sink<'a, W: Write> {
    out: &'a mut W,
    hash: blake3::Hasher,
    done: u64,
}

impl<W: Write> Sink<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        self.hash.update(bytes);
        self.done += bytes.len() as u64;
        self.out.write_all(bytes).map_err(StreamError::Write)
    }

    fn file_head(&mut self, name: &str, len: u64) -> Result<(), StreamError> {
        self.put(&[TAG_FILE, name.len() as u8])?;
        self.put(name.as_bytes())?;
        self.put(&len.to_le_bytes())
    }
}

/// Sends the image in `dir` to `out`, after checking it as a resume
/// would (every record, its signature by a key in `trusted`, every page
/// run): an image that does not verify is refused before a byte is
/// written. `progress` is told after each chunk.
pub fn send(
    dir: &Path,
    out: &mut impl Write,
    trusted: &[VerifyingKey],
    progress: &mut dyn FnMut(Progress),
) -> Result<Moved, StreamError> {
    let image = Image::read(dir, true, trusted)?;
    let meta_path = dir.join(META_FILE);
    let sig_path = dir.join(SIG_FILE);
    let pages_path = dir.join(PAGES_FILE);
    let meta =
        sign::read_bounded(&meta_path, MAX_META_BYTES).map_err(io_err("reading", &meta_path))?;
    let sig = sign::read_bounded(&sig_path, MAX_SIG_BYTES).map_err(io_err("reading", &sig_path))?;
    let pages = sign::open_regular(&pages_path).map_err(io_err("opening", &pages_path))?;
    let page_bytes = pages
        .metadata()
        .map_err(io_err("reading", &pages_path))?
        .len();
    // Changed since it was checked: the receiver would refuse it.
    if page_bytes != image.page_bytes || end_record(&meta).map(|e| e.page_bytes) != Some(page_bytes)
    {
        return Err(StreamError::Io {
            op: "reading",
            path: dir.to_path_buf(),
            source: io::Error::other("the image changed while it was being sent"),
        });
    }
    let total = stream_len([meta.len() as u64, sig.len() as u64, page_bytes]);
    let mut sink = Sink {
        out,
        hash: blake3::Hasher::new(),
        done: 0,
    };
    sink.put(MAGIC)?;
    sink.put(&STREAM_VERSION.to_le_bytes())?;
    sink.file_head(META_FILE, meta.len() as u64)?;
    sink.put(&meta)?;
    sink.file_head(SIG_FILE, sig.len() as u64)?;
    sink.put(&sig)?;
    sink.file_head(PAGES_FILE, page_bytes)?;
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0;
    while at < page_bytes {
        let want = (page_bytes - at).min(CHUNK as u64) as usize;
        let got = pages
            .read_at(&mut buf[..want], at)
            .map_err(io_err("reading", &pages_path))?;
        if got == 0 {
            return Err(StreamError::Io {
                op: "reading",
                path: pages_path,
                source: io::Error::other(format!(
                    "it ends at byte {at} of the {page_bytes} the image says (it changed while \
                     being sent)"
                )),
            });
        }
        sink.put(&buf[..got])?;
        at += got as u64;
        progress(Progress {
            done: sink.done,
            total: Some(total),
        });
    }
    sink.put(&[TAG_END])?;
    let hash = sink.hash.finalize();
    sink.out
        .write_all(hash.as_bytes())
        .and_then(|()| sink.out.flush())
        .map_err(StreamError::Write)?;
    Ok(Moved {
        dir: dir.to_path_buf(),
        bytes: sink.done + 32,
        signer: image.signer,
    })
}

/// The end record of `meta.jsonl` (its last line, checksum checked).
fn end_record(meta: &[u8]) -> Option<End> {
    let text = std::str::from_utf8(meta).ok()?;
    let (hash, json) = text.lines().last()?.split_once(' ')?;
    if xxh3_hex(json.as_bytes()) != hash {
        return None;
    }
    match serde_json::from_str(json).ok()? {
        Record::End(end) => Some(end),
        _ => None,
    }
}

/// Reads the stream, hashing what is read.
struct Source<'a, R: Read> {
    input: &'a mut R,
    hash: blake3::Hasher,
    done: u64,
}

impl<R: Read> Source<'_, R> {
    /// Reads up to `buf.len()` bytes; 0 only at the end of the stream.
    fn some(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        loop {
            match self.input.read(buf) {
                Ok(n) => {
                    self.hash.update(&buf[..n]);
                    self.done += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StreamError::Read(e)),
            }
        }
    }

    /// Fills `buf`; the stream ending first is [`StreamError::Truncated`]
    /// (`what`: where it ended).
    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), StreamError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.some(&mut buf[filled..])? {
                0 => {
                    return Err(StreamError::Truncated {
                        what: what.to_owned(),
                    });
                }
                n => filled += n,
            }
        }
        Ok(())
    }

    fn byte(&mut self, what: &str) -> Result<u8, StreamError> {
        let mut b = [0u8; 1];
        self.exact(&mut b, what)?;
        Ok(b[0])
    }

    /// The head of the next file, which must be `name`: its length.
    fn file_head(&mut self, name: &str) -> Result<u64, StreamError> {
        let before = format!("before {name}");
        match self.byte(&before)? {
            TAG_FILE => {}
            TAG_END => {
                return Err(StreamError::Malformed {
                    what: format!("it ends where {name} comes"),
                });
            }
            tag => {
                return Err(StreamError::Malformed {
                    what: format!("byte {tag:#04x} where {name} comes"),
                });
            }
        }
        let len = self.byte(&before)? as usize;
        let mut found = vec![0u8; len];
        self.exact(&mut found, &before)?;
        if found != name.as_bytes() {
            let found = String::from_utf8_lossy(&found);
            return Err(StreamError::Malformed {
                what: if FILES.contains(&&*found) {
                    format!("{found} where {name} comes")
                } else {
                    format!("a file named {found:?}, which no image holds")
                },
            });
        }
        let mut len = [0u8; 8];
        self.exact(&mut len, &format!("inside the head of {name}"))?;
        Ok(u64::from_le_bytes(len))
    }
}

/// A partial directory, removed unless it was renamed into place.
struct Partial {
    path: PathBuf,
    marker: Marker,
    kept: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_dir_all(&self.path);
        }
        self.marker.clear();
    }
}

/// Creates `path`, 0600.
fn create_file(path: &Path) -> Result<File, StreamError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("creating", path))
}

/// Writes `buf` at `at`, leaving out the pages that are all zeros (they
/// stay holes, as the writer leaves them).
fn write_sparse(file: &File, path: &Path, at: u64, buf: &[u8]) -> Result<(), StreamError> {
    let page = PAGE_SIZE as usize;
    let mut start = None;
    let mut offset = 0;
    while offset <= buf.len() {
        let end = (offset + page).min(buf.len());
        let zero = offset == buf.len() || buf[offset..end].iter().all(|&b| b == 0);
        match (start, zero) {
            (None, false) => start = Some(offset),
            (Some(s), true) => {
                file.write_all_at(&buf[s..offset], at + s as u64)
                    .map_err(io_err("writing", path))?;
                start = None;
            }
            _ => {}
        }
        offset += page;
    }
    if let Some(s) = start {
        file.write_all_at(&buf[s..], at + s as u64)
            .map_err(io_err("writing", path))?;
    }
    Ok(())
}

/// Receives one file of `len` bytes into `path`, synced.
fn receive_file<R: Read>(
    source: &mut Source<'_, R>,
    path: &Path,
    name: &str,
    len: u64,
    total: Option<u64>,
    progress: &mut dyn FnMut(Progress),
) -> Result<File, StreamError> {
    let file = create_file(path)?;
    let mut buf = vec![0u8; CHUNK.min(len as usize).max(1)];
    let mut at = 0;
    while at < len {
        let want = (len - at).min(buf.len() as u64) as usize;
        let got = source.some(&mut buf[..want])?;
        if got == 0 {
            return Err(StreamError::Truncated {
                what: format!("at byte {at} of {name}'s {len}"),
            });
        }
        write_sparse(&file, path, at, &buf[..got])?;
        at += got as u64;
        progress(Progress {
            done: source.done,
            total,
        });
    }
    file.set_len(len).map_err(io_err("writing", path))?;
    file.sync_all().map_err(io_err("fsync", path))?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), StreamError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

/// Receives an image from `input` into the new directory `target`,
/// durably and atomically: nothing has the name `target` unless every
/// byte arrived, the end hash matches and the image verifies against
/// `trusted` as a resume would. An existing `target` is refused before
/// anything is read. `progress` is told after each chunk.
pub fn receive(
    input: &mut impl Read,
    target: &Path,
    trusted: &[VerifyingKey],
    progress: &mut dyn FnMut(Progress),
) -> Result<Moved, StreamError> {
    if fs::symlink_metadata(target).is_ok() {
        return Err(StreamError::Exists {
            path: target.to_path_buf(),
        });
    }
    let parent = match target.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => {
            return Err(StreamError::NoParent {
                path: target.to_path_buf(),
            });
        }
    };
    let name = match target.file_name() {
        Some(name) if parent.is_dir() => name.to_string_lossy().into_owned(),
        _ => {
            return Err(StreamError::NoParent {
                path: target.to_path_buf(),
            });
        }
    };
    let path = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&path); // a leftover of an agent that died
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .map_err(io_err("creating", &path))?;
    let mut partial = Partial {
        marker: Marker::new(&fs::canonicalize(&path).unwrap_or_else(|_| path.clone())),
        path,
        kept: false,
    };
    let mut source = Source {
        input,
        hash: blake3::Hasher::new(),
        done: 0,
    };
    let mut magic = [0u8; MAGIC.len()];
    let mut filled = 0;
    while filled < magic.len() {
        match source.some(&mut magic[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    if magic[..filled] != MAGIC[..filled] {
        return Err(StreamError::NotAStream);
    }
    if filled < magic.len() {
        return Err(StreamError::Truncated {
            what: "inside its header".into(),
        });
    }
    let mut version = [0u8; 4];
    source.exact(&mut version, "inside its header")?;
    let found = u32::from_le_bytes(version);
    if found != STREAM_VERSION {
        return Err(StreamError::Version { found });
    }

    let caps = [(META_FILE, MAX_META_BYTES), (SIG_FILE, MAX_SIG_BYTES)];
    let mut small = Vec::new();
    for (name, cap) in caps {
        let len = source.file_head(name)?;
        if len > cap {
            return Err(StreamError::Malformed {
                what: format!("{name} of {len} bytes, more than the {cap} it may hold"),
            });
        }
        let file_path = partial.path.join(name);
        receive_file(&mut source, &file_path, name, len, None, progress)?;
        small.push(fs::read(&file_path).map_err(io_err("reading", &file_path))?);
    }
    // Whose image it is, before its pages are read: then their length is
    // what the signed end record says.
    let meta = &small[0];
    let signer = sign::verify(&partial.path.join(SIG_FILE), &blake3::hash(meta), trusted)?;
    let end = end_record(meta).ok_or_else(|| StreamError::Malformed {
        what: format!("{META_FILE} does not end with an end record"),
    })?;
    let len = source.file_head(PAGES_FILE)?;
    if len != end.page_bytes {
        return Err(StreamError::Malformed {
            what: format!(
                "{PAGES_FILE} of {len} bytes, where the image's end record says {}",
                end.page_bytes
            ),
        });
    }
    let total = stream_len([meta.len() as u64, small[1].len() as u64, len]);
    receive_file(
        &mut source,
        &partial.path.join(PAGES_FILE),
        PAGES_FILE,
        len,
        Some(total),
        progress,
    )?;
    match source.byte("before its end hash")? {
        TAG_END => {}
        tag => {
            return Err(StreamError::Malformed {
                what: format!("byte {tag:#04x} after {PAGES_FILE}, where its end comes"),
            });
        }
    }
    let computed = source.hash.finalize();
    let mut hash = [0u8; 32];
    source.exact(&mut hash, "inside its end hash")?;
    if hash != *computed.as_bytes() {
        return Err(StreamError::Damaged);
    }
    if source.some(&mut [0u8; 1])? != 0 {
        return Err(StreamError::Malformed {
            what: "bytes after its end".into(),
        });
    }
    // As a resume will read it.
    Image::read(&partial.path, true, trusted)?;
    sync_dir(&partial.path)?;
    // Never over a directory made meanwhile (a plain rename would take
    // the place of an empty one).
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    match renameat2(
        AT_FDCWD,
        &partial.path,
        AT_FDCWD,
        target,
        RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => {}
        Err(nix::errno::Errno::EEXIST) => {
            return Err(StreamError::Exists {
                path: target.to_path_buf(),
            });
        }
        // A filesystem without `RENAME_NOREPLACE` (NFS, CIFS, some FUSE):
        // a plain rename once nothing is there, as the image writer does.
        Err(nix::errno::Errno::EINVAL) => {
            if fs::symlink_metadata(target).is_ok() {
                return Err(StreamError::Exists {
                    path: target.to_path_buf(),
                });
            }
            fs::rename(&partial.path, target).map_err(io_err("renaming into place", target))?;
        }
        Err(e) => return Err(io_err("renaming into place", target)(e.into())),
    }
    partial.kept = true;
    sync_dir(parent)?;
    Ok(Moved {
        dir: target.to_path_buf(),
        bytes: source.done,
        signer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{
        format::Codec,
        reader::tests::{key, write_image_with},
    };

    fn trusted() -> Vec<VerifyingKey> {
        vec![key().verifying_key()]
    }

    /// A test image in `ROOT/img`, and its stream.
    fn sent(name: &str, codec: Option<Codec>) -> (PathBuf, PathBuf, Vec<u8>) {
        let (root, dir) = write_image_with(&format!("stream-{name}"), codec);
        let mut out = Vec::new();
        let moved = send(&dir, &mut out, &trusted(), &mut |_| {}).expect("sent");
        assert_eq!(moved.bytes, out.len() as u64);
        (root, dir, out)
    }

    /// Names in `root`, sorted.
    fn entries(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// `stream` is refused, and nothing is left beside the source image.
    fn refused(root: &Path, stream: &[u8], case: &str) -> StreamError {
        let target = root.join("got");
        let err = receive(&mut &stream[..], &target, &trusted(), &mut |_| {})
            .err()
            .unwrap_or_else(|| panic!("{case}: received"));
        assert_eq!(entries(root), ["img"], "{case}: {err}");
        assert_eq!(err.exit_code(), exit::BAD_IMAGE, "{case}: {err}");
        err
    }

    /// A stream of `files` as `send` frames them, with a true end hash.
    fn frame(version: u32, files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut s = MAGIC.to_vec();
        s.extend_from_slice(&version.to_le_bytes());
        for (name, bytes) in files {
            s.extend_from_slice(&[TAG_FILE, name.len() as u8]);
            s.extend_from_slice(name.as_bytes());
            s.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            s.extend_from_slice(bytes);
        }
        s.push(TAG_END);
        let hash = blake3::hash(&s);
        s.extend_from_slice(hash.as_bytes());
        s
    }

    fn files_of(dir: &Path) -> [Vec<u8>; 3] {
        FILES.map(|name| fs::read(dir.join(name)).unwrap())
    }

    #[test]
    fn an_image_is_received_byte_for_byte_raw_and_compressed() {
        for (name, codec) in [("raw", None), ("zstd", Some(Codec::Zstd))] {
            let (root, dir, stream) = sent(name, codec);
            assert!(stream.starts_with(MAGIC));
            let target = root.join("got");
            let mut seen = Vec::new();
            let moved = receive(&mut &stream[..], &target, &trusted(), &mut |p| seen.push(p))
                .expect("received");
            assert_eq!(moved.dir, target);
            assert_eq!(moved.bytes, stream.len() as u64);
            assert_eq!(moved.signer, sign::key_id(&key().verifying_key()));
            assert_eq!(files_of(&target), files_of(&dir), "{name}: every byte");
            let last = seen.last().expect("progress was told");
            assert_eq!(last.total, Some(stream.len() as u64), "{name}");
            assert_eq!(last.done, stream.len() as u64 - 33, "{name}");
            let image = Image::read(&target, true, &trusted()).expect("reads back");
            assert_eq!(image.header.codec, codec);
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&target), 0o700);
            for file in FILES {
                assert_eq!(mode(&target.join(file)), 0o600, "{file}");
            }
            // No partial directory next to it; sent again, the same bytes.
            assert_eq!(entries(&root), ["got", "img"]);
            let mut again = Vec::new();
            send(&target, &mut again, &trusted(), &mut |_| {}).expect("sent again");
            assert_eq!(again, stream);
            // A pipe gives what it has: a few bytes at a time is the same.
            let trickled = root.join("trickled");
            let mut input = Trickle(&stream[..]);
            receive(&mut input, &trickled, &trusted(), &mut |_| {}).expect("trickled");
            assert_eq!(files_of(&trickled), files_of(&dir), "{name}: trickled");
            fs::remove_dir_all(root).unwrap();
        }
    }

    /// Gives at most 7 bytes a read.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_stream_cut_anywhere_is_refused_and_leaves_nothing() {
        let (root, dir, stream) = sent("cut", None);
        let [meta, sig, _] = files_of(&dir).map(|f| f.len());
        let head = MAGIC.len() + 4;
        let meta_at = head + 2 + META_FILE.len() + 8;
        let sig_at = meta_at + meta + 2 + SIG_FILE.len() + 8;
        let pages_at = sig_at + sig + 2 + PAGES_FILE.len() + 8;
        let end_at = stream.len() - 33;
        for cut in [
            0,
            3,
            head,
            head + 1,
            meta_at - 3,
            meta_at + meta / 2,
            sig_at,
            pages_at - 1,
            pages_at + 100,
            end_at,
            end_at + 1,
            stream.len() - 1,
        ] {
            let err = refused(&root, &stream[..cut], &format!("cut at {cut}"));
            assert!(
                matches!(err, StreamError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
        }
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_flipped_byte_anywhere_is_refused_and_leaves_nothing() {
        let (root, dir, stream) = sent("flip", Some(Codec::Zstd));
        let [meta, sig, pages] = files_of(&dir).map(|f| f.len());
        let meta_at = MAGIC.len() + 4 + 2 + META_FILE.len() + 8;
        let sig_at = meta_at + meta + 2 + SIG_FILE.len() + 8;
        let pages_at = sig_at + sig + 2 + PAGES_FILE.len() + 8;
        let cases = [
            (2, "magic"),
            (MAGIC.len(), "version"),
            (MAGIC.len() + 4, "meta.jsonl's tag"),
            (MAGIC.len() + 6, "meta.jsonl's name"),
            (meta_at - 8, "meta.jsonl's length"),
            (meta_at + 20, "meta.jsonl"),
            (meta_at + meta - 2, "meta.jsonl's end record"),
            (sig_at + 10, "meta.sig"),
            (pages_at - 8, "pages.img's length"),
            (pages_at, "pages.img"),
            (pages_at + pages - 1, "pages.img's last byte"),
            (stream.len() - 33, "the end tag"),
            (stream.len() - 1, "the end hash"),
        ];
        for (at, what) in cases {
            let mut bad = stream.clone();
            bad[at] ^= 0x10;
            let err = refused(&root, &bad, what);
            // The pages are checked by the end hash before anything else.
            if ["pages.img", "pages.img's last byte", "the end hash"].contains(&what) {
                assert!(matches!(err, StreamError::Damaged), "{what}: {err}");
            }
        }
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn what_no_sender_writes_is_refused_and_leaves_nothing() {
        let (root, dir, stream) = sent("odd", None);
        let [meta, sig, pages] = files_of(&dir);
        let says = |err: StreamError, text: &str| {
            assert!(err.to_string().contains(text), "{text:?} in: {err}");
        };
        let mut longer = stream.clone();
        longer.push(0);
        says(refused(&root, &longer, "trailing"), "bytes after its end");
        says(
            refused(&root, &frame(2, &[]), "version"),
            "stream version 2; this agent reads version 1",
        );
        let wrong = frame(
            1,
            &[(META_FILE, &meta), ("evil.so", b"x"), (PAGES_FILE, &pages)],
        );
        says(refused(&root, &wrong, "unknown name"), "\"evil.so\"");
        let swapped = frame(
            1,
            &[(SIG_FILE, &sig), (META_FILE, &meta), (PAGES_FILE, &pages)],
        );
        says(
            refused(&root, &swapped, "order"),
            "meta.sig where meta.jsonl comes",
        );
        let fewer = frame(1, &[(META_FILE, &meta), (SIG_FILE, &sig)]);
        says(refused(&root, &fewer, "no pages"), "where pages.img comes");
        let more = frame(
            1,
            &[
                (META_FILE, &meta),
                (SIG_FILE, &sig),
                (PAGES_FILE, &pages),
                (PAGES_FILE, &pages),
            ],
        );
        says(
            refused(&root, &more, "a fourth file"),
            "where its end comes",
        );
        let mut long_pages = pages.clone();
        long_pages.push(0);
        let lie = frame(
            1,
            &[
                (META_FILE, &meta),
                (SIG_FILE, &sig),
                (PAGES_FILE, &long_pages),
            ],
        );
        says(
            refused(&root, &lie, "page file length"),
            "pages.img of 8193 bytes, where the image's end record says 8192",
        );
        // Over the cap: refused from its head, its bytes never read.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&STREAM_VERSION.to_le_bytes());
        huge.extend_from_slice(&[TAG_FILE, META_FILE.len() as u8]);
        huge.extend_from_slice(META_FILE.as_bytes());
        huge.extend_from_slice(&(MAX_META_BYTES + 1).to_le_bytes());
        says(
            refused(&root, &huge, "over the cap"),
            "more than the 268435456 it may hold",
        );
        let mut big_sig = sig.clone();
        big_sig.resize(MAX_SIG_BYTES as usize + 1, b' ');
        let big = frame(
            1,
            &[
                (META_FILE, &meta),
                (SIG_FILE, &big_sig),
                (PAGES_FILE, &pages),
            ],
        );
        says(
            refused(&root, &big, "signature over the cap"),
            "meta.sig of 4097",
        );
        says(
            refused(&root, b"GET / HTTP/1.1\r\n\r\n....", "magic"),
            "not an image stream",
        );
        says(refused(&root, b"hello\n", "short"), "not an image stream");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn an_image_signed_by_an_untrusted_key_is_refused_at_receipt() {
        let (root, _dir, stream) = sent("untrusted", None);
        let other = ed25519_dalek::SigningKey::from_bytes(&[6u8; 32]).verifying_key();
        let err = receive(&mut &stream[..], &root.join("got"), &[other], &mut |_| {})
            .expect_err("untrusted");
        let id = sign::key_id(&key().verifying_key());
        assert!(
            matches!(&err, StreamError::Untrusted { id: found } if *found == id),
            "{err}"
        );
        assert!(err.to_string().contains("suspend-agent key trust"), "{err}");
        assert_eq!(err.exit_code(), exit::BAD_IMAGE);
        assert_eq!(entries(&root), ["img"]);
        fs::remove_dir_all(root).unwrap();
    }

    /// A reader that must not be read.
    struct Untouched;

    impl Read for Untouched {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            panic!("read before the target was checked");
        }
    }

    #[test]
    fn an_existing_target_is_refused_before_reading() {
        let (root, dir, _) = sent("exists", None);
        let err = receive(&mut Untouched, &dir, &trusted(), &mut |_| {}).expect_err("exists");
        assert!(matches!(err, StreamError::Exists { .. }), "{err}");
        assert_eq!(err.exit_code(), exit::ERROR);
        fs::create_dir(root.join("empty")).unwrap();
        let err = receive(&mut Untouched, &root.join("empty"), &trusted(), &mut |_| {})
            .expect_err("an empty directory exists too");
        assert!(matches!(err, StreamError::Exists { .. }), "{err}");
        let err = receive(
            &mut Untouched,
            &root.join("no/such"),
            &trusted(),
            &mut |_| {},
        )
        .expect_err("no parent");
        assert!(matches!(err, StreamError::NoParent { .. }), "{err}");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn an_image_that_does_not_verify_is_not_sent() {
        let (root, dir, _) = sent("unsent", Some(Codec::Zstd));
        let pages = dir.join(PAGES_FILE);
        let mut bytes = fs::read(&pages).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        fs::write(&pages, &bytes).unwrap();
        let mut out = Vec::new();
        let err = send(&dir, &mut out, &trusted(), &mut |_| {}).expect_err("damaged");
        assert!(
            matches!(err, StreamError::Image(ReadError::Pages { .. })),
            "{err}"
        );
        assert_eq!(err.exit_code(), exit::BAD_IMAGE);
        assert!(out.is_empty(), "nothing was sent");
        let other = ed25519_dalek::SigningKey::from_bytes(&[6u8; 32]).verifying_key();
        bytes[last] ^= 0x10;
        fs::write(&pages, &bytes).unwrap();
        assert!(send(&dir, &mut out, &[other], &mut |_| {}).is_err());
        assert!(out.is_empty(), "nothing was sent");
        // A file of it behind a symbolic link is not followed.
        let moved = root.join("pages.elsewhere");
        fs::rename(&pages, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &pages).unwrap();
        let err = send(&dir, &mut out, &trusted(), &mut |_| {}).expect_err("a link");
        assert!(
            matches!(err, StreamError::Image(ReadError::Io { .. })),
            "{err}"
        );
        assert!(out.is_empty(), "nothing was sent");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn zero_pages_stay_holes() {
        let root = std::env::temp_dir().join(format!("suspend-sparse-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let path = root.join("f");
        let file = create_file(&path).unwrap();
        let mut buf = vec![0u8; 5 * PAGE_SIZE as usize + 7];
        buf[PAGE_SIZE as usize + 3] = 1;
        buf[3 * PAGE_SIZE as usize] = 2;
        buf[5 * PAGE_SIZE as usize + 6] = 3;
        write_sparse(&file, &path, 0, &buf).unwrap();
        file.set_len(buf.len() as u64).unwrap();
        assert_eq!(fs::read(&path).unwrap(), buf);
        fs::remove_dir_all(root).unwrap();
    }
}
