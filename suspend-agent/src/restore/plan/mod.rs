//! Where everything goes, decided (and opened, and mapped) before the
//! process is created: the restore child then only makes the system calls
//! written down here, and allocates nothing.
//!
//! The zone: one range of addresses free both in this process (which the
//! child starts as a copy of) and in the image. It holds, in order, the
//! restorer stub, its argument block, a stub stack per thread, a temporary
//! place for each of the kernel's mappings, and the prepared contents of
//! every mapping, each followed by an unmapped page.

use std::{
    ffi::CString,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use suspend_common::restore::{
    Creds, ITimer, MOVE_FRESH, MOVE_GROWSDOWN, MOVE_REMAP, MmMap, Move, RESTORE_ABI,
    RESTORE_CHILD_SUBREAPER, RESTORE_MAGIC, RESTORE_SKIP_VDSO, RESTORE_THP_DISABLE, Range,
    RestoreArgs, STUB_STACK, SigAction, SigInfo, THREAD_HAS_ALTSTACK, THREAD_HAS_CAPS,
    THREAD_HAS_RSEQ, THREAD_HAS_SCHED, THREAD_HAS_TID_ADDRESS, THREAD_HAS_TIMER_SLACK,
    THREAD_NO_NEW_PRIVS, ThreadArgs,
};

use super::{Options, RESTORER, RestoreError, load::Run, open::Opened};
use crate::{
    image::{
        Image,
        format::{Mapping, MappingKind, PAGE_SIZE, PAGES_FILE},
        sign,
    },
    procfs::vmas,
};

/// Where the search for a free zone starts: far above where the kernel puts
/// programs, libraries and stacks by default.
const ZONE_SEARCH_FROM: u64 = 0x1000_0000_0000;
/// Highest user address plus one (47-bit address space).
const TASK_TOP: u64 = 0x7fff_ffff_f000;
const GIB: u64 = 1 << 30;

/// Contents prepared for one mapping before the stub runs.
#[derive(Debug)]
pub struct Premap {
    pub at: u64,
    pub len: u64,
    /// Where the stub moves it.
    pub target: u64,
    pub source: Source,
    /// The saved pages to read in.
    pub runs: Vec<Run>,
}

#[derive(Debug)]
pub enum Source {
    Anonymous {
        grows_down: bool,
    },
    /// A file (or memfd) mapping of helper fd `fd`.
    File {
        fd: RawFd,
        offset: u64,
        shared: bool,
        prot: i32,
    },
}

/// A file the process had open, to open again at its number.
#[derive(Debug)]
pub struct Open {
    pub fd: RawFd,
    pub what: OpenKind,
}

/// In the order they are made: an epoll instance watches the others.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpenKind {
    /// A file opened (as the process) and checked beforehand: helper fd
    /// `from`, put at its number and position.
    File {
        from: RawFd,
        flags: i32,
        pos: u64,
    },
    EventFd {
        count: u64,
        flags: i32,
    },
    /// `signalfd4(-1, mask, flags)`.
    SignalFd {
        mask: u64,
        flags: i32,
    },
    /// `timerfd_create(clock, flags)`, then `timerfd_settime(settime,
    /// spec)` if `spec` arms it (interval s, ns, value s, ns) and
    /// `TFD_IOC_SET_TICKS` if `ticks`.
    TimerFd {
        clock: i32,
        flags: i32,
        settime: i32,
        spec: [i64; 4],
        ticks: u64,
    },
    /// `inotify_init1(flags)`, then each watch `(wd, mask, path)` added
    /// under its number, in order (`path`: `/proc/self/fd/N` of a helper
    /// the process's user opened; lower numbers are reached by adding and
    /// removing it).
    Inotify {
        flags: i32,
        watches: Vec<(i32, u32, CString)>,
    },
    /// A pipe: its read end at this fd, its write end at `write_fd`, with
    /// `data` in it.
    Pipe {
        read_flags: i32,
        write_fd: RawFd,
        write_flags: i32,
        size: u32,
        data: Vec<u8>,
    },
    /// Another fd of the same open file as `from` (made before it).
    Dup {
        from: RawFd,
        flags: i32,
    },
    /// `(fd, events, data)` it watches.
    Epoll {
        flags: i32,
        targets: Vec<(RawFd, u32, u64)>,
    },
}

/// What stdin/stdout/stderr become.
#[derive(Debug)]
pub enum StdioPlan {
    /// The resume command's own (inherited).
    Inherit,
    /// A given file (helper fd).
    From(RawFd),
    /// The process had it closed.
    Close,
}

