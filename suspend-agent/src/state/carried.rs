//! Regular files the process has open that the image carries on request
//! (`suspend --carry PATH`): files that exist only on the machine a
//! process leaves (a log, a scratch file). Their bytes go into the image
//! (with the deleted files', under `--unlinked-max`), read while the
//! process is frozen ([`read`]); a resume where the path does not exist
//! makes the file there first, as the process's user, with those bytes,
//! its mode and its mtime ([`place`]; removed again, as that user and only
//! if still the file made, if the resume fails: [`Made::undo`]), so the
//! file's ordinary check then finds the very contents it had. Where the path exists, nothing is
//! made: the file there is checked as any other (equal, or refused naming
//! it) — a carried file never replaces one.
//!
//! Refused before anything is frozen ([`choose`]): a PATH the process
//! has no regular file open at, or only as stdin, stdout or stderr (the
//! resume command gives its own).

use std::{
    fs, io,
    os::unix::fs::{FileExt as _, MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};

use crate::{
    image::format::{Carried, File, FileKind},
    sys::creds,
};

/// Marks, in `files` (the process's fds), the lowest fd open on each of
/// `paths` as carrying that file; every reason one cannot be carried.
pub fn choose(files: &mut [File], paths: &[PathBuf]) -> Result<(), Vec<String>> {
    let mut why = Vec::new();
    for path in paths {
        let text = path.to_string_lossy();
        let open: Vec<usize> = (0..files.len())
            .filter(|&i| files[i].path == text && files[i].kind == FileKind::Regular)
            .collect();
        let Some(&first) = open.iter().find(|&&i| files[i].fd > 2) else {
            why.push(if open.is_empty() {
                format!("--carry {text}: the process has no regular file open there")
            } else {
                format!(
                    "--carry {text}: the process has it open only as stdin, stdout or stderr, \
                     which a resume gives its own"
                )
            });
            continue;
        };
        files[first].carried = Some(Carried {
            mode: 0,
            data: String::new(),
        });
    }
    if why.is_empty() { Ok(()) } else { Err(why) }
}

/// Bytes the carried files of `files` take, as their sizes said when the
/// fds were listed.
pub fn bytes(files: &[File]) -> u64 {
    files
        .iter()
        .filter(|f| f.carried.is_some())
        .filter_map(|f| Some(f.id.as_ref()?.size))
        .sum()
}

/// Reads each carried file of `files` (process `pid`, frozen) through
/// `/proc/PID/fd/N` opened to read as the process's user (a log opened to
/// write only reads so too, if its user may read it: the copy a resume
/// makes is the user's, so it must hold nothing the user could not
/// read): its bytes and mode. `cap`: what they may take together (what
/// the deleted files' left, counted by the caller).
pub fn read(pid: u32, files: &mut [File], cap: u64) -> Result<(), (String, io::Error)> {
    if files.iter().all(|f| f.carried.is_none()) {
        return Ok(());
    }
    let status = format!("/proc/{pid}/status");
    let creds = fs::read_to_string(&status)
        .ok()
        .and_then(|text| super::credentials::parse(&text))
        .ok_or_else(|| (status.clone(), io::Error::other("no credentials in it")))?;
    let user = super::identity::user_of(&creds);
    let mut left = cap;
    for f in files.iter_mut() {
        let Some(c) = f.carried.as_mut() else {
            continue;
        };
        let path = format!("/proc/{pid}/fd/{}", f.fd);
        let err = |e| (format!("{path} ({}, carried)", f.path), e);
        let file = creds::as_user(&user, || fs::File::open(&path))
            .and_then(|r| r)
            .map_err(|e| {
                err(io::Error::new(
                    e.kind(),
                    format!("opening it to read as uid {}: {e}", user.fsuid),
                ))
            })?;
        let meta = file.metadata().map_err(err)?;
        if meta.len() > left {
            return Err(err(io::Error::other(format!(
                "{} bytes, more than the {left} --unlinked-max leaves",
                meta.len()
            ))));
        }
        left -= meta.len();
        let mut data = vec![0u8; meta.len() as usize];
        file.read_exact_at(&mut data, 0).map_err(err)?;
        c.mode = meta.permissions().mode() & 0o7777;
        c.data = B64.encode(&data);
        // The size and mtime the resume checks the file by are the ones
        // read now, with the bytes.
        if let Some(id) = f.id.as_mut() {
            id.size = meta.len();
            id.mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        }
    }
    Ok(())
}

// Restore: made by the resume command, as the process's user, before the
// process's files are opened.

/// The carried files a resume made, as whom: removed by [`Made::undo`]
/// if the resume fails.
#[derive(Debug, Default)]
pub struct Made {
    user: Option<creds::FsUser>,
    /// Each file made: its path, and its device, inode and change time.
    files: Vec<(PathBuf, (u64, u64, i64))>,
}

impl Made {
    /// The paths made.
    #[cfg(test)]
    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|(p, _)| p.as_path()).collect()
    }

    /// Removes what was made, as the user that made it, each only if it
    /// is still the file made (by device and inode, its directory reached
    /// without a symbolic link: `creds::unlink_if_same`).
    pub fn undo(&self) {
        let Some(user) = &self.user else {
            return;
        };
        let files = &self.files;
        let _ = creds::as_user(user, || {
            for (path, made) in files {
                if let Err(e) = creds::unlink_if_same(path, *made) {
                    log::warn!("removing the carried file {} made: {e}", path.display());
                }
            }
        });
    }
}

