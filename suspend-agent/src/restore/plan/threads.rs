//! Threads: the main thread first (the stub starts in it and creates the
//! others), and each thread's part of the argument block — its stub
//! stack, and what each kind of state gives it: pending signals and
//! alternate stack (`state::signals`), rseq area, robust list, tid address
//! and timer slack (`state::threads`), scheduling (`state::sched`) and
//! confinement (`state::confinement`) — and its seccomp filters, placed in
//! the block for the agent to install from inside the thread (`finish`).
//! Registers, xstate and signal masks are not planned here: the agent sets
//! them with ptrace once the stub is done.

use suspend_common::restore::{STUB_STACK, ThreadArgs};

use super::{args::Block, prepare_err};
use crate::{
    image::{Image, format::Thread},
    restore::RestoreError,
    state::{confinement, sched, signals, threads},
};

/// The image's threads with the main thread (tid = pid) first.
pub fn main_first(image: &Image) -> Vec<&Thread> {
    ordered(&image.threads, image.process.pid)
}

/// `threads`, the one whose tid is `pid` first, then by tid.
fn ordered(threads: &[Thread], pid: u32) -> Vec<&Thread> {
    let mut threads: Vec<_> = threads.iter().collect();
    threads.sort_by_key(|t| (t.tid != pid, t.tid));
    threads
}

/// A thread's seccomp filters, oldest first: each one's flags and the
/// address of its `struct sock_fprog`.
type Filters = Vec<(u64, u64)>;

/// Each thread's seccomp filters pushed on `block`: per thread that has
/// any, its tid and its filters.
pub fn seccomp(
    threads: &[&Thread],
    block: &mut Block,
) -> Result<Vec<(u32, Filters)>, RestoreError> {
    let mut seccomp = Vec::new();
    for t in threads {
        let mut filters = Vec::new();
        let programs = confinement::programs(t).map_err(|e| {
            prepare_err(format!("thread {}: a seccomp filter", t.tid))(std::io::Error::other(e))
        })?;
        for (flags, instructions) in programs {
            let at = block.push(&instructions);
            // `struct sock_fprog`: the count (u16, padded), the pointer.
            let fprog = block.push(&[instructions.len() as u64, at]);
            filters.push((flags, fprog));
        }
        if !filters.is_empty() {
            seccomp.push((t.tid, filters));
        }
    }
    Ok(seccomp)
}

