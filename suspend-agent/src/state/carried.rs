//! Regular files the process has open that the image carries on request
//! (`suspend --carry PATH`): files that exist only on the machine a
//! process leaves (a log, a scratch file). Their bytes go into the image
//! (with the deleted files', under `--unlinked-max`), read while the
//! process is frozen ([`read`]); a resume where the path does not exist
//! makes the file there first, as the process's user, with those bytes,
//! its mode and its mtime ([`place`]), so the file's ordinary check then
//! finds the very contents it had. Where the path exists, nothing is
//! made: the file there is checked as any other (equal, or refused naming
//! it) — a carried file never replaces one.
//!
//! Refused before anything is frozen ([`choose`]): a PATH the process
//! has no regular file open at, or only as stdin, stdout or stderr (the
//! resume command gives its own).

use std::{
    fs, io,
    os::unix::fs::{FileExt as _, OpenOptionsExt as _, PermissionsExt as _},
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
/// `/proc/PID/fd/N` opened to read (a log opened to write only reads so
/// too): its bytes and mode. `cap`: what they may take (with the deleted
/// files', counted by the caller).
pub fn read(pid: u32, files: &mut [File], cap: u64) -> Result<(), (String, io::Error)> {
    for f in files.iter_mut() {
        let Some(c) = f.carried.as_mut() else {
            continue;
        };
        let path = format!("/proc/{pid}/fd/{}", f.fd);
        let err = |e| (format!("{path} ({}, carried)", f.path), e);
        let file = fs::File::open(&path).map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        if meta.len() > cap {
            return Err(err(io::Error::other(format!(
                "{} bytes, more than --unlinked-max {cap} leaves",
                meta.len()
            ))));
        }
        let mut data = vec![0u8; meta.len() as usize];
        file.read_exact_at(&mut data, 0).map_err(err)?;
        c.mode = meta.permissions().mode() & 0o7777;
        c.data = B64.encode(&data);
        // The size and mtime the resume checks the file by are the ones
        // read now, with the bytes.
        if let Some(id) = f.id.as_mut() {
            id.size = meta.len();
            id.mtime_ns = std::os::unix::fs::MetadataExt::mtime(&meta) * 1_000_000_000
                + std::os::unix::fs::MetadataExt::mtime_nsec(&meta);
        }
    }
    Ok(())
}

// Restore: made by the resume command, as the process's user, before the
// process's files are opened.

/// Makes each carried file of `files` that does not exist here, as
/// `user`: created (never over anything), its bytes written, its mode and
/// mtime set last. Returns the paths made (for [`remove`] if the resume
/// fails); what cannot be made is refused naming it.
pub fn place(files: &[File], user: &creds::FsUser) -> Result<Vec<PathBuf>, super::files::Conflict> {
    let mut made = Vec::new();
    for f in files {
        let Some(c) = &f.carried else {
            continue;
        };
        let path = PathBuf::from(&f.path);
        if fs::symlink_metadata(&path).is_ok() {
            continue; // there: checked as any file is
        }
        let what = "carried file";
        let denied = |e: io::Error| super::files::not_opened(what, &f.path, user.fsuid, e);
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
            .map_err(denied);
        if let Err(e) = result {
            remove(&made);
            return Err(e);
        }
        made.push(path);
    }
    Ok(made)
}

/// Makes `path` (which must not exist) with `bytes`, `mode` and
/// `mtime_ns`; runs as the process's user.
fn make(path: &Path, bytes: &[u8], mode: u32, mtime_ns: i64) -> io::Result<()> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let written = file
        .write_all_at(bytes, 0)
        .and_then(|()| file.set_permissions(fs::Permissions::from_mode(mode)))
        .and_then(|()| {
            file.set_modified(
                std::time::UNIX_EPOCH + std::time::Duration::from_nanos(mtime_ns.max(0) as u64),
            )
        });
    if let Err(e) = written {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

/// Removes what [`place`] made (a resume that failed after it).
pub fn remove(made: &[PathBuf]) {
    for path in made {
        let _ = fs::remove_file(path);
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
        assert_eq!(made, std::slice::from_ref(&missing));
        assert_eq!(fs::read(&missing).unwrap(), b"hello");
        let meta = fs::metadata(&missing).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(
            meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            1_700_000_000_123_456_789
        );
        assert_eq!(fs::read(&there).unwrap(), b"other", "never replaced");
        remove(&made);
        assert!(!missing.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
