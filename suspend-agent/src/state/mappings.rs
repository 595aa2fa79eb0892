//! Mappings: each mapping of the process, with the pages of it a resume
//! could not have from anywhere else.
//!
//! Saved: which pages of a mapping of each kind are saved, from its
//! pagemap entries ([`anonymous_page_saved`], [`private_file_page_saved`];
//! none of a shared file's or of the kernel's, a shared anonymous
//! object's data read from the object), called by the copy engine
//! (`dump/memory.rs`); the record of each, with its file's or object's
//! identity and what `madvise` said of it ([`save`]); the program break,
//! asked from inside ([`ask_brk`]). Refused by name,
//! before the freeze: a private mapping of a file deleted since, a file
//! whose name is not surely its own, memory shared with another process
//! ([`refusals`]); the names of shared anonymous mappings
//! ([`anon_shmem_name_refusal`]), protection keys
//! ([`protection_key_refusal`]) and locked memory ([`locked_refusal`]),
//! which an image does not hold.
//!
//! Restored: where each mapping's contents come from at resume
//! ([`origin`]: nothing, fresh anonymous memory, the mapped file opened as
//! [`opened_as`] says, or a memfd standing in for a shared anonymous
//! object, [`shared_object`]) and its protection ([`prot`]); the program
//! break, where it was ([`brk`]). The zone the
//! contents are prepared in, the moves of the stub and the reading of the
//! page runs are the restore's (`restore/plan/memory.rs`,
//! `restore/load.rs`).

use std::{
    collections::{BTreeMap, HashMap},
    ffi::CString,
    fs,
    os::{fd::OwnedFd, unix::fs::MetadataExt as _},
    path::Path,
};

use crate::{
    image::format::{Advice, Mapping, MappingKind, PageRun, Process},
    procfs::{Smaps, vmas::Vma},
    tracee::inject::{Borrowed, InjectError},
};

/// How mapping `vma` is saved: the kind of it the image records.
pub fn kind(vma: &Vma) -> MappingKind {
    let special = matches!(
        vma.path.as_str(),
        "[vdso]" | "[vvar]" | "[vvar_vclock]" | "[vsyscall]"
    );
    // A shared mapping of a file deleted since (a POSIX semaphore's
    // `/dev/shm/sem.*`): only its mappings reach it, so it is saved
    // and made again as an object of its own, like a memfd.
    let anonymous_object = vma.inode == 0
        || vma.path.starts_with("/memfd:")
        || vma.path.starts_with("/SYSV")
        || vma.path.starts_with("/dev/zero")
        || vma.path.starts_with("/anon_hugepage")
        || vma.deleted();
    if special {
        MappingKind::Kernel
    } else if vma.shared() {
        if anonymous_object {
            MappingKind::SharedAnonymous
        } else {
            MappingKind::SharedFile
        }
    } else if vma.inode == 0 {
        MappingKind::Anonymous
    } else {
        MappingKind::PrivateFile
    }
}

/// A `/proc/PID/pagemap` entry's bit: the page is in memory.
const PM_PRESENT: u64 = 1 << 63;
/// The page is swapped out.
const PM_SWAPPED: u64 = 1 << 62;
/// The page is a file's page (or shared anonymous memory's).
const PM_FILE: u64 = 1 << 61;

/// A swapped entry's type (its low five bits, as root reads them): the
/// last of the 32 is the kernel's *page table marker* (`SWP_PTE_MARKER`),
/// which holds no page: a page not there yet that a userfaultfd
/// write-protects (the pre-copy's, `dump/precopy.rs`), or a guard page.
const SWAP_TYPE_MASK: u64 = 0x1f;
const SWP_PTE_MARKER: u64 = 31;

/// Whether `entry` is swapped out for real: a swap entry that is not a
/// page table marker.
#[inline]
fn swapped(entry: u64) -> bool {
    entry & PM_SWAPPED != 0 && entry & PM_PRESENT == 0 && entry & SWAP_TYPE_MASK != SWP_PTE_MARKER
}

/// Whether a page of private anonymous memory whose pagemap entry is
/// `entry` is saved: where it exists (present or swapped out); a page
/// never touched (or only marked) reads as zeros at resume.
#[inline]
pub fn anonymous_page_saved(entry: u64) -> bool {
    entry & PM_PRESENT != 0 || swapped(entry)
}

