//! A workload that opts in (or deliberately does not) and checks itself.
//!
//! It sets up state — a memory pattern, a worker thread that keeps counting
//! — prints `ready pid=N`, then obeys commands on stdin, one per line, and
//! answers each on stdout:
//!
//! | command | effect |
//! |---|---|
//! | `decide ready\|busy\|refuse\|slow` | what on_suspend answers from now on (`slow`: ready after 2 s) |
//! | `enter` / `leave` | enter / leave a critical section (main thread) |
//! | `check` | verify memory and worker; print callback counts: `state suspend=N resume=M reason=R` |
//! | `reset-handler` | set the suspend signal back to `SIG_DFL` |
//! | `fork` | fork a child that sleeps; print `child pid=N` |
//! | `exec PROGRAM ARGS…` | replace this process |
//! | `socket` | open a socket pair and keep it (`socket fds=A,B`) |
//! | `unregister` | withdraw |
//! | `flood N` | open N connections to the agent's client socket and hold them, saying nothing (`flood held=K`) |
//! | `region SIZE` | map SIZE bytes of its own, each page written with a pattern |
//! | `region-read` / `region-fork` / `region-remap` / `region-discard` | after a resume, first touch of the region by `read(2)` into it, by a child checking it, by moving it, by discarding its second half (`region-… ok`) |
//! | `region-check` | verify the region (`region-check ok`) |
//! | `fork-for MS` | the main thread forks for MS ms without pause, each child exiting at once and reaped (`fork-for ok n=N`) |
//! | `pty` / `pty-check` | open a pseudo-terminal pair, its slave raw; check it still is (`pty-check ok`) |
//! | `shared` / `shared-check` | map a memfd shared and privately (half the private pages written) and an unlinked `/dev/shm` file shared; check every byte (`shared-check ok`) |
//! | `locks` | take a flock, a POSIX record lock and an OFD lock on a file of its own (`locks path=P`) |
//! | `timer-check ID` | the POSIX timer `timer` made is still armed under that id (`timer-check ok`) |
//! | `advise` / `advise-check` | map small regions advised DONTFORK, WIPEONFORK, DONTDUMP, NOHUGEPAGE and one named (`PR_SET_VMA_ANON_NAME`); check `/proc/self/smaps` still says so (`advise-check ok`) |
//! | `poke PID` | signal 0 to PID and read its memory; print each errno (`poke kill=0 read=14`) |
//! | `exit` | verify and exit (0 when everything holds, 1 otherwise) |
//!
//! Options: `--context thread|signal`, `--signals SUSPEND,RESUME`,
//! `--layout` (memory of a known shape, see `set_up_layout`), `--fill SIZE
//! --threads N` (SIZE bytes written, e.g. `256M`, held by N threads, for the
//! benchmark), `--spawner`
//! (threads that keep spawning threads),
//! `--block-suspend-signal` (every thread blocks it), `--no-register`
//! (never opts in),
//! `--own-handler` (installs its own handler on the default suspend signal and reports every
//! signal it gets: `GOT SIGNAL n`), `--uid N` (becomes user and group N,
//! with no supplementary groups, before anything else: a user's process),
//! `--confine` (as root: drops capabilities from every set, raises an
//! ambient one, sets securebits and `no_new_privs`; `check` verifies every
//! thread still has exactly that), `--seccomp` (sets `no_new_privs` and
//! installs a seccomp filter that fails `getpriority` with `EPERM` and
//! allows the rest; `check` verifies it still does; `--seccomp-deny-pause`
//! also fails pause(2)), `--seccomp-no-nnp` (as
//! root: the same filter without `no_new_privs`, then drops
//! `CAP_SYS_ADMIN`), `--sched` (every thread `SCHED_BATCH`, nice 7, on CPU
//! 0 only; `check` verifies each thread still is), `--attributes` (a child
//! subreaper, THP disabled, timer slack 123456 ns, oom_score_adj 321;
//! `check` verifies them), `--pdeathsig` (SIGUSR2 when its parent dies).
//! With `--layout`, `check` also verifies the private file mapping (its
//! unwritten pages must still read as the file it mapped).

use std::{
    io::{BufRead as _, Write as _},
    os::unix::fs::OpenOptionsExt as _,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    time::Duration,
};

use suspend_client::{Context, Decision, Handlers, Options, ResumeInfo, SuspendRequest};

static DECISION: AtomicU32 = AtomicU32::new(0);
static SUSPEND_CALLS: AtomicU32 = AtomicU32::new(0);
static RESUME_CALLS: AtomicU32 = AtomicU32::new(0);
static LAST_REASON: AtomicU32 = AtomicU32::new(u32::MAX);
static LAST_REQUEST: AtomicU64 = AtomicU64::new(0);
static WORKER_TICKS: AtomicU64 = AtomicU64::new(0);
static GOT_SIGNAL: AtomicU32 = AtomicU32::new(0);
static OWN_HANDLER_CALLS: AtomicU32 = AtomicU32::new(0);
/// Where `--layout` mapped its file (0: not mapped).
static LAYOUT_FILE_MAP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn on_suspend(request: &SuspendRequest) -> Decision {
    // What it was told first: the count tells a reader the call came.
    LAST_REQUEST.store(request.id, Ordering::SeqCst);
    SUSPEND_CALLS.fetch_add(1, Ordering::SeqCst);
    match DECISION.load(Ordering::SeqCst) {
        1 => Decision::Busy,
        2 => Decision::Refuse,
        3 => {
            // Slow: takes longer than the tests' short timeouts. (Thread
            // context only: sleeping is fine there, printing is too.)
            println!("on_suspend started");
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_millis(2000));
            Decision::Ready
        }
        _ => Decision::Ready,
    }
}

