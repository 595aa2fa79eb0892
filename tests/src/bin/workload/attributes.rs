//! Process attributes: `--attributes` (a child subreaper, THP disabled,
//! timer slack 123456 ns, oom_score_adj 321; `check` verifies them) and
//! `--pdeathsig` (SIGUSR2 when its parent dies).

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether `--attributes` set them.
static ATTRIBUTES: AtomicBool = AtomicBool::new(false);

/// A child subreaper, THP disabled, timer slack 123456 ns (this thread,
/// inherited by the ones created after), oom_score_adj 321.
pub fn set() {
    // SAFETY: plain prctls on this process.
    let ok = unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_TIMERSLACK, 123_456, 0, 0, 0) == 0
    } && std::fs::write("/proc/self/oom_score_adj", "321").is_ok();
    if !ok {
        eprintln!(
            "workload: --attributes: {}",
            std::io::Error::last_os_error()
        );
        std::process::exit(2);
    }
    ATTRIBUTES.store(true, Ordering::SeqCst);
}

/// `--pdeathsig`: SIGUSR2 when its parent dies (exits 2 if it cannot).
pub fn set_pdeathsig() {
    // SAFETY: a plain prctl.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2) } != 0 {
        eprintln!("workload: --pdeathsig: {}", std::io::Error::last_os_error());
        std::process::exit(2);
    }
}

/// What `--attributes` set still holds (the timer slack: of the thread
/// that checks, the main one).
pub fn verify() -> Result<(), String> {
    if !ATTRIBUTES.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mut subreaper: libc::c_int = 0;
    // SAFETY: plain prctls; the subreaper query writes one int.
    let (got_subreaper, thp, slack) = unsafe {
        (
            libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &raw mut subreaper) == 0 && subreaper == 1,
            libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0),
            libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0),
        )
    };
    let oom = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    if !got_subreaper || thp != 1 || slack != 123_456 || oom.trim() != "321" {
        return Err(format!(
            "attributes changed: subreaper {got_subreaper} thp_disable {thp} slack {slack} oom {}",
            oom.trim()
        ));
    }
    Ok(())
}

/// `session-keyring`: who owns the session keyring (`@s`), and whether a
/// search from it finds the key `suspend-test:roots-key` (a resume
/// command's own session key: it must not).
pub fn session_keyring() -> String {
    const KEYCTL_DESCRIBE: libc::c_long = 6;
    const KEYCTL_SEARCH: libc::c_long = 10;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    let mut text = [0u8; 256];
    // SAFETY: keyctl(DESCRIBE) into a buffer of the size given.
    let n = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_DESCRIBE,
            KEY_SPEC_SESSION_KEYRING,
            text.as_mut_ptr(),
            text.len(),
        )
    };
    if n < 0 {
        return format!(
            "session-keyring FAIL describe: {}",
            std::io::Error::last_os_error()
        );
    }
    let text = String::from_utf8_lossy(&text[..(n as usize).min(text.len())]);
    // "keyring;UID;GID;PERM;NAME\0"
    let owner = text.split(';').nth(1).unwrap_or("?").to_owned();
    let name = c"suspend-test:roots-key";
    // SAFETY: keyctl(SEARCH) with NUL-terminated type and description.
    let found = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_SEARCH,
            KEY_SPEC_SESSION_KEYRING,
            c"user".as_ptr(),
            name.as_ptr(),
            0,
        )
    };
    format!(
        "session-keyring owner={owner} roots-key={}",
        if found >= 0 { "found" } else { "absent" }
    )
}
