//! Sockets bound to the current shard's executor.

pub use glommio::net::{TcpListener, TcpStream};
