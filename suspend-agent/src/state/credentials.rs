//! Credentials: the process's uids, gids and supplementary groups; and
//! its keys, which an image does not hold.
//!
//! Saved: the `Uid:`, `Gid:` and `Groups:` fields of `/proc/PID/status`
//! ([`parse`], called by `dump::process`), one field of the process record.
//!
//! Restored: given back by the stub, every thread for itself, last: the
//! groups, then the gids, then the uids ([`for_stub`]: what its argument
//! block holds; `restore::plan::process` places the groups in it).
//!
//! Refused, by name: a thread or process keyring (asked from inside by
//! `dump::inside`, [`ask_keyring`]) and a session keyring of its own that
//! links more than the user's keyrings
//! ([`thread_keyring_refusal`], [`process_keyring_refusal`],
//! [`session_keyring_refusal`], called by the dump before the freeze from
//! what the task iterator shows and again once frozen from what the
//! process is asked).

use suspend_common::{restore, tasks::TaskFacts};

use crate::{
    image::format::Creds,
    tracee::inject::{Borrowed, InjectError},
};

/// The `Uid:`/`Gid:`/`Groups:` fields of `/proc/PID/status` (`None` where
/// one does not parse).
pub fn parse(status: &str) -> Option<Creds> {
    let mut creds = Creds::default();
    let four = |v: &str| -> Option<[u32; 4]> {
        let ids: Vec<u32> = v
            .split_whitespace()
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        ids.try_into().ok()
    };
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "Uid" => creds.uid = four(value)?,
            "Gid" => creds.gid = four(value)?,
            "Groups" => {
                creds.groups = value
                    .split_whitespace()
                    .map(|n| n.parse().ok())
                    .collect::<Option<_>>()?
            }
            _ => {}
        }
    }
    Some(creds)
}

/// What the stub gets: the uids, gids and the number of groups, with the
/// groups at `groups` (where the argument block holds `c.groups`).
pub fn for_stub(c: &Creds, groups: u64) -> restore::Creds {
    restore::Creds {
        uid: c.uid,
        gid: c.gid,
        groups_count: c.groups.len() as u32,
        groups,
        _pad: 0,
    }
}

// Refused: keys. An image holds none. Thread and process keyrings are
// refused; a resumed process has the resume command's session keyring
// (see the inventory: its own cannot be seen without changing the
// process).

/// A keyring a thread is asked about: only these two, for asking for the
/// session keyring of a process without one of its own installs the
/// user's session keyring in its credentials (`lookup_user_key`), which a
/// suspend must not do.
#[derive(Clone, Copy, Debug)]
#[repr(i32)]
pub enum Keyring {
    /// `KEY_SPEC_THREAD_KEYRING`.
    Thread = -1,
    /// `KEY_SPEC_PROCESS_KEYRING`.
    Process = -2,
}

/// `keyctl(2)`'s `KEYCTL_GET_KEYRING_ID`.
const KEYCTL_GET_KEYRING_ID: u64 = 0;

/// Whether `b` (a borrowed thread) has keyring `which`, asked without
/// making one (`KEYCTL_GET_KEYRING_ID`, `create` 0): no where it has none
/// (`ENOKEY`) or the kernel has no keys.
pub fn ask_keyring(b: &mut Borrowed, which: Keyring) -> Result<bool, InjectError> {
    let id = b.syscall(
        libc::SYS_keyctl,
        [KEYCTL_GET_KEYRING_ID, which as i64 as u64, 0, 0, 0, 0],
    )?;
    Ok(id > 0)
}

