//! Saving what belongs to the whole process and `/proc` shows: identity,
//! credentials, limits and attributes (read by [`crate::state::credentials`],
//! [`crate::state::limits`] and [`crate::state::attributes`]), auxv, mm
//! fields. And what a suspend that kills refuses before the freeze
//! ([`unrestorable_state`], among it what the task iterator shows,
//! [`task_refusals`]): each refusal its kind's, in `state/`.

use std::{fs, path::Path};

use suspend_common::tasks::{
    FACT_LDT, FACT_MEMPOLICY, FACT_PROCESS_KEYRING, FACT_THREAD_KEYRING, KNOWN_KEYRINGS, KNOWN_LDT,
    KNOWN_MEMPOLICY, KNOWN_PDEATH_SIGNAL, TaskFacts,
};

use super::DumpError;
use crate::{
    image::format::{Creds, Process, Session},
    procfs::file_id,
    state::{
        attributes, children, credentials,
        io_uring::{self, Consequence},
        ipc, mappings, namespaces, sched, session, timers,
    },
};

fn read(pid: u32, name: &str) -> Result<String, DumpError> {
    let path = format!("/proc/{pid}/{name}");
    fs::read_to_string(&path).map_err(|source| DumpError::Proc {
        pid,
        path: path.into(),
        source,
    })
}

fn link(pid: u32, name: &str) -> Result<String, DumpError> {
    let path = format!("/proc/{pid}/{name}");
    fs::read_link(&path)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|source| DumpError::Proc {
            pid,
            path: path.into(),
            source,
        })
}

/// The credentials (`Uid:`/`Gid:`/`Groups:`, [`crate::state::credentials`])
/// and the `Umask:`/`PPid:` fields of `/proc/PID/status`.
pub fn parse_status(text: &str) -> Option<(Creds, u32, u32)> {
    let creds = crate::state::credentials::parse(text)?;
    let (mut umask, mut ppid) = (0o022, 0);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "Umask" => umask = u32::from_str_radix(value.trim(), 8).ok()?,
            "PPid" => ppid = value.trim().parse().ok()?,
            _ => {}
        }
    }
    Some((creds, umask, ppid))
}

