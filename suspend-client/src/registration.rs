//! Registering with the agent and withdrawing.

use std::sync::{Mutex, atomic::Ordering};

use suspend_common::{
    MAX_SIGNAL, MIN_SIGNAL,
    registry::{CONTEXT_SIGNAL, CONTEXT_THREAD},
    wire::{MSG_ERROR, MSG_REGISTER, MSG_REGISTERED, MSG_UNREGISTER, Message},
};

use crate::{
    api::{AgentStatus, Context, Error, Handlers, Options, Registration},
    block, handler, helper,
    protocol::Conn,
    state::{CALLBACKS_C, CALLBACKS_RUST, COnResume, COnSuspend, STATE},
    sys,
};

/// Serialises register/unregister (never taken in a signal handler).
static LOCK: Mutex<()> = Mutex::new(());

/// The callbacks to store.
pub(crate) enum Callbacks {
    Rust(Handlers),
    C {
        on_suspend: Option<COnSuspend>,
        on_resume: Option<COnResume>,
        data: *mut libc::c_void,
    },
}

/// Registers this process with the default [`Options`]: signals 44
/// (suspend) and 43 (resume), callbacks on a helper thread.
pub fn register(handlers: Handlers) -> Result<Registration, Error> {
    register_with(handlers, Options::default())
}

/// Registers this process: installs the signal handlers, publishes the
/// client block and tells the agent. If no agent runs, the registration is
/// [`AgentStatus::Pending`] and the agent picks it up when it starts.
pub fn register_with(handlers: Handlers, options: Options) -> Result<Registration, Error> {
    register_callbacks(Callbacks::Rust(handlers), options, false)
}

pub(crate) fn register_callbacks(
    callbacks: Callbacks,
    options: Options,
    via_preload: bool,
) -> Result<Registration, Error> {
    check_signals(&options)?;
    let _lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(ms) = std::env::var("SUSPEND_FAULT_PARK_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        STATE.park_delay_ms.store(ms, Ordering::Relaxed);
    }
    if STATE.registered_here() {
        if !STATE.via_preload.load(Ordering::Acquire) {
            return Err(Error::AlreadyRegistered);
        }
        // The program registers itself under the preload shim: its own
        // handlers replace the shim's defaults.
        unregister_locked()?;
    }
    let token = sys::random_token().map_err(|errno| Error::Os {
        call: "getrandom",
        errno,
    })?;
    let context = match options.context {
        Context::Thread => CONTEXT_THREAD,
        Context::Signal => CONTEXT_SIGNAL,
    };
    match callbacks {
        Callbacks::Rust(h) => {
            STATE
                .on_suspend
                .store(h.on_suspend as usize, Ordering::Release);
            STATE
                .on_resume
                .store(h.on_resume as usize, Ordering::Release);
            STATE.c_data.store(std::ptr::null_mut(), Ordering::Release);
            STATE.callbacks.store(CALLBACKS_RUST, Ordering::Release);
        }
        Callbacks::C {
            on_suspend,
            on_resume,
            data,
        } => {
            STATE
                .on_suspend
                .store(on_suspend.map_or(0, |f| f as usize), Ordering::Release);
            STATE
                .on_resume
                .store(on_resume.map_or(0, |f| f as usize), Ordering::Release);
            STATE.c_data.store(data, Ordering::Release);
            STATE.callbacks.store(CALLBACKS_C, Ordering::Release);
        }
    }
    STATE.token.store(token, Ordering::Release);
    STATE
        .suspend_signal
        .store(options.suspend_signal, Ordering::Release);
    STATE
        .resume_signal
        .store(options.resume_signal, Ordering::Release);
    STATE.context.store(context, Ordering::Release);
    STATE.via_preload.store(via_preload, Ordering::Release);
    if options.context == Context::Thread {
        helper::ensure()?;
    }
    handler::install(options.suspend_signal, options.resume_signal).map_err(|errno| Error::Os {
        call: "sigaction",
        errno,
    })?;
    let block_addr = block::publish(
        token,
        options.suspend_signal,
        options.resume_signal,
        context,
        handler::on_suspend_signal as *const () as usize,
        handler::on_resume_signal as *const () as usize,
    )?;
    STATE.pid.store(sys::getpid(), Ordering::Release);

    let conn = match Conn::connect() {
        Ok(conn) => conn,
        // No agent now: the block stays, and the agent's start-up scan
        // registers this process.
        Err(libc::ENOENT | libc::ECONNREFUSED) => {
            return Ok(Registration {
                agent: AgentStatus::Pending,
            });
        }
        Err(errno) => {
            rollback();
            return Err(Error::Os {
                call: "connect",
                errno,
            });
        }
    };
    conn.set_timeout(Some(std::time::Duration::from_secs(5)));
    let message = Message {
        block_addr,
        ..Message::new(MSG_REGISTER)
    };
    let reply = conn.send(&message).and_then(|()| conn.recv(false));
    match reply {
        Ok(Some(m)) if m.kind == MSG_REGISTERED => Ok(Registration {
            agent: AgentStatus::Acknowledged,
        }),
        Ok(Some(m)) if m.kind == MSG_ERROR => {
            rollback();
            Err(Error::Refused { code: m.code })
        }
        // An agent that is going away: it will find the block next start.
        Ok(_) | Err(_) => Ok(Registration {
            agent: AgentStatus::Pending,
        }),
    }
}

