//! POSIX timers: each created again by the process itself (through its
//! borrowed main thread) with its id, clock and notification, and armed
//! with the time it had left and its interval. Ids are handed out in
//! order by the kernel, from 0 in a new process: the ids in between are
//! made (never armed) and deleted again. (The save half: `/proc/PID/timers` and
//! `timer_gettime` asked from inside, in `dump`.)
//!
//! They are armed ([`arm`]) as the very last thing before the main thread
//! is let go, not when they are made ([`create`]): a signal a timer sends
//! while the process is still traced is queued even when the process
//! ignores it (the kernel never ignores a signal for a traced task), and
//! once the process runs that stale signal is taken with every period
//! that passed since as its overrun. A periodic timer whose signal is
//! ignored then came back with `timer_getoverrun` counting the resume's
//! last steps (8 on 6.1), where it had 0. So they are armed last, and a
//! periodic timer whose signal the process ignores on a clock that runs
//! while it is stopped is armed to fire first no sooner than [`QUIET`]
//! from now (its next expiry moved later by at most that): its expiries
//! then all come once the process runs untraced, and are dropped as they
//! were before.

use crate::{
    image::{
        Image,
        format::{MAX_TIMER_ID_FILLERS, PosixTimer, SigAction},
    },
    tracee::inject::{Borrowed, InjectError, Site},
};

/// How many ids a resume makes and deletes to reach a timer's id.
const MAX_FILLERS: u32 = MAX_TIMER_ID_FILLERS as u32;

/// `struct sigevent` (64 bytes): value, signal, notify, thread id.
fn sigevent(value: u64, signal: i32, notify: i32, tid: u32) -> [u8; 64] {
    let mut raw = [0u8; 64];
    raw[0..8].copy_from_slice(&value.to_ne_bytes());
    raw[8..12].copy_from_slice(&signal.to_ne_bytes());
    raw[12..16].copy_from_slice(&notify.to_ne_bytes());
    raw[16..20].copy_from_slice(&tid.to_ne_bytes());
    raw
}

/// `PR_TIMER_CREATE_RESTORE_IDS` and its settings.
const PR_TIMER_CREATE_RESTORE_IDS: u64 = 77;
const RESTORE_IDS_OFF: u64 = 0;
const RESTORE_IDS_ON: u64 = 1;

/// Where in the scratch page the timer id goes (past the `sigevent`).
const ID_AT: u64 = 128;

/// Has `main` call `timer_create` with `t`'s clock and notification, the
/// timer id it passes holding `id`: the id wanted where the kernel takes it
/// (`PR_TIMER_CREATE_RESTORE_IDS`), else 0. The kernel leaves the id it
/// gave at [`ID_AT`] in the scratch page.
fn create_one(
    main: &mut Borrowed,
    site: &Site,
    what: &str,
    t: &PosixTimer,
    id: i32,
) -> Result<(), InjectError> {
    site.write(0, &sigevent(t.value, t.signal, t.notify, t.tid))?;
    site.write(ID_AT, &id.to_ne_bytes())?;
    main.call(
        what,
        libc::SYS_timer_create,
        [
            t.clockid as u64,
            site.scratch(),
            site.scratch() + ID_AT,
            0,
            0,
            0,
        ],
    )?;
    Ok(())
}

/// Creates every timer of `image` again, in `main`'s process, unarmed.
pub fn create(image: &Image, main: &mut Borrowed, site: &Site) -> Result<(), InjectError> {
    let mut timers = image.process.posix_timers.clone();
    if timers.is_empty() {
        return Ok(());
    }
    timers.sort_by_key(|t| t.id);
    // Where the kernel takes the id to give (6.15), each is asked for.
    let told = main.syscall(
        libc::SYS_prctl,
        [PR_TIMER_CREATE_RESTORE_IDS, RESTORE_IDS_ON, 0, 0, 0, 0],
    )? >= 0;
    let mut fillers = 0;
    for t in &timers {
        let what = format!("creating POSIX timer {} again", t.id);
        loop {
            if told {
                create_one(main, site, &what, t, t.id)?;
                break;
            }
            let exact = fillers >= MAX_FILLERS;
            create_one(main, site, &what, t, 0)?;
            let mut id = [0u8; 4];
            site.read(ID_AT, &mut id)?;
            let id = i32::from_ne_bytes(id);
            if id == t.id {
                break;
            }
            main.call(&what, libc::SYS_timer_delete, [id as u64, 0, 0, 0, 0, 0])?;
            if id > t.id || exact {
                return Err(InjectError::Failed {
                    tid: image.process.pid,
                    what: format!("{what}: the kernel gives id {id} next"),
                    errno: nix::errno::Errno::EEXIST,
                });
            }
            fillers += 1;
        }
    }
    if told {
        let what = "PR_TIMER_CREATE_RESTORE_IDS off";
        main.call(
            what,
            libc::SYS_prctl,
            [PR_TIMER_CREATE_RESTORE_IDS, RESTORE_IDS_OFF, 0, 0, 0, 0],
        )?;
    }
    Ok(())
}

/// How long after it is armed a periodic timer whose signal is ignored
/// may fire first: longer than the agent takes to let the process go once
/// it has armed it (a few `ptrace` requests per thread).
pub const QUIET: u64 = 100_000_000;

