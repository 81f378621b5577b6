//! Connections: accept, then per connection one reader (decode, dispatch in arrival order)
//! and one writer (answers in request order). The reader runs each handler's synchronous
//! part — a produce's append — before it reads the next request, so appends keep the
//! connection's order; slow parts (fsync waits, long-poll fetches) run as futures the
//! writer awaits in order. The queue between them is bounded, so a client that does not
//! read its answers stops being read from rather than growing memory.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use std::sync::Arc;

use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::byte_budget::{ByteBudget, BytePermit};
use crate::constants::PIPELINE_DEPTH_MAX;
use crate::constants::{
    CONNECTION_INFLIGHT_BYTES_MAX, FRAME_BYTES_MAX, SHARD_CONNECTIONS_MAX, SHARD_INFLIGHT_BYTES_MAX,
};
use crate::io::net::{TcpListener, TcpStream};
use crate::metrics::RequestTimer;
use crate::protocol::frame::read_frame_size;
use crate::protocol::frame_pool;
use crate::security::tls::TlsReloader;
use crate::security::{KafkaPrincipal, SecurityProtocol, Session};
use crate::shard::Shard;

/// How often a shard applies retention to its partitions.
const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// How long a client may take to finish its TLS handshake before its socket is closed.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One of a shard's listening sockets and what its connections speak.
pub struct Listener {
    /// Position in the configured listeners; Metadata answers with this listener's brokers.
    pub index: usize,
    pub protocol: SecurityProtocol,
    pub socket: TcpListener,
    /// The TLS configuration for SSL and SASL_SSL listeners.
    pub tls: Option<Arc<TlsReloader>>,
}

/// Accepts on every listener; the connection limit and the in-flight byte budget are the
/// shard's, shared by all its listeners. Dropping the tasks stops accepting.
pub fn accept_all(shard: &Rc<Shard>, listeners: Vec<Listener>) -> Vec<crate::io::Task<()>> {
    let open_connections = Rc::new(Cell::new(0usize));
    let shard_budget = ByteBudget::new(SHARD_INFLIGHT_BYTES_MAX);
    let budget = Rc::clone(&shard_budget);
    crate::metrics::track_inflight_bytes(SHARD_INFLIGHT_BYTES_MAX, move || {
        usize::try_from(budget.available()).unwrap_or(0)
    });
    listeners
        .into_iter()
        .map(|listener| {
            crate::io::spawn(accept_loop(
                Rc::clone(shard),
                listener,
                Rc::clone(&open_connections),
                Rc::clone(&shard_budget),
            ))
        })
        .collect()
}

async fn accept_loop(
    shard: Rc<Shard>,
    listener: Listener,
    open_connections: Rc<Cell<usize>>,
    shard_budget: Rc<ByteBudget>,
) {
    loop {
        let stream = match listener.socket.accept().await {
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
        let mut session = Session::new(listener.protocol, stream.peer_addr().ok());
        session.listener = listener.index;
        let tls = listener.tls.as_ref().map(|tls| tls.current());
        crate::io::spawn(async move {
            let _counted = crate::metrics::ConnectionGuard::open();
            match tls {
                None => serve_connection(shard, stream, session, shard_budget).await,
                Some(config) => {
                    if let Some((stream, session)) = tls_handshake(stream, config, session).await {
                        serve_connection(shard, stream, session, shard_budget).await;
                    }
                }
            }
            open.set(open.get().saturating_sub(1));
        })
        .detach();
    }
}

/// Runs the server side of the TLS handshake; a client certificate, when one was verified,
/// names the session's principal as Kafka's default principal builder does
/// (`User:CN=alice,OU=eng`). A failed or stalled handshake closes only this socket.
async fn tls_handshake(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    mut session: Session,
) -> Option<(futures_rustls::server::TlsStream<TcpStream>, Session)> {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    let peer = session.peer;
    let accept = futures_rustls::TlsAcceptor::from(config).accept(stream);
    let timeout = async {
        crate::io::sleep(TLS_HANDSHAKE_TIMEOUT).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        ))
    };
    let stream = match futures_lite::future::or(accept, timeout).await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::info!(?peer, error = %e, "TLS handshake failed; closing connection");
            return None;
        }
    };
    let client_cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first());
    if let Some(cert) = client_cert {
        match crate::security::tls::certificate_principal(cert) {
            Some(name) => session.principal = KafkaPrincipal::user(name),
            None => {
                tracing::info!(
                    ?peer,
                    "client certificate subject unreadable; closing connection"
                );
                return None;
            }
        }
    }
    Some((stream, session))
}

/// The memory a request holds until its answer is written: (connection's, shard's).
type Permits = (BytePermit, BytePermit);

/// A connection's byte stream: a plain TCP socket or TLS over one.
trait ClientStream: AsyncRead + AsyncWrite + Unpin + 'static {
    fn set_nodelay(&self) {}
}

impl ClientStream for TcpStream {
    fn set_nodelay(&self) {
        if let Err(e) = TcpStream::set_nodelay(self, true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
    }
}

// The TLS handshake already set nodelay on the socket beneath.
impl ClientStream for futures_rustls::server::TlsStream<TcpStream> {}

async fn serve_connection<S: ClientStream>(
    shard: Rc<Shard>,
    stream: S,
    mut session: Session,
    shard_budget: Rc<ByteBudget>,
) {
    let peer = session.peer;
    stream.set_nodelay();
    let (mut reader, writer) = futures_lite::io::split(stream);
    let (replies, queued) =
        async_channel::bounded::<(Reply, Permits, RequestTimer)>(PIPELINE_DEPTH_MAX);
    let writer_task = crate::io::spawn(write_replies(writer, queued));
    let connection_budget = ByteBudget::new(CONNECTION_INFLIGHT_BYTES_MAX);
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
        let mut timer = RequestTimer::start(&frame);
        let dispatched = super::handlers::dispatch(&shard, frame, &mut session);
        timer.take_acks();
        match dispatched {
            Ok(Reply::None) => {}
            Ok(reply) => {
                let closes = matches!(reply, Reply::Close);
                if replies.send((reply, permits, timer)).await.is_err() {
                    break; // the writer failed: the socket is gone
                }
                if closes {
                    tracing::info!(?peer, "acks=0 produce refused; closing connection");
                    break;
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
async fn read_body<S: AsyncRead + Unpin>(
    reader: &mut futures_lite::io::ReadHalf<S>,
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

async fn write_replies<S: AsyncWrite + Unpin>(
    mut writer: futures_lite::io::WriteHalf<S>,
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
            Reply::Silent(pending) => match pending.await {
                AfterSilence::KeepOpen => continue,
                AfterSilence::Close => break,
            },
            Reply::Close => break,
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
        // TLS buffers records it could not hand to the socket at once; without a flush the
        // last of an answer could wait for the next one, and a client waiting for it would
        // hang. Flushing when no answer is queued keeps pipelined answers batched.
        if queued.is_empty() && writer.flush().await.is_err() {
            queued.close();
            return;
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
pub use super::reply::{AfterSilence, Reply};
pub use crate::io::clock::now_ms;