fn on_resume(info: &ResumeInfo) {
    LAST_REASON.store(info.reason_code, Ordering::SeqCst);
    RESUME_CALLS.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn own_handler(sig: libc::c_int) {
    GOT_SIGNAL.store(sig as u32, Ordering::SeqCst);
    OWN_HANDLER_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// A deterministic pattern the workload re-checks.
fn pattern(len: usize) -> Vec<u64> {
    (0..len as u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed)
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut context = Context::Thread;
    let mut register = true;
    let mut own = false;
    let mut signals: Option<(i32, i32)> = None;
    let mut block = false;
    let mut layout = false;
    let mut fill: Option<usize> = None;
    let mut fill_threads = 1usize;
    let mut spawner = false;
    let mut uid: Option<u32> = None;
    let mut confine = false;
    let mut seccomp = false;
    let mut seccomp_no_nnp = false;
    let mut sched = false;
    let mut attributes = false;
    let mut pdeathsig = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--context" => {
                i += 1;
                context = if args.get(i).map(String::as_str) == Some("signal") {
                    Context::Signal
                } else {
                    Context::Thread
                };
            }
            "--signals" => {
                i += 1;
                let pair = args.get(i).and_then(|a| a.split_once(','));
                signals = pair.and_then(|(s, r)| Some((s.parse().ok()?, r.parse().ok()?)));
            }
            "--no-register" => register = false,
            "--layout" => layout = true,
            "--spawner" => spawner = true,
            "--fill" => {
                i += 1;
                fill = args.get(i).and_then(|s| parse_size(s));
            }
            "--threads" => {
                i += 1;
                fill_threads = args.get(i).and_then(|s| s.parse().ok()).unwrap_or(1);
            }
            "--block-suspend-signal" => block = true,
            "--own-handler" => own = true,
            "--confine" => confine = true,
            "--seccomp" => seccomp = true,
            "--seccomp-deny-pause" => {
                seccomp = true;
                DENY_PAUSE.store(true, Ordering::SeqCst);
            }
            "--seccomp-no-nnp" => seccomp_no_nnp = true,
            "--sched" => sched = true,
            "--attributes" => attributes = true,
            "--pdeathsig" => pdeathsig = true,
            "--uid" => {
                i += 1;
                uid = args.get(i).and_then(|s| s.parse().ok());
            }
            other => {
                eprintln!("workload: unknown option {other}");
                std::process::exit(2);
            }
        }
        i += 1;
    }

    if let Some(uid) = uid {
        become_user(uid);
    }
    if confine {
        confine_self();
    }
    if sched {
        set_sched();
    }
    if attributes {
        set_attributes();
    }
    // SAFETY: a plain prctl.
    if pdeathsig && unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2) } != 0 {
        eprintln!("workload: --pdeathsig: {}", std::io::Error::last_os_error());
        std::process::exit(2);
    }
    if seccomp || seccomp_no_nnp {
        install_seccomp(!seccomp_no_nnp);
    }
    if block {
        // Before any thread starts, so every thread inherits the mask.
        // SAFETY: building and installing a signal mask we own.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, suspend_common::DEFAULT_SUSPEND_SIGNAL as i32);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
    }
    let memory = pattern(1 << 16);
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                WORKER_TICKS.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    if own {
        // SAFETY: installing a handler that only touches atomics.
        unsafe {
            libc::signal(
                suspend_common::DEFAULT_SUSPEND_SIGNAL as i32,
                own_handler as *const () as libc::sighandler_t,
            )
        };
    }
    if register {
        let mut options = Options {
            context,
            ..Options::default()
        };
        if let Some((suspend_signal, resume_signal)) = signals {
            options.suspend_signal = suspend_signal;
            options.resume_signal = resume_signal;
        }
        match suspend_client::register_with(
            Handlers {
                on_suspend,
                on_resume,
            },
            options,
        ) {
            Ok(r) => println!("registered agent={:?}", r.agent),
            Err(e) => {
                println!("register failed: {e}");
                std::process::exit(1);
            }
        }
    }
    if layout {
        println!("{}", set_up_layout());
    }
    if spawner {
        std::thread::spawn(spawn_forever);
    }
    let _filled = fill.map(|bytes| fill_memory(bytes, fill_threads));
    println!("ready pid={}", std::process::id());
    let _ = std::io::stdout().flush();

    let verify = |memory: &[u64]| -> Result<(), String> {
        if memory != pattern(memory.len()).as_slice() {
            return Err("memory pattern changed".into());
        }
        let before = WORKER_TICKS.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
        if WORKER_TICKS.load(Ordering::Relaxed) == before {
            return Err("worker thread stopped".into());
        }
        verify_layout_file()?;
        verify_confinement()?;
        verify_seccomp()?;
        verify_sched()?;
        verify_attributes()
    };

    let mut sections = Vec::new();
    let mut region: Option<Region> = None;
    let mut pty: Option<(i32, i32)> = None;
    let mut shared: Option<Shared> = None;
    let mut advised: Vec<(usize, &str)> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["decide", d] => {
                DECISION.store(
                    match *d {
                        "busy" => 1,
                        "refuse" => 2,
                        "slow" => 3,
                        _ => 0,
                    },
                    Ordering::SeqCst,
                );
                println!("ok");
            }
            ["enter"] => {
                sections.push(suspend_client::critical_section());
                println!("ok depth={}", sections.len());
            }
            ["leave"] => {
                sections.pop();
                println!("ok depth={}", sections.len());
            }
            ["check"] => {
                let verdict = verify(&memory).err().unwrap_or_else(|| "intact".into());
                println!(
                    "state suspend={} resume={} reason={} request={} own_handler={} registered={} memory={}",
                    SUSPEND_CALLS.load(Ordering::SeqCst),
                    RESUME_CALLS.load(Ordering::SeqCst),
                    suspend_tests::handshake::reason_name(LAST_REASON.load(Ordering::SeqCst)),
                    LAST_REQUEST.load(Ordering::SeqCst),
                    OWN_HANDLER_CALLS.load(Ordering::SeqCst),
                    suspend_client::is_registered(),
                    verdict.replace(' ', "_"),
                );
            }
            ["reset-handler"] => {
                // SAFETY: resetting a signal's disposition.
                unsafe {
                    libc::signal(suspend_common::DEFAULT_SUSPEND_SIGNAL as i32, libc::SIG_DFL)
                };
                println!("ok");
            }
            ["fork"] => {
                // SAFETY: the child only sleeps and exits.
                match unsafe { libc::fork() } {
                    0 => loop {
                        // SAFETY: pause is async-signal-safe.
                        unsafe { libc::pause() };
                    },
                    -1 => println!("fork failed"),
                    child => println!(
                        "child pid={child} registered_in_parent={}",
                        suspend_client::is_registered()
                    ),
                }
            }
            ["exec", program, rest @ ..] => {
                let _ = std::io::stdout().flush();
                let err = std::os::unix::process::CommandExt::exec(
                    std::process::Command::new(program).args(rest),
                );
                println!("exec failed: {err}");
            }
            ["socket"] => {
                // A socket an image cannot hold, kept open.
                let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
                use std::os::fd::IntoRawFd as _;
                println!("socket fds={},{}", a.into_raw_fd(), b.into_raw_fd());
            }
            ["serve"] => {
                // A TCP echo server on loopback: every line a client sends
                // comes back as `echo LINE`, each client on its own thread.
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                let port = listener.local_addr().expect("address").port();
                std::thread::spawn(move || {
                    for stream in listener.incoming().flatten() {
                        std::thread::spawn(move || {
                            let mut out = stream.try_clone().expect("clone");
                            for line in std::io::BufReader::new(stream).lines() {
                                let Ok(line) = line else { break };
                                if writeln!(out, "echo {line}").is_err() {
                                    break;
                                }
                            }
                        });
                    }
                });
                println!("serving port={port}");
            }
            ["timer"] => {
                // A POSIX timer, armed far ahead (it never fires here).
                // SAFETY: timer_create/settime with valid pointers.
                let id = unsafe {
                    let mut sev: libc::sigevent = std::mem::zeroed();
                    sev.sigev_notify = libc::SIGEV_NONE;
                    let mut id: libc::timer_t = std::ptr::null_mut();
                    let spec = libc::itimerspec {
                        it_interval: libc::timespec {
                            tv_sec: 3600,
                            tv_nsec: 0,
                        },
                        it_value: libc::timespec {
                            tv_sec: 3600,
                            tv_nsec: 0,
                        },
                    };
                    if libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut id) == 0 {
                        libc::timer_settime(id, 0, &spec, std::ptr::null_mut());
                        id as isize
                    } else {
                        -1
                    }
                };
                println!("timer id={id}");
            }
            ["flock"] => {
                let path =
                    std::env::temp_dir().join(format!("workload-flock-{}", std::process::id()));
                let f = std::fs::File::create(&path).expect("lock file");
                use std::os::fd::IntoRawFd as _;
                let fd = f.into_raw_fd();
                // SAFETY: flock on the fd just opened.
                let rc = unsafe { libc::flock(fd, libc::LOCK_EX) };
                println!("flock fd={fd} rc={rc}");
            }
            ["async"] => {
                // A pipe whose read end sends SIGIO (O_ASYNC) to another
                // process: init (which ignores it; the test process would
                // not).
                let mut fds = [0; 2];
                // SAFETY: pipe2/fcntl on fds we own.
                let rc = unsafe {
                    libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC);
                    libc::fcntl(fds[0], libc::F_SETOWN, 1);
                    libc::fcntl(fds[0], libc::F_SETFL, libc::O_ASYNC)
                };
                println!("async fds={},{} rc={rc}", fds[0], fds[1]);
            }
            ["mlock"] => {
                let page = Box::leak(Box::new([1u8; 4096]));
                // SAFETY: locking memory we own (leaked: it stays).
                let rc = unsafe { libc::mlock(page.as_ptr().cast(), 4096) };
                println!("mlock rc={rc}");
            }
            ["reopen-pipe"] => {
                // A pipe's read end opened a second time through /proc, with
                // its own O_NONBLOCK: two open files, not a dup.
                let mut fds = [0; 2];
                // SAFETY: pipe2 into our array.
                unsafe { libc::pipe2(fds.as_mut_ptr(), 0) };
                let again = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(format!("/proc/self/fd/{}", fds[0]))
                    .expect("reopen");
                use std::os::fd::IntoRawFd as _;
                println!(
                    "reopen-pipe fds={},{},{}",
                    fds[0],
                    fds[1],
                    again.into_raw_fd()
                );
            }
            ["region", size] => {
                region = parse_size(size).map(Region::new);
                println!("region {}", if region.is_some() { "ok" } else { "FAIL" });
            }
            ["region-read"] => {
                let r = region.as_mut().expect("region");
                println!("region-read {}", r.read_into());
            }
            ["fork-for", ms] => {
                let until = std::time::Instant::now()
                    + std::time::Duration::from_millis(ms.parse().unwrap_or(0));
                let mut n = 0u64;
                let mut failed = None;
                while std::time::Instant::now() < until {
                    // SAFETY: the child only exits.
                    match unsafe { libc::fork() } {
                        0 => {
                            // SAFETY: _exit is async-signal-safe.
                            unsafe { libc::_exit(0) }
                        }
                        -1 => {
                            failed = Some(std::io::Error::last_os_error());
                            break;
                        }
                        child => {
                            let mut status = 0;
                            // SAFETY: reaping our own child.
                            unsafe { libc::waitpid(child, &mut status, 0) };
                            n += 1;
                        }
                    }
                }
                match failed {
                    None => println!("fork-for ok n={n}"),
                    Some(e) => println!("fork-for FAIL after {n}: {e}"),
                }
            }
            ["region-fork"] => {
                let r = region.as_ref().expect("region");
                println!("region-fork {}", r.fork_check());
            }
            ["region-remap"] => {
                let r = region.as_mut().expect("region");
                println!("region-remap {}", r.remap());
            }
            ["region-discard"] => {
                let r = region.as_mut().expect("region");
                println!("region-discard {}", r.discard());
            }
            ["region-check"] => {
                let r = region.as_ref().expect("region");
                println!(
                    "region-check {}",
                    r.check().err().unwrap_or_else(|| "ok".into())
                );
            }
            ["pty"] => {
                pty = open_raw_pty();
                println!("pty {}", if pty.is_some() { "ok" } else { "FAIL" });
            }
            ["pty-check"] => {
                let (master, slave) = pty.expect("pty");
                println!("pty-check {}", check_raw_pty(master, slave));
            }
            ["shared"] => {
                shared = Shared::new();
                println!("shared {}", if shared.is_some() { "ok" } else { "FAIL" });
            }
            ["shared-check"] => {
                let s = shared.as_ref().expect("shared");
                println!("shared-check {}", s.check());
            }
            ["locks"] => {
                // Each kind of lock on a file of its own: flock (fd a),
                // a POSIX record lock on bytes 0..10 (fd b), an OFD lock
                // on bytes 10..20 (fd c).
                let path =
                    std::env::temp_dir().join(format!("workload-locks-{}", std::process::id()));
                let open = || {
                    std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(&path)
                        .expect("lock file")
                };
                use std::os::fd::IntoRawFd as _;
                let (a, b, c) = (
                    open().into_raw_fd(),
                    open().into_raw_fd(),
                    open().into_raw_fd(),
                );
                let lock = |fd, cmd, start| suspend_tests::write_lock(fd, cmd, start, 10);
                // SAFETY: flock on a descriptor we own.
                let rc = [
                    unsafe { libc::flock(a, libc::LOCK_EX | libc::LOCK_NB) },
                    lock(b, libc::F_SETLK, 0),
                    lock(c, libc::F_OFD_SETLK, 10),
                ];
                println!("locks path={} rc={rc:?}", path.display());
            }
            ["timer-check", id] => {
                // The timer `timer` made is still there, armed, same id.
                let id: isize = id.parse().unwrap_or(-1);
                // SAFETY: timer_gettime into a struct on the stack.
                let (rc, left) = unsafe {
                    let mut spec: libc::itimerspec = std::mem::zeroed();
                    let rc = libc::timer_gettime(id as libc::timer_t, &mut spec);
                    (rc, spec.it_value.tv_sec)
                };
                println!(
                    "timer-check {}",
                    if rc == 0 && left > 3000 {
                        "ok".to_owned()
                    } else {
                        format!("FAIL rc={rc} left={left}")
                    }
                );
            }
            ["advise"] => {
                // One small anonymous mapping per advice the kernel keeps
                // with a mapping, and one named.
                let map = || {
                    // SAFETY: a fresh private anonymous mapping of our own.
                    unsafe {
                        libc::mmap(
                            std::ptr::null_mut(),
                            4 * 4096,
                            libc::PROT_READ | libc::PROT_WRITE,
                            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                            -1,
                            0,
                        ) as usize
                    }
                };
                let mut failed = Vec::new();
                for (advice, flag) in [
                    (libc::MADV_DONTFORK, "dc"),
                    (libc::MADV_WIPEONFORK, "wf"),
                    (libc::MADV_DONTDUMP, "dd"),
                    (libc::MADV_NOHUGEPAGE, "nh"),
                ] {
                    let at = map();
                    // SAFETY: advice on our own mapping.
                    if unsafe { libc::madvise(at as *mut libc::c_void, 4 * 4096, advice) } != 0 {
                        failed.push(flag);
                    }
                    advised.push((at, flag));
                }
                let at = map();
                // SAFETY: naming our own mapping with a NUL-terminated name.
                let rc = unsafe {
                    libc::prctl(
                        0x5356_4d41,
                        0 as libc::c_ulong,
                        at as libc::c_ulong,
                        (4 * 4096) as libc::c_ulong,
                        c"workload-named".as_ptr(),
                    )
                };
                if rc == 0 {
                    advised.push((at, "[anon:workload-named]"));
                } else {
                    failed.push("name");
                }
                println!(
                    "advise {}",
                    if failed.is_empty() {
                        "ok".to_owned()
                    } else {
                        format!("unsupported={}", failed.join(","))
                    }
                );
            }
            ["advise-check"] => {
                let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
                let mut wrong = Vec::new();
                for &(at, want) in &advised {
                    let head = format!("{at:x}-");
                    let block: Vec<&str> = smaps
                        .lines()
                        .skip_while(|l| !l.starts_with(&head))
                        .take_while(|l| {
                            l.starts_with(&head) || !l.contains('-') || l.starts_with("VmFlags")
                        })
                        .collect();
                    let ok = if want.starts_with('[') {
                        block.first().is_some_and(|l| l.ends_with(want))
                    } else {
                        block.iter().any(|l| {
                            l.starts_with("VmFlags:") && l.split_whitespace().any(|f| f == want)
                        })
                    };
                    if !ok {
                        wrong.push(format!("{at:#x}:{want}"));
                    }
                }
                println!(
                    "advise-check {}",
                    if wrong.is_empty() {
                        "ok".to_owned()
                    } else {
                        format!("FAIL lost={}", wrong.join(","))
                    }
                );
            }
            ["poke", target] => {
                // What another process (of our user) may do to `target`:
                // signal 0, and read its memory at a page that is surely
                // unmapped (EFAULT when allowed; EPERM/EACCES when not).
                let target: i32 = target.parse().unwrap_or(0);
                let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                // SAFETY: kill with signal 0 sends nothing.
                let kill = if unsafe { libc::kill(target, 0) } == 0 {
                    0
                } else {
                    errno()
                };
                let mut buf = [0u8; 8];
                let local = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: 8,
                };
                let remote = libc::iovec {
                    iov_base: 0x1000 as *mut libc::c_void,
                    iov_len: 8,
                };
                // SAFETY: one local buffer we own; the kernel checks the rest.
                let n = unsafe { libc::process_vm_readv(target, &local, 1, &remote, 1, 0) };
                let read = if n == 8 { 0 } else { errno() };
                println!("poke kill={kill} read={read}");
            }
            ["uffd"] => {
                // A userfaultfd of its own, kept open.
                // SAFETY: userfaultfd takes flags only.
                let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
                println!("uffd fd={fd}");
            }
            ["flood", n] => {
                let n: usize = n.parse().unwrap_or(0);
                raise_fd_limit();
                let mut held = 0;
                for _ in 0..n {
                    match std::os::unix::net::UnixStream::connect(
                        suspend_common::paths::CLIENT_SOCKET,
                    ) {
                        Ok(stream) => {
                            std::mem::forget(stream);
                            held += 1;
                        }
                        Err(_) => break,
                    }
                }
                println!("flood held={held}");
            }
            ["unregister"] => match suspend_client::unregister() {
                Ok(()) => println!("ok"),
                Err(e) => println!("unregister failed: {e}"),
            },
            ["exit"] => {
                stop.store(true, Ordering::Relaxed);
                let result = verify_final(&memory);
                let _ = worker.join();
                match result {
                    Ok(()) => {
                        println!("exit ok");
                        std::process::exit(0);
                    }
                    Err(e) => {
                        println!("exit FAIL {e}");
                        std::process::exit(1);
                    }
                }
            }
            _ => println!("unknown command: {line}"),
        }
        let _ = std::io::stdout().flush();
    }
}

