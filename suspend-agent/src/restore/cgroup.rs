//! The cgroups' check, named as the restore refuses an image: what
//! [`state::cgroup::targets`](crate::state::cgroup::targets) finds in the
//! way, as a [`Refusal`]. (The kind — saved, checked, joined — is
//! `state/cgroup.rs`.)

use std::path::PathBuf;

use super::validate::Refusal;
pub use crate::state::cgroup::join;
use crate::{image::Image, state::cgroup::Conflict};

/// The `cgroup.procs` files the process must be written into: one per
/// hierarchy where its cgroup is not the resume command's.
pub fn targets(image: &Image) -> Result<Vec<PathBuf>, Refusal> {
    crate::state::cgroup::targets(image).map_err(|conflict| match conflict {
        Conflict::KernelLacks { what, why } => Refusal::KernelLacks { what, why },
        Conflict::CgroupFull {
            cgroup,
            dir,
            current,
            max,
            tasks,
        } => Refusal::CgroupFull {
            cgroup,
            dir,
            current,
            max,
            tasks,
        },
    })
}
