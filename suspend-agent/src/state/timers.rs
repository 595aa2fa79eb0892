//! POSIX timers: each created again by the process itself (through its
//! borrowed main thread) with its id, clock and notification, and armed
//! with the time it had left and its interval. Ids are handed out in
//! order by the kernel, from 0 in a new process: the ids in between are
//! made (never armed) and deleted again. (The save half: `/proc/PID/timers` and
//! `timer_gettime` asked from inside, below.)
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
//!
//! Saved: `/proc/PID/timers` gives each timer's id, clock and notification
//! ([`save`]), a thread of the process asked from inside ([`ask_posix`])
//! the time each had left, its interval and its overrun count. Refused by
//! name: an overrun count (no call sets it, [`overrun_words`]), an id a
//! resume could not reach and a kernel that does not show them
//! ([`refusal`]); an image with an id the resume could not reach is
//! refused again there ([`check`]), the kernel it runs on may differ.
//!
//! Interval timers (`setitimer`: `ITIMER_REAL`, `ITIMER_VIRTUAL`,
//! `ITIMER_PROF`, which send `SIGALRM`, `SIGVTALRM` and `SIGPROF`): asked
//! from inside ([`ask_interval`]), armed again by the stub with the time
//! each had left ([`itimers`] plans them).

use std::collections::HashMap;

use super::u64_at;
use crate::{
    freeze::{Frozen, OverrunsBefore},
    image::{
        Image,
        format::{ITimer, MAX_TIMER_ID_FILLERS, PosixTimer, SigAction},
    },
    procfs::{ProcError, ProcTimer},
    tracee::inject::{Borrowed, InjectError, Site},
};

// Save: asked from inside, and what /proc/PID/timers shows.

/// `SIGEV_THREAD_ID`: a timer that signals one thread.
const SIGEV_THREAD_ID: i32 = 4;

/// The armed interval timers of `b`'s process, each with its interval and
/// the time it has left (`getitimer`, asked through `site`'s scratch page).
pub fn ask_interval(b: &mut Borrowed, site: &Site) -> Result<Vec<ITimer>, InjectError> {
    let s = site.scratch();
    let mut buf = [0u8; 32];
    let mut itimers = Vec::new();
    for which in 0..3u64 {
        if b.syscall(libc::SYS_getitimer, [which, s, 0, 0, 0, 0])? != 0 {
            continue;
        }
        site.read(0, &mut buf)?;
        let us = |at| u64_at(&buf, at) * 1_000_000 + u64_at(&buf, at + 8);
        let (interval_us, value_us) = (us(0), us(16));
        if interval_us != 0 || value_us != 0 {
            itimers.push(ITimer {
                which: which as u32,
                interval_us,
                value_us,
            });
        }
    }
    Ok(itimers)
}

/// What a process's own calls tell of its POSIX timers.
#[derive(Debug, Default)]
pub struct Asked {
    /// Each POSIX timer's time left and interval (`timer_gettime`), ns.
    pub left: HashMap<i32, (u64, u64)>,
    /// Each POSIX timer's overrun count (`timer_getoverrun`: the
    /// expirations missed before its last signal was delivered), where it
    /// is not 0. No call sets it, so a resume cannot give it back.
    pub overruns: HashMap<i32, i64>,
}

/// Asks `b` (a thread of the process) the time left, interval and overrun
/// count of each of `timers` (as `/proc/PID/timers` shows them).
pub fn ask_posix(
    b: &mut Borrowed,
    site: &Site,
    timers: &[ProcTimer],
) -> Result<Asked, InjectError> {
    let s = site.scratch();
    let mut buf = [0u8; 32];
    let mut asked = Asked::default();
    for &(id, ..) in timers {
        if b.syscall(libc::SYS_timer_gettime, [id as u64, s, 0, 0, 0, 0])? == 0 {
            site.read(0, &mut buf)?;
            let ns = |at| u64_at(&buf, at) * 1_000_000_000 + u64_at(&buf, at + 8);
            asked.left.insert(id, (ns(16), ns(0)));
        }
        let overrun = b.syscall(libc::SYS_timer_getoverrun, [id as u64, 0, 0, 0, 0, 0])?;
        if overrun > 0 {
            asked.overruns.insert(id, overrun);
        }
    }
    Ok(asked)
}

