//! Rebuild the eBPF object when `bpf-linker` changes (it is an undeclared
//! build dependency: cargo cannot express a dependency on a binary tool).
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
