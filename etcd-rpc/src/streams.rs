//! Streaming calls: snapshot download, watch, lease keep-alive.

use std::pin::Pin;
use std::task::{Context, Poll};

use http::uri::PathAndQuery;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic_prost::ProstCodec;

use crate::client::{Attempt, CallKind, Client, not_ready, request};
use crate::error::Error;
use crate::proto::{
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, SnapshotRequest, SnapshotResponse,
    WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
    method, watch_request,
};

/// An open `Maintenance.Snapshot` stream: the member's backend, chunk by chunk.
///
/// The last chunk etcd sends is the SHA-256 of all the bytes before it, so the
/// concatenated chunks are exactly what `etcdctl snapshot save` writes.
#[derive(Debug)]
pub struct SnapshotStream {
    responses: Streaming<SnapshotResponse>,
    received_bytes: u64,
    remaining_bytes: Option<u64>,
    revision: Option<i64>,
    member_id: Option<u64>,
    finished: bool,
}

/// What [`Client::snapshot_to`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// Bytes written, SHA-256 trailer included.
    pub bytes: u64,
    /// Store revision of the snapshot, when etcd sent a header (3.5+).
    pub revision: Option<i64>,
    /// Member that produced the snapshot, when etcd sent a header (3.5+).
    pub member_id: Option<u64>,
}

impl SnapshotStream {
    /// The next chunk, or `None` once etcd has sent everything.
    ///
    /// Fails if the stream breaks or ends before etcd announced zero remaining bytes.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, Error> {
        if self.finished {
            return Ok(None);
        }
        let message = self
            .responses
            .message()
            .await
            .map_err(|status| Error::from_status(method::SNAPSHOT, status))?;
        self.accept(message)
    }

    fn accept(&mut self, message: Option<SnapshotResponse>) -> Result<Option<Vec<u8>>, Error> {
        match message {
            Some(response) => {
                if let Some(header) = response.header
                    && self.revision.is_none()
                {
                    self.revision = Some(header.revision);
                    self.member_id = Some(header.member_id);
                }
                self.remaining_bytes = Some(response.remaining_bytes);
                self.received_bytes += response.blob.len() as u64;
                Ok(Some(response.blob))
            }
            None => {
                self.finished = true;
                match self.remaining_bytes {
                    Some(0) => Ok(None),
                    Some(remaining) => Err(Error::Protocol {
                        method: method::SNAPSHOT,
                        reason: format!(
                            "stream ended after {} bytes with {remaining} bytes announced as remaining",
                            self.received_bytes
                        ),
                    }),
                    None => Err(Error::Protocol {
                        method: method::SNAPSHOT,
                        reason: "stream ended without any data".to_string(),
                    }),
                }
            }
        }
    }

    /// Bytes received so far.
    pub fn received_bytes(&self) -> u64 {
        self.received_bytes
    }

    /// Bytes etcd announced as still to come after the last chunk received.
    pub fn remaining_bytes(&self) -> Option<u64> {
        self.remaining_bytes
    }

    /// Store revision of the snapshot, from the first header received (etcd
    /// 3.5+; etcd 3.4 sends none).
    pub fn revision(&self) -> Option<i64> {
        self.revision
    }

    /// Member that produces the snapshot, from the first header received (etcd 3.5+).
    pub fn member_id(&self) -> Option<u64> {
        self.member_id
    }
}

impl Stream for SnapshotStream {
    type Item = Result<Vec<u8>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.responses).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Err(status))) => {
                self.finished = true;
                Poll::Ready(Some(Err(Error::from_status(method::SNAPSHOT, status))))
            }
            Poll::Ready(Some(Ok(message))) => Poll::Ready(self.accept(Some(message)).transpose()),
            Poll::Ready(None) => Poll::Ready(self.accept(None).transpose()),
        }
    }
}

/// An open watch: responses of one watcher on its own gRPC stream.
#[derive(Debug)]
pub struct Watcher {
    requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
    watch_id: i64,
}

impl Watcher {
    /// The watcher's ID.
    pub fn watch_id(&self) -> i64 {
        self.watch_id
    }

    /// The next response (events, a progress notification, or the
    /// cancellation, with `compact_revision` set when the start revision was
    /// compacted), or `None` once the server closed the stream.
    pub async fn message(&mut self) -> Result<Option<WatchResponse>, Error> {
        self.responses
            .message()
            .await
            .map_err(|status| Error::from_status(method::WATCH, status))
    }

    /// Asks the server for a progress notification (a response without events
    /// carrying the current revision).
    pub async fn request_progress(&self) -> Result<(), Error> {
        self.send(watch_request::RequestUnion::ProgressRequest(
            WatchProgressRequest {},
        ))
        .await
    }

