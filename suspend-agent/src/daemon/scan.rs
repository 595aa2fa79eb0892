//! Startup reconciliation: the registry is kept true by the pinned eBPF
//! programs while no agent runs, but a process may have registered while
//! none ran (its block is in its memory, nobody wrote the entry), and a
//! handshake may have been cut short by a dying agent.

use log::{debug, info, warn};
use suspend_common::registry::{STATE_FREEZING, STATE_FROZEN, STATE_REGISTERED, STATE_SUSPENDING};

use super::{State, register};
use crate::procfs;

#[derive(Debug, Default)]
pub struct Report {
    pub kept: usize,
    pub picked_up: usize,
    pub removed: usize,
}

pub fn run(state: &State) -> Report {
    let mut report = Report::default();
    // No freeze runs before the daemon does: forget those a dead agent left
    // (held processes stay witnessed and guarded).
    let held: Vec<(u32, Vec<u32>)> = crate::hold::HeldRecord::all()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.refill.is_none())
        .map(|r| (r.pid, r.tids))
        .collect();
    if let Err(e) = crate::freeze::FreezeMaps::open().and_then(|mut maps| maps.reset(&held)) {
        warn!("resetting the freeze maps: {e}");
    }
    let entries = match state.registry(|r| r.all()) {
        Ok(entries) => entries,
        Err(e) => {
            warn!("reading the registry: {e}");
            Vec::new()
        }
    };
    for entry in &entries {
        let alive = procfs::start_time(entry.pid).is_ok_and(|t| t == entry.start_time)
            && register::read_block(entry.pid, entry.block_addr).is_ok();
        if !alive {
            debug!(
                "pid {}: gone or no longer registered; removing its entry",
                entry.pid
            );
            if let Err(e) = state.registry(|r| r.remove(entry.pid)) {
                warn!("{e}");
            }
            report.removed += 1;
            continue;
        }
        if matches!(
            entry.state,
            STATE_SUSPENDING | STATE_FREEZING | STATE_FROZEN
        ) {
            // An agent died mid-handshake or mid-dump; ptrace let the
            // threads go when it died, and the client saw the connection
            // close and carried on.
            info!(
                "pid {}: suspend of a previous agent left unfinished; registered again",
                entry.pid
            );
            if let Err(e) =
                state.registry(|r| r.set_state(entry.pid, Some(entry.state), STATE_REGISTERED))
            {
                warn!("{e}");
            }
        }
        report.kept += 1;
    }
    let pids = match procfs::pids() {
        Ok(pids) => pids,
        Err(e) => {
            warn!("listing /proc: {e}");
            return report;
        }
    };
    for pid in pids {
        if entries.iter().any(|e| e.pid == pid) {
            continue;
        }
        let Ok(Some(addr)) = procfs::client_block_addr(pid) else {
            continue;
        };
        match register::entry_for(pid, addr).and_then(|reg| Ok(state.registry(|r| r.insert(&reg))?))
        {
            Ok(()) => {
                info!("pid {pid}: registered while no agent ran; picked up");
                report.picked_up += 1;
            }
            Err(e) => debug!("pid {pid}: client block not usable: {e}"),
        }
    }
    report
}
