//! Speculation controls: what each thread chose of the controls a task may
//! set itself (`PR_SET_SPECULATION_CTRL`: store bypass, indirect branch,
//! L1D flush).
//!
//! Saved: each control asked from inside every thread ([`ask`]), only
//! where the task may set it itself and chose another state than a task
//! starts with (`speculation_default`); the rest is the machine's, not
//! the process's. Restored: each thread gives each saved control back
//! itself, from inside, where it has another state now ([`give_back`],
//! `to_set`); which thread is borrowed when, with its TSC mode and its
//! name, is the take-over's (`restore/finish.rs`).

use crate::tracee::inject::{Borrowed, InjectError};

// Save: asked from inside each thread.

/// `PR_GET_SPECULATION_CTRL`, and what it asks about: store bypass,
/// indirect branch, L1D flush.
const PR_GET_SPECULATION_CTRL: u64 = 52;
const SPECULATION_CONTROLS: [u32; 3] = [0, 1, 2];
/// In its answer: the task may set this control itself (`PR_SPEC_PRCTL`).
const PR_SPEC_PRCTL: u32 = 1;

/// Whether `state` of control `which` is what a task has unless it chose
/// otherwise: speculation enabled (`PR_SPEC_ENABLE`) for store bypass and
/// indirect branches, no L1D flush (`PR_SPEC_DISABLE`) for the L1D flush.
fn speculation_default(which: u32, state: u32) -> bool {
    const STATES: u32 = 2 | 4 | 8 | 16;
    let default = if which == 2 { 4 } else { 2 };
    state & STATES == default
}

/// Each speculation control `b` (a borrowed thread) chose, with its state,
/// in the order of `SPECULATION_CONTROLS`.
pub fn ask(b: &mut Borrowed) -> Result<Vec<(u32, u32)>, InjectError> {
    // Only controls the task sets itself (the kernel's mode for them is
    // `prctl` or `seccomp`), and only where it chose another state than
    // a task starts with: the rest is the machine's, not the process's
    // (and a resume must not fail setting what nobody chose).
    let mut speculation = Vec::new();
    for which in SPECULATION_CONTROLS {
        let state = b.syscall(
            libc::SYS_prctl,
            [PR_GET_SPECULATION_CTRL, which.into(), 0, 0, 0, 0],
        )?;
        if let Ok(state) = u32::try_from(state)
            && state & PR_SPEC_PRCTL != 0
            && !speculation_default(which, state)
        {
            speculation.push((which, state));
        }
    }
    Ok(speculation)
}

// Restore: set from inside each thread.

const PR_SET_SPECULATION_CTRL: u64 = 53;

/// Gives thread `tid`'s speculation control `which` its saved `state`
/// (a `PR_GET_SPECULATION_CTRL` answer) if it has another one now (it
/// inherits the resume command's, and seccomp filters installed before
/// may have forced it off). A forced-off control cannot be turned on
/// again: that fails, named.
pub fn give_back(
    thread: &mut Borrowed,
    tid: u32,
    which: u32,
    state: u32,
) -> Result<(), InjectError> {
    let now = thread.syscall(
        libc::SYS_prctl,
        [PR_GET_SPECULATION_CTRL, which.into(), 0, 0, 0, 0],
    )?;
    let Some(set) = to_set(now, state) else {
        return Ok(());
    };
    let what = format!(
        "thread {tid}: speculation control {which} to {set:#x} (PR_SET_SPECULATION_CTRL; it is \
         {now:#x} here)"
    );
    thread.call(
        &what,
        libc::SYS_prctl,
        [PR_SET_SPECULATION_CTRL, which.into(), set.into(), 0, 0, 0],
    )?;
    Ok(())
}

/// The `PR_SET_SPECULATION_CTRL` argument that gives a control in state
/// `now` (a `PR_GET_SPECULATION_CTRL` answer, negative on error) the saved
/// `state`: `None` if it has it already.
fn to_set(now: i64, state: u32) -> Option<u32> {
    /// `PR_SPEC_ENABLE`, `_DISABLE`, `_FORCE_DISABLE`, `_DISABLE_NOEXEC`.
    const STATES: u32 = 2 | 4 | 8 | 16;
    if u32::try_from(now).is_ok_and(|now| now & STATES == state & STATES) {
        return None;
    }
    // The strongest of the state's bits (the kernel reports one).
    [8, 16, 4, 2].into_iter().find(|bit| state & bit != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_speculation_state_a_task_chose_is_saved() {
        // PR_SPEC_PRCTL 1, ENABLE 2, DISABLE 4, FORCE_DISABLE 8.
        assert!(speculation_default(0, 1 | 2));
        assert!(!speculation_default(0, 1 | 4));
        assert!(!speculation_default(1, 1 | 8));
        assert!(speculation_default(2, 1 | 4), "no L1D flush is the default");
        assert!(!speculation_default(2, 1 | 2));
    }

    #[test]
    fn a_speculation_control_is_set_only_where_it_differs() {
        // PR_SPEC_PRCTL 1 with ENABLE 2, DISABLE 4, FORCE_DISABLE 8,
        // DISABLE_NOEXEC 16.
        assert_eq!(to_set(1 | 4, 1 | 4), None);
        assert_eq!(to_set(1 | 2, 1 | 4), Some(4));
        assert_eq!(to_set(1 | 2, 1 | 8), Some(8));
        assert_eq!(to_set(1 | 2, 1 | 16), Some(16));
        // Inherited off, saved on: turned on (a forced-off one fails then).
        assert_eq!(to_set(1 | 8, 1 | 2), Some(2));
        // The kernel refused to say: set it.
        assert_eq!(to_set(-22, 1 | 4), Some(4));
    }
}
