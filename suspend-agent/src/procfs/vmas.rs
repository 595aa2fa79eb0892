//! `/proc/PID/maps`: a pure parser, and how each mapping is saved.

use crate::image::format::MappingKind;

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    pub dev: String,
    pub inode: u64,
    pub path: String,
}

impl Vma {
    pub fn readable(&self) -> bool {
        self.perms.starts_with('r')
    }

    pub fn shared(&self) -> bool {
        self.perms.as_bytes().get(3) == Some(&b's')
    }

    /// Whether its file was deleted since it was mapped (as the kernel
    /// says: a path ending in ` (deleted)`).
    pub fn deleted(&self) -> bool {
        self.inode != 0 && self.path.starts_with('/') && self.path.ends_with(" (deleted)")
    }

    pub fn pages(&self) -> u64 {
        (self.end - self.start) / 4096
    }

    /// How this mapping is saved.
    pub fn kind(&self) -> MappingKind {
        let special = matches!(
            self.path.as_str(),
            "[vdso]" | "[vvar]" | "[vvar_vclock]" | "[vsyscall]"
        );
        // A shared mapping of a file deleted since (a POSIX semaphore's
        // `/dev/shm/sem.*`): only its mappings reach it, so it is saved
        // and made again as an object of its own, like a memfd.
        let anonymous_object = self.inode == 0
            || self.path.starts_with("/memfd:")
            || self.path.starts_with("/SYSV")
            || self.path.starts_with("/dev/zero")
            || self.path.starts_with("/anon_hugepage")
            || self.deleted();
        if special {
            MappingKind::Kernel
        } else if self.shared() {
            if anonymous_object {
                MappingKind::SharedAnonymous
            } else {
                MappingKind::SharedFile
            }
        } else if self.inode == 0 {
            MappingKind::Anonymous
        } else {
            MappingKind::PrivateFile
        }
    }
}

/// Parses the text of `/proc/PID/maps`.
pub fn parse(text: &str) -> Option<Vec<Vma>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Vma> {
    // start-end perms offset dev inode [path, which may hold spaces]
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let perms = fields.next()?.to_owned();
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let dev = fields.next()?.to_owned();
    let inode = fields.next()?.parse().ok()?;
    let path = fields.next().unwrap_or("").trim_start().to_owned();
    Some(Vma {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        perms,
        offset,
        dev,
        inode,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fd:00 1234                       /usr/bin/work load
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]
7f1c2e400000-7f1c2e401000 rw-s 00000000 00:01 5678                       /memfd:suspend-client (deleted)
7f1c2e500000-7f1c2e600000 ---p 00000000 00:00 0 
7f1c2e600000-7f1c2e700000 rw-s 00001000 fd:00 99                         /data/shared.bin
7f1c2e700000-7f1c2e701000 rw-s 00000000 00:01 4                          /dev/zero (deleted)
7ffd6a9e0000-7ffd6aa01000 rw-p 00000000 00:00 0                          [stack]
7ffd6ab8c000-7ffd6ab90000 r--p 00000000 00:00 0                          [vvar]
7ffd6ab90000-7ffd6ab92000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

    #[test]
    fn parses_every_line() {
        let vmas = parse(MAPS).unwrap();
        assert_eq!(vmas.len(), 10);
        assert_eq!(vmas[0].path, "/usr/bin/work load");
        assert_eq!(vmas[0].inode, 1234);
        assert_eq!(vmas[1].start, 0x55d0c1000000);
        assert_eq!(vmas[1].pages(), 0x21);
        assert_eq!(vmas[3].path, "");
        assert_eq!(vmas[4].offset, 0x1000);
        assert_eq!(vmas[9].end, 0xffffffffff601000);
    }

    #[test]
    fn kinds() {
        use MappingKind::*;
        let kinds: Vec<_> = parse(MAPS).unwrap().iter().map(Vma::kind).collect();
        assert_eq!(
            kinds,
            [
                PrivateFile,
                Anonymous,
                SharedAnonymous,
                Anonymous,
                SharedFile,
                SharedAnonymous,
                Anonymous,
                Kernel,
                Kernel,
                Kernel
            ]
        );
    }

    #[test]
    fn a_deleted_files_shared_mapping_is_an_object_its_private_one_a_file() {
        let text = "\
7f0000000000-7f0000003000 rw-s 00000000 00:1a 77                         /dev/shm/sem.x (deleted)
7f0000003000-7f0000004000 r--p 00000000 fd:00 88                         /usr/lib/libold.so (deleted)
";
        let vmas = parse(text).unwrap();
        assert!(vmas.iter().all(Vma::deleted));
        assert_eq!(vmas[0].kind(), MappingKind::SharedAnonymous);
        assert_eq!(vmas[1].kind(), MappingKind::PrivateFile);
        assert!(!parse(MAPS).unwrap()[4].deleted());
    }

    #[test]
    fn garbage_is_none() {
        assert!(parse("not a maps line\n").is_none());
        assert!(parse("1000-2000 rw-p zz 00:00 0\n").is_none());
    }
}
