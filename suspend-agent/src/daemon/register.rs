//! Turning a client's block into a registry entry. The block lives in the
//! client's own memory, so reading it at the address the client (or its
//! `/proc/PID/maps`) names proves the registration came from that process.

use suspend_common::{
    ABI_VERSION, MAX_SIGNAL, MIN_SIGNAL,
    client_block::{CLIENT_BLOCK_MAGIC, ClientBlock},
    registry::{Registration, STATE_REGISTERED, STATE_UNUSABLE},
};

use crate::{
    procfs::{self, ProcError},
    registry::RegistryError,
    sys,
};

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("pid {pid}: reading the client block at {addr:#x}: {source}")]
    ReadBlock {
        pid: u32,
        addr: u64,
        source: crate::sys::SyscallError,
    },
    #[error("pid {pid}: no client block at {addr:#x} (bad magic)")]
    BadMagic { pid: u32, addr: u64 },
    #[error("pid {pid}: client ABI version {found}, agent has {ABI_VERSION}")]
    Abi { pid: u32, found: u32 },
    #[error("pid {pid}: the client block belongs to pid {owner} (inherited over fork?)")]
    WrongOwner { pid: u32, owner: u32 },
    #[error("pid {pid}: the client unregistered")]
    Inactive { pid: u32 },
    #[error(
        "pid {pid}: signals {suspend}/{resume} are not distinct real-time signals in {MIN_SIGNAL}..={MAX_SIGNAL}"
    )]
    BadSignals { pid: u32, suspend: u32, resume: u32 },
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Reads and checks the client block of `pid` at `addr`.
pub fn read_block(pid: u32, addr: u64) -> Result<ClientBlock, RegisterError> {
    let mut block = ClientBlock::default();
    // SAFETY: `ClientBlock` is repr(C) plain data with no padding; any bytes
    // are a valid value; the slice covers exactly the struct.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut((&raw mut block).cast::<u8>(), size_of::<ClientBlock>())
    };
    sys::read_process_memory(pid, addr, bytes).map_err(|source| RegisterError::ReadBlock {
        pid,
        addr,
        source,
    })?;
    if block.magic != CLIENT_BLOCK_MAGIC {
        return Err(RegisterError::BadMagic { pid, addr });
    }
    if block.abi_version != ABI_VERSION {
        return Err(RegisterError::Abi {
            pid,
            found: block.abi_version,
        });
    }
    if block.pid != pid {
        return Err(RegisterError::WrongOwner {
            pid,
            owner: block.pid,
        });
    }
    if block.active == 0 {
        return Err(RegisterError::Inactive { pid });
    }
    let valid = |s: u32| (MIN_SIGNAL..=MAX_SIGNAL).contains(&s);
    if !valid(block.suspend_signal)
        || !valid(block.resume_signal)
        || block.suspend_signal == block.resume_signal
    {
        return Err(RegisterError::BadSignals {
            pid,
            suspend: block.suspend_signal,
            resume: block.resume_signal,
        });
    }
    Ok(block)
}

/// The registry entry for `pid` whose block is at `addr`.
pub fn entry_for(pid: u32, addr: u64) -> Result<Registration, RegisterError> {
    let block = read_block(pid, addr)?;
    let status = procfs::status(pid)?;
    let start_time = procfs::start_time(pid)?;
    let state = if status.catches(block.suspend_signal) && status.catches(block.resume_signal) {
        STATE_REGISTERED
    } else {
        STATE_UNUSABLE
    };
    Ok(Registration {
        pid,
        uid: status.uid,
        state,
        suspend_signal: block.suspend_signal,
        resume_signal: block.resume_signal,
        context: block.context,
        abi_version: block.abi_version,
        handler_resets: 0,
        registered_ns: sys::boottime_ns(),
        start_time,
        block_addr: addr,
        handler_addr: block.handler_addr,
        ..Registration::default()
    })
}
