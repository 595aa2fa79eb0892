//! Regular files only the process's fds reach (deleted since they were
//! opened, or made with `O_TMPFILE`): their bytes go into the image (up to
//! a cap, `suspend --unlinked-max`), read through a copy of the fd while
//! the process is frozen ([`read`]), and a resume makes the file again in
//! its old directory, with no name ([`make_each`], as the process's user,
//! from `restore/open.rs`), refusing one it cannot make as
//! [`super::files`] names a file it opens. Two opens of one such file come back as two opens of
//! one file ([`opens`]).
//!
//! Refused by name, before anything is frozen: one another process has
//! open or maps (a resume would give the process a copy of its own), one
//! the process also maps shared (the mapping would become another object),
//! and more bytes than the cap.

use std::{
    collections::BTreeMap,
    fs, io,
    os::{fd::OwnedFd, unix::fs::FileExt as _},
    path::Path,
};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};

use crate::{
    image::format::{File, FileId, FileKind, Unlinked},
    sys::{PidFd, SyscallError, creds},
};

const DELETED: &str = " (deleted)";

/// What fd `fd`, whose link is `link`, is, if a deleted regular file
/// (`mode` and `links` from its `stat`; its bytes are read later, once
/// frozen: [`read`]). Not stdio (the resume command's own), not a memfd
/// (refused: its seals and its being tmpfs would be lost), not a file
/// another name still reaches (`links` > 0: a copy would be another file).
pub fn describe(
    fd: i32,
    kind: FileKind,
    link: &str,
    file: Option<&FileId>,
    (mode, links): (u32, u64),
) -> Option<Unlinked> {
    let name = link.strip_suffix(DELETED)?;
    if fd <= 2
        || kind != FileKind::Regular
        || !name.starts_with('/')
        || name.starts_with("/memfd:")
        || links != 0
    {
        return None;
    }
    let id = file?;
    Some(Unlinked {
        name: name.to_owned(),
        mode: mode & 0o7777,
        size: id.size,
        mtime_ns: id.mtime_ns,
        data: String::new(),
        same_as: None,
    })
}

/// Marks each deleted file open at more than one fd (other opens, not
/// `dup`s) with the lowest such fd (`same_as`). `files` is sorted by fd.
pub fn mark_same(files: &mut [File]) {
    let mut first: BTreeMap<(u64, u64), i32> = BTreeMap::new();
    for f in files.iter_mut() {
        let (Some(u), Some(id)) = (f.unlinked.as_mut(), f.id.as_ref()) else {
            continue;
        };
        // A copy (`dup`) is made as one, from the fd it copies; it names
        // the fd that carries the bytes, as the file's other opens do.
        if f.dup_of.is_some() {
            if let Some(&fd) = first.get(&(id.dev, id.ino)) {
                u.same_as = Some(fd);
            }
            continue;
        }
        match first.get(&(id.dev, id.ino)) {
            Some(&fd) => u.same_as = Some(fd),
            None => {
                first.insert((id.dev, id.ino), f.fd);
            }
        }
    }
}

/// The deleted files' bytes an image of `files` would carry (each file
/// once).
pub fn bytes(files: &[File]) -> u64 {
    files
        .iter()
        .filter_map(|f| f.unlinked.as_ref())
        .filter(|u| u.same_as.is_none())
        .map(|u| u.size)
        .sum::<u64>()
}

/// The fds of deleted files an image of `files` cannot carry, each with
/// how it is described to a person: one no fd of the process can read
/// (only opened for writing: its bytes are not the process's to read, and
/// the agent will not read them for it), and all of them if together they
/// hold more than `cap` bytes.
pub fn over_cap(files: &[File], cap: u64) -> Vec<(i32, String)> {
    let mut bad: Vec<(i32, String)> = files
        .iter()
        .filter(|f| f.unlinked.as_ref().is_some_and(|u| u.same_as.is_none()))
        .filter(|f| readable_open(files, f).is_none())
        .map(|f| {
            (
                f.fd,
                format!(
                    "fd {} ({}, a deleted file the process only has open for writing: a resume \
                     would need its bytes)",
                    f.fd, f.path
                ),
            )
        })
        .collect();
    let total = bytes(files);
    if total <= cap {
        return bad;
    }
    let listed: Vec<i32> = bad.iter().map(|(fd, _)| *fd).collect();
    bad.extend(files
        .iter()
        .filter(|f| f.unlinked.as_ref().is_some_and(|u| u.same_as.is_none()))
        .filter(|f| !listed.contains(&f.fd))
        .map(|f| {
            (
                f.fd,
                format!(
                    "fd {} ({}, {} bytes: the deleted files' contents, {total} bytes in all, are \
                     more than --unlinked-max {cap})",
                    f.fd,
                    f.path,
                    f.unlinked.as_ref().map_or(0, |u| u.size)
                ),
            )
        }));
    bad
}

