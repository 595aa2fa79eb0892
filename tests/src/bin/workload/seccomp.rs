//! `--seccomp`, `--seccomp-deny-pause`, `--seccomp-no-nnp`: a seccomp
//! filter failing `getpriority` (and, asked, pause(2)) with `EPERM`;
//! `check` verifies it still does.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether `--seccomp` installed its filter.
static SECCOMP: AtomicBool = AtomicBool::new(false);

/// A seccomp filter failing `getpriority` with `EPERM` and allowing the
/// rest; with `nnp`, `no_new_privs` first, else (as root) installed with
/// `CAP_SYS_ADMIN`, which is then dropped from every set. With
/// `deny_pause` (`--seccomp-deny-pause`) it fails pause(2) too.
pub fn install(nnp: bool, deny_pause: bool) {
    let insn = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    // `--seccomp-deny-pause` fails pause(2) too (a held thread waits in
    // it); otherwise that test matches no system call.
    let also = if deny_pause {
        libc::SYS_pause as u32
    } else {
        u32::MAX
    };
    let filter = [
        insn(0x20, 0, 0, 0),                                // ld [nr]
        insn(0x15, 0, 1, libc::SYS_getpriority as u32),     // jeq getpriority
        insn(0x06, 0, 0, 0x0005_0000 | libc::EPERM as u32), // ret ERRNO(EPERM)
        insn(0x15, 0, 1, also),                             // jeq also
        insn(0x06, 0, 0, 0x0005_0000 | libc::EPERM as u32), // ret ERRNO(EPERM)
        insn(0x06, 0, 0, 0x7fff_0000),                      // ret ALLOW
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl and capset with valid arguments that outlive the calls.
    let ok = unsafe {
        (!nnp || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &raw const program,
            ) == 0
            && (nnp || {
                const CAP_SYS_ADMIN: u32 = 21;
                let header: [u32; 2] = [0x2008_0522, 0];
                let mut data = [0u32; 6];
                libc::syscall(libc::SYS_capget, header.as_ptr(), data.as_mut_ptr());
                // Effective and permitted: their low words (CAP_SYS_ADMIN is 21).
                for word in &mut data[..2] {
                    *word &= !(1 << CAP_SYS_ADMIN);
                }
                libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()) == 0
            })
    };
    if !ok {
        eprintln!("workload: --seccomp: {}", std::io::Error::last_os_error());
        std::process::exit(2);
    }
    SECCOMP.store(true, Ordering::SeqCst);
}

/// The `--seccomp` filter still holds: `getpriority` fails with `EPERM`.
pub fn verify() -> Result<(), String> {
    if !SECCOMP.load(Ordering::SeqCst) {
        return Ok(());
    }
    // SAFETY: a plain system call with no memory arguments.
    let ret = unsafe { libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, 0) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    if ret != -1 || errno != Some(libc::EPERM) {
        return Err(format!(
            "the seccomp filter is gone (getpriority returned {ret}, errno {errno:?})"
        ));
    }
    Ok(())
}
