//! Everything checked before anything is created. `Image::read` has
//! already verified the format, the version, the signature and every
//! checksum; this is what an intact image may still not be resumable for,
//! here and now. The files it needs are checked as they are opened
//! (`open`), on their descriptors.

use std::{
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    image::{
        Image,
        format::{Cpu, MappingKind},
    },
    sys::cpu,
};

/// Why an intact image cannot be resumed here.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the process was held, and parts of it live only in the held process, not in this \
         image: {}; the held process is gone (killed, or the machine rebooted), so they cannot \
         come back",
        .what.join("; ")
    )]
    HeldOnly { what: Vec<String> },
    #[error(
        "the image is not consistent: thread(s) {ran:?} ran while it was taken (its run witness \
         fired); it was never meant to be resumed"
    )]
    Inconsistent { ran: Vec<u32> },
    #[error(
        "the image directory is not safe to resume from: {path} {why} (every directory on \
         its path must be owned by root or by the process's user, uid {uid}, and writable by \
         nobody else unless sticky)"
    )]
    UnsafeDirectory {
        path: PathBuf,
        why: String,
        uid: u32,
    },
    #[error("pid {pid} is in use (by {by}); the image's {what} needs it")]
    PidInUse {
        pid: u32,
        by: String,
        what: &'static str,
    },
    #[error(
        "this CPU lacks xstate features the image uses (image XCR0 {image:#x}, this CPU \
         {here:#x})"
    )]
    CpuFeatures { image: u64, here: u64 },
    #[error("the image's CPU vendor is {image}, this one is {here}")]
    CpuVendor { image: String, here: String },
    /// Its vDSO cannot be given back on this kernel (`state::vdso`).
    #[error(transparent)]
    Vdso(#[from] crate::state::vdso::Conflict),
    /// Its pages could not be read where a check needs them.
    #[error("reading the image's pages: {0}")]
    Pages(String),
    #[error("the process ran chrooted (root {root}); that is not supported yet")]
    Chroot { root: String },
    #[error("the image has no threads")]
    NoThreads,
    #[error(
        "this resume command runs in other namespaces than the agent's, and the process would \
         come back in them: {which}; run it in the machine's (e.g. nsenter -t 1 -a)"
    )]
    Namespaces { which: String },
    /// A file it needs is not as it was, or cannot be opened as its user
    /// (`state::files`).
    #[error(transparent)]
    File(#[from] crate::state::files::Conflict),
    /// Its file locks cannot be taken again (`state::locks`).
    #[error(transparent)]
    Lock(#[from] crate::state::locks::Conflict),
    /// It cannot go back into its cgroups (`state::cgroup`).
    #[error(transparent)]
    Cgroup(#[from] crate::state::cgroup::Conflict),
    /// An attribute this command cannot give back (`state::attributes`).
    #[error(transparent)]
    Attributes(#[from] crate::state::attributes::Conflict),
    /// A hard limit this command cannot raise (`state::limits`).
    #[error(transparent)]
    Rlimit(#[from] crate::state::limits::Conflict),
    /// A thread's capabilities this agent cannot give (`state::confinement`).
    #[error(transparent)]
    Capabilities(#[from] crate::state::confinement::Conflict),
    /// A POSIX timer id this kernel cannot give back (`state::timers`).
    #[error(transparent)]
    Timer(#[from] crate::state::timers::Conflict),
    /// A thread's scheduling this machine cannot give back (`state::sched`).
    #[error(transparent)]
    Sched(#[from] crate::state::sched::Conflict),
}

/// Checks `image` against this machine.
pub fn image(image: &Image) -> Result<(), Refusal> {
    if !image.witness.consistent {
        return Err(Refusal::Inconsistent {
            ran: image.witness.ran.iter().map(|(tid, _)| *tid).collect(),
        });
    }
    if image.threads.is_empty() {
        return Err(Refusal::NoThreads);
    }
    if !image.process.held_only.is_empty() {
        return Err(Refusal::HeldOnly {
            what: image.process.held_only.clone(),
        });
    }
    cpu(image)?;
    namespaces()?;
    crate::state::confinement::check(&image.threads, &crate::state::confinement::own())?;
    crate::state::limits::check(image)?;
    crate::state::sched::check(image)?;
    crate::state::attributes::check_oom_score(image)?;
    crate::state::timers::check(image)?;
    crate::state::cgroup::targets(image)?;
    crate::state::locks::check(image)?;
    crate::state::attributes::check_loginuid(image)?;
    if image.process.root != "/" {
        return Err(Refusal::Chroot {
            root: image.process.root.clone(),
        });
    }
    crate::state::files::check_mapped(&image.mappings)?;
    for (i, t) in image.threads.iter().enumerate() {
        let what = if i == 0 { "process" } else { "thread" };
        pid_free(t.tid, what)?;
    }
    Ok(())
}

/// The running daemon's pid, if one runs: the pid `/run/suspend/agent.pid`
/// names (`pid_file`, its text), if lock lines in `/proc/locks`' form
/// (`locks`: that pid's own, from its fdinfo) show it holding the
/// exclusive flock on that file (`lock_file`: its
/// device and inode). The daemon writes its pid there once it holds that
/// lock (`daemon::lock`), and the lock goes when it does (the file is
/// opened close-on-exec, and the daemon forks nothing that outlives it
/// without an exec), while the pid stays in the file: after a daemon died,
/// the pid may be another process's.
fn running_agent(pid_file: &str, locks: &str, lock_file: (u64, u64)) -> Option<u32> {
    let pid = pid_file.trim().parse::<u32>().ok().filter(|&p| p > 0)?;
    crate::procfs::parse_flocks_on(locks, lock_file.0, lock_file.1)
        .contains(&(pid, true))
        .then_some(pid)
}

/// The process comes back in the resume command's namespaces, and an image
/// holds only a process that was in the agent's (a suspend refuses any
/// other: `dump::process`): so the resume command must be in the agent's
/// too (the running daemon's, else init's), or the process would find
/// another host name, network, mounts or pid numbering. The daemon is the
/// pid in `/run/suspend/agent.pid` only while it holds that file's lock
/// ([`running_agent`]): a pid a dead daemon left there, perhaps reused by
/// another process since, counts as no daemon.
fn namespaces() -> Result<(), Refusal> {
    const KINDS: [&str; 8] = [
        "mnt",
        "net",
        "uts",
        "ipc",
        "user",
        "cgroup",
        "pid_for_children",
        "time_for_children",
    ];
    let link = |who: &str, kind: &str| std::fs::read_link(format!("/proc/{who}/ns/{kind}")).ok();
    let links = |who: &str| KINDS.map(|kind| link(who, kind));
    let lock_file = suspend_common::paths::LOCK_FILE;
    let claimed = std::fs::read_to_string(lock_file).unwrap_or_default();
    // The named pid's namespaces are read before its lock is looked at: a
    // pid that holds the lock after was the daemon when they were read.
    let named = claimed
        .trim()
        .parse::<u32>()
        .ok()
        .map(|pid| links(&pid.to_string()));
    // Its locks from its own fdinfo, not `/proc/locks` (a read of which
    // costs a resume about 20 ms).
    let running = std::fs::metadata(lock_file).is_ok_and(|m| {
        let pid = claimed.trim().parse::<u32>().unwrap_or(0);
        let locks = crate::procfs::fd_locks_on(pid, m.dev(), m.ino());
        running_agent(&claimed, &locks, (m.dev(), m.ino())).is_some()
    });
    let theirs = match named {
        Some(named) if running => named,
        _ => links("1"),
    };
    let differ: Vec<String> = links("self")
        .into_iter()
        .zip(theirs)
        .filter_map(|(ours, theirs)| {
            let (ours, theirs) = (ours?, theirs?);
            (ours != theirs)
                .then(|| format!("{} (the agent's is {})", ours.display(), theirs.display()))
        })
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    Err(Refusal::Namespaces {
        which: differ.join(", "),
    })
}

fn cpu(image: &Image) -> Result<(), Refusal> {
    let here = Cpu::here();
    let want = &image.header.cpu;
    if want.vendor != here.vendor {
        return Err(Refusal::CpuVendor {
            image: want.vendor.clone(),
            here: here.vendor,
        });
    }
    let (_, xcr0) = cpu::xstate_layout();
    if want.xcr0 & !xcr0 != 0 || want.xstate_size != here.xstate_size {
        return Err(Refusal::CpuFeatures {
            image: want.xcr0,
            here: xcr0,
        });
    }
    Ok(())
}

/// What the resume does with the image's vDSO here (`state::vdso`):
/// this kernel's moved in its place, or a proxy there; `force_proxy` is
/// the test hook that takes the proxy for a vDSO that is the same, `hide`
/// the one that hides these functions in it as if this kernel lacked
/// them and nothing stood in for them. Either
/// is refused while a thread stopped inside the image's vDSO, unless this
/// kernel's has the very same bytes and is moved there.
pub fn vdso(image: &Image, force_proxy: bool, hide: &[String]) -> Result<Vdso, Refusal> {
    use crate::state::vdso::{self, Decision};
    let (here_maps, here_vdso) = vdso::here()?;
    let image_maps: Vec<(String, u64, u64)> = image
        .mappings
        .iter()
        .filter(|m| m.kind == MappingKind::Kernel && m.path != "[vsyscall]")
        .map(|m| (m.path.clone(), m.start, m.end))
        .collect();
    let kernel_here = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let decision = vdso::decide(
        &vdso::Image {
            vdso: image.process.vdso.as_deref(),
            maps: &image_maps,
            kernel: &image.header.kernel,
        },
        &vdso::Here {
            vdso: here_vdso.as_ref(),
            maps: &here_maps,
            kernel: &kernel_here,
        },
        force_proxy || !hide.is_empty(),
    )?;
    let Some(old) = image.process.vdso.as_deref() else {
        return Ok(Vdso {
            here: here_maps,
            proxy: None,
        });
    };
    let (_, start, end) = image_maps
        .iter()
        .find(|(name, ..)| name == vdso::VDSO)
        .cloned()
        .unwrap_or_default();
    // A thread stopped inside the image's vDSO would go on in other code
    // wherever the code there is not the very same: other bytes moved in
    // its place, or the proxy (whose code past each entry reads the old
    // data pages, which are not mapped again).
    let same_bytes = here_vdso.as_ref().is_some_and(|h| h.blake3 == old.blake3);
    let proxied = matches!(decision, Decision::Proxy { .. });
    if proxied || !same_bytes {
        let threads: Vec<(u32, u64)> = image.threads.iter().map(|t| (t.tid, t.regs.rip)).collect();
        vdso::no_thread_inside(&threads, (start, end), &image.header.kernel)?;
    }
    let proxy = match decision {
        Decision::Move => None,
        Decision::Proxy { mut patches } => {
            for p in &mut patches {
                let named = |s: &crate::image::format::VdsoSymbol| {
                    s.offset == p.offset && hide.contains(&s.name)
                };
                if old.symbols.iter().any(named) {
                    p.entry = vdso::Entry::Hidden;
                }
            }
            let bytes = vdso::bytes(old)?;
            if bytes.len() as u64 != end - start {
                return Err(vdso::Conflict::Damaged(format!(
                    "{} bytes recorded for a mapping of {}",
                    bytes.len(),
                    end - start
                ))
                .into());
            }
            no_pointer_to_hidden(image, &vdso::hidden(&patches, &old.symbols, start))?;
            Some(Proxy {
                at: start,
                bytes,
                symbols: old.symbols.clone(),
                patches,
            })
        }
    };
    Ok(Vdso {
        here: here_maps,
        proxy,
    })
}

/// Refuses the proxy if the process holds a pointer to a function of
/// its old vDSO that nothing stands in for here (`hidden`): in a thread's
/// register or in its memory (every page of the image read, so only when
/// there is such a function: an image moved to an older kernel).
fn no_pointer_to_hidden(
    image: &Image,
    hidden: &[crate::state::vdso::Hidden],
) -> Result<(), Refusal> {
    use crate::state::vdso::{self, Conflict};
    if hidden.is_empty() {
        return Ok(());
    }
    let refuse = |which: usize, holder: String| {
        Refusal::from(Conflict::Cached {
            kernel: image.header.kernel.clone(),
            names: hidden[which].names.clone(),
            holder,
        })
    };
    for t in &image.threads {
        let r = &t.regs;
        let values = [
            r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx,
            r.rdx, r.rsi, r.rdi,
        ];
        if let Some(which) = values
            .iter()
            .find_map(|&v| hidden.iter().position(|h| (h.start..h.end).contains(&v)))
        {
            return Err(refuse(which, format!("in a register of thread {}", t.tid)));
        }
    }
    let found = image
        .find_in_pages(|at, pages| vdso::pointer_into(hidden, at, pages))
        .map_err(|e| Refusal::Pages(e.to_string()))?;
    match found {
        Some((which, at)) => Err(refuse(which, format!("in its memory at {at:#x}"))),
        None => Ok(()),
    }
}

/// What the resume does with the vDSO, decided ([`vdso`]).
#[derive(Debug)]
pub struct Vdso {
    /// This kernel's mappings beside the vDSO, where the agent (and so the
    /// restore child) has them: (name, start, end).
    pub here: Vec<(String, u64, u64)>,
    /// `None`: they are moved where the image had them.
    pub proxy: Option<Proxy>,
}

/// A copy of the image's vDSO standing in for it, at its address.
#[derive(Debug)]
pub struct Proxy {
    /// The image's vDSO's address.
    pub at: u64,
    /// Its bytes, unpatched.
    pub bytes: Vec<u8>,
    pub symbols: Vec<crate::image::format::VdsoSymbol>,
    pub patches: Vec<crate::state::vdso::Patch>,
}

/// Who may have written the image directory: every directory from `/`
/// down to it must be owned by root or the process's user, and writable by
/// nobody else — unless sticky (as `/tmp`), where others cannot replace
/// what they do not own. The signature says the agent wrote the image;
/// this says nobody swapped another signed image in.
pub fn directory(image: &Image) -> Result<(), Refusal> {
    let uid = image.process.creds.uid[0];
    let unsafe_dir = |path: &Path, why: String| Refusal::UnsafeDirectory {
        path: path.to_path_buf(),
        why,
        uid,
    };
    let dir = fs::canonicalize(&image.dir).map_err(|e| unsafe_dir(&image.dir, e.to_string()))?;
    let mut path = PathBuf::from("/");
    let components: Vec<_> = dir.components().skip(1).collect();
    for (i, part) in std::iter::once(None)
        .chain(components.iter().map(Some))
        .enumerate()
    {
        if let Some(part) = part {
            path.push(part);
        }
        let meta = fs::symlink_metadata(&path).map_err(|e| unsafe_dir(&path, e.to_string()))?;
        let owner = meta.uid();
        if owner != 0 && owner != uid {
            return Err(unsafe_dir(&path, format!("is owned by uid {owner}")));
        }
        let mode = meta.mode();
        let last = i == components.len();
        if mode & 0o022 != 0 && (last || mode & 0o1000 == 0) {
            return Err(unsafe_dir(
                &path,
                format!("is writable by others (mode {:o})", mode & 0o7777),
            ));
        }
    }
    Ok(())
}

/// How long a zombie holding a needed pid is given to be reaped: a
/// suspend that kills the process returns before its parent reaps it, and
/// a resume run right after it should not fail for that.
const ZOMBIE_GRACE: Duration = Duration::from_secs(2);

fn pid_free(pid: u32, what: &'static str) -> Result<(), Refusal> {
    let dir = format!("/proc/{pid}");
    let since = Instant::now();
    let wait = || std::thread::sleep(Duration::from_millis(5));
    loop {
        if !Path::new(&dir).exists() {
            return Ok(());
        }
        // A thread of another process shows only under /proc/TGID/task,
        // but /proc/TID still resolves for it.
        let (Ok(stat), Ok(comm)) = (
            fs::read_to_string(format!("{dir}/stat")),
            fs::read_to_string(format!("{dir}/comm")),
        ) else {
            // Reaped between the looks: look again (it is gone from /proc
            // now, or will be within moments).
            if since.elapsed() < ZOMBIE_GRACE {
                wait();
                continue;
            }
            let by = "another process".to_owned();
            return Err(Refusal::PidInUse { pid, by, what });
        };
        // `pid (comm) S ppid …`: the comm may hold spaces and parentheses.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let mut fields = after.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next());
        let zombie = matches!(state, Some("Z" | "X"));
        if zombie && since.elapsed() < ZOMBIE_GRACE {
            wait();
            continue;
        }
        let comm = format!("`{}`", comm.trim());
        let by = match (zombie, ppid) {
            (true, Some(ppid)) => format!(
                "{comm}, a zombie its parent, pid {ppid}, has not reaped in {:.1} s",
                since.elapsed().as_secs_f64()
            ),
            _ => comm,
        };
        return Err(Refusal::PidInUse { pid, by, what });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        image::format::{Header, PAGE_SIZE, Witness},
        state::{fixtures, vdso as kind},
    };

    /// An image of a process that had this process's vDSO and data pages
    /// at `delta` bytes above where this one has them, taken on `kernel`,
    /// the vDSO recorded or not.
    fn image_with_own_vdso(delta: u64, kernel: &str, recorded: bool) -> Image {
        let (maps, vdso) = kind::here().expect("this process's vDSO");
        let mappings = maps
            .iter()
            .map(|(name, start, end)| {
                let mut m =
                    fixtures::mapping(start + delta, end + delta, "r-xp", MappingKind::Kernel);
                m.path = name.clone();
                m
            })
            .collect();
        let mut process = fixtures::process(42);
        process.vdso = vdso.filter(|_| recorded).map(Box::new);
        Image {
            dir: "/img".into(),
            header: Header {
                format: "suspend-image".into(),
                version: 5,
                created_unix: 0,
                agent_version: "test".into(),
                kernel: kernel.into(),
                hostname: "h".into(),
                cpu: Cpu::here(),
                page_size: PAGE_SIZE,
                codec: None,
            },
            process,
            threads: vec![fixtures::thread(42)],
            mappings,
            files: Vec::new(),
            witness: Witness {
                consistent: true,
                ran: Vec::new(),
                frozen_threads: 1,
            },
            page_bytes: 0,
            signer: String::new(),
        }
    }

    fn release() -> String {
        nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .expect("uname")
    }

    #[test]
    fn the_vdso_of_this_kernel_is_moved_in_place_unless_the_hook_asks_for_a_proxy() {
        let delta = 0x10_0000_0000;
        let image = image_with_own_vdso(delta, "another", true);
        let moved = vdso(&image, false, &[]).expect("the same vDSO");
        assert!(moved.proxy.is_none());
        assert!(moved.here.iter().any(|(name, ..)| name == kind::VDSO));

        let proxied = vdso(&image, true, &[]).expect("a proxy");
        let proxy = proxied.proxy.expect("a proxy");
        let old = image
            .mappings
            .iter()
            .find(|m| m.path == kind::VDSO)
            .cloned()
            .expect("[vdso]");
        assert_eq!(proxy.at, old.start);
        assert_eq!(proxy.bytes.len() as u64, old.end - old.start);
        assert!(proxy.patches.len() >= 5, "{:?}", proxy.patches);

        // A thread stopped inside the old vDSO: refused, named.
        let mut inside = image;
        inside.threads[0].regs.rip = old.start + 0x800;
        let err = vdso(&inside, true, &[]).expect_err("a thread inside");
        assert!(err.to_string().contains("[42]"), "{err}");
        // Moved in place (the very same bytes), it goes on in the same code.
        assert!(vdso(&inside, false, &[]).is_ok());

        // A function hidden (nothing stands in for it) whose address a
        // thread holds in a register: refused, naming both.
        let getcpu = image_with_own_vdso(delta, "another", true)
            .process
            .vdso
            .as_ref()
            .and_then(|v| {
                v.symbols
                    .iter()
                    .find(|s| s.name == "__vdso_getcpu")
                    .cloned()
            })
            .expect("getcpu");
        inside.threads[0].regs.rip = 0x1000;
        inside.threads[0].regs.rbx = old.start + getcpu.offset;
        let err = vdso(&inside, false, &["__vdso_getcpu".into()]).expect_err("held");
        let said = err.to_string();
        assert!(
            said.contains("`__vdso_getcpu`") && said.contains("in a register of thread 42"),
            "{said}"
        );
    }

    #[test]
    fn an_image_without_the_vdso_record_resumes_only_on_its_kernel_release() {
        let image = image_with_own_vdso(0x10_0000_0000, &release(), false);
        assert!(
            vdso(&image, false, &[])
                .expect("same release")
                .proxy
                .is_none()
        );
        // The hook has no bytes to make a proxy of.
        assert!(
            vdso(&image, true, &[])
                .expect("same release")
                .proxy
                .is_none()
        );
        let other = image_with_own_vdso(0x10_0000_0000, "0.0-other", false);
        let err = vdso(&other, false, &[]).expect_err("another release");
        assert!(err.to_string().contains("0.0-other"), "{err}");
    }

    #[test]
    fn the_agent_is_the_pid_in_its_file_only_while_it_holds_the_files_lock() {
        let file = (crate::sys::dev::makedev(0, 0x19), 1234);
        let locks = "1: FLOCK  ADVISORY  WRITE 812 00:19:1234 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 4242 00:19:1234 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 4242 00:19:999 0 EOF\n\
                     4: FLOCK  ADVISORY  READ 5151 00:19:1234 0 EOF\n";
        assert_eq!(running_agent("812\n", locks, file), Some(812));
        // A daemon that died left its pid; whoever has that pid now holds
        // no lock, or another kind, or one on another file.
        assert_eq!(running_agent("812\n", "", file), None);
        assert_eq!(running_agent("4242\n", locks, file), None);
        assert_eq!(running_agent("812\n", locks, (file.0, 999)), None);
        // `unload` taking the lock a moment, no daemon: not exclusive…
        assert_eq!(running_agent("5151\n", locks, file), None);
        // …and nothing in the file, or not a pid.
        assert_eq!(running_agent("", locks, file), None);
        assert_eq!(running_agent("0\n", locks, file), None);
        assert_eq!(running_agent("x\n", locks, file), None);
    }
}
