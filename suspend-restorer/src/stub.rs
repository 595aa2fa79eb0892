//! The stub's steps (see the crate documentation for the order).

use core::sync::atomic::{AtomicU32, Ordering};

use suspend_common::restore::*;

use crate::sys::{self, call};

/// What failed: reported on the pipe, then the process exits.
struct Fail {
    step: u32,
    error: i64,
    index: u64,
}

type Step = Result<(), Fail>;

/// `Ok` unless the kernel returned an error.
fn check(ret: i64, step: u32, index: usize) -> Step {
    if ret < 0 {
        return Err(Fail {
            step,
            error: ret,
            index: index as u64,
        });
    }
    Ok(())
}

/// Entry point: `rdi` holds the argument block; the stack is the main
/// thread's stub stack.
///
/// # Safety
/// Called only by the agent's restore child, with a valid argument block
/// inside the mapped stub region.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text._start")]
pub unsafe extern "C" fn _start(args: *mut RestoreArgs) -> ! {
    // SAFETY: the agent passes a valid, exclusively ours, block.
    let args = unsafe { &*args };
    if let Err(fail) = restore(args) {
        fail_and_exit(args, fail);
    }
    park(args)
}

/// Every step of the main thread.
fn restore(args: &RestoreArgs) -> Step {
    if args.magic != RESTORE_MAGIC || args.abi != RESTORE_ABI {
        return Err(Fail {
            step: STEP_ABI,
            error: 0,
            index: 0,
        });
    }
    // Nothing may interrupt the stub: every signal blocked (threads created
    // below inherit the mask).
    let all: u64 = !0;
    // SAFETY: rt_sigprocmask with a valid mask pointer.
    let ret = unsafe {
        call(
            sys::RT_SIGPROCMASK,
            [sys::SIG_SETMASK, &raw const all as u64, 0, 8, 0, 0],
        )
    };
    check(ret, STEP_SIGMASK, 0)?;

    unmap_all_but_kept(args)?;
    move_kernel_mappings(args)?;
    move_mappings(args)?;

    if args.mm.start_code != 0 {
        // SAFETY: PR_SET_MM_MAP reads the block's `mm` (and its auxv array
        // in the region).
        let ret = unsafe {
            call(
                sys::PRCTL,
                [
                    sys::PR_SET_MM,
                    sys::PR_SET_MM_MAP,
                    &raw const args.mm as u64,
                    size_of::<MmMap>() as u64,
                    0,
                    0,
                ],
            )
        };
        check(ret, STEP_MM_MAP, 0)?;
    }
    if args.mm.exe_fd != u32::MAX {
        // SAFETY: closing our own descriptor.
        let ret = unsafe { call(sys::CLOSE, [args.mm.exe_fd as u64, 0, 0, 0, 0, 0]) };
        check(ret, STEP_CLOSE, 0)?;
    }

    for (i, action) in slice::<SigAction>(args.sigactions, args.sigactions_count)
        .iter()
        .enumerate()
    {
        // SAFETY: the first 32 bytes of `SigAction` are a `struct
        // kernel_sigaction`.
        let ret = unsafe {
            call(
                sys::RT_SIGACTION,
                [action.signal as u64, action as *const _ as u64, 0, 8, 0, 0],
            )
        };
        check(ret, STEP_SIGACTION, i)?;
    }

    let threads = slice::<ThreadArgs>(args.threads, args.threads_count);
    let Some(main) = threads.first() else {
        return Err(Fail {
            step: STEP_ABI,
            error: 0,
            index: 0,
        });
    };
    // Before any thread is created (they share it): a session keyring of
    // the process's own, not the resume command's, which it would
    // otherwise possess (and all it links to: root's keys, when root
    // resumes a user's process).
    let keys = new_session_keyring(args)?;
    for (i, thread) in threads.iter().enumerate().skip(1) {
        let tid = thread.tid as i32;
        let clone = sys::CloneArgs {
            flags: sys::CLONE_VM
                | sys::CLONE_FS
                | sys::CLONE_FILES
                | sys::CLONE_SIGHAND
                | sys::CLONE_THREAD
                | sys::CLONE_SYSVSEM,
            pidfd: 0,
            child_tid: 0,
            parent_tid: 0,
            exit_signal: 0,
            stack: thread.stack_top - STUB_STACK,
            stack_size: STUB_STACK,
            tls: 0,
            set_tid: &raw const tid as u64,
            set_tid_size: 1,
        };
        // SAFETY: the stack is this thread's part of the stub region.
        let ret = unsafe {
            sys::clone_thread(
                &clone,
                thread as *const _ as u64,
                args as *const _ as u64,
                thread_entry,
            )
        };
        check(ret, STEP_CLONE, i)?;
        if ret != tid as i64 {
            return Err(Fail {
                step: STEP_CLONE_TID,
                error: ret,
                index: i as u64,
            });
        }
    }

    restore_thread(main, 0)?;

    // Wait until every other thread is done with its own part.
    let others = args.threads_count - 1;
    let ready = word(&args.ready);
    loop {
        let now = ready.load(Ordering::Acquire);
        if now >= others {
            break;
        }
        // SAFETY: a futex wait on our own word.
        unsafe {
            call(
                sys::FUTEX,
                [ready.as_ptr() as u64, sys::FUTEX_WAIT, now as u64, 0, 0, 0],
            )
        };
    }

    for (i, info) in slice::<SigInfo>(args.shared_pending, args.shared_pending_count)
        .iter()
        .enumerate()
    {
        let signal =
            u32::from_ne_bytes([info.bytes[0], info.bytes[1], info.bytes[2], info.bytes[3]]);
        // SAFETY: queueing a saved siginfo to our own process.
        let ret = unsafe {
            call(
                sys::RT_SIGQUEUEINFO,
                [
                    main.tid as u64,
                    signal as u64,
                    info as *const _ as u64,
                    0,
                    0,
                    0,
                ],
            )
        };
        check(ret, STEP_PENDING, i)?;
    }
    for (i, timer) in slice::<ITimer>(args.itimers, args.itimers_count)
        .iter()
        .enumerate()
    {
        let value: [u64; 4] = [
            timer.interval_us / 1_000_000,
            timer.interval_us % 1_000_000,
            timer.value_us / 1_000_000,
            timer.value_us % 1_000_000,
        ];
        // SAFETY: setitimer with a valid `struct itimerval`.
        let ret = unsafe {
            call(
                sys::SETITIMER,
                [timer.which as u64, value.as_ptr() as u64, 0, 0, 0, 0],
            )
        };
        check(ret, STEP_ITIMER, i)?;
    }
    for (flag, option) in [
        (RESTORE_CHILD_SUBREAPER, sys::PR_SET_CHILD_SUBREAPER),
        (RESTORE_THP_DISABLE, sys::PR_SET_THP_DISABLE),
    ] {
        if args.flags & flag != 0 {
            // SAFETY: a plain prctl.
            let ret = unsafe { call(sys::PRCTL, [option, 1, 0, 0, 0, 0]) };
            check(ret, STEP_ATTRIBUTES, flag as usize)?;
        }
    }
    restore_creds(args, main, 0)?;
    if keys {
        link_user_session_keyring()?;
    }
    // Changing credentials clears "dumpable"; the process was dumpable.
    // SAFETY: a plain prctl.
    let ret = unsafe { call(sys::PRCTL, [sys::PR_SET_DUMPABLE, 1, 0, 0, 0, 0]) };
    check(ret, STEP_DUMPABLE, 0)?;

    let report = Report {
        kind: REPORT_READY,
        ..Report::default()
    };
    write_report(args, &report);
    // SAFETY: closing our own descriptor: the agent sees end of file after
    // the report.
    unsafe { call(sys::CLOSE, [args.report_fd as u64, 0, 0, 0, 0, 0]) };
    Ok(())
}