/// `SIGEV_NONE`: a timer that sends nothing.
const SIGEV_NONE: i32 = 1;

/// Whether the kernel drops signal `signal` for a process with `actions`
/// (its action is `SIG_IGN`, or `SIG_DFL` for a signal whose default is to
/// ignore it) — unless a thread it would go to is traced or blocks it.
fn ignored(actions: &[SigAction], signal: i32) -> bool {
    let handler = actions
        .iter()
        .find(|a| a.signal as i32 == signal)
        .map_or(0, |a| a.handler);
    let ignored_by_default = [libc::SIGCHLD, libc::SIGCONT, libc::SIGURG, libc::SIGWINCH];
    handler == 1 || (handler == 0 && ignored_by_default.contains(&signal))
}

/// The time to arm `t` with: what it had left, or [`QUIET`] for a periodic
/// timer on a clock that runs while the process is stopped whose signal
/// `ignored` says the process ignores (see the module doc).
fn first_expiry(t: &PosixTimer, ignored: bool) -> u64 {
    let stopped_clock_runs = t.clockid >= 0
        && t.clockid != libc::CLOCK_PROCESS_CPUTIME_ID
        && t.clockid != libc::CLOCK_THREAD_CPUTIME_ID;
    let sends = t.notify & SIGEV_NONE == 0;
    if t.interval_ns != 0 && stopped_clock_runs && sends && ignored {
        t.value_ns.max(QUIET)
    } else {
        t.value_ns
    }
}

/// Arms every timer of `image` that was armed, with the time it had left
/// and its interval. Call it last before `main` is let go (see the module
/// doc).
pub fn arm(image: &Image, main: &mut Borrowed, site: &Site) -> Result<(), InjectError> {
    for t in &image.process.posix_timers {
        if t.value_ns != 0 {
            let first = first_expiry(t, ignored(&image.process.sigactions, t.signal));
            let split = |ns: u64| [ns / 1_000_000_000, ns % 1_000_000_000];
            let (interval, value) = (split(t.interval_ns), split(first));
            let mut spec = [0u8; 32];
            for (i, v) in [interval[0], interval[1], value[0], value[1]]
                .iter()
                .enumerate()
            {
                spec[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
            }
            site.write(0, &spec)?;
            let arm = format!("arming POSIX timer {}", t.id);
            main.call(
                &arm,
                libc::SYS_timer_settime,
                [t.id as u64, 0, site.scratch(), 0, 0, 0],
            )?;
        }
    }
    Ok(())
}

/// Whether [`arm`] has anything to do.
pub fn any_armed(image: &Image) -> bool {
    image.process.posix_timers.iter().any(|t| t.value_ns != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(clockid: i32, notify: i32, value_ns: u64, interval_ns: u64) -> PosixTimer {
        PosixTimer {
            id: 0,
            clockid,
            notify,
            signal: libc::SIGUSR1,
            value: 0,
            tid: 0,
            value_ns,
            interval_ns,
        }
    }

    #[test]
    fn only_an_ignored_periodic_timer_on_a_running_clock_waits_before_it_fires() {
        let ms = 1_000_000;
        let periodic = timer(libc::CLOCK_MONOTONIC, 0, ms / 2, ms);
        assert_eq!(first_expiry(&periodic, true), QUIET);
        assert_eq!(
            first_expiry(&periodic, false),
            ms / 2,
            "its signal is caught"
        );
        let later = timer(libc::CLOCK_REALTIME, 4, 3 * QUIET, ms);
        assert_eq!(first_expiry(&later, true), 3 * QUIET, "not sooner anyway");
        let once = timer(libc::CLOCK_MONOTONIC, 0, ms / 2, 0);
        assert_eq!(
            first_expiry(&once, true),
            ms / 2,
            "one-shot: no overrun count"
        );
        let silent = timer(libc::CLOCK_MONOTONIC, SIGEV_NONE, ms / 2, ms);
        assert_eq!(
            first_expiry(&silent, true),
            ms / 2,
            "SIGEV_NONE sends nothing"
        );
        let cpu = timer(libc::CLOCK_PROCESS_CPUTIME_ID, 0, ms / 2, ms);
        assert_eq!(first_expiry(&cpu, true), ms / 2, "CPU time stops with it");
        let other = timer(-6, 0, ms / 2, ms);
        assert_eq!(first_expiry(&other, true), ms / 2, "a process CPU clock");
    }

    #[test]
    fn an_ignored_signal_is_sig_ign_or_a_default_that_ignores() {
        let action = |signal: i32, handler: u64| SigAction {
            signal: signal as u32,
            handler,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        let actions = [
            action(libc::SIGUSR1, 1),
            action(libc::SIGUSR2, 0x40_1000),
            action(libc::SIGCHLD, 0),
        ];
        assert!(ignored(&actions, libc::SIGUSR1));
        assert!(!ignored(&actions, libc::SIGUSR2), "a handler");
        assert!(ignored(&actions, libc::SIGCHLD), "SIG_DFL ignores it");
        assert!(
            !ignored(&actions, libc::SIGALRM),
            "SIG_DFL ends the process"
        );
        assert!(
            ignored(&actions, libc::SIGWINCH),
            "no action saved: SIG_DFL"
        );
    }
}
