//! Freezing a process: every thread seized and stopped with
//! `PTRACE_SEIZE` + `PTRACE_INTERRUPT` (invisible to the process and its
//! parent, unlike `SIGSTOP`).
//!
//! The threads are listed once from `/proc/PID/task`; any thread created
//! meanwhile is recorded by eBPF (`task_newtask` while the registry says
//! `FREEZING`) and stopped from that record, until none is left. Once all
//! are stopped, and the agent has run its syscalls inside them
//! (`inject`), the registry says `FROZEN` and eBPF's run witness counts any
//! of them that is switched in.
//!
//! A [`Frozen`] lets every thread go when dropped: whatever fails while a
//! process is frozen, it is not left frozen. Everything here must run on
//! one OS thread (ptrace attaches to the tracer thread).

mod maps;

use std::{fs, io};

use log::{debug, warn};
use nix::errno::Errno;
use suspend_common::{
    freeze::FrozenTask,
    registry::{STATE_FREEZING, STATE_FROZEN, STATE_HELD, STATE_SUSPENDING},
};

pub use self::maps::{FreezeMaps, MapsError};
use crate::{procfs::exiting, registry::SharedRegistry, sys, tracee::ptrace};

#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    #[error("pid {pid}: its registration changed before the freeze")]
    StateChanged { pid: u32 },
    #[error("pid {pid}: listing /proc/{pid}/task: {source}")]
    ListTasks { pid: u32, source: io::Error },
    #[error("pid {pid}: thread {tid} is traced by another process (a debugger?): {source}")]
    Traced { pid: u32, tid: u32, source: Errno },
    #[error(transparent)]
    Ptrace(#[from] ptrace::PtraceError),
    #[error("pid {pid} exited while it was being frozen")]
    Exited { pid: u32 },
    #[error(transparent)]
    Maps(#[from] MapsError),
}

/// One stopped thread.
#[derive(Clone, Copy, Debug)]
pub struct Thread {
    pub tid: u32,
    /// A signal it was stopped on the way to deliver; given back on release.
    pub stopped_with: Option<i32>,
}

/// A frozen process. Dropping it lets every thread go.
pub struct Frozen<'a> {
    registry: &'a SharedRegistry,
    /// The freeze guard (BPF LSM) is loaded.
    lsm_guard: bool,
    maps: FreezeMaps,
    pid: u32,
    threads: Vec<Thread>,
    watching: bool,
    /// The freeze guard (BPF LSM) holds for this process.
    guarded: bool,
    /// The registry says `held`: let go, it stays so.
    held: bool,
    /// How many of `threads` have been let go (detached).
    let_go: usize,
    done: bool,
    /// Its POSIX timers' overrun counts just before the freeze
    /// ([`Frozen::overruns_before`]).
    overruns_before: OverrunsBefore,
}

/// What the task iterator said of a process's POSIX timers' overrun counts
/// just before it was frozen. A freeze can change them: a traced thread
/// never ignores a signal, and before Linux 6.13 a periodic timer whose
/// signal the process ignores counts every period since it was armed as
/// its overrun once that signal is taken (`state::timers::freeze_made`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverrunsBefore {
    /// Not read: no POSIX timers, or the task iterator could not say.
    #[default]
    Unknown,
    /// Every timer's count was 0.
    None,
    /// The first timer with a count (its id), and that count; the others
    /// were not read.
    First(i32, i32),
}

/// How long a freeze guard holds unless renewed: long enough for the work
/// between renewals, short enough that a dead agent's guard lapses soon.
const GUARD_LEASE: std::time::Duration = std::time::Duration::from_secs(10);

/// What the run witness saw.
#[derive(Clone, Debug, Default)]
pub struct Witness {
    /// Threads that were switched in while frozen, with what eBPF recorded.
    pub ran: Vec<(u32, FrozenTask)>,
}

impl Witness {
    pub fn consistent(&self) -> bool {
        self.ran.is_empty()
    }
}

fn task_ids(pid: u32) -> Result<Vec<u32>, FreezeError> {
    let dir = format!("/proc/{pid}/task");
    let list = |source| FreezeError::ListTasks { pid, source };
    let mut tids = Vec::new();
    for entry in fs::read_dir(&dir).map_err(list)? {
        if let Some(tid) = entry
            .map_err(list)?
            .file_name()
            .to_str()
            .and_then(|n| n.parse().ok())
        {
            tids.push(tid);
        }
    }
    Ok(tids)
}

