//! The process's session, process group and controlling terminal.
//!
//! Saved: the session and process group ids from `/proc/PID/stat`, the
//! process record's `session` (read by `dump::process`). Restored: the
//! process leads its session again if it led one, else its process group
//! if it led that, else joins the resume command's (`restore/plan/process.rs`
//! plans it).
//!
//! Refused by name before the freeze, unless the suspend was told
//! `--new-session` ([`refusal`]): a session or process group it does not
//! lead, and the controlling terminal of a session it leads. A resume
//! cannot put it back into a session or group another process leads, nor
//! give it that terminal.

/// What of its session `pid` has that a resume cannot give back (its
/// process group, session and controlling terminal as `/proc/PID/stat`
/// shows them), unless `new_session`: the caller accepts that a resume
/// puts it in the resume command's session and process group.
pub fn refusal(pid: u32, new_session: bool) -> Option<String> {
    if new_session {
        return None;
    }
    let (pgid, sid, tty) = crate::procfs::session(pid).ok()?;
    refusal_of(pid, pgid, sid, tty, leader_name)
}

/// [`refusal`]'s decision for `pid` in process group `pgid` of session
/// `sid` with controlling terminal `tty` (0: none), each leader named by
/// `name` (` (COMM)`, or nothing).
fn refusal_of(
    pid: u32,
    pgid: u32,
    sid: u32,
    tty: u64,
    name: impl Fn(u32) -> String,
) -> Option<String> {
    let mut outside = Vec::new();
    if sid != pid {
        outside.push(format!("session {sid}{}", name(sid)));
    }
    if pgid != pid {
        outside.push(format!("process group {pgid}{}", name(pgid)));
    }
    if sid == pid && tty != 0 {
        outside.push(format!("controlling terminal (device {tty:#x})"));
    }
    (!outside.is_empty()).then(|| {
        format!(
            "{} (a resume from the image starts it in the resume command's session and process \
             group: --new-session accepts that)",
            outside.join(", ")
        )
    })
}

/// ` (COMM)` of the leader of a session or group, if it runs.
fn leader_name(pid: u32) -> String {
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => format!(" ({})", comm.trim_end()),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{refusal, refusal_of};

    fn named(pid: u32) -> String {
        if pid == 1 {
            " (bash)".into()
        } else {
            String::new()
        }
    }

    #[test]
    fn a_session_or_group_it_does_not_lead_is_refused_with_its_leader() {
        assert_eq!(
            refusal_of(42, 7, 1, 0x8801, named).as_deref(),
            Some(
                "session 1 (bash), process group 7 (a resume from the image starts it in the \
                 resume command's session and process group: --new-session accepts that)"
            )
        );
        assert_eq!(
            refusal_of(42, 42, 1, 0, named).as_deref(),
            Some(
                "session 1 (bash) (a resume from the image starts it in the resume command's \
                 session and process group: --new-session accepts that)"
            )
        );
    }

    #[test]
    fn a_session_leader_is_refused_only_for_its_controlling_terminal() {
        assert_eq!(refusal_of(42, 42, 42, 0, named), None);
        assert_eq!(
            refusal_of(42, 42, 42, 0x8801, named).as_deref(),
            Some(
                "controlling terminal (device 0x8801) (a resume from the image starts it in the \
                 resume command's session and process group: --new-session accepts that)"
            )
        );
    }

    #[test]
    fn a_new_session_accepts_any() {
        assert_eq!(refusal(std::process::id(), true), None);
    }
}
