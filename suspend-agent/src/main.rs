//! `suspend-agent`: the root daemon and command-line tool of suspend.
//!
//! The daemon (`suspend-agent daemon`) loads the eBPF programs that keep the
//! registry of opted-in processes true, serves the client socket where
//! processes register and answer, and the control socket the other
//! subcommands use. Each subcommand lives in `cli/`.

mod btf;
mod cli;
mod control;
mod daemon;
mod dump;
mod exit;
mod freeze;
mod hold;
mod image;
mod layers;
mod mounts;
mod procfs;
mod registry;
mod restore;
mod state;
mod sys;
mod tasks;
mod tracee;
mod tracefs;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Opt-in suspension of running Linux processes.
///
/// A process opts in by linking the suspend client library (Rust or C) or by
/// being started with `suspend-agent run`. The agent daemon then lets root
/// ask it to suspend: the process is told first and answers ready, busy or
/// refuse. A process that did not opt in is never touched.
#[derive(Parser)]
#[command(name = "suspend-agent", version, after_help = exit::HELP, max_term_width = 100)]
struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Daemon(cli::daemon::Args),
    List(cli::list::Args),
    Suspend(cli::suspend::Args),
    Resume(cli::resume::Args),
    Inspect(cli::inspect::Args),
    Key(cli::key::Args),
    Send(cli::send::Args),
    Receive(cli::receive::Args),
    Check(cli::check::Args),
    Run(cli::run::Args),
    Unload(cli::unload::Args),
    #[command(hide = true)]
    Refill(cli::refill::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Daemon(_)) {
        // Like other command-line tools, end quietly when the reader of our
        // output goes away (`suspend-agent list | head`). The daemon keeps
        // Rust's default (SIGPIPE ignored): a client that hangs up must not
        // kill it.
        // Set before any thread exists.
        crate::sys::process::default_sigpipe();
    }
    // -v: our debug messages (aya's own stay at info); -vv: everything.
    let level = match cli.verbose {
        0 => "info",
        1 => "info,suspend_agent=debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_target(false)
        .init();
    let result = match cli.command {
        Command::Daemon(args) => cli::daemon::run(args),
        Command::List(args) => cli::list::run(args),
        Command::Suspend(args) => cli::suspend::run(args),
        Command::Resume(args) => cli::resume::run(args),
        Command::Inspect(args) => cli::inspect::run(args),
        Command::Key(args) => cli::key::run(args),
        Command::Send(args) => cli::send::run(args),
        Command::Receive(args) => cli::receive::run(args),
        Command::Check(args) => cli::check::run(args),
        Command::Run(args) => cli::run::run(args),
        Command::Unload(args) => cli::unload::run(args),
        Command::Refill(args) => cli::refill::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("suspend-agent: {}", chain(&e));
            let no_daemon = e
                .downcast_ref::<control::ControlError>()
                .is_some_and(|e| matches!(e, control::ControlError::NoDaemon(_)));
            ExitCode::from(if no_daemon {
                exit::NO_DAEMON
            } else {
                exit::ERROR
            })
        }
    }
}

/// The error and its causes, each said once: the errors of this crate
/// already name their source in their own message.
fn chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}
