//! The client block: one page of a memfd named `suspend-client`, mapped
//! shared with `MADV_DONTFORK` (a child never inherits it), holding a
//! [`ClientBlock`]. The agent finds it in `/proc/PID/maps` and reads it; that
//! is how a registration made while no agent ran is picked up, and how the
//! agent learns the token without anyone else seeing it.

use std::sync::atomic::Ordering;

use suspend_common::{
    ABI_VERSION,
    client_block::{CLIENT_BLOCK_MAGIC, ClientBlock},
    paths::CLIENT_MEMFD_NAME_C,
};

use crate::{api::Error, state::STATE, sys};

const PAGE: usize = 4096;
/// `MFD_NOEXEC_SEAL` (Linux 6.3): without it newer kernels log a warning.
const MFD_NOEXEC_SEAL: libc::c_uint = 0x0008;

fn os(call: &'static str) -> Error {
    Error::Os {
        call,
        errno: sys::errno(),
    }
}

/// The block of this process, mapped on first use.
fn map() -> Result<*mut ClientBlock, Error> {
    if STATE.block_pid.load(Ordering::Acquire) == sys::getpid() {
        return Ok(STATE.block.load(Ordering::Acquire));
    }
    let name = CLIENT_MEMFD_NAME_C.as_ptr().cast();
    // SAFETY: memfd_create with a NUL-terminated name and flags.
    let mut fd = unsafe { libc::memfd_create(name, libc::MFD_CLOEXEC | MFD_NOEXEC_SEAL) };
    if fd < 0 && sys::errno() == libc::EINVAL {
        // SAFETY: as above, for kernels before 6.3.
        fd = unsafe { libc::memfd_create(name, libc::MFD_CLOEXEC) };
    }
    if fd < 0 {
        return Err(os("memfd_create"));
    }
    let result = (|| {
        // SAFETY: ftruncate on the fd we just created.
        if unsafe { libc::ftruncate(fd, PAGE as libc::off_t) } < 0 {
            return Err(os("ftruncate"));
        }
        // SAFETY: a fresh shared mapping of our own memfd; no existing memory
        // is affected.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(os("mmap"));
        }
        // SAFETY: advising the page we just mapped.
        if unsafe { libc::madvise(addr, PAGE, libc::MADV_DONTFORK) } < 0 {
            let err = os("madvise(MADV_DONTFORK)");
            // SAFETY: unmapping the page we mapped above.
            unsafe { libc::munmap(addr, PAGE) };
            return Err(err);
        }
        Ok(addr.cast::<ClientBlock>())
    })();
    // SAFETY: the mapping keeps the memfd alive; the fd is no longer needed
    // (and must not linger in the process's fd table).
    unsafe { libc::close(fd) };
    let block = result?;
    STATE.block.store(block, Ordering::Release);
    STATE.block_pid.store(sys::getpid(), Ordering::Release);
    Ok(block)
}

/// Fills in the block for a new registration; returns its address.
pub fn publish(
    token: u64,
    suspend_signal: i32,
    resume_signal: i32,
    context: u32,
    handler: usize,
    resume_handler: usize,
) -> Result<u64, Error> {
    let block = map()?;
    let value = ClientBlock {
        magic: CLIENT_BLOCK_MAGIC,
        abi_version: ABI_VERSION,
        pid: sys::getpid() as u32,
        token,
        suspend_signal: suspend_signal as u32,
        resume_signal: resume_signal as u32,
        context,
        active: 1,
        handler_addr: handler as u64,
        resume_handler_addr: resume_handler as u64,
        registered_ns: sys::boottime_ns(),
        parked_tid: 0,
        _pad: 0,
        trampoline: suspend_common::trampoline::entry() as u64,
    };
    // SAFETY: `block` points at our writable page, large enough and aligned
    // (page-aligned) for a ClientBlock.
    unsafe { block.write_volatile(value) };
    Ok(block as u64)
}

/// Marks the block inactive (after `unregister`).
pub fn deactivate() {
    if let Some(block) = STATE.block() {
        let ptr = (&raw const block.active).cast_mut();
        // SAFETY: our own writable page; see `State::set_parked_tid`.
        unsafe { ptr.write_volatile(0) };
    }
}
