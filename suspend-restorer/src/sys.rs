//! The system calls the stub makes: numbers, constants, one raw entry.

use core::arch::asm;

pub const WRITE: i64 = 1;
pub const CLOSE: i64 = 3;
pub const MMAP: i64 = 9;
pub const MPROTECT: i64 = 10;
pub const MUNMAP: i64 = 11;
pub const RT_SIGACTION: i64 = 13;
pub const RT_SIGPROCMASK: i64 = 14;
pub const MREMAP: i64 = 25;
pub const SETITIMER: i64 = 38;
pub const GETPID: i64 = 39;
pub const EXIT_GROUP: i64 = 231;
pub const SETGROUPS: i64 = 116;
pub const SETRESUID: i64 = 117;
pub const SETRESGID: i64 = 119;
pub const SETFSUID: i64 = 122;
pub const SETFSGID: i64 = 123;
pub const RT_SIGQUEUEINFO: i64 = 129;
pub const SIGALTSTACK: i64 = 131;
pub const PRCTL: i64 = 157;
pub const CAPSET: i64 = 126;
pub const SCHED_SETAFFINITY: i64 = 203;
pub const SCHED_SETATTR: i64 = 314;
pub const FUTEX: i64 = 202;
pub const SET_TID_ADDRESS: i64 = 218;
pub const SET_ROBUST_LIST: i64 = 273;
pub const RT_TGSIGQUEUEINFO: i64 = 297;
pub const RSEQ: i64 = 334;
pub const CLONE3: i64 = 435;
pub const KEYCTL: i64 = 250;

/// `keyctl(2)` operations and special keyring ids.
pub const KEYCTL_CHOWN: u64 = 4;
pub const KEYCTL_LINK: u64 = 8;
pub const KEYCTL_JOIN_SESSION_KEYRING: u64 = 1;
pub const KEY_SPEC_SESSION_KEYRING: i64 = -3;
pub const KEY_SPEC_USER_SESSION_KEYRING: i64 = -4;
/// What `keyctl` returns on a kernel without keys (`CONFIG_KEYS`).
pub const ENOSYS: i64 = 38;
pub const EOPNOTSUPP: i64 = 95;
pub const EPERM: i64 = 1;
pub const EACCES: i64 = 13;
/// The user's key quota is full.
pub const EDQUOT: i64 = 122;

pub const MAP_PRIVATE: u64 = 0x02;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const MAP_GROWSDOWN: u64 = 0x100;
pub const MREMAP_MAYMOVE: u64 = 1;
pub const MREMAP_FIXED: u64 = 2;
pub const SIG_SETMASK: u64 = 2;
pub const FUTEX_WAIT: u64 = 0;
pub const FUTEX_WAKE: u64 = 1;
pub const PR_SET_DUMPABLE: u64 = 4;
pub const PR_CAPBSET_DROP: u64 = 24;
pub const PR_SET_TIMERSLACK: u64 = 29;
pub const PR_SET_CHILD_SUBREAPER: u64 = 36;
pub const PR_SET_THP_DISABLE: u64 = 41;
pub const PR_SET_SECUREBITS: u64 = 28;
pub const PR_SET_NO_NEW_PRIVS: u64 = 38;
pub const PR_CAP_AMBIENT: u64 = 47;
pub const PR_CAP_AMBIENT_RAISE: u64 = 2;
pub const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;
/// `SECBIT_NO_SETUID_FIXUP`: changing uids leaves the capabilities alone.
pub const SECBIT_NO_SETUID_FIXUP: u64 = 1 << 2;
/// `_LINUX_CAPABILITY_VERSION_3`.
pub const CAP_VERSION_3: u32 = 0x2008_0522;
/// `CAP_SETPCAP`.
pub const CAP_SETPCAP: u64 = 8;
pub const PR_SET_MM: u64 = 35;
pub const PR_SET_MM_MAP: u64 = 14;
pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_SYSVSEM: u64 = 0x40000;
pub const SS_DISABLE: u64 = 2;

/// Highest user address plus one (47-bit address space).
pub const TASK_TOP: u64 = 0x7fff_ffff_f000;

/// `struct clone_args` up to `set_tid_size` (`CLONE_ARGS_SIZE_VER1`).
#[repr(C)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
}

/// A system call with up to six arguments; returns what the kernel returns
/// (a negative errno on failure).
///
/// # Safety
/// The call must not break the stub's own memory.
#[inline(always)]
pub unsafe fn call(nr: i64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: the x86-64 system call convention; the kernel clobbers rcx
    // and r11 only. Memory effects are the caller's contract.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// `clone3` for a thread that starts in `entry(thread, args)` on the stack
/// `clone_args` names. Returns the new tid (or a negative errno) in the
/// caller.
///
/// # Safety
/// `clone_args` must describe a valid stack of the stub's region.
pub unsafe fn clone_thread(
    clone_args: *const CloneArgs,
    thread: u64,
    args: u64,
    entry: unsafe extern "C" fn(u64, u64) -> !,
) -> i64 {
    let ret: i64;
    // SAFETY: in the new thread only registers are used until `entry` is
    // called on its fresh stack (r12, r13, r14 are copied by clone).
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r12",
            "mov rsi, r13",
            "and rsp, -16",
            "call r14",
            "ud2",
            "2:",
            inlateout("rax") CLONE3 => ret,
            in("rdi") clone_args,
            in("rsi") core::mem::size_of::<CloneArgs>(),
            in("r12") thread,
            in("r13") args,
            in("r14") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
