//! `suspend-agent daemon`.

use crate::{daemon, exit};

/// Run the agent daemon (root)
///
/// Loads the eBPF programs, pins their maps and links under
/// /sys/fs/bpf/suspend/, and serves /run/suspend/client.sock (clients) and
/// /run/suspend/control.sock (this CLI, root only).
///
/// Runs in the foreground and logs to stderr; stop it with SIGTERM or
/// Ctrl-C. Registrations survive a restart: the maps and programs stay
/// pinned, and processes that registered while no daemon ran are picked up
/// when it starts. dist/suspend-agent.service is a systemd unit for it.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(Args {}: Args) -> anyhow::Result<u8> {
    daemon::run()?;
    Ok(exit::OK)
}
