//! Clocks.

use nix::time::{ClockId, clock_gettime};

/// `CLOCK_BOOTTIME` in nanoseconds: the clock the eBPF programs use
/// (`bpf_ktime_get_boot_ns`).
pub fn boottime_ns() -> u64 {
    match clock_gettime(ClockId::CLOCK_BOOTTIME) {
        Ok(ts) => ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64,
        Err(_) => 0,
    }
}

/// Clock `clockid` (a `CLOCK_*` number) in nanoseconds, `None` for a clock
/// that cannot be read.
pub fn clock_ns(clockid: i32) -> Option<u64> {
    let ts = clock_gettime(ClockId::from_raw(clockid)).ok()?;
    Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
}