/// The fd of `files` through which deleted file `f` (its first open) can
/// be read: `f` or another open of the same file.
fn readable_open(files: &[File], f: &File) -> Option<i32> {
    files
        .iter()
        .filter(|g| g.fd == f.fd || g.unlinked.as_ref().is_some_and(|u| u.same_as == Some(f.fd)))
        .filter(|g| g.dup_of.is_none())
        .find(|g| {
            let flags = g.flags as i32;
            flags & libc::O_ACCMODE != libc::O_WRONLY && flags & libc::O_PATH == 0
        })
        .map(|g| g.fd)
}

/// Why deleted file `f` of `pid` cannot come back, if it cannot: another
/// process has it open or mapped, or `pid` maps it shared.
pub fn refusal(pid: u32, f: &File) -> Option<String> {
    f.unlinked.as_ref()?;
    let id = f.id.as_ref()?;
    let named = |why: String| Some(format!("fd {} ({}, {why})", f.fd, f.path));
    let maps_it = |who: u32| {
        fs::read_to_string(format!("/proc/{who}/maps")).is_ok_and(|text| {
            crate::procfs::vmas::parse(&text)
                .unwrap_or_default()
                .iter()
                .any(|v| v.inode == id.ino && v.path == f.path && (who != pid || v.shared()))
        })
    };
    let name = &f.unlinked.as_ref()?.name;
    let dir = std::path::Path::new(name).parent()?;
    if !dir.is_dir() {
        return named(format!(
            "its directory {} is gone: a resume makes it again there",
            dir.display()
        ));
    }
    if maps_it(pid) {
        return named(
            "also mapped shared: the mapping would come back as another object".to_owned(),
        );
    }
    // Open elsewhere: the same link, and the same inode behind it.
    let links = std::collections::BTreeSet::from([f.path.clone()]);
    let open = crate::procfs::others_holding(pid, &links)
        .into_iter()
        .find(|(other, fd, _)| {
            use std::os::unix::fs::MetadataExt as _;
            fs::metadata(format!("/proc/{other}/fd/{fd}"))
                .is_ok_and(|m| m.ino() == id.ino && m.dev() == id.dev)
        })
        .map(|(other, _, _)| other);
    let elsewhere = open.or_else(|| {
        crate::procfs::other_pids(pid)
            .into_iter()
            .find(|&o| maps_it(o))
    })?;
    named(format!(
        "also open or mapped in pid {elsewhere}: a resume would give it a copy of its own"
    ))
}

/// Why the deleted files' bytes could not be read (the dump names it as
/// its `DumpError`).
#[derive(Debug)]
pub enum ReadError {
    /// Fds whose files an image cannot carry, each as it is described to
    /// a person (`DumpError::Unsupported`).
    Refused(Vec<String>),
    /// The process's pidfd could not be opened (`DumpError::Syscall`).
    Syscall(SyscallError),
    /// Reading `path` failed (`DumpError::Proc`).
    Proc { path: String, source: io::Error },
}