/// First thing a created thread runs.
unsafe extern "C" fn thread_entry(thread: u64, args: u64) -> ! {
    // SAFETY: pointers into the stub region, passed by `restore`.
    let (thread, args) = unsafe {
        (
            &*(thread as *const ThreadArgs),
            &*(args as *const RestoreArgs),
        )
    };
    let index =
        (thread as *const ThreadArgs as u64 - args.threads) / size_of::<ThreadArgs>() as u64;
    if let Err(fail) = restore_thread(thread, index as usize)
        .and_then(|()| restore_creds(args, thread, index as usize))
    {
        fail_and_exit(args, fail);
    }
    let ready = word(&args.ready);
    ready.fetch_add(1, Ordering::AcqRel);
    // SAFETY: waking the main thread's futex wait on our word.
    unsafe {
        call(
            sys::FUTEX,
            [ready.as_ptr() as u64, sys::FUTEX_WAKE, 1, 0, 0, 0],
        )
    };
    park(args)
}

/// A thread's own kernel state (not its registers: the agent sets those).
fn restore_thread(thread: &ThreadArgs, index: usize) -> Step {
    if thread.flags & THREAD_HAS_TIMER_SLACK != 0 {
        // SAFETY: a plain prctl on the calling thread.
        let ret = unsafe {
            call(
                sys::PRCTL,
                [sys::PR_SET_TIMERSLACK, thread.timer_slack_ns, 0, 0, 0, 0],
            )
        };
        check(ret, STEP_ATTRIBUTES, index)?;
    }
    if thread.flags & THREAD_HAS_SCHED != 0 {
        // SAFETY: the mask and the attributes lie in the argument block;
        // both calls act on the calling thread only (tid 0). Still root:
        // raising a priority needs CAP_SYS_NICE.
        unsafe {
            check(
                call(
                    sys::SCHED_SETAFFINITY,
                    [0, thread.affinity_len as u64, thread.affinity, 0, 0, 0],
                ),
                STEP_SCHED,
                index,
            )?;
            check(
                call(sys::SCHED_SETATTR, [0, thread.sched_attr, 0, 0, 0, 0]),
                STEP_SCHED,
                index,
            )?;
        }
    }
    if thread.flags & THREAD_HAS_RSEQ != 0 {
        // SAFETY: registers the thread's own rseq area (restored memory).
        let ret = unsafe {
            call(
                sys::RSEQ,
                [
                    thread.rseq_addr,
                    thread.rseq_len as u64,
                    0,
                    thread.rseq_signature as u64,
                    0,
                    0,
                ],
            )
        };
        check(ret, STEP_RSEQ, index)?;
    }
    if thread.robust_head != 0 {
        // SAFETY: the kernel only records the pointer.
        let ret = unsafe {
            call(
                sys::SET_ROBUST_LIST,
                [thread.robust_head, thread.robust_len, 0, 0, 0, 0],
            )
        };
        check(ret, STEP_ROBUST_LIST, index)?;
    }
    if thread.flags & THREAD_HAS_TID_ADDRESS != 0 {
        // SAFETY: the kernel only records the pointer (and clears it at
        // exit, as it would have).
        unsafe { call(sys::SET_TID_ADDRESS, [thread.tid_address, 0, 0, 0, 0, 0]) };
    }
    // Set or disabled, never left as it is: the main thread was forked from
    // the agent and inherited its alternate stack, which is not mapped here.
    let stack: [u64; 3] = if thread.flags & THREAD_HAS_ALTSTACK != 0 {
        [
            thread.altstack_sp,
            thread.altstack_flags as u64,
            thread.altstack_size,
        ]
    } else {
        [0, sys::SS_DISABLE, 0]
    };
    // SAFETY: sigaltstack with a valid `stack_t`.
    let ret = unsafe { call(sys::SIGALTSTACK, [stack.as_ptr() as u64, 0, 0, 0, 0, 0]) };
    check(ret, STEP_ALTSTACK, index)?;
    for info in slice::<SigInfo>(thread.pending, thread.pending_count) {
        let signal =
            u32::from_ne_bytes([info.bytes[0], info.bytes[1], info.bytes[2], info.bytes[3]]);
        // SAFETY: a thread queueing a saved siginfo to itself (the kernel
        // only lets the target itself queue a kernel-made siginfo).
        let ret = unsafe {
            call(
                sys::RT_TGSIGQUEUEINFO,
                [
                    getpid(),
                    thread.tid as u64,
                    signal as u64,
                    info as *const _ as u64,
                    0,
                    0,
                ],
            )
        };
        check(ret, STEP_PENDING, index)?;
    }
    Ok(())
}

