//! A regular file's identity by what it holds, beside its device and inode:
//! so that an image resumes where its files are equal copies (another
//! machine, a package installed again) while a file that differs is
//! refused by name, never silently swapped.
//!
//! Saved: for every regular file the process maps, runs or has open, an
//! ELF file's GNU build-id ([`build_id`]: the ELF header, its program
//! headers, each `PT_NOTE` for `NT_GNU_BUILD_ID`, read in bounded pieces)
//! and a BLAKE3 digest of its contents ([`digest`]: every byte up to
//! [`FULL_MAX`], a sample beyond — its size, first and last 64 KiB and 64
//! blocks of 4 KiB spread evenly between). Read as the process's user,
//! by its path without following a symbolic link, and only where the path
//! still reaches the very file ([`fill`]); one it cannot read gets no
//! digest, and then only the very same inode is accepted. What was
//! computed is kept by (device, inode, size, mtime, ctime, user) in the
//! daemon, and the daemon computes it before the freeze ([`warm`]), so a
//! frozen process waits only for an open and a `fstat` per file.
//!
//! Restored: [`differs`] says how a file a resume opened differs from its
//! record: the same inode with the same size, mtime and ctime (which
//! nobody can set back) is accepted as it is; anything else (another
//! inode, or the same one changed) must be a regular file with the same
//! size, the same build-id (an ELF file with one), the same mtime (to the
//! second for another inode: a copy may keep only whole seconds; a file
//! patched in place keeps its build-id, and a sample may miss the patch)
//! and the same digest computed the same way. A file on a filesystem that
//! does not only hold files (network, FUSE, procfs, sysfs: see
//! [`on_local_disk`]) is not read: only the very same inode is accepted.

use std::{
    collections::{HashMap, HashSet},
    fs, io,
    os::{
        fd::{AsFd as _, BorrowedFd, OwnedFd},
        unix::fs::{FileExt as _, MetadataExt as _},
    },
    path::Path,
    sync::{LazyLock, Mutex},
};

use crate::{
    image::format::{Digest, DigestOf, FileId, Identity},
    sys::creds::{self, FsUser},
};

/// The largest file whose every byte is digested.
pub const FULL_MAX: u64 = 1 << 20;
/// The head and the tail of a sampled file.
const EDGE: u64 = 64 << 10;
/// Blocks sampled between the head and the tail.
const BLOCKS: u64 = 64;
const BLOCK: u64 = 4096;
/// What a sampled digest is derived under (BLAKE3's key derivation: it
/// can never equal a plain digest of some file's whole contents).
const SAMPLED_CONTEXT: &str = "suspend 2026-12-01 sampled file contents";

/// `PT_NOTE`.
const PT_NOTE: u64 = 4;
/// `NT_GNU_BUILD_ID`.
const NT_GNU_BUILD_ID: u64 = 3;
/// Program headers read at most (a real file has a dozen).
const MAX_PHNUM: u64 = 256;
/// Bytes of one note segment read at most.
const MAX_NOTES: u64 = 64 << 10;

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?).into())
}

fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?).into())
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads `len` bytes of `file` at `offset`, or `None` past its end.
fn read_at(file: &fs::File, offset: u64, len: u64) -> Option<Vec<u8>> {
    let mut buf = vec![0; usize::try_from(len).ok()?];
    file.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

/// The GNU build-id of the ELF file `file` (a little-endian one, 32 or 64
/// bits), or `None`: not ELF, no build-id note, or malformed. Reads the
/// header, the program headers and each note segment, each bounded.
pub fn build_id(file: &fs::File) -> Option<Vec<u8>> {
    let header = read_at(file, 0, 52)?;
    if header.get(..4)? != b"\x7fELF" || header[5] != 1 {
        return None;
    }
    let wide = match header[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let header = if wide { read_at(file, 0, 64)? } else { header };
    // e_phoff, e_phentsize, e_phnum, and the least a program header is.
    let (phoff, phentsize, phnum, least) = if wide {
        (
            u64_at(&header, 0x20)?,
            u16_at(&header, 0x36)?,
            u16_at(&header, 0x38)?,
            56,
        )
    } else {
        (
            u32_at(&header, 0x1c)?,
            u16_at(&header, 0x2a)?,
            u16_at(&header, 0x2c)?,
            32,
        )
    };
    if phentsize < least || phentsize > 2 * least || phnum == 0 || phnum > MAX_PHNUM {
        return None;
    }
    let table = read_at(file, phoff, phentsize * phnum)?;
    for ph in table.chunks_exact(phentsize as usize) {
        if u32_at(ph, 0)? != PT_NOTE {
            continue;
        }
        // p_offset, p_filesz, p_align.
        let (offset, size, align) = if wide {
            (u64_at(ph, 8)?, u64_at(ph, 32)?, u64_at(ph, 48)?)
        } else {
            (u32_at(ph, 4)?, u32_at(ph, 16)?, u32_at(ph, 28)?)
        };
        if size > MAX_NOTES {
            continue;
        }
        let Some(notes) = read_at(file, offset, size) else {
            continue;
        };
        if let Some(id) = gnu_build_id(&notes, if align == 8 { 8 } else { 4 }) {
            return Some(id);
        }
    }
    None
}

/// The `NT_GNU_BUILD_ID` note's descriptor among `notes` (each padded to
/// `align`).
fn gnu_build_id(notes: &[u8], align: usize) -> Option<Vec<u8>> {
    let pad = |n: usize| n.checked_add(align - 1).map(|n| n & !(align - 1));
    let mut at = 0usize;
    while at + 12 <= notes.len() {
        let namesz = u32_at(notes, at)? as usize;
        let descsz = u32_at(notes, at + 4)? as usize;
        let kind = u32_at(notes, at + 8)?;
        let name_at = at + 12;
        // Padded from the note's start (the same as from the name's, for
        // 4-byte alignment).
        let desc_at = at.checked_add(pad(namesz.checked_add(12)?)?)?;
        let end = desc_at.checked_add(pad(descsz)?)?;
        let name = notes.get(name_at..name_at.checked_add(namesz)?)?;
        let desc = notes.get(desc_at..desc_at.checked_add(descsz)?)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && (1..=64).contains(&descsz) {
            return Some(desc.to_vec());
        }
        at = end;
    }
    None
}

/// Feeds `len` bytes of `file` from `offset` to `hasher`, in pieces.
fn feed(hasher: &mut blake3::Hasher, file: &fs::File, offset: u64, len: u64) -> io::Result<()> {
    let mut buf = vec![0; len.min(EDGE) as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], offset + done)?;
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    Ok(())
}

/// Where the blocks of a sampled file of `size` bytes (above
/// [`FULL_MAX`]) start: the head, 64 blocks spread evenly between, the
/// tail.
fn sampled(size: u64) -> Vec<(u64, u64)> {
    let span = size - 2 * EDGE - BLOCK;
    let mut pieces = vec![(0, EDGE)];
    pieces.extend((0..BLOCKS).map(|i| (EDGE + span * i / (BLOCKS - 1), BLOCK)));
    pieces.push((size - EDGE, EDGE));
    pieces
}

/// The digest of `file`, whose size is `size`: every byte up to
/// [`FULL_MAX`] (plain BLAKE3), else a sample ([`sampled`]) with the size.
/// A file shorter than `size` fails (it changed while read).
pub fn digest(file: &fs::File, size: u64) -> io::Result<Digest> {
    let (of, hasher) = if size <= FULL_MAX {
        let mut hasher = blake3::Hasher::new();
        feed(&mut hasher, file, 0, size)?;
        (DigestOf::Full, hasher)
    } else {
        let mut hasher = blake3::Hasher::new_derive_key(SAMPLED_CONTEXT);
        hasher.update(&size.to_le_bytes());
        for (offset, len) in sampled(size) {
            feed(&mut hasher, file, offset, len)?;
        }
        (DigestOf::Sampled, hasher)
    };
    Ok(Digest {
        of,
        blake3: hasher.finalize().to_hex().to_string(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity of `file`, of `size` bytes: its build-id, and its digest
/// where it could be read whole (or sampled).
pub fn of(file: &fs::File, size: u64) -> Identity {
    Identity {
        build_id: build_id(file).map(|id| hex(&id)),
        digest: digest(file, size).ok(),
        ctime_ns: None,
    }
}

/// What an identity computed is kept by: a file is written again only
/// with its ctime changed, which nobody can set back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    /// Whose: one user is never given what only another could read.
    uid: u32,
}

/// Identities kept by the daemon across suspends (emptied when full).
static KEPT: LazyLock<Mutex<HashMap<Key, Identity>>> = LazyLock::new(Mutex::default);
const KEPT_MAX: usize = 4096;

/// The identity of the file `id` records, read by its path as the thread's
/// user (no symbolic link followed) — `None` where the path does not
/// reach that very file, unchanged, now (and so nothing is recorded) —
/// with no digest where it could not be read, where `proc_locks` shows a
/// lease an open for reading would start breaking, or where the process
/// watches it or its directory (by device and inode, in `watched`): its
/// inotify instance would be told of the open, the read and the close.
fn identify(
    id: &FileId,
    uid: u32,
    proc_locks: &str,
    watched: &HashSet<(u64, u64)>,
) -> Option<Identity> {
    let unread = Identity {
        build_id: None,
        digest: None,
        ctime_ns: None,
    };
    if !watched.is_empty() {
        let dir = Path::new(&id.path)
            .parent()
            .and_then(|d| fs::metadata(d).ok())
            .map(|m| (m.dev(), m.ino()));
        if watched.contains(&(id.dev, id.ino)) || dir.is_some_and(|d| watched.contains(&d)) {
            return Some(unread);
        }
    }
    if !proc_locks.is_empty() {
        let leases = crate::procfs::parse_leases_on(proc_locks, id.dev, id.ino);
        if super::locks::in_the_way(&leases, false).is_some() {
            return Some(unread);
        }
    }
    // Found first with `O_PATH`, which neither breaks a lease nor has a
    // device or FIFO do anything; read only once it is the very file.
    let Ok(path) = creds::open_no_symlinks(Path::new(&id.path), libc::O_PATH) else {
        return Some(unread);
    };
    let meta = crate::sys::fd::stat(path.as_fd()).ok()?;
    if !on_local_disk(path.as_fd()) {
        return Some(unread);
    }
    let key = Key {
        dev: meta.st_dev,
        ino: meta.st_ino,
        size: meta.st_size as u64,
        mtime_ns: meta.st_mtime * 1_000_000_000 + meta.st_mtime_nsec,
        ctime_ns: meta.st_ctime * 1_000_000_000 + meta.st_ctime_nsec,
        uid,
    };
    if meta.st_mode & libc::S_IFMT != libc::S_IFREG
        || (key.dev, key.ino, key.size, key.mtime_ns) != (id.dev, id.ino, id.size, id.mtime_ns)
    {
        return None;
    }
    let kept = KEPT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    if let Some(found) = kept {
        return Some(found);
    }
    let Ok(fd) = creds::reopen(path.as_fd(), libc::O_RDONLY | libc::O_NONBLOCK) else {
        return Some(unread);
    };
    let found = Identity {
        ctime_ns: Some(key.ctime_ns),
        ..of(&fs::File::from(fd), key.size)
    };
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() >= KEPT_MAX {
        kept.clear();
    }
    kept.insert(key, found.clone());
    Some(found)
}

/// Whether the file of `fd` is on a filesystem that only holds files: one
/// whose read can neither hang the agent (a network or FUSE filesystem,
/// whose server may be the frozen process) nor do anything (procfs,
/// sysfs, tracefs files, which a read may consume). A file elsewhere is
/// not read: only the very same file is then accepted.
fn on_local_disk(fd: BorrowedFd<'_>) -> bool {
    // ext2/3/4, XFS, Btrfs, tmpfs, ramfs, overlayfs, SquashFS, EROFS,
    // F2FS, FAT, exFAT, ISO 9660, ZFS, bcachefs.
    const LOCAL: [i64; 15] = [
        0xef53,
        0x5846_5342,
        0x9123_683e,
        0x0102_1994,
        0x8584_58f6,
        0x794c_7630,
        0x7371_7368,
        0xe0f5_e1e2,
        0xf2f5_2010,
        0x4d44,
        0x2011_bab0,
        0x9660,
        0x2fc1_2fc1,
        0xca45_1a4e,
        0x6462_6720,
    ];
    nix::sys::statfs::fstatfs(fd).is_ok_and(|fs| LOCAL.contains(&{ fs.filesystem_type().0 }))
}

/// Records the identity of each regular file `ids` names, read as `user`
/// (see [`identify`]), but those the process's inotify watches on
/// `watched` (device and inode) would see read. A file that cannot be
/// read is recorded without a digest; nothing at all is recorded where
/// its thread could not be made.
pub fn fill<'a>(
    user: &FsUser,
    watched: &HashSet<(u64, u64)>,
    ids: impl IntoIterator<Item = &'a mut FileId>,
) {
    let mut ids: Vec<&mut FileId> = ids.into_iter().collect();
    if ids.is_empty() {
        return;
    }
    let proc_locks = fs::read_to_string("/proc/locks").unwrap_or_default();
    // No lease or delegation on any file: nothing to look up.
    let proc_locks = if proc_locks.contains("LEASE") || proc_locks.contains("DELEG") {
        proc_locks
    } else {
        String::new()
    };
    let wanted: Vec<FileId> = ids.iter().map(|id| (**id).clone()).collect();
    let found = creds::as_user(user, || {
        // A file mapped several times (a library's segments) is read once.
        let mut seen = HashMap::new();
        wanted
            .iter()
            .map(|id| {
                seen.entry((id.dev, id.ino, id.size, id.mtime_ns))
                    .or_insert_with(|| identify(id, user.fsuid, &proc_locks, watched))
                    .clone()
            })
            .collect::<Vec<_>>()
    });
    match found {
        Ok(found) => {
            for (id, identity) in ids.iter_mut().zip(found) {
                id.identity = identity;
            }
        }
        Err(e) => log::warn!("no file identities: taking uid {}: {e}", user.fsuid),
    }
}

/// Whose files a process's are: its file-system ids and groups.
pub fn user_of(creds: &crate::image::format::Creds) -> FsUser {
    FsUser {
        fsuid: creds.uid[3],
        fsgid: creds.gid[3],
        groups: creds.groups.clone(),
        effective: None,
    }
}

/// What `files` watch with inotify, by device and inode: what [`fill`]
/// must not read.
pub fn watched(files: &[crate::image::format::File]) -> HashSet<(u64, u64)> {
    files
        .iter()
        .flat_map(|f| f.inotify.iter().flatten())
        .filter_map(|w| w.target.as_ref().map(|t| (t.dev, t.ino)))
        .collect()
}

/// Computes, before the freeze, the identities the dump of `pid` will
/// record (its executable, its mapped files, its open regular files), so
/// that the frozen process waits only for them to be looked up. Nothing
/// fails: what is not computed now is computed while frozen. A process
/// with an inotify instance is left alone (which of its files it watches
/// is known once it is frozen).
pub fn warm(pid: u32) {
    let Some(creds) = fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| super::credentials::parse(&s))
    else {
        return;
    };
    let inotify = fs::read_dir(format!("/proc/{pid}/fd")).map(|fds| {
        fds.flatten()
            .any(|e| fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == super::inotify::LINK))
    });
    if inotify.unwrap_or(true) {
        return;
    }
    let mut ids = Vec::new();
    let id_of = |path: String, shown: Option<std::path::PathBuf>| {
        let shown = shown?.to_str()?.to_owned();
        crate::procfs::file_id(Path::new(&path), &shown)
    };
    ids.extend(id_of(
        format!("/proc/{pid}/exe"),
        fs::read_link(format!("/proc/{pid}/exe")).ok(),
    ));
    for dir in ["map_files", "fd"] {
        let Ok(entries) = fs::read_dir(format!("/proc/{pid}/{dir}")) else {
            continue;
        };
        for e in entries.flatten() {
            // Stdio is the resume command's.
            if dir == "fd" && matches!(e.file_name().to_str(), Some("0" | "1" | "2")) {
                continue;
            }
            let path = e.path();
            let Ok(link) = fs::read_link(&path) else {
                continue;
            };
            if link.is_absolute() && !link.to_string_lossy().ends_with(" (deleted)") {
                ids.extend(id_of(path.display().to_string(), Some(link)));
            }
        }
    }
    ids.sort_by_key(|id| (id.dev, id.ino));
    ids.dedup_by_key(|id| (id.dev, id.ino));
    fill(&user_of(&creds), &HashSet::new(), ids.iter_mut());
}

/// `fd` (what a resume opened) to read: itself where it was opened for
/// reading, an open of its own for reading where it was opened for
/// writing only (as whoever calls it: the resume calls it as the
/// process's user), `None` for an `O_PATH` one (which breaks no lease: an
/// open for reading might) or where the reopen fails.
fn readable(fd: BorrowedFd<'_>) -> Option<fs::File> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).ok()?);
    if flags.contains(OFlag::O_PATH) {
        return None;
    }
    let fd: OwnedFd = if flags & OFlag::O_ACCMODE == OFlag::O_WRONLY {
        creds::reopen(fd, libc::O_RDONLY | libc::O_NONBLOCK).ok()?
    } else {
        fd.try_clone_to_owned().ok()?
    };
    Some(fs::File::from(fd))
}

/// How the file a resume opened, `fd` (its `fstat` `now`), differs from
/// `then`, recorded with `identity`: `None` where it is the same file or
/// an equal copy (see the module doc), else what differs, as a refusal
/// says it.
pub fn differs(
    fd: BorrowedFd<'_>,
    now: &libc::stat,
    then: &FileId,
    identity: &Identity,
) -> Option<String> {
    if now.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Some("it is no regular file now".to_owned());
    }
    let same_inode = now.st_dev == then.dev && now.st_ino == then.ino;
    let size = now.st_size as u64;
    let mtime_ns = now.st_mtime * 1_000_000_000 + now.st_mtime_nsec;
    let ctime_ns = now.st_ctime * 1_000_000_000 + now.st_ctime_nsec;
    if same_inode
        && size == then.size
        && mtime_ns == then.mtime_ns
        && identity.ctime_ns.is_none_or(|c| c == ctime_ns)
    {
        return None;
    }
    let mut how = Vec::new();
    if !same_inode {
        how.push("it is another file now".to_owned());
    }
    if size != then.size {
        how.push(format!("size {} then, {size} now", then.size));
        return Some(how.join(", "));
    }
    let Some(digest) = &identity.digest else {
        how.push(if same_inode {
            "modified".to_owned()
        } else {
            "and it could not be read when the image was taken: only the very same file is \
             accepted"
                .to_owned()
        });
        return Some(how.join(", "));
    };
    let Some(file) = readable(fd) else {
        how.push("its contents could not be read to compare".to_owned());
        return Some(how.join(", "));
    };
    let found = build_id(&file).map(|id| hex(&id));
    match &identity.build_id {
        Some(was) if found.as_ref() != Some(was) => {
            how.push(format!(
                "build-id {was} then, {} now",
                found.as_deref().unwrap_or("none")
            ));
            return Some(how.join(", "));
        }
        _ => {}
    }
    // The same mtime even with the same build-id: a file patched in place
    // keeps its build-id, and a sampled digest may not see the patch. A
    // copy may keep only whole seconds (`tar` in ustar format, `scp -p`,
    // busybox `cp -p`).
    let same_mtime = mtime_ns == then.mtime_ns
        || (!same_inode && now.st_mtime == then.mtime_ns.div_euclid(1_000_000_000));
    if !same_mtime {
        how.push(format!(
            "mtime {} then, {} now",
            seconds(then.mtime_ns),
            seconds(mtime_ns)
        ));
        return Some(how.join(", "));
    }
    match self::digest(&file, size) {
        Ok(d) if d == *digest => None,
        Ok(_) => {
            how.push("contents differ".to_owned());
            Some(how.join(", "))
        }
        Err(e) => {
            how.push(format!("its contents could not be read to compare: {e}"));
            Some(how.join(", "))
        }
    }
}