/// Puts back, in `asked` (a frozen process's answers), the overrun count
/// each of its `timers` whose signal it ignores (by `actions`) had before
/// the freeze, where the task iterator said it (`before`): the freeze
/// itself may have made one. A traced thread never ignores a signal, so a
/// periodic timer's expiry is queued while it is seized; taken before it
/// is stopped (or once a borrowed thread is put back into a stop on its
/// way to deliver a signal), it sets the count — before Linux 6.13 to
/// every period since it was armed, since all went ignored (6.12 counted
/// 167 for a 1 ms timer). Untraced, a signal the process ignores and does
/// not block is never taken, so its count cannot have changed otherwise; one
/// it blocks is not taken by the freeze either, and its count before is
/// the same.
pub fn freeze_made(
    asked: &mut Asked,
    actions: &[SigAction],
    timers: &[ProcTimer],
    before: OverrunsBefore,
) {
    for &(id, _, notify, signal, ..) in timers {
        if notify & SIGEV_NONE != 0 || !ignored(actions, signal) {
            continue;
        }
        match before {
            OverrunsBefore::None => {
                asked.overruns.remove(&id);
            }
            OverrunsBefore::First(first, count) if first == id => {
                asked.overruns.insert(id, count.into());
            }
            // Another timer's count is known, or none: this one's stays
            // as asked (a count the freeze made is then refused, or kept
            // held as the kernel has it).
            OverrunsBefore::First(..) | OverrunsBefore::Unknown => {}
        }
        if asked.overruns.get(&id) == Some(&0) {
            asked.overruns.remove(&id);
        }
    }
}

/// The POSIX timers of `pid`: `/proc/PID/timers`, with what `asked` tells
/// of each.
pub fn save(pid: u32, asked: &Asked) -> Result<Vec<PosixTimer>, ProcError> {
    Ok(crate::procfs::timers(pid)?
        .into_iter()
        .map(|(id, clockid, notify, signal, value, target)| {
            let (value_ns, interval_ns) = asked.left.get(&id).copied().unwrap_or_default();
            PosixTimer {
                id,
                clockid,
                notify,
                signal,
                value,
                tid: if notify & SIGEV_THREAD_ID != 0 {
                    target
                } else {
                    0
                },
                value_ns,
                interval_ns,
                overrun: asked.overruns.get(&id).copied().unwrap_or(0),
            }
        })
        .collect())
}

/// A POSIX timer whose last expiry was delivered late.
pub fn overrun_words(id: i32, overrun: i64) -> String {
    format!(
        "POSIX timer {id} has an overrun count of {overrun} (timer_getoverrun), which no call \
         sets"
    )
}

/// Why the POSIX timers of `pid` cannot come back, if they cannot: an id
/// a resume on this kernel could not reach, or no `/proc/PID/timers`.
pub fn refusal(pid: u32) -> Option<String> {
    match crate::procfs::timers(pid) {
        Ok(timers) => {
            let highest = timers.iter().map(|t| t.0).max().unwrap_or(0);
            if unreachable(highest) {
                return Some(format!(
                    "POSIX timer id {highest} (this kernel cannot be told a timer's id, and \
                     making every id below it would take too long)"
                ));
            }
            None
        }
        Err(_) => Some(
            "POSIX timers this kernel does not show (no /proc/PID/timers: \
             CONFIG_CHECKPOINT_RESTORE)"
                .into(),
        ),
    }
}

// Restore: POSIX timers made by the borrowed main thread, interval timers
// by the stub.

