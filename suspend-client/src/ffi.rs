//! The C ABI (`include/suspend.h`). Same semantics as the Rust API; errors
//! are negative errno values.

use std::{ffi::c_char, sync::atomic::Ordering};

use crate::{
    api::{Context, Error, Options, ResumeInfo, SuspendRequest},
    critical,
    registration::{self, Callbacks},
    state::{COnResume, COnSuspend, STATE},
};

/// `struct suspend_handlers`.
#[repr(C)]
pub struct SuspendHandlers {
    pub on_suspend: Option<COnSuspend>,
    pub on_resume: Option<COnResume>,
    pub data: *mut libc::c_void,
}

/// `struct suspend_options`.
#[repr(C)]
pub struct SuspendOptions {
    pub suspend_signal: libc::c_int,
    pub resume_signal: libc::c_int,
    pub context: u32,
    pub _reserved: u32,
}

fn code(result: Result<crate::Registration, Error>) -> libc::c_int {
    match result {
        Ok(r) if r.agent == crate::AgentStatus::Acknowledged => 0,
        Ok(_) => 1,
        Err(e) => e.code(),
    }
}

/// Registers with the default options. Returns 0 (the agent acknowledged),
/// 1 (no agent now; picked up when it starts) or a negative errno.
///
/// # Safety
/// `handlers` must be null or point at a valid `struct suspend_handlers`
/// whose functions stay valid while registered.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn suspend_register(handlers: *const SuspendHandlers) -> libc::c_int {
    // SAFETY: forwarded contract.
    unsafe { suspend_register_with(handlers, std::ptr::null()) }
}

/// Registers with `options` (null: defaults).
///
/// # Safety
/// As [`suspend_register`]; `options` must be null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn suspend_register_with(
    handlers: *const SuspendHandlers,
    options: *const SuspendOptions,
) -> libc::c_int {
    // SAFETY: the caller passes null or a valid pointer.
    let callbacks = match unsafe { handlers.as_ref() } {
        Some(h) => Callbacks::C {
            on_suspend: h.on_suspend,
            on_resume: h.on_resume,
            data: h.data,
        },
        None => Callbacks::C {
            on_suspend: None,
            on_resume: None,
            data: std::ptr::null_mut(),
        },
    };
    let mut opts = Options::default();
    // SAFETY: as above.
    if let Some(o) = unsafe { options.as_ref() } {
        if o.suspend_signal != 0 {
            opts.suspend_signal = o.suspend_signal;
        }
        if o.resume_signal != 0 {
            opts.resume_signal = o.resume_signal;
        }
        opts.context = context_of(o.context);
    }
    code(registration::register_callbacks(callbacks, opts, false))
}

/// `struct suspend_options`'s `context`: `SUSPEND_CONTEXT_SIGNAL`, or the
/// helper thread.
fn context_of(context: u32) -> Context {
    if context == 1 {
        Context::Signal
    } else {
        Context::Thread
    }
}

/// Withdraws the registration: 0 or a negative errno.
#[unsafe(no_mangle)]
pub extern "C" fn suspend_unregister() -> libc::c_int {
    match registration::unregister() {
        Ok(()) => 0,
        Err(e) => e.code(),
    }
}

/// 1 when this process is registered, 0 otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn suspend_is_registered() -> libc::c_int {
    registration::is_registered().into()
}

/// Enters a critical section (async-signal-safe, nestable).
#[unsafe(no_mangle)]
pub extern "C" fn suspend_critical_enter() {
    critical::enter();
}

/// Leaves a critical section.
#[unsafe(no_mangle)]
pub extern "C" fn suspend_critical_leave() {
    critical::leave();
}

/// The suspend signal this process registered with (0: not registered).
#[unsafe(no_mangle)]
pub extern "C" fn suspend_signal_number() -> libc::c_int {
    if registration::is_registered() {
        STATE.suspend_signal.load(Ordering::Acquire)
    } else {
        0
    }
}

/// A static description of a code returned by this library.
#[unsafe(no_mangle)]
pub extern "C" fn suspend_strerror(code: libc::c_int) -> *const c_char {
    let text: &'static [u8] = match code {
        0 => b"registered with the suspend agent\0",
        1 => b"registered; no agent runs now, it picks the registration up when it starts\0",
        c if c == -libc::EINVAL => {
            b"the signals are not two distinct real-time signals in 34..64\0"
        }
        c if c == -libc::EALREADY => b"this process is registered already\0",
        c if c == -libc::ENOENT => b"this process is not registered\0",
        c if c == -libc::EPROTO => b"the suspend agent refused the registration\0",
        _ => b"system call failed (see errno value)\0",
    };
    text.as_ptr().cast()
}

