//! Sockets bound to the current shard's executor.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};

pub use glommio::net::{TcpListener, TcpStream};

/// Binds a listener on the current executor *without* SO_REUSEPORT. glommio's own `bind`
/// always sets SO_REUSEPORT, which would let a second broker silently share (and steal
/// connections from) a port that is already in use.
pub fn bind_exclusive(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    let fd = listener.into_raw_fd();
    #[allow(
        unsafe_code,
        reason = "handing a bound socket to glommio needs from_raw_fd"
    )]
    // SAFETY: `fd` comes from `into_raw_fd` of a listener we own, so it is a valid, open
    // TCP listening socket, and ownership passes to glommio's listener exactly once.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    Ok(listener)
}

/// Adopts a connected TCP socket (one the cluster control plane accepted and handed over)
/// on the current executor.
pub fn stream_from_fd(fd: std::os::fd::OwnedFd) -> TcpStream {
    let fd = fd.into_raw_fd();
    #[allow(
        unsafe_code,
        reason = "handing a connected socket to glommio needs from_raw_fd"
    )]
    // SAFETY: `fd` comes from `into_raw_fd` of an `OwnedFd` we own (a connected TCP socket,
    // see `cluster::rpc_server::hand_over`), so it is valid and open, and ownership passes
    // to glommio's stream exactly once.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    stream
}
