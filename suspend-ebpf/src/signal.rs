//! Signal accounting: the real-time signals generated for or delivered to a
//! registered process, and those root sends to any process (the agent's
//! are among them: the proof that it sent nothing to a process that did
//! not opt in), are counted in the `signals` map; the suspend and resume
//! signals of a registered process also in its registry entry.
//!
//! Signals users send to processes that did not register are not counted:
//! the map is an LRU, and a user sending many signals to many of her own
//! processes would otherwise evict everyone's entries.

use aya_ebpf::{
    helpers::{bpf_get_current_uid_gid, bpf_ktime_get_boot_ns},
    programs::TracePointContext,
};
use suspend_common::signals::{FIRST_COUNTED_SIGNAL, SignalKey, SignalStats};

use crate::{
    layout::{self, current_tgid},
    maps::{registry, signals},
};

pub fn on_generate(ctx: &TracePointContext) {
    let _ = try_on_generate(ctx);
}

fn try_on_generate(ctx: &TracePointContext) -> Result<(), i32> {
    let l = layout::get();
    let sig = layout::read::<i32>(ctx, l.generate_sig)? as u32;
    if sig < FIRST_COUNTED_SIGNAL {
        return Ok(());
    }
    let pid = layout::read::<i32>(ctx, l.generate_pid)? as u32;
    let code = layout::read::<i32>(ctx, l.generate_code)?;
    // SAFETY: a plain helper call with no arguments.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    let key = SignalKey { pid, signal: sig };
    // `SI_USER`, `SI_QUEUE`, `SI_TKILL`: sent by the current task, whose
    // uid is then the sender's (other codes come from the kernel, in any
    // task's context).
    let by_root = matches!(code, 0 | -1 | -6) && bpf_get_current_uid_gid() as u32 == 0;
    // SAFETY: a read-only lookup of the registry map.
    let registered = unsafe { registry.get(&pid) }.is_some();
    if !registered && !by_root {
        return Ok(());
    }
    match signals.get_ptr_mut(&key) {
        // SAFETY: a live map value; the verifier bounds every access.
        Some(stats) => unsafe {
            (*stats).generated += 1;
            (*stats).last_generated_ns = now;
            (*stats).last_sender = current_tgid();
            (*stats).last_code = code;
        },
        None => {
            let stats = SignalStats {
                generated: 1,
                last_generated_ns: now,
                last_sender: current_tgid(),
                last_code: code,
                ..SignalStats::default()
            };
            signals.insert(&key, &stats, 0)?;
        }
    }
    if let Some(entry) = registry.get_ptr_mut(&pid) {
        // SAFETY: a live registry value; the verifier bounds every access.
        unsafe {
            if sig == (*entry).suspend_signal {
                (*entry).suspend_sent += 1;
                (*entry).last_sent_ns = now;
            } else if sig == (*entry).resume_signal {
                (*entry).resume_sent += 1;
            }
        }
    }
    Ok(())
}

pub fn on_deliver(ctx: &TracePointContext) {
    let _ = try_on_deliver(ctx);
}

fn try_on_deliver(ctx: &TracePointContext) -> Result<(), i32> {
    let l = layout::get();
    let sig = layout::read::<i32>(ctx, l.deliver_sig)? as u32;
    if sig < FIRST_COUNTED_SIGNAL {
        return Ok(());
    }
    let handler = layout::read::<u64>(ctx, l.deliver_handler)?;
    let tgid = current_tgid();
    // SAFETY: a plain helper call with no arguments.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    let key = SignalKey {
        pid: tgid,
        signal: sig,
    };
    match signals.get_ptr_mut(&key) {
        // SAFETY: a live map value; the verifier bounds every access.
        Some(stats) => unsafe {
            (*stats).delivered += 1;
            (*stats).last_delivered_ns = now;
            (*stats).last_handler = handler;
        },
        // Counted from its generation on (see `try_on_generate`), or a
        // registered process's.
        // SAFETY: a read-only lookup of the registry map.
        None if unsafe { registry.get(&tgid) }.is_some() => {
            let stats = SignalStats {
                delivered: 1,
                last_delivered_ns: now,
                last_handler: handler,
                ..SignalStats::default()
            };
            signals.insert(&key, &stats, 0)?;
        }
        None => {}
    }
    if let Some(entry) = registry.get_ptr_mut(&tgid) {
        // SAFETY: a live registry value; the verifier bounds every access.
        unsafe {
            if sig == (*entry).suspend_signal {
                (*entry).suspend_delivered += 1;
                (*entry).last_delivered_ns = now;
            } else if sig == (*entry).resume_signal {
                (*entry).resume_delivered += 1;
            }
        }
    }
    Ok(())
}
