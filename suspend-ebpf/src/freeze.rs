//! Freezing: no thread escapes, and none runs unseen.
//!
//! While the agent stops a process (`FREEZING`), every thread it creates is
//! recorded in `new_threads`, so the agent stops it too without re-reading
//! `/proc/PID/task`. Once all are stopped, the agent lists them in
//! `frozen_tasks` and `sched_switch` counts any that is switched in: the
//! dump is consistent only if none was.

use aya_ebpf::{helpers::bpf_ktime_get_boot_ns, programs::TracePointContext};
use suspend_common::registry::{STATE_FREEZING, STATE_FROZEN};

use crate::{
    layout::{self, current_tgid},
    maps::{freeze_active, frozen_tasks, new_threads, registry},
};

/// `CLONE_THREAD` from `<linux/sched.h>`.
const CLONE_THREAD: u64 = 0x0001_0000;

pub fn on_newtask(ctx: &TracePointContext) {
    let _ = try_on_newtask(ctx);
}

fn try_on_newtask(ctx: &TracePointContext) -> Result<(), i32> {
    let l = layout::get();
    let flags = layout::read::<u64>(ctx, l.newtask_flags)?;
    if flags & CLONE_THREAD == 0 {
        return Ok(()); // a new process, not a thread of this one
    }
    let tgid = current_tgid();
    let Some(entry) = registry.get_ptr(&tgid) else {
        return Ok(());
    };
    // SAFETY: a live registry value; the verifier bounds the access.
    let state = unsafe { (*entry).state };
    if state != STATE_FREEZING && state != STATE_FROZEN {
        return Ok(());
    }
    let tid = layout::read::<i32>(ctx, l.newtask_pid)? as u32;
    new_threads.insert(&tid, &tgid, 0)
}

pub fn on_switch(ctx: &TracePointContext) {
    let _ = try_on_switch(ctx);
}

fn try_on_switch(ctx: &TracePointContext) -> Result<(), i32> {
    // The hot path: one array lookup when no freeze is in progress.
    match freeze_active.get(0) {
        Some(&active) if active != 0 => {}
        _ => return Ok(()),
    }
    let next = layout::read::<i32>(ctx, layout::get().switch_next_pid)? as u32;
    let Some(task) = frozen_tasks.get_ptr_mut(&next) else {
        return Ok(());
    };
    // SAFETY: a live map value; the verifier bounds every access.
    unsafe {
        if (*task).switches == 0 {
            (*task).first_switch_ns = bpf_ktime_get_boot_ns();
        }
        (*task).switches += 1;
    }
    Ok(())
}
