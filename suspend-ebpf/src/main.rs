//! eBPF programs of suspend.
//!
//! They keep the registry of processes that opted in true without polling
//! (`registry.rs`) and account for every real-time signal (`signal.rs`). The
//! agent loads them once and pins maps and links under
//! `/sys/fs/bpf/suspend/`, so they keep working while no agent runs.
//!
//! Each entry point calls a `try_*` function that returns a `Result`; an
//! error only means "this event was not recorded" and never affects the
//! traced task.
//!
//! On any other target (`cargo build --workspace`, `cargo clippy`) the crate
//! builds to an empty program.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// Inline assembly for the LSM verdicts (guard.rs).
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

#[cfg(target_arch = "bpf")]
mod freeze;
#[cfg(target_arch = "bpf")]
mod guard;
#[cfg(target_arch = "bpf")]
mod layout;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod programs;
#[cfg(target_arch = "bpf")]
mod registry;
#[cfg(target_arch = "bpf")]
mod signal;
#[cfg(target_arch = "bpf")]
mod tasks;

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!(
        "suspend-ebpf holds eBPF programs: it is built for bpfel-unknown-none by suspend-agent/build.rs"
    );
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