/// Test hook, from the daemon's environment: `SUSPEND_FAULT_FREEZE_SIGNAL=N`
/// sends every thread signal N as it is seized and lets it stop on its way
/// to deliver it (what an interval timer firing mid-freeze does now and
/// then), with an interrupt left pending. `None` when unset, or when the thread did not stop so within
/// 200 ms (the signal blocked): it is then interrupted as usual.
fn fault_signal_stop(pid: u32, tid: u32) -> Option<ptrace::Stop> {
    let signal: i32 = std::env::var("SUSPEND_FAULT_FREEZE_SIGNAL")
        .ok()?
        .parse()
        .ok()?;
    let _ = crate::sys::process::tgkill(pid, tid, signal);
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
    while std::time::Instant::now() < deadline {
        match crate::sys::ptrace::wait_nohang(tid) {
            Ok(ptrace::Waited::Signal(s)) => {
                // An interrupt that comes while it stops so stays pending
                // (the freeze's own may): it stops the thread again as
                // soon as it is let run.
                let _ = ptrace::interrupt(tid);
                return Some(ptrace::Stop::Signal(s));
            }
            Ok(ptrace::Waited::Exited) | Err(_) => {
                return Some(ptrace::Stop::Exited);
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
    None
}

/// The overrun counts of `pid`'s POSIX timers, read now (where it has
/// any: reading the task iterator walks every task of the machine).
fn overruns_before(pid: u32) -> OverrunsBefore {
    if !crate::procfs::timers(pid).is_ok_and(|t| !t.is_empty()) {
        return OverrunsBefore::Unknown;
    }
    let Ok(threads) = crate::tasks::of_process(pid) else {
        return OverrunsBefore::Unknown;
    };
    let mut known = false;
    for t in &threads {
        match t.overrun() {
            Some(Some((id, count))) => return OverrunsBefore::First(id, count),
            Some(None) => known = true,
            None => {}
        }
    }
    if known {
        OverrunsBefore::None
    } else {
        OverrunsBefore::Unknown
    }
}

impl<'a> Frozen<'a> {
    /// Stops every thread of `pid`, which must be in the `SUSPENDING` state.
    /// `lsm_guard`: the freeze guard's programs are loaded.
    pub fn freeze(
        registry: &'a SharedRegistry,
        lsm_guard: bool,
        pid: u32,
    ) -> Result<Self, FreezeError> {
        let mut maps = FreezeMaps::open()?;
        let moved = registry.with(|r| r.set_state(pid, Some(STATE_SUSPENDING), STATE_FREEZING));
        if !matches!(moved, Ok(true)) {
            return Err(FreezeError::StateChanged { pid });
        }
        if let Err(e) = maps.add_active(1) {
            let _ = registry.with(|r| r.set_state(pid, Some(STATE_FREEZING), STATE_SUSPENDING));
            return Err(e.into());
        }
        let mut frozen = Self {
            registry,
            lsm_guard,
            maps,
            pid,
            threads: Vec::new(),
            watching: false,
            guarded: false,
            held: false,
            let_go: 0,
            done: false,
            overruns_before: overruns_before(pid),
        };
        // Guarded from before the first thread stops.
        frozen.keep_guard()?;
        for tid in task_ids(pid)? {
            frozen.stop(tid)?;
        }
        // Threads created before their creator stopped: recorded by eBPF,
        // and (a last look that costs one directory read) listed now.
        loop {
            let mut found = frozen.maps.take_new_threads(pid)?;
            found.extend(task_ids(pid)?);
            let new = still_to_stop(found, &frozen.threads, exiting);
            if new.is_empty() {
                break;
            }
            debug!("pid {pid}: {} thread(s) created while freezing", new.len());
            for tid in new {
                frozen.stop(tid)?;
            }
        }
        if frozen.threads.is_empty() {
            return Err(FreezeError::Exited { pid });
        }
        Ok(frozen)
    }

    fn stop(&mut self, tid: u32) -> Result<(), FreezeError> {
        let pid = self.pid;
        match ptrace::seize(tid) {
            Ok(()) => {}
            Err(Errno::ESRCH) => return Ok(()), // already gone
            // EPERM: exiting (a zombie thread cannot be attached), or traced.
            Err(Errno::EPERM) if exiting(tid) => return Ok(()),
            Err(source @ Errno::EPERM) => return Err(FreezeError::Traced { pid, tid, source }),
            Err(source) => {
                return Err(ptrace::PtraceError::of(pid, tid, "PTRACE_SEIZE")(source).into());
            }
        }
        self.threads.push(Thread {
            tid,
            stopped_with: None,
        });
        // On error it stays listed: seized, it is let go with the others.
        match fault_signal_stop(pid, tid).map_or_else(|| self.interrupt(tid), Ok)? {
            ptrace::Stop::Interrupted => {}
            ptrace::Stop::Signal(signal) => {
                if let Some(t) = self.threads.last_mut() {
                    t.stopped_with = Some(signal);
                }
            }
            ptrace::Stop::Exited => {
                self.threads.pop();
            }
        }
        Ok(())
    }

    /// Interrupts seized thread `tid` and waits for it to stop.
    fn interrupt(&self, tid: u32) -> Result<ptrace::Stop, FreezeError> {
        let pid = self.pid;
        if let Err(source) = ptrace::interrupt(tid) {
            if source == Errno::ESRCH {
                return Ok(ptrace::Stop::Exited);
            }
            return Err(ptrace::PtraceError::of(pid, tid, "PTRACE_INTERRUPT")(source).into());
        }
        ptrace::wait_stop(tid)
            .map_err(|source| ptrace::PtraceError::of(pid, tid, "waitpid")(source).into())
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn threads(&self) -> &[Thread] {
        &self.threads
    }

    /// Its POSIX timers' overrun counts just before the freeze.
    pub fn overruns_before(&self) -> OverrunsBefore {
        self.overruns_before
    }

    /// Records the signal `tid` is now stopped on its way to deliver.
    pub fn set_stopped_with(&mut self, tid: u32, signal: Option<i32>) {
        if let Some(t) = self.threads.iter_mut().find(|t| t.tid == tid) {
            t.stopped_with = signal;
        }
    }

    pub fn tids(&self) -> Vec<u32> {
        self.threads.iter().map(|t| t.tid).collect()
    }

    /// Test hook (see `dump::fault_hooks`): lets the first thread run for
    /// a moment and stops it again.
    pub fn fault_run_one(&self) {
        let Some(thread) = self.threads.first() else {
            return;
        };
        let tid = nix::unistd::Pid::from_raw(thread.tid as i32);
        match nix::sys::ptrace::cont(tid, None) {
            Ok(()) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                let _ = ptrace::interrupt(thread.tid);
                let _ = ptrace::wait_stop(thread.tid);
                warn!(
                    "fault hook: thread {} of pid {} ran for 20 ms",
                    thread.tid, self.pid
                );
            }
            Err(e) => warn!("fault hook: PTRACE_CONT {}: {e}", thread.tid),
        }
    }

    /// Whether the freeze guard (BPF LSM) protects this process.
    pub fn guarded(&self) -> bool {
        self.guarded
    }

    /// Sets or renews the freeze guard's lease (where the guard is on).
    pub fn keep_guard(&mut self) -> Result<(), MapsError> {
        if self.lsm_guard {
            let deadline = sys::boottime_ns() + GUARD_LEASE.as_nanos() as u64;
            self.maps.guard(self.pid, deadline)?;
            self.guarded = true;
        }
        Ok(())
    }

    /// Starts the run witness: from now on, any of the threads that runs is
    /// counted.
    pub fn start_witness(&mut self) -> Result<(), MapsError> {
        let tids = self.tids();
        self.maps.watch(self.pid, &tids)?;
        self.watching = true;
        // FROZEN: from now on nothing of the process runs, the agent's own
        // syscalls inside it included.
        let pid = self.pid;
        let _ = self
            .registry
            .with(|r| r.set_state(pid, Some(STATE_FREEZING), STATE_FROZEN));
        Ok(())
    }

    /// What the run witness has seen so far.
    pub fn witness(&self) -> Result<Witness, MapsError> {
        Ok(Witness {
            ran: self.maps.witnessed(&self.tids())?,
        })
    }

    /// Kills the process while it is frozen (its image is durable).
    pub fn kill(mut self, pidfd: &sys::PidFd) -> io::Result<()> {
        pidfd.send_signal(libc::SIGKILL)?;
        reap_all(self.pid, &self.tids());
        self.finish(false);
        Ok(())
    }

    /// Marks it `held` in the registry (its threads are about to be
    /// parked), or back to `frozen`.
    pub fn set_held(&mut self, held: bool) {
        let pid = self.pid;
        let (from, to) = if held {
            (STATE_FROZEN, STATE_HELD)
        } else {
            (STATE_HELD, STATE_FROZEN)
        };
        let _ = self.registry.with(|r| r.set_state(pid, Some(from), to));
        self.held = held;
    }

    /// Lets every thread go (also what dropping does).
    pub fn release(mut self) {
        self.finish(true);
    }

    fn finish(&mut self, detach: bool) {
        if self.done {
            return;
        }
        if detach {
            // One thread at a time, counted before it is let go: should
            // anything here panic, `Drop` comes back and lets the rest go.
            let mut dead = Vec::new();
            while let Some(&thread) = self.threads.get(self.let_go) {
                self.let_go += 1;
                match ptrace::detach(thread.tid, thread.stopped_with) {
                    Ok(()) => {}
                    // Killed while frozen: a traced zombie waits for us.
                    Err(Errno::ESRCH) => dead.push(thread.tid),
                    Err(e) => warn!("pid {}: detaching thread {}: {e}", self.pid, thread.tid),
                }
            }
            // Every thread is let go: what follows is not tried twice (a
            // panic in it would otherwise bring `Drop` back for ever).
            self.done = true;
            reap_all(self.pid, &dead);
        }
        self.done = true;
        if self.held && detach {
            // Held: its parked threads stay witnessed (and guarded, where
            // the guard is on) with no agent, until a resume forgets them.
            self.witness_held();
            return;
        }
        if self.watching {
            let tids = self.tids();
            self.maps.unwatch(&tids);
        }
        if let Err(e) = self.maps.add_active(-1) {
            warn!("{e}");
        }
        if self.guarded {
            self.maps.unguard(self.pid);
        }
        let pid = self.pid;
        if self.held {
            return;
        }
        for from in [STATE_FROZEN, STATE_FREEZING] {
            // Back to SUSPENDING: the handshake's clean-up makes it
            // REGISTERED once the client has been told.
            let _ = self
                .registry
                .with(|r| r.set_state(pid, Some(from), STATE_SUSPENDING));
        }
    }
}

impl Frozen<'_> {
    /// Once the parked threads are let go: waits (up to 1 s) until each
    /// sleeps in the park loop's `pause`, then witnesses them afresh (any
    /// switch counted from now on means it ran while held) and guards the
    /// process with no lease. Its count in `freeze_active` stays.
    fn witness_held(&mut self) {
        let pid = self.pid;
        let tids = self.tids();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let asleep = |tid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall"))
                .is_ok_and(|s| asleep_in_pause(&s))
        };
        while !tids.iter().all(|&t| asleep(t)) {
            if std::time::Instant::now() > deadline {
                warn!("pid {pid}: not every parked thread sleeps in pause after 1 s");
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        if let Err(e) = self.maps.watch(pid, &tids) {
            warn!("pid {pid}: witnessing its parked threads: {e}");
        }
        if self.lsm_guard
            && let Err(e) = self.maps.guard_held(pid)
        {
            warn!("pid {pid}: guarding it while held: {e}");
        }
    }
}

/// Of the threads `found` (recorded by eBPF or listed, maybe twice), those
/// to stop next: once each, in tid order, neither `stopped` already nor
/// `exiting`.
fn still_to_stop(
    mut found: Vec<u32>,
    stopped: &[Thread],
    exiting: impl Fn(u32) -> bool,
) -> Vec<u32> {
    found.sort_unstable();
    found.dedup();
    found.retain(|&t| !stopped.iter().any(|k| k.tid == t) && !exiting(t));
    found
}

/// Whether `/proc/PID/task/TID/syscall` says the thread waits in `pause`.
fn asleep_in_pause(syscall: &str) -> bool {
    syscall.starts_with(&format!("{} ", libc::SYS_pause))
}

/// Reaps threads of `pid` that died while we traced them, so none lingers
/// as a zombie reported to us.
fn reap_all(pid: u32, tids: &[u32]) {
    for tid in reap_order(pid, tids) {
        ptrace::reap(tid);
    }
}

/// Every other thread first, the leader last (its exit is reported only
/// after all the others').
fn reap_order(pid: u32, tids: &[u32]) -> Vec<u32> {
    tids.iter()
        .filter(|&&t| t != pid)
        .chain(tids.iter().filter(|&&t| t == pid))
        .copied()
        .collect()
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        // Should letting one thread go panic, the next are still let go
        // (each is counted before it is, and `finish` is done once the
        // last is: every try gets further, and ends), and
        // then the first panic goes on (unless one already unwinds here).
        let mut panicked = None;
        while let Err(panic) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.finish(true)))
        {
            panicked.get_or_insert(panic);
        }
        if let Some(panic) = panicked
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(tids: &[u32]) -> Vec<Thread> {
        tids.iter()
            .map(|&tid| Thread {
                tid,
                stopped_with: None,
            })
            .collect()
    }

    #[test]
    fn threads_still_to_stop_are_new_alive_and_named_once() {
        let none = |_| false;
        assert_eq!(still_to_stop(vec![9, 7, 9, 8], &[], none), [7, 8, 9]);
        assert_eq!(
            still_to_stop(vec![7, 8, 9, 10], &stopped(&[7, 9]), none),
            [8, 10]
        );
        assert_eq!(
            still_to_stop(vec![8, 10, 11], &stopped(&[7]), |t| t == 10),
            [8, 11]
        );
        assert!(still_to_stop(vec![7, 7], &stopped(&[7]), none).is_empty());
        assert!(still_to_stop(Vec::new(), &stopped(&[7]), none).is_empty());
    }

    #[test]
    fn the_leader_is_reaped_last() {
        assert_eq!(reap_order(7, &[7, 8, 9]), [8, 9, 7]);
        assert_eq!(reap_order(7, &[9, 7, 8]), [9, 8, 7]);
        assert_eq!(reap_order(7, &[8, 9]), [8, 9]);
        assert_eq!(reap_order(7, &[7]), [7]);
        assert!(reap_order(7, &[]).is_empty());
    }

    #[test]
    fn a_thread_sleeps_in_pause_only_when_its_syscall_line_says_so() {
        let pause = libc::SYS_pause;
        assert!(asleep_in_pause(&format!(
            "{pause} 0x0 0x0 0x0 0x0 0x0 0x0 0x7ffd1a2b3c40 0x7f3e2a1b0c5d\n"
        )));
        // Another call whose number starts with the same digits.
        assert!(!asleep_in_pause(&format!("{pause}0 0x0 0x0\n")));
        assert!(!asleep_in_pause("202 0x7f3e2a1b0c5d 0x80 0x0\n")); // futex
        assert!(!asleep_in_pause("running\n"));
        assert!(!asleep_in_pause("-1 0x7ffd1a2b3c40 0x7f3e2a1b0c5d\n"));
        assert!(!asleep_in_pause(""));
    }

    #[test]
    fn a_witness_that_saw_nothing_run_is_consistent() {
        assert!(Witness::default().consistent());
        let ran = Witness {
            ran: vec![(8, FrozenTask::default())],
        };
        assert!(!ran.consistent());
    }

    #[test]
    fn every_thread_of_a_process_is_listed() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            tx.send(nix::unistd::gettid().as_raw() as u32).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        let pid = std::process::id();
        let tids = task_ids(pid).unwrap();
        assert!(tids.contains(&pid), "{tids:?} lacks the leader {pid}");
        assert!(tids.contains(&tid), "{tids:?} lacks thread {tid}");
        drop(done_tx);
        other.join().unwrap();
        assert!(matches!(
            task_ids(u32::MAX),
            Err(FreezeError::ListTasks { pid: u32::MAX, .. })
        ));
    }
}
