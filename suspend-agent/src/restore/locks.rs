//! The file locks' check, named as the restore refuses an image: what
//! [`state::locks::check`](crate::state::locks::check) finds in the way,
//! as a [`Refusal`]. (The kind — saved, checked, taken again — is
//! `state/locks.rs`.)

use super::validate::Refusal;
use crate::{image::Image, state::locks::Conflict};

/// Refuses an image whose locks another process holds now, or whose files
/// changed while the process was away without them.
pub fn check(image: &Image) -> Result<(), Refusal> {
    crate::state::locks::check(image).map_err(|conflict| match conflict {
        Conflict::FileChanged { what, path, how } => Refusal::FileChanged { what, path, how },
        Conflict::FileLeased { what, pid, whose } => Refusal::FileLeased { what, pid, whose },
        Conflict::LockTaken { what, holder } => Refusal::LockTaken { what, holder },
        Conflict::LeaseRefused { what, why } => Refusal::LeaseRefused { what, why },
    })
}