// The C header declares these layouts; keep them in step.
const _: () = assert!(size_of::<SuspendRequest>() == 16);
const _: () = assert!(size_of::<ResumeInfo>() == 16);
const _: () = assert!(size_of::<SuspendOptions>() == 16);

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use suspend_common::wire::{REQUEST_DRY_RUN, REQUEST_LEAVE_RUNNING, REQUEST_WAIT};

    use super::*;
    use crate::{
        api::{Decision, Reason},
        state::c_decision,
    };

    /// The value `#define NAME` has in `include/suspend.h`.
    fn header(name: &str) -> i64 {
        include_str!("../include/suspend.h")
            .lines()
            .find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("#define") && words.next() == Some(name))
                    .then(|| words.next())
                    .flatten()
            })
            .and_then(|value| value.trim_end_matches('u').parse().ok())
            .unwrap_or_else(|| panic!("suspend.h has no number for {name}"))
    }

    #[test]
    fn the_c_header_says_what_the_library_does() {
        let decision = |name| c_decision(header(name) as libc::c_int);
        assert_eq!(decision("SUSPEND_READY"), Decision::Ready);
        assert_eq!(decision("SUSPEND_BUSY"), Decision::Busy);
        assert_eq!(decision("SUSPEND_REFUSE"), Decision::Refuse);
        for (name, reason) in [
            ("SUSPEND_RESTORED", Reason::Restored),
            ("SUSPEND_CONTINUED", Reason::Continued),
            ("SUSPEND_ABORTED", Reason::Aborted),
        ] {
            assert_eq!(header(name), i64::from(reason.code()), "{name}");
        }
        for (name, flag) in [
            ("SUSPEND_REQUEST_WAIT", REQUEST_WAIT),
            ("SUSPEND_REQUEST_DRY_RUN", REQUEST_DRY_RUN),
            ("SUSPEND_REQUEST_LEAVE_RUNNING", REQUEST_LEAVE_RUNNING),
        ] {
            assert_eq!(header(name), i64::from(flag), "{name}");
        }
        let context = |name| context_of(header(name) as u32);
        assert_eq!(context("SUSPEND_CONTEXT_THREAD"), Context::Thread);
        assert_eq!(context("SUSPEND_CONTEXT_SIGNAL"), Context::Signal);
        let defaults = Options::default();
        assert_eq!(
            header("SUSPEND_DEFAULT_SUSPEND_SIGNAL"),
            i64::from(defaults.suspend_signal)
        );
        assert_eq!(
            header("SUSPEND_DEFAULT_RESUME_SIGNAL"),
            i64::from(defaults.resume_signal)
        );
    }

    #[test]
    fn a_c_on_suspend_answering_anything_else_refuses() {
        assert_eq!(c_decision(3), Decision::Refuse);
        assert_eq!(c_decision(-1), Decision::Refuse);
    }

    fn strerror(code: libc::c_int) -> &'static str {
        // SAFETY: suspend_strerror returns a static NUL-terminated string.
        unsafe { CStr::from_ptr(suspend_strerror(code)) }
            .to_str()
            .unwrap()
    }

    #[test]
    fn every_code_the_library_returns_has_its_own_description() {
        let generic = strerror(-libc::EIO);
        let codes = [
            code(Ok(crate::Registration {
                agent: crate::AgentStatus::Acknowledged,
            })),
            code(Ok(crate::Registration {
                agent: crate::AgentStatus::Pending,
            })),
            code(Err(Error::InvalidSignals {
                suspend: 1,
                resume: 2,
            })),
            code(Err(Error::AlreadyRegistered)),
            code(Err(Error::NotRegistered)),
            code(Err(Error::Refused { code: 1 })),
        ];
        assert_eq!(codes[..2], [0, 1]);
        let texts: Vec<&str> = codes.iter().map(|&c| strerror(c)).collect();
        for (i, text) in texts.iter().enumerate() {
            assert_ne!(*text, generic, "code {}", codes[i]);
            assert!(!texts[..i].contains(text), "{text:?} twice");
        }
        let os = code(Err(Error::Os {
            call: "mmap",
            errno: libc::ENOMEM,
        }));
        assert_eq!((os, strerror(os)), (-libc::ENOMEM, generic));
    }
}