/// The process's pid (the tgid, in any thread).
fn getpid() -> u64 {
    // SAFETY: no arguments, no memory.
    unsafe { call(sys::GETPID, [0; 6]) as u64 }
}

/// Credentials of the calling thread (the kernel keeps them per thread),
/// and with them its confinement: capability sets, securebits,
/// `no_new_privs`. The thread starts as root with every capability the
/// agent has; the order keeps `CAP_SETPCAP` until the last step needs it:
/// uids change without touching capabilities (`SECBIT_NO_SETUID_FIXUP`),
/// the bounding set drops, the inheritable set is set so the ambient
/// capabilities can be raised, the final securebits, and last the final
/// capability sets.
fn restore_creds(args: &RestoreArgs, thread: &ThreadArgs, index: usize) -> Step {
    let c = &args.creds;
    let caps = thread.flags & THREAD_HAS_CAPS != 0;
    // SAFETY: plain credential calls; `groups` points into the region.
    unsafe {
        if caps {
            check(
                call(
                    sys::PRCTL,
                    [
                        sys::PR_SET_SECUREBITS,
                        sys::SECBIT_NO_SETUID_FIXUP,
                        0,
                        0,
                        0,
                        0,
                    ],
                ),
                STEP_CAPS,
                index,
            )?;
        }
        check(
            call(
                sys::SETGROUPS,
                [c.groups_count as u64, c.groups, 0, 0, 0, 0],
            ),
            STEP_CREDS,
            0,
        )?;
        check(
            call(
                sys::SETRESGID,
                [c.gid[0] as u64, c.gid[1] as u64, c.gid[2] as u64, 0, 0, 0],
            ),
            STEP_CREDS,
            1,
        )?;
        call(sys::SETFSGID, [c.gid[3] as u64, 0, 0, 0, 0, 0]);
        check(
            call(
                sys::SETRESUID,
                [c.uid[0] as u64, c.uid[1] as u64, c.uid[2] as u64, 0, 0, 0],
            ),
            STEP_CREDS,
            2,
        )?;
        call(sys::SETFSUID, [c.uid[3] as u64, 0, 0, 0, 0, 0]);
    }
    if caps {
        restore_caps(thread, index)?;
    }
    if thread.flags & THREAD_NO_NEW_PRIVS != 0 {
        // SAFETY: a plain prctl.
        let ret = unsafe { call(sys::PRCTL, [sys::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0]) };
        check(ret, STEP_NO_NEW_PRIVS, index)?;
    }
    Ok(())
}

