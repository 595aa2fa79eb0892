//! What the kernel's task structures say about a process's threads, read by
//! the task iterator (`suspend_task_facts`, see `suspend-ebpf/src/tasks.rs`)
//! without stopping or entering the process: a suspend refuses what an
//! image cannot hold before it freezes anything.
//!
//! The daemon loads the iterator and pins its link at
//! `/sys/fs/bpf/suspend/link_suspend_task_facts`; reading that file runs
//! it over every thread of the machine.

use std::{io, path::PathBuf};

use suspend_common::{
    paths::BPF_PIN_DIR,
    tasks::{
        ABSENT, KEY_NAME_LEN, NOT_BUILT, RINGFD_REG_MAX, TASK_FACTS_PROGRAM, TaskFacts,
        TaskFactsLayout,
    },
};

use crate::btf::Btf;

#[derive(Debug, thiserror::Error)]
pub enum TaskFactsError {
    #[error("running the task iterator ({path}): {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("the task iterator reported no thread of process {0}")]
    NotSeen(u32),
    /// A fault a test injects (`SUSPEND_FAULT_NO_TASK_ITERATOR=1` in the
    /// daemon's environment): a kernel whose iterator cannot run.
    #[error("the task iterator is turned off (SUSPEND_FAULT_NO_TASK_ITERATOR)")]
    TurnedOff,
}

/// Where the daemon pins the iterator's link.
pub fn link_path() -> PathBuf {
    PathBuf::from(BPF_PIN_DIR).join(format!("link_{TASK_FACTS_PROGRAM}"))
}

/// The offsets the iterator reads at, from the kernel's BTF; a member the
/// kernel lacks is [`ABSENT`] (its fact is reported unknown). Also returns
/// the members not found, for the log.
pub fn layout(btf: &Btf) -> (TaskFactsLayout, Vec<String>) {
    let mut missing = Vec::new();
    let mut at = |strukt: &str, path: &[&str]| {
        btf.member_path_offset(strukt, path).unwrap_or_else(|e| {
            missing.push(e.to_string());
            ABSENT
        })
    };
    let layout = TaskFactsLayout {
        pid: at("task_struct", &["pid"]),
        tgid: at("task_struct", &["tgid"]),
        pdeath_signal: at("task_struct", &["pdeath_signal"]),
        mempolicy: at("task_struct", &["mempolicy"]),
        mm: at("task_struct", &["mm"]),
        cred: at("task_struct", &["cred"]),
        mm_ldt: at("mm_struct", &["context", "ldt"]),
        mm_flags: at("mm_struct", &["flags"]),
        thread_keyring: at("cred", &["thread_keyring"]),
        process_keyring: at("cred", &["process_keyring"]),
        signal: at("task_struct", &["signal"]),
        posix_timers: at("signal_struct", &["posix_timers"]),
        timer_list: at("k_itimer", &["list"]),
        timer_id: at("k_itimer", &["it_id"]),
        timer_overrun_last: at("k_itimer", &["it_overrun_last"]),
        session_keyring: at("cred", &["session_keyring"]),
        keyring_root: at("key", &["keys", "root"]),
        keyring_leaves: at("key", &["keys", "nr_leaves_on_tree"]),
        node_slots: at("assoc_array_node", &["slots"]),
        key_description: at("key", &["description"]),
        io_uring: ABSENT,
        io_uring_rings: ABSENT,
        io_uring_contexts: ABSENT,
    };
    let layout = TaskFactsLayout {
        io_uring: io_uring_offset(btf, &mut missing),
        io_uring_rings: io_uring_rings_offset(btf, &mut missing),
        io_uring_contexts: btf
            .member_path_offset("io_uring_task", &["xa", "xa_head"])
            .unwrap_or_else(|e| {
                missing.push(e.to_string());
                ABSENT
            }),
        ..layout
    };
    (layout, missing)
}

/// `task_struct.io_uring`; [`NOT_BUILT`] where the kernel has no io_uring
/// at all (neither that member nor `struct io_uring_task`: no thread can
/// hold a ring); [`ABSENT`] where only the member is missing.
fn io_uring_offset(btf: &Btf, missing: &mut Vec<String>) -> u32 {
    match btf.member_offset("task_struct", "io_uring") {
        Ok(offset) => offset,
        Err(_) if !btf.has_struct("io_uring_task") => NOT_BUILT,
        Err(e) => {
            missing.push(e.to_string());
            ABSENT
        }
    }
}

/// `io_uring_task.registered_rings`, where it holds [`RINGFD_REG_MAX`]
/// entries (the iterator reads that many): another count is unknown.
fn io_uring_rings_offset(btf: &Btf, missing: &mut Vec<String>) -> u32 {
    let path = ["registered_rings"];
    let offset = btf
        .member_path_offset("io_uring_task", &path)
        .and_then(|offset| Ok((offset, btf.member_array_len("io_uring_task", &path)?)));
    match offset {
        Ok((offset, RINGFD_REG_MAX)) => offset,
        Ok((_, len)) => {
            missing.push(format!(
                "io_uring_task.registered_rings has {len} entries, not {RINGFD_REG_MAX}"
            ));
            ABSENT
        }
        Err(e) => {
            missing.push(e.to_string());
            ABSENT
        }
    }
}

