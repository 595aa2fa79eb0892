//! Descriptors of this process: opened, moved, asked about.

use std::{
    ffi::CString,
    io::{self, IoSlice},
    os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd, RawFd},
    path::Path,
};

use super::{Result, SyscallError};

/// Opens `path` (`open` with `flags`, and `mode` for a file it creates).
pub fn open(path: &Path, flags: i32, mode: u32) -> Result<OwnedFd> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| SyscallError::of("open")(io::ErrorKind::InvalidInput))?;
    // SAFETY: open with a valid C string; the descriptor is ours.
    let fd = unsafe { libc::open(cpath.as_ptr(), flags, mode as libc::c_uint) };
    if fd < 0 {
        return Err(SyscallError::last("open"));
    }
    // SAFETY: a descriptor open just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `dir`, a directory of the agent's own under
/// [`RUN_DIR`](suspend_common::paths::RUN_DIR), mode 0700 (nothing if it
/// exists). The run directory itself, if missing, is made 0755: every
/// user's process connects to the client socket in it. (A recursive
/// `DirBuilder` gives the parents the child's mode: a `receive` or a
/// resume before the daemon's first start made it 0700, and no process
/// but root's could register until a reboot.)
pub fn make_run_subdir(dir: &Path) -> io::Result<()> {
    make_subdir(Path::new(suspend_common::paths::RUN_DIR), dir)
}

