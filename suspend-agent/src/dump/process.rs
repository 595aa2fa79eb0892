//! Saving what belongs to the whole process and `/proc` shows: identity,
//! credentials, limits and attributes (read by [`crate::state::credentials`],
//! [`crate::state::limits`] and [`crate::state::attributes`]), auxv, mm
//! fields.

use std::{fs, os::unix::fs::MetadataExt as _, path::Path};

use suspend_common::tasks::{
    FACT_LDT, FACT_MEMPOLICY, FACT_PROCESS_KEYRING, FACT_THREAD_KEYRING, KNOWN_KEYRINGS, KNOWN_LDT,
    KNOWN_MEMPOLICY, KNOWN_PDEATH_SIGNAL, TaskFacts,
};

use super::DumpError;
use crate::image::format::{Creds, Process, Session};

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
        exe: crate::state::files::id(Path::new(&format!("/proc/{pid}/exe")), &exe_link),
        cwd_id: crate::state::files::id(Path::new(&format!("/proc/{pid}/cwd")), &cwd),
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

/// A parent-death signal is relative to the parent, which a resume from
/// the image does not give back (the resume command is the new one, and it
/// exits at once).
pub fn pdeath_signal_words(tid: u32, signal: i32) -> String {
    format!(
        "thread {tid} has a parent-death signal ({signal}, PR_SET_PDEATHSIG): its parent is not \
         restored from an image"
    )
}

/// A thread's own NUMA policy (`mode` when known).
pub fn mempolicy_words(tid: u32, mode: Option<i32>) -> String {
    match mode {
        Some(mode) => format!("thread {tid} has a NUMA memory policy (mode {mode}, set_mempolicy)"),
        None => format!("thread {tid} has a NUMA memory policy (set_mempolicy)"),
    }
}

pub const LDT_WORDS: &str = "a local descriptor table (modify_ldt)";

