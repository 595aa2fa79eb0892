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
//! | `replace-handler` | put a handler of its own (in this binary) on the suspend signal |
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
//! `--layout` (memory of a known shape, see `layout::set_up`), `--fill SIZE
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
//!
//! This file holds the wiring: the options, the setup in its order, and the
//! command loop. Each kind of state is a module of its own, which sets it
//! up and verifies it.

mod attributes;
mod callbacks;
mod confinement;
mod fds;
mod layout;
mod memory;
mod processes;
mod pty;
mod region;
mod sched;
mod seccomp;
mod shared;
mod signals;
mod timer;

use std::{
    io::{BufRead as _, Write as _},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use suspend_client::Context;

use crate::{memory::pattern, region::Region, shared::Shared};

/// How often the worker thread has counted: `check` sees it move.
static WORKER_TICKS: AtomicU64 = AtomicU64::new(0);

/// The command line (see the crate doc).
struct Args {
    context: Context,
    register: bool,
    own_handler: bool,
    signals: Option<(i32, i32)>,
    block: bool,
    layout: bool,
    fill: Option<usize>,
    fill_threads: usize,
    spawner: bool,
    uid: Option<u32>,
    confine: bool,
    seccomp: bool,
    seccomp_deny_pause: bool,
    seccomp_no_nnp: bool,
    sched: bool,
    attributes: bool,
    pdeathsig: bool,
}

impl Args {
    /// This process's arguments; an unknown option exits 2.
    fn parse() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut parsed = Self {
            context: Context::Thread,
            register: true,
            own_handler: false,
            signals: None,
            block: false,
            layout: false,
            fill: None,
            fill_threads: 1,
            spawner: false,
            uid: None,
            confine: false,
            seccomp: false,
            seccomp_deny_pause: false,
            seccomp_no_nnp: false,
            sched: false,
            attributes: false,
            pdeathsig: false,
        };
        let mut i = 0;
        while i < args.len() {
            match args[i].as_str() {
                "--context" => {
                    i += 1;
                    parsed.context = if args.get(i).map(String::as_str) == Some("signal") {
                        Context::Signal
                    } else {
                        Context::Thread
                    };
                }
                "--signals" => {
                    i += 1;
                    let pair = args.get(i).and_then(|a| a.split_once(','));
                    parsed.signals =
                        pair.and_then(|(s, r)| Some((s.parse().ok()?, r.parse().ok()?)));
                }
                "--no-register" => parsed.register = false,
                "--layout" => parsed.layout = true,
                "--spawner" => parsed.spawner = true,
                "--fill" => {
                    i += 1;
                    parsed.fill = args.get(i).and_then(|s| memory::parse_size(s));
                }
                "--threads" => {
                    i += 1;
                    parsed.fill_threads = args.get(i).and_then(|s| s.parse().ok()).unwrap_or(1);
                }
                "--block-suspend-signal" => parsed.block = true,
                "--own-handler" => parsed.own_handler = true,
                "--confine" => parsed.confine = true,
                "--seccomp" => parsed.seccomp = true,
                "--seccomp-deny-pause" => {
                    parsed.seccomp = true;
                    parsed.seccomp_deny_pause = true;
                }
                "--seccomp-no-nnp" => parsed.seccomp_no_nnp = true,
                "--sched" => parsed.sched = true,
                "--attributes" => parsed.attributes = true,
                "--pdeathsig" => parsed.pdeathsig = true,
                "--uid" => {
                    i += 1;
                    parsed.uid = args.get(i).and_then(|s| s.parse().ok());
                }
                other => {
                    eprintln!("workload: unknown option {other}");
                    std::process::exit(2);
                }
            }
            i += 1;
        }
        parsed
    }
}

