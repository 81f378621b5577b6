//! Connections: accept, then per connection one reader (decode, dispatch in arrival order)
//! and one writer (answers in request order). The reader runs each handler's synchronous
//! part — a produce's append — before it reads the next request, so appends keep the
//! connection's order; slow parts (fsync waits, long-poll fetches) run as futures the
//! writer awaits in order. The queue between them is bounded, so a client that does not
//! read its answers stops being read from rather than growing memory.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::AsyncWriteExt;

use super::byte_budget::{ByteBudget, BytePermit};
use crate::constants::PIPELINE_DEPTH_MAX;
use crate::constants::{
    CONNECTION_INFLIGHT_BYTES_MAX, FRAME_BYTES_MAX, SHARD_CONNECTIONS_MAX, SHARD_INFLIGHT_BYTES_MAX,
};
use crate::io::net::{TcpListener, TcpStream};
use crate::metrics::RequestTimer;
use crate::protocol::frame::read_frame_size;
use crate::protocol::frame_pool;
use crate::security::Session;
use crate::shard::Shard;

/// How often a shard applies retention to its partitions.
const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(30);

pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    let open_connections = Rc::new(Cell::new(0usize));
    let shard_budget = ByteBudget::new(SHARD_INFLIGHT_BYTES_MAX);
    let budget = Rc::clone(&shard_budget);
    crate::metrics::track_inflight_bytes(SHARD_INFLIGHT_BYTES_MAX, move || {
        usize::try_from(budget.available()).unwrap_or(0)
    });
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(shard_id = shard.id, error = %e, "accept failed");
                crate::io::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if open_connections.get() >= SHARD_CONNECTIONS_MAX {
            tracing::warn!(shard_id = shard.id, "connection limit reached; refusing");
            crate::metrics::connection_refused();
            drop(stream);
            continue;
        }
        #[cfg(debug_assertions)]
        super::panic_policy::debug_panic_on_accept(shard.id);
        open_connections.set(open_connections.get() + 1);
        let shard = Rc::clone(&shard);
        let open = Rc::clone(&open_connections);
        let shard_budget = Rc::clone(&shard_budget);
        crate::io::spawn(async move {
            let _counted = crate::metrics::ConnectionGuard::open();
            serve_connection(shard, stream, shard_budget).await;
            open.set(open.get().saturating_sub(1));
        })
        .detach();
    }
}

/// The memory a request holds until its answer is written: (connection's, shard's).
type Permits = (BytePermit, BytePermit);

async fn serve_connection(shard: Rc<Shard>, stream: TcpStream, shard_budget: Rc<ByteBudget>) {
    let peer = stream.peer_addr().ok();
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    let (mut reader, writer) = futures_lite::io::split(stream);
    let (replies, queued) =
        async_channel::bounded::<(Reply, Permits, RequestTimer)>(PIPELINE_DEPTH_MAX);
    let writer_task = crate::io::spawn(write_replies(writer, queued));
    let connection_budget = ByteBudget::new(CONNECTION_INFLIGHT_BYTES_MAX);
    let mut session = Session::new(shard.config.security_protocol, peer);
    loop {
        let size = match read_frame_size(&mut reader, FRAME_BYTES_MAX).await {
            Ok(Some(size)) => size,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(?peer, error = %e, "closing connection");
                break;
            }
        };
        let (frame, permits) =
            match read_body(&mut reader, size, &connection_budget, &shard_budget).await {
                Ok(read) => read,
                Err(e) => {
                    tracing::debug!(?peer, error = %e, "closing connection");
                    break;
                }
            };
        let timer = RequestTimer::start(&frame);
        match super::handlers::dispatch(&shard, frame, &mut session) {
            Ok(Reply::None) => {}
            Ok(reply) => {
                if replies.send((reply, permits, timer)).await.is_err() {
                    break; // the writer failed: the socket is gone
                }
                if session.closing() {
                    tracing::info!(?peer, "SASL authentication failed; closing connection");
                    break;
                }
            }
            Err(e) => {
                tracing::info!(?peer, error = %e, "bad request; closing connection");
                break;
            }
        }
    }
    // Answer what was already accepted, then close.
    replies.close();
    writer_task.await;
}

/// Bytes of a request body the shard budget admits at a time.
const BODY_CHUNK_BYTES: usize = 256 * 1024;

/// Reads a request body of `size` bytes, holding budget for it. The connection's own budget
/// covers the whole frame up front. The shard's budget is taken chunk by chunk as the bytes
/// arrive: the first chunk waits for room (so a busy shard stops starting new requests), the
/// rest never waits. A client that announces a huge frame and stalls therefore holds one
/// chunk of the shard's budget, not the size it announced.
async fn read_body(
    reader: &mut futures_lite::io::ReadHalf<TcpStream>,
    size: usize,
    connection_budget: &Rc<ByteBudget>,
    shard_budget: &Rc<ByteBudget>,
) -> Result<(Bytes, Permits), std::io::Error> {
    use futures_lite::AsyncReadExt;
    let connection_permit = connection_budget.acquire(size).await;
    let mut shard_permit = shard_budget.acquire(size.min(BODY_CHUNK_BYTES)).await;
    let mut body = frame_pool::take(size);
    let mut filled = 0;
    while filled < size {
        let end = (filled + BODY_CHUNK_BYTES).min(size);
        if end > shard_permit.bytes() {
            shard_permit.absorb(shard_budget.acquire_overcommit(end - shard_permit.bytes()));
        }
        reader.read_exact(&mut body[filled..end]).await?;
        filled = end;
    }
    Ok((
        frame_pool::freeze(body, size),
        (connection_permit, shard_permit),
    ))
}

async fn write_replies(
    mut writer: futures_lite::io::WriteHalf<TcpStream>,
    queued: async_channel::Receiver<(Reply, Permits, RequestTimer)>,
) {
    // The permits are dropped, returning their bytes, once the answer has been written;
    // the timer then records the request's latency.
    while let Ok((reply, _permits, _timer)) = queued.recv().await {
        let answer = match reply {
            Reply::Ready(bytes) => Ok(vec![bytes]),
            Reply::Deferred(pending) => pending.await.map(|bytes| vec![bytes]),
            Reply::DeferredPieces(pending) => pending.await,
            Reply::None => continue,
            Reply::Silent(pending) => {
                pending.await;
                continue;
            }
        };
        let pieces = match answer {
            Ok(pieces) => pieces,
            Err(e) => {
                tracing::warn!(error = %e, "cannot answer request; closing connection");
                break;
            }
        };
        for piece in pieces {
            if writer.write_all(&piece).await.is_err() {
                queued.close();
                return;
            }
            crate::metrics::bytes_sent(piece.len());
        }
    }
    queued.close();
    let _ = writer.close().await; // the peer may already be gone
}

/// Background task: deletes segments past their topic's retention.
pub async fn retention_loop(shard: Rc<Shard>) {
    loop {
        crate::io::sleep(RETENTION_CHECK_INTERVAL).await;
        let now_ms = now_ms();
        for log in shard.local_logs() {
            if let Err(e) = log.enforce_retention(now_ms).await {
                tracing::warn!(shard_id = shard.id, error = %e, "retention failed");
            }
        }
    }
}

// The handlers' clock and answer type, re-exported so that they keep importing both from here.
pub use super::reply::Reply;
pub use crate::io::clock::now_ms;
