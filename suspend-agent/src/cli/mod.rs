//! One file per subcommand. Each `run` returns the exit code.

pub mod check;
pub mod daemon;
pub mod list;
pub mod run;
pub mod suspend;
pub mod unload;
