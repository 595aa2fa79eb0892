//! `shared` / `shared-check`: shared memory a held process keeps, and its
//! private view of it: a memfd mapped shared and privately (half the
//! private pages written) and an unlinked `/dev/shm` file mapped shared;
//! the check reads every byte after a resume.

/// Shared memory a held process keeps (never released: others may use it)
/// and its private view: a memfd mapped shared and privately (half its
/// pages then written: copies of its own), and a `/dev/shm` file (as
/// `sem_open` makes) mapped shared and unlinked.
pub struct Shared {
    memfd_shared: *mut u8,
    memfd_private: *mut u8,
    shm: *mut u8,
}

const SHARED_LEN: usize = 64 * 4096;

impl Shared {
    pub fn new() -> Option<Self> {
        let map = |fd: i32, flags: i32| {
            // SAFETY: a fresh mapping of a descriptor we own.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    SHARED_LEN,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags,
                    fd,
                    0,
                )
            };
            (p != libc::MAP_FAILED).then_some(p.cast::<u8>())
        };
        // SAFETY: memfd_create/open/ftruncate/unlink with valid C strings.
        unsafe {
            let memfd = libc::memfd_create(c"workload-memfd".as_ptr(), 0);
            let path =
                std::ffi::CString::new(format!("/dev/shm/workload-shm-{}", std::process::id()))
                    .ok()?;
            let shm = libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
                0o600,
            );
            if memfd < 0 || shm < 0 {
                return None;
            }
            if libc::ftruncate(memfd, SHARED_LEN as i64) != 0
                || libc::ftruncate(shm, SHARED_LEN as i64) != 0
            {
                return None;
            }
            let s = Self {
                memfd_shared: map(memfd, libc::MAP_SHARED)?,
                memfd_private: map(memfd, libc::MAP_PRIVATE)?,
                shm: map(shm, libc::MAP_SHARED)?,
            };
            libc::unlink(path.as_ptr());
            libc::close(shm);
            libc::close(memfd);
            for i in 0..SHARED_LEN {
                *s.memfd_shared.add(i) = (i / 4096) as u8 ^ 0x11;
                *s.shm.add(i) = (i / 4096) as u8 ^ 0x22;
            }
            for i in (0..SHARED_LEN).filter(|i| (i / 4096).is_multiple_of(2)) {
                *s.memfd_private.add(i) = (i / 4096) as u8 ^ 0x33;
            }
            Some(s)
        }
    }

    pub fn check(&self) -> String {
        for i in 0..SHARED_LEN {
            let page = (i / 4096) as u8;
            // SAFETY: our mappings of SHARED_LEN bytes each.
            let (a, b, c) = unsafe {
                (
                    *self.memfd_shared.add(i),
                    *self.memfd_private.add(i),
                    *self.shm.add(i),
                )
            };
            let private = if page.is_multiple_of(2) {
                page ^ 0x33
            } else {
                page ^ 0x11
            };
            if a != page ^ 0x11 || b != private || c != page ^ 0x22 {
                return format!(
                    "FAIL byte {i:#x}: memfd {a:#x}, its private copy {b:#x}, shm {c:#x}"
                );
            }
        }
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        if !maps
            .lines()
            .any(|l| l.contains("/dev/shm/workload-shm-") && l.ends_with("(deleted)"))
        {
            return "FAIL the unlinked /dev/shm file is no longer mapped".into();
        }
        "ok".into()
    }
}
