//! timerfds: clock, time left, interval, expirations not yet read.
//!
//! Saved: the fdinfo (`clockid:`, `ticks:`, `settime flags:`,
//! `it_value:`, `it_interval:`, [`parse`]), asked to count what it missed
//! first ([`refresh`]); one set with `TFD_TIMER_ABSTIME` keeps its
//! deadline on its clock.
//!
//! Restored: made again by the restore child, armed as it was ([`arming`])
//! and its expirations set back (`TFD_IOC_SET_TICKS`) ([`make`]).

use std::os::fd::{BorrowedFd, RawFd};

use crate::{image::format::TimerFd, sys::raw};

/// What a timerfd links to.
pub const LINK: &str = "anon_inode:[timerfd]";

/// Makes the fdinfo of the timerfd `copy` is a copy of count the
/// expirations it missed: it does only once something asks it (as its
/// next read would), here `timerfd_gettime`.
pub fn refresh(copy: BorrowedFd<'_>) {
    let _ = crate::sys::timerfd_gettime(copy);
}

/// A timerfd's fdinfo (`clockid:`, `ticks:`, `settime flags:` in octal,
/// `it_value: (S, NS)`, `it_interval: (S, NS)`); `now_ns` is its clock's
/// time as it was read, for an absolute deadline.
pub fn parse(text: &str, now_ns: impl Fn(i32) -> Option<u64>) -> Option<TimerFd> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
    };
    let pair = |key: &str| -> Option<u64> {
        let (s, ns) = field(key)?
            .strip_prefix('(')?
            .strip_suffix(')')?
            .split_once(',')?;
        Some(s.trim().parse::<u64>().ok()? * 1_000_000_000 + ns.trim().parse::<u64>().ok()?)
    };
    let clockid: i32 = field("clockid:")?.parse().ok()?;
    let settime_flags = i32::from_str_radix(field("settime flags:")?, 8).ok()?;
    let value_ns = pair("it_value:")?;
    let deadline_ns = if settime_flags & 1 != 0 && value_ns != 0 {
        Some(now_ns(clockid)? + value_ns)
    } else {
        None
    };
    Some(TimerFd {
        clockid,
        ticks: field("ticks:")?.parse().ok()?,
        settime_flags,
        value_ns,
        interval_ns: pair("it_interval:")?,
        deadline_ns,
    })
}

// Restore: made again by the restore child.

/// How `t` is armed again: the `timerfd_settime` flags and its spec
/// (interval s, ns, value s, ns). An expired timer waiting for a read to
/// re-arm it by its interval shows no time left: armed one interval on.
/// One set with `TFD_TIMER_ABSTIME` is armed at its deadline, with its
/// `settime` flags.
pub fn arming(t: &TimerFd) -> (i32, [i64; 4]) {
    let value = match (t.deadline_ns, t.value_ns, t.interval_ns) {
        (Some(deadline), _, _) => deadline,
        (None, 0, interval) => interval,
        (None, value, _) => value,
    };
    let split = |ns: u64| [(ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64];
    let (interval, value) = (split(t.interval_ns), split(value));
    let settime = if t.deadline_ns.is_some() {
        t.settime_flags
    } else {
        0
    };
    (settime, [interval[0], interval[1], value[0], value[1]])
}

/// `timerfd_create(clock, flags)`, then `timerfd_settime(settime, spec)`
/// if `spec` arms it and `TFD_IOC_SET_TICKS` if `ticks`. Returns the new
/// fd, or -1 right after the call that failed (its errno left for the
/// child's report). Runs in the restore child: no allocation.
pub fn make(clock: i32, flags: i32, settime: i32, spec: &[i64; 4], ticks: &u64) -> RawFd {
    let fd = raw::timerfd_create(clock, flags);
    if fd >= 0 && spec[2..] != [0, 0] && raw::timerfd_settime(fd, settime, spec) < 0 {
        return -1;
    }
    if fd >= 0 && *ticks != 0 && raw::timerfd_set_ticks(fd, ticks) < 0 {
        return -1;
    }
    fd
}

/// `timerfd_create(clock, flags)`, then `timerfd_settime(settime, spec)`
/// if `spec` arms it (interval s, ns, value s, ns) and `TFD_IOC_SET_TICKS`
/// if `ticks`, as the restore child makes it again ([`make`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Made {
    pub clock: i32,
    pub flags: i32,
    pub settime: i32,
    pub spec: [i64; 4],
    pub ticks: u64,
}

