//! The image format, version 5.
//!
//! An image is a directory (mode 0700) holding three files (mode 0600):
//!
//! - `meta.jsonl`: one record per line, each line `<xxh3> <json>` where
//!   `<xxh3>` is the 16-hex-digit XXH3-64 of the JSON text that follows
//!   (it finds damage and says which line). The first record is the
//!   [`Header`], the last the [`End`], which counts the records before it
//!   (so a truncated file is detected).
//! - `pages.img`: page contents; [`PageRun`]s in the [`Mapping`] records
//!   say where, and carry the BLAKE3 hash of their bytes. A run is stored
//!   raw (page-aligned where the image is not compressed) or, where the
//!   header names a [`Codec`] and the run says how many bytes it takes
//!   (`stored`), compressed as one frame; its hash is always of the pages
//!   themselves.
//! - `meta.sig`: the agent's Ed25519 signature over `meta.jsonl` (and so,
//!   through the run hashes, over `pages.img`); see [`super::sign`]. An
//!   image nobody trusted signed is never acted on.
//!
//! JSON keeps the metadata readable (`suspend-agent inspect`, `jq`) and the
//! format easy to extend; the restorer never reads it (the agent turns it
//! into the restorer's argument block).

use serde::{Deserialize, Serialize};

/// `format` of every header.
pub const FORMAT: &str = "suspend-image";
/// The version this agent writes. 3 added inotify watches and deleted
/// files' bytes: an agent that reads only 2 refuses such an image rather
/// than drop them. 5 added compressed page runs ([`Header::codec`],
/// [`PageRun::stored`]), which an older agent would take for damage.
pub const FORMAT_VERSION: u32 = 5;
/// The oldest version this agent reads (2 lacks only what 3 added: an
/// image a held process was held with before an upgrade still resumes).
pub const FORMAT_VERSION_OLDEST: u32 = 2;
/// The metadata file.
pub const META_FILE: &str = "meta.jsonl";
/// The page file.
pub const PAGES_FILE: &str = "pages.img";
/// The signature of the metadata file.
pub const SIG_FILE: &str = "meta.sig";
/// The most `meta.jsonl` may hold: far above any real process's (a record
/// per thread, mapping and file), far below what would strain the agent.
pub const MAX_META_BYTES: u64 = 256 << 20;
/// Page size the image is written in.
pub const PAGE_SIZE: u64 = 4096;
/// Pages one checksum covers at most.
pub const MAX_RUN_PAGES: u64 = 256;

/// One line of `meta.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Header(Header),
    Process(Process),
    Thread(Thread),
    Mapping(Mapping),
    File(File),
    Witness(Witness),
    End(End),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// Seconds since the epoch when the dump started.
    pub created_unix: u64,
    pub agent_version: String,
    /// `uname -r` of the machine that wrote it.
    pub kernel: String,
    pub hostname: String,
    pub cpu: Cpu,
    pub page_size: u64,
    /// How the page runs that say so ([`PageRun::stored`]) are compressed;
    /// none in an image before version 5, or one written uncompressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<Codec>,
}

/// A compression of page runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// One Zstandard frame per run.
    Zstd,
}

impl Codec {
    /// As a person reads it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
        }
    }
}

/// What the saved register state depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub vendor: String,
    /// XSAVE features enabled (XCR0): a restore needs a CPU with all of them.
    pub xcr0: u64,
    /// Size of the xstate area for those features.
    pub xstate_size: u64,
}

impl Cpu {
    /// This machine's.
    pub fn here() -> Self {
        let (xstate_size, xcr0) = crate::sys::cpu::xstate_layout();
        Self {
            vendor: crate::sys::cpu::vendor(),
            xcr0,
            xstate_size: xstate_size as u64,
        }
    }
}

