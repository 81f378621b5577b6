//! sluice: a Kafka-compatible message broker, thread-per-core on io_uring.
//!
//! Layers, each depending only on the ones below it:
//!
//! - `cli`      — the `sluice` binary's subcommands (serve, topic admin, console tools).
//! - `client`   — a small Kafka-protocol client used by the CLI and the load generator.
//! - `server`   — connections and one thin handler per Kafka API.
//! - `shard`    — a core's executor and the partitions and catalog replica it owns.
//! - `log`      — per-partition segmented storage.
//! - `protocol` — Kafka framing, API version table and error codes; knows nothing about storage.
//! - `security` — listeners' security protocols, principals (TLS, SASL, ACLs).
//! - `io`       — the runtime seam: glommio executors, DMA files, sockets.
//!
//! Beside them: `metrics` (per-shard counters, published once a second) and `admin_http`
//! (the `/metrics`, `/health`, `/ready` endpoint on its own thread, off the data path).
#![deny(unsafe_code)]

pub mod admin_http;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod constants;
pub mod group;
pub mod io;
pub mod log;
pub mod metrics;
pub mod protocol;
pub mod security;
pub mod server;
pub mod shard;
pub mod share;
pub mod txn;
