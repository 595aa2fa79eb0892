//! The task iterator: one [`TaskFacts`] record per thread of the machine,
//! written to the iterator's output (the agent reads it by reading the
//! pinned link). Only reads; every read through `bpf_probe_read_kernel`,
//! at offsets the agent found in the kernel's BTF.

use core::ffi::c_void;

use aya_ebpf::{
    Global,
    bindings::seq_file,
    helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes, generated::bpf_seq_write},
};
use suspend_common::tasks::{
    ABSENT, DUMPABLE_MASK, DUMPABLE_SHIFT, FACT_IO_URING, FACT_LDT, FACT_MEMPOLICY,
    FACT_PROCESS_KEYRING, FACT_SESSION_KEYRING, FACT_THREAD_KEYRING, KNOWN_DUMPABLE,
    KNOWN_IO_URING, KNOWN_KEYRINGS, KNOWN_LDT, KNOWN_MEMPOLICY, KNOWN_PDEATH_SIGNAL,
    KNOWN_SESSION_KEYRING, KNOWN_TIMERS, MAX_TIMERS, NODE_SLOTS, NOT_BUILT, RINGFD_REG_MAX,
    TaskFacts, TaskFactsLayout,
};

#[unsafe(no_mangle)]
static TASK_FACTS_LAYOUT: Global<TaskFactsLayout> = Global::new(TaskFactsLayout::NONE);

/// Reads a `T` at `base + offset`; `None` if the offset is unknown
/// ([`ABSENT`]), the base is null, or the read fails.
#[inline(always)]
fn read<T>(base: *const u8, offset: u32) -> Option<T> {
    if offset == ABSENT || base.is_null() {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel checks the read; the offset is the
    // member's, from the kernel's BTF.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(offset as usize).cast::<T>()) }.ok()
}

/// Reads a `T` at `at` (a kernel address).
#[inline(always)]
fn load<T>(at: *const u8) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the read.
    unsafe { bpf_probe_read_kernel(at.cast::<T>()) }.ok()
}

/// Follows the timer list whose head is at `head` (a `list_head` ends at
/// its head, an `hlist_head` at null; both keep the next pointer first),
/// noting in `facts` the first timer with an overrun count. Returns
/// whether the walk reached the end within [`MAX_TIMERS`] steps.
#[inline(always)]
fn timers(head: *const u8, layout: &TaskFactsLayout, facts: &mut TaskFacts) -> bool {
    let Some(mut at) = load::<*const u8>(head) else {
        return false;
    };
    for _ in 0..MAX_TIMERS {
        if at.is_null() || at == head {
            return true;
        }
        let timer = at.wrapping_sub(layout.timer_list as usize);
        if facts.overrun_timer < 0 {
            let overrun = read::<i32>(timer, layout.timer_overrun_last).unwrap_or(0);
            if overrun != 0 {
                facts.overrun_timer = read::<i32>(timer, layout.timer_id).unwrap_or(0);
                facts.overrun = overrun;
            }
        }
        match load::<*const u8>(at) {
            Some(next) => at = next,
            None => return false,
        }
    }
    at.is_null() || at == head
}

/// Notes in `facts` what the session keyring at `keyring` links: how many
/// keys and keyrings, and the name of the first found in the root node of
/// its `assoc_array` (a pointer there with bit 0 clear is a leaf, a key
/// whose address has its low two bits as tags). Returns false if the
/// count cannot be read.
#[inline(always)]
fn session_keyring(keyring: *const u8, layout: &TaskFactsLayout, facts: &mut TaskFacts) -> bool {
    let Some(leaves) = read::<u64>(keyring, layout.keyring_leaves) else {
        return false;
    };
    facts.session_leaves = leaves.min(u32::MAX as u64) as u32;
    if leaves == 0 || layout.node_slots == ABSENT || layout.key_description == ABSENT {
        return true;
    }
    let Some(root) = read::<usize>(keyring, layout.keyring_root) else {
        return true;
    };
    let mut leaf = 0;
    if root & 1 == 0 {
        leaf = root;
    } else {
        let node = (root & !3) as *const u8;
        for i in 0..NODE_SLOTS {
            let slot = read::<usize>(node, layout.node_slots + 8 * i).unwrap_or(0);
            if slot != 0 && slot & 1 == 0 {
                leaf = slot;
                break;
            }
        }
    }
    if leaf != 0
        && let Some(name) = read::<*const u8>((leaf & !3) as *const u8, layout.key_description)
        && !name.is_null()
    {
        // SAFETY: reads at most the buffer's length from a kernel string.
        let _ = unsafe { bpf_probe_read_kernel_str_bytes(name, &mut facts.session_leaf) };
    }
    true
}

/// Whether the pointer at `base + offset` is set, if it can be read.
#[inline(always)]
fn set(base: *const u8, offset: u32) -> Option<bool> {
    read::<*const u8>(base, offset).map(|p| !p.is_null())
}