/// Identity of a file, to tell at restore whether it is still the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    /// What a regular file holds, to know a copy of it (another inode:
    /// another machine, a package installed again) from another file
    /// (`state/identity.rs`). `None` in an image older than it, and for
    /// what is not a regular file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

/// A regular file's identity by its contents, taken at suspend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// An ELF file's GNU build-id (`NT_GNU_BUILD_ID`), hex; `None` for a
    /// file without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// Its contents' digest; `None` where the process's user could not
    /// read it at suspend (only the very same inode is then accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Its inode's change time (ns), which nobody sets back: the very
    /// same inode with another is compared as a copy is (its mtime may
    /// have been set back over other bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime_ns: Option<i64>,
}

/// A BLAKE3 digest of a file's contents, and what it covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub of: DigestOf,
    /// Hex.
    pub blake3: String,
}

/// What a [`Digest`] covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestOf {
    /// Every byte (a file of up to 1 MiB): `b3sum` says the same.
    Full,
    /// Its size, its first and last 64 KiB and 64 blocks of 4 KiB spread
    /// evenly between (a larger file): a change elsewhere is not seen.
    Sampled,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Creds {
    /// Real, effective, saved, filesystem.
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    pub groups: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// mm fields from `/proc/PID/stat` (see `proc(5)`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MmFields {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub exe: Option<FileId>,
    pub cwd: String,
    /// The working directory's identity (device and inode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd_id: Option<FileId>,
    pub root: String,
    pub umask: u32,
    pub creds: Creds,
    pub rlimits: Vec<Rlimit>,
    pub personality: u32,
    /// `/proc/PID/auxv` as (type, value) pairs.
    pub auxv: Vec<(u64, u64)>,
    pub mm: MmFields,
    /// Signals pending for the whole process: raw `siginfo_t`s, base64.
    pub shared_pending: Vec<String>,
    pub threads: u32,
    /// Every signal's action (`rt_sigaction`, asked from inside).
    pub sigactions: Vec<SigAction>,
    /// The program break (`brk(0)`, asked from inside).
    pub brk: Option<u64>,
    /// `ITIMER_REAL`, `ITIMER_VIRTUAL`, `ITIMER_PROF`, those that are armed.
    pub itimers: Vec<ITimer>,
    /// What `prctl` and `/proc` keep for the whole process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attributes>,
    /// What the process had that this image does not hold (it was held,
    /// and those stayed in the held process): a resume from the image
    /// alone refuses it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_only: Vec<String>,
    /// Its session and process group, as `/proc/PID/stat` gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// Its POSIX timers (`timer_create`), by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub posix_timers: Vec<PosixTimer>,
    /// Its cgroups: the lines of `/proc/PID/cgroup`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroups: Vec<String>,
    /// Its vDSO, as the kernel it ran on made it (`state/vdso.rs`). `None`
    /// in an image older than it (a resume then needs the same kernel
    /// release) and for a process without one.
    /// (Boxed: a record of it is a few hundred bytes, and most of a
    /// `Record` in memory is a `Thread`'s size.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vdso: Option<Box<Vdso>>,
}

/// A process's vDSO: what its code may hold pointers into. A resume on a
/// kernel whose vDSO has every one of these functions at the same offset
/// moves that vDSO in its place; on another, it maps a copy of these
/// bytes there, each function's entry a jump to the same function in this
/// kernel's vDSO (`state/vdso.rs`). Where the kernel's other mappings
/// (`[vvar]`, `[vvar_vclock]`) lay beside it is their [`Mapping`]s'.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vdso {
    /// BLAKE3 of its bytes, hex.
    pub blake3: String,
    /// The functions its dynamic symbol table exports, by name.
    pub symbols: Vec<VdsoSymbol>,
    /// Its bytes, base64 (two pages on x86_64; signed with the rest of
    /// the metadata).
    pub bytes: String,
}

