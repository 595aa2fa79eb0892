//! How much the longest tests do: all of it on the host, less in the
//! `cargo xtask vm-test` guests, whose init script sets these variables.

use std::{str::FromStr, time::Duration};

/// `$name` parsed, or `default` when it is unset or not a `T`.
fn setting<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seconds a long hold lasts: 30, or `SUSPEND_LONG_HOLD_S` (the vm-test
/// guests hold for less).
pub fn long_hold() -> Duration {
    Duration::from_secs(setting("SUSPEND_LONG_HOLD_S", 30))
}

/// MiB a "big" held process fills: 1024, or `SUSPEND_BIG_HOLD_MIB` (the
/// vm-test guests have 2 GiB of memory, their images a tmpfs).
pub fn big_hold_mib() -> u64 {
    setting("SUSPEND_BIG_HOLD_MIB", 1024)
}

/// Rounds of `a_killed_daemon_kills_no_process` (`security.rs`): 10 (200
/// suspends), or `SUSPEND_KILL_LOOP_ROUNDS` (the vm-test guests run fewer).
pub fn kill_loop_rounds() -> u32 {
    setting("SUSPEND_KILL_LOOP_ROUNDS", 10)
}
