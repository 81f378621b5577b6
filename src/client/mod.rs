//! A small blocking Kafka client on `std::net::TcpStream` (optionally TLS over it), used by the
//! CLI's admin and console tools and as the base of the load generator.
//!
//! - [`connection`] — one broker connection: framing, correlation ids, version negotiation.
//! - [`cluster`] — bootstrap, Metadata, one connection per broker, routing to partition leaders.
//! - [`admin`] — topic create/list/describe/delete, configs, partitions.
//! - [`acl_admin`] — ACL create/describe/delete.
//! - [`producer`] — record batch building and Produce.
//! - [`consumer`] — ListOffsets and a sessionless Fetch loop.
//! - [`group_admin`] / [`share_admin`] — consumer-group and share-group administration.
//! - [`txn_admin`] — a transactional producer's coordinator, producer id and epoch.
//! - [`user_admin`] — SCRAM users (Describe/AlterUserScramCredentials).
//!
//! Nothing here panics on broker responses: every field read from the wire is checked and
//! every broker error code becomes a [`ClientError`].
//!
//! ```no_run
//! use sluice::client::consumer::ConsumerConfig;
//! use sluice::client::producer::ProducerConfig;
//! use sluice::client::{Cluster, ConnectionConfig, Consumer, OffsetSpec, Producer, ProducerRecord};
//!
//! # fn main() -> Result<(), sluice::client::ClientError> {
//! let cluster = Cluster::connect("127.0.0.1:9092", ConnectionConfig::default())?;
//! let mut producer = Producer::new(cluster, ProducerConfig::default());
//! let record = ProducerRecord { value: Some("hello".into()), ..ProducerRecord::default() };
//! let base_offset = producer.send("logs", 0, &[record])?;
//!
//! let cluster = Cluster::connect("127.0.0.1:9092", ConnectionConfig::default())?;
//! let mut consumer = Consumer::new(cluster, "logs", ConsumerConfig::default());
//! consumer.assign(0, OffsetSpec::Earliest)?;
//! for record in consumer.poll()? {
//!     println!("{} {:?}", record.offset, record.value);
//! }
//! # let _ = base_offset;
//! # Ok(())
//! # }
//! ```
pub mod acl_admin;
pub mod admin;
pub mod cluster;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod group_admin;
pub mod producer;
pub mod share_admin;
pub mod txn_admin;
pub mod user_admin;

pub use admin::Admin;
pub use cluster::Cluster;
pub use connection::{tls_server_name, Connection, ConnectionConfig, SaslLogin};
pub use consumer::{Consumer, ConsumerRecord, OffsetSpec};
pub use error::ClientError;
pub use producer::{Acks, Producer, ProducerRecord};