/// Thread keyrings (`keyctl`) in threads `tids`, as the task iterator or
/// `keyctl` asked from inside shows them: refused where there is one.
pub fn thread_keyring_refusal(tids: &[u32]) -> Option<String> {
    (!tids.is_empty()).then(|| {
        format!(
            "a thread keyring (keyctl) in thread(s) {}",
            tids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// A process keyring (`keyctl`), as the task iterator or `keyctl` asked
/// from inside shows it: refused.
pub fn process_keyring_refusal(has: bool) -> Option<String> {
    has.then(|| "a process keyring (keyctl)".into())
}

/// A session keyring that could not be looked at (`why`): a resume gives
/// the process a new one, so what one of its own linked would be lost.
pub fn session_keyring_unchecked(why: &str) -> String {
    format!(
        "session keyring, which could not be checked ({why}): a resume gives it a new one, and \
         what one of its own links would be lost"
    )
}

/// A session keyring of its own, as the task iterator shows it (nothing
/// inside can tell whether it is its own): a resume gives it a new one,
/// with the user's session keyring (which links the user keyring) linked
/// in. What else it links is lost: refused, unless that is only the
/// user's own keyring (pam_keyinit links it) or session keyring, the
/// user being `uid`.
pub fn session_keyring_refusal(threads: &[TaskFacts], uid: Option<u32>) -> Option<String> {
    let mut own: Vec<(u32, u32, String)> = threads
        .iter()
        .filter_map(|t| {
            let (leaves, name) = t.session_keyring().flatten()?;
            let name = String::from_utf8_lossy(name).into_owned();
            let users = uid.is_some_and(|uid| {
                name == format!("_uid.{uid}") || name == format!("_uid_ses.{uid}")
            });
            (leaves > 1 || (leaves == 1 && !users)).then_some((t.tid, leaves, name))
        })
        .collect();
    own.sort();
    let (_, leaves, name) = own.first()?;
    Some(format!(
        "a session keyring of its own (keyctl join) linking {leaves} key(s) or keyring(s), {name} \
         among them, in thread(s) {}: an image holds no key, and a resume gives it a new \
         session keyring",
        own.iter()
            .map(|t| t.0.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyring_is_asked_by_its_key_spec() {
        // KEY_SPEC_THREAD_KEYRING -1, KEY_SPEC_PROCESS_KEYRING -2, as the
        // system call's unsigned argument.
        assert_eq!(Keyring::Thread as i64 as u64, u64::MAX);
        assert_eq!(Keyring::Process as i64 as u64, u64::MAX - 1);
    }

    fn with_session_keyring(tid: u32, leaves: u32, name: &str) -> TaskFacts {
        use suspend_common::tasks::{FACT_SESSION_KEYRING, KNOWN_SESSION_KEYRING};
        let mut t = TaskFacts {
            tid,
            tgid: 10,
            facts: FACT_SESSION_KEYRING,
            known: KNOWN_SESSION_KEYRING,
            overrun_timer: -1,
            session_leaves: leaves,
            ..TaskFacts::default()
        };
        t.session_leaf[..name.len()].copy_from_slice(name.as_bytes());
        t
    }

    #[test]
    fn a_session_keyring_linking_only_the_users_keyrings_is_no_refusal() {
        // pam_keyinit's: the user keyring linked, nothing else.
        let pam = [with_session_keyring(10, 1, "_uid.1000")];
        assert_eq!(session_keyring_refusal(&pam, Some(1000)), None);
        let empty = [with_session_keyring(10, 0, "")];
        assert_eq!(session_keyring_refusal(&empty, Some(1000)), None);
        // Another user's keyring, a key, or more than one link: refused.
        assert!(session_keyring_refusal(&pam, Some(0)).is_some());
        let key = [
            with_session_keyring(10, 1, "invocation_id"),
            with_session_keyring(11, 1, "x"),
        ];
        let said = session_keyring_refusal(&key, Some(1000)).unwrap();
        assert_eq!(
            said,
            "a session keyring of its own (keyctl join) linking 1 key(s) or keyring(s), \
             invocation_id among them, in thread(s) 10, 11: an image holds no key, and a resume \
             gives it a new session keyring"
        );
        let two = [with_session_keyring(10, 2, "_uid.1000")];
        assert!(session_keyring_refusal(&two, Some(1000)).is_some());
        // Unknown (the iterator could not read it) or none of its own: nothing.
        let unknown = [TaskFacts {
            tid: 10,
            overrun_timer: -1,
            ..TaskFacts::default()
        }];
        assert_eq!(session_keyring_refusal(&unknown, Some(1000)), None);
    }

    #[test]
    fn keyrings_are_refused_by_name() {
        assert_eq!(thread_keyring_refusal(&[]), None);
        assert_eq!(
            thread_keyring_refusal(&[3, 4]).as_deref(),
            Some("a thread keyring (keyctl) in thread(s) 3, 4")
        );
        assert_eq!(process_keyring_refusal(false), None);
        assert_eq!(
            process_keyring_refusal(true).as_deref(),
            Some("a process keyring (keyctl)")
        );
    }

    #[test]
    fn status() {
        let text = "Name:\tw\nUmask:\t0027\nPPid:\t41\nUid:\t1000\t1001\t1002\t1003\nGid:\t10\t11\t12\t13\nGroups:\t4 24 27 \n";
        let creds = parse(text).unwrap();
        assert_eq!(creds.uid, [1000, 1001, 1002, 1003]);
        assert_eq!(creds.gid, [10, 11, 12, 13]);
        assert_eq!(creds.groups, [4, 24, 27]);
        assert_eq!(parse("Uid:\t1000\t1001\n"), None, "three ids short");
    }

    #[test]
    fn the_stub_gets_the_ids_and_where_the_groups_are() {
        let c = Creds {
            uid: [1, 2, 3, 4],
            gid: [5, 6, 7, 8],
            groups: vec![9, 10],
        };
        let given = for_stub(&c, 0x1000);
        assert_eq!((given.uid, given.gid), ([1, 2, 3, 4], [5, 6, 7, 8]));
        assert_eq!((given.groups_count, given.groups), (2, 0x1000));
    }
}
