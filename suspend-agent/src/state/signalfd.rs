//! signalfds: the signals each one reads.
//!
//! Saved: `sigmask:` of the fdinfo ([`parse`]). Restored: made again by
//! the restore child with that mask ([`make`]; the flags a new one takes:
//! [`super::CREATE_FLAGS`]).

use std::os::fd::RawFd;

use crate::sys::raw;

/// What a signalfd links to.
pub const LINK: &str = "anon_inode:[signalfd]";

/// `sigmask:` (hex) of a signalfd's fdinfo.
pub fn parse(text: &str) -> Option<u64> {
    let v = text.lines().find_map(|l| l.strip_prefix("sigmask:"))?;
    u64::from_str_radix(v.trim(), 16).ok()
}

// Restore: made again by the restore child.

/// `signalfd4(-1, mask, flags)`: the new fd, or -1 (errno left for the
/// child's report). Runs in the restore child: no allocation.
pub fn make(mask: &u64, flags: i32) -> RawFd {
    raw::signalfd(mask, flags)
}

/// `signalfd4(-1, mask, flags)`, as the restore child makes it again
/// ([`make`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Made {
    pub mask: u64,
    pub flags: i32,
}

/// A signalfd on `mask`, with status flags `flags`.
pub fn plan(mask: u64, flags: i32) -> Made {
    Made {
        mask,
        flags: flags & super::CREATE_FLAGS,
    }
}

impl super::MakeFd for Made {
    unsafe fn make(&self, fd: RawFd, _scratch: RawFd) -> Result<(), super::Unmade> {
        // SAFETY: in the restore child (the caller's promise).
        unsafe { super::place(make(&self.mask, self.flags), fd, self.flags) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fdinfo_gives_the_mask() {
        let text =
            "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\nsigmask:\t0000000000000200\n";
        assert_eq!(parse(text), Some(0x200));
    }
}
