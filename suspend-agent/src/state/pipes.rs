//! Self-pipes: a pipe whose every end the process holds, with what is
//! buffered in it.
//!
//! Saved: which end each fd is, from its link and flags ([`end`]); the
//! pipe's capacity and a copy of what is buffered in it, read without
//! consuming it (a copy of a read end with `pidfd_getfd`, `tee` into a
//! pipe of our own: [`read_contents`]). Refused by name, before the
//! freeze: an end opened again apart from another ([`twin_refusal`]); a
//! pipe another process holds or whose other end the process does not
//! hold ([`holder_refusal`], who holds each found by [`Holders::of`]).
//!
//! Restored: each pipe made at its lowest read end, with its lowest write
//! end, its other fds copies of those ([`plan`]); made by the restore
//! child, its capacity set and its contents written back ([`make`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::Read as _,
    os::fd::{AsFd as _, OwnedFd, RawFd},
};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};

use crate::{
    image::format::{File, PipeEnd},
    sys::{PidFd, SyscallError, pipe, raw},
};

/// The inode of a `pipe:[N]` link.
pub fn inode(link: &str) -> Option<u64> {
    link.strip_prefix("pipe:[")?.strip_suffix(']')?.parse().ok()
}

/// Which end of a pipe an fd is, from its flags: a read or a write end as
/// `pipe(2)` makes them (not read-write, not packet mode).
pub fn end(link: &str, flags: u32) -> Option<PipeEnd> {
    let id = inode(link)?;
    let write = match flags as i32 & libc::O_ACCMODE {
        libc::O_RDONLY => false,
        libc::O_WRONLY => true,
        _ => return None,
    };
    (flags as i32 & libc::O_DIRECT == 0).then(|| PipeEnd {
        id,
        write,
        size: 0,
        data: String::new(),
    })
}

/// Why pipe end `f` of `pid` cannot come back, if it is opened again
/// apart from another fd of `files` (not a dup: each with its own flags
/// and offset): it would come back as one open file dup'ed.
pub fn twin_refusal(pid: u32, f: &File, files: &[File]) -> Option<String> {
    let p = f.pipe.as_ref()?;
    let twin = files.iter().find(|o| {
        o.fd < f.fd
            && o.pipe
                .as_ref()
                .is_some_and(|q| q.id == p.id && q.write == p.write)
            && !crate::sys::same_open_file(pid, o.fd, f.fd).unwrap_or(true)
    })?;
    Some(format!(
        "fd {} ({}, opened again apart from fd {}: it would come back as a dup of it)",
        f.fd, f.path, twin.fd
    ))
}

/// Who holds the pipes an fd of the process is an end of: which it holds a
/// read end of, which a write end of, and which another process holds an
/// end of too (with one such process).
#[derive(Debug, Default)]
pub struct Holders {
    readers: BTreeSet<u64>,
    writers: BTreeSet<u64>,
    others: BTreeMap<u64, u32>,
}

impl Holders {
    /// The holders of the pipes of `files`, `pid`'s fds: every other
    /// process's fds are looked through for them (none where it has no
    /// pipe).
    pub fn of(pid: u32, files: &[File]) -> Self {
        let mut holders = Self::ends(files);
        let pipes: BTreeSet<u64> = holders.readers.union(&holders.writers).copied().collect();
        if !pipes.is_empty() {
            holders.others = others_holding(pid, &pipes);
        }
        holders
    }

    /// Which pipe each end of `files` is, held by no one else.
    fn ends(files: &[File]) -> Self {
        let ends = |write: bool| -> BTreeSet<u64> {
            files
                .iter()
                .filter_map(|f| f.pipe.as_ref())
                .filter(|p| p.write == write)
                .map(|p| p.id)
                .collect()
        };
        Self {
            readers: ends(false),
            writers: ends(true),
            others: BTreeMap::new(),
        }
    }
}

/// Which of `pipes` another process than `pid` holds, and one such process.
fn others_holding(pid: u32, pipes: &BTreeSet<u64>) -> BTreeMap<u64, u32> {
    let links = pipes.iter().map(|i| format!("pipe:[{i}]")).collect();
    let mut held = BTreeMap::new();
    for (other, _, link) in crate::procfs::others_holding(pid, &links) {
        if let Some(inode) = inode(&link) {
            held.entry(inode).or_insert(other);
        }
    }
    held
}

