//! Resume: a process brought back from its image, exactly where it was.
//!
//! 1. [`validate`]: the whole image is checked before anything is created
//!    (its signature, checksums and version, who owns its directory, its
//!    pids, this CPU and kernel); a bad image is refused with what is
//!    wrong.
//! 2. [`open`]: every file it needs is opened as the process, without
//!    following symbolic links, and checked on its descriptor.
//! 3. [`plan`]: where everything goes — a zone of addresses free both here
//!    and in the image holds the restorer stub, its argument block, its
//!    stacks, and every mapping's contents, read in and checked by
//!    [`load`] before the process exists.
//! 4. [`child`]: the process is created with its own pid (`clone3`
//!    `set_tid`), gets its files, cwd, limits and prepared memory, and
//!    jumps into the stub, which lays the memory out and creates the threads
//!    (see `suspend-restorer`).
//! 5. [`finish`]: once the stub reports that every thread waits, the agent
//!    seizes them, unmaps the zone, sets every thread's registers, xstate
//!    and signal mask, queues the resume signal for the parked client
//!    thread and lets them go.
//!
//! Any failure before the last step kills what was created: nothing
//! half-made is left behind.

mod child;
mod finish;
mod load;
mod open;
mod plan;
mod validate;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    exit,
    image::{
        Image,
        reader::ReadError,
        sign::{KeyError, Keys},
    },
};

pub use validate::Refusal;

/// The restorer stub, built and checked by `build.rs`.
pub static RESTORER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/restorer.bin"));

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The image cannot be read: damaged, truncated, another version.
    #[error("{0}")]
    Read(#[from] ReadError),
    /// The image is sound but cannot be resumed here (yet).
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// This machine's keys cannot be read.
    #[error("the image keys: {0}")]
    Keys(#[from] KeyError),
    /// Preparing failed before the process was created.
    #[error("{what}: {source}")]
    Prepare {
        what: String,
        source: std::io::Error,
    },
    /// A call of `sys/` failed (it names itself) while preparing, before
    /// the process was created (or as it was: `clone3`).
    #[error("{what}: {source}")]
    PrepareCall {
        what: String,
        source: crate::sys::SyscallError,
    },
    /// The process was created and failed to come back; it was killed.
    #[error("pid {pid}: restore failed while {step}: {detail}; the half-made process was killed")]
    Failed {
        pid: u32,
        step: String,
        detail: String,
    },
}

impl RestoreError {
    /// The exit code of a `resume` that failed with it: a refused image is
    /// 9, or 10 when a pid it needs is in use (nothing was created either
    /// way); the rest is 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Refused(Refusal::PidInUse { .. }) => exit::PID_IN_USE,
            Self::Read(_) | Self::Refused(_) => exit::BAD_IMAGE,
            Self::Keys(_)
            | Self::Prepare { .. }
            | Self::PrepareCall { .. }
            | Self::Failed { .. } => exit::ERROR,
        }
    }
}

/// The image of a held process cannot serve its refill (read and checked
/// by [`read_for_refill`]): it stays held.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HeldImageRefused(pub RestoreError);

impl HeldImageRefused {
    /// The exit code of a `resume` of a held process (or of its refill)
    /// that failed with it: as a resume from the image would, 9 for an
    /// image refused, 1 when this machine's keys cannot be read — no fault
    /// of the image, which exit 9 would tell a script to give up on.
    pub fn exit_code(&self) -> u8 {
        self.0.exit_code()
    }
}

/// Where stdin, stdout and stderr of the resumed process come from.
#[derive(Debug, Default)]
pub struct Stdio {
    /// `None`: the resume command's own.
    pub files: [Option<PathBuf>; 3],
}

#[derive(Debug, Default)]
pub struct Options {
    pub stdio: Stdio,
    /// Test hook (`SUSPEND_FAULT_SKIP_VDSO=1`): leave the vDSO where the
    /// restore child has it. The restore must then fail its workloads.
    pub skip_vdso: bool,
    /// Test hook (`SUSPEND_FAULT_VDSO_PROXY=1`): stand in for the image's
    /// vDSO with a proxy even where this kernel's is the same
    /// (`state::vdso`), so that the process runs through its jumps.
    pub vdso_proxy: bool,
    /// Test hook (`SUSPEND_FAULT_VDSO_HIDE=NAME,…`): stand in for the
    /// image's vDSO with a proxy in which these functions (and their
    /// aliases) are hidden, as if this kernel lacked them and nothing
    /// stood in for them (`state::vdso::Entry::Hidden`): what a resume on
    /// an older kernel does, on this one.
    pub vdso_hide: Vec<String>,
}

