//! The vDSO: code the kernel maps into every process, which its C library
//! calls through pointers it cached at start (`clock_gettime`,
//! `gettimeofday`, `time`, `getcpu`, …), and which reads the kernel's data
//! pages (`[vvar]`, `[vvar_vclock]`) at fixed offsets from itself.
//!
//! Save: the process's vDSO bytes, their hash and the functions its
//! dynamic symbol table exports, each with its offset and size
//! ([`save`]). Where the kernel's other mappings lay beside it is in the
//! image's mappings already.
//!
//! Restore: this kernel's vDSO is compared with the image's ([`decide`]).
//! The same bytes, or every function the image's exported at the same
//! offset here, with the data pages laid out the same around it: this
//! kernel's vDSO and data pages are moved where the image had them, as
//! ever, and the cached pointers land on the same functions. Otherwise a
//! proxy: this kernel's vDSO and data pages go together to a free place
//! (the vDSO finds its data pages relative to itself), and at the image's
//! vDSO address goes a copy of the image's vDSO bytes in which each
//! exported function's entry jumps to the same function in this kernel's
//! ([`proxy_bytes`]), or makes the system call it stands for where this
//! kernel's vDSO lacks it. The image's data pages are not mapped again:
//! only the old code read them, and its entries no longer reach it. What
//! cannot be stood in for is refused, by name ([`Conflict`]).
//!
//! The restorer stub does nothing new for it: the proxy is one more
//! premap in the zone, filled by the agent, moved and made read+exec like
//! any other mapping (`restore/plan/memory.rs`).

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};

use crate::{
    image::format::{MappingKind, Vdso, VdsoSymbol, blake3_hex},
    procfs::vmas::Vma,
    sys,
};

/// The name the kernel gives the vDSO's mapping.
pub const VDSO: &str = "[vdso]";

/// `movabs $target, %rax; jmp *%rax`: how many bytes a jump takes.
pub const JUMP_LEN: u64 = 12;
/// `mov $nr, %eax; syscall; ret`.
pub const SYSCALL_LEN: u64 = 8;
/// `endbr64`, which a function may start with (kept in place: a caller
/// under indirect branch tracking needs it there).
const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];

/// Why a vDSO's bytes could not be read as an ELF image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the vDSO is not an ELF image we can read: {0}")]
pub struct ElfError(&'static str);

/// Why the image's vDSO cannot be stood in for on this kernel.
#[derive(Debug, thiserror::Error)]
pub enum Conflict {
    /// An image an older agent wrote (or whose suspend could not read the
    /// vDSO): it records no vDSO, only the mappings' names and sizes.
    #[error(
        "the image records no vDSO (an older agent wrote it, or the suspend could not read it): \
         it resumes only on the kernel it was taken on with the same vDSO and data pages; it \
         was taken on {image_kernel} with {image}, this is {here_kernel} with {here}"
    )]
    Unrecorded {
        image_kernel: String,
        here_kernel: String,
        image: String,
        here: String,
    },
    /// This kernel's vDSO differs, and a proxy of the image's cannot be
    /// made: each reason names the function.
    #[error(
        "this kernel's vDSO is not the image's (taken on {kernel}), and cannot stand in for it: \
         {}",
        .why.join("; ")
    )]
    Unproxyable { kernel: String, why: Vec<String> },
    /// Threads stopped inside the image's vDSO, whose code there would not
    /// be the very same after the resume.
    #[error(
        "thread(s) {tids:?} stopped inside the image's vDSO at {start:#x} (taken on {kernel}), \
         and the code there would not be the same after the resume: this kernel's vDSO differs, \
         or a copy stands in for the old one, whose code past its entries reads the old \
         kernel's data pages, which are not mapped again"
    )]
    ThreadInside {
        kernel: String,
        tids: Vec<u32>,
        start: u64,
    },
    /// A function nothing stands for here, whose address the process
    /// holds (its C library cached it): it would call the old code.
    #[error(
        "this kernel's vDSO is not the image's (taken on {kernel}): {names} is not in this \
         kernel's vDSO and nothing stands in for it, and the process holds its address \
         ({holder}): it would call code that reads the old kernel's data pages"
    )]
    Cached {
        kernel: String,
        names: String,
        /// Where: `memory at 0x…` or `thread N's register`.
        holder: String,
    },
    /// The record does not hold together (its bytes against its hash,
    /// its functions against its bytes, its size against the mapping).
    #[error("the image's vDSO record is damaged: {0}")]
    Damaged(String),
    /// This process's own vDSO (the one the resumed process gets) could
    /// not be read.
    #[error("reading this process's own vDSO: {0}")]
    Here(String),
}

/// The kernel's mappings of one process beside its vDSO (`[vvar]`,
/// `[vvar_vclock]`, `[vdso]`; not `[vsyscall]`, which is at a fixed
/// address in every process), each as (name, start, end).
pub type KernelMaps = [KernelMap];

/// One kernel mapping: (name, start, end).
pub type KernelMap = (String, u64, u64);

/// The layout of `maps` around the vDSO: each (name, offset from the
/// vDSO's start, length), in address order. `None` without a vDSO.
pub fn layout(maps: &KernelMaps) -> Option<Vec<(String, i64, u64)>> {
    let (_, vdso, _) = maps.iter().find(|(name, ..)| name == VDSO)?;
    let mut out: Vec<(String, i64, u64)> = maps
        .iter()
        .map(|(name, start, end)| (name.clone(), *start as i64 - *vdso as i64, end - start))
        .collect();
    out.sort_by_key(|(_, offset, _)| *offset);
    Some(out)
}

/// `maps` as `name size` pairs, sorted: what an image that records no
/// vDSO is compared by.
pub fn sizes(maps: &KernelMaps) -> String {
    let mut parts: Vec<String> = maps
        .iter()
        .map(|(name, start, end)| format!("{name} {}", end - start))
        .collect();
    parts.sort();
    parts.join(", ")
}

/// The offset of element `i` of a table at `base` of entries `size` long,
/// unless it overflows.
fn element(base: u64, i: u64, size: u64) -> Option<u64> {
    base.checked_add(i.checked_mul(size)?)
}

