//! A crash report for the workloads: when one dies of a fault after a
//! resume, the test log shows where (signal, fault address, registers, the
//! code at the ip, the stack) and the memory map at that moment, instead of
//! only "signal 11".
//!
//! The handler uses raw syscalls and stack buffers only (no allocation, no
//! locks), reads memory with `process_vm_readv` on itself (a bad address
//! gives `EFAULT`, never a second fault), and is installed with
//! `SA_RESETHAND`: returning re-runs the faulting instruction, which then
//! kills the process with the same signal as before.

use std::sync::atomic::{AtomicBool, Ordering};

const SIGNALS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

/// Only the first crashing thread reports; the others die quietly.
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Installs the crash report on SIGSEGV, SIGBUS, SIGILL and SIGFPE.
pub fn install() {
    for signal in SIGNALS {
        // SAFETY: installing a handler that only makes raw syscalls.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
        }
    }
}

/// A line built in a stack buffer.
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Self {
            buf: [0; 512],
            len: 0,
        }
    }

    fn text(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        self
    }

    fn hex(&mut self, v: u64) -> &mut Self {
        self.text("0x");
        let digits = b"0123456789abcdef";
        let mut started = false;
        for shift in (0..16).rev() {
            let d = ((v >> (shift * 4)) & 0xf) as usize;
            if d != 0 || started || shift == 0 {
                started = true;
                self.bytes(&[digits[d]]);
            }
        }
        self
    }

    fn dec(&mut self, v: i64) -> &mut Self {
        if v < 0 {
            self.text("-");
        }
        let mut digits = [0u8; 20];
        let mut n = v.unsigned_abs();
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.bytes(&digits[i..])
    }

    /// `len` bytes at `addr` in hex, or "unreadable".
    fn bytes_at(&mut self, addr: u64, len: usize) -> &mut Self {
        let mut buf = [0u8; 64];
        let len = len.min(buf.len());
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: len,
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        };
        // SAFETY: reading our own memory into a local buffer; a bad address
        // is an error, not a fault.
        let got = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        if got <= 0 {
            return self.text("unreadable");
        }
        for (i, &b) in buf[..got as usize].iter().enumerate() {
            if i > 0 && i % 8 == 0 {
                self.text(" ");
            }
            let digits = b"0123456789abcdef";
            self.bytes(&[digits[(b >> 4) as usize], digits[(b & 0xf) as usize]]);
        }
        self
    }

    fn print(&mut self) {
        self.text("\n");
        write_all(&self.buf[..self.len]);
        self.len = 0;
    }
}

fn write_all(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing our buffer to stderr.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Calls `each` with what every `read` of `path` returns (for /dev/kmsg:
/// one record each), until the end.
fn each_read(path: &std::ffi::CStr, flags: libc::c_int, mut each: impl FnMut(&[u8])) {
    // SAFETY: open/read/close with a NUL-terminated path and a local buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | flags);
        if fd < 0 {
            return;
        }
        let mut buf = [0u8; 4096];
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n < 0 && *libc::__errno_location() == libc::EPIPE {
                continue; // /dev/kmsg: records overwritten, go on
            }
            if n <= 0 {
                break;
            }
            each(&buf[..n as usize]);
        }
        libc::close(fd);
    }
}

/// Copies /proc/self/maps to stderr.
fn print_maps() {
    each_read(c"/proc/self/maps", 0, write_all);
}

