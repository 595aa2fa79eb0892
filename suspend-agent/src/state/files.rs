//! Files the process reaches by name: the regular files, directories and
//! devices it had open (`O_PATH` ones too), the file of every file mapping,
//! its executable and its working directory. The dump records what each
//! fd is ([`kind`]) and each file's identity ([`id`]: device, inode, size,
//! mtime). A resume opens each again as the process's user
//! (`restore/open.rs`, in its order, with deleted files made again by
//! `unlinked`) and checks what it got on the descriptor ([`Want`],
//! [`check`]): the very same inode for a device, and for a directory
//! unless the image comes from elsewhere ([`elsewhere`]: then a directory
//! at that path, [`Match::Place`]), the same
//! contents for the executable, a mapped file and an open regular file
//! (its identity, `state/identity.rs`; in an older image without one, an
//! open file must be the very same inode). A mapped file deleted before the
//! image was taken is refused before anything is opened ([`check_mapped`]),
//! and so, before any is opened, is one another process holds a lease on
//! that the open would start breaking, naming the holder ([`leased`]),
//! instead of breaking it; an open that failed is named ([`not_opened`]).

use std::{
    fs, io,
    os::{
        fd::{AsFd as _, BorrowedFd, RawFd},
        unix::fs::FileTypeExt as _,
    },
    path::Path,
};

use crate::{
    image::format::{File, FileId, FileKind, Mapping, MappingKind},
    procfs::ProcLease,
    sys::creds,
};

/// What a `/proc/PID/fd/N` link (and the file behind it) is.
pub fn kind(link: &str, target: &Path) -> FileKind {
    if link.starts_with("socket:[") {
        return FileKind::Socket;
    }
    if link.starts_with("pipe:[") {
        return FileKind::Pipe;
    }
    if link.starts_with("anon_inode:") {
        return FileKind::AnonInode;
    }
    match fs::metadata(target).map(|m| m.file_type()) {
        Ok(t) if t.is_file() => FileKind::Regular,
        Ok(t) if t.is_dir() => FileKind::Directory,
        Ok(t) if t.is_char_device() => FileKind::CharDevice,
        Ok(t) if t.is_block_device() => FileKind::BlockDevice,
        Ok(t) if t.is_fifo() => FileKind::Pipe,
        Ok(t) if t.is_socket() => FileKind::Socket,
        _ => FileKind::Other,
    }
}

// Restore: opened again by the resume command, as the process's user,
// before anything is created, and checked on the descriptor.

/// Why a file the resume opens cannot be the process's again: the restore
/// refuses the image with it (its `Refusal::File`).
#[derive(Debug, thiserror::Error)]
pub enum Conflict {
    /// Nothing is at its path now.
    #[error("{what} {path} is gone: {source}")]
    FileGone {
        what: &'static str,
        path: String,
        source: io::Error,
    },
    /// What is at its path is not what the image holds.
    #[error("{what} {path} changed since the image was taken ({how})")]
    FileChanged {
        what: &'static str,
        path: String,
        how: String,
    },
    /// It was deleted before the image was taken: no name reaches it.
    #[error("{what} {path} was deleted before the image was taken; it cannot be reopened")]
    FileDeleted { what: &'static str, path: String },
    /// The process's user may not open it.
    #[error("{what} {path} cannot be opened as the process's user (uid {uid}): {source}")]
    FileDenied {
        what: &'static str,
        path: String,
        uid: u32,
        source: io::Error,
    },
    /// Another process holds a lease on it that opening it would start
    /// breaking.
    #[error(
        "its {what} {path}: pid {pid} holds {whose} on it, which opening the file {how} to \
         resume would start breaking; resume it once that is let go"
    )]
    OpenLeased {
        what: &'static str,
        path: String,
        pid: u32,
        whose: &'static str,
        how: &'static str,
    },
}

/// How a file must match its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// The very same file: device and inode.
    Inode,
    /// The same contents: the same inode with the same size and mtime, or
    /// (a copy: another machine, a package installed again) another
    /// inode, or the same one changed, with the same size, build-id (an
    /// ELF file with one), mtime (to the second for another inode) and
    /// digest, as its record's identity says
    /// ([`super::identity::differs`]). An open file too: one written since
    /// the image was taken is refused, not handed to a process whose
    /// memory (offsets, caches) knows it as it was. A record without one (an
    /// older image): another inode with the same size and the same mtime
    /// to the second.
    Contents,
    /// A directory at that path. For an image taken on another machine or
    /// before this one booted ([`elsewhere`]): a directory's inode there
    /// names nothing here (a `/tmp` on tmpfs is new at every boot), and a
    /// directory has no contents of its own to compare.
    Place,
}