fn u16_at(b: &[u8], at: u64) -> Option<u16> {
    let at = usize::try_from(at).ok()?;
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

const PT_LOAD: u32 = 1;
const SHT_DYNSYM: u32 = 11;
const STT_FUNC: u8 = 2;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;

/// One defined global or weak function of a vDSO's dynamic symbol table.
struct RawSymbol<'a> {
    /// Where its symbol table entry is in the bytes.
    entry: u64,
    name: &'a str,
    /// Its offset from the vDSO's first byte.
    offset: u64,
    size: u64,
}

/// Every defined global or weak function of the dynamic symbol table of
/// `bytes` (a vDSO, as mapped), found through its section headers, which
/// the vDSO's image carries.
fn raw_symbols(bytes: &[u8]) -> Result<Vec<RawSymbol<'_>>, ElfError> {
    let bad = ElfError;
    if bytes.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1]) {
        return Err(bad("not a 64-bit little-endian ELF header"));
    }
    let field = |at: u64| u64_at(bytes, at).ok_or(bad("a truncated header"));
    let half = |at: u64| u16_at(bytes, at).ok_or(bad("a truncated header"));
    let (phoff, shoff) = (field(0x20)?, field(0x28)?);
    let (phentsize, phnum) = (u64::from(half(0x36)?), u64::from(half(0x38)?));
    let (shentsize, shnum) = (u64::from(half(0x3a)?), u64::from(half(0x3c)?));
    // A symbol's value is an address as linked; the mapping starts at
    // file offset 0, so its offset is that address less the first load
    // segment's (address − file offset).
    // Every offset the bytes give is added and multiplied checked: bytes
    // that are not a vDSO are an error, never an overflow.
    let bias = (0..phnum)
        .filter_map(|i| element(phoff, i, phentsize))
        .find(|&ph| u32_at(bytes, ph) == Some(PT_LOAD))
        .and_then(|ph| {
            let vaddr = u64_at(bytes, ph.checked_add(0x10)?)?;
            Some(vaddr.wrapping_sub(u64_at(bytes, ph.checked_add(8)?)?))
        })
        .ok_or(bad("no load segment"))?;
    let section = |i: u64| {
        let sh = element(shoff, i, shentsize)?;
        let kind = u32_at(bytes, sh.checked_add(4)?)?;
        let offset = u64_at(bytes, sh.checked_add(0x18)?)?;
        let size = u64_at(bytes, sh.checked_add(0x20)?)?;
        let link = u32_at(bytes, sh.checked_add(0x28)?)?;
        let entsize = u64_at(bytes, sh.checked_add(0x38)?)?;
        Some((kind, offset, size, u64::from(link), entsize))
    };
    let (_, symtab, symtab_size, link, entsize) = (0..shnum)
        .filter_map(section)
        .find(|s| s.0 == SHT_DYNSYM)
        .ok_or(bad("no dynamic symbol table"))?;
    if entsize < 24 {
        return Err(bad("a symbol table entry shorter than a symbol"));
    }
    let (_, strtab, strtab_size, ..) = section(link).ok_or(bad("no string table"))?;
    let strings = usize::try_from(strtab)
        .ok()
        .zip(usize::try_from(strtab.saturating_add(strtab_size)).ok())
        .and_then(|(from, to)| bytes.get(from..to))
        .ok_or(bad("a string table past the end"))?;
    let mut out = Vec::new();
    for i in 0..symtab_size / entsize {
        let truncated = bad("a symbol past the end");
        let sym = element(symtab, i, entsize).ok_or(truncated)?;
        let field = |plus: u64| sym.checked_add(plus).ok_or(truncated);
        let name = u32_at(bytes, sym).ok_or(truncated)?;
        let info = *bytes
            .get(usize::try_from(field(4)?).map_err(|_| truncated)?)
            .ok_or(truncated)?;
        let shndx = u16_at(bytes, field(6)?).ok_or(truncated)?;
        let value = u64_at(bytes, field(8)?).ok_or(truncated)?;
        let size = u64_at(bytes, field(16)?).ok_or(truncated)?;
        if info & 0xf != STT_FUNC || !matches!(info >> 4, STB_GLOBAL | STB_WEAK) || shndx == 0 {
            continue;
        }
        let name = strings
            .get(name as usize..)
            .and_then(|s| s.split(|&c| c == 0).next())
            .ok_or(bad("a symbol name past its string table"))?;
        let name = std::str::from_utf8(name).map_err(|_| bad("a symbol name not UTF-8"))?;
        let offset = value.wrapping_sub(bias);
        if offset
            .checked_add(size)
            .is_none_or(|end| end > bytes.len() as u64)
        {
            return Err(bad("a function past the end of the vDSO"));
        }
        out.push(RawSymbol {
            entry: sym,
            name,
            offset,
            size,
        });
    }
    Ok(out)
}