extern "C" fn on_fault(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    if REPORTING.swap(true, Ordering::SeqCst) {
        return;
    }
    // SAFETY: the kernel passes a valid siginfo and ucontext to an
    // SA_SIGINFO handler.
    let (info, context) = unsafe { (&*info, &*(context as *const libc::ucontext_t)) };
    let regs = &context.uc_mcontext.gregs;
    let reg = |r: libc::c_int| regs[r as usize] as u64;
    // SAFETY: gettid has no preconditions; si_addr is valid for these
    // signals.
    let (tid, addr) = unsafe { (libc::gettid(), info.si_addr() as u64) };
    let mut line = Line::new();
    line.text("CRASH: signal ")
        .dec(signal.into())
        .text(" code ")
        .dec(info.si_code.into())
        .text(" at ")
        .hex(addr)
        .text(" in thread ")
        .dec(tid.into())
        .print();
    let named = [
        ("rip", libc::REG_RIP),
        ("rsp", libc::REG_RSP),
        ("rbp", libc::REG_RBP),
        ("rax", libc::REG_RAX),
        ("rbx", libc::REG_RBX),
        ("rcx", libc::REG_RCX),
        ("rdx", libc::REG_RDX),
        ("rsi", libc::REG_RSI),
        ("rdi", libc::REG_RDI),
        ("r8", libc::REG_R8),
        ("r9", libc::REG_R9),
        ("r10", libc::REG_R10),
        ("r11", libc::REG_R11),
        ("r12", libc::REG_R12),
        ("r13", libc::REG_R13),
        ("r14", libc::REG_R14),
        ("r15", libc::REG_R15),
        ("efl", libc::REG_EFL),
    ];
    line.text("CRASH: regs");
    for (name, r) in named {
        line.text(" ").text(name).text("=").hex(reg(r));
    }
    line.print();
    let mut fs_base = 0u64;
    // SAFETY: ARCH_GET_FS writes the thread's fs base into `fs_base`.
    unsafe { libc::syscall(libc::SYS_arch_prctl, 0x1003, &raw mut fs_base) };
    line.text("CRASH: fs_base=").hex(fs_base).print();
    line.text("CRASH: code at rip: ")
        .bytes_at(reg(libc::REG_RIP), 16)
        .print();
    let sp = reg(libc::REG_RSP);
    for row in 0..4 {
        let at = sp + row * 32;
        line.text("CRASH: stack ")
            .hex(at)
            .text(": ")
            .bytes_at(at, 32)
            .print();
    }
    let mut alt = libc::stack_t {
        ss_sp: std::ptr::null_mut(),
        ss_flags: 0,
        ss_size: 0,
    };
    // SAFETY: only reads this thread's alternate stack into `alt`.
    unsafe { libc::sigaltstack(std::ptr::null(), &mut alt) };
    line.text("CRASH: sigaltstack sp=")
        .hex(alt.ss_sp as u64)
        .text(" size=")
        .hex(alt.ss_size as u64)
        .text(" flags=")
        .dec(alt.ss_flags.into())
        .print();
    // SAFETY: glibc's exported rseq area offset from the thread pointer.
    let (offset, size) = unsafe { (__rseq_offset, __rseq_size) };
    let area = fs_base.wrapping_add(offset as u64);
    line.text("CRASH: rseq area ")
        .hex(area)
        .text(" (size ")
        .dec(size.into())
        .text("): ")
        .bytes_at(area, 32)
        .print();
    line.text("CRASH: kernel log:").print();
    print_kmsg();
    line.text("CRASH: /proc/self/maps:").print();
    print_maps();
}

unsafe extern "C" {
    /// glibc: where this thread's `struct rseq` is, from the thread pointer.
    static __rseq_offset: isize;
    /// glibc: its size (0 when rseq is not registered).
    static __rseq_size: u32;
}

/// Copies the kernel log records that speak of this process, of signals,
/// rseq or the FPU to stderr.
fn print_kmsg() {
    let keys: [&[u8]; 6] = [
        b"resumable",
        b"sigaltstack",
        b"rseq",
        b"FPU",
        b"segfault",
        b"signal",
    ];
    // O_NONBLOCK: EAGAIN, not a wait, after the last record.
    each_read(c"/dev/kmsg", libc::O_NONBLOCK, |record| {
        if keys
            .iter()
            .any(|k| record.windows(k.len()).any(|w| w == *k))
        {
            write_all(b"CRASH: kmsg ");
            write_all(record);
        }
    });
}