/// Whether an image taken on host `host` at `created` (seconds since the
/// epoch) was taken on another machine than `here`, or on this one before
/// it booted at `booted`: where its directories are matched by
/// [`Match::Place`], not by inode. (The same host name on another machine,
/// as guests of one image have, is told by the boot time: an image taken
/// there after this machine booted keeps the inode rule, and a directory
/// is refused rather than taken for another.)
pub fn elsewhere(host: &str, created: u64, here: &str, booted: Option<u64>) -> bool {
    host != here || booted.is_some_and(|booted| created < booted)
}

/// One file to open.
#[derive(Debug)]
pub struct Want {
    /// What it is to the process, as a refusal names it ("open file").
    pub what: &'static str,
    pub path: String,
    /// The flags it is opened with.
    pub flags: i32,
    /// What it was when the image was taken (`None`: nothing to check).
    pub id: Option<FileId>,
    pub how: Match,
}

/// The file a resume opens again for fd `f`, if it is of this kind: a
/// regular file, directory or character device above stdio (stdio is the
/// resume command's) that no other kind makes (a deleted file,
/// [`File::made_again`]) and that is not a copy of another fd (made from
/// it). Opened with its flags but those that only make a file.
pub fn reopened(f: &File) -> Option<Want> {
    if f.fd <= 2 || f.unlinked.is_some() || f.made_again() || f.dup_of.is_some() {
        return None;
    }
    if !matches!(
        f.kind,
        FileKind::Regular | FileKind::Directory | FileKind::CharDevice
    ) {
        return None;
    }
    // A regular file recorded with its identity may be an equal copy; in
    // an older image, only the very same inode.
    let copy = f.kind == FileKind::Regular && f.id.as_ref().is_some_and(|id| id.identity.is_some());
    Some(Want {
        what: "open file",
        path: f.path.clone(),
        flags: f.flags as i32 & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC),
        id: f.id.clone(),
        how: if copy { Match::Contents } else { Match::Inode },
    })
}

/// Refuses `mappings` if the file of one was deleted before the image was
/// taken: a resume opens a mapped file by its name, and none reaches it.
pub fn check_mapped(mappings: &[Mapping]) -> Result<(), Conflict> {
    for m in mappings {
        if matches!(m.kind, MappingKind::PrivateFile | MappingKind::SharedFile)
            && m.path.ends_with(" (deleted)")
        {
            return Err(Conflict::FileDeleted {
                what: "mapped file",
                path: m.path.clone(),
            });
        }
    }
    Ok(())
}

/// Whether what `fd` is matches `want`'s record (see [`Match`]).
pub fn check(fd: BorrowedFd<'_>, want: &Want) -> Result<(), Conflict> {
    let Some(id) = &want.id else {
        return Ok(());
    };
    let changed = |how: String| Conflict::FileChanged {
        what: want.what,
        path: want.path.clone(),
        how,
    };
    let meta = crate::sys::fd::stat(fd).map_err(|e| changed(e.to_string()))?;
    if want.how == Match::Contents
        && let Some(identity) = &id.identity
    {
        return match super::identity::differs(fd, &meta, id, identity) {
            None => Ok(()),
            Some(how) => Err(changed(how)),
        };
    }
    let same_inode = meta.st_dev == id.dev && meta.st_ino == id.ino;
    if want.how == Match::Place {
        return if meta.st_mode & libc::S_IFMT == libc::S_IFDIR {
            Ok(())
        } else {
            Err(changed("it is no directory now".into()))
        };
    }
    if want.how == Match::Inode {
        return if same_inode {
            Ok(())
        } else {
            Err(changed("it is another file now".into()))
        };
    }
    let mut how = Vec::new();
    if meta.st_size as u64 != id.size {
        how.push(format!("size {} then, {} now", id.size, meta.st_size));
    }
    let mtime_ns = meta.st_mtime * 1_000_000_000 + meta.st_mtime_nsec;
    // A copy may keep only whole seconds (`tar` in ustar format, `scp -p`,
    // busybox `cp -p`).
    let same_mtime = if same_inode {
        mtime_ns == id.mtime_ns
    } else {
        meta.st_mtime == id.mtime_ns.div_euclid(1_000_000_000)
    };
    if !same_mtime {
        how.push("modified".to_owned());
    }
    if how.is_empty() {
        return Ok(());
    }
    if !same_inode {
        how.insert(0, "it is another file now".to_owned());
    }
    Err(changed(how.join(", ")))
}

