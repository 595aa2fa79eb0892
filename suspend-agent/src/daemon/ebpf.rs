//! Loading the eBPF programs: maps are reused from (or pinned to)
//! `/sys/fs/bpf/suspend/`, so registrations survive an agent restart; each
//! program's link is pinned there too, so the programs keep the registry
//! true while no agent runs. A restarting agent attaches its programs first
//! and only then retires the old pinned links: no event goes unseen.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    programs::{
        Iter, Lsm, ProgramError, TracePoint,
        links::{FdLink, LinkError, PinnedLink},
    },
};
use aya_log::EbpfLogger;
use log::{debug, info, warn};
use suspend_common::{
    freeze::{TASK_LAYOUT_GLOBAL, TaskLayout},
    paths::BPF_PIN_DIR,
    registry::REGISTRY_MAP,
    tasks::{ABSENT, TASK_FACTS_LAYOUT_GLOBAL, TASK_FACTS_PROGRAM, TaskFactsLayout},
    tracepoints::TRACEPOINT_LAYOUT_GLOBAL,
};

use crate::{
    registry::{Registry, RegistryError},
    tasks, tracefs,
};

/// The eBPF object built by `build.rs`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/suspend"));

/// (program, LSM hook) of the freeze guard.
pub const LSM_PROGRAMS: &[(&str, &str)] = &[
    ("suspend_task_kill", "task_kill"),
    ("suspend_ptrace_access", "ptrace_access_check"),
];

