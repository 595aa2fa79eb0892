//! The argument block the agent hands to the restorer stub
//! (`suspend-restorer`), and the report the stub writes back.
//!
//! The agent builds one region in its restore child: the stub's code, this
//! block, the arrays it points to and a stack per thread. Every pointer in
//! here is an absolute address inside that region (the agent knows where it
//! maps it), so the stub needs no relocation. The stub never allocates and
//! never reads the image: everything it does is spelled out here.

/// `"SUSPREST"` as a little-endian u64.
pub const RESTORE_MAGIC: u64 = u64::from_le_bytes(*b"SUSPREST");

/// Version of this layout: the agent and the stub it embeds are built
/// together, the check catches a stale blob.
pub const RESTORE_ABI: u32 = 4;

/// Bytes of stub stack per thread.
pub const STUB_STACK: u64 = 64 * 1024;

/// An address range `[start, end)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

/// `MOVE_*` kinds.
pub const MOVE_REMAP: u32 = 1;
/// A fresh anonymous mapping, no contents (`MAP_FIXED` at `to`).
pub const MOVE_FRESH: u32 = 2;

/// `Move::flags`: the mapping grows down (`[stack]`).
pub const MOVE_GROWSDOWN: u32 = 1;

/// One mapping of the image put in place: the contents prepared at `from`
/// are moved to `to` (`mremap`), or a fresh mapping is made at `to`; then
/// its protection is set.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Move {
    pub from: u64,
    pub to: u64,
    pub len: u64,
    /// `PROT_*` it ends with.
    pub prot: u32,
    /// `MOVE_REMAP` or `MOVE_FRESH`.
    pub kind: u32,
    /// `MOVE_*` flags.
    pub flags: u32,
    pub _pad: u32,
}

/// `struct prctl_mm_map` (`PR_SET_MM_MAP`), as the kernel defines it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmMap {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    pub auxv: u64,
    pub auxv_size: u32,
    pub exe_fd: u32,
}

/// One signal's action: `rt_sigaction(signal, {handler, flags, restorer,
/// mask})`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
    pub signal: u32,
    pub _pad: u32,
}

/// An interval timer: `setitimer(which, {interval, value})`, times in µs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ITimer {
    pub which: u32,
    pub _pad: u32,
    pub interval_us: u64,
    pub value_us: u64,
}

/// A raw `siginfo_t` to queue again.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    pub bytes: [u8; 128],
}

/// `ThreadArgs::flags`.
pub const THREAD_HAS_RSEQ: u32 = 1;
pub const THREAD_HAS_TID_ADDRESS: u32 = 2;
pub const THREAD_HAS_ALTSTACK: u32 = 4;
/// The `cap_*` fields and `securebits` hold the thread's confinement.
pub const THREAD_HAS_CAPS: u32 = 8;
/// The thread had `no_new_privs`.
pub const THREAD_NO_NEW_PRIVS: u32 = 16;
/// `sched_attr` and `affinity` hold the thread's scheduling.
pub const THREAD_HAS_SCHED: u32 = 32;
/// `timer_slack_ns` holds the thread's timer slack.
pub const THREAD_HAS_TIMER_SLACK: u32 = 64;

/// What one thread restores itself: the kernel state that is not
/// registers (those, and the signal mask, the agent sets with ptrace once
/// every thread waits in the stub).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadArgs {
    pub tid: u32,
    /// `THREAD_*` flags.
    pub flags: u32,
    /// Top of this thread's stub stack (16-byte aligned).
    pub stack_top: u64,
    pub rseq_addr: u64,
    pub rseq_len: u32,
    pub rseq_signature: u32,
    pub robust_head: u64,
    pub robust_len: u64,
    pub tid_address: u64,
    pub altstack_sp: u64,
    pub altstack_size: u64,
    pub altstack_flags: u32,
    /// Signals pending for this thread (`SigInfo`s at `pending`).
    pub pending_count: u32,
    pub pending: u64,
    /// Capability sets (bit `n`: capability `n`), with `THREAD_HAS_CAPS`.
    pub cap_inheritable: u64,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub cap_bounding: u64,
    pub cap_ambient: u64,
    /// `PR_GET_SECUREBITS`, with `THREAD_HAS_CAPS`.
    pub securebits: u32,
    /// Bytes of the CPU mask at `affinity`, with `THREAD_HAS_SCHED`.
    pub affinity_len: u32,
    /// A `struct sched_attr` (48 bytes), with `THREAD_HAS_SCHED`.
    pub sched_attr: u64,
    /// The CPU mask for `sched_setaffinity`, with `THREAD_HAS_SCHED`.
    pub affinity: u64,
    /// `PR_SET_TIMERSLACK`, with `THREAD_HAS_TIMER_SLACK`.
    pub timer_slack_ns: u64,
}

/// Credentials, set by every thread for itself last.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    /// Real, effective, saved, filesystem.
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    /// Supplementary groups (`u32`s at `groups`).
    pub groups: u64,
    pub groups_count: u32,
    pub _pad: u32,
}

/// `RestoreArgs::flags`: leave the vDSO where it is (a test hook that must
/// break the restore).
pub const RESTORE_SKIP_VDSO: u32 = 1;
/// The process was a child subreaper (`PR_SET_CHILD_SUBREAPER`).
pub const RESTORE_CHILD_SUBREAPER: u32 = 2;
/// Transparent huge pages were disabled for it (`PR_SET_THP_DISABLE`).
pub const RESTORE_THP_DISABLE: u32 = 4;