/// Joins a new, empty session keyring (the calling thread is still root)
/// and gives it to the process's user where the user's key quota lets it.
/// Returns false on a kernel without keys.
fn new_session_keyring(args: &RestoreArgs) -> Result<bool, Fail> {
    // SAFETY: keyctl with no name: a new anonymous session keyring.
    let ret = unsafe {
        call(
            sys::KEYCTL,
            [sys::KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0, 0],
        )
    };
    if ret == -sys::ENOSYS || ret == -sys::EOPNOTSUPP {
        return Ok(false);
    }
    check(ret, STEP_SESSION_KEYRING, 0)?;
    let c = &args.creds;
    // SAFETY: a plain keyctl on the keyring just joined.
    let ret = unsafe {
        call(
            sys::KEYCTL,
            [
                sys::KEYCTL_CHOWN,
                sys::KEY_SPEC_SESSION_KEYRING as u64,
                c.uid[0] as u64,
                c.gid[0] as u64,
                0,
                0,
            ],
        )
    };
    // The user's key quota full, or no CAP_SYS_ADMIN to give keys away:
    // it stays root's. The process possesses it all the same (every
    // right a possessor has), as systemd's services do theirs.
    if ret != -sys::EDQUOT && ret != -sys::EACCES && ret != -sys::EPERM {
        check(ret, STEP_SESSION_KEYRING, 1)?;
    }
    Ok(true)
}

