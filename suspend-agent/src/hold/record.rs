//! The record of a held process: `/run/suspend/held/PID.json` (root's, 0600,
//! in a 0700 directory), written before its threads are parked and removed
//! once it runs again. It is how `resume`, `list` and the next daemon know
//! a process is held and where its image is; `/run` is emptied at boot, as
//! held processes are.

use std::{
    fs,
    io::{self, Write as _},
    os::unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Where the records are.
pub const DIR: &str = "/run/suspend/held";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRecord {
    pub pid: u32,
    /// Its start time (`/proc/PID/stat`, clock ticks since boot): a pid
    /// reused by another process does not match.
    pub start_time: u64,
    /// The image directory (absolute).
    pub image: PathBuf,
    /// The BLAKE3 hash of its `meta.jsonl`: only that image refills it.
    pub meta_blake3: String,
    /// When it was held (seconds since the epoch).
    pub since: u64,
    pub threads: u32,
    /// Its thread ids (witnessed while held).
    #[serde(default)]
    pub tids: Vec<u32>,
    /// Resident memory before and after it was held (bytes).
    pub resident_before: u64,
    pub resident_after: u64,
    /// What only the held process has (not the image): a resume from the
    /// image alone cannot give these back.
    #[serde(default)]
    pub held_only: Vec<String>,
    /// Set once it runs again with its memory still being served from the
    /// image (a lazy refill); the record stays until every page is back.
    #[serde(default)]
    pub refill: Option<Refill>,
}

/// A lazy refill under way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refill {
    /// The userfaultfd's descriptor number in the process (its own copy
    /// keeps faulting threads waiting, never failing, while no agent
    /// serves them).
    pub uffd: i32,
    /// When its threads were let go (seconds since the epoch).
    pub since: u64,
}

/// The refill journal of `pid`: what the process changed in its memory map
/// while its pages were served, for a refill that has to be finished by
/// another agent. Locked (`flock`) by the agent serving it.
pub fn journal_path(pid: u32) -> PathBuf {
    Path::new(DIR).join(format!("{pid}.refill"))
}

fn path_of(pid: u32) -> PathBuf {
    Path::new(DIR).join(format!("{pid}.json"))
}

impl HeldRecord {
    /// Writes the record (replacing one of the same pid), durably enough
    /// for `/run` (a tmpfs: renamed into place whole).
    pub fn write(&self) -> io::Result<()> {
        crate::sys::fd::make_run_subdir(Path::new(DIR))?;
        check_dir()?;
        let tmp = Path::new(DIR).join(format!(".{}.tmp", self.pid));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec(self).map_err(io::Error::other)?)?;
        fs::rename(&tmp, path_of(self.pid))
    }

    /// The record of `pid`, if it is held: a record whose start time is
    /// not the live process's is stale and removed.
    pub fn find(pid: u32) -> io::Result<Option<Self>> {
        let path = path_of(pid);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        check_dir()?;
        let record: Self = serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        let live = crate::procfs::start_time(pid).ok();
        if record.pid != pid || live != Some(record.start_time) {
            // Gone (killed while held): no longer witnessed nor guarded.
            if record.refill.is_none()
                && let Ok(mut maps) = crate::freeze::FreezeMaps::open()
            {
                maps.forget_held(record.pid, &record.tids);
            }
            record.remove();
            return Ok(None);
        }
        Ok(Some(record))
    }

    /// Every held process's record (stale ones removed).
    pub fn all() -> io::Result<Vec<Self>> {
        let entries = match fs::read_dir(DIR) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut all = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            // A refill journal whose record is gone is left over.
            if let Some(pid) = name.to_str().and_then(|n| n.strip_suffix(".refill"))
                && !Path::new(DIR).join(format!("{pid}.json")).exists()
            {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            if let Some(record) = Self::find(pid)? {
                all.push(record);
            }
        }
        all.sort_by_key(|r| r.pid);
        Ok(all)
    }

    /// The held process whose image is `dir`, if any.
    pub fn for_image(dir: &Path) -> io::Result<Option<Self>> {
        let dir = fs::canonicalize(dir)?;
        Ok(Self::all()?.into_iter().find(|r| r.image == dir))
    }

    /// Removes the record (the process runs again, or is gone).
    pub fn remove(&self) {
        let _ = fs::remove_file(path_of(self.pid));
        let _ = fs::remove_file(journal_path(self.pid));
    }
}

/// The directory must be root's and nobody else's to write: a record says
/// which image a root `resume` acts on.
fn check_dir() -> io::Result<()> {
    let meta = fs::symlink_metadata(DIR)?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{DIR} is not a directory only root may write"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let r = HeldRecord {
            pid: 42,
            start_time: 7,
            image: "/var/lib/x".into(),
            meta_blake3: "ab".into(),
            since: 1,
            threads: 3,
            tids: vec![42, 43, 44],
            resident_before: 1 << 20,
            resident_after: 4096,
            held_only: vec!["fd 3: socket".into()],
            refill: Some(Refill {
                uffd: 900,
                since: 2,
            }),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<HeldRecord>(&json).unwrap(), r);
    }
}