/// The first of `leases` (other processes' on one file, from
/// `/proc/locks`) that an open of the file with `flags` would start
/// breaking, with its holder and what it is: an open for reading breaks a
/// write lease (or one being broken), an open for writing any lease, an
/// `O_PATH` open none (as the kernel's `break_lease` on open).
fn broken_by(leases: &[ProcLease], flags: i32) -> Option<(u32, &'static str)> {
    if flags & libc::O_PATH != 0 {
        return None;
    }
    super::locks::in_the_way(leases, flags & libc::O_ACCMODE != libc::O_RDONLY)
}

/// Refuses, before any is opened, a file of `wants` that another process
/// holds a lease on which its open would start breaking (even a failing
/// `O_NONBLOCK` open does): the holder would be told to let go of it for
/// the resume. The file is found as the open will find it, through an
/// `O_PATH` open (which breaks nothing), as root: one the process's user
/// may not open is refused by the open itself, by name. A lease taken
/// after this is broken by the open, as by any.
pub fn leased<'a>(wants: impl IntoIterator<Item = &'a Want>) -> Result<(), Conflict> {
    let proc_locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    // No lease or delegation on any file: nothing to look up.
    if !proc_locks.contains("LEASE") && !proc_locks.contains("DELEG") {
        return Ok(());
    }
    for want in wants {
        let Some(meta) = creds::open_no_symlinks(Path::new(&want.path), libc::O_PATH)
            .ok()
            .and_then(|fd| crate::sys::fd::stat(fd.as_fd()).ok())
        else {
            continue; // refused as a file by the open, by name
        };
        let leases = crate::procfs::parse_leases_on(&proc_locks, meta.st_dev, meta.st_ino);
        if let Some((pid, whose)) = broken_by(&leases, want.flags) {
            return Err(Conflict::OpenLeased {
                what: want.what,
                path: want.path.clone(),
                pid,
                whose,
                how: if want.flags & libc::O_ACCMODE == libc::O_RDONLY {
                    "for reading"
                } else {
                    "for writing"
                },
            });
        }
    }
    Ok(())
}

/// Why `what` at `path` could not be opened as the process's user (`uid`),
/// from the open's error `e`: gone, a symbolic link on its path now, or
/// denied.
pub fn not_opened(what: &'static str, path: &str, uid: u32, e: io::Error) -> Conflict {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => Conflict::FileGone {
            what,
            path: path.to_owned(),
            source: e,
        },
        Some(libc::ELOOP) => Conflict::FileChanged {
            what,
            path: path.to_owned(),
            how: "a symbolic link is on its path now".into(),
        },
        _ => Conflict::FileDenied {
            what,
            path: path.to_owned(),
            uid,
            source: e,
        },
    }
}

/// A file opened (as the process) and checked beforehand, at helper fd
/// `from`: the restore child puts it at its number and position.
#[derive(Debug, PartialEq, Eq)]
pub struct Reopened {
    pub from: RawFd,
    pub flags: i32,
    pub pos: u64,
}

