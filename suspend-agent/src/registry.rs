//! Typed access to the pinned registry map. The agent finds maps only
//! through the names in `suspend_common`.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

use aya::maps::{HashMap, Map, MapData, MapError};
use suspend_common::{
    paths::BPF_PIN_DIR,
    registry::{REGISTRY_MAP, REPLACED_MAP, Registration, Replaced},
};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "no pinned map at {path} (is the agent daemon running? start it with `suspend-agent daemon`): {source}"
    )]
    NotPinned { path: PathBuf, source: MapError },
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        source: MapError,
    },
    #[error("registry: pid {pid}: {source}")]
    Entry { pid: u32, source: MapError },
}

fn pin_path(name: &str) -> PathBuf {
    Path::new(BPF_PIN_DIR).join(name)
}

/// The handler change that made `pid`'s registration unusable, as eBPF
/// recorded it (`replaced_handlers`); `None` if there is no record (an
/// older agent's programs, or the map is gone).
pub fn replaced_handler(pid: u32) -> Option<Replaced> {
    let data = MapData::from_pin(pin_path(REPLACED_MAP)).ok()?;
    let map: HashMap<MapData, u32, Replaced> = HashMap::try_from(Map::LruHashMap(data)).ok()?;
    map.get(&pid, 0).ok()
}

/// What took `pid`'s signal, in words: the default action, ignored, or a
/// handler at an address, and the file mapped there (a library, named by
/// `/proc/PID/maps`).
pub fn describe_handler(pid: u32, handler: u64) -> String {
    match handler {
        0 => "reset to the default action (SIG_DFL)".into(),
        1 => "set to be ignored (SIG_IGN)".into(),
        addr => {
            let file = std::fs::read_to_string(format!("/proc/{pid}/maps"))
                .ok()
                .and_then(|maps| {
                    maps.lines().find_map(|line| {
                        let (range, mut rest) = line.split_once(' ')?;
                        let (start, end) = range.split_once('-')?;
                        let start = u64::from_str_radix(start, 16).ok()?;
                        let end = u64::from_str_radix(end, 16).ok()?;
                        // perms, offset, device, inode; then the path,
                        // spaces and all.
                        for _ in 0..4 {
                            rest = rest.trim_start().split_once(' ')?.1;
                        }
                        let path = rest.trim();
                        (start <= addr && addr < end && !path.is_empty()).then(|| path.to_owned())
                    })
                });
            match file {
                Some(file) => format!("replaced by a handler at {addr:#x}, in {file}"),
                None => format!("replaced by a handler at {addr:#x} (in no mapped file)"),
            }
        }
    }
}

/// The registry as the daemon's tasks share it: one lock around the map.
pub struct SharedRegistry(Mutex<Registry>);

impl SharedRegistry {
    pub fn new(registry: Registry) -> Self {
        Self(Mutex::new(registry))
    }

    /// Runs `f` on the registry. A poisoned lock only means another task
    /// panicked mid-call; the map itself is in the kernel and stays whole.
    pub fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// The registry map (`/sys/fs/bpf/suspend/registry`).
pub struct Registry {
    map: HashMap<MapData, u32, Registration>,
}

impl Registry {
    /// Opens the pinned registry (the daemon need not run).
    pub fn open_pinned() -> Result<Self, RegistryError> {
        let path = pin_path(REGISTRY_MAP);
        let data = MapData::from_pin(&path).map_err(|source| RegistryError::NotPinned {
            path: path.clone(),
            source,
        })?;
        Self::from_map(Map::HashMap(data))
    }

    /// Wraps the map a loaded `Ebpf` gave up.
    pub fn from_map(map: Map) -> Result<Self, RegistryError> {
        let map = HashMap::try_from(map).map_err(|source| RegistryError::Map {
            name: REGISTRY_MAP,
            source,
        })?;
        Ok(Self { map })
    }

    /// The entry of `pid`, if it has one.
    pub fn get(&self, pid: u32) -> Result<Option<Registration>, RegistryError> {
        match self.map.get(&pid, 0) {
            Ok(reg) => Ok(Some(reg)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(RegistryError::Entry { pid, source }),
        }
    }

    /// Writes the entry of `reg.pid`.
    pub fn insert(&mut self, reg: &Registration) -> Result<(), RegistryError> {
        self.map
            .insert(&reg.pid, reg, 0)
            .map_err(|source| RegistryError::Entry {
                pid: reg.pid,
                source,
            })
    }

    /// Removes the entry of `pid`; an absent entry is not an error.
    pub fn remove(&mut self, pid: u32) -> Result<(), RegistryError> {
        match self.map.remove(&pid) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(source) => Err(RegistryError::Entry { pid, source }),
        }
    }

    /// Sets the state of `pid` if its entry exists and is in `from` state
    /// (or any state when `from` is `None`). Returns whether it was changed.
    pub fn set_state(
        &mut self,
        pid: u32,
        from: Option<u32>,
        to: u32,
    ) -> Result<bool, RegistryError> {
        let Some(mut reg) = self.get(pid)? else {
            return Ok(false);
        };
        if from.is_some_and(|from| reg.state != from) {
            return Ok(false);
        }
        reg.state = to;
        self.insert(&reg)?;
        Ok(true)
    }

    /// Every entry, sorted by pid.
    pub fn all(&self) -> Result<Vec<Registration>, RegistryError> {
        let mut all = Vec::new();
        for item in self.map.iter() {
            let (_, reg) = item.map_err(|source| RegistryError::Map {
                name: REGISTRY_MAP,
                source,
            })?;
            all.push(reg);
        }
        all.sort_by_key(|reg| reg.pid);
        Ok(all)
    }
}