/// What the restored process leads (see [`crate::image::format::Session`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionPlan {
    /// Its own session (`setsid`), and so its process group.
    Lead,
    /// Its own process group (`setpgid(0, 0)`) in the resume command's
    /// session.
    LeadGroup,
    /// The resume command's session and group (`--new-session` said so).
    Join,
}

#[derive(Debug)]
pub struct Plan {
    /// Descriptors the child uses and closes; all above the image's own.
    pub helpers: Vec<OwnedFd>,
    /// The executable, for `PR_SET_MM_MAP` (the stub closes it).
    pub exe_fd: Option<RawFd>,
    pub report_read: OwnedFd,
    pub report_write: RawFd,
    pub zone: (u64, u64),
    pub entry: u64,
    pub args_addr: u64,
    pub stack_top: u64,
    pub opens: Vec<Open>,
    /// Free numbers from here up while files are opened: above every fd of
    /// the image and every helper.
    pub scratch_fd: RawFd,
    pub stdio: [StdioPlan; 3],
    /// The working directory (helper fd, opened as the process).
    pub cwd: RawFd,
    pub umask: u32,
    pub rlimits: Vec<(u32, u64, u64)>,
    pub personality: u32,
    pub comm: CString,
    /// Whether the process leads its session, or only its process group,
    /// again.
    pub session: SessionPlan,
    /// `/proc/self/loginuid`'s new text, where it differs from the agent's.
    pub loginuid: Option<Vec<u8>>,
    pub tids: Vec<u32>,
    /// Per thread, its seccomp filters oldest first: (flags, address of
    /// the `struct sock_fprog` in the argument block). The agent installs
    /// them inside the thread before it lets it go (`finish`).
    pub seccomp: Vec<(u32, Vec<(u64, u64)>)>,
}

