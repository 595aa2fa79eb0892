//! Images moved between guests, each a machine with a kernel of its own
//! (issue 15's `moved_between_kernels` tests, `tests/tests/moved.rs`).
//!
//! Out: a boot given [`OUT_PARAM`] writes files on its third serial port
//! as lines `VMTEST_CARRY NAME HEX`, each file closed by
//! `VMTEST_CARRY_END NAME LEN`, the whole by `VMTEST_CARRY_DONE`; the host
//! keeps them ([`parse`]) only when that last line came.
//!
//! In: a later boot of another kernel gets them in its initramfs under
//! `/carry/LABEL/` (a second cpio archive after the kernel's own, which
//! the kernel unpacks in turn: [`tree`]) and [`IN_PARAM`]`=LABEL,…` on its
//! command line, so its test fails if one is missing.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};

use super::initramfs::{Node, Tree};

/// On the command line of a boot that carries images out.
pub const OUT_PARAM: &str = "vmtest.carry_out=1";
/// `vmtest.carried=LABEL,…`: the boots whose files are in `/carry`.
pub const IN_PARAM: &str = "vmtest.carried";

const LINE: &str = "VMTEST_CARRY ";
const END: &str = "VMTEST_CARRY_END ";
const DONE: &str = "VMTEST_CARRY_DONE";

/// The files one boot carried out, by name.
pub type Files = BTreeMap<String, Vec<u8>>;

/// The files in `text` (what the carry port received); `None` when the
/// boot never said it was done (its test failed or did not run).
pub fn parse(text: &str) -> Result<Option<Files>> {
    let mut files = Files::new();
    let mut open: Option<(String, Vec<u8>)> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let at = || format!("carry port line {}", n + 1);
        if let Some(rest) = line.strip_prefix(LINE) {
            let (name, hex) = rest.split_once(' ').with_context(at)?;
            let bytes = match &mut open {
                Some((open_name, bytes)) if open_name == name => bytes,
                Some((open_name, _)) => {
                    bail!("{}: {name} begins before {open_name} ended", at())
                }
                None => &mut open.insert((name.to_owned(), Vec::new())).1,
            };
            decode(hex, bytes).with_context(at)?;
        } else if let Some(rest) = line.strip_prefix(END) {
            let (name, len) = rest.split_once(' ').with_context(at)?;
            let len: usize = len.parse().with_context(at)?;
            let bytes = match open.take() {
                Some((open_name, bytes)) if open_name == name => bytes,
                Some((open_name, _)) => bail!("{}: {name} ends while {open_name} is open", at()),
                None => Vec::new(), // an empty file has no line of its own
            };
            if bytes.len() != len {
                bail!("{}: {name} is {} bytes, not {len}", at(), bytes.len());
            }
            files.insert(name.to_owned(), bytes);
        } else if line == DONE {
            if let Some((name, _)) = open {
                bail!("{}: done before {name} ended", at());
            }
            return Ok(Some(files));
        }
    }
    Ok(None)
}

fn decode(hex: &str, out: &mut Vec<u8>) -> Result<()> {
    if !hex.len().is_multiple_of(2) {
        bail!("odd hex length {}", hex.len());
    }
    for pair in hex.as_bytes().chunks(2) {
        let pair = std::str::from_utf8(pair)?;
        out.push(u8::from_str_radix(pair, 16).with_context(|| format!("{pair:?} is not hex"))?);
    }
    Ok(())
}

/// `/carry/LABEL/NAME` for every file each boot carried.
pub fn tree<'a>(carried: impl IntoIterator<Item = (&'a str, &'a Files)>) -> Tree {
    let mut tree = Tree::default();
    for (label, files) in carried {
        for (name, bytes) in files {
            tree.insert(format!("/carry/{label}/{name}"), Node::data(bytes));
        }
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn files_are_kept_only_once_the_boot_says_it_is_done() {
        let text = "noise\r\nVMTEST_CARRY key 6162\r\nVMTEST_CARRY key 63\r\n\
                    VMTEST_CARRY_END key 3\r\nVMTEST_CARRY_END empty 0\r\n";
        assert!(parse(text).unwrap().is_none(), "no VMTEST_CARRY_DONE yet");
        let files = parse(&format!("{text}VMTEST_CARRY_DONE\r\n"))
            .unwrap()
            .unwrap();
        assert_eq!(files["key"], b"abc");
        assert_eq!(files["empty"], b"");
        assert_eq!(files.len(), 2);
    }

    #[test]
    fn a_damaged_carry_is_refused() {
        for text in [
            "VMTEST_CARRY a 616\nVMTEST_CARRY_END a 1\nVMTEST_CARRY_DONE\n",
            "VMTEST_CARRY a 6g\nVMTEST_CARRY_END a 1\nVMTEST_CARRY_DONE\n",
            "VMTEST_CARRY a 61\nVMTEST_CARRY_END a 2\nVMTEST_CARRY_DONE\n",
            "VMTEST_CARRY a 61\nVMTEST_CARRY b 62\n",
            "VMTEST_CARRY a 61\nVMTEST_CARRY_DONE\n",
            "VMTEST_CARRY_END a 1\nVMTEST_CARRY_DONE\n",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }
}