/// The functions `bytes` (a vDSO, as mapped) exports: each defined global
/// or weak function of its dynamic symbol table, with its offset from the
/// first byte and its size, sorted by name.
pub fn symbols(bytes: &[u8]) -> Result<Vec<VdsoSymbol>, ElfError> {
    let mut out: Vec<VdsoSymbol> = raw_symbols(bytes)?
        .into_iter()
        .map(|s| VdsoSymbol {
            name: s.name.to_owned(),
            offset: s.offset,
            size: s.size,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}

/// Takes every function at `offset` out of the dynamic symbol table of
/// `bytes` (a vDSO): each symbol's section index and value made 0, so it
/// reads as undefined, which glibc's, musl's and Go's vDSO lookups skip.
/// Whatever looks the function up later finds none, as on a kernel
/// without it, and takes its own way (the system call).
fn hide(bytes: &mut [u8], offset: u64) {
    let entries: Vec<u64> = raw_symbols(bytes)
        .map(|all| {
            all.iter()
                .filter(|s| s.offset == offset)
                .map(|s| s.entry)
                .collect()
        })
        .unwrap_or_default();
    for entry in entries {
        // Bounds: `raw_symbols` read these 24 bytes.
        let at = entry as usize;
        bytes[at + 6..at + 8].fill(0);
        bytes[at + 8..at + 16].fill(0);
    }
}

/// The kernel's mappings among `vmas` that lie beside the vDSO, as
/// (name, start, end).
pub fn kernel_maps(vmas: &[Vma]) -> Vec<KernelMap> {
    vmas.iter()
        .filter(|v| super::mappings::kind(v) == MappingKind::Kernel && v.path != "[vsyscall]")
        .map(|v| (v.path.clone(), v.start, v.end))
        .collect()
}

/// The vDSO of process `pid` (frozen; or this one), given its kernel
/// mappings, read from its memory, hashed and its functions listed:
/// `None` for a process without one; an error names the address.
pub fn save(pid: u32, maps: &KernelMaps) -> Result<Option<Vdso>, (u64, String)> {
    let Some(&(_, start, end)) = maps.iter().find(|(name, ..)| name == VDSO) else {
        return Ok(None);
    };
    let mut bytes = vec![0u8; (end - start) as usize];
    sys::read_process_memory(pid, start, &mut bytes).map_err(|e| (start, e.to_string()))?;
    let symbols = symbols(&bytes).map_err(|e| (start, e.to_string()))?;
    Ok(Some(Vdso {
        blake3: blake3_hex(&bytes),
        symbols,
        bytes: B64.encode(&bytes),
    }))
}

/// This process's own kernel mappings and vDSO: the agent runs on this
/// kernel, and a process it makes gets the same.
pub fn here() -> Result<(Vec<KernelMap>, Option<Vdso>), Conflict> {
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map_err(|e| Conflict::Here(format!("/proc/self/maps: {e}")))?;
    let vmas = crate::procfs::vmas::parse(&maps)
        .ok_or_else(|| Conflict::Here("/proc/self/maps: cannot parse it".into()))?;
    let kernel = kernel_maps(&vmas);
    let vdso = save(std::process::id(), &kernel)
        .map_err(|(at, why)| Conflict::Here(format!("at {at:#x}: {why}")))?;
    Ok((kernel, vdso))
}

/// What a function stands for when this kernel's vDSO lacks it: the
/// system call of the same name, where its arguments and result are the
/// vDSO function's (`getrandom`'s are too, but its vDSO function takes
/// a state buffer as well and answers a query: [`Entry::Getrandom`]).
pub fn fallback_syscall(name: &str) -> Option<u32> {
    let bare = name.strip_prefix("__vdso_").unwrap_or(name);
    Some(match bare {
        "clock_gettime" => 228,
        "gettimeofday" => 96,
        "time" => 201,
        "getcpu" => 309,
        "clock_getres" => 229,
        _ => return None,
    })
}

/// What stands in for a function this kernel's vDSO lacks, and the bytes
/// it takes: its system call, or `getrandom`'s stand-in.
fn stand_in(name: &str) -> Option<Entry> {
    if let Some(nr) = fallback_syscall(name) {
        return Some(Entry::Syscall { nr });
    }
    match name.strip_prefix("__vdso_").unwrap_or(name) {
        "getrandom" => Some(Entry::Getrandom),
        _ => None,
    }
}

/// `getrandom`'s stand-in. The vDSO's `getrandom(buffer, len, flags,
/// state, state_len)` takes the system call's three arguments in the
/// same registers, and a state its C library keeps for it; its result is
/// the system call's. The system call gives bytes as random, without the
/// state. One call is not a request for bytes: `state_len` ~0 with the
/// rest 0 asks for the state's parameters, which only a C library
/// starting up asks (and then keeps); answered `-ENOSYS`, as by a kernel
/// without the function, so a library that asks goes to the system call.
///
/// ```text
///   cmp $-1, %r8;   jne 1f
///   test %rdi,%rdi; jnz 1f
///   test %rsi,%rsi; jnz 1f
///   test %edx,%edx; jnz 1f
///   mov $-38, %rax; ret
/// 1: mov $318, %eax; syscall; ret
/// ```
const GETRANDOM_STAND_IN: [u8; 36] = [
    0x49, 0x83, 0xf8, 0xff, 0x75, 0x16, // cmp $-1,%r8; jne +22
    0x48, 0x85, 0xff, 0x75, 0x11, // test %rdi,%rdi; jne +17
    0x48, 0x85, 0xf6, 0x75, 0x0c, // test %rsi,%rsi; jne +12
    0x85, 0xd2, 0x75, 0x08, // test %edx,%edx; jne +8
    0x48, 0xc7, 0xc0, 0xda, 0xff, 0xff, 0xff, 0xc3, // mov $-ENOSYS,%rax; ret
    0xb8, 0x3e, 0x01, 0x00, 0x00, 0x0f, 0x05, 0xc3, // mov $318,%eax; syscall; ret
];

/// `ud2`: what a function taken out of the proxy's table starts with.
const UD2: [u8; 2] = [0x0f, 0x0b];

/// What goes at one function's entry in the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A jump to this offset in this kernel's vDSO.
    Jump { to: u64 },
    /// The system call of this number, and a return.
    Syscall { nr: u32 },
    /// `getrandom`'s stand-in ([`GETRANDOM_STAND_IN`]).
    Getrandom,
    /// Nothing stands in for it: taken out of the proxy's symbol table
    /// (a later lookup finds none, as on a kernel without it) and its
    /// entry made `ud2`. Only where the process holds no pointer to it:
    /// what the resume checks first ([`Hidden`]).
    Hidden,
}

impl Entry {
    /// Bytes its code takes at the entry.
    fn len(self) -> u64 {
        match self {
            Entry::Jump { .. } => JUMP_LEN,
            Entry::Syscall { .. } => SYSCALL_LEN,
            Entry::Getrandom => GETRANDOM_STAND_IN.len() as u64,
            Entry::Hidden => UD2.len() as u64,
        }
    }
}

/// One patch of the image's vDSO bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patch {
    /// The function's offset in the image's vDSO.
    pub offset: u64,
    pub entry: Entry,
}

/// What a resume does with the vDSO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// This kernel's vDSO and data pages go where the image had them.
    Move,
    /// This kernel's go elsewhere, together; at the image's vDSO address
    /// goes its old bytes with these patches ([`proxy_bytes`]).
    Proxy { patches: Vec<Patch> },
}

