//! The trampoline: the few instructions, linked into every client, through
//! which the agent runs a system call inside a stopped thread of it.
//!
//! The agent saves the thread's registers into a save area (in the client
//! block's page; below the thread's own stack pointer when several threads
//! are borrowed at once), points the thread at the trampoline with the call's
//! number and arguments in its registers and `rbx` at the save area, and
//! lets it run. The trampoline makes the call, stores the result, bumps
//! `done`, and waits in `ppoll` (no descriptors) for [`WAIT_S`] seconds, where
//! the agent stops it again (`PTRACE_INTERRUPT`) and reads the result.
//! `ppoll`, not a futex or `nanosleep`: an interrupted `ppoll` restarts
//! without the thread's `restart_block`, which may hold the restart of the
//! very system call the thread was stopped in.
//!
//! If the agent is killed meanwhile, the kernel lets the thread go and the
//! wait times out; the trampoline then puts the thread back by itself: it
//! copies what it goes back to into a frame below the red zone of its own
//! stack while every signal is still blocked, restores its signal mask
//! (signals then delivered land below that frame), then every
//! general-purpose register, the flags, the stack pointer and the
//! instruction pointer (with an interrupted system call
//! already turned into its restart by the agent). The thread goes on as if
//! it had never been stopped: no single-step, no SIGTRAP, nothing for a dead
//! tracer to leave behind.
//!
//! A held process's threads wait in its last instructions (the park loop:
//! `pause` with every signal blocked), which need no memory but the
//! client's code.
//!
//! The agent checks, while the process is frozen, that the trampoline's
//! bytes in the process are exactly its own copy's ([`code`]), so the
//! process runs no other instructions for it.

/// Offsets in the save area (bytes). The agent writes it; the trampoline
/// reads it and writes `DONE`, `RESULT` and `RELEASED`.
pub mod save {
    /// `u64` bumped by the trampoline after each call.
    pub const DONE: u64 = 0;
    /// `i64` the call's result (`-errno` on failure).
    pub const RESULT: u64 = 8;
    /// `struct timespec` of the wait.
    pub const TIMEOUT: u64 = 16;
    /// `u64` set to 1 by the trampoline when it gave up waiting.
    pub const RELEASED: u64 = 32;
    /// `u64` the signal mask to put back.
    pub const MASK: u64 = 40;
    /// `u64` where the thread goes on.
    pub const RIP: u64 = 48;
    /// `u64` its flags.
    pub const RFLAGS: u64 = 56;
    /// `u64` its stack pointer.
    pub const RSP: u64 = 64;
    /// `u64` ×15: rax, rbx, rcx, rdx, rsi, rdi, rbp, r8 … r15.
    pub const GPRS: u64 = 72;
    /// Size of the area.
    pub const LEN: usize = 192;
}

/// Seconds the trampoline waits for the agent before it puts the thread
/// back by itself.
pub const WAIT_S: u64 = 5;