/// Whether a page of a private file mapping whose pagemap entry is
/// `entry` is saved: written pages are anonymous copies (present and no
/// longer the file's, or swapped out); the others are still the file's.
#[inline]
pub fn private_file_page_saved(entry: u64) -> bool {
    swapped(entry) || (entry & PM_PRESENT != 0 && entry & PM_FILE == 0)
}

/// The record of `vma` of `pid`, with its saved page runs `pages`: what
/// `smaps` (by start address) says of it — the advice `madvise` gave
/// that the kernel keeps with it, whether it is sealed — and the identity
/// of the file or object it maps.
pub fn save(pid: u32, vma: &Vma, pages: Vec<PageRun>, smaps: &HashMap<u64, Smaps>) -> Mapping {
    let kind = kind(vma);
    // Shared anonymous mappings too: two of one object (a memfd mapped
    // twice, a region split by mprotect) must come back as one memory.
    let file = matches!(
        kind,
        MappingKind::PrivateFile | MappingKind::SharedFile | MappingKind::SharedAnonymous
    )
    .then(|| {
        let files = format!("/proc/{pid}/map_files/{:x}-{:x}", vma.start, vma.end);
        crate::procfs::file_id(Path::new(&files), &vma.path)
    })
    .flatten();
    Mapping {
        start: vma.start,
        end: vma.end,
        perms: vma.perms.clone(),
        offset: vma.offset,
        path: vma.path.clone(),
        kind,
        file,
        pages,
        advice: match kind {
            MappingKind::Kernel => Vec::new(),
            _ => smaps
                .get(&vma.start)
                .into_iter()
                .flat_map(|s| &s.flags)
                .filter_map(|f| Advice::from_vm_flag(f))
                .collect(),
        },
        sealed: kind != MappingKind::Kernel
            && smaps
                .get(&vma.start)
                .is_some_and(|s| s.flags.iter().any(|f| f == "sl")),
    }
}

/// The program break of `b`'s process (`brk(0)`, asked from inside a
/// borrowed thread); `None` where the kernel gives none.
pub fn ask_brk(b: &mut Borrowed) -> Result<Option<u64>, InjectError> {
    let brk = b.syscall(libc::SYS_brk, [0; 6])?;
    Ok((brk > 0).then_some(brk as u64))
}