/// Makes each carried file of `files` that does not exist here, as
/// `user`: created (never over anything, no symbolic link followed on the
/// way), its bytes written, its mode and mtime set last. What cannot be
/// made is refused naming it (what was made before it removed).
pub fn place(files: &[File], user: &creds::FsUser) -> Result<Made, super::files::Conflict> {
    let mut made = Made {
        user: Some(user.clone()),
        files: Vec::new(),
    };
    for f in files {
        let Some(c) = &f.carried else {
            continue;
        };
        let path = PathBuf::from(&f.path);
        if fs::symlink_metadata(&path).is_ok() {
            continue; // there: checked as any file is
        }
        let what = "carried file";
        let bytes = B64
            .decode(&c.data)
            .map_err(|e| super::files::Conflict::FileChanged {
                what,
                path: f.path.clone(),
                how: format!("its bytes in the image are not base64: {e}"),
            })?;
        let mtime_ns = f.id.as_ref().map_or(0, |id| id.mtime_ns);
        let result = creds::as_user(user, || make(&path, &bytes, c.mode, mtime_ns))
            .and_then(|r| r)
            .map_err(|e| super::files::Conflict::FileChanged {
                what,
                path: f.path.clone(),
                how: format!(
                    "it is not here, and making it from the image as uid {} failed: {e}",
                    user.fsuid
                ),
            });
        match result {
            Ok(id) => made.files.push((path, id)),
            Err(e) => {
                made.undo();
                return Err(e);
            }
        }
    }
    Ok(made)
}

/// Makes `path` (which must not exist; no symbolic link followed on the
/// way) with `bytes`, `mode` and `mtime_ns`; its device, inode and change
/// time once made. Runs as the process's user; what it made is removed
/// if a step fails.
fn make(path: &Path, bytes: &[u8], mode: u32, mtime_ns: i64) -> io::Result<(u64, u64, i64)> {
    let fd = creds::create_no_symlinks(path, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600)?;
    let file = fs::File::from(fd);
    let made = |meta: fs::Metadata| {
        (
            meta.dev(),
            meta.ino(),
            meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        )
    };
    let first = made(file.metadata()?);
    let written = file
        .write_all_at(bytes, 0)
        .and_then(|()| file.set_permissions(fs::Permissions::from_mode(mode)))
        .and_then(|()| {
            file.set_modified(
                std::time::UNIX_EPOCH + std::time::Duration::from_nanos(mtime_ns.max(0) as u64),
            )
        });
    let last = written.and_then(|()| file.metadata());
    match last {
        Ok(meta) => Ok(made(meta)),
        Err(e) => {
            // Its change time may have moved since `first`: by inode.
            let now = fs::symlink_metadata(path).map(made);
            if let Ok(now) = now
                && (now.0, now.1) == (first.0, first.1)
            {
                let _ = creds::unlink_if_same(path, now);
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::format::FileId;

    fn file(fd: i32, path: &str, size: u64) -> File {
        let mut f = File::bare(fd, FileKind::Regular, path);
        f.id = Some(FileId {
            path: path.into(),
            dev: 1,
            ino: fd as u64,
            size,
            mtime_ns: 1_700_000_000_123_456_789,
            identity: None,
        });
        f
    }

    #[test]
    fn the_lowest_open_above_stdio_carries_it_and_a_path_not_open_is_refused() {
        let mut files = vec![
            file(1, "/var/log/w.log", 10),
            file(4, "/var/log/w.log", 10),
            file(7, "/var/log/w.log", 10),
            file(5, "/tmp/other", 3),
        ];
        choose(&mut files, &["/var/log/w.log".into()]).expect("carried");
        let carried: Vec<i32> = files
            .iter()
            .filter(|f| f.carried.is_some())
            .map(|f| f.fd)
            .collect();
        assert_eq!(carried, [4]);
        assert_eq!(bytes(&files), 10);
        let why = choose(&mut files, &["/nowhere".into()]).unwrap_err();
        assert!(why[0].contains("no regular file open there"), "{why:?}");
        let mut only_stdio = vec![file(2, "/var/log/e.log", 1)];
        let why = choose(&mut only_stdio, &["/var/log/e.log".into()]).unwrap_err();
        assert!(why[0].contains("stdin, stdout or stderr"), "{why:?}");
    }

    #[test]
    fn a_missing_file_is_made_with_its_bytes_mode_and_mtime_and_one_there_is_left_alone() {
        let dir = std::env::temp_dir().join(format!("carried-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("log");
        let there = dir.join("there");
        fs::write(&there, b"other").unwrap();
        let mut files = vec![
            file(4, missing.to_str().unwrap(), 5),
            file(5, there.to_str().unwrap(), 5),
        ];
        for f in &mut files {
            f.carried = Some(Carried {
                mode: 0o640,
                data: B64.encode(b"hello"),
            });
        }
        let me = creds::FsUser {
            fsuid: nix::unistd::geteuid().as_raw(),
            fsgid: nix::unistd::getegid().as_raw(),
            groups: Vec::new(),
            effective: None,
        };
        let made = place(&files, &me).expect("placed");
        assert_eq!(made.paths(), [missing.as_path()]);
        assert_eq!(fs::read(&missing).unwrap(), b"hello");
        let meta = fs::metadata(&missing).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(
            meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            1_700_000_000_123_456_789
        );
        assert_eq!(fs::read(&there).unwrap(), b"other", "never replaced");
        // Replaced since by another file: left alone.
        fs::remove_file(&missing).unwrap();
        fs::write(&missing, b"new").unwrap();
        made.undo();
        assert_eq!(fs::read(&missing).unwrap(), b"new");
        fs::remove_file(&missing).unwrap();
        let made = place(&files, &me).expect("placed again");
        made.undo();
        assert!(!missing.exists(), "removed");
        fs::remove_dir_all(&dir).unwrap();
    }
}
