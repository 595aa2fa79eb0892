//! The process as a whole. What the restore child sets before it jumps
//! into the stub — stdio, the working directory, the session or process
//! group it leads (umask and personality are the image's as they are;
//! limits, name and audit login uid are planned by their kinds in
//! `state/`) — and the process's parts of the argument block: the memory
//! map fields (`PR_SET_MM_MAP`, with the executable), the credentials
//! (their groups placed on the block), and the flags.

use std::os::fd::{OwnedFd, RawFd};

use suspend_common::restore::{Creds, MmMap, RESTORE_SKIP_VDSO};

use super::{args::Block, fds::Helpers, prepare_err};
use crate::{
    image::format::{self, File, Process},
    restore::{Options, RestoreError},
};

/// What stdin/stdout/stderr become.
#[derive(Debug, PartialEq, Eq)]
pub enum StdioPlan {
    /// The resume command's own (inherited).
    Inherit,
    /// A given file (helper fd).
    From(RawFd),
    /// The process had it closed.
    Close,
}

/// What the restored process leads (see [`crate::image::format::Session`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionPlan {
    /// Its own session (`setsid`), and so its process group.
    Lead,
    /// Its own process group (`setpgid(0, 0)`) in the resume command's
    /// session.
    LeadGroup,
    /// The resume command's session and group (`--new-session` said so).
    Join,
}

/// The executable, opened beforehand, as a helper (for `PR_SET_MM_MAP`;
/// the stub closes it).
pub fn exe(exe: Option<OwnedFd>, helpers: &mut Helpers) -> Result<Option<RawFd>, RestoreError> {
    exe.map(|exe| helpers.add(exe)).transpose()
}

/// The working directory (`path`), opened beforehand as the process, as
/// a helper for the child's `fchdir`.
pub fn cwd(cwd: Option<OwnedFd>, path: &str, helpers: &mut Helpers) -> Result<RawFd, RestoreError> {
    match cwd {
        Some(cwd) => helpers.add(cwd),
        None => Err(prepare_err(path)(std::io::Error::other(
            "the working directory was not opened",
        ))),
    }
}

/// Stdin, stdout and stderr: closed where the process had them closed
/// (`files` has none), else the file `--std*` named (`given`, made a
/// helper) or the resume command's own.
pub fn stdio(
    files: &[File],
    given: &mut [Option<OwnedFd>; 3],
    helpers: &mut Helpers,
) -> Result<[StdioPlan; 3], RestoreError> {
    let mut stdio = [StdioPlan::Close, StdioPlan::Close, StdioPlan::Close];
    for (i, slot) in stdio.iter_mut().enumerate() {
        if !files.iter().any(|f| f.fd == i as i32) {
            continue;
        }
        *slot = match given[i].take() {
            None => StdioPlan::Inherit,
            Some(f) => StdioPlan::From(helpers.add(f)?),
        };
    }
    Ok(stdio)
}

/// Leads its session again if it led one, else its process group if it
/// led one, else joins the resume command's.
pub fn session(p: &Process) -> SessionPlan {
    match p.session {
        Some(s) if s.sid == p.pid => SessionPlan::Lead,
        Some(s) if s.pgid == p.pid => SessionPlan::LeadGroup,
        _ => SessionPlan::Join,
    }
}

/// `PR_SET_MM_MAP`'s fields, with the executable (`u32::MAX`: none) and
/// the auxiliary vector pushed on `block`; the program break as its
/// kind gives it back ([`crate::state::mappings::brk`]).
pub fn mm(p: &Process, exe_fd: Option<RawFd>, block: &mut Block) -> MmMap {
    let auxv: Vec<u64> = p.auxv.iter().flat_map(|(k, v)| [*k, *v]).collect();
    MmMap {
        start_code: p.mm.start_code,
        end_code: p.mm.end_code,
        start_data: p.mm.start_data,
        end_data: p.mm.end_data,
        start_brk: p.mm.start_brk,
        brk: crate::state::mappings::brk(p),
        start_stack: p.mm.start_stack,
        arg_start: p.mm.arg_start,
        arg_end: p.mm.arg_end,
        env_start: p.mm.env_start,
        env_end: p.mm.env_end,
        auxv: block.push(&auxv),
        auxv_size: (auxv.len() * 8) as u32,
        exe_fd: exe_fd.map_or(u32::MAX, |fd| fd as u32),
    }
}