/// Whether the thread at `task` holds an io_uring ring: its
/// `io_uring_task` (none until it first uses a ring) has a ring it
/// registered (`IORING_REGISTER_RING_FDS`: usable with no fd, and with
/// `IORING_SETUP_NO_MMAP` no mapping, left) or lists a ring it used that
/// still exists (its `xa` not empty). `None` if that cannot be read.
#[inline(always)]
fn io_uring(task: *const u8, layout: &TaskFactsLayout) -> Option<bool> {
    if layout.io_uring == NOT_BUILT {
        return Some(false);
    }
    if layout.io_uring_rings == ABSENT || layout.io_uring_contexts == ABSENT {
        return None;
    }
    let tctx = read::<*const u8>(task, layout.io_uring)?;
    if tctx.is_null() {
        return Some(false);
    }
    if set(tctx, layout.io_uring_contexts)? {
        return Some(true);
    }
    for i in 0..RINGFD_REG_MAX {
        if set(tctx, layout.io_uring_rings + 8 * i)? {
            return Some(true);
        }
    }
    Some(false)
}

/// Writes `facts` to the iterator's output.
#[inline(always)]
fn write(seq: *mut seq_file, facts: &TaskFacts) {
    // SAFETY: `seq` is the iterator's seq_file; `facts` is initialized
    // memory of the given size on this program's stack.
    unsafe {
        bpf_seq_write(
            seq,
            (facts as *const TaskFacts).cast::<c_void>(),
            core::mem::size_of::<TaskFacts>() as u32,
        )
    };
}

/// `ctx` is a `struct bpf_iter__task { struct bpf_iter_meta *meta; struct
/// task_struct *task; }`; `task` is null on the last call.
pub fn on_task(ctx: *mut c_void) -> i32 {
    let ctx = ctx.cast::<*const u8>();
    // SAFETY: the iterator's context, as above: two pointers.
    let (meta, task) = unsafe { (*ctx, *ctx.add(1)) };
    if task.is_null() || meta.is_null() {
        return 0;
    }
    // SAFETY: `bpf_iter_meta` starts with `struct seq_file *seq`.
    let seq = unsafe { *meta.cast::<*mut seq_file>() };
    let layout = TASK_FACTS_LAYOUT.load();
    let mut facts = TaskFacts {
        tid: read::<u32>(task, layout.pid).unwrap_or(0),
        tgid: read::<u32>(task, layout.tgid).unwrap_or(0),
        overrun_timer: -1,
        ..TaskFacts::default()
    };
    if facts.tid == 0 {
        return 0;
    }
    // Read for an exited thread too: its exit let go of every ring it
    // registered and emptied its list, so it holds none (and is not
    // left unknown, which would refuse the process).
    if let Some(holds) = io_uring(task, &layout) {
        facts.known |= KNOWN_IO_URING;
        if holds {
            facts.facts |= FACT_IO_URING;
        }
    }
    // A thread that has exited (its mm dropped, not yet reaped) or a
    // kernel thread: nothing of it is judged, as the check from inside
    // skips a thread it cannot ask.
    let mm = read::<*const u8>(task, layout.mm);
    if mm.is_some_and(|mm| mm.is_null()) {
        write(seq, &facts);
        return 0;
    }
    if let Some(signal) = read::<i32>(task, layout.pdeath_signal) {
        facts.pdeath_signal = signal;
        facts.known |= KNOWN_PDEATH_SIGNAL;
    }
    if let Some(policy) = set(task, layout.mempolicy) {
        facts.known |= KNOWN_MEMPOLICY;
        if policy {
            facts.facts |= FACT_MEMPOLICY;
        }
    }
    if let Some(mm) = mm {
        if let Some(ldt) = set(mm, layout.mm_ldt) {
            facts.known |= KNOWN_LDT;
            if ldt {
                facts.facts |= FACT_LDT;
            }
        }
        if let Some(flags) = read::<u64>(mm, layout.mm_flags) {
            facts.known |= KNOWN_DUMPABLE;
            facts.facts |= (flags as u32 & DUMPABLE_MASK) << DUMPABLE_SHIFT;
        }
    }
    if let Some(cred) = read::<*const u8>(task, layout.cred)
        && let Some(session) = read::<*const u8>(cred, layout.session_keyring)
    {
        if session.is_null() {
            facts.known |= KNOWN_SESSION_KEYRING;
        } else if session_keyring(session, &layout, &mut facts) {
            facts.known |= KNOWN_SESSION_KEYRING;
            facts.facts |= FACT_SESSION_KEYRING;
        }
    }
    if let Some(cred) = read::<*const u8>(task, layout.cred)
        && let (Some(thread), Some(process)) = (
            set(cred, layout.thread_keyring),
            set(cred, layout.process_keyring),
        )
    {
        facts.known |= KNOWN_KEYRINGS;
        if thread {
            facts.facts |= FACT_THREAD_KEYRING;
        }
        if process {
            facts.facts |= FACT_PROCESS_KEYRING;
        }
    }
    // POSIX timers are the process's: followed from its leader only.
    if facts.tid == facts.tgid
        && layout.posix_timers != ABSENT
        && layout.timer_list != ABSENT
        && layout.timer_overrun_last != ABSENT
        && let Some(signal) = read::<*const u8>(task, layout.signal)
        && !signal.is_null()
    {
        // A timer whose signal is ignored (6.13+ keeps it on
        // `ignored_posix_timers` too, through another member) stays on
        // `posix_timers`: one walk sees every timer.
        let whole = timers(
            signal.wrapping_add(layout.posix_timers as usize),
            &layout,
            &mut facts,
        );
        if whole {
            facts.known |= KNOWN_TIMERS;
        }
    }
    write(seq, &facts);
    0
}
