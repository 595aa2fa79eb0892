//! A workload made to be suspended, resumed and then to check itself.
//!
//! It sets up every kind of state a resume must bring back, prints
//! `ready pid=N`, and obeys commands on stdin:
//!
//! | command | effect |
//! |---|---|
//! | `check` | verify everything; `check ok` or `check FAILED: what; what…` |
//! | `state` | `state suspend=N resume=M reason=R` |
//! | `exit` | verify and exit: 0 when everything holds, 1 otherwise |
//!
//! What it holds and checks:
//! - anonymous memory with a pattern (16 MiB), a sparse 1 GiB reservation
//!   with a few pages written (the rest must read as zero), a heap that
//!   keeps growing with `malloc` after resume (the break moves);
//! - a private file mapping written before suspend (the file itself must
//!   not change), a shared file mapping (writes reach the file),
//!   `mprotect`ed read-only memory and a `PROT_NONE` guard page (same
//!   protections, same contents);
//! - 8 threads computing with live AVX (or SSE) registers and thread-locals,
//!   each publishing values the checker recomputes; a thread holding a
//!   mutex through the suspension, released and joined after; a thread
//!   waiting in `futex` (a condvar) woken after; a thread in `nanosleep`
//!   that keeps waking;
//! - a blocked pending signal delivered when unblocked after resume, a
//!   handler that runs on its sigaltstack, an interval timer still firing;
//! - a file opened for append and one written at an offset, both writing
//!   on where they were; stdout;
//! - a self-pipe (128 KiB, read end non-blocking, its write end also
//!   `dup`ed) holding 5000 unread bytes, which must still be there, in
//!   order, with each fd's own flags, and take new writes from both write
//!   fds.
//!
//! `--exit-after-resume` is not needed: on_resume only records the reason.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead as _, Read as _, Seek as _, SeekFrom, Write as _},
    os::{fd::AsRawFd as _, unix::fs::FileExt as _},
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use suspend_tests::handshake;

static USR2_GOT: AtomicU32 = AtomicU32::new(0);
static ALARMS: AtomicU64 = AtomicU64::new(0);
static USR1_ON_ALTSTACK: AtomicU32 = AtomicU32::new(0);
static USR1_CALLS: AtomicU32 = AtomicU32::new(0);
static ALTSTACK: AtomicUsize = AtomicUsize::new(0);
const ALTSTACK_SIZE: usize = 64 * 1024;

const COMPUTERS: usize = 8;
const MIB: usize = 1 << 20;

fn pattern(i: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed
}

extern "C" fn on_usr2(_: libc::c_int) {
    USR2_GOT.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn on_alarm(_: libc::c_int) {
    ALARMS.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn on_usr1(_: libc::c_int) {
    let local = 0u8;
    let here = &raw const local as usize;
    let base = ALTSTACK.load(Ordering::SeqCst);
    if here >= base && here < base + ALTSTACK_SIZE {
        USR1_ON_ALTSTACK.fetch_add(1, Ordering::SeqCst);
    }
    USR1_CALLS.fetch_add(1, Ordering::SeqCst);
}

fn handle(signal: i32, handler: usize, flags: i32) {
    // SAFETY: installing an async-signal-safe handler.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = flags;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
    }
}

fn map(len: usize, prot: i32, flags: i32, fd: i32) -> *mut u8 {
    // SAFETY: a new mapping chosen by the kernel.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
    assert_ne!(
        p,
        libc::MAP_FAILED,
        "mmap: {}",
        std::io::Error::last_os_error()
    );
    p.cast()
}

fn perms_of(addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let (range, rest) = line.split_once(' ')?;
        let (s, e) = range.split_once('-')?;
        let (s, e) = (
            usize::from_str_radix(s, 16).ok()?,
            usize::from_str_radix(e, 16).ok()?,
        );
        (s <= addr && addr < e).then(|| rest[..4].to_owned())
    })
}

/// The value a computing thread holds after `n` steps from `seed`: the
/// checker recomputes it (same code, same registers' worth of math). With
/// AVX the four lanes live in one `ymm` register for the whole chunk, so a
/// resume that lost the upper halves of the vector registers shows.
fn compute(seed: u64, from: [f64; 4], n: u64) -> [f64; 4] {
    let k = [
        1.000_000_1 + seed as f64 * 1e-9,
        0.999_999_7,
        1.000_000_3,
        0.999_999_9,
    ];
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (checked just above).
        return unsafe { compute_avx(k, from, n) };
    }
    compute_scalar(k, from, n)
}