/// Reads the bytes of every deleted file of `files` (each once) through a
/// copy of its fd: `pid` is frozen. More than `cap` bytes in all is an
/// error naming them.
pub fn read(pid: u32, files: &mut [File], cap: u64) -> Result<(), ReadError> {
    let over = over_cap(files, cap);
    if !over.is_empty() {
        return Err(ReadError::Refused(
            over.into_iter().map(|(_, what)| what).collect(),
        ));
    }
    let pidfd = PidFd::open(pid).map_err(ReadError::Syscall)?;
    let readable: BTreeMap<i32, i32> = files
        .iter()
        .filter(|f| f.unlinked.as_ref().is_some_and(|u| u.same_as.is_none()))
        .filter_map(|f| Some((f.fd, readable_open(files, f)?)))
        .collect();
    for f in files.iter_mut() {
        let Some(u) = f.unlinked.as_mut() else {
            continue;
        };
        if u.same_as.is_some() {
            continue;
        }
        let Some(&through) = readable.get(&f.fd) else {
            continue; // refused by `over_cap` already
        };
        let err = |source| ReadError::Proc {
            path: format!("/proc/{pid}/fd/{through} (its deleted file's bytes)"),
            source,
        };
        let copy = pidfd.get_fd(through).map_err(|e| err(e.into()))?;
        let file = fs::File::from(copy);
        let size = file.metadata().map_err(err)?.len();
        if size > cap {
            return Err(ReadError::Refused(vec![format!(
                "fd {} ({}, {size} bytes: more than --unlinked-max {cap})",
                f.fd, f.path
            )]));
        }
        let mut bytes = vec![0u8; size as usize];
        file.read_exact_at(&mut bytes, 0).map_err(err)?;
        u.size = size;
        u.data = B64.encode(&bytes);
    }
    Ok(())
}

// Restore: made again by the resume command, as the process's user,
// before anything is created.

/// Makes each deleted file of `files` again, as `user`: with `O_TMPFILE`
/// in its directory (no name ever reaches it, so nobody else can open it
/// meanwhile), with its bytes, size, mode and mtime; each fd that had it
/// open gets an open of it of its own, returned with its number. One that
/// cannot be made is refused, named as the files kind names a file it
/// opens ([`super::files::not_opened`]).
pub fn make_each(
    files: &[File],
    user: &creds::FsUser,
) -> Result<Vec<(i32, OwnedFd)>, super::files::Conflict> {
    let mut made = Vec::new();
    for f in files {
        let Some(u) = f.unlinked.as_ref().filter(|u| u.same_as.is_none()) else {
            continue;
        };
        let what = "deleted file";
        let denied = |e: io::Error| super::files::not_opened(what, &u.name, user.fsuid, e);
        let bytes = B64
            .decode(&u.data)
            .map_err(|e| super::files::Conflict::FileChanged {
                what,
                path: u.name.clone(),
                how: format!("its bytes in the image are not base64: {e}"),
            })?;
        // The fds that had it open: this one and its other opens.
        let opens = opens(files, f.fd);
        made.extend(
            creds::as_user(user, || make(u, &bytes, &opens))
                .and_then(|r| r)
                .map_err(denied)?,
        );
    }
    Ok(made)
}

/// The fds of `files` that had deleted file `carrier` (the fd carrying its
/// bytes) open, each with the flags to open it again with: `carrier` and
/// its other opens (not the copies, made from the fd they copy).
pub fn opens(files: &[File], carrier: i32) -> Vec<(i32, i32)> {
    files
        .iter()
        .filter(|g| {
            g.dup_of.is_none()
                && (g.fd == carrier
                    || g.unlinked
                        .as_ref()
                        .is_some_and(|v| v.same_as == Some(carrier)))
        })
        .map(|g| {
            let made_only =
                libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_TMPFILE | libc::O_NOFOLLOW;
            (g.fd, g.flags as i32 & !made_only)
        })
        .collect()
}

