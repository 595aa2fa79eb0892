//! `--sched`: every thread `SCHED_BATCH`, nice 7, on CPU 0 only (set on
//! the main thread before any other starts, so all inherit it); `check`
//! verifies each thread still is.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether `--sched` set the scheduling.
static SCHED: AtomicBool = AtomicBool::new(false);

/// `SCHED_BATCH`, nice 7, CPU 0 only, for this (still the only) thread.
pub fn set() {
    // SAFETY: plain scheduling calls on the calling thread with valid
    // arguments.
    let ok = unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        let mut cpus: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut cpus);
        libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0
            && libc::setpriority(libc::PRIO_PROCESS, 0, 7) == 0
            && libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &cpus) == 0
    };
    if !ok {
        eprintln!("workload: --sched: {}", std::io::Error::last_os_error());
        std::process::exit(2);
    }
    SCHED.store(true, Ordering::SeqCst);
}

/// Every thread still `SCHED_BATCH`, nice 7, on CPU 0 only (from its
/// `/proc` files: policy and nice in `stat`, `Cpus_allowed_list`).
pub fn verify() -> Result<(), String> {
    if !SCHED.load(Ordering::SeqCst) {
        return Ok(());
    }
    let tasks = std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())?;
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        let (Ok(stat), Ok(status)) = (
            std::fs::read_to_string(task.path().join("stat")),
            std::fs::read_to_string(task.path().join("status")),
        ) else {
            continue; // a thread that just ended
        };
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // After the comm: field 3 is the first; nice is field 19, policy 41.
        let (nice, policy) = (fields.get(16).copied(), fields.get(38).copied());
        let cpus = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(str::trim);
        if nice != Some("7") || policy != Some("3") || cpus != Some("0") {
            return Err(format!(
                "thread {tid} scheduling changed: nice {nice:?} policy {policy:?} cpus {cpus:?}"
            ));
        }
    }
    Ok(())
}
