//! After `ready` (steps 4–7 of the "Suspend" flow): refuse what an image
//! cannot hold, freeze, dump, and then kill the process (its image is
//! durable) or let it go. Any failure lets it go and tells it `aborted`:
//! a failed suspend never loses the process.

use std::{
    fs, io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use suspend_common::wire::{REASON_ABORTED, REASON_CONTINUED};
use tokio::net::UnixStream;

use super::{
    State,
    handshake::{Done, OnResume, Progress, SuspendArgs, tell},
};
use crate::{
    control::Outcome,
    dump::{self, DumpError, DumpOptions, Summary},
    freeze::{FreezeError, Frozen},
    hold::{HeldRecord, HoldError},
    image::{ImageWriter, sign::Keys},
    procfs::ProcError,
    sys::PidFd,
};

/// Why a process that answered ready was let go instead of suspended.
/// Nothing is lost either way: it goes on, told `aborted` ([`Aborted`]).
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    /// The request named no image directory (the handshake refuses that
    /// before sending anything; this is the same check, kept).
    #[error("pid {pid}: no image directory")]
    NoImageDir { pid: u32 },
    /// Held: it has what a held process cannot keep (checked before the
    /// freeze).
    #[error("pid {pid} cannot be held: {}; nothing was frozen", .refused.join("; "))]
    Unholdable { pid: u32, refused: Vec<String> },
    /// Held: looking for what a held process cannot keep failed.
    #[error(transparent)]
    HoldRefusals(HoldError),
    /// Not held: process-wide state an image cannot hold (timers, locked
    /// memory, children).
    #[error(
        "pid {pid}: an image cannot hold its {}; nothing was frozen (--hold keeps them)",
        .state.join("; ")
    )]
    ProcessState { pid: u32, state: Vec<String> },
    /// Not held: files a resume could not give back (unless they may be
    /// dropped).
    #[error(
        "pid {pid} holds files a resume could not give back: {}; nothing was frozen (--hold \
         keeps them; --drop-unsupported-fds leaves them out)",
        .files.join(", ")
    )]
    Files { pid: u32, files: Vec<String> },
    /// To be moved (`--to`): what an image cannot hold, process-wide or
    /// among its files.
    #[error(
        "pid {pid} cannot be moved: an image cannot hold its {}; nothing was frozen",
        .what.join("; ")
    )]
    Unmovable { pid: u32, what: Vec<String> },
    /// What `--carry` names cannot be carried.
    #[error("pid {pid}: {}; nothing was frozen", .why.join("; "))]
    Carry { pid: u32, why: Vec<String> },
    /// Listing its files failed.
    #[error(transparent)]
    ListFiles(DumpError),
    /// Not held: what confines it that an image cannot hold (seccomp).
    #[error("pid {pid}: {}; nothing was frozen", .refused.join("; "))]
    Confined { pid: u32, refused: Vec<String> },
    /// Reading what confines it failed.
    #[error("pid {pid}: {source}")]
    Confinement { pid: u32, source: ProcError },
    /// Making its image, freezing, dumping or finishing failed (or the
    /// thread doing it panicked).
    #[error("pid {pid}: suspend failed: {source}")]
    Failed { pid: u32, source: WorkError },
}

impl TakeError {
    /// How the request ends (the CLI's exit code).
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Unholdable { .. }
            | Self::ProcessState { .. }
            | Self::Files { .. }
            | Self::Unmovable { .. }
            | Self::Carry { .. }
            | Self::Confined { .. } => Outcome::Unsupported,
            Self::NoImageDir { .. }
            | Self::HoldRefusals(_)
            | Self::ListFiles(_)
            | Self::Confinement { .. } => Outcome::Error,
            Self::Failed { source, .. } => source.outcome(),
        }
    }

    /// What joins the error to what the process said once told `aborted`.
    fn let_go(&self) -> &'static str {
        match self {
            Self::NoImageDir { .. } => "; let go, ",
            // Killed or held after all: its message says which.
            Self::Failed {
                source: WorkError::Panicked { left, .. },
                ..
            } if !left.let_go() => "; ",
            Self::Failed { .. } => "; the process was let go, ",
            // Refused before the freeze: the message says nothing was
            // frozen.
            Self::Unholdable { .. }
            | Self::HoldRefusals(_)
            | Self::ProcessState { .. }
            | Self::Files { .. }
            | Self::Unmovable { .. }
            | Self::Carry { .. }
            | Self::ListFiles(_)
            | Self::Confined { .. }
            | Self::Confinement { .. } => "; ",
        }
    }
}

