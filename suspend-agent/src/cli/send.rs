//! `suspend-agent send DIR`.

use std::{
    fs::{self, OpenOptions},
    io::{self, IsTerminal as _},
    os::unix::fs::OpenOptionsExt as _,
    path::PathBuf,
};

use crate::{
    exit,
    image::{sign::Keys, stream},
};

/// Write an image as one byte stream, to move it to another machine
///
/// The image is checked first as a resume would check it (every record,
/// its signature by this machine's key or one it trusts, every page run):
/// an image that does not verify is refused before a byte is written (exit
/// 9). The stream (the image's three files, framed, and a BLAKE3 hash of
/// it all at the end) goes to stdout, never to a terminal, or to FILE
/// (-o, created 0600). `receive` makes an image directory of it again:
///
///     suspend-agent send /var/lib/img/w1 | ssh other suspend-agent receive /var/lib/img/w1
///
/// The other machine must trust this machine's key first: `suspend-agent
/// key show` here, `suspend-agent key trust PUBLIC_KEY` there. A resume
/// there needs a kernel whose vDSO can stand in for the image's, a CPU
/// with the image's features and every file the process had open or
/// mapped equal on both.
/// For a large image a progress line (MiB so far) goes to stderr each
/// second.
#[derive(clap::Args)]
pub struct Args {
    /// The image directory.
    dir: PathBuf,
    /// Write the stream to this file (created; it must not exist) instead
    /// of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    super::require_root("reading the image keys")?;
    let trusted = Keys::system()?.trusted()?;
    let mut progress = super::Meter::new("sent");
    let result = match &args.output {
        None => {
            let stdout = io::stdout();
            if stdout.is_terminal() {
                eprintln!(
                    "suspend-agent: not writing an image stream to a terminal: pipe it (`| ssh \
                     HOST suspend-agent receive DIR`) or give -o FILE"
                );
                return Ok(exit::USAGE);
            }
            let mut out = io::BufWriter::with_capacity(1 << 20, stdout.lock());
            stream::send(&args.dir, &mut out, &trusted, &mut |p| progress.tell(p))
        }
        Some(path) => {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
            let mut out = io::BufWriter::with_capacity(1 << 20, file);
            let sent = stream::send(&args.dir, &mut out, &trusted, &mut |p| progress.tell(p))
                .and_then(|moved| {
                    let file = out
                        .into_inner()
                        .map_err(|e| stream::StreamError::Write(e.into_error()))?;
                    file.sync_all().map_err(stream::StreamError::Write)?;
                    Ok(moved)
                });
            if sent.is_err() {
                let _ = fs::remove_file(path);
            }
            sent
        }
    };
    match result {
        Ok(moved) => {
            eprintln!(
                "suspend-agent: sent {} ({:.1} MiB, signed by key {})",
                moved.dir.display(),
                moved.bytes as f64 / 1048576.0,
                moved.signer
            );
            Ok(exit::OK)
        }
        Err(e) => {
            eprintln!("suspend-agent: {} not sent: {e}", args.dir.display());
            Ok(e.exit_code())
        }
    }
}