fn main() {
    let args = Args::parse();

    if let Some(uid) = args.uid {
        confinement::become_user(uid);
    }
    if args.confine {
        confinement::confine();
    }
    if args.sched {
        sched::set();
    }
    if args.attributes {
        attributes::set();
    }
    if args.pdeathsig {
        attributes::set_pdeathsig();
    }
    if args.seccomp || args.seccomp_no_nnp {
        seccomp::install(!args.seccomp_no_nnp, args.seccomp_deny_pause);
    }
    if args.block {
        // Before any thread starts, so every thread inherits the mask.
        signals::block_suspend_signal();
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

    if args.own_handler {
        signals::install_own_handler();
    }
    if args.register {
        callbacks::register(args.context, args.signals);
    }
    if args.layout {
        println!("{}", layout::set_up());
    }
    if args.spawner {
        std::thread::spawn(processes::spawn_forever);
    }
    let _filled = args
        .fill
        .map(|bytes| memory::fill_memory(bytes, args.fill_threads));
    println!("ready pid={}", std::process::id());
    let _ = std::io::stdout().flush();

    let mut sections = Vec::new();
    let mut region: Option<Region> = None;
    let mut pty: Option<(i32, i32)> = None;
    let mut shared: Option<Shared> = None;
    let mut advised = memory::Advised::default();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["decide", d] => {
                callbacks::decide(d);
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
                println!("{}", callbacks::state_line(&verdict));
            }
            ["reset-handler"] => {
                signals::reset_handler();
                println!("ok");
            }
            ["replace-handler"] => {
                signals::install_own_handler();
                println!("ok");
            }
            ["fork"] => println!("{}", processes::fork_sleeper()),
            ["exec", program, rest @ ..] => println!("{}", processes::exec(program, rest)),
            ["socket"] => println!("{}", fds::socket()),
            ["serve"] => println!("{}", fds::serve()),
            ["timer"] => println!("{}", timer::create()),
            ["session-keyring"] => println!("{}", attributes::session_keyring()),
            ["flock"] => println!("{}", fds::flock()),
            ["async"] => println!("{}", fds::async_pipe()),
            ["mlock"] => println!("{}", memory::mlock()),
            ["reopen-pipe"] => println!("{}", fds::reopen_pipe()),
            ["region", size] => {
                region = memory::parse_size(size).map(Region::new);
                println!("region {}", if region.is_some() { "ok" } else { "FAIL" });
            }
            ["region-read"] => {
                let r = region.as_mut().expect("region");
                println!("region-read {}", r.read_into());
            }
            ["fork-for", ms] => println!("{}", processes::fork_for(ms.parse().unwrap_or(0))),
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
                pty = pty::open_raw_pty();
                println!("pty {}", if pty.is_some() { "ok" } else { "FAIL" });
            }
            ["pty-check"] => {
                let (master, slave) = pty.expect("pty");
                println!("pty-check {}", pty::check_raw_pty(master, slave));
            }
            ["shared"] => {
                shared = Shared::new();
                println!("shared {}", if shared.is_some() { "ok" } else { "FAIL" });
            }
            ["shared-check"] => {
                let s = shared.as_ref().expect("shared");
                println!("shared-check {}", s.check());
            }
            ["locks"] => println!("{}", fds::locks()),
            ["timer-check", id] => println!("timer-check {}", timer::check(id)),
            ["advise"] => println!("advise {}", advised.advise()),
            ["advise-check"] => println!("advise-check {}", advised.check()),
            ["poke", target] => println!("{}", processes::poke(target.parse().unwrap_or(0))),
            ["uffd"] => println!("{}", fds::uffd()),
            ["flood", n] => println!("{}", fds::flood(n.parse().unwrap_or(0))),
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

/// What `check` verifies: the memory pattern, the worker still counting,
/// and each kind of state the options set up.
fn verify(memory: &[u64]) -> Result<(), String> {
    if memory != pattern(memory.len()).as_slice() {
        return Err("memory pattern changed".into());
    }
    // It ticks every few milliseconds; on a loaded machine it may wait a
    // while for a CPU, so it has two seconds to tick once.
    let before = WORKER_TICKS.load(Ordering::Relaxed);
    let ticked = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        WORKER_TICKS.load(Ordering::Relaxed) != before
    });
    if !ticked {
        return Err("worker thread stopped".into());
    }
    layout::verify_file()?;
    confinement::verify()?;
    seccomp::verify()?;
    sched::verify()?;
    attributes::verify()
}

/// What `exit` verifies: the memory pattern, and the callbacks' counts.
fn verify_final(memory: &[u64]) -> Result<(), String> {
    if memory != pattern(memory.len()).as_slice() {
        return Err("memory pattern changed".into());
    }
    callbacks::verify_counts()
}
