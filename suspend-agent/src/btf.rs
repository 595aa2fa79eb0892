//! Just enough of the kernel's BTF (`/sys/kernel/btf/vmlinux`) to find where
//! a struct keeps a member: the BPF LSM programs read `task_struct.pid` and
//! `.tgid` at offsets the agent looks up here and passes in a global (the
//! programs are Rust, without CO-RE relocations).
//!
//! Format: `include/uapi/linux/btf.h` — a header, the type section (each
//! `struct btf_type` followed by kind-specific data) and the string section.

use std::{fs, io, path::Path};

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("reading {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{0}: not BTF, or damaged")]
    Malformed(String),
    #[error("BTF has no struct {0}")]
    NoStruct(String),
    #[error("BTF struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
    #[error("BTF struct {strukt}'s member {member} is not an array")]
    NotArray { strukt: String, member: String },
}

const MAGIC: u16 = 0xeb9f;

const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;

/// Parsed BTF: the raw type records and strings.
pub struct Btf {
    /// Byte offset of each type's record in `types` (index = type id - 1).
    records: Vec<usize>,
    types: Vec<u8>,
    strings: Vec<u8>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Btf {
    /// The running kernel's BTF.
    pub fn kernel() -> Result<Self, BtfError> {
        Self::read(Path::new("/sys/kernel/btf/vmlinux"))
    }

    pub fn read(path: &Path) -> Result<Self, BtfError> {
        let bytes = fs::read(path).map_err(|source| BtfError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&bytes).ok_or_else(|| BtfError::Malformed(path.display().to_string()))
    }

    fn parse(b: &[u8]) -> Option<Self> {
        if u16::from_le_bytes(b.get(0..2)?.try_into().ok()?) != MAGIC {
            return None;
        }
        let hdr_len = u32_at(b, 4)? as usize;
        let (type_off, type_len) = (u32_at(b, 8)? as usize, u32_at(b, 12)? as usize);
        let (str_off, str_len) = (u32_at(b, 16)? as usize, u32_at(b, 20)? as usize);
        let types = b
            .get(hdr_len + type_off..hdr_len + type_off + type_len)?
            .to_vec();
        let strings = b
            .get(hdr_len + str_off..hdr_len + str_off + str_len)?
            .to_vec();
        let mut records = Vec::new();
        let mut at = 0;
        while at < types.len() {
            records.push(at);
            let info = u32_at(&types, at + 4)?;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let extra = match kind {
                1 | 14 | 17 => 4,             // INT, VAR, DECL_TAG
                3 => 12,                      // ARRAY
                4 | 5 | 15 | 19 => 12 * vlen, // STRUCT, UNION, DATASEC, ENUM64
                6 | 13 => 8 * vlen,           // ENUM, FUNC_PROTO
                2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, qualifiers, FUNC, FLOAT, TYPE_TAG
                _ => return None,
            };
            at += 12 + extra;
        }
        Some(Self {
            records,
            types,
            strings,
        })
    }

    fn name(&self, offset: u32) -> &str {
        let rest = self.strings.get(offset as usize..).unwrap_or_default();
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or_default()
    }

    /// Byte offset of `member` in `struct strukt`, looking into anonymous
    /// structs and unions too.
    pub fn member_offset(&self, strukt: &str, member: &str) -> Result<u32, BtfError> {
        self.member_path_offset(strukt, &[member])
    }

    /// Byte offset of a member reached through named members, as in C's
    /// `offsetof(struct mm_struct, context.ldt)`: `path` is `["context",
    /// "ldt"]`; each step but the last must be a struct or union (through
    /// typedefs and qualifiers, as `mm_context_t` is).
    pub fn member_path_offset(&self, strukt: &str, path: &[&str]) -> Result<u32, BtfError> {
        self.member_path(strukt, path).map(|(bits, _)| bits / 8)
    }

    /// How many elements the array member at `path` of `struct strukt`
    /// has, as C's `ARRAY_SIZE` (through typedefs and qualifiers).
    pub fn member_array_len(&self, strukt: &str, path: &[&str]) -> Result<u32, BtfError> {
        let (_, mut id) = self.member_path(strukt, path)?;
        let not_array = || BtfError::NotArray {
            strukt: strukt.into(),
            member: path.join("."),
        };
        for _ in 0..16 {
            let record = *id
                .checked_sub(1)
                .and_then(|i| self.records.get(i as usize))
                .ok_or_else(not_array)?;
            let kind = u32_at(&self.types, record + 4).map_or(0, |i| (i >> 24) & 0x1f);
            match kind {
                // `struct btf_array { type, index_type, nelems }`.
                KIND_ARRAY => return u32_at(&self.types, record + 20).ok_or_else(not_array),
                8..=11 | 18 => id = u32_at(&self.types, record + 8).ok_or_else(not_array)?,
                _ => break,
            }
        }
        Err(not_array())
    }

    /// Whether the BTF has a `struct name` with members (not only a
    /// forward declaration).
    pub fn has_struct(&self, name: &str) -> bool {
        self.find_struct(name).is_some()
    }

    /// The record of `struct name` (one with members).
    fn find_struct(&self, name: &str) -> Option<usize> {
        self.records.iter().copied().find(|&at| {
            let kind = u32_at(&self.types, at + 4).map_or(0, |i| (i >> 24) & 0x1f);
            let vlen = u32_at(&self.types, at + 4).map_or(0, |i| i & 0xffff);
            kind == KIND_STRUCT
                && vlen > 0
                && u32_at(&self.types, at).is_some_and(|n| self.name(n) == name)
        })
    }

    /// Bit offset and type id of the member at `path` of `struct strukt`.
    fn member_path(&self, strukt: &str, path: &[&str]) -> Result<(u32, u32), BtfError> {
        let mut record = self
            .find_struct(strukt)
            .ok_or_else(|| BtfError::NoStruct(strukt.into()))?;
        let no_member = || BtfError::NoMember {
            strukt: strukt.into(),
            member: path.join("."),
        };
        let (mut bits, mut last) = (0, 0);
        for (i, member) in path.iter().enumerate() {
            let (at, ty) = self.find_member(record, member).ok_or_else(no_member)?;
            bits += at;
            last = ty;
            if i + 1 < path.len() {
                record = self.aggregate(ty).ok_or_else(no_member)?;
            }
        }
        Ok((bits, last))
    }

    /// The struct or union record type `id` names, through typedefs and
    /// qualifiers.
    fn aggregate(&self, mut id: u32) -> Option<usize> {
        for _ in 0..16 {
            let record = *self.records.get(id.checked_sub(1)? as usize)?;
            match (u32_at(&self.types, record + 4)? >> 24) & 0x1f {
                KIND_STRUCT | KIND_UNION => return Some(record),
                // TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG: the type they name.
                8..=11 | 18 => id = u32_at(&self.types, record + 8)?,
                _ => return None,
            }
        }
        None
    }

    /// Bit offset and type id of `member` within the struct or union at
    /// `record`.
    fn find_member(&self, record: usize, member: &str) -> Option<(u32, u32)> {
        let info = u32_at(&self.types, record + 4)?;
        let kind_flag = info >> 31 == 1;
        for i in 0..(info & 0xffff) as usize {
            let m = record + 12 + 12 * i;
            let (name, ty, offset) = (
                u32_at(&self.types, m)?,
                u32_at(&self.types, m + 4)?,
                u32_at(&self.types, m + 8)?,
            );
            let bits = if kind_flag {
                offset & 0x00ff_ffff
            } else {
                offset
            };
            if self.name(name) == member {
                return Some((bits, ty));
            }
            if name == 0 {
                // An anonymous struct or union: look inside.
                let inner = *self.records.get(ty.checked_sub(1)? as usize)?;
                let kind = (u32_at(&self.types, inner + 4)? >> 24) & 0x1f;
                if matches!(kind, KIND_STRUCT | KIND_UNION)
                    && let Some((found, ty)) = self.find_member(inner, member)
                {
                    return Some((bits + found, ty));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_kernel_task_struct() {
        // Every kernel suspend supports has BTF (CONFIG_DEBUG_INFO_BTF).
        let btf = Btf::kernel().expect("the running kernel's BTF");
        let pid = btf.member_offset("task_struct", "pid").unwrap();
        let tgid = btf.member_offset("task_struct", "tgid").unwrap();
        assert_eq!(tgid, pid + 4, "pid and tgid are neighbours in task_struct");
        assert!(pid > 0 && pid < 8192, "{pid}");
        assert!(btf.member_offset("task_struct", "no_such_member").is_err());
        assert!(btf.member_offset("no_such_struct", "pid").is_err());
    }

    #[test]
    fn a_path_goes_through_typedefs() {
        let btf = Btf::kernel().expect("the running kernel's BTF");
        // `mm_context_t` is a typedef of an anonymous struct.
        let context = btf.member_offset("mm_struct", "context").unwrap();
        let ldt = btf
            .member_path_offset("mm_struct", &["context", "ldt"])
            .unwrap();
        assert!(ldt >= context, "context at {context}, its ldt at {ldt}");
        assert!(
            ldt < context + 512,
            "context at {context}, its ldt at {ldt}"
        );
        assert_eq!(
            btf.member_path_offset("task_struct", &["pid"]).unwrap(),
            btf.member_offset("task_struct", "pid").unwrap()
        );
        // A step that is not a struct (pid is an int) goes no further.
        assert!(
            btf.member_path_offset("task_struct", &["pid", "x"])
                .is_err()
        );
    }

    #[test]
    fn an_array_members_length_is_read() {
        let btf = Btf::kernel().expect("the running kernel's BTF");
        // `char comm[TASK_COMM_LEN]`, 16 since Linux 2.6.
        assert_eq!(
            btf.member_array_len("task_struct", &["comm"]).ok(),
            Some(16)
        );
        assert!(matches!(
            btf.member_array_len("task_struct", &["pid"]),
            Err(BtfError::NotArray { .. })
        ));
        assert!(btf.has_struct("task_struct"));
        assert!(!btf.has_struct("no_such_struct"));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Btf::parse(b"not btf at all, no").is_none());
        assert!(Btf::parse(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0]).is_none());
    }
}
