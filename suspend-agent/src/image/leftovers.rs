//! Partial images an agent left when it was killed mid-suspend. While an
//! image is written, a marker in [`MARKERS`] names its partial directory;
//! finishing or abandoning the image removes the marker. A killed agent
//! removes neither, and the next daemon ([`remove`]) deletes what its
//! markers name — only directories shaped as the writer makes them (named
//! `.NAME.partial-PID` for the dead writer's pid, root's, mode 0700), so a
//! marker can never delete anything else.

use std::{
    fs,
    io::Write as _,
    os::unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

/// Where the markers are (root's, 0700).
pub const MARKERS: &str = "/run/suspend/partial";

/// The marker of one image being written; removed when dropped.
#[derive(Debug)]
pub struct Marker(Option<PathBuf>);

impl Marker {
    /// Marks `partial` (an absolute path) as being written by this process.
    /// Best effort: without a marker only the clean-up after a killed agent
    /// is lost.
    pub fn new(partial: &Path) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = Path::new(MARKERS);
        let made = crate::sys::fd::make_run_subdir(dir).and_then(|()| {
            let path = dir.join(format!(
                "{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(partial.as_os_str().as_encoded_bytes())?;
            Ok(path)
        });
        match made {
            Ok(path) => Self(Some(path)),
            Err(e) => {
                log::debug!("no marker for {}: {e}", partial.display());
                Self(None)
            }
        }
    }

    /// The image is finished or abandoned.
    pub fn clear(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Whether `dir` is a partial image directory the writer `pid` made.
fn is_partial(dir: &Path, pid: u32) -> bool {
    let named = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.ends_with(&format!(".partial-{pid}")));
    let shaped = fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == 0 && m.mode() & 0o077 == 0);
    dir.is_absolute() && named && shaped
}

/// Removes the partial images of writers that are gone; returns them.
pub fn remove() -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(MARKERS) else {
        return removed;
    };
    for entry in entries.flatten() {
        let marker = entry.path();
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue; // its writer still runs (or the pid was taken: later)
        }
        if let Ok(bytes) = fs::read(&marker) {
            let dir = PathBuf::from(String::from_utf8_lossy(&bytes).into_owned());
            if is_partial(&dir, pid) && fs::remove_dir_all(&dir).is_ok() {
                removed.push(dir);
            }
        }
        let _ = fs::remove_file(&marker);
    }
    removed
}
