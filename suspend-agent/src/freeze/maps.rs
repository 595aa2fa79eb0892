//! The freeze maps (`new_threads`, `frozen_tasks`, `freeze_active`), opened
//! from their pins so the thread that freezes owns its own handles.

use std::path::{Path, PathBuf};

use aya::maps::{Array, HashMap, Map, MapData, MapError};
use suspend_common::{
    freeze::{
        FREEZE_ACTIVE_MAP, FREEZE_GUARD_MAP, FROZEN_TASKS_MAP, FreezeGuard, FrozenTask, GUARD_HELD,
        NEW_THREADS_MAP,
    },
    paths::BPF_PIN_DIR,
};

#[derive(Debug, thiserror::Error)]
#[error("map {name}: {source}")]
pub struct MapsError {
    name: &'static str,
    #[source]
    source: MapError,
}

fn open(name: &'static str) -> Result<MapData, MapsError> {
    let path: PathBuf = Path::new(BPF_PIN_DIR).join(name);
    MapData::from_pin(&path).map_err(|source| MapsError { name, source })
}

pub struct FreezeMaps {
    new_threads: HashMap<MapData, u32, u32>,
    frozen_tasks: HashMap<MapData, u32, FrozenTask>,
    active: Array<MapData, u32>,
    guard: HashMap<MapData, u32, FreezeGuard>,
}

impl FreezeMaps {
    pub fn open() -> Result<Self, MapsError> {
        let err = |name| move |source| MapsError { name, source };
        Ok(Self {
            new_threads: HashMap::try_from(Map::HashMap(open(NEW_THREADS_MAP)?))
                .map_err(err(NEW_THREADS_MAP))?,
            frozen_tasks: HashMap::try_from(Map::HashMap(open(FROZEN_TASKS_MAP)?))
                .map_err(err(FROZEN_TASKS_MAP))?,
            active: Array::try_from(Map::Array(open(FREEZE_ACTIVE_MAP)?))
                .map_err(err(FREEZE_ACTIVE_MAP))?,
            guard: HashMap::try_from(Map::HashMap(open(FREEZE_GUARD_MAP)?))
                .map_err(err(FREEZE_GUARD_MAP))?,
        })
    }

    /// Adds `delta` to the count of freezes in progress.
    pub fn add_active(&mut self, delta: i32) -> Result<(), MapsError> {
        let err = |source| MapsError {
            name: FREEZE_ACTIVE_MAP,
            source,
        };
        let now = self.active.get(&0, 0).map_err(err)?;
        self.active
            .set(0, &now.saturating_add_signed(delta), 0)
            .map_err(err)
    }

