//! `region SIZE` and the commands that touch it after a resume (`region-read`,
//! `region-fork`, `region-remap`, `region-discard`, `region-check`): memory
//! of its own whose first touch a lazy refill must serve exactly.

/// An anonymous mapping of its own, every page written with a pattern
/// (`region SIZE`); after a resume its commands touch it for the first
/// time in ways a lazy refill must serve exactly: a `read(2)` into it (a
/// fault taken inside the kernel), a child checking it, `mremap`, and
/// `MADV_DONTNEED` (the discarded half must stay zero).
pub struct Region {
    ptr: *mut u8,
    len: usize,
    /// Bytes from here on were discarded (read as zero).
    discarded_from: usize,
}

fn region_byte(page: usize, at: usize) -> u8 {
    ((page.wrapping_mul(2_654_435_761) >> 5) as u8) ^ (at as u8) ^ 0x5a
}

impl Region {
    pub fn new(len: usize) -> Self {
        // SAFETY: a fresh private anonymous mapping of our own.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap");
        let r = Self {
            ptr: ptr.cast(),
            len,
            discarded_from: len,
        };
        for (i, b) in r.bytes_mut().iter_mut().enumerate() {
            *b = region_byte(i / 4096, i % 4096);
        }
        r
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: our mapping of `len` bytes, alive while we are.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    #[allow(clippy::mut_from_ref)]
    fn bytes_mut(&self) -> &mut [u8] {
        // SAFETY: as above; the workload is the only writer.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    pub fn check(&self) -> Result<(), String> {
        for (i, &b) in self.bytes().iter().enumerate() {
            let want = if i >= self.discarded_from {
                0
            } else {
                region_byte(i / 4096, i % 4096)
            };
            if b != want {
                return Err(format!("FAIL byte {i:#x} is {b:#x}, not {want:#x}"));
            }
        }
        Ok(())
    }

    /// `read(2)` from a pipe into the middle of a page not touched since
    /// the resume; the rest of that page must be as it was.
    pub fn read_into(&mut self) -> String {
        let mut fds = [0; 2];
        let data: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(3) | 0x80).collect();
        let page = self.len / 4096 / 2 + 1;
        let at = page * 4096 + 1000;
        // SAFETY: a pipe of our own; the read lands inside our mapping.
        let got = unsafe {
            libc::pipe(fds.as_mut_ptr());
            libc::write(fds[1], data.as_ptr().cast(), data.len());
            let got = libc::read(fds[0], self.ptr.add(at).cast(), data.len());
            libc::close(fds[0]);
            libc::close(fds[1]);
            got
        };
        if got != data.len() as isize {
            return format!(
                "FAIL read returned {got}: {}",
                std::io::Error::last_os_error()
            );
        }
        let bytes = self.bytes_mut();
        if bytes[at..at + data.len()] != data[..] {
            return "FAIL the bytes read are not those written".into();
        }
        for (j, b) in bytes[page * 4096..(page + 1) * 4096].iter_mut().enumerate() {
            let i = page * 4096 + j;
            if !(at..at + data.len()).contains(&i) && *b != region_byte(page, j) {
                return format!("FAIL byte {j} of the page read into is {b:#x}");
            }
            *b = region_byte(page, j);
        }
        "ok".into()
    }

    /// A child checks every byte and exits with the verdict.
    pub fn fork_check(&self) -> String {
        // SAFETY: the child only reads memory and exits.
        match unsafe { libc::fork() } {
            // SAFETY: _exit in the child.
            0 => unsafe { libc::_exit(if self.check().is_ok() { 0 } else { 1 }) },
            -1 => "FAIL fork".into(),
            child => {
                let mut status = 0;
                // SAFETY: waiting for our child.
                unsafe { libc::waitpid(child, &mut status, 0) };
                if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                    "ok".into()
                } else {
                    format!("FAIL the child saw its memory differ (status {status:#x})")
                }
            }
        }
    }

    /// Moves the whole mapping elsewhere (`mremap`), untouched.
    pub fn remap(&mut self) -> String {
        // SAFETY: a reservation, then our mapping moved onto it.
        let moved = unsafe {
            let to = libc::mmap(
                std::ptr::null_mut(),
                self.len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            libc::mremap(
                self.ptr.cast(),
                self.len,
                self.len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                to,
            )
        };
        if moved == libc::MAP_FAILED {
            return format!("FAIL mremap: {}", std::io::Error::last_os_error());
        }
        self.ptr = moved.cast();
        "ok".into()
    }

    /// Discards its second half (`MADV_DONTNEED`): it reads as zeros after.
    pub fn discard(&mut self) -> String {
        let half = self.len / 2 / 4096 * 4096;
        // SAFETY: discarding part of our own mapping.
        let rc = unsafe {
            libc::madvise(
                self.ptr.add(half).cast(),
                self.len - half,
                libc::MADV_DONTNEED,
            )
        };
        if rc != 0 {
            return format!("FAIL madvise: {}", std::io::Error::last_os_error());
        }
        self.discarded_from = half;
        "ok".into()
    }
}
