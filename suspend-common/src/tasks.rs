//! What the task iterator (`suspend_task_facts`, an eBPF `iter/task`
//! program) reports about every thread: state only the thread itself could
//! be asked about with a system call, read from the kernel's structures
//! instead, so a suspend can refuse it before freezing anything.
//!
//! The program is Rust, without CO-RE relocations: the agent finds each
//! member's offset in the running kernel's BTF and passes them in
//! [`TaskFactsLayout`]. An offset of [`ABSENT`] means "not in this kernel"
//! (0 is a real offset: `k_itimer.list` comes first in 6.1), and the fact
//! is reported unknown ([`TaskFacts::known`]).

/// Name of the global with [`TaskFactsLayout`].
pub const TASK_FACTS_LAYOUT_GLOBAL: &str = "TASK_FACTS_LAYOUT";
/// Name of the iterator program (and of its pinned link,
/// `/sys/fs/bpf/suspend/link_suspend_task_facts`: reading that file runs it).
pub const TASK_FACTS_PROGRAM: &str = "suspend_task_facts";

/// An offset the kernel does not have.
pub const ABSENT: u32 = u32::MAX;
/// In [`TaskFactsLayout::io_uring`]: the kernel was built without
/// io_uring (its BTF has neither `task_struct.io_uring` nor `struct
/// io_uring_task`), so no thread can hold a ring: the fact is known, and
/// false.
pub const NOT_BUILT: u32 = u32::MAX - 1;
/// Entries of `io_uring_task.registered_rings` (`IO_RINGFD_REG_MAX`, 16
/// since 5.18); a kernel with another count leaves the fact unknown.
pub const RINGFD_REG_MAX: u32 = 16;

/// Byte offsets in the running kernel's structures; [`ABSENT`] where the
/// kernel has no such member.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskFactsLayout {
    /// `task_struct.pid` (the thread id).
    pub pid: u32,
    /// `task_struct.tgid`.
    pub tgid: u32,
    /// `task_struct.pdeath_signal` (`int`).
    pub pdeath_signal: u32,
    /// `task_struct.mempolicy` (pointer; `CONFIG_NUMA`).
    pub mempolicy: u32,
    /// `task_struct.mm` (pointer).
    pub mm: u32,
    /// `task_struct.cred` (pointer).
    pub cred: u32,
    /// `mm_struct.context.ldt` (pointer; x86 `CONFIG_MODIFY_LDT_SYSCALL`).
    pub mm_ldt: u32,
    /// `mm_struct.flags` (its first word holds `MMF_DUMPABLE_MASK`).
    pub mm_flags: u32,
    /// `cred.thread_keyring` (pointer; `CONFIG_KEYS`).
    pub thread_keyring: u32,
    /// `cred.process_keyring` (pointer; `CONFIG_KEYS`).
    pub process_keyring: u32,
    /// `task_struct.signal` (pointer).
    pub signal: u32,
    /// `signal_struct.posix_timers` (a `list_head`, or from 6.12 an
    /// `hlist_head`: either way its first word points at the first
    /// timer's `list`).
    pub posix_timers: u32,
    /// `k_itimer.list`.
    pub timer_list: u32,
    /// `k_itimer.it_id`.
    pub timer_id: u32,
    /// `k_itimer.it_overrun_last` (an `int`, or from 4.18 an `s64`: its
    /// low word is read).
    pub timer_overrun_last: u32,
    /// `cred.session_keyring` (pointer; null: none of its own).
    pub session_keyring: u32,
    /// `key.keys.root` (a keyring's `assoc_array`'s root pointer).
    pub keyring_root: u32,
    /// `key.keys.nr_leaves_on_tree`.
    pub keyring_leaves: u32,
    /// `assoc_array_node.slots`.
    pub node_slots: u32,
    /// `key.description` (pointer to the NUL-terminated name).
    pub key_description: u32,
    /// `task_struct.io_uring` (pointer to its `io_uring_task`, null until
    /// the thread first uses a ring; `CONFIG_IO_URING`), or [`NOT_BUILT`].
    pub io_uring: u32,
    /// `io_uring_task.registered_rings` (an array of [`RINGFD_REG_MAX`]
    /// `struct file *`: the rings it registered with
    /// `IORING_REGISTER_RING_FDS`).
    pub io_uring_rings: u32,
    /// `io_uring_task.xa.xa_head` (the root of the xarray of the rings it
    /// used: null when empty).
    pub io_uring_contexts: u32,
}

const _: () = assert!(core::mem::size_of::<TaskFactsLayout>() == 92);

/// Slots of an `assoc_array_node` (`ASSOC_ARRAY_FAN_OUT`).
pub const NODE_SLOTS: u32 = 16;
/// Bytes of a key's name the iterator reports (`_uid.4294967295` fits).
pub const KEY_NAME_LEN: usize = 20;

