//! Every record of an image within what a process can have: mapping
//! ranges, threads, files, pipes, queued signals, scheduling, seccomp
//! filters. Checked by [`Image::read`] after the signature, before anything
//! is acted on; a record out of range is a refused image, never a panic
//! or a huge allocation later.

use super::{
    format::{INOTIFY_MAX_WD, META_FILE, Mapping, MappingKind, PAGE_SIZE, UNLINKED_MAX_LIMIT},
    reader::{Image, ReadError},
};

/// The most fds a process can have (`fs.nr_open`'s ceiling).
const MAX_FD: i32 = 1 << 30;
/// The most bytes a pipe can hold (far above `fs.pipe-max-size`'s default).
const MAX_PIPE_BYTES: u32 = 1 << 28;
/// Highest pid the kernel hands out (`PID_MAX_LIMIT` on 64-bit).
const PID_MAX_LIMIT: u32 = 1 << 22;
/// The largest xstate area an x86-64 CPU saves (AMX included), rounded up.
const MAX_XSTATE: u64 = 16 << 10;
/// Instructions a classic BPF program may have (`BPF_MAXINSNS`).
const MAX_SECCOMP_INSNS: usize = 4096;
/// Seccomp filters one thread may carry (the kernel's limit is on their
/// total length, 32768 instructions with overhead: far fewer than this).
const MAX_SECCOMP_FILTERS: usize = 1024;
/// Signals whose default action stops the process: queued in an image, a
/// resume would stop there and never report.
const STOP_SIGNALS: [i32; 4] = [libc::SIGSTOP, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];

impl Image {
    /// Every mapping page-aligned, in the user address space, apart from
    /// the others; saved pages only where a restore reads them into
    /// private memory or a memfd — never into a file.
    pub(super) fn check_mappings(&self) -> Result<(), ReadError> {
        let path = self.dir.join(META_FILE);
        let mut previous_end = 0;
        let mut sorted: Vec<&Mapping> = self.mappings.iter().collect();
        sorted.sort_by_key(|m| m.start);
        for m in sorted {
            let bad = |reason: &str| ReadError::BadMapping {
                path: path.clone(),
                start: m.start,
                reason: reason.into(),
            };
            if m.start % PAGE_SIZE != 0 || m.end % PAGE_SIZE != 0 || m.start >= m.end {
                return Err(bad("not a page-aligned range"));
            }
            if m.end > 0xffff_ffff_ffff_f000 || (m.kind != MappingKind::Kernel && m.end > 1 << 47) {
                return Err(bad("outside the user address space"));
            }
            if m.start < previous_end {
                return Err(bad("overlaps another mapping"));
            }
            previous_end = m.end;
            if !m.pages.is_empty()
                && matches!(m.kind, MappingKind::SharedFile | MappingKind::Kernel)
            {
                return Err(bad(
                    "saved pages for a shared file or kernel mapping (a restore never writes a file)",
                ));
            }
        }
        Ok(())
    }

