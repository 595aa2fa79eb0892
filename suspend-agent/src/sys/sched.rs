//! A thread's scheduling, read from outside: `sched_getattr` (policy,
//! flags, nice, priority, deadline parameters) and `sched_getaffinity`.

use super::{Result, SyscallError};

/// `struct sched_attr` as of `SCHED_ATTR_SIZE_VER1` (56 bytes: with the
/// utilization clamps).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

const _: () = assert!(size_of::<SchedAttr>() == 56);

/// `SCHED_ATTR_SIZE_VER0`: the size without the clamps.
pub const SIZE_VER0: u32 = 48;
/// `SCHED_FLAG_UTIL_CLAMP_MIN | SCHED_FLAG_UTIL_CLAMP_MAX`.
pub const FLAG_UTIL_CLAMP: u64 = 0x20 | 0x40;
/// A task's clamps when none was asked for: (0, `SCHED_CAPACITY_SCALE`),
/// and for a real-time one the minimum the kernel gives those
/// (`sched_util_clamp_min_rt_default`).
pub fn util_default(policy: u32) -> (u32, u32) {
    const SCHED_FIFO: u32 = 1;
    const SCHED_RR: u32 = 2;
    if matches!(policy, SCHED_FIFO | SCHED_RR) {
        let rt_min = std::fs::read_to_string("/proc/sys/kernel/sched_util_clamp_min_rt_default")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1024);
        return (rt_min, 1024);
    }
    (0, 1024)
}

/// Whether this kernel clamps utilization (`CONFIG_UCLAMP_TASK`).
pub fn has_util_clamp() -> bool {
    std::path::Path::new("/proc/sys/kernel/sched_util_clamp_max").exists()
}

/// Thread `tid`'s scheduling attributes.
pub fn attr(tid: u32) -> Result<SchedAttr> {
    let mut attr = SchedAttr::default();
    // SAFETY: the kernel writes at most `size` (56) bytes into `attr`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            tid as libc::pid_t,
            &raw mut attr,
            size_of::<SchedAttr>() as u32,
            0u32,
        )
    };
    if rc < 0 {
        return Err(SyscallError::last("sched_getattr"));
    }
    Ok(attr)
}

/// `IOPRIO_WHO_PROCESS`: `ioprio_get`/`ioprio_set` of one thread.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;

/// Thread `tid`'s I/O priority (`ioprio_get`: class << 13 | data).
pub fn ioprio(tid: u32) -> Result<u32> {
    // SAFETY: ioprio_get takes two ints and touches no memory.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid as libc::c_int) };
    if rc < 0 {
        return Err(SyscallError::last("ioprio_get"));
    }
    Ok(rc as u32)
}

/// Sets thread `tid`'s I/O priority (`ioprio_set`).
pub fn set_ioprio(tid: u32, prio: u32) -> Result<()> {
    // SAFETY: ioprio_set takes three ints and touches no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            tid as libc::c_int,
            prio as libc::c_int,
        )
    };
    if rc < 0 {
        return Err(SyscallError::last("ioprio_set"));
    }
    Ok(())
}

/// Thread `tid`'s CPU mask (`0` for the calling thread), as many 64-bit
/// words as the kernel's CPU mask needs.
pub fn affinity(tid: u32) -> Result<Vec<u64>> {
    let mut words = vec![0u64; 16]; // 1024 CPUs, then more if needed
    loop {
        // SAFETY: the kernel writes at most the given length into `words`.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_sched_getaffinity,
                tid as libc::pid_t,
                words.len() * 8,
                words.as_mut_ptr(),
            )
        };
        if rc >= 0 {
            words.truncate((rc as usize).div_ceil(8));
            return Ok(words);
        }
        let e = SyscallError::last("sched_getaffinity");
        if e.raw_os_error() != Some(libc::EINVAL) || words.len() >= 1 << 14 {
            return Err(e);
        }
        words.resize(words.len() * 2, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_thread_can_run_somewhere() {
        let mask = affinity(0).expect("affinity");
        assert!(mask.iter().any(|w| *w != 0), "{mask:?}");
        let me = nix::unistd::gettid().as_raw() as u32;
        let attr = attr(me).expect("sched_getattr");
        assert_eq!(attr.size, 56);
    }
}