/// What failed on the dump thread: making the image, freezing, dumping,
/// finishing (killing or holding the process).
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Freeze(#[from] FreezeError),
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error("the image is written but killing the process failed: {0}")]
    Kill(#[source] io::Error),
    #[error("holding it failed (its image was removed): {0}")]
    Hold(#[source] HoldError),
    /// The dump thread panicked (a bug). What it left behind is known
    /// once it has unwound: every `Drop` on its way ran, so a frozen
    /// process was let go, an unfinished image removed.
    #[error("the dump thread panicked ({message}){left}")]
    Panicked { message: String, left: AfterPanic },
}

impl WorkError {
    /// How the request ends: what was found once frozen that an image or a
    /// held process cannot keep is `Unsupported`, the rest `Error`.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Dump(DumpError::Unsupported { .. } | DumpError::Confined { .. })
            | Self::Hold(HoldError::Refused { .. }) => Outcome::Unsupported,
            Self::Freeze(_)
            | Self::Dump(_)
            | Self::Kill(_)
            | Self::Hold(_)
            | Self::Panicked { .. } => Outcome::Error,
        }
    }
}

/// How far the dump thread got: what a panic on it can have left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Making the image's directory: nothing is frozen yet.
    Preparing,
    /// Freezing, dumping, making the image durable (with
    /// `--leave-running`, the process runs again meanwhile).
    Dumping,
    /// The image is durable: killing or holding the process.
    Finishing,
}

/// What a panic on the dump thread left behind, found once it unwound.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AfterPanic {
    #[error(" before the freeze: nothing was frozen, no image was written")]
    BeforeFreeze,
    /// The unfinished image's directory went with the image writer; the
    /// process was let go with the `Frozen`.
    #[error(": the image was not completed (nothing of it was kept)")]
    NoImage,
    #[error(" once its image in {} was complete, before the process was killed", .image.display())]
    NotKilled { image: PathBuf },
    #[error(" once its image in {} was complete; the process was killed", .image.display())]
    Killed { image: PathBuf },
    /// Its record was written: held, as after an agent killed while
    /// holding it (some threads may run on, not parked).
    #[error(
        " while holding the process, its image in {} complete: it is held (its hold perhaps \
         cut short); `suspend-agent resume {pid}` lets it go on",
        .image.display()
    )]
    Held { pid: u32, image: PathBuf },
    /// Let go before it was held: its image, of a process that went on,
    /// must not be resumed.
    #[error(
        " before the process was held; its image in {} {}",
        .image.display(),
        if *.removed { "was removed" } else { "could not be removed: do not resume it" }
    )]
    NotHeld { image: PathBuf, removed: bool },
}

impl AfterPanic {
    /// Whether the process was let go (else killed, or held).
    fn let_go(&self) -> bool {
        match self {
            Self::BeforeFreeze | Self::NoImage | Self::NotKilled { .. } | Self::NotHeld { .. } => {
                true
            }
            Self::Killed { .. } | Self::Held { .. } => false,
        }
    }

    /// Finds it from the stage the thread reached and, once the image was
    /// durable, whether process `pid` is `held` with it, or `alive`. The
    /// image of a process that was to be held and went on is removed.
    fn find(
        stage: Stage,
        hold: bool,
        pid: u32,
        image: &Path,
        held: impl FnOnce() -> bool,
        alive: impl FnOnce() -> bool,
    ) -> Self {
        let image = image.to_path_buf();
        match stage {
            Stage::Preparing => Self::BeforeFreeze,
            Stage::Dumping => Self::NoImage,
            Stage::Finishing if hold => {
                if held() {
                    return Self::Held { pid, image };
                }
                let removed = match fs::remove_dir_all(&image) {
                    Ok(()) => true,
                    Err(e) => {
                        log::warn!("removing {}: {e}", image.display());
                        false
                    }
                };
                Self::NotHeld { image, removed }
            }
            Stage::Finishing if alive() => Self::NotKilled { image },
            Stage::Finishing => Self::Killed { image },
        }
    }
}