fn prepare_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RestoreError {
    let what = what.into();
    move |source| RestoreError::Prepare { what, source }
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

fn prot(perms: &str) -> i32 {
    let b = perms.as_bytes();
    let mut p = 0;
    if b.first() == Some(&b'r') {
        p |= libc::PROT_READ;
    }
    if b.get(1) == Some(&b'w') {
        p |= libc::PROT_WRITE;
    }
    if b.get(2) == Some(&b'x') {
        p |= libc::PROT_EXEC;
    }
    p
}

/// Moves `fd` to the lowest free number at or above `min`.
fn lift(fd: OwnedFd, min: RawFd) -> Result<OwnedFd, RestoreError> {
    // SAFETY: F_DUPFD on a descriptor we own; the new one is ours too.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if new < 0 {
        return Err(prepare_err("moving a descriptor")(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `new` was just returned by F_DUPFD and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Builds the argument block in memory, handing out the final address of
/// each piece.
struct Block {
    base: u64,
    bytes: Vec<u8>,
}

impl Block {
    fn push<T: Copy>(&mut self, items: &[T]) -> u64 {
        while !self.bytes.len().is_multiple_of(16) {
            self.bytes.push(0);
        }
        let at = self.base + self.bytes.len() as u64;
        // SAFETY: `T` is one of the `repr(C)` plain-data types of
        // `suspend_common::restore`, `sys::sched::SchedAttr` or an integer:
        // viewing them as bytes is sound; they have no implicit padding
        // (their sizes are asserted).
        let raw = unsafe {
            std::slice::from_raw_parts(items.as_ptr().cast::<u8>(), std::mem::size_of_val(items))
        };
        self.bytes.extend_from_slice(raw);
        at
    }
}

fn siginfo(b64: &str) -> Option<SigInfo> {
    let raw = B64.decode(b64).ok()?;
    let mut info = SigInfo { bytes: [0; 128] };
    let n = raw.len().min(128);
    info.bytes[..n].copy_from_slice(&raw[..n]);
    Some(info)
}

impl Plan {
    pub fn new(image: &Image, options: &Options, mut opened: Opened) -> Result<Self, RestoreError> {
        let pid = image.process.pid;
        let helper_min = image
            .files
            .iter()
            .map(|f| f.fd + 1)
            .max()
            .unwrap_or(3)
            .max(3);
        let mut helpers: Vec<OwnedFd> = Vec::new();
        let helper = |fd: OwnedFd, helpers: &mut Vec<OwnedFd>| -> Result<RawFd, RestoreError> {
            let fd = lift(fd, helper_min)?;
            let raw = fd.as_raw_fd();
            helpers.push(fd);
            Ok(raw)
        };

        let pages_path = image.dir.join(PAGES_FILE);
        let pages = sign::open_regular(&pages_path)
            .map_err(prepare_err(pages_path.display().to_string()))?;
        let (report_read, report_write) =
            nix::unistd::pipe().map_err(|e| prepare_err("pipe")(e.into()))?;
        let report_read = lift(report_read, helper_min)?;
        let report_write = helper(report_write, &mut helpers)?;

        let exe_fd = match opened.exe.take() {
            Some(exe) => helper(exe, &mut helpers)? as u32,
            None => u32::MAX,
        };
        let cwd = match opened.cwd.take() {
            Some(cwd) => helper(cwd, &mut helpers)?,
            None => {
                return Err(prepare_err(image.process.cwd.clone())(
                    std::io::Error::other("the working directory was not opened"),
                ));
            }
        };

        // stdio
        let mut stdio = [StdioPlan::Close, StdioPlan::Close, StdioPlan::Close];
        for (i, slot) in stdio.iter_mut().enumerate() {
            if !image.files.iter().any(|f| f.fd == i as i32) {
                continue;
            }
            *slot = match opened.stdio[i].take() {
                None => StdioPlan::Inherit,
                Some(f) => StdioPlan::From(helper(f, &mut helpers)?),
            };
        }

        let mut opens = Vec::new();
        // Every fd in the image is made again (what could not be was
        // refused, or left out on request).
        let reopened = |fd: i32| fd <= 2 || image.files.iter().any(|f| f.fd == fd);
        // Each pipe is made at its lowest read end, with its lowest write
        // end; its other fds are copies of those.
        let first_end = |id: u64, write: bool| {
            image
                .files
                .iter()
                .filter(|g| {
                    g.pipe
                        .as_ref()
                        .is_some_and(|p| p.id == id && p.write == write)
                })
                .map(|g| g.fd)
                .min()
        };
        for f in image.files.iter().filter(|f| f.fd > 2) {
            let flags = f.flags as i32;
            let what = if let Some(from) = f.dup_of {
                OpenKind::Dup { from, flags }
            } else if let Some(p) = &f.pipe {
                let (Some(read_fd), Some(write_fd)) =
                    (first_end(p.id, false), first_end(p.id, true))
                else {
                    return Err(prepare_err(format!("fd {} ({})", f.fd, f.path))(
                        std::io::Error::other("the image holds only one end of this pipe"),
                    ));
                };
                let first = if p.write { write_fd } else { read_fd };
                if f.fd != first {
                    OpenKind::Dup { from: first, flags }
                } else if p.write {
                    continue; // made with its read end
                } else {
                    let write_flags = image
                        .files
                        .iter()
                        .find(|g| g.fd == write_fd)
                        .map_or(0, |g| g.flags as i32);
                    OpenKind::Pipe {
                        read_flags: flags,
                        write_fd,
                        write_flags,
                        size: p.size,
                        data: B64.decode(&p.data).map_err(|e| {
                            prepare_err(format!("fd {} ({})", f.fd, f.path))(std::io::Error::other(
                                e,
                            ))
                        })?,
                    }
                }
            } else if let Some(mask) = f.signalfd {
                OpenKind::SignalFd {
                    mask,
                    flags: flags & (libc::O_NONBLOCK | libc::O_CLOEXEC),
                }
            } else if let Some(t) = &f.timerfd {
                // An expired timer waiting for a read to re-arm it by its
                // interval shows no time left: armed one interval on.
                let value = match (t.deadline_ns, t.value_ns, t.interval_ns) {
                    (Some(deadline), _, _) => deadline,
                    (None, 0, interval) => interval,
                    (None, value, _) => value,
                };
                let split = |ns: u64| [(ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64];
                let (interval, value) = (split(t.interval_ns), split(value));
                OpenKind::TimerFd {
                    clock: t.clockid,
                    flags: flags & (libc::O_NONBLOCK | libc::O_CLOEXEC),
                    settime: if t.deadline_ns.is_some() {
                        t.settime_flags
                    } else {
                        0
                    },
                    spec: [interval[0], interval[1], value[0], value[1]],
                    ticks: t.ticks,
                }
            } else if let Some(watches) = &f.inotify {
                let mut made = Vec::new();
                for w in watches {
                    let Some(file) = opened.watched.remove(&(f.fd, w.wd)) else {
                        return Err(prepare_err(format!("fd {} ({})", f.fd, f.path))(
                            std::io::Error::other(format!(
                                "watch {} is on no file the image names",
                                w.wd
                            )),
                        ));
                    };
                    let from = helper(file, &mut helpers)?;
                    let path =
                        CString::new(format!("/proc/self/fd/{from}")).expect("no NUL in a number");
                    made.push((w.wd, w.mask, path));
                }
                OpenKind::Inotify {
                    flags: flags & (libc::O_NONBLOCK | libc::O_CLOEXEC),
                    watches: made,
                }
            } else if let Some(e) = &f.eventfd {
                OpenKind::EventFd {
                    count: e.count,
                    flags: (flags & (libc::O_NONBLOCK | libc::O_CLOEXEC))
                        | if e.semaphore { libc::EFD_SEMAPHORE } else { 0 },
                }
            } else if let Some(targets) = &f.epoll {
                let mut kept = Vec::new();
                for t in targets {
                    if reopened(t.fd) {
                        kept.push((t.fd, t.events, t.data));
                    } else {
                        log::warn!(
                            "epoll fd {} watched fd {}, which is not restored; it no longer does",
                            f.fd,
                            t.fd
                        );
                    }
                }
                OpenKind::Epoll {
                    flags: flags & libc::O_CLOEXEC,
                    targets: kept,
                }
            } else if let Some(file) = opened.files.remove(&f.fd) {
                OpenKind::File {
                    from: helper(file, &mut helpers)?,
                    flags,
                    pos: f.pos,
                }
            } else {
                log::warn!("fd {} ({}) cannot be reopened; left closed", f.fd, f.path);
                continue;
            };
            opens.push(Open { fd: f.fd, what });
        }
        // Files first, then eventfds, pipes, then the epolls that watch
        // them; each copy (`dup`) right after the kind it copies (the
        // copy of an epoll after the epolls).
        // (What each epoll watches is added once every fd exists.)
        let rank = |what: &OpenKind| match what {
            OpenKind::File { .. } => 0,
            OpenKind::EventFd { .. }
            | OpenKind::SignalFd { .. }
            | OpenKind::TimerFd { .. }
            | OpenKind::Inotify { .. } => 2,
            OpenKind::Pipe { .. } => 4,
            OpenKind::Epoll { .. } => 6,
            OpenKind::Dup { .. } => 4, // a pipe end's (see below)
        };
        let ranks: std::collections::HashMap<RawFd, u32> =
            opens.iter().map(|o| (o.fd, rank(&o.what))).collect();
        opens.sort_by_key(|o| match o.what {
            OpenKind::Dup { from, .. } => ranks.get(&from).copied().unwrap_or(4) + 1,
            ref what => rank(what),
        });

        // Mapping sources: each file once as a helper.
        let mut mapped: Vec<((String, bool), RawFd)> = Vec::new();
        // One memfd per shared anonymous object (by its device and inode).
        let mut objects: Vec<((u64, u64), RawFd)> = Vec::new();
        let mut sources = Vec::new();
        for m in &image.mappings {
            let source = match m.kind {
                MappingKind::Kernel => None,
                MappingKind::Anonymous if m.pages.is_empty() => None,
                MappingKind::Anonymous => Some(Source::Anonymous {
                    grows_down: m.path == "[stack]",
                }),
                MappingKind::PrivateFile | MappingKind::SharedFile => {
                    let shared = m.kind == MappingKind::SharedFile;
                    let write = shared && prot(&m.perms) & libc::PROT_WRITE != 0;
                    let path = m.file.as_ref().map_or(m.path.clone(), |id| id.path.clone());
                    let key = (path, write);
                    let fd = match mapped.iter().find(|(k, _)| *k == key) {
                        Some((_, fd)) => *fd,
                        None => {
                            let file = opened.mapped.remove(&key).ok_or_else(|| {
                                prepare_err(key.0.clone())(std::io::Error::other(
                                    "the mapped file was not opened",
                                ))
                            })?;
                            let fd = helper(file, &mut helpers)?;
                            mapped.push((key, fd));
                            fd
                        }
                    };
                    Some(Source::File {
                        fd,
                        offset: m.offset,
                        shared,
                        prot: if shared {
                            prot(&m.perms)
                        } else {
                            libc::PROT_READ | libc::PROT_WRITE
                        },
                    })
                }
                MappingKind::SharedAnonymous => {
                    let key = m.file.as_ref().map(|id| (id.dev, id.ino));
                    let fd = match objects.iter().find(|(k, _)| Some(*k) == key) {
                        Some((_, fd)) => *fd,
                        None => {
                            let fd = helper(shared_object(m, &image.mappings)?, &mut helpers)?;
                            if let Some(key) = key {
                                objects.push((key, fd));
                            }
                            fd
                        }
                    };
                    Some(Source::File {
                        fd,
                        offset: m.offset,
                        shared: true,
                        prot: libc::PROT_READ | libc::PROT_WRITE,
                    })
                }
            };
            sources.push(source);
        }

        // Sizes, then the zone.
        let threads = main_first(image);
        let kernel_here = super::validate::kernel_layout_here();
        let blob_len = round_up(RESTORER.len() as u64);
        let args_reserve = round_up(args_estimate(image));
        let stacks_len = STUB_STACK * threads.len() as u64;
        let region_len = blob_len + args_reserve + stacks_len;
        let kernel_len: u64 = kernel_here.iter().map(|(_, s, e)| e - s).sum();
        let premap_len: u64 = image
            .mappings
            .iter()
            .zip(&sources)
            .filter(|(_, s)| s.is_some())
            .map(|(m, _)| m.end - m.start + PAGE_SIZE)
            .sum();
        let zone_len = region_len + kernel_len + premap_len;
        let zone_base = find_zone(image, zone_len)?;
        reserve(zone_base, zone_len)?;

        let region = zone_base;
        let args_addr = region + blob_len;
        let stacks = args_addr + args_reserve;
        let mut cursor = region + region_len;

        let mut kernel = Vec::new();
        let mut kernel_final = Vec::new();
        let mut keep = vec![Range {
            start: zone_base,
            end: zone_base + zone_len,
        }];
        for (name, start, end) in &kernel_here {
            let target = image
                .mappings
                .iter()
                .find(|m| &m.path == name)
                .map(|m| m.start)
                .unwrap_or(*start);
            kernel.push(Move {
                from: *start,
                to: cursor,
                len: end - start,
                ..Move::default()
            });
            kernel_final.push(target);
            keep.push(Range {
                start: *start,
                end: *end,
            });
            cursor += end - start;
        }
        keep.sort_by_key(|r| r.start);

        let mut moves = Vec::new();
        let mut premaps = Vec::new();
        for (m, source) in image.mappings.iter().zip(sources) {
            if m.kind == MappingKind::Kernel {
                continue;
            }
            let len = m.end - m.start;
            let grows_down = m.path == "[stack]";
            // Fresh (nothing saved: zeros) or moved from where it was
            // prepared.
            let (from, kind) = match source {
                None => (0, MOVE_FRESH),
                Some(source) => {
                    let at = cursor;
                    cursor += len + PAGE_SIZE;
                    let runs = m
                        .pages
                        .iter()
                        .map(|r| Run {
                            to: at + r.first_page * PAGE_SIZE,
                            len: r.pages * PAGE_SIZE,
                            from: r.at,
                            blake3: r.blake3.clone(),
                            mapping: m.start,
                        })
                        .collect();
                    premaps.push(Premap {
                        at,
                        len,
                        target: m.start,
                        source,
                        runs,
                    });
                    (at, MOVE_REMAP)
                }
            };
            moves.push(Move {
                from,
                to: m.start,
                len,
                prot: prot(&m.perms) as u32,
                kind,
                flags: if grows_down { MOVE_GROWSDOWN } else { 0 },
                _pad: 0,
            });
        }

        // The argument block.
        let mut block = Block {
            base: args_addr,
            bytes: vec![0; std::mem::size_of::<RestoreArgs>()],
        };
        let p = &image.process;
        let auxv: Vec<u64> = p.auxv.iter().flat_map(|(k, v)| [*k, *v]).collect();
        let mm = MmMap {
            start_code: p.mm.start_code,
            end_code: p.mm.end_code,
            start_data: p.mm.start_data,
            end_data: p.mm.end_data,
            start_brk: p.mm.start_brk,
            brk: p.brk.unwrap_or(p.mm.start_brk),
            start_stack: p.mm.start_stack,
            arg_start: p.mm.arg_start,
            arg_end: p.mm.arg_end,
            env_start: p.mm.env_start,
            env_end: p.mm.env_end,
            auxv: block.push(&auxv),
            auxv_size: (auxv.len() * 8) as u32,
            exe_fd,
        };
        let sigactions: Vec<SigAction> = p
            .sigactions
            .iter()
            .filter(|a| a.signal != libc::SIGKILL as u32 && a.signal != libc::SIGSTOP as u32)
            .map(|a| SigAction {
                handler: a.handler,
                flags: a.flags,
                restorer: a.restorer,
                mask: a.mask,
                signal: a.signal,
                _pad: 0,
            })
            .collect();
        let shared_pending: Vec<SigInfo> =
            p.shared_pending.iter().filter_map(|s| siginfo(s)).collect();
        let itimers: Vec<ITimer> = p
            .itimers
            .iter()
            .map(|t| ITimer {
                which: t.which,
                _pad: 0,
                interval_us: t.interval_us,
                // A periodic timer caught the instant it expired reads 0
                // left; setitimer would take 0 as "disarm".
                value_us: if t.value_us == 0 {
                    t.interval_us.max(1)
                } else {
                    t.value_us
                },
            })
            .collect();
        let mut seccomp = Vec::new();
        for t in &threads {
            let mut filters = Vec::new();
            for f in &t.seccomp {
                let program = B64.decode(&f.program).map_err(|e| {
                    prepare_err(format!("thread {}: a seccomp filter", t.tid))(
                        std::io::Error::other(e),
                    )
                })?;
                let instructions: Vec<u64> = program
                    .as_chunks::<8>()
                    .0
                    .iter()
                    .map(|i| u64::from_ne_bytes(*i))
                    .collect();
                let at = block.push(&instructions);
                // `struct sock_fprog`: the count (u16, padded), the pointer.
                let fprog = block.push(&[instructions.len() as u64, at]);
                filters.push((f.flags, fprog));
            }
            if !filters.is_empty() {
                seccomp.push((t.tid, filters));
            }
        }
        let mut thread_args = Vec::new();
        for (i, t) in threads.iter().enumerate() {
            let mut pending: Vec<SigInfo> = t.pending.iter().filter_map(|s| siginfo(s)).collect();
            if let Some(signal) = t.stopped_with {
                let mut info = SigInfo { bytes: [0; 128] };
                info.bytes[..4].copy_from_slice(&signal.to_ne_bytes());
                info.bytes[16..20].copy_from_slice(&pid.to_ne_bytes());
                pending.push(info);
            }
            let mut flags = 0;
            let mut a = ThreadArgs {
                tid: t.tid,
                stack_top: stacks + STUB_STACK * (i as u64 + 1),
                robust_head: t.robust_list.0,
                robust_len: t.robust_list.1,
                pending_count: pending.len() as u32,
                pending: block.push(&pending),
                ..ThreadArgs::default()
            };
            if let Some(r) = &t.rseq {
                flags |= THREAD_HAS_RSEQ;
                a.rseq_addr = r.addr;
                a.rseq_len = r.len;
                a.rseq_signature = r.signature;
            }
            if let Some(addr) = t.tid_address {
                flags |= THREAD_HAS_TID_ADDRESS;
                a.tid_address = addr;
            }
            if let Some(s) = &t.sigaltstack {
                flags |= THREAD_HAS_ALTSTACK;
                a.altstack_sp = s.sp;
                a.altstack_size = s.size;
                a.altstack_flags = s.flags;
            }
            if let Some(slack) = t.timer_slack_ns {
                flags |= THREAD_HAS_TIMER_SLACK;
                a.timer_slack_ns = slack;
            }
            if let Some(s) = &t.sched {
                flags |= THREAD_HAS_SCHED;
                use crate::sys::sched::{FLAG_UTIL_CLAMP, SIZE_VER0, SchedAttr};
                let clamp = s.util_clamp;
                let attr = SchedAttr {
                    size: if clamp.is_some() { 56 } else { SIZE_VER0 },
                    policy: s.policy,
                    flags: s.flags | if clamp.is_some() { FLAG_UTIL_CLAMP } else { 0 },
                    nice: s.nice,
                    priority: s.priority,
                    runtime: s.runtime,
                    deadline: s.deadline,
                    period: s.period,
                    util_min: clamp.map_or(0, |c| c.0),
                    util_max: clamp.map_or(0, |c| c.1),
                };
                a.sched_attr = block.push(&[attr]);
                a.affinity = block.push(&s.affinity);
                a.affinity_len = (s.affinity.len() * 8) as u32;
            }
            if let Some(c) = &t.confinement {
                flags |= THREAD_HAS_CAPS;
                a.cap_inheritable = c.inheritable;
                a.cap_permitted = c.permitted;
                a.cap_effective = c.effective;
                a.cap_bounding = c.bounding;
                a.cap_ambient = c.ambient;
                a.securebits = c.securebits;
                if c.no_new_privs {
                    flags |= THREAD_NO_NEW_PRIVS;
                }
            }
            a.flags = flags;
            thread_args.push(a);
        }
        let c = &p.creds;
        let creds = Creds {
            uid: c.uid,
            gid: c.gid,
            groups_count: c.groups.len() as u32,
            groups: block.push(&c.groups),
            _pad: 0,
        };
        let args = RestoreArgs {
            magic: RESTORE_MAGIC,
            abi: RESTORE_ABI,
            flags: if options.skip_vdso {
                RESTORE_SKIP_VDSO
            } else {
                0
            } | p.attributes.as_ref().map_or(0, |a| {
                (if a.child_subreaper {
                    RESTORE_CHILD_SUBREAPER
                } else {
                    0
                }) | if a.thp_disable {
                    RESTORE_THP_DISABLE
                } else {
                    0
                }
            }),
            keep_count: keep.len() as u32,
            keep: block.push(&keep),
            report_fd: report_write,
            kernel_count: kernel.len() as u32,
            kernel: block.push(&kernel),
            kernel_final: block.push(&kernel_final),
            moves_count: moves.len() as u32,
            moves: block.push(&moves),
            sigactions_count: sigactions.len() as u32,
            sigactions: block.push(&sigactions),
            threads_count: thread_args.len() as u32,
            threads: block.push(&thread_args),
            shared_pending_count: shared_pending.len() as u32,
            shared_pending: block.push(&shared_pending),
            itimers_count: itimers.len() as u32,
            itimers: block.push(&itimers),
            mm,
            creds,
            ..RestoreArgs::default()
        };
        // SAFETY: `RestoreArgs` is plain `repr(C)` data; the block starts
        // with room for it.
        let head = unsafe {
            std::slice::from_raw_parts(
                (&raw const args).cast::<u8>(),
                std::mem::size_of::<RestoreArgs>(),
            )
        };
        block.bytes[..head.len()].copy_from_slice(head);
        if block.bytes.len() as u64 > args_reserve {
            return Err(prepare_err("the restorer's argument block")(
                std::io::Error::other(format!(
                    "{} bytes, {args_reserve} reserved",
                    block.bytes.len()
                )),
            ));
        }
        map_region(region, &block.bytes, blob_len, args_reserve + stacks_len)?;
        super::load::load(&premaps, &pages, &pages_path)?;

        Ok(Self {
            scratch_fd: helpers
                .iter()
                .map(|h| h.as_raw_fd() + 1)
                .max()
                .unwrap_or(helper_min)
                .max(helper_min),
            helpers,
            exe_fd: (exe_fd != u32::MAX).then_some(exe_fd as RawFd),
            report_read,
            report_write,
            zone: (zone_base, zone_len),
            entry: region,
            args_addr,
            stack_top: thread_args[0].stack_top,
            opens,
            stdio,
            cwd,
            umask: p.umask,
            rlimits: p
                .rlimits
                .iter()
                .map(|r| (r.resource, r.soft, r.hard))
                .collect(),
            personality: p.personality,
            comm: CString::new(p.comm.clone()).unwrap_or_default(),
            session: match p.session {
                Some(s) if s.sid == p.pid => SessionPlan::Lead,
                Some(s) if s.pgid == p.pid => SessionPlan::LeadGroup,
                _ => SessionPlan::Join,
            },
            loginuid: p
                .attributes
                .as_ref()
                .and_then(|a| a.loginuid)
                .filter(|&uid| {
                    crate::procfs::loginuid(std::process::id()).ok().flatten() != Some(uid)
                })
                .map(|uid| uid.to_string().into_bytes()),
            tids: threads.iter().map(|t| t.tid).collect(),
            seccomp,
        })
    }
}

/// The image's threads with the main thread (tid = pid) first.
pub fn main_first(image: &Image) -> Vec<&crate::image::format::Thread> {
    let pid = image.process.pid;
    let mut threads: Vec<_> = image.threads.iter().collect();
    threads.sort_by_key(|t| (t.tid != pid, t.tid));
    threads
}

/// An upper bound of the argument block's size.
fn args_estimate(image: &Image) -> u64 {
    let p = &image.process;
    let pending: usize = image
        .threads
        .iter()
        .map(|t| t.pending.len() + 1)
        .sum::<usize>()
        + p.shared_pending.len();
    (4096
        + image.mappings.len() * 48
        + p.sigactions.len() * 48
        + image.threads.len() * (176 + 64 + 16)
        + image
            .threads
            .iter()
            .filter_map(|t| t.sched.as_ref())
            .map(|s| s.affinity.len() * 8 + 16)
            .sum::<usize>()
        + pending * 144
        + p.auxv.len() * 16
        + p.creds.groups.len() * 4
        + image
            .threads
            .iter()
            .flat_map(|t| &t.seccomp)
            .map(|f| f.program.len() + 64)
            .sum::<usize>()
        + 64 * 16) as u64
}

/// A memfd standing in for a shared anonymous mapping's object, named as
/// the original memfd was (the client block's `suspend-client` among
/// them) or as the deleted file was, as big as the object was, and at least big enough for every
/// mapping of it in `all`.
fn shared_object(m: &Mapping, all: &[Mapping]) -> Result<OwnedFd, RestoreError> {
    // A memfd's own name; a deleted file's name (not its directory).
    let name = m
        .path
        .strip_prefix("/memfd:")
        .or_else(|| {
            m.path
                .ends_with(" (deleted)")
                .then(|| m.path.rsplit('/').next())
                .flatten()
        })
        .map(|n| n.trim_end_matches(" (deleted)"))
        .filter(|n| !n.is_empty())
        .unwrap_or("suspend-shared");
    // memfd_create takes names of up to 249 bytes.
    let name = &name[..name.floor_char_boundary(249)];
    let cname = CString::new(name).unwrap_or_else(|_| c"suspend-shared".to_owned());
    let fd =
        nix::sys::memfd::memfd_create(cname.as_c_str(), nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| prepare_err(format!("memfd_create for {}", m.path))(e.into()))?;
    let same = |o: &&Mapping| {
        o.kind == MappingKind::SharedAnonymous
            && o.file.as_ref().map(|id| (id.dev, id.ino))
                == m.file.as_ref().map(|id| (id.dev, id.ino))
    };
    let size = all
        .iter()
        .filter(|o| std::ptr::eq(*o, m) || (m.file.is_some() && same(o)))
        .map(|o| o.offset + o.end - o.start)
        .chain(m.file.as_ref().map(|id| id.size))
        .max()
        .unwrap_or(m.offset + m.end - m.start);
    nix::unistd::ftruncate(&fd, size as i64)
        .map_err(|e| prepare_err(format!("sizing the memfd for {}", m.path))(e.into()))?;
    Ok(fd)
}

/// A free range of `len` bytes in both this process and the image.
fn find_zone(image: &Image, len: u64) -> Result<u64, RestoreError> {
    let maps =
        std::fs::read_to_string("/proc/self/maps").map_err(prepare_err("/proc/self/maps"))?;
    let mut taken: Vec<(u64, u64)> = vmas::parse(&maps)
        .unwrap_or_default()
        .iter()
        .map(|v| (v.start, v.end))
        .chain(image.mappings.iter().map(|m| (m.start, m.end)))
        .collect();
    taken.sort();
    let mut base = ZONE_SEARCH_FROM;
    loop {
        if base + len > TASK_TOP {
            return Err(prepare_err("finding room for the restorer")(
                std::io::Error::other(format!("no free range of {len} bytes")),
            ));
        }
        match taken.iter().find(|(s, e)| *s < base + len && *e > base) {
            None => return Ok(base),
            Some((_, end)) => base = end.div_ceil(GIB) * GIB,
        }
    }
}

fn reserve(base: u64, len: u64) -> Result<(), RestoreError> {
    // SAFETY: a new PROT_NONE mapping at a range `find_zone` saw free;
    // MAP_FIXED_NOREPLACE fails rather than replace anything.
    let got = unsafe {
        libc::mmap(
            base as *mut libc::c_void,
            len as usize,
            libc::PROT_NONE,
            libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_NORESERVE
                | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if got == libc::MAP_FAILED || got as u64 != base {
        return Err(prepare_err(format!("reserving {len} bytes at {base:#x}"))(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Maps the stub (read+exec) and its block and stacks (read+write) at
/// `region`, inside the reserved zone.
fn map_region(region: u64, block: &[u8], blob_len: u64, data_len: u64) -> Result<(), RestoreError> {
    let len = blob_len + data_len;
    // SAFETY: replaces part of our own PROT_NONE reservation.
    let got = unsafe {
        libc::mmap(
            region as *mut libc::c_void,
            len as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if got == libc::MAP_FAILED {
        return Err(prepare_err("mapping the restorer")(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: the mapping just made is `len` bytes, writable, and ours.
    unsafe {
        std::ptr::copy_nonoverlapping(RESTORER.as_ptr(), region as *mut u8, RESTORER.len());
        std::ptr::copy_nonoverlapping(block.as_ptr(), (region + blob_len) as *mut u8, block.len());
    }
    // SAFETY: our own mapping.
    if unsafe {
        libc::mprotect(
            region as *mut libc::c_void,
            blob_len as usize,
            libc::PROT_READ | libc::PROT_EXEC,
        )
    } < 0
    {
        return Err(prepare_err("protecting the restorer")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Unmaps the zone from this process again (the child has its own copy).
pub fn release_zone(zone: (u64, u64)) {
    // SAFETY: the zone is ours and nothing in this process refers to it
    // after the child was created.
    unsafe { libc::munmap(zone.0 as *mut libc::c_void, zone.1 as usize) };
}
