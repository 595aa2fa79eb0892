//! After `ready` (steps 4–7 of the "Suspend" flow): refuse what an image
//! cannot hold, freeze, dump, and then kill the process (its image is
//! durable) or let it go. Any failure lets it go and tells it `aborted`:
//! a failed suspend never loses the process.

use std::{
    io,
    sync::Arc,
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
    hold::HoldError,
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
    /// Listing its files failed.
    #[error(transparent)]
    ListFiles(DumpError),
    /// Not held: what confines it that an image cannot hold (seccomp).
    #[error("pid {pid}: {}; nothing was frozen", .refused.join("; "))]
    Confined { pid: u32, refused: Vec<String> },
    /// Reading what confines it failed.
    #[error("pid {pid}: {source}")]
    Confinement { pid: u32, source: ProcError },
    /// Making its image, freezing, dumping or finishing failed.
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
            Self::Failed { .. } => "; the process was let go, ",
            // Refused before the freeze: the message says nothing was
            // frozen.
            Self::Unholdable { .. }
            | Self::HoldRefusals(_)
            | Self::ProcessState { .. }
            | Self::Files { .. }
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
}

impl WorkError {
    /// How the request ends: what was found once frozen that an image or a
    /// held process cannot keep is `Unsupported`, the rest `Error`.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Dump(DumpError::Unsupported { .. } | DumpError::Confined { .. })
            | Self::Hold(HoldError::Refused { .. }) => Outcome::Unsupported,
            Self::Freeze(_) | Self::Dump(_) | Self::Kill(_) | Self::Hold(_) => Outcome::Error,
        }
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
    LeftRunning,
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
        held: args.hold,
        held_only,
        new_session: args.new_session,
        unlinked_max: args.unlinked_max,
        write_through: !args.leave_running,
    };
    let leave_running = args.leave_running;
    let hold = args.hold;
    let state = state.clone();
    let report = progress.clone();
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
        let dumped = dump::dump(&mut frozen, image, &options, &|m| {
            let _ = report.send(m);
        })?;
        if leave_running {
            // Everything is copied: the process may run while the image is
            // made durable (a failure then still tells it `aborted`).
            frozen.release();
            let frozen_for = frozen_at.elapsed();
            let summary = dumped.finish(&key)?;
            return Ok(Taken {
                summary,
                frozen_for,
                durable_after: ready_at.elapsed(),
                end: End::LeftRunning,
            });
        }
        if hold {
            // Parked and its memory released only once the image is
            // durable.
            let held_only = dumped.held_only.clone();
            let summary = dumped.finish(&key)?;
            let durable_after = ready_at.elapsed();
            let parked = match crate::hold::park(&mut frozen, &summary.path, held_only) {
                Ok(parked) => parked,
                Err(e) => {
                    // Still frozen as it was: it goes on, and the image of
                    // a process that went on must not be resumed.
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
        let durable_after = ready_at.elapsed();
        frozen.kill(&pidfd).map_err(WorkError::Kill)?;
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
        Err(e) => Err(WorkError::Kill(io::Error::other(format!(
            "the dump thread failed: {e}"
        )))),
    };
    match result {
        Ok(Taken {
            summary,
            frozen_for,
            durable_after,
            end,
        }) => {
            let what = format!(
                "{} thread(s), {} mappings, {} pages ({}) in {}; frozen for {}; image durable \
                 {} after ready",
                summary.threads,
                summary.mappings,
                summary.pages,
                mib(summary.bytes),
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
                let told = tell(stream, request_id, REASON_CONTINUED).await;
                Ok(Done {
                    message: format!(
                        "pid {pid} saved to {}: {what}; left running, {told}",
                        summary.path.display(),
                    ),
                })
            }
        }
        Err(source) => Err(abort(stream, request_id, TakeError::Failed { pid, source }).await),
    }
}

/// What is refused before anything is frozen, in this order: what a held
/// process cannot keep (held), process-wide state an image cannot hold (not
/// held), files a resume could not give back (neither held nor dropping
/// them), what confines it (not held). Returns what only a held process
/// keeps of the last (it goes in the image as held only).
fn refusals(args: &SuspendArgs, skip_fd: Option<i32>) -> Result<Vec<String>, TakeError> {
    let pid = args.pid;
    // What cannot be held.
    if args.hold {
        let refused = crate::hold::refusals(pid).map_err(TakeError::HoldRefusals)?;
        if !refused.is_empty() {
            return Err(TakeError::Unholdable { pid, refused });
        }
    }

    // Nor process-wide state an image cannot hold (timers, locked memory,
    // children): a held process keeps it.
    if !args.hold {
        let state = dump::unrestorable_state(pid, args.new_session);
        if !state.is_empty() {
            return Err(TakeError::ProcessState { pid, state });
        }
    }

    // Nor what cannot be saved (a held process keeps it: the image records
    // it as held only).
    if !args.drop_unsupported_fds && !args.hold {
        let files = dump::list_files(pid, skip_fd).map_err(TakeError::ListFiles)?;
        let bad = dump::unrestorable(pid, &files)
            .into_iter()
            .chain(dump::unlinked_over_cap(&files, args.unlinked_max))
            .map(|(_, what)| what)
            .collect::<Vec<_>>();
        if !bad.is_empty() {
            return Err(TakeError::Files { pid, files: bad });
        }
    }

    // Nor what confines it that an image cannot hold (seccomp).
    let refused = dump::confinement::refusals(pid)
        .map_err(|source| TakeError::Confinement { pid, source })?;
    if refused.is_empty() {
        Ok(Vec::new())
    } else if args.hold {
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
            failed(WorkError::Kill(io::Error::other(
                "the dump thread failed: boom"
            ))),
            "pid 7: suspend failed: the image is written but killing the process failed: the \
             dump thread failed: boom; the process was let go, on_resume(aborted) ran"
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