/// Why pipe end `f` cannot come back, if its other end is not the
/// process's or another process holds it (`holders`, [`Holders::of`]): a
/// resume makes a pipe of the process's own.
pub fn holder_refusal(f: &File, holders: &Holders) -> Option<String> {
    let p = f.pipe.as_ref()?;
    let why = if !(holders.readers.contains(&p.id) && holders.writers.contains(&p.id)) {
        ", its other end is not the process's".to_owned()
    } else {
        format!(", also held by pid {}", holders.others.get(&p.id)?)
    };
    Some(format!("fd {} ({}{why})", f.fd, f.path))
}

/// Reads what is buffered in each pipe of `files` without consuming it (a
/// copy of a read end with `pidfd_getfd`, `tee` into a pipe of our own)
/// and each pipe's capacity, into every end of it.
pub fn read_contents(pid: u32, files: &mut [File]) -> Result<(), SyscallError> {
    let pidfd = PidFd::open(pid)?;
    let mut done: BTreeMap<u64, u32> = BTreeMap::new();
    for f in files.iter_mut() {
        let fd = f.fd;
        let Some(p) = &mut f.pipe else { continue };
        if p.write || done.contains_key(&p.id) {
            continue;
        }
        let end = pidfd.get_fd(fd)?;
        let (size, data) = contents(&end)?;
        done.insert(p.id, size);
        p.size = size;
        p.data = B64.encode(&data);
    }
    for f in files.iter_mut() {
        if let Some(p) = &mut f.pipe {
            p.size = done.get(&p.id).copied().unwrap_or(p.size);
        }
    }
    Ok(())
}

/// The capacity of the pipe `end` reads from, and a copy of its contents.
fn contents(end: &OwnedFd) -> crate::sys::Result<(u32, Vec<u8>)> {
    let size = pipe::capacity(end.as_fd())?;
    let queued = crate::sys::readable_bytes(end.as_fd())?;
    if queued == 0 {
        return Ok((size, Vec::new()));
    }
    let (read, write) = pipe::make(libc::O_CLOEXEC | libc::O_NONBLOCK)?;
    // As many buffers as theirs, so tee never runs out of room.
    pipe::set_capacity(write.as_fd(), size)?;
    // The source is not consumed.
    let copied = pipe::tee(
        end.as_fd(),
        write.as_fd(),
        queued as usize,
        libc::SPLICE_F_NONBLOCK,
    )?;
    if copied != queued as usize {
        return Err(SyscallError::of("tee")(std::io::Error::other(format!(
            "{copied} of {queued} buffered bytes copied"
        ))));
    }
    let mut data = vec![0u8; queued as usize];
    let mut read = fs::File::from(read);
    let mut got = 0;
    while got < data.len() {
        match read
            .read(&mut data[got..])
            .map_err(SyscallError::of("read (pipe)"))?
        {
            0 => {
                return Err(SyscallError::of("read (pipe)")(
                    std::io::ErrorKind::UnexpectedEof,
                ));
            }
            n => got += n,
        }
    }
    Ok((size, data))
}

// Restore: planned, then made by the restore child.

/// What is made at a pipe end's fd.
#[derive(Debug, PartialEq, Eq)]
pub enum Made {
    /// A copy of the end at `from` (made before it).
    Copy { from: RawFd },
    /// The pipe, its read end here.
    Pipe(Pipe),
}

/// A pipe, its read end here (with `read_flags`) and its write end at
/// `write_fd` (with `write_flags`), `size` bytes big, with `data` in it,
/// as the restore child makes it again ([`make`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Pipe {
    pub read_flags: i32,
    pub write_fd: RawFd,
    pub write_flags: i32,
    pub size: u32,
    pub data: Vec<u8>,
}

impl super::MakeFd for Pipe {
    unsafe fn make(&self, fd: RawFd, scratch: RawFd) -> Result<(), super::Unmade> {
        let (read, write) = ((fd, self.read_flags), (self.write_fd, self.write_flags));
        // SAFETY: in the restore child, while it makes its files (the
        // caller's promise).
        if unsafe { make(scratch, read, write, self.size, &self.data) } {
            Ok(())
        } else {
            Err(super::Unmade::Open)
        }
    }
}