fn verify_final(memory: &[u64]) -> Result<(), String> {
    if memory != pattern(memory.len()).as_slice() {
        return Err("memory pattern changed".into());
    }
    if SUSPEND_CALLS.load(Ordering::SeqCst) < RESUME_CALLS.load(Ordering::SeqCst) {
        return Err("on_resume ran more often than on_suspend".into());
    }
    Ok(())
}

/// Memory the dump tests know the shape of: an anonymous region with 10 of
/// its 64 pages written, a 1 GiB reservation with 3 pages written, a page
/// written then made `PROT_NONE`, and a private file mapping with one of
/// its 4 pages written. Page `i` of region `r` holds the byte
/// `layout_byte(r, i)` throughout. Also two idle threads. Returns the
/// `layout …` line the tests parse.
fn set_up_layout() -> String {
    // Each region between two read-only guard pages, so the kernel never
    // merges it with a neighbour and it stays one mapping of its own.
    fn map(len: usize, prot: i32, flags: i32, fd: i32) -> *mut u8 {
        let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        // SAFETY: fresh mappings; no existing memory is affected.
        unsafe {
            let area = libc::mmap(
                std::ptr::null_mut(),
                len + 8192,
                libc::PROT_READ,
                anon,
                -1,
                0,
            );
            assert_ne!(area, libc::MAP_FAILED, "mmap");
            let at = area.cast::<u8>().add(4096).cast();
            let p = libc::mmap(at, len, prot, flags | libc::MAP_FIXED, fd, 0);
            assert_ne!(p, libc::MAP_FAILED, "mmap");
            // Written pages only: a transparent huge page would make 512
            // pages exist for one written (kernels with THP "always").
            libc::madvise(p, len, libc::MADV_NOHUGEPAGE);
            p.cast()
        }
    }
    let fill = |base: *mut u8, region: u8, page: usize| {
        // SAFETY: `page` is inside the mapping `base` starts.
        unsafe { std::ptr::write_bytes(base.add(page * 4096), layout_byte(region, page), 4096) };
    };
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let a = map(64 * 4096, rw, anon, -1);
    for page in 0..10 {
        fill(a, 1, page);
    }
    let b = map(1 << 30, rw, anon | libc::MAP_NORESERVE, -1);
    for page in [0, 1000, 200_000] {
        fill(b, 2, page);
    }
    let c = map(4096, rw, anon, -1);
    fill(c, 3, 0);
    // SAFETY: changing the protection of our own page.
    unsafe { libc::mprotect(c.cast(), 4096, libc::PROT_NONE) };
    let path = std::env::temp_dir().join(format!("suspend-layout-{}", std::process::id()));
    std::fs::write(&path, vec![0x11u8; 4 * 4096]).expect("layout file");
    let file = std::fs::File::open(&path).expect("layout file");
    use std::os::fd::AsRawFd as _;
    let d = map(4 * 4096, rw, libc::MAP_PRIVATE, file.as_raw_fd());
    drop(file); // the mapping keeps it; no fd stays open
    fill(d, 4, 1);
    LAYOUT_FILE_MAP.store(d as usize, Ordering::SeqCst);
    // Both threads are up (stacks, signal stacks) before the line is out.
    let started = std::sync::Arc::new(std::sync::Barrier::new(3));
    for _ in 0..2 {
        let started = started.clone();
        std::thread::spawn(move || {
            started.wait();
            loop {
                std::thread::park();
            }
        });
    }
    started.wait();
    let (usr1, altstack, brk) = set_up_signals();
    format!(
        "layout usr1={usr1:#x} altstack={altstack:#x} brk={brk:#x} a={:#x} b={:#x} c={:#x} d={:#x} file={}",
        a as usize,
        b as usize,
        c as usize,
        d as usize,
        path.display()
    )
}

