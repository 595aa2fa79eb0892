//! Mappings: each mapping of the process, with the pages of it a resume
//! could not have from anywhere else.
//!
//! Restored: where each mapping's contents come from at resume
//! ([`origin`]: nothing, fresh anonymous memory, the mapped file opened as
//! [`opened_as`] says, or a memfd standing in for a shared anonymous
//! object, [`shared_object`]) and its protection ([`prot`]). The zone the
//! contents are prepared in, the moves of the stub and the reading of the
//! page runs are the restore's (`restore/plan/memory.rs`,
//! `restore/load.rs`).

use std::{ffi::CString, os::fd::OwnedFd};

use crate::image::format::{Mapping, MappingKind};

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

/// Whether `m` grows down (`MAP_GROWSDOWN`): the main thread's stack.
pub fn grows_down(m: &Mapping) -> bool {
    m.path == "[stack]"
}

/// The file a file mapping `m` maps, as a resume opens it: by (path,
/// opened for writing), writing only for a writable shared mapping.
/// `None` for any other kind.
pub fn opened_as(m: &Mapping) -> Option<(String, bool)> {
    matches!(m.kind, MappingKind::PrivateFile | MappingKind::SharedFile).then(|| file(m))
}

/// (path, opened for writing) of the file `m` maps: the path the image
/// identified it by, else the one `/proc/PID/maps` showed.
fn file(m: &Mapping) -> (String, bool) {
    let write = m.kind == MappingKind::SharedFile && prot(&m.perms) & libc::PROT_WRITE != 0;
    let path = m.file.as_ref().map_or(m.path.clone(), |id| id.path.clone());
    (path, write)
}

/// Where one mapping's contents come from at resume.
#[derive(Debug, PartialEq, Eq)]
pub enum Origin {
    /// Nowhere: the kernel's own mappings, and anonymous memory with
    /// nothing saved, made fresh (zeros).
    Nothing,
    /// Fresh anonymous memory the saved pages are read into.
    Anonymous { grows_down: bool },
    /// The mapped file, opened as [`opened_as`] says, mapped from
    /// `offset` with `prot`: a private mapping made writable to be filled
    /// with the pages written, a shared one with its own protection (the
    /// file has its pages).
    File {
        opened_as: (String, bool),
        offset: u64,
        shared: bool,
        prot: i32,
    },
    /// A shared anonymous object (a memfd, SysV shm, a deleted file),
    /// known by (device, inode) where the image says, mapped shared and
    /// read-write from `offset`; a memfd stands in for it
    /// ([`shared_object`]).
    Object { id: Option<(u64, u64)>, offset: u64 },
}

/// Where the contents of `m` come from at resume.
pub fn origin(m: &Mapping) -> Origin {
    match m.kind {
        MappingKind::Kernel => Origin::Nothing,
        MappingKind::Anonymous if m.pages.is_empty() => Origin::Nothing,
        MappingKind::Anonymous => Origin::Anonymous {
            grows_down: grows_down(m),
        },
        MappingKind::PrivateFile | MappingKind::SharedFile => {
            let shared = m.kind == MappingKind::SharedFile;
            Origin::File {
                opened_as: file(m),
                offset: m.offset,
                shared,
                prot: if shared {
                    prot(&m.perms)
                } else {
                    libc::PROT_READ | libc::PROT_WRITE
                },
            }
        }
        MappingKind::SharedAnonymous => Origin::Object {
            id: m.file.as_ref().map(|id| (id.dev, id.ino)),
            offset: m.offset,
        },
    }
}

/// Making the memfd for a shared object failed, while doing `what`.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct ObjectError {
    pub what: String,
    pub source: std::io::Error,
}