/// The image's side of the decision.
pub struct Image<'a> {
    /// What the image recorded (`None`: an image older than the record).
    pub vdso: Option<&'a Vdso>,
    /// Its kernel mappings, as the image's mappings have them.
    pub maps: &'a KernelMaps,
    /// The kernel release it was taken on.
    pub kernel: &'a str,
}

/// This kernel's side.
pub struct Here<'a> {
    /// This kernel's vDSO (`None`: it gives none).
    pub vdso: Option<&'a Vdso>,
    pub maps: &'a KernelMaps,
    pub kernel: &'a str,
}

/// What to do with the image's vDSO on this kernel; `force_proxy` (a test
/// hook) takes the proxy wherever it would be taken for a vDSO that
/// differs (not for an image that records none: there is no copy to make).
pub fn decide(image: &Image<'_>, here: &Here<'_>, force_proxy: bool) -> Result<Decision, Conflict> {
    if image.vdso.is_none() && layout(image.maps).is_none() {
        // The process had no vDSO: nothing of it points into one.
        return Ok(Decision::Move);
    }
    let Some(old) = image.vdso else {
        // What was checked before the record: names and sizes, and now
        // the kernel release too (the same sizes do not say the same
        // functions at the same offsets).
        let (there, ours) = (sizes(image.maps), sizes(here.maps));
        if there != ours || image.kernel != here.kernel {
            return Err(Conflict::Unrecorded {
                image_kernel: image.kernel.to_owned(),
                here_kernel: here.kernel.to_owned(),
                image: there,
                here: ours,
            });
        }
        return Ok(Decision::Move);
    };
    if layout(image.maps).is_none() {
        return Err(Conflict::Damaged(
            "a vDSO recorded, but no [vdso] mapping".into(),
        ));
    }
    let same_layout = layout(image.maps) == layout(here.maps);
    let new_symbols: &[VdsoSymbol] = here.vdso.map_or(&[], |v| &v.symbols);
    if !force_proxy
        && same_layout
        && let Some(new) = here.vdso
    {
        let same_offsets = old.symbols.iter().all(|s| {
            new.symbols
                .iter()
                .any(|n| n.name == s.name && n.offset == s.offset)
        });
        if new.blake3 == old.blake3 || same_offsets {
            return Ok(Decision::Move);
        }
    }
    let patches = patches(&old.symbols, new_symbols).map_err(|why| Conflict::Unproxyable {
        kernel: image.kernel.to_owned(),
        why,
    })?;
    Ok(Decision::Proxy { patches })
}

/// The entry at `offset` among `symbols`: its names, as a refusal says
/// them (`` `a`/`b` ``), and its size (its longest alias's).
fn entry_at(symbols: &[VdsoSymbol], offset: u64) -> (String, u64) {
    let aliases = symbols.iter().filter(|a| a.offset == offset);
    let names = aliases
        .clone()
        .map(|a| format!("`{}`", a.name))
        .collect::<Vec<_>>()
        .join("/");
    (names, aliases.map(|a| a.size).max().unwrap_or(0))
}

/// The patches that make the image's vDSO (`old` its functions) call
/// this kernel's (`new`): one per entry point (aliases share one), a jump
/// to the function of the same name, else its stand-in, else hidden
/// ([`Entry::Hidden`]: the resume must then find no pointer to it); or
/// every reason it cannot.
pub fn patches(old: &[VdsoSymbol], new: &[VdsoSymbol]) -> Result<Vec<Patch>, Vec<String>> {
    let mut out: Vec<Patch> = Vec::new();
    let mut why = Vec::new();
    let mut by_offset: Vec<&VdsoSymbol> = old.iter().collect();
    by_offset.sort_by_key(|s| (s.offset, s.name.clone()));
    let mut entries_seen = Vec::new();
    for s in by_offset {
        // Each entry once, with all its aliases (a refused one too: it was
        // named twice).
        if entries_seen.contains(&s.offset) {
            continue;
        }
        entries_seen.push(s.offset);
        // The aliases at this entry: any of them found here will do.
        let aliases: Vec<&VdsoSymbol> = old.iter().filter(|a| a.offset == s.offset).collect();
        let target = aliases
            .iter()
            .find_map(|a| new.iter().find(|n| n.name == a.name));
        let entry = match target {
            Some(n) => Entry::Jump { to: n.offset },
            None => aliases
                .iter()
                .find_map(|a| stand_in(&a.name))
                .unwrap_or(Entry::Hidden),
        };
        let len = entry.len();
        let (names, size) = entry_at(old, s.offset);
        if size < len {
            why.push(format!(
                "{names} is {size} bytes, too short for the {len} its replacement takes"
            ));
            continue;
        }
        out.push(Patch {
            offset: s.offset,
            entry,
        });
    }
    if why.is_empty() { Ok(out) } else { Err(why) }
}

/// The bytes that replace one function's entry: a jump to `target`
/// (absolute), or system call `nr` and a return.
pub fn entry_bytes(entry: Entry, vdso_base: u64) -> Vec<u8> {
    match entry {
        Entry::Jump { to } => {
            // movabs $imm64, %rax
            let mut b = vec![0x48, 0xb8];
            b.extend_from_slice(&(vdso_base + to).to_le_bytes());
            // jmp *%rax
            b.extend_from_slice(&[0xff, 0xe0]);
            b
        }
        Entry::Syscall { nr } => {
            // mov $imm32, %eax
            let mut b = vec![0xb8];
            b.extend_from_slice(&nr.to_le_bytes());
            // syscall; ret
            b.extend_from_slice(&[0x0f, 0x05, 0xc3]);
            b
        }
        Entry::Getrandom => GETRANDOM_STAND_IN.to_vec(),
        Entry::Hidden => UD2.to_vec(),
    }
}

