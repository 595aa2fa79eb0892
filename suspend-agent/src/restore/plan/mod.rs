//! Where everything goes, decided (and opened, and mapped) before the
//! process is created: the restore child then only makes the system calls
//! written down here, and allocates nothing.
//!
//! [`Plan::new`] is one step per kind of state, each planned by its own
//! module:
//!
//! - [`fds`]: the helper descriptors, above every fd of the image, and the
//!   pipe the stub reports on;
//! - [`process`]: the executable, working directory, stdio, session
//!   and the rest the child sets for the whole process, and the
//!   process's memory map fields, credentials and flags for the stub;
//! - [`files`]: what is made at each fd above stdio, and in which order;
//! - [`memory`]: where each mapping's contents come from, where they are
//!   prepared and how the stub moves them (the kernel's mappings too);
//! - [`zone`]: the range of addresses that holds the stub, its block, its
//!   stacks and the prepared mappings;
//! - resource limits ([`crate::state::limits`]), the name and the audit
//!   login uid ([`crate::state::attributes`]);
//! - signals: actions and pending signals ([`crate::state::signals`]),
//!   interval timers ([`crate::state::timers::itimers`]);
//! - [`threads`]: the main thread first, each thread's arguments and
//!   seccomp filters;
//! - [`args`]: the argument block they are pushed on, and its head.

mod args;
mod fds;
mod files;
mod memory;
mod process;
mod threads;
mod zone;

use std::{
    ffi::CString,
    os::fd::{OwnedFd, RawFd},
};

use suspend_common::restore::{Move, STUB_STACK, ThreadArgs};

use self::{
    args::{Block, Head},
    fds::Helpers,
    memory::Kernel,
    zone::{Sizes, Zone, round_up},
};
pub use self::{
    files::Open,
    memory::{Premap, Source},
    process::{SessionPlan, StdioPlan},
    threads::main_first,
    zone::release_zone,
};
use super::{Options, RESTORER, RestoreError, load, open::Opened, validate};
use crate::{
    image::{
        Image,
        format::{PAGE_SIZE, PAGES_FILE, Process, Thread},
        sign,
    },
    state::signals,
};

