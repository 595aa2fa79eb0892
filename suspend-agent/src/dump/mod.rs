//! Dumping a frozen process to an image: its threads, memory, open files
//! and the rest of its state, then the run witness. Nothing is written under
//! the image's final name until everything is in and durable (see
//! [`crate::image::writer`]); any error leaves no image behind.

mod files;
mod inside;
mod memory;
pub mod precopy;
mod process;
mod thread;

use std::{
    io,
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

pub use self::{
    files::{list as list_files, unlinked_over_cap, unrestorable},
    process::unrestorable_state,
};
use crate::{
    freeze::{Frozen, MapsError},
    image::{
        ImageWriter, WriteError,
        format::{
            Attributes, Codec, Cpu, FORMAT, FORMAT_VERSION, FileKind, Header, Mapping, MappingKind,
            PAGE_SIZE, Record, Witness,
        },
    },
    procfs::{self, vmas},
    state::{
        attributes, confinement, credentials, eventfd, identity, pipes, sched, threads, timers,
        vdso,
    },
    tracee::ptrace,
};

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("pid {pid}: reading {path}: {source}")]
    Proc {
        pid: u32,
        path: PathBuf,
        source: io::Error,
    },
    #[error("pid {pid}: cannot parse {what}")]
    Parse { pid: u32, what: &'static str },
    #[error("pid {pid}: reading memory at {addr:#x}: {source}")]
    Read {
        pid: u32,
        addr: u64,
        source: io::Error,
    },
    #[error(transparent)]
    Ptrace(#[from] ptrace::PtraceError),
    #[error("pid {pid}: thread {tid}: {source}")]
    Syscall {
        pid: u32,
        tid: u32,
        source: crate::sys::SyscallError,
    },
    #[error("pid {pid} holds files a resume could not give back: {}", fds.join(", "))]
    Unsupported { pid: u32, fds: Vec<String> },
    #[error("pid {pid}: {what}")]
    Confined { pid: u32, what: String },
    #[error("pid {pid}: placing its pre-copied pages: {source}")]
    Precopy {
        pid: u32,
        source: Box<precopy::PrecopyError>,
    },
    #[error(
        "pid {pid}: threads ran while frozen (tid×times: {}); the image would not be consistent",
        ran.iter().map(|(t, n)| format!("{t}×{n}")).collect::<Vec<_>>().join(", ")
    )]
    Inconsistent { pid: u32, ran: Vec<(u32, u32)> },
    #[error("pid {pid}: thread {tid} is running but was not frozen")]
    Escaped { pid: u32, tid: u32 },
    #[error(transparent)]
    Inject(#[from] crate::tracee::inject::InjectError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Maps(#[from] MapsError),
    #[error("the image signing key: {0}")]
    Key(#[from] crate::image::sign::KeyError),
}

/// What to dump and how.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    /// The image directory to create.
    pub dir: PathBuf,
    /// Leave out fds that cannot be restored instead of refusing.
    pub drop_unsupported: bool,
    /// The client's own connection to the agent (not part of its state).
    pub skip_fd: Option<i32>,
    /// The process will be held, not killed: what the image cannot hold
    /// stays in the process and is recorded as held only, not refused.
    pub held: bool,
    /// Held only already (found before the freeze).
    pub held_only: Vec<String>,
    /// A session or process group the process does not lead is not a
    /// refusal (see [`unrestorable_state`]).
    pub new_session: bool,
    /// How many bytes of deleted files' contents the image may carry.
    pub unlinked_max: u64,
    /// Regular files it has open whose bytes the image carries (with the
    /// deleted files', under `unlinked_max`).
    pub carry: Vec<PathBuf>,
    /// The process stays frozen until the image is durable: pages are
    /// written and handed to the disk as they are copied, hashed on the
    /// way ([`memory::Sink::File`]), rather than copied into the page file
    /// made ready before the freeze and hashed once the process runs.
    pub write_through: bool,
    /// Written through, the page runs are compressed as they are written
    /// ([`memory::Sink::File`]'s `pack`).
    pub compress: bool,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Summary {
    pub path: PathBuf,
    pub threads: usize,
    pub mappings: usize,
    pub pages: u64,
    pub bytes: u64,
    /// Time to copy everything out of the process (not counting `fsync`).
    pub took: Duration,
}

fn header(codec: Option<Codec>) -> Header {
    let uname = nix::sys::utsname::uname().ok();
    let text = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uname
            .as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    Header {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        created_unix: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        kernel: text(|u| u.release()),
        hostname: text(|u| u.nodename()),
        cpu: Cpu::here(),
        page_size: PAGE_SIZE,
        codec,
    }
}

/// Dumps `frozen` into `options.dir`. `progress` is called about once a
/// second while memory is copied.
pub fn dump(
    frozen: &mut Frozen<'_>,
    mut image: ImageWriter,
    options: &DumpOptions,
    precopy: Option<&mut precopy::Precopy>,
    progress: &dyn Fn(String),
) -> Result<Dumped, DumpError> {
    let started = Instant::now();
    let pid = frozen.pid();
    let mut files = files::list(pid, options.skip_fd)?;
    if let Err(why) = crate::state::carried::choose(&mut files, &options.carry) {
        return Err(DumpError::Unsupported { pid, fds: why });
    }
    let mut bad = files::unrestorable(pid, &files);
    bad.extend(files::unlinked_over_cap(&files, options.unlinked_max));
    files::with_dependents(&files, &mut bad);
    let mut held_only = options.held_only.clone();
    if !bad.is_empty() {
        if !options.drop_unsupported && !options.held {
            let fds = bad.into_iter().map(|(_, what)| what).collect();
            return Err(DumpError::Unsupported { pid, fds });
        }
        if options.held && !options.drop_unsupported {
            held_only.extend(bad.iter().map(|(_, what)| what.clone()));
        }
        files.retain(|f| !bad.iter().any(|(fd, _)| *fd == f.fd));
    }
    // Process-wide state an image cannot hold (checked again now that it
    // is frozen: nothing can be added since).
    let state = process::unrestorable_state(pid, options.new_session);
    if !state.is_empty() {
        if !options.held {
            return Err(DumpError::Confined {
                pid,
                what: format!("an image cannot hold its {}", state.join("; ")),
            });
        }
        held_only.extend(state);
    }
    files::read_unlinked(pid, &mut files, options.unlinked_max)?;
    let left = options
        .unlinked_max
        .saturating_sub(crate::state::unlinked::bytes(&files));
    crate::state::carried::read(pid, &mut files, left).map_err(|(path, source)| {
        DumpError::Proc {
            pid,
            path: path.into(),
            source,
        }
    })?;
    pipes::read_contents(pid, &mut files).map_err(|source| DumpError::Syscall {
        pid,
        tid: pid,
        source,
    })?;
    eventfd::probe_semaphores(pid, &mut files).map_err(|e| match e {
        eventfd::ProbeError::Fdinfo { path, source } => DumpError::Proc {
            pid,
            path: path.into(),
            source,
        },
        eventfd::ProbeError::Call(source) => DumpError::Syscall {
            pid,
            tid: pid,
            source,
        },
    })?;

    let maps_path = format!("/proc/{pid}/maps");
    let text = std::fs::read_to_string(&maps_path).map_err(|source| DumpError::Proc {
        pid,
        path: maps_path.into(),
        source,
    })?;
    let vmas = vmas::parse(&text).ok_or(DumpError::Parse {
        pid,
        what: "/proc/PID/maps",
    })?;
    // What madvise said of each mapping, seals and protection keys (while
    // frozen: nothing changes them).
    let smaps_path = format!("/proc/{pid}/smaps");
    let smaps = std::fs::read_to_string(&smaps_path)
        .map(|text| procfs::parse_smaps(&text))
        .map_err(|source| DumpError::Proc {
            pid,
            path: smaps_path.into(),
            source,
        })?;
    // The threads run a few syscalls for us first; from then on none may
    // run until the image is taken.
    let inside = inside::ask(frozen, &vmas)?;
    frozen.start_witness()?;

    let pack = options.write_through && options.compress;
    image.record(&Record::Header(header(pack.then_some(Codec::Zstd))))?;
    let threads = frozen.threads().to_vec();
    let leader = threads
        .iter()
        .find(|t| t.tid == pid)
        .unwrap_or(&threads[0])
        .tid;
    // What only a frozen process shows, that an image cannot hold: refused
    // now (the process is let go) — unless it is held, and keeps it.
    let mut late = Vec::new();
    // The same checks as before the freeze (`process::task_refusals`),
    // asked from inside: they catch what the task iterator could not read,
    // and what changed since.
    for t in &threads {
        let Some(asked) = inside.threads.get(&t.tid) else {
            continue;
        };
        late.extend(attributes::pdeath_signal_refusal(t.tid, asked.pdeathsig));
        late.extend(sched::mempolicy_refusal(t.tid, Some(asked.mempolicy)));
    }
    late.extend(crate::state::threads::ldt_refusal(inside.ldt));
    let keyrings: Vec<u32> = threads
        .iter()
        .filter(|t| inside.threads.get(&t.tid).is_some_and(|t| t.thread_keyring))
        .map(|t| t.tid)
        .collect();
    late.extend(credentials::thread_keyring_refusal(&keyrings));
    late.extend(credentials::process_keyring_refusal(inside.process_keyring));
    let mut overruns: Vec<_> = inside.timers.overruns.iter().collect();
    overruns.sort();
    for (id, overrun) in overruns {
        late.push(timers::overrun_words(*id, *overrun));
    }
    late.extend(attributes::dumpable_refusal(inside.dumpable));
    if !late.is_empty() {
        if !options.held {
            return Err(DumpError::Confined {
                pid,
                what: format!("{}, so a resume could not keep it", late.join("; ")),
            });
        }
        held_only.extend(late);
    }
    // The same thing found before and after the freeze is said once.
    let mut seen = std::collections::HashSet::new();
    held_only.retain(|what| seen.insert(what.clone()));
    let mut process = process::save(pid, leader, threads.len() as u32)?;
    // What its executable and open regular files hold (computed before
    // the freeze, `identity::warm`: looked up now); not stdio, which is
    // the resume command's.
    let user = identity::user_of(&process.creds);
    let watched = identity::watched(&files);
    identity::fill(
        &user,
        &watched,
        process.exe.iter_mut().chain(
            files
                .iter_mut()
                .filter(|f| f.fd > 2 && f.kind == FileKind::Regular && f.unlinked.is_none())
                .filter_map(|f| f.id.as_mut()),
        ),
    );
    process.held_only = held_only.clone();
    // What its code may point into: the functions of the vDSO this
    // kernel gave it, and its bytes (a resume elsewhere stands in for it).
    // One that cannot be read or parsed is not recorded, said, rather than
    // fail the suspend: the image then resumes only on this kernel
    // release, as an older agent's does.
    let kernel_maps = vdso::kernel_maps(&vmas);
    process.vdso = match vdso::save(pid, &kernel_maps) {
        Ok(recorded) => recorded.map(Box::new),
        Err((addr, why)) => {
            progress(format!(
                "pid {pid}: its vDSO at {addr:#x} is not recorded ({why}): the image resumes \
                 only on kernel {}",
                header(None).kernel
            ));
            None
        }
    };
    process.sigactions = inside.sigactions;
    process.brk = inside.brk;
    process.itimers = inside.itimers;
    process.posix_timers = timers::save(pid, &inside.timers).map_err(|_| DumpError::Parse {
        pid,
        what: "/proc/PID/timers",
    })?;
    process.attributes = Some(Attributes {
        oom_score_adj: process::oom_score_adj(pid)?,
        child_subreaper: inside.child_subreaper,
        thp_disable: inside.thp_disable,
        loginuid: crate::procfs::loginuid(pid).map_err(|e| DumpError::Parse {
            pid,
            what: match e {
                crate::procfs::ProcError::Gone { .. } => "/proc/PID/loginuid: the process is gone",
                _ => "/proc/PID/loginuid",
            },
        })?,
        membarrier: inside.membarrier,
        dumpable: inside.dumpable,
        mdwe: inside.mdwe,
        coredump_filter: procfs::coredump_filter(pid),
        autogroup_nice: procfs::autogroup_nice(pid),
    });
    image.record(&Record::Process(process))?;
    let xstate_size = crate::sys::cpu::xstate_layout().0;
    for t in &threads {
        let mut thread = thread::save(pid, t, xstate_size)?;
        let told = inside.threads.get(&t.tid);
        if let Some(told) = told {
            thread.sigaltstack = told.altstack.clone();
            thread.tid_address = told.tid_address;
            thread.timer_slack_ns = told.timer_slack_ns;
            thread.tsc = threads::tsc_saved(told.tsc);
            thread.speculation = told.speculation.clone();
        }
        let securebits = told.and_then(|t| t.securebits).ok_or(DumpError::Parse {
            pid,
            what: "a thread's securebits (PR_GET_SECUREBITS)",
        })?;
        let (confined, filters) =
            confinement::save(pid, t.tid, securebits).map_err(|e| match e {
                confinement::SaveError::Status(e) => DumpError::Proc {
                    pid,
                    path: format!("/proc/{pid}/task/{}/status", t.tid).into(),
                    source: std::io::Error::other(e.to_string()),
                },
                confinement::SaveError::Unholdable(why) => DumpError::Confined {
                    pid,
                    what: format!("thread {}: {why}", t.tid),
                },
                confinement::SaveError::Ptrace(e) => DumpError::Ptrace(e),
            })?;
        thread.confinement = Some(confined);
        thread.seccomp = filters;
        image.record(&Record::Thread(thread))?;
    }

    let memory = memory::Memory::open(pid)?;
    let mut plan = memory.plan(&vmas)?;
    if let Some(precopy) = precopy {
        // Only what it wrote since the pre-copy is copied now.
        let copied = precopy
            .place(&mut plan, &vmas)
            .map_err(|source| DumpError::Precopy {
                pid,
                source: Box::new(source),
            })?;
        if let Some(copied) = copied {
            log::debug!(
                "pid {pid}: frozen, {:.1} MiB to copy after the pre-copy",
                copied as f64 / (1 << 20) as f64
            );
        }
    }
    let sink = if options.write_through {
        let (file, path) = image.page_sink(plan.bytes)?;
        memory::Sink::File { file, path, pack }
    } else {
        memory::Sink::Area(image.page_area(plan.bytes)?)
    };
    let mut last_report = Instant::now();
    let (saved, page_bytes) = memory.copy(&plan, sink, &mut |copied| {
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            frozen.keep_guard()?;
            progress(format!("pid {pid}: {} MiB of memory saved", copied >> 20));
        }
        Ok(())
    })?;
    image.pages_took(page_bytes);
    let pages = saved.iter().flatten().map(|r| r.pages).sum::<u64>();
    // Recorded once their runs are hashed, in `Dumped::finish`.
    let mut mappings: Vec<Mapping> = vmas
        .iter()
        .zip(saved)
        .map(|(vma, runs)| crate::state::mappings::save(pid, vma, runs, &smaps))
        .collect();
    identity::fill(
        &user,
        &watched,
        mappings
            .iter_mut()
            .filter(|m| {
                matches!(m.kind, MappingKind::PrivateFile | MappingKind::SharedFile)
                    && !m.path.ends_with(" (deleted)")
            })
            .filter_map(|m| m.file.as_mut()),
    );
    for file in files {
        image.record(&Record::File(file))?;
    }

    fault_hooks(frozen);
    // Last: is every thread of the process one we froze, and did any of
    // them run while we copied?
    let task_dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&task_dir).map_err(|source| DumpError::Proc {
        pid,
        path: task_dir.clone().into(),
        source,
    })?;
    let running = tasks
        .flatten()
        .filter_map(|t| t.file_name().to_str()?.parse::<u32>().ok());
    if let Some(tid) = running
        .into_iter()
        .find(|tid| !threads.iter().any(|t| t.tid == *tid) && !crate::procfs::exiting(*tid))
    {
        return Err(DumpError::Escaped { pid, tid });
    }
    let witness = frozen.witness()?;
    let ran: Vec<(u32, u32)> = witness
        .ran
        .iter()
        .map(|(tid, t)| (*tid, t.switches))
        .collect();
    image.record(&Record::Witness(Witness {
        consistent: witness.consistent(),
        ran: ran.clone(),
        frozen_threads: threads.len() as u32,
    }))?;
    if !witness.consistent() {
        return Err(DumpError::Inconsistent { pid, ran });
    }
    let bytes = image.page_bytes();
    Ok(Dumped {
        image,
        held_only,
        threads: threads.len(),
        mappings,
        pages,
        bytes,
        hashed: options.write_through,
        copied_in: started.elapsed(),
    })
}

