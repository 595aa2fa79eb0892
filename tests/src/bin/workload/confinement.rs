//! Credentials, set up before anything else: `--uid N` (a user's process)
//! and `--confine` (as root: capabilities dropped from every set, an
//! ambient one raised, securebits and `no_new_privs`; `check` verifies
//! every thread still has exactly that).

/// Becomes user and group `id`, with no supplementary groups, and stays
/// dumpable as a process started by that user would be; with a limit of
/// its own (777 open files, soft), as a user's shell might set.
pub fn become_user(id: u32) {
    // SAFETY: plain credential and limit system calls on this (still
    // single-threaded) process.
    let ok = unsafe {
        let mut files: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut files);
        files.rlim_cur = 777.min(files.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &files) == 0
            && libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresgid(id, id, id) == 0
            && libc::setresuid(id, id, id) == 0
            && libc::prctl(libc::PR_SET_DUMPABLE, 1) == 0
    };
    if !ok {
        eprintln!(
            "workload: becoming uid {id}: {}",
            std::io::Error::last_os_error()
        );
        std::process::exit(2);
    }
}

/// What `--confine` leaves every thread with: the `Cap*` and `NoNewPrivs`
/// lines of its status file, and its securebits.
static CONFINED: std::sync::OnceLock<(Vec<String>, i32)> = std::sync::OnceLock::new();

/// This thread's `Cap*` and `NoNewPrivs` lines.
fn confinement_lines(status: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| l.starts_with("Cap") || l.starts_with("NoNewPrivs"))
        .map(str::to_owned)
        .collect()
}

/// As root: CAP_SYS_MODULE and CAP_NET_RAW out of the bounding set;
/// permitted {CHOWN, DAC_OVERRIDE, NET_BIND_SERVICE}, effective {CHOWN,
/// NET_BIND_SERVICE}, inheritable and ambient {NET_BIND_SERVICE};
/// SECBIT_NOROOT; no_new_privs.
pub fn confine() {
    const CHOWN: u32 = 0;
    const DAC_OVERRIDE: u32 = 1;
    const NET_BIND_SERVICE: u32 = 10;
    const NET_RAW: u32 = 13;
    const SYS_MODULE: u32 = 16;
    let bit = |c: u32| 1u32 << c;
    // SAFETY: prctl and capset on this (still single-threaded) process
    // with valid arguments.
    let ok = unsafe {
        libc::prctl(libc::PR_SET_SECUREBITS, 1) == 0 // SECBIT_NOROOT
            && libc::prctl(libc::PR_CAPBSET_DROP, SYS_MODULE) == 0
            && libc::prctl(libc::PR_CAPBSET_DROP, NET_RAW) == 0
            && {
                let header: [u32; 2] = [0x2008_0522, 0];
                let permitted = bit(CHOWN) | bit(DAC_OVERRIDE) | bit(NET_BIND_SERVICE);
                let data: [u32; 6] = [
                    bit(CHOWN) | bit(NET_BIND_SERVICE),
                    permitted,
                    bit(NET_BIND_SERVICE),
                    0,
                    0,
                    0,
                ];
                libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()) == 0
            }
            && libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                NET_BIND_SERVICE as libc::c_ulong,
                0,
                0,
            ) == 0
            && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    };
    if !ok {
        eprintln!("workload: --confine: {}", std::io::Error::last_os_error());
        std::process::exit(2);
    }
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
    // SAFETY: a plain prctl.
    let bits = unsafe { libc::prctl(libc::PR_GET_SECUREBITS) };
    let _ = CONFINED.set((confinement_lines(&status), bits));
}

/// Every thread's confinement as `--confine` left it.
pub fn verify() -> Result<(), String> {
    let Some((want, bits)) = CONFINED.get() else {
        return Ok(());
    };
    // SAFETY: a plain prctl.
    if unsafe { libc::prctl(libc::PR_GET_SECUREBITS) } != *bits {
        return Err("securebits changed".into());
    }
    let tasks = std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())?;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        if status.is_empty() {
            continue; // a thread that just ended
        }
        if confinement_lines(&status) != *want {
            return Err(format!(
                "thread {} confinement changed: {:?}",
                task.file_name().to_string_lossy(),
                confinement_lines(&status)
            ));
        }
    }
    Ok(())
}