/// What a resume did.
#[derive(Debug)]
pub struct Resumed {
    pub pid: u32,
    pub threads: usize,
    pub mappings: usize,
    pub pages: u64,
    /// Whether a parked client was told it was restored.
    pub told_client: bool,
    pub took: Duration,
}

/// Reads and checks the image in `dir` for a held process's refill: its
/// signature and records (pages are checked as they are written back),
/// and who owns its directory.
pub fn read_for_refill(dir: &Path) -> Result<Image, HeldImageRefused> {
    let read = || -> Result<Image, RestoreError> {
        let trusted = Keys::system()?.trusted()?;
        let image = Image::read(dir, false, &trusted)?;
        validate::directory(&image)?;
        Ok(image)
    };
    read().map_err(HeldImageRefused)
}

/// Resumes the image in `dir`.
pub fn resume(dir: &Path, options: &Options) -> Result<Resumed, RestoreError> {
    let started = Instant::now();
    // Page checksums are verified as the pages are read in (`load`),
    // still before anything is created.
    let trusted = Keys::system()?.trusted()?;
    let image = Image::read(dir, false, &trusted)?;
    validate::directory(&image)?;
    validate::image(&image)?;
    let vdso = validate::vdso(&image, options.vdso_proxy, &options.vdso_hide)?;
    let mut opened = open::all(&image, options)?;
    let placed = std::mem::take(&mut opened.placed);
    let created = create(&image, options, opened, &vdso);
    if created.is_err() {
        placed.undo();
    }
    let (pid, told_client) = created?;
    Ok(Resumed {
        pid,
        threads: image.threads.len(),
        mappings: image.mappings.len(),
        pages: image.saved_pages(),
        told_client,
        took: started.elapsed(),
    })
}

