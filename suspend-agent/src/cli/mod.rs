//! One file per subcommand. Each `run` returns the exit code.

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
pub mod unload;

/// Fails with a clear message unless running as root (`what` says why root
/// is needed).
pub fn require_root(what: &str) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("{what} needs root (run it with sudo)");
    }
    Ok(())
}