pub fn save(pid: u32, leader: u32, threads: u32) -> Result<Process, DumpError> {
    let bad = |what: &'static str| DumpError::Parse { pid, what };
    let (creds, umask, ppid) =
        parse_status(&read(pid, "status")?).ok_or_else(|| bad("/proc/PID/status"))?;
    let stat = read(pid, "stat")?;
    let mm = crate::procfs::parse_stat_mm(&stat).ok_or_else(|| bad("/proc/PID/stat"))?;
    let (pgid, sid, _) =
        crate::procfs::parse_stat_session(&stat).ok_or_else(|| bad("/proc/PID/stat"))?;
    let auxv_path = format!("/proc/{pid}/auxv");
    let auxv = fs::read(&auxv_path).map_err(|source| DumpError::Proc {
        pid,
        path: auxv_path.into(),
        source,
    })?;
    let auxv = auxv
        .as_chunks::<8>()
        .0
        .as_chunks::<2>()
        .0
        .iter()
        .map(|[kind, value]| (u64::from_le_bytes(*kind), u64::from_le_bytes(*value)))
        .take_while(|&(kind, _)| kind != 0)
        .collect();
    let rlimits = crate::state::limits::save(pid).map_err(|e| DumpError::Proc {
        pid,
        path: format!("/proc/{pid}/limits").into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let personality = u32::from_str_radix(read(pid, "personality")?.trim(), 16)
        .map_err(|_| bad("/proc/PID/personality"))?;
    let exe_link = link(pid, "exe")?;
    let cwd = link(pid, "cwd")?;
    let shared_pending = crate::state::signals::read_shared_pending(pid, leader)?;
    Ok(Process {
        pid,
        ppid,
        comm: crate::state::attributes::name(&read(pid, "comm")?),
        exe: file_id(Path::new(&format!("/proc/{pid}/exe")), &exe_link),
        cwd_id: file_id(Path::new(&format!("/proc/{pid}/cwd")), &cwd),
        cwd,
        root: link(pid, "root")?,
        umask,
        creds,
        rlimits,
        personality,
        auxv,
        mm,
        shared_pending,
        threads,
        // Asked from inside the threads (dump::inside).
        sigactions: Vec::new(),
        brk: None,
        itimers: Vec::new(),
        // `/proc` and asked from inside (dump::mod).
        attributes: None,
        held_only: Vec::new(),
        session: Some(Session { sid, pgid }),
        cgroups: crate::state::cgroup::save(pid).map_err(|_| bad("/proc/PID/cgroup"))?,
        // Read with its mappings (dump::mod).
        vdso: None,
        // With the time each has left, asked from inside (dump::inside).
        posix_timers: Vec::new(),
    })
}

/// `/proc/PID/oom_score_adj` ([`crate::state::attributes`]).
pub fn oom_score_adj(pid: u32) -> Result<i32, DumpError> {
    crate::state::attributes::oom_score_adj(&read(pid, "oom_score_adj")?).ok_or(DumpError::Parse {
        pid,
        what: "/proc/PID/oom_score_adj",
    })
}

/// What the kernel's task structures show (the task iterator, read
/// without stopping the process) that an image cannot give back: the
/// checks the dump makes again from inside once frozen, made before the
/// freeze. A fact the iterator could not read on this kernel is left to
/// that later check; but whether a thread holds an io_uring ring, which
/// nothing inside shows, is refused where it could not be told.
pub fn task_refusals(threads: &[TaskFacts], uid: Option<u32>) -> Vec<String> {
    let mut bad = Vec::new();
    for t in threads {
        if t.known & KNOWN_PDEATH_SIGNAL != 0 {
            bad.extend(attributes::pdeath_signal_refusal(t.tid, t.pdeath_signal));
        }
        if t.has(FACT_MEMPOLICY, KNOWN_MEMPOLICY) == Some(true) {
            bad.extend(sched::mempolicy_refusal(t.tid, None));
        }
    }
    // Process-wide facts: every thread shows the same; the first says.
    bad.extend(crate::state::threads::ldt_refusal(
        threads
            .iter()
            .any(|t| t.has(FACT_LDT, KNOWN_LDT) == Some(true)),
    ));
    let keyrings: Vec<u32> = threads
        .iter()
        .filter(|t| t.has(FACT_THREAD_KEYRING, KNOWN_KEYRINGS) == Some(true))
        .map(|t| t.tid)
        .collect();
    bad.extend(credentials::thread_keyring_refusal(&keyrings));
    bad.extend(credentials::process_keyring_refusal(threads.iter().any(
        |t| t.has(FACT_PROCESS_KEYRING, KNOWN_KEYRINGS) == Some(true),
    )));
    bad.extend(
        threads
            .iter()
            .find_map(|t| attributes::dumpable_refusal(t.dumpable())),
    );
    if let Some((id, overrun)) = threads.iter().find_map(|t| t.overrun().flatten()) {
        bad.push(timers::overrun_words(id, overrun.into()));
    }
    bad.extend(credentials::session_keyring_refusal(threads, uid));
    // Nothing but the iterator shows a ring only registered: a thread it
    // could not tell of is refused too.
    bad.extend(io_uring::refusals(threads, Consequence::Image));
    bad
}

/// What `pid` has that an image cannot hold yet, process-wide, as people
/// name it, each refusal its kind's (in `state/`): a session or process
/// group it does not lead (unless `new_session`: the caller accepts that
/// a resume puts it in the resume command's), what the task iterator
/// shows (an io_uring ring among it), namespaces, NUMA policies, names of shared anonymous mappings,
/// protection keys, mappings, SysV semaphore undo values, POSIX timers,
/// locked memory, children. A held process keeps all of it; a suspend
/// that kills refuses it before freezing.
pub fn unrestorable_state(pid: u32, new_session: bool) -> Vec<String> {
    let mut bad = Vec::new();
    bad.extend(session::refusal(pid, new_session));
    // What only the thread could be asked (parent-death signal, its NUMA
    // policy, keyrings, an LDT, dumpable 2) or nothing but the kernel's
    // structures show (an io_uring ring only registered), from the task
    // iterator.
    match crate::tasks::of_process(pid) {
        Ok(threads) => bad.extend(task_refusals(
            &threads,
            crate::procfs::status(pid).ok().map(|s| s.uid),
        )),
        // The other checks are made again from inside once it is frozen;
        // nothing inside can tell whether its session keyring is its own,
        // or whether it holds an io_uring ring it registered.
        Err(e) => {
            bad.push(credentials::session_keyring_unchecked(&e.to_string()));
            bad.push(io_uring::unchecked(&e.to_string()));
        }
    }
    bad.extend(namespaces::refusal(pid));
    bad.extend(sched::numa_maps_refusal(pid));
    bad.extend(mappings::anon_shmem_name_refusal(pid));
    bad.extend(mappings::protection_key_refusal(pid));
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        && let Some(vmas) = crate::procfs::vmas::parse(&text)
    {
        bad.extend(mappings::refusals(pid, &vmas));
    }
    bad.extend(ipc::semaphore_undo_refusal(pid));
    bad.extend(timers::refusal(pid));
    bad.extend(mappings::locked_refusal(pid));
    bad.extend(children::refusal(pid));
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status() {
        let text = "Name:\tw\nUmask:\t0027\nPPid:\t41\nUid:\t1000\t1001\t1002\t1003\nGid:\t10\t11\t12\t13\nGroups:\t4 24 27 \n";
        let (creds, umask, ppid) = parse_status(text).unwrap();
        assert_eq!(creds.uid, [1000, 1001, 1002, 1003]);
        assert_eq!(umask, 0o027);
        assert_eq!(ppid, 41);
    }
}
