//! `timer` / `timer-check ID`: a POSIX timer armed far ahead (it never
//! fires here), and the check that it is still armed under its id after a
//! resume.

/// A POSIX timer on `CLOCK_MONOTONIC`, every hour from an hour on, with no
/// notification: the answer line, with its id (-1 if it was not made).
pub fn create() -> String {
    // SAFETY: timer_create/settime with valid pointers.
    let id = unsafe {
        let mut sev: libc::sigevent = std::mem::zeroed();
        sev.sigev_notify = libc::SIGEV_NONE;
        let mut id: libc::timer_t = std::ptr::null_mut();
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 3600,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: 3600,
                tv_nsec: 0,
            },
        };
        if libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut id) == 0 {
            libc::timer_settime(id, 0, &spec, std::ptr::null_mut());
            id as isize
        } else {
            -1
        }
    };
    format!("timer id={id}")
}

/// The timer `timer` made is still there under `id`, armed (more than
/// 3000 s left): `ok`, or `FAIL …`.
pub fn check(id: &str) -> String {
    let id: isize = id.parse().unwrap_or(-1);
    // SAFETY: timer_gettime into a struct on the stack.
    let (rc, left) = unsafe {
        let mut spec: libc::itimerspec = std::mem::zeroed();
        let rc = libc::timer_gettime(id as libc::timer_t, &mut spec);
        (rc, spec.it_value.tv_sec)
    };
    if rc == 0 && left > 3000 {
        "ok".to_owned()
    } else {
        format!("FAIL rc={rc} left={left}")
    }
}