/// A function the vDSO exports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VdsoSymbol {
    /// As its dynamic symbol table names it (`__vdso_clock_gettime`,
    /// `clock_gettime`: aliases at one offset).
    pub name: String,
    /// From the vDSO's first byte.
    pub offset: u64,
    /// Bytes of its code (`st_size`).
    pub size: u64,
}

/// Where the kernel cannot be told a POSIX timer's id (before 6.15), a
/// resume reaches it by making and deleting every id below: up to this
/// many (a suspend refuses a timer with a higher id there).
pub const MAX_TIMER_ID_FILLERS: i32 = 4096;

/// A POSIX timer: `/proc/PID/timers`, and `timer_gettime` asked from
/// inside. Created again with the same id, clock and notification, armed
/// with the time it had left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PosixTimer {
    pub id: i32,
    pub clockid: i32,
    /// `SIGEV_SIGNAL` 0, `SIGEV_NONE` 1, `SIGEV_THREAD_ID` 4 (| signal).
    pub notify: i32,
    pub signal: i32,
    /// `sigev_value`.
    pub value: u64,
    /// The thread a `SIGEV_THREAD_ID` timer signals.
    pub tid: u32,
    pub value_ns: u64,
    pub interval_ns: u64,
    /// Its overrun count when saved (`timer_getoverrun`): no call sets it,
    /// so only a held process keeps one that is not 0 (a full image is
    /// refused); an older agent's image has 0.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub overrun: i64,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

/// The session and process group of a process. A resume makes the process
/// lead again what it led (`setsid`, `setpgid`); one that led neither
/// comes back in the resume command's (a suspend says so: `--new-session`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub sid: u32,
    pub pgid: u32,
}

/// Process-wide attributes a resume gives back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    /// `/proc/PID/oom_score_adj`.
    pub oom_score_adj: i32,
    /// `PR_GET_CHILD_SUBREAPER` (asked from inside).
    pub child_subreaper: bool,
    /// `PR_GET_THP_DISABLE` (asked from inside).
    pub thp_disable: bool,
    /// `/proc/PID/loginuid` (the audit login uid; `None` without audit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loginuid: Option<u32>,
    /// The `membarrier` registrations (`MEMBARRIER_CMD_REGISTER_*` bits)
    /// found by asking from inside.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub membarrier: u32,
    /// `PR_GET_DUMPABLE` (0 or 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dumpable: Option<u32>,
    /// `PR_GET_MDWE` flags, where the kernel has them and some are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdwe: Option<u32>,
    /// `/proc/PID/coredump_filter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coredump_filter: Option<u32>,
    /// The nice value of its autogroup (`/proc/PID/autogroup`), where the
    /// kernel has autogroups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autogroup_nice: Option<i32>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// One signal's `struct kernel_sigaction`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigAction {
    pub signal: u32,
    /// 0 `SIG_DFL`, 1 `SIG_IGN`, else the handler's address.
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// An armed interval timer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ITimer {
    /// 0 `ITIMER_REAL`, 1 `ITIMER_VIRTUAL`, 2 `ITIMER_PROF`.
    pub which: u32,
    pub interval_us: u64,
    pub value_us: u64,
}

/// A thread's alternate signal stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AltStack {
    pub sp: u64,
    pub flags: u32,
    pub size: u64,
}

/// x86-64 general registers (`struct user_regs_struct`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

/// `user_regs_struct` ⇄ [`Regs`], field by field, from one list.
macro_rules! convert_regs {
    ($($field:ident),*) => {
        impl From<&libc::user_regs_struct> for Regs {
            fn from(r: &libc::user_regs_struct) -> Self {
                Self { $($field: r.$field),* }
            }
        }
        impl From<&Regs> for libc::user_regs_struct {
            fn from(r: &Regs) -> Self {
                Self { $($field: r.$field),* }
            }
        }
    };
}

