//! The restorer's argument block: one [`RestoreArgs`] at its head, then
//! every array it and the threads' arguments point to, each 16-byte
//! aligned, at the addresses they will have in the zone. Its size is
//! bounded beforehand ([`estimate`]), so that the zone is reserved before
//! the block is built.

use std::os::fd::RawFd;

use suspend_common::restore::{
    Creds, ITimer, MmMap, Move, RESTORE_ABI, RESTORE_MAGIC, Range, RestoreArgs, SigAction, SigInfo,
    ThreadArgs,
};

use super::prepare_err;
use crate::{
    image::format::{Process, Thread},
    restore::RestoreError,
};

/// Builds the argument block in memory, handing out the final address of
/// each piece.
#[derive(Debug)]
pub struct Block {
    base: u64,
    bytes: Vec<u8>,
}

impl Block {
    /// An empty block to be at `base`, with room for its head.
    pub fn new(base: u64) -> Self {
        Self {
            base,
            bytes: vec![0; std::mem::size_of::<RestoreArgs>()],
        }
    }

    /// Appends `items` at the next 16-byte boundary; their address.
    pub fn push<T: Copy>(&mut self, items: &[T]) -> u64 {
        while !self.bytes.len().is_multiple_of(16) {
            self.bytes.push(0);
        }
        let at = self.base + self.bytes.len() as u64;
        // SAFETY: `T` is one of the `repr(C)` plain-data types of
        // `suspend_common::restore`, `sys::sched::SchedAttr` or an integer:
        // viewing them as bytes is sound; they have no implicit padding
        // (their sizes are asserted).
        let raw = unsafe {
            std::slice::from_raw_parts(items.as_ptr().cast::<u8>(), std::mem::size_of_val(items))
        };
        self.bytes.extend_from_slice(raw);
        at
    }

    /// Pushes what `head` points to, in its order, writes the head, and
    /// checks that the block fits the `reserved` bytes.
    pub fn finish(mut self, head: &Head, reserved: u64) -> Result<Vec<u8>, RestoreError> {
        let args = RestoreArgs {
            magic: RESTORE_MAGIC,
            abi: RESTORE_ABI,
            flags: head.flags,
            keep_count: head.keep.len() as u32,
            keep: self.push(head.keep),
            report_fd: head.report_fd,
            kernel_count: head.kernel.len() as u32,
            kernel: self.push(head.kernel),
            kernel_final: self.push(head.kernel_final),
            moves_count: head.moves.len() as u32,
            moves: self.push(head.moves),
            sigactions_count: head.sigactions.len() as u32,
            sigactions: self.push(head.sigactions),
            threads_count: head.threads.len() as u32,
            threads: self.push(head.threads),
            shared_pending_count: head.shared_pending.len() as u32,
            shared_pending: self.push(head.shared_pending),
            itimers_count: head.itimers.len() as u32,
            itimers: self.push(head.itimers),
            mm: head.mm,
            creds: head.creds,
            ..RestoreArgs::default()
        };
        // SAFETY: `RestoreArgs` is plain `repr(C)` data; the block starts
        // with room for it.
        let raw = unsafe {
            std::slice::from_raw_parts(
                (&raw const args).cast::<u8>(),
                std::mem::size_of::<RestoreArgs>(),
            )
        };
        self.bytes[..raw.len()].copy_from_slice(raw);
        if self.bytes.len() as u64 > reserved {
            return Err(prepare_err("the restorer's argument block")(
                std::io::Error::other(format!("{} bytes, {reserved} reserved", self.bytes.len())),
            ));
        }
        Ok(self.bytes)
    }

    /// The bytes so far, head not written.
    #[cfg(test)]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// What the head holds besides what the planners pushed themselves: the
/// arrays it points to (pushed by [`Block::finish`], in this order) and
/// the parts it holds whole.
#[derive(Debug)]
pub struct Head<'a> {
    /// `RESTORE_*`.
    pub flags: u32,
    pub report_fd: RawFd,
    pub keep: &'a [Range],
    pub kernel: &'a [Move],
    pub kernel_final: &'a [u64],
    pub moves: &'a [Move],
    pub sigactions: &'a [SigAction],
    /// The main thread's first.
    pub threads: &'a [ThreadArgs],
    pub shared_pending: &'a [SigInfo],
    pub itimers: &'a [ITimer],
    pub mm: MmMap,
    pub creds: Creds,
}

