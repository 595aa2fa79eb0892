//! The zone: one range of addresses free both in this process (which the
//! child starts as a copy of) and in the image. It holds, in order, the
//! restorer stub, its argument block, a stub stack per thread, a temporary
//! place for each of the kernel's mappings, and the prepared contents of
//! every mapping, each followed by an unmapped page. Found and reserved
//! (`PROT_NONE`) here, its first part mapped once the block is built, and
//! unmapped from this process again once the child has its copy.

use super::{prepare_call_err, prepare_err};
use crate::{
    image::format::{Mapping, PAGE_SIZE},
    procfs::vmas,
    restore::{RESTORER, RestoreError},
    sys::mem,
};

/// Where the search for a free zone starts: far above where the kernel puts
/// programs, libraries and stacks by default.
const ZONE_SEARCH_FROM: u64 = 0x1000_0000_0000;
/// Highest user address plus one (47-bit address space).
const TASK_TOP: u64 = 0x7fff_ffff_f000;
const GIB: u64 = 1 << 30;

/// `n` rounded up to whole pages.
pub fn round_up(n: u64) -> u64 {
    n.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// How long each part of the zone is, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// The restorer stub (whole pages).
    pub blob: u64,
    /// The argument block's reservation: an upper bound of its size.
    pub args: u64,
    /// The stub stacks, one per thread.
    pub stacks: u64,
    /// The kernel's mappings (vDSO, vvar) on their way to their places.
    pub kernel: u64,
    /// Every prepared mapping, each with an unmapped page after it.
    pub premaps: u64,
}

impl Sizes {
    /// The part mapped in this process: the stub, its block, its stacks.
    pub fn region(&self) -> u64 {
        self.blob + self.args + self.stacks
    }

    pub fn zone(&self) -> u64 {
        self.region() + self.kernel + self.premaps
    }
}

/// The zone, found and reserved.
#[derive(Clone, Copy, Debug)]
pub struct Zone {
    pub base: u64,
    pub sizes: Sizes,
}

impl Zone {
    /// Finds room for `sizes` free here and in the image's `mappings`,
    /// and reserves it.
    pub fn reserve(mappings: &[Mapping], sizes: Sizes) -> Result<Self, RestoreError> {
        let len = sizes.zone();
        let base = find(mappings, len)?;
        reserve(base, len)?;
        Ok(Self { base, sizes })
    }

    /// (start, length).
    pub fn range(&self) -> (u64, u64) {
        (self.base, self.sizes.zone())
    }

    /// The stub's entry point: the zone starts with it.
    pub fn entry(&self) -> u64 {
        self.base
    }

    /// Where the argument block is.
    pub fn args(&self) -> u64 {
        self.base + self.sizes.blob
    }

    /// Where the stub stacks start (thread `i`'s top is `STUB_STACK * (i + 1)` above).
    pub fn stacks(&self) -> u64 {
        self.args() + self.sizes.args
    }

    /// Where the kernel's mappings, then the prepared ones, go.
    pub fn after_region(&self) -> u64 {
        self.base + self.sizes.region()
    }

    /// Maps the stub (read+exec), then `block` and the stacks (read+write)
    /// at the start of the zone.
    pub fn map_region(&self, block: &[u8]) -> Result<(), RestoreError> {
        map_region(
            self.base,
            block,
            self.sizes.blob,
            self.sizes.args + self.sizes.stacks,
        )
    }
}

/// A free range of `len` bytes in both this process and the image.
fn find(mappings: &[Mapping], len: u64) -> Result<u64, RestoreError> {
    let maps =
        std::fs::read_to_string("/proc/self/maps").map_err(prepare_err("/proc/self/maps"))?;
    let taken = vmas::parse(&maps)
        .unwrap_or_default()
        .iter()
        .map(|v| (v.start, v.end))
        .chain(mappings.iter().map(|m| (m.start, m.end)))
        .collect();
    first_free(taken, len).ok_or_else(|| {
        prepare_err("finding room for the restorer")(std::io::Error::other(format!(
            "no free range of {len} bytes"
        )))
    })
}

/// The first `len` bytes overlapping none of `taken`, from
/// [`ZONE_SEARCH_FROM`] on, each try past a range it met starting on a GiB
/// boundary; `None` past the top of the address space.
pub(super) fn first_free(mut taken: Vec<(u64, u64)>, len: u64) -> Option<u64> {
    taken.sort();
    let mut base = ZONE_SEARCH_FROM;
    loop {
        if base + len > TASK_TOP {
            return None;
        }
        match taken.iter().find(|(s, e)| *s < base + len && *e > base) {
            None => return Some(base),
            Some((_, end)) => base = end.div_ceil(GIB) * GIB,
        }
    }
}