convert_regs!(
    r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs,
    eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs
);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rseq {
    pub addr: u64,
    pub len: u32,
    pub signature: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    pub tid: u32,
    pub regs: Regs,
    /// The `NT_X86_XSTATE` area, base64.
    pub xstate: String,
    pub sigmask: u64,
    /// Signals pending for this thread: raw `siginfo_t`s, base64.
    pub pending: Vec<String>,
    pub rseq: Option<Rseq>,
    pub robust_list: (u64, u64),
    /// A signal it was stopped on the way to deliver (delivered on resume).
    /// Images before this field's siginfo was kept have it here; newer ones
    /// save it, siginfo and all, as the first of `pending`.
    pub stopped_with: Option<i32>,
    /// `sigaltstack` (asked from inside), if it has one.
    pub sigaltstack: Option<AltStack>,
    /// `set_tid_address` value (`PR_GET_TID_ADDRESS`, asked from inside).
    pub tid_address: Option<u64>,
    /// Its capability sets, securebits and `no_new_privs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confinement: Option<Confinement>,
    /// Its seccomp filters, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seccomp: Vec<SeccompFilter>,
    /// Its scheduling policy, nice value, priority and CPU affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sched: Option<Sched>,
    /// `PR_GET_TIMERSLACK` (asked from inside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer_slack_ns: Option<u64>,
    /// `PR_GET_TSC` when it is not the default (`PR_TSC_SIGSEGV`, 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsc: Option<u32>,
    /// Its speculation controls (`PR_GET_SPECULATION_CTRL`): (control,
    /// state) for each one the kernel lets a task set (store bypass 0,
    /// indirect branch 1, L1D flush 2; the state's `PR_SPEC_*` bits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speculation: Vec<(u32, u32)>,
    /// `ioprio_get(IOPRIO_WHO_PROCESS, tid)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ioprio: Option<u32>,
    /// Its name (`/proc/PID/task/TID/comm`; the main thread's is the
    /// process's `comm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
}

/// A thread's scheduling (`sched_getattr`, `sched_getaffinity`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sched {
    /// `SCHED_OTHER` 0, `FIFO` 1, `RR` 2, `BATCH` 3, `IDLE` 5, `DEADLINE` 6.
    pub policy: u32,
    /// `SCHED_FLAG_RESET_ON_FORK` (the only flag kept).
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    /// `SCHED_DEADLINE`'s parameters (ns).
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    /// The CPUs it may run on, bit `n` of word `n / 64` for CPU `n`.
    pub affinity: Vec<u64>,
    /// Utilization clamps (min, max) where the kernel has them and they
    /// are not the defaults (0, 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_clamp: Option<(u32, u32)>,
}

/// One seccomp filter of a thread, as `PTRACE_SECCOMP_GET_FILTER` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompFilter {
    /// `SECCOMP_FILTER_FLAG_*` it was installed with (as far as the kernel
    /// keeps them: `LOG`).
    pub flags: u64,
    /// Its `struct sock_filter` array, base64.
    pub program: String,
}

/// What confines a thread: its capability sets (bit `n`: capability `n`,
/// as `/proc/PID/status` shows them), securebits (asked from inside) and
/// `no_new_privs`. A resume gives them back as the last thing each thread
/// does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confinement {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
    pub securebits: u32,
    pub no_new_privs: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingKind {
    /// Private anonymous memory (including `[heap]` and `[stack]`).
    Anonymous,
    /// Private file mapping: only the pages the process wrote are saved.
    PrivateFile,
    /// Shared file mapping: the contents are in the file.
    SharedFile,
    /// Shared anonymous memory, SysV shm or memfd: contents saved.
    SharedAnonymous,
    /// `[vdso]`, `[vvar]`, `[vsyscall]`: provided by the kernel.
    Kernel,
}