/// The proxy: the image's vDSO `old` with each of `patches` written at
/// its function's entry (after an `endbr64` the function starts with,
/// where the function has room for both), the jumps to this kernel's
/// vDSO at `vdso_base`. Its ELF header stays: the process's auxiliary
/// vector (`AT_SYSINFO_EHDR`) keeps naming this address, and whatever
/// reads the vDSO's symbols from there later finds the old table, whose
/// entries all lead here.
pub fn proxy_bytes(
    old: &[u8],
    old_symbols: &[VdsoSymbol],
    patches: &[Patch],
    vdso_base: u64,
) -> Vec<u8> {
    let mut out = old.to_vec();
    for p in patches {
        let code = entry_bytes(p.entry, vdso_base);
        let (_, size) = entry_at(old_symbols, p.offset);
        let at = p.offset as usize;
        let skip = if out.get(at..at + 4) == Some(&ENDBR64) && size >= 4 + code.len() as u64 {
            4
        } else {
            0
        };
        out[at + skip..at + skip + code.len()].copy_from_slice(&code);
        if p.entry == Entry::Hidden {
            hide(&mut out, p.offset);
        }
    }
    out
}

/// A function of the image's vDSO that nothing stands in for here
/// ([`Entry::Hidden`]), where it was in the process: the resume refuses
/// the image if the process holds a pointer into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hidden {
    /// Its names (`` `a`/`b` ``).
    pub names: String,
    /// Its code's addresses in the process.
    pub start: u64,
    pub end: u64,
}

/// The functions of `patches` that are hidden, at their addresses in a
/// process whose vDSO (`symbols` its functions) was at `base`.
pub fn hidden(patches: &[Patch], symbols: &[VdsoSymbol], base: u64) -> Vec<Hidden> {
    patches
        .iter()
        .filter(|p| p.entry == Entry::Hidden)
        .map(|p| {
            let (names, size) = entry_at(symbols, p.offset);
            Hidden {
                names,
                start: base + p.offset,
                end: base + p.offset + size.max(1),
            }
        })
        .collect()
}

/// The first 8-byte word of `bytes` (at address `at`, 8-aligned) that
/// points into one of `hidden`: (which, the word's address). A pointer
/// kept as C libraries and Go keep the vDSO's functions (a plain,
/// aligned pointer) is found; a mangled one would not be, but the
/// libraries that mangled theirs (glibc before 2.31) knew none of the
/// functions that can be hidden (they came in 6.11 and later).
pub fn pointer_into(hidden: &[Hidden], at: u64, bytes: &[u8]) -> Option<(usize, u64)> {
    let (low, high) = hidden
        .iter()
        .fold((u64::MAX, 0), |(l, h), x| (l.min(x.start), h.max(x.end)));
    for (i, word) in bytes.as_chunks::<8>().0.iter().enumerate() {
        let w = u64::from_le_bytes(*word);
        // One compare for the common case: outside every one of them.
        if w.wrapping_sub(low) >= high.wrapping_sub(low) {
            continue;
        }
        if let Some(which) = hidden.iter().position(|x| (x.start..x.end).contains(&w)) {
            return Some((which, at + 8 * i as u64));
        }
    }
    None
}

/// The image's vDSO bytes, checked against its hash.
pub fn bytes(vdso: &Vdso) -> Result<Vec<u8>, Conflict> {
    let bytes = B64
        .decode(&vdso.bytes)
        .map_err(|e| Conflict::Damaged(format!("its bytes: {e}")))?;
    if blake3_hex(&bytes) != vdso.blake3 {
        return Err(Conflict::Damaged(
            "its bytes do not match their hash".into(),
        ));
    }
    let fits = |s: &VdsoSymbol| {
        s.offset
            .checked_add(s.size)
            .is_some_and(|e| e <= bytes.len() as u64)
    };
    if !vdso.symbols.iter().all(fits) {
        return Err(Conflict::Damaged("a function past its end".into()));
    }
    Ok(bytes)
}