    /// Cancels the watcher; the server answers with a `canceled` response.
    pub async fn cancel(&self) -> Result<(), Error> {
        self.send(watch_request::RequestUnion::CancelRequest(
            WatchCancelRequest {
                watch_id: self.watch_id,
            },
        ))
        .await
    }

    async fn send(&self, request: watch_request::RequestUnion) -> Result<(), Error> {
        self.requests
            .send(WatchRequest {
                request_union: Some(request),
            })
            .await
            .map_err(|_| Error::Protocol {
                method: method::WATCH,
                reason: "the watch stream is closed".to_string(),
            })
    }
}

impl Client {
    /// Opens a `Maintenance.Snapshot` stream from the member that answers.
    pub async fn snapshot(&self) -> Result<SnapshotStream, Error> {
        let responses = self
            .server_streaming::<SnapshotRequest, SnapshotResponse>(
                method::SNAPSHOT,
                SnapshotRequest {},
            )
            .await?;
        Ok(SnapshotStream {
            responses,
            received_bytes: 0,
            remaining_bytes: None,
            revision: None,
            member_id: None,
            finished: false,
        })
    }

    /// Streams a snapshot into `out` (then flushes it) and returns what was written.
    pub async fn snapshot_to<W>(&self, out: &mut W) -> Result<SnapshotSummary, Error>
    where
        W: AsyncWrite + Unpin,
    {
        let mut stream = self.snapshot().await?;
        while let Some(chunk) = stream.chunk().await? {
            out.write_all(&chunk).await.map_err(Error::SnapshotWrite)?;
        }
        out.flush().await.map_err(Error::SnapshotWrite)?;
        Ok(SnapshotSummary {
            bytes: stream.received_bytes(),
            revision: stream.revision(),
            member_id: stream.member_id(),
        })
    }

    /// Starts a watcher on its own stream and waits for etcd to confirm it.
    pub async fn watch(&self, create: WatchCreateRequest) -> Result<Watcher, Error> {
        let (requests, responses, created) = self
            .call(method::WATCH, CallKind::Stream, |mut grpc, token, _| {
                let create = create.clone();
                let attempt: Attempt<_> = Box::pin(async move {
                    let (requests, receiver) = mpsc::channel(16);
                    requests
                        .try_send(WatchRequest {
                            request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
                        })
                        .map_err(|_| tonic::Status::internal("watch request queue is full"))?;
                    grpc.ready().await.map_err(not_ready)?;
                    let mut responses = grpc
                        .streaming(
                            request(ReceiverStream::new(receiver), token, None),
                            PathAndQuery::from_static(method::WATCH),
                            ProstCodec::<WatchRequest, WatchResponse>::default(),
                        )
                        .await?
                        .into_inner();
                    let created = responses.message().await?;
                    Ok((requests, responses, created))
                });
                attempt
            })
            .await?;
        let created = created.ok_or_else(|| Error::Protocol {
            method: method::WATCH,
            reason: "stream closed before the watcher was created".to_string(),
        })?;
        if !created.created {
            return Err(Error::Protocol {
                method: method::WATCH,
                reason: "first response does not confirm the watcher".to_string(),
            });
        }
        if created.canceled {
            return Err(Error::WatchCanceled {
                reason: created.cancel_reason,
                compact_revision: created.compact_revision,
            });
        }
        Ok(Watcher {
            requests,
            responses,
            watch_id: created.watch_id,
        })
    }

    /// Refreshes a lease once (one message on a `LeaseKeepAlive` stream).
    pub async fn lease_keep_alive_once(&self, id: i64) -> Result<LeaseKeepAliveResponse, Error> {
        let response = self
            .call(
                method::LEASE_KEEP_ALIVE,
                CallKind::Unary,
                |mut grpc, token, timeout| {
                    let attempt: Attempt<_> = Box::pin(async move {
                        grpc.ready().await.map_err(not_ready)?;
                        let mut responses = grpc
                            .streaming(
                                request(
                                    tokio_stream::once(LeaseKeepAliveRequest { id }),
                                    token,
                                    timeout,
                                ),
                                PathAndQuery::from_static(method::LEASE_KEEP_ALIVE),
                                ProstCodec::<LeaseKeepAliveRequest, LeaseKeepAliveResponse>::default(),
                            )
                            .await?
                            .into_inner();
                        responses.message().await
                    });
                    attempt
                },
            )
            .await?;
        response.ok_or_else(|| Error::Protocol {
            method: method::LEASE_KEEP_ALIVE,
            reason: "stream closed without a response".to_string(),
        })
    }
}