#[inline(never)]
fn compute_scalar(k: [f64; 4], from: [f64; 4], n: u64) -> [f64; 4] {
    let mut v = from;
    for _ in 0..n {
        for j in 0..4 {
            v[j] = v[j] * k[j] + 1e-7;
            if v[j] > 1e6 {
                v[j] -= 1e6;
            }
        }
    }
    v
}

#[target_feature(enable = "avx")]
#[inline(never)]
fn compute_avx(k: [f64; 4], from: [f64; 4], n: u64) -> [f64; 4] {
    use std::arch::x86_64::*;
    // SAFETY: unaligned loads and stores of four f64s from/to arrays.
    unsafe {
        let mut v = _mm256_loadu_pd(from.as_ptr());
        let kv = _mm256_loadu_pd(k.as_ptr());
        let add = _mm256_set1_pd(1e-7);
        let limit = _mm256_set1_pd(1e6);
        for _ in 0..n {
            v = _mm256_add_pd(_mm256_mul_pd(v, kv), add);
            let over = _mm256_cmp_pd::<_CMP_GT_OQ>(v, limit);
            v = _mm256_sub_pd(v, _mm256_and_pd(over, limit));
        }
        let mut out = [0.0; 4];
        _mm256_storeu_pd(out.as_mut_ptr(), v);
        out
    }
}

/// What a computing thread publishes after each chunk of steps: how many
/// it has done, and its values before and after the last chunk.
struct Published {
    steps: AtomicU64,
    values: Mutex<([f64; 4], [f64; 4])>,
    tls_ok: AtomicBool,
}

/// Steps per published chunk.
const CHUNK: u64 = 1000;

thread_local! {
    static MY_INDEX: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
}

struct Setup {
    memory: Vec<u64>,
    sparse: *mut u8,
    sparse_len: usize,
    private_map: *mut u8,
    private_path: String,
    shared_map: *mut u8,
    shared_path: String,
    readonly: *mut u8,
    guard: *mut u8,
    published: Vec<Arc<Published>>,
    mutex: Arc<Mutex<u64>>,
    release_mutex: Arc<AtomicBool>,
    holder: Option<thread::JoinHandle<u64>>,
    waiter: Option<thread::JoinHandle<u64>>,
    wake: Arc<(Mutex<bool>, Condvar)>,
    sleeps: Arc<AtomicU64>,
    append: File,
    append_path: String,
    offset_file: File,
    offset_path: String,
    brk_at_start: usize,
    checks: u32,
    /// Read end, write end, a `dup` of the write end.
    pipe: [libc::c_int; 3],
}

const PIPE_SIZE: libc::c_int = 128 * 1024;

/// What the self-pipe holds, unread, between checks.
fn pipe_message() -> Vec<u8> {
    (0..5000u32).map(|i| (i * 7 % 253) as u8).collect()
}

/// `len` bytes from `fd`, blocking or not: fewer if that is all there is.
fn read_some(fd: libc::c_int, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        // SAFETY: reading into our buffer, within its length.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), len - got) };
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    buf.truncate(got);
    buf
}

fn write_all_fd(fd: libc::c_int, data: &[u8]) -> bool {
    let mut done = 0;
    while done < data.len() {
        // SAFETY: writing from our buffer, within its length.
        let n = unsafe { libc::write(fd, data[done..].as_ptr().cast(), data.len() - done) };
        if n <= 0 {
            return false;
        }
        done += n as usize;
    }
    true
}

fn set_up_pipe() -> [libc::c_int; 3] {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two ints; fcntl and dup on the fds it made.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0, "pipe2");
        assert!(libc::fcntl(fds[1], libc::F_SETPIPE_SZ, PIPE_SIZE) >= PIPE_SIZE);
        assert_eq!(libc::fcntl(fds[0], libc::F_SETFL, libc::O_NONBLOCK), 0);
        let copy = libc::dup(fds[1]);
        assert!(copy >= 0, "dup");
        assert!(write_all_fd(fds[1], &pipe_message()));
        [fds[0], fds[1], copy]
    }
}

const PRIVATE_LEN: usize = 4 * 4096;
const SPARSE_PAGES: [usize; 6] = [0, 1, 777, 4096, 100_000, 262_143];

