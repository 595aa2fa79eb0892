//! Memory of its own that is not a `region`: the pattern every `check`
//! verifies, `--fill` (written memory held by idle threads, for the
//! benchmark), `mlock`, and `advise` / `advise-check` (advice the kernel
//! keeps with a mapping, and a name). Also how a size is written (`16M`).

/// A deterministic pattern the workload re-checks.
pub fn pattern(len: usize) -> Vec<u64> {
    (0..len as u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed)
        .collect()
}

/// `16M`, `1G`, `4096`: a size in bytes.
pub fn parse_size(text: &str) -> Option<usize> {
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let n: usize = number.parse().ok()?;
    Some(
        n * match unit {
            "" => 1,
            "K" | "k" => 1 << 10,
            "M" | "m" => 1 << 20,
            "G" | "g" => 1 << 30,
            _ => return None,
        },
    )
}

/// `bytes` of memory written with pseudo-random bytes (no page of it
/// compresses: the benchmark's figures are those of incompressible
/// memory), split among `threads` threads that each keep their share (and
/// stay idle).
pub fn fill_memory(bytes: usize, threads: usize) -> Vec<std::thread::JoinHandle<()>> {
    let share = bytes / threads.max(1);
    let ready = std::sync::Arc::new(std::sync::Barrier::new(threads.max(1) + 1));
    let handles = (0..threads.max(1))
        .map(|t| {
            let ready = ready.clone();
            std::thread::spawn(move || {
                let mut memory = vec![0u8; share];
                // xorshift64, seeded per thread.
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                for word in memory.as_chunks_mut::<8>().0 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *word = x.to_ne_bytes();
                }
                ready.wait();
                loop {
                    std::thread::park();
                    std::hint::black_box(&memory);
                }
            })
        })
        .collect();
    ready.wait();
    handles
}

/// `mlock`: a page of its own locked (leaked: it stays); the answer line.
pub fn mlock() -> String {
    let page = Box::leak(Box::new([1u8; 4096]));
    // SAFETY: locking memory we own (leaked: it stays).
    let rc = unsafe { libc::mlock(page.as_ptr().cast(), 4096) };
    format!("mlock rc={rc}")
}

/// The mappings `advise` made: each one's start and what `/proc/self/smaps`
/// must show for it (a `VmFlags` flag, or the name ending its first line).
#[derive(Default)]
pub struct Advised(Vec<(usize, &'static str)>);

impl Advised {
    /// One small anonymous mapping per advice the kernel keeps with a
    /// mapping (DONTFORK, WIPEONFORK, DONTDUMP, NOHUGEPAGE), and one named
    /// (`PR_SET_VMA_ANON_NAME`): `ok`, or `unsupported=…` naming those the
    /// kernel refused.
    pub fn advise(&mut self) -> String {
        let map = || {
            // SAFETY: a fresh private anonymous mapping of our own.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4 * 4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                ) as usize
            }
        };
        let mut failed = Vec::new();
        for (advice, flag) in [
            (libc::MADV_DONTFORK, "dc"),
            (libc::MADV_WIPEONFORK, "wf"),
            (libc::MADV_DONTDUMP, "dd"),
            (libc::MADV_NOHUGEPAGE, "nh"),
        ] {
            let at = map();
            // SAFETY: advice on our own mapping.
            if unsafe { libc::madvise(at as *mut libc::c_void, 4 * 4096, advice) } != 0 {
                failed.push(flag);
            }
            self.0.push((at, flag));
        }
        let at = map();
        // SAFETY: naming our own mapping with a NUL-terminated name.
        let rc = unsafe {
            libc::prctl(
                0x5356_4d41,
                0 as libc::c_ulong,
                at as libc::c_ulong,
                (4 * 4096) as libc::c_ulong,
                c"workload-named".as_ptr(),
            )
        };
        if rc == 0 {
            self.0.push((at, "[anon:workload-named]"));
        } else {
            failed.push("name");
        }
        if failed.is_empty() {
            "ok".to_owned()
        } else {
            format!("unsupported={}", failed.join(","))
        }
    }

    /// `/proc/self/smaps` still shows each advice and the name: `ok`, or
    /// `FAIL lost=…` naming those it does not. Read up to three times:
    /// `smaps` is read in pieces, and a mapping another thread makes
    /// meanwhile can make one read skip a mapping.
    pub fn check(&self) -> String {
        let mut verdict = String::new();
        for _ in 0..3 {
            verdict = self.check_once();
            if verdict == "ok" {
                break;
            }
        }
        verdict
    }

    fn check_once(&self) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        let mut wrong = Vec::new();
        for &(at, want) in &self.0 {
            let head = format!("{at:x}-");
            let block: Vec<&str> = smaps
                .lines()
                .skip_while(|l| !l.starts_with(&head))
                .take_while(|l| {
                    l.starts_with(&head) || !l.contains('-') || l.starts_with("VmFlags")
                })
                .collect();
            let ok = if want.starts_with('[') {
                block.first().is_some_and(|l| l.ends_with(want))
            } else {
                block
                    .iter()
                    .any(|l| l.starts_with("VmFlags:") && l.split_whitespace().any(|f| f == want))
            };
            if !ok {
                wrong.push(format!("{at:#x}:{want}"));
            }
        }
        if wrong.is_empty() {
            "ok".to_owned()
        } else {
            format!("FAIL lost={}", wrong.join(","))
        }
    }
}
