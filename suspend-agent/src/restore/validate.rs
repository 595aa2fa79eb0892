//! Everything checked before anything is created. `Image::read` has
//! already verified the format, the version and every checksum; this is
//! what an intact image may still not be resumable for, here and now.

use std::{
    fs,
    os::unix::fs::MetadataExt as _,
    path::Path,
    time::{Duration, Instant},
};

use crate::{
    dump::vmas,
    image::{
        Image,
        format::{FileId, FileKind, MappingKind},
    },
    sys::ptrace,
};

/// Why an intact image cannot be resumed here.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the image is not consistent: thread(s) {ran:?} ran while it was taken (its run witness \
         fired); it was never meant to be resumed"
    )]
    Inconsistent { ran: Vec<u32> },
    #[error("{what} {path} is gone: {source}")]
    FileGone {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{what} {path} changed since the image was taken ({how})")]
    FileChanged {
        what: &'static str,
        path: String,
        how: String,
    },
    #[error("{what} {path} was deleted before the image was taken; it cannot be reopened")]
    FileDeleted { what: &'static str, path: String },
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
    #[error(
        "the kernel's special mappings differ from the image's ({image} there, {here} here): \
         the image was taken on kernel {kernel}, and restoring across vDSO layouts is not \
         supported"
    )]
    KernelLayout {
        image: String,
        here: String,
        kernel: String,
    },
    #[error("the process ran chrooted (root {root}); that is not supported yet")]
    Chroot { root: String },
    #[error("the image has no threads")]
    NoThreads,
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
    cpu(image)?;
    kernel_mappings(image)?;
    if image.process.root != "/" {
        return Err(Refusal::Chroot {
            root: image.process.root.clone(),
        });
    }
    if let Some(exe) = &image.process.exe {
        same_file("executable", exe, true)?;
    }
    for m in &image.mappings {
        if matches!(m.kind, MappingKind::PrivateFile | MappingKind::SharedFile) {
            if m.path.ends_with(" (deleted)") {
                return Err(Refusal::FileDeleted {
                    what: "mapped file",
                    path: m.path.clone(),
                });
            }
            if let Some(id) = &m.file {
                same_file("mapped file", id, true)?;
            }
        }
    }
    for f in &image.files {
        if (0..=2).contains(&f.fd) {
            continue; // stdio: the resume command's own, or given files
        }
        if matches!(
            f.kind,
            FileKind::Regular | FileKind::Directory | FileKind::CharDevice
        ) {
            match &f.id {
                // An open file may grow or be written: same inode is enough.
                Some(id) => same_file("open file", id, false)?,
                None => {
                    fs::metadata(&f.path).map_err(|source| Refusal::FileGone {
                        what: "open file",
                        path: f.path.clone(),
                        source,
                    })?;
                }
            }
        }
    }
    for (i, t) in image.threads.iter().enumerate() {
        let what = if i == 0 { "process" } else { "thread" };
        pid_free(t.tid, what)?;
    }
    Ok(())
}

fn cpu(image: &Image) -> Result<(), Refusal> {
    let here = crate::dump::cpu();
    let want = &image.header.cpu;
    if want.vendor != here.vendor {
        return Err(Refusal::CpuVendor {
            image: want.vendor.clone(),
            here: here.vendor,
        });
    }
    let (_, xcr0) = ptrace::xstate_layout();
    if want.xcr0 & !xcr0 != 0 || want.xstate_size != here.xstate_size {
        return Err(Refusal::CpuFeatures {
            image: want.xcr0,
            here: xcr0,
        });
    }
    Ok(())
}

/// The vDSO/vvar mappings this kernel gives a process, as `name size`.
pub fn kernel_layout_here() -> Vec<(String, u64, u64)> {
    let maps = fs::read_to_string("/proc/self/maps").unwrap_or_default();
    vmas::parse(&maps)
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.kind() == MappingKind::Kernel && v.path != "[vsyscall]")
        .map(|v| (v.path, v.start, v.end))
        .collect()
}

fn kernel_mappings(image: &Image) -> Result<(), Refusal> {
    let describe = |list: &mut dyn Iterator<Item = (String, u64)>| {
        let mut parts: Vec<String> = list.map(|(name, len)| format!("{name} {len}")).collect();
        parts.sort();
        parts.join(", ")
    };
    let here = describe(
        &mut kernel_layout_here()
            .into_iter()
            .map(|(name, start, end)| (name, end - start)),
    );
    let there = describe(
        &mut image
            .mappings
            .iter()
            .filter(|m| m.kind == MappingKind::Kernel && m.path != "[vsyscall]")
            .map(|m| (m.path.clone(), m.end - m.start)),
    );
    if here != there {
        return Err(Refusal::KernelLayout {
            image: there,
            here,
            kernel: image.header.kernel.clone(),
        });
    }
    Ok(())
}

/// Whether `id` still names the same file. An open file must be the very
/// same one (device and inode). A mapped file or the executable (`content`)
/// must have the same size and modification time; under another inode that
/// (to the second) is taken as the same contents — the file on another
/// machine, or a copy that kept its times (`cp -p`, a package installed
/// again).
fn same_file(what: &'static str, id: &FileId, content: bool) -> Result<(), Refusal> {
    let meta = fs::metadata(Path::new(&id.path)).map_err(|source| Refusal::FileGone {
        what,
        path: id.path.clone(),
        source,
    })?;
    let changed = |how: String| Refusal::FileChanged {
        what,
        path: id.path.clone(),
        how,
    };
    let same_inode = meta.dev() == id.dev && meta.ino() == id.ino;
    if !content {
        return if same_inode {
            Ok(())
        } else {
            Err(changed("it is another file now".into()))
        };
    }
    let mut how = Vec::new();
    if meta.size() != id.size {
        how.push(format!("size {} then, {} now", id.size, meta.size()));
    }
    let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
    // A copy may keep only whole seconds (`tar` in ustar format, `scp -p`,
    // busybox `cp -p`).
    let same_mtime = if same_inode {
        mtime_ns == id.mtime_ns
    } else {
        meta.mtime() == id.mtime_ns.div_euclid(1_000_000_000)
    };
    if !same_mtime {
        how.push("modified".to_owned());
    }
    if how.is_empty() {
        return Ok(());
    }
    if !same_inode {
        how.insert(0, "it is another file now".to_owned());
    }
    Err(changed(how.join(", ")))
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