fn reserve(base: u64, len: u64) -> Result<(), RestoreError> {
    // A new PROT_NONE mapping at a range `find` saw free.
    mem::reserve(base, len).map_err(prepare_call_err(format!(
        "reserving {len} bytes at {base:#x}"
    )))
}

/// Maps the stub (read+exec) and its block and stacks (read+write) at
/// `region`, inside the reserved zone.
fn map_region(region: u64, block: &[u8], blob_len: u64, data_len: u64) -> Result<(), RestoreError> {
    let len = blob_len + data_len;
    // SAFETY: replaces part of our own PROT_NONE reservation.
    unsafe {
        mem::map_fixed(
            region,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    }
    .map_err(prepare_call_err("mapping the restorer"))?;
    // SAFETY: the mapping just made is `len` bytes, writable, and ours.
    unsafe {
        std::ptr::copy_nonoverlapping(RESTORER.as_ptr(), region as *mut u8, RESTORER.len());
        std::ptr::copy_nonoverlapping(block.as_ptr(), (region + blob_len) as *mut u8, block.len());
    }
    // SAFETY: our own mapping; nothing writes the stub once it is copied.
    unsafe { mem::protect(region, blob_len, libc::PROT_READ | libc::PROT_EXEC) }
        .map_err(prepare_call_err("protecting the restorer"))
}

/// Unmaps the zone from this process again (the child has its own copy).
pub fn release_zone(zone: (u64, u64)) {
    // SAFETY: the zone is ours and nothing in this process refers to it
    // after the child was created.
    let _ = unsafe { mem::unmap(zone.0, zone.1) };
}

#[cfg(test)]
mod tests {
    use super::{GIB, Sizes, TASK_TOP, ZONE_SEARCH_FROM, Zone, first_free, round_up};

    #[test]
    fn round_up_gives_whole_pages() {
        assert_eq!(round_up(0), 0);
        assert_eq!(round_up(1), 4096);
        assert_eq!(round_up(4096), 4096);
        assert_eq!(round_up(4097), 8192);
    }

    #[test]
    fn the_zone_is_laid_out_stub_block_stacks_then_the_rest() {
        let zone = Zone {
            base: 0x1000_0000_0000,
            sizes: Sizes {
                blob: 0x2000,
                args: 0x3000,
                stacks: 0x20000,
                kernel: 0x4000,
                premaps: 0x10000,
            },
        };
        assert_eq!(zone.entry(), zone.base);
        assert_eq!(zone.args(), zone.base + 0x2000);
        assert_eq!(zone.stacks(), zone.base + 0x5000);
        assert_eq!(zone.after_region(), zone.base + 0x25000);
        assert_eq!(zone.range(), (zone.base, 0x39000));
    }

    #[test]
    fn the_zone_goes_where_nothing_is_past_each_range_on_a_gib_boundary() {
        let len = 16 << 20;
        assert_eq!(first_free(vec![], len), Some(ZONE_SEARCH_FROM));
        // Below where the search starts: in nobody's way.
        assert_eq!(
            first_free(vec![(0x40_0000, 0x50_0000)], len),
            Some(ZONE_SEARCH_FROM)
        );
        // Over the start: past it, on the next GiB.
        let over = (ZONE_SEARCH_FROM + 0x1000, ZONE_SEARCH_FROM + GIB + 0x1000);
        assert_eq!(
            first_free(vec![over], len),
            Some(ZONE_SEARCH_FROM + 2 * GIB)
        );
        // Ending on a GiB: right there, unless something else is in the
        // way there too (in whatever order they were found).
        let (a, b) = (
            (ZONE_SEARCH_FROM, ZONE_SEARCH_FROM + GIB),
            (
                ZONE_SEARCH_FROM + GIB + len - 1,
                ZONE_SEARCH_FROM + GIB + len,
            ),
        );
        assert_eq!(first_free(vec![a], len), Some(ZONE_SEARCH_FROM + GIB));
        assert_eq!(
            first_free(vec![b, a], len),
            Some(ZONE_SEARCH_FROM + 2 * GIB)
        );
        // Just fits under the top; one byte more does not.
        let top = TASK_TOP - ZONE_SEARCH_FROM;
        assert_eq!(first_free(vec![], top), Some(ZONE_SEARCH_FROM));
        assert_eq!(first_free(vec![], top + 1), None);
    }
}
