//! `suspend-agent refill PID` (hidden): serves a resumed held process's
//! memory from its image until every page is back. Started by `resume`
//! (and by the daemon, for a refill whose agent was killed); not meant to
//! be run by hand.

use crate::{
    exit,
    hold::{HeldRecord, refill},
    restore,
};

/// Serve a held process's memory while it runs (started by `resume`)
#[derive(clap::Args)]
pub struct Args {
    pid: u32,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    super::require_root("serving a process's memory")?;
    let pid = args.pid;
    let Some(record) = HeldRecord::find(pid)?.filter(|r| r.refill.is_some()) else {
        anyhow::bail!("pid {pid} is not being refilled");
    };
    let image = match restore::read_for_refill(&record.image) {
        Ok(image) => image,
        Err(e) => {
            refill::give_up(&record, &format!("its image can no longer be read: {e}"));
            return Ok(exit::BAD_IMAGE);
        }
    };
    match refill::serve(&image, &record) {
        Ok(Some(s)) => {
            log::info!(
                "pid {pid}: every page is back: {} pages ({:.1} MiB) served, {} faults, {} child(ren), in {:.3} s{}",
                s.pages,
                (s.pages * 4096) as f64 / (1 << 20) as f64,
                s.faults,
                s.children,
                s.took.as_secs_f64(),
                if s.recovered {
                    " (finishing another agent's refill)"
                } else {
                    ""
                }
            );
            Ok(exit::OK)
        }
        Ok(None) => {
            log::info!("pid {pid}: another agent serves its memory");
            Ok(exit::OK)
        }
        Err(e @ crate::hold::HoldError::Pages { .. }) => {
            log::error!("{e}");
            Ok(exit::BAD_IMAGE)
        }
        Err(e) => Err(e.into()),
    }
}
