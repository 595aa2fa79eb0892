//! Image records for the tests of the kinds of state and of the restore's
//! planners, each holding nothing but what the test sets afterwards: the one place that names every field of a
//! record (add a field here when the image format grows one).

use crate::image::format::{
    Creds, File, FileId, FileKind, Mapping, MappingKind, MmFields, PageRun, Process, Regs, Thread,
};

/// A regular file at `fd`, opened read-write.
pub fn file(fd: i32) -> File {
    File {
        flags: libc::O_RDWR as u32,
        ..File::bare(fd, FileKind::Regular, &format!("/tmp/f{fd}"))
    }
}

/// A thread with nothing saved but its tid.
pub fn thread(tid: u32) -> Thread {
    Thread {
        tid,
        regs: Regs::default(),
        xstate: String::new(),
        sigmask: 0,
        pending: Vec::new(),
        rseq: None,
        robust_list: (0, 24),
        stopped_with: None,
        sigaltstack: None,
        tid_address: None,
        confinement: None,
        seccomp: Vec::new(),
        sched: None,
        timer_slack_ns: None,
        tsc: None,
        speculation: Vec::new(),
        ioprio: None,
        comm: None,
    }
}

/// A mapping of `[start, end)` with `perms`, nothing saved.
pub fn mapping(start: u64, end: u64, perms: &str, kind: MappingKind) -> Mapping {
    Mapping {
        start,
        end,
        perms: perms.into(),
        offset: 0,
        path: String::new(),
        kind,
        file: None,
        pages: Vec::new(),
        advice: Vec::new(),
        sealed: false,
    }
}

/// The identity of a file once at `path`: inode `ino` of device 8,
/// `size` bytes.
pub fn file_id(path: &str, ino: u64, size: u64) -> FileId {
    FileId {
        path: path.into(),
        dev: 8,
        ino,
        size,
        mtime_ns: 0,
        identity: None,
    }
}

/// Three shared anonymous mappings: two of one memfd of 0x1000 bytes
/// (`ring`, from offsets 0 and 0x4000, reaching 0x5000), one of another
/// (`other`).
pub fn shared_objects() -> [Mapping; 3] {
    let mut a = mapping(0x10000, 0x12000, "rw-s", MappingKind::SharedAnonymous);
    a.path = "/memfd:ring (deleted)".into();
    a.file = Some(file_id("/memfd:ring (deleted)", 77, 0x1000));
    let mut b = a.clone();
    (b.start, b.end, b.offset) = (0x30000, 0x31000, 0x4000);
    let mut other = a.clone();
    other.file = Some(file_id("/memfd:other (deleted)", 78, 0x1000));
    (other.start, other.end) = (0x50000, 0x51000);
    [a, b, other]
}

/// A run of `pages` pages from the mapping's page `first_page`, at `at` in
/// `pages.img`.
pub fn run(first_page: u64, pages: u64, at: u64) -> PageRun {
    PageRun {
        first_page,
        pages,
        at,
        blake3: "0".repeat(64),
        stored: None,
    }
}

/// A process `pid` with nothing saved.
pub fn process(pid: u32) -> Process {
    Process {
        pid,
        ppid: 1,
        comm: "w".into(),
        exe: None,
        cwd: "/".into(),
        cwd_id: None,
        root: "/".into(),
        umask: 0o22,
        creds: Creds::default(),
        rlimits: Vec::new(),
        personality: 0,
        auxv: Vec::new(),
        mm: MmFields::default(),
        shared_pending: Vec::new(),
        threads: 1,
        sigactions: Vec::new(),
        brk: None,
        itimers: Vec::new(),
        attributes: None,
        held_only: Vec::new(),
        session: None,
        posix_timers: Vec::new(),
        cgroups: Vec::new(),
        vdso: None,
    }
}
