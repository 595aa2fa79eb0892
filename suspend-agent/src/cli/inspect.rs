//! `suspend-agent inspect DIR`.

use std::path::PathBuf;

use serde_json::json;

use crate::{
    exit,
    image::{
        Image,
        format::{MappingKind, PAGE_SIZE},
        sign::Keys,
    },
};

/// Show what an image holds, after checking it
///
/// Every record's checksum, the format version, the signature (by this
/// machine's key or one it trusts), the end record and every page run's
/// hash are verified first; a damaged, altered or unsigned image is
/// refused with what is wrong and where (exit 1). Then: the process, its threads, a table
/// of its mappings with what was saved of each, its files, and the run
/// witness.
#[derive(clap::Args)]
pub struct Args {
    /// The image directory.
    dir: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

fn kind(k: MappingKind) -> &'static str {
    match k {
        MappingKind::Anonymous => "anon",
        MappingKind::PrivateFile => "file",
        MappingKind::SharedFile => "shared-file",
        MappingKind::SharedAnonymous => "shared-anon",
        MappingKind::Kernel => "kernel",
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let trusted = Keys::system()?.trusted()?;
    let image = Image::read(&args.dir, true, &trusted)?;
    let p = &image.process;
    if args.json {
        let out = json!({
            "dir": image.dir,
            "header": image.header,
            "process": p,
            "threads": image.threads.iter().map(|t| json!({
                "tid": t.tid, "rip": t.regs.rip, "rsp": t.regs.rsp, "fs_base": t.regs.fs_base,
                "sigmask": t.sigmask, "pending": t.pending.len(), "rseq": t.rseq,
                "robust_list": t.robust_list, "xstate_bytes": t.xstate.len() / 4 * 3,
                "sigaltstack": t.sigaltstack, "tid_address": t.tid_address,
                "confinement": t.confinement, "seccomp_filters": t.seccomp.len(),
                "sched": t.sched,
            })).collect::<Vec<_>>(),
            "mappings": image.mappings.iter().map(|m| json!({
                "start": m.start, "end": m.end, "perms": m.perms, "offset": m.offset,
                "path": m.path, "kind": m.kind, "pages": (m.end - m.start) / 4096,
                "saved_pages": m.saved_pages(), "file": m.file,
            })).collect::<Vec<_>>(),
            "files": image.files,
            "witness": image.witness,
            "saved_pages": image.saved_pages(),
            "page_bytes": image.page_bytes,
            "checksums": "verified",
            "signed_by": image.signer,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(exit::OK);
    }
    println!(
        "image     {} (format {} v{}, checksums verified, signed by key {})",
        image.dir.display(),
        image.header.format,
        image.header.version,
        image.signer
    );
    println!(
        "written   by agent {} on {} (kernel {}), CPU {} xcr0={:#x}",
        image.header.agent_version,
        image.header.hostname,
        image.header.kernel,
        image.header.cpu.vendor,
        image.header.cpu.xcr0
    );
    println!(
        "process   pid {} ({}), parent {}, uid {} gid {}, cwd {}",
        p.pid, p.comm, p.ppid, p.creds.uid[0], p.creds.gid[0], p.cwd
    );
    if let Some(exe) = &p.exe {
        println!("exe       {}", exe.path);
    }
    println!("threads   {}", image.threads.len());
    for t in &image.threads {
        println!(
            "  tid {:>7}  rip {:#014x}  rsp {:#014x}  sigmask {:#018x}{}{}",
            t.tid,
            t.regs.rip,
            t.regs.rsp,
            t.sigmask,
            t.rseq
                .as_ref()
                .map(|r| format!("  rseq {:#x}", r.addr))
                .unwrap_or_default(),
            if t.pending.is_empty() {
                String::new()
            } else {
                format!("  {} pending", t.pending.len())
            }
        );
        if let Some(a) = &t.sigaltstack {
            println!("              sigaltstack {:#x} ({} bytes)", a.sp, a.size);
        }
        if let Some(c) = &t.confinement {
            println!(
                "              caps eff {:#x} prm {:#x} inh {:#x} bnd {:#x} amb {:#x}, \
                 securebits {:#x}{}{}",
                c.effective,
                c.permitted,
                c.inheritable,
                c.bounding,
                c.ambient,
                c.securebits,
                if c.no_new_privs { ", no_new_privs" } else { "" },
                if t.seccomp.is_empty() {
                    String::new()
                } else {
                    format!(", {} seccomp filter(s)", t.seccomp.len())
                }
            );
        }
        if let Some(s) = &t.sched {
            println!(
                "              sched policy {} nice {} priority {}",
                s.policy, s.nice, s.priority
            );
        }
    }
    if let Some(brk) = p.brk {
        println!("brk       {brk:#x} (heap starts at {:#x})", p.mm.start_brk);
    }
    if let Some(v) = &p.vdso {
        let mut names: Vec<&str> = v
            .symbols
            .iter()
            .map(|s| s.name.as_str())
            .filter(|n| n.starts_with("__vdso_"))
            .collect();
        names.dedup();
        println!(
            "vdso      blake3 {}…, {} function(s): {}",
            v.blake3.get(..16).unwrap_or(&v.blake3),
            v.symbols.len(),
            names.join(" ")
        );
    }
    let handled: Vec<String> = p
        .sigactions
        .iter()
        .filter(|a| a.handler > 1)
        .map(|a| format!("{}→{:#x}", a.signal, a.handler))
        .collect();
    let ignored: Vec<String> = p
        .sigactions
        .iter()
        .filter(|a| a.handler == 1)
        .map(|a| a.signal.to_string())
        .collect();
    println!(
        "signals   handled: {}; ignored: {}",
        join_or_none(&handled),
        join_or_none(&ignored)
    );
    for t in &p.itimers {
        let which = ["real", "virtual", "prof"]
            .get(t.which as usize)
            .unwrap_or(&"?");
        println!(
            "itimer    {which}: next in {} µs, every {} µs",
            t.value_us, t.interval_us
        );
    }
    let saved_mib = (image.saved_pages() * PAGE_SIZE) as f64 / 1048576.0;
    let stored = match image.header.codec {
        Some(codec) => format!(
            ", {:.1} MiB stored, {} compressed to {:.2}",
            image.page_bytes as f64 / 1048576.0,
            codec.name(),
            image.page_bytes as f64 / (saved_mib * 1048576.0).max(1.0)
        ),
        None => String::new(),
    };
    println!(
        "mappings  {} ({} pages saved, {saved_mib:.1} MiB{stored})",
        image.mappings.len(),
        image.saved_pages(),
    );
    println!(
        "  {:<33} {:<5} {:<11} {:>9} {:>9}  PATH",
        "RANGE", "PERMS", "KIND", "SIZE", "SAVED"
    );
    for m in &image.mappings {
        println!(
            "  {:016x}-{:016x} {:<5} {:<11} {:>8}K {:>8}K  {}",
            m.start,
            m.end,
            m.perms,
            kind(m.kind),
            (m.end - m.start) / 1024,
            m.saved_pages() * 4,
            m.path
        );
    }
    println!("files     {}", image.files.len());
    for f in &image.files {
        let pipe = f.pipe.as_ref().map_or(String::new(), |p| {
            let queued =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &p.data)
                    .map_or(0, |d| d.len());
            format!(
                "  ({} end, {} B pipe{})",
                if p.write { "write" } else { "read" },
                p.size,
                if queued > 0 {
                    format!(", {queued} B unread")
                } else {
                    String::new()
                }
            )
        });
        println!(
            "  fd {:>3}  {:<12} pos {:>10}  flags {:o}  {}{pipe}",
            f.fd,
            format!("{:?}", f.kind).to_lowercase(),
            f.pos,
            f.flags,
            f.path
        );
    }
    println!(
        "witness   {} ({} thread(s) frozen{})",
        if image.witness.consistent {
            "consistent: no frozen thread ran"
        } else {
            "INCONSISTENT"
        },
        image.witness.frozen_threads,
        if image.witness.ran.is_empty() {
            String::new()
        } else {
            format!(", ran: {:?}", image.witness.ran)
        }
    );
    Ok(exit::OK)
}

fn join_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(" ")
    }
}