/// Whether a resume on this kernel could not reach timer id `id`: it
/// cannot be told the id, and making every id below it would take too long.
fn unreachable(id: i32) -> bool {
    id >= MAX_TIMER_ID_FILLERS && !crate::sys::timer_restore_ids()
}

/// A POSIX timer id this kernel cannot give back: the restore refuses the
/// image with it (its `Refusal::Timer`).
#[derive(Debug, thiserror::Error)]
#[error(
    "the process had POSIX timer id {id}, which this kernel cannot give back (it cannot be told \
     a timer's id (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15))"
)]
pub struct Conflict {
    pub id: i32,
}

/// Refuses an image with a POSIX timer id a resume here could not reach.
pub fn check(image: &Image) -> Result<(), Conflict> {
    let highest = image
        .process
        .posix_timers
        .iter()
        .map(|t| t.id)
        .max()
        .unwrap_or(0);
    if unreachable(highest) {
        return Err(Conflict { id: highest });
    }
    Ok(())
}

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
/// it has armed it (a few `ptrace` requests per thread). 100 ms was not,
/// once, in a 6.1 guest on a loaded host: the first expiry came while the
/// held process was still traced, and was taken 1.2 s later as 1217
/// overruns. A let-go slower than this still counts them: only arming it
/// from inside, as the thread's last step before its own code, would not.
pub const QUIET: u64 = 1_000_000_000;

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

/// Whether `t` is a periodic timer on a clock that runs while the process
/// is stopped, whose signal `ignored` says the process ignores: one whose
/// expiries a traced or parked process would queue and count (see the
/// module doc).
fn counts_when_stopped(t: &PosixTimer, ignored: bool) -> bool {
    let stopped_clock_runs = t.clockid >= 0
        && t.clockid != libc::CLOCK_PROCESS_CPUTIME_ID
        && t.clockid != libc::CLOCK_THREAD_CPUTIME_ID;
    let sends = t.notify & SIGEV_NONE == 0;
    t.interval_ns != 0 && stopped_clock_runs && sends && ignored
}

/// The time to arm `t` with: what it had left, or at least [`QUIET`] for
/// a timer that [`counts_when_stopped`].
fn first_expiry(t: &PosixTimer, ignored: bool) -> u64 {
    if counts_when_stopped(t, ignored) {
        t.value_ns.max(QUIET)
    } else {
        t.value_ns
    }
}