/// Refuses a proxy, or other bytes moved in place, while a thread of
/// `threads` (tid, instruction pointer) stopped inside the image's vDSO
/// at `start..end`: the old code past its entry would run there and read
/// the old data pages, or other code would go on from that address. (One stopped
/// right after a `syscall` in a fallback path would return without them,
/// but telling that apart from bytes that only look like one needs the
/// code decoded: refused too.)
pub fn no_thread_inside(
    threads: &[(u32, u64)],
    (start, end): (u64, u64),
    kernel: &str,
) -> Result<(), Conflict> {
    let tids: Vec<u32> = threads
        .iter()
        .filter(|(_, ip)| (start..end).contains(ip))
        .map(|(tid, _)| *tid)
        .collect();
    if tids.is_empty() {
        return Ok(());
    }
    Err(Conflict::ThreadInside {
        kernel: kernel.to_owned(),
        tids,
        start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's own kernel mappings and vDSO.
    fn own() -> (Vec<(String, u64, u64)>, Vdso) {
        let (kernel, vdso) = here().expect("read");
        assert!(
            kernel.iter().any(|(name, ..)| name == "[vvar]"),
            "{kernel:?}"
        );
        (kernel, vdso.expect("a vDSO"))
    }

    fn sym(name: &str, offset: u64, size: u64) -> VdsoSymbol {
        VdsoSymbol {
            name: name.into(),
            offset,
            size,
        }
    }

    #[test]
    fn this_processs_vdso_exports_the_time_functions_inside_itself() {
        let (maps, vdso) = own();
        let (_, start, end) = maps.iter().find(|(n, ..)| n == VDSO).expect("[vdso]");
        let find = |name: &str| {
            vdso.symbols
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("{name} in {:?}", vdso.symbols))
        };
        for name in [
            "__vdso_clock_gettime",
            "__vdso_gettimeofday",
            "__vdso_time",
            "__vdso_getcpu",
            "__vdso_clock_getres",
        ] {
            let s = find(name);
            assert!(s.size > 0 && s.offset + s.size <= end - start, "{s:?}");
            // Past the ELF header and program headers.
            assert!(s.offset >= 0x40, "{s:?}");
        }
        // The bare names are aliases of the same entries.
        assert_eq!(
            find("clock_gettime").offset,
            find("__vdso_clock_gettime").offset
        );
        assert_eq!(bytes(&vdso).expect("intact").len() as u64, end - start);
        // Every function is long enough for a jump: the proxy works here.
        assert!(patches(&vdso.symbols, &vdso.symbols).is_ok());
    }

    #[test]
    fn bytes_that_are_not_a_vdso_are_an_error_not_a_panic() {
        let (_, vdso) = own();
        let good = B64.decode(&vdso.bytes).expect("base64");
        assert!(symbols(&[]).is_err());
        assert!(symbols(&[0u8; 64]).is_err());
        // Cut anywhere: an error or fewer symbols, never a panic.
        for cut in (0..good.len()).step_by(61) {
            let _ = symbols(&good[..cut]);
        }
        let mut wild = good.clone();
        // Section headers pointing far away.
        wild[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(symbols(&wild).is_err());
        // Program headers there too, and entries as long as they can be
        // (an overflow in a debug build would panic).
        let mut wild = good.clone();
        wild[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        wild[0x36..0x38].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(symbols(&wild).is_err());
        let mut wild = good;
        wild[0x3a..0x3c].copy_from_slice(&u16::MAX.to_le_bytes());
        wild[0x28..0x30].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
        assert!(symbols(&wild).is_err());
    }

    fn maps(vvar_len: u64, vdso_len: u64) -> Vec<(String, u64, u64)> {
        vec![
            ("[vvar]".into(), 0x7000_0000, 0x7000_0000 + vvar_len),
            (
                VDSO.into(),
                0x7000_0000 + vvar_len,
                0x7000_0000 + vvar_len + vdso_len,
            ),
        ]
    }

    fn vdso(hash: &str, symbols: Vec<VdsoSymbol>) -> Vdso {
        Vdso {
            blake3: hash.into(),
            symbols,
            bytes: String::new(),
        }
    }

    #[test]
    fn the_decision_moves_only_what_puts_each_function_where_it_was() {
        let a = vdso(
            "a",
            vec![
                sym("__vdso_clock_gettime", 0x700, 0x200),
                sym("clock_gettime", 0x700, 0x200),
                sym("__vdso_time", 0x900, 0x40),
            ],
        );
        let same_offsets = vdso(
            "b",
            vec![
                sym("__vdso_clock_gettime", 0x700, 0x180),
                sym("clock_gettime", 0x700, 0x180),
                sym("__vdso_time", 0x900, 0x40),
                sym("__vdso_getrandom", 0xa00, 0x300),
            ],
        );
        let moved = vdso(
            "c",
            vec![
                sym("__vdso_clock_gettime", 0x740, 0x200),
                sym("clock_gettime", 0x740, 0x200),
                sym("__vdso_time", 0x900, 0x40),
            ],
        );
        let (four, eight) = (maps(0x4000, 0x2000), maps(0x8000, 0x2000));
        let image = |maps| Image {
            vdso: Some(&a),
            maps,
            kernel: "6.1",
        };
        let here = |vdso, maps| Here {
            vdso: Some(vdso),
            maps,
            kernel: "6.12",
        };
        let decide = |i, h, force| decide(&image(i), &h, force);
        // The same bytes, the same layout: moved.
        assert_eq!(
            decide(&four, here(&a, &four), false).unwrap(),
            Decision::Move
        );
        // Other bytes, every function at its offset: moved.
        assert_eq!(
            decide(&four, here(&same_offsets, &four), false).unwrap(),
            Decision::Move
        );
        // A function elsewhere: a proxy, its entry jumping to the new one.
        let proxy = Decision::Proxy {
            patches: vec![
                Patch {
                    offset: 0x700,
                    entry: Entry::Jump { to: 0x740 },
                },
                Patch {
                    offset: 0x900,
                    entry: Entry::Jump { to: 0x900 },
                },
            ],
        };
        assert_eq!(decide(&four, here(&moved, &four), false).unwrap(), proxy);
        // The same bytes, data pages of another size: a proxy.
        let Decision::Proxy { patches } = decide(&four, here(&a, &eight), false).unwrap() else {
            panic!("a proxy");
        };
        assert_eq!(patches.len(), 2);
        // The test hook: a proxy even for the same vDSO.
        assert!(matches!(
            decide(&four, here(&a, &four), true).unwrap(),
            Decision::Proxy { .. }
        ));
    }

    #[test]
    fn an_image_without_the_record_needs_the_same_kernel_and_sizes() {
        let four = maps(0x4000, 0x2000);
        let image = Image {
            vdso: None,
            maps: &four,
            kernel: "6.1",
        };
        let here = |kernel, maps| Here {
            vdso: None,
            maps,
            kernel,
        };
        assert_eq!(
            decide(&image, &here("6.1", &four), false).unwrap(),
            Decision::Move
        );
        let err = decide(&image, &here("6.12", &four), false).unwrap_err();
        assert!(err.to_string().contains("taken on 6.1"), "{err}");
        let eight = maps(0x8000, 0x2000);
        assert!(decide(&image, &here("6.1", &eight), false).is_err());
        // A process that had no vDSO holds no pointer into one.
        let none = Image {
            vdso: None,
            maps: &[],
            kernel: "6.1",
        };
        assert_eq!(
            decide(&none, &here("6.12", &four), true).unwrap(),
            Decision::Move
        );
    }

    #[test]
    fn a_missing_function_has_its_stand_in_or_is_hidden_or_refused_by_name() {
        let old = [
            sym("__vdso_getcpu", 0x100, 0x40),
            sym("getcpu", 0x100, 0x40),
            sym("__vdso_time", 0x200, 0x8),
            sym("__vdso_getrandom", 0x300, 0x100),
            sym("getrandom", 0x300, 0x100),
            sym("__vdso_clock_gettime", 0x400, 0x10),
        ];
        let new = [sym("__vdso_clock_gettime", 0x500, 0x10)];
        let with_unknown = [
            &old[..],
            &[
                sym("__vdso_futex_robust_list64_try_unlock", 0x600, 0x40),
                sym("__vdso_futex_robust_list32_try_unlock", 0x640, 0x40),
            ],
        ]
        .concat();
        let got = patches(&with_unknown, &new).unwrap();
        assert_eq!(
            got.iter().filter(|p| p.offset >= 0x300).collect::<Vec<_>>(),
            [
                &Patch {
                    offset: 0x300,
                    entry: Entry::Getrandom
                },
                &Patch {
                    offset: 0x400,
                    entry: Entry::Jump { to: 0x500 }
                },
                &Patch {
                    offset: 0x600,
                    entry: Entry::Hidden
                },
                &Patch {
                    offset: 0x640,
                    entry: Entry::Hidden
                },
            ]
        );
        // getrandom's stand-in does not fit in a short one: refused by name.
        let short = [
            sym("__vdso_getrandom", 0x300, 20),
            sym("getrandom", 0x300, 20),
        ];
        let why = patches(&short, &new).unwrap_err();
        assert_eq!(
            why.len(),
            1,
            "one entry, named once with its aliases: {why:?}"
        );
        assert!(why[0].contains("`__vdso_getrandom`/`getrandom`"), "{why:?}");
        let without = [&old[..3], &old[5..]].concat();
        assert_eq!(
            patches(&without, &new).unwrap(),
            [
                Patch {
                    offset: 0x100,
                    entry: Entry::Syscall { nr: 309 }
                },
                Patch {
                    offset: 0x200,
                    entry: Entry::Syscall { nr: 201 }
                },
                Patch {
                    offset: 0x400,
                    entry: Entry::Jump { to: 0x500 }
                },
            ]
        );
        // Too short for a jump: refused, naming it.
        let short = [sym("__vdso_time", 0x200, 11)];
        let why = patches(&short, &[sym("__vdso_time", 0x300, 11)]).unwrap_err();
        assert!(why[0].contains("`__vdso_time` is 11 bytes"), "{why:?}");
    }

    #[test]
    fn the_entries_are_a_jump_to_the_new_function_or_the_system_call() {
        let jump = entry_bytes(Entry::Jump { to: 0x740 }, 0x7fff_1234_0000);
        assert_eq!(
            jump,
            [
                0x48, 0xb8, 0x40, 0x07, 0x34, 0x12, 0xff, 0x7f, 0, 0, 0xff, 0xe0
            ]
        );
        assert_eq!(jump.len() as u64, JUMP_LEN);
        let call = entry_bytes(Entry::Syscall { nr: 228 }, 0);
        assert_eq!(call, [0xb8, 228, 0, 0, 0, 0x0f, 0x05, 0xc3]);
        assert_eq!(call.len() as u64, SYSCALL_LEN);

        // In the copy: at each entry, after an endbr64 where there is
        // room; everything else as it was.
        let mut old = vec![0xccu8; 0x100];
        old[0x20..0x24].copy_from_slice(&ENDBR64);
        let symbols = [sym("a", 0x20, 0x20), sym("b", 0x60, 12)];
        let p = [
            Patch {
                offset: 0x20,
                entry: Entry::Jump { to: 0x80 },
            },
            Patch {
                offset: 0x60,
                entry: Entry::Jump { to: 0x90 },
            },
        ];
        let got = proxy_bytes(&old, &symbols, &p, 0x1000);
        assert_eq!(got[0x20..0x24], ENDBR64);
        assert_eq!(got[0x24..0x30], entry_bytes(p[0].entry, 0x1000)[..]);
        assert_eq!(got[0x60..0x6c], entry_bytes(p[1].entry, 0x1000)[..]);
        let untouched = |i: usize| !(0x24..0x30).contains(&i) && !(0x60..0x6c).contains(&i);
        assert!(
            (0..0x100)
                .filter(|&i| untouched(i))
                .all(|i| got[i] == old[i])
        );
    }

    #[test]
    fn the_record_round_trips_and_an_older_image_reads_without_it() {
        let (_, vdso) = own();
        let mut p = crate::state::fixtures::process(42);
        let old = serde_json::to_string(&p).expect("json");
        assert!(!old.contains("vdso"), "{old}");
        p.vdso = Some(Box::new(vdso));
        let new = serde_json::to_string(&p).expect("json");
        let back: crate::image::format::Process = serde_json::from_str(&new).expect("read");
        assert_eq!(back, p);
        let older: crate::image::format::Process = serde_json::from_str(&old).expect("read");
        assert_eq!(older.vdso, None);
    }

    /// The proxy of this process's own vDSO, built as a resume builds it
    /// (its jumps to this vDSO where it is, `new` its functions), mapped
    /// read+exec at a free address: its `clock_gettime` entry, called,
    /// gives CLOCK_MONOTONIC between two readings taken around it.
    /// The proxy of this process's own vDSO, built as a resume builds it
    /// (its jumps to this vDSO where it is, `new` its functions), mapped
    /// read+exec at a free address: (that address, its length, this
    /// vDSO's record). The caller unmaps it.
    fn mapped_proxy(new: &[VdsoSymbol]) -> (u64, u64, Vdso) {
        let (maps, vdso) = own();
        let (_, base, end) = maps
            .iter()
            .find(|(n, ..)| n == VDSO)
            .cloned()
            .expect("[vdso]");
        let old = bytes(&vdso).expect("intact");
        let p = patches(&vdso.symbols, new).expect("a proxy");
        let proxy = proxy_bytes(&old, &vdso.symbols, &p, base);
        let len = end - base;
        let at = (0..64u64)
            .map(|i| 0x5f00_0000_0000 + i * 0x10_0000)
            .find(|&at| sys::mem::reserve(at, len).is_ok())
            .expect("a free address");
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: our own reservation, made just now; nothing refers to it.
        unsafe { sys::mem::map_fixed(at, len, rw, anon, -1, 0) }.expect("mapped");
        // SAFETY: `len` bytes of writable memory at `at`, ours; the proxy
        // is the vDSO's length.
        unsafe { std::ptr::copy_nonoverlapping(proxy.as_ptr(), at as *mut u8, proxy.len()) };
        let rx = libc::PROT_READ | libc::PROT_EXEC;
        // SAFETY: nothing writes it any more.
        unsafe { sys::mem::protect(at, len, rx) }.expect("read+exec");
        (at, len, vdso)
    }

    fn proxied_clock_runs(new: &[VdsoSymbol]) {
        let (at, len, vdso) = mapped_proxy(new);
        let entry = vdso
            .symbols
            .iter()
            .find(|s| s.name == "__vdso_clock_gettime")
            .expect("clock_gettime")
            .offset;
        type ClockGettime = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> i32;
        // SAFETY: the proxy's entry of `__vdso_clock_gettime`, which
        // jumps to this vDSO's (or makes the system call), with its
        // signature.
        let call: ClockGettime = unsafe { std::mem::transmute(at + entry) };
        let now = || nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("now");
        let before = now();
        let mut got = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: as above; `got` is a timespec to write.
        let ret = unsafe { call(libc::CLOCK_MONOTONIC, &raw mut got) };
        let after = now();
        // SAFETY: our own mapping, nothing refers to it after the call.
        unsafe { sys::mem::unmap(at, len) }.expect("unmapped");
        assert_eq!(ret, 0);
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        let got = ns(got.tv_sec, got.tv_nsec);
        assert!(ns(before.tv_sec(), before.tv_nsec()) <= got, "{got} before");
        assert!(got <= ns(after.tv_sec(), after.tv_nsec()), "{got} after");
    }

    #[test]
    fn a_proxy_whose_new_vdso_lacks_getrandom_makes_the_system_call_and_answers_no_query() {
        let (_, vdso) = own();
        let Some(entry) = vdso
            .symbols
            .iter()
            .find(|s| s.name == "__vdso_getrandom")
            .map(|s| s.offset)
        else {
            eprintln!("NOTE: this kernel's vDSO has no getrandom (before 6.11): not tested here");
            return;
        };
        let new: Vec<VdsoSymbol> = vdso
            .symbols
            .iter()
            .filter(|s| !s.name.ends_with("getrandom"))
            .cloned()
            .collect();
        let (at, len, _) = mapped_proxy(&new);
        type Getrandom =
            unsafe extern "C" fn(*mut u8, usize, u32, *mut libc::c_void, usize) -> isize;
        // SAFETY: the proxy's entry of `__vdso_getrandom`, its stand-in,
        // with the vDSO function's signature.
        let call: Getrandom = unsafe { std::mem::transmute(at + entry) };
        let mut buf = [0u8; 64];
        let state = std::ptr::null_mut();
        // SAFETY: as above; `buf` is 64 bytes to write; the state is not
        // read by the stand-in (nor is a null one by the vDSO's).
        let got = unsafe { call(buf.as_mut_ptr(), buf.len(), 0, state, 0) };
        // SAFETY: as above; the parameters query writes nothing here.
        let query = unsafe { call(std::ptr::null_mut(), 0, 0, state, usize::MAX) };
        // SAFETY: as above; flags the kernel refuses.
        let bad = unsafe { call(buf.as_mut_ptr(), 8, 0x100, state, 0) };
        // SAFETY: our own mapping, nothing refers to it after the calls.
        unsafe { sys::mem::unmap(at, len) }.expect("unmapped");
        assert_eq!(got, 64);
        assert!(buf.iter().any(|&b| b != 0), "random bytes: {buf:?}");
        assert_eq!(query, -(libc::ENOSYS as isize));
        assert_eq!(bad, -(libc::EINVAL as isize));
    }

    #[test]
    fn a_hidden_function_is_out_of_the_proxys_table_and_its_entry_traps() {
        let (maps, vdso) = own();
        let base = maps.iter().find(|(n, ..)| n == VDSO).expect("[vdso]").1;
        let old = bytes(&vdso).expect("intact");
        let gone = vdso
            .symbols
            .iter()
            .find(|s| s.name == "__vdso_getcpu")
            .expect("getcpu")
            .clone();
        let p = [Patch {
            offset: gone.offset,
            entry: Entry::Hidden,
        }];
        let proxy = proxy_bytes(&old, &vdso.symbols, &p, base);
        let left = symbols(&proxy).expect("still a vDSO");
        assert!(left.iter().all(|s| s.offset != gone.offset), "{left:?}");
        assert_eq!(
            left.len(),
            vdso.symbols.len() - 2,
            "getcpu and its alias only"
        );
        let at = gone.offset as usize;
        let code = if proxy[at..at + 4] == ENDBR64 {
            at + 4
        } else {
            at
        };
        assert_eq!(proxy[code..code + 2], UD2);
        let h = hidden(&p, &vdso.symbols, base);
        assert_eq!(h.len(), 1);
        assert!(h[0].names.contains("`__vdso_getcpu`"), "{h:?}");
        assert_eq!(
            (h[0].start, h[0].end),
            (base + gone.offset, base + gone.offset + gone.size)
        );
    }

    #[test]
    fn a_pointer_into_a_hidden_function_is_found_where_it_is() {
        let hidden = [
            Hidden {
                names: "`a`".into(),
                start: 0x7fff_0000_1000,
                end: 0x7fff_0000_1040,
            },
            Hidden {
                names: "`b`".into(),
                start: 0x7fff_0000_2000,
                end: 0x7fff_0000_2010,
            },
        ];
        let page = |words: &[(usize, u64)]| {
            let mut b = vec![0u8; 4096];
            for &(i, w) in words {
                b[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
            }
            b
        };
        // Beside them, between them, at their ends: nothing.
        let none = page(&[
            (0, 0x7fff_0000_0fff),
            (1, 0x7fff_0000_1040),
            (2, 0x7fff_0000_1800),
            (3, 0x7fff_0000_2010),
            (4, u64::MAX),
        ]);
        assert_eq!(pointer_into(&hidden, 0x1000, &none), None);
        let one = page(&[(7, 0x7fff_0000_2008), (9, 0x7fff_0000_1000)]);
        assert_eq!(pointer_into(&hidden, 0x5000, &one), Some((1, 0x5000 + 56)));
        assert_eq!(pointer_into(&[], 0, &one), None);
    }

    #[test]
    fn a_proxy_of_this_vdso_elsewhere_runs_its_clock_through_the_jump() {
        proxied_clock_runs(&own().1.symbols);
    }

    #[test]
    fn a_proxy_whose_new_vdso_lacks_clock_gettime_makes_the_system_call() {
        let mut new = own().1.symbols;
        new.retain(|s| !s.name.ends_with("clock_gettime"));
        proxied_clock_runs(&new);
    }

    #[test]
    fn a_thread_stopped_in_the_old_vdso_refuses_the_proxy() {
        let range = (0x7000_4000, 0x7000_6000);
        assert!(no_thread_inside(&[(1, 0x40_0000), (2, 0x7000_6000)], range, "6.1").is_ok());
        let err = no_thread_inside(&[(1, 0x40_0000), (7, 0x7000_4abc)], range, "6.1").unwrap_err();
        assert!(err.to_string().contains("[7]"), "{err}");
    }
}
