//! Signals: the action the stub gives each signal again, the signals
//! pending for the whole process and for each thread (raw `siginfo_t`s,
//! queued again by the stub), and the interval timers (`setitimer`) that
//! send `SIGALRM`, `SIGVTALRM` and `SIGPROF`.

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use suspend_common::restore::{ITimer, SigAction, SigInfo};

use crate::image::format::{self, Thread};

/// Every signal's action but `SIGKILL`'s and `SIGSTOP`'s (which cannot
/// have one).
pub fn actions(saved: &[format::SigAction]) -> Vec<SigAction> {
    saved
        .iter()
        .filter(|a| a.signal != libc::SIGKILL as u32 && a.signal != libc::SIGSTOP as u32)
        .map(|a| SigAction {
            handler: a.handler,
            flags: a.flags,
            restorer: a.restorer,
            mask: a.mask,
            signal: a.signal,
            _pad: 0,
        })
        .collect()
}

/// The signals pending for the whole process (what does not decode is
/// left out).
pub fn shared_pending(saved: &[String]) -> Vec<SigInfo> {
    saved.iter().filter_map(|s| siginfo(s)).collect()
}

/// The signals pending for thread `t` of process `pid`; then, from an
/// image older than that field's siginfo, the signal it was stopped on
/// its way to deliver, as `kill` from the process itself sends it (but
/// with `si_uid` 0).
pub fn thread_pending(t: &Thread, pid: u32) -> Vec<SigInfo> {
    let mut pending: Vec<SigInfo> = t.pending.iter().filter_map(|s| siginfo(s)).collect();
    if let Some(signal) = t.stopped_with {
        let mut info = SigInfo { bytes: [0; 128] };
        info.bytes[..4].copy_from_slice(&signal.to_ne_bytes());
        info.bytes[16..20].copy_from_slice(&pid.to_ne_bytes());
        pending.push(info);
    }
    pending
}

/// A saved `siginfo_t` (base64): zero-filled or cut to its 128 bytes;
/// `None` if it is not base64.
fn siginfo(b64: &str) -> Option<SigInfo> {
    let raw = B64.decode(b64).ok()?;
    let mut info = SigInfo { bytes: [0; 128] };
    let n = raw.len().min(128);
    info.bytes[..n].copy_from_slice(&raw[..n]);
    Some(info)
}

/// The armed interval timers, each with the time it had left.
pub fn itimers(saved: &[format::ITimer]) -> Vec<ITimer> {
    saved
        .iter()
        .map(|t| ITimer {
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