/// The records of the iterator's output (whole records only).
pub fn parse(bytes: &[u8]) -> Vec<TaskFacts> {
    const SIZE: usize = std::mem::size_of::<TaskFacts>();
    let (records, _torn) = bytes.as_chunks::<SIZE>();
    let u32_at = |r: &[u8; SIZE], i: usize| {
        u32::from_ne_bytes([r[4 * i], r[4 * i + 1], r[4 * i + 2], r[4 * i + 3]])
    };
    records
        .iter()
        .map(|r| {
            let mut session_leaf = [0; KEY_NAME_LEN];
            session_leaf.copy_from_slice(&r[32..32 + KEY_NAME_LEN]);
            TaskFacts {
                tid: u32_at(r, 0),
                tgid: u32_at(r, 1),
                pdeath_signal: u32_at(r, 2) as i32,
                facts: u32_at(r, 3),
                known: u32_at(r, 4),
                overrun_timer: u32_at(r, 5) as i32,
                overrun: u32_at(r, 6) as i32,
                session_leaves: u32_at(r, 7),
                session_leaf,
            }
        })
        .collect()
}

/// Every thread of process `pid`, as the kernel has it now.
pub fn of_process(pid: u32) -> Result<Vec<TaskFacts>, TaskFactsError> {
    if std::env::var_os("SUSPEND_FAULT_NO_TASK_ITERATOR").is_some_and(|v| v == "1") {
        return Err(TaskFactsError::TurnedOff);
    }
    let path = link_path();
    let bytes = std::fs::read(&path).map_err(|source| TaskFactsError::Read { path, source })?;
    let mut threads: Vec<_> = parse(&bytes)
        .into_iter()
        .filter(|t| t.tgid == pid)
        .collect();
    if threads.is_empty() {
        return Err(TaskFactsError::NotSeen(pid));
    }
    threads.sort_by_key(|t| t.tid);
    Ok(threads)
}

#[cfg(test)]
mod tests {
    use suspend_common::tasks::{
        FACT_LDT, FACT_SESSION_KEYRING, KNOWN_DUMPABLE, KNOWN_LDT, KNOWN_SESSION_KEYRING,
        KNOWN_TIMERS,
    };

    use super::*;

    #[test]
    fn records_are_read_whole_and_in_order() {
        let record = |tid: u32, facts: u32, known: u32| {
            let mut r: Vec<u8> = [tid, 7, 10, facts, known, 3, 12, 1]
                .iter()
                .flat_map(|v| v.to_ne_bytes())
                .collect();
            r.extend(b"_uid.1000\0\0\0\0\0\0\0\0\0\0\0");
            r
        };
        let mut bytes = record(
            8,
            FACT_LDT | FACT_SESSION_KEYRING | (2 << 4),
            KNOWN_LDT | KNOWN_DUMPABLE | KNOWN_TIMERS | KNOWN_SESSION_KEYRING,
        );
        bytes.extend(record(9, 0, 0));
        bytes.extend([1, 2, 3]); // a torn tail is no record
        let facts = parse(&bytes);
        assert_eq!(facts.len(), 2);
        assert_eq!(
            (facts[0].tid, facts[0].tgid, facts[0].pdeath_signal),
            (8, 7, 10)
        );
        assert_eq!(facts[0].has(FACT_LDT, KNOWN_LDT), Some(true));
        assert_eq!(facts[0].dumpable(), Some(2));
        assert_eq!(facts[0].overrun(), Some(Some((3, 12))));
        assert_eq!(facts[1].overrun(), None);
        assert_eq!(
            facts[0].session_keyring(),
            Some(Some((1, &b"_uid.1000"[..])))
        );
        assert_eq!(facts[1].session_keyring(), None);
        assert_eq!(facts[1].has(FACT_LDT, KNOWN_LDT), None);
        assert_eq!(facts[1].dumpable(), None);
    }

    #[test]
    fn the_running_kernel_has_every_member() {
        let btf = Btf::kernel().expect("the running kernel's BTF");
        let (layout, missing) = layout(&btf);
        assert!(layout.tgid == layout.pid + 4, "{layout:?}");
        // 0 is an offset like any other (6.1 puts k_itimer.list first).
        assert_ne!(layout.timer_list, ABSENT, "{layout:?}");
        // This host's kernel has io_uring: every member read, the array
        // of registered rings IO_RINGFD_REG_MAX long.
        assert!(
            ![
                layout.io_uring,
                layout.io_uring_rings,
                layout.io_uring_contexts
            ]
            .iter()
            .any(|&o| o == ABSENT || o == NOT_BUILT),
            "{layout:?}"
        );
        assert!(
            layout.io_uring_contexts >= layout.io_uring_rings + 8 * RINGFD_REG_MAX
                || layout.io_uring_contexts < layout.io_uring_rings,
            "the xarray is not inside the array: {layout:?}"
        );
        // This host's kernel has NUMA, keys and modify_ldt; a kernel
        // without one would leave its offset ABSENT and name it here.
        assert!(missing.is_empty(), "{missing:?}");
    }
}