/// A run of saved pages of one mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRun {
    /// Index of its first page within the mapping.
    pub first_page: u64,
    pub pages: u64,
    /// Byte offset in `pages.img` (page-aligned in an image without a
    /// codec).
    pub at: u64,
    /// BLAKE3 hash of its pages (uncompressed), 64 hex digits.
    pub blake3: String,
    /// Bytes it takes in `pages.img`, compressed with the header's codec;
    /// none: stored raw (`pages` × [`PAGE_SIZE`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<u64>,
}

impl PageRun {
    /// Bytes it takes in `pages.img`.
    pub fn stored_len(&self) -> u64 {
        self.stored.unwrap_or(self.pages * PAGE_SIZE)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// As in `/proc/PID/maps`: `rwxp`, `r--s`, …
    pub perms: String,
    pub offset: u64,
    pub path: String,
    pub kind: MappingKind,
    pub file: Option<FileId>,
    pub pages: Vec<PageRun>,
    /// What `madvise` said of it that the kernel keeps with the mapping.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advice: Vec<Advice>,
    /// Sealed (`mseal`, `VmFlags` `sl`): sealed again at resume.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
}

/// `madvise` advice the kernel keeps with a mapping (shown as `VmFlags` in
/// `/proc/PID/smaps`), given again at resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Advice {
    DontFork,
    WipeOnFork,
    DontDump,
    HugePage,
    NoHugePage,
    Mergeable,
}

impl Advice {
    /// The advice a `VmFlags` two-letter flag records, if any.
    pub fn from_vm_flag(flag: &str) -> Option<Self> {
        Some(match flag {
            "dc" => Self::DontFork,
            "wf" => Self::WipeOnFork,
            "dd" => Self::DontDump,
            "hg" => Self::HugePage,
            "nh" => Self::NoHugePage,
            "mg" => Self::Mergeable,
            _ => return None,
        })
    }

    /// Its `madvise(2)` advice number.
    pub fn madvise(self) -> i32 {
        match self {
            Self::DontFork => libc::MADV_DONTFORK,
            Self::WipeOnFork => libc::MADV_WIPEONFORK,
            Self::DontDump => libc::MADV_DONTDUMP,
            Self::HugePage => libc::MADV_HUGEPAGE,
            Self::NoHugePage => libc::MADV_NOHUGEPAGE,
            Self::Mergeable => libc::MADV_MERGEABLE,
        }
    }
}

impl Mapping {
    /// The name an anonymous private mapping was given
    /// (`PR_SET_VMA_ANON_NAME`: `[anon:NAME]` in `/proc/PID/maps`).
    pub fn anon_name(&self) -> Option<&str> {
        (self.kind == MappingKind::Anonymous)
            .then(|| self.path.strip_prefix("[anon:")?.strip_suffix(']'))
            .flatten()
    }

    pub fn saved_pages(&self) -> u64 {
        self.pages.iter().map(|r| r.pages).sum()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Regular,
    Directory,
    CharDevice,
    BlockDevice,
    Pipe,
    Socket,
    /// eventfd, epoll, signalfd, timerfd, inotify, …
    AnonInode,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    pub fd: i32,
    pub kind: FileKind,
    /// The `/proc/PID/fd` link text.
    pub path: String,
    /// `O_*` flags from fdinfo.
    pub flags: u32,
    pub pos: u64,
    pub id: Option<FileId>,
    /// An eventfd's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eventfd: Option<EventFd>,
    /// What an epoll instance watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoll: Option<Vec<EpollTarget>>,
    /// An end of a pipe whose every end the process holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipe: Option<PipeEnd>,
    /// Who its I/O signals go to (`F_GETOWN_EX`) and which signal
    /// (`F_GETSIG`), when either is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<FileOwner>,
    /// The lower fd this one is a copy of (`dup`: one open file, one
    /// offset and status flags), above stdio and other than a pipe's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dup_of: Option<i32>,
    /// The locks held through it (`lock:` lines of its fdinfo).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locks: Vec<FileLock>,
    /// A signalfd's mask (`sigmask:` of its fdinfo), signal `n` at bit
    /// `n - 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signalfd: Option<u64>,
    /// A timerfd's clock and timer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timerfd: Option<TimerFd>,
    /// An inotify instance's watches, by watch descriptor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inotify: Option<Vec<InotifyWatch>>,
    /// A regular file deleted since it was opened: made again (and deleted
    /// again) at resume, with these bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlinked: Option<Unlinked>,
    /// A unix socket whose peer has been closed (one end of a
    /// `socketpair` the process closed the other of, as every JVM's NIO
    /// keeps one): made again as such a pair with the other end closed.
    /// An agent that does not know it refuses the socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphan_socket: Option<OrphanSocket>,
    /// A regular file carried in the image (`suspend --carry`): made at
    /// resume where its path does not exist. An agent that does not know
    /// it checks the file as any other (refused where it is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried: Option<Carried>,
}

/// A regular file's bytes and mode, carried (`state/carried.rs`); its
/// size and mtime are its `FileId`'s.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Its bytes, base64.
    pub data: String,
}