/// An upper bound of the argument block's size for process `p` with
/// `threads` and `mappings` mappings.
pub fn estimate(p: &Process, threads: &[Thread], mappings: usize) -> u64 {
    let pending: usize =
        threads.iter().map(|t| t.pending.len() + 1).sum::<usize>() + p.shared_pending.len();
    (4096
        + mappings * 48
        + p.sigactions.len() * 48
        + threads.len() * (176 + 64 + 16)
        + threads
            .iter()
            .filter_map(|t| t.sched.as_ref())
            .map(|s| s.affinity.len() * 8 + 16)
            .sum::<usize>()
        + pending * 144
        + p.auxv.len() * 16
        + p.creds.groups.len() * 4
        + threads
            .iter()
            .flat_map(|t| &t.seccomp)
            .map(|f| f.program.len() + 64)
            .sum::<usize>()
        + 64 * 16) as u64
}

#[cfg(test)]
mod tests {
    use suspend_common::restore::{RESTORE_ABI, RESTORE_MAGIC, Range, RestoreArgs};

    use super::{Block, Head};

    fn head<'a>(keep: &'a [Range]) -> Head<'a> {
        Head {
            flags: 4,
            report_fd: 9,
            keep,
            kernel: &[],
            kernel_final: &[],
            moves: &[],
            sigactions: &[],
            threads: &[],
            shared_pending: &[],
            itimers: &[],
            mm: Default::default(),
            creds: Default::default(),
        }
    }

    #[test]
    fn each_push_starts_on_16_bytes_at_its_final_address() {
        let base = 0x1000_0000_3000;
        let mut block = Block::new(base);
        let head = std::mem::size_of::<RestoreArgs>() as u64;
        let a = block.push(&[1u8, 2, 3]);
        assert_eq!(a, base + head.next_multiple_of(16));
        let b = block.push(&[7u32]);
        assert_eq!(b, a + 16);
        let c = block.push(&[5u64, 6]);
        assert_eq!(c, b + 16);
        // Nothing pushed: an address all the same, nothing added.
        let d = block.push::<u64>(&[]);
        assert_eq!(d, c + 16);
        let bytes = block.into_bytes();
        assert_eq!(bytes.len() as u64, c + 16 - base);
        let at = |addr: u64, n: usize| &bytes[(addr - base) as usize..][..n];
        assert_eq!(at(a, 3), [1, 2, 3]);
        assert_eq!(at(b, 4), 7u32.to_ne_bytes());
        assert_eq!(at(c + 8, 8), 6u64.to_ne_bytes());
    }

    #[test]
    fn the_head_points_at_what_it_pushed() {
        let base = 0x1000_0000_3000;
        let keep = [Range {
            start: 0x1000,
            end: 0x2000,
        }];
        let bytes = Block::new(base).finish(&head(&keep), 4096).expect("fits");
        // SAFETY: the block starts with a `RestoreArgs`, written from one;
        // `read_unaligned` asks nothing of the Vec's alignment.
        let args: RestoreArgs = unsafe { bytes.as_ptr().cast::<RestoreArgs>().read_unaligned() };
        assert_eq!((args.magic, args.abi), (RESTORE_MAGIC, RESTORE_ABI));
        assert_eq!((args.flags, args.report_fd, args.keep_count), (4, 9, 1));
        let from = (args.keep - base) as usize;
        assert_eq!(bytes[from..from + 8], 0x1000u64.to_ne_bytes());
        assert_eq!(bytes[from + 8..from + 16], 0x2000u64.to_ne_bytes());
    }

    #[test]
    fn a_block_over_its_reservation_is_an_error() {
        let err = Block::new(0)
            .finish(&head(&[]), 64)
            .expect_err("the head alone is bigger");
        assert!(
            err.to_string()
                .starts_with("the restorer's argument block: "),
            "{err}"
        );
    }
}
