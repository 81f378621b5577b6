//! sluice: a Kafka-compatible message broker, thread-per-core on io_uring.
//!
//! Layers, each depending only on the ones below it (`.ci/check-layers.py` checks this; the
//! imports that still break it are listed there):
//!
//! - `cli`      — the `sluice` binary's subcommands (serve, topic admin, console tools).
//! - `bench`    — `sluice bench`, a Kafka-protocol load generator.
//! - `client`   — a small Kafka-protocol client used by the CLI and the load generator.
//! - `server`   — connections and one thin handler per Kafka API.
//! - `admin_http` — the `/metrics`, `/health`, `/ready` endpoint on its own thread.
//! - `shard`    — a core's executor, the partitions and catalog replica it owns, and the
//!   tasks and services that drive the domain modules on it (inboxes, timers, publishers).
//! - `config`   — the broker configuration, assembled from the domain modules' config types.
//! - `security` — listeners' security protocols, principals, and (as they land) TLS, SASL, ACLs.
//! - `txn`, `share`, `group` — transactions, share groups and consumer groups.
//! - `log`      — per-partition segmented storage.
//! - `metrics`  — per-shard counters; the shard publishes them once a second.
//! - `protocol` — Kafka framing, API version table, RecordBatch layout; knows nothing about
//!   storage.
//! - `io`       — the runtime seam: glommio executors, DMA files, sockets, the clock.
//! - `constants` — every limit.
#![deny(unsafe_code)]

pub mod admin_http;
pub mod bench;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod constants;
pub mod group;
pub mod io;
pub mod log;
pub mod metrics;
pub mod protocol;
pub mod replica;
pub mod security;
pub mod server;
pub mod shard;
pub mod share;
pub mod txn;
