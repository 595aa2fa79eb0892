//! Terminal devices above stdio: a pseudo-terminal's master (`/dev/ptmx`
//! opened again makes a new pair) or slave, or `/dev/tty` (whatever
//! terminal the resumed process has), told apart by device number.
//!
//! Not saved: a resume cannot give one back, so each is refused by name
//! before the freeze ([`refusal`]); a held process keeps it. There is no
//! restore half.

use std::fs;

use crate::{
    image::format::{File, FileKind},
    sys::dev,
};

/// What terminal fd `fd` of `pid` is, if it is one a resume cannot give
/// back: a pseudo-terminal's master or slave, or `/dev/tty`.
fn terminal(pid: u32, fd: i32) -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt as _;
    let rdev = fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?.rdev();
    match (dev::major(rdev), dev::minor(rdev)) {
        (5, 2) => Some("a pseudo-terminal's master"),
        (5, 0) => Some("its controlling terminal (/dev/tty)"),
        (136..=143, _) => Some("a pseudo-terminal's slave"),
        _ => None,
    }
}

/// Why `f` cannot come back, if it is a terminal device other than stdio.
pub fn refusal(pid: u32, f: &File) -> Option<String> {
    // A terminal device other than stdio: a pseudo-terminal's master
    // (/dev/ptmx) opened again is a new pair, its slave is gone with
    // the master, /dev/tty is whatever terminal the resumed process has.
    if f.fd > 2
        && f.kind == FileKind::CharDevice
        && let Some(what) = terminal(pid, f.fd)
    {
        return Some(format!(
            "fd {} ({}, {what}: a resume cannot give it back)",
            f.fd, f.path
        ));
    }
    None
}
