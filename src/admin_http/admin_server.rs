//! `start`: binds the admin address and serves it from a std thread.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::constants::REQUEST_HEAD_BYTES_MAX;
use crate::metrics::prometheus_text::{self, ProcessGauges};
use crate::metrics::MetricsRegistry;

/// A client must send its request within this, and read the answer within twice this.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminHttpError {
    #[error("cannot listen on admin address {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the admin thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Binds `addr` (port 0: an ephemeral port) and serves it until the process exits.
/// Returns the bound address.
/// With `token`, every request must carry `Authorization: Bearer TOKEN` or gets 401; with
/// `tls`, the endpoint speaks HTTPS only.
pub fn start(
    addr: SocketAddr,
    registry: Arc<MetricsRegistry>,
    token: Option<String>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<SocketAddr, AdminHttpError> {
    let listener =
        TcpListener::bind(addr).map_err(|source| AdminHttpError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| AdminHttpError::Bind { addr, source })?;
    std::thread::Builder::new()
        .name("sluice-admin".to_owned())
        .spawn(move || serve(listener, registry, token, tls))
        .map_err(AdminHttpError::Thread)?;
    Ok(bound)
}

/// Requests answered at once; each holds a thread. More wait in the accept backlog, so a
/// slow client no longer delays a health probe, and a flood cannot spawn unbounded threads.
const CONCURRENT_REQUESTS_MAX: usize = 8;

fn serve(
    listener: TcpListener,
    registry: Arc<MetricsRegistry>,
    token: Option<String>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let token: Option<Arc<str>> = token.map(Arc::from);
    let (slots_tx, slots_rx) = std::sync::mpsc::sync_channel::<()>(CONCURRENT_REQUESTS_MAX);
    for _ in 0..CONCURRENT_REQUESTS_MAX {
        // The receiver lives in this function, so the channel has room for every slot.
        let _ = slots_tx.send(());
    }
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                // A slot comes back when a request's thread ends (its sender is dropped
                // only with `serve`, so `recv` cannot fail while we hold `slots_tx`).
                if slots_rx.recv().is_err() {
                    return;
                }
                let registry = Arc::clone(&registry);
                let token = token.clone();
                let slot = slots_tx.clone();
                let tls = tls.clone();
                let spawned = std::thread::Builder::new()
                    .name("sluice-admin-req".to_owned())
                    .spawn(move || {
                        if let Err(e) = answer_on(stream, tls, &registry, token.as_deref()) {
                            tracing::debug!(error = %e, "admin request failed");
                        }
                        let _ = slot.send(());
                    });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "admin request thread failed to start");
                    let _ = slots_tx.send(());
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Sets the socket's timeouts (they bound the TLS handshake too), then answers in the clear
/// or over TLS.
fn answer_on(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    registry: &MetricsRegistry,
    token: Option<&str>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT * 2))?;
    match tls {
        None => answer(stream, registry, token),
        Some(config) => {
            let connection =
                rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
            let mut tls_stream = rustls::StreamOwned::new(connection, stream);
            answer(&mut tls_stream, registry, token)?;
            tls_stream.conn.send_close_notify();
            tls_stream.flush()
        }
    }
}

fn answer<S: Read + Write>(
    mut stream: S,
    registry: &MetricsRegistry,
    token: Option<&str>,
) -> std::io::Result<()> {
    let head = read_head(&mut stream)?;
    let Some((head, headers)) = head else {
        return respond(&mut stream, 400, "text/plain", b"bad request\n", false);
    };
    if let Some(token) = token {
        if !bearer_matches(&headers, token) {
            return respond(
                &mut stream,
                401,
                "text/plain",
                b"bearer token required\n",
                false,
            );
        }
    }
    let mut parts = head.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(&mut stream, 405, "text/plain", b"GET only\n", false);
    }
    match path {
        "/metrics" => {
            let body = metrics_text(registry);
            respond(
                &mut stream,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                body.as_bytes(),
                head_only,
            )
        }
        "/health" if registry.panicked() => respond(
            &mut stream,
            503,
            "text/plain",
            b"panicked: exiting\n",
            head_only,
        ),
        "/health" => {
            let stalled = registry.stalled_shards();
            if stalled.is_empty() {
                respond(&mut stream, 200, "text/plain", b"ok\n", head_only)
            } else {
                let body = format!("stalled shards: {stalled:?}\n");
                respond(&mut stream, 503, "text/plain", body.as_bytes(), head_only)
            }
        }
        "/ready" => {
            if registry.is_ready() {
                respond(&mut stream, 200, "text/plain", b"ready\n", head_only)
            } else {
                respond(&mut stream, 503, "text/plain", b"not ready\n", head_only)
            }
        }
        _ => respond(
            &mut stream,
            404,
            "text/plain",
            b"try /metrics, /health or /ready\n",
            head_only,
        ),
    }
}

/// Whether the head's `Authorization` header is `Bearer TOKEN`; compared in constant time
/// so the response time does not reveal how much of a guess was right.
fn bearer_matches(headers: &[String], token: &str) -> bool {
    use subtle::ConstantTimeEq;
    headers.iter().any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        let Some(given) = value.trim().strip_prefix("Bearer ") else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("authorization")
            && bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
    })
}

/// The request line of the head (`GET /metrics HTTP/1.1`) and the header lines, or `None`
/// if it is malformed or longer than [`REQUEST_HEAD_BYTES_MAX`].
fn read_head(stream: &mut impl Read) -> std::io::Result<Option<(String, Vec<String>)>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > REQUEST_HEAD_BYTES_MAX {
            return Ok(None);
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.lines();
    let request = lines
        .next()
        .filter(|l| l.ends_with("HTTP/1.1") || l.ends_with("HTTP/1.0"))
        .map(str::to_owned);
    let headers = lines
        .take_while(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(request.map(|request| (request, headers)))
}

fn respond(
    stream: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}

fn metrics_text(registry: &MetricsRegistry) -> String {
    let snapshots: Vec<_> = registry.snapshots().into_iter().flatten().collect();
    let process = ProcessGauges {
        resident_bytes: resident_bytes(),
        memory_limit_bytes: cgroup_memory_limit(),
        uptime_seconds: registry.uptime().as_secs_f64(),
        ready: registry.is_ready(),
    };
    prometheus_text::render(&snapshots, &process)
}

/// VmRSS from /proc/self/status.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The cgroup v2 (or v1) memory limit, if one is set.
fn cgroup_memory_limit() -> Option<u64> {
    for path in [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ] {
        if let Ok(text) = std::fs::read_to_string(path) {
            // "max" (v2) or a huge number (v1) mean no limit.
            return text.trim().parse::<u64>().ok().filter(|&b| b < 1 << 62);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).expect("connect");
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    }

    #[test]
    fn serves_ready_health_and_metrics() {
        let registry = Arc::new(MetricsRegistry::new(1));
        let addr = start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Arc::clone(&registry),
            None,
            None,
        )
        .expect("admin server starts");
        assert!(get(addr, "/ready").starts_with("HTTP/1.1 503"));
        registry.set_ready(true);
        assert!(get(addr, "/ready").starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/health").starts_with("HTTP/1.1 200"));
        let metrics = get(addr, "/metrics");
        assert!(metrics.contains("sluice_ready 1"), "{metrics}");
        assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));
        registry.set_panicked();
        assert!(get(addr, "/health").starts_with("HTTP/1.1 503"));
    }
}