/// Makes deleted file `u` with `bytes` (`O_TMPFILE` in its directory)
/// and opens it once for each of `opens` (fd, flags); runs as the
/// process's user.
pub fn make(u: &Unlinked, bytes: &[u8], opens: &[(i32, i32)]) -> io::Result<Vec<(i32, OwnedFd)>> {
    let dir = Path::new(&u.name).parent().unwrap_or(Path::new("/"));
    let file = std::fs::File::from(creds::create_no_symlinks(
        dir,
        libc::O_RDWR | libc::O_TMPFILE,
        0o600,
    )?);
    file.write_all_at(bytes, 0)?;
    file.set_len(u.size)?;
    let mut opened = Vec::new();
    for &(fd, flags) in opens {
        opened.push((fd, creds::reopen(std::os::fd::AsFd::as_fd(&file), flags)?));
    }
    // Its mode and mtime last (a read-only mode would have kept it from
    // being opened for writing; a write changes the mtime).
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(u.mode))?;
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(u.mtime_ns.max(0) as u64);
    file.set_modified(mtime)?;
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ino: u64, size: u64) -> FileId {
        FileId {
            path: String::new(),
            dev: 1,
            ino,
            size,
            mtime_ns: 0,
            identity: None,
        }
    }

    fn file(fd: i32, flags: i32, ino: u64, size: u64, dup_of: Option<i32>) -> File {
        let link = format!("/tmp/f{ino} (deleted)");
        let unlinked = describe(
            fd,
            FileKind::Regular,
            &link,
            Some(&id(ino, size)),
            (0o640, 0),
        );
        File {
            flags: flags as u32,
            id: Some(id(ino, size)),
            dup_of,
            unlinked,
            ..File::bare(fd, FileKind::Regular, &link)
        }
    }

    #[test]
    fn only_a_deleted_regular_file_no_name_reaches_above_stdio_is_one() {
        let some = |fd, link: &str, links| {
            describe(
                fd,
                FileKind::Regular,
                link,
                Some(&id(1, 1)),
                (0o100644, links),
            )
            .is_some()
        };
        assert!(some(3, "/tmp/x (deleted)", 0));
        assert!(!some(1, "/var/log/app.log (deleted)", 0), "stdio");
        assert!(!some(3, "/memfd:x (deleted)", 0), "a memfd");
        assert!(
            !some(3, "/tmp/x (deleted)", 1),
            "a hard link still reaches it"
        );
        assert!(!some(3, "/tmp/x", 0), "not deleted");
        let u = describe(
            3,
            FileKind::Regular,
            "/tmp/x (deleted)",
            Some(&id(1, 1)),
            (0o100644, 0),
        );
        assert_eq!(u.map(|u| (u.name, u.mode)), Some(("/tmp/x".into(), 0o644)));
    }

    #[test]
    fn each_file_is_carried_once_through_a_readable_open() {
        let mut files = vec![
            file(3, libc::O_WRONLY, 7, 100, None),
            file(4, libc::O_RDONLY, 7, 100, None),
            file(5, libc::O_WRONLY, 7, 100, Some(3)),
            file(6, libc::O_PATH, 8, 50, None),
            // A dup of the second open names the carrier too.
            file(7, libc::O_RDONLY, 7, 100, Some(4)),
        ];
        mark_same(&mut files);
        let same: Vec<_> = files
            .iter()
            .map(|f| f.unlinked.as_ref().and_then(|u| u.same_as))
            .collect();
        assert_eq!(same, [None, Some(3), Some(3), None, Some(3)]);
        files.pop();
        assert_eq!(bytes(&files), 150, "the dup and the second open count once");
        assert_eq!(readable_open(&files, &files[0]), Some(4));
        assert_eq!(
            readable_open(&files, &files[3]),
            None,
            "O_PATH reads nothing"
        );
        let refused = over_cap(&files, 1000);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, 6);
        let over: Vec<i32> = over_cap(&files, 100).iter().map(|(fd, _)| *fd).collect();
        assert_eq!(
            over,
            [6, 3],
            "over the cap: the carried file too, each named once"
        );
    }

    #[test]
    fn a_deleted_file_whose_bytes_are_not_base64_is_refused_by_name_before_anything_is_made() {
        let files = [File {
            unlinked: Some(Unlinked {
                name: "/tmp/gone".into(),
                mode: 0o600,
                size: 2,
                mtime_ns: 0,
                data: "not base64!".into(),
                same_as: None,
            }),
            ..crate::state::fixtures::file(3)
        }];
        let user = creds::FsUser {
            fsuid: 1000,
            fsgid: 1000,
            groups: Vec::new(),
            effective: None,
        };
        let err = make_each(&files, &user).expect_err("not base64");
        assert!(
            err.to_string().starts_with(
                "deleted file /tmp/gone changed since the image was taken (its bytes in the \
                 image are not base64: "
            ),
            "{err}"
        );
        assert!(
            make_each(&files[..0], &user)
                .expect("nothing to make")
                .is_empty()
        );
    }
}