/// [`make_run_subdir`] with the run directory `run`.
fn make_subdir(run: &Path, dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    for (path, mode) in [(run, 0o755), (dir, 0o700)] {
        match std::fs::DirBuilder::new().mode(mode).create(path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// A copy of `fd` at the lowest free number from `min` up, close-on-exec
/// (`F_DUPFD_CLOEXEC`).
pub fn dup_at_least(fd: BorrowedFd<'_>, min: RawFd) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer, no pointer.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if new < 0 {
        return Err(SyscallError::last("F_DUPFD_CLOEXEC"));
    }
    // SAFETY: `new` was just returned by F_DUPFD and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// What `fstat` says of the file `fd` refers to.
pub fn stat(fd: BorrowedFd<'_>) -> Result<libc::stat> {
    // SAFETY: a zeroed `struct stat` is a valid value (plain integers).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one struct stat.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(SyscallError::last("fstat"));
    }
    Ok(st)
}

/// `lseek` of `fd` to `offset` with `whence` (`SEEK_SET`, `SEEK_DATA`,
/// `SEEK_HOLE`, …): the offset it lands on.
pub fn seek(fd: BorrowedFd<'_>, offset: u64, whence: libc::c_int) -> Result<u64> {
    // SAFETY: lseek takes no memory.
    let rc = unsafe { libc::lseek(fd.as_raw_fd(), offset as libc::off_t, whence) };
    if rc < 0 {
        return Err(SyscallError::last("lseek"));
    }
    Ok(rc as u64)
}

/// `pwritev` takes at most this many iovecs (`IOV_MAX`).
pub const IOV_MAX: usize = 1024;

/// Writes `bufs`, one after the other, at `offset` of `fd`: `pwritev` of
/// at most [`IOV_MAX`] of them at a time, a short write resumed where it
/// stopped (inside a buffer too), `EINTR` retried. Nothing is copied.
pub fn write_all_vectored_at(fd: BorrowedFd<'_>, bufs: &[&[u8]], offset: u64) -> Result<()> {
    let (mut bufs, mut offset) = (bufs, offset);
    // Bytes of `bufs[0]` already written.
    let mut skip = 0;
    let mut iovs: Vec<IoSlice<'_>> = Vec::with_capacity(bufs.len().min(IOV_MAX));
    loop {
        while bufs.first().is_some_and(|b| b.len() == skip) {
            bufs = &bufs[1..];
            skip = 0;
        }
        if bufs.is_empty() {
            return Ok(());
        }
        iovs.clear();
        iovs.push(IoSlice::new(&bufs[0][skip..]));
        iovs.extend(bufs[1..].iter().take(IOV_MAX - 1).map(|b| IoSlice::new(b)));
        let n = match nix::sys::uio::pwritev(fd, &iovs, offset as libc::off_t) {
            Ok(0) => {
                return Err(SyscallError::of("pwritev")(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("wrote nothing at {offset}"),
                )));
            }
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(SyscallError::of("pwritev")(e)),
        };
        offset += n as u64;
        let mut left = n;
        while left > 0 {
            let rest = bufs[0].len() - skip;
            if left < rest {
                skip += left;
                break;
            }
            left -= rest;
            bufs = &bufs[1..];
            skip = 0;
        }
    }
}

/// For unit tests: a new file, read and write, made as
/// `suspend-NAME-PID` in the temporary directory and unlinked at once, and
/// the name it had (for messages).
#[cfg(test)]
pub fn scratch_file(name: &str) -> (std::fs::File, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("suspend-{name}-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("a scratch file");
    let _ = std::fs::remove_file(&path);
    (file, path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_run_subdir_leaves_its_parent_open_to_every_user() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_, scratch) = super::scratch_file("run-subdir"); // a free name
        let run = scratch.with_extension("run");
        let held = run.join("held");
        let mode = |p: &super::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        super::make_subdir(&run, &held).unwrap();
        assert_eq!(mode(&run), 0o755, "the run directory");
        assert_eq!(mode(&held), 0o700, "the agent's own directory in it");
        super::make_subdir(&run, &held).unwrap(); // both there: nothing to do
        std::fs::remove_dir_all(&run).unwrap();
    }
    use std::os::{fd::AsFd as _, unix::fs::MetadataExt as _};

    use super::*;

    #[test]
    fn a_descriptor_moved_up_is_the_same_file() {
        let dir = std::env::temp_dir().join(format!("suspend-sys-fd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("file");
        let fd = open(
            &path,
            libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
            0o600,
        )
        .expect("open");
        let meta = std::fs::metadata(&path).expect("stat");
        assert_eq!(meta.mode() & 0o777, 0o600);
        let up = dup_at_least(fd.as_fd(), 200).expect("F_DUPFD_CLOEXEC");
        assert!(up.as_raw_fd() >= 200);
        let st = stat(up.as_fd()).expect("fstat");
        assert_eq!((st.st_dev, st.st_ino), (meta.dev(), meta.ino()));
        assert_eq!(seek(up.as_fd(), 5, libc::SEEK_SET).expect("lseek"), 5);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn buffers_written_together_read_back_in_order_past_iov_max() {
        use std::os::unix::fs::FileExt as _;
        let path = std::env::temp_dir().join(format!("suspend-sys-pwritev-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("a scratch file");
        let read_only = std::fs::File::open(&path).expect("open");
        let _ = std::fs::remove_file(&path);
        // More buffers than one pwritev takes, of all sizes, some empty.
        let owned: Vec<Vec<u8>> = (0..2 * IOV_MAX + 7)
            .map(|i| vec![(i % 251) as u8; (i * 37) % 300])
            .collect();
        let bufs: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        write_all_vectored_at(file.as_fd(), &bufs, 100).expect("pwritev");
        let whole = owned.concat();
        let mut back = vec![0u8; whole.len()];
        file.read_exact_at(&mut back, 100).expect("read back");
        assert!(back == whole);
        assert_eq!(
            file.metadata().expect("stat").len(),
            100 + whole.len() as u64
        );
        write_all_vectored_at(file.as_fd(), &[], 0).expect("nothing to write");
        // A descriptor not open for writing: the call is named.
        let e = write_all_vectored_at(read_only.as_fd(), &[b"x"], 0).expect_err("read-only");
        assert_eq!((e.call, e.raw_os_error()), ("pwritev", Some(libc::EBADF)));
    }
}