/// Whether `pid` is held with the image in `image` (its record says so).
fn held_with(pid: u32, image: &Path) -> bool {
    HeldRecord::find(pid)
        .ok()
        .flatten()
        .is_some_and(|r| fs::canonicalize(image).is_ok_and(|i| i == r.image))
}

/// What a panic said (a cancel, which only the runtime's shutdown does to
/// a blocking task not yet started, says so).
fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned()),
        Err(e) => e.to_string(),
    }
}

/// A take that failed, and what its process said once told `aborted`: the
/// request's message ends with it.
#[derive(Debug, thiserror::Error)]
#[error("{error}{}{told}", .error.let_go())]
pub struct Aborted {
    /// Boxed: the error of every suspend request that got as far as
    /// `ready` is carried in it, and a dump error is large.
    #[source]
    pub error: Box<TakeError>,
    pub told: OnResume,
}

impl Aborted {
    /// How the request ends (the CLI's exit code): the error's.
    pub fn outcome(&self) -> Outcome {
        self.error.outcome()
    }
}

/// Lets the process go: tells it `aborted` and waits for its `on_resume`.
async fn abort(stream: &mut UnixStream, request_id: u64, error: TakeError) -> Aborted {
    let told = tell(stream, request_id, REASON_ABORTED).await;
    Aborted {
        error: Box::new(error),
        told,
    }
}

struct Taken {
    summary: Summary,
    frozen_for: Duration,
    /// From the process's `ready` until its image was durable.
    durable_after: Duration,
    end: End,
}

