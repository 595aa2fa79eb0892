//! POSIX timers: each created again by the process itself (through its
//! borrowed main thread) with its id, clock and notification, and armed
//! with the time it had left and its interval. Ids are handed out in
//! order by the kernel, from 0 in a new process: the ids in between are
//! made (never armed) and deleted again. (The save half: `/proc/PID/timers` and
//! `timer_gettime` asked from inside, in `dump`.)

use crate::{
    image::{
        Image,
        format::{MAX_TIMER_ID_FILLERS, PosixTimer},
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

/// Creates every timer of `image` again, in `main`'s process.
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
        if t.value_ns != 0 {
            let split = |ns: u64| [ns / 1_000_000_000, ns % 1_000_000_000];
            let (interval, value) = (split(t.interval_ns), split(t.value_ns));
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
