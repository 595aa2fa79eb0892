//! Appending page contents to `pages.img` on threads of their own, so that
//! reading the next batch from the frozen process overlaps writing earlier
//! ones. Copying into fresh page-cache pages is the expensive part (on this
//! kind of machine it dominates the dump), so two writers share it, each
//! writing its batches at their own offsets. Buffers go back and forth, so
//! no batch is copied twice.

use std::{
    fs::File,
    io,
    os::unix::fs::FileExt as _,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        mpsc::{self, Receiver, SyncSender},
    },
    thread::JoinHandle,
};

use super::WriteError;

/// Writer threads.
const WRITERS: usize = 2;
/// Batches waiting for a writer.
const IN_FLIGHT: usize = 2;

/// A batch and where it goes in the page file.
type Batch = (u64, Vec<u8>);

pub struct PageSink {
    to_writers: Option<SyncSender<Batch>>,
    returned: Receiver<Vec<u8>>,
    writers: Vec<JoinHandle<io::Result<()>>>,
    path: PathBuf,
    /// Offset in `pages.img` of the next batch.
    at: u64,
}

impl PageSink {
    /// Starts writing at offset `at` of `file` (`path`, for errors).
    pub fn start(file: File, path: PathBuf, at: u64) -> Self {
        let (to_writers, batches) = mpsc::sync_channel::<Batch>(IN_FLIGHT);
        let batches = Arc::new(Mutex::new(batches));
        let (give_back, returned) = mpsc::channel();
        let file = Arc::new(file);
        let writers = (0..WRITERS)
            .filter_map(|i| {
                let (batches, give_back, file) = (batches.clone(), give_back.clone(), file.clone());
                std::thread::Builder::new()
                    .name(format!("suspend-pages-{i}"))
                    .spawn(move || {
                        loop {
                            let next = batches.lock().unwrap_or_else(|e| e.into_inner()).recv();
                            let Ok((at, batch)) = next else { return Ok(()) };
                            file.write_all_at(&batch, at)?;
                            let _ = give_back.send(batch);
                        }
                    })
                    .ok()
            })
            .collect();
        Self {
            to_writers: Some(to_writers),
            returned,
            writers,
            path,
            at,
        }
    }

    /// A buffer of `len` bytes to fill (recycled when one came back).
    pub fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut buf = self.returned.try_recv().unwrap_or_default();
        buf.resize(len, 0);
        buf
    }

    /// Queues `batch` (whole pages) for writing; returns its offset.
    pub fn put(&mut self, batch: Vec<u8>) -> Result<u64, WriteError> {
        let at = self.at;
        let len = batch.len() as u64;
        let sent = match &self.to_writers {
            Some(tx) if !self.writers.is_empty() => tx.send((at, batch)).is_ok(),
            _ => false,
        };
        if !sent {
            // The writer stopped: its error says why.
            return Err(self
                .stop()
                .err()
                .unwrap_or_else(|| self.error(io::Error::other("the page writer stopped"))));
        }
        self.at += len;
        Ok(at)
    }

    /// Waits for everything queued to be written; returns where the page
    /// file ends.
    pub fn finish(mut self) -> Result<u64, WriteError> {
        self.stop()?;
        Ok(self.at)
    }

    fn stop(&mut self) -> Result<(), WriteError> {
        self.to_writers = None; // ends the writers' loops
        if self.writers.is_empty() && self.at > 0 {
            return Err(self.error(io::Error::other("the page writers could not start")));
        }
        let mut result = Ok(());
        for writer in std::mem::take(&mut self.writers) {
            let outcome = match writer.join() {
                Ok(outcome) => outcome,
                Err(_) => Err(io::Error::other("a page writer panicked")),
            };
            if let (Ok(()), Err(e)) = (&result, outcome) {
                result = Err(self.error(e));
            }
        }
        result
    }

    fn error(&self, source: io::Error) -> WriteError {
        WriteError::Io {
            op: "writing",
            path: self.path.clone(),
            source,
        }
    }
}

impl Drop for PageSink {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