/// Becomes user and group `id`, with no supplementary groups, and stays
/// dumpable as a process started by that user would be; with a limit of
/// its own (777 open files, soft), as a user's shell might set.
fn become_user(id: u32) {
    // SAFETY: plain credential and limit system calls on this (still
    // single-threaded) process.
    let ok = unsafe {
        let mut files: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut files);
        files.rlim_cur = 777.min(files.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &files) == 0
            && libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresgid(id, id, id) == 0
            && libc::setresuid(id, id, id) == 0
            && libc::prctl(libc::PR_SET_DUMPABLE, 1) == 0
    };
    if !ok {
        eprintln!(
            "workload: becoming uid {id}: {}",
            std::io::Error::last_os_error()
        );
        std::process::exit(2);
    }
}

/// What `--confine` leaves every thread with: the `Cap*` and `NoNewPrivs`
/// lines of its status file, and its securebits.
static CONFINED: std::sync::OnceLock<(Vec<String>, i32)> = std::sync::OnceLock::new();

/// This thread's `Cap*` and `NoNewPrivs` lines.
fn confinement_lines(status: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| l.starts_with("Cap") || l.starts_with("NoNewPrivs"))
        .map(str::to_owned)
        .collect()
}

/// As root: CAP_SYS_MODULE and CAP_NET_RAW out of the bounding set;
/// permitted {CHOWN, DAC_OVERRIDE, NET_BIND_SERVICE}, effective {CHOWN,
/// NET_BIND_SERVICE}, inheritable and ambient {NET_BIND_SERVICE};
/// SECBIT_NOROOT; no_new_privs.
fn confine_self() {
    const CHOWN: u32 = 0;
    const DAC_OVERRIDE: u32 = 1;
    const NET_BIND_SERVICE: u32 = 10;
    const NET_RAW: u32 = 13;
    const SYS_MODULE: u32 = 16;
    let bit = |c: u32| 1u32 << c;
    // SAFETY: prctl and capset on this (still single-threaded) process
    // with valid arguments.
    let ok = unsafe {
        libc::prctl(libc::PR_SET_SECUREBITS, 1) == 0 // SECBIT_NOROOT
            && libc::prctl(libc::PR_CAPBSET_DROP, SYS_MODULE) == 0
            && libc::prctl(libc::PR_CAPBSET_DROP, NET_RAW) == 0
            && {
                let header: [u32; 2] = [0x2008_0522, 0];
                let permitted = bit(CHOWN) | bit(DAC_OVERRIDE) | bit(NET_BIND_SERVICE);
                let data: [u32; 6] = [
                    bit(CHOWN) | bit(NET_BIND_SERVICE),
                    permitted,
                    bit(NET_BIND_SERVICE),
                    0,
                    0,
                    0,
                ];
                libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()) == 0
            }
            && libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                NET_BIND_SERVICE as libc::c_ulong,
                0,
                0,
            ) == 0
            && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    };
    if !ok {
        eprintln!("workload: --confine: {}", std::io::Error::last_os_error());
        std::process::exit(2);
    }
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
    // SAFETY: a plain prctl.
    let bits = unsafe { libc::prctl(libc::PR_GET_SECUREBITS) };
    let _ = CONFINED.set((confinement_lines(&status), bits));
}

