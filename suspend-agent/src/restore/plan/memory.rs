//! The memory: where each mapping's contents come from (nothing: made
//! fresh; anonymous memory; a file opened as the process; a memfd standing
//! in for a shared anonymous object), where they are prepared in the zone
//! (and which page runs [`crate::restore::load`] reads in there), and the
//! move the stub makes to put each in place. The kernel's own mappings
//! (vDSO, vvar) are moved too, to where the image had them.

use std::{
    collections::HashMap,
    ffi::CString,
    os::fd::{OwnedFd, RawFd},
};

use suspend_common::restore::{MOVE_FRESH, MOVE_GROWSDOWN, MOVE_REMAP, Move, Range};

use super::{fds::Helpers, prepare_err};
use crate::{
    image::format::{Mapping, MappingKind, PAGE_SIZE},
    restore::{RestoreError, load::Run},
};

/// Contents prepared for one mapping before the stub runs.
#[derive(Debug)]
pub struct Premap {
    pub at: u64,
    pub len: u64,
    /// Where the stub moves it.
    pub target: u64,
    pub source: Source,
    /// The saved pages to read in.
    pub runs: Vec<Run>,
}

#[derive(Debug)]
pub enum Source {
    Anonymous {
        grows_down: bool,
    },
    /// A file (or memfd) mapping of helper fd `fd`.
    File {
        fd: RawFd,
        offset: u64,
        shared: bool,
        prot: i32,
    },
}

/// `PROT_*` of a `/proc/PID/maps` permission string (`r-xp`).
pub fn prot(perms: &str) -> i32 {
    let b = perms.as_bytes();
    let mut p = 0;
    if b.first() == Some(&b'r') {
        p |= libc::PROT_READ;
    }
    if b.get(1) == Some(&b'w') {
        p |= libc::PROT_WRITE;
    }
    if b.get(2) == Some(&b'x') {
        p |= libc::PROT_EXEC;
    }
    p
}

/// Where each of `mappings`' contents come from (`None`: nowhere — the
/// kernel's, and anonymous memory with nothing saved, made fresh). Each
/// mapped file, by (path, opened for writing), is taken from `mapped` and
/// made a helper once; each shared anonymous object (by device and inode)
/// gets one memfd.
pub fn sources(
    mappings: &[Mapping],
    mapped: &mut HashMap<(String, bool), OwnedFd>,
    helpers: &mut Helpers,
) -> Result<Vec<Option<Source>>, RestoreError> {
    let mut files: Vec<((String, bool), RawFd)> = Vec::new();
    let mut objects: Vec<((u64, u64), RawFd)> = Vec::new();
    let mut sources = Vec::new();
    for m in mappings {
        let source = match m.kind {
            MappingKind::Kernel => None,
            MappingKind::Anonymous if m.pages.is_empty() => None,
            MappingKind::Anonymous => Some(Source::Anonymous {
                grows_down: m.path == "[stack]",
            }),
            MappingKind::PrivateFile | MappingKind::SharedFile => {
                let shared = m.kind == MappingKind::SharedFile;
                let write = shared && prot(&m.perms) & libc::PROT_WRITE != 0;
                let path = m.file.as_ref().map_or(m.path.clone(), |id| id.path.clone());
                let key = (path, write);
                let fd = match files.iter().find(|(k, _)| *k == key) {
                    Some((_, fd)) => *fd,
                    None => {
                        let file = mapped.remove(&key).ok_or_else(|| {
                            prepare_err(key.0.clone())(std::io::Error::other(
                                "the mapped file was not opened",
                            ))
                        })?;
                        let fd = helpers.add(file)?;
                        files.push((key, fd));
                        fd
                    }
                };
                Some(Source::File {
                    fd,
                    offset: m.offset,
                    shared,
                    prot: if shared {
                        prot(&m.perms)
                    } else {
                        libc::PROT_READ | libc::PROT_WRITE
                    },
                })
            }
            MappingKind::SharedAnonymous => {
                let key = m.file.as_ref().map(|id| (id.dev, id.ino));
                let fd = match objects.iter().find(|(k, _)| Some(*k) == key) {
                    Some((_, fd)) => *fd,
                    None => {
                        let fd = helpers.add(shared_object(m, mappings)?)?;
                        if let Some(key) = key {
                            objects.push((key, fd));
                        }
                        fd
                    }
                };
                Some(Source::File {
                    fd,
                    offset: m.offset,
                    shared: true,
                    prot: libc::PROT_READ | libc::PROT_WRITE,
                })
            }
        };
        sources.push(source);
    }
    Ok(sources)
}

/// The bytes the prepared mappings take in the zone: each mapping with a
/// source, and an unmapped page after it.
pub fn premaps_len(mappings: &[Mapping], sources: &[Option<Source>]) -> u64 {
    mappings
        .iter()
        .zip(sources)
        .filter(|(_, s)| s.is_some())
        .map(|(m, _)| m.end - m.start + PAGE_SIZE)
        .sum()
}