/// Links the user's session keyring (`@us`) into the process's new one, as
/// the user (the main thread's credentials are restored): what a process
/// without a session keyring of its own searches, it still finds.
fn link_user_session_keyring() -> Step {
    // SAFETY: a plain keyctl on two special keyring ids.
    let ret = unsafe {
        call(
            sys::KEYCTL,
            [
                sys::KEYCTL_LINK,
                sys::KEY_SPEC_USER_SESSION_KEYRING as u64,
                sys::KEY_SPEC_SESSION_KEYRING as u64,
                0,
                0,
                0,
            ],
        )
    };
    check(ret, STEP_SESSION_KEYRING, 2)
}

/// `capset` of the calling thread.
fn capset(effective: u64, permitted: u64, inheritable: u64) -> i64 {
    let header: [u32; 2] = [sys::CAP_VERSION_3, 0];
    // Two `struct __user_cap_data_struct`s: the low, then the high 32 bits.
    let data: [u32; 6] = [
        effective as u32,
        permitted as u32,
        inheritable as u32,
        (effective >> 32) as u32,
        (permitted >> 32) as u32,
        (inheritable >> 32) as u32,
    ];
    // SAFETY: capset with a v3 header and two data structs, as
    // capabilities(7) documents.
    unsafe {
        call(
            sys::CAPSET,
            [header.as_ptr() as u64, data.as_ptr() as u64, 0, 0, 0, 0],
        )
    }
}

/// See [`restore_creds`].
fn restore_caps(thread: &ThreadArgs, index: usize) -> Step {
    for cap in 0..64u64 {
        if thread.cap_bounding & (1 << cap) == 0 {
            // SAFETY: a plain prctl; EINVAL past the kernel's last
            // capability, which no set can hold anyway.
            let ret = unsafe { call(sys::PRCTL, [sys::PR_CAPBSET_DROP, cap, 0, 0, 0, 0]) };
            if ret == -22 {
                break;
            }
            check(ret, STEP_CAPS, index)?;
        }
    }
    // Everything the thread will keep, plus CAP_SETPCAP for the steps to
    // come; the inheritable set final, for the ambient ones.
    let keep = thread.cap_permitted | (1 << sys::CAP_SETPCAP);
    check(capset(keep, keep, thread.cap_inheritable), STEP_CAPS, index)?;
    // SAFETY: plain prctls.
    unsafe {
        check(
            call(
                sys::PRCTL,
                [
                    sys::PR_CAP_AMBIENT,
                    sys::PR_CAP_AMBIENT_CLEAR_ALL,
                    0,
                    0,
                    0,
                    0,
                ],
            ),
            STEP_CAPS,
            index,
        )?;
        for cap in 0..64u64 {
            if thread.cap_ambient & (1 << cap) != 0 {
                check(
                    call(
                        sys::PRCTL,
                        [sys::PR_CAP_AMBIENT, sys::PR_CAP_AMBIENT_RAISE, cap, 0, 0, 0],
                    ),
                    STEP_CAPS,
                    index,
                )?;
            }
        }
        check(
            call(
                sys::PRCTL,
                [sys::PR_SET_SECUREBITS, thread.securebits as u64, 0, 0, 0, 0],
            ),
            STEP_CAPS,
            index,
        )?;
    }
    check(
        capset(
            thread.cap_effective,
            thread.cap_permitted,
            thread.cap_inheritable,
        ),
        STEP_CAPS,
        index,
    )
}

/// Unmaps every address outside the kept ranges.
fn unmap_all_but_kept(args: &RestoreArgs) -> Step {
    let mut cursor = 0u64;
    let keep = slice::<Range>(args.keep, args.keep_count);
    for (i, range) in keep.iter().enumerate() {
        if range.start > cursor {
            // SAFETY: nothing the stub uses lies outside the kept ranges.
            let ret = unsafe { call(sys::MUNMAP, [cursor, range.start - cursor, 0, 0, 0, 0]) };
            check(ret, STEP_UNMAP, i)?;
        }
        cursor = cursor.max(range.end);
    }
    if cursor < sys::TASK_TOP {
        // SAFETY: as above.
        let ret = unsafe { call(sys::MUNMAP, [cursor, sys::TASK_TOP - cursor, 0, 0, 0, 0]) };
        check(ret, STEP_UNMAP, keep.len())?;
    }
    Ok(())
}