/// Has `main` arm timer `id` (`timer_settime`, relative) to fire first in
/// `value_ns`, then every `interval_ns`.
fn set(
    main: &mut Borrowed,
    site: &Site,
    what: &str,
    id: i32,
    interval_ns: u64,
    value_ns: u64,
) -> Result<(), InjectError> {
    let split = |ns: u64| [ns / 1_000_000_000, ns % 1_000_000_000];
    let (interval, value) = (split(interval_ns), split(value_ns));
    let mut spec = [0u8; 32];
    for (i, v) in [interval[0], interval[1], value[0], value[1]]
        .iter()
        .enumerate()
    {
        spec[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
    }
    site.write(0, &spec)?;
    main.call(
        what,
        libc::SYS_timer_settime,
        [id as u64, 0, site.scratch(), 0, 0, 0],
    )?;
    Ok(())
}

/// Arms every timer of `image` that was armed, with the time it had left
/// and its interval. Call it last before `main` is let go (see the module
/// doc).
pub fn arm(image: &Image, main: &mut Borrowed, site: &Site) -> Result<(), InjectError> {
    for t in &image.process.posix_timers {
        if t.value_ns != 0 {
            let first = first_expiry(t, ignored(&image.process.sigactions, t.signal));
            let what = format!("arming POSIX timer {}", t.id);
            set(main, site, &what, t.id, t.interval_ns, first)?;
        }
    }
    Ok(())
}

/// Why [`settle_frozen`] could not settle a process's timers.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error("no client block in /proc/PID/maps")]
    NoClientBlock,
    #[error(transparent)]
    Inject(#[from] InjectError),
}

/// [`settle`], for a process about to be let go after a freeze (a suspend
/// with `--leave-running`, or one refused or failed once it was frozen):
/// its timers, their time left and overrun counts and the actions of
/// their signals are asked of its main thread now — still frozen, it has
/// taken no queued expiry since it was stopped.
pub fn settle_frozen(frozen: &mut Frozen<'_>) -> Result<(), SettleError> {
    let pid = frozen.pid();
    let listed = crate::procfs::timers(pid)?;
    if listed.is_empty() {
        return Ok(());
    }
    let Some(&main) = frozen.threads().iter().find(|t| t.tid == pid) else {
        return Ok(()); // its main thread has exited: nothing to borrow
    };
    let block = crate::procfs::client_block_addr(pid)?.ok_or(SettleError::NoClientBlock)?;
    let site = Site::find(pid, block)?;
    let mut b = Borrowed::new(main.tid, site, main.stopped_with)?;
    let mut asked = ask_posix(&mut b, &site, &listed)?;
    let actions = super::signals::ask_actions(&mut b, &site)?;
    freeze_made(&mut asked, &actions, &listed, frozen.overruns_before());
    let timers = save(pid, &asked)?;
    settle(&timers, &actions, &mut b, &site)?;
    // The signal it is stopped on its way to deliver may be another now
    // (one that came meanwhile is dequeued first): its release gives
    // back that one.
    let held = b.restore()?;
    frozen.set_stopped_with(main.tid, held);
    site.clear()?;
    Ok(())
}

/// The timers [`settle`] arms again: those that [`counts_when_stopped`]
/// and had no overrun count when saved (one that had keeps what the kernel
/// makes of it).
fn unsettled<'a>(
    timers: &'a [PosixTimer],
    actions: &'a [SigAction],
) -> impl Iterator<Item = &'a PosixTimer> {
    timers
        .iter()
        .filter(|t| t.overrun == 0 && counts_when_stopped(t, ignored(actions, t.signal)))
}

/// Whether [`settle`] has any timer of `timers` to arm again.
pub fn any_unsettled(timers: &[PosixTimer], actions: &[SigAction]) -> bool {
    unsettled(timers, actions).next().is_some()
}

/// For a process about to be let go after a freeze or a hold (its timers
/// never stopped: held, or `--leave-running`): each periodic timer whose signal it ignores, with no overrun count when
/// saved, is armed again with the time it has left now (at least
/// [`QUIET`]) and its interval. While it was frozen and parked its
/// expiries were queued, not dropped (it was traced, then blocked every
/// signal: before Linux 6.13 the first one taken afterwards counts every
/// period since as its overrun). Arming again sets the count back to 0 and
/// makes a queued expiry stale: taken, it is dropped uncounted.
pub fn settle(
    timers: &[PosixTimer],
    actions: &[SigAction],
    main: &mut Borrowed,
    site: &Site,
) -> Result<(), InjectError> {
    for t in unsettled(timers, actions) {
        let what = format!("reading POSIX timer {}", t.id);
        main.call(
            &what,
            libc::SYS_timer_gettime,
            [t.id as u64, site.scratch(), 0, 0, 0, 0],
        )?;
        let mut now = [0u8; 32];
        site.read(0, &mut now)?;
        let ns = |at| u64_at(&now, at) * 1_000_000_000 + u64_at(&now, at + 8);
        let (interval, left) = (ns(0), ns(16));
        if left == 0 || interval == 0 {
            continue; // disarmed, or no longer periodic
        }
        let what = format!("arming POSIX timer {} again", t.id);
        set(main, site, &what, t.id, interval, left.max(QUIET))?;
    }
    Ok(())
}

/// Whether [`arm`] has anything to do.
pub fn any_armed(image: &Image) -> bool {
    image.process.posix_timers.iter().any(|t| t.value_ns != 0)
}

