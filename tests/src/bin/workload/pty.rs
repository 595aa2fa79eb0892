//! `pty` / `pty-check`: a pseudo-terminal pair of its own, its slave side
//! raw (as a full-screen program sets its terminal), and the check that it
//! still is after a resume.

/// A pseudo-terminal pair, its slave side in raw mode (as a full-screen
/// program sets its terminal): `(master, slave)`.
pub fn open_raw_pty() -> Option<(i32, i32)> {
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
pub fn check_raw_pty(master: i32, slave: i32) -> String {
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