/// [`resume`], once every file is open: the process made, its pid and
/// whether its client was told.
fn create(
    image: &Image,
    options: &Options,
    opened: open::Opened,
    vdso: &validate::Vdso,
) -> Result<(u32, bool), RestoreError> {
    // Into its cgroups before its memory is loaded (here, inherited by the
    // process made): a page is charged to the cgroup of whoever first
    // touches it, and stays charged there.
    let cgroups = crate::state::cgroup::targets(image).map_err(Refusal::from)?;
    crate::state::cgroup::join(std::process::id(), &cgroups).map_err(|e| {
        RestoreError::Prepare {
            what: "joining the process's cgroups".into(),
            source: std::io::Error::other(e),
        }
    })?;
    let mut plan = plan::Plan::new(image, options, opened, vdso)?;
    let pid = image.process.pid;
    let created = child::spawn(image, &mut plan)?;
    let told_client = finish::take_over(image, &plan, created)?;
    Ok((pid, told_client))
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    /// Every variant, the exit code of a `resume` that fails with it, and
    /// its message.
    fn every_error() -> Vec<(RestoreError, u8, &'static str)> {
        use RestoreError as E;
        vec![
            (
                E::Read(ReadError::Checksum {
                    path: "/img/meta.jsonl".into(),
                    line: 3,
                }),
                exit::BAD_IMAGE,
                "/img/meta.jsonl:3: checksum mismatch (the record was changed or damaged)",
            ),
            (
                E::Refused(Refusal::PidInUse {
                    pid: 7,
                    by: "sleep".into(),
                    what: "thread",
                }),
                exit::PID_IN_USE,
                "pid 7 is in use (by sleep); the image's thread needs it",
            ),
            (
                E::Refused(Refusal::NoThreads),
                exit::BAD_IMAGE,
                "the image has no threads",
            ),
            (
                E::Refused(Refusal::CpuVendor {
                    image: "AuthenticAMD".into(),
                    here: "GenuineIntel".into(),
                }),
                exit::BAD_IMAGE,
                "the image's CPU vendor is AuthenticAMD, this one is GenuineIntel",
            ),
            (
                E::Refused(Refusal::File(crate::state::files::Conflict::OpenLeased {
                    what: "mapped file",
                    path: "/srv/data".into(),
                    pid: 42,
                    whose: "a write lease",
                    how: "for reading",
                })),
                exit::BAD_IMAGE,
                "its mapped file /srv/data: pid 42 holds a write lease on it, which opening the \
                 file for reading to resume would start breaking; resume it once that is let go",
            ),
            (
                E::Refused(Refusal::Lock(crate::state::locks::Conflict::LockTaken {
                    what: "a write lock on /srv/db".into(),
                    holder: "pid 42 (postgres)".into(),
                })),
                exit::BAD_IMAGE,
                "it held a write lock on /srv/db, which pid 42 (postgres) holds now; resume it \
                 once that is let go",
            ),
            (
                E::Refused(Refusal::Timer(crate::state::timers::Conflict { id: 5000 })),
                exit::BAD_IMAGE,
                "the process had POSIX timer id 5000, which this kernel cannot give back (it \
                 cannot be told a timer's id (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15))",
            ),
            (
                E::Refused(Refusal::Capabilities(crate::state::confinement::Conflict {
                    tid: 7,
                    which: "permitted",
                    missing: 0x20_0000,
                })),
                exit::BAD_IMAGE,
                "thread 7 had capabilities this agent cannot give (mask 0x200000 of its permitted \
                 set is not in the agent's own sets)",
            ),
            (
                E::Refused(Refusal::Cgroup(
                    crate::state::cgroup::Conflict::CgroupFull {
                        cgroup: "0::/work".into(),
                        dir: "/sys/fs/cgroup/work".into(),
                        current: 30,
                        max: 32,
                        tasks: 3,
                    },
                )),
                exit::BAD_IMAGE,
                "its cgroup 0::/work has no room: /sys/fs/cgroup/work holds 30 tasks of its \
                 pids.max 32, and the resume needs 3 more there (the process's threads, and the \
                 resume command's own unless it is there already); raise pids.max or resume it \
                 later",
            ),
            (
                E::Keys(KeyError::Malformed {
                    path: "/etc/suspend/keys/signing".into(),
                    why: "32 bytes expected".into(),
                }),
                exit::ERROR,
                "the image keys: /etc/suspend/keys/signing: not a key (32 bytes expected)",
            ),
            (
                E::Prepare {
                    what: "reserving the zone".into(),
                    source: io::Error::from_raw_os_error(libc::ENOMEM),
                },
                exit::ERROR,
                "reserving the zone: Cannot allocate memory (os error 12)",
            ),
            (
                E::PrepareCall {
                    what: "reserving 4096 bytes at 0x1000".into(),
                    source: crate::sys::SyscallError::of("mmap")(io::Error::from_raw_os_error(
                        libc::EEXIST,
                    )),
                },
                exit::ERROR,
                "reserving 4096 bytes at 0x1000: mmap: File exists (os error 17)",
            ),
            (
                E::Failed {
                    pid: 7,
                    step: "loading its memory".into(),
                    detail: "a page reader panicked".into(),
                },
                exit::ERROR,
                "pid 7: restore failed while loading its memory: a page reader panicked; the \
                 half-made process was killed",
            ),
        ]
    }

    #[test]
    fn every_restore_error_knows_its_exit_code_and_says_it_as_before() {
        for (error, code, message) in every_error() {
            assert_eq!(error.exit_code(), code, "{error}");
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn a_held_process_whose_image_cannot_be_used_exits_as_a_resume_from_it_would() {
        for (error, code, message) in every_error() {
            let refused = HeldImageRefused(error);
            assert_eq!(refused.exit_code(), code, "{refused}");
            assert_eq!(refused.to_string(), message);
        }
        // This machine's keys unreadable is no fault of the image.
        let keys = HeldImageRefused(RestoreError::Keys(KeyError::Io {
            path: "/etc/suspend/keys".into(),
            source: io::Error::from_raw_os_error(libc::EACCES),
        }));
        assert_eq!(keys.exit_code(), exit::ERROR, "{keys}");
    }
}
