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
    handshake::{Progress, SuspendArgs, tell},
};
use crate::{
    control::Outcome,
    dump::{self, DumpError, DumpOptions, Summary},
    freeze::{FreezeError, Frozen},
    image::{ImageWriter, sign::Keys},
    sys::PidFd,
};

#[derive(Debug, thiserror::Error)]
enum TakeError {
    #[error(transparent)]
    Freeze(#[from] FreezeError),
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error("the image is written but killing the process failed: {0}")]
    Kill(#[source] io::Error),
    #[error("holding it failed (its image was removed): {0}")]
    Hold(#[source] crate::hold::HoldError),
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
) -> (Outcome, String) {
    let ready_at = Instant::now();
    let pid = args.pid;
    let Some(dir) = args.dir.clone() else {
        let told = tell(stream, request_id, REASON_ABORTED).await;
        return (
            Outcome::Error,
            format!("pid {pid}: no image directory; let go, {told}"),
        );
    };
    let skip_fd = Some(client_fd as i32);

    // What cannot be held is refused before anything is frozen.
    if args.hold {
        let refusal = match crate::hold::refusals(pid) {
            Ok(refused) if refused.is_empty() => None,
            Ok(refused) => Some((
                Outcome::Unsupported,
                format!(
                    "pid {pid} cannot be held: {}; nothing was frozen",
                    refused.join("; ")
                ),
            )),
            Err(e) => Some((Outcome::Error, e.to_string())),
        };
        if let Some((outcome, message)) = refusal {
            let told = tell(stream, request_id, REASON_ABORTED).await;
            return (outcome, format!("{message}; {told}"));
        }
    }

    // Nor process-wide state an image cannot hold (timers, locked memory,
    // children): a held process keeps it.
    if !args.hold {
        let state = dump::unrestorable_state(pid, args.new_session);
        if !state.is_empty() {
            let told = tell(stream, request_id, REASON_ABORTED).await;
            return (
                Outcome::Unsupported,
                format!(
                    "pid {pid}: an image cannot hold its {}; nothing was frozen (--hold keeps \
                     them); {told}",
                    state.join("; "),
                ),
            );
        }
    }

    // What cannot be saved is refused before anything is frozen (a held
    // process keeps it: the image records it as held only).
    if !args.drop_unsupported_fds && !args.hold {
        let bad = dump::list_files(pid, skip_fd).map(|files| {
            dump::unrestorable(pid, &files)
                .into_iter()
                .chain(dump::unlinked_over_cap(&files, args.unlinked_max))
                .map(|(_, what)| what)
                .collect::<Vec<_>>()
        });
        let refusal = match bad {
            Ok(bad) if bad.is_empty() => None,
            Ok(bad) => Some((
                Outcome::Unsupported,
                format!(
                    "pid {pid} holds files a resume could not give back: {}; nothing was frozen \
                     (--hold keeps them; --drop-unsupported-fds leaves them out)",
                    bad.join(", ")
                ),
            )),
            Err(e) => Some((Outcome::Error, e.to_string())),
        };
        if let Some((outcome, message)) = refusal {
            let told = tell(stream, request_id, REASON_ABORTED).await;
            return (outcome, format!("{message}; {told}"));
        }
    }

    // Nor what confines it that an image cannot hold (seccomp).
    let mut held_only = Vec::new();
    let confined = match dump::confinement::refusals(pid) {
        Ok(refused) if refused.is_empty() => None,
        Ok(refused) if args.hold => {
            held_only = refused;
            None
        }
        Ok(refused) => Some((
            Outcome::Unsupported,
            format!("pid {pid}: {}; nothing was frozen", refused.join("; ")),
        )),
        Err(e) => Some((Outcome::Error, format!("pid {pid}: {e}"))),
    };
    if let Some((outcome, message)) = confined {
        let told = tell(stream, request_id, REASON_ABORTED).await;
        return (outcome, format!("{message}; {told}"));
    }

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
    let work = tokio::task::spawn_blocking(move || -> Result<Taken, TakeError> {
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
                    return Err(TakeError::Hold(e));
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
        frozen.kill(&pidfd).map_err(TakeError::Kill)?;
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
        Err(e) => Err(TakeError::Kill(io::Error::other(format!(
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
                (
                    Outcome::Done,
                    format!(
                        "pid {pid} held, image in {}: {what}; its threads are parked, resident \
                         memory {} -> {} (parked in {}){kept}{only}; `suspend-agent resume {}` \
                         brings it back",
                        summary.path.display(),
                        mib(r.resident_before),
                        mib(r.resident_after),
                        took(parked.took),
                        summary.path.display()
                    ),
                )
            } else if matches!(end, End::Killed) {
                (
                    Outcome::Done,
                    format!(
                        "pid {pid} suspended to {}: {what}; the process was killed",
                        summary.path.display()
                    ),
                )
            } else {
                let told = tell(stream, request_id, REASON_CONTINUED).await;
                (
                    Outcome::Done,
                    format!(
                        "pid {pid} saved to {}: {what}; left running, {told}",
                        summary.path.display(),
                    ),
                )
            }
        }
        Err(e) => {
            let outcome = match e {
                TakeError::Dump(DumpError::Unsupported { .. } | DumpError::Confined { .. })
                | TakeError::Hold(crate::hold::HoldError::Refused { .. }) => Outcome::Unsupported,
                _ => Outcome::Error,
            };
            let told = tell(stream, request_id, REASON_ABORTED).await;
            (
                outcome,
                format!("pid {pid}: suspend failed: {e}; the process was let go, {told}"),
            )
        }
    }
}
