//! Keeps the registry true: exec and exit remove a registration (exit also
//! the process's signal counts), a handler
//! change on the suspend or resume signal marks it unusable (or usable again
//! when the client's own handler comes back).

use aya_ebpf::{helpers::bpf_probe_read_user, programs::TracePointContext};
use aya_log_ebpf::info;
use suspend_common::{
    registry::{Replaced, STATE_REGISTERED, STATE_UNUSABLE},
    signals::SignalKey,
};

use crate::{
    layout::{self, current_tgid, current_tid},
    maps::{registry, replaced_handlers, signals},
};

/// `SIG_DFL` and `SIG_IGN` as handler values.
const SIG_IGN: u64 = 1;

pub fn on_exec(ctx: &TracePointContext) {
    // After exec the handlers are reset: whatever the process registered no
    // longer exists. Exec keeps the thread-group id.
    let tgid = current_tgid();
    if registry.remove(&tgid).is_ok() {
        info!(ctx, "pid {}: exec, registration dropped", tgid);
    }
    let _ = replaced_handlers.remove(&tgid);
}

pub fn on_exit(ctx: &TracePointContext) {
    let _ = try_on_exit(ctx);
}

fn try_on_exit(ctx: &TracePointContext) -> Result<(), i32> {
    let tgid = current_tgid();
    let offset = layout::get().exit_group_dead;
    let group_dead = if offset != 0 {
        layout::read::<u8>(ctx, offset)? != 0
    } else {
        // Kernels without `group_dead`: the leader's exit ends the process
        // (a leader that exits before its threads loses the registration
        // early; the agent re-checks the process before using it).
        current_tid() == tgid
    };
    if !group_dead {
        return Ok(());
    }
    if registry.remove(&tgid).is_ok() {
        info!(ctx, "pid {}: exited, registration removed", tgid);
    }
    let _ = replaced_handlers.remove(&tgid);
    // Its signal counts go with it: a later process with the same pid
    // starts from zero.
    for signal in 32..=64u32 {
        let _ = signals.remove(&SignalKey { pid: tgid, signal });
    }
    Ok(())
}

pub fn on_sigaction(ctx: &TracePointContext) {
    let _ = try_on_sigaction(ctx);
}

fn try_on_sigaction(ctx: &TracePointContext) -> Result<(), i32> {
    let tgid = current_tgid();
    let Some(entry) = registry.get_ptr_mut(&tgid) else {
        return Ok(());
    };
    let l = layout::get();
    let sig = layout::read::<u64>(ctx, l.sigaction_sig)?;
    let act = layout::read::<u64>(ctx, l.sigaction_act)?;
    if act == 0 {
        return Ok(()); // only queries the current action
    }
    // SAFETY: `entry` points at a live registry value; the verifier checks
    // every access stays within the value.
    let (suspend_signal, resume_signal, handler_addr, state) = unsafe {
        (
            (*entry).suspend_signal as u64,
            (*entry).resume_signal as u64,
            (*entry).handler_addr,
            (*entry).state,
        )
    };
    if sig != suspend_signal && sig != resume_signal {
        return Ok(());
    }
    // `struct sigaction` (kernel ABI) starts with the handler.
    // SAFETY: `bpf_probe_read_user` checks the user address and fails
    // cleanly on a bad pointer.
    let handler = unsafe { bpf_probe_read_user(act as *const u64)? };
    let ours = if sig == suspend_signal {
        handler == handler_addr
    } else {
        handler > SIG_IGN
    };
    // SAFETY: as above; plain stores into the map value.
    unsafe {
        if !ours {
            (*entry).state = STATE_UNUSABLE;
            (*entry).handler_resets += 1;
        } else if state == STATE_UNUSABLE {
            (*entry).state = STATE_REGISTERED;
        }
    }
    if ours && state == STATE_UNUSABLE {
        let _ = replaced_handlers.remove(&tgid);
    }
    if !ours {
        let replaced = Replaced {
            signal: sig as u32,
            _pad: 0,
            handler,
        };
        let _ = replaced_handlers.insert(&tgid, &replaced, 0);
        info!(
            ctx,
            "pid {}: handler of signal {} replaced, registration unusable", tgid, sig
        );
    }
    Ok(())
}