/// Every thread's confinement as `--confine` left it.
fn verify_confinement() -> Result<(), String> {
    let Some((want, bits)) = CONFINED.get() else {
        return Ok(());
    };
    // SAFETY: a plain prctl.
    if unsafe { libc::prctl(libc::PR_GET_SECUREBITS) } != *bits {
        return Err("securebits changed".into());
    }
    let tasks = std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())?;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        if status.is_empty() {
            continue; // a thread that just ended
        }
        if confinement_lines(&status) != *want {
            return Err(format!(
                "thread {} confinement changed: {:?}",
                task.file_name().to_string_lossy(),
                confinement_lines(&status)
            ));
        }
    }
    Ok(())
}

/// Whether `--attributes` set them.
static ATTRIBUTES: AtomicBool = AtomicBool::new(false);

/// A child subreaper, THP disabled, timer slack 123456 ns (this thread,
/// inherited by the ones created after), oom_score_adj 321.
fn set_attributes() {
    // SAFETY: plain prctls on this process.
    let ok = unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_TIMERSLACK, 123_456, 0, 0, 0) == 0
    } && std::fs::write("/proc/self/oom_score_adj", "321").is_ok();
    if !ok {
        eprintln!(
            "workload: --attributes: {}",
            std::io::Error::last_os_error()
        );
        std::process::exit(2);
    }
    ATTRIBUTES.store(true, Ordering::SeqCst);
}

