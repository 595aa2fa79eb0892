//! The one place the agent makes raw system calls. Where `nix` has a
//! wrapper it is used; the rest (`pidfd_send_signal` with a `siginfo`,
//! `clone3` probing) is here with its `SAFETY` reasoning.

pub mod cpu;
pub mod creds;
mod pidfd;
pub mod probe;
pub mod sched;
mod time;

pub use creds::random;
pub use pidfd::{PidFd, SigQueueInfo};
pub use time::boottime_ns;

use std::io;

use nix::{sys::uio, unistd::Pid};

/// Writes `buf` at `addr` in process `pid` (`process_vm_writev`), whole.
pub fn write_process_memory(pid: u32, addr: u64, buf: &[u8]) -> io::Result<()> {
    let local = [io::IoSlice::new(buf)];
    let remote = [uio::RemoteIoVec {
        base: addr as usize,
        len: buf.len(),
    }];
    let n = uio::process_vm_writev(Pid::from_raw(pid as i32), &local, &remote)
        .map_err(io::Error::from)?;
    if n != buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("process_vm_writev wrote {n} of {} bytes", buf.len()),
        ));
    }
    Ok(())
}

/// Reads `buf.len()` bytes at `addr` in process `pid` (`process_vm_readv`).
/// A short read is an error: callers read small records that must be whole.
pub fn read_process_memory(pid: u32, addr: u64, buf: &mut [u8]) -> io::Result<()> {
    let len = buf.len();
    let mut local = [io::IoSliceMut::new(buf)];
    let remote = [uio::RemoteIoVec {
        base: addr as usize,
        len,
    }];
    let n = uio::process_vm_readv(Pid::from_raw(pid as i32), &mut local, &remote)
        .map_err(io::Error::from)?;
    if n != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("process_vm_readv read {n} of {len} bytes"),
        ));
    }
    Ok(())
}