/// Its uids, gids and groups ([`crate::state::credentials`]), the groups
/// pushed on `block`.
pub fn creds(c: &format::Creds, block: &mut Block) -> Creds {
    let groups = block.push(&c.groups);
    crate::state::credentials::for_stub(c, groups)
}

/// The `RESTORE_*` flags: the process's child subreaper and THP
/// attributes ([`crate::state::attributes::flags`]), and the test hook
/// that leaves the vDSO alone.
pub fn flags(options: &Options, p: &Process) -> u32 {
    (if options.skip_vdso {
        RESTORE_SKIP_VDSO
    } else {
        0
    }) | crate::state::attributes::flags(p.attributes.as_ref())
}

#[cfg(test)]
mod tests {
    use suspend_common::restore::{
        RESTORE_CHILD_SUBREAPER, RESTORE_SKIP_VDSO, RESTORE_THP_DISABLE,
    };

    use super::{SessionPlan, StdioPlan, flags, mm, session, stdio};
    use crate::{
        image::format::{Attributes, Session},
        restore::{
            Options,
            plan::{args::Block, fds::Helpers},
        },
        state::fixtures::{file, process},
    };

    #[test]
    fn stdio_is_closed_where_it_was_closed_else_given_or_inherited() {
        let files = [file(0), file(2), file(5)];
        let mut helpers = Helpers::above(&files);
        let null = || std::fs::File::open("/dev/null").expect("/dev/null").into();
        // A file given for stdout, which the process had closed: unused.
        let mut given = [None, Some(null()), Some(null())];
        let got = stdio(&files, &mut given, &mut helpers).expect("planned");
        assert_eq!(got[0], StdioPlan::Inherit);
        assert_eq!(got[1], StdioPlan::Close);
        assert!(
            matches!(got[2], StdioPlan::From(fd) if fd > 5),
            "{:?}",
            got[2]
        );
        assert!(given[1].is_some(), "left where it was");
        assert_eq!(helpers.into_fds().len(), 1);
    }

    #[test]
    fn it_leads_again_what_it_led() {
        let with = |sid, pgid| {
            let mut p = process(42);
            p.session = Some(Session { sid, pgid });
            session(&p)
        };
        assert_eq!(with(42, 42), SessionPlan::Lead);
        assert_eq!(with(7, 42), SessionPlan::LeadGroup);
        assert_eq!(with(7, 9), SessionPlan::Join);
        assert_eq!(session(&process(42)), SessionPlan::Join);
    }

    #[test]
    fn the_mm_map_has_the_auxv_pairs_and_the_break() {
        let mut p = process(42);
        p.auxv = vec![(6, 4096), (33, 0x7fff_1000)];
        p.mm.start_brk = 0x60_0000;
        let base = 0x1000_0000_2000;
        let mut block = Block::new(base);
        let got = mm(&p, None, &mut block);
        assert_eq!(
            (got.brk, got.exe_fd, got.auxv_size),
            (0x60_0000, u32::MAX, 32)
        );
        let bytes = block.into_bytes();
        let from = (got.auxv - base) as usize;
        let words: Vec<u64> = bytes[from..from + 32]
            .as_chunks::<8>()
            .0
            .iter()
            .map(|w| u64::from_ne_bytes(*w))
            .collect();
        assert_eq!(words, [6, 4096, 33, 0x7fff_1000]);
        p.brk = Some(0x62_1000);
        let got = mm(&p, Some(11), &mut Block::new(base));
        assert_eq!((got.brk, got.exe_fd), (0x62_1000, 11));
    }

    #[test]
    fn the_flags_say_the_vdso_hook_and_the_attributes() {
        let mut p = process(42);
        let skip = Options {
            skip_vdso: true,
            ..Options::default()
        };
        assert_eq!(flags(&Options::default(), &p), 0);
        assert_eq!(flags(&skip, &p), RESTORE_SKIP_VDSO);
        p.attributes = Some(Attributes {
            child_subreaper: true,
            thp_disable: true,
            ..Attributes::default()
        });
        assert_eq!(
            flags(&skip, &p),
            RESTORE_SKIP_VDSO | RESTORE_CHILD_SUBREAPER | RESTORE_THP_DISABLE
        );
        assert_eq!(
            flags(&Options::default(), &p),
            RESTORE_CHILD_SUBREAPER | RESTORE_THP_DISABLE
        );
    }
}