/// The signals must be two distinct real-time signals the agent may send.
fn check_signals(options: &Options) -> Result<(), Error> {
    let valid = |s: i32| (MIN_SIGNAL as i32..=MAX_SIGNAL as i32).contains(&s);
    if !valid(options.suspend_signal)
        || !valid(options.resume_signal)
        || options.suspend_signal == options.resume_signal
    {
        return Err(Error::InvalidSignals {
            suspend: options.suspend_signal,
            resume: options.resume_signal,
        });
    }
    Ok(())
}

/// After a restore the agent has seen this process exit: tell it again
/// that it is registered. Best effort: an agent that is not running finds
/// the block when it starts.
pub(crate) fn announce_again() {
    let Some(block) = STATE.block() else { return };
    let Ok(conn) = Conn::connect() else { return };
    conn.set_timeout(Some(std::time::Duration::from_secs(5)));
    let message = Message {
        block_addr: std::ptr::from_ref(block) as u64,
        ..Message::new(MSG_REGISTER)
    };
    if conn.send(&message).is_ok() {
        let _ = conn.recv(false);
    }
}

fn rollback() {
    STATE.pid.store(0, Ordering::Release);
    block::deactivate();
}

/// Withdraws this process's registration. Its handlers stay installed but
/// ignore every signal from then on.
pub fn unregister() -> Result<(), Error> {
    let _lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(ms) = std::env::var("SUSPEND_FAULT_PARK_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        STATE.park_delay_ms.store(ms, Ordering::Relaxed);
    }
    unregister_locked()
}

fn unregister_locked() -> Result<(), Error> {
    if !STATE.registered_here() {
        return Err(Error::NotRegistered);
    }
    rollback();
    if let Ok(conn) = Conn::connect() {
        conn.set_timeout(Some(std::time::Duration::from_secs(5)));
        if conn.send(&Message::new(MSG_UNREGISTER)).is_ok() {
            let _ = conn.recv(false);
        }
    }
    Ok(())
}

/// Whether this process is registered (a forked child is not, even if its
/// parent was).
pub fn is_registered() -> bool {
    STATE.registered_here()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(suspend: i32, resume: i32) -> Result<(), Error> {
        check_signals(&Options {
            suspend_signal: suspend,
            resume_signal: resume,
            context: Context::Thread,
        })
    }

    #[test]
    fn only_two_distinct_real_time_signals_are_taken() {
        assert_eq!(check(44, 43), Ok(()));
        assert_eq!(check(34, 64), Ok(()));
        assert_eq!(check(64, 34), Ok(()));
        for (suspend, resume) in [(33, 43), (44, 65), (0, 43), (-44, 43), (libc::SIGUSR1, 43)] {
            assert_eq!(
                check(suspend, resume),
                Err(Error::InvalidSignals { suspend, resume })
            );
        }
        assert_eq!(
            check(44, 44),
            Err(Error::InvalidSignals {
                suspend: 44,
                resume: 44
            })
        );
        assert_eq!(check_signals(&Options::default()), Ok(()));
    }
}
