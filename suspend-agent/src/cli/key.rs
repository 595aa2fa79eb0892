//! `suspend-agent key`.

use crate::{
    exit,
    image::sign::{self, KEY_DIR, Keys},
};

/// This machine's image signing key, and the keys of machines it trusts
///
/// Every image is signed with this machine's Ed25519 key (made at the
/// daemon's first start, kept in /var/lib/suspend, root only); `resume`
/// and `inspect` refuse an image that a trusted key did not sign, or that
/// was changed after. To resume here an image made on another machine, run
/// `suspend-agent key show` there and `suspend-agent key trust PUBLIC_KEY`
/// here.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Print this machine's key id and public key (what `trust` takes elsewhere).
    Show,
    /// Print every trusted key: this machine's and the ones added.
    List,
    /// Trust images signed by another machine's key (its public key, 64 hex digits).
    Trust { public_key: String },
    /// Stop trusting a key added with `trust` (by its id).
    Untrust { id: String },
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    super::require_root("reading the image keys")?;
    let keys = Keys::system()?;
    match args.action {
        Action::Show => {
            let key = keys.signing()?.verifying_key();
            println!("id          {}", sign::key_id(&key));
            println!("public key  {}", sign::public_hex(&key));
            println!("kept in     {KEY_DIR}");
        }
        Action::List => {
            let own = keys.signing()?.verifying_key();
            for key in keys.trusted()? {
                let whose = if key == own {
                    "this machine"
                } else {
                    "trusted"
                };
                println!(
                    "{}  {}  {whose}",
                    sign::key_id(&key),
                    sign::public_hex(&key)
                );
            }
        }
        Action::Trust { public_key } => {
            let id = keys.trust(&public_key)?;
            println!("trusting images signed by key {id}");
        }
        Action::Untrust { id } => {
            if !keys.untrust(&id)? {
                eprintln!(
                    "suspend-agent: key {id} was not trusted (`key list` shows the trusted keys)"
                );
                return Ok(exit::ERROR);
            }
            println!("no longer trusting key {id}");
        }
    }
    Ok(exit::OK)
}
