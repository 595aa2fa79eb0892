//! What this CPU is: its vendor and the xstate features the kernel
//! enabled (an image's register state depends on both).

/// The CPU vendor string (`GenuineIntel`, `AuthenticAMD`, …).
pub fn vendor() -> String {
    let leaf = core::arch::x86_64::__cpuid(0);
    let vendor: Vec<u8> = [leaf.ebx, leaf.edx, leaf.ecx]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    String::from_utf8_lossy(&vendor).into_owned()
}

/// Whether this CPU and kernel give memory protection keys (`ospke`
/// among the flags of `/proc/cpuinfo`), asked once.
pub fn has_pkeys() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|text| {
            text.lines()
                .find(|l| l.starts_with("flags"))
                .is_some_and(|l| l.split_whitespace().any(|f| f == "ospke"))
        })
    })
}

/// The size of the xstate area this CPU saves for the features the OS
/// enabled (CPUID leaf 0xD, sub-leaf 0, EBX), and those features (XCR0).
pub fn xstate_layout() -> (usize, u64) {
    // Leaf 0xD exists on every CPU with XSAVE, which Linux needs for
    // anything past SSE.
    let leaf = core::arch::x86_64::__cpuid_count(0xd, 0);
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV with ECX=0 reads XCR0; it faults only without
    // OSXSAVE, which every x86-64 Linux with XSAVE sets.
    unsafe {
        core::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack))
    };
    (leaf.ebx as usize, (u64::from(hi) << 32) | u64::from(lo))
}