/// Bytes below the saved `rsp` the trampoline uses when it puts a thread
/// back (the red zone, then flags, return address, registers and mask): a
/// save area on the thread's own stack must lie below them.
pub const STACK_BELOW: u64 = 128 + 16 + 128;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
core::arch::global_asm!(
    ".pushsection .text.suspend_trampoline,\"ax\",@progbits",
    ".p2align 4",
    ".globl suspend_trampoline_entry",
    ".hidden suspend_trampoline_entry",
    ".globl suspend_trampoline_fallback",
    ".hidden suspend_trampoline_fallback",
    ".globl suspend_trampoline_park",
    ".hidden suspend_trampoline_park",
    ".globl suspend_trampoline_end",
    ".hidden suspend_trampoline_end",
    "suspend_trampoline_entry:",
    "syscall",
    "mov qword ptr [rbx + 8], rax",
    "lock inc qword ptr [rbx]",
    // ppoll(NULL, 0, &timeout, NULL, 8)
    "mov eax, 271",
    "xor edi, edi",
    "xor esi, esi",
    "lea rdx, [rbx + 16]",
    "xor r10d, r10d",
    "mov r8d, 8",
    "syscall",
    "suspend_trampoline_fallback:",
    "mov qword ptr [rbx + 32], 1",
    // With every signal still blocked, everything the thread goes back to
    // is copied out of the save area into a frame just below the red zone
    // of its own stack: flags and return address, then the 15 registers
    // and the mask. Signals let through by the mask land below the frame.
    "mov rsp, qword ptr [rbx + 64]",
    "sub rsp, 144",
    "mov rax, qword ptr [rbx + 48]",
    "mov qword ptr [rsp + 8], rax",
    "mov rax, qword ptr [rbx + 56]",
    "mov qword ptr [rsp], rax",
    "sub rsp, 128",
    "mov rax, qword ptr [rbx + 72]",
    "mov qword ptr [rsp], rax",
    "mov rax, qword ptr [rbx + 80]",
    "mov qword ptr [rsp + 8], rax",
    "mov rax, qword ptr [rbx + 88]",
    "mov qword ptr [rsp + 16], rax",
    "mov rax, qword ptr [rbx + 96]",
    "mov qword ptr [rsp + 24], rax",
    "mov rax, qword ptr [rbx + 104]",
    "mov qword ptr [rsp + 32], rax",
    "mov rax, qword ptr [rbx + 112]",
    "mov qword ptr [rsp + 40], rax",
    "mov rax, qword ptr [rbx + 120]",
    "mov qword ptr [rsp + 48], rax",
    "mov rax, qword ptr [rbx + 128]",
    "mov qword ptr [rsp + 56], rax",
    "mov rax, qword ptr [rbx + 136]",
    "mov qword ptr [rsp + 64], rax",
    "mov rax, qword ptr [rbx + 144]",
    "mov qword ptr [rsp + 72], rax",
    "mov rax, qword ptr [rbx + 152]",
    "mov qword ptr [rsp + 80], rax",
    "mov rax, qword ptr [rbx + 160]",
    "mov qword ptr [rsp + 88], rax",
    "mov rax, qword ptr [rbx + 168]",
    "mov qword ptr [rsp + 96], rax",
    "mov rax, qword ptr [rbx + 176]",
    "mov qword ptr [rsp + 104], rax",
    "mov rax, qword ptr [rbx + 184]",
    "mov qword ptr [rsp + 112], rax",
    "mov rax, qword ptr [rbx + 40]",
    "mov qword ptr [rsp + 120], rax",
    // rt_sigprocmask(SIG_SETMASK, &mask, NULL, 8): the save area is no
    // longer read from here on.
    "mov eax, 14",
    "mov edi, 2",
    "lea rsi, [rsp + 120]",
    "xor edx, edx",
    "mov r10d, 8",
    "syscall",
    "mov rax, qword ptr [rsp]",
    "mov rbx, qword ptr [rsp + 8]",
    "mov rcx, qword ptr [rsp + 16]",
    "mov rdx, qword ptr [rsp + 24]",
    "mov rsi, qword ptr [rsp + 32]",
    "mov rdi, qword ptr [rsp + 40]",
    "mov rbp, qword ptr [rsp + 48]",
    "mov r8, qword ptr [rsp + 56]",
    "mov r9, qword ptr [rsp + 64]",
    "mov r10, qword ptr [rsp + 72]",
    "mov r11, qword ptr [rsp + 80]",
    "mov r12, qword ptr [rsp + 88]",
    "mov r13, qword ptr [rsp + 96]",
    "mov r14, qword ptr [rsp + 104]",
    "mov r15, qword ptr [rsp + 112]",
    "add rsp, 128",
    "popfq",
    "ret 128",
    // Where a held process's threads wait: `pause` with every signal
    // blocked, for as long as it takes (a tracer's interrupt or a
    // SIGSTOP/SIGCONT returns to the loop).
    "suspend_trampoline_park:",
    "mov eax, 34",
    "syscall",
    "jmp suspend_trampoline_park",
    "suspend_trampoline_end:",
    ".popsection",
);

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
unsafe extern "C" {
    static suspend_trampoline_entry: u8;
    static suspend_trampoline_fallback: u8;
    static suspend_trampoline_park: u8;
    static suspend_trampoline_end: u8;
}

/// Address of the trampoline in this process.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub fn entry() -> usize {
    &raw const suspend_trampoline_entry as usize
}

/// Offset from [`entry`] of the first instruction that puts the thread back
/// by itself: a thread stopped at or before it has run nothing of that.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub fn fallback_offset() -> usize {
    &raw const suspend_trampoline_fallback as usize - entry()
}

/// Offset from [`entry`] of the loop a held process's threads wait in.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub fn park_offset() -> usize {
    &raw const suspend_trampoline_park as usize - entry()
}

/// The trampoline's bytes, as linked into this process.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub fn code() -> &'static [u8] {
    // SAFETY: the two symbols delimit the trampoline's instructions in this
    // binary's (read-only, never unmapped) text.
    unsafe {
        let len = &raw const suspend_trampoline_end as usize - entry();
        core::slice::from_raw_parts(entry() as *const u8, len)
    }
}

const _: () = assert!(save::GPRS + 15 * 8 == save::LEN as u64);