/// What became of the process once its image was durable.
enum End {
    Killed,
    /// Let go; how its memory was copied.
    LeftRunning {
        precopied: String,
    },
    Held(crate::hold::Parked),
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn took(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Freezes, dumps and finishes a process that answered ready.
pub async fn take(
    state: &Arc<State>,
    args: &SuspendArgs,
    stream: &mut UnixStream,
    request_id: u64,
    client_fd: u32,
    pidfd: PidFd,
    progress: &Progress,
) -> Result<Done, Aborted> {
    let ready_at = Instant::now();
    let pid = args.pid;
    let Some(dir) = args.dir.clone() else {
        return Err(abort(stream, request_id, TakeError::NoImageDir { pid }).await);
    };
    let skip_fd = Some(client_fd as i32);
    let held_only = match refusals(args, skip_fd) {
        Ok(held_only) => held_only,
        Err(e) => return Err(abort(stream, request_id, e).await),
    };

    let options = DumpOptions {
        dir: dir.clone(),
        drop_unsupported: args.drop_unsupported_fds,
        skip_fd,
        // Held for a move: what the image cannot hold is refused, not
        // kept as held only (the image alone must carry it there).
        held: args.hold && !args.portable,
        held_only,
        new_session: args.new_session,
        unlinked_max: args.unlinked_max,
        carry: args.carry.clone(),
        write_through: !args.leave_running,
        compress: !args.leave_running && !args.no_compress,
    };
    let leave_running = args.leave_running;
    let precopy_wanted = args.leave_running && !args.no_precopy;
    let hold = args.hold;
    let state = state.clone();
    let report = progress.clone();
    // A panic on the dump thread: what it left is found from how far it
    // got, and whether the process is still there.
    let stage = Arc::new(Mutex::new(Stage::Preparing));
    let reached = stage.clone();
    let reach = move |s| *reached.lock().unwrap_or_else(|e| e.into_inner()) = s;
    let pidfd = Arc::new(pidfd);
    let thread_pidfd = pidfd.clone();
    // ptrace binds a tracee to the tracer thread: freeze, dump and finish
    // all happen on this one blocking thread.
    let work = tokio::task::spawn_blocking(move || -> Result<Taken, WorkError> {
        // The image directory, and its page file's memory, before anything
        // is frozen: the process waits for none of it.
        let key = Keys::system()
            .and_then(|keys| keys.signing())
            .map_err(DumpError::from)?;
        let mut image = ImageWriter::create(&options.dir).map_err(DumpError::from)?;
        let expected = crate::procfs::resident_bytes(pid).unwrap_or(0);
        if options.write_through {
            image.preallocate(expected + expected / 8)
        } else {
            image.prewarm(expected + expected / 8)
        }
        .map_err(DumpError::from)?;
        // What its files hold, read before it is frozen (the dump looks
        // each up, and reads only what changed since).
        let read_at = Instant::now();
        crate::state::identity::warm(pid);
        log::debug!(
            "pid {pid}: its files' identities read in {:?}",
            read_at.elapsed()
        );
        reach(Stage::Dumping);
        let (mut precopy, precopied) = if precopy_wanted {
            precopy_first(&state, pid, &mut image, &|m| {
                let _ = report.send(m);
            })?
        } else {
            (None, "copied in one freeze (--no-precopy)".to_owned())
        };
        let mut frozen = Frozen::freeze(&state.registry, state.lsm_guard, pid)?;
        let frozen_at = Instant::now();
        let guard = if frozen.guarded() {
            "freeze guard on: others' signals and tracers refused"
        } else {
            "freeze guard off (no BPF LSM): ptrace and the run witness protect it"
        };
        let _ = report.send(format!(
            "pid {pid}: {} thread(s) frozen ({guard}); writing {}",
            frozen.threads().len(),
            options.dir.display()
        ));
        let dumped = match dump::dump(&mut frozen, image, &options, precopy.as_mut(), &|m| {
            let _ = report.send(m);
        }) {
            Ok(dumped) => dumped,
            Err(e) => {
                // Let go (when `frozen` is dropped) as it was.
                settle_timers(&mut frozen);
                return Err(e.into());
            }
        };
        if leave_running {
            let precopied = precopy.as_ref().map_or(precopied, |p| p.summary());
            // Everything is copied: the process may run while the image is
            // made durable (a failure then still tells it `aborted`).
            settle_timers(&mut frozen);
            frozen.release();
            let frozen_for = frozen_at.elapsed();
            let summary = dumped.finish(&key)?;
            return Ok(Taken {
                summary,
                frozen_for,
                durable_after: ready_at.elapsed(),
                end: End::LeftRunning { precopied },
            });
        }
        if hold {
            // Parked and its memory released only once the image is
            // durable.
            let held_only = dumped.held_only.clone();
            let summary = dumped.finish(&key)?;
            reach(Stage::Finishing);
            let durable_after = ready_at.elapsed();
            let parked = match crate::hold::park(&mut frozen, &summary.path, held_only) {
                Ok(parked) => parked,
                Err(e) => {
                    // Still frozen as it was: it goes on, and the image of
                    // a process that went on must not be resumed.
                    settle_timers(&mut frozen);
                    if let Err(rm) = std::fs::remove_dir_all(&summary.path) {
                        log::warn!("removing {}: {rm}", summary.path.display());
                    }
                    return Err(WorkError::Hold(e));
                }
            };
            let frozen_for = frozen_at.elapsed();
            frozen.release();
            return Ok(Taken {
                summary,
                frozen_for,
                durable_after,
                end: End::Held(parked),
            });
        }
        // Killed only once the image is durable.
        let summary = dumped.finish(&key)?;
        reach(Stage::Finishing);
        let durable_after = ready_at.elapsed();
        frozen.kill(&thread_pidfd).map_err(WorkError::Kill)?;
        Ok(Taken {
            summary,
            frozen_for: frozen_at.elapsed(),
            durable_after,
            end: End::Killed,
        })
    })
    .await;

    let result = match work {
        Ok(result) => result,
        Err(e) => {
            let stage = *stage.lock().unwrap_or_else(|e| e.into_inner());
            Err(WorkError::Panicked {
                message: panic_message(e),
                left: AfterPanic::find(
                    stage,
                    hold,
                    pid,
                    &dir,
                    || held_with(pid, &dir),
                    || pidfd.is_alive(),
                ),
            })
        }
    };
    match result {
        Ok(Taken {
            summary,
            frozen_for,
            durable_after,
            end,
        }) => {
            // Compressed, the pages take fewer bytes than they hold.
            let saved = summary.pages * crate::image::format::PAGE_SIZE;
            let size = if summary.bytes == saved {
                mib(saved)
            } else {
                format!("{}, {} stored", mib(saved), mib(summary.bytes))
            };
            let what = format!(
                "{} thread(s), {} mappings, {} pages ({size}) in {}; frozen for {}; image durable \
                 {} after ready",
                summary.threads,
                summary.mappings,
                summary.pages,
                took(summary.took),
                took(frozen_for),
                took(durable_after)
            );
            if let End::Held(parked) = &end {
                let r = &parked.record;
                let kept = if parked.kept.is_empty() {
                    String::new()
                } else {
                    format!("; left resident: {}", parked.kept.join(", "))
                };
                let only = if r.held_only.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; only the held process has (not the image): {}",
                        r.held_only.join(", ")
                    )
                };
                Ok(Done {
                    message: format!(
                        "pid {pid} held, image in {}: {what}; its threads are parked, resident \
                         memory {} -> {} (parked in {}){kept}{only}; `suspend-agent resume {}` \
                         brings it back",
                        summary.path.display(),
                        mib(r.resident_before),
                        mib(r.resident_after),
                        took(parked.took),
                        summary.path.display()
                    ),
                })
            } else if matches!(end, End::Killed) {
                Ok(Done {
                    message: format!(
                        "pid {pid} suspended to {}: {what}; the process was killed",
                        summary.path.display()
                    ),
                })
            } else {
                let precopied = match &end {
                    End::LeftRunning { precopied } => precopied.as_str(),
                    _ => "",
                };
                let told = tell(stream, request_id, REASON_CONTINUED).await;
                Ok(Done {
                    message: format!(
                        "pid {pid} saved to {}: {what}; memory {precopied}; left running, {told}",
                        summary.path.display(),
                    ),
                })
            }
        }
        Err(source) => Err(abort(stream, request_id, TakeError::Failed { pid, source }).await),
    }
}

