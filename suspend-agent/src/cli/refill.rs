//! `suspend-agent refill PID` (hidden): serves a resumed held process's
//! memory from its image until every page is back. Started by `resume`
//! (and by the daemon, for a refill whose agent was killed); not meant to
//! be run by hand.

use crate::{
    exit,
    hold::{HeldRecord, HoldError, refill},
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
            return Ok(e.exit_code());
        }
    };
    outcome(pid, refill::serve(&image, &record))
}

/// The exit code of a refill that served (or failed with) `served`.
fn outcome(pid: u32, served: Result<Option<refill::Served>, HoldError>) -> anyhow::Result<u8> {
    match served {
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
        Err(e) => match e.exit_code() {
            // Said with its causes by `main`, as every other error is.
            exit::ERROR => Err(e.into()),
            // Not as held (9), or what a held process cannot keep (8).
            code => {
                log::error!("{e}");
                Ok(code)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_refill_exits_with_its_errors_code() {
        let not_held = HoldError::NotHeld {
            pid: 7,
            why: "its threads are [7, 9], the image's [7, 8]".into(),
        };
        let pages = HoldError::Pages {
            pid: 7,
            what: "run 3 of 0x7f0000000000: hash mismatch".into(),
        };
        let io = HoldError::Io {
            pid: 7,
            what: "reading pages.img".into(),
            source: std::io::Error::from_raw_os_error(libc::EIO),
        };
        assert_eq!(outcome(7, Err(not_held)).ok(), Some(exit::BAD_IMAGE));
        assert_eq!(outcome(7, Err(pages)).ok(), Some(exit::BAD_IMAGE));
        // The rest is said with its causes by `main`, exit 1.
        assert!(outcome(7, Err(io)).is_err());
        assert_eq!(outcome(7, Ok(None)).ok(), Some(exit::OK));
    }
}