fn set_up() -> Setup {
    let pid = std::process::id();
    let memory: Vec<u64> = (0..(16 * MIB / 8) as u64).map(pattern).collect();

    let sparse_len = 1 << 30;
    let sparse = map(
        sparse_len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
    );
    for &page in &SPARSE_PAGES {
        // SAFETY: inside the reservation.
        unsafe {
            sparse
                .add(page * 4096)
                .cast::<u64>()
                .write(pattern(page as u64))
        };
    }

    let private_path = format!("/tmp/suspend-resumable-private-{pid}");
    let file_bytes: Vec<u8> = (0..PRIVATE_LEN).map(|i| (i % 251) as u8).collect();
    std::fs::write(&private_path, &file_bytes).expect("private file");
    let f = File::open(&private_path).expect("private file");
    let private_map = map(
        PRIVATE_LEN,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE,
        f.as_raw_fd(),
    );
    // SAFETY: inside the mapping; private: the file does not change.
    unsafe { private_map.add(4096 + 10).write(0xAB) };

    let shared_path = format!("/tmp/suspend-resumable-shared-{pid}");
    std::fs::write(&shared_path, vec![0u8; 8192]).expect("shared file");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&shared_path)
        .expect("shared file");
    let shared_map = map(
        8192,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED,
        f.as_raw_fd(),
    );
    // SAFETY: inside the mapping.
    unsafe { shared_map.add(100).write(0x11) };

    let readonly = map(
        3 * 4096,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
    );
    // SAFETY: our mapping; then protect it.
    unsafe {
        for i in 0..3 * 4096 {
            readonly.add(i).write((i % 199) as u8);
        }
        assert_eq!(
            libc::mprotect(readonly.cast(), 2 * 4096, libc::PROT_READ),
            0
        );
        assert_eq!(
            libc::mprotect(readonly.add(2 * 4096).cast(), 4096, libc::PROT_NONE),
            0
        );
    }
    let guard = map(
        4096,
        libc::PROT_NONE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
    );

    // Computing threads.
    let mut published = Vec::new();
    for i in 0..COMPUTERS {
        let p = Arc::new(Published {
            steps: AtomicU64::new(0),
            values: Mutex::new(([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])),
            tls_ok: AtomicBool::new(true),
        });
        published.push(p.clone());
        thread::spawn(move || {
            MY_INDEX.with(|c| c.set(i as u64));
            let mut v = [1.0, 2.0, 3.0, 4.0];
            let mut steps = 0u64;
            loop {
                let before = v;
                v = compute(i as u64, v, CHUNK);
                steps += CHUNK;
                if MY_INDEX.with(|c| c.get()) != i as u64 {
                    p.tls_ok.store(false, Ordering::SeqCst);
                }
                let mut slot = p.values.lock().unwrap();
                *slot = (before, v);
                p.steps.store(steps, Ordering::SeqCst);
            }
        });
    }

    // A mutex held through the suspension.
    let mutex = Arc::new(Mutex::new(0u64));
    let release_mutex = Arc::new(AtomicBool::new(false));
    let (m, r) = (mutex.clone(), release_mutex.clone());
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = thread::spawn(move || {
        let mut guard = m.lock().unwrap();
        *guard = 41;
        held_tx.send(()).unwrap();
        while !r.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(5));
        }
        *guard += 1;
        7
    });
    held_rx.recv().unwrap();

    // A thread waiting on a condvar (futex).
    let wake = Arc::new((Mutex::new(false), Condvar::new()));
    let w = wake.clone();
    let waiter = thread::spawn(move || {
        let (lock, cvar) = &*w;
        let mut woken = lock.lock().unwrap();
        while !*woken {
            woken = cvar.wait(woken).unwrap();
        }
        9
    });

    // A thread in nanosleep.
    let sleeps = Arc::new(AtomicU64::new(0));
    let s = sleeps.clone();
    thread::spawn(move || {
        loop {
            thread::sleep(Duration::from_millis(300));
            s.fetch_add(1, Ordering::SeqCst);
        }
    });

    // Signals: SIGUSR2 blocked and pending; SIGUSR1 on a sigaltstack;
    // SIGALRM from an interval timer.
    handle(
        libc::SIGUSR2,
        on_usr2 as *const () as usize,
        libc::SA_RESTART,
    );
    handle(
        libc::SIGUSR1,
        on_usr1 as *const () as usize,
        libc::SA_RESTART | libc::SA_ONSTACK,
    );
    handle(
        libc::SIGALRM,
        on_alarm as *const () as usize,
        libc::SA_RESTART,
    );
    let altstack = map(
        ALTSTACK_SIZE,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
    );
    ALTSTACK.store(altstack as usize, Ordering::SeqCst);
    // SAFETY: plain signal calls on this thread.
    unsafe {
        let stack = libc::stack_t {
            ss_sp: altstack.cast(),
            ss_flags: 0,
            ss_size: ALTSTACK_SIZE,
        };
        assert_eq!(libc::sigaltstack(&stack, std::ptr::null_mut()), 0);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::raise(libc::SIGUSR2);
        let timer = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            },
            it_value: libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            },
        };
        libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
    }

    let append_path = format!("/tmp/suspend-resumable-append-{pid}");
    let _ = std::fs::remove_file(&append_path);
    let mut append = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&append_path)
        .expect("append file");
    append.write_all(b"before;").unwrap();
    let offset_path = format!("/tmp/suspend-resumable-offset-{pid}");
    std::fs::write(&offset_path, vec![b'.'; 64]).unwrap();
    let mut offset_file = OpenOptions::new().write(true).open(&offset_path).unwrap();
    offset_file.seek(SeekFrom::Start(10)).unwrap();
    offset_file.write_all(b"AAAA").unwrap();

    let pipe = set_up_pipe();

    // SAFETY: sbrk(0) only reads the break.
    let brk_at_start = unsafe { libc::sbrk(0) } as usize;
    Setup {
        memory,
        sparse,
        sparse_len,
        private_map,
        private_path,
        shared_map,
        shared_path,
        readonly,
        guard,
        published,
        mutex,
        release_mutex,
        holder: Some(holder),
        waiter: Some(waiter),
        wake,
        sleeps,
        append,
        append_path,
        offset_file,
        offset_path,
        brk_at_start,
        checks: 0,
        pipe,
    }
}

