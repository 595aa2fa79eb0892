//! Loading the eBPF programs: maps are reused from (or pinned to)
//! `/sys/fs/bpf/suspend/`, so registrations survive an agent restart; each
//! program's link is pinned there too, so the programs keep the registry
//! true while no agent runs. A restarting agent attaches its programs first
//! and only then retires the old pinned links: no event goes unseen.

use std::{fs, io, path::PathBuf};

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    programs::{
        ProgramError, TracePoint,
        links::{FdLink, LinkError, PinnedLink},
    },
};
use aya_log::EbpfLogger;
use log::{debug, info, warn};
use suspend_common::{
    paths::BPF_PIN_DIR, registry::REGISTRY_MAP, tracepoints::TRACEPOINT_LAYOUT_GLOBAL,
};

use crate::{
    registry::{Registry, RegistryError},
    tracefs,
};

/// The eBPF object built by `build.rs`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/suspend"));

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
    pub logger: Option<EbpfLogger<&'static dyn log::Log>>,
}

fn link_pin_path(program: &str) -> PathBuf {
    PathBuf::from(BPF_PIN_DIR).join(format!("link_{program}"))
}

/// Loads, attaches and pins everything; hands back the registry map.
pub fn load() -> Result<(Loaded, Registry), LoadError> {
    fs::create_dir_all(BPF_PIN_DIR).map_err(|source| LoadError::PinDir {
        path: BPF_PIN_DIR.into(),
        source,
    })?;
    let layout = tracefs::read_layout(tracefs::TRACEFS.as_ref());
    debug!("tracepoint layout: {layout:?}");
    let mut ebpf = EbpfLoader::new()
        .default_map_pin_directory(BPF_PIN_DIR)
        .override_global(TRACEPOINT_LAYOUT_GLOBAL, &layout, true)
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
        let path = link_pin_path(name);
        let old = PinnedLink::from_pin(&path).ok();
        // Tracepoint links are bpf_links (pinnable) on every kernel since 5.15.
        let fd_link = FdLink::try_from(link).map_err(|e| LoadError::Pin {
            name,
            path: path.clone(),
            reason: match e {
                LinkError::InvalidLink => {
                    "this kernel has no bpf_link for tracepoints (needs 5.15+)".into()
                }
                e => e.to_string(),
            },
        })?;
        // The new program is attached: retire the old one, then pin.
        if let Some(Err(e)) = old.map(PinnedLink::unpin) {
            warn!("unpinning the old link {}: {e}", path.display());
        }
        fd_link.pin(&path).map_err(|e| LoadError::Pin {
            name,
            path: path.clone(),
            reason: e.to_string(),
        })?;
        debug!("attached {name} to {category}/{tracepoint}");
    }
    let map = ebpf
        .take_map(REGISTRY_MAP)
        .ok_or(LoadError::MissingMap(REGISTRY_MAP))?;
    let registry = Registry::from_map(map)?;
    info!("eBPF programs attached; maps and links pinned under {BPF_PIN_DIR}");
    Ok((
        Loaded {
            _ebpf: ebpf,
            logger,
        },
        registry,
    ))
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
    use suspend_common::{registry::REGISTRY_MAP, signals::SIGNALS_MAP};

    use super::*;

    /// Every name the agent looks up exists in the object it embeds.
    #[test]
    fn object_has_every_map_program_and_global() {
        let object = aya_obj::Object::parse(OBJECT).expect("the embedded eBPF object parses");
        for map in [REGISTRY_MAP, SIGNALS_MAP] {
            assert!(
                object.maps.contains_key(map),
                "no map {map} in the eBPF object"
            );
        }
        for (program, _, _) in PROGRAMS {
            assert!(
                object.programs.contains_key(*program),
                "no program {program} in the eBPF object"
            );
        }
        // The global is a symbol of .rodata; its name is in the string table.
        let name = TRACEPOINT_LAYOUT_GLOBAL.as_bytes();
        assert!(
            OBJECT
                .windows(name.len() + 1)
                .any(|w| &w[..name.len()] == name && w[name.len()] == 0),
            "no global {TRACEPOINT_LAYOUT_GLOBAL} in the eBPF object"
        );
    }
}
