//! The admin HTTP endpoint: `/metrics` (Prometheus text), `/health` and `/ready`.
//!
//! It runs on one plain std thread, off the data path: it never touches a shard, only the
//! snapshots shards publish to the [`MetricsRegistry`]. The server is deliberately tiny —
//! HTTP/1.1, GET only, one request per connection, bounded reads with timeouts — because
//! its clients are a Prometheus scraper, a load balancer's probe and `curl`.

mod admin_server;

pub use admin_server::{start, AdminHttpError};