/// Mappings of `pid` a resume from the image could not give back: a
/// private mapping of a file deleted since (nothing could map it again),
/// a file whose name `/proc/PID/maps` does not tell surely (a resume
/// could open another file), and memory shared with another process (a
/// resume would make the process an object of its own: the other would
/// no longer see its writes). One line each.
pub fn refusals(pid: u32, vmas: &[Vma]) -> Vec<String> {
    let mut bad = Vec::new();
    for v in vmas.iter().filter(|v| v.deleted()) {
        let files = format!("/proc/{pid}/map_files/{:x}-{:x}", v.start, v.end);
        let linked = fs::metadata(&files).is_ok_and(|m| m.nlink() > 0);
        if kind(v) == MappingKind::PrivateFile {
            bad.push(format!(
                "mapped file {} at {:#x} (deleted since it was mapped: nothing could map it again)",
                v.path, v.start
            ));
        } else if linked {
            // Its name merely ends so: it is a file still there.
            bad.push(format!(
                "mapped file {} at {:#x} (a file whose name ends in \"(deleted)\")",
                v.path, v.start
            ));
        }
    }
    // A name with a newline (written `\012`, as a backslash and `012`
    // would be): kept only where the mapping's link says it is the name.
    for v in vmas.iter().filter(|v| !v.path_is_certain(None)) {
        let files = format!("/proc/{pid}/map_files/{:x}-{:x}", v.start, v.end);
        if !v.path_is_certain(fs::read_link(&files).ok().as_deref()) {
            bad.push(format!(
                "mapped file at {:#x} whose name /proc/PID/maps shows as {} (the kernel writes a \
                 newline in a name and the characters \\012 alike; which it is cannot be told, \
                 and a resume could open another file)",
                v.start,
                v.path.replace('\n', r"\012")
            ));
        }
    }
    // Objects only memory reaches (memfd, SysV, shared anonymous, deleted
    // files), by device and inode; not the client's own block (made by it,
    // never inherited: `MADV_DONTFORK`), so that a process without shared
    // memory costs no scan of every process.
    let objects: BTreeMap<(String, u64), &str> = vmas
        .iter()
        .filter(|v| kind(v) == MappingKind::SharedAnonymous && v.inode != 0)
        .filter(|v| !v.path.starts_with("/memfd:suspend-client"))
        .map(|v| ((v.dev.clone(), v.inode), v.path.as_str()))
        .collect();
    if objects.is_empty() {
        return bad;
    }
    let mut shared: BTreeMap<(String, u64), Vec<u32>> = Default::default();
    for other in crate::procfs::other_pids(pid) {
        // Held through an fd (a memfd, a deleted file written with pwrite).
        for fd in fs::read_dir(format!("/proc/{other}/fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(link) = fs::read_link(fd.path()) else {
                continue;
            };
            if !objects.values().any(|p| link.as_os_str() == *p) {
                continue;
            }
            let Ok(meta) = fs::metadata(fd.path()) else {
                continue;
            };
            let dev = crate::sys::dev::hex(meta.dev());
            let key = (dev, meta.ino());
            if objects.contains_key(&key) {
                let pids = shared.entry(key).or_default();
                if !pids.contains(&other) {
                    pids.push(other);
                }
            }
        }
        let Ok(text) = fs::read_to_string(format!("/proc/{other}/maps")) else {
            continue;
        };
        for theirs in crate::procfs::vmas::parse(&text).unwrap_or_default() {
            let key = (theirs.dev, theirs.inode);
            if theirs.perms.as_bytes().get(3) == Some(&b's') && objects.contains_key(&key) {
                let pids = shared.entry(key).or_default();
                if !pids.contains(&other) {
                    pids.push(other);
                }
            }
        }
    }
    for (key, pids) in shared {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        bad.push(format!(
            "memory {} shared with pid {} (a resume from the image would give it a copy of its \
             own)",
            objects[&key],
            pids.join(", pid ")
        ));
    }
    bad
}

/// The names of `pid`'s shared anonymous mappings (`PR_SET_VMA_ANON_NAME`,
/// which `/proc/PID/maps` shows as `[anon_shmem:NAME]`): a resume makes
/// the memory again unnamed. Refused, all in one line.
pub fn anon_shmem_name_refusal(pid: u32) -> Option<String> {
    anon_shmem_name_refusal_of(&fs::read_to_string(format!("/proc/{pid}/maps")).ok()?)
}

/// [`anon_shmem_name_refusal`] of the text of `/proc/PID/maps`.
fn anon_shmem_name_refusal_of(maps: &str) -> Option<String> {
    let named: Vec<&str> = maps
        .lines()
        .filter_map(|l| {
            l.split_once("[anon_shmem:")
                .map(|(_, n)| n.trim_end_matches(']'))
        })
        .collect();
    (!named.is_empty()).then(|| {
        format!(
            "name(s) of shared anonymous mapping(s) {} (PR_SET_VMA_ANON_NAME)",
            named.join(", ")
        )
    })
}

/// The memory protection keys (`pkey_mprotect`) on `pid`'s mappings,
/// where the CPU has them (only then does `/proc/PID/smaps` say): an
/// image holds none. Refused, all in one line.
pub fn protection_key_refusal(pid: u32) -> Option<String> {
    if !crate::sys::cpu::has_pkeys() {
        return None;
    }
    let text = fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    protection_key_refusal_of(&crate::procfs::parse_smaps(&text))
}

/// [`protection_key_refusal`] of what `/proc/PID/smaps` says, by start
/// address: each mapping with a key other than 0, by address.
fn protection_key_refusal_of(smaps: &HashMap<u64, Smaps>) -> Option<String> {
    let mut keyed: Vec<String> = smaps
        .iter()
        .filter(|(_, s)| s.protection_key != 0)
        .map(|(start, s)| format!("{start:#x} (key {})", s.protection_key))
        .collect();
    keyed.sort();
    (!keyed.is_empty()).then(|| {
        format!(
            "memory protection keys (pkey_mprotect) on the mappings at {}",
            keyed.join(", ")
        )
    })
}