/// Keys: an image holds none. Thread and process keyrings are refused; a
/// resumed process has the resume command's session keyring (see the
/// inventory: its own cannot be seen without changing the process).
pub fn thread_keyring_words(tids: &[u32]) -> String {
    format!(
        "a thread keyring (keyctl) in thread(s) {}",
        tids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub const PROCESS_KEYRING_WORDS: &str = "a process keyring (keyctl)";

/// A session keyring that could not be looked at: a resume gives the
/// process a new one, so what one of its own linked would be lost.
pub fn session_keyring_unchecked_words(why: &str) -> String {
    format!(
        "session keyring, which could not be checked ({why}): a resume gives it a new one, and \
         what one of its own links would be lost"
    )
}

/// A session keyring of its own that links more than the user's keyrings.
pub fn session_keyring_words(tids: &[u32], leaves: u32, name: &str) -> String {
    format!(
        "a session keyring of its own (keyctl join) linking {leaves} key(s) or keyring(s), {name} \
         among them, in thread(s) {}: an image holds no key, and a resume gives it a new \
         session keyring",
        tids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub const DUMPABLE_2_WORDS: &str = "dumpable mode 2 (suid_dumpable: PR_SET_DUMPABLE cannot set it)";

/// What the kernel's task structures show (the task iterator, read
/// without stopping the process) that an image cannot give back: the
/// checks the dump makes again from inside once frozen, made before the
/// freeze. A fact the iterator could not read on this kernel is left to
/// that later check.
pub fn task_refusals(threads: &[TaskFacts], uid: Option<u32>) -> Vec<String> {
    let mut bad = Vec::new();
    for t in threads {
        if t.known & KNOWN_PDEATH_SIGNAL != 0 && t.pdeath_signal != 0 {
            bad.push(pdeath_signal_words(t.tid, t.pdeath_signal));
        }
        if t.has(FACT_MEMPOLICY, KNOWN_MEMPOLICY) == Some(true) {
            bad.push(mempolicy_words(t.tid, None));
        }
    }
    // Process-wide facts: every thread shows the same; the first says.
    if threads
        .iter()
        .any(|t| t.has(FACT_LDT, KNOWN_LDT) == Some(true))
    {
        bad.push(LDT_WORDS.into());
    }
    let keyrings: Vec<u32> = threads
        .iter()
        .filter(|t| t.has(FACT_THREAD_KEYRING, KNOWN_KEYRINGS) == Some(true))
        .map(|t| t.tid)
        .collect();
    if !keyrings.is_empty() {
        bad.push(thread_keyring_words(&keyrings));
    }
    if threads
        .iter()
        .any(|t| t.has(FACT_PROCESS_KEYRING, KNOWN_KEYRINGS) == Some(true))
    {
        bad.push(PROCESS_KEYRING_WORDS.into());
    }
    if threads.iter().any(|t| t.dumpable() == Some(2)) {
        bad.push(DUMPABLE_2_WORDS.into());
    }
    if let Some((id, overrun)) = threads.iter().find_map(|t| t.overrun().flatten()) {
        bad.push(crate::state::timers::overrun_words(id, overrun.into()));
    }
    // A session keyring of its own: a resume gives it a new one, with the
    // user's session keyring (which links the user keyring) linked in. What
    // else it links is lost: refused, unless that is only the user's own
    // keyring (pam_keyinit links it) or session keyring.
    let mut own: Vec<(u32, u32, String)> = threads
        .iter()
        .filter_map(|t| {
            let (leaves, name) = t.session_keyring().flatten()?;
            let name = String::from_utf8_lossy(name).into_owned();
            let users = uid.is_some_and(|uid| {
                name == format!("_uid.{uid}") || name == format!("_uid_ses.{uid}")
            });
            (leaves > 1 || (leaves == 1 && !users)).then_some((t.tid, leaves, name))
        })
        .collect();
    own.sort();
    if let Some((_, leaves, name)) = own.first() {
        bad.push(session_keyring_words(
            &own.iter().map(|t| t.0).collect::<Vec<_>>(),
            *leaves,
            name,
        ));
    }
    bad
}

/// What `pid` has that an image cannot hold yet, process-wide, as people
/// name it: locked memory, children, a session or process
/// group it does not lead (unless `new_session`: the caller accepts that
/// a resume puts it in the resume command's), names of shared anonymous
/// mappings. A held process keeps all of it; a suspend that kills refuses
/// it before freezing.
pub fn unrestorable_state(pid: u32, new_session: bool) -> Vec<String> {
    let mut bad = Vec::new();
    if !new_session && let Ok((pgid, sid, tty)) = crate::procfs::session(pid) {
        let mut outside = Vec::new();
        if sid != pid {
            outside.push(format!("session {sid}{}", leader_name(sid)));
        }
        if pgid != pid {
            outside.push(format!("process group {pgid}{}", leader_name(pgid)));
        }
        if sid == pid && tty != 0 {
            outside.push(format!("controlling terminal (device {tty:#x})"));
        }
        if !outside.is_empty() {
            bad.push(format!(
                "{} (a resume from the image starts it in the resume command's session and \
                 process group: --new-session accepts that)",
                outside.join(", ")
            ));
        }
    }
    // What only the thread could be asked (parent-death signal, its NUMA
    // policy, keyrings, an LDT, dumpable 2), from the task iterator.
    match crate::tasks::of_process(pid) {
        Ok(threads) => bad.extend(task_refusals(
            &threads,
            crate::procfs::status(pid).ok().map(|s| s.uid),
        )),
        // The other checks are made again from inside once it is frozen;
        // nothing inside can tell whether its session keyring is its own.
        Err(e) => bad.push(session_keyring_unchecked_words(&e.to_string())),
    }
    let namespaces = foreign_namespaces(pid);
    if !namespaces.is_empty() {
        bad.push(format!(
            "{} (a resume puts it in the resume command's; the agent's are the machine's)",
            namespaces.join(", ")
        ));
    }
    // NUMA memory policies (the process's, or a mapping's): not in an
    // image yet. `numa_maps` shows the one in force for every mapping.
    if let Ok(numa) = std::fs::read_to_string(format!("/proc/{pid}/numa_maps")) {
        let policies: std::collections::BTreeSet<&str> = numa
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|p| *p != "default")
            .collect();
        if !policies.is_empty() {
            bad.push(format!(
                "NUMA memory policy {} (set_mempolicy, mbind)",
                policies.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        let named: Vec<&str> = maps
            .lines()
            .filter_map(|l| {
                l.split_once("[anon_shmem:")
                    .map(|(_, n)| n.trim_end_matches(']'))
            })
            .collect();
        if !named.is_empty() {
            bad.push(format!(
                "name(s) of shared anonymous mapping(s) {} (PR_SET_VMA_ANON_NAME)",
                named.join(", ")
            ));
        }
    }
    // Protection keys (where the CPU has them: only then does smaps say).
    if crate::sys::cpu::has_pkeys()
        && let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps"))
    {
        let mut keyed: Vec<String> = crate::procfs::parse_smaps(&text)
            .into_iter()
            .filter(|(_, s)| s.protection_key != 0)
            .map(|(start, s)| format!("{start:#x} (key {})", s.protection_key))
            .collect();
        keyed.sort();
        if !keyed.is_empty() {
            bad.push(format!(
                "memory protection keys (pkey_mprotect) on the mappings at {}",
                keyed.join(", ")
            ));
        }
    }
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        && let Some(vmas) = crate::procfs::vmas::parse(&text)
    {
        bad.extend(unrestorable_mappings(pid, &vmas));
    }
    // SysV semaphore adjustments (`SEM_UNDO`): the kernel applies them
    // when the process exits, and nothing sets them but the semops
    // themselves. Nothing shows which process has them (`KCMP_SYSVSEM`
    // only tells whether a process has an undo list, and every threaded
    // one has: `pthread_create` makes it), but a process can have them only
    // on a semaphore set it may alter. So any such set is refused.
    if let (Ok(sets), Ok(status)) = (
        std::fs::read_to_string("/proc/sysvipc/sem"),
        std::fs::read_to_string(format!("/proc/{pid}/status")),
    ) {
        let alterable = crate::procfs::alterable_semaphore_sets(&sets, &status);
        if !alterable.is_empty() {
            bad.push(format!(
                "maybe SysV semaphore undo values: it may alter semaphore set(s) {} (a semop with \
                 SEM_UNDO leaves adjustments the kernel applies when the process is killed and \
                 a resume cannot set; nothing shows whether it made one)",
                alterable
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    bad.extend(crate::state::timers::refusal(pid));
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        let locked = status
            .lines()
            .find_map(|l| l.strip_prefix("VmLck:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        if locked > 0 {
            bad.push(format!("{locked} KiB of locked memory (mlock)"));
        }
    }
    let mut children = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                children.extend(text.split_whitespace().map(str::to_owned));
            }
        }
    }
    if !children.is_empty() {
        bad.push(format!(
            "child process(es) {} (an image cannot make them its children again)",
            children.join(", ")
        ));
    }
    bad
}

/// Mappings of `pid` a resume from the image could not give back: a
/// private mapping of a file deleted since (nothing could map it again),
/// a file whose name `/proc/PID/maps` does not tell surely (a resume
/// could open another file), and memory shared with another process (a
/// resume would make the process an object of its own: the other would
/// no longer see its writes). One line each.
fn unrestorable_mappings(pid: u32, vmas: &[crate::procfs::vmas::Vma]) -> Vec<String> {
    use crate::image::format::MappingKind;
    let mut bad = Vec::new();
    for v in vmas.iter().filter(|v| v.deleted()) {
        let files = format!("/proc/{pid}/map_files/{:x}-{:x}", v.start, v.end);
        let linked = fs::metadata(&files).is_ok_and(|m| m.nlink() > 0);
        if v.kind() == MappingKind::PrivateFile {
            bad.push(format!(
                "mapped file {} at {:#x} (deleted since it was mapped: nothing could map it again)",
                v.path, v.start
            ));
        } else if linked {
            // Its name merely ends so: it is a file still there.
            bad.push(format!(
                "mapped file {} at {:#x} (a file whose name ends in \"(deleted)\")",
                v.path, v.start
            ));
        }
    }
    // A name with a newline (written `\012`, as a backslash and `012`
    // would be): kept only where the mapping's link says it is the name.
    for v in vmas.iter().filter(|v| !v.path_is_certain(None)) {
        let files = format!("/proc/{pid}/map_files/{:x}-{:x}", v.start, v.end);
        if !v.path_is_certain(fs::read_link(&files).ok().as_deref()) {
            bad.push(format!(
                "mapped file at {:#x} whose name /proc/PID/maps shows as {} (the kernel writes a \
                 newline in a name and the characters \\012 alike; which it is cannot be told, \
                 and a resume could open another file)",
                v.start,
                v.path.replace('\n', r"\012")
            ));
        }
    }
    // Objects only memory reaches (memfd, SysV, shared anonymous, deleted
    // files), by device and inode; not the client's own block (made by it,
    // never inherited: `MADV_DONTFORK`), so that a process without shared
    // memory costs no scan of every process.
    let objects: std::collections::BTreeMap<(String, u64), &str> = vmas
        .iter()
        .filter(|v| v.kind() == MappingKind::SharedAnonymous && v.inode != 0)
        .filter(|v| !v.path.starts_with("/memfd:suspend-client"))
        .map(|v| ((v.dev.clone(), v.inode), v.path.as_str()))
        .collect();
    if objects.is_empty() {
        return bad;
    }
    let mut shared: std::collections::BTreeMap<(String, u64), Vec<u32>> = Default::default();
    for other in crate::procfs::other_pids(pid) {
        // Held through an fd (a memfd, a deleted file written with pwrite).
        for fd in fs::read_dir(format!("/proc/{other}/fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(link) = fs::read_link(fd.path()) else {
                continue;
            };
            if !objects.values().any(|p| link.as_os_str() == *p) {
                continue;
            }
            let Ok(meta) = fs::metadata(fd.path()) else {
                continue;
            };
            let dev = crate::sys::dev::hex(meta.dev());
            let key = (dev, meta.ino());
            if objects.contains_key(&key) {
                let pids = shared.entry(key).or_default();
                if !pids.contains(&other) {
                    pids.push(other);
                }
            }
        }
        let Ok(text) = fs::read_to_string(format!("/proc/{other}/maps")) else {
            continue;
        };
        for theirs in crate::procfs::vmas::parse(&text).unwrap_or_default() {
            let key = (theirs.dev, theirs.inode);
            if theirs.perms.as_bytes().get(3) == Some(&b's') && objects.contains_key(&key) {
                let pids = shared.entry(key).or_default();
                if !pids.contains(&other) {
                    pids.push(other);
                }
            }
        }
    }
    for (key, pids) in shared {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        bad.push(format!(
            "memory {} shared with pid {} (a resume from the image would give it a copy of its \
             own)",
            objects[&key],
            pids.join(", pid ")
        ));
    }
    bad
}

/// The namespaces of `pid` (and those its children would get) that are
/// not the agent's own, as people name them: `mount namespace mnt:[N]`.
fn foreign_namespaces(pid: u32) -> Vec<String> {
    const KINDS: [(&str, &str); 10] = [
        ("mnt", "mount namespace"),
        ("net", "network namespace"),
        ("uts", "UTS (host name) namespace"),
        ("ipc", "IPC namespace"),
        ("user", "user namespace"),
        ("cgroup", "cgroup namespace"),
        ("pid", "pid namespace"),
        ("pid_for_children", "pid namespace for its children"),
        ("time", "time namespace"),
        ("time_for_children", "time namespace for its children"),
    ];
    let link = |who: &str, kind: &str| std::fs::read_link(format!("/proc/{who}/ns/{kind}")).ok();
    KINDS
        .iter()
        .filter_map(|(kind, name)| {
            let (theirs, ours) = (link(&pid.to_string(), kind)?, link("self", kind)?);
            (theirs != ours).then(|| format!("its {name} {}", theirs.display()))
        })
        .collect()
}

/// ` (COMM)` of the leader of a session or group, if it runs.
fn leader_name(pid: u32) -> String {
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => format!(" ({})", comm.trim_end()),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_session_keyring(tid: u32, leaves: u32, name: &str) -> TaskFacts {
        use suspend_common::tasks::{FACT_SESSION_KEYRING, KNOWN_SESSION_KEYRING};
        let mut t = TaskFacts {
            tid,
            tgid: 10,
            facts: FACT_SESSION_KEYRING,
            known: KNOWN_SESSION_KEYRING,
            overrun_timer: -1,
            session_leaves: leaves,
            ..TaskFacts::default()
        };
        t.session_leaf[..name.len()].copy_from_slice(name.as_bytes());
        t
    }

    #[test]
    fn a_session_keyring_linking_only_the_users_keyrings_is_no_refusal() {
        // pam_keyinit's: the user keyring linked, nothing else.
        let pam = [with_session_keyring(10, 1, "_uid.1000")];
        assert_eq!(task_refusals(&pam, Some(1000)), Vec::<String>::new());
        let empty = [with_session_keyring(10, 0, "")];
        assert_eq!(task_refusals(&empty, Some(1000)), Vec::<String>::new());
        // Another user's keyring, a key, or more than one link: refused.
        assert_eq!(task_refusals(&pam, Some(0)).len(), 1);
        let key = [
            with_session_keyring(10, 1, "invocation_id"),
            with_session_keyring(11, 1, "x"),
        ];
        let said = task_refusals(&key, Some(1000));
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("invocation_id among them, in thread(s) 10, 11"),
            "{said:?}"
        );
        let two = [with_session_keyring(10, 2, "_uid.1000")];
        assert_eq!(task_refusals(&two, Some(1000)).len(), 1);
        // Unknown (the iterator could not read it) or none of its own: nothing.
        let unknown = [TaskFacts {
            tid: 10,
            overrun_timer: -1,
            ..TaskFacts::default()
        }];
        assert_eq!(task_refusals(&unknown, Some(1000)), Vec::<String>::new());
    }

    #[test]
    fn status() {
        let text = "Name:\tw\nUmask:\t0027\nPPid:\t41\nUid:\t1000\t1001\t1002\t1003\nGid:\t10\t11\t12\t13\nGroups:\t4 24 27 \n";
        let (creds, umask, ppid) = parse_status(text).unwrap();
        assert_eq!(creds.uid, [1000, 1001, 1002, 1003]);
        assert_eq!(umask, 0o027);
        assert_eq!(ppid, 41);
    }
}
