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
    if got == libc::MAP_FAILED || got as u64 != base {
        return Err(SyscallError::last("mmap"));
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
