//! Credentials: the process's uids, gids and supplementary groups.
//!
//! Saved: the `Uid:`, `Gid:` and `Groups:` fields of `/proc/PID/status`
//! ([`parse`], called by `dump::process`), one field of the process record.
//!
//! Restored: given back by the stub, every thread for itself, last: the
//! groups, then the gids, then the uids ([`for_stub`]: what its argument
//! block holds; `restore::plan::process` places the groups in it).

use suspend_common::restore;

use crate::image::format::Creds;

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

#[cfg(test)]
mod tests {
    use super::*;

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