/// What `--attributes` set still holds (the timer slack: of the thread
/// that checks, the main one).
fn verify_attributes() -> Result<(), String> {
    if !ATTRIBUTES.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mut subreaper: libc::c_int = 0;
    // SAFETY: plain prctls; the subreaper query writes one int.
    let (got_subreaper, thp, slack) = unsafe {
        (
            libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &raw mut subreaper) == 0 && subreaper == 1,
            libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0),
            libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0),
        )
    };
    let oom = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    if !got_subreaper || thp != 1 || slack != 123_456 || oom.trim() != "321" {
        return Err(format!(
            "attributes changed: subreaper {got_subreaper} thp_disable {thp} slack {slack} oom {}",
            oom.trim()
        ));
    }
    Ok(())
}

/// Whether `--sched` set the scheduling.
static SCHED: AtomicBool = AtomicBool::new(false);

/// `SCHED_BATCH`, nice 7, CPU 0 only, for this (still the only) thread.
fn set_sched() {
    // SAFETY: plain scheduling calls on the calling thread with valid
    // arguments.
    let ok = unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        let mut cpus: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut cpus);
        libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0
            && libc::setpriority(libc::PRIO_PROCESS, 0, 7) == 0
            && libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &cpus) == 0
    };
    if !ok {
        eprintln!("workload: --sched: {}", std::io::Error::last_os_error());
        std::process::exit(2);
    }
    SCHED.store(true, Ordering::SeqCst);
}

/// Every thread still `SCHED_BATCH`, nice 7, on CPU 0 only (from its
/// `/proc` files: policy and nice in `stat`, `Cpus_allowed_list`).
fn verify_sched() -> Result<(), String> {
    if !SCHED.load(Ordering::SeqCst) {
        return Ok(());
    }
    let tasks = std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())?;
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        let (Ok(stat), Ok(status)) = (
            std::fs::read_to_string(task.path().join("stat")),
            std::fs::read_to_string(task.path().join("status")),
        ) else {
            continue; // a thread that just ended
        };
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // After the comm: field 3 is the first; nice is field 19, policy 41.
        let (nice, policy) = (fields.get(16).copied(), fields.get(38).copied());
        let cpus = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(str::trim);
        if nice != Some("7") || policy != Some("3") || cpus != Some("0") {
            return Err(format!(
                "thread {tid} scheduling changed: nice {nice:?} policy {policy:?} cpus {cpus:?}"
            ));
        }
    }
    Ok(())
}

/// Whether `--seccomp` installed its filter.
static SECCOMP: AtomicBool = AtomicBool::new(false);
/// `--seccomp-deny-pause`: the filter fails pause(2) too.
static DENY_PAUSE: AtomicBool = AtomicBool::new(false);

/// A seccomp filter failing `getpriority` with `EPERM` and allowing the
/// rest; with `nnp`, `no_new_privs` first, else (as root) installed with
/// `CAP_SYS_ADMIN`, which is then dropped from every set.
fn install_seccomp(nnp: bool) {
    let insn = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    // `--seccomp-deny-pause` fails pause(2) too (a held thread waits in
    // it); otherwise that test matches no system call.
    let also = if DENY_PAUSE.load(Ordering::SeqCst) {
        libc::SYS_pause as u32
    } else {
        u32::MAX
    };
    let filter = [
        insn(0x20, 0, 0, 0),                                // ld [nr]
        insn(0x15, 0, 1, libc::SYS_getpriority as u32),     // jeq getpriority
        insn(0x06, 0, 0, 0x0005_0000 | libc::EPERM as u32), // ret ERRNO(EPERM)
        insn(0x15, 0, 1, also),                             // jeq also
        insn(0x06, 0, 0, 0x0005_0000 | libc::EPERM as u32), // ret ERRNO(EPERM)
        insn(0x06, 0, 0, 0x7fff_0000),                      // ret ALLOW
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl and capset with valid arguments that outlive the calls.
    let ok = unsafe {
        (!nnp || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &raw const program,
            ) == 0
            && (nnp || {
                const CAP_SYS_ADMIN: u32 = 21;
                let header: [u32; 2] = [0x2008_0522, 0];
                let mut data = [0u32; 6];
                libc::syscall(libc::SYS_capget, header.as_ptr(), data.as_mut_ptr());
                // Effective and permitted: their low words (CAP_SYS_ADMIN is 21).
                for word in &mut data[..2] {
                    *word &= !(1 << CAP_SYS_ADMIN);
                }
                libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()) == 0
            })
    };
    if !ok {
        eprintln!("workload: --seccomp: {}", std::io::Error::last_os_error());
        std::process::exit(2);
    }
    SECCOMP.store(true, Ordering::SeqCst);
}

/// The `--seccomp` filter still holds: `getpriority` fails with `EPERM`.
fn verify_seccomp() -> Result<(), String> {
    if !SECCOMP.load(Ordering::SeqCst) {
        return Ok(());
    }
    // SAFETY: a plain system call with no memory arguments.
    let ret = unsafe { libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, 0) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    if ret != -1 || errno != Some(libc::EPERM) {
        return Err(format!(
            "the seccomp filter is gone (getpriority returned {ret}, errno {errno:?})"
        ));
    }
    Ok(())
}

/// Raises the soft limit on open descriptors to the hard one.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The `--layout` file mapping: page 1 as written, the others as the file
/// holds them (0x11).
fn verify_layout_file() -> Result<(), String> {
    let at = LAYOUT_FILE_MAP.load(Ordering::SeqCst);
    if at == 0 {
        return Ok(());
    }
    for page in 0..4 {
        let want = if page == 1 { layout_byte(4, 1) } else { 0x11 };
        // SAFETY: the layout's file mapping is 4 pages, readable, and
        // never unmapped.
        let bytes = unsafe { std::slice::from_raw_parts((at + page * 4096) as *const u8, 4096) };
        if bytes.iter().any(|&b| b != want) {
            return Err(format!("layout file mapping page {page} changed"));
        }
    }
    Ok(())
}