/// Each thread's arguments, in the order of `threads` (the `i`th's stub
/// stack tops out `STUB_STACK * (i + 1)` above `stacks`), what they point
/// to pushed on `block`.
pub fn args(threads: &[&Thread], pid: u32, stacks: u64, block: &mut Block) -> Vec<ThreadArgs> {
    let mut thread_args = Vec::new();
    for (i, t) in threads.iter().enumerate() {
        let pending = signals::thread_pending(t, pid);
        let mut a = ThreadArgs {
            tid: t.tid,
            stack_top: stacks + STUB_STACK * (i as u64 + 1),
            pending_count: pending.len() as u32,
            pending: block.push(&pending),
            ..ThreadArgs::default()
        };
        let mut flags = threads::thread_args(t, &mut a);
        if let Some(s) = &t.sigaltstack {
            flags |= signals::altstack_args(s, &mut a);
        }
        if let Some(s) = &t.sched {
            let attr = block.push(&[sched::setattr(s)]);
            let affinity = block.push(&s.affinity);
            flags |= sched::thread_args(s, attr, affinity, &mut a);
        }
        if let Some(c) = &t.confinement {
            flags |= confinement::thread_args(c, &mut a);
        }
        a.flags = flags;
        thread_args.push(a);
    }
    thread_args
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
    use suspend_common::restore::{
        STUB_STACK, THREAD_HAS_CAPS, THREAD_HAS_RSEQ, THREAD_HAS_SCHED, THREAD_HAS_TID_ADDRESS,
        THREAD_NO_NEW_PRIVS,
    };

    use super::{args, ordered, seccomp};
    use crate::{
        image::format::{Confinement, Rseq, Sched, SeccompFilter},
        restore::plan::args::Block,
        state::fixtures::thread,
        sys::sched::SIZE_VER0,
    };

    /// The `n` bytes at `addr` of `block`, whose first byte is at `base`.
    fn at(block: &[u8], base: u64, addr: u64, n: usize) -> &[u8] {
        let from = (addr - base) as usize;
        &block[from..from + n]
    }

    #[test]
    fn the_main_thread_comes_first_then_the_others_by_tid() {
        let threads = [thread(9), thread(7), thread(12), thread(8)];
        let tids = |pid| -> Vec<u32> { ordered(&threads, pid).iter().map(|t| t.tid).collect() };
        assert_eq!(tids(8), [8, 7, 9, 12]);
        assert_eq!(tids(12), [12, 7, 8, 9]);
    }

    #[test]
    fn seccomp_programs_are_placed_with_their_sock_fprog() {
        let insn = |code: u64| code.to_ne_bytes();
        let program: Vec<u8> = [insn(0x06), insn(0x7fff_0000_0000_0006)].concat();
        let mut filtered = thread(43);
        filtered.seccomp = vec![
            SeccompFilter {
                flags: 0,
                program: B64.encode(&program),
            },
            SeccompFilter {
                flags: 2,
                program: B64.encode(insn(0x06)),
            },
        ];
        let base = 0x1000_0000_2000;
        let mut block = Block::new(base);
        let plain = thread(42);
        let got = seccomp(&[&plain, &filtered], &mut block).expect("base64");
        assert_eq!(got.len(), 1, "only the filtered thread");
        let (tid, filters) = &got[0];
        assert_eq!(*tid, 43);
        assert_eq!(filters.iter().map(|f| f.0).collect::<Vec<_>>(), [0, 2]);
        let bytes = block.into_bytes();
        let fprog = at(&bytes, base, filters[0].1, 16);
        assert_eq!(fprog[..8], 2u64.to_ne_bytes(), "two instructions");
        let program_at = u64::from_ne_bytes(fprog[8..].try_into().expect("8 bytes"));
        assert_eq!(at(&bytes, base, program_at, 16), program);
    }

    #[test]
    fn a_seccomp_program_not_in_base64_is_an_error_naming_the_thread() {
        let mut t = thread(43);
        t.seccomp = vec![SeccompFilter {
            flags: 0,
            program: "!".into(),
        }];
        let err = seccomp(&[&t], &mut Block::new(0)).expect_err("not base64");
        assert!(err.to_string().starts_with("thread 43: "), "{err}");
    }

    #[test]
    fn each_thread_gets_its_own_stack_and_what_it_had() {
        let main = thread(42);
        let mut other = thread(43);
        other.rseq = Some(Rseq {
            addr: 0x7000,
            len: 32,
            signature: 0x5305_3053,
        });
        other.tid_address = Some(0x7100);
        other.stopped_with = Some(libc::SIGINT);
        other.sched = Some(Sched {
            affinity: vec![0b1010, 0],
            ..Sched::default()
        });
        other.confinement = Some(Confinement {
            permitted: 1 << 21,
            no_new_privs: true,
            ..Confinement::default()
        });
        let (base, stacks) = (0x1000_0000_2000, 0x1000_0010_0000);
        let mut block = Block::new(base);
        let got = args(&[&main, &other], 42, stacks, &mut block);
        assert_eq!(
            got.iter().map(|a| (a.tid, a.stack_top)).collect::<Vec<_>>(),
            [(42, stacks + STUB_STACK), (43, stacks + 2 * STUB_STACK)]
        );
        assert_eq!((got[0].flags, got[0].pending_count), (0, 0));
        let a = &got[1];
        assert_eq!(
            a.flags,
            THREAD_HAS_RSEQ
                | THREAD_HAS_TID_ADDRESS
                | THREAD_HAS_SCHED
                | THREAD_HAS_CAPS
                | THREAD_NO_NEW_PRIVS
        );
        assert_eq!(
            (a.rseq_addr, a.rseq_len, a.tid_address),
            (0x7000, 32, 0x7100)
        );
        assert_eq!((a.cap_permitted, a.robust_len), (1 << 21, 24));
        assert_eq!(a.pending_count, 1);
        assert_eq!(a.affinity_len, 16);
        let bytes = block.into_bytes();
        assert_eq!(at(&bytes, base, a.pending, 4), libc::SIGINT.to_ne_bytes());
        assert_eq!(at(&bytes, base, a.affinity, 8), 0b1010u64.to_ne_bytes());
        assert_eq!(at(&bytes, base, a.sched_attr, 4), SIZE_VER0.to_ne_bytes());
    }
}