/// A connected unix socket whose peer is gone: reads give end of file,
/// writes `EPIPE`; nothing queued, its buffer sizes the defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanSocket {
    /// `SOCK_STREAM` or `SOCK_SEQPACKET`.
    pub sock_type: i32,
}

impl File {
    /// Whether a kind of `state/` makes this fd again at resume (from
    /// what it saved: a pipe end, an eventfd, an epoll instance, a
    /// signalfd, a timerfd, an inotify instance, an orphan socket) rather
    /// than the resume opening a file. A deleted file's bytes are another
    /// matter: see `unlinked`.
    pub fn made_again(&self) -> bool {
        self.pipe.is_some()
            || self.eventfd.is_some()
            || self.epoll.is_some()
            || self.signalfd.is_some()
            || self.timerfd.is_some()
            || self.inotify.is_some()
            || self.orphan_socket.is_some()
    }
}

#[cfg(test)]
impl File {
    /// A file record with nothing saved but its number, kind and link,
    /// for tests to fill in what they need (one place to add a field).
    pub fn bare(fd: i32, kind: FileKind, path: &str) -> Self {
        Self {
            fd,
            kind,
            path: path.into(),
            flags: 0,
            pos: 0,
            id: None,
            eventfd: None,
            epoll: None,
            pipe: None,
            owner: None,
            dup_of: None,
            locks: Vec::new(),
            signalfd: None,
            timerfd: None,
            inotify: None,
            unlinked: None,
            orphan_socket: None,
            carried: None,
        }
    }
}

/// A regular file only the process's fds reach (deleted since it was
/// opened, or made with `O_TMPFILE`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlinked {
    /// The name it had (its link without ` (deleted)`): made there again,
    /// then deleted; in its directory with `O_TMPFILE` if that name is
    /// taken now.
    pub name: String,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
    /// Its bytes (base64), on the lowest fd that has it open; empty on the
    /// others (see `same_as`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data: String,
    /// A lower fd of the process opened on the same file (another open,
    /// not a `dup`): this fd is that file opened again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as: Option<i32>,
}

/// How many bytes of deleted files' contents an image carries unless told
/// otherwise (`suspend --unlinked-max`).
pub const UNLINKED_MAX_DEFAULT: u64 = 16 << 20;
/// The most `--unlinked-max` may be: the bytes are carried base64 in the
/// metadata, which a reader takes up to [`MAX_META_BYTES`].
pub const UNLINKED_MAX_LIMIT: u64 = MAX_META_BYTES / 2;

/// The highest inotify watch descriptor a resume gives back (it reaches a
/// number by adding and removing a watch once per number below it).
pub const INOTIFY_MAX_WD: i32 = 4096;