/// The byte page `page` of layout region `region` is filled with.
fn layout_byte(region: u8, page: usize) -> u8 {
    region.wrapping_mul(31).wrapping_add((page % 251) as u8) | 1
}

/// Keeps creating threads that create a thread and end, for the freeze to
/// catch them all.
fn spawn_forever() {
    loop {
        let t = std::thread::spawn(|| {
            let _ = std::thread::spawn(|| std::hint::black_box(1 + 1)).join();
        });
        let _ = t.join();
    }
}

extern "C" fn on_usr1(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
extern "C" fn on_alarm(_: libc::c_int) {}

/// Kernel state only the process can report: a SIGUSR1 handler
/// (`SA_SIGINFO | SA_RESTART`, masking SIGUSR2), an alternate signal stack
/// on the main thread, an interval timer every 1000 s (SIGALRM caught), and
/// the program break moved by 3 pages. Returns (handler, altstack, brk).
fn set_up_signals() -> (usize, usize, usize) {
    // SAFETY: plain libc calls on state this process owns; the handlers do
    // nothing.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_usr1 as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaddset(&mut action.sa_mask, libc::SIGUSR2);
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
        libc::signal(libc::SIGALRM, on_alarm as *const () as libc::sighandler_t);
        let stack = Box::leak(vec![0u8; 64 * 1024].into_boxed_slice());
        let ss = libc::stack_t {
            ss_sp: stack.as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: stack.len(),
        };
        libc::sigaltstack(&ss, std::ptr::null_mut());
        let every = libc::timeval {
            tv_sec: 1000,
            tv_usec: 0,
        };
        let timer = libc::itimerval {
            it_interval: every,
            it_value: every,
        };
        libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
        libc::sbrk(3 * 4096);
        (
            on_usr1 as *const () as usize,
            stack.as_ptr() as usize,
            libc::sbrk(0) as usize,
        )
    }
}

/// `16M`, `1G`, `4096`: a size in bytes.
fn parse_size(text: &str) -> Option<usize> {
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let n: usize = number.parse().ok()?;
    Some(
        n * match unit {
            "" => 1,
            "K" | "k" => 1 << 10,
            "M" | "m" => 1 << 20,
            "G" | "g" => 1 << 30,
            _ => return None,
        },
    )
}

/// A pseudo-terminal pair, its slave side in raw mode (as a full-screen
/// program sets its terminal): `(master, slave)`.
fn open_raw_pty() -> Option<(i32, i32)> {
    // SAFETY: the pty calls with a buffer of the size given; termios is
    // plain data.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        if master < 0 || libc::grantpt(master) != 0 || libc::unlockpt(master) != 0 {
            return None;
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(master, name.as_mut_ptr(), name.len()) != 0 {
            return None;
        }
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        let mut t: libc::termios = std::mem::zeroed();
        if slave < 0 || libc::tcgetattr(slave, &mut t) != 0 {
            return None;
        }
        libc::cfmakeraw(&mut t);
        (libc::tcsetattr(slave, libc::TCSANOW, &t) == 0).then_some((master, slave))
    }
}

/// Still raw: no canonical mode, echo or signals, and a byte written to the
/// master is read at once, unchanged, from the slave.
fn check_raw_pty(master: i32, slave: i32) -> String {
    // SAFETY: termios is plain data; reads and writes of one byte.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(slave, &mut t) != 0 {
            return "FAIL tcgetattr".into();
        }
        if t.c_lflag & (libc::ICANON | libc::ECHO | libc::ISIG) != 0 {
            return format!("FAIL not raw (lflag {:#o})", t.c_lflag);
        }
        let byte = [0x03u8]; // ^C: a signal, were it not raw
        if libc::write(master, byte.as_ptr().cast(), 1) != 1 {
            return "FAIL write".into();
        }
        let mut got = [0u8];
        if libc::read(slave, got.as_mut_ptr().cast(), 1) != 1 || got != byte {
            return format!("FAIL read {got:?}");
        }
    }
    "ok".into()
}

/// Shared memory a held process keeps (never released: others may use it)
/// and its private view: a memfd mapped shared and privately (half its
/// pages then written: copies of its own), and a `/dev/shm` file (as
/// `sem_open` makes) mapped shared and unlinked.
struct Shared {
    memfd_shared: *mut u8,
    memfd_private: *mut u8,
    shm: *mut u8,
}

const SHARED_LEN: usize = 64 * 4096;

impl Shared {
    fn new() -> Option<Self> {
        let map = |fd: i32, flags: i32| {
            // SAFETY: a fresh mapping of a descriptor we own.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    SHARED_LEN,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags,
                    fd,
                    0,
                )
            };
            (p != libc::MAP_FAILED).then_some(p.cast::<u8>())
        };
        // SAFETY: memfd_create/open/ftruncate/unlink with valid C strings.
        unsafe {
            let memfd = libc::memfd_create(c"workload-memfd".as_ptr(), 0);
            let path =
                std::ffi::CString::new(format!("/dev/shm/workload-shm-{}", std::process::id()))
                    .ok()?;
            let shm = libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
                0o600,
            );
            if memfd < 0 || shm < 0 {
                return None;
            }
            if libc::ftruncate(memfd, SHARED_LEN as i64) != 0
                || libc::ftruncate(shm, SHARED_LEN as i64) != 0
            {
                return None;
            }
            let s = Self {
                memfd_shared: map(memfd, libc::MAP_SHARED)?,
                memfd_private: map(memfd, libc::MAP_PRIVATE)?,
                shm: map(shm, libc::MAP_SHARED)?,
            };
            libc::unlink(path.as_ptr());
            libc::close(shm);
            libc::close(memfd);
            for i in 0..SHARED_LEN {
                *s.memfd_shared.add(i) = (i / 4096) as u8 ^ 0x11;
                *s.shm.add(i) = (i / 4096) as u8 ^ 0x22;
            }
            for i in (0..SHARED_LEN).filter(|i| (i / 4096).is_multiple_of(2)) {
                *s.memfd_private.add(i) = (i / 4096) as u8 ^ 0x33;
            }
            Some(s)
        }
    }

    fn check(&self) -> String {
        for i in 0..SHARED_LEN {
            let page = (i / 4096) as u8;
            // SAFETY: our mappings of SHARED_LEN bytes each.
            let (a, b, c) = unsafe {
                (
                    *self.memfd_shared.add(i),
                    *self.memfd_private.add(i),
                    *self.shm.add(i),
                )
            };
            let private = if page.is_multiple_of(2) {
                page ^ 0x33
            } else {
                page ^ 0x11
            };
            if a != page ^ 0x11 || b != private || c != page ^ 0x22 {
                return format!(
                    "FAIL byte {i:#x}: memfd {a:#x}, its private copy {b:#x}, shm {c:#x}"
                );
            }
        }
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        if !maps
            .lines()
            .any(|l| l.contains("/dev/shm/workload-shm-") && l.ends_with("(deleted)"))
        {
            return "FAIL the unlinked /dev/shm file is no longer mapped".into();
        }
        "ok".into()
    }
}