impl TaskFactsLayout {
    /// Nothing known: every fact reported unknown.
    pub const NONE: Self = Self {
        pid: ABSENT,
        tgid: ABSENT,
        pdeath_signal: ABSENT,
        mempolicy: ABSENT,
        mm: ABSENT,
        cred: ABSENT,
        mm_ldt: ABSENT,
        mm_flags: ABSENT,
        thread_keyring: ABSENT,
        process_keyring: ABSENT,
        signal: ABSENT,
        posix_timers: ABSENT,
        timer_list: ABSENT,
        timer_id: ABSENT,
        timer_overrun_last: ABSENT,
        session_keyring: ABSENT,
        keyring_root: ABSENT,
        keyring_leaves: ABSENT,
        node_slots: ABSENT,
        key_description: ABSENT,
        io_uring: ABSENT,
        io_uring_rings: ABSENT,
        io_uring_contexts: ABSENT,
    };
}

/// POSIX timers the iterator follows per process at most; past that, the
/// overrun counts are reported unknown.
pub const MAX_TIMERS: u32 = 64;

/// One thread, as the iterator writes it (one record per task, in the
/// iterator's output).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskFacts {
    pub tid: u32,
    pub tgid: u32,
    /// `PR_GET_PDEATHSIG`'s answer (0: none), if `known & KNOWN_PDEATH_SIGNAL`.
    pub pdeath_signal: i32,
    /// `FACT_*` bits, and the dumpable mode at [`DUMPABLE_SHIFT`].
    pub facts: u32,
    /// `KNOWN_*` bits: which facts were read.
    pub known: u32,
    /// The first POSIX timer (id) whose last expiry was delivered late
    /// (`timer_getoverrun` not 0), or -1; read for a thread-group leader
    /// only (`known & KNOWN_TIMERS`).
    pub overrun_timer: i32,
    /// That timer's overrun count.
    pub overrun: i32,
    /// Keys and keyrings linked in its session keyring of its own, if it
    /// has one (`known & KNOWN_SESSION_KEYRING`, `FACT_SESSION_KEYRING`).
    pub session_leaves: u32,
    /// The name of one of them (the only one, when there is one),
    /// NUL-padded.
    pub session_leaf: [u8; KEY_NAME_LEN],
}

const _: () = assert!(core::mem::size_of::<TaskFacts>() == 52);

/// The thread has a NUMA memory policy of its own (`set_mempolicy`).
pub const FACT_MEMPOLICY: u32 = 1;
/// Its process has a local descriptor table (`modify_ldt`).
pub const FACT_LDT: u32 = 1 << 1;
/// The thread has a thread keyring.
pub const FACT_THREAD_KEYRING: u32 = 1 << 2;
/// Its process has a process keyring.
pub const FACT_PROCESS_KEYRING: u32 = 1 << 3;
/// The thread has a session keyring of its own (not the user's session
/// keyring, which the kernel uses when it has none).
pub const FACT_SESSION_KEYRING: u32 = 1 << 6;
/// The thread holds an io_uring ring: one it registered
/// (`IORING_REGISTER_RING_FDS`, usable with no fd left) or one it used
/// that still exists (its `io_uring_task` lists it).
pub const FACT_IO_URING: u32 = 1 << 7;
/// The dumpable mode (`PR_GET_DUMPABLE`, 0–2) sits in bits 4–5.
pub const DUMPABLE_SHIFT: u32 = 4;
/// `MMF_DUMPABLE_MASK`: the low two bits of `mm_struct.flags`.
pub const DUMPABLE_MASK: u32 = 3;

pub const KNOWN_PDEATH_SIGNAL: u32 = 1;
pub const KNOWN_MEMPOLICY: u32 = 1 << 1;
pub const KNOWN_LDT: u32 = 1 << 2;
pub const KNOWN_KEYRINGS: u32 = 1 << 3;
pub const KNOWN_DUMPABLE: u32 = 1 << 4;
pub const KNOWN_TIMERS: u32 = 1 << 5;
pub const KNOWN_SESSION_KEYRING: u32 = 1 << 6;
pub const KNOWN_IO_URING: u32 = 1 << 7;

impl TaskFacts {
    /// `PR_GET_DUMPABLE`'s answer, if known.
    pub fn dumpable(&self) -> Option<u32> {
        (self.known & KNOWN_DUMPABLE != 0).then_some((self.facts >> DUMPABLE_SHIFT) & DUMPABLE_MASK)
    }

    /// A POSIX timer with an overrun count (id, count), if the timers
    /// were read.
    pub fn overrun(&self) -> Option<Option<(i32, i32)>> {
        (self.known & KNOWN_TIMERS != 0)
            .then_some((self.overrun_timer >= 0).then_some((self.overrun_timer, self.overrun)))
    }

    /// Its own session keyring, if known: `Some(None)` when it has none,
    /// else how many keys and keyrings it links and one's name.
    pub fn session_keyring(&self) -> Option<Option<(u32, &[u8])>> {
        if self.known & KNOWN_SESSION_KEYRING == 0 {
            return None;
        }
        if self.facts & FACT_SESSION_KEYRING == 0 {
            return Some(None);
        }
        let end = self
            .session_leaf
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(KEY_NAME_LEN);
        Some(Some((self.session_leaves, &self.session_leaf[..end])))
    }

    /// Whether `fact` holds, if its `known` bit is set.
    pub fn has(&self, fact: u32, known: u32) -> Option<bool> {
        (self.known & known != 0).then_some(self.facts & fact != 0)
    }
}

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, `Copy`, `u32` fields, no padding (size asserted).
unsafe impl aya::Pod for TaskFactsLayout {}
