//! Appending page contents to `pages.img` on a thread of its own, so that
//! reading the next batch from the frozen process overlaps writing this one
//! (two cores: one copies out of the process, one into the page cache).
//! Buffers go back and forth, so no batch is copied twice.

use std::{
    fs::File,
    io::{self, Write as _},
    path::PathBuf,
    sync::mpsc::{self, Receiver, SyncSender},
    thread::JoinHandle,
};

use super::WriteError;

/// Batches in flight: one being written, one waiting, one being read.
const IN_FLIGHT: usize = 2;

pub struct PageSink {
    to_writer: Option<SyncSender<Vec<u8>>>,
    returned: Receiver<Vec<u8>>,
    writer: Option<JoinHandle<io::Result<()>>>,
    path: PathBuf,
    /// Offset in `pages.img` of the next batch.
    at: u64,
}

impl PageSink {
    /// Starts writing at offset `at` of `file` (`path`, for errors).
    pub fn start(mut file: File, path: PathBuf, at: u64) -> Self {
        let (to_writer, batches) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (give_back, returned) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("suspend-pages".into())
            .spawn(move || {
                for batch in batches {
                    file.write_all(&batch)?;
                    let _ = give_back.send(batch);
                }
                Ok(())
            })
            .ok();
        Self {
            to_writer: Some(to_writer),
            returned,
            writer,
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
        let sent = match (&self.to_writer, &self.writer) {
            (Some(tx), Some(_)) => tx.send(batch).is_ok(),
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
        self.to_writer = None; // ends the writer's loop
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(self.error(e)),
            Some(Err(_)) => Err(self.error(io::Error::other("the page writer panicked"))),
            None => Err(self.error(io::Error::other("the page writer could not start"))),
        }
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