#[derive(Debug)]
pub struct Plan {
    /// Descriptors the child uses and closes; all above the image's own.
    pub helpers: Vec<OwnedFd>,
    /// Their numbers, sorted: the child closes everything else (after
    /// `fork` it may not allocate, so this is made here).
    pub keep: Vec<RawFd>,
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

fn prepare_call_err(
    what: impl Into<String>,
) -> impl FnOnce(crate::sys::SyscallError) -> RestoreError {
    let what = what.into();
    move |source| RestoreError::PrepareCall { what, source }
}

impl Plan {
    /// Plans the restore of `image` from the files `opened` for it: every
    /// descriptor made a helper, the zone reserved, the stub and its
    /// argument block mapped, every mapping's contents read in.
    pub fn new(
        image: &Image,
        options: &Options,
        mut opened: Opened,
        vdso: &validate::Vdso,
    ) -> Result<Self, RestoreError> {
        let p = &image.process;

        // Descriptors, each above every fd of the image.
        let mut helpers = Helpers::above(&image.files);
        let pages_path = image.dir.join(PAGES_FILE);
        let pages = sign::open_regular(&pages_path)
            .map_err(prepare_err(pages_path.display().to_string()))?;
        let (report_read, report_write) = fds::report_pipe(&mut helpers)?;
        let exe_fd = process::exe(opened.exe.take(), &mut helpers)?;
        let cwd = process::cwd(opened.cwd.take(), &p.cwd, &mut helpers)?;
        let stdio = process::stdio(&image.files, &mut opened.stdio, &mut helpers)?;
        let opens = files::opens(
            &image.files,
            (p.creds.uid[1], p.creds.gid[1]),
            &mut opened.files,
            &mut opened.watched,
            &mut helpers,
        )?;
        let sources = memory::sources(&image.mappings, &mut opened.mapped, &mut helpers)?;

        // The zone, and where each mapping goes through it.
        let threads = threads::main_first(image);
        let kernel_here = &vdso.here;
        let proxy_len = vdso
            .proxy
            .as_ref()
            .map_or(0, |p| round_up(p.bytes.len() as u64) + PAGE_SIZE);
        let zone = Zone::reserve(
            &image.mappings,
            Sizes {
                blob: round_up(RESTORER.len() as u64),
                args: round_up(args::estimate(p, &image.threads, image.mappings.len())),
                stacks: STUB_STACK * threads.len() as u64,
                kernel: kernel_here.iter().map(|(_, s, e)| e - s).sum(),
                premaps: memory::premaps_len(&image.mappings, &sources) + proxy_len,
            },
        )?;
        let mut cursor = zone.after_region();
        let finals = match &vdso.proxy {
            None => memory::kernel_in_place(kernel_here, &image.mappings),
            Some(_) => memory::kernel_home(kernel_here, &image.mappings, zone.range()).ok_or_else(
                || {
                    prepare_err("finding room for this kernel's vDSO")(std::io::Error::other(
                        "no free range for it beside the image's mappings",
                    ))
                },
            )?,
        };
        // This kernel's vDSO where it will be: the proxy's jumps' targets.
        let new_vdso = kernel_here
            .iter()
            .zip(&finals)
            .find(|((name, ..), _)| name == crate::state::vdso::VDSO)
            .map_or(0, |(_, to)| *to);
        let kernel = memory::kernel(kernel_here, finals, zone.range(), &mut cursor);
        let (mut moves, mut premaps) = memory::place(&image.mappings, sources, &mut cursor);
        let proxy = vdso.proxy.as_ref().map(|p| {
            let bytes = crate::state::vdso::proxy_bytes(&p.bytes, &p.symbols, &p.patches, new_vdso);
            let (m, premap) = memory::proxy(p.at, round_up(p.bytes.len() as u64), &mut cursor);
            moves.push(m);
            premaps.push(premap);
            (premaps.len() - 1, bytes)
        });

        // The argument block: each kind's part, then the head.
        let block = argument_block(
            p,
            &threads,
            options,
            &BlockPlace {
                base: zone.args(),
                reserved: zone.sizes.args,
                stacks: zone.stacks(),
                exe_fd,
                report_fd: report_write,
                kernel: &kernel,
                moves: &moves,
            },
        )?;

        // In place: the stub and its block, every mapping's contents.
        zone.map_region(&block.bytes)?;
        load::load(&premaps, &pages, &pages_path)?;
        if let Some((i, bytes)) = &proxy {
            load::fill(&premaps[*i], bytes);
        }

        let scratch_fd = helpers.scratch();
        let helpers = helpers.into_fds();
        let mut keep: Vec<RawFd> = helpers
            .iter()
            .map(std::os::fd::AsRawFd::as_raw_fd)
            .collect();
        keep.sort_unstable();
        Ok(Self {
            scratch_fd,
            keep,
            helpers,
            exe_fd,
            report_read,
            report_write,
            zone: zone.range(),
            entry: zone.entry(),
            args_addr: zone.args(),
            stack_top: block.threads[0].stack_top,
            opens,
            stdio,
            cwd,
            umask: p.umask,
            rlimits: crate::state::limits::for_child(p),
            personality: p.personality,
            comm: crate::state::attributes::comm(p),
            session: process::session(p),
            loginuid: crate::state::attributes::loginuid(
                p.attributes.as_ref().and_then(|a| a.loginuid),
                || crate::procfs::loginuid(std::process::id()).ok().flatten(),
            ),
            tids: threads.iter().map(|t| t.tid).collect(),
            seccomp: block.seccomp,
        })
    }
}

/// Where the argument block goes, and what it points to besides the
/// image's process and threads.
struct BlockPlace<'a> {
    /// Its address in the zone, and the bytes reserved for it there.
    base: u64,
    reserved: u64,
    /// Where the threads' stub stacks start.
    stacks: u64,
    exe_fd: Option<RawFd>,
    report_fd: RawFd,
    kernel: &'a Kernel,
    moves: &'a [Move],
}

/// An argument block, built.
struct ArgBlock {
    bytes: Vec<u8>,
    /// Per thread, its seccomp filters ([`Plan::seccomp`]).
    seccomp: Vec<(u32, Vec<(u64, u64)>)>,
    /// Per thread, main first, what the stub gets for it.
    threads: Vec<ThreadArgs>,
}

