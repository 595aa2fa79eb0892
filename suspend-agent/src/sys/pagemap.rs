//! `PAGEMAP_SCAN` (Linux 6.7): an ioctl on `/proc/PID/pagemap` that says,
//! for a range of the process's memory, which pages are in which
//! categories (present, written since write-protected, …), merged into
//! regions, and optionally write-protects the matching pages in the same
//! walk, page by page: a page written after its check is seen by the next
//! scan, never lost between the two.

use std::os::fd::{AsRawFd as _, BorrowedFd};

use super::{Result, SyscallError};

/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: u64 = (3 << 30) | ((size_of::<ScanArg>() as u64) << 16) | (0x66 << 8) | 16;

/// The page is registered for asynchronous write-protection.
pub const IS_WPALLOWED: u64 = 1 << 0;
/// Written since it was last write-protected (or never protected).
pub const IS_WRITTEN: u64 = 1 << 1;
pub const IS_PRESENT: u64 = 1 << 3;
pub const IS_SWAPPED: u64 = 1 << 4;

/// `struct pm_scan_arg`.
#[repr(C)]
#[derive(Default)]
struct ScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `struct page_region`: `[start, end)` and its categories (those of the
/// return mask).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub categories: u64,
}

/// What to ask of a scan.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ask {
    /// [`WP_MATCHING`], [`CHECK_WPASYNC`].
    pub flags: u64,
    /// Only pages with all of these categories…
    pub all_of: u64,
    /// …and any of these (0: no such condition) match.
    pub any_of: u64,
    /// The categories each region reports.
    pub report: u64,
}

/// Scans `[start, end)` of the process whose pagemap is `pagemap`, and
/// appends the regions of matching pages to `out` (as many calls as it
/// takes).
pub fn scan(
    pagemap: BorrowedFd<'_>,
    start: u64,
    end: u64,
    ask: Ask,
    out: &mut Vec<Region>,
) -> Result<()> {
    let mut buf = vec![Region::default(); 1024];
    let mut from = start;
    // The end of what this call has listed so far.
    let mut listed = start;
    while from < end {
        let mut arg = ScanArg {
            size: size_of::<ScanArg>() as u64,
            flags: ask.flags,
            start: from,
            end,
            vec: buf.as_mut_ptr() as u64,
            vec_len: buf.len() as u64,
            category_mask: ask.all_of,
            category_anyof_mask: ask.any_of,
            return_mask: ask.report,
            ..ScanArg::default()
        };
        // SAFETY: the kernel reads the argument (sized by its `size`) and
        // writes at most `vec_len` regions into `buf`, which outlives the
        // call, and `walk_end` into the argument.
        let n = unsafe {
            libc::ioctl(
                pagemap.as_raw_fd(),
                PAGEMAP_SCAN as _,
                std::ptr::from_mut(&mut arg),
            )
        };
        if n < 0 {
            return Err(SyscallError::last("PAGEMAP_SCAN"));
        }
        // Regions come in address order. One that begins before the end
        // of what was already listed (a walk taken up again from a
        // `walk_end` the kernel left behind) is cut to what is new, so
        // no page is listed twice.
        for r in &buf[..n as usize] {
            if r.end > listed {
                out.push(Region {
                    start: r.start.max(listed),
                    ..*r
                });
                listed = r.end;
            }
        }
        // A buffer not filled: the walk reached `end` (its `walk_end`
        // is then not always updated).
        if (n as usize) < buf.len() || arg.walk_end <= from {
            break; // (no progress: never loop for ever)
        }
        from = arg.walk_end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ioctl_number_is_the_kernels() {
        // <linux/fs.h> of Linux 6.7 as the C compiler expands it.
        assert_eq!(size_of::<ScanArg>(), 96);
        assert_eq!(PAGEMAP_SCAN, 0xc060_6610);
        assert_eq!(size_of::<Region>(), 24);
    }
}