/// The armed interval timers, each with the time it had left, as the stub
/// arms them.
pub fn itimers(saved: &[ITimer]) -> Vec<suspend_common::restore::ITimer> {
    saved
        .iter()
        .map(|t| suspend_common::restore::ITimer {
            which: t.which,
            _pad: 0,
            interval_us: t.interval_us,
            // A periodic timer caught the instant it expired reads 0
            // left; setitimer would take 0 as "disarm".
            value_us: if t.value_us == 0 {
                t.interval_us.max(1)
            } else {
                t.value_us
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_timer_caught_as_it_expired_is_armed_not_disarmed() {
        let timer = |which, interval_us, value_us| ITimer {
            which,
            interval_us,
            value_us,
        };
        let got: Vec<(u32, u64, u64)> =
            itimers(&[timer(0, 500, 120), timer(1, 500, 0), timer(2, 0, 0)])
                .iter()
                .map(|t| (t.which, t.interval_us, t.value_us))
                .collect();
        assert_eq!(got, [(0, 500, 120), (1, 500, 500), (2, 0, 1)]);
    }

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
            overrun: 0,
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

    #[test]
    fn a_held_process_settles_only_ignored_periodic_timers_that_had_no_overrun() {
        let ms = 1_000_000;
        let action = |signal: i32, handler: u64| SigAction {
            signal: signal as u32,
            handler,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        let actions = [action(libc::SIGUSR1, 1), action(libc::SIGUSR2, 0x40_1000)];
        let mut ignored = timer(libc::CLOCK_MONOTONIC, 0, ms, ms);
        ignored.id = 1;
        let mut caught = ignored;
        caught.id = 2;
        caught.signal = libc::SIGUSR2;
        let mut late = ignored;
        late.id = 3;
        late.overrun = 5;
        let mut once = ignored;
        once.id = 4;
        once.interval_ns = 0;
        let timers = [ignored, caught, late, once];
        let ids: Vec<i32> = unsettled(&timers, &actions).map(|t| t.id).collect();
        assert_eq!(ids, [1]);
    }

    #[test]
    fn an_ignored_timers_count_is_the_one_it_had_before_the_freeze() {
        let action = |signal: i32, handler: u64| SigAction {
            signal: signal as u32,
            handler,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        let actions = [action(libc::SIGUSR1, 1), action(libc::SIGUSR2, 0x40_1000)];
        // (id, clock, notify, signal, value, target): 1 and 3 ignored, 2
        // caught, 4 sends nothing.
        let listed: Vec<ProcTimer> = vec![
            (1, libc::CLOCK_MONOTONIC, 0, libc::SIGUSR1, 0, 0),
            (2, libc::CLOCK_MONOTONIC, 0, libc::SIGUSR2, 0, 0),
            (3, libc::CLOCK_MONOTONIC, 0, libc::SIGUSR1, 0, 0),
            (4, libc::CLOCK_MONOTONIC, SIGEV_NONE, libc::SIGUSR1, 0, 0),
        ];
        let frozen = || Asked {
            left: HashMap::new(),
            overruns: [(1, 167), (2, 3), (3, 9), (4, 1)].into(),
        };
        let sorted = |a: Asked| {
            let mut v: Vec<(i32, i64)> = a.overruns.into_iter().collect();
            v.sort();
            v
        };
        let after = |before| {
            let mut asked = frozen();
            freeze_made(&mut asked, &actions, &listed, before);
            sorted(asked)
        };
        // None before: the ignored ones' counts were the freeze's.
        assert_eq!(after(OverrunsBefore::None), [(2, 3), (4, 1)]);
        // Timer 3 had 4 before; timer 1 was not read.
        assert_eq!(
            after(OverrunsBefore::First(3, 4)),
            [(1, 167), (2, 3), (3, 4), (4, 1)]
        );
        assert_eq!(after(OverrunsBefore::Unknown), sorted(frozen()));
    }
}
