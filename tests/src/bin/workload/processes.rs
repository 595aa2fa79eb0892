//! Other processes and threads: children it forks (`fork`, `fork-for`),
//! `exec`, what it may do to another process (`poke`), and `--spawner`'s
//! threads. Each command's function returns its answer line.

use std::io::Write as _;

/// `fork`: a child that only sleeps (`child pid=N …`).
pub fn fork_sleeper() -> String {
    // SAFETY: the child only sleeps and exits.
    match unsafe { libc::fork() } {
        0 => loop {
            // SAFETY: pause is async-signal-safe.
            unsafe { libc::pause() };
        },
        -1 => "fork failed".to_owned(),
        child => format!(
            "child pid={child} registered_in_parent={}",
            suspend_client::is_registered()
        ),
    }
}

/// `exec PROGRAM ARGS…`: replaces this process; returns only if it could
/// not.
pub fn exec(program: &str, args: &[&str]) -> String {
    let _ = std::io::stdout().flush();
    let err =
        std::os::unix::process::CommandExt::exec(std::process::Command::new(program).args(args));
    format!("exec failed: {err}")
}

/// `fork-for MS`: the main thread forks for `ms` ms without pause, each
/// child exiting at once and reaped.
pub fn fork_for(ms: u64) -> String {
    let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
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
        None => format!("fork-for ok n={n}"),
        Some(e) => format!("fork-for FAIL after {n}: {e}"),
    }
}

/// `poke PID`: what another process (of our user) may do to `target`:
/// signal 0, and read its memory at a page that is surely unmapped
/// (EFAULT when allowed; EPERM/EACCES when not). Each errno, 0 if none.
pub fn poke(target: i32) -> String {
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
    format!("poke kill={kill} read={read}")
}

/// `--spawner`: keeps creating threads that create a thread and end, for
/// the freeze to catch them all.
pub fn spawn_forever() {
    loop {
        let t = std::thread::spawn(|| {
            let _ = std::thread::spawn(|| std::hint::black_box(1 + 1)).join();
        });
        let _ = t.join();
    }
}