/// Nanoseconds since the epoch as seconds with nine decimals.
fn seconds(ns: i64) -> String {
    format!(
        "{}.{:09}",
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("suspend-identity-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        dir.join(name)
    }

    fn open(path: &Path) -> fs::File {
        fs::File::open(path).expect("open")
    }

    #[test]
    fn elf_files_give_their_build_id_and_others_none() {
        let me = open(&std::env::current_exe().expect("exe"));
        let mine = build_id(&me);
        // Rust and C toolchains here link with `--build-id`; say so if not.
        match &mine {
            Some(id) => assert!((16..=64).contains(&id.len()), "{}", hex(id)),
            None => eprintln!("NOTE: the test binary has no build-id"),
        }
        if let Ok(t) = fs::File::open("/bin/true") {
            let theirs = build_id(&t);
            assert!(theirs.is_some(), "/bin/true has a build-id");
            assert_ne!(theirs, mine);
        }
        // Not ELF, empty, truncated, garbage: no build-id, no panic.
        let text = scratch("text");
        fs::write(&text, b"#!/bin/sh\necho hi\n").expect("write");
        assert_eq!(build_id(&open(&text)), None);
        fs::write(&text, b"").expect("write");
        assert_eq!(build_id(&open(&text)), None);
        let bytes = fs::read(std::env::current_exe().expect("exe")).expect("read");
        for cut in [4, 40, 64, 200] {
            fs::write(&text, &bytes[..cut]).expect("write");
            assert_eq!(build_id(&open(&text)), None, "cut at {cut}");
        }
        // Cut after its notes: they are still read whole.
        fs::write(&text, &bytes[..4096]).expect("write");
        let cut = build_id(&open(&text));
        assert!(cut.is_none() || cut == mine, "{cut:?}");
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200 {
            let mut junk = bytes[..64].to_vec();
            junk.extend((0..4096).map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            }));
            // Program headers somewhere in the junk, in any number.
            junk[0x20..0x28].copy_from_slice(&(64 + (round * 7) as u64 % 4000).to_le_bytes());
            junk[0x38..0x3a].copy_from_slice(&((round % 40) as u16).to_le_bytes());
            fs::write(&text, &junk).expect("write");
            let _ = build_id(&open(&text));
        }
        let _ = fs::remove_file(&text);
    }

    #[test]
    fn a_note_is_found_whatever_its_neighbours_and_a_bad_one_is_not() {
        let note = |name: &[u8], kind: u64, desc: &[u8], align: usize| {
            let mut n = Vec::new();
            n.extend((name.len() as u32).to_le_bytes());
            n.extend((desc.len() as u32).to_le_bytes());
            n.extend((kind as u32).to_le_bytes());
            n.extend(name);
            n.resize(n.len().next_multiple_of(align), 0);
            n.extend(desc);
            n.resize(n.len().next_multiple_of(align), 0);
            n
        };
        let id = [0xab; 20];
        for align in [4, 8] {
            let mut notes = note(b"GNU\0", 5, &[1; 12], align);
            notes.extend(note(b"GNU\0", NT_GNU_BUILD_ID, &id, align));
            assert_eq!(gnu_build_id(&notes, align), Some(id.to_vec()));
        }
        assert_eq!(gnu_build_id(&note(b"Go\0\0", 3, &id, 4), 4), None);
        let mut cut = note(b"GNU\0", NT_GNU_BUILD_ID, &id, 4);
        cut.truncate(30);
        assert_eq!(gnu_build_id(&cut, 4), None);
        let mut huge = note(b"GNU\0", NT_GNU_BUILD_ID, &id, 4);
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(gnu_build_id(&huge, 4), None);
    }

    /// A file of `size` bytes, each its offset's hash.
    fn pattern(size: usize) -> Vec<u8> {
        (0..size)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    #[test]
    fn a_small_file_is_digested_whole_a_large_one_sampled() {
        let path = scratch("contents");
        let small = pattern(1000);
        fs::write(&path, &small).expect("write");
        let d = digest(&open(&path), 1000).expect("digest");
        assert_eq!(d.of, DigestOf::Full);
        assert_eq!(d.blake3, blake3::hash(&small).to_hex().to_string(), "b3sum");
        assert_eq!(
            digest(&open(&path), 1000).expect("again"),
            d,
            "deterministic"
        );
        let mut changed = small.clone();
        changed[999] ^= 1;
        fs::write(&path, &changed).expect("write");
        assert_ne!(digest(&open(&path), 1000).expect("digest"), d);
        assert!(digest(&open(&path), 1001).is_err(), "shorter than it was");

        let size = (3 << 20) + 12345;
        let large = pattern(size);
        fs::write(&path, &large).expect("write");
        let d = digest(&open(&path), size as u64).expect("digest");
        assert_eq!(d.of, DigestOf::Sampled);
        assert_eq!(digest(&open(&path), size as u64).expect("again"), d);
        let pieces = sampled(size as u64);
        assert_eq!(pieces.len(), 66);
        assert_eq!(pieces.last(), Some(&(size as u64 - EDGE, EDGE)));
        let within = |at: u64| pieces.iter().any(|&(o, l)| (o..o + l).contains(&at));
        // A byte in a sampled block changes it; one between blocks does
        // not: a sample can miss a change there (the same size and mtime
        // are asked as well).
        let (inside, outside) = (pieces[30].0 + 100, pieces[30].0 + BLOCK + 100);
        assert!(within(inside) && !within(outside));
        for (at, seen) in [
            (inside, true),
            (outside, false),
            (5, true),
            (size as u64 - 1, true),
        ] {
            let mut one = large.clone();
            one[at as usize] ^= 0x40;
            fs::write(&path, &one).expect("write");
            let now = digest(&open(&path), size as u64).expect("digest");
            assert_eq!(now != d, seen, "a byte changed at {at}");
        }
        let _ = fs::remove_file(&path);
    }

    fn id_of(path: &Path) -> FileId {
        crate::procfs::file_id(path, "/srv/lib.so").expect("stat")
    }

    fn said(file: &fs::File, then: &FileId) -> Option<String> {
        let now = crate::sys::fd::stat(file.as_fd()).expect("fstat");
        differs(
            file.as_fd(),
            &now,
            then,
            then.identity.as_ref().expect("identity"),
        )
    }

    #[test]
    fn a_copy_is_accepted_and_what_differs_is_named() {
        let path = scratch("data");
        fs::write(&path, b"twelve bytes").expect("write");
        let mut then = id_of(&path);
        then.identity = Some(of(&open(&path), then.size));
        assert_eq!(said(&open(&path), &then), None, "the very same file");

        // An equal copy with its times: another inode.
        let copy = scratch("data.copy");
        fs::copy(&path, &copy).expect("copy");
        let times = fs::metadata(&path)
            .expect("stat")
            .modified()
            .expect("mtime");
        open(&copy).set_modified(times).expect("utimensat");
        assert_eq!(said(&open(&copy), &then), None, "an equal copy");

        // Same size and mtime, other bytes.
        fs::write(&copy, b"twelve BYTES").expect("write");
        fs::File::options()
            .write(true)
            .open(&copy)
            .and_then(|f| f.set_modified(times))
            .expect("utimensat");
        assert_eq!(
            said(&open(&copy), &then).as_deref(),
            Some("it is another file now, contents differ")
        );
        // Another size.
        fs::write(&copy, b"thirteen byte").expect("write");
        assert_eq!(
            said(&open(&copy), &then).as_deref(),
            Some("it is another file now, size 12 then, 13 now")
        );
        // The same bytes, another mtime: refused (as is one with a
        // build-id).
        fs::write(&copy, b"twelve bytes").expect("write");
        let moved = then.mtime_ns + 5_000_000_000;
        fs::File::options()
            .write(true)
            .open(&copy)
            .and_then(|f| {
                f.set_modified(
                    std::time::UNIX_EPOCH + std::time::Duration::from_nanos(moved as u64),
                )
            })
            .expect("utimensat");
        assert_eq!(
            said(&open(&copy), &then),
            Some(format!(
                "it is another file now, mtime {} then, {} now",
                seconds(then.mtime_ns),
                seconds(moved)
            ))
        );
        // Unread at suspend: only the very same file.
        let unread = FileId {
            identity: Some(Identity {
                build_id: None,
                digest: None,
                ctime_ns: None,
            }),
            ..then.clone()
        };
        assert_eq!(said(&open(&path), &unread), None);
        assert_eq!(
            said(&open(&copy), &unread).as_deref(),
            Some(
                "it is another file now, and it could not be read when the image was taken: only \
                 the very same file is accepted"
            )
        );
        // Opened for writing only: read through an open of its own.
        let writing = fs::File::options().append(true).open(&copy).expect("open");
        writing.set_modified(times).expect("utimensat");
        assert_eq!(said(&writing, &then), None);
        // `O_PATH`: not read (an open for reading might break a lease).
        let path_only =
            fs::File::from(creds::open_no_symlinks(&copy, libc::O_PATH).expect("O_PATH"));
        assert_eq!(
            said(&path_only, &then).as_deref(),
            Some("it is another file now, its contents could not be read to compare")
        );
        let _ = fs::remove_file(&path);
        let _ = fs::remove_file(&copy);
    }

    #[test]
    fn a_resume_refuses_a_file_that_differs_naming_it_and_takes_an_equal_copy() {
        use super::super::files::{Conflict, Match, Want, check, reopened};
        let path = scratch("refused");
        fs::write(&path, b"twelve bytes").expect("write");
        let mut then = id_of(&path);
        then.path = "/srv/data".into();
        then.identity = Some(of(&open(&path), then.size));
        let copy = scratch("refused.copy");
        fs::write(&copy, b"twelve BYTES").expect("write");
        let times = fs::metadata(&path)
            .expect("stat")
            .modified()
            .expect("mtime");
        fs::File::options()
            .write(true)
            .open(&copy)
            .and_then(|f| f.set_modified(times))
            .expect("utimensat");
        // An open regular file recorded with its identity is checked by it.
        let file = crate::image::format::File {
            id: Some(then.clone()),
            ..crate::image::format::File::bare(
                3,
                crate::image::format::FileKind::Regular,
                "/srv/data",
            )
        };
        let want = reopened(&file).expect("reopened");
        assert_eq!(want.how, Match::Contents);
        let refused = check(open(&copy).as_fd(), &want);
        assert!(
            matches!(refused, Err(Conflict::FileChanged { .. })),
            "{refused:?}"
        );
        assert_eq!(
            refused.err().map(|e| e.to_string()).as_deref(),
            Some(
                "open file /srv/data changed since the image was taken (it is another file now, \
                 contents differ)"
            )
        );
        fs::write(&copy, b"twelve bytes").expect("write");
        fs::File::options()
            .write(true)
            .open(&copy)
            .and_then(|f| f.set_modified(times))
            .expect("utimensat");
        assert!(check(open(&copy).as_fd(), &want).is_ok(), "an equal copy");
        // Without an identity (an older image): the very same inode only.
        let older = crate::image::format::File {
            id: Some(FileId {
                identity: None,
                ..then.clone()
            }),
            ..file
        };
        let want: Want = reopened(&older).expect("reopened");
        assert_eq!(want.how, Match::Inode);
        assert!(check(open(&copy).as_fd(), &want).is_err());
        let _ = fs::remove_file(&path);
        let _ = fs::remove_file(&copy);
    }

    #[test]
    fn the_same_file_written_with_its_mtime_set_back_is_compared() {
        let path = scratch("in-place");
        fs::write(&path, b"twelve bytes").expect("write");
        let meta = fs::metadata(&path).expect("stat");
        let mut then = id_of(&path);
        then.identity = Some(Identity {
            ctime_ns: Some(meta.ctime() * 1_000_000_000 + meta.ctime_nsec()),
            ..of(&open(&path), then.size)
        });
        assert_eq!(said(&open(&path), &then), None, "unchanged");
        // Written in place, its mtime set back: its ctime moved.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| {
                f.write_all_at(b"TWELVE", 0)?;
                f.set_modified(meta.modified()?)
            })
            .expect("write");
        assert_eq!(
            said(&open(&path), &then).as_deref(),
            Some("contents differ")
        );
        // Its bytes back: only its ctime differs, and its contents agree.
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| {
                f.write_all_at(b"twelve", 0)?;
                f.set_modified(meta.modified()?)
            })
            .expect("write");
        assert_eq!(said(&open(&path), &then), None);
        let _ = fs::remove_file(&path);
    }

    #[test]
    fn an_elf_file_copy_is_known_by_its_build_id_and_its_mtime() {
        let exe = std::env::current_exe().expect("exe");
        if build_id(&open(&exe)).is_none() {
            eprintln!("NOTE: the test binary has no build-id; the test is not run");
            return;
        }
        let copy = scratch("exe.copy");
        fs::copy(&exe, &copy).expect("copy");
        let mut then = id_of(&exe);
        then.identity = Some(of(&open(&exe), then.size));
        let set_mtime = |to: std::time::SystemTime| {
            fs::File::options()
                .write(true)
                .open(&copy)
                .and_then(|f| f.set_modified(to))
                .expect("utimensat");
        };
        // Installed again: another inode, the same bytes and mtime.
        let mtime = fs::metadata(&exe)
            .and_then(|m| m.modified())
            .expect("mtime");
        set_mtime(mtime);
        assert_eq!(said(&open(&copy), &then), None);
        // The same bytes and build-id, another mtime: refused (a file
        // patched in place keeps its build-id).
        set_mtime(mtime + std::time::Duration::from_secs(7));
        let said_now = said(&open(&copy), &then).expect("refused");
        assert!(said_now.contains("mtime"), "{said_now}");
        set_mtime(mtime);
        // Another build: the same size, another build-id.
        let mut other = then.clone();
        let was = "00".repeat(20);
        other.identity = Some(Identity {
            build_id: Some(was.clone()),
            ..then.identity.clone().expect("identity")
        });
        let now = build_id(&open(&copy)).map(|id| hex(&id)).expect("build-id");
        assert_eq!(
            said(&open(&copy), &other),
            Some(format!(
                "it is another file now, build-id {was} then, {now} now"
            ))
        );
        let _ = fs::remove_file(&copy);
    }

    #[test]
    fn identities_are_read_as_the_user_and_kept() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("NOTE: not root: no thread can take a user's credentials; not run");
            return;
        }
        let path = scratch("kept");
        let mut f = fs::File::create(&path).expect("create");
        f.write_all(&pattern(5000)).expect("write");
        drop(f);
        let me = FsUser {
            fsuid: nix::unistd::geteuid().as_raw(),
            fsgid: nix::unistd::getegid().as_raw(),
            groups: Vec::new(),
            effective: None,
        };
        let mut ids = [id_of(&path), id_of(&path)];
        ids[0].path = path.display().to_string();
        ids[1].path = "/nonexistent/kept".into();
        ids[1].ino += 1;
        fill(&me, &HashSet::new(), ids.iter_mut());
        let found = ids[0].identity.clone().expect("an identity");
        let meta = fs::metadata(&path).expect("stat");
        assert_eq!(
            found,
            Identity {
                ctime_ns: Some(meta.ctime() * 1_000_000_000 + meta.ctime_nsec()),
                ..of(&open(&path), 5000)
            }
        );
        assert_eq!(
            ids[1].identity,
            Some(Identity {
                build_id: None,
                digest: None,
                ctime_ns: None,
            }),
            "not read: no digest"
        );
        // Changed since its record: nothing is recorded.
        fs::write(&path, b"other").expect("write");
        let mut stale = [ids[0].clone()];
        stale[0].identity = None;
        fill(&me, &HashSet::new(), stale.iter_mut());
        assert_eq!(stale[0].identity, None);
        // Watched, or its directory: not read.
        let meta = fs::metadata(&path).expect("stat");
        let dir = fs::metadata(path.parent().expect("dir")).expect("stat");
        for watch in [(meta.dev(), meta.ino()), (dir.dev(), dir.ino())] {
            let mut watched = [id_of(&path)];
            watched[0].path = path.display().to_string();
            fill(&me, &HashSet::from([watch]), watched.iter_mut());
            assert_eq!(
                watched[0].identity.as_ref().map(|i| i.digest.is_some()),
                Some(false)
            );
        }
        let _ = fs::remove_file(&path);
    }
}
