//! A small blocking Kafka client on `std::net::TcpStream`, used by the CLI's admin and console
//! tools and as the base of the load generator.
//!
//! - [`connection`] — one broker connection: framing, correlation ids, version negotiation.
//! - [`cluster`] — bootstrap, Metadata, one connection per broker, routing to partition leaders.
//! - [`admin`] — topic create/list/describe/delete, configs, partitions.
//! - [`producer`] — record batch building and Produce.
//! - [`consumer`] — ListOffsets and a sessionless Fetch loop.
//!
//! Nothing here panics on broker responses: every field read from the wire is checked and
//! every broker error code becomes a [`ClientError`].
pub mod admin;
pub mod cluster;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod producer;

pub use admin::Admin;
pub use cluster::Cluster;
pub use connection::{Connection, ConnectionConfig};
pub use consumer::{Consumer, ConsumerRecord, OffsetSpec};
pub use error::ClientError;
pub use producer::{Acks, Producer, ProducerRecord};