/// The whole block. `threads[0]` is the thread the stub starts in (the
/// process's main thread).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreArgs {
    pub magic: u64,
    pub abi: u32,
    /// `RESTORE_*` flags.
    pub flags: u32,
    /// Sorted ranges never unmapped: the stub's own region, the prepared
    /// contents, the current vDSO/vvar.
    pub keep: u64,
    pub keep_count: u32,
    /// The pipe the stub reports on ([`Report`]).
    pub report_fd: i32,
    /// The kernel's mappings (vDSO, vvar), moved before anything else in
    /// two passes, so that no final place overlaps a current one: first
    /// each from `from` to `to` (a free place), then each from `to` to
    /// `kernel_final[i]`.
    pub kernel: u64,
    pub kernel_count: u32,
    pub _pad0: u32,
    /// Final addresses of the kernel mappings, one per `kernel` entry.
    pub kernel_final: u64,
    /// The image's mappings, in order.
    pub moves: u64,
    pub moves_count: u32,
    pub sigactions_count: u32,
    pub sigactions: u64,
    pub threads: u64,
    pub threads_count: u32,
    pub shared_pending_count: u32,
    pub shared_pending: u64,
    pub itimers: u64,
    pub itimers_count: u32,
    pub _pad1: u32,
    pub mm: MmMap,
    pub creds: Creds,
    /// Threads that finished their part (a futex word).
    pub ready: u32,
    /// Futex word every thread parks on when done; never changes.
    pub park: u32,
}

/// `Report::kind`.
pub const REPORT_READY: u32 = 1;
pub const REPORT_FAILED: u32 = 2;

/// What the stub writes to `report_fd`: once, when every thread is parked
/// (`REPORT_READY`), or on the first failure (`REPORT_FAILED`, then the
/// process exits).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub kind: u32,
    /// `STEP_*`: what failed.
    pub step: u32,
    /// The negative errno the kernel returned.
    pub error: i64,
    /// Which item of the step (mapping, signal, thread).
    pub index: u64,
}

pub const STEP_ABI: u32 = 1;
pub const STEP_SIGMASK: u32 = 2;
pub const STEP_UNMAP: u32 = 3;
pub const STEP_KERNEL_MOVE: u32 = 4;
pub const STEP_MOVE: u32 = 5;
pub const STEP_PROTECT: u32 = 6;
pub const STEP_MM_MAP: u32 = 7;
pub const STEP_SIGACTION: u32 = 8;
pub const STEP_CLONE: u32 = 9;
pub const STEP_RSEQ: u32 = 10;
pub const STEP_ROBUST_LIST: u32 = 11;
pub const STEP_ALTSTACK: u32 = 12;
pub const STEP_PENDING: u32 = 13;
pub const STEP_ITIMER: u32 = 14;
pub const STEP_CREDS: u32 = 15;
pub const STEP_DUMPABLE: u32 = 16;
pub const STEP_CLOSE: u32 = 17;
pub const STEP_CLONE_TID: u32 = 18;
pub const STEP_CAPS: u32 = 19;
pub const STEP_NO_NEW_PRIVS: u32 = 20;
pub const STEP_SCHED: u32 = 21;
pub const STEP_ATTRIBUTES: u32 = 22;
pub const STEP_SESSION_KEYRING: u32 = 23;

/// A step's name, for the agent's messages.
pub fn step_name(step: u32) -> &'static str {
    match step {
        STEP_ABI => "checking the argument block",
        STEP_SIGMASK => "blocking signals",
        STEP_UNMAP => "unmapping the restore child's memory",
        STEP_KERNEL_MOVE => "moving the vDSO/vvar",
        STEP_MOVE => "moving a mapping into place",
        STEP_PROTECT => "setting a mapping's protection",
        STEP_MM_MAP => "PR_SET_MM_MAP",
        STEP_SIGACTION => "restoring a sigaction",
        STEP_CLONE => "creating a thread (clone3)",
        STEP_CLONE_TID => "a thread got another tid than asked",
        STEP_RSEQ => "registering rseq",
        STEP_ROBUST_LIST => "set_robust_list",
        STEP_ALTSTACK => "sigaltstack",
        STEP_PENDING => "queueing a pending signal",
        STEP_ITIMER => "setitimer",
        STEP_CREDS => "restoring credentials",
        STEP_DUMPABLE => "PR_SET_DUMPABLE",
        STEP_CAPS => "restoring capabilities and securebits",
        STEP_NO_NEW_PRIVS => "PR_SET_NO_NEW_PRIVS",
        STEP_SCHED => "restoring a thread's scheduling (policy, nice, CPU affinity)",
        STEP_ATTRIBUTES => "restoring a prctl attribute (child subreaper, THP, timer slack)",
        STEP_SESSION_KEYRING => "giving the process a session keyring of its own (keyctl)",
        STEP_CLOSE => "closing the stub's descriptors",
        _ => "an unknown step",
    }
}

const _: () = assert!(core::mem::size_of::<Range>() == 16);
const _: () = assert!(core::mem::size_of::<Move>() == 40);
const _: () = assert!(core::mem::size_of::<MmMap>() == 104);
const _: () = assert!(core::mem::size_of::<SigAction>() == 40);
const _: () = assert!(core::mem::size_of::<ITimer>() == 24);
const _: () = assert!(core::mem::size_of::<SigInfo>() == 128);
const _: () = assert!(core::mem::size_of::<ThreadArgs>() == 160);
const _: () = assert!(core::mem::size_of::<Creds>() == 48);
const _: () = assert!(core::mem::size_of::<Report>() == 24);
const _: () = assert!(core::mem::size_of::<RestoreArgs>() == 280);