/// A memfd standing in for a shared anonymous mapping's object, named as
/// the original memfd was (the client block's `suspend-client` among
/// them) or as the deleted file was, as big as the object was, and at
/// least big enough for every mapping of it in `all`.
pub fn shared_object(m: &Mapping, all: &[Mapping]) -> Result<OwnedFd, ObjectError> {
    let fd = nix::sys::memfd::memfd_create(
        memfd_name(&m.path).as_c_str(),
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )
    .map_err(|e| ObjectError {
        what: format!("memfd_create for {}", m.path),
        source: e.into(),
    })?;
    nix::unistd::ftruncate(&fd, object_size(m, all) as i64).map_err(|e| ObjectError {
        what: format!("sizing the memfd for {}", m.path),
        source: e.into(),
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        image::format::FileId,
        state::fixtures::{mapping, run},
    };

    const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;

    fn id(path: &str, ino: u64, size: u64) -> FileId {
        FileId {
            path: path.into(),
            dev: 8,
            ino,
            size,
            mtime_ns: 0,
        }
    }

    #[test]
    fn prot_reads_the_permission_string() {
        assert_eq!(prot("r-xp"), libc::PROT_READ | libc::PROT_EXEC);
        assert_eq!(prot("rw-s"), RW);
        assert_eq!(prot("rwxp"), RW | libc::PROT_EXEC);
        assert_eq!(prot("---p"), libc::PROT_NONE);
        // Each letter only in its place.
        assert_eq!(prot("-r-p"), libc::PROT_NONE);
        assert_eq!(prot("x"), libc::PROT_NONE);
        assert_eq!(prot(""), libc::PROT_NONE);
    }

    #[test]
    fn each_kind_of_mapping_has_its_origin() {
        let mut heap = mapping(0x10000, 0x14000, "rw-p", MappingKind::Anonymous);
        heap.pages = vec![run(0, 1, 0)];
        assert_eq!(origin(&heap), Origin::Anonymous { grows_down: false });
        let mut stack = heap.clone();
        stack.path = "[stack]".into();
        assert_eq!(origin(&stack), Origin::Anonymous { grows_down: true });
        // Nothing saved: made fresh.
        let bss = mapping(0x20000, 0x21000, "rw-p", MappingKind::Anonymous);
        assert_eq!(origin(&bss), Origin::Nothing);
        let vdso = mapping(0x7fff_0000, 0x7fff_2000, "r-xp", MappingKind::Kernel);
        assert_eq!(origin(&vdso), Origin::Nothing);
        // A file by the name it had when saved, opened for writing only
        // for a writable shared mapping.
        let mut data = mapping(0x40_2000, 0x40_3000, "rw-p", MappingKind::PrivateFile);
        data.path = "/bin/w (deleted)".into();
        data.file = Some(id("/bin/w", 2, 0x3000));
        data.offset = 0x2000;
        assert_eq!(
            origin(&data),
            Origin::File {
                opened_as: ("/bin/w".into(), false),
                offset: 0x2000,
                shared: false,
                prot: RW
            }
        );
        let mut db = mapping(0x50_0000, 0x50_1000, "rw-s", MappingKind::SharedFile);
        db.path = "/srv/db".into();
        assert_eq!(opened_as(&db), Some(("/srv/db".into(), true)));
        db.perms = "r--s".into();
        assert_eq!(
            origin(&db),
            Origin::File {
                opened_as: ("/srv/db".into(), false),
                offset: 0,
                shared: true,
                prot: libc::PROT_READ
            }
        );
        let mut ring = mapping(0x60_0000, 0x60_1000, "r--s", MappingKind::SharedAnonymous);
        ring.file = Some(id("/memfd:ring (deleted)", 77, 0x1000));
        ring.offset = 0x1000;
        assert_eq!(opened_as(&ring), None);
        assert_eq!(
            origin(&ring),
            Origin::Object {
                id: Some((8, 77)),
                offset: 0x1000
            }
        );
    }

    #[test]
    fn a_shared_object_is_as_big_as_its_furthest_mapping() {
        let object = Some(id("/memfd:ring (deleted)", 77, 0x1000));
        let mut a = mapping(0x10000, 0x12000, "rw-s", MappingKind::SharedAnonymous);
        a.path = "/memfd:ring (deleted)".into();
        a.file = object.clone();
        let mut b = a.clone();
        (b.start, b.end, b.offset) = (0x30000, 0x31000, 0x4000);
        let mut other = a.clone();
        other.file = Some(id("/memfd:other (deleted)", 78, 0x1000));
        (other.start, other.end) = (0x50000, 0x51000);
        let all = [a, b, other];
        assert_eq!(object_size(&all[0], &all), 0x5000);
        assert_eq!(object_size(&all[2], &all), 0x1000);
        let fd = shared_object(&all[0], &all).expect("a memfd");
        let size = nix::sys::stat::fstat(&fd).expect("fstat").st_size;
        assert_eq!(size, 0x5000);
        // Bigger than any mapping of it reaches: as big as it was.
        let mut whole = all[2].clone();
        whole.file = Some(id("/memfd:other (deleted)", 78, 0x9000));
        assert_eq!(object_size(&whole, std::slice::from_ref(&whole)), 0x9000);
        // An object not known by its inode: the mapping alone.
        let mut unknown = all[0].clone();
        unknown.file = None;
        let all = [unknown, all[1].clone()];
        assert_eq!(object_size(&all[0], &all), 0x2000);
    }

    #[test]
    fn memfds_are_named_as_the_memfd_or_deleted_file_was() {
        let name = |path: &str| memfd_name(path).into_string().expect("UTF-8");
        assert_eq!(name("/memfd:suspend-client (deleted)"), "suspend-client");
        assert_eq!(name("/memfd:ring"), "ring");
        assert_eq!(name("/dev/shm/sem.lock (deleted)"), "sem.lock");
        assert_eq!(name("/SYSV00000000 (deleted)"), "SYSV00000000");
        assert_eq!(name("/dev/zero"), "suspend-shared");
        assert_eq!(name("/memfd: (deleted)"), "suspend-shared");
        assert_eq!(name(""), "suspend-shared");
        // At most 249 bytes, never half a character.
        assert_eq!(name(&format!("/memfd:{}", "a".repeat(300))).len(), 249);
        assert_eq!(name(&format!("/memfd:{}é", "a".repeat(248))).len(), 248);
    }
}