/// The argument block of process `p` and its `threads` (main first) at
/// `place`: each kind's part, then the head.
fn argument_block(
    p: &Process,
    threads: &[&Thread],
    options: &Options,
    place: &BlockPlace<'_>,
) -> Result<ArgBlock, RestoreError> {
    let mut block = Block::new(place.base);
    let mm = process::mm(p, place.exe_fd, &mut block);
    let sigactions = signals::actions(&p.sigactions);
    let shared_pending = signals::shared_pending(&p.shared_pending);
    let itimers = crate::state::timers::itimers(&p.itimers);
    let seccomp = threads::seccomp(threads, &mut block)?;
    let thread_args = threads::args(threads, p.pid, place.stacks, &mut block);
    let creds = process::creds(&p.creds, &mut block);
    let head = Head {
        flags: process::flags(options, p),
        report_fd: place.report_fd,
        keep: &place.kernel.keep,
        kernel: &place.kernel.moves,
        kernel_final: &place.kernel.finals,
        moves: place.moves,
        sigactions: &sigactions,
        threads: &thread_args,
        shared_pending: &shared_pending,
        itimers: &itimers,
        mm,
        creds,
    };
    Ok(ArgBlock {
        bytes: block.finish(&head, place.reserved)?,
        seccomp,
        threads: thread_args,
    })
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
    use suspend_common::restore::{Move, Range};

    use super::{BlockPlace, args, argument_block, memory::Kernel, zone::round_up};
    use crate::{
        image::format::{self, Process, Sched, SeccompFilter, Thread},
        restore::Options,
        state::fixtures,
    };

    /// The argument block built as [`super::Plan::new`] builds it, for
    /// `p`'s `threads` (main first) and `mappings` mappings, checked
    /// against its estimate.
    fn fits_its_estimate(p: &Process, threads: &[Thread], mappings: usize) {
        let estimate = args::estimate(p, threads, mappings);
        let base = 0x1000_0000_2000;
        let ordered: Vec<&Thread> = threads.iter().collect();
        let kernel = Kernel {
            moves: vec![Move::default(); 2],
            finals: vec![0; 2],
            keep: vec![Range::default(); 3],
        };
        let moves = vec![Move::default(); mappings];
        let place = BlockPlace {
            base,
            reserved: estimate,
            stacks: base + round_up(estimate),
            exe_fd: Some(40),
            report_fd: 41,
            kernel: &kernel,
            moves: &moves,
        };
        let block = argument_block(p, &ordered, &Options::default(), &place)
            .unwrap_or_else(|e| panic!("{} threads, {mappings} mappings: {e}", threads.len()));
        assert!(block.bytes.len() as u64 <= estimate);
    }

    #[test]
    fn the_argument_block_fits_its_estimate() {
        let p = fixtures::process(42);
        let one = [fixtures::thread(42)];
        fits_its_estimate(&p, &one, 0);
        fits_its_estimate(&p, &one, 1);
        // Each kind of thing pushed, many of it (so that an estimate
        // short for any one kind shows), at odd sizes (the most padding).
        fits_its_estimate(&p, &one, 100_001);
        let many_threads: Vec<Thread> = (42..42 + 10_001).map(fixtures::thread).collect();
        fits_its_estimate(&p, &many_threads, 0);
        let siginfo = B64.encode([7u8; 128]);
        let mut pending = fixtures::thread(42);
        pending.pending = vec![siginfo.clone(); 10_001];
        pending.stopped_with = Some(libc::SIGINT);
        fits_its_estimate(&p, &[pending], 0);
        let scheduled: Vec<Thread> = (42..42 + 1_001)
            .map(|tid| {
                let mut t = fixtures::thread(tid);
                t.sched = Some(Sched {
                    affinity: vec![u64::MAX; 17],
                    util_clamp: Some((1, 2)),
                    ..Sched::default()
                });
                t
            })
            .collect();
        fits_its_estimate(&p, &scheduled, 0);
        let mut filtered = fixtures::thread(42);
        filtered.seccomp = (0..1_001)
            .map(|n| SeccompFilter {
                flags: 0,
                program: B64.encode(vec![0u8; (n % 7 + 1) * 8]),
            })
            .collect();
        fits_its_estimate(&p, &[filtered], 0);

        let mut full = fixtures::process(42);
        full.auxv = (0..10_001).map(|i| (i, i)).collect();
        fits_its_estimate(&full, &one, 0);
        full.creds.groups = (0..65_537).collect();
        fits_its_estimate(&full, &one, 0);
        full.shared_pending = vec![siginfo; 10_001];
        fits_its_estimate(&full, &one, 0);
        full.sigactions = (1..=64)
            .map(|signal| format::SigAction {
                signal,
                handler: 0,
                flags: 0,
                restorer: 0,
                mask: 0,
            })
            .collect();
        full.itimers = (0..3)
            .map(|which| format::ITimer {
                which,
                interval_us: 1,
                value_us: 0,
            })
            .collect();
        fits_its_estimate(&full, &one, 0);
    }
}
