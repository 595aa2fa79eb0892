//! Descriptors the commands open and keep, each a kind an image may or may
//! not hold: `socket`, `serve`, `flock`, `locks`, `async`, `reopen-pipe`,
//! `uffd`, and `flood` (connections held to the agent's client socket).
//! Each function returns the command's answer line.

use std::{
    io::{BufRead as _, Write as _},
    os::{fd::IntoRawFd as _, unix::fs::OpenOptionsExt as _},
};

/// `socket`: a socket pair an image cannot hold, kept open.
pub fn socket() -> String {
    let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    format!("socket fds={},{}", a.into_raw_fd(), b.into_raw_fd())
}

/// `serve`: a TCP echo server on loopback: every line a client sends comes
/// back as `echo LINE`, each client on its own thread.
pub fn serve() -> String {
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
    format!("serving port={port}")
}

/// `flock`: an exclusive flock on a file of its own, kept open.
pub fn flock() -> String {
    let path = std::env::temp_dir().join(format!("workload-flock-{}", std::process::id()));
    let f = std::fs::File::create(&path).expect("lock file");
    let fd = f.into_raw_fd();
    // SAFETY: flock on the fd just opened.
    let rc = unsafe { libc::flock(fd, libc::LOCK_EX) };
    format!("flock fd={fd} rc={rc}")
}

/// `async`: a pipe whose read end sends SIGIO (O_ASYNC) to another
/// process: init (which ignores it; the test process would not).
pub fn async_pipe() -> String {
    let mut fds = [0; 2];
    // SAFETY: pipe2/fcntl on fds we own.
    let rc = unsafe {
        libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC);
        libc::fcntl(fds[0], libc::F_SETOWN, 1);
        libc::fcntl(fds[0], libc::F_SETFL, libc::O_ASYNC)
    };
    format!("async fds={},{} rc={rc}", fds[0], fds[1])
}

/// `reopen-pipe`: a pipe's read end opened a second time through /proc,
/// with its own O_NONBLOCK: two open files, not a dup.
pub fn reopen_pipe() -> String {
    let mut fds = [0; 2];
    // SAFETY: pipe2 into our array.
    unsafe { libc::pipe2(fds.as_mut_ptr(), 0) };
    let again = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/self/fd/{}", fds[0]))
        .expect("reopen");
    format!(
        "reopen-pipe fds={},{},{}",
        fds[0],
        fds[1],
        again.into_raw_fd()
    )
}

/// `locks`: each kind of lock on a file of its own: flock (fd a), a POSIX
/// record lock on bytes 0..10 (fd b), an OFD lock on bytes 10..20 (fd c).
pub fn locks() -> String {
    let path = std::env::temp_dir().join(format!("workload-locks-{}", std::process::id()));
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .expect("lock file")
    };
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
    format!("locks path={} rc={rc:?}", path.display())
}

/// `uffd`: a userfaultfd of its own, kept open.
pub fn uffd() -> String {
    // SAFETY: userfaultfd takes flags only.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
    format!("uffd fd={fd}")
}

/// `flood N`: up to `n` connections to the agent's client socket, held
/// and saying nothing (the limit on open files raised first).
pub fn flood(n: usize) -> String {
    raise_fd_limit();
    let mut held = 0;
    for _ in 0..n {
        match std::os::unix::net::UnixStream::connect(suspend_common::paths::CLIENT_SOCKET) {
            Ok(stream) => {
                std::mem::forget(stream);
                held += 1;
            }
            Err(_) => break,
        }
    }
    format!("flood held={held}")
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
