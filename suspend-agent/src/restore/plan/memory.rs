//! The memory: where each mapping's contents are prepared in the zone
//! (and which page runs [`crate::restore::load`] reads in there), from
//! the source its kind says ([`crate::state::mappings::origin`]: made
//! fresh; anonymous memory; a file opened as the process; a memfd
//! standing in for a shared anonymous object), each file and object made
//! one helper, and the move the stub makes to put each in place. The
//! kernel's own mappings (vDSO, vvar) are moved too: to where the image
//! had them, or, where a proxy stands in for the image's vDSO
//! (`state::vdso`), together to a free place, the proxy prepared in the
//! zone like any mapping and moved to where the image's vDSO was.

use std::{
    collections::HashMap,
    os::fd::{OwnedFd, RawFd},
};

use suspend_common::restore::{MOVE_FRESH, MOVE_GROWSDOWN, MOVE_REMAP, Move, Range};

use super::{fds::Helpers, prepare_err};
use crate::{
    image::format::{Mapping, MappingKind, PAGE_SIZE},
    restore::{RestoreError, load::Run},
    state::mappings::{Origin, grows_down, origin, prot, shared_object},
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
        let source = match origin(m) {
            Origin::Nothing => None,
            Origin::Anonymous { grows_down } => Some(Source::Anonymous { grows_down }),
            Origin::File {
                opened_as: key,
                offset,
                shared,
                prot,
            } => {
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
                    offset,
                    shared,
                    prot,
                })
            }
            Origin::Object { id: key, offset } => {
                let fd = match objects.iter().find(|(k, _)| Some(*k) == key) {
                    Some((_, fd)) => *fd,
                    None => {
                        let object =
                            shared_object(m, mappings).map_err(|e| RestoreError::Prepare {
                                what: e.what,
                                source: e.source,
                            })?;
                        let fd = helpers.add(object)?;
                        if let Some(key) = key {
                            objects.push((key, fd));
                        }
                        fd
                    }
                };
                Some(Source::File {
                    fd,
                    offset,
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
    /// the image had none), or for a proxy [`kernel_home`].
    pub finals: Vec<u64>,
    /// What the stub must never unmap, sorted: the zone, and the kernel's
    /// mappings where they are now.
    pub keep: Vec<Range>,
}

/// Where each of the kernel's mappings `here` (name, start, end) goes
/// when it replaces the image's: where the image had one of its name
/// (where it is here if the image had none).
pub fn kernel_in_place(here: &[(String, u64, u64)], mappings: &[Mapping]) -> Vec<u64> {
    here.iter()
        .map(|(name, start, _)| {
            mappings
                .iter()
                .find(|m| &m.path == name)
                .map_or(*start, |m| m.start)
        })
        .collect()
}

/// Where each of the kernel's mappings `here` goes when a proxy stands in
/// for the image's vDSO: all together, as they lie here (the vDSO reads
/// its data pages at fixed offsets from itself), where they are now if
/// none of the image's `mappings` is there, else on the first range free
/// of them and of the `zone`. `None`: no room.
pub fn kernel_home(
    here: &[(String, u64, u64)],
    mappings: &[Mapping],
    zone: (u64, u64),
) -> Option<Vec<u64>> {
    let (Some(low), Some(high)) = (
        here.iter().map(|(_, s, _)| *s).min(),
        here.iter().map(|(_, _, e)| *e).max(),
    ) else {
        // A kernel that gives no vDSO: nothing to place.
        return Some(Vec::new());
    };
    let len = high - low;
    let clear = !mappings.iter().any(|m| m.start < high && m.end > low);
    let base = if clear {
        low
    } else {
        let taken = mappings
            .iter()
            .map(|m| (m.start, m.end))
            .chain([(zone.0, zone.0 + zone.1)])
            .collect();
        super::zone::first_free(taken, len)?
    };
    Some(here.iter().map(|(_, s, _)| base + (s - low)).collect())
}

/// Plans the kernel's mappings `here` (name, start, end) into the zone
/// from `cursor` on, which it advances past them, and from there to
/// `finals` (one per mapping of `here`).
pub fn kernel(
    here: &[(String, u64, u64)],
    finals: Vec<u64>,
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
    kernel.finals = finals;
    for (_, start, end) in here {
        kernel.moves.push(Move {
            from: *start,
            to: *cursor,
            len: end - start,
            ..Move::default()
        });
        kernel.keep.push(Range {
            start: *start,
            end: *end,
        });
        *cursor += end - start;
    }
    kernel.keep.sort_by_key(|r| r.start);
    kernel
}

/// The proxy of the image's vDSO (`len` bytes at `at`): prepared in the
/// zone at `cursor` (which it advances, leaving a page unmapped after it),
/// filled by the agent ([`crate::restore::load::fill`]), moved to `at`
/// and made read+exec by the stub.
pub fn proxy(at: u64, len: u64, cursor: &mut u64) -> (Move, Premap) {
    let from = *cursor;
    *cursor += len + PAGE_SIZE;
    let premap = Premap {
        at: from,
        len,
        target: at,
        source: Source::Anonymous { grows_down: false },
        runs: Vec::new(),
    };
    let m = Move {
        from,
        to: at,
        len,
        prot: (libc::PROT_READ | libc::PROT_EXEC) as u32,
        kind: MOVE_REMAP,
        flags: 0,
        _pad: 0,
    };
    (m, premap)
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
                        stored: r.stored,
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
            flags: if grows_down(m) { MOVE_GROWSDOWN } else { 0 },
            _pad: 0,
        });
    }
    (moves, premaps)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use suspend_common::restore::{MOVE_FRESH, MOVE_GROWSDOWN, MOVE_REMAP, Range};

    use super::{Source, kernel, kernel_home, kernel_in_place, place, premaps_len, proxy, sources};
    use crate::{
        image::format::{Mapping, MappingKind, PAGE_SIZE},
        restore::plan::fds::Helpers,
        state::fixtures::{file_id, mapping, run, shared_objects},
    };

    const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;

    #[test]
    fn anonymous_memory_is_prepared_only_where_pages_were_saved() {
        let mut heap = mapping(0x10000, 0x14000, "rw-p", MappingKind::Anonymous);
        heap.pages = vec![run(0, 1, 0)];
        let mut stack = mapping(0x7000_0000, 0x7002_0000, "rw-p", MappingKind::Anonymous);
        stack.path = "[stack]".into();
        stack.pages = vec![run(31, 1, 4096)];
        let bss = mapping(0x20000, 0x21000, "rw-p", MappingKind::Anonymous);
        let mut vdso = mapping(0x7fff_0000, 0x7fff_2000, "r-xp", MappingKind::Kernel);
        vdso.path = "[vdso]".into();
        let all = [heap, stack, bss, vdso];
        let mut helpers = Helpers::above(&[]);
        let got = sources(&all, &mut HashMap::new(), &mut helpers).expect("no files to open");
        assert!(matches!(
            got[0],
            Some(Source::Anonymous { grows_down: false })
        ));
        assert!(matches!(
            got[1],
            Some(Source::Anonymous { grows_down: true })
        ));
        assert!(got[2].is_none() && got[3].is_none());
        assert!(helpers.into_fds().is_empty());
        assert_eq!(premaps_len(&all, &got), 0x4000 + 0x20000 + 2 * PAGE_SIZE);
    }

    #[test]
    fn a_mapped_file_is_one_helper_however_often_it_is_mapped() {
        let mut text = mapping(0x40_0000, 0x40_2000, "r-xp", MappingKind::PrivateFile);
        text.file = Some(file_id("/bin/w", 2, 0x3000));
        let mut data = mapping(0x40_2000, 0x40_3000, "rw-p", MappingKind::PrivateFile);
        data.file = text.file.clone();
        data.offset = 0x2000;
        let mut shared = mapping(0x50_0000, 0x50_1000, "r--s", MappingKind::SharedFile);
        shared.file = text.file.clone();
        let all = [text, data, shared];
        let mut opened = HashMap::new();
        let null = || std::fs::File::open("/dev/null").expect("/dev/null").into();
        opened.insert(("/bin/w".to_owned(), false), null());
        let mut helpers = Helpers::above(&[]);
        let got = sources(&all, &mut opened, &mut helpers).expect("opened");
        let file = |i: usize| match got[i] {
            Some(Source::File {
                fd,
                offset,
                shared,
                prot,
            }) => (fd, offset, shared, prot),
            ref other => panic!("mapping {i}: {other:?}"),
        };
        let (fd, ..) = file(0);
        // A private mapping is made writable to be filled; a shared one
        // keeps its protection (the file has its pages).
        assert_eq!(file(0), (fd, 0, false, RW));
        assert_eq!(file(1), (fd, 0x2000, false, RW));
        assert_eq!(file(2), (fd, 0, true, libc::PROT_READ));
        assert_eq!(helpers.into_fds().len(), 1);
    }

    #[test]
    fn a_mapped_file_not_opened_is_an_error_naming_it() {
        let mut w = mapping(0x40_0000, 0x40_1000, "rw-s", MappingKind::SharedFile);
        w.file = Some(file_id("/srv/db", 2, 0x1000));
        let mut opened = HashMap::new();
        // Opened for reading only: a writable shared mapping needs it
        // opened for writing.
        let null = std::fs::File::open("/dev/null").expect("/dev/null").into();
        opened.insert(("/srv/db".to_owned(), false), null);
        let err = sources(&[w], &mut opened, &mut Helpers::above(&[]))
            .expect_err("not opened for writing");
        assert!(err.to_string().starts_with("/srv/db: "), "{err}");
    }

    #[test]
    fn a_shared_object_is_one_memfd_as_big_as_its_furthest_mapping() {
        let all = shared_objects();
        let mut helpers = Helpers::above(&[]);
        let got = sources(&all, &mut HashMap::new(), &mut helpers).expect("memfds");
        let fd = |i: usize| match got[i] {
            Some(Source::File { fd, shared, .. }) => {
                assert!(shared);
                fd
            }
            ref other => panic!("mapping {i}: {other:?}"),
        };
        assert_eq!(fd(0), fd(1));
        assert_ne!(fd(0), fd(2));
        let fds = helpers.into_fds();
        assert_eq!(fds.len(), 2);
        let size = nix::sys::stat::fstat(&fds[0]).expect("fstat").st_size;
        assert_eq!(size, 0x5000);
    }

    #[test]
    fn the_kernels_mappings_go_through_the_zone_to_where_the_image_had_them() {
        let mut vdso = mapping(0x7ffd_0000, 0x7ffd_2000, "r-xp", MappingKind::Kernel);
        vdso.path = "[vdso]".into();
        let here = [
            ("[vvar]".to_owned(), 0x7ff0_0000, 0x7ff0_4000),
            ("[vdso]".to_owned(), 0x7ff0_4000, 0x7ff0_6000),
        ];
        let zone = (0x1000_0000_0000, 0x10_0000);
        let mut cursor = zone.0 + 0x8000;
        let k = kernel(&here, kernel_in_place(&here, &[vdso]), zone, &mut cursor);
        assert_eq!(cursor, zone.0 + 0x8000 + 0x6000);
        let moves: Vec<_> = k.moves.iter().map(|m| (m.from, m.to, m.len)).collect();
        assert_eq!(
            moves,
            [
                (0x7ff0_0000, zone.0 + 0x8000, 0x4000),
                (0x7ff0_4000, zone.0 + 0xc000, 0x2000)
            ]
        );
        // The image had no vvar: it stays where it is.
        assert_eq!(k.finals, [0x7ff0_0000, 0x7ffd_0000]);
        let keep: Vec<Range> = [
            (0x7ff0_0000, 0x7ff0_4000),
            (0x7ff0_4000, 0x7ff0_6000),
            (zone.0, zone.0 + zone.1),
        ]
        .iter()
        .map(|&(start, end)| Range { start, end })
        .collect();
        assert_eq!(k.keep, keep);
    }

    #[test]
    fn with_a_proxy_the_kernels_mappings_stay_together_where_the_image_has_nothing() {
        let here = [
            ("[vvar]".to_owned(), 0x7ff0_0000, 0x7ff0_4000),
            ("[vdso]".to_owned(), 0x7ff0_4000, 0x7ff0_6000),
        ];
        let zone = (0x1000_0000_0000, 0x10_0000);
        let mut vdso = mapping(0x7ffd_0000, 0x7ffd_2000, "r-xp", MappingKind::Kernel);
        vdso.path = "[vdso]".into();
        // Nothing of the image there: they stay where they are.
        assert_eq!(
            kernel_home(&here, std::slice::from_ref(&vdso), zone),
            Some(vec![0x7ff0_0000, 0x7ff0_4000])
        );
        // The image's stack over the vDSO: both go past the zone, on a
        // GiB, as they lay.
        let stack = mapping(0x7ff0_5000, 0x7ff1_0000, "rw-p", MappingKind::Anonymous);
        let gib = 1 << 30;
        assert_eq!(
            kernel_home(&here, &[vdso, stack], zone),
            Some(vec![zone.0 + gib, zone.0 + gib + 0x4000])
        );
        assert_eq!(kernel_home(&[], &[], zone), Some(vec![]));
        // The image everywhere past where the search starts: no room.
        let all = mapping(
            0x7ff0_0000,
            0x7fff_ffff_f000,
            "rw-p",
            MappingKind::Anonymous,
        );
        assert_eq!(kernel_home(&here, &[all], zone), None);
    }

    #[test]
    fn the_proxy_is_prepared_in_the_zone_and_moved_read_exec_to_the_old_vdso() {
        let mut cursor = 0x1000_0020_0000;
        let (m, premap) = proxy(0x7ffd_0000, 0x2000, &mut cursor);
        assert_eq!(cursor, 0x1000_0020_0000 + 0x2000 + PAGE_SIZE);
        assert_eq!(
            (m.from, m.to, m.len, m.kind, m.flags),
            (0x1000_0020_0000, 0x7ffd_0000, 0x2000, MOVE_REMAP, 0)
        );
        assert_eq!(m.prot as i32, libc::PROT_READ | libc::PROT_EXEC);
        assert_eq!(
            (premap.at, premap.len, premap.target),
            (m.from, m.len, m.to)
        );
        assert!(premap.runs.is_empty());
        assert!(matches!(
            premap.source,
            Source::Anonymous { grows_down: false }
        ));
    }

    #[test]
    fn each_mapping_is_moved_from_its_prepared_place_or_made_fresh() {
        let mut heap = mapping(0x10000, 0x14000, "rw-p", MappingKind::Anonymous);
        heap.pages = vec![run(1, 2, 8192)];
        let mut vdso = mapping(0x7fff_0000, 0x7fff_2000, "r-xp", MappingKind::Kernel);
        vdso.path = "[vdso]".into();
        let bss = mapping(0x20000, 0x21000, "r--p", MappingKind::Anonymous);
        let mut stack = mapping(0x7000_0000, 0x7000_2000, "rw-p", MappingKind::Anonymous);
        stack.path = "[stack]".into();
        stack.pages = vec![run(1, 1, 0)];
        let all: [Mapping; 4] = [heap, vdso, bss, stack];
        let sources = vec![
            Some(Source::Anonymous { grows_down: false }),
            None,
            None,
            Some(Source::Anonymous { grows_down: true }),
        ];
        let start = 0x1000_0010_0000;
        let mut cursor = start;
        let (moves, premaps) = place(&all, sources, &mut cursor);
        let got: Vec<_> = moves
            .iter()
            .map(|m| (m.from, m.to, m.len, m.prot as i32, m.kind, m.flags))
            .collect();
        let second = start + 0x4000 + PAGE_SIZE;
        assert_eq!(
            got,
            [
                (start, 0x10000, 0x4000, RW, MOVE_REMAP, 0),
                (0, 0x20000, 0x1000, libc::PROT_READ, MOVE_FRESH, 0),
                (second, 0x7000_0000, 0x2000, RW, MOVE_REMAP, MOVE_GROWSDOWN),
            ]
        );
        assert_eq!(cursor, second + 0x2000 + PAGE_SIZE);
        assert_eq!(
            premaps
                .iter()
                .map(|p| (p.at, p.len, p.target))
                .collect::<Vec<_>>(),
            [(start, 0x4000, 0x10000), (second, 0x2000, 0x7000_0000)]
        );
        let runs: Vec<_> = premaps
            .iter()
            .flat_map(|p| &p.runs)
            .map(|r| (r.to, r.len, r.from, r.mapping))
            .collect();
        assert_eq!(
            runs,
            [
                (start + PAGE_SIZE, 2 * PAGE_SIZE, 8192, 0x10000),
                (second + PAGE_SIZE, PAGE_SIZE, 0, 0x7000_0000),
            ]
        );
    }
}
