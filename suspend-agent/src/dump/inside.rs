//! Kernel state asked from inside the stopped threads (see
//! [`crate::tracee::inject`]): which thread is asked what, in which order.
//! Each question is its kind's, in `state/`: per thread its sigaltstack
//! (`signals`), tid address, timer slack, TSC mode (`threads`), securebits
//! (`confinement`), parent-death signal (`attributes`), NUMA memory policy
//! (`sched`), speculation controls (`speculation`) and thread keyring
//! (`credentials`); once, through the first thread, every sigaction
//! (`signals`), the program break (`mappings`), the interval and POSIX
//! timers (`timers`), the child subreaper and THP flags, dumpable, MDWE
//! and the `membarrier` registrations (`attributes`), the LDT (`threads`)
//! and the process keyring (`credentials`).

use std::collections::HashMap;

use super::DumpError;
use crate::{
    freeze::Frozen,
    image::format::{AltStack, ITimer, SigAction},
    procfs::vmas::Vma,
    state::{
        attributes, confinement,
        credentials::{self, Keyring},
        mappings, sched, signals, speculation, threads, timers,
    },
    tracee::inject::{Borrowed, Site},
};

/// What the threads told.
#[derive(Debug, Default)]
pub struct Inside {
    pub sigactions: Vec<SigAction>,
    pub brk: Option<u64>,
    pub itimers: Vec<ITimer>,
    pub threads: HashMap<u32, PerThread>,
    /// `PR_GET_CHILD_SUBREAPER`.
    pub child_subreaper: bool,
    /// `PR_GET_THP_DISABLE`.
    pub thp_disable: bool,
    /// Its `membarrier` registrations (`MEMBARRIER_CMD_REGISTER_*` bits).
    pub membarrier: u32,
    /// `PR_GET_DUMPABLE`.
    pub dumpable: Option<u32>,
    /// `PR_GET_MDWE` (`None` before Linux 6.3).
    pub mdwe: Option<u32>,
    /// Whether it set up a local descriptor table (`modify_ldt`).
    pub ldt: bool,
    /// Its POSIX timers' time left, interval and overrun count.
    pub timers: timers::Asked,
    /// It has a process keyring (`KEY_SPEC_PROCESS_KEYRING`).
    pub process_keyring: bool,
}

/// What one thread told.
#[derive(Debug, Default)]
pub struct PerThread {
    pub altstack: Option<AltStack>,
    pub tid_address: Option<u64>,
    /// `PR_GET_SECUREBITS`.
    pub securebits: Option<u32>,
    /// `PR_GET_TIMERSLACK`.
    pub timer_slack_ns: Option<u64>,
    /// `PR_GET_PDEATHSIG` (0: none).
    pub pdeathsig: i32,
    /// `PR_GET_TSC`: 1 `PR_TSC_ENABLE`, 2 `PR_TSC_SIGSEGV`.
    pub tsc: Option<u32>,
    /// Its NUMA memory policy mode (`get_mempolicy`; 0 `MPOL_DEFAULT`).
    pub mempolicy: i32,
    /// Each speculation control a task may set here, with its state
    /// (`PR_GET_SPECULATION_CTRL`, see [`speculation::ask`]).
    pub speculation: Vec<(u32, u32)>,
    /// It has a thread keyring (`KEY_SPEC_THREAD_KEYRING`).
    pub thread_keyring: bool,
}

/// Asks every thread, also one stopped on its way to deliver a signal (it
/// is put back into that stop; see [`crate::tracee::inject`]).
pub fn ask(frozen: &mut Frozen<'_>, vmas: &[Vma]) -> Result<Inside, DumpError> {
    let pid = frozen.pid();
    let Some(block) = vmas
        .iter()
        .find(|v| v.path.starts_with("/memfd:suspend-client"))
        .map(|v| v.start)
    else {
        return Err(DumpError::Parse {
            pid,
            what: "no client block in /proc/PID/maps",
        });
    };
    let site = Site::find(pid, block)?;
    let posix_timers = crate::procfs::timers(pid).map_err(|_| DumpError::Parse {
        pid,
        what: "/proc/PID/timers",
    })?;
    let overruns_before = frozen.overruns_before();
    let mut inside = Inside::default();
    let mut process_done = false;
    for thread in frozen.threads().to_vec() {
        let mut b = Borrowed::new(thread.tid, site, thread.stopped_with)?;
        let altstack = signals::ask_altstack(&mut b, &site)?;
        let tid_address = threads::ask_tid_address(&mut b, &site)?;
        let securebits = confinement::securebits(&mut b)?;
        let timer_slack_ns = threads::ask_timer_slack(&mut b)?;
        let pdeathsig = attributes::ask_pdeath_signal(&mut b, &site)?;
        let tsc = threads::ask_tsc(&mut b, &site)?;
        let mempolicy = sched::ask_mempolicy(&mut b, &site)?;
        let speculation = speculation::ask(&mut b)?;
        let thread_keyring = credentials::ask_keyring(&mut b, Keyring::Thread)?;
        inside.threads.insert(
            thread.tid,
            PerThread {
                thread_keyring,
                speculation,
                tsc,
                mempolicy,
                altstack,
                tid_address,
                securebits,
                timer_slack_ns,
                pdeathsig,
            },
        );
        // Test hook: `SUSPEND_FAULT_INSIDE_DELAY_MS` holds the first thread
        // mid-questions, so a test can kill the process right then.
        if !process_done {
            super::fault_pause("SUSPEND_FAULT_INSIDE_DELAY_MS");
        }
        if !process_done {
            inside.sigactions = signals::ask_actions(&mut b, &site)?;
            inside.brk = mappings::ask_brk(&mut b)?;
            inside.itimers = timers::ask_interval(&mut b, &site)?;
            (inside.child_subreaper, inside.thp_disable) = attributes::ask_flags(&mut b, &site)?;
            inside.dumpable = attributes::ask_dumpable(&mut b)?;
            inside.mdwe = attributes::ask_mdwe(&mut b)?;
            inside.ldt = threads::ask_ldt(&mut b, &site)?;
            inside.timers = timers::ask_posix(&mut b, &site, &posix_timers)?;
            timers::freeze_made(
                &mut inside.timers,
                &inside.sigactions,
                &posix_timers,
                overruns_before,
            );
            inside.process_keyring = credentials::ask_keyring(&mut b, Keyring::Process)?;
            inside.membarrier = attributes::ask_membarrier(&mut b)?;
            process_done = true;
        }
        let held = b.restore()?;
        frozen.set_stopped_with(thread.tid, held);
    }
    site.clear()?;
    Ok(inside)
}
