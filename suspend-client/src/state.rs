//! The library's global state. Everything a signal handler reads is an
//! atomic: handlers never lock.

use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

use suspend_common::client_block::ClientBlock;

use crate::api::{Decision, ResumeInfo, SuspendRequest};

/// Callbacks as stored: a Rust function pointer, or a C function pointer
/// with its user data.
pub const CALLBACKS_RUST: u32 = 1;
pub const CALLBACKS_C: u32 = 2;

/// C callback types (see `include/suspend.h`).
pub type COnSuspend = unsafe extern "C" fn(*const SuspendRequest, *mut libc::c_void) -> libc::c_int;
pub type COnResume = unsafe extern "C" fn(*const ResumeInfo, *mut libc::c_void);

pub struct State {
    /// Pid that registered; 0 when not registered. A forked child sees its
    /// parent's pid here and so is not registered.
    pub pid: AtomicI32,
    pub token: AtomicU64,
    pub suspend_signal: AtomicI32,
    pub resume_signal: AtomicI32,
    /// `CONTEXT_THREAD` or `CONTEXT_SIGNAL`.
    pub context: AtomicU32,
    /// The block in the memfd page; valid while `block_pid == getpid()`.
    pub block: AtomicPtr<ClientBlock>,
    pub block_pid: AtomicI32,
    /// Whether the registration came from the preload shim.
    pub via_preload: AtomicBool,

    pub callbacks: AtomicU32,
    pub on_suspend: AtomicUsize,
    pub on_resume: AtomicUsize,
    pub c_data: AtomicPtr<libc::c_void>,

    /// Futex word the helper thread sleeps on; bumped for every event.
    pub wake: AtomicU32,
    /// Suspend signals the helper has not served yet.
    pub pending_suspend: AtomicU32,
    /// Pid the helper thread runs in (0: none in this process).
    pub helper_pid: AtomicI32,

    /// A request is being served (from the signal to the end of on_resume).
    pub serving: AtomicBool,
    /// Tid of the thread deciding or parked for a request (0: none); also a
    /// futex word critical-section entries wait on.
    pub suspending_tid: AtomicU32,
    /// Set by a valid resume signal while a request is parked.
    pub restored: AtomicBool,

    /// Active critical sections, all threads together.
    pub critical_depth: AtomicU32,
    /// Connection of a request held until the last critical section ends.
    pub held_fd: AtomicI32,
    pub held_id: AtomicU64,
    pub held_flags: AtomicU32,
    pub held_timeout_ms: AtomicU32,
    /// Connection handed to the helper when the last section ended.
    pub held_ready_fd: AtomicI32,
    /// Test hook (`SUSPEND_FAULT_PARK_DELAY_MS`, read at registration):
    /// milliseconds between answering ready and waiting for the outcome,
    /// so a test can freeze the process right there.
    pub park_delay_ms: AtomicU32,
}

pub static STATE: State = State {
    pid: AtomicI32::new(0),
    token: AtomicU64::new(0),
    suspend_signal: AtomicI32::new(0),
    resume_signal: AtomicI32::new(0),
    context: AtomicU32::new(0),
    block: AtomicPtr::new(std::ptr::null_mut()),
    block_pid: AtomicI32::new(0),
    via_preload: AtomicBool::new(false),
    callbacks: AtomicU32::new(0),
    on_suspend: AtomicUsize::new(0),
    on_resume: AtomicUsize::new(0),
    c_data: AtomicPtr::new(std::ptr::null_mut()),
    wake: AtomicU32::new(0),
    pending_suspend: AtomicU32::new(0),
    helper_pid: AtomicI32::new(0),
    serving: AtomicBool::new(false),
    suspending_tid: AtomicU32::new(0),
    restored: AtomicBool::new(false),
    critical_depth: AtomicU32::new(0),
    held_fd: AtomicI32::new(-1),
    held_id: AtomicU64::new(0),
    held_flags: AtomicU32::new(0),
    held_timeout_ms: AtomicU32::new(0),
    park_delay_ms: AtomicU32::new(0),
    held_ready_fd: AtomicI32::new(-1),
};

/// What a C `on_suspend`'s answer means (`SUSPEND_READY`, `SUSPEND_BUSY`;
/// anything else refuses).
pub fn c_decision(answer: libc::c_int) -> Decision {
    match answer {
        0 => Decision::Ready,
        1 => Decision::Busy,
        _ => Decision::Refuse,
    }
}

impl State {
    /// Whether this process (not a forked copy of it) is registered.
    pub fn registered_here(&self) -> bool {
        let pid = self.pid.load(Ordering::Acquire);
        pid != 0 && pid == crate::sys::getpid()
    }

    /// Calls `on_suspend`.
    pub fn call_on_suspend(&self, request: &SuspendRequest) -> Decision {
        let f = self.on_suspend.load(Ordering::Acquire);
        match self.callbacks.load(Ordering::Acquire) {
            CALLBACKS_RUST if f != 0 => {
                // SAFETY: `on_suspend` holds a `fn(&SuspendRequest) -> Decision`
                // whenever `callbacks` is CALLBACKS_RUST (registration stores
                // both, callbacks last).
                let f: fn(&SuspendRequest) -> Decision = unsafe { std::mem::transmute(f) };
                f(request)
            }
            CALLBACKS_C if f != 0 => {
                // SAFETY: as above, for the C callback type; the C caller
                // promised the pointer is a valid function.
                let f: COnSuspend = unsafe { std::mem::transmute(f) };
                // SAFETY: calling the application's C callback with a valid
                // request pointer and its own user data.
                c_decision(unsafe { f(request, self.c_data.load(Ordering::Acquire)) })
            }
            _ => Decision::Ready,
        }
    }

    /// Calls `on_resume`.
    pub fn call_on_resume(&self, info: &ResumeInfo) {
        let f = self.on_resume.load(Ordering::Acquire);
        match self.callbacks.load(Ordering::Acquire) {
            CALLBACKS_RUST if f != 0 => {
                // SAFETY: see `call_on_suspend`.
                let f: fn(&ResumeInfo) = unsafe { std::mem::transmute(f) };
                f(info)
            }
            CALLBACKS_C if f != 0 => {
                // SAFETY: see `call_on_suspend`.
                let f: COnResume = unsafe { std::mem::transmute(f) };
                // SAFETY: the application's callback with valid arguments.
                unsafe { f(info, self.c_data.load(Ordering::Acquire)) }
            }
            _ => {}
        }
    }

    /// The block, if this process has one.
    pub fn block(&self) -> Option<&'static ClientBlock> {
        if self.block_pid.load(Ordering::Acquire) != crate::sys::getpid() {
            return None;
        }
        let ptr = self.block.load(Ordering::Acquire);
        // SAFETY: a non-null `block` with `block_pid` == our pid points at
        // the page `block::create` mapped in this process and never unmaps.
        unsafe { ptr.as_ref() }
    }

    /// Records the parked thread in the block (0: none), where the agent
    /// reads it to send the resume signal to that thread.
    pub fn set_parked_tid(&self, tid: u32) {
        if let Some(block) = self.block() {
            let ptr = (&raw const block.parked_tid).cast_mut();
            // SAFETY: the block's page is writable shared memory of this
            // process; a volatile u32 store is atomic on every target Linux
            // supports here, and the agent only reads it.
            unsafe { ptr.write_volatile(tid) };
        }
    }

    /// Wakes the helper thread.
    pub fn wake_helper(&self) {
        self.wake.fetch_add(1, Ordering::SeqCst);
        crate::sys::futex_wake_all(&self.wake);
    }
}
