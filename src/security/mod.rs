//! Who is on the other end of a connection and what the listener asked of it: the listener's
//! security protocol, the authenticated principal, and (as they land) TLS, SASL and ACLs.
//!
//! A connection owns one [`Session`]; the request path reads it (and SASL changes it) through
//! `server::handlers::dispatch`.

pub mod acl;
mod distinguished_name;
mod principal;
pub mod sasl;
mod session;
pub mod tls;

pub use principal::KafkaPrincipal;
pub use session::{SecurityProtocol, Session};