/// The pre-copy of a suspend that lets `pid` run on: a first short
/// freeze to start tracking its writes, then a copy of its memory into
/// `image` while it runs. Returns the pre-copy to finish at the real
/// freeze (none where it could not be done: the freeze then copies
/// everything, and the second part says why, for the summary). Only a
/// failure to freeze fails the suspend.
fn precopy_first(
    state: &State,
    pid: u32,
    image: &mut crate::image::ImageWriter,
    progress: &dyn Fn(String),
) -> Result<(Option<dump::precopy::Precopy>, String), WorkError> {
    use dump::precopy::{Precopy, available};
    if !available() {
        return Ok((
            None,
            "copied in one freeze (this kernel cannot tell which pages a running process \
             writes: userfaultfd asynchronous write-protection, Linux 6.7)"
                .to_owned(),
        ));
    }
    let mut frozen = Frozen::freeze(&state.registry, state.lsm_guard, pid)?;
    let started = Precopy::start(&mut frozen);
    settle_timers(&mut frozen);
    frozen.release();
    let mut precopy = match started {
        Ok(p) => p,
        Err(e) => {
            log::info!("pid {pid}: not pre-copied: {e}");
            return Ok((None, format!("copied in one freeze (not pre-copied: {e})")));
        }
    };
    progress(format!(
        "pid {pid}: pre-copying {:.1} MiB of private memory while it runs",
        precopy.tracked_bytes() as f64 / (1 << 20) as f64
    ));
    if let Err(e) = precopy.run(image, progress) {
        log::warn!("pid {pid}: pre-copy given up: {e}");
        return Ok((
            None,
            format!("copied in one freeze (the pre-copy was given up: {e})"),
        ));
    }
    Ok((Some(precopy), String::new()))
}

/// Before a frozen process is let go to run on: its periodic timers whose
/// signal it ignores get back the overrun count the freeze made them
/// queue (`state::timers::settle_frozen`). A failure is logged: the
/// process goes on all the same.
fn settle_timers(frozen: &mut Frozen<'_>) {
    if let Err(e) = crate::state::timers::settle_frozen(frozen)
        && !crate::procfs::exiting(frozen.pid())
    {
        log::warn!(
            "pid {}: a periodic timer whose signal it ignores may count the freeze as overruns: \
             {e}",
            frozen.pid()
        );
    }
}