/// The vDSO and vvar go where the process had them (its code holds
/// pointers into the vDSO): first all out of the way, then into place.
fn move_kernel_mappings(args: &RestoreArgs) -> Step {
    if args.flags & RESTORE_SKIP_VDSO != 0 {
        return Ok(());
    }
    let moves = slice::<Move>(args.kernel, args.kernel_count);
    let finals = slice::<u64>(args.kernel_final, args.kernel_count);
    for (i, m) in moves.iter().enumerate() {
        remap(m.from, m.len, m.to, STEP_KERNEL_MOVE, i)?;
    }
    for (i, (m, to)) in moves.iter().zip(finals).enumerate() {
        remap(m.to, m.len, *to, STEP_KERNEL_MOVE, i)?;
    }
    Ok(())
}

/// Every mapping of the image into place, with its protection.
fn move_mappings(args: &RestoreArgs) -> Step {
    for (i, m) in slice::<Move>(args.moves, args.moves_count)
        .iter()
        .enumerate()
    {
        match m.kind {
            MOVE_REMAP => {
                remap(m.from, m.len, m.to, STEP_MOVE, i)?;
                // SAFETY: the mapping just moved there.
                let ret = unsafe { call(sys::MPROTECT, [m.to, m.len, m.prot as u64, 0, 0, 0]) };
                check(ret, STEP_PROTECT, i)?;
            }
            _ => {
                let mut flags = sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_FIXED;
                if m.flags & MOVE_GROWSDOWN != 0 {
                    flags |= sys::MAP_GROWSDOWN;
                }
                // SAFETY: the target lies outside the stub's region (the
                // agent placed the region where the image has nothing).
                let ret =
                    unsafe { call(sys::MMAP, [m.to, m.len, m.prot as u64, flags, u64::MAX, 0]) };
                check(ret, STEP_MOVE, i)?;
            }
        }
    }
    Ok(())
}

fn remap(from: u64, len: u64, to: u64, step: u32, index: usize) -> Step {
    // SAFETY: moves a mapping between two places outside the stub region.
    let ret = unsafe {
        call(
            sys::MREMAP,
            [
                from,
                len,
                len,
                sys::MREMAP_MAYMOVE | sys::MREMAP_FIXED,
                to,
                0,
            ],
        )
    };
    check(ret, step, index)?;
    if ret as u64 != to {
        return Err(Fail {
            step,
            error: -14, // EFAULT: it landed elsewhere
            index: index as u64,
        });
    }
    Ok(())
}

fn write_report(args: &RestoreArgs, report: &Report) {
    // SAFETY: writing our own value to the report pipe.
    unsafe {
        call(
            sys::WRITE,
            [
                args.report_fd as u64,
                report as *const _ as u64,
                size_of::<Report>() as u64,
                0,
                0,
                0,
            ],
        )
    };
}

fn fail_and_exit(args: &RestoreArgs, fail: Fail) -> ! {
    let report = Report {
        kind: REPORT_FAILED,
        step: fail.step,
        error: fail.error,
        index: fail.index,
    };
    write_report(args, &report);
    loop {
        // SAFETY: ends the whole process.
        unsafe { call(sys::EXIT_GROUP, [127, 0, 0, 0, 0, 0]) };
    }
}

/// Waits for the agent, which takes the thread over with ptrace.
fn park(args: &RestoreArgs) -> ! {
    let park = word(&args.park);
    loop {
        // SAFETY: a futex wait on a word nobody changes.
        unsafe {
            call(
                sys::FUTEX,
                [park.as_ptr() as u64, sys::FUTEX_WAIT, 0, 0, 0, 0],
            )
        };
    }
}

fn word(field: &u32) -> &AtomicU32 {
    // SAFETY: a u32 field of the block, shared between the stub's threads
    // only through atomics.
    unsafe { AtomicU32::from_ptr((field as *const u32).cast_mut()) }
}

fn slice<'a, T>(addr: u64, count: u32) -> &'a [T] {
    if count == 0 || addr == 0 {
        return &[];
    }
    // SAFETY: the agent wrote `count` values of `T` at `addr` in the region.
    unsafe { core::slice::from_raw_parts(addr as *const T, count as usize) }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        // SAFETY: ends the whole process.
        unsafe { call(sys::EXIT_GROUP, [126, 0, 0, 0, 0, 0]) };
    }
}
