//! `/proc/PID/maps`: a pure parser (how each mapping is saved is the
//! mappings kind's, `state::mappings::kind`).

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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

    /// Whether `path` surely is the mapped file's name. The kernel writes
    /// a newline in it as `\012` and a backslash as itself, so a name
    /// with a newline reads as the name with the four characters `\012`
    /// in its place would (`parse` takes the newline): only the mapping's
    /// `/proc/PID/map_files` link (`link`, `None` when it cannot be read)
    /// tells which it is.
    pub fn path_is_certain(&self, link: Option<&std::path::Path>) -> bool {
        use std::os::unix::ffi::OsStrExt as _;
        !self.path.contains('\n')
            || link.is_some_and(|l| l.as_os_str().as_bytes() == self.path.as_bytes())
    }

    pub fn pages(&self) -> u64 {
        (self.end - self.start) / 4096
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
    // The kernel escapes a newline in a path, and nothing else
    // (`seq_file_path(m, file, "\n")`).
    let path = fields
        .next()
        .unwrap_or("")
        .trim_start()
        .replace(r"\012", "\n");
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

/// A `/proc/PID/maps` of every kind of mapping, for tests.
#[cfg(test)]
pub const SAMPLE: &str = "\
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_line() {
        let vmas = parse(SAMPLE).unwrap();
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
    fn a_deleted_files_mappings_say_so() {
        let text = "\
7f0000000000-7f0000003000 rw-s 00000000 00:1a 77                         /dev/shm/sem.x (deleted)
7f0000003000-7f0000004000 r--p 00000000 fd:00 88                         /usr/lib/libold.so (deleted)
";
        let vmas = parse(text).unwrap();
        assert!(vmas.iter().all(Vma::deleted));
        assert!(!parse(SAMPLE).unwrap()[4].deleted());
    }

    #[test]
    fn a_newline_in_a_path_is_unescaped_and_only_it() {
        // The kernel escapes "\n" only (`seq_file_path(m, file, "\n")`):
        // a backslash, and any other `\ooo`, stands for itself.
        let text = "\
7f0000000000-7f0000001000 r--p 00000000 fd:00 5                          /tmp/a\\012b
7f0000001000-7f0000002000 r--p 00000000 fd:00 6                          /tmp/c\\040d\\e
";
        let vmas = parse(text).unwrap();
        assert_eq!(vmas[0].path, "/tmp/a\nb");
        assert_eq!(vmas[1].path, r"/tmp/c\040d\e");
        // A name with a newline reads as one with `\012` would.
        assert!(!vmas[0].path_is_certain(None));
        assert!(!vmas[0].path_is_certain(Some(std::path::Path::new(r"/tmp/a\012b"))));
        assert!(vmas[0].path_is_certain(Some(std::path::Path::new("/tmp/a\nb"))));
        assert!(vmas[1].path_is_certain(None));
    }

    #[test]
    fn the_kernel_writes_a_newline_in_a_mapped_files_path_as_backslash_012() {
        let dir = std::env::temp_dir().join(format!("suspend-vmas-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let dir_name = dir
            .to_str()
            .expect("a UTF-8 temporary directory")
            .to_owned();
        // Each file's line of /proc/self/maps, its Vma, and what its
        // map_files link reads.
        let seen = |name: &str| {
            let path = dir.join(name);
            std::fs::write(&path, [0u8; 4096]).expect("file");
            let file = std::fs::File::open(&path).expect("open");
            // SAFETY: a new mapping where the kernel finds room: it
            // replaces nothing.
            let mapped = unsafe {
                nix::sys::mman::mmap(
                    None,
                    std::num::NonZeroUsize::new(4096).unwrap(),
                    nix::sys::mman::ProtFlags::PROT_READ,
                    nix::sys::mman::MapFlags::MAP_PRIVATE,
                    &file,
                    0,
                )
            }
            .expect("mmap");
            let start = mapped.as_ptr() as u64;
            let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
            let line = maps
                .lines()
                .find(|l| l.starts_with(&format!("{start:x}-")))
                .expect("its line")
                .to_owned();
            let link =
                std::fs::read_link(format!("/proc/self/map_files/{start:x}-{:x}", start + 4096))
                    .ok();
            // SAFETY: the mapping made above, which nothing refers to.
            unsafe { crate::sys::mem::unmap(start, 4096) }.expect("munmap");
            let vma = parse(&line).expect("a maps line").remove(0);
            (line, vma, link)
        };
        let (newline_line, newline, newline_link) = seen("new\nline");
        let (backslash_line, backslash, backslash_link) = seen(r"back\012slash");
        let _ = std::fs::remove_dir_all(&dir);
        // Both are written alike, and read as the name with a newline.
        assert!(
            newline_line.ends_with(&format!(r"{dir_name}/new\012line")),
            "{newline_line}"
        );
        assert!(
            backslash_line.ends_with(&format!(r"{dir_name}/back\012slash")),
            "{backslash_line}"
        );
        assert_eq!(newline.path, format!("{dir_name}/new\nline"));
        assert_eq!(backslash.path, format!("{dir_name}/back\nslash"));
        // Only the map_files link tells them apart.
        match (newline_link, backslash_link) {
            (Some(n), Some(b)) => {
                assert!(newline.path_is_certain(Some(&n)));
                assert!(!backslash.path_is_certain(Some(&b)));
            }
            _ => eprintln!(
                "NOTE: /proc/self/map_files cannot be read here (it needs CAP_SYS_ADMIN); the \
                 check of a path against it is not run"
            ),
        }
    }

    #[test]
    fn garbage_is_none() {
        assert!(parse("not a maps line\n").is_none());
        assert!(parse("1000-2000 rw-p zz 00:00 0\n").is_none());
    }
}