/// (program, tracepoint category, tracepoint name).
pub const PROGRAMS: &[(&str, &str, &str)] = &[
    ("suspend_exec", "sched", "sched_process_exec"),
    ("suspend_exit", "sched", "sched_process_exit"),
    ("suspend_sigaction", "syscalls", "sys_enter_rt_sigaction"),
    ("suspend_signal_generate", "signal", "signal_generate"),
    ("suspend_signal_deliver", "signal", "signal_deliver"),
    ("suspend_newtask", "task", "task_newtask"),
    ("suspend_switch", "sched", "sched_switch"),
];

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("creating {path}: {source}")]
    PinDir { path: PathBuf, source: io::Error },
    #[error(
        "{path} is not the daemon's own: {why}; someone else may have made it to take over \
         the pinned programs — remove it as root (or `suspend-agent unload`) and start again"
    )]
    PinDirNotOurs { path: PathBuf, why: String },
    #[error(
        "loading the eBPF object: {0} (if maps pinned by another version are in the way, \
         run `suspend-agent unload` and start again)"
    )]
    Load(#[source] EbpfError),
    #[error("the eBPF object has no program {0}")]
    MissingProgram(&'static str),
    #[error("the eBPF object has no map {0}")]
    MissingMap(&'static str),
    #[error("program {name} ({category}/{tracepoint}): {source}")]
    Program {
        name: &'static str,
        category: &'static str,
        tracepoint: &'static str,
        source: Box<ProgramError>,
    },
    #[error("pinning the link of {name} at {path}: {reason}")]
    Pin {
        name: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// The loaded programs. Holding it keeps the logger alive (dropping it
/// closes the log ring buffer).
pub struct Loaded {
    /// Owns the programs and the maps not taken out of it.
    _ebpf: Ebpf,
    /// Whether the freeze guard (BPF LSM) is on.
    pub lsm_guard: bool,
    pub logger: Option<EbpfLogger<&'static dyn log::Log>>,
}

fn link_pin_path(program: &str) -> PathBuf {
    PathBuf::from(BPF_PIN_DIR).join(format!("link_{program}"))
}

/// Makes the pin directory (root's, 0700), or checks that the one there
/// is root's: a directory a user made before the daemon's first start
/// would hand her its maps and links. One of root's with a wider mode (an
/// older agent's) is narrowed.
fn pin_dir(path: &Path) -> Result<(), LoadError> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(LoadError::PinDir {
                path: path.into(),
                source,
            });
        }
    }
    let not_ours = |why: String| LoadError::PinDirNotOurs {
        path: path.into(),
        why,
    };
    let meta = fs::symlink_metadata(path).map_err(|source| LoadError::PinDir {
        path: path.into(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(not_ours("it is not a directory".into()));
    }
    if meta.uid() != 0 {
        return Err(not_ours(format!("it is owned by uid {}", meta.uid())));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(|source| {
            LoadError::PinDir {
                path: path.into(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Loads, attaches and pins everything; hands back the registry map.
pub fn load() -> Result<(Loaded, Registry), LoadError> {
    pin_dir(Path::new(BPF_PIN_DIR))?;
    let layout = tracefs::read_layout(tracefs::TRACEFS.as_ref());
    let btf = crate::btf::Btf::kernel();
    // The guard reads task_struct.tgid; 0 (not found) keeps it off.
    let task_layout = TaskLayout {
        tgid: btf
            .as_ref()
            .map_err(|e| e.to_string())
            .and_then(|btf| {
                btf.member_offset("task_struct", "tgid")
                    .map_err(|e| e.to_string())
            })
            .unwrap_or_else(|e| {
                warn!("{e}");
                0
            }),
        _pad: 0,
    };
    // The task iterator's offsets; a member not found leaves its fact
    // unknown (then only a frozen process shows it).
    let facts_layout = match &btf {
        Ok(btf) => {
            let (layout, missing) = tasks::layout(btf);
            for what in missing {
                info!(
                    "task iterator: {what}: that fact is checked once frozen only (a session keyring, an io_uring ring: not at all, and refused)"
                );
            }
            layout
        }
        Err(_) => TaskFactsLayout::NONE,
    };
    debug!("tracepoint layout: {layout:?}");
    let mut ebpf = EbpfLoader::new()
        .default_map_pin_directory(BPF_PIN_DIR)
        .override_global(TRACEPOINT_LAYOUT_GLOBAL, &layout, true)
        .override_global(TASK_LAYOUT_GLOBAL, &task_layout, true)
        .override_global(TASK_FACTS_LAYOUT_GLOBAL, &facts_layout, true)
        .load(OBJECT)
        .map_err(LoadError::Load)?;
    let logger = match EbpfLogger::init(&mut ebpf) {
        Ok(logger) => Some(logger),
        Err(e) => {
            warn!("eBPF log messages will not be shown: {e}");
            None
        }
    };
    for &(name, category, tracepoint) in PROGRAMS {
        let program_error = |source| LoadError::Program {
            name,
            category,
            tracepoint,
            source: Box::new(source),
        };
        let program: &mut TracePoint = ebpf
            .program_mut(name)
            .ok_or(LoadError::MissingProgram(name))?
            .try_into()
            .map_err(program_error)?;
        program.load().map_err(program_error)?;
        let id = program
            .attach(category, tracepoint)
            .map_err(program_error)?;
        let link = program.take_link(id).map_err(program_error)?;
        // Tracepoint links are bpf_links (pinnable) on every kernel since 5.15.
        pin_replacing(name, FdLink::try_from(link), "tracepoints (needs 5.15+)")?;
        debug!("attached {name} to {category}/{tracepoint}");
    }
    if let Err(e) = attach_task_facts(&mut ebpf, facts_layout) {
        // Suspends still refuse what it reports, once the process is frozen.
        warn!("task iterator off ({e}): some refusals come only once a process is frozen");
        let _ = PinnedLink::from_pin(tasks::link_path()).map(PinnedLink::unpin);
    }
    let lsm_guard = if task_layout.tgid == 0 {
        info!("freeze guard off: task_struct.tgid not found in the kernel's BTF");
        false
    } else {
        attach_guard(&mut ebpf).unwrap_or_else(|e| {
            // Some kernels list bpf as an LSM but refuse LSM programs (a
            // locked-down kernel may): the freeze works without the guard.
            warn!("freeze guard off: {e}");
            for &(name, _) in LSM_PROGRAMS {
                let _ = PinnedLink::from_pin(link_pin_path(name)).map(PinnedLink::unpin);
            }
            false
        })
    };
    let map = ebpf
        .take_map(REGISTRY_MAP)
        .ok_or(LoadError::MissingMap(REGISTRY_MAP))?;
    let registry = Registry::from_map(map)?;
    info!("eBPF programs attached; maps and links pinned under {BPF_PIN_DIR}");
    Ok((
        Loaded {
            _ebpf: ebpf,
            lsm_guard,
            logger,
        },
        registry,
    ))
}

/// Loads the task iterator and pins its link (reading the pin runs it).
fn attach_task_facts(ebpf: &mut Ebpf, layout: TaskFactsLayout) -> Result<(), String> {
    if layout.pid == ABSENT || layout.tgid == ABSENT {
        return Err("task_struct.pid or .tgid not found in the kernel's BTF".into());
    }
    let btf = aya::Btf::from_sys_fs().map_err(|e| format!("no kernel BTF: {e}"))?;
    let program: &mut Iter = ebpf
        .program_mut(TASK_FACTS_PROGRAM)
        .ok_or_else(|| format!("no program {TASK_FACTS_PROGRAM} in the object"))?
        .try_into()
        .map_err(|e: ProgramError| e.to_string())?;
    program.load("task", &btf).map_err(|e| e.to_string())?;
    let id = program.attach().map_err(|e| e.to_string())?;
    let link = program.take_link(id).map_err(|e| e.to_string())?;
    pin_replacing(
        TASK_FACTS_PROGRAM,
        FdLink::try_from(link),
        "iterators (needs 5.8+)",
    )
    .map_err(|e| e.to_string())?;
    debug!("task iterator pinned at {}", tasks::link_path().display());
    Ok(())
}

/// Pins `link` as `link_<name>`, replacing (and so detaching) the link an
/// earlier agent pinned there. The new program is attached already, so no
/// event goes unseen.
fn pin_replacing(
    name: &'static str,
    link: Result<FdLink, LinkError>,
    kind: &str,
) -> Result<(), LoadError> {
    let path = link_pin_path(name);
    let old = PinnedLink::from_pin(&path).ok();
    let fd_link = link.map_err(|e| LoadError::Pin {
        name,
        path: path.clone(),
        reason: match e {
            LinkError::InvalidLink => format!("this kernel has no bpf_link for {kind}"),
            e => e.to_string(),
        },
    })?;
    if let Some(Err(e)) = old.map(PinnedLink::unpin) {
        warn!("unpinning the old link {}: {e}", path.display());
    }
    fd_link.pin(&path).map(drop).map_err(|e| LoadError::Pin {
        name,
        path: path.clone(),
        reason: e.to_string(),
    })
}

/// The BPF LSM programs of the freeze guard, where `bpf` is an active LSM
/// (`/sys/kernel/security/lsm`). Returns whether the guard is on; when it
/// is off, says why and removes links an earlier agent pinned.
fn attach_guard(ebpf: &mut Ebpf) -> Result<bool, LoadError> {
    let off = |why: String| {
        info!(
            "freeze guard off ({why}): frozen processes are protected by ptrace and the run witness only"
        );
        for &(name, _) in LSM_PROGRAMS {
            let _ = PinnedLink::from_pin(link_pin_path(name)).map(PinnedLink::unpin);
        }
        Ok(false)
    };
    match fs::read_to_string("/sys/kernel/security/lsm") {
        Ok(list) if list.trim().split(',').any(|l| l == "bpf") => {}
        Ok(list) => return off(format!("bpf is not an active LSM: {}", list.trim())),
        Err(e) => return off(format!("/sys/kernel/security/lsm: {e}")),
    }
    let btf = match aya::Btf::from_sys_fs() {
        Ok(btf) => btf,
        Err(e) => return off(format!("no kernel BTF: {e}")),
    };
    for &(name, hook) in LSM_PROGRAMS {
        let program_error = |source| LoadError::Program {
            name,
            category: "lsm",
            tracepoint: hook,
            source: Box::new(source),
        };
        let program: &mut Lsm = ebpf
            .program_mut(name)
            .ok_or(LoadError::MissingProgram(name))?
            .try_into()
            .map_err(program_error)?;
        program.load(hook, &btf).map_err(program_error)?;
        let id = program.attach().map_err(program_error)?;
        let link = program.take_link(id).map_err(program_error)?;
        pin_replacing(name, Ok(FdLink::from(link)), "LSM programs")?;
        debug!("attached {name} to LSM hook {hook}");
    }
    info!(
        "freeze guard on: while frozen, other senders' signals (SIGKILL from root excepted) and tracers are refused"
    );
    Ok(true)
}

/// Whether this kernel takes the freeze guard's LSM programs: `bpf` in the
/// active LSM list is not enough (a kernel locked down to *integrity* lists
/// it and refuses the programs with `EPERM`), so one is loaded, not
/// attached, with the object's maps pinned in a directory of its own that
/// is removed again. `Err` says why not.
pub fn probe_lsm() -> Result<String, String> {
    let list = fs::read_to_string("/sys/kernel/security/lsm")
        .map_err(|e| format!("securityfs not mounted? {e}"))?;
    let list = list.trim().to_owned();
    if !list.split(',').any(|l| l == "bpf") {
        return Err(format!("not in the active list: {list}"));
    }
    if !nix::unistd::geteuid().is_root() {
        return Ok(format!("{list} (listed; run as root to probe a load)"));
    }
    let btf = aya::Btf::from_sys_fs().map_err(|e| format!("no kernel BTF: {e}"))?;
    let dir = PathBuf::from(format!("{BPF_PIN_DIR}-probe-{}", std::process::id()));
    fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = (|| {
        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(&dir)
            .load(OBJECT)
            .map_err(|e| format!("loading the eBPF object: {e}"))?;
        let (name, hook) = LSM_PROGRAMS[0];
        let program: &mut Lsm = ebpf
            .program_mut(name)
            .ok_or_else(|| format!("no program {name}"))?
            .try_into()
            .map_err(|e: ProgramError| e.to_string())?;
        program
            .load(hook, &btf)
            .map_err(|e| format!("listed, but loading an LSM program fails: {e}"))?;
        Ok(format!("{list} (an LSM program loads)"))
    })();
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let _ = fs::remove_file(entry.path());
        }
    }
    let _ = fs::remove_dir(&dir);
    result
}

/// Removes every pinned link and map (`suspend-agent unload`). Returns the
/// paths removed.
pub fn unload() -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let dir = match fs::read_dir(BPF_PIN_DIR) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    for entry in dir {
        let path = entry?.path();
        fs::remove_file(&path)?;
        removed.push(path);
    }
    fs::remove_dir(BPF_PIN_DIR)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use suspend_common::{
        freeze::{FREEZE_ACTIVE_MAP, FREEZE_GUARD_MAP, FROZEN_TASKS_MAP, NEW_THREADS_MAP},
        registry::{REGISTRY_MAP, REPLACED_MAP},
        signals::SIGNALS_MAP,
    };

    use super::*;

    /// Every name the agent looks up exists in the object it embeds.
    #[test]
    fn object_has_every_map_program_and_global() {
        let object = aya_obj::Object::parse(OBJECT).expect("the embedded eBPF object parses");
        for map in [
            REGISTRY_MAP,
            REPLACED_MAP,
            SIGNALS_MAP,
            NEW_THREADS_MAP,
            FROZEN_TASKS_MAP,
            FREEZE_ACTIVE_MAP,
            FREEZE_GUARD_MAP,
        ] {
            assert!(
                object.maps.contains_key(map),
                "no map {map} in the eBPF object"
            );
        }
        let lsm = LSM_PROGRAMS.iter().map(|(p, _)| p);
        let iter = std::iter::once(&TASK_FACTS_PROGRAM);
        for program in PROGRAMS.iter().map(|(p, _, _)| p).chain(lsm).chain(iter) {
            assert!(
                object.programs.contains_key(*program),
                "no program {program} in the eBPF object"
            );
        }
        // Globals are symbols of .rodata; their names are in the string table.
        for global in [
            TRACEPOINT_LAYOUT_GLOBAL,
            TASK_LAYOUT_GLOBAL,
            TASK_FACTS_LAYOUT_GLOBAL,
        ] {
            let name = global.as_bytes();
            assert!(
                OBJECT
                    .windows(name.len() + 1)
                    .any(|w| &w[..name.len()] == name && w[name.len()] == 0),
                "no global {global} in the eBPF object"
            );
        }
    }
}