/// What is made at end `p` (fd `f`) of a self-pipe of `files`. Each pipe
/// is made at its lowest read end, with its lowest write end (`None` for
/// that one: made with the read end); its other fds are copies of those.
pub fn plan(files: &[File], f: &File, p: &PipeEnd) -> Result<Option<Made>, std::io::Error> {
    let first_end = |write: bool| {
        files
            .iter()
            .filter(|g| {
                g.pipe
                    .as_ref()
                    .is_some_and(|q| q.id == p.id && q.write == write)
            })
            .map(|g| g.fd)
            .min()
    };
    let (Some(read_fd), Some(write_fd)) = (first_end(false), first_end(true)) else {
        return Err(std::io::Error::other(
            "the image holds only one end of this pipe",
        ));
    };
    let first = if p.write { write_fd } else { read_fd };
    Ok(if f.fd != first {
        Some(Made::Copy { from: first })
    } else if p.write {
        None
    } else {
        let write_flags = files
            .iter()
            .find(|g| g.fd == write_fd)
            .map_or(0, |g| g.flags as i32);
        Some(Made::Pipe(Pipe {
            read_flags: f.flags as i32,
            write_fd,
            write_flags,
            size: p.size,
            data: B64.decode(&p.data).map_err(std::io::Error::other)?,
        }))
    })
}

/// Makes a pipe with its read end at `read_fd` and its write end at
/// `write_fd`, `size` bytes big, holding `data`, each end with its flags
/// (`O_NONBLOCK`, `O_CLOEXEC`), through numbers from `scratch_fd` up.
/// Returns false right after the call that failed (its errno left for the
/// child's report). Runs in the restore child: no allocation.
///
/// # Safety
/// Only in the restore child, while it makes its files.
pub unsafe fn make(
    scratch_fd: RawFd,
    (read_fd, read_flags): (RawFd, i32),
    (write_fd, write_flags): (RawFd, i32),
    size: u32,
    data: &[u8],
) -> bool {
    let mut fds = [0; 2];
    if raw::pipe(&mut fds, 0) < 0 {
        return false;
    }
    if size != 0
        && raw::pipe_capacity(fds[1]) != size as i32
        && raw::set_pipe_capacity(fds[1], size as i32) < 0
    {
        return false;
    }
    // It fits: the pipe is as big as the one it was read from.
    let mut done = 0;
    while done < data.len() {
        let n = raw::write(fds[1], &data[done..]);
        if n <= 0 {
            return false;
        }
        done += n as usize;
    }
    // Above every number still to be taken, then to their own.
    let r = raw::dup_at_least(fds[0], scratch_fd);
    let w = raw::dup_at_least(fds[1], scratch_fd);
    if r < 0 || w < 0 {
        return false;
    }
    // SAFETY: descriptors this child owns: the pipe it just made, and
    // numbers of the image's files, which nothing else here uses.
    unsafe {
        raw::close(fds[0]);
        raw::close(fds[1]);
        for (from, to, flags) in [(r, read_fd, read_flags), (w, write_fd, write_flags)] {
            if raw::dup3(from, to, flags & libc::O_CLOEXEC) < 0
                || raw::set_status_flags(to, flags & libc::O_NONBLOCK) < 0
            {
                return false;
            }
            raw::close(from);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_read_or_a_write_end_of_a_pipe_is_one() {
        let read = end("pipe:[77]", libc::O_RDONLY as u32).expect("a read end");
        assert_eq!((read.id, read.write), (77, false));
        let write = end("pipe:[77]", (libc::O_WRONLY | libc::O_NONBLOCK) as u32);
        assert_eq!(write.map(|w| w.write), Some(true));
        assert_eq!(end("pipe:[77]", libc::O_RDWR as u32), None, "a FIFO");
        assert_eq!(
            end("pipe:[77]", (libc::O_WRONLY | libc::O_DIRECT) as u32),
            None,
            "packet mode"
        );
        assert_eq!(end("pipe:[x]", 0), None);
        assert_eq!(end("/tmp/fifo", 0), None);
    }
    #[test]
    fn a_pipe_is_refused_where_its_other_end_is_not_the_processs_or_another_holds_it() {
        let end_of = |fd: i32, write: bool| File {
            pipe: end("pipe:[77]", if write { 1 } else { 0 }),
            ..File::bare(fd, crate::image::format::FileKind::Pipe, "pipe:[77]")
        };
        let (read, write) = (end_of(5, false), end_of(6, true));
        let one = Holders::ends(std::slice::from_ref(&read));
        assert_eq!(
            holder_refusal(&read, &one).as_deref(),
            Some("fd 5 (pipe:[77], its other end is not the process's)")
        );
        let mut both = Holders::ends(&[read.clone(), write.clone()]);
        assert_eq!(holder_refusal(&read, &both), None);
        both.others.insert(77, 4242);
        assert_eq!(
            holder_refusal(&write, &both).as_deref(),
            Some("fd 6 (pipe:[77], also held by pid 4242)")
        );
        let file = File::bare(7, crate::image::format::FileKind::Regular, "/tmp/x");
        assert_eq!(holder_refusal(&file, &both), None, "not a pipe");
    }
}
