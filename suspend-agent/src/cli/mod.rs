//! One file per subcommand. Each `run` returns the exit code.

use std::time::{Duration, Instant};

use crate::image::stream::Progress;

pub mod check;
pub mod daemon;
pub mod inspect;
pub mod key;
pub mod list;
pub mod receive;
pub mod refill;
pub mod resume;
pub mod run;
pub mod send;
pub mod suspend;
pub mod to;
pub mod unload;

/// Fails with a clear message unless running as root (`what` says why root
/// is needed).
pub fn require_root(what: &str) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("{what} needs root (run it with sudo)");
    }
    Ok(())
}

/// A new image directory's path in `parent` (made if missing: root's,
/// 0700, as the keys' directory beside it), named `NAME-SECONDS.NANOS`,
/// which the caller (or the command it calls) creates.
pub fn fresh_dir(parent: &std::path::Path, name: &str) -> anyhow::Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| anyhow::anyhow!("making {}: {e}", parent.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(parent.join(format!(
        "{name}-{}.{:09}",
        stamp.as_secs(),
        stamp.subsec_nanos()
    )))
}

/// Says on stderr how far a transfer is, at most once a second.
pub struct Meter {
    verb: &'static str,
    started: Instant,
    last: Instant,
}

impl Meter {
    pub fn new(verb: &'static str) -> Self {
        let now = Instant::now();
        Self {
            verb,
            started: now,
            last: now,
        }
    }

    pub fn tell(&mut self, p: Progress) {
        if self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        let mib = |b: u64| b as f64 / 1048576.0;
        let of = p
            .total
            .map_or(String::new(), |t| format!(" of {:.1}", mib(t)));
        eprintln!(
            "suspend-agent: {} {:.1}{of} MiB ({:.0} s)",
            self.verb,
            mib(p.done),
            self.started.elapsed().as_secs_f64()
        );
    }
}