/// Timerfd `t`, with status flags `flags`, made again armed as it was
/// ([`arming`]).
pub fn plan(t: &TimerFd, flags: i32) -> Made {
    let (settime, spec) = arming(t);
    Made {
        clock: t.clockid,
        flags: flags & super::CREATE_FLAGS,
        settime,
        spec,
        ticks: t.ticks,
    }
}

impl super::MakeFd for Made {
    unsafe fn make(&self, fd: RawFd, _scratch: RawFd) -> Result<(), super::Unmade> {
        let made = make(
            self.clock,
            self.flags,
            self.settime,
            &self.spec,
            &self.ticks,
        );
        // SAFETY: in the restore child (the caller's promise).
        unsafe { super::place(made, fd, self.flags) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fdinfo_gives_the_timer_and_an_absolute_deadline() {
        let text = "pos:\t0\nflags:\t04002\nclockid: 1\nticks: 1\nsettime flags: 00\n\
                    it_value: (0, 0)\nit_interval: (1, 0)\n";
        assert_eq!(
            parse(text, |_| Some(5)),
            Some(TimerFd {
                clockid: 1,
                ticks: 1,
                settime_flags: 0,
                value_ns: 0,
                interval_ns: 1_000_000_000,
                deadline_ns: None
            })
        );
        let text = "clockid: 0\nticks: 0\nsettime flags: 03\nit_value: (99, 387315080)\n\
                    it_interval: (0, 0)\n";
        let t = parse(text, |clock| (clock == 0).then_some(1_000)).unwrap();
        assert_eq!((t.settime_flags, t.value_ns), (3, 99_387_315_080));
        assert_eq!(
            t.deadline_ns,
            Some(99_387_316_080),
            "absolute: now + what was left"
        );
    }

    /// A periodic timer (2.5 s) with 1.25 s left and 3 expirations unread.
    fn periodic() -> TimerFd {
        TimerFd {
            clockid: libc::CLOCK_MONOTONIC,
            ticks: 3,
            settime_flags: 0,
            value_ns: 1_250_000_000,
            interval_ns: 2_500_000_000,
            deadline_ns: None,
        }
    }

    #[test]
    fn a_timerfd_is_armed_with_the_time_it_had_left() {
        let t = periodic();
        assert_eq!(arming(&t), (0, [2, 500_000_000, 1, 250_000_000]));
        // Expired, waiting for a read to re-arm it: one interval on.
        let expired = TimerFd { value_ns: 0, ..t };
        assert_eq!(arming(&expired).1, [2, 500_000_000, 2, 500_000_000]);
        // Disarmed: stays so.
        let disarmed = TimerFd {
            value_ns: 0,
            interval_ns: 0,
            ..t
        };
        assert_eq!(arming(&disarmed).1, [0; 4]);
        // Absolute: its deadline, with its flags.
        let absolute = TimerFd {
            settime_flags: libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
            deadline_ns: Some(7_000_000_001),
            ..t
        };
        assert_eq!(
            arming(&absolute),
            (
                libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
                [2, 500_000_000, 7, 1]
            )
        );
    }

    #[test]
    fn a_timerfd_is_made_with_its_clock_flags_arming_and_ticks() {
        let t = periodic();
        let flags = libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC;
        assert_eq!(
            plan(&t, flags),
            Made {
                clock: libc::CLOCK_MONOTONIC,
                flags: libc::O_NONBLOCK | libc::O_CLOEXEC,
                settime: 0,
                spec: [2, 500_000_000, 1, 250_000_000],
                ticks: 3,
            }
        );
        // How it is armed: `arming`'s tests.
    }
}