    /// Threads, files and signals within what a process can have: tids
    /// distinct and in range, the process's own among them, fds in range
    /// and distinct, pipe contents within their pipe's size, every queued
    /// signal a whole `siginfo_t`, and none that would stop the process
    /// (its action the default) — a resume would wait for it forever.
    pub(super) fn check_records(&self) -> Result<(), ReadError> {
        let bad = |what: String| ReadError::BadRecord {
            path: self.dir.join(META_FILE),
            what,
        };
        let mut tids: Vec<u32> = self.threads.iter().map(|t| t.tid).collect();
        tids.sort_unstable();
        tids.dedup();
        if tids.len() != self.threads.len() {
            return Err(bad("a thread id appears twice".into()));
        }
        if let Some(t) = tids.iter().find(|&&t| t == 0 || t >= PID_MAX_LIMIT) {
            return Err(bad(format!("thread id {t} is out of range")));
        }
        if !self.threads.is_empty() && !tids.contains(&self.process.pid) {
            return Err(bad(format!(
                "no thread has the process's pid {}",
                self.process.pid
            )));
        }
        let mut fds: Vec<i32> = self.files.iter().map(|f| f.fd).collect();
        fds.sort_unstable();
        fds.dedup();
        if fds.len() != self.files.len() {
            return Err(bad("a file descriptor appears twice".into()));
        }
        if let Some(fd) = fds.iter().find(|&&fd| !(0..MAX_FD).contains(&fd)) {
            return Err(bad(format!("fd {fd} is out of range")));
        }
        for t in &self.threads {
            use base64::Engine as _;
            let xstate = base64::engine::general_purpose::STANDARD
                .decode(&t.xstate)
                .map_err(|e| bad(format!("thread {}: xstate is not base64: {e}", t.tid)))?;
            if xstate.len() as u64 > self.header.cpu.xstate_size.max(MAX_XSTATE) {
                return Err(bad(format!(
                    "thread {}: {} bytes of xstate",
                    t.tid,
                    xstate.len()
                )));
            }
        }
        for f in &self.files {
            // Watches numbered as the kernel numbers them (from 1; a
            // resume makes every number below the highest), each once.
            if let Some(watches) = &f.inotify {
                let mut wds: Vec<i32> = watches.iter().map(|w| w.wd).collect();
                wds.sort_unstable();
                wds.dedup();
                if wds.len() != watches.len()
                    || wds.first().is_some_and(|&wd| wd < 1)
                    || wds.last().is_some_and(|&wd| wd > INOTIFY_MAX_WD)
                {
                    return Err(bad(format!("fd {}: inotify watch numbers {wds:?}", f.fd)));
                }
            }
            // A deleted file's other opens name an fd of the image that
            // carries its bytes; the carrier's bytes are its size.
            if let Some(u) = &f.unlinked {
                match u.same_as {
                    Some(of) => {
                        // Images before the dups named the carrier: a dup
                        // of a second open names that open. At most two
                        // steps, then the carrier.
                        let unlinked = |fd: i32| {
                            self.files
                                .iter()
                                .find(|g| g.fd == fd)
                                .and_then(|g| g.unlinked.as_ref())
                        };
                        let carrier = unlinked(of).and_then(|u| match u.same_as {
                            None => Some(of),
                            Some(next) if next != of && next != f.fd => {
                                unlinked(next).filter(|n| n.same_as.is_none()).map(|_| next)
                            }
                            Some(_) => None,
                        });
                        if of == f.fd || carrier.is_none() {
                            return Err(bad(format!(
                                "fd {}: the same deleted file as fd {of}, which does not carry it",
                                f.fd
                            )));
                        }
                    }
                    None => {
                        let bytes = u.data.len() as u64 / 4 * 3;
                        if u.size > UNLINKED_MAX_LIMIT || bytes > u.size + 2 {
                            return Err(bad(format!(
                                "fd {}: a deleted file of {} bytes holding about {bytes}",
                                f.fd, u.size
                            )));
                        }
                    }
                }
            }
            if let Some(pipe) = &f.pipe {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(&pipe.data)
                    .map_err(|e| bad(format!("fd {}: pipe contents not base64: {e}", f.fd)))?;
                let bytes = pipe.data.len() / 4 * 3;
                if pipe.size > MAX_PIPE_BYTES || bytes > pipe.size as usize + 2 {
                    return Err(bad(format!(
                        "fd {}: a pipe of {} bytes holding about {bytes}",
                        f.fd, pipe.size
                    )));
                }
            }
        }
        for t in &self.threads {
            if let Some(s) = &t.sched
                && (![0, 1, 2, 3, 5, 6].contains(&s.policy)
                    || !(-20..=19).contains(&s.nice)
                    || s.priority > 99
                    || s.affinity.is_empty()
                    || s.affinity.len() > 1 << 14)
            {
                return Err(bad(format!("thread {}: scheduling {s:?}", t.tid)));
            }
            if t.seccomp.len() > MAX_SECCOMP_FILTERS {
                return Err(bad(format!(
                    "thread {}: {} seccomp filters",
                    t.tid,
                    t.seccomp.len()
                )));
            }
            for f in &t.seccomp {
                use base64::Engine as _;
                let len = base64::engine::general_purpose::STANDARD
                    .decode(&f.program)
                    .map(|p| p.len())
                    .unwrap_or(0);
                if len == 0 || len % 8 != 0 || len / 8 > MAX_SECCOMP_INSNS {
                    return Err(bad(format!(
                        "thread {}: a seccomp filter of {len} bytes",
                        t.tid
                    )));
                }
            }
        }
        let default_action = |signal: i32| {
            self.process
                .sigactions
                .iter()
                .find(|a| a.signal == signal as u32)
                .is_none_or(|a| a.handler == 0)
        };
        let queued = self
            .threads
            .iter()
            .flat_map(|t| &t.pending)
            .chain(&self.process.shared_pending);
        for info in queued {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(info)
                .map_err(|e| bad(format!("a pending signal is not base64: {e}")))?;
            let Some(signal) = raw
                .get(..4)
                .map(|b| i32::from_ne_bytes(b.try_into().unwrap_or_default()))
            else {
                return Err(bad("a pending signal's siginfo is cut short".into()));
            };
            if raw.len() != 128 || !(1..=64).contains(&signal) {
                return Err(bad(format!(
                    "a pending signal ({signal}, {} bytes of siginfo) is not one",
                    raw.len()
                )));
            }
            if STOP_SIGNALS.contains(&signal) && (signal == libc::SIGSTOP || default_action(signal))
            {
                return Err(bad(format!(
                    "signal {signal} is queued with its default action: the process would stop \
                     as it resumed"
                )));
            }
        }
        for t in &self.threads {
            if let Some(signal) = t.stopped_with
                && STOP_SIGNALS.contains(&signal)
                && (signal == libc::SIGSTOP || default_action(signal))
            {
                return Err(bad(format!(
                    "thread {} was stopping for signal {signal}",
                    t.tid
                )));
            }
        }
        Ok(())
    }
}