/// An anonymous mapping of its own, every page written with a pattern
/// (`region SIZE`); after a resume its commands touch it for the first
/// time in ways a lazy refill must serve exactly: a `read(2)` into it (a
/// fault taken inside the kernel), a child checking it, `mremap`, and
/// `MADV_DONTNEED` (the discarded half must stay zero).
struct Region {
    ptr: *mut u8,
    len: usize,
    /// Bytes from here on were discarded (read as zero).
    discarded_from: usize,
}

fn region_byte(page: usize, at: usize) -> u8 {
    ((page.wrapping_mul(2_654_435_761) >> 5) as u8) ^ (at as u8) ^ 0x5a
}

impl Region {
    fn new(len: usize) -> Self {
        // SAFETY: a fresh private anonymous mapping of our own.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap");
        let r = Self {
            ptr: ptr.cast(),
            len,
            discarded_from: len,
        };
        for (i, b) in r.bytes_mut().iter_mut().enumerate() {
            *b = region_byte(i / 4096, i % 4096);
        }
        r
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: our mapping of `len` bytes, alive while we are.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    #[allow(clippy::mut_from_ref)]
    fn bytes_mut(&self) -> &mut [u8] {
        // SAFETY: as above; the workload is the only writer.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    fn check(&self) -> Result<(), String> {
        for (i, &b) in self.bytes().iter().enumerate() {
            let want = if i >= self.discarded_from {
                0
            } else {
                region_byte(i / 4096, i % 4096)
            };
            if b != want {
                return Err(format!("FAIL byte {i:#x} is {b:#x}, not {want:#x}"));
            }
        }
        Ok(())
    }

    /// `read(2)` from a pipe into the middle of a page not touched since
    /// the resume; the rest of that page must be as it was.
    fn read_into(&mut self) -> String {
        let mut fds = [0; 2];
        let data: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(3) | 0x80).collect();
        let page = self.len / 4096 / 2 + 1;
        let at = page * 4096 + 1000;
        // SAFETY: a pipe of our own; the read lands inside our mapping.
        let got = unsafe {
            libc::pipe(fds.as_mut_ptr());
            libc::write(fds[1], data.as_ptr().cast(), data.len());
            let got = libc::read(fds[0], self.ptr.add(at).cast(), data.len());
            libc::close(fds[0]);
            libc::close(fds[1]);
            got
        };
        if got != data.len() as isize {
            return format!(
                "FAIL read returned {got}: {}",
                std::io::Error::last_os_error()
            );
        }
        let bytes = self.bytes_mut();
        if bytes[at..at + data.len()] != data[..] {
            return "FAIL the bytes read are not those written".into();
        }
        for (j, b) in bytes[page * 4096..(page + 1) * 4096].iter_mut().enumerate() {
            let i = page * 4096 + j;
            if !(at..at + data.len()).contains(&i) && *b != region_byte(page, j) {
                return format!("FAIL byte {j} of the page read into is {b:#x}");
            }
            *b = region_byte(page, j);
        }
        "ok".into()
    }

    /// A child checks every byte and exits with the verdict.
    fn fork_check(&self) -> String {
        // SAFETY: the child only reads memory and exits.
        match unsafe { libc::fork() } {
            // SAFETY: _exit in the child.
            0 => unsafe { libc::_exit(if self.check().is_ok() { 0 } else { 1 }) },
            -1 => "FAIL fork".into(),
            child => {
                let mut status = 0;
                // SAFETY: waiting for our child.
                unsafe { libc::waitpid(child, &mut status, 0) };
                if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                    "ok".into()
                } else {
                    format!("FAIL the child saw its memory differ (status {status:#x})")
                }
            }
        }
    }

    /// Moves the whole mapping elsewhere (`mremap`), untouched.
    fn remap(&mut self) -> String {
        // SAFETY: a reservation, then our mapping moved onto it.
        let moved = unsafe {
            let to = libc::mmap(
                std::ptr::null_mut(),
                self.len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            libc::mremap(
                self.ptr.cast(),
                self.len,
                self.len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                to,
            )
        };
        if moved == libc::MAP_FAILED {
            return format!("FAIL mremap: {}", std::io::Error::last_os_error());
        }
        self.ptr = moved.cast();
        "ok".into()
    }

    /// Discards its second half (`MADV_DONTNEED`): it reads as zeros after.
    fn discard(&mut self) -> String {
        let half = self.len / 2 / 4096 * 4096;
        // SAFETY: discarding part of our own mapping.
        let rc = unsafe {
            libc::madvise(
                self.ptr.add(half).cast(),
                self.len - half,
                libc::MADV_DONTNEED,
            )
        };
        if rc != 0 {
            return format!("FAIL madvise: {}", std::io::Error::last_os_error());
        }
        self.discarded_from = half;
        "ok".into()
    }
}

/// `bytes` of memory written with a pattern, split among `threads` threads
/// that each keep their share (and stay idle).
fn fill_memory(bytes: usize, threads: usize) -> Vec<std::thread::JoinHandle<()>> {
    let share = bytes / threads.max(1);
    let ready = std::sync::Arc::new(std::sync::Barrier::new(threads.max(1) + 1));
    let handles = (0..threads.max(1))
        .map(|t| {
            let ready = ready.clone();
            std::thread::spawn(move || {
                let mut memory = vec![0u8; share];
                for (i, page) in memory.chunks_mut(4096).enumerate() {
                    page.fill((i + t) as u8 | 1);
                }
                ready.wait();
                loop {
                    std::thread::park();
                    std::hint::black_box(&memory);
                }
            })
        })
        .collect();
    ready.wait();
    handles
}
