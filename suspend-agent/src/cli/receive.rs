//! `suspend-agent receive DIR`.

use std::{
    fs::File,
    io::{self, IsTerminal as _},
    path::PathBuf,
};

use super::Meter;
use crate::{
    exit,
    image::{sign::Keys, stream},
};

/// Make an image directory of a stream `send` wrote
///
/// The stream is read from stdin (never a terminal) or from FILE (-i) into
/// a new directory DIR, written as `suspend` writes an image: into a
/// partial directory next to it (mode 0700, files 0600), synced, and
/// renamed to DIR only once every byte arrived, the stream's end hash
/// matches and the image verifies as a resume would check it (every
/// record, the signature, every page run). A DIR that exists is refused
/// before anything is read (exit 1). A stream cut short, damaged, too long
/// or not as `send` writes it, or an image that does not verify, is
/// refused naming what was wrong, and nothing is left (exit 9):
///
///     suspend-agent send /var/lib/img/w1 | ssh other suspend-agent receive /var/lib/img/w1
///
/// The image must be signed by a key this machine trusts: run
/// `suspend-agent key show` on the machine that wrote it and
/// `suspend-agent key trust PUBLIC_KEY` here first (an image from an
/// untrusted key is refused as soon as its signature arrives, naming the
/// key). For a large image a progress line (MiB so far) goes to stderr
/// each second.
#[derive(clap::Args)]
pub struct Args {
    /// The image directory to create.
    pub dir: PathBuf,
    /// Read the stream from this file instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    super::require_root("reading the image keys")?;
    let trusted = Keys::system()?.trusted()?;
    // What a receive (or a suspend) killed before it finished left, as the
    // next daemon would remove it: a receive is often the only command
    // run on the machine that takes the image.
    for dir in crate::image::leftovers::remove() {
        eprintln!(
            "suspend-agent: removed {}, left by a receive or suspend that was killed",
            dir.display()
        );
    }
    let mut progress = Meter::new("received");
    let result = match &args.input {
        None => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                eprintln!(
                    "suspend-agent: not reading an image stream from a terminal: pipe one in \
                     (`suspend-agent send DIR | …`) or give -i FILE"
                );
                return Ok(exit::USAGE);
            }
            let mut input = io::BufReader::with_capacity(1 << 20, stdin.lock());
            stream::receive(&mut input, &args.dir, &trusted, &mut |p| progress.tell(p))
        }
        Some(path) => {
            let file =
                File::open(path).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
            let mut input = io::BufReader::with_capacity(1 << 20, file);
            stream::receive(&mut input, &args.dir, &trusted, &mut |p| progress.tell(p))
        }
    };
    match result {
        Ok(moved) => {
            eprintln!(
                "suspend-agent: received {} ({:.1} MiB, signed by key {}, verified)",
                moved.dir.display(),
                moved.bytes as f64 / 1048576.0,
                moved.signer
            );
            Ok(exit::OK)
        }
        Err(e @ stream::StreamError::Exists { .. }) => {
            eprintln!("suspend-agent: {e}");
            Ok(e.exit_code())
        }
        Err(e) => {
            eprintln!(
                "suspend-agent: {} not received, nothing was kept: {e}",
                args.dir.display()
            );
            Ok(e.exit_code())
        }
    }
}
