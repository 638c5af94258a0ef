//! Streaming transfers of large objects (etcd snapshots): an upload sends fixed-size
//! parts as data arrives, with a bounded number in flight, and the object appears
//! under its name only when the upload is finished; a download hands out the object
//! chunk by chunk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt, WriteMultipart};

use crate::{Error, Storage};

/// Bytes per uploaded part (S3 wants at least 5 MiB for every part but the last).
pub const PART_SIZE: usize = 8 << 20;

/// Parts uploading at once; with [`PART_SIZE`], the memory an upload holds.
pub const PARTS_IN_FLIGHT: usize = 4;

/// An object being written. Nothing is visible under its name until [`Upload::finish`];
/// [`Upload::abort`] (or an error) discards what was sent. A process killed mid-upload
/// leaves no object: on S3 an unfinished multipart upload (which a bucket lifecycle
/// rule can expire), in a directory a staging file next to it.
pub struct Upload {
    writer: Option<WriteMultipart>,
    location: String,
    written: u64,
    uploaded: Arc<AtomicU64>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("location", &self.location)
            .field("written", &self.written)
            .finish()
    }
}

impl Upload {
    /// Where the object will be.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends data; waits while [`PARTS_IN_FLIGHT`] parts are uploading.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.closed());
        };
        if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
            let location = self.location.clone();
            self.abort_inner().await;
            return Err(Error::store(location, e));
        }
        if let Some(writer) = self.writer.as_mut() {
            writer.write(data);
        }
        self.written += data.len() as u64;
        Ok(())
    }

    /// Sends what is left and makes the object visible under its name.
    pub async fn finish(mut self) -> Result<u64, Error> {
        let writer = self.writer.take().ok_or_else(|| self.closed())?;
        // WriteMultipart::finish aborts the upload itself when a part or the
        // completion fails.
        writer
            .finish()
            .await
            .map_err(|e| Error::store(self.location.clone(), e))?;
        self.uploaded.fetch_add(self.written, Ordering::Relaxed);
        Ok(self.written)
    }

    /// Discards the upload and the parts already sent.
    pub async fn abort(mut self) {
        self.abort_inner().await;
    }

    async fn abort_inner(&mut self) {
        if let Some(writer) = self.writer.take()
            && let Err(e) = writer.abort().await
        {
            // Parts left behind on S3 are invisible; worth a warning, but not an error
            // over the one that caused the abort.
            tracing::warn!(location = %self.location, error = %e, "discarding the unfinished upload failed");
        }
    }

    fn closed(&self) -> Error {
        Error::Invalid(format!("{}: the upload was already ended", self.location))
    }
}

/// An object being read, chunk by chunk.
pub struct Download {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    location: String,
    size: u64,
    read: u64,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("location", &self.location)
            .field("size", &self.size)
            .field("read", &self.read)
            .finish()
    }
}

impl Download {
    /// The object's size as the store reports it.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where it is.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The next chunk, or `None` at the end. A stream that ends early or runs past
    /// the announced size is an error, so a truncated transfer is never taken whole.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        match self.stream.next().await {
            Some(Ok(chunk)) => {
                self.read += chunk.len() as u64;
                if self.read > self.size {
                    return Err(Error::Invalid(format!(
                        "{}: the store sent more than the {} bytes it announced",
                        self.location, self.size
                    )));
                }
                Ok(Some(chunk))
            }
            Some(Err(e)) => Err(Error::store(self.location.clone(), e)),
            None if self.read < self.size => Err(Error::Invalid(format!(
                "{}: the transfer ended after {} of {} bytes",
                self.location, self.read, self.size
            ))),
            None => Ok(None),
        }
    }
}

impl Storage {
    /// Starts a streamed upload of `key` (see [`Upload`]).
    pub async fn upload(&self, key: &str) -> Result<Upload, Error> {
        let location = self.location(key);
        let multipart = self
            .store
            .put_multipart(&StorePath::from(key))
            .await
            .map_err(|e| Error::store(location.clone(), e))?;
        Ok(Upload {
            writer: Some(WriteMultipart::new_with_chunk_size(multipart, PART_SIZE)),
            location,
            written: 0,
            uploaded: self.uploaded.clone(),
        })
    }

    /// Opens `key` for reading chunk by chunk.
    pub async fn download(&self, key: &str) -> Result<Download, Error> {
        let result = self
            .store
            .get(&StorePath::from(key))
            .await
            .map_err(|e| self.not_found_or(key, e))?;
        Ok(Download {
            size: result.meta.size,
            stream: result.into_stream(),
            location: self.location(key),
            read: 0,
        })
    }
}
