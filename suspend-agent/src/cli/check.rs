//! `suspend-agent check`.

use std::{fs, path::Path};

use serde::Serialize;

use crate::{daemon::ebpf::PROGRAMS, exit, sys, tracefs};

/// Report the kernel features suspend uses
///
/// Required features make the exit status 1 when missing; the others only
/// limit what later steps (freeze, dump, restore) can do. Run as root for
/// the probes that need privileges.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Feature {
    name: &'static str,
    available: bool,
    required: bool,
    detail: String,
    used_for: &'static str,
}

fn feature(
    name: &'static str,
    required: bool,
    used_for: &'static str,
    r: Result<String, String>,
) -> Feature {
    let (available, detail) = match r {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    Feature {
        name,
        available,
        required,
        detail,
        used_for,
    }
}

fn io_result<E: std::fmt::Display>(r: Result<(), E>) -> Result<String, String> {
    r.map(|()| String::new()).map_err(|e| e.to_string())
}

fn exists(path: &str) -> Result<String, String> {
    if Path::new(path).exists() {
        Ok(path.to_owned())
    } else {
        Err(format!("{path} missing"))
    }
}

fn features() -> Vec<Feature> {
    let mut f = Vec::new();
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    f.push(feature("kernel", false, "information", Ok(release)));
    f.push(feature(
        "root",
        true,
        "loading eBPF, signalling, reading memory",
        {
            if nix::unistd::geteuid().is_root() {
                Ok(String::new())
            } else {
                Err("not running as root".into())
            }
        },
    ));
    f.push(feature(
        "btf",
        false,
        "BTF-typed maps, later CO-RE programs",
        exists("/sys/kernel/btf/vmlinux"),
    ));
    f.push(feature(
        "bpffs",
        true,
        "pinned maps and links",
        exists("/sys/fs/bpf"),
    ));
    let missing: Vec<String> = PROGRAMS
        .iter()
        .map(|(_, cat, name)| format!("{cat}/{name}"))
        .filter(|tp| {
            !Path::new(tracefs::TRACEFS)
                .join("events")
                .join(tp)
                .join("format")
                .exists()
        })
        .collect();
    f.push(feature(
        "tracepoints",
        true,
        "the registry and signal accounting",
        {
            if missing.is_empty() {
                Ok(format!("{} tracepoints", PROGRAMS.len()))
            } else {
                Err(format!(
                    "missing or tracefs not mounted: {}",
                    missing.join(", ")
                ))
            }
        },
    ));
    f.push(feature(
        "bpf-lsm",
        false,
        "denying signals and tracers on frozen tasks",
        crate::daemon::ebpf::probe_lsm(),
    ));
    f.push(feature(
        "pidfd",
        true,
        "signalling the right process",
        io_result(sys::PidFd::open(std::process::id()).map(drop)),
    ));
    f.push(feature(
        "process_vm_readv",
        true,
        "reading client blocks, dumping memory",
        {
            let value = 0x5eed_u64;
            let mut buf = [0u8; 8];
            io_result(sys::read_process_memory(
                std::process::id(),
                (&raw const value) as u64,
                &mut buf,
            ))
        },
    ));
    f.push(feature(
        "checkpoint-restore",
        false,
        "map_files, PR_SET_MM_MAP (restore)",
        exists("/proc/self/map_files"),
    ));
    f.push(feature(
        "clone3-set-tid",
        false,
        "restoring original pids and tids",
        io_result(sys::probe::clone3_set_tid()),
    ));
    f.push(feature(
        "ptrace-rseq",
        false,
        "dumping rseq registrations",
        io_result(sys::probe::ptrace_rseq_configuration()),
    ));
    f.push(feature(
        "userfaultfd",
        false,
        "lazy restore",
        io_result(sys::probe::userfaultfd()),
    ));
    f.push(feature(
        "soft-dirty",
        false,
        "incremental dumps",
        io_result(sys::probe::soft_dirty()),
    ));
    f.push(feature("ptrace-scope", false, "information (yama)", {
        fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
            .map(|s| s.trim().to_owned())
            .or_else(|_| Ok::<_, String>("no yama".into()))
    }));
    f
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let features = features();
    let ok = features.iter().all(|f| f.available || !f.required);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&features)?);
    } else {
        for f in &features {
            let mark = match (f.available, f.required) {
                (true, _) => "yes",
                (false, true) => "NO (required)",
                (false, false) => "no",
            };
            let detail = if f.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.detail)
            };
            println!("{:<20} {:<14} {}{}", f.name, mark, f.used_for, detail);
        }
    }
    Ok(if ok { exit::OK } else { exit::ERROR })
}
