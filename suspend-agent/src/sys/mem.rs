//! This process's own address space: the restore reserves its zone,
//! maps the stub and every prepared mapping over it, and lets it go here.

use std::os::fd::RawFd;

use super::{Result, SyscallError};

/// Reserves `len` bytes at `base`: a new `PROT_NONE`, `MAP_NORESERVE`
/// anonymous mapping, `MAP_FIXED_NOREPLACE` (it fails rather than replace
/// anything, so nothing that was there is touched).
pub fn reserve(base: u64, len: u64) -> Result<()> {
    // SAFETY: MAP_FIXED_NOREPLACE makes a new mapping or fails; it never
    // replaces memory anything refers to.
    let got = unsafe {
        libc::mmap(
            base as *mut libc::c_void,
            len as usize,
            libc::PROT_NONE,
            libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_NORESERVE
                | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    placed(got, base, len)
}

/// Whether the reservation `reserve` asked at `base` is there: `got` is
/// what `mmap` returned. A kernel that does not know
/// `MAP_FIXED_NOREPLACE` (before 4.17) takes `base` as a mere hint and
/// may map elsewhere, failing nothing: that mapping is let go, and the
/// error says so (the errno is none of that `mmap`'s).
fn placed(got: *mut libc::c_void, base: u64, len: u64) -> Result<()> {
    if got == libc::MAP_FAILED {
        return Err(SyscallError::last("mmap"));
    }
    if got as u64 != base {
        // SAFETY: the mapping was made just now, by `reserve`, and
        // nothing refers to it.
        unsafe { libc::munmap(got, len as usize) };
        return Err(SyscallError {
            call: "mmap",
            source: std::io::Error::other(format!(
                "MAP_FIXED_NOREPLACE at {base:#x} mapped {:#x} instead (a kernel before 4.17 \
                 takes it as a hint)",
                got as u64
            )),
        });
    }
    Ok(())
}

/// Maps `len` bytes at `addr` with `prot` and `flags` (`MAP_FIXED` is
/// added: whatever was there is replaced): of `fd` from `offset`, or
/// anonymous with `fd` -1 and `MAP_ANONYMOUS` among `flags`.
///
/// # Safety
/// Nothing in this process refers to what `addr..addr + len` holds now
/// (in the restore: a part of its own reserved zone).
pub unsafe fn map_fixed(
    addr: u64,
    len: u64,
    prot: i32,
    flags: i32,
    fd: RawFd,
    offset: u64,
) -> Result<()> {
    // SAFETY: the caller vouches for the range; the kernel checks `fd`.
    let got = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len as usize,
            prot,
            flags | libc::MAP_FIXED,
            fd,
            offset as libc::off_t,
        )
    };
    if got == libc::MAP_FAILED {
        return Err(SyscallError::last("mmap"));
    }
    Ok(())
}

/// Sets the protection of `len` bytes of this process's memory at `addr`
/// (`mprotect`).
///
/// # Safety
/// Nothing in this process reads, writes or runs the range in a way
/// `prot` no longer allows.
pub unsafe fn protect(addr: u64, len: u64, prot: i32) -> Result<()> {
    // SAFETY: the caller vouches for the range.
    if unsafe { libc::mprotect(addr as *mut libc::c_void, len as usize, prot) } < 0 {
        return Err(SyscallError::last("mprotect"));
    }
    Ok(())
}

/// Unmaps `len` bytes of this process's memory at `addr` (`munmap`).
///
/// # Safety
/// Nothing in this process refers to the range any more.
pub unsafe fn unmap(addr: u64, len: u64) -> Result<()> {
    // SAFETY: the caller vouches for the range.
    if unsafe { libc::munmap(addr as *mut libc::c_void, len as usize) } < 0 {
        return Err(SyscallError::last("munmap"));
    }
    Ok(())
}

/// Makes the `len` bytes of this process's memory at `addr` (page-aligned,
/// mapped writable) resident and writable in one call
/// (`MADV_POPULATE_WRITE`, Linux 5.14): what a write to each page would do,
/// without a fault per page. Before 5.14: `EINVAL`. Only the page-reading
/// benchmark uses it: populating is barely cheaper than the faults here.
#[cfg(test)]
pub fn populate_write(addr: u64, len: u64) -> Result<()> {
    // SAFETY: populating changes no contents: a page that is not there is
    // made as the first write would make it (zeros for anonymous memory).
    let r = unsafe {
        libc::madvise(
            addr as *mut libc::c_void,
            len as usize,
            libc::MADV_POPULATE_WRITE,
        )
    };
    if r != 0 {
        return Err(SyscallError::last("MADV_POPULATE_WRITE"));
    }
    Ok(())
}

/// Which of the pages at `addr` (`len` bytes, page-aligned, mapped) are
/// resident (`mincore`), one `bool` a page.
#[cfg(test)]
pub fn resident(addr: u64, len: u64) -> Result<Vec<bool>> {
    let mut vec = vec![0u8; len.div_ceil(4096) as usize];
    // SAFETY: `mincore` only reads the page tables of the range and writes
    // one byte a page into `vec`, which has room for each.
    let r = unsafe { libc::mincore(addr as *mut libc::c_void, len as usize, vec.as_mut_ptr()) };
    if r != 0 {
        return Err(SyscallError::last("mincore"));
    }
    Ok(vec.iter().map(|b| b & 1 == 1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_put_elsewhere_is_undone_and_said_so() {
        // What a kernel that ignores MAP_FIXED_NOREPLACE (before 4.17)
        // makes of the hint: a mapping where it chose. Made here at an
        // address far below where this process's other mappings go, so
        // that nothing else takes it once it is let go.
        let (elsewhere, len) = (0x2a5a_0000_0000_u64, 4 * 4096);
        reserve(elsewhere, len).expect("a free range");
        // An errno an earlier call left.
        // SAFETY: the calling thread's own errno.
        unsafe { *libc::__errno_location() = libc::ENOENT };
        let asked = elsewhere + (1 << 30);
        let e = placed(elsewhere as *mut libc::c_void, asked, len).expect_err("elsewhere");
        assert_eq!(e.call, "mmap");
        assert_ne!(e.raw_os_error(), Some(libc::ENOENT), "a stale errno: {e}");
        assert!(
            e.to_string().contains(&format!("{elsewhere:#x}"))
                && e.to_string().contains(&format!("{asked:#x}")),
            "{e}"
        );
        // Let go: the range can be reserved again.
        let again = reserve(elsewhere, len);
        // SAFETY: the range is this test's own reservation.
        let _ = unsafe { unmap(elsewhere, len) };
        again.expect("the mapping put elsewhere is gone");
    }
}