impl Setup {
    /// Everything that differs from what it should be.
    fn check(&mut self) -> Vec<String> {
        let mut bad = Vec::new();
        self.checks += 1;
        let round = self.checks;

        if let Some(i) = (0..self.memory.len()).find(|&i| self.memory[i] != pattern(i as u64)) {
            bad.push(format!("anonymous memory differs at word {i}"));
        }
        for &page in &SPARSE_PAGES {
            // SAFETY: inside the reservation.
            let v = unsafe { self.sparse.add(page * 4096).cast::<u64>().read() };
            if v != pattern(page as u64) {
                bad.push(format!("sparse page {page} holds {v:#x}"));
            }
        }
        for page in [2usize, 5000, 200_000] {
            // SAFETY: inside the reservation (an untouched page reads zero).
            let v = unsafe { self.sparse.add(page * 4096 + 8).cast::<u64>().read() };
            if v != 0 {
                bad.push(format!("untouched sparse page {page} holds {v:#x}"));
            }
        }
        let _ = self.sparse_len;

        // The heap keeps growing.
        // SAFETY: sbrk(0) only reads the break.
        let before = unsafe { libc::sbrk(0) } as usize;
        let blocks: Vec<Box<[u8; 200]>> = (0..20_000).map(|i| Box::new([i as u8; 200])).collect();
        // SAFETY: as above.
        let after = unsafe { libc::sbrk(0) } as usize;
        if blocks.iter().enumerate().any(|(i, b)| b[199] != i as u8) {
            bad.push("malloc'd blocks differ".into());
        }
        if after <= before && round == 1 {
            // The first round after start may reuse freed heap; only a
            // break that cannot move at all is an error.
            // SAFETY: moving the break up and back; malloc does not use
            // the pages in between.
            let grown = unsafe { libc::sbrk(4 * 4096) };
            if grown as isize == -1 {
                bad.push("the break cannot move".into());
            } else {
                // SAFETY: as above.
                unsafe { libc::sbrk(-4 * 4096) };
            }
        }
        drop(blocks);
        let _ = self.brk_at_start;

        // Private file mapping: our write is there, the file unchanged.
        let file = std::fs::read(&self.private_path).unwrap_or_default();
        for i in 0..PRIVATE_LEN {
            // SAFETY: inside the mapping.
            let v = unsafe { self.private_map.add(i).read() };
            let want = if i == 4096 + 10 {
                0xAB
            } else {
                (i % 251) as u8
            };
            if v != want {
                bad.push(format!(
                    "private file mapping byte {i} is {v:#x}, not {want:#x}"
                ));
                break;
            }
        }
        if file.get(4096 + 10) != Some(&(((4096 + 10) % 251) as u8)) {
            bad.push("the private mapping's file changed".into());
        }
        // Shared file mapping: old write there, a new one reaches the file.
        // SAFETY: inside the mapping.
        unsafe {
            if self.shared_map.add(100).read() != 0x11 {
                bad.push("shared file mapping lost its write".into());
            }
            self.shared_map.add(200 + round as usize).write(0x22);
        }
        let mut buf = [0u8; 1];
        let f = File::open(&self.shared_path).unwrap();
        f.read_exact_at(&mut buf, 200 + round as u64).unwrap();
        if buf[0] != 0x22 {
            bad.push("a write through the shared mapping did not reach the file".into());
        }

        // Protections and contents.
        for (addr, want) in [
            (self.readonly as usize, "r--p"),
            (self.readonly as usize + 2 * 4096, "---p"),
            (self.guard as usize, "---p"),
        ] {
            match perms_of(addr) {
                Some(p) if p == want => {}
                other => bad.push(format!("{addr:#x} is {other:?}, not {want}")),
            }
        }
        for i in 0..2 * 4096 {
            // SAFETY: readable part of the mapping.
            if unsafe { self.readonly.add(i).read() } != (i % 199) as u8 {
                bad.push(format!("read-only memory differs at {i}"));
                break;
            }
        }

        // Computing threads: their last chunk is what recomputation gives,
        // and they keep going.
        for (i, p) in self.published.iter().enumerate() {
            // Right after start a thread may not have published a chunk yet.
            let deadline = Instant::now() + Duration::from_secs(10);
            while p.steps.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            let (steps, (before, after)) = {
                let v = p.values.lock().unwrap();
                (p.steps.load(Ordering::SeqCst), *v)
            };
            let want = compute(i as u64, before, CHUNK);
            if after != want {
                bad.push(format!(
                    "thread {i}: at step {steps} {after:?}, expected {want:?}"
                ));
            }
            if !p.tls_ok.load(Ordering::SeqCst) {
                bad.push(format!("thread {i}: its thread-local changed"));
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while p.steps.load(Ordering::SeqCst) == steps && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            if p.steps.load(Ordering::SeqCst) == steps {
                bad.push(format!("thread {i} stopped computing"));
            }
        }

        // Sleeper keeps waking; the itimer keeps firing.
        let (sleeps, alarms) = (
            self.sleeps.load(Ordering::SeqCst),
            ALARMS.load(Ordering::SeqCst),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while (self.sleeps.load(Ordering::SeqCst) <= sleeps
            || ALARMS.load(Ordering::SeqCst) <= alarms)
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(20));
        }
        if self.sleeps.load(Ordering::SeqCst) <= sleeps {
            bad.push("the sleeping thread no longer wakes".into());
        }
        if ALARMS.load(Ordering::SeqCst) <= alarms {
            bad.push("the interval timer no longer fires".into());
        }

        // SIGUSR1 on the altstack.
        let calls = USR1_CALLS.load(Ordering::SeqCst);
        // SAFETY: raising a handled signal in this thread.
        unsafe { libc::raise(libc::SIGUSR1) };
        if USR1_CALLS.load(Ordering::SeqCst) != calls + 1
            || USR1_ON_ALTSTACK.load(Ordering::SeqCst) != calls + 1
        {
            bad.push("the SIGUSR1 handler did not run on its sigaltstack".into());
        }

        // Files: append and offset go on where they were.
        let tag = format!("round{round};");
        self.append.write_all(tag.as_bytes()).unwrap();
        self.offset_file.write_all(b"B").unwrap();
        let mut text = String::new();
        File::open(&self.append_path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let want: String = std::iter::once("before;".to_owned())
            .chain((1..=round).map(|r| format!("round{r};")))
            .collect();
        if text != want {
            bad.push(format!("append file holds {text:?}, expected {want:?}"));
        }
        let bytes = std::fs::read(&self.offset_path).unwrap();
        let mut want = vec![b'.'; 64];
        want[10..14].copy_from_slice(b"AAAA");
        for r in 0..round as usize {
            want[14 + r] = b'B';
        }
        if bytes != want {
            bad.push(format!(
                "offset file holds {:?}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        bad.extend(self.check_pipe());
        bad
    }

    /// The self-pipe: its unread bytes, its size, each fd's flags; then the
    /// same bytes written back, half through each write fd.
    fn check_pipe(&mut self) -> Vec<String> {
        let mut bad = Vec::new();
        let [read, write, copy] = self.pipe;
        // SAFETY: fcntl queries on our own fds.
        let flag = |fd, cmd, bit| unsafe { libc::fcntl(fd, cmd) } & bit != 0;
        let want = [
            (
                read,
                libc::F_GETFL,
                libc::O_NONBLOCK,
                true,
                "read end non-blocking",
            ),
            (
                write,
                libc::F_GETFL,
                libc::O_NONBLOCK,
                false,
                "write end blocking",
            ),
            (
                read,
                libc::F_GETFD,
                libc::FD_CLOEXEC,
                true,
                "read end close-on-exec",
            ),
            (
                write,
                libc::F_GETFD,
                libc::FD_CLOEXEC,
                true,
                "write end close-on-exec",
            ),
            (
                copy,
                libc::F_GETFD,
                libc::FD_CLOEXEC,
                false,
                "dup'ed end not close-on-exec",
            ),
        ];
        for (fd, cmd, bit, set, what) in want {
            if flag(fd, cmd, bit) != set {
                bad.push(format!("pipe: fd {fd} is not {what}"));
            }
        }
        // SAFETY: as above.
        let size = unsafe { libc::fcntl(read, libc::F_GETPIPE_SZ) };
        if size != PIPE_SIZE {
            bad.push(format!("pipe: {size} bytes big, not {PIPE_SIZE}"));
        }
        let message = pipe_message();
        let got = read_some(read, message.len() + 100);
        if got != message {
            bad.push(format!(
                "pipe: {} unread bytes, not the {} written{}",
                got.len(),
                message.len(),
                if got.len() == message.len() {
                    ", in another order"
                } else {
                    ""
                }
            ));
        }
        let (first, second) = message.split_at(message.len() / 2);
        if !write_all_fd(write, first) || !write_all_fd(copy, second) {
            bad.push("pipe: cannot be written".into());
        }
        bad
    }

    /// Last checks, which end the waiting threads: the pending signal, the
    /// mutex, the condvar, joins.
    fn finish(&mut self) -> Vec<String> {
        let mut bad = self.check();
        // SAFETY: unblocking SIGUSR2 in this thread: the pending one lands.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
        if USR2_GOT.load(Ordering::SeqCst) != 1 {
            bad.push(format!(
                "the pending SIGUSR2 was delivered {} times, not once",
                USR2_GOT.load(Ordering::SeqCst)
            ));
        }
        self.release_mutex.store(true, Ordering::SeqCst);
        match self.holder.take().map(|h| h.join()) {
            Some(Ok(7)) => {}
            other => bad.push(format!("joining the mutex holder gave {other:?}")),
        }
        match self.mutex.try_lock() {
            Ok(v) if *v == 42 => {}
            Ok(v) => bad.push(format!("the mutex holds {}", *v)),
            Err(e) => bad.push(format!("the mutex cannot be taken: {e}")),
        }
        {
            let (lock, cvar) = &*self.wake;
            *lock.lock().unwrap() = true;
            cvar.notify_all();
        }
        match self.waiter.take().map(|h| h.join()) {
            Some(Ok(9)) => {}
            other => bad.push(format!("joining the condvar waiter gave {other:?}")),
        }
        bad
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        for path in [
            &self.private_path,
            &self.shared_path,
            &self.append_path,
            &self.offset_path,
        ] {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn main() {
    suspend_tests::crash::install();
    suspend_client::register(handshake::counting()).expect("register");
    let mut setup = set_up();
    println!("ready pid={}", std::process::id());
    let _ = std::io::stdout().flush();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "check" => {
                let bad = setup.check();
                if bad.is_empty() {
                    println!("check ok");
                } else {
                    println!("check FAILED: {}", bad.join("; "));
                }
            }
            "state" => println!("{}", handshake::state()),
            "exit" => {
                let bad = setup.finish();
                if bad.is_empty() {
                    println!("exit ok");
                    let _ = std::io::stdout().flush();
                    drop(setup);
                    std::process::exit(0);
                }
                println!("exit FAILED: {}", bad.join("; "));
                let _ = std::io::stdout().flush();
                drop(setup);
                std::process::exit(1);
            }
            other => println!("unknown command {other:?}"),
        }
        let _ = std::io::stdout().flush();
    }
}
