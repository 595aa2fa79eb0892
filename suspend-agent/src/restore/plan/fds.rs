//! The helper descriptors: every file the restore child needs besides the
//! image's own fds — what it puts at their numbers, maps, changes into,
//! reports on — is moved above the image's highest fd (and stdio), so that
//! putting an image fd at its number never closes one still needed. The
//! numbers above the last helper are the child's scratch while it makes
//! files.

use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd, RawFd};

use super::{prepare_call_err, prepare_err};
use crate::{image::format::File, restore::RestoreError};

/// The helper descriptors, each above every fd of the image.
#[derive(Debug)]
pub struct Helpers {
    /// The lowest number a helper may have.
    min: RawFd,
    fds: Vec<OwnedFd>,
}

impl Helpers {
    /// None yet; those to come go above every fd in `files`, and stdio.
    pub fn above(files: &[File]) -> Self {
        Self {
            min: lowest_above(files),
            fds: Vec::new(),
        }
    }

    /// Moves `fd` above the image's fds and keeps it; its new number.
    pub fn add(&mut self, fd: OwnedFd) -> Result<RawFd, RestoreError> {
        let fd = self.lift(fd)?;
        let raw = fd.as_raw_fd();
        self.fds.push(fd);
        Ok(raw)
    }

    /// Moves `fd` above the image's fds, for the caller to keep.
    pub fn lift(&self, fd: OwnedFd) -> Result<OwnedFd, RestoreError> {
        crate::sys::fd::dup_at_least(fd.as_fd(), self.min)
            .map_err(prepare_call_err("moving a descriptor"))
    }

    /// The first number above every helper (and the image's fds): free
    /// scratch for the child.
    pub fn scratch(&self) -> RawFd {
        first_free(self.fds.iter().map(|h| h.as_raw_fd()), self.min)
    }

    pub fn into_fds(self) -> Vec<OwnedFd> {
        self.fds
    }
}

/// The pipe the stub reports on: its read end, for the agent (above the
/// image's fds, but no helper: the child closes it with every other
/// descriptor of the agent's), and its write end, a helper.
pub fn report_pipe(helpers: &mut Helpers) -> Result<(OwnedFd, RawFd), RestoreError> {
    let (read, write) = nix::unistd::pipe().map_err(|e| prepare_err("pipe")(e.into()))?;
    let read = helpers.lift(read)?;
    let write = helpers.add(write)?;
    Ok((read, write))
}

/// The lowest number above every fd in `files`, and never stdio.
fn lowest_above(files: &[File]) -> RawFd {
    files.iter().map(|f| f.fd + 1).max().unwrap_or(3).max(3)
}

/// The number above the highest of `taken`, at least `min`.
fn first_free(taken: impl Iterator<Item = RawFd>, min: RawFd) -> RawFd {
    taken.map(|fd| fd + 1).max().unwrap_or(min).max(min)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd as _;

    use super::{Helpers, first_free, lowest_above};
    use crate::state::fixtures::file;

    #[test]
    fn helpers_start_above_the_highest_image_fd_and_never_at_stdio() {
        assert_eq!(lowest_above(&[]), 3);
        assert_eq!(lowest_above(&[file(0), file(1)]), 3);
        assert_eq!(lowest_above(&[file(0), file(9), file(4)]), 10);
    }

    #[test]
    fn scratch_starts_above_the_last_helper() {
        assert_eq!(first_free([].into_iter(), 5), 5);
        assert_eq!(first_free([7, 12, 9].into_iter(), 5), 13);
        assert_eq!(first_free([3].into_iter(), 5), 5);
    }

    #[test]
    fn helpers_are_moved_above_the_image_and_closed_on_exec() {
        let mut helpers = Helpers::above(&[file(0), file(1), file(2), file(40)]);
        let mut numbers = Vec::new();
        for _ in 0..2 {
            let null = std::fs::File::open("/dev/null").expect("/dev/null");
            numbers.push(helpers.add(null.into()).expect("a helper"));
        }
        assert!(numbers.iter().all(|&fd| fd > 40), "{numbers:?}");
        assert_ne!(numbers[0], numbers[1]);
        assert!(helpers.scratch() > numbers[0].max(numbers[1]));
        let (read, write) = super::report_pipe(&mut helpers).expect("the report pipe");
        assert!(read.as_raw_fd() > 40 && write > 40);
        let fds = helpers.into_fds();
        assert_eq!(fds.len(), 3, "the read end of the report pipe is no helper");
        for fd in &fds {
            let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).expect("F_GETFD");
            assert_ne!(flags & libc::FD_CLOEXEC, 0, "fd {}", fd.as_raw_fd());
        }
    }
}