/// What is refused before anything is frozen, in this order: what a held
/// process cannot keep (held), process-wide state an image cannot hold (not
/// held), files a resume could not give back (neither held nor dropping
/// them), what confines it (not held). Held for a move (`portable`: the
/// image is to resume elsewhere), what an image cannot hold is refused
/// too. Returns what only a held process keeps of the last (it goes in the
/// image as held only).
fn refusals(args: &SuspendArgs, skip_fd: Option<i32>) -> Result<Vec<String>, TakeError> {
    let pid = args.pid;
    // Whether the image alone must carry the process.
    let image_alone = !args.hold || args.portable;
    // What cannot be held.
    if args.hold {
        let refused = crate::hold::refusals(pid).map_err(TakeError::HoldRefusals)?;
        if !refused.is_empty() {
            return Err(TakeError::Unholdable { pid, refused });
        }
    }

    // Nor process-wide state an image cannot hold (timers, locked memory,
    // children): a held process keeps it.
    if image_alone {
        let state = dump::unrestorable_state(pid, args.new_session);
        if !state.is_empty() {
            return Err(if args.portable {
                TakeError::Unmovable { pid, what: state }
            } else {
                TakeError::ProcessState { pid, state }
            });
        }
    }

    // Its files, listed once for the two checks below that read them.
    let files = if (!args.drop_unsupported_fds && image_alone) || !args.carry.is_empty() {
        dump::list_files(pid, skip_fd).map_err(TakeError::ListFiles)?
    } else {
        Vec::new()
    };

    // Nor what cannot be saved (a held process keeps it: the image records
    // it as held only).
    if !args.drop_unsupported_fds && image_alone {
        let bad = dump::unrestorable(pid, &files)
            .into_iter()
            .chain(dump::unlinked_over_cap(&files, args.unlinked_max))
            .map(|(_, what)| what)
            .collect::<Vec<_>>();
        if !bad.is_empty() {
            return Err(if args.portable {
                let what = vec![format!(
                    "files a resume could not give back: {}",
                    bad.join(", ")
                )];
                TakeError::Unmovable { pid, what }
            } else {
                TakeError::Files { pid, files: bad }
            });
        }
    }

    // Nor a file to carry that it does not have open, or more bytes than
    // the image may carry.
    if !args.carry.is_empty() {
        let mut files = files;
        let mut why = crate::state::carried::choose(&mut files, &args.carry)
            .err()
            .unwrap_or_default();
        let carried = crate::state::carried::bytes(&files);
        let deleted = crate::state::unlinked::bytes(&files);
        if why.is_empty() && carried + deleted > args.unlinked_max {
            why.push(format!(
                "the files to carry take {carried} bytes (and its deleted files {deleted}), more \
                 than --unlinked-max {}",
                args.unlinked_max
            ));
        }
        if !why.is_empty() {
            return Err(TakeError::Carry { pid, why });
        }
    }

    // Nor what confines it that an image cannot hold (seccomp).
    let refused = crate::state::confinement::refusals(pid)
        .map_err(|source| TakeError::Confinement { pid, source })?;
    if refused.is_empty() {
        Ok(Vec::new())
    } else if !image_alone {
        Ok(refused)
    } else {
        Err(TakeError::Confined { pid, refused })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aborted(error: TakeError, ran: bool) -> Aborted {
        Aborted {
            error: Box::new(error),
            told: OnResume {
                reason: "aborted",
                ran,
            },
        }
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn refusals_before_the_freeze_are_unsupported_and_say_nothing_was_frozen() {
        let cases = [
            (
                TakeError::Unholdable {
                    pid: 7,
                    refused: strings(&["io_uring", "a vfork child"]),
                },
                "pid 7 cannot be held: io_uring; a vfork child; nothing was frozen; \
                 on_resume(aborted) ran",
            ),
            (
                TakeError::ProcessState {
                    pid: 7,
                    state: strings(&["children (pid 8)", "locked memory"]),
                },
                "pid 7: an image cannot hold its children (pid 8); locked memory; nothing was \
                 frozen (--hold keeps them); on_resume(aborted) ran",
            ),
            (
                TakeError::Files {
                    pid: 7,
                    files: strings(&["fd 3 (socket)", "fd 4 (fifo)"]),
                },
                "pid 7 holds files a resume could not give back: fd 3 (socket), fd 4 (fifo); \
                 nothing was frozen (--hold keeps them; --drop-unsupported-fds leaves them out); \
                 on_resume(aborted) ran",
            ),
            (
                TakeError::Confined {
                    pid: 7,
                    refused: strings(&["seccomp strict mode"]),
                },
                "pid 7: seccomp strict mode; nothing was frozen; on_resume(aborted) ran",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.outcome(), Outcome::Unsupported, "{error}");
            assert_eq!(aborted(error, true).to_string(), message);
        }
    }

    #[test]
    fn failing_to_look_before_the_freeze_is_an_error() {
        let gone = || ProcError::Gone { pid: 7 };
        let cases = [
            (
                TakeError::NoImageDir { pid: 7 },
                "pid 7: no image directory; let go, on_resume(aborted) did not report back",
            ),
            (
                TakeError::HoldRefusals(HoldError::Proc {
                    pid: 7,
                    what: "no maps".into(),
                }),
                "pid 7: no maps; on_resume(aborted) did not report back",
            ),
            (
                TakeError::ListFiles(DumpError::Parse {
                    pid: 7,
                    what: "fdinfo",
                }),
                "pid 7: cannot parse fdinfo; on_resume(aborted) did not report back",
            ),
            (
                TakeError::Confinement {
                    pid: 7,
                    source: gone(),
                },
                "pid 7: pid 7: no such process; on_resume(aborted) did not report back",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.outcome(), Outcome::Error, "{error}");
            assert_eq!(aborted(error, false).to_string(), message);
        }
    }

    #[test]
    fn what_is_found_once_frozen_and_cannot_be_kept_is_unsupported() {
        let failed = |source| TakeError::Failed { pid: 7, source };
        let unsupported = [
            WorkError::Dump(DumpError::Unsupported {
                pid: 7,
                fds: strings(&["fd 5 (socket)"]),
            }),
            WorkError::Dump(DumpError::Confined {
                pid: 7,
                what: "a seccomp filter".into(),
            }),
            WorkError::Hold(HoldError::Refused {
                pid: 7,
                what: "a filter denies pause".into(),
            }),
        ];
        for source in unsupported {
            assert_eq!(source.outcome(), Outcome::Unsupported, "{source}");
            assert_eq!(failed(source).outcome(), Outcome::Unsupported);
        }
        let errors = [
            WorkError::Freeze(FreezeError::Exited { pid: 7 }),
            WorkError::Dump(DumpError::Parse {
                pid: 7,
                what: "maps",
            }),
            WorkError::Kill(io::Error::from_raw_os_error(libc::ESRCH)),
            WorkError::Hold(HoldError::NotHeld {
                pid: 7,
                why: "x".into(),
            }),
        ];
        for source in errors {
            assert_eq!(source.outcome(), Outcome::Error, "{source}");
            assert_eq!(failed(source).outcome(), Outcome::Error);
        }
    }

    #[test]
    fn a_failure_once_begun_says_the_process_was_let_go() {
        let failed = |source| aborted(TakeError::Failed { pid: 7, source }, true).to_string();
        assert_eq!(
            failed(WorkError::Freeze(FreezeError::Exited { pid: 7 })),
            "pid 7: suspend failed: pid 7 exited while it was being frozen; the process was let \
             go, on_resume(aborted) ran"
        );
        assert_eq!(
            failed(WorkError::Dump(DumpError::Unsupported {
                pid: 7,
                fds: strings(&["fd 5 (socket)"]),
            })),
            "pid 7: suspend failed: pid 7 holds files a resume could not give back: fd 5 \
             (socket); the process was let go, on_resume(aborted) ran"
        );
        assert_eq!(
            failed(WorkError::Kill(io::Error::from_raw_os_error(libc::EPERM))),
            "pid 7: suspend failed: the image is written but killing the process failed: \
             Operation not permitted (os error 1); the process was let go, on_resume(aborted) ran"
        );
        assert_eq!(
            failed(WorkError::Hold(HoldError::Refused {
                pid: 7,
                what: "a filter denies pause".into(),
            })),
            "pid 7: suspend failed: holding it failed (its image was removed): pid 7 cannot be \
             held: a filter denies pause; the process was let go, on_resume(aborted) ran"
        );
    }

    /// What a panic on the dump thread left, and the request's message.
    fn panicked(left: AfterPanic, ran: bool) -> (Outcome, String) {
        let error = TakeError::Failed {
            pid: 7,
            source: WorkError::Panicked {
                message: "boom".into(),
                left,
            },
        };
        (error.outcome(), aborted(error, ran).to_string())
    }

    #[test]
    fn a_panicked_dump_thread_says_what_it_left_behind() {
        let image = || PathBuf::from("/img/7");
        let cases = [
            (
                AfterPanic::BeforeFreeze,
                true,
                "pid 7: suspend failed: the dump thread panicked (boom) before the freeze: \
                 nothing was frozen, no image was written; the process was let go, \
                 on_resume(aborted) ran",
            ),
            (
                AfterPanic::NoImage,
                true,
                "pid 7: suspend failed: the dump thread panicked (boom): the image was not \
                 completed (nothing of it was kept); the process was let go, on_resume(aborted) \
                 ran",
            ),
            (
                AfterPanic::NotKilled { image: image() },
                true,
                "pid 7: suspend failed: the dump thread panicked (boom) once its image in /img/7 \
                 was complete, before the process was killed; the process was let go, \
                 on_resume(aborted) ran",
            ),
            (
                AfterPanic::Killed { image: image() },
                false,
                "pid 7: suspend failed: the dump thread panicked (boom) once its image in /img/7 \
                 was complete; the process was killed; on_resume(aborted) did not report back",
            ),
            (
                AfterPanic::Held {
                    pid: 7,
                    image: image(),
                },
                false,
                "pid 7: suspend failed: the dump thread panicked (boom) while holding the \
                 process, its image in /img/7 complete: it is held (its hold perhaps cut short); \
                 `suspend-agent resume 7` lets it go on; on_resume(aborted) did not report back",
            ),
            (
                AfterPanic::NotHeld {
                    image: image(),
                    removed: true,
                },
                true,
                "pid 7: suspend failed: the dump thread panicked (boom) before the process was \
                 held; its image in /img/7 was removed; the process was let go, \
                 on_resume(aborted) ran",
            ),
            (
                AfterPanic::NotHeld {
                    image: image(),
                    removed: false,
                },
                true,
                "pid 7: suspend failed: the dump thread panicked (boom) before the process was \
                 held; its image in /img/7 could not be removed: do not resume it; the process \
                 was let go, on_resume(aborted) ran",
            ),
        ];
        for (left, ran, message) in cases {
            assert_eq!(panicked(left, ran), (Outcome::Error, message.to_owned()));
        }
    }

    #[test]
    fn what_a_panic_left_is_found_from_how_far_the_thread_got() {
        let dir = std::env::temp_dir().join(format!("suspend-panic-{}", std::process::id()));
        let find = |stage, hold, held: bool, alive: bool| {
            AfterPanic::find(stage, hold, 7, &dir, || held, || alive)
        };
        for hold in [false, true] {
            assert_eq!(
                find(Stage::Preparing, hold, false, true),
                AfterPanic::BeforeFreeze
            );
            assert_eq!(find(Stage::Dumping, hold, false, true), AfterPanic::NoImage);
        }
        let image = dir.clone();
        assert_eq!(
            find(Stage::Finishing, false, false, true),
            AfterPanic::NotKilled {
                image: image.clone()
            }
        );
        assert_eq!(
            find(Stage::Finishing, false, false, false),
            AfterPanic::Killed {
                image: image.clone()
            }
        );

        // Held: its image stays. Not held: it went on, its image goes.
        fs::create_dir_all(dir.join("sub")).unwrap();
        assert_eq!(
            find(Stage::Finishing, true, true, true),
            AfterPanic::Held {
                pid: 7,
                image: image.clone()
            }
        );
        assert!(dir.exists());
        assert_eq!(
            find(Stage::Finishing, true, false, true),
            AfterPanic::NotHeld {
                image: image.clone(),
                removed: true
            }
        );
        assert!(!dir.exists());
        assert_eq!(
            find(Stage::Finishing, true, false, true),
            AfterPanic::NotHeld {
                image,
                removed: false
            }
        );
    }

    #[test]
    fn a_panics_message_is_its_payload() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let message = |f: fn()| {
            let e = rt
                .block_on(async { tokio::task::spawn_blocking(f).await })
                .expect_err("it panics");
            panic_message(e)
        };
        assert_eq!(message(|| panic!("boom")), "boom");
        assert_eq!(message(|| panic!("pid {}", 7)), "pid 7");
        assert_eq!(message(|| std::panic::panic_any(7u32)), "no message");
    }

    #[test]
    fn the_take_error_is_the_source() {
        use std::error::Error as _;
        let a = aborted(TakeError::NoImageDir { pid: 7 }, true);
        assert_eq!(
            a.source().map(|e| e.to_string()).as_deref(),
            Some("pid 7: no image directory")
        );
        assert_eq!(a.outcome(), Outcome::Error);
    }
}
