//! `--layout`: memory of a shape the dump tests know (see [`set_up`]), the
//! signal state of [`crate::signals::set_up_signals`], and two idle
//! threads; `check` verifies the private file mapping after a resume (its
//! unwritten pages must still read as the file it mapped).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Where `--layout` mapped its file (0: not mapped).
static LAYOUT_FILE_MAP: AtomicUsize = AtomicUsize::new(0);

/// Memory the dump tests know the shape of: an anonymous region with 10 of
/// its 64 pages written, a 1 GiB reservation with 3 pages written, a page
/// written then made `PROT_NONE`, and a private file mapping with one of
/// its 4 pages written. Page `i` of region `r` holds the byte
/// `layout_byte(r, i)` throughout. Also two idle threads. Returns the
/// `layout …` line the tests parse.
pub fn set_up() -> String {
    // Each region between two read-only guard pages, so the kernel never
    // merges it with a neighbour and it stays one mapping of its own.
    fn map(len: usize, prot: i32, flags: i32, fd: i32) -> *mut u8 {
        let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        // SAFETY: fresh mappings; no existing memory is affected.
        unsafe {
            let area = libc::mmap(
                std::ptr::null_mut(),
                len + 8192,
                libc::PROT_READ,
                anon,
                -1,
                0,
            );
            assert_ne!(area, libc::MAP_FAILED, "mmap");
            let at = area.cast::<u8>().add(4096).cast();
            let p = libc::mmap(at, len, prot, flags | libc::MAP_FIXED, fd, 0);
            assert_ne!(p, libc::MAP_FAILED, "mmap");
            // Written pages only: a transparent huge page would make 512
            // pages exist for one written (kernels with THP "always").
            libc::madvise(p, len, libc::MADV_NOHUGEPAGE);
            p.cast()
        }
    }
    let fill = |base: *mut u8, region: u8, page: usize| {
        // SAFETY: `page` is inside the mapping `base` starts.
        unsafe { std::ptr::write_bytes(base.add(page * 4096), layout_byte(region, page), 4096) };
    };
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let a = map(64 * 4096, rw, anon, -1);
    for page in 0..10 {
        fill(a, 1, page);
    }
    let b = map(1 << 30, rw, anon | libc::MAP_NORESERVE, -1);
    for page in [0, 1000, 200_000] {
        fill(b, 2, page);
    }
    let c = map(4096, rw, anon, -1);
    fill(c, 3, 0);
    // SAFETY: changing the protection of our own page.
    unsafe { libc::mprotect(c.cast(), 4096, libc::PROT_NONE) };
    let path = std::env::temp_dir().join(format!("suspend-layout-{}", std::process::id()));
    std::fs::write(&path, vec![0x11u8; 4 * 4096]).expect("layout file");
    let file = std::fs::File::open(&path).expect("layout file");
    use std::os::fd::AsRawFd as _;
    let d = map(4 * 4096, rw, libc::MAP_PRIVATE, file.as_raw_fd());
    drop(file); // the mapping keeps it; no fd stays open
    fill(d, 4, 1);
    LAYOUT_FILE_MAP.store(d as usize, Ordering::SeqCst);
    // Both threads are up (stacks, signal stacks) before the line is out.
    let started = std::sync::Arc::new(std::sync::Barrier::new(3));
    for _ in 0..2 {
        let started = started.clone();
        std::thread::spawn(move || {
            started.wait();
            loop {
                std::thread::park();
            }
        });
    }
    started.wait();
    let (usr1, altstack, brk) = crate::signals::set_up_signals();
    format!(
        "layout usr1={usr1:#x} altstack={altstack:#x} brk={brk:#x} a={:#x} b={:#x} c={:#x} d={:#x} file={}",
        a as usize,
        b as usize,
        c as usize,
        d as usize,
        path.display()
    )
}

/// The `--layout` file mapping: page 1 as written, the others as the file
/// holds them (0x11).
pub fn verify_file() -> Result<(), String> {
    let at = LAYOUT_FILE_MAP.load(Ordering::SeqCst);
    if at == 0 {
        return Ok(());
    }
    for page in 0..4 {
        let want = if page == 1 { layout_byte(4, 1) } else { 0x11 };
        // SAFETY: the layout's file mapping is 4 pages, readable, and
        // never unmapped.
        let bytes = unsafe { std::slice::from_raw_parts((at + page * 4096) as *const u8, 4096) };
        if bytes.iter().any(|&b| b != want) {
            return Err(format!("layout file mapping page {page} changed"));
        }
    }
    Ok(())
}

/// The byte page `page` of layout region `region` is filled with.
fn layout_byte(region: u8, page: usize) -> u8 {
    region.wrapping_mul(31).wrapping_add((page % 251) as u8) | 1
}