/// The kernel's mappings, each moved by the stub in two passes: into the
/// zone, then to its final place.
#[derive(Debug, Default)]
pub struct Kernel {
    /// From where each is here to its place in the zone.
    pub moves: Vec<Move>,
    /// Where each goes then: where the image had it (where it is here if
    /// the image had none).
    pub finals: Vec<u64>,
    /// What the stub must never unmap, sorted: the zone, and the kernel's
    /// mappings where they are now.
    pub keep: Vec<Range>,
}

/// Plans the kernel's mappings `here` (name, start, end) into the zone
/// from `cursor` on, which it advances past them.
pub fn kernel(
    here: &[(String, u64, u64)],
    mappings: &[Mapping],
    zone: (u64, u64),
    cursor: &mut u64,
) -> Kernel {
    let mut kernel = Kernel {
        keep: vec![Range {
            start: zone.0,
            end: zone.0 + zone.1,
        }],
        ..Kernel::default()
    };
    for (name, start, end) in here {
        let target = mappings
            .iter()
            .find(|m| &m.path == name)
            .map(|m| m.start)
            .unwrap_or(*start);
        kernel.moves.push(Move {
            from: *start,
            to: *cursor,
            len: end - start,
            ..Move::default()
        });
        kernel.finals.push(target);
        kernel.keep.push(Range {
            start: *start,
            end: *end,
        });
        *cursor += end - start;
    }
    kernel.keep.sort_by_key(|r| r.start);
    kernel
}

/// Every mapping but the kernel's, in order: the stub's move for it, and
/// for one with a source its contents prepared in the zone from `cursor`
/// on (which it advances, leaving a page unmapped after each).
pub fn place(
    mappings: &[Mapping],
    sources: Vec<Option<Source>>,
    cursor: &mut u64,
) -> (Vec<Move>, Vec<Premap>) {
    let mut moves = Vec::new();
    let mut premaps = Vec::new();
    for (m, source) in mappings.iter().zip(sources) {
        if m.kind == MappingKind::Kernel {
            continue;
        }
        let len = m.end - m.start;
        let grows_down = m.path == "[stack]";
        // Fresh (nothing saved: zeros) or moved from where it was
        // prepared.
        let (from, kind) = match source {
            None => (0, MOVE_FRESH),
            Some(source) => {
                let at = *cursor;
                *cursor += len + PAGE_SIZE;
                let runs = m
                    .pages
                    .iter()
                    .map(|r| Run {
                        to: at + r.first_page * PAGE_SIZE,
                        len: r.pages * PAGE_SIZE,
                        from: r.at,
                        blake3: r.blake3.clone(),
                        mapping: m.start,
                    })
                    .collect();
                premaps.push(Premap {
                    at,
                    len,
                    target: m.start,
                    source,
                    runs,
                });
                (at, MOVE_REMAP)
            }
        };
        moves.push(Move {
            from,
            to: m.start,
            len,
            prot: prot(&m.perms) as u32,
            kind,
            flags: if grows_down { MOVE_GROWSDOWN } else { 0 },
            _pad: 0,
        });
    }
    (moves, premaps)
}

/// A memfd standing in for a shared anonymous mapping's object, named as
/// the original memfd was (the client block's `suspend-client` among
/// them) or as the deleted file was, as big as the object was, and at
/// least big enough for every mapping of it in `all`.
fn shared_object(m: &Mapping, all: &[Mapping]) -> Result<OwnedFd, RestoreError> {
    let fd = nix::sys::memfd::memfd_create(
        memfd_name(&m.path).as_c_str(),
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )
    .map_err(|e| prepare_err(format!("memfd_create for {}", m.path))(e.into()))?;
    nix::unistd::ftruncate(&fd, object_size(m, all) as i64)
        .map_err(|e| prepare_err(format!("sizing the memfd for {}", m.path))(e.into()))?;
    Ok(fd)
}

/// The name of the memfd for a shared object mapped as `path`: a memfd's
/// own name; a deleted file's name (not its directory); else
/// `suspend-shared`.
fn memfd_name(path: &str) -> CString {
    let name = path
        .strip_prefix("/memfd:")
        .or_else(|| {
            path.ends_with(" (deleted)")
                .then(|| path.rsplit('/').next())
                .flatten()
        })
        .map(|n| n.trim_end_matches(" (deleted)"))
        .filter(|n| !n.is_empty())
        .unwrap_or("suspend-shared");
    // memfd_create takes names of up to 249 bytes.
    let name = &name[..name.floor_char_boundary(249)];
    CString::new(name).unwrap_or_else(|_| c"suspend-shared".to_owned())
}

/// How big the object `m` maps must be: as big as it was, and as far as
/// any of its mappings in `all` reaches (`m` only, if its object is not
/// known).
fn object_size(m: &Mapping, all: &[Mapping]) -> u64 {
    let same = |o: &&Mapping| {
        o.kind == MappingKind::SharedAnonymous
            && o.file.as_ref().map(|id| (id.dev, id.ino))
                == m.file.as_ref().map(|id| (id.dev, id.ino))
    };
    all.iter()
        .filter(|o| std::ptr::eq(*o, m) || (m.file.is_some() && same(o)))
        .map(|o| o.offset + o.end - o.start)
        .chain(m.file.as_ref().map(|id| id.size))
        .max()
        .unwrap_or(m.offset + m.end - m.start)
}