impl super::MakeFd for Reopened {
    unsafe fn make(&self, fd: RawFd, _scratch: RawFd) -> Result<(), super::Unmade> {
        // SAFETY: the restore child's own numbers (the caller's promise).
        if unsafe { crate::sys::raw::dup3(self.from, fd, self.flags & libc::O_CLOEXEC) } < 0 {
            return Err(super::Unmade::Open);
        }
        if self.pos != 0 && crate::sys::raw::seek(fd, self.pos as i64, libc::SEEK_SET) < 0 {
            return Err(super::Unmade::Seek);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn directories_are_matched_by_place_only_for_an_image_from_elsewhere() {
        use super::elsewhere;
        assert!(
            !elsewhere("a", 2_000, "a", Some(1_000)),
            "this boot, this machine"
        );
        assert!(elsewhere("b", 2_000, "a", Some(1_000)), "another machine");
        assert!(
            elsewhere("a", 500, "a", Some(1_000)),
            "before this machine booted"
        );
        assert!(
            !elsewhere("a", 500, "a", None),
            "no boot time: the inode rule"
        );
    }
    use super::*;

    #[test]
    fn what_an_fd_is_comes_from_its_link_then_its_file() {
        assert_eq!(kind("socket:[7]", Path::new("/")), FileKind::Socket);
        assert_eq!(kind("pipe:[7]", Path::new("/")), FileKind::Pipe);
        assert_eq!(
            kind("anon_inode:[eventfd]", Path::new("/")),
            FileKind::AnonInode
        );
        assert_eq!(kind("/", Path::new("/")), FileKind::Directory);
        assert_eq!(
            kind("/dev/null", Path::new("/dev/null")),
            FileKind::CharDevice
        );
        assert_eq!(kind("/gone", Path::new("/nonexistent/x")), FileKind::Other);
    }

    #[test]
    fn only_a_named_file_no_other_kind_makes_is_opened_again() {
        let file = |fd, kind, path: &str| File {
            flags: (libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) as u32,
            ..File::bare(fd, kind, path)
        };
        let want = reopened(&file(3, FileKind::Regular, "/tmp/log")).expect("a regular file");
        assert_eq!(
            (want.what, want.path.as_str(), want.flags, want.how),
            (
                "open file",
                "/tmp/log",
                libc::O_RDWR | libc::O_APPEND,
                Match::Inode
            )
        );
        assert!(reopened(&file(4, FileKind::Directory, "/tmp")).is_some());
        assert!(reopened(&file(5, FileKind::CharDevice, "/dev/null")).is_some());
        assert!(
            reopened(&file(1, FileKind::Regular, "/tmp/log")).is_none(),
            "stdio"
        );
        assert!(reopened(&file(6, FileKind::BlockDevice, "/dev/sda")).is_none());
        assert!(reopened(&file(7, FileKind::Pipe, "pipe:[1]")).is_none());
        let mut dup = file(8, FileKind::Regular, "/tmp/log");
        dup.dup_of = Some(3);
        assert!(reopened(&dup).is_none(), "a copy is made from its fd");
    }

    #[test]
    fn a_mapped_file_deleted_before_the_image_is_refused() {
        use crate::state::fixtures::mapping;
        let mapped = |kind, path: &str| Mapping {
            path: path.into(),
            ..mapping(0x1000, 0x2000, "r--p", kind)
        };
        assert!(
            check_mapped(&[
                mapped(MappingKind::PrivateFile, "/usr/lib/libc.so.6"),
                mapped(MappingKind::Anonymous, "/memfd:x (deleted)"),
            ])
            .is_ok()
        );
        for kind in [MappingKind::PrivateFile, MappingKind::SharedFile] {
            assert_eq!(
                check_mapped(&[mapped(kind, "/tmp/lib.so (deleted)")])
                    .err()
                    .map(|e| e.to_string())
                    .as_deref(),
                Some(
                    "mapped file /tmp/lib.so (deleted) was deleted before the image was taken; \
                     it cannot be reopened"
                )
            );
        }
    }

    #[test]
    fn an_opened_file_is_checked_against_its_record() {
        let path = std::env::temp_dir().join(format!("suspend-check-{}", std::process::id()));
        std::fs::write(&path, b"twelve bytes").expect("file");
        let opened = std::fs::File::open(&path).expect("open");
        let record = crate::procfs::file_id(&path, "/srv/data").expect("stat");
        let _ = std::fs::remove_file(&path);
        let want = |how, id| Want {
            what: "mapped file",
            path: "/srv/data".into(),
            flags: libc::O_RDONLY,
            id: Some(id),
            how,
        };
        let message = |how, id| {
            check(opened.as_fd(), &want(how, id))
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(message(Match::Inode, record.clone()), None);
        assert_eq!(message(Match::Contents, record.clone()), None);
        let other = FileId {
            ino: record.ino + 1,
            ..record.clone()
        };
        assert_eq!(
            message(Match::Inode, other.clone()).as_deref(),
            Some(
                "mapped file /srv/data changed since the image was taken (it is another file now)"
            )
        );
        assert_eq!(
            message(Match::Contents, other),
            None,
            "a copy with the same size and mtime"
        );
        let grown = FileId {
            size: 13,
            mtime_ns: record.mtime_ns + 1,
            ..record
        };
        assert_eq!(
            message(Match::Contents, grown).as_deref(),
            Some(
                "mapped file /srv/data changed since the image was taken (size 13 then, 12 now, \
                 modified)"
            )
        );
        assert!(
            check(
                opened.as_fd(),
                &Want {
                    id: None,
                    ..want(
                        Match::Inode,
                        crate::procfs::file_id(Path::new("/"), "/").expect("stat")
                    )
                }
            )
            .is_ok(),
            "nothing to check"
        );
    }

    #[test]
    fn a_failed_open_is_named_by_why() {
        let said = |errno| {
            not_opened(
                "open file",
                "/srv/data",
                1000,
                io::Error::from_raw_os_error(errno),
            )
            .to_string()
        };
        assert_eq!(
            said(libc::ENOENT),
            "open file /srv/data is gone: No such file or directory (os error 2)"
        );
        assert!(said(libc::ENOTDIR).starts_with("open file /srv/data is gone: "));
        assert_eq!(
            said(libc::ELOOP),
            "open file /srv/data changed since the image was taken (a symbolic link is on its \
             path now)"
        );
        assert_eq!(
            said(libc::EACCES),
            "open file /srv/data cannot be opened as the process's user (uid 1000): Permission \
             denied (os error 13)"
        );
    }

    #[test]
    fn an_open_for_reading_breaks_a_write_lease_one_for_writing_any() {
        let lease = |write, breaking, delegation| ProcLease {
            pid: 5,
            delegation,
            write,
            breaking,
        };
        let (read, write, breaking) = (
            lease(false, false, false),
            lease(true, false, false),
            lease(false, true, false),
        );
        let (read_deleg, write_deleg) = (lease(false, false, true), lease(true, false, true));
        let reading = [libc::O_RDONLY, libc::O_RDONLY | libc::O_NONBLOCK];
        let writing = [
            libc::O_WRONLY,
            libc::O_RDWR,
            libc::O_WRONLY | libc::O_APPEND,
        ];
        for flags in reading {
            assert_eq!(broken_by(&[read], flags), None, "{flags:#o}");
            assert_eq!(broken_by(&[read_deleg], flags), None, "{flags:#o}");
            assert_eq!(broken_by(&[write], flags), Some((5, "a write lease")));
            assert_eq!(
                broken_by(&[write_deleg], flags),
                Some((5, "an NFS delegation"))
            );
            assert_eq!(
                broken_by(&[breaking], flags),
                Some((5, "a lease being broken"))
            );
        }
        for flags in writing {
            assert_eq!(broken_by(&[read], flags), Some((5, "a read lease")));
            assert_eq!(
                broken_by(&[read_deleg], flags),
                Some((5, "an NFS delegation"))
            );
            assert_eq!(broken_by(&[write], flags), Some((5, "a write lease")));
            assert_eq!(
                broken_by(&[breaking], flags),
                Some((5, "a lease being broken"))
            );
        }
        // An `O_PATH` open (the working directory) breaks none.
        for kind in [read, write, breaking, write_deleg] {
            assert_eq!(broken_by(&[kind], libc::O_PATH | libc::O_DIRECTORY), None);
        }
        assert_eq!(broken_by(&[], libc::O_RDWR), None);
    }

    #[test]
    fn a_file_another_holds_a_lease_on_is_refused_before_it_is_opened() {
        let dir = std::env::temp_dir().join(format!("suspend-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let (written, read) = (dir.join("write-leased"), dir.join("read-leased"));
        std::fs::write(&written, b"leased").expect("file");
        std::fs::write(&read, b"leased").expect("file");
        // The other process: this one, holding a write lease on one file
        // and a read lease on the other.
        let holders = [&written, &read].map(|p| std::fs::File::open(p).expect("open"));
        let held = crate::sys::lease::hold(holders[0].as_fd(), true)
            .and_then(|()| crate::sys::lease::hold(holders[1].as_fd(), false));
        if let Err(e) = held {
            eprintln!(
                "NOTE: no lease on {} ({e}); the open's lease test is not run",
                dir.display()
            );
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        let want = |path: &Path, flags| Want {
            what: "open file",
            path: path.display().to_string(),
            flags,
            id: None,
            how: Match::Inode,
        };
        let refused = [
            leased(&[want(&written, libc::O_RDONLY)]),
            leased(&[want(&read, libc::O_RDONLY), want(&read, libc::O_WRONLY)]),
        ];
        let allowed = [
            leased(&[want(&read, libc::O_RDONLY)]),
            leased(&[want(&written, libc::O_PATH)]),
        ];
        // Asked first: nothing was opened in a way that breaks them.
        let still = holders
            .each_ref()
            .map(|h| crate::sys::lease::held(h.as_fd()).expect("F_GETLEASE"));
        drop(holders);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            still,
            [libc::F_WRLCK, libc::F_RDLCK],
            "a lease is being broken"
        );
        let me = std::process::id();
        assert!(
            matches!(&refused[0], Err(Conflict::OpenLeased { pid, whose: "a write lease", how: "for reading", .. }) if *pid == me),
            "{:?}",
            refused[0]
        );
        assert!(
            matches!(&refused[1], Err(Conflict::OpenLeased { pid, whose: "a read lease", how: "for writing", .. }) if *pid == me),
            "{:?}",
            refused[1]
        );
        for a in allowed {
            assert!(a.is_ok(), "{a:?}");
        }
    }
}