/// An image with everything in it, not yet durable: the process can be
/// let go now (its state is copied), or kept until [`Dumped::finish`] and
/// then killed.
pub struct Dumped {
    image: ImageWriter,
    /// What the image does not hold and only a held process keeps.
    pub held_only: Vec<String>,
    threads: usize,
    /// Their page runs are hashed and they are recorded at `finish`.
    mappings: Vec<Mapping>,
    pages: u64,
    bytes: u64,
    /// The page runs were hashed as they were written.
    hashed: bool,
    copied_in: Duration,
}

impl Dumped {
    /// Hashes every page run, records the mappings, signs the image with
    /// `key`, makes it durable (`fsync`) and renames it into place. Needs
    /// nothing from the process: with `--leave-running` it runs meanwhile.
    pub fn finish(mut self, key: &ed25519_dalek::SigningKey) -> Result<Summary, DumpError> {
        if !self.hashed {
            let pages = self.image.pages_written()?;
            let zeros = memory::hash_runs(
                pages,
                self.mappings.iter_mut().flat_map(|m| m.pages.iter_mut()),
            );
            self.image.leave_out(&zeros)?;
        }
        let count = self.mappings.len();
        for mapping in self.mappings {
            self.image.record(&Record::Mapping(mapping))?;
        }
        let path = self.image.finish(key)?;
        Ok(Summary {
            path,
            threads: self.threads,
            mappings: count,
            pages: self.pages,
            bytes: self.bytes,
            took: self.copied_in,
        })
    }
}

/// Test hooks, from the daemon's environment. `SUSPEND_FAULT_DUMP_DELAY_MS`
/// holds every dump that long after its memory is copied, so the tests can
/// kill the process or the daemon mid-dump. `SUSPEND_FAULT_WAKE_THREAD=1`
/// lets one frozen thread run for a moment, as a bug or an outside wake-up
/// would: the run witness must catch it.
fn fault_hooks(frozen: &Frozen<'_>) {
    fault_pause("SUSPEND_FAULT_DUMP_DELAY_MS");
    if std::env::var_os("SUSPEND_FAULT_WAKE_THREAD").is_some_and(|v| v == "1") {
        frozen.fault_run_one();
    }
}

/// Test hook: sleeps as many milliseconds as the daemon's environment
/// variable `var` says, if it is set.
fn fault_pause(var: &str) {
    if let Some(ms) = std::env::var(var).ok().and_then(|v| v.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}