/// One watch of an inotify instance (a line of its fdinfo), added again
/// under the same watch descriptor at resume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InotifyWatch {
    pub wd: i32,
    /// The events watched and the flags that last (`IN_ONESHOT`,
    /// `IN_EXCL_UNLINK`), as fdinfo shows them (5.19+).
    pub mask: u32,
    /// The inode watched, as fdinfo names it.
    pub ino: u64,
    /// The file or directory watched, found by its file handle (so a file
    /// renamed since is found under its new name); `None`: no path reaches
    /// it now (a suspend refuses it).
    pub target: Option<FileId>,
}

/// A timerfd (its fdinfo), as a resume sets it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerFd {
    pub clockid: i32,
    /// Expirations not read yet.
    pub ticks: u64,
    /// `TFD_TIMER_ABSTIME` 1, `TFD_TIMER_CANCEL_ON_SET` 2.
    pub settime_flags: i32,
    /// Time to the next expiry (0: disarmed, or expired and waiting for a
    /// read to be re-armed by its interval).
    pub value_ns: u64,
    pub interval_ns: u64,
    /// With `TFD_TIMER_ABSTIME`: the next expiry on its clock, as it was
    /// when the image was taken (an absolute deadline stays absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ns: Option<u64>,
}

/// A lock a process holds on a file: taken again at resume, before any
/// thread runs (refused if another process holds a conflicting one then).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLock {
    pub kind: LockKind,
    /// A write (exclusive) lock, else a read (shared) one.
    pub write: bool,
    /// The byte range of a record lock: its first byte, and its last
    /// (`None`: to the end of the file, however long it grows).
    pub start: u64,
    pub end: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// `flock(2)`: the whole file, held by the open file.
    Flock,
    /// A POSIX record lock (`F_SETLK`): held by the process.
    Posix,
    /// An open file description lock (`F_OFD_SETLK`): held by the open file.
    Ofd,
    /// A lease (`F_SETLEASE`, read or write): the whole file, held by the
    /// open file. Its break is told to the file's signal owner with its
    /// signal (`SIGIO` unless `F_SETSIG` named another), saved with the
    /// file (`File::owner`). Older agents refuse an image holding one (an
    /// unknown kind; and the format is version 4 since this session).
    Lease,
}

impl LockKind {
    /// As people name it.
    pub fn name(self) -> &'static str {
        match self {
            LockKind::Flock => "an flock",
            LockKind::Posix => "a POSIX record lock",
            LockKind::Ofd => "an OFD lock",
            LockKind::Lease => "a lease",
        }
    }
}

/// The signal owner of an open file (`struct f_owner_ex`) and its signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOwner {
    /// `F_OWNER_TID` 0, `F_OWNER_PID` 1, `F_OWNER_PGRP` 2.
    pub kind: u32,
    pub pid: u32,
    /// `F_SETSIG`'s signal (0: `SIGIO`).
    pub signal: u32,
}

/// One end of a pipe held only by this process (a self-pipe).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipeEnd {
    /// The pipe's inode: the ends with the same one are one pipe.
    pub id: u64,
    /// The write end (else the read end).
    pub write: bool,
    /// Its capacity in bytes (`F_GETPIPE_SZ`); 0 until the dump reads it.
    #[serde(default)]
    pub size: u32,
    /// What was written to it and not yet read (base64), on the lowest
    /// read end's record.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFd {
    pub count: u64,
    pub semaphore: bool,
}

/// One fd an epoll instance watches (`epoll_ctl` arguments).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpollTarget {
    pub fd: i32,
    pub events: u32,
    pub data: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witness {
    /// No frozen thread ran while the image was taken.
    pub consistent: bool,
    /// Threads that did, with how often they were switched in.
    pub ran: Vec<(u32, u32)>,
    pub frozen_threads: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Records before this one.
    pub records: u64,
    /// Size of `pages.img`.
    pub page_bytes: u64,
}

/// BLAKE3 as 64 hex digits.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// XXH3-64 as 16 hex digits.
pub fn xxh3_hex(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}
