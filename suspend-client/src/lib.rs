//! Opt in to suspend.
//!
//! A process that calls [`register`] can be suspended by the suspend agent
//! (`suspend-agent suspend PID`), and only then: a process that never
//! registered is never touched. Before anything happens the process is asked
//! — its `on_suspend` callback answers [`Decision::Ready`],
//! [`Decision::Busy`] (not now) or [`Decision::Refuse`] — and afterwards it
//! is told how it ended: `on_resume` runs with [`Reason::Restored`],
//! [`Reason::Continued`] or [`Reason::Aborted`].
//!
//! ```no_run
//! use suspend_client::{Decision, Handlers, ResumeInfo, SuspendRequest};
//!
//! fn on_suspend(_: &SuspendRequest) -> Decision {
//!     // flush, close what cannot be suspended, or say Busy
//!     Decision::Ready
//! }
//! fn on_resume(info: &ResumeInfo) {
//!     println!("resumed: {:?}", info.reason());
//! }
//!
//! suspend_client::register(Handlers { on_suspend, on_resume })?;
//! {
//!     let _cs = suspend_client::critical_section(); // no suspension in here
//! }
//! # Ok::<(), suspend_client::Error>(())
//! ```
//!
//! Callbacks run on a helper thread of the library by default
//! ([`Context::Thread`]): they may lock, allocate and do I/O. With
//! [`Context::Signal`] they run inside the signal handler instead, with no
//! helper thread, and must be async-signal-safe.
//!
//! The same library is a C library (`libsuspend_client.so`/`.a`,
//! `include/suspend.h`) and the preload shim of `suspend-agent run`.

mod api;
mod block;
mod critical;
mod ffi;
mod handler;
mod helper;
mod preload;
mod protocol;
mod registration;
mod request;
mod state;
mod sys;

pub use api::{
    AgentStatus, Context, Decision, Error, Handlers, Options, Reason, Registration, ResumeInfo,
    SuspendRequest,
};
pub use critical::{CriticalSection, critical_section};
pub use registration::{is_registered, register, register_with, unregister};