    /// Takes (and forgets) the threads recorded for `tgid`.
    pub fn take_new_threads(&mut self, tgid: u32) -> Result<Vec<u32>, MapsError> {
        let err = |source| MapsError {
            name: NEW_THREADS_MAP,
            source,
        };
        let mut found = Vec::new();
        for item in self.new_threads.iter() {
            let (tid, owner) = item.map_err(err)?;
            if owner == tgid {
                found.push(tid);
            }
        }
        for tid in &found {
            match self.new_threads.remove(tid) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(source) => return Err(err(source)),
            }
        }
        Ok(found)
    }

    /// Starts witnessing `tids` (all of `tgid`).
    pub fn watch(&mut self, tgid: u32, tids: &[u32]) -> Result<(), MapsError> {
        for tid in tids {
            let task = FrozenTask {
                tgid,
                ..FrozenTask::default()
            };
            self.frozen_tasks
                .insert(tid, &task, 0)
                .map_err(|source| MapsError {
                    name: FROZEN_TASKS_MAP,
                    source,
                })?;
        }
        Ok(())
    }

    /// What the witness saw of `tids`: those that were switched in.
    pub fn witnessed(&self, tids: &[u32]) -> Result<Vec<(u32, FrozenTask)>, MapsError> {
        let mut ran = Vec::new();
        for &tid in tids {
            match self.frozen_tasks.get(&tid, 0) {
                Ok(task) if task.switches > 0 => ran.push((tid, task)),
                Ok(_) | Err(MapError::KeyNotFound) => {}
                Err(source) => {
                    return Err(MapsError {
                        name: FROZEN_TASKS_MAP,
                        source,
                    });
                }
            }
        }
        Ok(ran)
    }

    /// Guards `tgid` until `deadline_ns` (`CLOCK_BOOTTIME`) against
    /// everyone but this agent; called again to renew.
    pub fn guard(&mut self, tgid: u32, deadline_ns: u64) -> Result<(), MapsError> {
        let guard = FreezeGuard {
            agent_tgid: std::process::id(),
            flags: 0,
            deadline_ns,
        };
        self.guard
            .insert(&tgid, &guard, 0)
            .map_err(|source| MapsError {
                name: FREEZE_GUARD_MAP,
                source,
            })
    }

    /// Guards held process `tgid` with no lease: only root may signal
    /// (`SIGKILL` aside), trace or read it.
    pub fn guard_held(&mut self, tgid: u32) -> Result<(), MapsError> {
        let guard = FreezeGuard {
            agent_tgid: 0,
            flags: GUARD_HELD,
            deadline_ns: u64::MAX,
        };
        self.guard
            .insert(&tgid, &guard, 0)
            .map_err(|source| MapsError {
                name: FREEZE_GUARD_MAP,
                source,
            })
    }

    /// Forgets held process `tgid` (threads `tids`): no longer witnessed
    /// nor guarded, one fewer in `freeze_active`.
    pub fn forget_held(&mut self, tgid: u32, tids: &[u32]) {
        self.unwatch(tids);
        self.unguard(tgid);
        if let Err(e) = self.add_active(-1) {
            log::warn!("{e}");
        }
    }

    /// Lifts the guard of `tgid`.
    pub fn unguard(&mut self, tgid: u32) {
        let _ = self.guard.remove(&tgid);
    }

    /// Forgets every freeze (at daemon start, none is in progress) but the
    /// held processes `held` (thread-group id, threads), still witnessed
    /// and guarded.
    pub fn reset(&mut self, held: &[(u32, Vec<u32>)]) -> Result<(), MapsError> {
        self.active
            .set(0, &(held.len() as u32), 0)
            .map_err(|source| MapsError {
                name: FREEZE_ACTIVE_MAP,
                source,
            })?;
        let tids: Vec<u32> = self
            .frozen_tasks
            .keys()
            .filter_map(Result::ok)
            .filter(|&t| !held_thread(held, t))
            .collect();
        self.unwatch(&tids);
        let tids: Vec<u32> = self.new_threads.keys().filter_map(Result::ok).collect();
        for tid in tids {
            let _ = self.new_threads.remove(&tid);
        }
        // A lease a dead agent left (a hold it did not finish included)
        // goes; a held process's guard stays.
        let guarded: Vec<u32> = self.guard.keys().filter_map(Result::ok).collect();
        for tgid in guarded {
            if !guard_stays(held, tgid, self.guard.get(&tgid, 0).ok()) {
                self.unguard(tgid);
            }
        }
        Ok(())
    }

    /// Stops witnessing `tids`.
    pub fn unwatch(&mut self, tids: &[u32]) {
        for tid in tids {
            let _ = self.frozen_tasks.remove(tid);
        }
    }
}

/// Whether `tid` is a thread of one of the `held` processes (thread-group
/// id, threads): it stays witnessed at a reset.
fn held_thread(held: &[(u32, Vec<u32>)], tid: u32) -> bool {
    held.iter().any(|(_, tids)| tids.contains(&tid))
}

/// Whether the guard of `tgid` stays at a reset: a held process's own
/// (no lease), not a lease a dead agent left, even on a held process (a
/// hold it did not finish).
fn guard_stays(held: &[(u32, Vec<u32>)], tgid: u32, guard: Option<FreezeGuard>) -> bool {
    guard.is_some_and(|g| g.flags & GUARD_HELD != 0) && held.iter().any(|(h, _)| *h == tgid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held() -> Vec<(u32, Vec<u32>)> {
        vec![(7, vec![7, 8]), (20, vec![20])]
    }

    #[test]
    fn a_reset_keeps_witnessing_only_held_threads() {
        for tid in [7, 8, 20] {
            assert!(held_thread(&held(), tid), "{tid}");
        }
        for tid in [9, 21, 0] {
            assert!(!held_thread(&held(), tid), "{tid}");
        }
        assert!(!held_thread(&[], 7));
    }

    #[test]
    fn a_reset_keeps_only_a_held_processs_own_guard() {
        let held_guard = Some(FreezeGuard {
            agent_tgid: 0,
            flags: GUARD_HELD,
            deadline_ns: u64::MAX,
        });
        let lease = Some(FreezeGuard {
            agent_tgid: 1234,
            flags: 0,
            deadline_ns: 5_000_000_000,
        });
        assert!(guard_stays(&held(), 7, held_guard));
        assert!(guard_stays(&held(), 20, held_guard));
        // A dead agent's lease, on a held process (a hold it did not
        // finish) or not.
        assert!(!guard_stays(&held(), 7, lease));
        assert!(!guard_stays(&held(), 9, lease));
        // A held guard whose process is no longer held (its record gone).
        assert!(!guard_stays(&held(), 9, held_guard));
        assert!(
            !guard_stays(&held(), 8, held_guard),
            "a thread, not a process"
        );
        // Unreadable.
        assert!(!guard_stays(&held(), 7, None));
    }
}