/// The memory `pid` locked (`mlock`, `VmLck:` of `/proc/PID/status`): a
/// resume does not lock it again. Refused.
pub fn locked_refusal(pid: u32) -> Option<String> {
    locked_refusal_of(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// [`locked_refusal`] of the text of `/proc/PID/status`.
fn locked_refusal_of(status: &str) -> Option<String> {
    let locked = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    (locked > 0).then(|| format!("{locked} KiB of locked memory (mlock)"))
}

/// Where the program break of `p` is given back (`PR_SET_MM_MAP`'s
/// `brk`, planned by `restore/plan/process.rs`): where it was, or its
/// start where the image has none.
pub fn brk(p: &Process) -> u64 {
    p.brk.unwrap_or(p.mm.start_brk)
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
    use crate::state::fixtures::{file_id, mapping, process, run, shared_objects};

    const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;

    #[test]
    fn each_mapping_is_saved_as_its_kind() {
        use MappingKind::*;
        let kinds: Vec<_> = crate::procfs::vmas::parse(crate::procfs::vmas::SAMPLE)
            .unwrap()
            .iter()
            .map(kind)
            .collect();
        assert_eq!(
            kinds,
            [
                PrivateFile,
                Anonymous,
                SharedAnonymous,
                Anonymous,
                SharedFile,
                SharedAnonymous,
                Anonymous,
                Kernel,
                Kernel,
                Kernel
            ]
        );
    }

    #[test]
    fn a_deleted_files_shared_mapping_is_an_object_its_private_one_a_file() {
        let text = "\
7f0000000000-7f0000003000 rw-s 00000000 00:1a 77                         /dev/shm/sem.x (deleted)
7f0000003000-7f0000004000 r--p 00000000 fd:00 88                         /usr/lib/libold.so (deleted)
";
        let vmas = crate::procfs::vmas::parse(text).unwrap();
        assert_eq!(kind(&vmas[0]), MappingKind::SharedAnonymous);
        assert_eq!(kind(&vmas[1]), MappingKind::PrivateFile);
    }

    #[test]
    fn only_pages_a_resume_could_not_have_otherwise_are_saved() {
        let (present, swapped, file) = (PM_PRESENT, PM_SWAPPED, PM_FILE);
        // Never touched: zeros at resume; the file's own page: the file.
        assert!(!anonymous_page_saved(0));
        assert!(!private_file_page_saved(0));
        assert!(!private_file_page_saved(present | file));
        // In memory or swapped out, anonymous: saved.
        assert!(anonymous_page_saved(present));
        assert!(anonymous_page_saved(swapped));
        assert!(private_file_page_saved(present));
        assert!(private_file_page_saved(swapped));
        // The page frame number and soft-dirty bits say nothing of it.
        assert!(!anonymous_page_saved(0x1234 | 1 << 55));
        assert!(private_file_page_saved(present | 0x1234 | 1 << 55));
        // A page table marker (a write-protected page not there yet, as
        // 6.18 shows one: swapped, uffd-wp, type 31) holds no page; a
        // swapped page of swap file 1 does.
        let marker = swapped | 1 << 57 | 0x3f;
        assert!(!anonymous_page_saved(marker));
        assert!(!private_file_page_saved(marker));
        assert!(anonymous_page_saved(swapped | 1 << 57 | (7 << 5) | 1));
    }

    #[test]
    fn a_mapping_is_recorded_with_the_advice_and_seal_smaps_shows() {
        let vma = |start: u64, path: &str| Vma {
            start,
            end: start + 0x2000,
            perms: "rw-p".into(),
            offset: 0,
            dev: "00:00".into(),
            inode: 0,
            path: path.into(),
        };
        let flags = |f: &[&str]| Smaps {
            flags: f.iter().map(|f| (*f).to_owned()).collect(),
            ..Smaps::default()
        };
        let smaps = HashMap::from([
            (0x10000, flags(&["rd", "wr", "dc", "hg", "sl"])),
            (0x7fff_0000, flags(&["rd", "dc", "sl"])),
        ]);
        let heap = save(
            std::process::id(),
            &vma(0x10000, "[heap]"),
            vec![run(0, 1, 0)],
            &smaps,
        );
        assert_eq!(
            (heap.start, heap.end, heap.kind, heap.file, heap.pages.len()),
            (0x10000, 0x12000, MappingKind::Anonymous, None, 1)
        );
        assert_eq!(heap.advice, [Advice::DontFork, Advice::HugePage]);
        assert!(heap.sealed);
        // Nothing smaps says is kept of the kernel's own.
        let vdso = save(
            std::process::id(),
            &vma(0x7fff_0000, "[vdso]"),
            Vec::new(),
            &smaps,
        );
        assert_eq!(vdso.kind, MappingKind::Kernel);
        assert!(vdso.advice.is_empty() && !vdso.sealed);
        // Not in smaps: no advice.
        let bss = save(std::process::id(), &vma(0x20000, ""), Vec::new(), &smaps);
        assert!(bss.advice.is_empty() && !bss.sealed);
    }

    #[test]
    fn the_names_of_shared_anonymous_mappings_are_refused() {
        let maps = "7f0000000000-7f0000001000 rw-s 00000000 00:01 1035 /dev/zero (deleted)\n\
                    7f0000001000-7f0000002000 rw-s 00000000 00:01 1036 [anon_shmem:ring]\n\
                    7f0000002000-7f0000003000 rw-p 00000000 00:00 0 [anon:heap]\n\
                    7f0000003000-7f0000004000 rw-s 00000000 00:01 1037 [anon_shmem:log tail]\n";
        assert_eq!(
            anon_shmem_name_refusal_of(maps).as_deref(),
            Some("name(s) of shared anonymous mapping(s) ring, log tail (PR_SET_VMA_ANON_NAME)")
        );
        assert_eq!(
            anon_shmem_name_refusal_of(crate::procfs::vmas::SAMPLE),
            None
        );
    }

    #[test]
    fn protection_keys_are_refused_by_mapping_in_order() {
        let text = "7f10-7f11 rw-p 00000000 00:00 0\nProtectionKey:         2\n\
                    7f00-7f01 rw-p 00000000 00:00 0\nProtectionKey:         1\n\
                    7f02-7f03 rw-p 00000000 00:00 0\nProtectionKey:         0\n";
        assert_eq!(
            protection_key_refusal_of(&crate::procfs::parse_smaps(text)).as_deref(),
            Some(
                "memory protection keys (pkey_mprotect) on the mappings at 0x7f00 (key 1), 0x7f10 \
                 (key 2)"
            )
        );
        assert_eq!(protection_key_refusal_of(&HashMap::new()), None);
    }

    #[test]
    fn locked_memory_is_refused_in_kib() {
        let status = "Name:\tw\nVmLck:\t      12 kB\nVmPin:\t       0 kB\n";
        assert_eq!(
            locked_refusal_of(status).as_deref(),
            Some("12 KiB of locked memory (mlock)")
        );
        assert_eq!(locked_refusal_of("VmLck:\t       0 kB\n"), None);
        assert_eq!(locked_refusal_of("Name:\tw\n"), None, "no VmLck: none");
    }

    #[test]
    fn the_break_comes_back_where_it_was_or_at_its_start() {
        let mut p = process(42);
        p.mm.start_brk = 0x60_0000;
        assert_eq!(brk(&p), 0x60_0000, "an image without a break");
        p.brk = Some(0x62_1000);
        assert_eq!(brk(&p), 0x62_1000);
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
        data.file = Some(file_id("/bin/w", 2, 0x3000));
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
        ring.file = Some(file_id("/memfd:ring (deleted)", 77, 0x1000));
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
        let all = shared_objects();
        assert_eq!(object_size(&all[0], &all), 0x5000);
        assert_eq!(object_size(&all[2], &all), 0x1000);
        let fd = shared_object(&all[0], &all).expect("a memfd");
        let size = nix::sys::stat::fstat(&fd).expect("fstat").st_size;
        assert_eq!(size, 0x5000);
        // Bigger than any mapping of it reaches: as big as it was.
        let mut whole = all[2].clone();
        whole.file = Some(file_id("/memfd:other (deleted)", 78, 0x9000));
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
